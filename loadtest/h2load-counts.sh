#!/usr/bin/env bash
# Exact per-request costs of one grpc.health.v1.Health/Check over TLS that machine load cannot
# move: calls to malloc, swift_retain, swift_release, swift_bridgeObjectRetain and
# swift_bridgeObjectRelease made by the gateway process, counted with perf uprobes while h2load
# sends N requests at -c 16 -m 16. Complements loadtest/h2load-health.sh, whose CPU times are
# noisy on shared machines.
#
# usage: loadtest/h2load-counts.sh [BINARY...]     (default .build-release/release/switchyard)
# environment: N=10000 requests per binary. Needs root (perf probe) and linux-perf.
set -euo pipefail
binaries=()
for binary in "$@"; do binaries+=("$(realpath -m "$binary")"); done
cd "$(dirname "$0")/.."
source loadtest/lib.sh
[[ ${#binaries[@]} -gt 0 ]] || binaries=(.build-release/release/switchyard)
n=${N:-10000}
ensure_apt_packages nghttp2-client linux-perf procps

libc=$(ldd "${binaries[0]}" | awk '/libc.so.6/ { print $3 }')
libswiftcore=$(ldd "${binaries[0]}" | awk '/libswiftCore.so/ { print $3 }')
perf probe -q -x "$libc" malloc 2>/dev/null || true
for symbol in swift_retain swift_release swift_bridgeObjectRetain swift_bridgeObjectRelease; do
    perf probe -q -x "$libswiftcore" "$symbol" 2>/dev/null || true
done
events=probe_libc:malloc,probe_libswiftCore:swift_retain,probe_libswiftCore:swift_release,probe_libswiftCore:swift_bridgeObjectRetain,probe_libswiftCore:swift_bridgeObjectRelease

work=$(mktemp -d /tmp/h2load-counts.XXXXXX)
gateway_pid="" stat_pid=""
cleanup() {
    [[ -n "$stat_pid" ]] && kill -INT "$stat_pid" 2>/dev/null || true
    [[ -n "$gateway_pid" ]] && kill -TERM "$gateway_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
printf '\x00\x00\x00\x00\x00' >"$work/body"
headers=(-H 'content-type: application/grpc' -H 'te: trailers' -H ':method: POST')

echo "| binary | malloc | swift_retain | swift_release | bridgeObjectRetain | bridgeObjectRelease |"
echo "|---|---:|---:|---:|---:|---:|"
for binary in "${binaries[@]}"; do
    plain_port=$(free_port); tls_port=$(free_port)
    set_no_admin_args "$binary"
    "$binary" serve --plaintext-address "127.0.0.1:$plain_port" --tls-address "127.0.0.1:$tls_port" "${NO_ADMIN_ARGS[@]}" \
        --dev-certs-dir "$work/certs" --model simple --workers-per-model 1 --log-level warning >"$work/gateway.log" 2>&1 &
    gateway_pid=$!
    wait_for_port "$tls_port" || { cat "$work/gateway.log" >&2; exit 1; }
    url="https://127.0.0.1:$tls_port/grpc.health.v1.Health/Check"
    timeout 120 h2load -n 2000 -c 16 -m 16 -d "$work/body" "${headers[@]}" "$url" >/dev/null  # warm-up
    perf stat -x, -e "$events" -p "$gateway_pid" -o "$work/counts.txt" &
    stat_pid=$!
    sleep 0.5
    timeout 300 h2load -n "$n" -c 16 -m 16 -d "$work/body" "${headers[@]}" "$url" >"$work/h2load.txt"
    grep -q " $n succeeded, 0 failed" "$work/h2load.txt" || { cat "$work/h2load.txt" >&2; exit 1; }
    sleep 0.5
    kill -INT "$stat_pid"; wait "$stat_pid" || true; stat_pid=""
    kill -TERM "$gateway_pid"; wait "$gateway_pid" || true; gateway_pid=""
    awk -F, -v n="$n" -v name="$binary" '
        /probe/ { value[$3] = $1 / n }
        END { printf "| `%s` | %.1f | %.1f | %.1f | %.1f | %.1f |\n", name, value["probe_libc:malloc"],
              value["probe_libswiftCore:swift_retain"], value["probe_libswiftCore:swift_release"],
              value["probe_libswiftCore:swift_bridgeObjectRetain"], value["probe_libswiftCore:swift_bridgeObjectRelease"] }' "$work/counts.txt"
done
