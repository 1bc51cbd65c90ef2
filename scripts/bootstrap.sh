#!/usr/bin/env bash
# Installs what Switchyard needs on a fresh Debian machine that already has Swift:
# Debian packages (only the missing ones) and, with --python, a venv under .venv for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(pkg-config libnghttp2-dev libssl-dev zlib1g-dev)
if [[ "${1:-}" == "--python" ]]; then
    # chromium: Tests/interop/test_loadtest.py renders the loadtest HTML report headless.
    apt_packages+=(protobuf-compiler nghttp2-client python3-venv libb64-0d procps chromium)
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

if [[ "${1:-}" == "--python" ]]; then
    requirements=Tests/interop/requirements.txt
    stamp=.venv/.requirements-installed
    if [[ ! -x .venv/bin/python ]]; then
        python3 -m venv .venv
    fi
    if [[ ! -f "$stamp" ]] || ! cmp -s "$requirements" "$stamp"; then
        echo "bootstrap: installing Python test peers into .venv"
        .venv/bin/pip install -q --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$stamp"
    fi
fi
