"""Streaming (SSE) proxying: framing, incremental delivery, upstream failures, cancellation."""

import json
import time

from conftest import (ConnectionClosed, RawHttp, build_request, chat_body, parse_sse, poll,
                      stream_request)


def _expect_normal_chat_stream(res, n_tokens):
    assert res.head.status == 200, res.head
    assert res.head.header("content-type", "").startswith("text/event-stream"), res.head
    assert "chunked" in (res.head.header("transfer-encoding") or "").lower(), res.head
    assert res.head.header("content-length") is None, res.head
    data = res.data
    assert data and data[-1] == "[DONE]", data
    assert data.count("[DONE]") == 1, data
    chunks = res.chunks()
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}, chunks[0]
    content = [c["choices"][0]["delta"]["content"] for c in chunks[1:1 + n_tokens]]
    assert content == [f"w{i} " for i in range(1, n_tokens + 1)], data
    fin = chunks[1 + n_tokens]
    assert fin["choices"][0]["finish_reason"] == "stop", fin
    for c in chunks:
        assert c["object"] == "chat.completion.chunk", c
    return chunks


def test_stream_chat_framing_and_content(gateway):
    res = stream_request(gateway, chat_body(stream=True), headers={"x-mock-tokens": "5"})
    chunks = _expect_normal_chat_stream(res, 5)
    assert len(chunks) == 1 + 5 + 1, res.data
    assert res.content() == "w1 w2 w3 w4 w5 "
    assert res.ended_by == "eof-chunk", res.ended_by


def test_stream_chat_include_usage(gateway):
    body = chat_body(stream=True, stream_options={"include_usage": True})
    res = stream_request(gateway, body, headers={"x-mock-tokens": "4"})
    chunks = _expect_normal_chat_stream(res, 4)
    last = chunks[-1]
    assert last["choices"] == [], last
    assert last["usage"]["completion_tokens"] == 4, last
    assert last["usage"]["total_tokens"] == last["usage"]["prompt_tokens"] + 4


def test_stream_glob_route(gateway, mock):
    res = stream_request(gateway, chat_body(model="mock-streamy", stream=True),
                         headers={"x-mock-tokens": "3"})
    _expect_normal_chat_stream(res, 3)
    assert json.loads(mock.last()["body"])["model"] == "mock-model"


def test_stream_completions(gateway):
    body = json.dumps({"model": "mock-model", "prompt": "x", "stream": True}).encode()
    res = stream_request(gateway, body, path="/v1/completions", headers={"x-mock-tokens": "3"})
    assert res.head.status == 200, res.head
    assert res.head.header("content-type", "").startswith("text/event-stream"), res.head
    assert res.data[-1] == "[DONE]", res.data
    assert "w1 w2 w3" in res.content("text"), res.data
    for c in res.chunks():
        assert c["object"] == "text_completion", c


def test_stream_events_delivered_incrementally(gateway):
    # itl 200 ms x 5 tokens: the first content chunk comes at once, the stream lasts ~0.8 s.
    res = stream_request(gateway, chat_body(stream=True),
                         headers={"x-mock-itl-ms": "200", "x-mock-tokens": "5"})
    _expect_normal_chat_stream(res, 5)
    first_content = next(e for e in res.events
                         if e.data.startswith("{") and e.json()["choices"]
                         and e.json()["choices"][0]["delta"].get("content"))
    total = res.events[-1].t - res.t_start
    first = first_content.t - res.t_start
    assert total >= 0.6, f"stream took {total:.3f}s; mock itl not applied?"
    assert first < total / 2, (f"first content event at {first:.3f}s of a {total:.3f}s stream: "
                               "events are buffered, not streamed")
    # and the events are spread out, not delivered in one burst at the end
    times = [e.t - res.t_start for e in res.events]
    assert times[-1] - times[1] >= 0.5, times


def test_stream_upstream_drop_midway(gateway):
    t0 = time.monotonic()
    res = stream_request(gateway, chat_body(stream=True),
                         headers={"x-mock-fault": "drop-after:3", "x-mock-tokens": "10"},
                         timeout=8)
    elapsed = time.monotonic() - t0
    assert res.head.status == 200, res.head
    assert res.ended_by in ("eof-chunk", "close"), f"stream did not end: {res.ended_by}"
    assert elapsed < 3, f"took {elapsed:.2f}s"
    data = res.data
    assert "[DONE]" not in data, data
    parsed = [json.loads(d) for d in data]
    assert parsed[0]["choices"][0]["delta"].get("role") == "assistant", data
    contents = [p["choices"][0]["delta"]["content"] for p in parsed[1:4]]
    assert contents == ["w1 ", "w2 ", "w3 "], data
    assert len(parsed) == 5, f"expected role + 3 content + error event, got {data}"
    err = parsed[4]
    assert isinstance(err.get("error"), dict), data
    assert isinstance(err["error"].get("message"), str) and err["error"]["message"]
    assert "type" in err["error"], err


