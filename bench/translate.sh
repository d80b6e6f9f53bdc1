#!/usr/bin/env bash
# Protocol translation benchmark (issue 11): translated routes as a ratio to the same-protocol
# route (OpenAI client -> OpenAI upstream, the fast path), measured in the same run, plus the
# gateway's CPU time per relayed SSE event. One sluice-mock (it speaks all three upstream
# formats) and one Sluice whose routes reach it as `provider: openai` (mock-model), `anthropic`
# (claude-up) and `gemini` (gemini-up). See bench/README.md.
#
#   bash bench/translate.sh                   # BENCH_RUNS=3 x BENCH_DURATION=10s per cell
#   BENCH_QUICK=1 bash bench/translate.sh     # smoke test: 1 run x 3 s
#
# Cells (client>upstream mode): oai>oai (the reference of its mode), anth>oai, oai>anth, gem>oai,
# oai>gem streaming; oai>oai, anth>oai, oai>anth unary. Also available: anth>anth, gem>gem,
# gem>anth, anth>gem (BENCH_CELLS="anth>anth/stream ...").
#
# Environment (all optional):
#   BENCH_RUNS=3  BENCH_DURATION=10s  BENCH_WARMUP=2s  BENCH_CONNS=64  BENCH_QUICK=0
#   BENCH_CELLS="oai>oai/stream anth>oai/stream ..."   subset/order (each mode's oai>oai is added)
#   BENCH_PIN=1  BENCH_CPU_GW=0  BENCH_CPU_MOCK=0  BENCH_CPU_WRK=1
#   BUILD_DIR=build  SLUICE_BIN=  MOCK_BIN=  BENCH_KEEP_TMP=0
#
# Before timing, every cell sends its exact wrk request once (bench/translate.lua with
# BENCH_CAPTURE) and bench/translate.py validates the answer as that protocol's client would
# (status 200, stream shape, terminal event, the text); that answer also gives the events per
# response. During the runs, wrk's errors/non-2xx and, at the end, the gateway's own
# sluice_requests_total by outcome must show nothing but success; otherwise the script exits 1
# after writing the report. Rounds rotate the cell order. Results:
# bench/results/translate-latest.txt (+ translate-latest-raw.tsv). Every process started here is
# recorded by PID and stopped by the EXIT trap; nothing listens beyond 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
SLUICE_BIN=${SLUICE_BIN:-$BUILD_DIR/sluice}
MOCK_BIN=${MOCK_BIN:-$BUILD_DIR/sluice-mock}
WRK_BIN=${WRK_BIN:-wrk}
PYTHON=${PYTHON:-python3}

# The exact command, for the top of the report (the knobs that were set, then the script).
COMMAND="$(env | grep -E '^(BENCH_[A-Z_]+|BUILD_DIR|SLUICE_BIN|MOCK_BIN|WRK_BIN)=' | sort \
  | sed -E "s/=(.*[^A-Za-z0-9_./:=-].*)$/='\1'/" | tr '\n' ' ')bash bench/translate.sh"

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
  RUNS=${BENCH_RUNS:-1}; DURATION=${BENCH_DURATION:-3s}; WARMUP=${BENCH_WARMUP:-1s}
else
  RUNS=${BENCH_RUNS:-3}; DURATION=${BENCH_DURATION:-10s}; WARMUP=${BENCH_WARMUP:-2s}
fi
CONNS=${BENCH_CONNS:-64}
TOKENS=20
DEFAULT_CELLS="oai>oai/stream anth>oai/stream oai>anth/stream gem>oai/stream oai>gem/stream"
DEFAULT_CELLS+=" oai>oai/unary anth>oai/unary oai>anth/unary"
read -r -a CELLS <<<"${BENCH_CELLS:-$DEFAULT_CELLS}"
PIN=${BENCH_PIN:-1}
CPU_GW=${BENCH_CPU_GW:-0}
CPU_MOCK=${BENCH_CPU_MOCK:-0}
CPU_WRK=${BENCH_CPU_WRK:-1}
RESULTS_DIR="$BENCH/results"
OUT="$RESULTS_DIR/translate-latest.txt"
RAW="$RESULTS_DIR/translate-latest-raw.tsv"

BENCH_SELF=translate.sh
BENCH_TAG=xlbench
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

