#!/usr/bin/env bash
# Installs what is missing, then runs every test: the Swift unit and differential tests, then
# the interop tests that drive the real `switchyard` binary with Python peers.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh --python

echo "== swift build"
swift build --build-tests
echo "== swift test"
swift test --skip-build --disable-swift-testing --parallel --num-workers 2

echo "== interop tests (pytest)"
export SWITCHYARD_BINARY="$PWD/.build/debug/switchyard"
.venv/bin/python -m pytest -q Tests/interop
