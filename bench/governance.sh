#!/usr/bin/env bash
# Governance overhead benchmark (issue 5): unary chat through three Sluice instances started side
# by side, all in front of one sluice-mock, measured in one run with interleaved wrk runs:
#
#   plain  auth disabled, no rate limits
#   local  auth enabled (one key, sent by bench/chat_auth.lua), per-key requests_per_minute and
#          tokens_per_minute set so high that nothing is rejected but every request is charged;
#          rate_limits.backend: memory
#   redis  the same with rate_limits.backend: redis, against a redis-server this script starts
#
#   bash bench/governance.sh                       # BENCH_RUNS=5 x BENCH_DURATION=10s per config
#   BENCH_RUNS=1 BENCH_DURATION=3s bash bench/governance.sh   # smoke run
#
# Environment (all optional):
#   BENCH_RUNS=5  BENCH_DURATION=10s  BENCH_WARMUP=2s  BENCH_CONNS=64
#   BENCH_RPM=10000000  BENCH_TPM=100000000   the key's requests_per_minute / tokens_per_minute
#     (high enough that nothing is rejected at ~40k req/s, ~37 tokens per answer; not above
#     60,000,000 requests per minute: the Redis script works in whole microseconds, so a higher
#     limit charges 0 us per request and the remaining count never drops)
#   BENCH_PIN=1  BENCH_CPU_GW=0  BENCH_CPU_MOCK=0  BENCH_CPU_WRK=1  BENCH_CPU_REDIS=$BENCH_CPU_WRK
#   BUILD_DIR=build  SLUICE_BIN=  MOCK_BIN=  REDIS_BIN=redis-server  REDIS_CLI=redis-cli
#   BENCH_KEEP_TMP=0
#
# Before measuring it checks that every instance answers 200, that local/redis reject a request
# without the key (401) and return x-ratelimit-limit-requests/-tokens with the configured limit,
# that the memory backend leaves Redis untouched and the redis backend writes buckets there.
# Every wrk run must have 0 socket errors and 0 non-2xx answers, otherwise the script exits 1
# (after writing the report). Results: bench/results/governance-latest.txt (+ -raw.tsv).
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
REDIS_BIN=${REDIS_BIN:-$(command -v redis-server || echo /usr/bin/redis-server)}
REDIS_CLI=${REDIS_CLI:-$(command -v redis-cli || echo /usr/bin/redis-cli)}
WRK_BIN=${WRK_BIN:-wrk}
PYTHON=${PYTHON:-python3}

RUNS=${BENCH_RUNS:-5}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONNS=${BENCH_CONNS:-64}
RPM=${BENCH_RPM:-10000000}
TPM=${BENCH_TPM:-100000000}
TOKENS=20
CONFIGS="plain local redis"
PIN=${BENCH_PIN:-1}
CPU_GW=${BENCH_CPU_GW:-0}
CPU_MOCK=${BENCH_CPU_MOCK:-0}
CPU_WRK=${BENCH_CPU_WRK:-1}
CPU_REDIS=${BENCH_CPU_REDIS:-$CPU_WRK}
RESULTS_DIR="$BENCH/results"
OUT="$RESULTS_DIR/governance-latest.txt"
RAW="$RESULTS_DIR/governance-latest-raw.tsv"

BENCH_SELF=governance.sh
BENCH_TAG=govbench
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"   # die log secs start_bg alive_or_die wait_line free_port cpu_ticks wrk_run ...
bench_init govbench      # $TMP + the EXIT trap that stops every process started here