def test_stream_upstream_stall_idle_timeout(gateway):
    # default config: stream_idle_ms 1000
    res = stream_request(gateway, chat_body(stream=True),
                         headers={"x-mock-fault": "stall-after:2", "x-mock-tokens": "10"},
                         timeout=8)
    assert res.head.status == 200, res.head
    assert res.ended_by in ("eof-chunk", "close"), f"stream did not end: {res.ended_by}"
    data = res.data
    assert "[DONE]" not in data, data
    parsed = [json.loads(d) for d in data]
    assert [p["choices"][0]["delta"].get("content") for p in parsed[1:3]] == ["w1 ", "w2 "], data
    assert len(parsed) == 4, data
    assert isinstance(parsed[3].get("error"), dict), data
    gap = res.events[3].t - res.events[2].t
    assert 0.7 <= gap <= 3.0, f"error event {gap:.2f}s after the last chunk, expected ~1s"


def test_stream_total_timeout(gateway_factory):
    # total_ms bounds the whole exchange even when events keep flowing
    gw = gateway_factory(timeouts={"total_ms": 1500})
    t0 = time.monotonic()
    res = stream_request(gw, chat_body(stream=True),
                         headers={"x-mock-itl-ms": "200", "x-mock-tokens": "40"}, timeout=10)
    elapsed = time.monotonic() - t0
    assert res.head.status == 200, res.head
    assert res.ended_by in ("eof-chunk", "close"), res.ended_by
    assert "[DONE]" not in res.data
    assert elapsed < 4, f"stream lasted {elapsed:.2f}s with total_ms 1500"
    assert isinstance(json.loads(res.data[-1]).get("error"), dict), res.data


def test_client_disconnect_cancels_upstream(gateway, mock):
    mock.reset()
    before = mock.stats()
    with RawHttp(gateway.host, gateway.port, timeout=5) as c:
        c.send(build_request("POST", "/v1/chat/completions", chat_body(stream=True),
                             {"x-mock-itl-ms": "200", "x-mock-tokens": "50"}))
        head = c.read_head()
        assert head.status == 200, head
        got = []
        for ev in parse_sse(c.iter_body(head)):
            got.append(ev)
            if len(got) == 2:
                break
        assert mock.stats()["active"] >= 1
    # socket closed here, ~10 s of stream left upstream
    t_close = time.monotonic()
    stats = poll(lambda: (lambda s: s if s["cancelled"] >= before["cancelled"] + 1
                          and s["active"] == 0 else None)(mock.stats()), timeout=2.5)
    assert stats, (f"upstream not cancelled within 2.5s of client disconnect: "
                   f"before={before} now={mock.stats()}")
    assert stats["cancelled"] == before["cancelled"] + 1, stats
    assert time.monotonic() - t_close < 2.6


def test_gateway_usable_after_stream_failures(gateway):
    for fault in ("drop-after:1", "reset", "stall-after:0"):
        stream_request(gateway, chat_body(stream=True), headers={"x-mock-fault": fault}, timeout=6)
    res = stream_request(gateway, chat_body(stream=True), headers={"x-mock-tokens": "2"})
    _expect_normal_chat_stream(res, 2)


def test_connection_after_stream_error_reusable_or_not_marked_complete(gateway):
    # After the error event the gateway either keeps the connection (the chunked body was
    # terminated properly, so the client may reuse it) or closes it *without* the terminating
    # chunk. Terminating the body cleanly and then closing makes keep-alive clients fail their
    # next request on that connection.
    with RawHttp(gateway.host, gateway.port, timeout=5) as c:
        c.send(build_request("POST", "/v1/chat/completions", chat_body(stream=True),
                             {"x-mock-fault": "drop-after:2"}))
        head = c.read_head()
        assert head.status == 200, head
        try:
            events = list(parse_sse(c.iter_body(head)))
        except ConnectionClosed:
            return  # not marked complete: fine
        assert isinstance(json.loads(events[-1].data).get("error"), dict), [e.data for e in events]
        time.sleep(0.1)
        try:
            c.send(build_request("GET", "/healthz"))
            r = c.read_response(method="GET", timeout=3)
        except (ConnectionClosed, OSError) as e:
            raise AssertionError("stream ended with a complete chunked body after the error event, "
                                 f"then the connection was closed: next request failed ({e!r})")
        assert r.status == 200, r
