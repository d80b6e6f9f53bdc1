"""Resilience: retries, Retry-After, breakers, timeouts, concurrency limits, balancers,
fallbacks and the retry budget.

Every test checks both what the client saw and how many upstream attempts happened: the
gateway's `x-sluice-attempts` response header and the mock's `/mock/stats` request count.
Per-attempt behaviour comes from the mock's `x-mock-script` (+ `x-mock-script-id`): the n-th
request carrying an id gets the n-th step, so "500,200" fails the first attempt and answers the
retry.
"""

from __future__ import annotations

import http.client
import http.server
import itertools
import json
import os
import socketserver
import threading
import time

import pytest

from conftest import (SLUICE_BIN, UPSTREAM_KEY, Gateway, Proc, assert_error_shape, chat_body,
                      free_closed_port, http_call, poll, render_config, start_mock,
                      stream_request)

ADMIN_TOKEN = "admin-test-token-123"
_ids = itertools.count()


def script(steps: str, **extra) -> dict:
    """Headers scripting the attempts of one client request (a fresh id each call)."""
    h = {"x-mock-script": steps, "x-mock-script-id": f"s{os.getpid()}-{next(_ids)}"}
    h.update(extra)
    return h


def post(gw, model: str, headers: dict | None = None, timeout: float = 15.0, **body):
    t0 = time.monotonic()
    r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model, **body),
                  headers=headers, timeout=timeout)
    return r, time.monotonic() - t0


def attempts(r) -> int:
    v = r.header("x-sluice-attempts")
    assert v is not None, f"no x-sluice-attempts header: {r!r}"
    return int(v)


def requests_seen(m) -> int:
    return m.stats()["requests"]


def settled_requests(m, expected: int, timeout: float = 2.0) -> int:
    """The mock's request count once it reaches `expected` (or after `timeout`)."""
    poll(lambda: requests_seen(m) >= expected, timeout)
    time.sleep(0.05)  # a stray extra request would show up now
    return requests_seen(m)


