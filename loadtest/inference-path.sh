#!/usr/bin/env bash
# Inference-path benchmark (issue 8): what one ModelInfer of the built-in `simple` model costs,
# gateway and workers separately, against what one grpc.health.v1.Health/Check costs the gateway
# in the same run; the same for ModelStreamInfer per message; exact per-call counts; latency.
# Several binaries (before/after) in one invocation, rounds interleaved between them.
#
# What it runs, for each binary and each --workers-per-model value in WORKERS, all over TLS:
#  1. CPU per call (ROUNDS rounds; in each round every workload runs once against every binary
#     back to back, so the binaries see the same machine load; medians and per-round values):
#       health16   Health/Check            h2load -c 16 -m 16 -n N_C16  (as h2load-health.sh)
#       infer16    ModelInfer              h2load -c 16 -m 16 -n N_C16
#       infer1x16  ModelInfer              h2load -c 1 -m 16 -n N_C16   (same connection shape as stream)
#       stream     ModelStreamInfer        h2load -c 1 -m 16 -n STREAMS, body = K framed requests;
#                                          the server answers K messages then trailers; per message.
#                                          16 streams x K messages are in flight at once: keep that
#                                          under the gateway's queue (--max-queued-requests 1024)
#       health1    Health/Check            h2load -c 1 -m 1 -n N_C1
#       infer1     ModelInfer              h2load -c 1 -m 1 -n N_C1
#     CPU = Δ(utime+stime) from /proc/PID/stat of the gateway, and separately summed over its
#     worker children (`pgrep -P`), divided by calls (messages for stream). ModelInfer/stream
#     runs are checked against the gateway's ModelStatistics: Δsuccess = calls (messages), Δfail = 0.
#  2. Exact counts per call with perf stat, gateway and workers (all threads) separately, for
#     health16, infer16, infer1 and stream: malloc, pthread_mutex_lock, pthread_rwlock_rdlock and
#     pthread_rwlock_wrlock (uprobes on libc), then in separate runs without uprobes (they slow
#     the process and so change batching) syscalls (raw_syscalls:sys_enter), futex
#     (syscalls:sys_enter_futex, all ops) and futex wakes (the same tracepoint with --filter on op
#     FUTEX_WAKE, FUTEX_WAKE_OP, FUTEX_WAKE_BITSET, private or not). Each is the marginal count of
#     a large run over a small one, (count_large - count_small) / (calls_large - calls_small), so
#     TLS handshakes and perf's idle start/stop windows cancel. Machine load cannot move malloc
#     counts; syscall, futex and (where code locks per queued item) lock counts follow batching.
#  3. p50/p99 at concurrency 1 with perf_analyzer: loadtest/perf-analyzer.sh with CONCURRENCIES=1
#     for each binary (its own gateway, --workers-per-model 2, h2c and TLS), PA_ROUNDS times.
# Before measuring, one call of each kind is checked with nghttp: :status 200, grpc-status 0, and
# the response messages decode (tritonclient's service_pb2) with the right OUTPUT0/OUTPUT1.
#
# usage: loadtest/inference-path.sh [--results FILE] [LABEL=]BINARY...
#   e.g. loadtest/inference-path.sh before=/work/switchyard-before after=.build-release/release/switchyard
#   --results FILE   also append the markdown section to FILE (e.g. loadtest/RESULTS.md)
# environment (defaults):
#   ROUNDS=5  WORKERS="1 2"  N_C16=20000  N_C1=3000  STREAMS=336  K=48
#   COUNT_N=5000 (calls of the large counted unary run at -c 16 -m 16; the small run has 1/5)
#   COUNT_N_C1=1500 (the same at -c 1 -m 1)  COUNT_STREAMS=320 (streams of K messages, large; small 1/5)
#   PA_ROUNDS=1 (0 skips perf_analyzer)  RUN_TIMEOUT=300 (seconds per h2load run)
#   PHASES="cpu counts pa" (any subset)
# Needs root (perf probe), linux-perf, nghttp2-client, and .venv with Tests/interop/requirements.txt
# (installed when missing). Everything is bounded: fixed -n and a timeout on every client run;
# gateways (and with them their workers) are stopped on exit.
set -euo pipefail
results_file=""
if [[ "${1:-}" == "--results" ]]; then results_file=$(realpath -m "$2"); shift 2; fi
labels=() binaries=()
for arg in "$@"; do
    if [[ $arg == *=* ]]; then labels+=("${arg%%=*}"); binaries+=("$(realpath -m "${arg#*=}")")
    else labels+=("$(basename "$(dirname "$(realpath -m "$arg")")")/$(basename "$arg")"); binaries+=("$(realpath -m "$arg")"); fi
done
cd "$(dirname "$0")/.."
source loadtest/lib.sh
if ((${#binaries[@]} == 0)); then binaries=("$PWD/.build-release/release/switchyard"); labels=(HEAD); fi
for binary in "${binaries[@]}"; do [[ -x $binary ]] || { echo "no executable at $binary" >&2; exit 1; }; done

rounds=${ROUNDS:-5}
workers_list=${WORKERS:-"1 2"}
n_c16=${N_C16:-20000}
n_c1=${N_C1:-3000}
streams=${STREAMS:-336}
k=${K:-48}
count_n=${COUNT_N:-5000}
count_n_c1=${COUNT_N_C1:-1500}
count_streams=${COUNT_STREAMS:-320}
pa_rounds=${PA_ROUNDS:-1}
run_timeout=${RUN_TIMEOUT:-300}
phases=${PHASES:-"cpu counts pa"}
clk_tck=$(getconf CLK_TCK)

ensure_apt_packages nghttp2-client linux-perf procps iproute2 python3-venv
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -c 'import tritonclient.grpc' 2>/dev/null || .venv/bin/pip install -q --disable-pip-version-check -r Tests/interop/requirements.txt
py=.venv/bin/python

work=$(mktemp -d /tmp/inference-path.XXXXXX)
declare -A gw_pid gw_plain gw_tls gw_workers
perf_pids=()
cleanup() {
    local pid
    for pid in "${perf_pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${gw_pid[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${gw_pid[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    [[ -n ${STATS_PID:-} ]] && kill "$STATS_PID" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
load_before=$(load_average)
started_at=$(date -u '+%Y-%m-%d %H:%M:%S UTC')

# --- bodies --------------------------------------------------------------------------------------
printf '\x00\x00\x00\x00\x00' >"$work/health.body"   # empty HealthCheckRequest
$py loadtest/grpc_bodies.py body "$work/infer.body" 1
$py loadtest/grpc_bodies.py body "$work/stream.body" "$k"
headers=(-H 'content-type: application/grpc' -H 'te: trailers' -H ':method: POST')
health_path=/grpc.health.v1.Health/Check
infer_path=/inference.GRPCInferenceService/ModelInfer
stream_path=/inference.GRPCInferenceService/ModelStreamInfer

# One long-lived ModelStatistics client: write host:port, read "success fail".
coproc STATS { exec "$py" loadtest/grpc_bodies.py stats; }
model_counts() { echo "$1" >&"${STATS[1]}"; local line; read -r -t 30 line <&"${STATS[0]}"; echo "$line"; }

# --- gateways: one per binary and workers-per-model, all started up front -----------------------
nb=${#binaries[@]}
for w in $workers_list; do
    for ((b = 0; b < nb; b++)); do
        binary=${binaries[b]} key="$b,$w"
        read -r "gw_plain[$key]" "gw_tls[$key]" <<<"$(free_ports 2)"
        set_no_admin_args "$binary"
        "$binary" serve --plaintext-address "127.0.0.1:${gw_plain[$key]}" --tls-address "127.0.0.1:${gw_tls[$key]}" \
            "${NO_ADMIN_ARGS[@]}" --dev-certs-dir "$work/certs" --model simple --workers-per-model "$w" \
            --log-level warning >"$work/gateway-$b-$w.log" 2>&1 &
        gw_pid[$key]=$!
        wait_for_port "${gw_tls[$key]}" && wait_for_port "${gw_plain[$key]}" || { cat "$work/gateway-$b-$w.log" >&2; exit 1; }
        timeout 60 $py loadtest/grpc_bodies.py wait-ready "127.0.0.1:${gw_plain[$key]}" \
            || { echo "model simple not ready" >&2; cat "$work/gateway-$b-$w.log" >&2; exit 1; }
        gw_workers[$key]=$(pgrep -P "${gw_pid[$key]}" | sort -n | tr '\n' ' ')
        (($(wc -w <<<"${gw_workers[$key]}") == w)) || { echo "expected $w workers of ${gw_pid[$key]}, found: ${gw_workers[$key]}" >&2; exit 1; }
        echo "gateway ${labels[b]} workers-per-model $w: pid ${gw_pid[$key]}, workers ${gw_workers[$key]}" >&2
    done
done

# --- correctness: one call of each kind per gateway ---------------------------------------------
# $1 key, $2 path, $3 body, $4 expected messages (0: Health/Check), $5 stream (0/1)
verify_call() {
    local key=$1 path=$2 body=$3 messages=$4 stream=$5 out="$work/verify-${1/,/-}-$RANDOM"
    local url="https://127.0.0.1:${gw_tls[$key]}$path"
    timeout 30 nghttp -v -d "$body" "${headers[@]}" "$url" >"$out.v" 2>&1 || true
    if ! grep -aq ':status: 200' "$out.v" || ! grep -aq 'grpc-status: 0' "$out.v"; then
        echo "$path on gateway $key: no :status 200 / grpc-status 0:" >&2; grep -a 'grpc-\|:status' "$out.v" >&2; return 1
    fi
    ((messages == 0)) && return 0
    timeout 30 nghttp -d "$body" "${headers[@]}" "$url" >"$out.body" 2>"$out.err" || { cat "$out.err" >&2; return 1; }
    $py loadtest/grpc_bodies.py check "$out.body" "$messages" "$stream" >&2
}
for key in "${!gw_pid[@]}"; do
    verify_call "$key" "$health_path" "$work/health.body" 0 0
    verify_call "$key" "$infer_path" "$work/infer.body" 1 0
    verify_call "$key" "$stream_path" "$work/stream.body" "$k" 1
done

# --- one h2load run with CPU accounting -----------------------------------------------------------
# workload name → "path body clients streams-per-client requests messages-per-request"
workload_spec() {
    case $1 in
        health16) echo "$health_path $work/health.body 16 16 $n_c16 0" ;;
        infer16) echo "$infer_path $work/infer.body 16 16 $n_c16 1" ;;
        infer1x16) echo "$infer_path $work/infer.body 1 16 $n_c16 1" ;;
        stream) echo "$stream_path $work/stream.body 1 16 $streams $k" ;;
        health1) echo "$health_path $work/health.body 1 1 $n_c1 0" ;;
        infer1) echo "$infer_path $work/infer.body 1 1 $n_c1 1" ;;
        count-health16-large) echo "$health_path $work/health.body 16 16 $count_n 0" ;;
        count-health16-small) echo "$health_path $work/health.body 16 16 $((count_n / 5)) 0" ;;
        count-infer16-large) echo "$infer_path $work/infer.body 16 16 $count_n 1" ;;
        count-infer16-small) echo "$infer_path $work/infer.body 16 16 $((count_n / 5)) 1" ;;
        count-infer1-large) echo "$infer_path $work/infer.body 1 1 $count_n_c1 1" ;;
        count-infer1-small) echo "$infer_path $work/infer.body 1 1 $((count_n_c1 / 5)) 1" ;;
        count-stream-large) echo "$stream_path $work/stream.body 1 16 $count_streams $k" ;;
        count-stream-small) echo "$stream_path $work/stream.body 1 16 $((count_streams / 5)) $k" ;;
    esac
}
# Runs h2load; checks it and the model's statistics. Sets run_calls (requests, or messages for a
# stream) and run_rate (h2load's req/s times messages per request). Runs in this shell (not in $(...))
# so that the before/after hooks can set variables.
# $1 key, $2 workload, $3 (optional) command run just before h2load, $4 (optional) just after
h2load_checked() {
    local key=$1 path body c m n per out stats0="" stats1="" calls
    read -r path body c m n per <<<"$(workload_spec "$2")"
    out="$work/h2load-$2-${key/,/-}-$RANDOM.txt"
    ((per > 0)) && stats0=$(model_counts "127.0.0.1:${gw_plain[$key]}")
    ${3:-true}
    timeout "$run_timeout" h2load -n "$n" -c "$c" -m "$m" -d "$body" "${headers[@]}" "https://127.0.0.1:${gw_tls[$key]}$path" >"$out" 2>&1 \
        || { echo "h2load $2 on $key failed" >&2; cat "$out" >&2; return 1; }
    ${4:-true}
    if ! grep -q " $n succeeded, 0 failed, 0 errored, 0 timeout" "$out" || ! grep -q "^status codes: $n 2xx" "$out"; then
        echo "h2load $2 on $key reported failures:" >&2; cat "$out" >&2; return 1
    fi
    calls=$n
    if ((per > 0)); then
        calls=$((n * per))
        stats1=$(model_counts "127.0.0.1:${gw_plain[$key]}")
        read -r ok0 fail0 <<<"$stats0"; read -r ok1 fail1 <<<"$stats1"
        if ((ok1 - ok0 != calls || fail1 != fail0)); then
            echo "$2 on $key: ModelStatistics counted $((ok1 - ok0)) successes and $((fail1 - fail0)) failures, expected $calls and 0" >&2
            return 1
        fi
    fi
    run_calls=$calls
    run_rate=$(awk -v per=$((per > 0 ? per : 1)) '/^finished in/ { gsub(",", "", $4); printf "%.0f\n", $4 * per }' "$out")
}

