"""HTTP/1.1 connection behaviour: keep-alive, pipelining, slow clients, limits, concurrency."""

import json
import threading
import time

from conftest import (RawHttp, build_request, chat_body, http_call, stream_request)

CHAT = "/v1/chat/completions"


def test_pipelined_requests_answered_in_order(gateway):
    reqs = [
        build_request("POST", CHAT, chat_body(), {"x-mock-tokens": "3", "x-request-id": "p1"}),
        build_request("GET", "/v1/models", None, {"x-request-id": "p2"}),
        build_request("POST", CHAT, chat_body(), {"x-mock-tokens": "1", "x-request-id": "p3"}),
    ]
    with RawHttp(gateway.host, gateway.port) as c:
        c.send(b"".join(reqs))  # one send()
        r1 = c.read_response(method="POST")
        r2 = c.read_response(method="GET")
        r3 = c.read_response(method="POST")
    assert [r.status for r in (r1, r2, r3)] == [200, 200, 200], (r1, r2, r3)
    assert [r.header("x-request-id") for r in (r1, r2, r3)] == ["p1", "p2", "p3"]
    assert r1.json()["choices"][0]["message"]["content"] == "w1 w2 w3"
    assert r2.json()["object"] == "list"
    assert r3.json()["choices"][0]["message"]["content"] == "w1"


def test_pipelined_two_posts_with_latency_keep_order(gateway):
    # the first request is the slow one; its answer must still come first
    reqs = [
        build_request("POST", CHAT, chat_body(), {"x-mock-latency-ms": "300", "x-mock-tokens": "2"}),
        build_request("POST", CHAT, chat_body(), {"x-mock-tokens": "4"}),
    ]
    with RawHttp(gateway.host, gateway.port) as c:
        c.send(b"".join(reqs))
        r1 = c.read_response()
        r2 = c.read_response()
    assert r1.json()["choices"][0]["message"]["content"] == "w1 w2", r1
    assert r2.json()["choices"][0]["message"]["content"] == "w1 w2 w3 w4", r2


def test_pipelined_stream_then_unary(gateway):
    reqs = [
        build_request("POST", CHAT, chat_body(stream=True), {"x-mock-tokens": "3"}),
        build_request("GET", "/healthz", None, {"x-request-id": "after-stream"}),
    ]
    with RawHttp(gateway.host, gateway.port) as c:
        c.send(b"".join(reqs))
        r1 = c.read_response()
        r2 = c.read_response(method="GET")
    assert r1.status == 200 and b"data: [DONE]" in r1.body, r1
    assert r2.status == 200 and r2.header("x-request-id") == "after-stream", r2


def test_connection_close_honoured(gateway):
    with RawHttp(gateway.host, gateway.port) as c:
        r = c.request("GET", "/healthz", headers={"Connection": "close"})
        assert r.status == 200
        closed, extra = c.wait_closed(2)
        assert closed and extra == b"", (closed, extra)


def test_slow_body_one_byte_at_a_time(gateway):
    body = chat_body(content="slowly, one byte at a time, across the header timeout")
    assert len(body) > 80
    head = build_request("POST", CHAT, body, {"x-mock-tokens": "2"})[:-len(body)]
    t0 = time.monotonic()
    with RawHttp(gateway.host, gateway.port) as c:
        c.send(head)
        for i in range(len(body)):
            c.send(body[i:i + 1])
            time.sleep(0.012)
        r = c.read_response(timeout=5)
    assert time.monotonic() - t0 > 1.0  # longer than header_timeout: body time is separate
    assert r.status == 200, r
    assert r.json()["choices"][0]["message"]["content"] == "w1 w2"


def test_head_in_pieces_within_header_timeout(gateway):
    raw = build_request("GET", "/healthz", None, {"x-request-id": "pieces"})
    with RawHttp(gateway.host, gateway.port) as c:
        for i in range(0, len(raw), 8):
            c.send(raw[i:i + 8])
            time.sleep(0.02)
        r = c.read_response(method="GET")
    assert r.status == 200 and r.header("x-request-id") == "pieces", r


def test_slowloris_partial_head_closed_after_header_timeout(gateway):
    with RawHttp(gateway.host, gateway.port) as c:
        t0 = time.monotonic()
        c.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: app")
        closed, got = c.wait_closed(10)
        elapsed = time.monotonic() - t0
    assert closed, f"connection still open {elapsed:.1f}s after a partial head (header_timeout 1s)"
    # Not before the timeout; the upper bound is only "it did fire" with room for a loaded host.
    assert 0.7 <= elapsed <= 8.0, f"closed after {elapsed:.2f}s, header_timeout_ms is 1000"
    if got:
        assert got.startswith(b"HTTP/1.1 408"), got[:200]


