#!/usr/bin/env bash
# Allocator A/B: two sluice binaries (A = tcmalloc, B = mimalloc by default) behind one sluice-mock,
# both `threads: 1` on CPU 0 with the mock, `wrk -t1 -c64` on CPU 1; rounds alternate A B / B A.
# Prints one line per run: round, variant, wrk's BENCH_RESULT, gateway CPU µs per request, load.
#
#   cmake -S . -B build-prof -DSLUICE_ALLOCATOR=tcmalloc && cmake --build build-prof -j2
#   cmake -S . -B build-prof-mi -DSLUICE_ALLOCATOR=mimalloc -DSLUICE_TESTS=OFF
#   cmake --build build-prof-mi -j2 --target sluice
#   mkdir -p /tmp/allocab && cp build-prof/sluice /tmp/allocab/gw-a && \
#     cp build-prof-mi/sluice /tmp/allocab/gw-b && cp build-prof/sluice-mock /tmp/allocab/upstream
#   ROUNDS=8 DUR=8s bash bench/allocator_ab.sh /tmp/allocab
set -euo pipefail
D=${1:?usage: allocator_ab.sh DIR (holding gw-a, gw-b, upstream)}
ROUNDS=${ROUNDS:-8}; DUR=${DUR:-8s}
SCRIPT=${SCRIPT:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/chat.lua}
cd "$D"
taskset -c 0 ./upstream --listen 127.0.0.1:0 --threads 1 --tokens 20 >upstream.log 2>&1 &
MOCK=$!; A=; B=
trap 'kill $MOCK $A $B 2>/dev/null || true' EXIT
sleep 0.5
UP=$(grep -o 'http://[0-9.:]*' upstream.log | head -1 | sed 's|http://||')
printf 'server: {listen: "127.0.0.1:0", threads: 1, max_connections: 20000}\nadmin: {listen: off}\nroutes:\n  - model: mock-model\n    targets: [{provider: openai, base_url: "http://%s/v1"}]\n' "$UP" >gw.yaml
taskset -c 0 ./gw-a --config gw.yaml >a.log 2>&1 & A=$!
taskset -c 0 ./gw-b --config gw.yaml >b.log 2>&1 & B=$!
sleep 0.7
declare -A URL=([a]=$(grep -o 'http://[0-9.:]*' a.log | head -1) [b]=$(grep -o 'http://[0-9.:]*' b.log | head -1))
declare -A PID=([a]=$A [b]=$B)
for v in a b; do taskset -c 1 wrk -t1 -c64 -d2s -s "$SCRIPT" "${URL[$v]}" >/dev/null; done  # warm-up
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime, clock ticks
for ((r = 1; r <= ROUNDS; r++)); do
  order="a b"; ((r % 2 == 0)) && order="b a"
  for v in $order; do
    c0=$(cpu "${PID[$v]}")
    line=$(taskset -c 1 wrk -t1 -c64 -d"$DUR" --timeout 10s --latency -s "$SCRIPT" "${URL[$v]}" |
           grep BENCH_RESULT)
    c1=$(cpu "${PID[$v]}")
    req=$(grep -o 'requests=[0-9]*' <<<"$line" | cut -d= -f2)
    us=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$req" 'BEGIN{printf "%.2f", t*1e6/hz/n}')
    echo "$r $v $line cpu_us_per_req=$us load=$(cut -d' ' -f1 /proc/loadavg)"
  done
done
