#!/usr/bin/env python3
"""Turns run.sh's raw TSV into the results tables.

Columns (tab-separated, first line a header): upstream workers scenario target run rps p50_us
p99_us requests errors non2xx cpu_us_per_resp extra. `extra` is `-` or comma-separated key=value
pairs (chat-half: offered, delay_ms, conns; slow-streams: streams, completed, client_cpu_pct,
rss_kib_stream, ...). For slow-streams rps is events/s, p50/p99 the event latency, requests the
events received and cpu_us_per_resp the CPU microseconds per event (= seconds per million).

Medians are taken per metric over the runs of one (upstream, workers, scenario, target). One
table per (upstream, workers) combination, then a compact overview of the ratios to nginx.

usage: summarize.py RAW.tsv
"""
import statistics
import sys
from collections import OrderedDict, defaultdict

WRK_SCENARIOS = [
    ("chat-64c", "chat, non-streaming, 64 conns"),
    ("chat-1c", "chat, non-streaming, 1 conn"),
    ("stream-64c", "chat, streaming (23 SSE events), 64 conns"),
]
TARGETS = ["direct", "sluice", "base", "nginx", "haproxy"]  # base: BENCH_BASE_BIN
GATEWAYS = ["sluice", "base", "haproxy"]  # compared with nginx in the overview


def fmt_us(us):
    if us is None:
        return "-"
    return f"{us / 1000:.2f}ms" if abs(us) >= 1000 else f"{us:.0f}us"


def fmt_delta_us(us):
    if us is None:
        return "-"
    return f"{us / 1000:+.2f}ms" if abs(us) >= 1000 else f"{us:+.0f}us"


def ratio(a, b, fmt="{:.2f}x"):
    return fmt.format(a / b) if a is not None and b and b > 0 and a > 0 else "-"


def parse_extra(s):
    out = {}
    if s and s != "-":
        for kv in s.split(","):
            k, _, v = kv.partition("=")
            out[k] = v
    return out


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def load(path):
    rows = defaultdict(list)
    combos = OrderedDict()
    header = None
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if header is None:
            header = f
            continue
        if len(f) < len(header):
            continue
        r = dict(zip(header, f))
        key = (r["upstream"], r["workers"])
        combos[key] = True
        rows[key + (r["scenario"], r["target"])].append(dict(
            rps=num(r["rps"]), p50=num(r["p50_us"]), p99=num(r["p99_us"]), req=int(r["requests"]),
            bad=int(r["errors"]) + int(r["non2xx"]), errors=int(r["errors"]),
            cpu=num(r["cpu_us_per_resp"]), extra=parse_extra(r.get("extra", "-"))))
    med = {}
    for k, runs in rows.items():
        m = dict(rps=median(r["rps"] for r in runs), p50=median(r["p50"] for r in runs),
                 p99=median(r["p99"] for r in runs), cpu=median(r["cpu"] for r in runs),
                 n=len(runs), bad=sum(r["bad"] for r in runs),
                 errors=sum(r["errors"] for r in runs), extra=runs[-1]["extra"])
        for x in ("client_cpu_pct", "mock_cpu_us_ev", "rss_kib_stream", "lat_p999_us", "lat_max_us",
                  "wall_s", "dur_p50_ms", "dur_p99_ms", "nominal_ms"):
            m[x] = median(num(r["extra"].get(x)) for r in runs)
        for x in ("busy", "steal"):  # per CPU, "95/88": median of each CPU over the runs
            cols = [r["extra"].get(x, "").split("/") for r in runs if r["extra"].get(x)]
            m[x] = ("/".join(f"{median(num(c[i]) for c in cols):.0f}" for i in range(len(cols[0])))
                    if cols else None)
        m["completed"] = sum(int(r["extra"].get("completed", 0)) for r in runs)
        m["streams"] = sum(int(r["extra"].get("streams", 0)) for r in runs)
        med[k] = m
    return list(combos), med


def wrk_table(combo, med):
    lines = []
    hdr = (f"{'scenario':<11} {'target':<8} {'req/s':>10} {'p50':>9} {'p99':>9} {'vs nginx':>9} "
           f"{'+p50 vs direct':>15} {'cpu/resp':>9} {'cpu vs nginx':>12} {'errors':>7}")
    for sc, _ in WRK_SCENARIOS:
        ng = med.get(combo + (sc, "nginx"))
        di = med.get(combo + (sc, "direct"))
        for t in TARGETS:
            m = med.get(combo + (sc, t))
            if m is None:
                continue
            if not lines:
                lines += [hdr, "-" * len(hdr)]
            added = "-"
            if sc == "chat-1c" and di and t != "direct":
                added = fmt_delta_us(m["p50"] - di["p50"])
            cpu = f"{m['cpu']:.1f}us" if m["cpu"] else "-"
            lines.append(
                f"{sc:<11} {t:<8} {m['rps']:>10.0f} {fmt_us(m['p50']):>9} {fmt_us(m['p99']):>9} "
                f"{ratio(m['rps'], ng and ng['rps']):>9} {added:>15} {cpu:>9} "
                f"{ratio(m['cpu'], ng and ng['cpu']):>12} {m['bad']:>7}")
    return lines


