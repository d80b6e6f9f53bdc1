#!/usr/bin/env bash
# Observability overhead benchmark (issue 6): unary chat through three Sluice instances started
# side by side, all in front of one sluice-mock, measured in one run with interleaved wrk runs:
#
#   off          metrics: {enabled: false, server_timing: false}, no access log
#   metrics      Prometheus metrics recorded (GET /metrics, the default) + server_timing: true
#   metrics+log  metrics + access_log: {enabled: true, path: <tmp>/access.log, sample: 1.0}
#
#   bash bench/observability.sh                      # BENCH_RUNS=5 x BENCH_DURATION=10s per config
#   BENCH_RUNS=1 BENCH_DURATION=3s bash bench/observability.sh   # smoke run
#
# Environment (all optional):
#   BENCH_RUNS=5  BENCH_DURATION=10s  BENCH_WARMUP=2s  BENCH_CONNS=64
#   BENCH_PIN=1  BENCH_CPU_GW=0  BENCH_CPU_MOCK=0  BENCH_CPU_WRK=1
#   BUILD_DIR=build  SLUICE_BIN=  MOCK_BIN=  BENCH_KEEP_TMP=0
#
# Rounds rotate the order (off metrics metrics+log, metrics metrics+log off, metrics+log off
# metrics, ...) so neither drift nor position in the round favours one config.
# Before measuring it checks that every instance answers 200; that `off` answers GET /metrics with
# 404 and sends no server-timing header; that `metrics` sends server-timing and its
# sluice_requests_total grows; that `metrics+log` writes one JSON line per request to its access
# log. Every wrk run must have 0 socket errors and 0 non-2xx answers, otherwise the script exits 1
# (after writing the report). Afterwards it reports the access log's line count against the
# requests that instance counted and the dropped lines (sluice_access_log_lines_total).
# Results: bench/results/observability-latest.txt (+ -raw.tsv).
#
# The binaries are copied into the temp dir first (a rebuild of build/ during the run cannot
# change them; neutral names keep other people's `pkill -f sluice` away). Every process started
# here is recorded by PID and stopped by the EXIT trap; nothing listens beyond 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
SLUICE_BIN=${SLUICE_BIN:-$BUILD_DIR/sluice}
MOCK_BIN=${MOCK_BIN:-$BUILD_DIR/sluice-mock}
WRK_BIN=${WRK_BIN:-wrk}
PYTHON=${PYTHON:-python3}

RUNS=${BENCH_RUNS:-5}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONNS=${BENCH_CONNS:-64}
TOKENS=20
CONFIGS=(off metrics metrics+log)
PIN=${BENCH_PIN:-1}
CPU_GW=${BENCH_CPU_GW:-0}
CPU_MOCK=${BENCH_CPU_MOCK:-0}
CPU_WRK=${BENCH_CPU_WRK:-1}
RESULTS_DIR="$BENCH/results"
OUT="$RESULTS_DIR/observability-latest.txt"
RAW="$RESULTS_DIR/observability-latest-raw.tsv"

BENCH_SELF=observability.sh
BENCH_TAG=obsbench
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
bench_init obsbench      # $TMP + the EXIT trap that stops every process started here

# ---------------------------------------------------------------- preflight
command -v "$WRK_BIN" >/dev/null || die "wrk not found"
command -v "$PYTHON" >/dev/null || die "python3 not found"
command -v curl >/dev/null || die "curl not found"
[[ -x $SLUICE_BIN ]] || die "$SLUICE_BIN not found (build first: make build)"
[[ -x $MOCK_BIN ]] || die "$MOCK_BIN not found (build first: make build)"
[[ -f $BENCH/chat.lua ]] || die "bench/chat.lua missing"
check_pinning "$CPU_GW" "$CPU_MOCK" "$CPU_WRK"
mkdir -p "$RESULTS_DIR"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

GW=$(snapshot_bin "$SLUICE_BIN" gw)
UPSTREAM_BIN=$(snapshot_bin "$MOCK_BIN" upstream)
GW_SUM=$(sha256sum "$GW" | cut -c1-12)
GW_MTIME=$(date -u -r "$SLUICE_BIN" +%Y-%m-%dT%H:%M:%SZ)
ACCESS_LOG="$TMP/access.log"

# ---------------------------------------------------------------- start servers
start_bg mock "$CPU_MOCK" "$TMP/mock.log" \
  "$UPSTREAM_BIN" --listen 127.0.0.1:0 --threads 1 --tokens "$TOKENS"
