"""sluice-mock's three wire formats (OpenAI, Anthropic Messages, Gemini) and the x-mock-*
translation scenarios, checked against docs/mock.md with no gateway involved.

Exact field names and event order matter: gateway translation tests assert against these shapes.
"""

import json

import pytest

from conftest import chat_body, http_call, stream_request

OPENAI_CHAT = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
GEMINI_MODEL = "gemini-2.5-flash"
GEMINI_UNARY = f"/v1beta/models/{GEMINI_MODEL}:generateContent"
GEMINI_STREAM = f"/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse"

ARGS = [{"city": "Paris", "n": i} for i in range(1, 4)]


def anthropic_body(stream=False, **extra) -> bytes:
    b = {"model": "claude-mock", "max_tokens": 100,
         "messages": [{"role": "user", "content": "hello"}]}
    if stream:
        b["stream"] = True
    b.update(extra)
    return json.dumps(b).encode()


def gemini_body(**extra) -> bytes:
    b = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    b.update(extra)
    return json.dumps(b).encode()


def prompt_tokens(body: bytes) -> int:
    return max(1, len(body) // 4)


def post(mock, path, body: bytes, headers=None):
    r = http_call(mock, "POST", path, body=body, headers=headers or {})
    return r


def named_events(res) -> list[tuple[str, dict]]:
    """(event name, data JSON) of each SSE event (Anthropic streams name every event)."""
    out = []
    for e in res.events:
        name = ""
        for line in e.raw.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
        out.append((name, json.loads(e.data)))
    return out


# --------------------------------------------------------------------------------------------
# OpenAI
# --------------------------------------------------------------------------------------------


def test_openai_unary_default(mock):
    body = chat_body()
    r = post(mock, OPENAI_CHAT, body, {"x-mock-tokens": "3"})
    assert r.status == 200, r
    j = r.json()
    assert j["object"] == "chat.completion"
    ch = j["choices"][0]
    assert ch["message"] == {"role": "assistant", "content": "w1 w2 w3"}
    assert ch["finish_reason"] == "stop"
    p = prompt_tokens(body)
    assert j["usage"] == {"prompt_tokens": p, "completion_tokens": 3, "total_tokens": p + 3}


@pytest.mark.parametrize("text_first", [False, True])
def test_openai_unary_tool_calls(mock, text_first):
    h = {"x-mock-tool-calls": "2", "x-mock-tokens": "2"}
    if text_first:
        h["x-mock-text-first"] = "1"
    j = post(mock, OPENAI_CHAT, chat_body(), h).json()
    ch = j["choices"][0]
    msg = ch["message"]
    assert msg["content"] == ("w1 w2" if text_first else None)
    assert [c["id"] for c in msg["tool_calls"]] == ["call_1", "call_2"]
    for i, c in enumerate(msg["tool_calls"], 1):
        assert c["type"] == "function"
        assert c["function"]["name"] == f"tool_{i}"
        assert json.loads(c["function"]["arguments"]) == {"city": "Paris", "n": i}
    assert ch["finish_reason"] == "tool_calls"


def test_openai_unary_thinking_and_cache(mock):
    body = chat_body()
    j = post(mock, OPENAI_CHAT, body, {"x-mock-thinking": "1", "x-mock-tokens": "2",
                                       "x-mock-cache-read": "100",
                                       "x-mock-cache-creation": "30"}).json()
    msg = j["choices"][0]["message"]
    assert msg["reasoning_content"] == "Let me think about it."
    assert msg["content"] == "w1 w2"
    u = j["usage"]
    p = prompt_tokens(body) + 130
    assert u["prompt_tokens"] == p
    assert u["prompt_tokens_details"] == {"cached_tokens": 100}
    assert u["completion_tokens"] == 2 + 5
    assert u["completion_tokens_details"] == {"reasoning_tokens": 5}
    assert u["total_tokens"] == p + 7


@pytest.mark.parametrize("stop,reason", [("end", "stop"), ("max_tokens", "length"),
                                         ("stop_sequence", "stop"),
                                         ("refusal", "content_filter")])
def test_openai_stop_reasons(mock, stop, reason):
    j = post(mock, OPENAI_CHAT, chat_body(), {"x-mock-stop": stop}).json()
    assert j["choices"][0]["finish_reason"] == reason
    res = stream_request(mock, chat_body(stream=True), headers={"x-mock-stop": stop})
    assert res.chunks()[-1]["choices"][0]["finish_reason"] == reason
    assert res.data[-1] == "[DONE]"


def test_openai_stream_tool_calls_in_pieces(mock):
    res = stream_request(mock, chat_body(stream=True), headers={
        "x-mock-tool-calls": "3", "x-mock-text-first": "1", "x-mock-tokens": "2",
        "x-mock-thinking": "1"})
    assert res.data[-1] == "[DONE]"
    deltas = [c["choices"][0]["delta"] for c in res.chunks()]
    assert deltas[0] == {"role": "assistant", "content": ""}
    # Order: reasoning, then text, then the calls.
    kinds = []
    for d in deltas[1:-1]:
        kind = next(iter(d))
        if not kinds or kinds[-1] != kind:
            kinds.append(kind)
    assert kinds == ["reasoning_content", "content", "tool_calls"], deltas
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Let me think about it."
    assert "".join(d.get("content") or "" for d in deltas) == "w1 w2 "
    calls: dict[int, dict] = {}
    pieces: dict[int, int] = {}
    for d in deltas:
        for tc in d.get("tool_calls", []):
            i = tc["index"]
            if "id" in tc:
                assert i not in calls, "a call is opened once"
                assert tc["type"] == "function" and tc["function"]["arguments"] == ""
                calls[i] = {"id": tc["id"], "name": tc["function"]["name"], "args": ""}
            else:
                assert set(tc) == {"index", "function"}, tc
                calls[i]["args"] += tc["function"]["arguments"]
                pieces[i] = pieces.get(i, 0) + 1
    assert sorted(calls) == [0, 1, 2]
    for i in range(3):
        assert calls[i]["id"] == f"call_{i + 1}" and calls[i]["name"] == f"tool_{i + 1}"
        assert json.loads(calls[i]["args"]) == ARGS[i]
        assert pieces[i] == 3
    last = res.chunks()[-1]["choices"][0]
    assert last["delta"] == {} and last["finish_reason"] == "tool_calls"


def test_openai_stream_usage_with_cache(mock):
    body = chat_body(stream=True, stream_options={"include_usage": True})
    res = stream_request(mock, body, headers={"x-mock-tokens": "4", "x-mock-cache-read": "8"})
    usage_chunk = res.chunks()[-1]
    assert usage_chunk["choices"] == []
    u = usage_chunk["usage"]
    assert u["prompt_tokens"] == prompt_tokens(body) + 8
    assert u["prompt_tokens_details"] == {"cached_tokens": 8}
    assert u["completion_tokens"] == 4


def test_openai_stream_error_after(mock):
    res = stream_request(mock, chat_body(stream=True),
                         headers={"x-mock-tokens": "5", "x-mock-error-after": "2"})
    assert res.head.status == 200
    assert "[DONE]" not in res.data
    chunks = [json.loads(d) for d in res.data]
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:3]] == ["w1 ", "w2 "]
    err = chunks[-1]
    assert set(err) == {"error"} and err["error"]["type"] == "server_error", err
    assert len(chunks) == 4  # role chunk, 2 deltas, error
    assert res.ended_by in ("eof-chunk", "close")