def half_table(combo, med):
    ng = med.get(combo + ("chat-half", "nginx"))
    di = med.get(combo + ("chat-half", "direct"))
    present = [t for t in TARGETS if combo + ("chat-half", t) in med]
    if not present:
        return []
    ex = med[combo + ("chat-half", present[0])]["extra"]
    lines = [f"chat-half: every target offered {ex.get('offered', '?')} req/s (half of nginx's chat-64c "
             f"req/s), {ex.get('conns', '?')} conns paced by bench/chat_half.lua"]
    hdr = (f"{'scenario':<11} {'target':<8} {'req/s':>10} {'of offered':>10} {'p50':>9} {'p99':>9} "
           f"{'p99 vs nginx':>12} {'+p99 vs direct':>15} {'cpu/resp':>9} {'cpu vs nginx':>12} {'errors':>7}")
    lines += [hdr, "-" * len(hdr)]
    offered = num(ex.get("offered"))
    for t in present:
        m = med[combo + ("chat-half", t)]
        of = f"{m['rps'] / offered * 100:.0f}%" if offered else "-"
        added = fmt_delta_us(m["p99"] - di["p99"]) if di and t != "direct" else "-"
        cpu = f"{m['cpu']:.1f}us" if m["cpu"] else "-"
        lines.append(
            f"{'chat-half':<11} {t:<8} {m['rps']:>10.0f} {of:>10} {fmt_us(m['p50']):>9} "
            f"{fmt_us(m['p99']):>9} {ratio(m['p99'], ng and ng['p99']):>12} {added:>15} {cpu:>9} "
            f"{ratio(m['cpu'], ng and ng['cpu']):>12} {m['bad']:>7}")
    return lines


def slow_table(combo, med):
    ng = med.get(combo + ("slow-streams", "nginx"))
    di = med.get(combo + ("slow-streams", "direct"))
    present = [t for t in TARGETS if combo + ("slow-streams", t) in med]
    if not present:
        return []
    ex = med[combo + ("slow-streams", present[0])]["extra"]
    lines = [f"slow-streams: {ex.get('n', '?')} concurrent streams x {ex.get('events_per_stream', '?')} "
             f"events, {ex.get('itl_ms', '?')} ms apart (bench/stream_client.c; latency = mock's "
             f"send stamp -> client receive; mock --threads {ex.get('mock_threads', '?')})"]
    hdr = (f"{'target':<8} {'complete':>9} {'events/s':>9} {'wall':>6} {'stream':>7} {'ev p50':>8} {'ev p99':>8} "
           f"{'ev max':>8} {'+p50':>8} {'+p99':>8} {'cpu s/Mev':>9} {'vs nginx':>8} {'KiB/strm':>8} "
           f"{'mock s/Mev':>10} {'client cpu':>10} {'host busy':>9} {'errors':>6}")
    lines += [hdr, "-" * len(hdr)]
    steals = []
    for t in present:
        m = med[combo + ("slow-streams", t)]
        comp = f"{m['completed'] / m['streams'] * 100:.1f}%" if m["streams"] else "-"
        a50 = fmt_delta_us(m["p50"] - di["p50"]) if di and t != "direct" else "-"
        a99 = fmt_delta_us(m["p99"] - di["p99"]) if di and t != "direct" else "-"
        cpu = f"{m['cpu']:.2f}" if m["cpu"] else "-"
        rss = f"{m['rss_kib_stream']:.1f}" if m["rss_kib_stream"] is not None else "-"
        mock = f"{m['mock_cpu_us_ev']:.2f}" if m["mock_cpu_us_ev"] else "-"
        client = f"{m['client_cpu_pct']:.0f}%" if m["client_cpu_pct"] is not None else "-"
        wall = f"{m['wall_s']:.1f}s" if m["wall_s"] is not None else "-"
        dur = f"{m['dur_p50_ms'] / 1000:.2f}s" if m["dur_p50_ms"] else "-"
        lines.append(
            f"{t:<8} {comp:>9} {m['rps']:>9.0f} {wall:>6} {dur:>7} {fmt_us(m['p50']):>8} {fmt_us(m['p99']):>8} "
            f"{fmt_us(m['lat_max_us']):>8} {a50:>8} {a99:>8} {cpu:>9} "
            f"{ratio(m['cpu'], ng and ng['cpu']):>8} {rss:>8} {mock:>10} {client:>10} "
            f"{m['busy'] or '-':>9} {m['bad']:>6}")
        if m["steal"] and any(num(x) and num(x) >= 5 for x in m["steal"].split("/")):
            steals.append(f"{t} {m['steal']}")
    if steals:
        lines.append("  ! hypervisor steal (% per CPU) during the waves: " + ", ".join(steals))
    nominal = num(ex.get("nominal_ms"))
    for t in present:  # did the streams keep their pace? (the upstream and client side first)
        m = med[combo + ("slow-streams", t)]
        if nominal and m["dur_p50_ms"] and m["dur_p50_ms"] > 1.1 * nominal:
            who = ("the mock and/or the client (direct, no proxy)" if t == "direct"
                   else f"{t} (or the machine)")
            lines.append(f"  ! {t}: median stream took {m['dur_p50_ms'] / 1000:.2f}s instead of "
                         f"{nominal / 1000:.2f}s: {who} could not keep the pace; events/s and "
                         f"latencies are those of an overloaded box")
    return lines


