"""HTTP server hardening: strict request framing (bare LF, chunk extensions and trailers, Host),
close-delimited streams for HTTP/1.0 clients, lingering close after early errors, a process-wide
budget for buffered request bodies, and authentication on the request head."""

from __future__ import annotations

import json
import os
import select
import socket
import time

from conftest import SLUICE_BIN, Proc, chat_body, http_call, require_binaries

CHAT = "/v1/chat/completions"
KEY = "sk-hardening-key"


def start(tmp_path, server: str = "", auth: bool = False, name: str = "gw") -> Proc:
    require_binaries(SLUICE_BIN)
    auth_text = ""
    if auth:
        auth_text = "auth:\n  enabled: true\n  keys:\n    - {name: team, key_env: HARDENING_KEY}\n"
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(f"""server: {{listen: "127.0.0.1:0", threads: 2, max_body_bytes: 1MiB{server}}}
{auth_text}routes:
  - model: demo
    targets: [{{provider: demo}}]
""")
    env = dict(os.environ, HARDENING_KEY=KEY)
    return Proc([str(SLUICE_BIN), "--config", str(cfg)], env=env, name=name)


def connect(gw) -> socket.socket:
    s = socket.create_connection((gw.host, gw.port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_to_eof(s: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes; fails on a reset or a timeout."""
    s.settimeout(timeout)
    out = b""
    while True:
        piece = s.recv(65536)  # ConnectionResetError / socket.timeout fail the test
        if not piece:
            return out
        out += piece


def read_head(s: socket.socket, buf: bytes = b"", timeout: float = 10.0) -> tuple[bytes, bytes]:
    """(head including CRLFCRLF, bytes after it)."""
    s.settimeout(timeout)
    while b"\r\n\r\n" not in buf:
        piece = s.recv(65536)
        assert piece, f"connection closed before a response head: {buf!r}"
        buf += piece
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


def status_of(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def header(head: bytes, name: str) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower().encode():
            return v.strip().decode()
    return None


def read_response(s: socket.socket, buf: bytes = b"") -> tuple[bytes, bytes, bytes]:
    """(head, Content-Length body, leftover bytes)."""
    head, rest = read_head(s, buf)
    n = int(header(head, "content-length") or 0)
    while len(rest) < n:
        piece = s.recv(65536)
        assert piece, "connection closed inside a response body"
        rest += piece
    return head, rest[:n], rest[n:]


def raw_exchange(gw, data: bytes) -> bytes:
    with connect(gw) as s:
        s.sendall(data)
        return read_to_eof(s)


def demo_chat(content: str = "hi", stream: bool = False) -> bytes:
    return chat_body(model="demo", content=content, stream=stream)


# ---- §1.19: strict framing -------------------------------------------------------------------


def test_bare_lf_in_request_head_is_rejected(tmp_path):
    gw = start(tmp_path)
    try:
        for raw in (b"GET /healthz HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n",
                    b"GET /healthz HTTP/1.1\nHost: h\r\n\r\n",
                    b"GET /healthz HTTP/1.1\r\nHost: h\r\n\n"):
            got = raw_exchange(gw, raw)
            assert got.startswith(b"HTTP/1.1 400 "), (raw, got)
            assert b"bare LF" in got, got
    finally:
        gw.stop()


def test_host_is_required_once_in_http11_only(tmp_path):
    gw = start(tmp_path)
    try:
        got = raw_exchange(gw, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 400 ") and b"missing Host" in got, got
        got = raw_exchange(gw, b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 400 ") and b"more than one Host" in got, got
        got = raw_exchange(gw, b"GET /healthz HTTP/1.0\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 200 "), got
    finally:
        gw.stop()


def chunked_post(chunks: bytes) -> bytes:
    return (b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks)


def as_chunks(body: bytes, ext: bytes = b"", trailer: bytes = b"", eol: bytes = b"\r\n") -> bytes:
    return (b"%x" % len(body) + ext + eol + body + eol + b"0" + eol + trailer + eol)


def test_chunked_framing_is_strict(tmp_path):
    gw = start(tmp_path)
    body = demo_chat()
    try:
        # A well-formed chunked body with extensions and a trailer is accepted.
        ok = raw_exchange(gw, chunked_post(as_chunks(body, b';a=b;q="x y"', b"X-T: v\r\n")))
        assert ok.startswith(b"HTTP/1.1 200 "), ok
        bad = {
            "bare LF": as_chunks(body, eol=b"\n"),
            "bare LF in the data terminator": b"%x\r\n" % len(body) + body + b"\n0\r\n\r\n",
            "long extension": as_chunks(body, b";x=" + b"v" * 2000),
            "malformed extension": as_chunks(body, b";=v"),
            "long trailers": as_chunks(body, trailer=b"".join(
                b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(100))),
            "malformed trailer": as_chunks(body, trailer=b"X y\r\n"),
        }
        for what, chunks in bad.items():
            got = raw_exchange(gw, chunked_post(chunks))
            assert got.startswith(b"HTTP/1.1 400 "), (what, got)
            assert b"Malformed chunked request body" in got, (what, got)
    finally:
        gw.stop()


# ---- §1.11: HTTP/1.0 streams are close-delimited ---------------------------------------------


def test_http10_stream_is_close_delimited(tmp_path):
    gw = start(tmp_path)
    try:
        body = demo_chat(stream=True)
        req = (b"POST " + CHAT.encode() + b" HTTP/1.0\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body) + body)
        got = raw_exchange(gw, req)  # the server must close: EOF ends the body
        head, _, payload = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), got
        assert header(head + b"\r\n", "transfer-encoding") is None, head
        assert header(head + b"\r\n", "content-length") is None, head
        assert header(head + b"\r\n", "connection") == "close", head
        # The body is the SSE events verbatim: no chunk-size lines between them.
        assert payload.startswith(b"data: {"), payload[:200]
        assert payload.endswith(b"data: [DONE]\n\n"), payload[-200:]
        events = payload.split(b"\n\n")[:-1]
        assert len(events) >= 3, payload
        for ev in events:
            assert ev.startswith(b"data: "), (ev, payload)
        chunks = [json.loads(ev[6:]) for ev in events[:-1]]
        assert all(c["object"] == "chat.completion.chunk" for c in chunks), chunks
    finally:
        gw.stop()


def test_http10_unary_keeps_content_length_and_keep_alive(tmp_path):
    gw = start(tmp_path)
    try:
        body = demo_chat()
        req = (b"POST " + CHAT.encode() + b" HTTP/1.0\r\nContent-Type: application/json\r\n"
               b"Connection: keep-alive\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        with connect(gw) as s:
            for _ in range(2):  # the connection stays usable
                s.sendall(req)
                head, payload, rest = read_response(s)
                assert head.startswith(b"HTTP/1.1 200 "), head
                assert header(head, "transfer-encoding") is None, head
                assert json.loads(payload)["object"] == "chat.completion"
                assert rest == b""
    finally:
        gw.stop()


# ---- §1.18: lingering close ------------------------------------------------------------------


def test_413_is_read_by_a_client_that_sends_its_whole_body(tmp_path):
    gw = start(tmp_path)
    try:
        body = b"x" * (2 * 1024 * 1024)  # max_body_bytes is 1 MiB
        req = (b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: h\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        with connect(gw) as s:
            # A client that writes everything before reading, at a network's pace (the 413 is
            # sent as soon as the head arrives): no EPIPE / ECONNRESET while sending...
            s.sendall(req)
            for i in range(0, len(body), 64 * 1024):
                s.sendall(body[i:i + 64 * 1024])
                time.sleep(0.01)
            got = read_to_eof(s)  # ...and no reset before or after the status
        assert got.startswith(b"HTTP/1.1 413 "), got[:300]
        head, _, payload = got.partition(b"\r\n\r\n")
        assert json.loads(payload)["error"]["type"] == "invalid_request_error", payload
    finally:
        gw.stop()


# ---- §2.1: body memory budget ----------------------------------------------------------------


def large_request(size: int) -> bytes:
    body = demo_chat(content="x" * size)
    return (b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: h\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def wait_readable(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
    ready, _, _ = select.select(socks, [], [], timeout)
    return ready


def test_buffered_body_budget_answers_503(tmp_path):
    gw = start(tmp_path, ", max_buffered_body_bytes: 1MiB")
    try:
        a_req, b_req = large_request(700 * 1024), large_request(700 * 1024)
        held = len(a_req) - 100 * 1024  # both uploads stop 100 KiB before their end
        a, b = connect(gw), connect(gw)
        with a, b:
            # Interleaved in small steps, so both buffers grow side by side (the order in which
            # two real uploads arrive): one must still fit, not both be refused halfway.
            for i in range(0, held, 32 * 1024):
                a.sendall(a_req[i:min(i + 32 * 1024, held)])
                b.sendall(b_req[i:min(i + 32 * 1024, held)])
                time.sleep(0.005)
            # Both bodies cannot be buffered at once: one of them is refused mid-body.
            ready = wait_readable([a, b], 10)
            assert len(ready) == 1, "neither or both uploads were answered"
            refused, survivor = (a, b) if ready[0] is a else (b, a)
            got = read_to_eof(refused)
            head, _, payload = got.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503 "), got[:300]
            assert header(head + b"\r\n", "retry-after") == "1", head
            err = json.loads(payload)["error"]
            assert set(err) >= {"message", "type", "param", "code"}, err
            # The survivor finishes its upload and is served.
            survivor.sendall((a_req if survivor is a else b_req)[held:])
            head, payload, _ = read_response(survivor)
            assert head.startswith(b"HTTP/1.1 200 "), (head, payload[:300])
    finally:
        gw.stop()


def test_buffer_is_given_back_after_a_large_request(tmp_path):
    # A keep-alive connection that made one large request stays usable, and no longer holds
    # its large buffer: another connection can use the whole budget.
    gw = start(tmp_path, ", max_buffered_body_bytes: 1MiB")
    try:
        with connect(gw) as a:
            a.sendall(large_request(700 * 1024))
            head, _, _ = read_response(a)
            assert head.startswith(b"HTTP/1.1 200 "), head
            # The buffer is given back when the connection goes back to reading (just after
            # the response is written): a second request on `a` is read after that point.
            a.sendall(b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
            head, _, _ = read_response(a)
            assert head.startswith(b"HTTP/1.1 200 "), head
            with connect(gw) as b:
                b.sendall(large_request(700 * 1024))
                head, payload, _ = read_response(b)
                assert head.startswith(b"HTTP/1.1 200 "), (head, payload[:300])
            small = demo_chat()
            a.sendall(b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: h\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                      % len(small) + small + b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
            head, _, rest = read_response(a)
            assert head.startswith(b"HTTP/1.1 200 "), head
            head, payload, _ = read_response(a, rest)
            assert head.startswith(b"HTTP/1.1 200 ") and b"ok" in payload, (head, payload)
    finally:
        gw.stop()


# ---- §2.2: authentication on the head --------------------------------------------------------


def test_bad_key_gets_401_without_100_continue_or_body_read(tmp_path):
    gw = start(tmp_path, auth=True)
    try:
        with connect(gw) as s:
            s.sendall(b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: h\r\n"
                      b"Authorization: Bearer sk-wrong\r\nExpect: 100-continue\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 900000\r\n\r\n")
            # No body is ever sent: the answer must not wait for it.
            got = read_to_eof(s, timeout=5)
        assert got.startswith(b"HTTP/1.1 401 "), got[:300]
        assert b"100 Continue" not in got, got[:300]
        assert json.loads(got.partition(b"\r\n\r\n")[2])["error"]["code"] == "invalid_api_key"
        # A good key still works (authenticated once, on the head).
        r = http_call(gw, "POST", CHAT, body=demo_chat(),
                      headers={"authorization": f"Bearer {KEY}", "expect": "100-continue"})
        assert r.status == 200, r
        r = http_call(gw, "GET", "/v1/models", headers={"authorization": f"Bearer {KEY}"})
        assert r.status == 200, r
        assert http_call(gw, "GET", "/v1/models").status == 401
    finally:
        gw.stop()
