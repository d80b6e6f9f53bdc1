#!/usr/bin/env python3
"""Open N idle keep-alive HTTP/1.1 connections to HOST:PORT and hold them until killed.

Each connection sends one `GET /healthz` and reads the whole answer, so the server has
fully set it up as a keep-alive connection. Then the script checks all are still open and
prints one line on stdout:
    READY opened=N alive=M status=<code counts>
and sleeps until SIGTERM/SIGINT. Any failure prints `FAILED <reason>` and exits 1.

usage: hold_conns.py HOST PORT N [--path /healthz] [--timeout 120]
"""
import argparse
import resource
import selectors
import signal
import socket
import sys
import time
from collections import Counter


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, min(hard, need)) if hard != resource.RLIM_INFINITY else max(soft, need)
    if want != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def read_response(sock, deadline):
    """Reads one HTTP/1.1 response (Content-Length or chunked). Returns (status, keep_alive)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if time.monotonic() > deadline:
            raise TimeoutError("response head timeout")
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before response head")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip().lower()
    if "content-length" in hdrs:
        need = int(hdrs["content-length"])
        while len(body) < need:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed mid-body")
            body += chunk
    elif "chunked" in hdrs.get("transfer-encoding", ""):
        while not body.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed mid-body")
            body += chunk
    return status, hdrs.get("connection", "") != "close"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("--path", default="/healthz")
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()

    stop = False

    def on_signal(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    limit = raise_nofile(a.n + 64)
    if limit < a.n + 16:
        print(f"FAILED fd limit {limit} too low for {a.n} connections", flush=True)
        return 1

    deadline = time.monotonic() + a.timeout
    req = (f"GET {a.path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\n"
           f"User-Agent: sluice-bench-hold-conns\r\n\r\n").encode()
    socks = []
    statuses = Counter()
    try:
        for i in range(a.n):
            s = socket.create_connection((a.host, a.port), timeout=30)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(req)
            status, keep = read_response(s, deadline)
            statuses[status] += 1
            if not keep:
                print(f"FAILED connection {i}: server answered Connection: close (status {status})", flush=True)
                return 1
            socks.append(s)
    except Exception as e:  # noqa: BLE001
        print(f"FAILED after {len(socks)} connections: {type(e).__name__}: {e}", flush=True)
        return 1

    # Give the server a moment, then check nobody was closed behind our back.
    time.sleep(1.0)
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    for key, _ in sel.select(timeout=0):
        try:
            if key.fileobj.recv(1) == b"":
                closed += 1
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            closed += 1
    st = ",".join(f"{k}:{v}" for k, v in sorted(statuses.items()))
    print(f"READY opened={len(socks)} alive={len(socks) - closed} status={st}", flush=True)

    while not stop:
        time.sleep(0.2)
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
