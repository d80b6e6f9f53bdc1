#!/usr/bin/env python3
"""Helpers of bench/translate.sh.

  translate.py check PROTO STREAM FILE TOKENS
      FILE is what bench/translate.lua captured with BENCH_CAPTURE (STATUS / CONTENT-TYPE lines,
      then the body wrk received). Validates it as a client of protocol PROTO would: status 200,
      the stream shape (OpenAI: JSON chunks then `[DONE]` last; Anthropic: `event:` names equal to
      data.type, message_start first and message_stop last; Gemini: JSON chunks, finishReason on
      the last), no error event, and the text `w1 ... wN` reassembled exactly. Prints the number of
      SSE events a client receives per response (1 for unary); exits 1 with the reason otherwise.

  translate.py summary RAW.tsv
      The results table from translate.sh's per-run TSV.
"""
import json
import statistics
import sys
from collections import defaultdict


class Bad(Exception):
    pass


def sse_events(body):
    """SSE events (blank-line separated) as (event name, [data lines]); comments are skipped."""
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        name, datas = "", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                datas.append(line[5:].lstrip(" "))
        if name or datas:
            events.append((name, datas))
    return events


def one_json(datas, what):
    if len(datas) != 1:
        raise Bad(f"{what}: {len(datas)} data lines in one event")
    try:
        return json.loads(datas[0])
    except ValueError as e:
        raise Bad(f"{what}: data is not JSON ({e}): {datas[0][:200]}")


def check_openai_stream(events):
    if not events or events[-1][1] != ["[DONE]"]:
        raise Bad(f"last event is not [DONE]: {events[-1:]}")
    text, stops = "", []
    for i, (_, datas) in enumerate(events[:-1]):
        c = one_json(datas, f"chunk {i}")
        if "error" in c:
            raise Bad(f"error chunk: {c}")
        if c.get("object") != "chat.completion.chunk":
            raise Bad(f"chunk {i} object is {c.get('object')!r}")
        for ch in c.get("choices", []):
            text += ch.get("delta", {}).get("content") or ""
            if ch.get("finish_reason"):
                stops.append(ch["finish_reason"])
    if stops != ["stop"]:
        raise Bad(f"finish_reason(s) {stops}, want exactly one 'stop'")
    return text


def check_anthropic_stream(events):
    names = [n for n, _ in events]
    if not names or names[0] != "message_start" or names[-1] != "message_stop":
        raise Bad(f"events {names[:2]} ... {names[-2:]}: want message_start first, message_stop last")
    text, stop = "", None
    for i, (name, datas) in enumerate(events):
        d = one_json(datas, f"event {i} ({name})")
        if d.get("type") != name:
            raise Bad(f"event {i}: name {name!r} but data.type {d.get('type')!r}")
        if name == "error":
            raise Bad(f"error event: {d}")
        if name == "content_block_delta" and d["delta"].get("type") == "text_delta":
            text += d["delta"]["text"]
        if name == "message_delta":
            stop = d["delta"].get("stop_reason")
    if stop != "end_turn":
        raise Bad(f"stop_reason {stop!r}, want end_turn")
    return text


def check_gemini_stream(events):
    if not events:
        raise Bad("no events")
    text, stops = "", []
    for i, (_, datas) in enumerate(events):
        c = one_json(datas, f"chunk {i}")
        if "error" in c:
            raise Bad(f"error chunk: {c}")
        cand = c["candidates"][0]
        text += "".join(p.get("text", "") for p in cand.get("content", {}).get("parts", []))
        if cand.get("finishReason"):
            stops.append((i, cand["finishReason"]))
    if stops != [(len(events) - 1, "STOP")]:
        raise Bad(f"finishReason(s) {stops}, want one STOP on the last chunk")
    return text


def unary_text(proto, b):
    if proto == "openai":
        if b.get("object") != "chat.completion" or b["choices"][0]["finish_reason"] != "stop":
            raise Bad(f"not a finished chat.completion: {str(b)[:300]}")
        return b["choices"][0]["message"]["content"]
    if proto == "anthropic":
        if b.get("type") != "message" or b.get("stop_reason") != "end_turn":
            raise Bad(f"not a finished message: {str(b)[:300]}")
        return "".join(c["text"] for c in b["content"] if c["type"] == "text")
    cand = b["candidates"][0]
    if cand.get("finishReason") != "STOP":
        raise Bad(f"finishReason {cand.get('finishReason')!r}")
    return "".join(p.get("text", "") for p in cand["content"]["parts"])


def check(proto, stream, path, tokens):
    raw = open(path, encoding="utf-8", errors="replace").read()
    head, _, rest = raw.partition("\n")
    ctype_line, _, body = rest.partition("\n")
    status = head.removeprefix("STATUS ").strip()
    ctype = ctype_line.removeprefix("CONTENT-TYPE ").strip()
    if status != "200":
        raise Bad(f"status {status}: {body[:300]}")
    want = " ".join(f"w{i}" for i in range(1, tokens + 1))
    if stream:
        if not ctype.startswith("text/event-stream"):
            raise Bad(f"content-type {ctype!r}, want text/event-stream")
        events = sse_events(body)
        text = {"openai": check_openai_stream, "anthropic": check_anthropic_stream,
                "gemini": check_gemini_stream}[proto](events)
        n = len(events)
    else:
        if not ctype.startswith("application/json"):
            raise Bad(f"content-type {ctype!r}, want application/json")
        try:
            text = unary_text(proto, json.loads(body))
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise Bad(f"unexpected body ({e!r}): {body[:300]}")
        n = 1
    if text.strip() != want:
        raise Bad(f"text {text[:80]!r}..., want 'w1 ... w{tokens}'")
    print(n)