MOCK_PID=$LAST_PID
UPSTREAM=$(listen_addr "$MOCK_PID" "$TMP/mock.log")
log "mock pid $MOCK_PID on $UPSTREAM"

write_config() {  # NAME FILE
  local name=$1 f=$2
  # The operations listener (/metrics) on an ephemeral port: the instances run side by side.
  printf 'server: {listen: "127.0.0.1:0", threads: 1, max_connections: 20000}\nadmin: {listen: "127.0.0.1:0"}\n' >"$f"
  case $name in
    off) echo 'metrics: {enabled: false, server_timing: false}' >>"$f" ;;
    metrics) echo 'metrics: {server_timing: true}' >>"$f" ;;   # metrics on (the default) + server-timing
    metrics+log) printf 'metrics: {server_timing: true}\naccess_log: {enabled: true, path: "%s", sample: 1.0}\n' "$ACCESS_LOG" >>"$f" ;;
  esac
  cat >>"$f" <<EOF
routes:
  - model: mock-model
    targets: [{provider: openai, base_url: "http://$UPSTREAM/v1"}]
EOF
}

declare -A URL=() ADMIN_URL=() GWPID=() LOGF=()
for c in "${CONFIGS[@]}"; do
  write_config "$c" "$TMP/$c.yaml"
  LOGF[$c]="$TMP/gw-$c.log"
  start_bg "gw-$c" "$CPU_GW" "${LOGF[$c]}" "$GW" --config "$TMP/$c.yaml"
  GWPID[$c]=$LAST_PID
  addr=$(listen_addr "$LAST_PID" "${LOGF[$c]}")
  URL[$c]="http://$addr"
  ADMIN_URL[$c]="http://$(admin_addr "$LAST_PID" "${LOGF[$c]}")"
  log "sluice ($c) pid $LAST_PID on $addr, operations on ${ADMIN_URL[$c]}"
done

# ---------------------------------------------------------------- checks before measuring
BODY='{"model":"mock-model","messages":[{"role":"user","content":"hello"}]}'
post() {  # CONFIG OUTBASE → http code; headers in OUTBASE.h, body in OUTBASE.b
  curl -sS -m 10 -D "$2.h" -o "$2.b" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "$BODY" "${URL[$1]}/v1/chat/completions" || echo curl-failed
}
header() { tr -d '\r' <"$1" | sed -n "s/^$2: *//Ip" | head -1; }
check_fail() {  # CONFIG OUTBASE MESSAGE
  echo "---- $1: headers and body:" >&2; cat "$2.h" "$2.b" >&2 2>/dev/null; echo >&2
  die "$1: $3"
}
metrics_code() { curl -sS -m 10 -o "$2" -w '%{http_code}' "${ADMIN_URL[$1]}/metrics" || echo curl-failed; }
scrape() {  # CONFIG → /metrics text on stdout (from the operations listener, admin.listen)
  curl -sS -m 10 "${ADMIN_URL[$1]}/metrics" || die "$1: GET /metrics failed"
}
requests_total() {  # CONFIG → sum of sluice_requests_total{route="/v1/chat/completions"} (scrapes count too)
  scrape "$1" | awk '/^sluice_requests_total\{route="\/v1\/chat\/completions"/ {s += $NF} END {printf "%d\n", s}'
}
log_lines() {  # CONFIG RESULT(written|dropped) → sluice_access_log_lines_total{result=...}
  scrape "$1" | awk -v r="$2" '$1 == "sluice_access_log_lines_total{result=\"" r "\"}" {v = $2} END {printf "%d\n", v}'
}
file_lines() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }

for c in "${CONFIGS[@]}"; do
  code=$(post "$c" "$TMP/check-$c")
  [[ $code == 200 ]] || check_fail "$c" "$TMP/check-$c" "POST /v1/chat/completions → $code (want 200)"
done

# off: no /metrics, no server-timing
[[ -z $(header "$TMP/check-off.h" server-timing) ]] \
  || check_fail off "$TMP/check-off" "sends a server-timing header (metrics.server_timing: false not applied?)"
code=$(metrics_code off "$TMP/check-off-metrics.txt")
[[ $code == 404 ]] || die "off: GET /metrics → $code (want 404: metrics.enabled: false not applied?)"

