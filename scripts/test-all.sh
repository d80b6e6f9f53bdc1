#!/usr/bin/env bash
# Runs every test suite in order: unit (ctest), fuzz smoke, integration (pytest, real sockets and
# processes), e2e (the official openai npm SDK). Called by `make test` after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
export SLUICE_BUILD_DIR="$PWD/$BUILD_DIR"
ulimit -n 65536 2>/dev/null || true

step() { printf '\n==> %s\n' "$*"; }

step "unit tests (ctest)"
(cd "$BUILD_DIR" && ctest --output-on-failure -j "$(nproc)")

step "fuzz smoke run (libFuzzer, ${FUZZ_SECONDS:-20}s per target)"
bash tests/fuzz/run.sh "${FUZZ_SECONDS:-20}"

step "integration tests (pytest)"
/usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider

step "e2e tests (openai npm SDK)"
bash tests/e2e/run.sh
