"""The response cache (docs/cache.md): exact match on a canonical form of the request, in two
tiers (L1 in process, L2 in a real redis-server), single-flight of identical misses, replay of
one stored answer in every client protocol, unary and streamed, and Cache-Control semantics.

Upstream: sluice-mock (`GET /mock/stats` counts the requests it served, so a hit is proven by
the upstream not being called).

    cd /work/main && /usr/bin/python3 -m pytest tests/integration/test_cache.py -q
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from conftest import ConfigStarter, free_closed_port, http_call, parse_sse, poll, stream_request
from test_redis_keys import Redis

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"

ROUTES = """\
  - model: cached
    cache: {ttl_s: 60}
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model}]
  - model: cached-claude
    cache: {ttl_s: 60}
    targets: [{provider: anthropic, forward_headers: ["x-mock-*"], base_url: "{MOCK_ROOT}", model: claude-mock}]
  - model: cached-on-request
    cache: {mode: on_request}
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model}]
  - model: cached-tools
    cache: {tool_calls: true}
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model}]
  - model: cached-short
    cache: {ttl_s: 1}
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model}]
"""


@pytest.fixture
def start(mock, tmp_path):
    s = ConfigStarter(mock, tmp_path, ROUTES)
    yield s
    s.stop_all()


@pytest.fixture
def gw(start):
    return start()


@pytest.fixture
def redis(tmp_path):
    r = Redis(free_closed_port(), tmp_path / "redis-data")
    r.start()
    yield r
    r.stop()


def upstream_calls(mock) -> int:
    return mock.stats()["requests"] if hasattr(mock, "stats") else _stats(mock)


def _stats(mock) -> int:
    r = http_call(mock, "GET", "/mock/stats")
    return json.loads(r.body)["requests"]


def chat(gw, text="What is the capital of France?", model="cached", headers=None, **extra):
    body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    return http_call(gw, "POST", CHAT, json_body=body, headers=headers or {})


def test_repeat_is_a_hit_with_the_same_answer(gw, mock):
    before = _stats(mock)
    r1 = chat(gw)
    assert r1.status == 200, r1
    assert r1.header("x-sluice-cache") == "miss"
    r2 = chat(gw)
    assert r2.status == 200, r2
    assert r2.header("x-sluice-cache") == "hit", r2.headers
    assert int(r2.header("age")) >= 0
    assert _stats(mock) - before == 1
    a, b = r1.json(), r2.json()
    assert a["choices"][0]["message"] == b["choices"][0]["message"]
    assert a["usage"] == b["usage"]
    assert a["id"] != b["id"]