# metrics: server-timing, /metrics counting requests
st=$(header "$TMP/check-metrics.h" server-timing)
[[ $st == *total\;dur=* ]] || check_fail metrics "$TMP/check-metrics" "server-timing header missing or without total (got '$st')"
code=$(metrics_code metrics "$TMP/check-metrics-metrics.txt")
[[ $code == 200 ]] || die "metrics: GET /metrics → $code (want 200)"
n0=$(requests_total metrics)
post metrics "$TMP/check-metrics-2" >/dev/null
post metrics "$TMP/check-metrics-3" >/dev/null
for ((i = 0; i < 20; i++)); do   # recorded when the exchange finishes, maybe just after curl returns
  n1=$(requests_total metrics)
  ((n1 < n0 + 2)) || break
  sleep 0.05
done
((n0 >= 1 && n1 == n0 + 2)) || die "metrics: sluice_requests_total went $n0 → $n1 over 2 requests (want +2)"
log "off: GET /metrics 404, no server-timing; metrics: server-timing '$st', sluice_requests_total $n0 → $n1 after 2 requests"

# metrics+log: server-timing, and a JSON line per request in the access log
[[ -n $(header "$TMP/check-metrics+log.h" server-timing) ]] \
  || check_fail metrics+log "$TMP/check-metrics+log" "no server-timing header"
for ((i = 0; i < 100; i++)); do   # the writer thread drains every 5 ms when idle
  (($(file_lines "$ACCESS_LOG") >= 1)) && break
  sleep 0.05
done
"$PYTHON" - "$ACCESS_LOG" <<'PY' || die "metrics+log: access log $ACCESS_LOG has no valid JSON line"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, f"{len(lines)} lines after 1 request"
rec = json.loads(lines[0])
assert isinstance(rec, dict) and rec, "not a JSON object"
print(f"[obsbench] access log line: {lines[0][:300]}", file=sys.stderr)
PY
[[ $(file_lines "$TMP/access.log") == 1 ]] || die "metrics+log: access log does not hold exactly 1 line"
LINE_BYTES=$(wc -c <"$ACCESS_LOG")
log "metrics+log: access log holds 1 JSON line ($LINE_BYTES bytes) after 1 request"
log "all configs answer; runs=$RUNS duration=$DURATION warmup=$WARMUP conns=$CONNS pin=$PIN (gw cpu $CPU_GW, mock cpu $CPU_MOCK, wrk cpu $CPU_WRK)"

# ---------------------------------------------------------------- wrk runs
wrk_cmd() { wrk_run "$CONNS" "$1" "$BENCH/chat.lua" "${URL[$2]}"; }  # DURATION CONFIG

declare -A SERVED=()   # requests wrk counted per config (warm-up included)
for c in "${CONFIGS[@]}"; do   # warm-up: pools, caches, allocator, access-log file growth
  wrk_cmd "$WARMUP" "$c" >"$TMP/warmup-$c.out" 2>&1 || true
  SERVED[$c]=0
  if wrk_result "$TMP/warmup-$c.out"; then SERVED[$c]=${kv[requests]}; fi
done

