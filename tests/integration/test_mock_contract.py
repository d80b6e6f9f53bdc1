"""The fake upstream itself, checked against docs/mock.md (no gateway involved).

When one of these fails, gateway tests that rely on that mock behaviour fail too; fix the mock
first.
"""

import json
import socket
import time

from conftest import RawHttp, build_request, chat_body, http_call, poll, stream_request


def test_mock_stream_with_itl_completes(mock):
    res = stream_request(mock, chat_body(stream=True),
                         headers={"x-mock-itl-ms": "50", "x-mock-tokens": "4"}, timeout=5)
    assert res.head.status == 200, res.head
    assert res.data and res.data[-1] == "[DONE]", res.data
    assert res.content() == "w1 w2 w3 w4 ", res.data


def test_mock_stats_active_during_stream(mock):
    mock.reset()
    with RawHttp(mock.host, mock.port, timeout=5) as c:
        c.send(build_request("POST", "/v1/chat/completions", chat_body(stream=True),
                             {"x-mock-itl-ms": "200", "x-mock-tokens": "20"}))
        head = c.read_head()
        assert head.status == 200
        time.sleep(0.3)
        assert mock.stats()["active"] == 1, mock.stats()
    s = poll(lambda: (lambda s: s if s["active"] == 0 else None)(mock.stats()), 2)
    assert s and s["cancelled"] == 1, mock.stats()


def test_mock_truncate_declares_more_than_sent(mock):
    with RawHttp(mock.host, mock.port, timeout=5) as c:
        c.send(build_request("POST", "/v1/chat/completions", chat_body(),
                             {"x-mock-fault": "truncate"}))
        head = c.read_head()
        declared = int(head.header("content-length"))
        closed, got = c.wait_closed(3)
    assert closed
    assert len(got) < declared, f"declared {declared}, sent {len(got)}: not truncated"


def test_mock_large_body(mock):
    body = chat_body(content="x" * 300_000)
    r = http_call(mock, "POST", "/v1/chat/completions", body=body, headers={"x-mock-tokens": "1"})
    assert r.status == 200, r
    assert mock.last()["body"].encode() == body
