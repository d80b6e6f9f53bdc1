#!/usr/bin/env python3
"""Chaos run for Sluice: concurrent unary and streaming clients against a two-mock route while
every request carries a random fault, one mock is SIGKILLed mid-run and restarted on the same
port. Each response is verified and classified:

  succeeded        200 and complete and well-formed: unary JSON whose content has exactly the
                   requested token count (or a well-formed answer from the `demo` fallback); a
                   stream with role chunk, "w1 " .. "wN " in order, finish chunk and [DONE]
  failed-clear     an OpenAI error JSON (any non-200), or a 200 stream that ends cleanly with
                   an error event after an in-order prefix
  lost             no response at all: timeout, connection reset/closed before a status line
  duplicated       a stream chunk delivered twice
  corrupted        anything else (bad JSON, wrong content, missing or out-of-order chunks,
                   a stream cut without an error event, ...)

Exit status 1 if lost + duplicated + corrupted > 0. Loopback only; stdlib only. Every process
is started here, tracked by PID and stopped in `finally`.

    python3 bench/chaos/chaos.py [--duration 120] [--threads 16] [--seed N]
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LISTEN_RE = re.compile(r"listening on http://([^:/\s]+):(\d+)")
# sluice's operations listener (admin.listen), announced on the line after the main one.
ADMIN_LISTEN_RE = re.compile(r"admin listening on http://([^:/\s]+):(\d+)")
ADMIN_TOKEN = "chaos-admin-token"
MODEL = "chaos"

# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


class Child:
    """A process that prints `listening on http://HOST:PORT` on stdout once ready."""

    def __init__(self, name: str, argv: list[str], env: dict | None = None, log_dir: Path = None,
                 timeout: float = 10.0):
        self.name = name
        self.log = open(log_dir / f"{name}.log", "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.log, env=env, start_new_session=True)
        self.admin_port: int | None = None
        self.port = self._wait_port(timeout)
        threading.Thread(target=self._drain, daemon=True).start()

    def _wait_port(self, timeout: float) -> int:
        found: list[int] = []
        done = threading.Event()

        def reader():
            try:
                for raw in self.proc.stdout:
                    self.log.write(raw)
                    line = raw.decode("utf-8", "replace")
                    m = LISTEN_RE.search(line)
                    if m and not ADMIN_LISTEN_RE.search(line):
                        found.append(int(m.group(2)))
                        return
            finally:
                done.set()

        threading.Thread(target=reader, daemon=True).start()
        done.wait(timeout)
        if not found:
            self.stop()
            raise RuntimeError(f"{self.name} did not start (exit {self.proc.poll()}); "
                               f"see {self.log.name}")
        return found[0]

    def _drain(self):
        try:
            for raw in self.proc.stdout:
                self.log.write(raw)
                m = ADMIN_LISTEN_RE.search(raw.decode("utf-8", "replace"))
                if m:
                    self.admin_port = int(m.group(2))
        except (OSError, ValueError):
            pass

    def wait_admin_port(self, timeout: float = 5.0) -> int:
        """The port of sluice's operations listener (/admin/*, /metrics)."""
        deadline = time.monotonic() + timeout
        while self.admin_port is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: no 'admin listening on' line")
            time.sleep(0.02)
        return self.admin_port

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_mock(bin_dir: Path, log_dir: Path, name: str, port: int = 0) -> Child:
    argv = [str(bin_dir / "sluice-mock"), "--listen", f"127.0.0.1:{port}", "--threads", "2"]
    deadline = time.monotonic() + 10
    while True:
        try:
            return Child(name, argv, log_dir=log_dir, timeout=5)
        except RuntimeError:
            if port == 0 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # the port may still be held for a moment after the kill