# ---------------------------------------------------------------- cells
declare -A PROTO=([oai]=openai [anth]=anthropic [gem]=gemini)
declare -A MODEL=([oai]=mock-model [anth]=claude-up [gem]=gemini-up)   # by upstream protocol

for c in "${CELLS[@]}"; do
  [[ $c =~ ^(oai|anth|gem)\>(oai|anth|gem)/(stream|unary)$ ]] \
    || die "bad cell '$c' (want CLIENT>UPSTREAM/MODE, CLIENT and UPSTREAM in oai anth gem)"
done
# Each mode's reference goes first, whether asked for or not: a ratio needs it in the same run.
declare -a SEL=()
for mode in stream unary; do
  want=0
  for c in "${CELLS[@]}"; do [[ $c != */$mode ]] || want=1; done
  ((want)) || continue
  SEL+=("oai>oai/$mode")
  for c in "${CELLS[@]}"; do
    [[ $c == */$mode && $c != "oai>oai/$mode" ]] && SEL+=("$c")
  done
done
CELLS=("${SEL[@]}")

# cell_vars CELL → C_PROTO (the client protocol), C_MODEL (routes to the upstream protocol),
# C_STREAM (1/0): what bench/translate.lua reads as BENCH_PROTO / BENCH_MODEL / BENCH_STREAM
cell_vars() {
  local c=$1 upstream
  upstream=${c#*>}; upstream=${upstream%/*}
  C_PROTO=${PROTO[${c%%>*}]}
  C_MODEL=${MODEL[$upstream]}
  if [[ $c == */stream ]]; then C_STREAM=1; else C_STREAM=0; fi
}

# ---------------------------------------------------------------- preflight
command -v "$WRK_BIN" >/dev/null || die "wrk not found"
command -v "$PYTHON" >/dev/null || die "python3 not found"
command -v curl >/dev/null || die "curl not found"
[[ -x $SLUICE_BIN ]] || die "$SLUICE_BIN not found (build first: make build)"
[[ -x $MOCK_BIN ]] || die "$MOCK_BIN not found (build first: make build)"
check_pinning "$CPU_GW" "$CPU_MOCK" "$CPU_WRK"
bench_init xlbench       # $TMP + the EXIT trap that stops every process started here
mkdir -p "$RESULTS_DIR"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

GW=$(snapshot_bin "$SLUICE_BIN" gw)
UPSTREAM_BIN=$(snapshot_bin "$MOCK_BIN" upstream)
GW_SUM=$(sha256sum "$GW" | cut -c1-12)
GW_MTIME=$(date -u -r "$SLUICE_BIN" +%Y-%m-%dT%H:%M:%SZ)

# ---------------------------------------------------------------- start servers
start_bg mock "$CPU_MOCK" "$TMP/mock.log" \
  "$UPSTREAM_BIN" --listen 127.0.0.1:0 --threads 1 --tokens "$TOKENS"
MOCK_PID=$LAST_PID
UPSTREAM=$(listen_addr "$MOCK_PID" "$TMP/mock.log")
log "mock pid $MOCK_PID on $UPSTREAM"

# The operations listener (/metrics) on an ephemeral port: the end-of-run outcome check reads it.
cat >"$TMP/gw.yaml" <<EOF
server: {listen: "127.0.0.1:0", threads: 1, max_connections: 20000}
admin: {listen: "127.0.0.1:0"}
routes:
  - model: mock-model
    targets: [{provider: openai, base_url: "http://$UPSTREAM/v1"}]
  - model: claude-up
    targets: [{provider: anthropic, base_url: "http://$UPSTREAM", model: claude-mock}]
  - model: gemini-up
    targets: [{provider: gemini, base_url: "http://$UPSTREAM/v1beta", model: gemini-mock}]
EOF
GW_LOG="$TMP/gw.log"
start_bg gw "$CPU_GW" "$GW_LOG" "$GW" --config "$TMP/gw.yaml"
GW_PID=$LAST_PID
URL="http://$(listen_addr "$GW_PID" "$GW_LOG")"
ADMIN_URL="http://$(admin_addr "$GW_PID" "$GW_LOG")"
log "sluice pid $GW_PID on $URL, operations on $ADMIN_URL"

alive_all() { alive_or_die "$GW_PID" "$GW_LOG"; alive_or_die "$MOCK_PID" "$TMP/mock.log"; }

# ---------------------------------------------------------------- check every cell, count events
declare -A EVENTS=()
for c in "${CELLS[@]}"; do
  f="$TMP/check-${c//[>\/]/_}.out"
  rm -f "$f"
  cell_vars "$c"
  BENCH_PROTO=$C_PROTO BENCH_MODEL=$C_MODEL BENCH_STREAM=$C_STREAM BENCH_CAPTURE="$f" \
    timeout --kill-after=5 20 "$WRK_BIN" -t1 -c1 -d1s -s "$BENCH/translate.lua" "$URL" \
    >"$f.wrk" 2>&1 || true
  [[ -s $f ]] || { cat "$f.wrk" >&2; die "$c: no answer captured (gateway log: $GW_LOG)"; }
  if ! n=$("$PYTHON" "$BENCH/translate.py" check "$C_PROTO" "$C_STREAM" "$f" "$TOKENS"); then
    echo "---- $c: the answer ($f):" >&2; head -c 1500 "$f" >&2; echo >&2
    die "$c: invalid answer, not timing a broken route"
  fi
  EVENTS[$c]=$n
  log "check $c: 200, valid $([[ $C_STREAM == 1 ]] && echo "stream of $n events" || echo "body")"
done
alive_all
log "all cells answer; runs=$RUNS duration=$DURATION warmup=$WARMUP conns=$CONNS pin=$PIN (gw cpu $CPU_GW, mock cpu $CPU_MOCK, wrk cpu $CPU_WRK)"

# ---------------------------------------------------------------- wrk runs
wrk_cell() {  # DURATION CELL (the assignments reach wrk's environment, as for a command)
  cell_vars "$2"
  BENCH_PROTO=$C_PROTO BENCH_MODEL=$C_MODEL BENCH_STREAM=$C_STREAM \
    wrk_run "$CONNS" "$1" "$BENCH/translate.lua" "$URL"
}

for c in "${CELLS[@]}"; do   # warm-up: pools, caches, allocator, every codec path
  wrk_cell "$WARMUP" "$c" >/dev/null 2>&1 || true
done
alive_all

ref_of() { echo "oai>oai/${1#*/}"; }
printf 'cell\tmode\tref\tevents_per_resp\trun\trps\tp50_us\tp99_us\trequests\terrors\tnon2xx\tgw_cpu_us_per_event\tgw_cpu_us_per_resp\tmock_cpu_us_per_resp\tcpu_busy\n' >"$RAW"
BAD=0
N=${#CELLS[@]}
for ((r = 1; r <= RUNS; r++)); do
  for ((k = 0; k < N; k++)); do   # rotating order: A B C .., B C .. A, ...
    c=${CELLS[$(((r - 1 + k) % N))]}
    f="$TMP/wrk-${c//[>\/]/_}-$r.out"
    gw0=$(cpu_ticks "$GW_PID"); mk0=$(cpu_ticks "$MOCK_PID")
    if ! wrk_cell "$DURATION" "$c" >"$f" 2>&1; then
      cat "$f" >&2; die "wrk failed for $c run $r"
    fi
    gw1=$(cpu_ticks "$GW_PID"); mk1=$(cpu_ticks "$MOCK_PID")
    wrk_result "$f" || { cat "$f" >&2; die "no BENCH_RESULT from wrk ($c run $r)"; }
    n=${kv[requests]}
    ((n > 0)) || { cat "$f" >&2; die "$c run $r: no requests completed"; }
    ev=${EVENTS[$c]}
    gw_ev=$(per_req_us $((gw1 - gw0)) $((n * ev)))
    gw_req=$(per_req_us $((gw1 - gw0)) "$n")
    mk_req=$(per_req_us $((mk1 - mk0)) "$n")
    busy=$(awk -v d=$((gw1 - gw0 + mk1 - mk0)) -v t="$CLK_TCK" -v us="${kv[duration_us]}" \
      'BEGIN{printf "%.3f", d / t / (us / 1e6)}')
    printf '%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "${c#*/}" "$(ref_of "$c")" \
      "$ev" "$r" "${kv[rps]}" "${kv[p50_us]}" "${kv[p99_us]}" "$n" "${kv[errors]}" "${kv[non2xx]}" \
      "$gw_ev" "$gw_req" "$mk_req" "$busy" >>"$RAW"
    log "$c run $r/$RUNS: ${kv[rps]} req/s p50 ${kv[p50_us]}us p99 ${kv[p99_us]}us errors ${kv[errors]} non2xx ${kv[non2xx]}; gw ${gw_ev}us/event ${gw_req}us/resp, mock ${mk_req}us/resp"
    if [[ ${kv[errors]} != 0 || ${kv[non2xx]} != 0 ]]; then
      BAD=$((BAD + 1))
      log "WARNING: $c run $r had errors/non-2xx answers (see $f)"
    fi
    alive_all
  done
done

# ---------------------------------------------------------------- the gateway's own account
# wrk only sees statuses; a stream that began with 200 and then carried an error event is counted
# by the gateway as outcome="stream_error". Everything must be "success", except "cancelled": when
# wrk stops it drops the requests in flight, at most one per connection per wrk invocation.
sleep 0.2   # outcomes are recorded when an exchange finishes
OUTCOMES=$(curl -sS -m 10 "$ADMIN_URL/metrics" | awk '
  /^sluice_requests_total\{/ {
    if (match($0, /outcome="[^"]*"/)) { o = substr($0, RSTART + 9, RLENGTH - 10); s[o] += $NF }
  }
  END { for (o in s) printf "%s=%d ", o, s[o] }') || OUTCOMES="(scrape failed)"
OUTCOMES=${OUTCOMES% }
outcome() { tr ' ' '\n' <<<"$OUTCOMES" | awk -F= -v o="$1" '$1 == o {n = $2} END {print n + 0}'; }
CANCELLED=$(outcome cancelled)
CANCEL_BOUND=$((N + CONNS * N * (1 + RUNS)))   # checks (1 conn) + warm-ups + runs
NOT_OK=$(tr ' ' '\n' <<<"$OUTCOMES" \
  | awk -F= 'NF == 2 && $1 != "success" && $1 != "cancelled" {s += $2} END {print s + 0}')
[[ $OUTCOMES == *success=* ]] || NOT_OK=1
((CANCELLED <= CANCEL_BOUND)) || NOT_OK=$((NOT_OK + CANCELLED - CANCEL_BOUND))
log "gateway outcomes (sluice_requests_total): $OUTCOMES (cancelled: at most $CANCEL_BOUND expected)"
ERR_LINES=$(grep -ciE '\[(error|warn|warning|critical)\]' "$GW_LOG" || true)

# ---------------------------------------------------------------- report
{
  echo "Sluice protocol translation benchmark (issue 11) — $(date -u +%Y-%m-%dT%H:%M:%SZ)  git $(git_rev)"
  echo "command: $COMMAND"
  echo "sluice binary: $SLUICE_BIN (sha256 $GW_SUM…, mtime $GW_MTIME)"
  host_line
  load_line "$LOAD_START"
  echo "runs=$RUNS x $DURATION per cell (median), interleaved with rotating order, warm-up $WARMUP;"
  echo "wrk -t1 -c$CONNS -s bench/translate.lua; sluice threads 1 (metrics on, the defaults); one"
  echo "sluice-mock --threads 1 --tokens $TOKENS reached as provider openai / anthropic / gemini"
  if [[ $PIN == 1 ]]; then
    echo "pinning: sluice on cpu $CPU_GW, sluice-mock on cpu $CPU_MOCK, wrk on cpu $CPU_WRK"
  else
    echo "pinning: none"
  fi
  echo
  "$PYTHON" "$BENCH/translate.py" summary "$RAW"
  echo
  echo "gateway outcomes over the whole run (sluice_requests_total, checks and warm-ups included):"
  echo "  $OUTCOMES (cancelled = in flight when wrk stopped: at most $CANCEL_BOUND = 1 per connection per wrk run)"
  echo "gateway log lines at warn/error level: $ERR_LINES"
  if ((BAD > 0 || NOT_OK > 0)); then
    echo
    echo "FAILED: $BAD run(s) with socket errors or non-2xx answers, $NOT_OK request(s) the gateway"
    echo "counted as neither success nor cancelled-by-wrk; the numbers above are not valid."
  fi
} | tee "$OUT"
log "results written to $OUT (raw per-run numbers: $RAW)"
((BAD == 0 && NOT_OK == 0)) || die "errors during the runs (see above; logs in $TMP)"
