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
