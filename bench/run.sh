#!/usr/bin/env bash
# Sluice benchmark: throughput/latency of Sluice vs nginx vs HAProxy in front of sluice-mock,
# plus Sluice's memory per idle connection and per open stream. See bench/README.md.
#
#   bash bench/run.sh                 # full run (BENCH_RUNS=3 x BENCH_DURATION=10s per cell)
#   BENCH_QUICK=1 bash bench/run.sh   # smoke test: 1 run x 3s, short warm-up
#
# Environment (all optional):
#   BENCH_RUNS=3  BENCH_DURATION=10s  BENCH_WARMUP=2s  BENCH_CONNS=64  BENCH_QUICK=0
#   BENCH_TARGETS="direct sluice nginx haproxy"   subset/order of targets
#   BENCH_SCENARIOS="chat-64c chat-1c stream-64c"  subset of scenarios
#   BENCH_MEMORY=1  BENCH_MEM_CONNS=10000  BENCH_MEM_STREAMS=1000
#   BENCH_PIN=1  BENCH_CPU_GW=0  BENCH_CPU_MOCK=0  BENCH_CPU_WRK=1   (taskset pinning)
#   BENCH_WORKERS=1   workers of every gateway: Sluice threads, nginx worker_processes, HAProxy
#                     nbthread (more than 1: nothing is pinned unless BENCH_PIN=1 is set)
#   BENCH_UPSTREAM=host:port   use an already running upstream instead of starting sluice-mock
#                              (plumbing dry-runs only; scenario (c) needs the real mock)
#   BUILD_DIR=build  SLUICE_BIN=  MOCK_BIN=  BENCH_KEEP_TMP=0
#   BENCH_BASE_BIN=path   adds the target `base`: a second Sluice build (an older commit) measured
#                         in the same interleaved run, for before/after comparisons
#   BENCH_BASE_CONFIG_SED='sed script'   applied to its config (an old build that does not know
#                         a newer key: e.g. '/^admin:/d; s/forward_headers: \[[^]]*\], //')
#
# Every process this script starts is recorded by PID ($! of a plain background command, so
# the PID is the server itself: taskset execs it) and stopped by the EXIT trap.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
SLUICE_BIN=${SLUICE_BIN:-$BUILD_DIR/sluice}
MOCK_BIN=${MOCK_BIN:-$BUILD_DIR/sluice-mock}
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
HAPROXY_BIN=${HAPROXY_BIN:-/usr/sbin/haproxy}
WRK_BIN=${WRK_BIN:-wrk}
PYTHON=${PYTHON:-python3}

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
SCENARIOS=${BENCH_SCENARIOS:-chat-64c chat-1c stream-64c}
MEMORY=${BENCH_MEMORY:-1}
MEM_CONNS=${BENCH_MEM_CONNS:-10000}
MEM_STREAMS=${BENCH_MEM_STREAMS:-1000}
WORKERS=${BENCH_WORKERS:-1}
[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_WORKERS must be a positive integer" >&2; exit 2; }
# One worker each: the gateway under test gets a core of its own. More: they need every core,
# so nothing is pinned (unless asked for).
if ((WORKERS > 1)); then PIN=${BENCH_PIN:-0}; else PIN=${BENCH_PIN:-1}; fi
CPU_GW=${BENCH_CPU_GW:-0}
CPU_MOCK=${BENCH_CPU_MOCK:-0}
CPU_WRK=${BENCH_CPU_WRK:-1}
RESULTS_DIR="$BENCH/results"
OUT="$RESULTS_DIR/latest.txt"
RAW="$RESULTS_DIR/latest-raw.tsv"

BENCH_SELF=run.sh
BENCH_TAG=bench
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"   # die log secs start_bg forget_pid alive_or_die wait_line wait_port ...
# Neutral names on the command lines (temp dir, config files): on a shared dev box, other people's
# `pkill -f sluice` must not take down the bench; copy the binaries to neutral names and pass SLUICE_BIN/MOCK_BIN to go further.
bench_init gwbench       # $TMP + the EXIT trap that stops every process started here

# ---------------------------------------------------------------- preflight
command -v "$WRK_BIN" >/dev/null || die "wrk not found"
command -v "$PYTHON" >/dev/null || die "python3 not found"
[[ -x $NGINX_BIN ]] || die "nginx not found at $NGINX_BIN"
[[ -x $HAPROXY_BIN ]] || die "haproxy not found at $HAPROXY_BIN"
if [[ -z ${BENCH_UPSTREAM:-} ]]; then
  [[ -x $MOCK_BIN ]] || die "$MOCK_BIN not found (build first: make / cmake --build build)"
fi
if [[ " $TARGETS " == *" sluice "* || $MEMORY == 1 ]]; then
  [[ -x $SLUICE_BIN ]] || die "$SLUICE_BIN not found (build first)"
fi
if [[ " $TARGETS " == *" base "* ]]; then
  [[ -x $BASE_BIN ]] || die "target base needs BENCH_BASE_BIN (an executable Sluice build)"
fi
check_pinning "$CPU_GW" "$CPU_WRK"
# 10k client sockets in hold_conns.py + 10k in Sluice (separate processes, but one limit each).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [[ $NOFILE != unlimited && $NOFILE -lt $((MEM_CONNS + 256)) ]]; then
  log "open-file limit is $NOFILE (< $((MEM_CONNS + 256))); memory test will use $((NOFILE - 256)) connections"
  MEM_CONNS=$((NOFILE - 256))
fi
mkdir -p "$RESULTS_DIR"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- start servers
declare -A URL=()

if [[ -n ${BENCH_UPSTREAM:-} ]]; then
  UPSTREAM=$BENCH_UPSTREAM
  log "using external upstream $UPSTREAM (no sluice-mock started)"
else
  start_bg sluice-mock "$CPU_MOCK" "$TMP/mock.log" \
    "$MOCK_BIN" --listen 127.0.0.1:0 --threads 1 --tokens "$TOKENS"
  MOCK_PID=$LAST_PID
  UPSTREAM=$(listen_addr "$MOCK_PID" "$TMP/mock.log")
  log "sluice-mock pid $MOCK_PID on $UPSTREAM"
fi
URL[direct]="http://$UPSTREAM"

write_sluice_config() {  # FILE
  cat >"$1" <<EOF
server: {listen: "127.0.0.1:0", threads: $WORKERS, max_connections: 20000}
admin: {listen: off}
routes:
  - model: mock-model
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://$UPSTREAM/v1"}]
EOF
}

start_sluice() {  # NAME CONFIG_BASENAME [BINARY [CONFIG_SED]] → LAST_PID, SLUICE_ADDR
  local name=$1 cfg="$TMP/$2.yaml" bin=${3:-$SLUICE_BIN}
  write_sluice_config "$cfg"
  [[ -z ${4:-} ]] || sed -i -e "$4" "$cfg"
  start_bg "$name" "$CPU_GW" "$TMP/$name.log" "$bin" --config "$cfg"
  local pid=$LAST_PID
  SLUICE_ADDR=$(listen_addr "$pid" "$TMP/$name.log")
  LAST_PID=$pid
}

if [[ " $TARGETS " == *" sluice "* ]]; then
  start_sluice sluice gw-main
  SLUICE_PID=$LAST_PID
  URL[sluice]="http://$SLUICE_ADDR"
  log "sluice pid $SLUICE_PID on $SLUICE_ADDR"
fi
if [[ " $TARGETS " == *" base "* ]]; then
  start_sluice base gw-base "$BASE_BIN" "${BENCH_BASE_CONFIG_SED:-}"
  BASE_PID=$LAST_PID
  URL[base]="http://$SLUICE_ADDR"
  log "base ($BASE_BIN) pid $BASE_PID on $SLUICE_ADDR"
fi

if [[ " $TARGETS " == *" nginx "* ]]; then
  NGINX_PORT=$(free_port)
  mkdir -p "$TMP/nginx"
  sed -e "s|@LISTEN_PORT@|$NGINX_PORT|g" -e "s|@UPSTREAM@|$UPSTREAM|g" -e "s|@DIR@|$TMP/nginx|g" \
    -e "s|@WORKERS@|$WORKERS|g" \
    "$BENCH/nginx.conf.tmpl" >"$TMP/nginx/nginx.conf"
  "$NGINX_BIN" -t -q -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" \
    || die "nginx config test failed ($TMP/nginx/nginx.conf)"
  # Foreground master (our PID) + 1 worker; the master is pinned, the worker inherits it.
  start_bg nginx "$CPU_GW" "$TMP/nginx/stdout.log" \
    "$NGINX_BIN" -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" -g 'daemon off;'
  NGINX_PID=$LAST_PID
  wait_port "$NGINX_PID" "$TMP/nginx/error.log" "$NGINX_PORT" 10
  URL[nginx]="http://127.0.0.1:$NGINX_PORT"
  log "nginx pid $NGINX_PID on 127.0.0.1:$NGINX_PORT"
fi

if [[ " $TARGETS " == *" haproxy "* ]]; then
  HAPROXY_PORT=$(free_port)
  sed -e "s|@LISTEN_PORT@|$HAPROXY_PORT|g" -e "s|@UPSTREAM@|$UPSTREAM|g" -e "s|@WORKERS@|$WORKERS|g" \
    "$BENCH/haproxy.cfg.tmpl" >"$TMP/haproxy.cfg"
  "$HAPROXY_BIN" -c -q -f "$TMP/haproxy.cfg" || die "haproxy config check failed ($TMP/haproxy.cfg)"
  start_bg haproxy "$CPU_GW" "$TMP/haproxy.log" "$HAPROXY_BIN" -db -f "$TMP/haproxy.cfg"
  HAPROXY_PID=$LAST_PID
  wait_port "$HAPROXY_PID" "$TMP/haproxy.log" "$HAPROXY_PORT" 10
  URL[haproxy]="http://127.0.0.1:$HAPROXY_PORT"
  log "haproxy pid $HAPROXY_PID on 127.0.0.1:$HAPROXY_PORT"
fi

# ---------------------------------------------------------------- sanity check every target
BODY='{"model":"mock-model","messages":[{"role":"user","content":"hello"}]}'
SBODY='{"model":"mock-model","messages":[{"role":"user","content":"hello"}],"stream":true}'
for t in $TARGETS; do
  [[ -n ${URL[$t]:-} ]] || die "unknown target '$t'"
  code=$(curl -sS -m 10 -o "$TMP/check-$t.out" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "$BODY" "${URL[$t]}/v1/chat/completions") || code="curl-failed"
  if [[ $code != 200 ]]; then
    echo "---- $t: POST /v1/chat/completions → $code:" >&2; head -c 600 "$TMP/check-$t.out" >&2; echo >&2
    die "$t does not answer a chat completion with 200"
  fi
  if [[ " $SCENARIOS " == *" stream-64c "* && -z ${BENCH_UPSTREAM:-} ]]; then
    curl -sS -m 10 -N -o "$TMP/check-$t-stream.out" -H 'Content-Type: application/json' \
      -d "$SBODY" "${URL[$t]}/v1/chat/completions" || true
    n=$(grep -c '^data: ' "$TMP/check-$t-stream.out" || true)
    if [[ $n -ne $((TOKENS + 3)) ]] || ! grep -q '^data: \[DONE\]' "$TMP/check-$t-stream.out"; then
      echo "---- $t streaming answer ($n data lines, expected $((TOKENS + 3))):" >&2
      head -c 600 "$TMP/check-$t-stream.out" >&2; echo >&2
      die "$t streaming answer is wrong"
    fi
  fi
done
log "all targets answer; runs=$RUNS duration=$DURATION warmup=$WARMUP pin=$PIN (gw cpu $CPU_GW, mock cpu $CPU_MOCK, wrk cpu $CPU_WRK)"

# ---------------------------------------------------------------- wrk runs
wrk_cmd() { wrk_run "$@"; }  # CONNS DURATION SCRIPT URL

printf 'scenario\ttarget\trun\trps\tp50_us\tp99_us\trequests\terrors\tnon2xx\tcpu_us_per_resp\n' >"$RAW"
declare -A PID_OF=([direct]=${MOCK_PID:-} [sluice]=${SLUICE_PID:-} [base]=${BASE_PID:-} [nginx]=${NGINX_PID:-}
                   [haproxy]=${HAPROXY_PID:-})
for sc in $SCENARIOS; do
  case $sc in
    chat-64c)   c=$CONNS; script=$BENCH/chat.lua ;;
    chat-1c)    c=1;      script=$BENCH/chat.lua ;;
    stream-64c) c=$CONNS; script=$BENCH/chat_stream.lua ;;
    *) die "unknown scenario $sc" ;;
  esac
  for t in $TARGETS; do   # warm-up: pools, caches, allocator
    wrk_cmd "$c" "$WARMUP" "$script" "${URL[$t]}" >/dev/null 2>&1 || true
  done
  for ((r = 1; r <= RUNS; r++)); do
    for t in $TARGETS; do   # interleaved: A B C D, A B C D, ...
      f="$TMP/wrk-$sc-$t-$r.out"
      # CPU per response: the server's own CPU time (process and its workers) over the run,
      # divided by the responses. Far steadier than req/s on a shared host: it does not move
      # when a neighbour takes the core, only when the server does more work per response.
      pid=${PID_OF[$t]}
      ticks0=$( [[ -n $pid ]] && tree_ticks "$pid" || echo 0)
      if ! wrk_cmd "$c" "$DURATION" "$script" "${URL[$t]}" >"$f" 2>&1; then
        cat "$f" >&2; die "wrk failed for $sc/$t run $r"
      fi
      ticks1=$( [[ -n $pid ]] && tree_ticks "$pid" || echo 0)
      wrk_result "$f" || { cat "$f" >&2; die "no BENCH_RESULT from wrk ($sc/$t)"; }
      cpu=$(per_req_us $((ticks1 - ticks0)) "$(( ${kv[requests]} > 0 ? ${kv[requests]} : 1 ))")
      printf '%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sc" "$t" "$r" "${kv[rps]}" "${kv[p50_us]}" \
        "${kv[p99_us]}" "${kv[requests]}" "${kv[errors]}" "${kv[non2xx]}" "$cpu" >>"$RAW"
      log "$sc $t run $r/$RUNS: ${kv[rps]} req/s p50 ${kv[p50_us]}us p99 ${kv[p99_us]}us cpu ${cpu}us/resp errors ${kv[errors]} non2xx ${kv[non2xx]}"
      for p in $TARGETS; do  # a crashed server must not be mistaken for a slow one
        case $p in sluice) alive_or_die "$SLUICE_PID" "$TMP/sluice.log" ;;
                   base) alive_or_die "$BASE_PID" "$TMP/base.log" ;;
                   nginx) alive_or_die "$NGINX_PID" "$TMP/nginx/error.log" ;;
                   haproxy) alive_or_die "$HAPROXY_PID" "$TMP/haproxy.log" ;;
                   direct) if [[ -n ${MOCK_PID:-} ]]; then alive_or_die "$MOCK_PID" "$TMP/mock.log"; fi ;;
        esac
      done
    done
  done