def test_openai_echo_request_and_headers(mock):
    body = chat_body(content="héllo \"quoted\" \u4e16\u754c" * 40)
    j = post(mock, OPENAI_CHAT, body, {"x-mock-echo-request": "1"}).json()
    assert j["choices"][0]["message"]["content"].encode() == body
    res = stream_request(mock, chat_body(stream=True, content="x" * 700),
                         headers={"x-mock-echo-request": "1"})
    assert res.content().encode() == chat_body(stream=True, content="x" * 700)
    j = post(mock, OPENAI_CHAT, chat_body(), {"x-mock-echo-headers": "1",
                                              "X-Custom-Thing": "Value 1"}).json()
    lines = j["choices"][0]["message"]["content"].split("\n")
    assert "x-custom-thing: Value 1" in lines
    assert "x-mock-echo-headers: 1" in lines


# --------------------------------------------------------------------------------------------
# Anthropic
# --------------------------------------------------------------------------------------------


def test_anthropic_unary_default(mock):
    body = anthropic_body()
    r = post(mock, ANTHROPIC, body, {"x-mock-tokens": "3"})
    assert r.status == 200, r
    j = r.json()
    assert list(j) == ["id", "type", "role", "model", "content", "stop_reason", "stop_sequence",
                       "usage"]
    assert j["id"].startswith("msg_") and j["type"] == "message" and j["role"] == "assistant"
    assert j["model"] == "claude-mock"
    assert j["content"] == [{"type": "text", "text": "w1 w2 w3"}]
    assert j["stop_reason"] == "end_turn" and j["stop_sequence"] is None
    assert j["usage"] == {"input_tokens": prompt_tokens(body), "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": 0, "output_tokens": 3}


