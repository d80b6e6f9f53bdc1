#!/usr/bin/env bash
# Sluice chaos run: 2 sluice-mock upstreams behind one route (3 attempts, breakers, fallback to
# demo), 16 concurrent unary/streaming clients for 2 minutes with a random fault on every
# request, one mock SIGKILLed at t=40s and restarted on the same port at t=50s. Every response
# is verified; exits non-zero if any was lost, duplicated or corrupted. See docs/reliability.md.
#
#   bash bench/chaos/run.sh                       # the full run (~2 min)
#   bash bench/chaos/run.sh --duration 30         # shorter; any chaos.py option is passed on
#
# Loopback only; python3 standard library only. chaos.py starts every process itself, tracks
# them by PID and stops them when it ends. Output: stdout and bench/chaos/results/latest.txt
# (+ latest.json), both git-ignored.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-python3}
OUT="$ROOT/bench/chaos/results"
mkdir -p "$OUT"

{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
  echo "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "# command: bash bench/chaos/run.sh $*"
} | tee "$OUT/latest.txt"

set +e
"$PYTHON" "$ROOT/bench/chaos/chaos.py" --json "$OUT/latest.json" "$@" 2>&1 | tee -a "$OUT/latest.txt"
rc=${PIPESTATUS[0]}
exit "$rc"