cpu_before() { gw0=$(cpu_ticks_of "${gw_pid[$run_key]}"); wk0=$(cpu_ticks_sum ${gw_workers[$run_key]}); }
cpu_after() { gw1=$(cpu_ticks_of "${gw_pid[$run_key]}"); wk1=$(cpu_ticks_sum ${gw_workers[$run_key]}); }

workloads=(health16 infer16 infer1x16 stream health1 infer1)
declare -A s_rate s_gw s_wk s_total   # key "b,w,workload" → space-separated per-round values
if [[ " $phases " == *" cpu "* ]]; then
    for key in "${!gw_pid[@]}"; do  # warm-up, not measured
        for wl in infer16 stream health16; do h2load_checked "$key" "count-${wl}-small" || exit 1; done
    done
    for round in $(seq "$rounds"); do
        for w in $workers_list; do
            for wl in "${workloads[@]}"; do
                for ((b = 0; b < nb; b++)); do
                    run_key="$b,$w"
                    h2load_checked "$run_key" "$wl" cpu_before cpu_after || exit 1
                    calls=$run_calls rate=$run_rate
                    read -r g wk total < <(awk -v g=$((gw1 - gw0)) -v w=$((wk1 - wk0)) -v hz="$clk_tck" -v n="$calls" \
                        'BEGIN { printf "%.2f %.2f %.2f\n", g/hz/n*1e6, w/hz/n*1e6, (g+w)/hz/n*1e6 }')
                    s_rate[$b,$w,$wl]+="$rate "; s_gw[$b,$w,$wl]+="$g "; s_wk[$b,$w,$wl]+="$wk "; s_total[$b,$w,$wl]+="$total "
                    echo "round $round w=$w $wl ${labels[b]}: $rate/s, gateway $g µs + workers $wk µs per call ($calls calls)" >&2
                done
            done
        done
    done
    for key in "${!gw_pid[@]}"; do
        [[ "$(pgrep -P "${gw_pid[$key]}" | sort -n | tr '\n' ' ')" == "${gw_workers[$key]}" ]] \
            || { echo "worker pids of gateway $key changed during the run" >&2; exit 1; }
    done
