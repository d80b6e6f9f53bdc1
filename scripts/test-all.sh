#!/usr/bin/env bash
# Runs every test suite in order: unit (ctest), fuzz smoke, integration (pytest, real sockets and
# processes), e2e (the official openai, Anthropic and Google GenAI npm SDKs), then the sanitizer
# runs: unit + integration under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan) and
# the concurrent components' unit tests under ThreadSanitizer (build-tsan). Any sanitizer report
# fails the run.
# Called by `make test` after the build. SANITIZERS=0 skips the sanitizer runs (quick local use).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
ASAN_DIR=${ASAN_DIR:-build-asan}
TSAN_DIR=${TSAN_DIR:-build-tsan}
JOBS=${JOBS:-$(nproc)}
export SLUICE_BUILD_DIR="$PWD/$BUILD_DIR"
ulimit -n 65536 2>/dev/null || true
# ccache: paths relative to the checkout and no per-directory hash, so the sanitizer build dirs
# (and a fresh clone elsewhere) hit the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1

step() { printf '\n==> %s\n' "$*"; }
timings=()
timed() {  # timed <label> <command...>: runs it and records how long it took
  local label=$1 t0=$SECONDS
  shift
  "$@"
  timings+=("$(printf '%-40s %4ds' "$label" $((SECONDS - t0)))")
}

step "unit tests (ctest)"
timed "unit (release)" bash -c "cd '$BUILD_DIR' && ctest --output-on-failure -j '$JOBS'"

step "conformance matrix (every client protocol x every upstream protocol)"
SLUICE_MATRIX_OUT="$BUILD_DIR/conformance-matrix.md" \
  "$BUILD_DIR/sluice_canonical_tests" --gtest_filter='Conformance*' --gtest_brief=1 >/dev/null
cat "$BUILD_DIR/conformance-matrix.md"

step "fuzz smoke run (libFuzzer, ${FUZZ_SECONDS:-10}s per target)"
timed "fuzz smoke" bash tests/fuzz/run.sh "${FUZZ_SECONDS:-10}"

step "integration tests (pytest)"
timed "integration (release)" /usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider

step "e2e tests (official SDKs: openai, @anthropic-ai/sdk, @google/genai)"
timed "e2e" bash tests/e2e/run.sh

if [[ ${SANITIZERS:-1} == 0 ]]; then
  printf '\n==> sanitizer runs skipped (SANITIZERS=0)\n'
  exit 0
fi

# ---- AddressSanitizer + UndefinedBehaviorSanitizer ------------------------------------------
# detect_leaks=1: the suites are leak-clean (a leak report fails the run like any other).
# halt_on_error + -fno-sanitize-recover=undefined: the first report ends the process with an
# error. The integration suite starts sluice and sluice-mock as children of pytest, where a
# report could be lost in a log nobody reads, so there reports go to files under $san_logs and
# any file there fails the run. (GCC 12's UBSan writes its fatal reports to stderr whatever
# log_path says; -fno-sanitize-recover makes them abort the process, which fails its test.)
san_logs=$(mktemp -d /tmp/sluice-san.XXXXXX)
common_asan="detect_leaks=1:halt_on_error=1:check_initialization_order=1"
ubsan="halt_on_error=1:print_stacktrace=1"

step "ASan+UBSan build ($ASAN_DIR)"
# Sanitizer builds at -O1: they exist to run the tests under the sanitizers, and -O3 made the
# ASan build alone take 21 minutes of make test's time on 2 cores. (-O1 also showed a
# use-after-free that -O3 hid: an error answered mid-body rendered the head's path from the
# buffer the body had just outgrown.)
timed "asan build" bash -c "cmake -S . -B '$ASAN_DIR' -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE='-O1 -DNDEBUG' \
  -DSLUICE_SANITIZE=address,undefined -DSLUICE_ALLOCATOR=system -Wno-dev >/dev/null &&
  cmake --build '$ASAN_DIR' -j '$JOBS' --target sluice sluice-mock sluice_unit_tests \
  sluice_canonical_tests"

step "unit tests under ASan+UBSan"
timed "unit (asan+ubsan)" env ASAN_OPTIONS="$common_asan" UBSAN_OPTIONS="$ubsan" \
  "$ASAN_DIR/sluice_unit_tests" --gtest_brief=1
timed "codecs (asan+ubsan)" env ASAN_OPTIONS="$common_asan" UBSAN_OPTIONS="$ubsan" \
  "$ASAN_DIR/sluice_canonical_tests" --gtest_brief=1

step "integration tests under ASan+UBSan"
san_status=0
t0=$SECONDS
ASAN_OPTIONS="$common_asan:log_path=$san_logs/asan" \
  UBSAN_OPTIONS="$ubsan:log_path=$san_logs/ubsan" SLUICE_BUILD_DIR="$PWD/$ASAN_DIR" \
  /usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider || san_status=$?
timings+=("$(printf '%-40s %4ds' "integration (asan+ubsan)" $((SECONDS - t0)))")
if compgen -G "$san_logs/*san.*" >/dev/null; then
  echo "sanitizer reports from the integration run:"
  for f in "$san_logs"/*san.*; do echo "--- $f"; cat "$f"; done
  san_status=1
fi
rm -rf "$san_logs"
[[ $san_status == 0 ]] || { echo "integration tests under ASan+UBSan FAILED"; exit 1; }

# ---- ThreadSanitizer ------------------------------------------------------------------------
# The whole unit suite (6 s under TSan): the components shared across worker threads (limiter
# hand-off, metrics shards, access-log rings, rate limiters, key store and JWT key reloads,
# breakers, balancers, the server and upstream client) and everything else. A report exits 66
# and fails the run.
step "TSan build ($TSAN_DIR, unit tests)"
timed "tsan build" bash -c "cmake -S . -B '$TSAN_DIR' -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE='-O1 -DNDEBUG' \
  -DSLUICE_SANITIZE=thread -DSLUICE_ALLOCATOR=system -Wno-dev >/dev/null &&
  cmake --build '$TSAN_DIR' -j '$JOBS' --target sluice_unit_tests"

step "unit tests under TSan"
timed "unit (tsan)" env TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1" \
  "$TSAN_DIR/sluice_unit_tests" --gtest_brief=1 --gtest_filter='-SemanticIndex.*'
# The semantic cache's index: data races checked, lock order not. hnswlib takes its per-node
# locks in the order a graph walk meets the nodes (a cycle TSan reports inside one addPoint
# call, with stacks it cannot keep, so no suppression can name it); Sluice never runs two
# hnswlib calls on one graph at once (cache::SemanticIndex serialises them), so it cannot
# deadlock.
timed "unit (tsan, semantic index)" env TSAN_OPTIONS="halt_on_error=1:exitcode=66:detect_deadlocks=0" \
  "$TSAN_DIR/sluice_unit_tests" --gtest_brief=1 --gtest_filter='SemanticIndex.*'

step "timings"
printf '%s\n' "${timings[@]}"