@pytest.mark.parametrize("text_first", [False, True])
def test_anthropic_unary_thinking_tools(mock, text_first):
    h = {"x-mock-tool-calls": "2", "x-mock-thinking": "1", "x-mock-tokens": "2"}
    if text_first:
        h["x-mock-text-first"] = "1"
    j = post(mock, ANTHROPIC, anthropic_body(), h).json()
    expected = [{"type": "thinking", "thinking": "Let me think about it.",
                 "signature": "sig-mock-1"}]
    if text_first:
        expected.append({"type": "text", "text": "w1 w2"})
    expected += [{"type": "tool_use", "id": f"toolu_{i}", "name": f"tool_{i}",
                  "input": ARGS[i - 1]} for i in (1, 2)]
    assert j["content"] == expected
    assert j["stop_reason"] == "tool_use"
    assert j["usage"]["output_tokens"] == 2 + 5


@pytest.mark.parametrize("stop,reason,seq", [("end", "end_turn", None),
                                             ("max_tokens", "max_tokens", None),
                                             ("stop_sequence", "stop_sequence", "END"),
                                             ("refusal", "refusal", None)])
def test_anthropic_stop_reasons(mock, stop, reason, seq):
    j = post(mock, ANTHROPIC, anthropic_body(), {"x-mock-stop": stop}).json()
    assert (j["stop_reason"], j["stop_sequence"]) == (reason, seq)
    res = stream_request(mock, anthropic_body(stream=True), path=ANTHROPIC,
                         headers={"x-mock-stop": stop})
    ev = dict(named_events(res))
    assert ev["message_delta"]["delta"] == {"stop_reason": reason, "stop_sequence": seq}


def test_anthropic_cache_usage(mock):
    body = anthropic_body()
    h = {"x-mock-cache-read": "100", "x-mock-cache-creation": "30", "x-mock-tokens": "2"}
    j = post(mock, ANTHROPIC, body, h).json()
    assert j["usage"] == {"input_tokens": prompt_tokens(body), "cache_creation_input_tokens": 30,
                          "cache_read_input_tokens": 100, "output_tokens": 2}
    res = stream_request(mock, anthropic_body(stream=True), path=ANTHROPIC, headers=h)
    ev = named_events(res)
    start = ev[0][1]["message"]
    assert start["usage"]["cache_read_input_tokens"] == 100
    assert start["usage"]["cache_creation_input_tokens"] == 30
    assert dict(ev)["message_delta"]["usage"] == {"output_tokens": 2}


def test_anthropic_stream_default_event_order(mock):
    res = stream_request(mock, anthropic_body(stream=True), path=ANTHROPIC,
                         headers={"x-mock-tokens": "3"})
    assert res.head.status == 200
    assert res.head.header("content-type").startswith("text/event-stream")
    ev = named_events(res)
    assert [n for n, _ in ev] == ["message_start", "content_block_start", "ping",
                                  "content_block_delta", "content_block_delta",
                                  "content_block_delta", "content_block_stop", "message_delta",
                                  "message_stop"]
    for name, data in ev:
        assert data["type"] == name
    msg = ev[0][1]["message"]
    assert msg["content"] == [] and msg["stop_reason"] is None and msg["role"] == "assistant"
    assert ev[1][1] == {"type": "content_block_start", "index": 0,
                        "content_block": {"type": "text", "text": ""}}
    assert [d["delta"] for _, d in ev[3:6]] == [{"type": "text_delta", "text": f"w{i} "}
                                                for i in (1, 2, 3)]
    assert ev[6][1] == {"type": "content_block_stop", "index": 0}
    assert ev[7][1]["usage"] == {"output_tokens": 3}


