#!/usr/bin/env bash
# Sluice benchmark (issue 12, "Proof"): Sluice against nginx and HAProxy with matched worker
# counts, in front of two upstreams, in one invocation; plus Sluice's memory per idle connection
# and per open stream. See bench/README.md for what every scenario and column means.
#
#   bash bench/run.sh                 # full run (BENCH_RUNS=3 x BENCH_DURATION=10s per cell)
#   BENCH_QUICK=1 bash bench/run.sh   # smoke test: 1 run x 3s, short warm-up
#   BENCH_RUNS=5 BENCH_DOC=1 bash bench/run.sh   # and write the report into docs/benchmarks.md
#
# For every workers value W (BENCH_WORKERS) and upstream U (BENCH_UPSTREAMS) it starts the
# gateways — Sluice `threads: W`, nginx `worker_processes W`, HAProxy `nbthread W` — in front of
# U, runs the scenarios, and stops them (by PID). Upstreams:
#   mock    sluice-mock --threads 1 --tokens 20 (builds every answer: the realistic upstream)
#   static  an nginx (1 worker) answering a recorded unary answer or SSE stream with `return 200`
#           (bench/static-upstream.conf.tmpl): the upstream costs next to nothing, so the
#           gateways' own cost dominates
# Scenarios (wrk -t1, except slow-streams):
#   chat-64c      unary chat, 64 connections: throughput
#   chat-1c       unary chat, 1 connection: the latency one hop adds
#   stream-64c    streaming chat (23 SSE events), 64 connections
#   chat-half     unary chat offered at half nginx's chat-64c rate of the same combination
#                 (64 connections paced by delay(), bench/chat_half.lua): p50/p99 below
#                 saturation. Needs chat-64c and the target nginx.
#   slow-streams  mock only: BENCH_SLOW_STREAMS concurrent streams of 100 events 20 ms apart,
#                 opened over 1 s by bench/stream_client.c (compiled here with cc): CPU seconds
#                 per million relayed events, event latency through the target, RSS per stream.
#                 Its own sluice-mock instance and fresh gateways.
# Memory (Sluice only, fresh instances against the mock) runs once per workers value.
#
# Environment (all optional):
#   BENCH_RUNS=3  BENCH_DURATION=10s  BENCH_WARMUP=2s  BENCH_CONNS=64  BENCH_QUICK=0
#   BENCH_WORKERS="1 2"        workers of every gateway, one combination per value
#   BENCH_UPSTREAMS="static mock"
#   BENCH_TARGETS="direct sluice nginx haproxy"   subset/order of targets
#   BENCH_SCENARIOS="chat-64c chat-1c stream-64c chat-half slow-streams"  subset (run in this order)
#   BENCH_SLOW_STREAMS=2000  BENCH_SLOW_EVENTS=100  BENCH_SLOW_ITL_MS=20  BENCH_SLOW_RAMP_MS=1000
#   BENCH_SLOW_MOCK_THREADS (1 pinned, else 2)  BENCH_CPU_SLOW_MOCK=$BENCH_CPU_WRK (none: unpinned)
#                              the slow-streams mock
#   BENCH_MEMORY=1  BENCH_MEM_CONNS=10000  BENCH_MEM_STREAMS=1000
#   BENCH_PIN   unset: pin at 1 worker only (gateway on BENCH_CPU_GW=0, mock and static upstream
#               on BENCH_CPU_MOCK=0, wrk on BENCH_CPU_WRK=1); 1: always; 0: never
#   BENCH_UPSTREAM=host:port   use an already running upstream as `mock` instead of starting
#                              sluice-mock (plumbing dry-runs only; no slow-streams)
#   BUILD_DIR=build  SLUICE_BIN=  MOCK_BIN=  CC=cc  BENCH_KEEP_TMP=0
#   BENCH_BASE_BIN=path   adds the target `base`: a second Sluice build (an older commit) measured
#                         in the same interleaved runs, in every combination
#   BENCH_BASE_CONFIG_SED='sed script'   applied to its config (an old build that does not know
#                         a newer key: e.g. '/^admin:/d; s/forward_headers: \[[^]]*\], //')
#   BENCH_DOC=0   1: replace the section between `<!-- bench/run.sh results: begin -->` and
#                 `<!-- bench/run.sh results: end -->` of docs/benchmarks.md (appended if absent)
#                 with this run's report, command line, date, git rev and host
#                 (BENCH_DOC_FILE=path: another file, e.g. to try it out)
#
# Every process this script starts is recorded by PID ($! of a plain background command, so
# the PID is the server itself: taskset execs it), stopped by PID when its combination ends, and
# anything left by the EXIT trap. Nothing is killed by name.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"

