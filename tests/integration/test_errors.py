"""Client errors, routing errors and upstream failures, all in the OpenAI error shape."""

import json
import threading
import time

import pytest

from conftest import (RawHttp, assert_error_shape, build_request, chat_body, http_call,
                      stream_request)

CHAT = "/v1/chat/completions"


def test_malformed_json_400(gateway):
    r = http_call(gateway, "POST", CHAT, body=b'{"model": "mock-model", "messages": [')
    err = assert_error_shape(r, 400)
    assert err["type"] == "invalid_request_error", err


def test_body_not_an_object_400(gateway):
    r = http_call(gateway, "POST", CHAT, body=b'["model", "mock-model"]')
    assert_error_shape(r, 400)


def test_missing_model_400(gateway):
    r = http_call(gateway, "POST", CHAT, json_body={"messages": [{"role": "user", "content": "x"}]})
    err = assert_error_shape(r, 400)
    assert err["param"] == "model", err


def test_unknown_model_404(gateway, mock):
    r = http_call(gateway, "POST", CHAT, body=chat_body(model="gpt-nonexistent"))
    err = assert_error_shape(r, 404)
    assert err["code"] == "model_not_found", err


def test_unknown_model_404_when_streaming(gateway):
    r = http_call(gateway, "POST", CHAT, body=chat_body(model="nope", stream=True))
    err = assert_error_shape(r, 404)
    assert err["code"] == "model_not_found", err


def test_unknown_model_embeddings_404(gateway):
    r = http_call(gateway, "POST", "/v1/embeddings", json_body={"model": "nope", "input": "x"})
    err = assert_error_shape(r, 404)
    assert err["code"] == "model_not_found", err


def test_body_too_large_413(gateway):
    size = 1024 * 1024 + 4096  # max_body_bytes is 1MiB
    body = b'{"model":"mock-model","messages":[{"role":"user","content":"' + \
        b"a" * (size - 80) + b'"}]}'
    assert len(body) > 1024 * 1024
    head = build_request("POST", CHAT, body)[:-len(body)]
    with RawHttp(gateway.host, gateway.port, timeout=10) as c:
        c.send(head)
        # A gateway may answer from Content-Length alone; if it waits, send the body.
        try:
            r = c.read_response(timeout=1.5)
        except TimeoutError:
            def sender():
                try:
                    c.sock.sendall(body)
                except OSError:
                    pass
            t = threading.Thread(target=sender, daemon=True)
            t.start()
            r = c.read_response(timeout=8)
    assert_error_shape(r, 413)


def test_body_too_large_chunked_413(gateway):
    chunk = b"a" * 65536
    with RawHttp(gateway.host, gateway.port, timeout=10) as c:
        c.send(build_request("POST", CHAT, b"", {"Transfer-Encoding": "chunked"},
                             content_length=False))

        def sender():
            try:
                first = b'{"model":"mock-model","messages":[{"x":"'
                c.sock.sendall(b"%x\r\n%s\r\n" % (len(first), first))
                for _ in range(24):  # 1.5 MiB
                    c.sock.sendall(b"10000\r\n" + chunk + b"\r\n")
                c.sock.sendall(b'5\r\n"}]}\n\r\n0\r\n\r\n')
            except OSError:
                pass
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        r = c.read_response(timeout=8)
    assert_error_shape(r, 413)


def test_body_at_limit_accepted(gateway):
    # A body of exactly max_body_bytes must not be refused for size (the mock answers 200).
    prefix = b'{"model":"mock-model","messages":[{"role":"user","content":"'
    suffix = b'"}]}'
    body = prefix + b"b" * (1024 * 1024 - len(prefix) - len(suffix)) + suffix
    assert len(body) == 1024 * 1024
    r = http_call(gateway, "POST", CHAT, body=body, headers={"x-mock-tokens": "1"})
    assert r.status == 200, r


def test_wrong_method_405(gateway):
    r = http_call(gateway, "GET", CHAT)
    assert_error_shape(r, 405)
    r = http_call(gateway, "DELETE", "/v1/embeddings")
    assert_error_shape(r, 405)
    r = http_call(gateway, "POST", "/v1/models", body=b"{}")
    assert_error_shape(r, 405)