def test_anthropic_stream_thinking_text_tools(mock):
    res = stream_request(mock, anthropic_body(stream=True), path=ANTHROPIC, headers={
        "x-mock-tool-calls": "2", "x-mock-text-first": "1", "x-mock-thinking": "1",
        "x-mock-tokens": "2"})
    ev = named_events(res)
    names = [n for n, _ in ev]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    blocks: dict[int, dict] = {}
    order = []
    for name, d in ev:
        if name == "content_block_start":
            blocks[d["index"]] = {"start": d["content_block"], "deltas": [], "stopped": False}
            order.append(d["index"])
        elif name == "content_block_delta":
            assert not blocks[d["index"]]["stopped"]
            blocks[d["index"]]["deltas"].append(d["delta"])
        elif name == "content_block_stop":
            blocks[d["index"]]["stopped"] = True
    assert order == [0, 1, 2, 3]
    assert all(b["stopped"] for b in blocks.values())
    think = blocks[0]
    assert think["start"] == {"type": "thinking", "thinking": ""}
    assert [x["type"] for x in think["deltas"]] == ["thinking_delta", "thinking_delta",
                                                    "signature_delta"]
    assert "".join(x.get("thinking", "") for x in think["deltas"]) == "Let me think about it."
    assert think["deltas"][-1]["signature"] == "sig-mock-1"
    assert blocks[1]["start"] == {"type": "text", "text": ""}
    assert "".join(x["text"] for x in blocks[1]["deltas"]) == "w1 w2 "
    for i in (1, 2):
        b = blocks[i + 1]
        assert b["start"] == {"type": "tool_use", "id": f"toolu_{i}", "name": f"tool_{i}",
                              "input": {}}
        assert [x["type"] for x in b["deltas"]] == ["input_json_delta"] * 3
        assert json.loads("".join(x["partial_json"] for x in b["deltas"])) == ARGS[i - 1]
    assert dict(ev)["message_delta"]["delta"]["stop_reason"] == "tool_use"


def test_anthropic_stream_error_after(mock):
    res = stream_request(mock, anthropic_body(stream=True), path=ANTHROPIC,
                         headers={"x-mock-tokens": "5", "x-mock-error-after": "2"})
    ev = named_events(res)
    assert [n for n, _ in ev] == ["message_start", "content_block_start", "ping",
                                  "content_block_delta", "content_block_delta", "error"]
    assert ev[-1][1] == {"type": "error", "error": {"type": "overloaded_error",
                                                    "message": "Overloaded"}}
    assert res.ended_by in ("eof-chunk", "close")


def test_anthropic_stream_error_after_all_deltas_precedes_stop(mock):
    res = stream_request(mock, anthropic_body(stream=True), path=ANTHROPIC,
                         headers={"x-mock-tokens": "2", "x-mock-error-after": "99"})
    names = [n for n, _ in named_events(res)]
    assert names[-2:] == ["content_block_stop", "error"], names


def test_anthropic_echo_request(mock):
    body = anthropic_body(stream=True, system="be terse \u00e9")
    res = stream_request(mock, body, path=ANTHROPIC, headers={"x-mock-echo-request": "1"})
    text = "".join(d["delta"]["text"] for n, d in named_events(res)
                   if n == "content_block_delta")
    assert text.encode() == body
    j = post(mock, ANTHROPIC, anthropic_body(), {"x-mock-echo-headers": "1",
                                                 "anthropic-version": "2023-06-01"}).json()
    assert "anthropic-version: 2023-06-01" in j["content"][0]["text"].split("\n")