def upstream_entry(gw, name: str) -> dict:
    r = http_call(gw.admin, "GET", "/admin/upstreams",
                  headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status == 200, r
    for route in r.json()["routes"]:
        for t in route["targets"]:
            if t["name"] == name:
                return t
    raise AssertionError(f"target {name!r} not in /admin/upstreams: {r.body[:800]!r}")


@pytest.fixture
def admin_gateway(mock, tmp_path):
    """admin_gateway(extra_routes) -> Gateway with `admin: {token_env: SLUICE_ADMIN_TOKEN}`
    and the variable set."""
    started: list[Proc] = []

    def make(extra_routes: str) -> Gateway:
        text = render_config(mock.port, free_closed_port(), extra_routes=extra_routes,
                             admin={"token_env": "SLUICE_ADMIN_TOKEN"})
        path = tmp_path / f"sluice-admin-{len(started)}.yaml"
        path.write_text(text)
        env = dict(os.environ)
        env["MOCK_KEY"] = UPSTREAM_KEY
        env["SLUICE_ADMIN_TOKEN"] = ADMIN_TOKEN
        proc = Proc([str(SLUICE_BIN), "--config", str(path)], env=env, name="sluice")
        started.append(proc)
        return Gateway(proc, path, text)

    yield make
    for p in started:
        p.stop()


@pytest.fixture
def mock2():
    """A second, slower upstream (50 ms before every response head)."""
    m = start_mock(["--latency-ms", "50"])
    yield m
    m.proc.stop()


@pytest.fixture
def mock_b():
    """A second upstream with default behaviour."""
    m = start_mock()
    yield m
    m.proc.stop()


# ------------------------------------------------------------------------------------------
# 1. Retry after a 5xx
# ------------------------------------------------------------------------------------------

def test_500_then_200_is_retried(gateway_factory, mock):
    gw = gateway_factory(extra_routes="""\
  - model: r
    retry: {max_attempts: 3, backoff_base_ms: 10, backoff_cap_ms: 50}
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model}]
""")
    r, _ = post(gw, "r", script("500,200"))
    assert r.status == 200, r
    assert r.json()["choices"][0]["message"]["content"].startswith("w1 w2"), r
    assert attempts(r) == 2, r
    assert settled_requests(mock, 2) == 2


# ------------------------------------------------------------------------------------------
# 2. 429 with Retry-After
# ------------------------------------------------------------------------------------------

RETRY_AFTER_ROUTES = """\
  - model: ra-long
    retry: {max_attempts: 2, backoff_base_ms: 10, backoff_cap_ms: 50, deadline_ms: 5000}
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model}]
  - model: ra-short-fb
    retry: {max_attempts: 2, backoff_base_ms: 10, backoff_cap_ms: 50, deadline_ms: 500}
    fallbacks: [demo]
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model}]
  - model: ra-short
    retry: {max_attempts: 2, backoff_base_ms: 10, backoff_cap_ms: 50, deadline_ms: 500}
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model}]
"""


def test_429_retry_after_is_honoured_within_deadline(gateway_factory, mock):
    gw = gateway_factory(extra_routes=RETRY_AFTER_ROUTES)
    r, dt = post(gw, "ra-long", script("429,200", **{"x-mock-retry-after": "1"}))
    assert r.status == 200, r
    assert attempts(r) == 2, r
    assert dt >= 0.9, f"retried after {dt:.3f}s, before the upstream's Retry-After: 1"
    assert dt < 4.5, dt  # within the 5 s deadline
    assert settled_requests(mock, 2) == 2


def test_429_retry_after_beyond_deadline_goes_to_fallback(gateway_factory, mock):
    gw = gateway_factory(extra_routes=RETRY_AFTER_ROUTES)
    r, dt = post(gw, "ra-short-fb", script("429,200", **{"x-mock-retry-after": "1"}))
    assert r.status == 200, r
    assert dt < 0.9, f"took {dt:.3f}s: the gateway slept on a Retry-After past its deadline"
    assert r.json()["id"].startswith("chatcmpl-demo"), r  # answered by the demo fallback
    assert attempts(r) == 2, r  # one upstream attempt + the fallback
    assert settled_requests(mock, 1) == 1


def test_429_retry_after_beyond_deadline_without_fallback(gateway_factory, mock):
    gw = gateway_factory(extra_routes=RETRY_AFTER_ROUTES)
    r, dt = post(gw, "ra-short", script("429,200", **{"x-mock-retry-after": "1"}))
    err = assert_error_shape(r, 429)
    assert dt < 0.9, f"took {dt:.3f}s: the gateway slept on a Retry-After past its deadline"
    assert r.header("retry-after") == "1", r
    assert attempts(r) == 1, r
    assert err["message"], err
    assert settled_requests(mock, 1) == 1


# ------------------------------------------------------------------------------------------
# 3. Connection refused on one target of two
# ------------------------------------------------------------------------------------------

def _mixed_route(dead: int, retry_extra: str = "") -> str:
    return f"""\
  - model: mixed
    retry: {{max_attempts: 2, backoff_base_ms: 5, backoff_cap_ms: 20{retry_extra}}}
    targets:
      - {{name: dead-a, provider: openai, forward_headers: ["x-mock-*"], base_url: "http://127.0.0.1:{dead}/v1", model: mock-model}}
      - {{name: live-b, provider: openai, forward_headers: ["x-mock-*"], base_url: "{{MOCK}}", model: mock-model}}
"""


def _always_answered(gw, mock, n: int = 20) -> None:
    seen = []
    for _ in range(n):
        r, _ = post(gw, "mixed")
        assert r.status == 200, (seen, r)
        seen.append(attempts(r))
    assert set(seen) <= {1, 2}, seen
    assert 2 in seen, f"the dead target was never picked: {seen}"
    assert settled_requests(mock, n) == n  # every request answered by the mock exactly once


def test_dead_target_is_retried_on_the_live_one(gateway_factory, mock):
    # A budget that never binds: this is about failover, the budget is tested below.
    gw = gateway_factory(extra_routes=_mixed_route(free_closed_port(),
                                                   ", budget_min_retries: 1000"))
    _always_answered(gw, mock)


@pytest.mark.parametrize("retry_extra", ["", ", budget_ratio: 1.0"], ids=["default", "ratio1"])
def test_dead_target_failover_with_default_budget(gateway_factory, mock, retry_extra):
    gw = gateway_factory(extra_routes=_mixed_route(free_closed_port(), retry_extra))
    _always_answered(gw, mock)


# ------------------------------------------------------------------------------------------
# 4. Circuit breaker and /admin/upstreams
# ------------------------------------------------------------------------------------------

BREAKER_ROUTE = """\
  - model: brk
    retry: {max_attempts: 1}
    targets:
      - name: brk-target
        provider: openai
        forward_headers: ["x-mock-*"]
        base_url: "{MOCK}"
        model: mock-model
        breaker: {min_requests: 4, failure_ratio: 0.5, window_ms: 10000, cooldown_ms: 1000}
"""


def test_breaker_opens_fails_fast_and_recovers(admin_gateway, mock):
    gw = admin_gateway(BREAKER_ROUTE)
    assert upstream_entry(gw, "brk-target")["breaker"] == "closed"
    statuses = []
    for _ in range(4):
        r, _ = post(gw, "brk", script("500"))
        statuses.append(r.status)
        assert attempts(r) == 1, r
    assert statuses == [502] * 4, statuses  # an upstream 5xx is answered as 502
    assert settled_requests(mock, 4) == 4
    entry = upstream_entry(gw, "brk-target")
    assert entry["breaker"] == "open", entry

    # Open: fail fast, nothing reaches the upstream.
    for _ in range(3):
        r, dt = post(gw, "brk", script("500"))
        err = assert_error_shape(r, 503)
        assert err["code"] == "service_unavailable", err
        assert dt < 2.0, dt
    assert settled_requests(mock, 4) == 4, "requests reached an upstream whose breaker is open"

    # After the cooldown a successful probe closes it.
    time.sleep(1.2)
    assert upstream_entry(gw, "brk-target")["breaker"] in ("half_open", "open")
    r, _ = post(gw, "brk")
    assert r.status == 200, r
    assert attempts(r) == 1, r
    assert settled_requests(mock, 5) == 5
    entry = upstream_entry(gw, "brk-target")
    assert entry["breaker"] == "closed", entry
    r, _ = post(gw, "brk")
    assert r.status == 200, r


def test_breaker_half_open_failure_reopens(admin_gateway, mock):
    gw = admin_gateway(BREAKER_ROUTE)
    for _ in range(4):
        post(gw, "brk", script("500"))
    assert upstream_entry(gw, "brk-target")["breaker"] == "open"
    time.sleep(1.2)
    r, _ = post(gw, "brk", script("500"))  # the probe fails
    assert r.status == 502, r
    assert settled_requests(mock, 5) == 5
    assert upstream_entry(gw, "brk-target")["breaker"] == "open"
    r, _ = post(gw, "brk")
    assert_error_shape(r, 503)
    assert settled_requests(mock, 5) == 5


def test_admin_upstreams_requires_token(admin_gateway):
    gw = admin_gateway(BREAKER_ROUTE)
    r = http_call(gw.admin, "GET", "/admin/upstreams")
    assert_error_shape(r, 401)
    r = http_call(gw.admin, "GET", "/admin/upstreams", headers={"Authorization": "Bearer wrong"})
    assert_error_shape(r, 401)
    r = http_call(gw.admin, "GET", "/admin/upstreams",
                  headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status == 200, r
    assert any(t["name"] == "brk-target" for rt in r.json()["routes"] for t in rt["targets"])


def test_admin_upstreams_disabled_without_token(gateway):
    r = http_call(gateway.admin, "GET", "/admin/upstreams",
                  headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert "admin API is disabled" in assert_error_shape(r, 404)["message"], r


# ------------------------------------------------------------------------------------------
# 5. Streams: no retry after bytes reached the client; retry before the first event
# ------------------------------------------------------------------------------------------

STREAM_ROUTE = """\
  - model: st
    retry: {max_attempts: 3, backoff_base_ms: 10, backoff_cap_ms: 50}
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model}]
"""


def test_stream_dropped_midway_is_not_retried(gateway_factory, mock):
    gw = gateway_factory(extra_routes=STREAM_ROUTE)
    res = stream_request(gw, chat_body("st", stream=True),
                         headers={"x-mock-fault": "drop-after:3", "x-mock-tokens": "8"})
    assert res.head.status == 200, res.head
    assert attempts(res.head) == 1, res.head
    data = res.data
    assert "[DONE]" not in data, data
    chunks = [json.loads(d) for d in data[:-1]]
    assert len(chunks) == 4, data  # role chunk + 3 content chunks
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant", chunks[0]
    assert [c["choices"][0]["delta"]["content"] for c in chunks[1:]] == ["w1 ", "w2 ", "w3 "]
    err = json.loads(data[-1])
    assert isinstance(err.get("error"), dict) and err["error"]["message"], data[-1]
    assert res.ended_by == "eof-chunk", res.ended_by
    assert settled_requests(mock, 1) == 1, "the gateway retried a stream the client had seen"


def _reset_then_ok(gw, mock):
    res = stream_request(gw, chat_body("st", stream=True),
                         headers=script("reset,200", **{"x-mock-tokens": "4"}))
    assert res.head.status == 200, res.head
    assert res.data[-1] == "[DONE]", res.data
    assert res.content() == "w1 w2 w3 w4 ", res.data
    assert attempts(res.head) == 2, res.head
    assert settled_requests(mock, 2) == 2


def test_stream_reset_before_first_event_is_retried(gateway_factory, mock):
    # A fresh gateway: no pooled upstream connection, so the reset is the gateway's to retry
    # (a reset on a reused pooled connection is retried inside the upstream client).
    _reset_then_ok(gateway_factory(extra_routes=STREAM_ROUTE), mock)


def test_stream_reset_before_first_event_retried_with_retry_on_timeout(gateway_factory, mock):
    gw = gateway_factory(extra_routes=STREAM_ROUTE.replace(
        "backoff_cap_ms: 50}", "backoff_cap_ms: 50, retry_on_timeout: true}"))
    _reset_then_ok(gw, mock)


# ------------------------------------------------------------------------------------------
# 6. Slow first byte
# ------------------------------------------------------------------------------------------

TIMEOUT_ROUTES = """\
  - model: slow-once
    retry: {max_attempts: 3, backoff_base_ms: 10, backoff_cap_ms: 50, deadline_ms: 1500,
            retry_on_timeout: false}
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model}]
  - model: slow-retry
    retry: {max_attempts: 3, backoff_base_ms: 10, backoff_cap_ms: 50, deadline_ms: 1500,
            retry_on_timeout: true}
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model}]
"""


def test_first_byte_timeout_not_retried_by_default(gateway_factory, mock):
    gw = gateway_factory(timeouts={"first_byte_ms": 500}, extra_routes=TIMEOUT_ROUTES)
    r, dt = post(gw, "slow-once", {"x-mock-latency-ms": "3000"})
    err = assert_error_shape(r, 504)
    assert err["code"] == "upstream_timeout", err
    assert 0.4 <= dt < 1.0, f"504 after {dt:.3f}s; first_byte_ms is 500"
    assert attempts(r) == 1, r
    assert settled_requests(mock, 1) == 1


def test_first_byte_timeout_retried_within_deadline(gateway_factory, mock):
    gw = gateway_factory(timeouts={"first_byte_ms": 500}, extra_routes=TIMEOUT_ROUTES)
    r, dt = post(gw, "slow-retry", {"x-mock-latency-ms": "3000"})
    assert_error_shape(r, 504)
    assert dt <= 1.5 + 0.5, f"504 after {dt:.3f}s; the deadline is 1.5 s"
    assert dt >= 0.9, f"504 after {dt:.3f}s: was the timeout retried at all?"
    n = attempts(r)
    assert 2 <= n <= 3, r
    assert settled_requests(mock, n) == n


# ------------------------------------------------------------------------------------------
# 7. Concurrency limits
# ------------------------------------------------------------------------------------------

def _limited_route(max_queue: int, queue_timeout_ms: int) -> str:
    return f"""\
  - model: lim
    retry: {{max_attempts: 1}}
    targets:
      - name: lim-target
        provider: openai
        forward_headers: ["x-mock-*"]
        base_url: "{{MOCK}}"
        model: mock-model
        concurrency: {{max_in_flight: 2, max_queue: {max_queue}, queue_timeout_ms: {queue_timeout_ms}}}
"""


def _start_slow(gw, n: int, headers: dict, stream: bool = False):
    results: list = []

    def run():
        if stream:
            results.append(stream_request(gw, chat_body("lim", stream=True), headers=headers))
        else:
            results.append(post(gw, "lim", headers)[0])

    threads = [threading.Thread(target=run, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results


def _wait_active(mock, n: int) -> None:
    assert poll(lambda: mock.stats()["active"] >= n, 3.0), mock.stats()


SLOW_OK = {"first_byte_ms": 4000}  # the 1.5 s requests must not time out themselves


def test_concurrency_limit_rejects_without_queue(gateway_factory, mock):
    gw = gateway_factory(timeouts=SLOW_OK, extra_routes=_limited_route(0, 1000))
    threads, results = _start_slow(gw, 2, {"x-mock-latency-ms": "1500"})
    _wait_active(mock, 2)
    r, dt = post(gw, "lim")
    err = assert_error_shape(r, 429)  # a queued request would wait for a slot and get a 200
    assert dt < 1.2, dt  # the two slots stay held for 1.5 s
    assert "limit" in err["message"].lower() and "2" in err["message"], err
    assert "lim-target" in err["message"], err
    for t in threads:
        t.join(5)
    assert [x.status for x in results] == [200, 200], results
    assert settled_requests(mock, 2) == 2


def test_concurrency_queue_waits_for_a_slot(gateway_factory, mock):
    # A 10 s queue timeout: an answer within 6 s came from a freed slot, not from the timeout.
    gw = gateway_factory(timeouts=SLOW_OK, extra_routes=_limited_route(2, 10000))
    threads, results = _start_slow(gw, 2, {"x-mock-latency-ms": "3000"})
    _wait_active(mock, 2)
    r, dt = post(gw, "lim")
    assert r.status == 200, r
    assert 0.5 <= dt <= 6.0, f"third request answered after {dt:.3f}s"
    assert attempts(r) == 1, r
    for t in threads:
        t.join(5)
    assert [x.status for x in results] == [200, 200], results
    assert settled_requests(mock, 3) == 3


def test_concurrency_queue_timeout(gateway_factory, mock):
    gw = gateway_factory(timeouts=SLOW_OK, extra_routes=_limited_route(2, 200))
    threads, results = _start_slow(gw, 2, {"x-mock-latency-ms": "1500"})
    _wait_active(mock, 2)
    r, dt = post(gw, "lim")
    err = assert_error_shape(r, 503)
    assert 0.15 <= dt <= 0.7, f"queue timeout after {dt:.3f}s; queue_timeout_ms is 200"
    assert "lim-target" in err["message"], err
    for t in threads:
        t.join(5)
    assert settled_requests(mock, 2) == 2


def test_streams_hold_their_slot_until_they_end(gateway_factory, mock):
    gw = gateway_factory(extra_routes=_limited_route(0, 1000))
    slow = {"x-mock-tokens": "6", "x-mock-itl-ms": "250"}  # ~1.25 s per stream
    threads, results = _start_slow(gw, 2, slow, stream=True)
    _wait_active(mock, 2)
    time.sleep(0.2)  # both streams have sent their head and first events
    r, _ = post(gw, "lim")
    assert_error_shape(r, 429)
    for t in threads:
        t.join(5)
    for res in results:
        assert res.head.status == 200 and res.data[-1] == "[DONE]", res.data
        assert res.content() == "w1 w2 w3 w4 w5 w6 ", res.data
    r = poll(lambda: (lambda x: x if x.status == 200 else None)(post(gw, "lim")[0]), 2.0)
    assert r and r.status == 200, r
    assert attempts(r) == 1, r


# ------------------------------------------------------------------------------------------
# 8. Balancers
# ------------------------------------------------------------------------------------------

def _two_target_route(model: str, balancer: str, url_b: str, wa: int = 1, wb: int = 1) -> str:
    return f"""\
  - model: {model}
    balancer: {balancer}
    retry: {{max_attempts: 1}}
    targets:
      - {{name: {model}-a, provider: openai, forward_headers: ["x-mock-*"], base_url: "{{MOCK}}", model: mock-model, weight: {wa}}}
      - {{name: {model}-b, provider: openai, forward_headers: ["x-mock-*"], base_url: "{url_b}", model: mock-model, weight: {wb}}}
"""


def _keepalive_posts(gw, model: str, n: int) -> None:
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=10)
    body = chat_body(model)
    try:
        for _ in range(n):
            conn.request("POST", "/v1/chat/completions", body=body,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            assert r.status == 200, data
    finally:
        conn.close()


def test_weighted_round_robin_split(gateway_factory, mock, mock_b):
    gw = gateway_factory(extra_routes=_two_target_route("wrr", "weighted_round_robin",
                                                        f"{mock_b.proc.url}/v1", 3, 1))
    _keepalive_posts(gw, "wrr", 1000)
    a, b = requests_seen(mock), requests_seen(mock_b)
    assert a + b == 1000, (a, b)
    assert abs(a - 750) <= 30, f"weights 3:1 gave {a}/{b}"


def test_latency_balancer_prefers_the_fast_target(gateway_factory, mock, mock2):
    gw = gateway_factory(extra_routes=_two_target_route("lat", "latency",
                                                        f"{mock2.proc.url}/v1"))
    _keepalive_posts(gw, "lat", 300)
    fast, slow = requests_seen(mock), requests_seen(mock2)
    assert fast + slow == 300, (fast, slow)
    assert fast > 0.7 * 300, f"fast {fast} / slow {slow}"


def test_least_in_flight_prefers_the_fast_target(gateway_factory, mock, mock2):
    gw = gateway_factory(extra_routes=_two_target_route("lif", "least_in_flight",
                                                        f"{mock2.proc.url}/v1"))
    errors: list = []

    def worker():
        try:
            _keepalive_posts(gw, "lif", 50)
        except Exception as e:  # noqa: BLE001 - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    fast, slow = requests_seen(mock), requests_seen(mock2)
    assert fast + slow == 200, (fast, slow)
    # With 4 concurrent clients the slow target is busy most of the time.
    assert fast > 0.6 * 200, f"fast {fast} / slow {slow}"


# ------------------------------------------------------------------------------------------
# 9. Fallbacks
# ------------------------------------------------------------------------------------------

def test_fallback_chain_rewrites_model(gateway_factory, mock):
    dead = free_closed_port()
    gw = gateway_factory(extra_routes=f"""\
  - model: fa
    retry: {{max_attempts: 2, backoff_base_ms: 5, backoff_cap_ms: 20}}
    fallbacks: [fb]
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://127.0.0.1:{dead}/v1"}}]
  - model: fb
    retry: {{max_attempts: 1}}
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "{{MOCK}}"}}]
""")
    r, _ = post(gw, "fa")
    assert r.status == 200, r
    assert attempts(r) == 2 + 1, r
    assert settled_requests(mock, 1) == 1
    assert json.loads(mock.last()["body"])["model"] == "fb"


def test_fallback_to_target_with_model_alias(gateway_factory, mock):
    dead = free_closed_port()
    gw = gateway_factory(extra_routes=f"""\
  - model: fa
    retry: {{max_attempts: 3, backoff_base_ms: 5, backoff_cap_ms: 20}}
    fallbacks: [fb]
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://127.0.0.1:{dead}/v1"}}]
  - model: fb
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "{{MOCK}}", model: mock-model}}]
""")
    r, _ = post(gw, "fa")
    assert r.status == 200, r
    assert attempts(r) == 3 + 1, r
    assert json.loads(mock.last()["body"])["model"] == "mock-model"


class _ContextTooLong(http.server.BaseHTTPRequestHandler):
    hits = 0
    body = json.dumps({"error": {"message": "This model's maximum context length is 8 tokens",
                                 "type": "invalid_request_error", "param": "messages",
                                 "code": "context_length_exceeded"}}).encode()

    def do_POST(self):  # noqa: N802
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *a):
        pass


@pytest.fixture
def context_upstream():
    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    handler = type("Handler", (_ContextTooLong,), {"hits": 0})
    srv = Server(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv, handler
    srv.shutdown()
    srv.server_close()


def test_context_length_error_goes_to_context_fallback(gateway_factory, mock, context_upstream):
    srv, handler = context_upstream
    port = srv.server_address[1]
    gw = gateway_factory(extra_routes=f"""\
  - model: small
    retry: {{max_attempts: 3, backoff_base_ms: 5, backoff_cap_ms: 20}}
    fallbacks: [demo]
    context_fallback: big
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://127.0.0.1:{port}/v1"}}]
  - model: big
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "{{MOCK}}"}}]
""")
    r, _ = post(gw, "small")
    assert r.status == 200, r
    assert r.json()["id"].startswith("chatcmpl-mock"), r  # from `big`, not the demo fallback
    assert handler.hits == 1, "a context-length error was retried on the same model"
    assert attempts(r) == 2, r
    assert settled_requests(mock, 1) == 1
    assert json.loads(mock.last()["body"])["model"] == "big"


def test_context_length_error_without_context_fallback_is_returned(gateway_factory,
                                                                  context_upstream):
    srv, handler = context_upstream
    port = srv.server_address[1]
    gw = gateway_factory(extra_routes=f"""\
  - model: small
    retry: {{max_attempts: 3, backoff_base_ms: 5, backoff_cap_ms: 20}}
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://127.0.0.1:{port}/v1"}}]
""")
    r, _ = post(gw, "small")
    err = assert_error_shape(r, 400)
    assert err["code"] == "context_length_exceeded", err
    assert handler.hits == 1
    assert attempts(r) == 1, r


# ------------------------------------------------------------------------------------------
# 10. Retry budget
# ------------------------------------------------------------------------------------------

def test_retry_budget_limits_retries(gateway_factory, mock):
    gw = gateway_factory(extra_routes="""\
  - model: bud
    retry: {max_attempts: 2, backoff_base_ms: 5, backoff_cap_ms: 20, budget_ratio: 0.0,
            budget_min_retries: 1, budget_window_ms: 10000}
    targets:
      - provider: openai
        forward_headers: ["x-mock-*"]
        base_url: "{MOCK}"
        model: mock-model
        breaker: {enabled: false}
""")
    got = []
    for _ in range(4):
        r, _ = post(gw, "bud", script("500"))
        assert 500 <= r.status <= 599, r
        assert_error_shape(r)
        got.append(attempts(r))
    assert got == [2, 1, 1, 1], got
    assert settled_requests(mock, 5) == 5
