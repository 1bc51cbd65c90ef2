#!/usr/bin/env bash
# What authentication costs per ModelInfer (issue 11), every credential kind in one run, rounds
# interleaved: the gateway's malloc and pthread_mutex_lock calls (perf uprobes) and the CPU of
# the gateway and its worker together (/proc, utime+stime), per call, for
#   none      h2c, no auth policy
#   apikey    h2c, an API key (x-api-key) mapped to a principal
#   jwt       h2c, an RS256 access token (authorization: Bearer JWT) verified against a JWKS
#   tls       mutual TLS, a client certificate, no auth policy
#   mtls      mutual TLS, the client certificate mapped to a principal
#   none+apikey, none+jwt  the `none` gateway receiving the same headers as apikey and jwt, so
#             that what parsing the header costs shows apart from what checking it costs
# The client is grpcio (h2load cannot present a certificate), one channel per run, sequential
# calls; per call = marginal counts, (count of a run of N − count of a run of N/5) ÷ (N − N/5),
# so the handshake and the first verification of a token cancel.
#
# usage: loadtest/auth-cost.sh [BINARY]   (default .build-release/release/switchyard)
# environment: N=10000 ROUNDS=3. Needs root (perf probe), linux-perf, the .venv (scripts/bootstrap.sh).
set -euo pipefail
binary=$(realpath -m "${1:-.build-release/release/switchyard}")
cd "$(dirname "$0")/.."
source loadtest/lib.sh
n=${N:-10000}
rounds=${ROUNDS:-3}
small=$((n / 5))
gateways=(none apikey jwt tls mtls)
kinds=(none none+apikey apikey none+jwt jwt tls mtls)
gateway_of() { if [[ $1 == none+* ]]; then echo none; else echo "$1"; fi; }  # kind → the gateway it calls
ensure_apt_packages linux-perf procps
[[ -x .venv/bin/python ]] || scripts/bootstrap.sh --python
probe_mallocs_and_locks "$binary"

work=$(mktemp -d /tmp/auth-cost.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT INT TERM

# An RS256 key pair: the JWKS for the gateway, a token for the client.
.venv/bin/python - "$work" <<'PY'
import json, sys, time
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
work = sys.argv[1]
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
jwk.update(kid="cost-1", alg="RS256")
open(f"{work}/jwks.json", "w").write(json.dumps({"keys": [jwk]}))
claims = {"iss": "https://login.example.test/", "aud": "switchyard", "sub": "cost", "exp": int(time.time()) + 3600, "scope": "models.infer"}
open(f"{work}/token", "w").write(jwt.encode(claims, key, algorithm="RS256", headers={"kid": "cost-1"}))
PY
api_key=sy_cost_4b1d6e0f9a2c8e73
api_key_sha=$(printf %s "$api_key" | sha256sum | cut -c1-64)

declare -A port pid
for kind in "${gateways[@]}"; do
    read -r port[$kind] admin < <(free_ports 2)
    {
        printf 'models:\n  simple:\n    versions: [{version: "1", workers: 1}]\n'
        case $kind in
            apikey) printf 'auth:\n  api_keys:\n    - {principal: caller, sha256: "%s"}\n' "$api_key_sha" ;;
            jwt) printf 'auth:\n  jwt:\n    jwks_file: %s\n    issuer: https://login.example.test/\n    audiences: [switchyard]\n    rules: [{principal: caller, scope: models.infer}]\n' "$work/jwks.json" ;;
            mtls) printf 'auth:\n  client_certificates:\n    - {principal: caller, uri: "spiffe://switchyard/*"}\n' ;;
        esac
        case $kind in
            apikey | jwt | mtls)
                printf '  anonymous: {plaintext: false, tls: false}\nprincipals:\n  caller: {models: ["simple"], methods: [inference]}\n' ;;
        esac
    } >"$work/$kind.yaml"
    case $kind in
        none | apikey | jwt) listeners=(--plaintext-address "127.0.0.1:${port[$kind]}" --tls-address none) ;;
        *) listeners=(--plaintext-address none --tls-address "127.0.0.1:${port[$kind]}") ;;
    esac
    "$binary" serve --config "$work/$kind.yaml" "${listeners[@]}" --admin-address "127.0.0.1:$admin" \
        --dev-certs-dir "$work/certs" --log-level warning --access-log off >"$work/$kind.log" 2>&1 &
    pid[$kind]=$!; pids+=("${pid[$kind]}")
    wait_for_port "${port[$kind]}" || { cat "$work/$kind.log" >&2; exit 1; }