def test_anthropic_count_tokens(mock):
    body = {"model": "claude-mock", "system": "You are terse.",
            "messages": [{"role": "user", "content": "hello world"},
                         {"role": "assistant", "content": [{"type": "text", "text": "hi there"}]}]}
    r = http_call(mock, "POST", "/v1/messages/count_tokens", json_body=body)
    assert r.status == 200, r
    assert r.json() == {"input_tokens": (14 + 11 + 8 + 3) // 4}


@pytest.mark.parametrize("status,etype", [(400, "invalid_request_error"),
                                          (401, "authentication_error"),
                                          (429, "rate_limit_error"), (500, "api_error"),
                                          (529, "overloaded_error")])
def test_anthropic_status_error_shape(mock, status, etype):
    r = post(mock, ANTHROPIC, anthropic_body(), {"x-mock-status": str(status)})
    assert r.status == status
    assert r.json() == {"type": "error", "error": {"type": etype,
                                                   "message": f"mock error {status}"}}


def test_anthropic_invalid_request(mock):
    body = json.dumps({"model": "claude-mock", "messages": []}).encode()
    r = post(mock, ANTHROPIC, body)
    assert r.status == 400
    j = r.json()
    assert j["type"] == "error" and j["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in j["error"]["message"]


def test_anthropic_drop_after_fault(mock):
    res = stream_request(mock, anthropic_body(stream=True), path=ANTHROPIC,
                         headers={"x-mock-tokens": "5", "x-mock-fault": "drop-after:2"})
    names = [n for n, _ in named_events(res)]
    assert names.count("content_block_delta") == 2 and "message_stop" not in names
    assert res.ended_by != "eof-chunk"


# --------------------------------------------------------------------------------------------
# Gemini
# --------------------------------------------------------------------------------------------


def test_gemini_unary_default(mock):
    body = gemini_body()
    r = post(mock, GEMINI_UNARY, body, {"x-mock-tokens": "3"})
    assert r.status == 200, r
    j = r.json()
    assert list(j) == ["candidates", "usageMetadata", "modelVersion", "responseId"]
    assert j["candidates"] == [{"content": {"parts": [{"text": "w1 w2 w3"}], "role": "model"},
                                "finishReason": "STOP", "index": 0}]
    p = prompt_tokens(body)
    assert j["usageMetadata"] == {"promptTokenCount": p, "candidatesTokenCount": 3,
                                  "totalTokenCount": p + 3}
    assert j["modelVersion"] == GEMINI_MODEL


@pytest.mark.parametrize("text_first", [False, True])
def test_gemini_unary_thinking_tools(mock, text_first):
    h = {"x-mock-tool-calls": "2", "x-mock-thinking": "1", "x-mock-tokens": "2"}
    if text_first:
        h["x-mock-text-first"] = "1"
    j = post(mock, GEMINI_UNARY, gemini_body(), h).json()
    parts = j["candidates"][0]["content"]["parts"]
    expected = [{"text": "Let me think about it.", "thought": True,
                 "thoughtSignature": "sig-mock-1"}]
    if text_first:
        expected.append({"text": "w1 w2"})
    expected += [{"functionCall": {"name": f"tool_{i}", "args": ARGS[i - 1]}} for i in (1, 2)]
    assert parts == expected
    assert j["candidates"][0]["finishReason"] == "STOP"
    assert j["usageMetadata"]["thoughtsTokenCount"] == 5


@pytest.mark.parametrize("stop,reason", [("end", "STOP"), ("max_tokens", "MAX_TOKENS"),
                                         ("stop_sequence", "STOP"), ("refusal", "SAFETY")])
def test_gemini_stop_reasons(mock, stop, reason):
    j = post(mock, GEMINI_UNARY, gemini_body(), {"x-mock-stop": stop}).json()
    assert j["candidates"][0]["finishReason"] == reason
    res = stream_request(mock, gemini_body(), path=GEMINI_STREAM, headers={"x-mock-stop": stop})
    assert res.chunks()[-1]["candidates"][0]["finishReason"] == reason


def test_gemini_cache_usage(mock):
    body = gemini_body()
    j = post(mock, GEMINI_UNARY, body, {"x-mock-cache-read": "100", "x-mock-cache-creation": "30",
                                        "x-mock-tokens": "2"}).json()
    p = prompt_tokens(body) + 100
    assert j["usageMetadata"] == {"promptTokenCount": p, "candidatesTokenCount": 2,
                                  "totalTokenCount": p + 2, "cachedContentTokenCount": 100}


def test_gemini_stream_chunks(mock):
    res = stream_request(mock, gemini_body(), path=GEMINI_STREAM, headers={
        "x-mock-tokens": "2", "x-mock-thinking": "1", "x-mock-tool-calls": "2",
        "x-mock-text-first": "1"})
    assert res.head.status == 200
    assert res.head.header("content-type").startswith("text/event-stream")
    assert all(not e.raw.startswith("event:") for e in res.events)
    chunks = [json.loads(d) for d in res.data]  # every event is JSON: no [DONE]
    parts = [c["candidates"][0]["content"]["parts"] for c in chunks]
    assert parts == [[{"text": "Let me think about it.", "thought": True,
                       "thoughtSignature": "sig-mock-1"}],
                     [{"text": "w1 "}], [{"text": "w2 "}],
                     [{"functionCall": {"name": "tool_1", "args": ARGS[0]}}],
                     [{"functionCall": {"name": "tool_2", "args": ARGS[1]}}]]
    for c in chunks[:-1]:
        assert "finishReason" not in c["candidates"][0] and "usageMetadata" not in c
        assert c["candidates"][0]["content"]["role"] == "model"
    last = chunks[-1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"]["candidatesTokenCount"] == 2
    assert last["usageMetadata"]["thoughtsTokenCount"] == 5
    assert len({c["responseId"] for c in chunks}) == 1


def test_gemini_stream_without_alt_sse_is_json_array(mock):
    r = post(mock, f"/v1beta/models/{GEMINI_MODEL}:streamGenerateContent", gemini_body(),
             {"x-mock-tokens": "3"})
    assert r.status == 200 and r.header("content-type").startswith("application/json")
    arr = r.json()
    assert isinstance(arr, list) and len(arr) == 3
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in arr) == "w1 w2 w3 "
    assert arr[-1]["candidates"][0]["finishReason"] == "STOP"


def test_gemini_stream_error_after(mock):
    res = stream_request(mock, gemini_body(), path=GEMINI_STREAM,
                         headers={"x-mock-tokens": "5", "x-mock-error-after": "2"})
    chunks = [json.loads(d) for d in res.data]
    assert len(chunks) == 3
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks[:2]] == \
        ["w1 ", "w2 "]
    assert chunks[-1] == {"error": {"code": 503, "message": chunks[-1]["error"]["message"],
                                    "status": "UNAVAILABLE"}}
    assert res.ended_by in ("eof-chunk", "close")


def test_gemini_echo(mock):
    body = gemini_body(systemInstruction={"parts": [{"text": "sys"}]})
    res = stream_request(mock, body, path=GEMINI_STREAM, headers={"x-mock-echo-request": "1"})
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in res.chunks())
    assert text.encode() == body
    j = post(mock, GEMINI_UNARY, gemini_body(), {"x-mock-echo-headers": "1",
                                                 "X-Goog-Api-Key": "k1"}).json()
    assert "x-goog-api-key: k1" in j["candidates"][0]["content"]["parts"][0]["text"].split("\n")