printf 'config\trun\tposition\trps\tp50_us\tp99_us\trequests\terrors\tnon2xx\tgw_cpu_us_per_req\tmock_cpu_us_per_req\n' >"$RAW"
BAD=0
N=${#CONFIGS[@]}
for ((r = 1; r <= RUNS; r++)); do
  for ((k = 0; k < N; k++)); do   # rotating order: A B C, B C A, C A B, A B C, ...
    c=${CONFIGS[$(((r - 1 + k) % N))]}
    f="$TMP/wrk-$c-$r.out"
    gw0=$(cpu_ticks "${GWPID[$c]}"); mk0=$(cpu_ticks "$MOCK_PID")
    if ! wrk_cmd "$DURATION" "$c" >"$f" 2>&1; then
      cat "$f" >&2; die "wrk failed for $c run $r"
    fi
    gw1=$(cpu_ticks "${GWPID[$c]}"); mk1=$(cpu_ticks "$MOCK_PID")
    wrk_result "$f" || { cat "$f" >&2; die "no BENCH_RESULT from wrk ($c run $r)"; }
    n=${kv[requests]}
    ((n > 0)) || { cat "$f" >&2; die "$c run $r: no requests completed"; }
    SERVED[$c]=$(( ${SERVED[$c]} + n ))
    gwc=$(per_req_us $((gw1 - gw0)) "$n")
    mkc=$(per_req_us $((mk1 - mk0)) "$n")
    printf '%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$r" "$((k + 1))" "${kv[rps]}" "${kv[p50_us]}" \
      "${kv[p99_us]}" "$n" "${kv[errors]}" "${kv[non2xx]}" "$gwc" "$mkc" >>"$RAW"
    log "$c run $r/$RUNS: ${kv[rps]} req/s p50 ${kv[p50_us]}us p99 ${kv[p99_us]}us errors ${kv[errors]} non2xx ${kv[non2xx]} gw ${gwc}us mock ${mkc}us cpu/req"
    if [[ ${kv[errors]} != 0 || ${kv[non2xx]} != 0 ]]; then
      BAD=$((BAD + 1))
      log "WARNING: $c run $r had errors/non-2xx answers (see $f)"
    fi
    for p in "${CONFIGS[@]}"; do alive_or_die "${GWPID[$p]}" "${LOGF[$p]}"; done
    alive_or_die "$MOCK_PID" "$TMP/mock.log"
  done
done

# ---------------------------------------------------------------- access log accounting
# Let the writer drain (it polls every 5 ms when idle), then compare the file with the requests
# the instance counted itself and with its written/dropped counters.
prev=-1
for ((i = 0; i < 100; i++)); do
  cur=$(file_lines "$ACCESS_LOG")
  [[ $cur == "$prev" ]] && break
  prev=$cur
  sleep 0.2
done
LOG_LINES=$(file_lines "$ACCESS_LOG")
LOG_BYTES=$(stat -c %s "$ACCESS_LOG")
LOG_WRITTEN=$(log_lines metrics+log written)
LOG_DROPPED=$(log_lines metrics+log dropped)
LOG_REQS=$(requests_total metrics+log)
LOG_BAD_JSON=$("$PYTHON" - "$ACCESS_LOG" <<'PY'
import json, sys
bad = 0
with open(sys.argv[1], "rb") as f:
    for line in f:
        try:
            if not isinstance(json.loads(line), dict):
                bad += 1
        except ValueError:
            bad += 1
print(bad)
PY
)
METRICS_REQS=$(requests_total metrics)
log "access log: $LOG_LINES lines ($LOG_BYTES bytes, $LOG_BAD_JSON not valid JSON), written $LOG_WRITTEN, dropped $LOG_DROPPED; sluice_requests_total $LOG_REQS; wrk counted ${SERVED[metrics+log]} (+3 checks)"

# ---------------------------------------------------------------- report
{
  echo "Sluice observability overhead (issue 6) — $(date -u +%Y-%m-%dT%H:%M:%SZ)  git $(git_rev)"
  echo "sluice binary: $SLUICE_BIN (sha256 $GW_SUM…, mtime $GW_MTIME)"
  host_line
  load_line "$LOAD_START"
  echo "runs=$RUNS x $DURATION per config (median), interleaved with rotating order, warm-up $WARMUP;"
  echo "wrk -t1 -c$CONNS POST /v1/chat/completions (model mock-model), sluice threads 1 (x3, side by side),"
  echo "one sluice-mock --threads 1 --tokens $TOKENS"
  if [[ $PIN == 1 ]]; then
    echo "pinning: sluice instances on cpu $CPU_GW, sluice-mock on cpu $CPU_MOCK, wrk on cpu $CPU_WRK"
  else
    echo "pinning: none"
  fi
  echo "off: metrics {enabled: false, server_timing: false}; metrics: defaults (metrics + server-timing);"
  echo "metrics+log: defaults + access_log {enabled: true, path: <tmp>/access.log (file), sample: 1.0}"
  echo
  "$PYTHON" - "$RAW" <<'PY'
import statistics, sys
from collections import defaultdict

rows = defaultdict(dict)
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] == "config":
        continue
    rows[f[0]][int(f[1])] = dict(rps=float(f[3]), p50=float(f[4]), p99=float(f[5]),
                                 bad=int(f[7]) + int(f[8]), gw=float(f[9]), mock=float(f[10]))

def fmt_us(us):
    return f"{us / 1000:.2f}ms" if us >= 1000 else f"{us:.0f}us"

names = {"off": "off (no metrics, no log)", "metrics": "metrics (+ server-timing)",
         "metrics+log": "metrics + access log"}
order = ("off", "metrics", "metrics+log")
med = {c: {k: statistics.median(r[k] for r in runs.values()) for k in ("rps", "p50", "p99", "gw", "mock")}
       for c, runs in rows.items()}
for c, runs in rows.items():   # how busy the gateway's CPU was: (gw + mock CPU) per second of run
    med[c]["busy"] = statistics.median((r["gw"] + r["mock"]) * r["rps"] / 1e6 for r in runs.values())
base = med["off"]["rps"]
hdr = (f"{'config':<26} {'req/s':>8} {'min-max req/s':>14} {'p50':>8} {'p99':>8} {'vs off':>7} "
       f"{'per-run ratio':>14} {'gw cpu/req':>11} {'gw cpu busy':>12} {'errors':>7}")
print(hdr)
print("-" * len(hdr))
ratio_range = {}
for c in order:
    m = med[c]
    rps = [r["rps"] for r in rows[c].values()]
    span = f"{min(rps) / 1000:.1f}k-{max(rps) / 1000:.1f}k"
    if c == "off":
        spread = "-"
    else:
        ratios = [rows[c][r]["rps"] / rows["off"][r]["rps"] for r in rows[c] if r in rows["off"]]
        ratio_range[c] = (min(ratios), max(ratios))
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
    bad = sum(r["bad"] for r in rows[c].values())
    print(f"{names[c]:<26} {m['rps']:>8.0f} {span:>14} {fmt_us(m['p50']):>8} {fmt_us(m['p99']):>8} "
          f"{m['rps'] / base:>6.2f}x {spread:>14} {m['gw']:>9.1f}us {100 * m['busy']:>11.0f}% {bad:>7}")
print()
for c in ("metrics", "metrics+log"):
    q = med[c]["rps"] / base
    print(f"{c + ' / off:':<19} {q:.3f}x req/s  (target >= 0.95x: {'met' if q >= 0.95 else 'NOT met'}); "
          f"p50 {fmt_us(med[c]['p50'])} vs {fmt_us(med['off']['p50'])}, "
          f"p99 {fmt_us(med[c]['p99'])} vs {fmt_us(med['off']['p99'])}; "
          f"gw cpu/req {med[c]['gw'] - med['off']['gw']:+.1f}us")
    cost = lambda x: med[x]["gw"] + med[x]["mock"]
    print(f"{'':<19} CPU-bound estimate (off's sluice+mock CPU/req over {c}'s): {cost('off') / cost(c):.3f}x")
print()
print("  req/s, p50, p99 = median over runs (each metric separately); vs off = ratio of median req/s;")
print("  min-max req/s = spread of that config's runs; per-run ratio = min-max of req/s / off's req/s")
print("  in the same round; gw cpu/req = CPU time (user+sys, all threads incl. the access-log writer)")
print("  of that sluice process during the run / requests (median); gw cpu busy = (sluice + mock CPU")
print("  time) / run time, the share of the gateway CPU they used (median): well under 100% means the")
print("  gateway CPU was not the bottleneck (wrk starved, or a neighbour on the core) and req/s ratios")
print("  understate the cost; then trust gw cpu/req;")
print("  errors = socket errors + non-2xx answers summed over all runs (must be 0).")
PY
  echo
  echo "access log (metrics+log instance, whole run incl. warm-up and checks):"
  echo "  lines in file            $LOG_LINES ($LOG_BYTES bytes, $((LOG_BYTES / (LOG_LINES > 0 ? LOG_LINES : 1))) bytes/line; $LOG_BAD_JSON not valid JSON)"
  echo "  sluice_requests_total    $LOG_REQS (requests the instance answered; wrk counted ${SERVED[metrics+log]} + 1 check)"
  echo "  access_log_lines written $LOG_WRITTEN"
  echo "  access_log_lines dropped $LOG_DROPPED"
  if ((LOG_DROPPED > 0)); then
    echo "  => $LOG_DROPPED lines ($(awk -v d="$LOG_DROPPED" -v n="$LOG_REQS" 'BEGIN{printf "%.2f", n ? 100 * d / n : 0}')% of requests) were DROPPED under load (ring full)"
  elif ((LOG_LINES == LOG_REQS)); then
    echo "  => one line per request, none dropped"
  else
    echo "  => line count differs from sluice_requests_total by $((LOG_LINES - LOG_REQS)) with 0 counted drops"
  fi
  echo "  (metrics instance: sluice_requests_total $METRICS_REQS, wrk counted ${SERVED[metrics]} + 3 checks)"
  if ((BAD > 0)); then
    echo
    echo "FAILED: $BAD run(s) had socket errors or non-2xx answers; the numbers above are not valid."
  fi
} | tee "$OUT"
log "results written to $OUT (raw per-run numbers: $RAW)"
((BAD == 0)) || die "$BAD run(s) had errors or non-2xx answers"