# ---------------------------------------------------------------- summary

def fmt_us(us):
    return f"{us / 1000:.2f}ms" if us >= 1000 else f"{us:.0f}us"


def summary(path):
    rows = defaultdict(dict)
    meta = {}
    order = []
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if f[0] == "cell":
            continue
        cell = f[0]
        if cell not in rows:
            order.append(cell)
        meta[cell] = dict(mode=f[1], ref=f[2], events=int(f[3]))
        rows[cell][int(f[4])] = dict(rps=float(f[5]), p50=float(f[6]), p99=float(f[7]),
                                     req=int(f[8]), bad=int(f[9]) + int(f[10]),
                                     gw_ev=float(f[11]), gw_req=float(f[12]),
                                     mock_req=float(f[13]), busy=float(f[14]))
    med = {c: {k: statistics.median(r[k] for r in runs.values())
               for k in ("rps", "p50", "p99", "gw_ev", "gw_req", "mock_req", "busy")}
           for c, runs in rows.items()}
    hdr = (f"{'cell':<16} {'ev/resp':>7} {'req/s':>8} {'p50':>8} {'p99':>8} {'vs ref':>7} "
           f"{'per-run ratio':>13} {'gw cpu/event':>12} {'gw cpu/resp':>11} {'mock cpu/resp':>13} "
           f"{'cpu busy':>8} {'errors':>6}")
    print(hdr)
    print("-" * len(hdr))
    verdicts = []
    for mode in ("stream", "unary"):
        for c in [c for c in order if meta[c]["mode"] == mode]:
            m, ref = med[c], meta[c]["ref"]
            if c == ref or ref not in med:
                vs, spread = "ref", "-"
            else:
                q = m["rps"] / med[ref]["rps"]
                vs = f"{q:.2f}x"
                ratios = [rows[c][r]["rps"] / rows[ref][r]["rps"] for r in rows[c] if r in rows[ref]]
                spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
                verdicts.append((c, ref, q, m, med[ref]))
            bad = sum(r["bad"] for r in rows[c].values())
            print(f"{c:<16} {meta[c]['events']:>7} {m['rps']:>8.0f} {fmt_us(m['p50']):>8} "
                  f"{fmt_us(m['p99']):>8} {vs:>7} {spread:>13} {m['gw_ev']:>10.2f}us "
                  f"{m['gw_req']:>9.1f}us {m['mock_req']:>11.1f}us {100 * m['busy']:>7.0f}% {bad:>6}")
        print()
    for c, ref, q, m, r in verdicts:
        print(f"{c + ' / ' + ref + ':':<34} {q:.3f}x req/s (target >= 0.8x: "
              f"{'met' if q >= 0.8 else 'NOT met'}); gw cpu/event {m['gw_ev']:.2f}us vs "
              f"{r['gw_ev']:.2f}us ({m['gw_ev'] / r['gw_ev']:.2f}x); p99 {fmt_us(m['p99'])} vs "
              f"{fmt_us(r['p99'])}")
        cost = lambda x: x["gw_req"] + x["mock_req"]
        print(f"{'':<34} CPU-bound estimate (ref's gateway+mock CPU/resp over this cell's): "
              f"{cost(r) / cost(m):.3f}x")
    print()
    print("  cell = client protocol > upstream protocol (oai = OpenAI chat, anth = Anthropic Messages,")
    print("  gem = Gemini), stream or unary; oai>oai is the same-protocol fast path and the reference")
    print("  (ref) of its mode. ev/resp = SSE events one response carries to the client, counted on the")
    print("  checked response ([DONE] included; 1 for unary). req/s, p50, p99 = median over runs;")
    print("  vs ref = ratio of median req/s to the reference; per-run ratio = min-max of req/s over the")
    print("  reference's req/s in the same round. gw cpu/event = gateway CPU (utime+stime, all threads)")
    print("  during the run / (responses x ev/resp); gw cpu/resp = the same per response; mock cpu/resp")
    print("  = the upstream's share (it differs per upstream format and shares the gateway's CPU);")
    print("  cpu busy = (gateway + mock CPU) / run time (< ~95%: the CPU under test was not the")
    print("  bottleneck, trust cpu/event over req/s). errors = socket errors + non-2xx over all runs.")


def main():
    try:
        if sys.argv[1] == "check":
            check(sys.argv[2], sys.argv[3] == "1", sys.argv[4], int(sys.argv[5]))
        elif sys.argv[1] == "summary":
            summary(sys.argv[2])
        else:
            raise SystemExit(__doc__)
    except Bad as e:
        print(f"invalid answer: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
