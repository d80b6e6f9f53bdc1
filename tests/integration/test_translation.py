"""Translation through the gateway: every client protocol (OpenAI chat, Anthropic Messages,
Gemini) against every upstream protocol, with sluice-mock speaking each upstream format.

The mock's scenario headers (x-mock-tool-calls, x-mock-thinking, x-mock-stop, x-mock-cache-*,
x-mock-error-after, x-mock-echo-request) are forwarded by the routes' forward_headers.
"""

from __future__ import annotations

import json

import pytest

from conftest import http_call, stream_request

ROUTES = """\
  - model: claude-up
    targets: [{provider: anthropic, forward_headers: ["x-mock-*"], base_url: "{MOCK_ROOT}", model: claude-mock}]
  - model: gemini-up
    targets: [{provider: gemini, forward_headers: ["x-mock-*"], base_url: "{MOCK_ROOT}/v1beta", model: gemini-mock}]
  - model: claude-short
    default_max_tokens: 77
    targets: [{provider: anthropic, forward_headers: ["x-mock-*"], base_url: "{MOCK_ROOT}"}]
"""

# upstream protocol → the model name routed to it
UPSTREAMS = {"openai": "mock-model", "anthropic": "claude-up", "gemini": "gemini-up"}


@pytest.fixture(scope="module")
def violations():
    """Every translated stream of this module is checked by the gateway itself
    (metrics.validate_streams); the module ends by asserting that none broke a rule."""
    seen = []
    yield seen
    assert sum(seen) == 0, "translated streams broke their protocol's rules (see the gateway log)"


def violation_count(gw) -> int:
    text = http_call(gw.admin, "GET", "/metrics").body.decode()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("sluice_stream_invariant_violations_total{"))


@pytest.fixture
def gw(gateway_factory, violations):
    g = gateway_factory(extra_routes=ROUTES, metrics={"validate_streams": "true"})
    yield g
    violations.append(violation_count(g))


def event_name(ev) -> str:
    for line in ev.raw.split("\n"):
        if line.startswith("event:"):
            return line[6:].strip()
    return ""


# ---- one request in each client protocol ---------------------------------------------------


def openai_request(gw, model, stream=False, headers=None, **extra):
    body = {"model": model, "messages": [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "hello"}]}
    body.update(extra)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        return stream_request(gw, json.dumps(body).encode(), headers=headers)
    return http_call(gw, "POST", "/v1/chat/completions", json_body=body, headers=headers)


def anthropic_request(gw, model, stream=False, headers=None, **extra):
    body = {"model": model, "max_tokens": 100, "system": "Be brief.",
            "messages": [{"role": "user", "content": "hello"}]}
    body.update(extra)
    h = {"anthropic-version": "2023-06-01", **(headers or {})}
    if stream:
        body["stream"] = True
        return stream_request(gw, json.dumps(body).encode(), path="/v1/messages", headers=h)
    return http_call(gw, "POST", "/v1/messages", json_body=body, headers=h)


