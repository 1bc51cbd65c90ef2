#!/usr/bin/env bash
# Installs what is missing, builds Switchyard in release mode and runs it on its embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
swift build -c release --product switchyard
# Until the gateway serves (the transport and services issues), this prints the CLI's help.
exec .build/release/switchyard "${@:---help}"
