#!/usr/bin/env bash
# Real models through the gateway (issue 13): the iris classifier and the 3-layer 256-wide MLP
# (models/make_models.py) served by the native ONNX backend (model_file) and by the Python
# onnxruntime worker (backend: command), side by side in one gateway, at batch 1 and 32, driven
# by `switchyard loadtest`; and onnxruntime called in-process from Python as the floor.
# Reports inferences/s, CPU per inference (gateway and workers, /proc), p50/p99, and compute per
# batch from ModelStatistics (native) against onnxruntime's own session.run time.
#
# usage: loadtest/models-compare.sh [BINARY]   (default .build-release/release/switchyard)
# environment: DURATION=10s CONCURRENCY_1=8 CONCURRENCY_32=2. Needs the .venv with
# Tests/interop/requirements.txt and workers/python/requirements.txt (scripts/bootstrap.sh --python).
set -euo pipefail
binary=$(realpath -m "${1:-.build-release/release/switchyard}")
cd "$(dirname "$0")/.."
source loadtest/lib.sh
duration=${DURATION:-10s}
[[ -x "$binary" ]] || { echo "no executable at $binary" >&2; exit 1; }
[[ -x .venv/bin/python ]] || scripts/bootstrap.sh --python
python=$PWD/.venv/bin/python
repo=$PWD

work=$(mktemp -d /tmp/models-compare.XXXXXX)
gateway_pid=""
cleanup() { [[ -n $gateway_pid ]] && kill -TERM "$gateway_pid" 2>/dev/null; sleep 1; rm -rf "$work"; }
trap cleanup EXIT INT TERM

"$python" models/make_models.py "$work/models" >/dev/null
read -r port admin <<<"$(free_ports 2)"
{
    echo "models:"
    for model in iris mlp; do
        version=1
        echo "  ${model}_native:"
        echo "    versions: [{version: \"1\", model_file: models/$model/$version/model.onnx, workers: 1, max_batch_size: 32}]"
        echo "  ${model}_python:"
        echo "    versions:"
        echo "      - version: \"1\""
        echo "        workers: 1"
        echo "        max_batch_size: 32"
        echo "        backend: {command: [$python, $repo/workers/python/worker.py, --model, models/$model/$version/model.onnx, --threads, \"1\"]}"
    done
} >"$work/models.yaml"
taskset -c 0 "$binary" serve --config "$work/models.yaml" --plaintext-address "127.0.0.1:$port" --tls-address none \
    --admin-address "127.0.0.1:$admin" --threads 1 --log-level warning --access-log off >"$work/gateway.log" 2>&1 &
gateway_pid=$!
wait_for_port "$port" || { cat "$work/gateway.log" >&2; exit 1; }
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null && break
    sleep 0.2
done

tree_ticks() { cpu_ticks_sum "$gateway_pid" $(pgrep -P "$gateway_pid" || true); }
hz=$(getconf CLK_TCK)

statistics() {  # model → "executions compute_ns" of version 1, from ModelStatistics
    "$python" - "$port" "$1" <<'PY'
import sys
import tritonclient.grpc as triton
stats = triton.InferenceServerClient(f"127.0.0.1:{sys.argv[1]}").get_inference_statistics(sys.argv[2], "1").model_stats[0]
print(stats.execution_count, stats.inference_stats.compute_infer.ns)
PY
}

printf '| model | backend | batch | inferences/s | CPU µs per inference (gateway + worker) | p50 ms | p99 ms | compute µs per batch (worker) |\n'
printf '|---|---|---:|---:|---:|---:|---:|---:|\n'
declare -A rate
for model in iris mlp; do
    for batch in 1 32; do
        concurrency=$([[ $batch == 1 ]] && echo "${CONCURRENCY_1:-8}" || echo "${CONCURRENCY_32:-2}")
        for backend in native python; do
            name="${model}_${backend}"
            read -r executions0 compute0 <<<"$(statistics "$name")"
            before=$(tree_ticks)
            taskset -c 1 "$binary" loadtest -u "127.0.0.1:$port" -m "$name" -b "$batch" --concurrency-range "$concurrency" \
                --duration "$duration" --warmup 2s --threads 1 --quiet --json "$work/$name-$batch.json" >/dev/null
            after=$(tree_ticks)
            read -r executions1 compute1 <<<"$(statistics "$name")"
            read -r calls_per_second p50 p99 <<<"$("$python" -c "
import json, sys
step = json.load(open('$work/$name-$batch.json'))['steps'][0]
assert step['calls'] == step['succeeded'], step['errors']
print(step['throughput'], step['latency']['p50'], step['latency']['p99'])")"
            seconds=${duration%s}
            inferences=$(awk -v r="$calls_per_second" -v b="$batch" 'BEGIN { printf "%.0f", r * b }')
            rate[$name-$batch]=$inferences
            cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v r="$inferences" -v s="$seconds" 'BEGIN { printf "%.1f", t * 1e6 / hz / (r * (s + 2)) }')
            compute=$(awk -v c=$((compute1 - compute0)) -v e=$((executions1 - executions0)) 'BEGIN { printf "%.1f", (e > 0 ? c / e / 1000 : 0) }')
            printf '| %s | %s | %d | %s | %s | %.3f | %.3f | %s |\n' "$model" "$backend" "$batch" "$inferences" "$cpu" "$p50" "$p99" "$compute"
        done
    done
done

echo
echo "onnxruntime in-process (one thread, session.run on the same batches), the floor:"
echo
printf '| model | batch | inferences/s | µs per batch |\n|---|---:|---:|---:|\n'
taskset -c 1 "$python" - "$work/models" <<'PY'
import sys, time
import numpy as np
import onnxruntime
options = onnxruntime.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
for model in ("iris", "mlp"):
    session = onnxruntime.InferenceSession(f"{sys.argv[1]}/{model}/1/model.onnx", options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    width = feed.shape[1]
    for batch in (1, 32):
        x = np.random.default_rng(0).random((batch, width), dtype=np.float32)
        for _ in range(200):
            session.run(None, {feed.name: x})
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < 3:
            session.run(None, {feed.name: x})
            runs += 1
        elapsed = time.perf_counter() - start
        print(f"| {model} | {batch} | {runs * batch / elapsed:.0f} | {elapsed / runs * 1e6:.1f} |")
PY
echo
for model in iris mlp; do
    for batch in 1 32; do
        echo "$model batch $batch: native ÷ python worker = $(awk -v a="${rate[${model}_native-$batch]}" -v b="${rate[${model}_python-$batch]}" 'BEGIN { printf "%.2f", a / b }')×"
    done
done
echo
echo "binary: $binary ($(sha256sum "$binary" | cut -c1-12)); gateway and workers on core 0, driver and onnxruntime on core 1; duration $duration; $(nproc) cores; load $(load_average)"
