"""The response cache (docs/cache.md): exact match on a canonical form of the request, in two
tiers (L1 in process, L2 in a real redis-server), single-flight of identical misses, replay of
one stored answer in every client protocol, unary and streamed, and Cache-Control semantics.

Upstream: sluice-mock (`GET /mock/stats` counts the requests it served, so a hit is proven by
the upstream not being called). Request headers are not part of the cache key, so `x-mock-*`
headers (forwarded to the mock) change what a miss answers without changing the question: a
hit that returns the first answer's text although the repeat asked for another one proves it
came from the cache.

Every gateway here has an admin token (GET/DELETE /admin/cache) and checks the streams it
sends (metrics.validate_streams), so a replayed stream that breaks its protocol's rules is
counted in sluice_stream_invariant_violations_total.

    cd /work/main && /usr/bin/python3 -m pytest tests/integration/test_cache.py -q
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import threading
import time

import pytest

from conftest import (SLUICE_BIN, UPSTREAM_KEY, ConfigStarter, Gateway, Proc,
                      http_call, poll, render_config, require_binaries, sha,
                      stream_request)

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
RESPONSES = "/v1/responses"

ADMIN = "cache-admin-token"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}

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
  - model: cached-off
    cache: {enabled: false, ttl_s: 60}
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model}]
  - model: cached-half
    cache: {hit_cost: 0.5}
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model}]
  - model: cached-nowait
    cache: {flight_wait_ms: 0}
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model, timeouts: {first_byte_ms: 10000, total_ms: 20000}}]
  - model: cached-slow
    cache: {ttl_s: 60}
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model, timeouts: {first_byte_ms: 10000, total_ms: 20000}}]
"""

# API keys (auth top section): two keys of tenant alpha, one of beta, one without a tenant
# (the gateway makes such a key its own tenant, named after the key: "solo").
KEY_A1, KEY_A2, KEY_B1, KEY_SOLO = ("sk-cache-alpha-one", "sk-cache-alpha-two",
                                    "sk-cache-beta-one", "sk-cache-solo")
AUTH_TOP = f"""\
auth:
  enabled: true
  keys:
    - {{name: a1, key_sha256: "{sha(KEY_A1)}", tenant: alpha}}
    - {{name: a2, key_sha256: "{sha(KEY_A2)}", tenant: alpha}}
    - {{name: b1, key_sha256: "{sha(KEY_B1)}", tenant: beta}}
    - {{name: solo, key_sha256: "{sha(KEY_SOLO)}"}}
"""


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


class CacheStarter(ConfigStarter):
    """ConfigStarter whose gateways have an admin token (admin.token_env) and validate the
    streams they send (metrics.validate_streams)."""

    def __call__(self, top: str = "", routes: str = "", name: str = "sluice") -> Gateway:
        require_binaries(SLUICE_BIN)
        text = top + render_config(self.mock.port, self.dead_port,
                                   extra_routes=self.base_routes + routes,
                                   admin={"token_env": "SLUICE_ADMIN_TOKEN"},
                                   metrics={"validate_streams": "true"})
        path = self.tmp_path / f"{name}-{self.n}.yaml"
        self.n += 1
        path.write_text(text)
        return Gateway(self._launch(path, name), path, text)

    def _launch(self, path, name: str) -> Proc:
        env = dict(os.environ, MOCK_KEY=UPSTREAM_KEY, SLUICE_ADMIN_TOKEN=ADMIN)
        proc = Proc([str(SLUICE_BIN), "--config", str(path)], env=env, name=name)
        self.procs.append(proc)
        return proc


@pytest.fixture
def start(mock, tmp_path):
    s = CacheStarter(mock, tmp_path, ROUTES)
    yield s
    s.stop_all()


@pytest.fixture
def gw(start):
    return start()


def l2_top(redis) -> str:
    return f'redis: {{url: "redis://127.0.0.1:{redis.port}", timeout_ms: 300}}\ncache: {{l2: redis}}\n'


def upstream_calls(mock) -> int:
    return mock.stats()["requests"] if hasattr(mock, "stats") else _stats(mock)


def _stats(mock) -> int:
    r = http_call(mock, "GET", "/mock/stats")
    return json.loads(r.body)["requests"]


def chat(gw, text="What is the capital of France?", model="cached", headers=None, **extra):
    body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    return http_call(gw, "POST", CHAT, json_body=body, headers=headers or {})


def chat_raw(gw, raw: str, headers=None):
    return http_call(gw, "POST", CHAT, body=raw.encode(), headers=headers or {})


def stream_chat(gw, text="What is the capital of France?", model="cached", headers=None,
                **extra):
    body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": True,
            **extra}
    return stream_request(gw, json.dumps(body).encode(), headers=headers or {})


def message_text(r) -> str:
    return r.json()["choices"][0]["message"]["content"]


def cache_header(r) -> str | None:
    return r.header("x-sluice-cache")


def admin_cache(gw) -> dict:
    r = http_call(gw.admin, "GET", "/admin/cache", headers=ADMIN_AUTH)
    assert r.status == 200, r
    return r.json()


def invalidate(gw, query: str):
    return http_call(gw.admin, "DELETE", f"/admin/cache?{query}", headers=ADMIN_AUTH)


METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")


def metric(gw, name: str, **labels) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
    text = http_call(gw.admin, "GET", "/metrics").body.decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def assert_streams_valid(gw):
    """No stream this gateway sent broke its protocol's rules (metrics.validate_streams)."""
    assert metric(gw, "sluice_stream_invariant_violations_total") == 0


def assert_chat_stream(res, text: str | None = None) -> str:
    """A complete, well-formed chat completion stream; returns its text."""
    assert res.head.status == 200, res.head
    assert res.head.header("content-type", "").startswith("text/event-stream"), res.head
    assert res.events and res.events[-1].is_done, res.data
    chunks = res.chunks()
    assert chunks, res.data
    assert all(c["object"] == "chat.completion.chunk" for c in chunks), chunks
    assert len({c["id"] for c in chunks}) == 1, chunks
    finishes = [ch["finish_reason"] for c in chunks for ch in c.get("choices") or []
                if ch.get("finish_reason")]
    assert len(finishes) == 1, chunks
    content = res.content()
    if text is not None:
        assert content == text, (content, text)
    return content


# ---- hits and misses ---------------------------------------------------------------------


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


def test_hit_has_the_shape_of_a_completion_and_its_own_id(gw, mock):
    r1 = chat(gw, "shape question", headers={"x-mock-tokens": "4"})
    r2 = chat(gw, "shape question", headers={"x-request-id": "req-cache-shape",
                                             "x-mock-tokens": "9"})
    assert cache_header(r1) == "miss" and cache_header(r2) == "hit", (r1, r2)
    assert r1.header("age") is None  # only hits say how old they are
    b = r2.json()
    assert b["object"] == "chat.completion" and b["model"] == "cached", b
    assert b["id"] == "cache-req-cache-shape", b
    assert b["choices"][0]["finish_reason"] == "stop", b
    # The stored answer, not the one the repeat's x-mock-tokens would have produced.
    assert message_text(r2) == "w1 w2 w3 w4" == message_text(r1)
    assert r2.header("content-type", "").startswith("application/json"), r2