redis_cmd() { "$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
redis_stat() {  # FIELD of INFO (e.g. total_commands_processed) or cmdstat_evalsha calls
  if [[ $1 == evalsha ]]; then
    redis_cmd info commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p' | grep . || echo 0
  else
    redis_cmd info stats | tr -d '\r' | sed -n "s/^$1:\\([0-9]*\\)$/\\1/p"
  fi
}

# ---------------------------------------------------------------- preflight
command -v "$WRK_BIN" >/dev/null || die "wrk not found"
command -v "$PYTHON" >/dev/null || die "python3 not found"
command -v curl >/dev/null || die "curl not found"
[[ -x $SLUICE_BIN ]] || die "$SLUICE_BIN not found (build first: make build)"
[[ -x $MOCK_BIN ]] || die "$MOCK_BIN not found (build first: make build)"
[[ -x $REDIS_BIN ]] || die "redis-server not found at $REDIS_BIN (scripts/install-deps.sh installs it)"
[[ -x $REDIS_CLI ]] || die "redis-cli not found at $REDIS_CLI"
[[ -f $BENCH/chat.lua && -f $BENCH/chat_auth.lua ]] || die "bench/chat.lua or bench/chat_auth.lua missing"
check_pinning "$CPU_GW" "$CPU_MOCK" "$CPU_WRK" "$CPU_REDIS"
mkdir -p "$RESULTS_DIR"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# Snapshot the binaries (neutral names).
GW=$(snapshot_bin "$SLUICE_BIN" gw)
UPSTREAM_BIN=$(snapshot_bin "$MOCK_BIN" upstream)
GW_SUM=$(sha256sum "$GW" | cut -c1-12)
GW_MTIME=$(date -u -r "$SLUICE_BIN" +%Y-%m-%dT%H:%M:%SZ)

API_KEY="sk-bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
KEY_SHA=$(printf %s "$API_KEY" | sha256sum | cut -d' ' -f1)
export BENCH_API_KEY=$API_KEY   # read by bench/chat_auth.lua

# ---------------------------------------------------------------- start servers
start_bg mock "$CPU_MOCK" "$TMP/mock.log" \
  "$UPSTREAM_BIN" --listen 127.0.0.1:0 --threads 1 --tokens "$TOKENS"
MOCK_PID=$LAST_PID
UPSTREAM=$(listen_addr "$MOCK_PID" "$TMP/mock.log")
log "mock pid $MOCK_PID on $UPSTREAM"

REDIS_PORT=$(free_port)
start_bg redis "$CPU_REDIS" "$TMP/redis.log" \
  "$REDIS_BIN" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP"
REDIS_PID=$LAST_PID
for ((i = 0; ; i++)); do
  [[ $(redis_cmd ping 2>/dev/null) == PONG ]] && break
  alive_or_die "$REDIS_PID" "$TMP/redis.log"
  ((i < 200)) || die "redis-server did not answer PING within 10s"
  sleep 0.05
done
log "redis-server pid $REDIS_PID on 127.0.0.1:$REDIS_PORT ($("$REDIS_BIN" --version | awk '{print $3}'))"

write_config() {  # NAME FILE
  local name=$1 f=$2
  printf 'server: {listen: "127.0.0.1:0", threads: 1, max_connections: 20000}\nadmin: {listen: off}\n' >"$f"
  if [[ $name != plain ]]; then
    cat >>"$f" <<EOF
auth:
  enabled: true
  keys:
    - {name: bench, key_sha256: "$KEY_SHA",
       limits: {requests_per_minute: $RPM, tokens_per_minute: $TPM}}
EOF
  fi
  case $name in
    local) printf 'rate_limits:\n  backend: memory\n' >>"$f" ;;
    redis) printf 'rate_limits:\n  backend: redis\n  redis: {url: "redis://127.0.0.1:%s"}\n' \
             "$REDIS_PORT" >>"$f" ;;
  esac
  cat >>"$f" <<EOF
routes:
  - model: mock-model
    targets: [{provider: openai, base_url: "http://$UPSTREAM/v1"}]
EOF
}

declare -A URL=() GWPID=()
for c in $CONFIGS; do
  write_config "$c" "$TMP/$c.yaml"
  start_bg "gw-$c" "$CPU_GW" "$TMP/gw-$c.log" "$GW" --config "$TMP/$c.yaml"
  GWPID[$c]=$LAST_PID
  addr=$(listen_addr "$LAST_PID" "$TMP/gw-$c.log")
  URL[$c]="http://$addr"
  log "sluice ($c) pid $LAST_PID on $addr"
done

# ---------------------------------------------------------------- checks before measuring
BODY='{"model":"mock-model","messages":[{"role":"user","content":"hello"}]}'
post() {  # CONFIG OUTBASE [with-key] → http code; headers in OUTBASE.h, body in OUTBASE.b
  local -a auth=()
  [[ ${3:-} != with-key ]] || auth=(-H "Authorization: Bearer $API_KEY")
  curl -sS -m 10 -D "$2.h" -o "$2.b" -w '%{http_code}' -H 'Content-Type: application/json' \
    "${auth[@]}" -d "$BODY" "${URL[$1]}/v1/chat/completions" || echo curl-failed
}
header() { tr -d '\r' <"$1" | sed -n "s/^$2: *//Ip" | head -1; }
check_fail() {  # CONFIG OUTBASE MESSAGE
  echo "---- $1: headers and body:" >&2; cat "$2.h" "$2.b" >&2 2>/dev/null; echo >&2
  die "$1: $3"
}

[[ $(redis_cmd dbsize) == 0 ]] || die "fresh redis-server is not empty"
code=$(post plain "$TMP/check-plain")
[[ $code == 200 ]] || check_fail plain "$TMP/check-plain" "POST /v1/chat/completions → $code (want 200)"
[[ -z $(header "$TMP/check-plain.h" x-ratelimit-limit-requests) ]] \
  || check_fail plain "$TMP/check-plain" "plain config sends rate-limit headers"