fi

# --- exact counts -----------------------------------------------------------------------------------
libc=$(ldd "${binaries[0]}" | awk '/libc.so.6/ { print $3 }')
probes=(malloc pthread_mutex_lock pthread_rwlock_rdlock pthread_rwlock_wrlock)
count_names=(malloc mutex_lock rwlock_rdlock rwlock_wrlock syscalls futex futex_wake)
futex_wake_filter='op == 1 || op == 129 || op == 5 || op == 133 || op == 10 || op == 138'
declare -A counts   # "b,w,workload,gateway|workers" → "malloc mutex rdlock wrlock syscalls futex futex_wake" per call
if [[ " $phases " == *" counts "* ]]; then
    # Uprobes are system-wide definitions (counted here per process); existing ones are reused, none removed.
    for probe in "${probes[@]}"; do
        perf probe -l 2>/dev/null | grep -q "probe_libc:$probe " || perf probe -q -x "$libc" "$probe" >/dev/null 2>&1 \
            || { echo "perf probe -x $libc $probe failed" >&2; exit 1; }
    done
    # Two passes: the uprobes trap on every call and slow the process down, which changes how many
    # requests one read or one wake-up carries; so syscalls and futexes are counted without them.
    uprobe_events=()
    for probe in "${probes[@]}"; do uprobe_events+=(-e "probe_libc:$probe"); done
    tracepoint_events=(-e raw_syscalls:sys_enter -e syscalls:sys_enter_futex -e syscalls:sys_enter_futex --filter "$futex_wake_filter")
    start_perf() {
        rm -f "$work/perf-gw.txt" "$work/perf-wk.txt"
        perf stat -x, "${perf_events[@]}" -p "${gw_pid[$run_key]}" -o "$work/perf-gw.txt" & perf_pids=($!)
        perf stat -x, "${perf_events[@]}" -p "$(tr ' ' ',' <<<"${gw_workers[$run_key]% }")" -o "$work/perf-wk.txt" & perf_pids+=($!)
        sleep 0.5
    }
    stop_perf() { sleep 0.2; kill -INT "${perf_pids[@]}"; wait "${perf_pids[@]}" || true; perf_pids=(); }
    # perf -x, lines: value,unit,event,...; the futex tracepoint appears twice: all ops first, then
    # wakes. Prints the counts of one perf output file in table order: the four uprobes, or the
    # three tracepoints.
    raw_counts() {
        awk -F, '
            $3 ~ /^probe_libc:|^raw_syscalls:|^syscalls:/ {
                name = $3; if (name == "syscalls:sys_enter_futex" && seen_futex++) name = "futex_wake"
                # "<not counted>": the process never ran while perf watched (idle workers during Health/Check).
                v[name] = ($1 ~ /^[0-9.]+$/) ? $1 : ($1 ~ /not counted/) ? 0 : "nan" }
            END { if ("probe_libc:malloc" in v) print v["probe_libc:malloc"], v["probe_libc:pthread_mutex_lock"],
                      v["probe_libc:pthread_rwlock_rdlock"], v["probe_libc:pthread_rwlock_wrlock"]
                  else print v["raw_syscalls:sys_enter"], v["syscalls:sys_enter_futex"], v["futex_wake"] }' "$1"
    }
    # $1 small counts, $2 small calls, $3 large counts, $4 large calls → marginal counts per call
    marginal() {
        awk -v s="$1" -v ns="$2" -v l="$3" -v nl="$4" 'BEGIN { n = split(s, a, " "); split(l, c, " ")
            for (i = 1; i <= n; i++) { x = (c[i] - a[i]) / (nl - ns); if (x < 0.005 && x > -0.005) x = 0
                printf "%.2f%s", x, (i < n ? " " : "\n") } }'
    }
    for w in $workers_list; do
        for wl in health16 infer16 infer1 stream; do
            for ((b = 0; b < nb; b++)); do
                run_key="$b,$w"
                small_gw="" small_wk="" large_gw="" large_wk=""
                for pass in uprobes tracepoints; do
                    if [[ $pass == uprobes ]]; then perf_events=("${uprobe_events[@]}"); else perf_events=("${tracepoint_events[@]}"); fi
                    h2load_checked "$run_key" "count-$wl-small" start_perf stop_perf || exit 1
                    small_calls=$run_calls small_gw+="$(raw_counts "$work/perf-gw.txt") " small_wk+="$(raw_counts "$work/perf-wk.txt") "
                    h2load_checked "$run_key" "count-$wl-large" start_perf stop_perf || exit 1
                    large_calls=$run_calls large_gw+="$(raw_counts "$work/perf-gw.txt") " large_wk+="$(raw_counts "$work/perf-wk.txt") "
                done
                counts[$b,$w,$wl,gateway]=$(marginal "$small_gw" "$small_calls" "$large_gw" "$large_calls")
                counts[$b,$w,$wl,workers]=$(marginal "$small_wk" "$small_calls" "$large_wk" "$large_calls")
                echo "counts w=$w $wl ${labels[b]} ($small_calls and $large_calls calls): gateway $small_gw / $large_gw; workers $small_wk / $large_wk" >&2
            done
        done
    done