CONFIG = """\
server: {{listen: "127.0.0.1:0", threads: 2, idle_timeout_ms: 60000, drain_timeout_ms: 3000}}
upstream:
  timeouts: {{connect_ms: 500, first_byte_ms: 2000, stream_idle_ms: 1000, total_ms: 10000}}
admin: {{listen: "127.0.0.1:0", token_env: SLUICE_ADMIN_TOKEN}}
routes:
  - model: {model}
    retry: {{max_attempts: 3, backoff_base_ms: 20, backoff_cap_ms: 200, deadline_ms: 5000}}
    fallbacks: [demo]
    targets:
      - name: mock-a
        provider: openai
        forward_headers: ["x-mock-*"]
        base_url: "http://127.0.0.1:{port_a}/v1"
        model: mock-model
        breaker: {{min_requests: 40, failure_ratio: 0.8, window_ms: 5000, cooldown_ms: 1000}}
      - name: mock-b
        provider: openai
        forward_headers: ["x-mock-*"]
        base_url: "http://127.0.0.1:{port_b}/v1"
        model: mock-model
        breaker: {{min_requests: 40, failure_ratio: 0.8, window_ms: 5000, cooldown_ms: 1000}}
  - model: demo
    targets: [{{provider: demo}}]
"""

# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------

# (weight, name): what one client request carries. Script steps are per mock and per id, and a
# retry goes to the other mock first, so "500,200" usually needs three attempts.
FAULTS = [
    (30, "none"),
    (10, "latency"),          # x-mock-latency-ms 50..400: slow but fine
    (10, "500-then-200"),     # x-mock-script: 500,200
    (5, "always-500"),        # x-mock-script: 500 → route exhausted → demo fallback
    (5, "429-retry-after"),   # x-mock-script: 429,200 + Retry-After: 1
    (8, "reset-then-200"),    # x-mock-script: reset,200
    (10, "drop-after"),       # x-mock-fault: drop-after:N (stream cut mid-way / unary closed)
    (5, "stall-after"),       # x-mock-fault: stall-after:N (stream_idle 1 s / first_byte 2 s)
]
_FAULT_NAMES = [n for _, n in FAULTS]
_FAULT_WEIGHTS = [w for w, _ in FAULTS]


def fault_headers(rng: random.Random, fault: str, tokens: int, rid: str) -> dict:
    h = {"x-mock-tokens": str(tokens)}
    if fault == "latency":
        h["x-mock-latency-ms"] = str(rng.randint(50, 400))
    elif fault == "500-then-200":
        h.update({"x-mock-script": "500,200", "x-mock-script-id": rid})
    elif fault == "always-500":
        h.update({"x-mock-script": "500", "x-mock-script-id": rid})
    elif fault == "429-retry-after":
        h.update({"x-mock-script": "429,200", "x-mock-script-id": rid,
                  "x-mock-retry-after": "1"})
    elif fault == "reset-then-200":
        h.update({"x-mock-script": "reset,200", "x-mock-script-id": rid})
    elif fault == "drop-after":
        h["x-mock-fault"] = f"drop-after:{rng.randint(0, tokens - 1)}"
    elif fault == "stall-after":
        h["x-mock-fault"] = f"stall-after:{rng.randint(0, tokens - 1)}"
    return h


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------

CATEGORIES = ["succeeded", "failed-clear", "lost", "duplicated", "corrupted"]


def is_error_json(body: bytes) -> bool:
    try:
        obj = json.loads(body)
    except ValueError:
        return False
    err = obj.get("error") if isinstance(obj, dict) else None
    return (isinstance(err, dict) and isinstance(err.get("message"), str) and err["message"]
            and isinstance(err.get("type"), str))


def verify_unary(status: int, ctype: str, body: bytes, tokens: int) -> tuple[str, str]:
    if status != 200:
        if ctype.startswith("application/json") and is_error_json(body):
            return "failed-clear", f"http {status}"
        return "corrupted", f"http {status} without an error JSON: {body[:120]!r}"
    try:
        obj = json.loads(body)
        content = obj["choices"][0]["message"]["content"]
        rid = obj["id"]
    except (ValueError, KeyError, IndexError, TypeError):
        return "corrupted", f"200 with a malformed body: {body[:160]!r}"
    if rid.startswith("chatcmpl-demo"):
        return ("succeeded", "fallback") if isinstance(content, str) and content else \
            ("corrupted", f"empty demo answer: {body[:160]!r}")
    expected = " ".join(f"w{i}" for i in range(1, tokens + 1))
    if content != expected:
        return "corrupted", f"content {content[:80]!r}, expected {tokens} tokens"
    return "succeeded", "upstream"


