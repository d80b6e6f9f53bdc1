#!/usr/bin/env python3
"""Gateway overhead of a session-augmented request against a plain one.

Starts sluice (demo route: no upstream, so the gateway's own work is what is timed) on an
ephemeral port with the given state backend, then sends N plain chat requests and N requests
with `x-sluice-session` (the session grows by one turn per request and holds 20 memories), one
at a time on a keep-alive connection, and prints p50/p99 latency of each, plus the session
requests split by how many turns the session held. Stops the gateway by PID.

  python3 bench/sessions_overhead.py [--gateway build/sluice] [--n 500] [--backend memory]
"""
import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", default="build/sluice")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--backend", default="memory", choices=["memory", "sqlite"])
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sluice-sessions-bench-")
    port = free_port()
    state = "state: {backend: sqlite, path: state.db}" if args.backend == "sqlite" else "state: {backend: memory}"
    cfg = os.path.join(work, "sluice.yaml")
    with open(cfg, "w") as f:
        f.write(f"""server: {{listen: 127.0.0.1:{port}, threads: 1}}
admin: {{listen: "off"}}
{state}
routes:
  - model: demo
    targets: [{{provider: demo}}]
""")
    proc = subprocess.Popen([args.gateway, "--config", cfg], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.025)
        conn = http.client.HTTPConnection("127.0.0.1", port)

        def call(method, path, body=None, headers=None):
            h = {"content-type": "application/json"}
            h.update(headers or {})
            t0 = time.perf_counter()
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
            r = conn.getresponse()
            data = r.read()
            dt = (time.perf_counter() - t0) * 1e6
            if r.status != 200:
                sys.exit(f"{method} {path}: {r.status} {data[:200]!r}")
            return dt, data

        chat = {"model": "demo", "messages": [{"role": "user", "content": "what did I say about my trip to Lyon?"}]}
        for _ in range(50):  # warm up
            call("POST", "/v1/chat/completions", chat)
        plain = [call("POST", "/v1/chat/completions", chat)[0] for _ in range(args.n)]
        _, data = call("POST", "/v1/sessions", {})
        sid = json.loads(data)["id"]
        for i in range(20):
            call("POST", f"/v1/sessions/{sid}/memories",
                 {"key": f"fact{i}", "text": f"The user mentioned fact number {i} about Lyon and travel"})
        session = []
        for _ in range(args.n):
            session.append(call("POST", "/v1/chat/completions", chat, {"x-sluice-session": sid})[0])
        print(f"backend {args.backend}, {args.n} requests each, one at a time (µs, client included)")
        print(f"  plain chat (fast path)          p50 {pct(plain, .5):8.0f}  p99 {pct(plain, .99):8.0f}")
        print(f"  with x-sluice-session (all)     p50 {pct(session, .5):8.0f}  p99 {pct(session, .99):8.0f}")
        step = max(1, args.n // 5)
        for start in range(0, args.n, step):
            part = session[start:start + step]
            print(f"    session held {start:4d}-{start + len(part) - 1:4d} turns  p50 {pct(part, .5):8.0f}  p99 {pct(part, .99):8.0f}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