def test_slowloris_trickle_does_not_extend_header_timeout(gateway):
    # header_timeout bounds the whole head, not the gap between bytes
    with RawHttp(gateway.host, gateway.port) as c:
        t0 = time.monotonic()
        c.send(b"GET /healthz HTTP/1.1\r\n")
        closed = False
        i = 0
        # Trickle one header every 0.1 s for up to 12 s: if each byte extended the timeout
        # the connection would stay open all along.
        while time.monotonic() - t0 < 12:
            try:
                c.send(b"X-Drip-%d: y\r\n" % i)
            except OSError:
                closed = True
                break
            i += 1
            closed, _ = c.wait_closed(0.1)
            if closed:
                break
        elapsed = time.monotonic() - t0
    assert closed, "connection still open after 12 s of trickled headers"
    assert elapsed <= 8.0, f"closed after {elapsed:.2f}s, header_timeout_ms is 1000"


def test_idle_keepalive_connection_closed(gateway):
    with RawHttp(gateway.host, gateway.port) as c:
        assert c.request("GET", "/healthz").status == 200
        t0 = time.monotonic()
        closed, got = c.wait_closed(5)
        elapsed = time.monotonic() - t0
    assert closed, "idle keep-alive connection not closed (idle_timeout_ms 2000)"
    assert 1.5 <= elapsed <= 4.0, f"idle connection closed after {elapsed:.2f}s"


def test_header_too_large_431(gateway):
    big = "a" * (128 * 1024)  # default max_header_bytes is 64 KiB
    raw = build_request("GET", "/v1/models", None, {"X-Big": big})
    with RawHttp(gateway.host, gateway.port) as c:
        def sender():
            try:
                c.sock.sendall(raw)
            except OSError:
                pass
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        r = c.read_response(timeout=5, method="GET")
    assert r.status == 431, r
    assert http_call(gateway, "GET", "/healthz").status == 200


def test_many_headers_under_limit_ok(gateway):
    headers = {f"X-H-{i}": "v" * 200 for i in range(50)}  # ~10 KiB
    r = http_call(gateway, "GET", "/v1/models", headers=headers)
    assert r.status == 200, r


def test_expect_100_continue(gateway):
    body = chat_body()
    head = build_request("POST", CHAT, body, {"Expect": "100-continue", "x-mock-tokens": "2"})
    head = head[:-len(body)]
    with RawHttp(gateway.host, gateway.port) as c:
        c.send(head)
        # curl waits up to 1 s for the interim response, then sends the body anyway
        interim = None
        try:
            interim = c.read_head(timeout=1.0)
        except TimeoutError:
            pass
        c.send(body)
        r = c.read_response(timeout=5)
    assert r.status == 200, r
    assert r.json()["choices"][0]["message"]["content"] == "w1 w2"
    assert interim is not None, "no '100 Continue' sent for Expect: 100-continue"
    assert interim.status == 100, interim


def test_100_concurrent_streams(gateway):
    n = 100
    results = [None] * n
    errors = []

    def worker(i):
        try:
            tokens = 5 + i % 5
            res = stream_request(gateway, chat_body(stream=True, content=f"req {i}"),
                                 headers={"x-mock-tokens": str(tokens), "x-mock-itl-ms": "20",
                                          "x-request-id": f"conc-{i}"}, timeout=30)
            results[i] = (tokens, res)
        except Exception as e:  # noqa: BLE001
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    assert not errors, errors[:5]
    bad = []
    for i, item in enumerate(results):
        if item is None:
            bad.append((i, "no result"))
            continue
        tokens, res = item
        want = "".join(f"w{k} " for k in range(1, tokens + 1))
        if res.head.status != 200 or not res.data or res.data[-1] != "[DONE]" \
                or res.content() != want or res.head.header("x-request-id") != f"conc-{i}":
            bad.append((i, res.head.status, res.ended_by, res.data[-3:], res.content()))
    assert not bad, f"{len(bad)} of {n} streams wrong, e.g. {bad[:3]}"
    assert time.monotonic() - t0 < 30


def test_concurrent_unary_requests(gateway):
    n = 50
    out = [None] * n

    def worker(i):
        try:
            r = http_call(gateway, "POST", CHAT, body=chat_body(),
                          headers={"x-mock-tokens": str(1 + i % 7), "x-mock-latency-ms": "50"})
            out[i] = (r.status, r.json()["choices"][0]["message"]["content"])
        except Exception as e:  # noqa: BLE001
            out[i] = ("exc", repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    for i, o in enumerate(out):
        want = " ".join(f"w{k}" for k in range(1, 2 + i % 7))
        assert o == (200, want), (i, o)
