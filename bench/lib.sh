# shellcheck shell=bash
# Shared process bookkeeping for the bench scripts (bench/run.sh, bench/governance.sh,
# bench/observability.sh). Sourced, not run:
#
#   BENCH_SELF=governance.sh   # name in error messages
#   BENCH_TAG=govbench         # prefix of progress lines on stderr
#   source "$BENCH/lib.sh"
#   bench_init govbench        # temp dir $TMP (/tmp/govbench.XXXXXX) + EXIT/INT/TERM traps
#
# The caller sets PIN (1 = pin with taskset), CPU_WRK and PYTHON before using start_bg, wrk_run
# or free_port. Every process started with start_bg is recorded by PID ($! of a plain background
# command, so the PID is the server itself: taskset execs it) and stopped by the EXIT trap, newest
# first: TERM, up to 5 s, then KILL. Nothing is ever killed by name.

die() { echo "${BENCH_SELF:-bench}: error: $*" >&2; exit 1; }
log() { echo "[${BENCH_TAG:-bench} $(date +%H:%M:%S)] $*" >&2; }
secs() { local d=$1; case $d in *ms) echo 1;; *m) echo $(( ${d%m} * 60 ));; *s) echo "${d%s}";; *) echo "$d";; esac; }

# ---------------------------------------------------------------- process bookkeeping
declare -a PIDS=()
declare -A PNAME=()
LAST_PID=
TMP=