def test_route_without_cache_and_disabled_cache_have_no_cache_header(gw, mock):
    for model in ("mock-model", "cached-off"):
        before = _stats(mock)
        for _ in range(2):
            r = chat(gw, "uncached question", model=model)
            assert r.status == 200 and cache_header(r) is None, r
        assert _stats(mock) - before == 2, model


# Spellings of one question that the canonical form makes equal (key order, whitespace,
# defaults, synonyms, fields that are not part of the question, string vs one-part content).
GOLDEN_BASE = ('{"model":"cached","messages":[{"role":"user","content":"golden question"}],'
               '"max_tokens":50}')
GOLDEN_SAME = {
    "key order and whitespace":
        '{\n  "max_tokens" : 50 ,\n  "messages" : [ { "content" : "golden question" ,'
        ' "role" : "user" } ] ,\n  "model" : "cached"\n}',
    "max_completion_tokens synonym":
        '{"model":"cached","messages":[{"role":"user","content":"golden question"}],'
        '"max_completion_tokens":50}',
    "temperature 1":
        '{"model":"cached","messages":[{"role":"user","content":"golden question"}],'
        '"max_tokens":50,"temperature":1}',
    "temperature 1.0 and other defaults":
        '{"model":"cached","messages":[{"role":"user","content":"golden question"}],'
        '"max_tokens":50,"temperature":1.0,"top_p":1,"n":1,"presence_penalty":0,'
        '"frequency_penalty":0.0,"logprobs":false}',
    "content as one text part":
        '{"model":"cached","messages":[{"role":"user","content":[{"type":"text",'
        '"text":"golden question"}]}],"max_tokens":50}',
    "fields that are not the question":
        '{"model":"cached","messages":[{"role":"user","content":"golden question"}],'
        '"max_tokens":50,"user":"someone","metadata":{"a":"b"},"store":false,'
        '"service_tier":"auto","stream":false}',
    "nulls and empty lists":
        '{"model":"cached","messages":[{"role":"user","content":"golden question"}],'
        '"max_tokens":50,"seed":null,"tools":[],"stop":[]}',
}


def test_equivalent_spellings_of_a_question_are_hits(gw, mock):
    r0 = chat_raw(gw, GOLDEN_BASE, headers={"x-mock-tokens": "5"})
    assert r0.status == 200 and cache_header(r0) == "miss", r0
    before = _stats(mock)
    for name, raw in GOLDEN_SAME.items():
        json.loads(raw)  # the variants are valid JSON
        # Other x-mock-* headers: headers are not part of the key, and a miss would answer
        # 7 words instead of 5.
        r = chat_raw(gw, raw, headers={"x-mock-tokens": "7"})
        assert r.status == 200, (name, r)
        assert cache_header(r) == "hit", (name, r)
        assert message_text(r) == message_text(r0), (name, r)
    assert _stats(mock) == before
    # Integral numbers are one number however spelled (max_tokens must be an integer on the
    # wire, so this uses temperature).
    zero = '{"model":"cached","messages":[{"role":"user","content":"golden zero"}],"temperature":%s}'
    assert cache_header(chat_raw(gw, zero % "0")) == "miss"
    for spelling in ("0.0", "0e0", "-0"):
        r = chat_raw(gw, zero % spelling)
        assert r.status == 200 and cache_header(r) == "hit", (spelling, r)


# Changes that make another question: each is a miss, stored on its own.
GOLDEN_OTHER = {
    "message text": {"messages": [{"role": "user", "content": "golden question!"}]},
    "a system message": {"messages": [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "golden question"}]},
    "role": {"messages": [{"role": "developer", "content": "golden question"}]},
    "temperature": {"temperature": 0.2},
    "temperature 0": {"temperature": 0},
    "top_p": {"top_p": 0.5},
    "seed": {"seed": 7},
    "max_tokens": {"max_tokens": 51},
    "stop": {"stop": ["END"]},
    "tools": {"tools": [{"type": "function", "function": {
        "name": "weather", "parameters": {"type": "object", "properties": {}}}}]},
    "response_format": {"response_format": {"type": "json_object"}},
    "route": {"model": "cached-half"},
}


def test_different_questions_are_misses(gw, mock):
    base = json.loads(GOLDEN_BASE)
    assert cache_header(chat_raw(gw, GOLDEN_BASE)) == "miss"
    for name, change in GOLDEN_OTHER.items():
        body = {**base, **change}
        before = _stats(mock)
        r = http_call(gw, "POST", CHAT, json_body=body)
        assert r.status == 200, (name, r)
        assert cache_header(r) == "miss", (name, r)
        assert _stats(mock) - before == 1, name
    # Each was stored under its own key: all of them (and the base) are hits now.
    before = _stats(mock)
    assert cache_header(chat_raw(gw, GOLDEN_BASE)) == "hit"
    for name, change in GOLDEN_OTHER.items():
        r = http_call(gw, "POST", CHAT, json_body={**base, **change})
        assert cache_header(r) == "hit", (name, r)
    assert _stats(mock) == before


def test_the_same_question_on_another_endpoint_is_another_entry(gw, mock):
    assert cache_header(chat(gw, "endpoint question")) == "miss"
    body = {"model": "cached", "max_tokens": 50,
            "messages": [{"role": "user", "content": "endpoint question"}]}
    r = http_call(gw, "POST", MESSAGES, json_body=body)
    assert r.status == 200 and cache_header(r) == "miss", r
    r = http_call(gw, "POST", MESSAGES, json_body=body)
    assert r.status == 200 and cache_header(r) == "hit", r


# ---- request headers -----------------------------------------------------------------------


def test_x_sluice_cache_off_bypasses_lookup_and_store(gw, mock):
    assert cache_header(chat(gw, "q-off")) == "miss"
    before = _stats(mock)
    r = chat(gw, "q-off", headers={"x-sluice-cache": "off"})
    assert r.status == 200 and cache_header(r) == "bypass", r
    assert r.header("age") is None
    assert _stats(mock) - before == 1  # the stored answer was not read
    # Nor is an answer stored.
    r = chat(gw, "q-off-new", headers={"x-sluice-cache": "off"})
    assert cache_header(r) == "bypass", r
    assert cache_header(chat(gw, "q-off-new")) == "miss"


def test_cache_control_no_store_neither_reads_nor_writes(gw, mock):
    r = chat(gw, "q-no-store", headers={"Cache-Control": "no-store"})
    assert r.status == 200 and cache_header(r) == "bypass", r
    assert cache_header(chat(gw, "q-no-store")) == "miss"  # nothing was stored
    assert cache_header(chat(gw, "q-no-store")) == "hit"
    before = _stats(mock)
    r = chat(gw, "q-no-store", headers={"cache-control": "max-age=60, no-store"})
    assert cache_header(r) == "bypass", r
    assert _stats(mock) - before == 1