# The command line as typed, environment included (for the report and BENCH_DOC).
shq() { if [[ $1 =~ ^[A-Za-z0-9_./:=@%+,-]*$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi; }
CMDLINE=
for v in $(compgen -e | grep -E '^(BENCH_[A-Z_]+|BUILD_DIR|SLUICE_BIN|MOCK_BIN|NGINX_BIN|HAPROXY_BIN|WRK_BIN|PYTHON|CC)$' | sort); do
  CMDLINE+="$v=$(shq "${!v}") "
done
CMDLINE+="bash bench/run.sh"

BUILD_DIR=${BUILD_DIR:-$ROOT/build}
SLUICE_BIN=${SLUICE_BIN:-$BUILD_DIR/sluice}
MOCK_BIN=${MOCK_BIN:-$BUILD_DIR/sluice-mock}
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
HAPROXY_BIN=${HAPROXY_BIN:-/usr/sbin/haproxy}
WRK_BIN=${WRK_BIN:-wrk}
PYTHON=${PYTHON:-python3}
CC=${CC:-cc}

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
  RUNS=${BENCH_RUNS:-1}; DURATION=${BENCH_DURATION:-3s}; WARMUP=${BENCH_WARMUP:-1s}
else
  RUNS=${BENCH_RUNS:-3}; DURATION=${BENCH_DURATION:-10s}; WARMUP=${BENCH_WARMUP:-2s}
fi
CONNS=${BENCH_CONNS:-64}
TOKENS=20
TARGETS=${BENCH_TARGETS:-direct sluice nginx haproxy}
BASE_BIN=${BENCH_BASE_BIN:-}
if [[ -n $BASE_BIN && " $TARGETS " != *" base "* ]]; then TARGETS="${TARGETS/sluice/sluice base}"; fi
ALL_SCENARIOS="chat-64c chat-1c stream-64c chat-half slow-streams"
SCENARIOS=${BENCH_SCENARIOS:-$ALL_SCENARIOS}
WORKERS_LIST=${BENCH_WORKERS:-1 2}
UPSTREAMS=${BENCH_UPSTREAMS:-static mock}
MEMORY=${BENCH_MEMORY:-1}
MEM_CONNS=${BENCH_MEM_CONNS:-10000}
MEM_STREAMS=${BENCH_MEM_STREAMS:-1000}
SLOW_N=${BENCH_SLOW_STREAMS:-2000}
SLOW_EVENTS=${BENCH_SLOW_EVENTS:-100}
SLOW_ITL_MS=${BENCH_SLOW_ITL_MS:-20}
SLOW_RAMP_MS=${BENCH_SLOW_RAMP_MS:-1000}
SLOW_MOCK_THREADS=${BENCH_SLOW_MOCK_THREADS:-}   # default: 1 when pinned (one CPU), else 2
SLOW_TIMEOUT_S=${BENCH_SLOW_TIMEOUT_S:-60}
CPU_GW=${BENCH_CPU_GW:-0}
CPU_MOCK=${BENCH_CPU_MOCK:-0}
CPU_WRK=${BENCH_CPU_WRK:-1}
CPU_SLOW_MOCK=${BENCH_CPU_SLOW_MOCK:-$CPU_WRK}
DOC=${BENCH_DOC:-0}
DOC_FILE=${BENCH_DOC_FILE:-$ROOT/docs/benchmarks.md}
RESULTS_DIR="$BENCH/results"
OUT="$RESULTS_DIR/latest.txt"
RAW="$RESULTS_DIR/latest-raw.tsv"

in_list() { [[ " $2 " == *" $1 "* ]]; }   # WORD "LIST"

for w in $WORKERS_LIST; do
  [[ $w =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_WORKERS must be a list of positive integers (got '$w')" >&2; exit 2; }
done
[[ -n ${WORKERS_LIST// /} ]] || { echo "BENCH_WORKERS is empty" >&2; exit 2; }
for u in $UPSTREAMS; do
  in_list "$u" "static mock" || { echo "BENCH_UPSTREAMS: unknown upstream '$u' (static, mock)" >&2; exit 2; }
done
[[ -n ${UPSTREAMS// /} ]] || { echo "BENCH_UPSTREAMS is empty" >&2; exit 2; }
for sc in $SCENARIOS; do
  in_list "$sc" "$ALL_SCENARIOS" || { echo "BENCH_SCENARIOS: unknown scenario '$sc' ($ALL_SCENARIOS)" >&2; exit 2; }
done
for v in SLOW_N SLOW_EVENTS SLOW_ITL_MS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer" >&2; exit 2; }
done
[[ $SLOW_RAMP_MS =~ ^[0-9]+$ ]] || { echo "BENCH_SLOW_RAMP_MS must be an integer" >&2; exit 2; }
[[ -z $SLOW_MOCK_THREADS || $SLOW_MOCK_THREADS =~ ^[1-9][0-9]*$ ]] \
  || { echo "BENCH_SLOW_MOCK_THREADS must be a positive integer" >&2; exit 2; }

BENCH_SELF=run.sh
BENCH_TAG=bench
PIN=1
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"   # die log secs start_bg forget_pid alive_or_die wait_line wait_port ...
# Neutral names on the command lines (temp dir, config files): on a shared dev box, other people's
# `pkill -f sluice` must not take down the bench; copy the binaries to neutral names and pass SLUICE_BIN/MOCK_BIN to go further.
bench_init gwbench       # $TMP + the EXIT trap that stops every process started here

# ---------------------------------------------------------------- preflight
command -v "$WRK_BIN" >/dev/null || die "wrk not found"
command -v "$PYTHON" >/dev/null || die "python3 not found"
command -v curl >/dev/null || die "curl not found"
[[ -x $NGINX_BIN ]] || die "nginx not found at $NGINX_BIN"
[[ -x $HAPROXY_BIN ]] || die "haproxy not found at $HAPROXY_BIN"
if [[ -z ${BENCH_UPSTREAM:-} ]]; then
  [[ -x $MOCK_BIN ]] || die "$MOCK_BIN not found (build first: make / cmake --build build)"
fi
if in_list sluice "$TARGETS" || [[ $MEMORY == 1 ]]; then
  [[ -x $SLUICE_BIN ]] || die "$SLUICE_BIN not found (build first)"
fi
if in_list base "$TARGETS"; then
  [[ -x $BASE_BIN ]] || die "target base needs BENCH_BASE_BIN (an executable Sluice build)"
fi
SLOW=0
if in_list slow-streams "$SCENARIOS" && in_list mock "$UPSTREAMS"; then
  if [[ -n ${BENCH_UPSTREAM:-} ]]; then
    log "slow-streams skipped: it needs its own sluice-mock (BENCH_UPSTREAM is set)"
  else
    SLOW=1
    command -v "$CC" >/dev/null \
      || die "slow-streams needs a C compiler ('$CC' not found) to build bench/stream_client.c; install gcc, set CC, or leave slow-streams out of BENCH_SCENARIOS"
    "$CC" -O2 -o "$TMP/stream_client" "$BENCH/stream_client.c" \
      || die "compiling bench/stream_client.c with $CC failed"
  fi
elif in_list slow-streams "$SCENARIOS"; then
  log "slow-streams skipped: it runs with the mock upstream only (BENCH_UPSTREAMS=$UPSTREAMS)"
fi
[[ $DOC != 1 || -w $DOC_FILE ]] || die "BENCH_DOC=1: $DOC_FILE is not a writable file"
if [[ $CPU_SLOW_MOCK == none ]]; then check_pinning "$CPU_GW" "$CPU_MOCK" "$CPU_WRK"
else check_pinning "$CPU_GW" "$CPU_MOCK" "$CPU_WRK" "$CPU_SLOW_MOCK"; fi
PIN_OK=$PIN
# 10k client sockets in hold_conns.py + 10k in Sluice (separate processes, but one limit each);
# slow-streams: 2 sockets per stream in a gateway.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [[ $NOFILE != unlimited && $NOFILE -lt $((MEM_CONNS + 256)) ]]; then
  log "open-file limit is $NOFILE (< $((MEM_CONNS + 256))); memory test will use $((NOFILE - 256)) connections"
  MEM_CONNS=$((NOFILE - 256))
fi
if [[ $SLOW == 1 && $NOFILE != unlimited && $NOFILE -lt $((2 * SLOW_N + 256)) ]]; then
  die "open-file limit is $NOFILE: too low for BENCH_SLOW_STREAMS=$SLOW_N (needs $((2 * SLOW_N + 256)))"
fi
mkdir -p "$RESULTS_DIR"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)

BODY='{"model":"mock-model","messages":[{"role":"user","content":"hello"}]}'
SBODY='{"model":"mock-model","messages":[{"role":"user","content":"hello"}],"stream":true}'

# pin_for W → PIN: BENCH_PIN if set, else pinned at 1 worker only (more workers need every core)
pin_for() {
  if [[ -n ${BENCH_PIN:-} ]]; then PIN=$BENCH_PIN; elif (($1 > 1)); then PIN=0; else PIN=1; fi
  [[ $PIN_OK == 1 ]] || PIN=0
}

# ---------------------------------------------------------------- upstreams
start_mock() {  # NAME THREADS TOKENS CPU → LAST_PID, MOCK_ADDR
  start_bg "$1" "$4" "$TMP/$1.log" "$MOCK_BIN" --listen 127.0.0.1:0 --threads "$2" --tokens "$3"
  local pid=$LAST_PID
  MOCK_ADDR=$(listen_addr "$pid" "$TMP/$1.log")
  LAST_PID=$pid
}

# The static upstream's two bodies, recorded once from the mock (--tokens 20).
STATIC_UNARY="$TMP/static-unary.body"
STATIC_STREAM="$TMP/static-stream.body"
record_static_bodies() {  # UPSTREAM_ADDR
  [[ ! -s $STATIC_STREAM ]] || return 0
  curl -sS -m 10 -o "$STATIC_UNARY" -H 'Content-Type: application/json' -d "$BODY" \
    "http://$1/v1/chat/completions" || die "recording the static unary body from $1 failed"
  curl -sS -m 10 -N -o "$STATIC_STREAM" -H 'Content-Type: application/json' -H 'x-mock-stream: 1' \
    -d "$SBODY" "http://$1/v1/chat/completions" || die "recording the static stream from $1 failed"
  local n
  n=$(grep -c '^data: ' "$STATIC_STREAM" || true)
  if [[ $n -ne $((TOKENS + 3)) ]] || ! tail -n 2 "$STATIC_STREAM" | grep -q '^data: \[DONE\]$'; then
    die "recorded stream from $1 has $n data lines, expected $((TOKENS + 3)) ending in [DONE]"
  fi
  grep -q '"choices"' "$STATIC_UNARY" || die "recorded unary body from $1 is not a chat completion"
  log "static bodies recorded: unary $(wc -c <"$STATIC_UNARY") bytes, stream $(wc -c <"$STATIC_STREAM") bytes ($n events)"
}

start_static() {  # NAME → LAST_PID, STATIC_ADDR
  local dir="$TMP/$1" port
  port=$(free_port)
  mkdir -p "$dir"
  "$PYTHON" - "$BENCH/static-upstream.conf.tmpl" "$dir/nginx.conf" "$port" "$dir" \
    "$STATIC_UNARY" "$STATIC_STREAM" <<'EOF' || die "rendering bench/static-upstream.conf.tmpl failed"
import sys
tmpl, out, port, d, unary, stream = sys.argv[1:]
def esc(b):  # the inside of a single-quoted nginx string
    return b.replace("\\", "\\\\").replace("'", "\\'").replace("\r", "\\r").replace("\n", "\\n")
def returns(path, prefix):  # `set` pieces (one nginx token is at most 4 KiB) + return
    b = open(path, "rb").read().decode()
    if "$" in b:
        sys.exit(f"{path} contains '$': nginx would read a variable")
    pieces = [b[i:i + 1024] for i in range(0, len(b), 1024)]
    lines = [f"            set ${prefix}{i} '{esc(p)}';" for i, p in enumerate(pieces)]
    lines.append('            return 200 "' + "".join(f"${prefix}{i}" for i in range(len(pieces))) + '";')
    return "\n".join(lines)
subst = {"@LISTEN_PORT@": port, "@DIR@": d, "@RETURN_UNARY@": returns(unary, "static_u"),
         "@RETURN_STREAM@": returns(stream, "static_s")}
lines = []
for line in open(tmpl):
    if not line.lstrip().startswith("#"):
        for k, v in subst.items():
            line = line.replace(k, v)
    lines.append(line)
open(out, "w").write("".join(lines))
EOF
  "$NGINX_BIN" -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
    || die "static upstream: nginx config test failed ($dir/nginx.conf)"
  start_bg "$1" "$CPU_MOCK" "$dir/stdout.log" \
    "$NGINX_BIN" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;'
  local pid=$LAST_PID
  wait_port "$pid" "$dir/error.log" "$port" 10
  STATIC_ADDR="127.0.0.1:$port"
  LAST_PID=$pid
}

# ---------------------------------------------------------------- gateways
write_sluice_config() {  # FILE UPSTREAM_ADDR WORKERS
  cat >"$1" <<EOF
server: {listen: "127.0.0.1:0", threads: $3, max_connections: 20000}
admin: {listen: off}
upstream: {max_connections_per_host: 20000}
routes:
  - model: mock-model
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://$2/v1"}]
EOF
}

start_sluice() {  # NAME CONFIG UPSTREAM_ADDR WORKERS [BINARY [CONFIG_SED]] → LAST_PID, SLUICE_ADDR
  local name=$1 cfg=$2 bin=${5:-$SLUICE_BIN}
  write_sluice_config "$cfg" "$3" "$4"
  [[ -z ${6:-} ]] || sed -i -e "$6" "$cfg"
  start_bg "$name" "$CPU_GW" "${cfg%.yaml}.log" "$bin" --config "$cfg"
  local pid=$LAST_PID
  SLUICE_ADDR=$(listen_addr "$pid" "${cfg%.yaml}.log")
  LAST_PID=$pid
}

declare -A URL=() PID_OF=() LOG_OF=()

# start_gateways DIR UPSTREAM_ADDR UPSTREAM_PID UPSTREAM_LOG W: every target of TARGETS in front
# of the upstream (direct = the upstream itself) → URL, PID_OF, LOG_OF
start_gateways() {
  local dir=$1 up=$2 w=$5 t port
  mkdir -p "$dir"
  URL=() PID_OF=() LOG_OF=()
  URL[direct]="http://$up"; PID_OF[direct]=$3; LOG_OF[direct]=${4:-/dev/null}
  for t in $TARGETS; do
    case $t in
      direct) ;;
      sluice)
        start_sluice "sluice" "$dir/sluice.yaml" "$up" "$w"
        PID_OF[sluice]=$LAST_PID; URL[sluice]="http://$SLUICE_ADDR"; LOG_OF[sluice]="$dir/sluice.log" ;;
      base)
        start_sluice "base" "$dir/base.yaml" "$up" "$w" "$BASE_BIN" "${BENCH_BASE_CONFIG_SED:-}"
        PID_OF[base]=$LAST_PID; URL[base]="http://$SLUICE_ADDR"; LOG_OF[base]="$dir/base.log" ;;
      nginx)
        port=$(free_port)
        mkdir -p "$dir/nginx"
        sed -e "s|@LISTEN_PORT@|$port|g" -e "s|@UPSTREAM@|$up|g" -e "s|@DIR@|$dir/nginx|g" \
          -e "s|@WORKERS@|$w|g" "$BENCH/nginx.conf.tmpl" >"$dir/nginx/nginx.conf"
        "$NGINX_BIN" -t -q -p "$dir/nginx" -e "$dir/nginx/error.log" -c "$dir/nginx/nginx.conf" \
          || die "nginx config test failed ($dir/nginx/nginx.conf)"
        # Foreground master (our PID) + W workers; pinned, the workers inherit it.
        start_bg nginx "$CPU_GW" "$dir/nginx/stdout.log" \
          "$NGINX_BIN" -p "$dir/nginx" -e "$dir/nginx/error.log" -c "$dir/nginx/nginx.conf" -g 'daemon off;'
        PID_OF[nginx]=$LAST_PID; LOG_OF[nginx]="$dir/nginx/error.log"
        wait_port "$LAST_PID" "$dir/nginx/error.log" "$port" 10
        URL[nginx]="http://127.0.0.1:$port" ;;
      haproxy)
        port=$(free_port)
        sed -e "s|@LISTEN_PORT@|$port|g" -e "s|@UPSTREAM@|$up|g" -e "s|@WORKERS@|$w|g" \
          "$BENCH/haproxy.cfg.tmpl" >"$dir/haproxy.cfg"
        "$HAPROXY_BIN" -c -q -f "$dir/haproxy.cfg" || die "haproxy config check failed ($dir/haproxy.cfg)"
        start_bg haproxy "$CPU_GW" "$dir/haproxy.log" "$HAPROXY_BIN" -db -f "$dir/haproxy.cfg"
        PID_OF[haproxy]=$LAST_PID; LOG_OF[haproxy]="$dir/haproxy.log"
        wait_port "$LAST_PID" "$dir/haproxy.log" "$port" 10
        URL[haproxy]="http://127.0.0.1:$port" ;;
      *) die "unknown target '$t'" ;;
    esac
    [[ $t == direct ]] || log "  $t pid ${PID_OF[$t]} on ${URL[$t]#http://}"
  done
}

stop_gateways() {  # newest first; the upstream (direct) is not ours to stop here
  local t order=()
  for t in $TARGETS; do order=("$t" "${order[@]}"); done
  for t in "${order[@]}"; do
    [[ $t == direct || -z ${PID_OF[$t]:-} ]] || forget_pid "${PID_OF[$t]}"
  done
}

all_alive() {  # a crashed server must not be mistaken for a slow one
  local t
  for t in $TARGETS; do
    [[ -z ${PID_OF[$t]:-} ]] || alive_or_die "${PID_OF[$t]}" "${LOG_OF[$t]}"
  done
}

# sanity_check: every target answers a unary chat with 200 and a streaming one with 23 events
sanity_check() {
  local t code n
  for t in $TARGETS; do
    code=$(curl -sS -m 10 -o "$TMP/check-$t.out" -w '%{http_code}' -H 'Content-Type: application/json' \
      -d "$BODY" "${URL[$t]}/v1/chat/completions") || code="curl-failed"
    if [[ $code != 200 ]]; then
      echo "---- $t: POST /v1/chat/completions → $code:" >&2; head -c 600 "$TMP/check-$t.out" >&2; echo >&2
      die "$t does not answer a chat completion with 200"
    fi
    if in_list stream-64c "$SCENARIOS"; then
      curl -sS -m 10 -N -o "$TMP/check-$t-stream.out" -H 'Content-Type: application/json' \
        -H 'x-mock-stream: 1' -d "$SBODY" "${URL[$t]}/v1/chat/completions" || true
      n=$(grep -c '^data: ' "$TMP/check-$t-stream.out" || true)
      if [[ $n -ne $((TOKENS + 3)) ]] || ! grep -q '^data: \[DONE\]' "$TMP/check-$t-stream.out"; then
        echo "---- $t streaming answer ($n data lines, expected $((TOKENS + 3))):" >&2
        head -c 600 "$TMP/check-$t-stream.out" >&2; echo >&2
        die "$t streaming answer is wrong"
      fi
    fi
  done
}

# ---------------------------------------------------------------- results
printf 'upstream\tworkers\tscenario\ttarget\trun\trps\tp50_us\tp99_us\trequests\terrors\tnon2xx\tcpu_us_per_resp\textra\n' >"$RAW"
U='' W=''
raw_row() {  # SCENARIO TARGET RUN RPS P50 P99 REQUESTS ERRORS NON2XX CPU EXTRA
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$U" "$W" "$@" >>"$RAW"
}

median_of() {  # SCENARIO TARGET COLUMN(6=rps 7=p50 8=p99) → median over this combination's runs
  awk -F'\t' -v u="$U" -v w="$W" -v s="$1" -v t="$2" -v c="$3" \
    '$1 == u && $2 == w && $3 == s && $4 == t {print $c}' "$RAW" | sort -g \
    | awk '{a[NR] = $1} END {if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'
}

# ---------------------------------------------------------------- wrk scenarios
# wrk_cell SCENARIO CONNS SCRIPT EXTRA: warm-up of every target, then RUNS interleaved runs
# (A B C D, A B C D, ...) so drift hits every target equally. EXTRA goes into the raw TSV.
wrk_cell() {  # SCENARIO CONNS SCRIPT EXTRA
  local sc=$1 c=$2 script=$3 extra=$4 t r f pid ticks0 ticks1 cpu
  for t in $TARGETS; do   # warm-up: pools, caches, allocator
    wrk_run "$c" "$WARMUP" "$script" "${URL[$t]}" >/dev/null 2>&1 || true
  done
  for ((r = 1; r <= RUNS; r++)); do
    for t in $TARGETS; do
      f="$TMP/wrk-$U-w$W-$sc-$t-$r.out"
      # CPU per response: the server's own CPU time (process and its workers) over the run,
      # divided by the responses. Far steadier than req/s on a shared host: it does not move
      # when a neighbour takes the core, only when the server does more work per response.
      pid=${PID_OF[$t]:-}
      ticks0=$( [[ -n $pid ]] && tree_ticks "$pid" || echo 0)
      if ! wrk_run "$c" "$DURATION" "$script" "${URL[$t]}" >"$f" 2>&1; then
        cat "$f" >&2; die "wrk failed for $U/w$W $sc/$t run $r"
      fi
      ticks1=$( [[ -n $pid ]] && tree_ticks "$pid" || echo 0)
      wrk_result "$f" || { cat "$f" >&2; die "no BENCH_RESULT from wrk ($sc/$t)"; }
      cpu=$(per_req_us $((ticks1 - ticks0)) "$(( kv[requests] > 0 ? kv[requests] : 1 ))")
      raw_row "$sc" "$t" "$r" "${kv[rps]}" "${kv[p50_us]}" "${kv[p99_us]}" "${kv[requests]}" \
        "${kv[errors]}" "${kv[non2xx]}" "$cpu" "$extra"
      log "$U w$W $sc $t run $r/$RUNS: ${kv[rps]} req/s p50 ${kv[p50_us]}us p99 ${kv[p99_us]}us cpu ${cpu}us/resp errors ${kv[errors]} non2xx ${kv[non2xx]}"
      all_alive
    done
  done
}

# chat-half: every target offered half of nginx's median chat-64c rate R of this combination, by
# CONNS connections paced by bench/chat_half.lua (delay() waits for the next slot of one shared
# schedule at BENCH_RATE = R/2 per second: the offered rate does not depend on the target's
# latency, so no calibration is needed; the table shows the rate achieved).
half_cell() {
  local r half
  r=$(median_of chat-64c nginx 6)
  [[ -n $r ]] || { log "chat-half skipped: no nginx chat-64c result in $U/w$W"; return 0; }
  half=$(awk -v r="$r" 'BEGIN {printf "%.0f", r / 2}')
  log "$U w$W chat-half: every target offered $half req/s (nginx chat-64c $r / 2) by $CONNS connections"
  BENCH_RATE=$half wrk_cell chat-half "$CONNS" "$BENCH/chat_half.lua" "offered=$half,conns=$CONNS"
}

# ---------------------------------------------------------------- slow streams
# slow_wave TARGET N EVENTS ITL RAMP_MS LOGFILE [PID_FOR_RSS] → kv (the STREAMS_RESULT line parsed),
# SLOW_LINE, PEAK_RSS (tree RSS of PID_FOR_RSS with every stream open), HOST_BUSY (each CPU's busy
# and steal % over the wave, from /proc/stat). Not in a subshell: the
# client's PID must stay in this shell's list.
slow_wave() {
  local t=$1 n=$2 ev=$3 itl=$4 ramp=$5 f=$6 addr cpid snap
  addr=${URL[$t]#http://}
  snap=$(cpu_snapshot)
  start_bg stream_client "$CPU_WRK" "$f" "$TMP/stream_client" "${addr%:*}" "${addr##*:}" "$n" \
    --ramp-ms "$ramp" --expect "$ev" --timeout-s "$SLOW_TIMEOUT_S" \
    --header "x-mock-tokens: $ev" --header "x-mock-itl-ms: $itl" --header "x-mock-ttft-ms: $itl" \
    --header 'x-mock-timestamps: 1'
  cpid=$LAST_PID
  PEAK_RSS=
  if [[ -n ${7:-} ]]; then  # every stream open, none finished yet: ramp + 30 % of a stream
    sleep "$(awk -v r="$ramp" -v e="$ev" -v i="$itl" 'BEGIN {printf "%.3f", (r + 0.3 * e * i) / 1000}')"
    PEAK_RSS=$(tree_rss "$7" 2>/dev/null || true)
  fi
  SLOW_LINE=$(wait_line "$cpid" "$f" '^STREAMS_RESULT' $((ramp / 1000 + SLOW_TIMEOUT_S + 30)))
  forget_pid "$cpid"
  HOST_BUSY=$(cpu_busy "$snap" "$(cpu_snapshot)")
  parse_streams "$SLOW_LINE"
}

parse_streams() {  # LINE → kv
  local kvp
  kv=()
  for kvp in ${1#STREAMS_RESULT }; do kv[${kvp%%=*}]=${kvp#*=}; done
}

slow_cell() {
  local sc=slow-streams mpid t r f pid ticks0 ticks1 m0 m1 cpu mcpu per evps events
  local -A fresh=()
  local threads=$SLOW_MOCK_THREADS
  if [[ -z $threads ]]; then
    if [[ $PIN == 1 && $CPU_SLOW_MOCK != none ]]; then threads=1; else threads=2; fi
  fi
  start_mock "slow-mock-w$W" "$threads" "$SLOW_EVENTS" "${CPU_SLOW_MOCK/#none/}"
  mpid=$LAST_PID
  log "slow-streams: sluice-mock --threads $threads pid $mpid on $MOCK_ADDR; fresh gateways"
  start_gateways "$TMP/c-slow-w$W" "$MOCK_ADDR" "$mpid" "$TMP/slow-mock-w$W.log" "$W"
  sleep 0.5
  for t in $TARGETS; do [[ -z ${PID_OF[$t]:-} ]] || fresh[$t]=$(tree_rss "${PID_OF[$t]}"); done
  # Sanity: one stream through every target, stamps and all, 1 ms apart.
  for t in $TARGETS; do
    slow_wave "$t" 1 "$SLOW_EVENTS" 1 0 "$TMP/slow-check-$t.out"
    [[ ${kv[completed]} == 1 && ${kv[stamped]} == "$SLOW_EVENTS" ]] \
      || { cat "$TMP/slow-check-$t.out" >&2; die "$t: a slow stream did not arrive whole ($SLOW_LINE)"; }
  done
  # Warm-up: a quarter of the streams, 10 events each.
  for t in $TARGETS; do
    slow_wave "$t" $(( (SLOW_N + 3) / 4 )) 10 "$SLOW_ITL_MS" $((SLOW_RAMP_MS / 4)) "$TMP/slow-warm-$t.out"
  done
  all_alive
  for ((r = 1; r <= RUNS; r++)); do
    for t in $TARGETS; do
      f="$TMP/slow-w$W-$t-$r.out"
      pid=${PID_OF[$t]:-}
      ticks0=$( [[ -n $pid ]] && tree_ticks "$pid" || echo 0)
      m0=$(tree_ticks "$mpid")
      slow_wave "$t" "$SLOW_N" "$SLOW_EVENTS" "$SLOW_ITL_MS" "$SLOW_RAMP_MS" "$f" "$pid"
      ticks1=$( [[ -n $pid ]] && tree_ticks "$pid" || echo 0)
      m1=$(tree_ticks "$mpid")
      events=${kv[events]}
      ((events > 0)) || events=1
      cpu=$(per_req_us $((ticks1 - ticks0)) "$events")    # us per event = s per million events
      mcpu=$(per_req_us $((m1 - m0)) "$events")
      per=-
      if [[ -n $PEAK_RSS && -n ${fresh[$t]:-} ]]; then
        per=$(awk -v a="$PEAK_RSS" -v b="${fresh[$t]}" -v n="$SLOW_N" 'BEGIN {printf "%.2f", (a - b) / n}')
      fi
      evps=$(awk -v e="${kv[events]}" -v s="${kv[wall_s]}" 'BEGIN {printf "%.1f", (s > 0 ? e / s : 0)}')
      raw_row "$sc" "$t" "$r" "$evps" "${kv[lat_p50_us]}" "${kv[lat_p99_us]}" "${kv[events]}" \
        "${kv[errors]}" "${kv[err_status]}" "$cpu" \
        "streams=${kv[streams]},completed=${kv[completed]},stamped=${kv[stamped]},wall_s=${kv[wall_s]},client_cpu_pct=${kv[cpu_pct]},mock_cpu_us_ev=$mcpu,rss_kib_stream=$per,peak_rss_kib=${PEAK_RSS:--},fresh_rss_kib=${fresh[$t]:--},lat_p999_us=${kv[lat_p999_us]},lat_max_us=${kv[lat_max_us]},dur_p50_ms=${kv[dur_p50_ms]},dur_p99_ms=${kv[dur_p99_ms]},nominal_ms=$((SLOW_EVENTS * SLOW_ITL_MS)),n=$SLOW_N,events_per_stream=$SLOW_EVENTS,itl_ms=$SLOW_ITL_MS,mock_threads=$threads,$HOST_BUSY"
      log "$U w$W $sc $t run $r/$RUNS: ${kv[completed]}/${kv[streams]} streams, ${kv[events]} events in ${kv[wall_s]}s (stream p50 ${kv[dur_p50_ms]} ms), latency p50 ${kv[lat_p50_us]}us p99 ${kv[lat_p99_us]}us max ${kv[lat_max_us]}us, cpu ${cpu}us/event (mock ${mcpu}), client cpu ${kv[cpu_pct]}%, RSS/stream ${per} KiB, host CPUs ${HOST_BUSY}, errors ${kv[errors]}"
      all_alive
      alive_or_die "$mpid" "$TMP/slow-mock-w$W.log"
    done
  done
  stop_gateways
  forget_pid "$mpid"
}

# ---------------------------------------------------------------- memory (Sluice, per workers value)
MEM_REPORT=()
memory_for() {  # UPSTREAM_ADDR
  local up=$1 mpid maddr idle line with per hpid mock_active
  MEM_REPORT+=("workers=$W: VmRSS of a fresh sluice, threads $W; per-item = (with - idle) / N")
  # (a) idle keep-alive connections
  start_sluice sluice-mem1 "$TMP/mem1-w$W.yaml" "$up" "$W"; mpid=$LAST_PID; maddr=$SLUICE_ADDR
  sleep 1
  idle=$(rss_kib "$mpid")
  log "memory w$W: sluice idle RSS ${idle} KiB; opening $MEM_CONNS keep-alive connections"
  start_bg hold_conns "$CPU_WRK" "$TMP/hold_conns-w$W.log" \
    "$PYTHON" "$BENCH/hold_conns.py" "${maddr%:*}" "${maddr##*:}" "$MEM_CONNS"
  hpid=$LAST_PID
  line=$(wait_line "$hpid" "$TMP/hold_conns-w$W.log" '^(READY|FAILED)' 180)
  [[ $line == READY* ]] || die "hold_conns: $line"
  alive_or_die "$mpid" "$TMP/mem1-w$W.log"
  sleep 1
  with=$(rss_kib "$mpid")
  per=$(awk -v a="$with" -v b="$idle" -v n="$MEM_CONNS" 'BEGIN{printf "%.2f", (a-b)/n}')
  log "memory w$W: $line; RSS ${with} KiB"
  MEM_REPORT+=("$(printf '  %-28s %10s KiB' 'sluice RSS idle (fresh)' "$idle")")
  MEM_REPORT+=("$(printf '  %-28s %10s KiB   %s KiB/conn   (%s)' "+ $MEM_CONNS idle keep-alive" "$with" "$per" "${line#READY }")")
  forget_pid "$hpid"
  forget_pid "$mpid"

  # (b) open streams (mock holds them: ttft/itl 60 s via x-mock-* headers)
  [[ -n ${BENCH_UPSTREAM:-} ]] || curl -sS -m 5 -o /dev/null -X POST "http://$up/mock/reset" || true
  start_sluice sluice-mem2 "$TMP/mem2-w$W.yaml" "$up" "$W"; mpid=$LAST_PID; maddr=$SLUICE_ADDR
  sleep 1
  idle=$(rss_kib "$mpid")
  log "memory w$W: sluice idle RSS ${idle} KiB; opening $MEM_STREAMS streams"
  start_bg hold_streams "$CPU_WRK" "$TMP/hold_streams-w$W.log" \
    "$PYTHON" "$BENCH/hold_streams.py" "${maddr%:*}" "${maddr##*:}" "$MEM_STREAMS"
  hpid=$LAST_PID
  line=$(wait_line "$hpid" "$TMP/hold_streams-w$W.log" '^(READY|FAILED)' 180)
  [[ $line == READY* ]] || die "hold_streams: $line"
  alive_or_die "$mpid" "$TMP/mem2-w$W.log"
  sleep 1
  with=$(rss_kib "$mpid")
  per=$(awk -v a="$with" -v b="$idle" -v n="$MEM_STREAMS" 'BEGIN{printf "%.2f", (a-b)/n}')
  mock_active=
  [[ -n ${BENCH_UPSTREAM:-} ]] || mock_active=$(curl -sS -m 5 "http://$up/mock/stats" \
    | tr -d '{}"' | sed 's/requests:[0-9]*,//' || true)
  log "memory w$W: $line; RSS ${with} KiB; mock ${mock_active:-?}"
  MEM_REPORT+=("$(printf '  %-28s %10s KiB' 'sluice RSS idle (fresh)' "$idle")")
  MEM_REPORT+=("$(printf '  %-28s %10s KiB   %s KiB/stream (%s)' "+ $MEM_STREAMS open streams" "$with" "$per" "${line#READY }")")
  [[ -z $mock_active ]] || MEM_REPORT+=("$(printf '  %-28s %s' '  mock /mock/stats then:' "$mock_active")")
  forget_pid "$hpid"
  forget_pid "$mpid"
}

# ---------------------------------------------------------------- the matrix
RSS_REPORT=()
PIN_REPORT=()
for W in $WORKERS_LIST; do
  pin_for "$W"
  if [[ $PIN == 1 ]]; then
    PIN_REPORT+=("workers=$W: gateways on cpu $CPU_GW, sluice-mock and the static nginx on cpu $CPU_MOCK, wrk/clients on cpu $CPU_WRK, slow-streams mock on cpu $CPU_SLOW_MOCK")
  else
    PIN_REPORT+=("workers=$W: nothing pinned")
  fi
  log "=== workers=$W (pin=$PIN)"
  MOCK_PID='' MOCK_LOG=''
  if [[ -n ${BENCH_UPSTREAM:-} ]]; then
    MOCK_UP=$BENCH_UPSTREAM
    log "using external upstream $MOCK_UP as mock (no sluice-mock started)"
  else
    start_mock "sluice-mock-w$W" 1 "$TOKENS" "$CPU_MOCK"
    MOCK_PID=$LAST_PID; MOCK_UP=$MOCK_ADDR; MOCK_LOG="$TMP/sluice-mock-w$W.log"
    log "sluice-mock pid $MOCK_PID on $MOCK_UP"
  fi
  STATIC_PID=
  if in_list static "$UPSTREAMS"; then
    record_static_bodies "$MOCK_UP"
    start_static "static-w$W"
    STATIC_PID=$LAST_PID
    log "static upstream (nginx) pid $STATIC_PID on $STATIC_ADDR"
  fi
  for U in $UPSTREAMS; do
    log "=== upstream=$U workers=$W"
    if [[ $U == static ]]; then
      start_gateways "$TMP/c-$U-w$W" "$STATIC_ADDR" "$STATIC_PID" "$TMP/static-w$W/error.log" "$W"
    else
      start_gateways "$TMP/c-$U-w$W" "$MOCK_UP" "$MOCK_PID" "${MOCK_LOG:-/dev/null}" "$W"
    fi
    sanity_check
    log "all targets answer; runs=$RUNS duration=$DURATION warmup=$WARMUP pin=$PIN"
    for sc in $ALL_SCENARIOS; do
      in_list "$sc" "$SCENARIOS" || continue
      case $sc in
        chat-64c)   wrk_cell "$sc" "$CONNS" "$BENCH/chat.lua" - ;;
        chat-1c)    wrk_cell "$sc" 1 "$BENCH/chat.lua" - ;;
        stream-64c) wrk_cell "$sc" "$CONNS" "$BENCH/chat_stream.lua" - ;;
        chat-half)
          if in_list chat-64c "$SCENARIOS" && in_list nginx "$TARGETS"; then half_cell
          else log "chat-half skipped: it needs chat-64c in BENCH_SCENARIOS and nginx in BENCH_TARGETS"; fi ;;
        slow-streams) ;;  # below, with its own mock and fresh gateways
      esac
    done
    if [[ -n ${PID_OF[sluice]:-} ]]; then
      RSS_REPORT+=("$(printf 'upstream=%s workers=%s: sluice RSS after the load runs %s KiB' "$U" "$W" "$(rss_kib "${PID_OF[sluice]}")")")
    fi
    stop_gateways
    if [[ $U == mock && $SLOW == 1 ]]; then slow_cell; fi
  done
  if [[ $MEMORY == 1 ]]; then memory_for "$MOCK_UP"; fi
  [[ -z $STATIC_PID ]] || forget_pid "$STATIC_PID"
  [[ -z $MOCK_PID ]] || forget_pid "$MOCK_PID"
done

# ---------------------------------------------------------------- report
{
  echo "Sluice benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)  git $(git_rev)$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (+ uncommitted changes in src/)')"
  host_line
  load_line "$LOAD_START"
  echo "command: $CMDLINE"
  echo "wall time: $(( $(date +%s) - T_START )) s"
  echo "runs=$RUNS x $DURATION (median), warm-up $WARMUP, wrk -t1 -c$CONNS/-c1; workers: $WORKERS_LIST; upstreams: $UPSTREAMS"
  echo "upstreams: mock = sluice-mock --threads 1 --tokens $TOKENS; static = nginx (1 worker) returning the recorded answers"
  printf 'pinning: %s\n' "${PIN_REPORT[@]}"
  if [[ -n $BASE_BIN ]]; then
    sed_note=
    [[ -z ${BENCH_BASE_CONFIG_SED:-} ]] || sed_note=" after sed '$BENCH_BASE_CONFIG_SED'"
    echo "base = $BASE_BIN (same config$sed_note)"
  fi
  echo "targets: direct = the upstream itself, sluice (threads W), nginx $("$NGINX_BIN" -v 2>&1 | sed 's|.*/||') (W workers), haproxy $("$HAPROXY_BIN" -v | head -1 | awk '{print $3}') (nbthread W)"
  echo
  "$PYTHON" "$BENCH/summarize.py" "$RAW"
  if ((${#RSS_REPORT[@]})); then
    echo
    printf '%s\n' "${RSS_REPORT[@]}"
  fi
  if ((${#MEM_REPORT[@]})); then
    echo
    echo "Memory (Sluice; fresh instances in front of sluice-mock):"
    printf '%s\n' "${MEM_REPORT[@]}"
  fi
} | tee "$OUT"
log "results written to $OUT (raw per-run numbers: $RAW)"

if [[ $DOC == 1 ]]; then
  "$PYTHON" - "$DOC_FILE" "$OUT" "$CMDLINE" "$(git_rev)" "$(host_line)" <<'EOF'
import datetime, sys
doc, report, cmd, rev, host = sys.argv[1:]
begin, end = "<!-- bench/run.sh results: begin -->", "<!-- bench/run.sh results: end -->"
text = open(doc).read()
section = "\n".join([
    begin,
    f"### bench/run.sh, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, git {rev}",
    "",
    host + "  ",
    "Command:",
    "",
    "```",
    cmd,
    "```",
    "",
    "```",
    open(report).read().rstrip("\n"),
    "```",
    end,
])
if begin in text and end in text and text.index(begin) < text.index(end):
    text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(doc, "w").write(text)
EOF
  log "$DOC_FILE updated (section between the bench/run.sh results markers)"
fi
