#!/usr/bin/env bash
# Inference benchmark (services and workers): Triton's perf_analyzer (from the tritonclient wheel
# in .venv) against Switchyard serving the built-in `simple` model with 2 workers, over h2c and
# over TLS, at concurrency 1 and 16. Reports infer/s, p50/p99 latency and CPU time per inference
# of the gateway and of its worker processes (utime+stime from /proc of the gateway pid and its
# children, `pgrep -P`, before and after each run, divided by the number of successful inferences
# the gateway's ModelStatistics counted over the same interval).
#
# usage: loadtest/perf-analyzer.sh [--results FILE] [BINARY]
#   BINARY       default .build-release/release/switchyard
#   --results    also append the markdown section to FILE (e.g. loadtest/RESULTS.md)
# environment:
#   CONCURRENCIES="1 16"  MEASUREMENT_MS=5000  STABILITY=25 (percent)  MAX_TRIALS=10
# Everything is bounded: perf_analyzer gives up after MAX_TRIALS windows and runs under a timeout;
# the gateway (and with it its workers) is stopped on exit.
set -euo pipefail
# Paths given on the command line are relative to the caller's directory; then work from the repo root.
results_file=""
if [[ "${1:-}" == "--results" ]]; then results_file=$(realpath -m "$2"); shift 2; fi
binary=${1:+$(realpath -m "$1")}
cd "$(dirname "$0")/.."
source loadtest/lib.sh
binary=${binary:-.build-release/release/switchyard}
concurrencies=${CONCURRENCIES:-"1 16"}
measurement_ms=${MEASUREMENT_MS:-5000}
stability=${STABILITY:-25}
max_trials=${MAX_TRIALS:-10}
run_timeout=${RUN_TIMEOUT:-300}

[[ -x "$binary" ]] || { echo "no executable at $binary (build: swift build -c release --product switchyard --scratch-path .build-release)" >&2; exit 1; }
ensure_apt_packages libb64-0d python3-venv iproute2 procps

# perf_analyzer ships in the tritonclient wheel (Tests/interop/requirements.txt); it links against
# libcudart even for gRPC, which the nvidia-cuda-runtime-cu12 wheel provides (loadtest/requirements.txt).
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -c 'import tritonclient.grpc' 2>/dev/null || .venv/bin/pip install -q --disable-pip-version-check -r Tests/interop/requirements.txt
if ! compgen -G ".venv/lib/python3*/site-packages/nvidia/cuda_runtime/lib/libcudart.so.*" >/dev/null; then
    .venv/bin/pip install -q --disable-pip-version-check -r loadtest/requirements.txt
fi
cuda_lib=$(dirname "$(compgen -G "$PWD/.venv/lib/python3*/site-packages/nvidia/cuda_runtime/lib/libcudart.so.*" | head -1)")
perf_analyzer=(env "LD_LIBRARY_PATH=$cuda_lib" .venv/bin/perf_analyzer)