def gemini_request(gw, model, stream=False, headers=None, **extra):
    body = {"systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    body.update(extra)
    if stream:
        return stream_request(gw, json.dumps(body).encode(),
                              path=f"/v1beta/models/{model}:streamGenerateContent?alt=sse",
                              headers=headers)
    return http_call(gw, "POST", f"/v1beta/models/{model}:generateContent", json_body=body,
                     headers=headers)


# ---- what each client protocol's answer says, in neutral terms -----------------------------


def openai_unary(r):
    assert r.status == 200, r
    b = r.json()
    assert b["object"] == "chat.completion", b
    msg = b["choices"][0]["message"]
    calls = [(c["function"]["name"], json.loads(c["function"]["arguments"]))
             for c in msg.get("tool_calls") or []]
    return {"text": msg.get("content") or "", "calls": calls,
            "stop": b["choices"][0]["finish_reason"], "usage": b.get("usage")}


def openai_stream(res):
    assert res.head.status == 200, res.head
    datas = [e.data for e in res.events]
    assert datas and datas[-1] == "[DONE]", datas[-3:]
    text, calls, stop, usage = "", {}, None, None
    for d in datas[:-1]:
        c = json.loads(d)
        assert "error" not in c, c
        if c.get("usage"):
            usage = c["usage"]
        for ch in c.get("choices", []):
            delta = ch.get("delta", {})
            text += delta.get("content") or ""
            for tc in delta.get("tool_calls") or []:
                slot = calls.setdefault(tc["index"], {"name": "", "args": ""})
                fn = tc.get("function", {})
                slot["name"] += fn.get("name") or ""
                slot["args"] += fn.get("arguments") or ""
            if ch.get("finish_reason"):
                assert stop is None, "finish_reason twice"
                stop = ch["finish_reason"]
    ordered = [calls[i] for i in sorted(calls)]
    assert sorted(calls) == list(range(len(calls))), calls
    return {"text": text, "calls": [(c["name"], json.loads(c["args"])) for c in ordered],
            "stop": stop, "usage": usage}


def anthropic_unary(r):
    assert r.status == 200, r
    b = r.json()
    assert b["type"] == "message" and b["role"] == "assistant", b
    text = "".join(c["text"] for c in b["content"] if c["type"] == "text")
    calls = [(c["name"], c["input"]) for c in b["content"] if c["type"] == "tool_use"]
    return {"text": text, "calls": calls, "stop": b["stop_reason"], "usage": b["usage"]}


def anthropic_stream(res):
    assert res.head.status == 200, res.head
    names = [event_name(e) for e in res.events]
    assert names[0] == "message_start" and names[-1] == "message_stop", names
    text, calls, stop, usage, open_block = "", [], None, {}, None
    for e in res.events:
        d = e.json()
        assert d["type"] == event_name(e), (d, e.raw)
        if d["type"] == "message_start":
            usage.update(d["message"]["usage"])
        elif d["type"] == "content_block_start":
            assert open_block is None, "blocks interleave"
            open_block = d["index"]
            if d["content_block"]["type"] == "tool_use":
                calls.append([d["content_block"]["name"], ""])
        elif d["type"] == "content_block_delta":
            assert d["index"] == open_block, d
            delta = d["delta"]
            if delta["type"] == "text_delta":
                text += delta["text"]
            elif delta["type"] == "input_json_delta":
                calls[-1][1] += delta["partial_json"]
        elif d["type"] == "content_block_stop":
            assert d["index"] == open_block
            open_block = None
        elif d["type"] == "message_delta":
            stop = d["delta"]["stop_reason"]
            usage.update(d.get("usage") or {})
        elif d["type"] == "error":
            raise AssertionError(d)
    return {"text": text, "calls": [(n, json.loads(a or "{}")) for n, a in calls], "stop": stop,
            "usage": usage}


def gemini_parts(b):
    cand = b["candidates"][0]
    return cand.get("content", {}).get("parts", []), cand.get("finishReason")


def gemini_unary(r):
    assert r.status == 200, r
    b = r.json()
    parts, stop = gemini_parts(b)
    text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
    calls = [(p["functionCall"]["name"], p["functionCall"].get("args", {}))
             for p in parts if "functionCall" in p]
    return {"text": text, "calls": calls, "stop": stop, "usage": b.get("usageMetadata")}


def gemini_stream(res):
    assert res.head.status == 200, res.head
    text, calls, stop, usage = "", [], None, None
    for e in res.events:
        b = e.json()
        assert "error" not in b, b
        parts, fr = gemini_parts(b)
        for p in parts:
            if "functionCall" in p:
                calls.append((p["functionCall"]["name"], p["functionCall"].get("args", {})))
            elif not p.get("thought"):
                text += p.get("text", "")
        if fr:
            assert stop is None, "finishReason twice"
            stop = fr
        usage = b.get("usageMetadata") or usage
    return {"text": text, "calls": calls, "stop": stop, "usage": usage}


CLIENTS = {
    "openai": (openai_request, openai_unary, openai_stream),
    "anthropic": (anthropic_request, anthropic_unary, anthropic_stream),
    "gemini": (gemini_request, gemini_unary, gemini_stream),
}
TOOL_STOP = {"openai": "tool_calls", "anthropic": "tool_use", "gemini": "STOP"}
END_STOP = {"openai": "stop", "anthropic": "end_turn", "gemini": "STOP"}
MAX_STOP = {"openai": "length", "anthropic": "max_tokens", "gemini": "MAX_TOKENS"}


# ---- the matrix: 3 clients x 3 upstreams, unary and streaming --------------------------------


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_text(gw, client, upstream, stream):
    send, unary, streamed = CLIENTS[client]
    r = send(gw, UPSTREAMS[upstream], stream=stream)
    got = streamed(r) if stream else unary(r)
    assert got["text"], got
    assert got["stop"] == END_STOP[client], got
    assert not got["calls"]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_parallel_tool_calls(gw, client, upstream, stream):
    send, unary, streamed = CLIENTS[client]
    r = send(gw, UPSTREAMS[upstream], stream=stream, headers={"x-mock-tool-calls": "2"})
    got = streamed(r) if stream else unary(r)
    assert got["calls"] == [("tool_1", {"city": "Paris", "n": 1}),
                            ("tool_2", {"city": "Paris", "n": 2})], got
    assert got["stop"] == TOOL_STOP[client], got


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_max_tokens_stop(gw, client, upstream):
    send, unary, _ = CLIENTS[client]
    got = unary(send(gw, UPSTREAMS[upstream], headers={"x-mock-stop": "max_tokens"}))
    assert got["stop"] == MAX_STOP[client], got


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_cache_usage_identity_for_openai_clients(gw, upstream):
    got = openai_unary(openai_request(gw, UPSTREAMS[upstream],
                                      headers={"x-mock-cache-read": "5",
                                               "x-mock-cache-creation": "3"}))
    u = got["usage"]
    assert u["prompt_tokens_details"]["cached_tokens"] == 5, u
    assert u["prompt_tokens"] >= 8, u
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u


def test_cache_usage_identity_for_anthropic_clients(gw, mock):
    # What the OpenAI upstream reports for exactly the body the gateway sends it...
    sent = anthropic_unary(anthropic_request(gw, "mock-model",
                                             headers={"x-mock-echo-request": "1"}))["text"]
    direct = http_call(mock, "POST", "/v1/chat/completions", body=sent.encode(),
                       headers={"x-mock-cache-read": "5", "x-mock-cache-creation": "2"}).json()
    prompt = direct["usage"]["prompt_tokens"]
    # ...is what the Anthropic client sees, split: input_tokens excludes cached tokens.
    got = anthropic_unary(anthropic_request(gw, "mock-model",
                                            headers={"x-mock-cache-read": "5",
                                                     "x-mock-cache-creation": "2"}))
    u = got["usage"]
    assert u["cache_read_input_tokens"] == 5, u
    assert (u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"]
            == prompt), (u, direct["usage"])


def test_anthropic_upstream_gets_a_max_tokens_when_the_client_gave_none(gw):
    r = openai_unary(openai_request(gw, "claude-short", headers={"x-mock-echo-request": "1"}))
    sent = json.loads(r["text"])
    assert sent["max_tokens"] == 77, sent
    assert sent["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}]), sent
    assert [m["role"] for m in sent["messages"]] == ["user"], sent


def test_openai_upstream_gets_the_system_prompt_of_an_anthropic_client(gw):
    r = anthropic_unary(anthropic_request(gw, "mock-model", headers={"x-mock-echo-request": "1"}))
    sent = json.loads(r["text"])
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}, sent
    assert sent["model"] == "mock-model"
    assert sent["max_tokens"] == 100


def test_gemini_upstream_gets_the_model_in_the_path_and_contents(gw):
    r = openai_unary(openai_request(gw, "gemini-up", headers={"x-mock-echo-request": "1"}))
    sent = json.loads(r["text"])
    assert "model" not in sent, sent
    assert sent["contents"][0]["role"] == "user", sent
    assert sent["systemInstruction"]["parts"][0]["text"] == "Be brief.", sent


# ---- errors in each client's own shape -------------------------------------------------------


def test_unknown_model_errors_in_each_protocols_shape(gw):
    r = anthropic_request(gw, "no-such-model")
    assert r.status == 404, r
    b = r.json()
    assert b["type"] == "error" and b["error"]["type"] == "not_found_error", b
    r = gemini_request(gw, "no-such-model")
    assert r.status == 404, r
    assert r.json()["error"]["status"] == "NOT_FOUND", r
    r = openai_request(gw, "no-such-model")
    assert r.status == 404 and r.json()["error"]["code"] == "model_not_found", r


def test_bad_anthropic_request_gets_an_anthropic_400(gw):
    r = http_call(gw, "POST", "/v1/messages", json_body={"model": "mock-model", "max_tokens": 5})
    assert r.status == 400, r
    b = r.json()
    assert b["type"] == "error" and b["error"]["type"] == "invalid_request_error", b


@pytest.mark.parametrize("upstream", ["anthropic", "gemini"])
def test_upstream_4xx_is_translated_not_leaked(gw, upstream):
    r = anthropic_request(gw, UPSTREAMS[upstream], headers={"x-mock-status": "400"})
    assert r.status == 400, r
    b = r.json()
    assert b["type"] == "error" and b["error"]["type"] == "invalid_request_error", b
    r = openai_request(gw, UPSTREAMS[upstream], headers={"x-mock-status": "400"})
    assert r.status == 400, r
    assert set(r.json()["error"]) >= {"message", "type"}, r


@pytest.mark.parametrize("client", CLIENTS)
def test_error_mid_stream_ends_the_stream_in_the_clients_shape(gw, client):
    send = CLIENTS[client][0]
    res = send(gw, "claude-up", stream=True, headers={"x-mock-error-after": "2"})
    assert res.head.status == 200, res.head
    last = res.events[-1]
    if client == "openai":
        assert "error" in last.json(), last.raw
        assert all(not e.is_done for e in res.events)
    elif client == "anthropic":
        assert event_name(last) == "error" and last.json()["type"] == "error", last.raw
    else:
        assert "error" in last.json(), last.raw


COUNT_BODY = {"model": "claude-up", "system": "Be brief.",
              "messages": [{"role": "user", "content": "hello " * 40}]}
GEMINI_COUNT = {"contents": [{"role": "user", "parts": [{"text": "hello " * 40}]}]}


def mock_count(mock, path, body):
    """What the mock itself answers for a count request (the exact count behind the gateway)."""
    return http_call(mock, "POST", path, json_body=body).json()


@pytest.mark.parametrize("client,upstream", [("anthropic", "anthropic"), ("anthropic", "gemini"),
                                             ("gemini", "anthropic"), ("gemini", "gemini")])
def test_count_tokens_asks_upstreams_that_count(gw, mock, client, upstream):
    model = UPSTREAMS[upstream]
    if client == "anthropic":
        r = http_call(gw, "POST", "/v1/messages/count_tokens",
                      json_body={**COUNT_BODY, "model": model},
                      headers={"anthropic-version": "2023-06-01"})
        key = "input_tokens"
    else:
        r = http_call(gw, "POST", f"/v1beta/models/{model}:countTokens", json_body=GEMINI_COUNT)
        key = "totalTokens"
    assert r.status == 200, r
    assert r.header("x-sluice-token-count") == "exact", r
    # The upstream's own number (the mock counts text bytes), in the client's shape.
    text = ("Be brief." if client == "anthropic" else "") + "hello " * 40
    if upstream == "anthropic":
        expect = mock_count(mock, "/v1/messages/count_tokens",
                            {"model": "m", "messages": [{"role": "user", "content": text}]})
        assert r.json() == {key: expect["input_tokens"]}, r
    else:
        expect = mock_count(mock, "/v1beta/models/m:countTokens",
                            {"contents": [{"parts": [{"text": text}]}]})
        assert r.json() == {key: expect["totalTokens"]}, r


def test_count_tokens_with_a_whole_gemini_request_counts_its_system_instruction(gw):
    body = {"generateContentRequest": {"model": "models/claude-up",
                                       "systemInstruction": {"parts": [{"text": "x" * 400}]},
                                       **GEMINI_COUNT}}
    with_system = http_call(gw, "POST", "/v1beta/models/claude-up:countTokens", json_body=body)
    without = http_call(gw, "POST", "/v1beta/models/claude-up:countTokens", json_body=GEMINI_COUNT)
    assert with_system.status == 200 and without.status == 200, (with_system, without)
    assert with_system.json()["totalTokens"] > without.json()["totalTokens"] + 50


def test_count_tokens_is_an_estimate_for_upstreams_that_cannot_count(gw):
    r = http_call(gw, "POST", "/v1/messages/count_tokens",
                  json_body={**COUNT_BODY, "model": "mock-model"})
    assert r.status == 200, r
    assert r.json()["input_tokens"] > 10, r
    assert r.header("x-sluice-token-count") == "estimate"
    assert "cannot count" in r.header("x-sluice-token-count-reason")
    r = http_call(gw, "POST", "/v1beta/models/demo:countTokens", json_body=GEMINI_COUNT)
    assert r.status == 200 and r.json()["totalTokens"] >= 1, r
    assert r.header("x-sluice-token-count") == "estimate"


def test_count_tokens_falls_back_to_the_estimate_when_the_upstream_fails(gw):
    r = http_call(gw, "POST", "/v1/messages/count_tokens", json_body=COUNT_BODY,
                  headers={"x-mock-status": "503"})
    assert r.status == 200, r
    assert r.header("x-sluice-token-count") == "estimate"
    assert r.header("x-sluice-token-count-reason") == "no upstream could count"


def test_count_tokens_relays_an_upstream_refusal_in_the_clients_shape(gw):
    r = http_call(gw, "POST", "/v1/messages/count_tokens", json_body=COUNT_BODY,
                  headers={"x-mock-status": "400"})
    assert r.status == 400, r
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error", r
    r = http_call(gw, "POST", "/v1beta/models/claude-up:countTokens", json_body=GEMINI_COUNT,
                  headers={"x-mock-status": "400"})
    assert r.status == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT", r


@pytest.mark.parametrize("path,body,status", [
    ("/v1/messages/count_tokens", {"messages": [{"role": "user", "content": "hi"}]}, 400),
    ("/v1/messages/count_tokens", {"model": "claude-up"}, 400),
    ("/v1/messages/count_tokens", {"model": "nope", "messages": []}, 404),
    ("/v1beta/models/claude-up:countTokens", {"contents": [], "generateContentRequest": {}}, 400),
])
def test_count_tokens_refuses_bad_requests(gw, path, body, status):
    r = http_call(gw, "POST", path, json_body=body)
    assert r.status == status, r


def test_demo_model_answers_anthropic_and_gemini_clients(gw):
    assert anthropic_unary(anthropic_request(gw, "demo"))["text"]
    assert anthropic_stream(anthropic_request(gw, "demo", stream=True))["text"]
    assert gemini_unary(gemini_request(gw, "demo"))["text"]
    assert gemini_stream(gemini_request(gw, "demo", stream=True))["text"]


# ---- credentials the way each SDK sends them -------------------------------------------------


def test_each_protocols_key_header_is_accepted(tmp_path, mock):
    import os

    from conftest import SLUICE_BIN, Proc, require_binaries, sha

    key = "sk-translate-key"
    require_binaries(SLUICE_BIN)
    cfg = tmp_path / "auth.yaml"
    cfg.write_text(f"""server: {{listen: "127.0.0.1:0", threads: 1}}
admin: {{listen: "127.0.0.1:0"}}
auth:
  enabled: true
  keys:
    - {{name: k, key_sha256: "{sha(key)}"}}
routes:
  - model: mock-model
    targets: [{{provider: openai, base_url: "http://127.0.0.1:{mock.port}/v1"}}]
""")
    gw = Proc([str(SLUICE_BIN), "--config", str(cfg)], env=dict(os.environ), name="gw")
    try:
        r = anthropic_request(gw, "mock-model")
        assert r.status == 401 and r.json()["error"]["type"] == "authentication_error", r
        assert anthropic_request(gw, "mock-model", headers={"x-api-key": key}).status == 200
        assert anthropic_request(gw, "mock-model",
                                 headers={"Authorization": f"Bearer {key}"}).status == 200
        r = gemini_request(gw, "mock-model")
        assert r.status == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED", r
        assert gemini_request(gw, "mock-model", headers={"x-goog-api-key": key}).status == 200
        r = http_call(gw, "POST", f"/v1beta/models/mock-model:generateContent?key={key}",
                      json_body={"contents": [{"parts": [{"text": "hi"}]}]})
        assert r.status == 200, r
    finally:
        gw.stop()


# ---- reasoning signatures survive a round trip through any client format ---------------------


def test_anthropic_signature_round_trips_through_an_openai_client(gw):
    r = openai_request(gw, "claude-up", headers={"x-mock-thinking": "1"})
    assert r.status == 200, r
    msg = r.json()["choices"][0]["message"]
    assert msg["thinking_blocks"][0]["signature"] == "sig-mock-1", msg
    assert msg["reasoning_content"], msg
    # The next turn sends the assistant message back as the client got it (the carrier is
    # thinking_blocks); the Anthropic upstream must get its thinking block and signature back.
    body = {"model": "claude-up",
            "messages": [{"role": "user", "content": "hello"}, msg,
                         {"role": "user", "content": "and then?"}]}
    r2 = http_call(gw, "POST", "/v1/chat/completions", json_body=body,
                   headers={"x-mock-echo-request": "1"})
    sent = json.loads(r2.json()["choices"][0]["message"]["content"])
    first = sent["messages"][1]["content"][0]
    assert first["type"] == "thinking" and first["signature"] == "sig-mock-1", sent
    assert first["thinking"] == msg["thinking_blocks"][0]["thinking"], sent


def test_gemini_thought_signature_round_trips_through_an_anthropic_client(gw):
    r = anthropic_request(gw, "gemini-up", headers={"x-mock-thinking": "1"})
    assert r.status == 200, r
    content = r.json()["content"]
    signed = [b for b in content if b["type"] == "thinking" and b.get("signature")]
    assert signed and signed[0]["signature"] == "sig-mock-1", content
    body = {"model": "gemini-up", "max_tokens": 50,
            "messages": [{"role": "user", "content": "hello"},
                         {"role": "assistant", "content": content},
                         {"role": "user", "content": "and then?"}]}
    r2 = http_call(gw, "POST", "/v1/messages", json_body=body,
                   headers={"x-mock-echo-request": "1"})
    sent = json.loads(r2.json()["content"][-1]["text"])
    parts = sent["contents"][1]["parts"]
    assert any(p.get("thoughtSignature") == "sig-mock-1" for p in parts), sent


def test_stream_check_metric_is_exposed_when_on(gw):
    openai_request(gw, "claude-up", stream=True)
    text = http_call(gw.admin, "GET", "/metrics").body.decode()
    assert 'sluice_stream_invariant_violations_total{format="anthropic",rule="anthropic.' in text


def test_anthropic_headers_reach_anthropic_upstreams_only(gw):
    h = {"anthropic-beta": "tools-2024-04-04", "x-mock-echo-headers": "1",
         "x-api-key": "client-key-never-forwarded"}
    got = anthropic_unary(anthropic_request(gw, "claude-up", headers=h))["text"].lower()
    assert "anthropic-beta: tools-2024-04-04" in got, got
    assert "anthropic-version: 2023-06-01" in got, got
    assert "client-key-never-forwarded" not in got, got
    got = anthropic_unary(anthropic_request(gw, "mock-model", headers=h))["text"].lower()
    assert "anthropic-beta" not in got and "anthropic-version" not in got, got
    assert "client-key-never-forwarded" not in got, got
