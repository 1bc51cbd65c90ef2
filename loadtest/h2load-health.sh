#!/usr/bin/env bash
# Transport benchmark (HTTP/2 and TLS): h2load against Switchyard's grpc.health.v1.Health/Check
# over TLS, side by side with nghttpd serving a small static file over TLS with the same
# certificate. Reports req/s and server CPU time per request (utime+stime of the server process
# from /proc/PID/stat, before and after each h2load run) and the ratio switchyard/nghttpd.
# Goal (issue "HTTP/2 and TLS"): Switchyard's CPU per request <= 2x nghttpd's.
#
# usage: loadtest/h2load-health.sh [--results FILE] [BINARY]
#   BINARY       default .build-release/release/switchyard
#   --results    also append the markdown section to FILE (e.g. loadtest/RESULTS.md)
# environment:
#   ROUNDS=5     rounds per configuration; servers alternate within a round, medians are reported
#   N_C16=100000 requests per h2load run at -c 16 -m 16
#   N_C1=20000   requests per h2load run at -c 1 -m 1
# Everything is bounded: each h2load run has a fixed -n and a timeout; servers are stopped on exit.
set -euo pipefail
# Paths given on the command line are relative to the caller's directory; then work from the repo root.
results_file=""
if [[ "${1:-}" == "--results" ]]; then results_file=$(realpath -m "$2"); shift 2; fi
binary=${1:+$(realpath -m "$1")}
cd "$(dirname "$0")/.."
source loadtest/lib.sh
binary=${binary:-.build-release/release/switchyard}
rounds=${ROUNDS:-5}
n_c16=${N_C16:-100000}
n_c1=${N_C1:-20000}
run_timeout=${RUN_TIMEOUT:-300}

[[ -x "$binary" ]] || { echo "no executable at $binary (build: swift build -c release --product switchyard --scratch-path .build-release)" >&2; exit 1; }
ensure_apt_packages nghttp2-client nghttp2-server iproute2 procps