clk_tck=$(getconf CLK_TCK)
work=$(mktemp -d /tmp/perf-analyzer.XXXXXX)
gateway_pid=""
cleanup() {
    if [[ -n $gateway_pid ]]; then
        kill -TERM "$gateway_pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$gateway_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$gateway_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

load_before=$(load_average)

read -r plain_port tls_port <<<"$(free_ports 2)"
certs="$work/certs"
set_no_admin_args "$binary"
"$binary" serve --plaintext-address "127.0.0.1:$plain_port" --tls-address "127.0.0.1:$tls_port" "${NO_ADMIN_ARGS[@]}" \
    --dev-certs-dir "$certs" --model simple --workers-per-model 2 --log-level warning \
    >"$work/gateway.log" 2>&1 &
gateway_pid=$!
wait_for_port "$plain_port" && wait_for_port "$tls_port" || { cat "$work/gateway.log" >&2; exit 1; }

# Prints "success_count fail_count" of model simple from the gateway's ModelStatistics (h2c).
model_counts() {
    timeout 30 .venv/bin/python - "127.0.0.1:$plain_port" <<'PY'
import sys, tritonclient.grpc as triton
client = triton.InferenceServerClient(sys.argv[1])
s = client.get_inference_statistics("simple").model_stats[0].inference_stats
print(s.success.count, s.fail.count)
PY
}
# Waits (bounded) until the model is ready (its workers said HELLO).
timeout 60 .venv/bin/python - "127.0.0.1:$plain_port" <<'PY' || { cat "$work/gateway.log" >&2; exit 1; }
import sys, time, tritonclient.grpc as triton
client = triton.InferenceServerClient(sys.argv[1])
for _ in range(500):
    try:
        if client.is_model_ready("simple"):
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(1)
PY

worker_pids() { pgrep -P "$gateway_pid" | sort -n | tr '\n' ' '; }
workers_at_start=$(worker_pids)

rows=()
# $1 transport name, $2 concurrency
pa_run() {
    local transport=$1 c=$2 csv="$work/pa-$1-c$2.csv" log="$work/pa-$1-c$2.log"
    local cmd=(-m simple -i grpc --concurrency-range "$c" --measurement-interval "$measurement_ms"
               -s "$stability" --max-trials "$max_trials" -f "$csv")
    if [[ $transport == tls ]]; then
        cmd+=(-u "localhost:$tls_port" --ssl-grpc-use-ssl --ssl-grpc-root-certifications-file "$certs/ca.pem")
    else
        cmd+=(-u "127.0.0.1:$plain_port")
    fi
    local workers gw_before wk_before gw_after wk_after counts_before counts_after status=ok
    workers=$(worker_pids)
    counts_before=$(model_counts)
    gw_before=$(cpu_ticks_of "$gateway_pid"); wk_before=$(cpu_ticks_sum $workers)
    timeout "$run_timeout" "${perf_analyzer[@]}" "${cmd[@]}" >"$log" 2>&1 || status="failed (exit $?)"
    gw_after=$(cpu_ticks_of "$gateway_pid"); wk_after=$(cpu_ticks_sum $workers)
    counts_after=$(model_counts)
    [[ "$(worker_pids)" == "$workers" ]] || status="$status; worker pids changed during the run"
    read -r ok0 fail0 <<<"$counts_before"; read -r ok1 fail1 <<<"$counts_after"
    local n=$((ok1 - ok0)) fails=$((fail1 - fail0))
    ((fails == 0)) || status="$status; $fails failed inferences"
    grep -q 'Failed to obtain stable measurement\|error\|Error' "$log" && status="$status; see log" || true
    local ips="n/a" p50="n/a" p99="n/a"
    if [[ -s $csv ]]; then
        # CSV columns by header name; latencies are in microseconds.
        read -r ips p50 p99 < <(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
            NR == 2 { printf "%.1f %.0f %.0f\n", $col["Inferences/Second"], $col["p50 latency"], $col["p99 latency"] }' "$csv")
    fi
    local gw_us wk_us total_us
    read -r gw_us wk_us total_us < <(awk -v g=$((gw_after - gw_before)) -v w=$((wk_after - wk_before)) -v hz="$clk_tck" -v n="$n" \
        'BEGIN { if (n == 0) { print "n/a n/a n/a"; exit } printf "%.1f %.1f %.1f\n", g/hz/n*1e6, w/hz/n*1e6, (g+w)/hz/n*1e6 }')
    echo "$transport c=$c: $ips infer/s, p50 $p50 us, p99 $p99 us, CPU/inference gateway $gw_us us + workers $wk_us us ($n inferences; $status)" >&2
    rows+=("| $transport | $c | $ips | $p50 | $p99 | $gw_us | $wk_us | $total_us | $n | $status |")
    cp "$log" "/tmp/perf-analyzer-last-$transport-c$c.log" 2>/dev/null || true
}

for c in $concurrencies; do
    for transport in h2c tls; do
        pa_run "$transport" "$c"
    done
done
load_after=$(load_average)
workers_at_end=$(worker_pids)

dirty=""
[[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] && dirty=" (working tree has uncommitted changes to tracked files)"
table="| transport | concurrency | infer/s | p50 µs | p99 µs | gateway CPU µs/infer | workers CPU µs/infer | total CPU µs/infer | inferences counted | status |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---|
$(printf '%s\n' "${rows[@]}")"
section="## Inference: perf_analyzer

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
- commit: $(git rev-parse --short HEAD)$dirty; binary: \`$binary\` ($(stat -c '%y' "$binary" | cut -d. -f1))
- machine: $(nproc) cores, $(lscpu | grep 'Model name' | sed 's/Model name: *//'); shared with other builds
- load average (1/5/15 min): before $load_before, after $load_after
- server: \`switchyard serve --plaintext-address 127.0.0.1:P --tls-address 127.0.0.1:P2 --dev-certs-dir DIR --model simple --workers-per-model 2 --log-level warning\` (worker pids at start: $workers_at_start; at end: $workers_at_end)
- commands (perf_analyzer from tritonclient 2.41 in .venv, \`LD_LIBRARY_PATH=.venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib\`):
  - h2c: \`perf_analyzer -m simple -i grpc -u 127.0.0.1:P --concurrency-range C --measurement-interval $measurement_ms -s $stability --max-trials $max_trials -f out.csv\`
  - TLS: \`perf_analyzer -m simple -i grpc -u localhost:P2 --ssl-grpc-use-ssl --ssl-grpc-root-certifications-file DIR/ca.pem --concurrency-range C --measurement-interval $measurement_ms -s $stability --max-trials $max_trials -f out.csv\`
- stability: \`-s $stability\` (latency and throughput of 3 consecutive ${measurement_ms} ms windows within ±$stability %); the default 10 % is not reachable on this shared, loaded machine.
- CPU per inference = Δ(utime+stime) (/proc/PID/stat, CLK_TCK=$clk_tck) over the whole perf_analyzer run (warm-up and all windows) / Δ successful inferences in the gateway's ModelStatistics over the same interval; workers = the gateway's children (\`pgrep -P\`). perf_analyzer's own CPU is not counted. Batch size 1, inputs INT32 [1,16] ×2.
- script: \`loadtest/perf-analyzer.sh\`

$table
"
echo "$section"
if [[ -n "$results_file" ]]; then
    [[ -f "$results_file" ]] || printf '# Load-test results\n' >"$results_file"
    printf '\n%s' "$section" >>"$results_file"
fi
