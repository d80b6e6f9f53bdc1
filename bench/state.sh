#!/usr/bin/env bash
# State store and session-memory micro-benchmarks: a 100-response chain, 1000 turns, memory
# search over 1k and 100k memories, on the memory, SQLite and Redis backends (a redis-server
# started here on a free port, stopped by PID). Usage: bench/state.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake --build "$BUILD_DIR" -j "$(nproc)" --target sluice-state-bench >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --save "" --appendonly no --bind 127.0.0.1 >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
"$BUILD_DIR/sluice-state-bench" --redis-port "$port" "$@"