def overview(combos, med):
    """Rows: scenario (x gateway); columns: combinations; cells: gateway / nginx."""
    present_gw = [g for g in GATEWAYS
                  if any(k[3] == g for k in med)]
    if not any(k[3] == "nginx" for k in med):
        return []
    rows = [(sc, "rps", f"{sc} req/s") for sc, _ in WRK_SCENARIOS]
    rows += [("chat-half", "p99", "chat-half p99"), ("slow-streams", "cpu", "slow-str cpu/ev"),
             ("slow-streams", "p99", "slow-str ev p99")]
    names = [f"{u}/w{w}" for u, w in combos]
    width = max(14, *(len(n) for n in names)) + 1
    gw_label = "/".join(g for g in present_gw)
    out = [f"Ratios vs nginx per combination (cell: {gw_label} ÷ nginx; req/s: higher is better, "
           "p99 and cpu: lower is better)"]
    hdr = f"{'':<18}" + "".join(f"{n:>{width}}" for n in names)
    out += [hdr, "-" * len(hdr)]
    for sc, metric, label in rows:
        cells = []
        any_val = False
        for combo in combos:
            ng = med.get(combo + (sc, "nginx"))
            parts = []
            for g in present_gw:
                m = med.get(combo + (sc, g))
                if m and ng and ng[metric] and m[metric]:
                    parts.append(f"{m[metric] / ng[metric]:.2f}")
                    any_val = True
                else:
                    parts.append("-")
            cells.append("/".join(parts) if any(p != "-" for p in parts) else "-")
        if any_val:
            out.append(f"{label:<18}" + "".join(f"{c:>{width}}" for c in cells))
    return out


def main():
    combos, med = load(sys.argv[1])
    for combo in combos:
        u, w = combo
        print(f"upstream={u} workers={w}")
        body = wrk_table(combo, med)
        for extra in (half_table(combo, med), slow_table(combo, med)):
            if extra:
                if body:
                    body.append("")
                body += extra
        print("\n".join(body) if body else "(no results)")
        print()
    ov = overview(combos, med)
    if ov:
        print("\n".join(ov))
        print()
    print("  chat-64c / chat-1c = unary chat at 64 / 1 connection(s); stream-64c = streaming chat,")
    print("  64 conns; req/s, p50, p99 = medians over runs (each metric separately; wrk's latency:")
    print("  request sent -> whole response received); vs nginx = req/s ratio; +p50 vs direct = median")
    print("  latency the hop adds (chat-1c); cpu/resp = the server's CPU time (all threads and worker")
    print("  processes) per response, median over runs; cpu vs nginx = its ratio to nginx's (lower is")
    print("  better; steadier than req/s on a shared host); errors = socket errors + non-2xx, all runs.")
    if any(k[2] == "chat-half" for k in med):
        print("  chat-half: req/s achieved (of offered: its share of the offered rate; well below 100%:")
        print("  the target could not carry it); p99 vs nginx = p99 ratio; +p99 vs direct = what the")
        print("  hop adds to p99 at that load.")
    if any(k[2] == "slow-streams" for k in med):
        print("  slow-streams: complete = streams that ended with [DONE] and every event; events/s and")
        print("  wall = per wave; stream = median stream duration (nominal: events x interval); ev")
        print("  p50/p99/max = event latency (mock's socket -> client); +p50/+p99 = minus direct's;")
        print("  cpu s/Mev = the target's CPU seconds per million events the client received; KiB/strm")
        print("  = (RSS with every stream open - RSS of the fresh process) / streams; mock s/Mev = the")
        print("  mock's CPU per event; client cpu = stream_client's CPU / wall (near 100%: the client")
        print("  was the bottleneck); host busy = each CPU's busy % over the wave (/proc/stat, steal")
        print("  included); errors = connect/reset/non-200/short/timeout, all runs.")

if __name__ == "__main__":
    main()
