#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a bounded time.
# Usage: tests/fuzz/run.sh [seconds-per-target]   (default 10; run longer by hand: 600+)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_TARGET=${1:-10}
BUILD=build-fuzz
CXX=clang++ cmake -S . -B "$BUILD" -DSLUICE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSLUICE_MARCH= -Wno-dev >/dev/null
cmake --build "$BUILD" -j "$(nproc)" >/dev/null
status=0
for bin in "$BUILD"/fuzz_*; do
  [[ -x "$bin" ]] || continue
  name=$(basename "$bin")
  corpus_seed="tests/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  [[ -d "$corpus_seed" ]] && cp -r "$corpus_seed"/. "$work"/
  # -timeout: one input taking 10 s is a hang (libFuzzer's default would stall CI 20 minutes).
  if "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=0 \
       -artifact_prefix="$work/" \
       "$work" >"$work/log" 2>&1; then
    echo "fuzz $name: ok ($(grep -Eo '^Done [0-9]+ runs' "$work/log" | tail -1 | grep -Eo '[0-9]+') runs)"
  else
    echo "fuzz $name: FAILED"; tail -40 "$work/log"; status=1
    ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null || true
  fi
  rm -rf "$work"
done
exit $status
