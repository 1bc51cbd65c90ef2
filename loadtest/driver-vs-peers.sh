#!/usr/bin/env bash
# The load-test driver against its peers (issue 12): calls/s of `switchyard loadtest` and of
# h2load in the same run, at the same concurrency on one connection, against nghttpd serving a
# static file (`--raw-http2`) and against the gateway's grpc.health.v1.Health/Check; and infer/s
# of `switchyard loadtest` and Triton's perf_analyzer against the gateway's ModelInfer (`simple`,
# 2 workers) at the same concurrency. Goal: the driver >= 0.8x h2load.
#
# usage: loadtest/driver-vs-peers.sh [--results FILE] [BINARY]
#   BINARY       default .build-release/release/switchyard
# environment:
#   ROUNDS=3  N=100000 (requests per h2load/driver run)  STREAMS=16  PA_MS=5000  CONCURRENCIES="1 16"
# The tools alternate within a round; medians of calls/s are reported. Servers are stopped on exit.
set -euo pipefail
results_file=""
if [[ "${1:-}" == "--results" ]]; then results_file=$(realpath -m "$2"); shift 2; fi
binary=${1:+$(realpath -m "$1")}
cd "$(dirname "$0")/.."
source loadtest/lib.sh
binary=${binary:-.build-release/release/switchyard}
rounds=${ROUNDS:-3}
n=${N:-100000}
streams=${STREAMS:-16}
pa_ms=${PA_MS:-5000}
concurrencies=${CONCURRENCIES:-"1 16"}
[[ -x "$binary" ]] || { echo "no executable at $binary (build: swift build -c release --product switchyard --scratch-path .build-release)" >&2; exit 1; }
ensure_apt_packages nghttp2-client nghttp2-server iproute2 procps libb64-0d python3-venv

