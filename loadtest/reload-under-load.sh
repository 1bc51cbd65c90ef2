#!/usr/bin/env bash
# Configuration reloads under load (issue 10): h2load drives unversioned ModelInfer calls to
# `simple` at c16×m16 while the configuration file is rewritten and reloaded every second, each
# time changing the variants: version 1's worker count 1 → 2 (a replacement pool), a version 3
# added with all the weight, version 3 removed again, back to 1 worker. The same load runs
# without reloads first, in the same gateway, so the two can be read side by side. Prints
# h2load's calls, failures and latency for both, and the reloads applied.
#
# usage: loadtest/reload-under-load.sh [BINARY]   (default .build-release/release/switchyard)
# environment: SECONDS_PER_RUN=20. Needs nghttp2-client.
set -euo pipefail
binary=$(realpath -m "${1:-.build-release/release/switchyard}")
cd "$(dirname "$0")/.."
source loadtest/lib.sh
duration=${SECONDS_PER_RUN:-20}
ensure_apt_packages nghttp2-client

work=$(mktemp -d /tmp/reload-load.XXXXXX)
gateway=""
cleanup() { [[ -n $gateway ]] && kill -TERM "$gateway" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
python3 loadtest/grpc_bodies.py body "$work/body"

config() {  # WORKERS_OF_1 WEIGHTS… as version:weight; versions served = those weighted
    local workers=$1; shift
    {
        printf 'models:\n  simple:\n    versions:\n'
        for pair in "$@"; do
            local version=${pair%%:*} count=1
            [[ $version == 1 ]] && count=$workers
            printf '      - {version: "%s", workers: %s}\n' "$version" "$count"
        done
        printf '    route:\n      variants:\n'
        for pair in "$@"; do printf '        - {version: "%s", weight: %s}\n' "${pair%%:*}" "${pair##*:}"; done
    } >"$work/config.yaml.new"
    mv "$work/config.yaml.new" "$work/config.yaml"
}

read -r port admin < <(free_ports 2)
config 1 1:100 2:0
"$binary" serve --config "$work/config.yaml" --plaintext-address "127.0.0.1:$port" --tls-address none \
    --admin-address "127.0.0.1:$admin" --log-level warning --access-log off >"$work/gateway.log" 2>&1 &
gateway=$!
wait_for_port "$port" || { cat "$work/gateway.log" >&2; exit 1; }
until curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null; do sleep 0.1; done

load() {  # label
    timeout $((duration + 60)) h2load -D "$duration" -c 16 -m 16 -d "$work/body" -H 'content-type: application/grpc' \
        -H 'te: trailers' -H ':method: POST' "http://127.0.0.1:$port/inference.GRPCInferenceService/ModelInfer" >"$work/$1.txt"
    # A gRPC failure is an HTTP 200 with a non-zero grpc-status: count those from the gateway's metrics.
    echo "== $1"
    grep -E "requests:|status codes:|time for request:" "$work/$1.txt"
}

metric() {  # NAME [SUBSTRING…]: the sum of the series of NAME whose labels contain every SUBSTRING
    local name=$1; shift
    curl -sf "http://127.0.0.1:$admin/metrics" | awk -v name="$name" -v want="$*" '
        index($0, name "{") == 1 || index($0, name " ") == 1 {
            n = split(want, parts, " "); ok = 1
            for (i = 1; i <= n; i++) if (index($0, parts[i]) == 0) ok = 0
            if (ok) sum += $NF
        } END { printf "%d\n", sum }'
}

load warmup >/dev/null
load "without reloads"
( deadline=$((SECONDS + duration - 1))
  step=0
  while ((SECONDS < deadline)); do
      sleep 1
      case $((step % 4)) in
          0) config 2 1:100 2:0 ;;          # replace version 1's pool (1 → 2 workers)
          1) config 2 1:0 2:0 3:100 ;;      # add version 3, move everything to it
          2) config 2 1:100 2:0 ;;          # remove version 3
          3) config 1 1:100 2:0 ;;          # replace version 1's pool again (2 → 1 worker)
      esac
      curl -sf -X POST "http://127.0.0.1:$admin/config/reload" >/dev/null || echo "reload refused" >&2
      step=$((step + 1))
  done ) &
reloader=$!
load "with a reload every second"
wait "$reloader"
ok_after=$(metric grpc_server_handled_total 'grpc_method="ModelInfer"' 'grpc_code="OK"')
all_after=$(metric grpc_server_handled_total 'grpc_method="ModelInfer"')
echo "== gateway"
curl -sf "http://127.0.0.1:$admin/metrics" | grep '^grpc_server_handled_total' | grep 'ModelInfer"' | grep -v ' 0$' || true
cancelled=$(metric grpc_server_handled_total 'grpc_method="ModelInfer"' 'grpc_code="CANCELLED"')
echo "ModelInfer calls over the warm-up and both runs: OK $((ok_after)), failed $((all_after - ok_after - cancelled)), cancelled $cancelled"
echo "(cancelled: the streams h2load -D still has open when its time is up, at most 256 per run; 'failed' must be 0)"
echo "reloads applied: $(metric switchyard_config_reloads_total 'result="applied"'), refused: $(metric switchyard_config_reloads_total 'result="refused"')"