def parse_sse(body: bytes) -> tuple[list[str], bytes]:
    """Returns the data payloads of complete events and the unterminated tail."""
    text = body.replace(b"\r\n", b"\n")
    events = []
    while True:
        i = text.find(b"\n\n")
        if i < 0:
            break
        block, text = text[:i], text[i + 2:]
        lines = [ln[5:].lstrip(b" ") for ln in block.split(b"\n") if ln.startswith(b"data:")]
        if lines:
            events.append(b"\n".join(lines).decode("utf-8", "replace"))
    return events, text


def verify_stream(status: int, ctype: str, body: bytes, complete: bool,
                  tokens: int) -> tuple[str, str]:
    if status != 200:
        if ctype.startswith("application/json") and is_error_json(body):
            return "failed-clear", f"http {status}"
        return "corrupted", f"http {status} without an error JSON: {body[:120]!r}"
    if not ctype.startswith("text/event-stream"):
        return "corrupted", f"200 stream with content-type {ctype!r}"
    events, tail = parse_sse(body)
    if tail.strip():
        return "corrupted", f"partial event at the end: {tail[:80]!r}"
    demo = False
    expect = 1          # next content index
    saw_role = saw_finish = saw_done = False
    seen_contents: set[str] = set()
    for k, data in enumerate(events):
        if saw_done:
            return "corrupted", "events after [DONE]"
        if data == "[DONE]":
            saw_done = True
            continue
        try:
            obj = json.loads(data)
        except ValueError:
            return "corrupted", f"event {k} is not JSON: {data[:80]!r}"
        if "error" in obj:
            if k != len(events) - 1:
                return "corrupted", "error event not last"
            if not is_error_json(data.encode()):
                return "corrupted", f"malformed error event {data[:120]!r}"
            if not complete:
                return "corrupted", "error event but the chunked body did not end cleanly"
            return "failed-clear", "stream error event after %d/%d chunks" % (expect - 1, tokens)
        if saw_finish:
            # only a usage chunk may follow the finish chunk
            if obj.get("choices"):
                return "corrupted", "chunk after the finish chunk"
            continue
        try:
            choice = obj["choices"][0]
            delta = choice["delta"]
        except (KeyError, IndexError, TypeError):
            return "corrupted", f"malformed chunk {data[:120]!r}"
        if k == 0:
            demo = str(obj.get("id", "")).startswith("chatcmpl-demo")
            if delta.get("role") != "assistant":
                return "corrupted", "first chunk has no role"
            saw_role = True
            continue
        if delta.get("role"):
            return "duplicated", "a second role chunk"
        if choice.get("finish_reason"):
            saw_finish = True
            continue
        piece = delta.get("content")
        if not isinstance(piece, str):
            return "corrupted", f"chunk without content {data[:120]!r}"
        if demo:
            continue
        if piece in seen_contents:
            return "duplicated", f"chunk {piece!r} repeated"
        if piece != f"w{expect} ":
            return "corrupted", f"chunk {piece!r} where 'w{expect} ' was expected"
        seen_contents.add(piece)
        expect += 1
    if not complete:
        return "corrupted", (f"stream cut without an error event after {expect - 1}/{tokens} "
                             f"chunks")
    if not saw_done:
        return "corrupted", "stream ended without [DONE] or an error event"
    if not (saw_role and saw_finish):
        return "corrupted", "stream lacks its role or finish chunk"
    if demo:
        return "succeeded", "fallback"
    if expect - 1 != tokens:
        return "corrupted", f"{expect - 1} of {tokens} chunks before [DONE]"
    return "succeeded", "upstream"


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.count = collections.Counter()          # (kind, category)
        self.reasons = collections.Counter()        # (category, reason)
        self.by_fault = collections.Counter()       # (fault, category)
        self.attempts = collections.Counter()
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.examples: list[dict] = []
        self.timeline = collections.Counter()       # (second, category)

    def add(self, kind, fault, category, reason, attempts, dt, t_rel, info):
        with self.lock:
            self.count[(kind, category)] += 1
            self.reasons[(category, reason)] += 1
            self.by_fault[(fault, category)] += 1
            if attempts is not None:
                self.attempts[attempts] += 1
            self.latency[category].append(dt)
            self.timeline[(int(t_rel), category)] += 1
            if category in ("lost", "duplicated", "corrupted") and len(self.examples) < 20:
                self.examples.append(info)


