#!/usr/bin/env bash
# What routing costs per ModelInfer (issue 10): the gateway's malloc and pthread_mutex_lock
# calls (perf uprobes) and its CPU per call, for `simple` at versions 1 and 2 with
#   none    no route: unversioned requests go to the newest version
#   draw    a 90/10 route without a sticky key: each call drawn by weight
#   sticky  a 90/10 route with sticky_key x-user-id, every request carrying x-user-id
#   none+key  no route, every request carrying the same x-user-id metadata (what parsing the
#           client's metadata costs, apart from routing by it)
#   apikey  no route, an `auth` policy with one API key, every request carrying it in x-api-key
#           (issue 11); compare with none+apikey, the same header sent to a gateway without auth
#   none+apikey  no route, no auth, every request carrying the x-api-key header
# in one run, rounds interleaved. Per call = marginal: (count of a run of N − count of a run of
# N/5) ÷ (N − N/5), so the TLS-free h2c connection setup cancels. Routes come from a
# configuration file (serve --config) when the binary has it, else from POST /routes/simple.
#
# usage: loadtest/routing-cost.sh [BINARY]   (default .build-release/release/switchyard)
# environment: N=20000 ROUNDS=3. Needs root (perf probe), linux-perf, nghttp2-client.
set -euo pipefail
binary=$(realpath -m "${1:-.build-release/release/switchyard}")
cd "$(dirname "$0")/.."
source loadtest/lib.sh
n=${N:-20000}
rounds=${ROUNDS:-3}
small=$((n / 5))
ensure_apt_packages nghttp2-client linux-perf procps
probe_mallocs_and_locks "$binary"

work=$(mktemp -d /tmp/routing-cost.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT INT TERM
python3 loadtest/grpc_bodies.py body "$work/body"

declare -A port admin pid
key=sy_loadtest_3f9a1c7e5b2d4f60a8e6c4b2d0f1e3a5
for kind in none draw sticky apikey; do
    read -r port[$kind] admin[$kind] < <(free_ports 2)
    args=(serve --plaintext-address "127.0.0.1:${port[$kind]}" --tls-address none --admin-address "127.0.0.1:${admin[$kind]}"
          --dev-certs-dir "$work/certs" --workers-per-model 1 --log-level warning --access-log off)
    if [[ $kind == none ]]; then
        args+=(--model simple:1 --model simple:2)
    elif [[ $kind == apikey ]]; then
        printf 'models:\n  simple:\n    versions:\n      - version: "1"\n      - version: "2"\nauth:\n  api_keys:\n    - {principal: loadtest, sha256: "%s"}\n  anonymous: {plaintext: false}\nprincipals:\n  loadtest: {models: ["simple"], methods: [inference]}\n' \
            "$(printf %s "$key" | sha256sum | cut -d' ' -f1)" >"$work/$kind.yaml"
        args+=(--config "$work/$kind.yaml")
    else
        sticky=""; [[ $kind == sticky ]] && sticky="      sticky_key: x-user-id"
        printf 'models:\n  simple:\n    versions:\n      - version: "1"\n      - version: "2"\n    route:\n      variants:\n        - {version: "1", weight: 90}\n        - {version: "2", weight: 10}\n%s\n' "$sticky" >"$work/$kind.yaml"
        args+=(--config "$work/$kind.yaml")
    fi
    "$binary" "${args[@]}" >"$work/$kind.log" 2>&1 &
    pid[$kind]=$!; pids+=("${pid[$kind]}")
done
for kind in none draw sticky apikey; do wait_for_port "${port[$kind]}" || { cat "$work/$kind.log" >&2; exit 1; }; done
sleep 3  # workers ready

run() {  # kind count [header]
    local kind=$1 count=$2 extra=()
    [[ $kind == sticky || $kind == none+key ]] && extra=(-H 'x-user-id: user-4711')
    [[ $kind == apikey || $kind == none+apikey ]] && extra=(-H "x-api-key: $key")
    timeout 300 h2load -n "$count" -c 16 -m 16 -d "$work/body" -H 'content-type: application/grpc' -H 'te: trailers' \
        -H ':method: POST' "${extra[@]}" "http://127.0.0.1:${port[${kind%%+*}]}/inference.GRPCInferenceService/ModelInfer" >"$work/h2load.txt"
    grep -q " $count succeeded, 0 failed" "$work/h2load.txt" || { cat "$work/h2load.txt" >&2; exit 1; }
}
counted() {  # kind count → "mallocs locks"
    count_mallocs_and_locks "${pid[${1%%+*}]}" run "$1" "$2"
}
declare -A malloc lock cpu
for kind in none draw sticky apikey; do run "$kind" 2000; done  # warm-up
for round in $(seq 1 "$rounds"); do
    for kind in none none+key draw sticky none+apikey apikey; do
        read -r m1 l1 < <(counted "$kind" "$small")
        read -r m2 l2 < <(counted "$kind" "$n")
        before=$(cpu_ticks_of "${pid[${kind%%+*}]}"); run "$kind" "$n"; after=$(cpu_ticks_of "${pid[${kind%%+*}]}")
        malloc[$kind]+=" $(per_call "$m1" "$m2" "$small" "$n")"
        lock[$kind]+=" $(per_call "$l1" "$l2" "$small" "$n")"
        cpu[$kind]+=" $(awk -v t=$((after - before)) -v y="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t * 1e6 / hz / y }')"
    done
done
# Spread: the versions that served the sticky key and the draws.
echo "| route | malloc per call (rounds) | mutex locks per call | gateway CPU µs per call |"
echo "|---|---|---|---|"
for kind in none none+key draw sticky none+apikey apikey; do echo "| $kind |${malloc[$kind]} |${lock[$kind]} |${cpu[$kind]} |"; done
echo
echo "binary: $binary ($(sha256sum "$binary" | cut -c1-12)); N=$n, small run N/5, h2load -c 16 -m 16 over h2c; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