clk_tck=$(getconf CLK_TCK)
work=$(mktemp -d /tmp/h2load-health.XXXXXX)
gateway_pid="" nghttpd_pid=""
cleanup() {
    local pid
    for pid in $gateway_pid $nghttpd_pid; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $gateway_pid $nghttpd_pid; do
        # bounded wait, then KILL
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

load_before=$(load_average)

# --- servers ---------------------------------------------------------------------------------
plain_port=$(free_port); tls_port=$(free_port); nghttpd_port=$(free_port)
certs="$work/certs"; mkdir -p "$certs" "$work/htdocs"
set_no_admin_args "$binary"
"$binary" serve --plaintext-address "127.0.0.1:$plain_port" --tls-address "127.0.0.1:$tls_port" "${NO_ADMIN_ARGS[@]}" \
    --dev-certs-dir "$certs" --model simple --workers-per-model 2 --log-level warning \
    >"$work/gateway.log" 2>&1 &
gateway_pid=$!
wait_for_port "$tls_port" || { cat "$work/gateway.log" >&2; exit 1; }

# A 7-byte file, the size of the Health/Check response body (5-byte gRPC frame + 08 01).
printf '\x00\x00\x00\x00\x02\x08\x01' >"$work/htdocs/check"
nghttpd --address 127.0.0.1 --htdocs "$work/htdocs" "$nghttpd_port" \
    "$certs/server-key.pem" "$certs/server.pem" >"$work/nghttpd.log" 2>&1 &
nghttpd_pid=$!
wait_for_port "$nghttpd_port" || { cat "$work/nghttpd.log" >&2; exit 1; }

# Empty HealthCheckRequest as one gRPC message: flag 0, length 0.
printf '\x00\x00\x00\x00\x00' >"$work/body"
grpc_headers=(-H 'content-type: application/grpc' -H 'te: trailers' -H ':method: POST')
gateway_url="https://127.0.0.1:$tls_port/grpc.health.v1.Health/Check"
nghttpd_url="https://127.0.0.1:$nghttpd_port/check"

# --- correctness: one call with nghttp -v shows :status 200 and grpc-status 0 in the trailers --
verify_gateway() {
    timeout 20 nghttp -v -d "$work/body" "${grpc_headers[@]}" "$gateway_url" >"$work/nghttp-$1.txt" 2>&1 || true
    grep -aq ':status: 200' "$work/nghttp-$1.txt" && grep -aq 'grpc-status: 0' "$work/nghttp-$1.txt"
}
verify_gateway before || { echo "Health/Check did not answer 200 / grpc-status 0:" >&2; cat "$work/nghttp-before.txt" >&2; exit 1; }
timeout 20 nghttp -v -d "$work/body" "$nghttpd_url" >"$work/nghttp-nghttpd.txt" 2>&1 || true
grep -aq ':status: 200' "$work/nghttp-nghttpd.txt" || { echo "nghttpd did not answer 200:" >&2; cat "$work/nghttp-nghttpd.txt" >&2; exit 1; }

# --- one h2load run: prints "req_per_s cpu_us_per_req" or fails -------------------------------
# $1 server name, $2 pid, $3 url, $4 clients, $5 streams per client, $6 requests
h2load_run() {
    local name=$1 pid=$2 url=$3 c=$4 m=$5 n=$6 out before after
    out="$work/h2load-$name-c$c-$RANDOM.txt"
    # The same request (headers and 5-byte body) goes to both servers; only the path differs.
    local cmd=(h2load -n "$n" -c "$c" -m "$m" -d "$work/body" "${grpc_headers[@]}" "$url")
    before=$(cpu_ticks_of "$pid")
    timeout "$run_timeout" "${cmd[@]}" >"$out" 2>&1 || { cat "$out" >&2; return 1; }
    after=$(cpu_ticks_of "$pid")
    # requests: N total, N started, N done, N succeeded, 0 failed, 0 errored, 0 timeout
    local req_line status_line
    req_line=$(grep '^requests:' "$out")
    status_line=$(grep '^status codes:' "$out")
    if ! grep -q " $n succeeded, 0 failed, 0 errored, 0 timeout" <<<"$req_line" || ! grep -q "^status codes: $n 2xx" <<<"$status_line"; then
        echo "h2load against $name reported failures:" >&2; cat "$out" >&2; return 1
    fi
    local rps
    rps=$(awk '/^finished in/ { gsub(",", "", $4); print $4 }' "$out")
    awk -v rps="$rps" -v d=$((after - before)) -v hz="$clk_tck" -v n="$n" \
        'BEGIN { printf "%.0f %.2f\n", rps, d / hz / n * 1e6 }'
}

declare -A rps_samples cpu_samples round_ratios
configs=("16 16 $n_c16" "1 1 $n_c1")
for config in "${configs[@]}"; do
    read -r c m n <<<"$config"
    # Warm-up (not measured): one short run each.
    h2load_run nghttpd "$nghttpd_pid" "$nghttpd_url" "$c" "$m" $((n / 10)) >/dev/null
    h2load_run switchyard "$gateway_pid" "$gateway_url" "$c" "$m" $((n / 10)) >/dev/null
    for round in $(seq "$rounds"); do
        for server in nghttpd switchyard; do
            if [[ $server == nghttpd ]]; then r=$(h2load_run nghttpd "$nghttpd_pid" "$nghttpd_url" "$c" "$m" "$n")
            else r=$(h2load_run switchyard "$gateway_pid" "$gateway_url" "$c" "$m" "$n"); fi
            read -r rps cpu <<<"$r"
            rps_samples[$server,$c]+="$rps "
            cpu_samples[$server,$c]+="$cpu "
            echo "round $round -c $c -m $m -n $n $server: $rps req/s, $cpu us CPU/req" >&2
            [[ $server == nghttpd ]] && ng_round_cpu=$cpu
        done
        # Paired ratio of this round (the two runs were back to back, under about the same load).
        round_ratios[$c]+="$(awk -v a="$cpu" -v b="$ng_round_cpu" 'BEGIN { printf "%.2f", a / b }') "
    done
done

verify_gateway after || { echo "Health/Check did not answer 200 / grpc-status 0 after the load:" >&2; cat "$work/nghttp-after.txt" >&2; exit 1; }
load_after=$(load_average)

# --- report ------------------------------------------------------------------------------------
med() { tr ' ' '\n' <<<"$1" | grep . | median; }
table="| load | server | req/s (median) | CPU µs/req (median) | CPU µs/req per round | CPU ratio switchyard/nghttpd (of medians) | per-round paired ratios (median) | goal ≤ 2× |
|---|---|---:|---:|---|---:|---|---|"
verdicts=()
for config in "${configs[@]}"; do
    read -r c m n <<<"$config"
    ng_cpu=$(med "${cpu_samples[nghttpd,$c]}"); sy_cpu=$(med "${cpu_samples[switchyard,$c]}")
    ng_rps=$(med "${rps_samples[nghttpd,$c]}"); sy_rps=$(med "${rps_samples[switchyard,$c]}")
    ratio=$(awk -v a="$sy_cpu" -v b="$ng_cpu" 'BEGIN { printf "%.2f", a / b }')
    rps_ratio=$(awk -v a="$sy_rps" -v b="$ng_rps" 'BEGIN { printf "%.2f", a / b }')
    paired=$(med "${round_ratios[$c]}")
    met=$(awk -v r="$ratio" 'BEGIN { print (r <= 2.0) ? "met" : "NOT met" }')
    verdicts+=("-c $c -m $m: switchyard uses ${ratio}× nghttpd's CPU per request (goal ≤ 2×: $met; median of per-round paired ratios ${paired}×); throughput ${rps_ratio}× nghttpd's.")
    table+="
| -c $c -m $m -n $n | nghttpd | $ng_rps | $ng_cpu | ${cpu_samples[nghttpd,$c]% } | | | |
| -c $c -m $m -n $n | switchyard | $sy_rps | $sy_cpu | ${cpu_samples[switchyard,$c]% } | **$ratio** | ${round_ratios[$c]% } ($paired) | $met |"
done

commands=""
for config in "${configs[@]}"; do
    read -r c m n <<<"$config"
    commands+="  - \`h2load -n $n -c $c -m $m -d body -H 'content-type: application/grpc' -H 'te: trailers' -H ':method: POST' https://127.0.0.1:P2/grpc.health.v1.Health/Check\` and the same with \`https://127.0.0.1:PORT/check\`
"
done
commands=${commands%$'\n'}
dirty=""
[[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] && dirty=" (working tree has uncommitted changes to tracked files)"
section="## HTTP/2 and TLS: h2load vs nghttpd

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
- commit: $(git rev-parse --short HEAD)$dirty; binary: \`$binary\` ($(stat -c '%y' "$binary" | cut -d. -f1))
- machine: $(nproc) cores, $(lscpu | grep 'Model name' | sed 's/Model name: *//'); shared with other builds
- load average (1/5/15 min): before $load_before, after $load_after
- servers: \`switchyard serve --plaintext-address 127.0.0.1:P --tls-address 127.0.0.1:P2 --dev-certs-dir DIR --model simple --workers-per-model 2 --log-level warning\` (event-loop threads: one per core); \`nghttpd --address 127.0.0.1 --htdocs DIR PORT DIR/server-key.pem DIR/server.pem\` (1 worker thread, same certificate, 7-byte static file = size of the Health/Check response body)
- commands (TLS, ALPN h2; $rounds rounds, servers alternating within a round, after one unmeasured warm-up run of n/10 each; medians reported; body = 00 00 00 00 00, an empty HealthCheckRequest; nghttpd gets the same request and serves the file):
$commands
- CPU per request = Δ(utime+stime) of the server process from /proc/PID/stat (CLK_TCK=$clk_tck) / N; the gateway's worker processes are not counted (they are idle for Health/Check).
- checks: every h2load run reported N succeeded, 0 failed, 0 errored, 0 timeout, N 2xx; \`nghttp -v\` before and after the load showed \`:status: 200\` and trailer \`grpc-status: 0\`.
- script: \`loadtest/h2load-health.sh\` (ROUNDS=$rounds N_C16=$n_c16 N_C1=$n_c1)

$table

$(printf -- '- %s\n' "${verdicts[@]}")
"
echo "$section"
if [[ -n "$results_file" ]]; then
    [[ -f "$results_file" ]] || printf '# Load-test results\n' >"$results_file"
    printf '\n%s' "$section" >>"$results_file"
fi