def test_unknown_path_404(gateway):
    r = http_call(gateway, "GET", "/v1/nope")
    assert_error_shape(r, 404)
    r = http_call(gateway, "POST", "/v2/chat/completions", body=chat_body())
    assert_error_shape(r, 404)


def test_upstream_unreachable_502(gateway):
    t0 = time.monotonic()
    r = http_call(gateway, "POST", CHAT, body=chat_body(model="dead"))
    assert_error_shape(r, 502)
    assert time.monotonic() - t0 < 3


def test_upstream_unreachable_502_streaming(gateway):
    r = http_call(gateway, "POST", CHAT, body=chat_body(model="dead", stream=True))
    assert_error_shape(r, 502)


def test_upstream_first_byte_timeout_504(gateway):
    t0 = time.monotonic()
    # The mock answers after 10 s: without the 1 s first-byte timeout this would be a 200.
    r = http_call(gateway, "POST", CHAT, body=chat_body(), headers={"x-mock-latency-ms": "10000"})
    elapsed = time.monotonic() - t0
    assert_error_shape(r, 504)
    assert 0.8 <= elapsed < 8.0, f"504 after {elapsed:.2f}s; first_byte_ms is 1000"


def test_upstream_first_byte_timeout_504_streaming(gateway):
    r = http_call(gateway, "POST", CHAT, body=chat_body(stream=True),
                  headers={"x-mock-latency-ms": "3000"})
    assert_error_shape(r, 504)


def test_unary_stall_504(gateway):
    r = http_call(gateway, "POST", CHAT, body=chat_body(), headers={"x-mock-fault": "stall-after:0"})
    assert_error_shape(r, 504)


def test_per_target_timeout_override(gateway_factory):
    gw = gateway_factory(extra_routes="""\
  - model: quick
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model, timeouts: {first_byte_ms: 300}}]
  - model: patient
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model, timeouts: {first_byte_ms: 4000}}]
""")
    hdr = {"x-mock-latency-ms": "600"}
    # global first_byte_ms 1000: 600 ms is fine
    assert http_call(gw, "POST", CHAT, body=chat_body(), headers=hdr).status == 200
    # per-target 300 ms: 600 ms is too slow
    t0 = time.monotonic()
    r = http_call(gw, "POST", CHAT, body=chat_body(model="quick"), headers=hdr)
    assert_error_shape(r, 504)  # with the global 1000 ms the 600 ms answer would be a 200
    assert time.monotonic() - t0 < 5.0
    # per-target 4000 ms: 1500 ms (beyond the global 1000) is fine
    r = http_call(gw, "POST", CHAT, body=chat_body(model="patient"),
                  headers={"x-mock-latency-ms": "1500"})
    assert r.status == 200, r


@pytest.mark.parametrize("status", [400, 404, 422, 429])
def test_upstream_4xx_passed_through(gateway, mock, status):
    hdr = {"x-mock-status": str(status)}
    direct = http_call(mock, "POST", CHAT, body=chat_body(), headers=hdr)
    assert direct.status == status  # sanity: what the mock says
    r = http_call(gateway, "POST", CHAT, body=chat_body(), headers=hdr)
    assert r.status == status, r
    assert r.body == direct.body, f"upstream body altered:\n got {r.body!r}\nwant {direct.body!r}"
    assert r.header("x-request-id"), r


@pytest.mark.parametrize("status", [401, 403])
def test_upstream_auth_failure_becomes_502_without_upstream_body(gateway, mock, status):
    # Review §2.6: the gateway's upstream key was refused. The client must not read "your API
    # key is invalid" nor any part of the upstream's body (which can quote the key).
    hdr = {"x-mock-status": str(status)}
    r = http_call(gateway, "POST", CHAT, body=chat_body(), headers=hdr)
    err = assert_error_shape(r, 502)
    assert err["code"] == "upstream_auth_failed", err
    assert "gateway's credentials" in err["message"], err
    assert b"mock error" not in r.body and b"mock_" not in r.body, r
    assert "127.0.0.1" not in err["message"], err