def test_cache_control_no_cache_skips_lookup_but_stores(gw, mock):
    r1 = chat(gw, "q-no-cache", headers={"x-mock-tokens": "3"})
    assert cache_header(r1) == "miss"
    before = _stats(mock)
    r2 = chat(gw, "q-no-cache", headers={"Cache-Control": "no-cache", "x-mock-tokens": "5"})
    assert r2.status == 200 and cache_header(r2) == "miss", r2
    assert _stats(mock) - before == 1
    assert message_text(r2) == "w1 w2 w3 w4 w5"
    # The fresh answer replaced the stored one.
    r3 = chat(gw, "q-no-cache", headers={"x-mock-tokens": "8"})
    assert cache_header(r3) == "hit" and message_text(r3) == "w1 w2 w3 w4 w5", r3
    # A first request with no-cache is stored too.
    assert cache_header(chat(gw, "q-no-cache-2", headers={"Cache-Control": "no-cache"})) == "miss"
    assert cache_header(chat(gw, "q-no-cache-2")) == "hit"


def test_cache_control_max_age(gw, mock):
    r1 = chat(gw, "q-max-age", headers={"x-mock-tokens": "3"})
    assert cache_header(r1) == "miss"
    time.sleep(1.2)
    # The entry is at least a second old: its age says so, a loose max-age accepts it.
    r = chat(gw, "q-max-age", headers={"Cache-Control": "max-age=3600"})
    assert cache_header(r) == "hit" and int(r.header("age")) >= 1, r
    # max-age=0 refuses it: a miss, whose fresh answer is stored.
    before = _stats(mock)
    r = chat(gw, "q-max-age", headers={"Cache-Control": "max-age=0", "x-mock-tokens": "5"})
    assert r.status == 200 and cache_header(r) == "miss", r
    assert _stats(mock) - before == 1
    assert message_text(r) == "w1 w2 w3 w4 w5"
    r = chat(gw, "q-max-age", headers={"Cache-Control": "max-age=3600", "x-mock-tokens": "9"})
    assert cache_header(r) == "hit" and message_text(r) == "w1 w2 w3 w4 w5", r


def test_on_request_mode_uses_the_cache_only_when_asked(gw, mock):
    before = _stats(mock)
    for _ in range(2):
        r = chat(gw, "q-on-request", model="cached-on-request")
        assert r.status == 200 and cache_header(r) is None, r
    assert _stats(mock) - before == 2
    on = {"x-sluice-cache": "on"}
    assert cache_header(chat(gw, "q-on-request", model="cached-on-request", headers=on)) == "miss"
    before = _stats(mock)
    r = chat(gw, "q-on-request", model="cached-on-request", headers=on)
    assert cache_header(r) == "hit", r
    assert _stats(mock) == before
    # Without the header the stored answer is not used.
    r = chat(gw, "q-on-request", model="cached-on-request")
    assert cache_header(r) is None, r
    assert _stats(mock) - before == 1


def test_session_requests_bypass_the_cache(gw, mock):
    r = http_call(gw, "POST", "/v1/sessions", json_body={})
    assert r.status == 200, r
    sid = r.json()["id"]
    for _ in range(2):
        before = _stats(mock)
        r = chat(gw, "q-session", headers={"x-sluice-session": sid})
        assert r.status == 200 and cache_header(r) == "bypass", r
        assert _stats(mock) - before == 1


# ---- owners ------------------------------------------------------------------------------


def test_owners_do_not_share_answers(start, mock):
    gw = start(top=AUTH_TOP)
    assert cache_header(chat(gw, "q-owner", headers=bearer(KEY_A1))) == "miss"
    # Same tenant, other key: shared.
    r = chat(gw, "q-owner", headers=bearer(KEY_A2))
    assert cache_header(r) == "hit", r
    # Another tenant, and a key without a tenant: their own entries.
    for key in (KEY_B1, KEY_SOLO):
        r = chat(gw, "q-owner", headers=bearer(key))
        assert r.status == 200 and cache_header(r) == "miss", (key, r)
        assert cache_header(chat(gw, "q-owner", headers=bearer(key))) == "hit", key


def test_cache_control_private_scopes_to_the_key(start, mock):
    gw = start(top=AUTH_TOP)
    private = {"Cache-Control": "private"}
    r = chat(gw, "q-private", headers={**bearer(KEY_A1), **private, "x-mock-tokens": "3"})
    assert cache_header(r) == "miss", r
    r = chat(gw, "q-private", headers={**bearer(KEY_A1), **private})
    assert cache_header(r) == "hit" and message_text(r) == "w1 w2 w3", r
    # Another key of the same tenant does not see a private entry...
    r = chat(gw, "q-private", headers={**bearer(KEY_A2), **private})
    assert cache_header(r) == "miss", r
    # ...nor does the tenant's shared scope.
    r = chat(gw, "q-private", headers={**bearer(KEY_A2), "x-mock-tokens": "5"})
    assert cache_header(r) == "miss", r
    r = chat(gw, "q-private", headers=bearer(KEY_A1))
    assert cache_header(r) == "hit" and message_text(r) == "w1 w2 w3 w4 w5", r


# ---- protocols ---------------------------------------------------------------------------


def test_unary_answer_replayed_as_a_stream(gw, mock):
    r1 = chat(gw, "q-replay", headers={"x-mock-tokens": "6"})
    assert cache_header(r1) == "miss"
    before = _stats(mock)
    s = stream_chat(gw, "q-replay", stream_options={"include_usage": True})
    assert s.head.header("x-sluice-cache") == "hit", s.head
    assert_chat_stream(s, message_text(r1))
    usage = [c["usage"] for c in s.chunks() if c.get("usage")]
    assert usage == [r1.json()["usage"]], s.data
    # Without include_usage: no usage chunk.
    s = stream_chat(gw, "q-replay")
    assert s.head.header("x-sluice-cache") == "hit", s.head
    assert_chat_stream(s, message_text(r1))
    assert not [c for c in s.chunks() if c.get("usage")], s.data
    assert _stats(mock) == before
    assert_streams_valid(gw)


def test_streamed_answer_is_stored_and_served_unary_and_streamed(gw, mock):
    s1 = stream_chat(gw, "q-stream-first", headers={"x-mock-tokens": "4"})
    assert s1.head.header("x-sluice-cache") == "miss", s1.head
    text = assert_chat_stream(s1)
    assert text == "w1 w2 w3 w4 "
    before = _stats(mock)
    r = chat(gw, "q-stream-first")
    assert r.status == 200 and cache_header(r) == "hit", r
    assert message_text(r) == text
    s2 = stream_chat(gw, "q-stream-first")
    assert s2.head.header("x-sluice-cache") == "hit"
    assert_chat_stream(s2, text)
    assert _stats(mock) == before
    assert_streams_valid(gw)


def anthropic_events(res) -> list[dict]:
    return [e.json() for e in res.events]


