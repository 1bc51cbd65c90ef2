#!/usr/bin/env bash
# What mapping a client certificate to a principal costs per ModelInfer (issue 11): the
# gateway's malloc and pthread_mutex_lock calls (perf uprobes) per call over mutual TLS, for
#   mtls      an `auth` policy whose client_certificates rule maps the client's certificate
#             (spiffe://switchyard/dev-client) to a principal; anonymous access off
#   mtls+none the same listener, client and certificate, no auth policy
# in one run, rounds interleaved. The client is grpcio (h2load cannot present a certificate),
# one channel per run, so one TLS handshake per run; per call = marginal counts, (count of a run
# of N − count of a run of N/5) ÷ (N − N/5), so the handshake cancels.
#
# usage: loadtest/mtls-cost.sh [BINARY]   (default .build-release/release/switchyard)
# environment: N=5000 ROUNDS=3. Needs root (perf probe), linux-perf, the .venv (scripts/bootstrap.sh).
set -euo pipefail
binary=$(realpath -m "${1:-.build-release/release/switchyard}")
cd "$(dirname "$0")/.."
source loadtest/lib.sh
n=${N:-5000}
rounds=${ROUNDS:-3}
small=$((n / 5))
ensure_apt_packages linux-perf procps
[[ -x .venv/bin/python ]] || scripts/bootstrap.sh --python
probe_mallocs_and_locks "$binary"

work=$(mktemp -d /tmp/mtls-cost.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT INT TERM

declare -A port pid
for kind in mtls none; do
    read -r port[$kind] admin < <(free_ports 2)
    {
        printf 'models:\n  simple:\n    versions: [{version: "1", workers: 1}]\n'
        if [[ $kind == mtls ]]; then
            printf 'auth:\n  client_certificates:\n    - {principal: service, uri: "spiffe://switchyard/*"}\n  anonymous: {plaintext: false, tls: false}\n'
            printf 'principals:\n  service: {models: ["simple"], methods: [inference]}\n'
        fi
    } >"$work/$kind.yaml"
    "$binary" serve --config "$work/$kind.yaml" --plaintext-address none --tls-address "127.0.0.1:${port[$kind]}" \
        --admin-address "127.0.0.1:$admin" --dev-certs-dir "$work/certs" --log-level warning --access-log off >"$work/$kind.log" 2>&1 &
    pid[$kind]=$!; pids+=("${pid[$kind]}")
    wait_for_port "${port[$kind]}" || { cat "$work/$kind.log" >&2; exit 1; }
done
sleep 3  # workers ready

run() {  # kind count: one channel, `count` sequential ModelInfer calls over mTLS
    .venv/bin/python - "$work/certs" "${port[$1]}" "$2" <<'PY'
import sys
import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc
certs, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
read = lambda name: open(f"{certs}/{name}", "rb").read()
credentials = grpc.ssl_channel_credentials(read("ca.pem"), read("client-key.pem"), read("client.pem"))
channel = grpc.secure_channel(f"localhost:{port}", credentials)
stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
request = service_pb2.ModelInferRequest(model_name="simple")
for name in ("INPUT0", "INPUT1"):
    request.inputs.add(name=name, datatype="INT32", shape=[1, 16])
    request.raw_input_contents.append(np.arange(16, dtype=np.int32).tobytes())
for _ in range(count):
    stub.ModelInfer(request, timeout=10)
channel.close()
PY
}
counted() {  # kind count → "mallocs locks"
    count_mallocs_and_locks "${pid[$1]}" run "$1" "$2"
}
declare -A malloc lock
for kind in mtls none; do run "$kind" 500; done  # warm-up
for round in $(seq 1 "$rounds"); do
    for kind in none mtls; do
        read -r m1 l1 < <(counted "$kind" "$small")
        read -r m2 l2 < <(counted "$kind" "$n")
        malloc[$kind]+=" $(per_call "$m1" "$m2" "$small" "$n")"
        lock[$kind]+=" $(per_call "$l1" "$l2" "$small" "$n")"
    done
done
echo "| gateway | malloc per call (rounds) | mutex locks per call |"
echo "|---|---|---|"
for kind in none mtls; do echo "| $kind |${malloc[$kind]} |${lock[$kind]} |"; done
echo
echo "binary: $binary ($(sha256sum "$binary" | cut -c1-12)); N=$n, small run N/5, grpcio over mTLS, sequential calls; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