def test_upstream_4xx_passed_through_streaming(gateway, mock):
    hdr = {"x-mock-status": "400"}
    direct = http_call(mock, "POST", CHAT, body=chat_body(stream=True), headers=hdr)
    r = http_call(gateway, "POST", CHAT, body=chat_body(stream=True), headers=hdr)
    assert r.status == 400, r
    assert r.body == direct.body, r


def test_upstream_429_keeps_retry_after(gateway):
    r = http_call(gateway, "POST", CHAT, body=chat_body(),
                  headers={"x-mock-status": "429", "x-mock-retry-after": "2"})
    assert r.status == 429, r
    assert r.header("retry-after") == "2", r
    assert r.json()["error"]["code"] == "mock_429", r


@pytest.mark.parametrize("status", [500, 503])
def test_upstream_5xx_becomes_502(gateway, mock, status):
    r = http_call(gateway, "POST", CHAT, body=chat_body(), headers={"x-mock-status": str(status)})
    err = assert_error_shape(r, 502)
    assert str(status) in err["message"], f"message does not mention upstream {status}: {err}"
    assert err["code"] != f"mock_{status}", "upstream 5xx body must not be passed as-is"
    # The internal origin and the upstream's body stay out of the message by default.
    assert f"127.0.0.1:{mock.port}" not in err["message"], err
    assert "mock error" not in err["message"], err


def test_upstream_5xx_streaming_becomes_502(gateway):
    r = http_call(gateway, "POST", CHAT, body=chat_body(stream=True),
                  headers={"x-mock-status": "503"})
    err = assert_error_shape(r, 502)
    assert "503" in err["message"], err


def test_upstream_malformed_json_every_attempt_is_502_after_the_attempts(gateway, mock):
    # Issue 10: a 2xx whose body does not parse is an upstream protocol error: 502 in OpenAI's
    # shape, counted, and retried like other retryable failures (nothing reached the client).
    r = http_call(gateway, "POST", CHAT, body=chat_body(),
                  headers={"x-mock-fault": "malformed"})
    err = assert_error_shape(r, 502)
    assert err["code"] == "upstream_protocol_error", err
    assert "not valid JSON" in err["message"], err
    assert r.header("x-sluice-attempts") == "2", r  # the default max_attempts


def test_upstream_malformed_json_then_good_answer_is_retried(gateway):
    sid = f"malformed-then-ok-{time.monotonic_ns()}"
    r = http_call(gateway, "POST", CHAT, body=chat_body(),
                  headers={"x-mock-script": "malformed,200", "x-mock-script-id": sid})
    assert r.status == 200, r
    assert r.json()["choices"], r
    assert r.header("x-sluice-attempts") == "2", r


def test_upstream_malformed_no_crash(gateway):
    with RawHttp(gateway.host, gateway.port) as c:
        c.send(build_request("POST", CHAT, chat_body(), {"x-mock-fault": "malformed"}))
        r = c.read_response(timeout=5)
    assert 200 <= r.status <= 599, r
    if r.header("content-length") is not None:
        assert len(r.body) == int(r.header("content-length"))
    assert http_call(gateway, "GET", "/healthz").status == 200
    assert gateway.proc.alive()


@pytest.mark.parametrize("fault", ["reset", "drop-after:0", "truncate"])
def test_upstream_broken_unary_502(gateway, fault):
    t0 = time.monotonic()
    r = http_call(gateway, "POST", CHAT, body=chat_body(), headers={"x-mock-fault": fault})
    assert_error_shape(r, 502)
    assert time.monotonic() - t0 < 3
    assert http_call(gateway, "GET", "/healthz").status == 200


def test_error_response_keeps_connection_usable(gateway):
    with RawHttp(gateway.host, gateway.port) as c:
        r = c.request("POST", CHAT, chat_body(model="unknown-model"))
        assert r.status == 404, r
        r = c.request("POST", CHAT, b'{"model":')
        assert r.status == 400, r
        r = c.request("POST", CHAT, chat_body(), headers={"x-mock-tokens": "1"})
        assert r.status == 200, r
        assert r.json()["choices"][0]["message"]["content"] == "w1"