done
sleep 3  # workers ready

run() {  # kind count: one channel, `count` sequential ModelInfer calls
    .venv/bin/python - "$work" "${1#none+}" "${port[$(gateway_of "$1")]}" "$2" "$api_key" <<'PY'
import sys
import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc
work, kind, port, count, api_key = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
read = lambda name: open(f"{work}/certs/{name}", "rb").read()
if kind in ("tls", "mtls"):
    credentials = grpc.ssl_channel_credentials(read("ca.pem"), read("client-key.pem"), read("client.pem"))
    channel = grpc.secure_channel(f"localhost:{port}", credentials)
else:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
metadata = {
    "apikey": [("x-api-key", api_key)],
    "jwt": [("authorization", "Bearer " + open(f"{work}/token").read())],
}.get(kind, [])
stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
request = service_pb2.ModelInferRequest(model_name="simple")
for name in ("INPUT0", "INPUT1"):
    request.inputs.add(name=name, datatype="INT32", shape=[1, 16])
    request.raw_input_contents.append(np.arange(16, dtype=np.int32).tobytes())
for _ in range(count):
    stub.ModelInfer(request, metadata=metadata, timeout=10)
channel.close()
PY
}
tree_ticks() {  # the gateway and its workers
    cpu_ticks_sum "${pid[$1]}" $(pgrep -P "${pid[$1]}" || true)
}
counted() {  # kind count → "mallocs locks" (under uprobes, which slow every malloc: no CPU here)
    count_mallocs_and_locks "${pid[$(gateway_of "$1")]}" run "$1" "$2"
}
timed() {  # kind count → CPU ticks of the gateway and its worker over the run, without probes
    local before after gateway
    gateway=$(gateway_of "$1")
    before=$(tree_ticks "$gateway")
    run "$1" "$2"
    after=$(tree_ticks "$gateway")
    echo $((after - before))
}
declare -A malloc lock cpu
for kind in "${kinds[@]}"; do run "$kind" 500; done  # warm-up
hz=$(getconf CLK_TCK)
for round in $(seq 1 "$rounds"); do
    for kind in "${kinds[@]}"; do
        read -r m1 l1 < <(counted "$kind" "$small")
        read -r m2 l2 < <(counted "$kind" "$n")
        t1=$(timed "$kind" "$small")
        t2=$(timed "$kind" "$n")
        malloc[$kind]+=" $(per_call "$m1" "$m2" "$small" "$n")"
        lock[$kind]+=" $(per_call "$l1" "$l2" "$small" "$n")"
        # µs of CPU per call: ticks × (1e6 / hz) per call.
        cpu[$kind]+=" $(awk -v a="$t1" -v b="$t2" -v x="$small" -v y="$n" -v hz="$hz" 'BEGIN { printf "%.1f", (b - a) * 1e6 / hz / (y - x) }')"
    done
done
med() { tr ' ' '\n' <<<"$1" | grep -v '^$' | median; }
echo "| gateway | malloc per call (rounds) | mutex locks per call | CPU µs per call, gateway + worker (rounds) | CPU vs none (medians) |"
echo "|---|---|---|---|---|"
base=$(med "${cpu[none]}")
for kind in "${kinds[@]}"; do
    ratio=$(awk -v a="$(med "${cpu[$kind]}")" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
    echo "| $kind |${malloc[$kind]} |${lock[$kind]} |${cpu[$kind]} | ${ratio}× |"
done
echo
echo "binary: $binary ($(sha256sum "$binary" | cut -c1-12)); N=$n, small run N/5, grpcio, sequential calls; $(nproc) cores; load $(load_average)"