fi

# --- perf_analyzer at concurrency 1 -------------------------------------------------------------------
pa_rows=()
if [[ " $phases " == *" pa "* ]] && ((pa_rounds > 0)); then
    for round in $(seq "$pa_rounds"); do
        for ((b = 0; b < nb; b++)); do
            CONCURRENCIES=1 loadtest/perf-analyzer.sh "${binaries[b]}" >"$work/pa-$b.md" 2>"$work/pa-$b.err" \
                || { cat "$work/pa-$b.err" >&2; exit 1; }
            while IFS= read -r row; do pa_rows+=("| ${labels[b]} | $round |${row#|}"); done < <(grep -E '^\| (h2c|tls) \| 1 \|' "$work/pa-$b.md")
            echo "perf_analyzer round $round ${labels[b]} done" >&2
        done
    done
fi
load_after=$(load_average)

# --- report -------------------------------------------------------------------------------------------
med() { tr ' ' '\n' <<<"$1" | grep . | median; }
fmt() { awk -v x="$1" 'BEGIN { printf (x >= 100 ? "%.0f" : "%.1f"), x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# Per-round paired ratios of two sample lists, and their median.
paired() {
    local -a a=($1) c=($2) r=()
    local i
    for i in "${!a[@]}"; do r+=("$(ratio "${a[i]}" "${c[i]}")"); done
    echo "${r[*]} ($(printf '%s\n' "${r[@]}" | median))"
}
binary_list=""
for ((b = 0; b < nb; b++)); do
    binary_list+="  - \`${labels[b]}\`: \`${binaries[b]}\` (sha256 $(sha256sum "${binaries[b]}" | cut -c1-12), built $(stat -c '%y' "${binaries[b]}" | cut -d. -f1))
"
done
dirty=""
[[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] && dirty=" (working tree has uncommitted changes to tracked files)"
out="## Inference path: ModelInfer and ModelStreamInfer against Health/Check (loadtest/inference-path.sh)

- date: $started_at; script at commit $(git rev-parse --short HEAD)$dirty
- binaries:
${binary_list%$'\n'}
- machine: $(nproc) cores, $(lscpu | grep 'Model name' | sed 's/Model name: *//'), $(free -g | awk '/^Mem:/ { print $2 }') GiB; load average (1/5/15 min) before $load_before, after $load_after
- gateways: \`switchyard serve --plaintext-address 127.0.0.1:P --tls-address 127.0.0.1:P2 --admin-address none --dev-certs-dir DIR --model simple --workers-per-model W --log-level warning\`, W in {${workers_list// /, }}, one per binary and W, all started before the first round
- requests (TLS, ALPN h2, \`h2load -d BODY -H 'content-type: application/grpc' -H 'te: trailers' -H ':method: POST'\`): Health/Check body = empty HealthCheckRequest; ModelInfer body = one ModelInferRequest {model_name \"simple\", INPUT0 = 0..15 and INPUT1 = 1 as INT32 [1,16] in raw_input_contents} (\`loadtest/grpc_bodies.py body\`); ModelStreamInfer body = K such requests, concatenated
- checks: before measuring, one call of each kind per gateway with \`nghttp -v\` (\`:status: 200\`, \`grpc-status: 0\`) and its response decoded with tritonclient's service_pb2 (OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 − INPUT1; K messages on the stream); every h2load run: N succeeded, 0 failed/errored/timeout, N 2xx; every ModelInfer/stream run: the gateway's ModelStatistics for \`simple\` grew by exactly the calls (messages), with no failure; worker pids unchanged over the run
"
if [[ " $phases " == *" cpu "* ]]; then
    out+="
### CPU per call ($rounds rounds, binaries interleaved within each workload of a round; median, then per-round values)

- CPU per call = Δ(utime+stime) from /proc/PID/stat (CLK_TCK=$clk_tck) of the gateway, and of its worker children (\`pgrep -P\`) summed, over the h2load run ÷ calls (÷ messages for the stream)
- workloads: health16 and infer16 \`h2load -c 16 -m 16 -n $n_c16\` (the shape of h2load-health.sh); infer1x16 \`-c 1 -m 16 -n $n_c16\`; stream \`-c 1 -m 16 -n $streams\` with K = $k requests per stream ($((streams * k)) messages; rate in messages/s); health1 and infer1 \`-c 1 -m 1 -n $n_c1\`. One unmeasured warm-up of each kind first.

| W | workload | binary | calls/s | gateway µs/call | workers µs/call | total µs/call | total per round |
|---:|---|---|---:|---:|---:|---:|---|
"
    for w in $workers_list; do
        for wl in "${workloads[@]}"; do
            for ((b = 0; b < nb; b++)); do
                s=$b,$w,$wl
                out+="| $w | $wl | ${labels[b]} | $(fmt "$(med "${s_rate[$s]}")") | $(fmt "$(med "${s_gw[$s]}")") | $(fmt "$(med "${s_wk[$s]}")") | **$(fmt "$(med "${s_total[$s]}")")** | ${s_total[$s]% } |
"
            done
        done
    done
    out+="
Ratios (of medians; then per-round paired ratios and their median). Goals: ModelInfer (gateway + workers) ≤ 3× Health/Check (gateway); stream CPU per message ≤ unary ModelInfer's per call.

| W | binary | infer16 ÷ health16 | paired | infer1 ÷ health1 | paired | stream/msg ÷ infer1x16 | paired | stream/msg ÷ infer16 |
|---:|---|---:|---|---:|---|---:|---|---:|
"
    for w in $workers_list; do
        for ((b = 0; b < nb; b++)); do
            s=$b,$w
            out+="| $w | ${labels[b]} | **$(ratio "$(med "${s_total[$s,infer16]}")" "$(med "${s_gw[$s,health16]}")")×** | $(paired "${s_total[$s,infer16]}" "${s_gw[$s,health16]}") | **$(ratio "$(med "${s_total[$s,infer1]}")" "$(med "${s_gw[$s,health1]}")")×** | $(paired "${s_total[$s,infer1]}" "${s_gw[$s,health1]}") | **$(ratio "$(med "${s_total[$s,stream]}")" "$(med "${s_total[$s,infer1x16]}")")×** | $(paired "${s_total[$s,stream]}" "${s_total[$s,infer1x16]}") | $(ratio "$(med "${s_total[$s,stream]}")" "$(med "${s_total[$s,infer16]}")")× |
"
        done
    done
fi
if [[ " $phases " == *" counts "* ]]; then
    out+="
### Exact counts per call (perf stat -p, gateway and workers separately)

- \`perf stat -x, -e probe_libc:malloc -e probe_libc:pthread_mutex_lock -e probe_libc:pthread_rwlock_rdlock -e probe_libc:pthread_rwlock_wrlock -p PID\` (uprobes from \`perf probe -x $libc SYMBOL\`) and, in separate runs without uprobes (they slow the process and so change how many requests one syscall carries), \`perf stat -x, -e raw_syscalls:sys_enter -e syscalls:sys_enter_futex -e syscalls:sys_enter_futex --filter '$futex_wake_filter' -p PID\`; one perf for the gateway and one for its workers (all their threads), around each h2load run
- per call = marginal count: (count of the large run − count of the small run) ÷ (calls of the large − calls of the small), so that the 16 (or 1) TLS handshakes and the ~0.7 s of idle time in each perf window (worker health pings) cancel (for stream, each stream's own setup is included, spread over its K messages). Runs (small, large): health16 and infer16 \`-c 16 -m 16 -n $((count_n / 5))\` and \`-n $count_n\`; infer1 \`-c 1 -m 1 -n $((count_n_c1 / 5))\` and \`-n $count_n_c1\`; stream \`-c 1 -m 16 -n $((count_streams / 5))\` and \`-n $count_streams\` with K = $k messages per stream (per message).
- futex wake = futex calls whose op is FUTEX_WAKE, FUTEX_WAKE_OP or FUTEX_WAKE_BITSET, private or not (the tracepoint filter above; \`op & 0x7f == 1\` is refused by this kernel's filter parser). Swift's Synchronization.Mutex would not show as pthread_mutex_lock; the sources use NIOLock (pthread_mutex) only. Malloc counts barely depend on timing; syscall and futex counts do (how many requests one read or one wake-up carries), and so can lock counts where code takes a lock per queued item or retries (compare the small and large runs in the script's stderr log).

| W | workload | binary | side | malloc | mutex_lock | rwlock rd | rwlock wr | syscalls | futex (all) | futex wake |
|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|
"
    for w in $workers_list; do
        for wl in health16 infer16 infer1 stream; do
            for ((b = 0; b < nb; b++)); do
                for side in gateway workers; do
                    out+="| $w | $wl | ${labels[b]} | $side | $(tr ' ' '|' <<<"${counts[$b,$w,$wl,$side]}" | sed 's/|/ | /g') |
"
                done
            done
        done
    done
fi
if ((${#pa_rows[@]})); then
    out+="
### Latency at concurrency 1 (perf_analyzer)

- \`CONCURRENCIES=1 loadtest/perf-analyzer.sh BINARY\` per binary and round (its own gateway with --workers-per-model 2; \`perf_analyzer -m simple -i grpc --concurrency-range 1 --measurement-interval ${MEASUREMENT_MS:-5000} -s ${STABILITY:-25} --max-trials ${MAX_TRIALS:-10}\`, h2c and TLS; CPU per inference there is over the whole perf_analyzer run, warm-up included)

| binary | round | transport | concurrency | infer/s | p50 µs | p99 µs | gateway CPU µs/infer | workers CPU µs/infer | total CPU µs/infer | inferences counted | status |
|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|
$(printf '%s\n' "${pa_rows[@]}")
"
fi
echo "$out"
if [[ -n $results_file ]]; then printf '\n%s' "$out" >>"$results_file"; fi