def test_gemini_count_tokens(mock):
    r = post(mock, f"/v1beta/models/{GEMINI_MODEL}:countTokens",
             gemini_body(contents=[{"role": "user", "parts": [{"text": "hello world, again"}]}]))
    assert r.status == 200, r
    assert r.json() == {"totalTokens": (18 + 3) // 4}


@pytest.mark.parametrize("status,gstatus", [(400, "INVALID_ARGUMENT"), (403, "PERMISSION_DENIED"),
                                            (429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"),
                                            (503, "UNAVAILABLE")])
def test_gemini_status_error_shape(mock, status, gstatus):
    r = post(mock, GEMINI_UNARY, gemini_body(), {"x-mock-status": str(status)})
    assert r.status == status
    assert r.json() == {"error": {"code": status, "message": f"mock error {status}",
                                  "status": gstatus}}


def test_gemini_invalid_request(mock):
    r = post(mock, GEMINI_UNARY, b'{"generationConfig":{}}')
    assert r.status == 400
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT"


# --------------------------------------------------------------------------------------------
# Shared behaviour
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path,body", [(ANTHROPIC, anthropic_body(stream=True)),
                                       (GEMINI_STREAM, gemini_body())])
def test_paced_streams_of_new_formats_complete(mock, path, body):
    res = stream_request(mock, body, path=path, headers={"x-mock-itl-ms": "20",
                                                         "x-mock-ttft-ms": "20",
                                                         "x-mock-tokens": "4"})
    assert res.head.status == 200
    if path == ANTHROPIC:
        ev = named_events(res)
        assert [d["delta"]["text"] for n, d in ev if n == "content_block_delta"] == \
            ["w1 ", "w2 ", "w3 ", "w4 "]
        assert ev[-1][0] == "message_stop"
    else:
        chunks = res.chunks()
        assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks] == \
            ["w1 ", "w2 ", "w3 ", "w4 "]
        assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_last_records_new_formats(mock):
    post(mock, GEMINI_UNARY, gemini_body(), {"x-goog-api-key": "k"})
    last = mock.last()
    assert last["path"] == GEMINI_UNARY and last["headers"]["x-goog-api-key"] == "k"
    assert last["body"].encode() == gemini_body()