def client_loop(idx: int, port: int, stop_at: float, t0: float, seed: int, stats: Stats,
                fresh: bool):
    rng = random.Random(seed * 1000 + idx)
    conn = None
    n = 0
    while time.monotonic() < stop_at:
        n += 1
        stream = rng.random() < 0.5
        tokens = rng.randint(1, 12)
        fault = rng.choices(_FAULT_NAMES, _FAULT_WEIGHTS)[0]
        rid = f"c{idx}-{n}-{seed}"
        headers = fault_headers(rng, fault, tokens, rid)
        headers["Content-Type"] = "application/json"
        body = {"model": MODEL, "messages": [{"role": "user", "content": f"chaos {rid}"}]}
        if stream:
            body["stream"] = True
        payload = json.dumps(body).encode()
        kind = "stream" if stream else "unary"
        t_start = time.monotonic()
        status = None
        attempts = None
        info = {"kind": kind, "fault": fault, "headers": headers, "t": round(t_start - t0, 2)}
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
            conn.request("POST", "/v1/chat/completions", body=payload, headers=headers)
            resp = conn.getresponse()
            status = resp.status
            ctype = resp.getheader("content-type", "")
            a = resp.getheader("x-sluice-attempts")
            attempts = int(a) if a and a.isdigit() else None
            complete = True
            try:
                data = resp.read()
            except http.client.IncompleteRead as e:
                data, complete = e.partial, False
            except (OSError, http.client.HTTPException):
                data, complete = b"", False
            if stream:
                category, reason = verify_stream(status, ctype, data, complete, tokens)
            else:
                category, reason = verify_unary(status, ctype, data, tokens)
                if category != "corrupted" and not complete:
                    category, reason = "corrupted", "unary body cut short"
            if not complete or resp.will_close or fresh:
                conn.close()
                conn = None
            info.update(status=status, body=data[-300:].decode("utf-8", "replace"))
        except (OSError, http.client.HTTPException) as e:
            category, reason = "lost", type(e).__name__
            info.update(error=repr(e))
            if conn is not None:
                conn.close()
            conn = None
        dt = time.monotonic() - t_start
        info.update(category=category, reason=reason, seconds=round(dt, 3))
        stats.add(kind, fault, category, reason, attempts, dt, t_start - t0, info)
    if conn is not None:
        conn.close()


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def http_json(port: int, path: str, headers: dict | None = None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return json.loads(r.read())
    finally:
        c.close()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100 * len(v)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of load (120)")
    ap.add_argument("--threads", type=int, default=16, help="concurrent clients (16)")
    ap.add_argument("--kill-at", type=float, default=None,
                    help="seconds into the run to SIGKILL mock-b (default: duration/3)")
    ap.add_argument("--down-for", type=float, default=10.0,
                    help="seconds mock-b stays down (10)")
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    ap.add_argument("--fresh-connections", action="store_true",
                    help="a new client connection per request (default: keep-alive)")
    ap.add_argument("--build-dir", default=os.environ.get("SLUICE_BUILD_DIR", str(REPO / "build")))
    ap.add_argument("--json", help="also write the results as JSON to this file")
    args = ap.parse_args()
    kill_at = args.duration / 3 if args.kill_at is None else args.kill_at
    bin_dir = Path(args.build_dir)
    if not bin_dir.is_absolute():
        bin_dir = REPO / bin_dir
    for b in ("sluice", "sluice-mock"):
        if not os.access(bin_dir / b, os.X_OK):
            print(f"chaos: {bin_dir / b} not built", file=sys.stderr)
            return 2

    work = Path(tempfile.mkdtemp(prefix="sluice-chaos."))
    children: list[Child] = []
    events: list[str] = []
    ok = False
    try:
        mock_a = start_mock(bin_dir, work, "mock-a")
        mock_b = start_mock(bin_dir, work, "mock-b")
        children += [mock_a, mock_b]
        cfg = work / "sluice.yaml"
        cfg.write_text(CONFIG.format(model=MODEL, port_a=mock_a.port, port_b=mock_b.port))
        env = dict(os.environ, SLUICE_ADMIN_TOKEN=ADMIN_TOKEN)
        gw = Child("sluice", [str(bin_dir / "sluice"), "--config", str(cfg)], env=env,
                   log_dir=work)
        children.append(gw)
        print(f"chaos: seed {args.seed}, {args.threads} clients, {args.duration:.0f} s; "
              f"mock-a :{mock_a.port}, mock-b :{mock_b.port}, sluice :{gw.port}; logs in {work}",
              flush=True)

        stats = Stats()
        t0 = time.monotonic()
        stop_at = t0 + args.duration
        threads = [threading.Thread(target=client_loop,
                                    args=(i, gw.port, stop_at, t0, args.seed, stats,
                                          args.fresh_connections), daemon=True)
                   for i in range(args.threads)]
        for t in threads:
            t.start()

        # The fault schedule: SIGKILL mock-b, restart it on the same port.
        b_port = mock_b.port
        time.sleep(max(0.0, t0 + kill_at - time.monotonic()))
        mock_b.kill()
        events.append(f"t={time.monotonic() - t0:5.1f}s  SIGKILL mock-b (pid {mock_b.proc.pid})")
        print("chaos: " + events[-1], flush=True)
        time.sleep(max(0.0, t0 + kill_at + args.down_for - time.monotonic()))
        new_b = start_mock(bin_dir, work, "mock-b", port=b_port)
        children.append(new_b)
        events.append(f"t={time.monotonic() - t0:5.1f}s  restarted mock-b on :{b_port} "
                      f"(pid {new_b.proc.pid})")
        print("chaos: " + events[-1], flush=True)

        last_report = time.monotonic()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(1.0)
            if time.monotonic() - last_report >= 15:
                last_report = time.monotonic()
                with stats.lock:
                    done = sum(stats.count.values())
                print(f"chaos: t={last_report - t0:5.1f}s  {done} requests", flush=True)
            if time.monotonic() > stop_at + 30:
                print("chaos: clients did not finish 30 s after the end", file=sys.stderr)
                break
        elapsed = time.monotonic() - t0

        admin = http_json(gw.wait_admin_port(), "/admin/upstreams",
                          {"Authorization": f"Bearer {ADMIN_TOKEN}"})
        mock_stats = {"mock-a": http_json(mock_a.port, "/mock/stats"),
                      "mock-b (restarted)": http_json(new_b.port, "/mock/stats")}
        gw_alive = gw.proc.poll() is None
        ok = report(args, stats, elapsed, events, admin, mock_stats, gw_alive, work)
    finally:
        for c in reversed(children):
            try:
                c.stop()
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass
    return 0 if ok else 1


def report(args, stats: Stats, elapsed: float, events: list[str], admin: dict,
           mock_stats: dict, gw_alive: bool, work: Path) -> bool:
    total = collections.Counter()
    for (kind, cat), n in stats.count.items():
        total[cat] += n
    n_all = sum(total.values())
    print()
    print(f"== Sluice chaos run: {n_all} requests in {elapsed:.1f} s "
          f"({n_all / elapsed:.0f} req/s), {args.threads} clients, seed {args.seed} ==")
    for e in events:
        print("   " + e)
    print()
    print(f"{'category':<16}{'unary':>9}{'stream':>9}{'total':>9}{'share':>9}")
    for cat in CATEGORIES:
        u, s = stats.count[("unary", cat)], stats.count[("stream", cat)]
        print(f"{cat:<16}{u:>9}{s:>9}{u + s:>9}{100 * (u + s) / max(1, n_all):>8.2f}%")
    print(f"{'total':<16}{sum(stats.count[('unary', c)] for c in CATEGORIES):>9}"
          f"{sum(stats.count[('stream', c)] for c in CATEGORIES):>9}{n_all:>9}")
    fb = stats.reasons[("succeeded", "fallback")]
    print(f"  succeeded via the demo fallback: {fb}")
    print()
    print("by fault (succeeded / failed-clear / other):")
    for name in _FAULT_NAMES:
        s = stats.by_fault[(name, "succeeded")]
        f = stats.by_fault[(name, "failed-clear")]
        o = sum(stats.by_fault[(name, c)] for c in ("lost", "duplicated", "corrupted"))
        print(f"  {name:<18}{s:>8}{f:>8}{o:>6}")
    print()
    print("reasons:")
    for (cat, reason), n in sorted(stats.reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:>7}  {cat:<13} {reason}")
    print()
    print("x-sluice-attempts: " + ", ".join(f"{k}: {v}" for k, v in sorted(stats.attempts.items())))
    print("latency (s)       p50     p90     p99     max")
    for cat in CATEGORIES:
        v = stats.latency.get(cat)
        if v:
            print(f"  {cat:<14}{pct(v, 50):>7.3f}{pct(v, 90):>8.3f}{pct(v, 99):>8.3f}"
                  f"{max(v):>8.3f}")
    print()
    print("upstreams (/admin/upstreams):")
    for route in admin.get("routes", []):
        if route["model"] != MODEL:
            continue
        for t in route["targets"]:
            a = t["attempts"]
            print(f"  {t['name']}: breaker {t['breaker']} (transitions "
                  f"{t['breaker_transitions']}), retries {t['retries']}, "
                  + ", ".join(f"{k} {v}" for k, v in a.items()))
    for name, st in mock_stats.items():
        print(f"  {name} /mock/stats: {json.dumps(st)}")
    # Per 10 s: what happened around the kill.
    print()
    print("timeline (requests per 10 s: succeeded / failed-clear / bad):")
    last = int(elapsed) // 10
    for b in range(last + 1):
        row = collections.Counter()
        for (sec, cat), n in stats.timeline.items():
            if sec // 10 == b:
                row[cat] += n
        bad = row["lost"] + row["duplicated"] + row["corrupted"]
        print(f"  {b * 10:>4}-{b * 10 + 10:<4}s {row['succeeded']:>7} {row['failed-clear']:>7}"
              f" {bad:>5}")
    bad = total["lost"] + total["duplicated"] + total["corrupted"]
    if stats.examples:
        print()
        print("first anomalies:")
        for ex in stats.examples[:10]:
            print("  " + json.dumps(ex)[:600])
    if not gw_alive:
        print("\nsluice exited during the run!")
    verdict = bad == 0 and gw_alive
    print()
    print(f"RESULT: {'PASS' if verdict else 'FAIL'} — lost {total['lost']}, duplicated "
          f"{total['duplicated']}, corrupted {total['corrupted']} (logs: {work})")
    if args.json:
        out = {
            "seed": args.seed, "threads": args.threads, "duration_s": round(elapsed, 1),
            "requests": n_all, "totals": dict(total),
            "by_kind": {f"{k}/{c}": n for (k, c), n in stats.count.items()},
            "reasons": {f"{c}: {r}": n for (c, r), n in stats.reasons.items()},
            "attempts": dict(stats.attempts), "events": events, "admin": admin,
            "mocks": mock_stats, "examples": stats.examples,
        }
        Path(args.json).write_text(json.dumps(out, indent=1))
    return verdict


if __name__ == "__main__":
    sys.exit(main())
