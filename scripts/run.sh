#!/usr/bin/env bash
# Installs what is missing, builds Switchyard in release mode and runs the gateway on its
# embedded default: TLS on 0.0.0.0:8443 and h2c on 127.0.0.1:8001, dev certificates generated
# under Certs/dev/ on first run, the built-in example models with 2 workers each.
# Extra arguments go to `switchyard serve` (see `switchyard serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
swift build -c release --product switchyard
exec .build/release/switchyard serve "$@"
