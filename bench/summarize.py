#!/usr/bin/env python3
"""Turns run.sh's raw TSV (scenario target run rps p50_us p99_us requests errors non2xx
cpu_us_per_resp)
into the results table. Medians are taken per metric over the runs of one (scenario, target).

usage: summarize.py RAW.tsv
"""
import statistics
import sys
from collections import defaultdict

SCENARIOS = [
    ("chat-64c", "a) chat, non-streaming, 64 conns"),
    ("chat-1c", "b) chat, non-streaming, 1 conn"),
    ("stream-64c", "c) chat, streaming (20 tokens), 64 conns"),
]
TARGETS = ["direct", "sluice", "base", "nginx", "haproxy"]  # base: BENCH_BASE_BIN


def fmt_us(us):
    return f"{us / 1000:.2f}ms" if us >= 1000 else f"{us:.0f}us"


def main():
    rows = defaultdict(list)
    for line in open(sys.argv[1]):
        f = line.split()
        if len(f) < 9 or f[0] == "scenario":
            continue
        rows[(f[0], f[1])].append(dict(rps=float(f[3]), p50=float(f[4]), p99=float(f[5]),
                                       req=int(f[6]), err=int(f[7]), non2xx=int(f[8]),
                                       cpu=float(f[9]) if len(f) > 9 else 0.0))
    med = {}
    for k, runs in rows.items():
        med[k] = dict(rps=statistics.median(r["rps"] for r in runs),
                      p50=statistics.median(r["p50"] for r in runs),
                      p99=statistics.median(r["p99"] for r in runs),
                      cpu=statistics.median(r["cpu"] for r in runs),
                      n=len(runs),
                      bad=sum(r["err"] + r["non2xx"] for r in runs))
    hdr = f"{'scenario':<11} {'target':<8} {'req/s':>10} {'p50':>9} {'p99':>9} {'vs nginx':>9} {'+p50 vs direct':>15} {'cpu/resp':>9} {'cpu vs nginx':>12} {'errors':>7}"
    print(hdr)
    print("-" * len(hdr))
    for sc, desc in SCENARIOS:
        if not any((sc, t) in med for t in TARGETS):
            continue
        ng = med.get((sc, "nginx"))
        di = med.get((sc, "direct"))
        for t in TARGETS:
            m = med.get((sc, t))
            if m is None:
                continue
            ratio = f"{m['rps'] / ng['rps']:.2f}x" if ng and ng["rps"] > 0 else "-"
            added = "-"
            if sc == "chat-1c" and di and t != "direct":
                added = f"{m['p50'] - di['p50']:+.0f}us"
            cpu = f"{m['cpu']:.1f}us" if m["cpu"] > 0 else "-"
            cpu_ratio = (f"{m['cpu'] / ng['cpu']:.2f}x" if ng and ng["cpu"] > 0 and m["cpu"] > 0
                         else "-")
            print(f"{sc:<11} {t:<8} {m['rps']:>10.0f} {fmt_us(m['p50']):>9} {fmt_us(m['p99']):>9} "
                  f"{ratio:>9} {added:>15} {cpu:>9} {cpu_ratio:>12} {m['bad']:>7}")
    print()
    for sc, desc in SCENARIOS:
        print(f"  {sc:<11} = {desc}")
    print("  req/s, p50, p99 = median over runs (each metric separately); vs nginx = req/s ratio;")
    print("  +p50 vs direct = added median latency of the proxy hop (scenario b only);")
    print("  cpu/resp = the server's CPU time (all its threads and worker processes) per response,")
    print("  median over runs; cpu vs nginx = its ratio to nginx's (lower is better; steadier than")
    print("  req/s on a shared host, since it measures work done, not the share of a core obtained);")
    print("  errors = socket errors + non-2xx responses summed over all runs (should be 0).")


if __name__ == "__main__":
    main()