done

SLUICE_RSS_AFTER=
[[ -z ${SLUICE_PID:-} ]] || SLUICE_RSS_AFTER=$(rss_kib "$SLUICE_PID")

# ---------------------------------------------------------------- memory
MEM_REPORT=()
if [[ $MEMORY == 1 ]]; then
  # Fresh Sluice instances so the earlier load does not inflate the numbers.
  # (a) idle keep-alive connections
  start_sluice sluice-mem1 gw-mem1; MPID=$LAST_PID; MADDR=$SLUICE_ADDR
  sleep 1
  idle=$(rss_kib "$MPID")
  log "memory: sluice idle RSS ${idle} KiB; opening $MEM_CONNS keep-alive connections"
  start_bg hold_conns "$CPU_WRK" "$TMP/hold_conns.log" \
    "$PYTHON" "$BENCH/hold_conns.py" "${MADDR%:*}" "${MADDR##*:}" "$MEM_CONNS"
  HPID=$LAST_PID
  line=$(wait_line "$HPID" "$TMP/hold_conns.log" '^(READY|FAILED)' 180)
  [[ $line == READY* ]] || die "hold_conns: $line"
  alive_or_die "$MPID" "$TMP/sluice-mem1.log"
  sleep 1
  with=$(rss_kib "$MPID")
  per=$(awk -v a="$with" -v b="$idle" -v n="$MEM_CONNS" 'BEGIN{printf "%.2f", (a-b)/n}')
  log "memory: $line; RSS ${with} KiB"
  MEM_REPORT+=("$(printf '%-28s %10s KiB' 'sluice RSS idle (fresh)' "$idle")")
  MEM_REPORT+=("$(printf '%-28s %10s KiB   %s KiB/conn   (%s)' "+ $MEM_CONNS idle keep-alive" "$with" "$per" "${line#READY }")")
  forget_pid "$HPID"
  forget_pid "$MPID"

  # (b) open streams (mock holds them: ttft/itl 60 s via x-mock-* headers)
  [[ -n ${BENCH_UPSTREAM:-} ]] || curl -sS -m 5 -o /dev/null -X POST "http://$UPSTREAM/mock/reset" || true
  start_sluice sluice-mem2 gw-mem2; MPID=$LAST_PID; MADDR=$SLUICE_ADDR
  sleep 1
  idle=$(rss_kib "$MPID")
  log "memory: sluice idle RSS ${idle} KiB; opening $MEM_STREAMS streams"
  start_bg hold_streams "$CPU_WRK" "$TMP/hold_streams.log" \
    "$PYTHON" "$BENCH/hold_streams.py" "${MADDR%:*}" "${MADDR##*:}" "$MEM_STREAMS"
  HPID=$LAST_PID
  line=$(wait_line "$HPID" "$TMP/hold_streams.log" '^(READY|FAILED)' 180)
  [[ $line == READY* ]] || die "hold_streams: $line"
  alive_or_die "$MPID" "$TMP/sluice-mem2.log"
  sleep 1
  with=$(rss_kib "$MPID")
  per=$(awk -v a="$with" -v b="$idle" -v n="$MEM_STREAMS" 'BEGIN{printf "%.2f", (a-b)/n}')
  mock_active=
  [[ -n ${BENCH_UPSTREAM:-} ]] || mock_active=$(curl -sS -m 5 "http://$UPSTREAM/mock/stats" \
    | tr -d '{}"' | sed 's/requests:[0-9]*,//' || true)
  log "memory: $line; RSS ${with} KiB; mock ${mock_active:-?}"
  MEM_REPORT+=("$(printf '%-28s %10s KiB' 'sluice RSS idle (fresh)' "$idle")")
  MEM_REPORT+=("$(printf '%-28s %10s KiB   %s KiB/stream (%s)' "+ $MEM_STREAMS open streams" "$with" "$per" "${line#READY }")")
  [[ -z $mock_active ]] || MEM_REPORT+=("$(printf '%-28s %s' '  mock /mock/stats then:' "$mock_active")")
  forget_pid "$HPID"
  forget_pid "$MPID"
fi

# ---------------------------------------------------------------- report
{
  echo "Sluice benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)  git $(git_rev)"
  host_line
  load_line "$LOAD_START"
  echo "runs=$RUNS x $DURATION (median), warm-up $WARMUP, wrk -t1 -c$CONNS/-c1, mock --threads 1 --tokens $TOKENS"
  if [[ $PIN == 1 ]]; then
    echo "pinning: gateways on cpu $CPU_GW, sluice-mock on cpu $CPU_MOCK, wrk on cpu $CPU_WRK"
  else
    echo "pinning: none"
  fi
  [[ -z ${BASE_PID:-} ]] || echo "base = $BASE_BIN (threads $WORKERS, same config${BENCH_BASE_CONFIG_SED:+ after sed '$BENCH_BASE_CONFIG_SED'})"
  echo "targets: direct=sluice-mock, sluice (threads $WORKERS), nginx $("$NGINX_BIN" -v 2>&1 | sed 's|.*/||') ($WORKERS worker(s)), haproxy $("$HAPROXY_BIN" -v | head -1 | awk '{print $3}') (nbthread $WORKERS)"
  echo
  "$PYTHON" "$BENCH/summarize.py" "$RAW"
  if [[ -n $SLUICE_RSS_AFTER ]]; then
    echo
    echo "sluice RSS after the load runs: $SLUICE_RSS_AFTER KiB"
  fi
  if ((${#MEM_REPORT[@]})); then
    echo
    echo "Memory (VmRSS of a fresh sluice, threads $WORKERS; per-item = (with - idle) / N):"
    printf '  %s\n' "${MEM_REPORT[@]}"
  fi
} | tee "$OUT"
log "results written to $OUT (raw per-run numbers: $RAW)"