work=$(mktemp -d /tmp/driver-vs-peers.XXXXXX)
gateway_pid="" nghttpd_pid=""
cleanup() {
    local pid
    for pid in $gateway_pid $nghttpd_pid; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $gateway_pid $nghttpd_pid; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
load_before=$(load_average)

read -r plain_port tls_port nghttpd_port <<<"$(free_ports 3)"
mkdir -p "$work/htdocs"
printf 'hello, world' >"$work/htdocs/index.html"
nghttpd --no-tls -d "$work/htdocs" "$nghttpd_port" >"$work/nghttpd.log" 2>&1 &
nghttpd_pid=$!
set_no_admin_args "$binary"
"$binary" serve --plaintext-address "127.0.0.1:$plain_port" --tls-address "127.0.0.1:$tls_port" "${NO_ADMIN_ARGS[@]}" \
    --dev-certs-dir "$work/certs" --model simple --workers-per-model 2 --log-level warning >"$work/gateway.log" 2>&1 &
gateway_pid=$!
wait_for_port "$nghttpd_port" && wait_for_port "$plain_port" || { cat "$work/gateway.log" >&2; exit 1; }
sleep 2  # the workers' HELLO

printf '\x00\x00\x00\x00\x00' >"$work/health-body"
grpc_headers=(-H 'content-type: application/grpc' -H 'te: trailers' -H ':method: POST')

# h2load: prints req/s, or fails unless every request succeeded.
h2load_rps() {  # $1 url, rest: extra h2load arguments
    local url=$1; shift
    local out="$work/h2load.txt"
    timeout 300 h2load -n "$n" -c 1 -m "$streams" "$@" "$url" >"$out" 2>&1 || { cat "$out" >&2; return 1; }
    grep -q " $n succeeded, 0 failed, 0 errored, 0 timeout" "$out" || { cat "$out" >&2; return 1; }
    awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($i == "req/s,") print $(i-1) }' "$out"
}
# switchyard loadtest: prints calls/s, or fails unless every call succeeded.
driver_rps() {  # arguments for loadtest
    local out="$work/driver.json"
    timeout 300 "$binary" loadtest --quiet --json "$out" "$@" >/dev/null 2>"$work/driver.err" || { cat "$work/driver.err" >&2; return 1; }
    python3 - "$out" <<'PY'
import json, sys
step = json.load(open(sys.argv[1]))["steps"][0]
assert step["calls"] == step["succeeded"], step["errors"]
print(f'{step["throughput"]:.0f}')
PY
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

rows=()
compare_h2load() {  # $1 label, $2 url for h2load, $3 target, rest: driver arguments; then "--" h2load arguments
    local label=$1 url=$2 target=$3; shift 3
    local driver_args=() h2_args=()
    while (($#)) && [[ $1 != -- ]]; do driver_args+=("$1"); shift; done
    (($#)) && shift
    h2_args=("$@")
    local ours=() theirs=() round
    for round in $(seq "$rounds"); do
        theirs+=("$(h2load_rps "$url" "${h2_args[@]}")")
        ours+=("$(driver_rps -u "$target" --connections 1 --threads 1 --concurrency-range "$streams" --requests "$n" "${driver_args[@]}")")
    done
    local o t
    o=$(printf '%s\n' "${ours[@]}" | median); t=$(printf '%s\n' "${theirs[@]}" | median)
    echo "$label: switchyard loadtest $o calls/s (${ours[*]}), h2load $t req/s (${theirs[*]}), ratio $(ratio "$o" "$t")" >&2
    rows+=("| $label | 1 connection × $streams streams | $o | h2load $t | $(ratio "$o" "$t") |")
}

compare_h2load "nghttpd static file (h2c GET)" "http://127.0.0.1:$nghttpd_port/index.html" "127.0.0.1:$nghttpd_port" --raw-http2 /index.html --
compare_h2load "gateway Health/Check (h2c)" "http://127.0.0.1:$plain_port/grpc.health.v1.Health/Check" "127.0.0.1:$plain_port" --rpc health -- \
    -d "$work/health-body" "${grpc_headers[@]}"

# perf_analyzer from the tritonclient wheel (see loadtest/perf-analyzer.sh).
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -c 'import tritonclient.grpc' 2>/dev/null || .venv/bin/pip install -q --disable-pip-version-check -r Tests/interop/requirements.txt
if ! compgen -G ".venv/lib/python3*/site-packages/nvidia/cuda_runtime/lib/libcudart.so.*" >/dev/null; then
    .venv/bin/pip install -q --disable-pip-version-check -r loadtest/requirements.txt
fi
cuda_lib=$(dirname "$(compgen -G "$PWD/.venv/lib/python3*/site-packages/nvidia/cuda_runtime/lib/libcudart.so.*" | head -1)")
for c in $concurrencies; do
    ours=() theirs=()
    for round in $(seq "$rounds"); do
        csv="$work/pa.csv"
        timeout 300 env "LD_LIBRARY_PATH=$cuda_lib" .venv/bin/perf_analyzer -m simple -i grpc -u "127.0.0.1:$plain_port" \
            --concurrency-range "$c" --measurement-interval "$pa_ms" -s 25 --max-trials 10 -f "$csv" >"$work/pa.log" 2>&1 \
            || { cat "$work/pa.log" >&2; exit 1; }
        theirs+=("$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next } NR == 2 { printf "%.0f", $col["Inferences/Second"] }' "$csv")")
        ours+=("$(driver_rps -u "127.0.0.1:$plain_port" -m simple --concurrency-range "$c" --duration "$((pa_ms / 1000))s" --warmup 1s)")
    done
    o=$(printf '%s\n' "${ours[@]}" | median); t=$(printf '%s\n' "${theirs[@]}" | median)
    echo "gateway ModelInfer c=$c: switchyard loadtest $o infer/s (${ours[*]}), perf_analyzer $t (${theirs[*]}), ratio $(ratio "$o" "$t")" >&2
    rows+=("| gateway ModelInfer \`simple\` (h2c) | concurrency $c, 1 connection | $o | perf_analyzer $t | $(ratio "$o" "$t") |")
done
load_after=$(load_average)

dirty=""
[[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] && dirty=" (working tree has uncommitted changes to tracked files)"
section="## Load-test driver vs h2load and perf_analyzer (issue 12, loadtest/driver-vs-peers.sh)

$(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), \
load average before $load_before, after $load_after. Release build; the driver, the peer tool and the server share the machine.
Medians of $rounds rounds, tools alternating; h2load runs: -n $n -c 1 -m $streams (one thread), the driver the same number of
calls with \`--connections 1 --threads 1 --concurrency-range $streams --requests $n\`; perf_analyzer \`-m simple --concurrency-range C
--measurement-interval $pa_ms -s 25\`, the driver \`--concurrency-range C --duration $((pa_ms / 1000))s --warmup 1s\` (its default threads).

| target | load | switchyard loadtest calls/s | peer calls/s | ratio |
|---|---|---|---|---|
$(printf '%s\n' "${rows[@]}")
"
echo "$section"
if [[ -n $results_file ]]; then printf '\n%s' "$section" >>"$results_file"; fi