for c in local redis; do
  code=$(post "$c" "$TMP/check-$c-nokey")
  [[ $code == 401 ]] || check_fail "$c" "$TMP/check-$c-nokey" "request without key → $code (want 401: auth not active?)"
  code=$(post "$c" "$TMP/check-$c" with-key)
  [[ $code == 200 ]] || check_fail "$c" "$TMP/check-$c" "request with key → $code (want 200)"
  lr=$(header "$TMP/check-$c.h" x-ratelimit-limit-requests)
  lt=$(header "$TMP/check-$c.h" x-ratelimit-limit-tokens)
  rr=$(header "$TMP/check-$c.h" x-ratelimit-remaining-requests)
  [[ $lr == "$RPM" && $lt == "$TPM" ]] \
    || check_fail "$c" "$TMP/check-$c" "x-ratelimit-limit-requests='$lr' x-ratelimit-limit-tokens='$lt' (want $RPM / $TPM: limits not active?)"
  [[ -n $rr && $rr -lt $RPM ]] \
    || check_fail "$c" "$TMP/check-$c" "x-ratelimit-remaining-requests='$rr' (want < $RPM: request not charged?)"
  n=$(redis_cmd dbsize)
  if [[ $c == local ]]; then
    [[ $n == 0 ]] || die "local (memory backend) wrote $n keys to Redis"
  else
    ((n > 0)) || die "redis backend: no bucket keys in Redis after a charged request"
    log "redis holds $n bucket keys: $(redis_cmd --scan | tr '\n' ' ')"
  fi
  log "$c: 401 without key, 200 with key; x-ratelimit-limit-requests=$lr limit-tokens=$lt remaining-requests=$rr"
done
log "all configs answer; runs=$RUNS duration=$DURATION warmup=$WARMUP conns=$CONNS pin=$PIN (gw cpu $CPU_GW, mock cpu $CPU_MOCK, wrk cpu $CPU_WRK, redis cpu $CPU_REDIS)"

# ---------------------------------------------------------------- wrk runs
wrk_cmd() {  # DURATION CONFIG
  local script=$BENCH/chat_auth.lua
  [[ $2 != plain ]] || script=$BENCH/chat.lua
  wrk_run "$CONNS" "$1" "$script" "${URL[$2]}"
}

for c in $CONFIGS; do   # warm-up: pools, caches, allocator, Redis script load
  wrk_cmd "$WARMUP" "$c" >"$TMP/warmup-$c.out" 2>&1 || true
done

printf 'config\trun\trps\tp50_us\tp99_us\trequests\terrors\tnon2xx\tgw_cpu_us_per_req\tredis_cpu_us_per_req\tevalsha_per_req\n' >"$RAW"
BAD=0
for ((r = 1; r <= RUNS; r++)); do
  for c in $CONFIGS; do   # interleaved: plain local redis, plain local redis, ...
    f="$TMP/wrk-$c-$r.out"
    gw0=$(cpu_ticks "${GWPID[$c]}"); rd0=$(cpu_ticks "$REDIS_PID"); ev0=$(redis_stat evalsha)
    if ! wrk_cmd "$DURATION" "$c" >"$f" 2>&1; then
      cat "$f" >&2; die "wrk failed for $c run $r"
    fi
    gw1=$(cpu_ticks "${GWPID[$c]}"); rd1=$(cpu_ticks "$REDIS_PID"); ev1=$(redis_stat evalsha)
    wrk_result "$f" || { cat "$f" >&2; die "no BENCH_RESULT from wrk ($c run $r)"; }
    n=${kv[requests]}
    ((n > 0)) || { cat "$f" >&2; die "$c run $r: no requests completed"; }
    gwc=$(per_req_us $((gw1 - gw0)) "$n")
    rdc=$(per_req_us $((rd1 - rd0)) "$n")
    evr=$(awk -v d=$((ev1 - ev0)) -v n="$n" 'BEGIN{printf "%.3f", d / n}')
    printf '%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$r" "${kv[rps]}" "${kv[p50_us]}" \
      "${kv[p99_us]}" "$n" "${kv[errors]}" "${kv[non2xx]}" "$gwc" "$rdc" "$evr" >>"$RAW"
    log "$c run $r/$RUNS: ${kv[rps]} req/s p50 ${kv[p50_us]}us p99 ${kv[p99_us]}us errors ${kv[errors]} non2xx ${kv[non2xx]} gw ${gwc}us cpu/req redis ${rdc}us cpu/req evalsha/req $evr"
    if [[ ${kv[errors]} != 0 || ${kv[non2xx]} != 0 ]]; then
      BAD=$((BAD + 1))
      log "WARNING: $c run $r had errors/non-2xx answers (see $f)"
    fi
    for p in $CONFIGS; do alive_or_die "${GWPID[$p]}" "$TMP/gw-$p.log"; done
    alive_or_die "$MOCK_PID" "$TMP/mock.log"
    alive_or_die "$REDIS_PID" "$TMP/redis.log"
  done