stop_pid() {  # PID: TERM, wait up to 5 s, then KILL; always reaps.
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "${PNAME[$pid]:-pid $pid} ignored SIGTERM; killing"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

forget_pid() {  # stop one process and drop it from the list
  local pid=$1 p; local -a keep=()
  stop_pid "$pid"
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  exec 2>&9
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
  if [[ -n $TMP ]]; then
    if [[ ${BENCH_KEEP_TMP:-0} == 1 || $rc != 0 ]]; then
      echo "${BENCH_SELF:-bench}: logs and configs kept in $TMP" >&2
    else
      rm -rf "$TMP"
    fi
  fi
  exit "$rc"
}

bench_init() {  # TMP_PREFIX → TMP; installs the traps
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  exec 9>&2   # the script's real stderr: a trap may fire while fd 2 is redirected (e.g. into a wrk log)
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# start_bg NAME CPU LOGFILE CMD...  → LAST_PID (the real server PID; taskset execs CMD)
start_bg() {
  local name=$1 cpu=$2 logf=$3; shift 3
  if [[ $PIN == 1 && -n $cpu ]]; then
    taskset -c "$cpu" "$@" >"$logf" 2>&1 </dev/null &
  else
    "$@" >"$logf" 2>&1 </dev/null &
  fi
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  PNAME[$LAST_PID]=$name
}

alive_or_die() {  # PID LOGFILE
  kill -0 "$1" 2>/dev/null && return 0
  echo "---- ${PNAME[$1]:-pid $1} exited; last log lines ($2):" >&2
  tail -n 30 "$2" >&2 || true
  die "${PNAME[$1]:-pid $1} died"
}

# wait_line PID LOGFILE REGEX TIMEOUT_S → echoes the first matching line
wait_line() {
  local pid=$1 logf=$2 re=$3 t=$4 i line
  for ((i = 0; i < t * 20; i++)); do
    if line=$(grep -m1 -E "$re" "$logf" 2>/dev/null); then echo "$line"; return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then  # it may have written the line just before exiting
      if line=$(grep -m1 -E "$re" "$logf" 2>/dev/null); then echo "$line"; return 0; fi
      alive_or_die "$pid" "$logf"
    fi
    sleep 0.05
  done
  tail -n 30 "$logf" >&2 || true
  die "${PNAME[$pid]:-pid $pid}: no line matching /$re/ within ${t}s"
}

# listen_addr PID LOGFILE → host:port from the "<name>: listening on http://host:port" line of
# sluice or sluice-mock (waits up to 15 s); sluice's "sluice admin listening on ..." is not it
listen_addr() {
  local line addr
  line=$(wait_line "$1" "$2" '^[^ ]+: listening on http://' 15)
  addr=${line##*http://}
  echo "${addr%%/*}"
}

# admin_addr PID LOGFILE → host:port of sluice's operations listener (admin.listen: /metrics,
# /admin/*, /debug/pprof/*) from its "sluice admin listening on http://host:port" line
admin_addr() {
  local line addr
  line=$(wait_line "$1" "$2" 'admin listening on http://' 15)
  addr=${line##*http://}
  echo "${addr%%/*}"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # PID LOGFILE PORT TIMEOUT_S
  local i
  for ((i = 0; i < $4 * 20; i++)); do
    port_open "$3" && return 0
    alive_or_die "$1" "$2"
    sleep 0.05
  done
  die "${PNAME[$1]:-pid $1}: port $3 not open within ${4}s"
}

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

tree_rss() {  # PID → VmRSS of PID plus its direct children (nginx's workers), KiB
  local total child
  total=$(rss_kib "$1")
  for child in $(children_of "$1"); do
    total=$((total + $(rss_kib "$child" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {  # PID → utime+stime of the whole process (all threads), in clock ticks
  local s
  s=$(<"/proc/$1/stat")
  s=${s##*) }   # drop "pid (comm) "
  awk '{print $12 + $13}' <<<"$s"
}

children_of() {  # PID → its direct children's PIDs (nginx's workers), space-separated
  local f out=
  for f in "/proc/$1/task/"*/children; do out+=" $(cat "$f" 2>/dev/null || true)"; done
  echo "$out"
}

tree_ticks() {  # PID → cpu_ticks of PID plus its direct children (nginx's and HAProxy's workers)
  local total child
  total=$(cpu_ticks "$1")
  for child in $(children_of "$1"); do
    total=$((total + $(cpu_ticks "$child" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# cpu_snapshot → one line "cpuN total idle steal ..." per CPU from /proc/stat (jiffies)
cpu_snapshot() {
  awk '/^cpu[0-9]/ {t = 0; for (i = 2; i <= NF; i++) t += $i; printf "%s %d %d %d ", $1, t, $5 + $6, $9}' /proc/stat
}

# cpu_busy SNAPSHOT_BEFORE SNAPSHOT_AFTER → "busy=B0/B1/...,steal=S0/S1/..." (% of each CPU's time
# over the interval: busy = not idle, steal = taken by the hypervisor)
cpu_busy() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    n = split(a, x, " "); split(b, y, " ")
    for (i = 1; i + 3 <= n; i += 4) {
      t = y[i + 1] - x[i + 1]; if (t <= 0) t = 1
      busy = busy sep sprintf("%.0f", 100 * (t - (y[i + 2] - x[i + 2])) / t)
      steal = steal sep sprintf("%.0f", 100 * (y[i + 3] - x[i + 3]) / t)
      sep = "/"
    }
    printf "busy=%s,steal=%s", busy, steal
  }'
}

# per_req_us TICKS REQUESTS → CPU microseconds per request, 2 decimals
per_req_us() { awk -v d="$1" -v t="$CLK_TCK" -v n="$2" 'BEGIN{printf "%.2f", d / t * 1e6 / n}'; }

# check_pinning CPU... : keeps PIN=1 only if taskset exists and may use all the CPUs
check_pinning() {
  [[ $PIN == 1 ]] || return 0
  local list shown
  list=$(IFS=,; echo "$*")
  shown=$(IFS=/; echo "$*")
  if ! command -v taskset >/dev/null || ! taskset -c "$list" true 2>/dev/null; then
    log "taskset unavailable or CPUs $shown not allowed; running unpinned"
    PIN=0
  fi
}

# snapshot_bin SRC NAME → $TMP/bin/NAME (echoed): a copy under a neutral name, so a rebuild of
# build/ during the run cannot change the binary and other people's `pkill -f sluice` miss it
snapshot_bin() {
  mkdir -p "$TMP/bin"
  cp "$1" "$TMP/bin/$2"
  echo "$TMP/bin/$2"
}

# ---------------------------------------------------------------- wrk
# wrk_run CONNS DURATION SCRIPT URL : wrk -t1 --latency, pinned to CPU_WRK, hard timeout
wrk_run() {
  local -a pin=()
  [[ $PIN != 1 ]] || pin=(taskset -c "$CPU_WRK")
  timeout --kill-after=5 $(( $(secs "$2") + 30 )) \
    "${pin[@]}" "$WRK_BIN" -t1 -c"$1" -d"$2" --timeout 10s --latency -s "$3" "$4"
}

# wrk_result FILE → the BENCH_RESULT line of bench/chat*.lua parsed into the global array kv
# (rps p50_us p99_us requests duration_us errors non2xx timeouts); returns 1 without that line
declare -A kv=()
# shellcheck disable=SC2034  # kv is read by the callers
wrk_result() {
  local line kvp
  line=$(grep -m1 '^BENCH_RESULT' "$1") || return 1
  kv=()
  for kvp in ${line#BENCH_RESULT }; do kv[${kvp%%=*}]=${kvp#*=}; done
}

# ---------------------------------------------------------------- report
git_rev() { git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'; }
host_line() {
  echo "host: $(nproc) cpus, $(uname -r); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
}
load_line() {  # LOAD_START
  echo "load average at start: $1, at end: $(cut -d' ' -f1-3 /proc/loadavg) (anything else running skews the numbers)"
}
