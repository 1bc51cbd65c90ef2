# Shared helpers for the load-test scripts in this directory (sourced, not executed).
# shellcheck shell=bash

# Installs the Debian packages given as arguments when they are missing.
ensure_apt_packages() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if ((${#missing[@]})); then
        echo "loadtest: installing ${missing[*]}" >&2
        local sudo_cmd=()
        [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
        "${sudo_cmd[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Prints a free TCP port on 127.0.0.1 (the kernel picks it; there is a tiny race until we bind it).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Prints N distinct free TCP ports on 127.0.0.1, separated by spaces (free_port, called twice in a
# row, can print the same port twice).
free_ports() {
    python3 -c 'import socket, sys; s = [socket.socket() for _ in range(int(sys.argv[1]))]; [x.bind(("127.0.0.1", 0)) for x in s]; print(*(x.getsockname()[1] for x in s))' "$1"
}

# Waits (bounded) until something listens on 127.0.0.1:$1.
wait_for_port() {
    local port=$1 tries=${2:-300}
    while ((tries-- > 0)); do
        if ss -Hltn "sport = :$port" 2>/dev/null | grep -q LISTEN; then return 0; fi
        sleep 0.1
    done
    echo "loadtest: nothing listens on 127.0.0.1:$port" >&2
    return 1
}

# Sets the array NO_ADMIN_ARGS to the `serve` arguments that turn the admin listener off (its
# default port could be taken), or to nothing for binaries older than --admin-address.
set_no_admin_args() {
    NO_ADMIN_ARGS=()
    if "$1" serve --help 2>/dev/null | grep -q -- --admin-address; then NO_ADMIN_ARGS=(--admin-address none); fi
}

# Prints utime+stime in clock ticks of one pid (0 if it has gone).
cpu_ticks_of() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    # Field 2 (comm) may contain spaces: parse after the last ')'. utime, stime are fields 14, 15.
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

# Prints utime+stime in clock ticks summed over the given pids.
cpu_ticks_sum() {
    local total=0 pid
    for pid in "$@"; do total=$((total + $(cpu_ticks_of "$pid"))); done
    echo "$total"
}

load_average() { cut -d' ' -f1-3 /proc/loadavg; }

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# Puts perf uprobes on malloc and pthread_mutex_lock in the libc that BINARY links (they stay
# until removed; adding them again is harmless). Needs root and linux-perf.
probe_mallocs_and_locks() {
    local libc
    libc=$(ldd "$1" | awk '/libc.so.6/ { print $3 }')
    perf probe -q -x "$libc" malloc 2>/dev/null || true
    perf probe -q -x "$libc" pthread_mutex_lock 2>/dev/null || true
}

# Runs COMMAND… while counting process PID's malloc and pthread_mutex_lock calls
# (probe_mallocs_and_locks first); prints "mallocs locks". COMMAND's output is discarded.
count_mallocs_and_locks() {
    local pid=$1 out
    shift
    out=$(mktemp /tmp/perf-counts.XXXXXX)
    perf stat -x, -e probe_libc:malloc,probe_libc:pthread_mutex_lock -p "$pid" -o "$out" &
    local stat=$!
    sleep 0.3
    "$@" >/dev/null
    sleep 0.3
    kill -INT "$stat"; wait "$stat" || true
    awk -F, '/malloc/ { m = $1 } /mutex/ { l = $1 } END { print m, l }' "$out"
    rm -f "$out"
}

# The marginal count per call between a run of SMALL calls that counted A and a run of N calls
# that counted B: (B - A) / (N - SMALL), so what both runs pay once (connection setup) cancels.
per_call() {
    awk -v a="$1" -v b="$2" -v x="$3" -v y="$4" 'BEGIN { printf "%.2f", (b - a) / (y - x) }'
}