done

# ---------------------------------------------------------------- report
{
  echo "Sluice governance overhead (issue 5) — $(date -u +%Y-%m-%dT%H:%M:%SZ)  git $(git_rev)"
  echo "sluice binary: $SLUICE_BIN (sha256 $GW_SUM…, mtime $GW_MTIME)"
  host_line
  load_line "$LOAD_START"
  echo "runs=$RUNS x $DURATION per config (median), interleaved plain/local/redis, warm-up $WARMUP;"
  echo "wrk -t1 -c$CONNS POST /v1/chat/completions (model mock-model), sluice threads 1 (x3, side by side),"
  echo "one sluice-mock --threads 1 --tokens $TOKENS, redis-server $("$REDIS_BIN" --version | awk '{print $3}' | sed 's/^v=//') --save \"\" --appendonly no"
  if [[ $PIN == 1 ]]; then
    echo "pinning: sluice instances on cpu $CPU_GW, sluice-mock on cpu $CPU_MOCK, wrk on cpu $CPU_WRK, redis-server on cpu $CPU_REDIS"
  else
    echo "pinning: none"
  fi
  echo "key limits (local, redis): requests_per_minute=$RPM tokens_per_minute=$TPM (nothing rejected, every request charged)"
  echo
  "$PYTHON" - "$RAW" <<'PY'
import statistics, sys
from collections import defaultdict

rows = defaultdict(dict)
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] == "config":
        continue
    rows[f[0]][int(f[1])] = dict(rps=float(f[2]), p50=float(f[3]), p99=float(f[4]),
                                 bad=int(f[6]) + int(f[7]), gw=float(f[8]), rd=float(f[9]),
                                 ev=float(f[10]))

def fmt_us(us):
    return f"{us / 1000:.2f}ms" if us >= 1000 else f"{us:.0f}us"

names = {"plain": "plain (no auth, no limits)", "local": "auth + local limits (memory)",
         "redis": "auth + Redis limits"}
med = {c: {k: statistics.median(r[k] for r in runs.values()) for k in ("rps", "p50", "p99", "gw", "rd", "ev")}
       for c, runs in rows.items()}
base = med["plain"]["rps"]
hdr = (f"{'config':<30} {'req/s':>8} {'p50':>8} {'p99':>8} {'vs plain':>9} {'per-run ratio':>14} "
       f"{'gw cpu/req':>11} {'errors':>7}")
print(hdr)
print("-" * len(hdr))
for c in ("plain", "local", "redis"):
    m = med[c]
    if c == "plain":
        spread = "-"
    else:
        ratios = [rows[c][r]["rps"] / rows["plain"][r]["rps"] for r in rows[c] if r in rows["plain"]]
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
    bad = sum(r["bad"] for r in rows[c].values())
    print(f"{names[c]:<30} {m['rps']:>8.0f} {fmt_us(m['p50']):>8} {fmt_us(m['p99']):>8} "
          f"{m['rps'] / base:>8.2f}x {spread:>14} {m['gw']:>9.1f}us {bad:>7}")
print()
print(f"auth + local limits: {med['local']['rps'] / base:.3f}x plain  (target >= 0.9x: "
      f"{'met' if med['local']['rps'] / base >= 0.9 else 'NOT met'})")
print(f"auth + Redis limits: {med['redis']['rps'] / base:.3f}x plain")
print(f"redis: {med['redis']['ev']:.2f} EVALSHA per request, redis-server CPU {med['redis']['rd']:.1f}us per request")
print()
print("  req/s, p50, p99 = median over runs (each metric separately); vs plain = ratio of median req/s;")
print("  per-run ratio = min-max of req/s / plain's req/s in the same round of the interleaving;")
print("  gw cpu/req = CPU time (user+sys) of that sluice process during the run / requests (median);")
print("  errors = socket errors + non-2xx answers summed over all runs (must be 0).")
PY
  if ((BAD > 0)); then
    echo
    echo "FAILED: $BAD run(s) had socket errors or non-2xx answers; the numbers above are not valid."
  fi
} | tee "$OUT"
log "results written to $OUT (raw per-run numbers: $RAW)"
((BAD == 0)) || die "$BAD run(s) had errors or non-2xx answers"