def test_anthropic_messages_hit_and_stream_replay(gw, mock):
    body = {"model": "cached-claude", "max_tokens": 100,
            "messages": [{"role": "user", "content": "q-claude"}]}
    r1 = http_call(gw, "POST", MESSAGES, json_body=body, headers={"x-mock-tokens": "5"})
    assert r1.status == 200 and cache_header(r1) == "miss", r1
    before = _stats(mock)
    r2 = http_call(gw, "POST", MESSAGES, json_body=body, headers={"x-mock-tokens": "2"})
    assert r2.status == 200 and cache_header(r2) == "hit", r2
    a, b = r1.json(), r2.json()
    assert b["type"] == "message" and b["role"] == "assistant", b
    assert a["content"] == b["content"] == [{"type": "text", "text": "w1 w2 w3 w4 w5"}], b
    assert a["usage"]["input_tokens"] == b["usage"]["input_tokens"], (a, b)
    assert a["usage"]["output_tokens"] == b["usage"]["output_tokens"], (a, b)
    assert b["stop_reason"] == "end_turn" and b["model"] == "cached-claude", b
    assert a["id"] != b["id"]
    # The same question streamed: a replay in Anthropic's event grammar.
    res = stream_request(gw, json.dumps({**body, "stream": True}).encode(), path=MESSAGES)
    assert res.head.status == 200 and res.head.header("x-sluice-cache") == "hit", res.head
    evs = anthropic_events(res)
    types = [e["type"] for e in evs]
    assert types[0] == "message_start" and types[-1] == "message_stop", types
    assert "content_block_start" in types and "content_block_stop" in types, types
    assert types[-2] == "message_delta", types
    for raw in (e.raw for e in res.events):
        name = [ln for ln in raw.split("\n") if ln.startswith("event:")]
        assert name, raw
    text = "".join(e["delta"]["text"] for e in evs
                   if e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta")
    assert text == "w1 w2 w3 w4 w5"
    assert evs[-2]["delta"]["stop_reason"] == "end_turn", evs[-2]
    assert _stats(mock) == before
    assert_streams_valid(gw)


def responses_text(b: dict) -> str:
    return "".join(p["text"] for it in b["output"] if it["type"] == "message"
                   for p in it["content"] if p["type"] == "output_text")


def test_responses_api_hit_and_stream_replay(gw, mock):
    body = {"model": "cached", "input": "q-responses"}
    r1 = http_call(gw, "POST", RESPONSES, json_body=body, headers={"x-mock-tokens": "4"})
    assert r1.status == 200 and cache_header(r1) == "miss", r1
    before = _stats(mock)
    r2 = http_call(gw, "POST", RESPONSES, json_body=body)
    assert r2.status == 200 and cache_header(r2) == "hit", r2
    a, b = r1.json(), r2.json()
    assert b["object"] == "response" and b["status"] == "completed", b
    assert responses_text(a) == responses_text(b) == "w1 w2 w3 w4", b
    assert a["usage"]["input_tokens"] == b["usage"]["input_tokens"], (a, b)
    assert a["usage"]["output_tokens"] == b["usage"]["output_tokens"], (a, b)
    assert a["id"] != b["id"]
    res = stream_request(gw, json.dumps({**body, "stream": True}).encode(), path=RESPONSES)
    assert res.head.status == 200 and res.head.header("x-sluice-cache") == "hit", res.head
    evs = [e.json() for e in res.events]
    types = [e["type"] for e in evs]
    assert types[0] == "response.created" and types[-1] == "response.completed", types
    deltas = "".join(e["delta"] for e in evs if e["type"] == "response.output_text.delta")
    assert deltas == "w1 w2 w3 w4", types
    assert responses_text(evs[-1]["response"]) == "w1 w2 w3 w4"
    assert _stats(mock) == before
    # A request that continues stored state asks another question each time: bypassed.
    r3 = http_call(gw, "POST", RESPONSES, json_body={**body, "previous_response_id": a["id"]})
    assert r3.status == 200 and cache_header(r3) == "bypass", r3
    assert _stats(mock) - before == 1


def gemini_text(b: dict) -> str:
    return "".join(p.get("text", "") for p in b["candidates"][0]["content"]["parts"])


def test_gemini_generate_content_hit(gw, mock):
    body = {"contents": [{"role": "user", "parts": [{"text": "q-gemini"}]}]}
    path = "/v1beta/models/cached:generateContent"
    r1 = http_call(gw, "POST", path, json_body=body, headers={"x-mock-tokens": "3"})
    assert r1.status == 200 and cache_header(r1) == "miss", r1
    before = _stats(mock)
    r2 = http_call(gw, "POST", path, json_body=body)
    assert r2.status == 200 and cache_header(r2) == "hit", r2
    assert gemini_text(r1.json()) == gemini_text(r2.json()) == "w1 w2 w3", r2
    # Streamed (streamGenerateContent?alt=sse) is the same question.
    res = stream_request(gw, json.dumps(body).encode(),
                         path="/v1beta/models/cached:streamGenerateContent?alt=sse")
    assert res.head.status == 200 and res.head.header("x-sluice-cache") == "hit", res.head
    chunks = [e.json() for e in res.events]
    text = "".join(p.get("text", "") for c in chunks for cand in c.get("candidates", [])
                   for p in (cand.get("content") or {}).get("parts", []))
    assert text == "w1 w2 w3", chunks
    assert _stats(mock) == before
    assert_streams_valid(gw)


def test_paced_replay_is_a_valid_stream_spread_over_time(gw, mock):
    # The first answer took at least 600 ms upstream (mock latency): a paced replay spreads
    # its pieces over about that long. Timers never fire early, so a lower bound is safe.
    r1 = chat(gw, "q-paced", headers={"x-mock-latency-ms": "600", "x-mock-tokens": "20"})
    assert cache_header(r1) == "miss"
    burst = stream_chat(gw, "q-paced")
    assert burst.head.header("x-sluice-cache") == "hit"
    assert_chat_stream(burst, message_text(r1))
    paced = stream_chat(gw, "q-paced", headers={"x-sluice-cache-replay": "paced"})
    assert paced.head.header("x-sluice-cache") == "hit"
    assert_chat_stream(paced, message_text(r1))
    content_events = [e for e in paced.events
                      if not e.is_done and any((ch.get("delta") or {}).get("content")
                                               for ch in e.json().get("choices") or [])]
    assert len(content_events) > 1, paced.data
    # Events arrived over time, not all in one read.
    assert paced.events[-1].t > paced.events[0].t
    assert paced.t_end - paced.t_start >= 0.25, paced.t_end - paced.t_start
    assert_streams_valid(gw)


# ---- what is not stored ------------------------------------------------------------------


NOT_STORED = {
    "upstream 503": ({"x-mock-status": "503"}, False),
    "upstream 400": ({"x-mock-status": "400"}, False),
    "upstream 429 streamed": ({"x-mock-status": "429"}, True),
    "stream error event": ({"x-mock-error-after": "3"}, True),
    "stream dropped": ({"x-mock-fault": "drop-after:3"}, True),
    "refusal": ({"x-mock-stop": "refusal"}, False),
    "refusal streamed": ({"x-mock-stop": "refusal"}, True),
    "tool calls": ({"x-mock-tool-calls": "1"}, False),
    "tool calls streamed": ({"x-mock-tool-calls": "1"}, True),
}


@pytest.mark.parametrize("case", list(NOT_STORED))
def test_incomplete_or_unsafe_answers_are_not_stored(gw, mock, case):
    headers, streamed = NOT_STORED[case]
    q = f"q-not-stored {case}"
    if streamed:
        first = stream_chat(gw, q, headers=headers).head
    else:
        first = chat(gw, q, headers=headers)
    assert first.header("x-sluice-cache") == "miss", first
    if "upstream" not in case:  # upstream errors: see test_upstream_errors_count_as_not_stored
        assert poll(lambda: metric(gw, "sluice_cache_stores_total",
                                   result="not_stored") == 1, 5), case
    before = _stats(mock)
    r = chat(gw, q)
    assert r.status == 200 and cache_header(r) == "miss", (case, r)
    assert _stats(mock) - before == 1
    assert cache_header(chat(gw, q)) == "hit"  # the good answer was stored
    assert metric(gw, "sluice_cache_stores_total", result="stored") == 1


# An upstream error answer of a miss is not stored and is counted as not_stored.
@pytest.mark.parametrize("status", ["503", "400"])
def test_upstream_errors_count_as_not_stored(gw, mock, status):
    r = chat(gw, f"q-error-count {status}", headers={"x-mock-status": status})
    assert r.status >= 400 and cache_header(r) == "miss", r
    assert poll(lambda: metric(gw, "sluice_cache_stores_total", result="not_stored") == 1, 3), \
        (metric(gw, "sluice_cache_stores_total", result="not_stored"),
         metric(gw, "sluice_cache_stores_total", result="stored"))


@pytest.mark.parametrize("stop", ["max_tokens", "stop_sequence"])
def test_answers_cut_by_max_tokens_or_stop_sequence_are_stored(gw, mock, stop):
    r1 = chat(gw, f"q-stop {stop}", headers={"x-mock-stop": stop})
    assert cache_header(r1) == "miss"
    r2 = chat(gw, f"q-stop {stop}")
    assert cache_header(r2) == "hit", r2
    assert r2.json()["choices"][0]["finish_reason"] == r1.json()["choices"][0]["finish_reason"]


def test_tool_calls_are_stored_on_a_route_that_allows_them(gw, mock):
    tools = {"x-mock-tool-calls": "2"}
    r1 = chat(gw, "q-tools", model="cached-tools", headers=tools)
    assert r1.status == 200 and cache_header(r1) == "miss", r1
    calls = r1.json()["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["tool_1", "tool_2"], calls
    before = _stats(mock)
    r2 = chat(gw, "q-tools", model="cached-tools")
    assert r2.status == 200 and cache_header(r2) == "hit", r2
    m2 = r2.json()["choices"][0]["message"]
    assert m2["tool_calls"] == calls, m2
    assert r2.json()["choices"][0]["finish_reason"] == "tool_calls"
    s = stream_chat(gw, "q-tools", model="cached-tools")
    assert s.head.header("x-sluice-cache") == "hit"
    assert s.events[-1].is_done, s.data
    args: dict[int, str] = {}
    names: dict[int, str] = {}
    for c in s.chunks():
        for ch in c.get("choices") or []:
            for tc in (ch.get("delta") or {}).get("tool_calls") or []:
                fn = tc.get("function") or {}
                if fn.get("name"):
                    names[tc["index"]] = fn["name"]
                args[tc["index"]] = args.get(tc["index"], "") + (fn.get("arguments") or "")
    assert names == {0: "tool_1", 1: "tool_2"}, s.data
    assert [json.loads(args[i]) for i in (0, 1)] == \
        [json.loads(c["function"]["arguments"]) for c in calls]
    assert _stats(mock) == before
    assert_streams_valid(gw)


def test_answers_bigger_than_max_entry_bytes_are_not_stored(start, mock):
    gw = start(top="cache: {max_entry_bytes: 2048}\n")
    big = {"x-mock-tokens": "600"}
    assert cache_header(chat(gw, "q-big", headers=big)) == "miss"
    assert cache_header(chat(gw, "q-big", headers=big)) == "miss"
    assert metric(gw, "sluice_cache_stores_total", result="too_big") == 2
    assert cache_header(chat(gw, "q-small")) == "miss"
    assert cache_header(chat(gw, "q-small")) == "hit"
    assert metric(gw, "sluice_cache_stores_total", result="stored") == 1


# ---- time to live ------------------------------------------------------------------------


def test_entries_expire_after_ttl(gw, mock):
    t0 = time.monotonic()
    assert cache_header(chat(gw, "q-ttl", model="cached-short")) == "miss"
    r = chat(gw, "q-ttl", model="cached-short")
    if time.monotonic() - t0 < 0.9:  # looked up well within the second the entry lives
        assert cache_header(r) == "hit", r
    before = _stats(mock)
    # Sooner or later (ttl_s: 1) the entry is gone: the next lookup is a miss.
    seen = []

    def expired():
        seen.append(cache_header(chat(gw, "q-ttl", model="cached-short")))
        return seen[-1] == "miss"

    assert poll(expired, 10, interval=0.2), seen
    assert time.monotonic() - t0 >= 1.0
    assert _stats(mock) - before == 1  # only the miss went upstream
    # The 60 s route keeps its entries meanwhile.
    assert cache_header(chat(gw, "q-ttl")) == "miss"
    assert cache_header(chat(gw, "q-ttl")) == "hit"


# ---- single flight -----------------------------------------------------------------------


def run_concurrently(n: int, fn) -> list:
    results: list = [None] * n
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait(10)
        try:
            results[i] = fn(i)
        except Exception as e:  # surfaced by the assertions
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_concurrent_identical_misses_make_one_upstream_call(gw, mock):
    before = _stats(mock)
    # cached-slow: a first-byte timeout well above the mock's latency.
    body = {"model": "cached-slow", "messages": [{"role": "user", "content": "q-flight"}]}
    results = run_concurrently(8, lambda i: http_call(
        gw, "POST", CHAT, json_body=body, headers={"x-mock-latency-ms": "1500"}, timeout=20))
    assert all(not isinstance(r, Exception) for r in results), results
    assert [r.status for r in results] == [200] * 8, results
    assert _stats(mock) - before == 1
    headers = sorted(cache_header(r) for r in results)
    assert headers == ["hit"] * 7 + ["miss"], headers
    assert len({json.dumps(r.json()["choices"][0]["message"]) for r in results}) == 1
    assert len({json.dumps(r.json()["usage"]) for r in results}) == 1
    assert len({r.json()["id"] for r in results}) == 8
    st = admin_cache(gw)["requests"]
    assert st["misses"] == 1 and st["hits_flight"] + st["hits_l1"] == 7, st
    assert st["hits_flight"] >= 1, st
    assert metric(gw, "sluice_cache_requests_total", tier="flight", result="hit") == \
        st["hits_flight"]


def test_flight_waiters_go_upstream_when_the_leader_fails(gw, mock):
    body = {"model": "cached-slow", "messages": [{"role": "user", "content": "q-flight-fail"}]}
    leader: list = []
    t = threading.Thread(target=lambda: leader.append(http_call(
        gw, "POST", CHAT, json_body=body,
        headers={"x-mock-latency-ms": "1500", "x-mock-status": "400"}, timeout=20)))
    t.start()
    try:
        # The leader is upstream (so it leads the flight) before the followers arrive.
        assert poll(lambda: mock.stats()["active"] >= 1, 10), mock.stats()
        results = run_concurrently(3, lambda i: http_call(gw, "POST", CHAT, json_body=body,
                                                          timeout=20))
    finally:
        t.join(30)
    assert leader and leader[0].status == 400, leader
    assert [r.status for r in results] == [200] * 3, results
    assert all(cache_header(r) == "miss" for r in results), results
    r = http_call(gw, "POST", CHAT, json_body=body)
    assert cache_header(r) == "hit", r


def test_flight_wait_zero_does_not_wait(gw, mock):
    before = _stats(mock)
    body = {"model": "cached-nowait", "messages": [{"role": "user", "content": "q-nowait"}]}
    results = run_concurrently(4, lambda i: http_call(
        gw, "POST", CHAT, json_body=body, headers={"x-mock-latency-ms": "2000"}, timeout=20))
    assert [r.status for r in results] == [200] * 4, results
    assert _stats(mock) - before >= 2
    assert admin_cache(gw)["requests"]["hits_flight"] == 0


# ---- L2 (redis) --------------------------------------------------------------------------


def redis_entries(redis) -> list[str]:
    """The cache's entry keys in Redis (not its invalidation indexes, log or flight locks)."""
    keys = redis.command("KEYS", "sluice:cache:*") or []
    return [k for k in keys if not any(m in k for m in ("idx:", "inv:", "lock:"))]


def test_l2_is_shared_by_two_instances(start, mock, redis):
    a = start(top=l2_top(redis), name="a")
    b = start(top=l2_top(redis), name="b")
    assert admin_cache(a)["l2"] == "redis"
    r1 = chat(a, "q-l2", headers={"x-mock-tokens": "6"})
    assert cache_header(r1) == "miss"
    assert poll(lambda: redis_entries(redis), 5), redis.command("KEYS", "*")
    before = _stats(mock)
    r2 = chat(b, "q-l2")
    assert r2.status == 200 and cache_header(r2) == "hit", r2
    assert message_text(r2) == message_text(r1)
    # The L2 hit filled b's L1.
    r3 = chat(b, "q-l2")
    assert cache_header(r3) == "hit", r3
    assert _stats(mock) == before
    st = admin_cache(b)
    assert st["requests"]["hits_l2"] == 1 and st["requests"]["hits_l1"] == 1, st
    assert st["l1"]["entries"] == 1 and st["l2_down"] is False, st
    assert metric(b, "sluice_cache_requests_total", tier="l2", result="hit") == 1
    # A streamed request on a third instance replays the L2 entry too.
    c = start(top=l2_top(redis), name="c")
    s = stream_chat(c, "q-l2")
    assert s.head.header("x-sluice-cache") == "hit", s.head
    assert_chat_stream(s, message_text(r1))
    assert _stats(mock) == before


def test_l2_invalidation_by_route_reaches_other_instances(start, mock, redis):
    a = start(top=l2_top(redis), name="a")
    assert cache_header(chat(a, "q-l2-inv")) == "miss"
    assert poll(lambda: redis_entries(redis), 5)
    r = invalidate(a, "model=cached")
    assert r.status == 200 and r.json()["invalidated"] >= 1, r
    assert not redis_entries(redis), redis.command("KEYS", "*")
    b = start(top=l2_top(redis), name="b")
    assert cache_header(chat(b, "q-l2-inv")) == "miss"
    assert poll(lambda: redis_entries(redis), 5)  # b's L2 write is asynchronous
    assert cache_header(chat(a, "q-l2-inv")) == "hit"  # b stored it again


def test_invalidating_all_clears_l1_only(start, mock, redis):
    # Documented (docs/cache.md): a shared Redis is never scanned; its entries expire by TTL.
    a = start(top=l2_top(redis), name="a")
    assert cache_header(chat(a, "q-l2-all")) == "miss"
    assert poll(lambda: redis_entries(redis), 5)
    r = invalidate(a, "all=1")
    assert r.status == 200 and r.json() == {"invalidated": 1}, r
    assert admin_cache(a)["l1"]["entries"] == 0
    before = _stats(mock)
    assert cache_header(chat(a, "q-l2-all")) == "hit"
    assert admin_cache(a)["requests"]["hits_l2"] == 1
    assert _stats(mock) == before


def expected_key(owner: str, route: str, upstream: str, endpoint: str, canonical: dict) -> str:
    """The cache key as src/cache/key.cc computes it: SHA-256 over length-prefixed parts."""
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    data = "".join(f"{len(p.encode())}:{p}" for p in (owner, route, upstream, endpoint, text))
    return hashlib.sha256(data.encode()).hexdigest()


def test_invalidation_by_key(start, mock, redis):
    a = start(top=l2_top(redis), name="a")
    assert cache_header(chat(a, "q-by-key")) == "miss"
    assert cache_header(chat(a, "q-other-key")) == "miss"
    key = expected_key("", "cached", "openai:mock-model", "chat",
                       {"messages": [{"content": [{"text": "q-by-key", "type": "text"}],
                                      "role": "user"}], "model": "cached"})
    # The entry is in Redis under that key (anonymous owner, route, upstream, endpoint).
    assert poll(lambda: any(k.endswith(key) for k in redis_entries(redis)), 5), \
        (key, redis_entries(redis))
    r = invalidate(a, f"key={key}")
    assert r.status == 200 and r.json()["invalidated"] >= 1, r
    assert not any(k.endswith(key) for k in redis_entries(redis)), redis_entries(redis)
    assert cache_header(chat(a, "q-by-key")) == "miss"
    assert cache_header(chat(a, "q-other-key")) == "hit"


def test_redis_down_fails_open_and_l2_recovers(start, mock, redis):
    a = start(top=l2_top(redis), name="a")
    b = start(top=l2_top(redis), name="b")
    assert cache_header(chat(a, "q-down-1")) == "miss"
    assert poll(lambda: redis_entries(redis), 5)
    redis.stop()
    # Requests keep succeeding: L1 still answers, new questions go upstream.
    r = chat(a, "q-down-1")
    assert r.status == 200 and cache_header(r) == "hit", r
    for i in range(3):
        r = chat(a, f"q-down-new-{i}")
        assert r.status == 200 and cache_header(r) == "miss", r
        s = stream_chat(a, f"q-down-stream-{i}")
        assert_chat_stream(s)
    assert metric(a, "sluice_cache_l2_errors_total") >= 1
    assert admin_cache(a)["l2_down"] is True
    # b has its own view: the entry is in Redis only, so b asks upstream and still succeeds.
    r = chat(b, "q-down-1")
    assert r.status == 200 and cache_header(r) == "miss", r
    assert metric(b, "sluice_cache_l2_errors_total") >= 1
    redis.start()  # same port, same append-only file
    n = [0]

    def shared_again():
        n[0] += 1
        q = f"q-after-restart-{n[0]}"
        r = chat(a, q)
        assert r.status == 200, r
        seen = len(redis_entries(redis))
        poll(lambda: len(redis_entries(redis)) > seen, 1.5)
        return cache_header(chat(b, q)) == "hit"

    assert poll(shared_again, 30, interval=0.3)
    assert poll(lambda: admin_cache(a)["l2_down"] is False, 5)
    assert admin_cache(b)["requests"]["hits_l2"] >= 1


# ---- admin API ---------------------------------------------------------------------------


def test_admin_cache_stats(gw, mock):
    st = admin_cache(gw)
    assert st == {"l1": {"entries": 0, "bytes": 0, "evictions": 0}, "l2": "none",
                  "l2_down": False, "requests": {"hits_l1": 0, "hits_l2": 0, "hits_flight": 0,
                                                 "hits_semantic": 0, "misses": 0, "bypassed": 0},
                  "semantic": {}, "hit_ratio": 0}, st
    chat(gw, "q-stats")
    chat(gw, "q-stats")
    chat(gw, "q-stats", headers={"x-sluice-cache": "off"})
    chat(gw, "q-stats-2")
    st = admin_cache(gw)
    assert st["l1"]["entries"] == 2 and st["l1"]["bytes"] > 0, st
    assert st["requests"] == {"hits_l1": 1, "hits_l2": 0, "hits_flight": 0, "hits_semantic": 0,
                              "misses": 2, "bypassed": 1}, st
    assert abs(st["hit_ratio"] - 1 / 3) < 1e-9, st
    # HEAD works like GET; the token is required; other methods are refused.
    assert http_call(gw.admin, "HEAD", "/admin/cache", headers=ADMIN_AUTH).status == 200
    assert http_call(gw.admin, "GET", "/admin/cache").status == 401
    assert http_call(gw.admin, "DELETE", "/admin/cache?all=1").status == 401
    r = http_call(gw.admin, "POST", "/admin/cache", body=b"{}", headers=ADMIN_AUTH)
    assert r.status == 405, r
    # Not on the public listener.
    assert http_call(gw, "GET", "/admin/cache", headers=ADMIN_AUTH).status == 404


def test_admin_invalidation_by_route_and_all(gw, mock):
    for q in ("q-inv-1", "q-inv-2"):
        assert cache_header(chat(gw, q)) == "miss"
    assert cache_header(chat(gw, "q-inv-1", model="cached-tools")) == "miss"
    r = invalidate(gw, "")
    assert r.status == 400, r
    assert r.json()["error"]["message"], r
    r = invalidate(gw, "model=no-such-route")
    assert r.status == 200 and r.json() == {"invalidated": 0}, r
    r = invalidate(gw, "model=cached")
    assert r.status == 200 and r.json() == {"invalidated": 2}, r
    assert admin_cache(gw)["l1"]["entries"] == 1
    assert cache_header(chat(gw, "q-inv-1")) == "miss"
    assert cache_header(chat(gw, "q-inv-1", model="cached-tools")) == "hit"
    r = invalidate(gw, "all=1")
    assert r.status == 200 and r.json() == {"invalidated": 2}, r
    assert admin_cache(gw)["l1"]["entries"] == 0
    assert cache_header(chat(gw, "q-inv-1", model="cached-tools")) == "miss"
    # An unknown key invalidates nothing.
    r = invalidate(gw, "key=" + "0" * 64)
    assert r.status == 200 and r.json() == {"invalidated": 0}, r


def test_admin_invalidation_by_tenant_and_api_key(start, mock):
    gw = start(top=AUTH_TOP)
    for key in (KEY_A1, KEY_B1, KEY_SOLO):
        assert cache_header(chat(gw, "q-inv-owner", headers=bearer(key))) == "miss"
    r = invalidate(gw, "tenant=alpha")
    assert r.status == 200 and r.json() == {"invalidated": 1}, r
    assert cache_header(chat(gw, "q-inv-owner", headers=bearer(KEY_A2))) == "miss"
    assert cache_header(chat(gw, "q-inv-owner", headers=bearer(KEY_B1))) == "hit"
    assert cache_header(chat(gw, "q-inv-owner", headers=bearer(KEY_SOLO))) == "hit"
    # A key without a tenant is its own tenant, named after the key.
    r = invalidate(gw, "tenant=solo")
    assert r.status == 200 and r.json() == {"invalidated": 1}, r
    assert cache_header(chat(gw, "q-inv-owner", headers=bearer(KEY_SOLO))) == "miss"
    assert cache_header(chat(gw, "q-inv-owner", headers=bearer(KEY_B1))) == "hit"
    # A key's own entries (Cache-Control: private) go with ?api_key=<key id>; the tenant's
    # shared entries stay.
    priv = {**bearer(KEY_A1), "Cache-Control": "private"}
    assert cache_header(chat(gw, "q-inv-private", headers=priv)) == "miss"
    assert cache_header(chat(gw, "q-inv-private", headers=bearer(KEY_A1))) == "miss"
    r = invalidate(gw, "api_key=cfg_a1")
    assert r.status == 200 and r.json() == {"invalidated": 1}, r
    assert cache_header(chat(gw, "q-inv-private", headers=priv)) == "miss"
    assert cache_header(chat(gw, "q-inv-private", headers=bearer(KEY_A2))) == "hit"
    r = invalidate(gw, "api_key=cfg_nobody")
    assert r.status == 200 and r.json() == {"invalidated": 0}, r


# With no route caching, /admin/cache answers 404 (there is nothing to show or invalidate).
def test_admin_cache_is_404_when_no_route_caches(gateway_factory):
    gw = gateway_factory(admin={"token_env": "SLUICE_ADMIN_TOKEN"},
                         env={"SLUICE_ADMIN_TOKEN": ADMIN})
    r = http_call(gw.admin, "GET", "/admin/cache", headers=ADMIN_AUTH)
    assert r.status == 404, r
    r = invalidate(gw, "all=1")
    assert r.status == 404, r
    # And no cache header on the answers.
    r = http_call(gw, "POST", CHAT, json_body={
        "model": "mock-model", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status == 200 and cache_header(r) is None, r


# ---- metrics, access log, usage ----------------------------------------------------------


def test_metrics_count_requests_and_stores(gw, mock):
    chat(gw, "q-metrics")
    chat(gw, "q-metrics")
    chat(gw, "q-metrics", headers={"Cache-Control": "no-store"})
    chat(gw, "q-metrics-refused", headers={"x-mock-stop": "refusal"})
    assert metric(gw, "sluice_cache_requests_total", tier="none", result="miss") == 2
    assert metric(gw, "sluice_cache_requests_total", tier="l1", result="hit") == 1
    assert metric(gw, "sluice_cache_requests_total", tier="none", result="bypass") == 1
    assert metric(gw, "sluice_cache_requests_total", tier="l2", result="hit") == 0
    assert metric(gw, "sluice_cache_requests_total", tier="flight", result="hit") == 0
    assert metric(gw, "sluice_cache_stores_total", result="stored") == 1
    assert metric(gw, "sluice_cache_stores_total", result="not_stored") == 1
    assert metric(gw, "sluice_cache_stores_total", result="too_big") == 0
    assert metric(gw, "sluice_cache_l2_errors_total") == 0
    text = http_call(gw.admin, "GET", "/metrics").body.decode()
    for name in ("sluice_cache_requests_total", "sluice_cache_stores_total",
                 "sluice_cache_l2_errors_total"):
        assert f"# TYPE {name} counter" in text, name


def test_access_log_carries_the_cache_outcome(start, mock, tmp_path):
    log = tmp_path / "access.log"
    gw = start(top=f"access_log: {{enabled: true, path: {log}}}\n")
    chat(gw, "q-log", headers={"x-request-id": "log-miss"})
    chat(gw, "q-log", headers={"x-request-id": "log-hit"})
    chat(gw, "q-log", headers={"x-request-id": "log-bypass", "x-sluice-cache": "off"})
    stream_chat(gw, "q-log", headers={"x-request-id": "log-hit-stream"})
    chat(gw, "q-log", model="mock-model", headers={"x-request-id": "log-uncached"})

    def lines():
        if not log.exists():
            return None
        ls = [json.loads(l) for l in log.read_text().splitlines() if l.strip()]
        return {l["request_id"]: l for l in ls} if len(ls) >= 5 else None

    by_id = poll(lines, 5)
    assert by_id, log.read_text() if log.exists() else "no log"
    assert by_id["log-miss"]["cache"] == "miss"
    assert by_id["log-hit"]["cache"] == "hit"
    assert by_id["log-bypass"]["cache"] == "bypass"
    assert by_id["log-hit-stream"]["cache"] == "hit" and by_id["log-hit-stream"]["stream"]
    assert "cache" not in by_id["log-uncached"], by_id["log-uncached"]
    for rid in ("log-miss", "log-hit"):
        assert by_id[rid]["status"] == 200 and by_id[rid]["outcome"] == "success", by_id[rid]
    assert by_id["log-hit"]["output_tokens"] == by_id["log-miss"]["output_tokens"]


USAGE_TOP = AUTH_TOP + """\
prices:
  - {model: "*", input_per_million: 1000, output_per_million: 1000}
"""


def usage_totals(gw, key: str) -> dict:
    r = http_call(gw.admin, "GET", f"/admin/usage?key={key}", headers=ADMIN_AUTH)
    assert r.status == 200, r
    rows = r.json()["data"]
    return {f: sum(row[f] for row in rows)
            for f in ("requests", "input_tokens", "output_tokens", "cost_usd")}


def test_usage_records_hits_with_original_tokens_at_hit_cost(start, mock):
    gw = start(top=USAGE_TOP)
    h = {**bearer(KEY_A1), "x-mock-tokens": "10"}
    r1 = chat(gw, "q-usage", headers=h)
    assert cache_header(r1) == "miss"
    u = r1.json()["usage"]
    cost = (u["prompt_tokens"] + u["completion_tokens"]) * 1000 / 1e6
    got = poll(lambda: (t := usage_totals(gw, "a1"))["requests"] == 1 and t, 5)
    assert got and abs(got["cost_usd"] - cost) < 1e-9, got
    r2 = chat(gw, "q-usage", headers=h)
    assert cache_header(r2) == "hit" and r2.json()["usage"] == u, r2
    got = poll(lambda: (t := usage_totals(gw, "a1"))["requests"] == 2 and t, 5)
    assert got, usage_totals(gw, "a1")
    assert got["input_tokens"] == 2 * u["prompt_tokens"], got
    assert got["output_tokens"] == 2 * u["completion_tokens"], got
    assert abs(got["cost_usd"] - cost) < 1e-9, got  # hit_cost 0: the hit was free
    # hit_cost: 0.5 charges half.
    h2 = {**bearer(KEY_A2), "x-mock-tokens": "10"}
    r3 = chat(gw, "q-usage", model="cached-half", headers=h2)
    assert cache_header(r3) == "miss"
    u3 = r3.json()["usage"]
    cost3 = (u3["prompt_tokens"] + u3["completion_tokens"]) * 1000 / 1e6
    assert cache_header(chat(gw, "q-usage", model="cached-half", headers=h2)) == "hit"
    got = poll(lambda: (t := usage_totals(gw, "a2"))["requests"] == 2 and t, 5)
    assert got, usage_totals(gw, "a2")
    assert abs(got["cost_usd"] - 1.5 * cost3) < 1e-9, (got, cost3)


def test_hits_refund_their_rate_limit_token_reservation(start, mock):
    top = USAGE_TOP + """\
rate_limits:
  per_tenant:
    alpha: {tokens_per_minute: 1000}
"""
    gw = start(top=top)
    h = {**bearer(KEY_A1), "x-mock-tokens": "300"}
    # Each request reserves about max_tokens (400) + its prompt; the miss then costs its real
    # ~300+ tokens. Were hits charged their tokens (or kept their reservation), no more than
    # two would fit in the minute.
    r = chat(gw, "q-ratelimit", headers=h, max_tokens=400)
    assert r.status == 200 and cache_header(r) == "miss", r
    statuses = []
    for _ in range(8):
        r = chat(gw, "q-ratelimit", headers=h, max_tokens=400)
        statuses.append((r.status, cache_header(r)))
    assert statuses == [(200, "hit")] * 8, statuses


# ---- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize("snippet,where", [
    ("cache: {l2: memcached}\n", "cache.l2"),
    ("cache: {max_entry_bytes: 0}\n", "cache.max_entry_bytes"),
    ("cache: {bogus: 1}\n", "cache.bogus"),
])
def test_bad_top_level_cache_config_is_rejected(tmp_path, snippet, where):
    require_binaries(SLUICE_BIN)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("routes: [{model: m, targets: [{provider: demo}]}]\n" + snippet)
    r = subprocess.run([str(SLUICE_BIN), "--check-config", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and where in r.stderr, r


@pytest.mark.parametrize("cache,where", [
    ("{mode: sometimes}", "routes[0].cache.mode"),
    ("{ttl_s: 0}", "routes[0].cache.ttl_s"),
    ("{hit_cost: 2}", "routes[0].cache.hit_cost"),
    ("{enabled: maybe}", "routes[0].cache.enabled"),
])
def test_bad_route_cache_config_is_rejected(tmp_path, cache, where):
    require_binaries(SLUICE_BIN)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"routes: [{{model: m, cache: {cache}, targets: [{{provider: demo}}]}}]\n")
    r = subprocess.run([str(SLUICE_BIN), "--check-config", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and where in r.stderr, r
