#!/usr/bin/env python3
"""Open N streaming chat completions through a gateway and hold them open until killed.

Each request is `POST /v1/chat/completions` with `"stream": true` and the sluice-mock control
headers `x-mock-ttft-ms` / `x-mock-itl-ms` (default 60000), so the mock answers the head (and
the role chunk) at once and then stays silent. Once every stream has its response head, the
script waits a second, checks none has ended, prints
    READY opened=N heads=N alive=M status=<code counts>
and sleeps until SIGTERM/SIGINT. Failures print `FAILED <reason>` and exit 1.

usage: hold_streams.py HOST PORT N [--delay-ms 60000] [--timeout 120]
"""
import argparse
import json
import resource
import selectors
import signal
import socket
import sys
import time
from collections import Counter


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("--delay-ms", type=int, default=60000)
    ap.add_argument("--model", default="mock-model")
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()

    stop = False

    def on_signal(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.n + 64), hard))

    body = json.dumps({"model": a.model, "stream": True,
                       "messages": [{"role": "user", "content": "hello"}]}).encode()
    req = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {a.host}:{a.port}\r\n"
           f"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
           f"x-mock-ttft-ms: {a.delay_ms}\r\nx-mock-itl-ms: {a.delay_ms}\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    deadline = time.monotonic() + a.timeout
    sel = selectors.DefaultSelector()
    bufs = {}
    try:
        for _ in range(a.n):
            s = socket.create_connection((a.host, a.port), timeout=30)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(req)
            s.setblocking(False)
            bufs[s] = b""
            sel.register(s, selectors.EVENT_READ)
    except Exception as e:  # noqa: BLE001
        print(f"FAILED after {len(bufs)} connections: {type(e).__name__}: {e}", flush=True)
        return 1

    statuses = Counter()
    heads = set()
    ended = set()
    while len(heads) + len(ended - heads) < a.n:
        if time.monotonic() > deadline:
            print(f"FAILED timeout: {len(heads)}/{a.n} response heads", flush=True)
            return 1
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                ended.add(s)
                sel.unregister(s)
                continue
            bufs[s] += data
            if s not in heads and b"\r\n\r\n" in bufs[s]:
                heads.add(s)
                statuses[int(bufs[s].split(b" ", 2)[1])] += 1
            if s in heads and b"[DONE]" in bufs[s]:
                ended.add(s)
    if ended:
        sample = next(iter(ended))
        print(f"FAILED {len(ended)} streams ended early; sample: {bufs[sample][:300]!r}", flush=True)
        return 1

    # Still open a second later? (drain whatever arrived, watch for EOF / [DONE])
    t_end = time.monotonic() + 1.0
    while time.monotonic() < t_end:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data or b"[DONE]" in data:
                ended.add(s)
                sel.unregister(s)
    st = ",".join(f"{k}:{v}" for k, v in sorted(statuses.items()))
    print(f"READY opened={len(bufs)} heads={len(heads)} alive={len(bufs) - len(ended)} status={st}",
          flush=True)

    while not stop:
        time.sleep(0.2)
    for s in bufs:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
