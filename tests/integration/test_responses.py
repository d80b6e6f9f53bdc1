"""The OpenAI Responses API (POST/GET/DELETE /v1/responses, input_items) and Conversations API
(/v1/conversations and their items) on the gateway, against the demo model and sluice-mock
speaking OpenAI chat, Anthropic Messages and Gemini (the gateway translates).

What reached the upstream is read back with the mock's `x-mock-echo-request: 1` (the answer text
is the exact upstream request body): that is how these tests prove that `previous_response_id`
and `conversation` replay the earlier turns. Stored state is exercised on the three `state`
backends: memory (default), SQLite (survives SIGKILL) and Redis (shared by two instances).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import (ConfigStarter, SLUICE_BIN, UPSTREAM_KEY, Gateway, Proc, RawHttp, assert_error_shape,
                      build_request, http_call, parse_sse, render_config,
                      require_binaries, sha, stream_request)

RESPONSES = "/v1/responses"
CONVERSATIONS = "/v1/conversations"

# Routes added to conftest's (mock-model, "mock-*", demo, dead): the mock in the other formats.
ROUTES = """\
  - model: claude-up
    targets: [{provider: anthropic, forward_headers: ["x-mock-*"], base_url: "{MOCK_ROOT}", model: claude-mock}]
  - model: gemini-up
    targets: [{provider: gemini, forward_headers: ["x-mock-*"], base_url: "{MOCK_ROOT}/v1beta", model: gemini-mock}]
"""

# upstream format → the model routed to it
FORMATS = {"openai": "mock-model", "anthropic": "claude-up", "gemini": "gemini-up"}

DEMO_PREFIX = "Hello from Sluice's built-in demo model, answering offline. "

RESPONSE_KEYS = {"id", "object", "created_at", "status", "model", "output", "usage",
                 "previous_response_id", "store", "instructions", "tools", "tool_choice",
                 "temperature", "top_p", "max_output_tokens", "metadata", "conversation",
                 "incomplete_details", "error"}

TOOL = {"type": "function", "name": "tool_1", "description": "The weather in a city",
        "parameters": {"type": "object",
                       "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
                       "required": ["city", "n"]}}
TOOL_2 = {**TOOL, "name": "tool_2", "description": "Another tool"}


# ---- gateways --------------------------------------------------------------------------------


@pytest.fixture
def start(mock, tmp_path):
    s = ConfigStarter(mock, tmp_path, ROUTES)
    yield s
    s.stop_all()


@pytest.fixture
def gw(start) -> Gateway:
    return start()


# ---- requests --------------------------------------------------------------------------------


def create(gw, body: dict, headers: dict | None = None):
    return http_call(gw, "POST", RESPONSES, json_body=body, headers=headers, timeout=15)


def get(gw, path: str, headers: dict | None = None):
    return http_call(gw, "GET", path, headers=headers)


def delete(gw, path: str, headers: dict | None = None):
    return http_call(gw, "DELETE", path, headers=headers)


def ok(r, status: str = "completed", model: str | None = None) -> dict:
    """A 200 whose body is a valid Response object with that status."""
    assert r.status == 200, r
    assert (r.header("content-type") or "").startswith("application/json"), r
    b = r.json()
    check_response(b, status, model)
    return b


def respond(gw, body: dict, headers: dict | None = None, **kw) -> dict:
    return ok(create(gw, body, headers), model=body.get("model"), **kw)


def stream(gw, body: dict, headers: dict | None = None, timeout: float = 15.0):
    return stream_request(gw, json.dumps({**body, "stream": True}).encode(), path=RESPONSES,
                          headers=headers, timeout=timeout)


def tokens(n: int) -> dict:
    return {"x-mock-tokens": str(n)}


ECHO = {"x-mock-echo-request": "1"}


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


# ---- what a Response object must look like ---------------------------------------------------


def check_part(part: dict, text: str | None = None):
    assert part["type"] == "output_text", part
    assert isinstance(part["text"], str), part
    assert part["annotations"] == [], part
    if text is not None:
        assert part["text"] == text, part


def check_item(item: dict, statuses: tuple = ("completed",)):
    """An output item: a message or a function_call whose status is one of `statuses`
    (("in_progress",) for the item of response.output_item.added)."""
    assert item.get("status") in statuses, (item, statuses)
    done = item["status"] == "completed"
    if item["type"] == "message":
        assert re.fullmatch(r"msg_[A-Za-z0-9_-]+", item["id"]), item
        assert item["role"] == "assistant", item
        assert isinstance(item["content"], list), item
        if done:
            assert item["content"], item
        for part in item["content"]:
            check_part(part)
    elif item["type"] == "function_call":
        assert re.fullmatch(r"fc_[A-Za-z0-9_-]+", item["id"]), item
        assert isinstance(item["call_id"], str) and item["call_id"], item
        assert isinstance(item["name"], str) and item["name"], item
        assert isinstance(item["arguments"], str), item
        if done:
            assert isinstance(json.loads(item["arguments"]), dict), item
    else:
        raise AssertionError(f"unexpected output item type: {item}")


# Item statuses a finished Response of each status may hold (an answer cut by max tokens may
# mark its last item incomplete; a failed one may keep a partial item).
ITEM_STATUSES = {"completed": ("completed",), "incomplete": ("completed", "incomplete"),
                 "failed": ("completed", "incomplete", "in_progress", "failed")}


def check_usage(u: dict):
    for k in ("input_tokens", "output_tokens", "total_tokens"):
        assert isinstance(u[k], int) and u[k] >= 0, u
    assert u["total_tokens"] == u["input_tokens"] + u["output_tokens"], u
    cached = u["input_tokens_details"]["cached_tokens"]
    reasoning = u["output_tokens_details"]["reasoning_tokens"]
    assert isinstance(cached, int) and 0 <= cached <= u["input_tokens"], u
    assert isinstance(reasoning, int) and 0 <= reasoning <= u["output_tokens"], u


def check_response(b: dict, status: str = "completed", model: str | None = None):
    missing = RESPONSE_KEYS - set(b)
    assert not missing, f"Response object lacks {sorted(missing)}: {b}"
    assert re.fullmatch(r"resp_[A-Za-z0-9_-]+", b["id"]), b
    assert b["object"] == "response", b
    assert isinstance(b["created_at"], int) and abs(b["created_at"] - time.time()) < 600, b
    assert b["status"] == status, b
    if model is not None:
        assert b["model"] == model, b
    assert isinstance(b["output"], list), b
    for item in b["output"]:
        check_item(item, ITEM_STATUSES[status])
    assert isinstance(b["store"], bool), b
    assert b["conversation"] is None or (isinstance(b["conversation"], dict)
                                         and b["conversation"]["id"].startswith("conv_")), b
    if status == "failed":
        assert isinstance(b["error"], dict) and b["error"].get("message"), b
    else:
        assert b["error"] is None, b
        check_usage(b["usage"])
        assert b["output"], b
    if status == "incomplete":
        assert b["incomplete_details"] == {"reason": "max_output_tokens"}, b
    elif status == "completed":
        assert b["incomplete_details"] is None, b


def output_text(b: dict) -> str:
    return "".join(p["text"] for it in b["output"] if it["type"] == "message"
                   for p in it["content"] if p["type"] == "output_text")


def echoed(b: dict) -> dict:
    """The upstream request body, from an answer to `x-mock-echo-request: 1`."""
    text = output_text(b)
    try:
        return json.loads(text)
    except ValueError:
        raise AssertionError(f"the answer is not an echoed request body: {text[:500]!r}") from None


def item_text(item: dict) -> str:
    c = item["content"]
    if isinstance(c, str):
        return c
    return "".join(p.get("text", "") for p in c)


def check_not_found_previous(r):
    assert r.status == 404, r
    assert (r.header("content-type") or "").startswith("application/json"), r
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error", err
    assert err["param"] == "previous_response_id", err
    assert err["code"] == "previous_response_not_found", err
    assert isinstance(err["message"], str) and err["message"], err


# ---- the Responses stream --------------------------------------------------------------------


def sse_events(res) -> list[tuple[str, dict]]:
    """The stream as (event name, data): every block must be one `event: NAME` line and
    `data: JSON` (no `[DONE]`, nothing after the last blank line)."""
    out = []
    for ev in res.events:
        assert not ev.data.startswith("<incomplete>"), f"unterminated event: {ev.raw!r}"
        assert ev.data != "[DONE]", "the Responses stream has no [DONE]"
        names = [ln[len("event:"):].strip() for ln in ev.raw.split("\n")
                 if ln.startswith("event:")]
        assert len(names) == 1, f"want exactly one event: line: {ev.raw!r}"
        try:
            data = json.loads(ev.data)
        except ValueError:
            raise AssertionError(f"data is not JSON: {ev.raw!r}") from None
        out.append((names[0], data))
    return out


TERMINAL = {"response.completed": "completed", "response.incomplete": "incomplete",
            "response.failed": "failed"}


def check_stream(res, final: str = "response.completed", model: str | None = None):
    """Checks the event grammar of a Responses stream; returns
    (events, names, response (the terminal event's), items, deltas per item, text)."""
    assert res.head.status == 200, res.head
    assert (res.head.header("content-type") or "").startswith("text/event-stream"), res.head
    assert res.ended_by in ("eof-chunk", "close"), res.ended_by
    evs = sse_events(res)
    names = [n for n, _ in evs]
    assert len(evs) >= 3, names
    for n, d in evs:
        assert d.get("type") == n, (n, d)
    assert [d.get("sequence_number") for _, d in evs] == list(range(len(evs))), names
    assert names[:2] == ["response.created", "response.in_progress"], names
    assert names[-1] == final, names
    assert [n for n in names if n in TERMINAL] == [final], names
    ids = {d["response"]["id"] for _, d in evs if "response" in d}
    assert len(ids) == 1, f"events carry several response ids: {ids}"
    created = evs[0][1]["response"]
    assert created["object"] == "response" and created["status"] == "in_progress", created
    assert created["output"] == [], created
    assert evs[1][1]["response"]["status"] == "in_progress", evs[1]
    done = evs[-1][1]["response"]
    check_response(done, TERMINAL[final], model)
    assert done["created_at"] == created["created_at"], (created, done)

    items, deltas, cur = [], [], None
    for n, d in evs[2:-1]:
        if n == "response.output_item.added":
            assert cur is None, f"{n} while item {cur} is open"
            assert d["output_index"] == len(items), d
            item = d["item"]
            check_item(item, ("in_progress",))
            if item["type"] == "message":
                assert item["content"] == [], d
            else:
                assert item["arguments"] == "", d
            cur = {"item": item, "index": d["output_index"], "phase": "added", "deltas": []}
            continue
        assert cur is not None, f"{n} outside an output item: {d}"
        item = cur["item"]
        if n != "response.output_item.done":
            assert d["item_id"] == item["id"], (d, item)
        assert d["output_index"] == cur["index"], (d, cur)
        if n == "response.content_part.added":
            assert item["type"] == "message" and cur["phase"] == "added", (n, cur)
            assert d["content_index"] == 0, d
            check_part(d["part"], "")
            cur["phase"] = "part"
        elif n == "response.output_text.delta":
            assert cur["phase"] == "part", (n, cur)
            assert d["content_index"] == 0, d
            assert isinstance(d["delta"], str) and d["delta"], d
            cur["deltas"].append(d["delta"])
        elif n == "response.output_text.done":
            assert cur["phase"] == "part", (n, cur)
            assert d["content_index"] == 0, d
            assert d["text"] == "".join(cur["deltas"]), (d, cur["deltas"])
            cur["phase"] = "text_done"
        elif n == "response.content_part.done":
            assert cur["phase"] == "text_done", (n, cur)
            assert d["content_index"] == 0, d
            check_part(d["part"], "".join(cur["deltas"]))
            cur["phase"] = "part_done"
        elif n == "response.function_call_arguments.delta":
            assert item["type"] == "function_call" and cur["phase"] == "added", (n, cur)
            assert isinstance(d["delta"], str) and d["delta"], d
            cur["deltas"].append(d["delta"])
        elif n == "response.function_call_arguments.done":
            assert item["type"] == "function_call" and cur["phase"] == "added", (n, cur)
            assert d["arguments"] == "".join(cur["deltas"]), (d, cur["deltas"])
            cur["phase"] = "args_done"
        elif n == "response.output_item.done":
            final_item = d["item"]
            check_item(final_item, ITEM_STATUSES[TERMINAL[final]])
            assert final_item["id"] == item["id"] and final_item["type"] == item["type"], d
            joined = "".join(cur["deltas"])
            if item["type"] == "message":
                assert cur["phase"] == "part_done", (n, cur)
                assert len(final_item["content"]) == 1, final_item
                check_part(final_item["content"][0], joined)
            else:
                assert cur["phase"] == "args_done", (n, cur)
                assert final_item["arguments"] == joined, (final_item, joined)
                assert (final_item["call_id"], final_item["name"]) == (item["call_id"],
                                                                       item["name"]), d
            items.append(final_item)
            deltas.append(cur["deltas"])
            cur = None
        else:
            raise AssertionError(f"unexpected event {n}: {d}")
    if final != "response.failed":
        assert cur is None, f"item left open: {cur}"
        assert done["output"] == items, (done["output"], items)
    return SimpleNamespace(events=evs, names=names, response=done, items=items, deltas=deltas,
                           text="".join(p["text"] for it in items if it["type"] == "message"
                                        for p in it["content"]))


# ---- what the upstream received (from an echoed request body) --------------------------------


def _texts(content) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content] if content else []
    return [p["text"] for p in content if p.get("type") in ("text", "input_text", "output_text")
            and p.get("text")]


def upstream_turns(fmt: str, sent: dict) -> list[tuple]:
    """The upstream body as a list of ("system"|"user"|"assistant", text),
    ("tool_call", id, name, args dict) and ("tool_result", id or name, text), in order."""
    out: list[tuple] = []
    if fmt == "openai":
        for m in sent["messages"]:
            role = {"developer": "system"}.get(m["role"], m["role"])
            if role == "tool":
                out.append(("tool_result", m.get("tool_call_id"),
                            "".join(_texts(m.get("content")))))
                continue
            for t in _texts(m.get("content")):
                out.append((role, t))
            for tc in m.get("tool_calls") or []:
                out.append(("tool_call", tc["id"], tc["function"]["name"],
                            json.loads(tc["function"]["arguments"] or "{}")))
    elif fmt == "anthropic":
        system = sent.get("system")
        for t in _texts(system):
            out.append(("system", t))
        for m in sent["messages"]:
            c = m["content"]
            if isinstance(c, str):
                out.append((m["role"], c))
                continue
            for b in c:
                if b["type"] == "text":
                    out.append((m["role"], b["text"]))
                elif b["type"] == "tool_use":
                    out.append(("tool_call", b["id"], b["name"], b["input"]))
                elif b["type"] == "tool_result":
                    out.append(("tool_result", b["tool_use_id"], "".join(_texts(b.get("content")))))
    elif fmt == "gemini":
        for p in (sent.get("systemInstruction") or {}).get("parts", []):
            if p.get("text"):
                out.append(("system", p["text"]))
        for c in sent["contents"]:
            role = "assistant" if c.get("role") == "model" else "user"
            for p in c["parts"]:
                if "functionCall" in p:
                    fc = p["functionCall"]
                    out.append(("tool_call", fc.get("id"), fc["name"], fc.get("args", {})))
                elif "functionResponse" in p:
                    fr = p["functionResponse"]
                    out.append(("tool_result", fr.get("id") or fr["name"],
                                json.dumps(fr.get("response"))))
                elif p.get("text") and not p.get("thought"):
                    out.append((role, p["text"]))
    else:
        raise AssertionError(fmt)
    return out


def _merged(pairs) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for role, text in pairs:
        if out and out[-1][0] == role:
            out[-1][1].append(text)
        else:
            out.append((role, [text]))
    return out


def assert_history(fmt: str, sent: dict, expected: list[tuple[str, str]]):
    """The upstream's text turns are `expected` (role, text), in order. Consecutive turns of one
    role may reach the upstream as one message; then each expected text must appear in it, in
    order. Otherwise the texts must be equal."""
    turns = [t for t in upstream_turns(fmt, sent) if t[0] in ("system", "user", "assistant")]
    got, want = _merged(turns), _merged(expected)
    assert [r for r, _ in got] == [r for r, _ in want], (got, want, sent)
    for (role, gp), (_, wp) in zip(got, want):
        if len(gp) == len(wp):
            assert gp == wp, (role, gp, wp, sent)
            continue
        text, pos = "\n".join(gp), 0
        for piece in wp:
            i = text.find(piece, pos)
            assert i >= 0, f"{role} turn lacks {piece!r} (in order): {gp} / {sent}"
            pos = i + len(piece)


# =============================================================================================
# Unary and streamed answers
# =============================================================================================


def test_unary_on_the_demo_model(gw):
    b = respond(gw, {"model": "demo", "input": "hello there"})
    assert len(b["output"]) == 1 and b["output"][0]["type"] == "message", b
    assert output_text(b).startswith(DEMO_PREFIX + 'You said: "hello there".'), b
    assert b["store"] is True and b["previous_response_id"] is None, b
    assert b["conversation"] is None, b
    assert b["usage"]["output_tokens"] > 0 and b["usage"]["input_tokens"] > 0, b
    got = get(gw, f"{RESPONSES}/{b['id']}")
    assert got.status == 200, got
    assert got.json() == b


@pytest.mark.parametrize("fmt", FORMATS)
def test_unary_through_each_upstream_format(gw, fmt):
    b = respond(gw, {"model": FORMATS[fmt], "input": "Say three words."}, tokens(3))
    assert output_text(b) == "w1 w2 w3", b
    assert [it["type"] for it in b["output"]] == ["message"], b
    assert b["usage"]["output_tokens"] == 3, b
    assert b["usage"]["input_tokens"] >= 1, b
    assert b["usage"]["input_tokens_details"]["cached_tokens"] == 0, b
    assert b["usage"]["output_tokens_details"]["reasoning_tokens"] == 0, b
    got = get(gw, f"{RESPONSES}/{b['id']}")
    assert got.status == 200 and got.json() == b, got


@pytest.mark.parametrize("fmt", FORMATS)
def test_stream_through_each_upstream_format(gw, fmt):
    model = FORMATS[fmt]
    s = check_stream(stream(gw, {"model": model, "input": "Say three words."}, tokens(3)),
                     model=model)
    assert [it["type"] for it in s.items] == ["message"], s.items
    assert s.deltas == [["w1 ", "w2 ", "w3 "]], s.deltas
    assert s.text == "w1 w2 w3 "
    assert s.response["usage"]["output_tokens"] == 3, s.response
    # Stored as streamed: GET returns the terminal event's object.
    got = get(gw, f"{RESPONSES}/{s.response['id']}")
    assert got.status == 200 and got.json() == s.response, (got, s.response)
    # ...and a request sent right after can chain from it: the upstream gets the turn back.
    b = respond(gw, {"model": model, "input": "And again?",
                     "previous_response_id": s.response["id"]}, ECHO)
    assert_history(fmt, echoed(b), [("user", "Say three words."), ("assistant", "w1 w2 w3 "),
                                    ("user", "And again?")])


def test_stream_on_the_demo_model(gw):
    s = check_stream(stream(gw, {"model": "demo", "input": "stream me"}), model="demo")
    assert [it["type"] for it in s.items] == ["message"], s.items
    assert s.text.startswith(DEMO_PREFIX + 'You said: "stream me".'), s.text
    got = get(gw, f"{RESPONSES}/{s.response['id']}")
    assert got.status == 200 and got.json() == s.response, got


def test_the_response_repeats_the_request_fields_and_the_clients_model_name(gw):
    body = {"model": "mock-alias", "input": "hi", "instructions": "Be brief.",
            "temperature": 0.25, "top_p": 0.5, "max_output_tokens": 50,
            "metadata": {"ticket": "T-1"}, "tools": [TOOL], "tool_choice": "auto"}
    b = respond(gw, body, ECHO)
    assert b["model"] == "mock-alias", b  # the route rewrites it to mock-model upstream
    assert b["instructions"] == "Be brief.", b
    assert b["temperature"] == 0.25 and b["top_p"] == 0.5, b
    assert b["max_output_tokens"] == 50, b
    assert b["metadata"] == {"ticket": "T-1"}, b
    assert b["tool_choice"] == "auto", b
    assert len(b["tools"]) == 1, b
    t = b["tools"][0]
    assert (t["type"], t["name"], t["description"], t["parameters"]) == (
        "function", TOOL["name"], TOOL["description"], TOOL["parameters"]), t
    sent = echoed(b)
    assert sent["model"] == "mock-model", sent
    assert sent["temperature"] == 0.25 and sent["top_p"] == 0.5, sent
    assert 50 in (sent.get("max_tokens"), sent.get("max_completion_tokens")), sent
    assert sent["tools"] == [{"type": "function",
                              "function": {"name": "tool_1", "description": TOOL["description"],
                                           "parameters": TOOL["parameters"]}}], sent
    assert_history("openai", sent, [("system", "Be brief."), ("user", "hi")])
    # The usage is the upstream's: the mock counts prompt tokens as body bytes / 4.
    raw = output_text(b).encode()
    assert b["usage"]["input_tokens"] == max(1, len(raw) // 4), (b["usage"], len(raw))
    assert b["usage"]["output_tokens"] == 16, b["usage"]


def test_anthropic_and_gemini_upstreams_get_the_translated_request(gw):
    body = {"input": "hi", "instructions": "Be brief.", "max_output_tokens": 40,
            "temperature": 0.5, "tools": [TOOL]}
    a = echoed(respond(gw, {**body, "model": "claude-up"}, ECHO))
    assert a["model"] == "claude-mock" and a["max_tokens"] == 40, a
    assert a["temperature"] == 0.5, a
    assert [(t["name"], t["description"], t["input_schema"]) for t in a["tools"]] == [
        ("tool_1", TOOL["description"], TOOL["parameters"])], a
    assert_history("anthropic", a, [("system", "Be brief."), ("user", "hi")])
    g = echoed(respond(gw, {**body, "model": "gemini-up"}, ECHO))
    assert g["generationConfig"]["maxOutputTokens"] == 40, g
    assert g["generationConfig"]["temperature"] == 0.5, g
    decls = [d for t in g["tools"] for d in t.get("functionDeclarations", [])]
    assert [(d["name"], d["description"]) for d in decls] == [("tool_1", TOOL["description"])], g
    assert_history("gemini", g, [("system", "Be brief."), ("user", "hi")])


def test_every_input_item_form_reaches_the_upstream_in_order(gw):
    items = [
        {"role": "developer", "content": "Rule one."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Q1"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "A1"}]},
        {"type": "message", "role": "user", "content": "Q2"},
    ]
    b = respond(gw, {"model": "mock-model", "instructions": "Be brief.", "input": items}, ECHO)
    assert_history("openai", echoed(b), [("system", "Be brief."), ("system", "Rule one."),
                                         ("user", "Q1"), ("assistant", "A1"), ("user", "Q2")])
    r = get(gw, f"{RESPONSES}/{b['id']}/input_items?order=asc")
    assert r.status == 200, r
    data = r.json()["data"]
    assert [(it["type"], it["role"], item_text(it)) for it in data] == [
        ("message", "developer", "Rule one."), ("message", "user", "Q1"),
        ("message", "assistant", "A1"), ("message", "user", "Q2")], data
    assert data[1]["content"] == [{"type": "input_text", "text": "Q1"}], data[1]


def test_usage_reports_cached_and_reasoning_tokens(gw):
    b = respond(gw, {"model": "mock-model", "input": "hi"},
                {"x-mock-cache-read": "5", "x-mock-thinking": "1", **tokens(3)})
    u = b["usage"]
    assert u["input_tokens_details"]["cached_tokens"] == 5, u
    assert u["input_tokens"] >= 6, u
    assert u["output_tokens"] == 8 and u["output_tokens_details"]["reasoning_tokens"] == 5, u
    # Thinking is not an output item: only the message.
    assert [it["type"] for it in b["output"]] == ["message"], b
    assert output_text(b) == "w1 w2 w3", b


# =============================================================================================
# How answers end: max tokens, upstream failures
# =============================================================================================


@pytest.mark.parametrize("fmt", FORMATS)
def test_max_tokens_makes_an_incomplete_response(gw, fmt):
    h = {"x-mock-stop": "max_tokens", **tokens(2)}
    b = respond(gw, {"model": FORMATS[fmt], "input": "long story", "max_output_tokens": 2}, h,
                status="incomplete")
    assert output_text(b) == "w1 w2", b
    s = check_stream(stream(gw, {"model": FORMATS[fmt], "input": "long story",
                                 "max_output_tokens": 2}, h), final="response.incomplete")
    assert s.text == "w1 w2 ", s.text
    got = get(gw, f"{RESPONSES}/{s.response['id']}")
    assert got.status == 200 and got.json() == s.response, got


@pytest.mark.parametrize("fmt", FORMATS)
def test_upstream_error_mid_stream_ends_with_response_failed(gw, fmt):
    res = stream(gw, {"model": FORMATS[fmt], "input": "x"}, {"x-mock-error-after": "2"})
    s = check_stream(res, final="response.failed")
    assert s.response["status"] == "failed", s.response
    assert isinstance(s.response["error"]["message"], str) and s.response["error"]["message"]
    assert "response.completed" not in s.names


def test_upstream_client_error_is_relayed_in_the_openai_shape(gw):
    for model in FORMATS.values():
        r = create(gw, {"model": model, "input": "x"}, {"x-mock-status": "400"})
        assert_error_shape(r, 400)


# =============================================================================================
# previous_response_id
# =============================================================================================


@pytest.mark.parametrize("fmt", FORMATS)
def test_previous_response_id_replays_the_history_to_the_upstream(gw, fmt):
    model = FORMATS[fmt]
    r1 = respond(gw, {"model": model, "input": "first question"}, tokens(3))
    r2 = respond(gw, {"model": model, "input": "second question",
                      "previous_response_id": r1["id"]}, ECHO)
    assert r2["previous_response_id"] == r1["id"], r2
    assert r2["id"] != r1["id"]
    assert_history(fmt, echoed(r2), [("user", "first question"), ("assistant", "w1 w2 w3"),
                                     ("user", "second question")])
    # One more link: the whole chain, oldest first (r2's answer was r2's echoed request).
    r3 = respond(gw, {"model": model, "input": "third question",
                      "previous_response_id": r2["id"]}, ECHO)
    assert_history(fmt, echoed(r3), [("user", "first question"), ("assistant", "w1 w2 w3"),
                                     ("user", "second question"),
                                     ("assistant", output_text(r2)),
                                     ("user", "third question")])


def test_previous_response_id_on_the_demo_model_answers_the_new_input(gw):
    r1 = respond(gw, {"model": "demo", "input": "one"})
    r2 = respond(gw, {"model": "demo", "input": "two", "previous_response_id": r1["id"]})
    assert output_text(r2).startswith(DEMO_PREFIX + 'You said: "two".'), r2
    assert r2["previous_response_id"] == r1["id"]


def test_max_chain_limits_how_many_responses_are_replayed(start):
    gw = start("state: {backend: memory, max_chain: 2}\n")
    prev = None
    for i, text in enumerate(["one", "two", "three"], start=1):
        body = {"model": "mock-model", "input": text}
        if prev:
            body["previous_response_id"] = prev
        prev = respond(gw, body, tokens(i))["id"]
    r4 = respond(gw, {"model": "mock-model", "input": "four", "previous_response_id": prev},
                 ECHO)
    # Only the two most recent responses of the chain are replayed.
    assert_history("openai", echoed(r4), [("user", "two"), ("assistant", "w1 w2"),
                                          ("user", "three"), ("assistant", "w1 w2 w3"),
                                          ("user", "four")])


def test_unknown_previous_response_id_is_404_unary_and_streamed(gw):
    body = {"model": "mock-model", "input": "x", "previous_response_id": "resp_doesnotexist"}
    check_not_found_previous(create(gw, body))
    res = stream(gw, body)
    assert res.ended_by == "not-sse", res.head
    check_not_found_previous(res.head)


# =============================================================================================
# Function tools
# =============================================================================================

# The upstream's id of tool call 1 (the mock's), per format; Gemini calls have none.
MOCK_CALL_ID = {"openai": "call_1", "anthropic": "toolu_1", "gemini": None}


@pytest.mark.parametrize("fmt", FORMATS)
def test_function_call_round_trip(gw, fmt):
    model = FORMATS[fmt]
    r1 = respond(gw, {"model": model, "input": "Weather in Paris?", "tools": [TOOL]},
                 {"x-mock-tool-calls": "1"})
    assert len(r1["output"]) == 1, r1
    call = r1["output"][0]
    assert call["type"] == "function_call" and call["name"] == "tool_1", call
    assert json.loads(call["arguments"]) == {"city": "Paris", "n": 1}, call
    if MOCK_CALL_ID[fmt]:
        assert call["call_id"] == MOCK_CALL_ID[fmt], call
    assert r1["status"] == "completed", r1

    result = {"type": "function_call_output", "call_id": call["call_id"],
              "output": "sunny, 21 C"}
    r2 = respond(gw, {"model": model, "input": [result], "tools": [TOOL],
                      "previous_response_id": r1["id"]}, ECHO)
    turns = upstream_turns(fmt, echoed(r2))
    assert turns[0] == ("user", "Weather in Paris?"), turns
    calls = [t for t in turns if t[0] == "tool_call"]
    results = [t for t in turns if t[0] == "tool_result"]
    assert [(c[2], c[3]) for c in calls] == [("tool_1", {"city": "Paris", "n": 1})], turns
    assert len(results) == 1 and "sunny, 21 C" in results[0][2], turns
    assert turns.index(calls[0]) < turns.index(results[0]), turns
    if fmt == "gemini":
        assert results[0][1] in ("tool_1", calls[0][1]), turns
    else:
        assert calls[0][1] == MOCK_CALL_ID[fmt] and results[0][1] == MOCK_CALL_ID[fmt], turns
    # The function_call_output is r2's input item, with an id.
    items = get(gw, f"{RESPONSES}/{r2['id']}/input_items").json()["data"]
    assert len(items) == 1, items
    assert items[0]["type"] == "function_call_output", items
    assert (items[0]["call_id"], items[0]["output"]) == (call["call_id"], "sunny, 21 C"), items
    assert isinstance(items[0]["id"], str) and items[0]["id"], items


def test_client_sent_function_call_history_reaches_the_upstream(gw):
    args = json.dumps({"city": "Oslo", "n": 7})
    items = [{"role": "user", "content": "Weather in Oslo?"},
             {"type": "function_call", "call_id": "call_abc", "name": "tool_1",
              "arguments": args},
             {"type": "function_call_output", "call_id": "call_abc", "output": "snow"}]
    b = respond(gw, {"model": "mock-model", "input": items, "tools": [TOOL]}, ECHO)
    sent = echoed(b)
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["user", "assistant", "tool"], sent
    tc = sent["messages"][1]["tool_calls"]
    assert [(c["id"], c["type"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in tc] == [("call_abc", "function", "tool_1", {"city": "Oslo", "n": 7})], sent
    assert sent["messages"][2]["tool_call_id"] == "call_abc", sent
    assert "".join(_texts(sent["messages"][2]["content"])) == "snow", sent


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_streamed_text_and_two_function_calls(gw, fmt):
    h = {"x-mock-tool-calls": "2", "x-mock-text-first": "1", **tokens(2)}
    s = check_stream(stream(gw, {"model": FORMATS[fmt], "input": "go",
                                 "tools": [TOOL, TOOL_2]}, h))
    assert [it["type"] for it in s.items] == ["message", "function_call", "function_call"], s.items
    assert s.text == "w1 w2 ", s.text
    assert [(it["name"], json.loads(it["arguments"])) for it in s.items[1:]] == [
        ("tool_1", {"city": "Paris", "n": 1}), ("tool_2", {"city": "Paris", "n": 2})], s.items
    assert len({it["id"] for it in s.items}) == 3, s.items
    assert s.items[1]["call_id"] != s.items[2]["call_id"], s.items
    if fmt == "openai":
        assert [len(d) for d in s.deltas[1:]] == [3, 3], s.deltas  # the mock's 3 pieces each
    got = get(gw, f"{RESPONSES}/{s.response['id']}")
    assert got.status == 200 and got.json() == s.response, got


def test_unknown_tool_types_are_refused(gw):
    for tool in ({"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]},
                 {"type": "code_interpreter", "container": {"type": "auto"}}):
        r = create(gw, {"model": "mock-model", "input": "x", "tools": [tool]})
        assert_error_shape(r, 400)


# =============================================================================================
# store: false, GET, DELETE, unknown ids
# =============================================================================================


def test_store_false_keeps_nothing(gw):
    b = respond(gw, {"model": "mock-model", "input": "forget me", "store": False}, tokens(2))
    assert b["store"] is False, b
    assert output_text(b) == "w1 w2", b
    assert_error_shape(get(gw, f"{RESPONSES}/{b['id']}"), 404)
    assert_error_shape(get(gw, f"{RESPONSES}/{b['id']}/input_items"), 404)
    check_not_found_previous(create(gw, {"model": "mock-model", "input": "x",
                                         "previous_response_id": b["id"]}))
    s = check_stream(stream(gw, {"model": "mock-model", "input": "forget me", "store": False},
                            tokens(2)))
    assert s.response["store"] is False, s.response
    assert_error_shape(get(gw, f"{RESPONSES}/{s.response['id']}"), 404)
    check_not_found_previous(create(gw, {"model": "mock-model", "input": "x",
                                         "previous_response_id": s.response["id"]}))


def test_store_false_may_continue_a_stored_chain(gw):
    r1 = respond(gw, {"model": "mock-model", "input": "kept"}, tokens(1))
    r2 = respond(gw, {"model": "mock-model", "input": "not kept", "store": False,
                      "previous_response_id": r1["id"]}, ECHO)
    assert r2["store"] is False and r2["previous_response_id"] == r1["id"], r2
    assert_history("openai", echoed(r2), [("user", "kept"), ("assistant", "w1"),
                                          ("user", "not kept")])
    assert get(gw, f"{RESPONSES}/{r1['id']}").status == 200


def test_delete_response(gw):
    r1 = respond(gw, {"model": "mock-model", "input": "delete me"}, tokens(1))
    r = delete(gw, f"{RESPONSES}/{r1['id']}")
    assert r.status == 200, r
    assert r.json() == {"id": r1["id"], "object": "response.deleted", "deleted": True}, r
    assert_error_shape(get(gw, f"{RESPONSES}/{r1['id']}"), 404)
    assert_error_shape(get(gw, f"{RESPONSES}/{r1['id']}/input_items"), 404)
    assert_error_shape(delete(gw, f"{RESPONSES}/{r1['id']}"), 404)
    check_not_found_previous(create(gw, {"model": "mock-model", "input": "x",
                                         "previous_response_id": r1["id"]}))


def test_unknown_response_ids_are_404(gw):
    for method, path in (("GET", f"{RESPONSES}/resp_doesnotexist"),
                         ("DELETE", f"{RESPONSES}/resp_doesnotexist"),
                         ("GET", f"{RESPONSES}/resp_doesnotexist/input_items"),
                         ("GET", f"{RESPONSES}/not-even-an-id")):
        assert_error_shape(http_call(gw, method, path), 404)


# =============================================================================================
# input_items
# =============================================================================================


def page(gw, path: str, headers: dict | None = None) -> dict:
    r = get(gw, path, headers)
    assert r.status == 200, r
    b = r.json()
    assert b["object"] == "list", b
    assert isinstance(b["has_more"], bool), b
    if b["data"]:
        assert b["first_id"] == b["data"][0]["id"] and b["last_id"] == b["data"][-1]["id"], b
    return b


def test_input_items_paging(gw):
    texts = [f"item {i}" for i in range(5)]
    b = respond(gw, {"model": "mock-model", "input": [{"role": "user", "content": t}
                                                      for t in texts]}, tokens(1))
    base = f"{RESPONSES}/{b['id']}/input_items"
    desc = page(gw, base)  # default: newest first, 20 at most
    assert [item_text(it) for it in desc["data"]] == texts[::-1], desc
    assert desc["has_more"] is False, desc
    ids_asc = [it["id"] for it in desc["data"]][::-1]
    assert len(set(ids_asc)) == 5 and all(isinstance(i, str) and i for i in ids_asc), desc
    for it in desc["data"]:
        assert it["type"] == "message" and it["role"] == "user", it
        assert it["content"] == [{"type": "input_text", "text": item_text(it)}], it
    # the outputs are not input items
    assert b["output"][0]["id"] not in ids_asc

    p1 = page(gw, f"{base}?order=asc&limit=2")
    assert [it["id"] for it in p1["data"]] == ids_asc[:2] and p1["has_more"] is True, p1
    p2 = page(gw, f"{base}?order=asc&limit=2&after={p1['last_id']}")
    assert [it["id"] for it in p2["data"]] == ids_asc[2:4] and p2["has_more"] is True, p2
    p3 = page(gw, f"{base}?order=asc&limit=2&after={p2['last_id']}")
    assert [it["id"] for it in p3["data"]] == ids_asc[4:] and p3["has_more"] is False, p3

    d1 = page(gw, f"{base}?order=desc&limit=3")
    assert [it["id"] for it in d1["data"]] == ids_asc[::-1][:3] and d1["has_more"] is True, d1
    d2 = page(gw, f"{base}?limit=3&after={d1['last_id']}")
    assert [it["id"] for it in d2["data"]] == ids_asc[::-1][3:] and d2["has_more"] is False, d2

    exact = page(gw, f"{base}?order=asc&limit=5")
    assert len(exact["data"]) == 5 and exact["has_more"] is False, exact
    assert len(page(gw, f"{base}?limit=100")["data"]) == 5


def test_input_items_refuse_bad_paging_parameters(gw):
    b = respond(gw, {"model": "demo", "input": "x"})
    base = f"{RESPONSES}/{b['id']}/input_items"
    for q in ("limit=0", "limit=101", "limit=abc", "order=sideways"):
        assert_error_shape(get(gw, f"{base}?{q}"), 400)


def test_input_items_are_only_that_responses_own_inputs(gw):
    r1 = respond(gw, {"model": "mock-model", "input": "earlier"}, tokens(1))
    r2 = respond(gw, {"model": "mock-model", "previous_response_id": r1["id"],
                      "input": [{"role": "user", "content": "b"},
                                {"role": "user", "content": "c"}]}, tokens(1))
    data = page(gw, f"{RESPONSES}/{r2['id']}/input_items?order=asc")["data"]
    assert [(it["role"], item_text(it)) for it in data] == [("user", "b"), ("user", "c")], data
    # A string input is one user message item.
    data = page(gw, f"{RESPONSES}/{r1['id']}/input_items")["data"]
    assert len(data) == 1, data
    assert (data[0]["type"], data[0]["role"]) == ("message", "user"), data
    assert data[0]["content"] == [{"type": "input_text", "text": "earlier"}], data


# =============================================================================================
# Conversations
# =============================================================================================


def new_conversation(gw, body: dict | None = None, headers: dict | None = None) -> dict:
    r = http_call(gw, "POST", CONVERSATIONS, json_body=body or {}, headers=headers)
    assert r.status == 200, r
    c = r.json()
    assert re.fullmatch(r"conv_[A-Za-z0-9_-]+", c["id"]), c
    assert c["object"] == "conversation", c
    assert isinstance(c["created_at"], int) and abs(c["created_at"] - time.time()) < 600, c
    return c


def conv_items(gw, conv_id: str, query: str = "order=asc&limit=100",
               headers: dict | None = None) -> list[dict]:
    return page(gw, f"{CONVERSATIONS}/{conv_id}/items?{query}", headers)["data"]


def test_conversation_crud(gw):
    c = new_conversation(gw, {"metadata": {"topic": "demo"},
                              "items": [{"role": "user", "content": "hello"}]})
    assert c["metadata"] == {"topic": "demo"}, c
    assert set(c) >= {"id", "object", "created_at", "metadata"}, c
    path = f"{CONVERSATIONS}/{c['id']}"
    r = get(gw, path)
    assert r.status == 200 and r.json() == c, r
    r = http_call(gw, "POST", path, json_body={"metadata": {"topic": "updated", "k": "v"}})
    assert r.status == 200, r
    updated = r.json()
    assert updated == {**c, "metadata": {"topic": "updated", "k": "v"}}, updated
    assert get(gw, path).json() == updated

    r = delete(gw, path)
    assert r.status == 200, r
    assert r.json() == {"id": c["id"], "object": "conversation.deleted", "deleted": True}, r
    assert_error_shape(get(gw, path), 404)
    assert_error_shape(get(gw, f"{path}/items"), 404)
    assert_error_shape(http_call(gw, "POST", f"{path}/items",
                                 json_body={"items": [{"role": "user", "content": "x"}]}), 404)
    assert_error_shape(http_call(gw, "POST", path, json_body={"metadata": {}}), 404)
    assert_error_shape(delete(gw, path), 404)
    assert_error_shape(create(gw, {"model": "mock-model", "input": "x",
                                   "conversation": c["id"]}), 404)


def test_conversation_without_a_body_and_unknown_ids(gw):
    r = http_call(gw, "POST", CONVERSATIONS, body=b"{}")
    assert r.status == 200 and r.json()["object"] == "conversation", r
    assert conv_items(gw, r.json()["id"]) == []
    for method, path in (("GET", f"{CONVERSATIONS}/conv_doesnotexist"),
                         ("DELETE", f"{CONVERSATIONS}/conv_doesnotexist"),
                         ("GET", f"{CONVERSATIONS}/conv_doesnotexist/items"),
                         ("GET", f"{CONVERSATIONS}/{r.json()['id']}/items/msg_doesnotexist"),
                         ("DELETE", f"{CONVERSATIONS}/{r.json()['id']}/items/msg_doesnotexist")):
        assert_error_shape(http_call(gw, method, path), 404)
    assert_error_shape(create(gw, {"model": "mock-model", "input": "x",
                                   "conversation": "conv_doesnotexist"}), 404)


def test_conversation_items_add_list_page_get_delete(gw):
    c = new_conversation(gw, {"items": [{"role": "user", "content": "one"},
                                        {"role": "assistant", "content": "two"}]})
    path = f"{CONVERSATIONS}/{c['id']}"
    added = http_call(gw, "POST", f"{path}/items", json_body={"items": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "three"}]},
        {"type": "function_call", "call_id": "call_9", "name": "tool_1", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_9", "output": "five"}]})
    assert added.status == 200, added
    a = added.json()
    assert a["object"] == "list" and a["has_more"] is False, a
    assert [it["type"] for it in a["data"]] == ["message", "function_call",
                                                "function_call_output"], a
    assert a["first_id"] == a["data"][0]["id"] and a["last_id"] == a["data"][-1]["id"], a
    assert item_text(a["data"][0]) == "three" and a["data"][0]["role"] == "user", a
    assert (a["data"][1]["call_id"], a["data"][1]["name"], a["data"][1]["arguments"]) == (
        "call_9", "tool_1", "{}"), a
    assert (a["data"][2]["call_id"], a["data"][2]["output"]) == ("call_9", "five"), a

    everything = conv_items(gw, c["id"])
    assert len(everything) == 5, everything
    assert [(it["role"], item_text(it)) for it in everything[:3]] == [
        ("user", "one"), ("assistant", "two"), ("user", "three")], everything
    assert everything[2:] == a["data"], (everything, a)
    ids = [it["id"] for it in everything]
    assert len(set(ids)) == 5, ids

    desc = page(gw, f"{path}/items")  # default order desc
    assert [it["id"] for it in desc["data"]] == ids[::-1] and desc["has_more"] is False, desc
    p1 = page(gw, f"{path}/items?order=asc&limit=2")
    assert [it["id"] for it in p1["data"]] == ids[:2] and p1["has_more"] is True, p1
    p2 = page(gw, f"{path}/items?order=asc&limit=2&after={p1['last_id']}")
    assert [it["id"] for it in p2["data"]] == ids[2:4] and p2["has_more"] is True, p2
    p3 = page(gw, f"{path}/items?order=asc&limit=2&after={p2['last_id']}")
    assert [it["id"] for it in p3["data"]] == ids[4:] and p3["has_more"] is False, p3
    d1 = page(gw, f"{path}/items?limit=4")
    assert [it["id"] for it in d1["data"]] == ids[::-1][:4] and d1["has_more"] is True, d1

    one = get(gw, f"{path}/items/{ids[1]}")
    assert one.status == 200 and one.json() == everything[1], one

    r = delete(gw, f"{path}/items/{ids[1]}")
    assert r.status == 200, r
    assert r.json() == get(gw, path).json(), r  # the conversation object
    assert r.json()["id"] == c["id"] and r.json()["object"] == "conversation", r
    assert_error_shape(get(gw, f"{path}/items/{ids[1]}"), 404)
    assert [it["id"] for it in conv_items(gw, c["id"])] == ids[:1] + ids[2:]


def test_conversation_items_are_validated(gw):
    c = new_conversation(gw)
    for items in ([{"type": "bogus"}], [{"role": "user"}], "not a list"):
        r = http_call(gw, "POST", f"{CONVERSATIONS}/{c['id']}/items", json_body={"items": items})
        assert_error_shape(r, 400)
    assert conv_items(gw, c["id"]) == []
    assert_error_shape(http_call(gw, "POST", CONVERSATIONS, json_body={"items": [{"type": "x"}]}),
                       400)


@pytest.mark.parametrize("fmt", FORMATS)
def test_responses_in_a_conversation_see_and_extend_it(gw, fmt):
    model = FORMATS[fmt]
    c = new_conversation(gw, {"items": [{"role": "user", "content": "My name is Ada."}]})
    r1 = respond(gw, {"model": model, "conversation": c["id"], "input": "What is my name?"},
                 ECHO)
    assert r1["conversation"] == {"id": c["id"]}, r1
    assert_history(fmt, echoed(r1), [("user", "My name is Ada."), ("user", "What is my name?")])
    items = conv_items(gw, c["id"])
    assert [(it["type"], it["role"]) for it in items] == [
        ("message", "user"), ("message", "user"), ("message", "assistant")], items
    assert item_text(items[1]) == "What is my name?", items
    assert items[2] == r1["output"][0], (items[2], r1["output"])
    # The response's input items are its own input only (not the conversation's older items).
    own = page(gw, f"{RESPONSES}/{r1['id']}/input_items")["data"]
    assert [item_text(it) for it in own] == ["What is my name?"], own
    assert own[0]["id"] == items[1]["id"], (own, items)

    # The object form {id} works too; the next response sees everything so far.
    r2 = respond(gw, {"model": model, "conversation": {"id": c["id"]}, "input": "Again?"},
                 ECHO)
    assert r2["conversation"] == {"id": c["id"]}, r2
    assert_history(fmt, echoed(r2), [("user", "My name is Ada."), ("user", "What is my name?"),
                                     ("assistant", output_text(r1)), ("user", "Again?")])
    assert len(conv_items(gw, c["id"])) == 5


def test_streamed_response_in_a_conversation_extends_it(gw):
    c = new_conversation(gw)
    s = check_stream(stream(gw, {"model": "mock-model", "conversation": c["id"],
                                 "input": "stream into it"}, tokens(2)))
    assert s.response["conversation"] == {"id": c["id"]}, s.response
    items = conv_items(gw, c["id"])
    assert [(it["role"], item_text(it)) for it in items] == [
        ("user", "stream into it"), ("assistant", "w1 w2 ")], items
    assert items[1]["id"] == s.items[0]["id"], (items, s.items)


def test_tool_round_trip_inside_a_conversation(gw):
    c = new_conversation(gw)
    r1 = respond(gw, {"model": "mock-model", "conversation": c["id"], "input": "Weather?",
                      "tools": [TOOL]}, {"x-mock-tool-calls": "1"})
    call = r1["output"][0]
    assert call["type"] == "function_call", r1
    r2 = respond(gw, {"model": "mock-model", "conversation": c["id"], "tools": [TOOL],
                      "input": [{"type": "function_call_output", "call_id": call["call_id"],
                                 "output": "rain"}]}, ECHO)
    sent = echoed(r2)
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool"], sent
    assert sent["messages"][2]["tool_call_id"] == call["call_id"], sent
    types = [it["type"] for it in conv_items(gw, c["id"])]
    assert types == ["message", "function_call", "function_call_output", "message"], types


def test_conversation_and_previous_response_id_together_is_400(gw):
    c = new_conversation(gw)
    r1 = respond(gw, {"model": "demo", "input": "x"})
    r = create(gw, {"model": "demo", "input": "y", "conversation": c["id"],
                    "previous_response_id": r1["id"]})
    assert_error_shape(r, 400)
    assert conv_items(gw, c["id"]) == []


# =============================================================================================
# Request errors
# =============================================================================================


def test_request_errors_are_openai_shaped(gw):
    err = assert_error_shape(http_call(gw, "POST", RESPONSES, body=b'{"model": "demo", "inp'),
                             400)
    assert err["type"] == "invalid_request_error", err
    err = assert_error_shape(create(gw, {"input": "no model"}), 400)
    assert err["param"] == "model", err
    assert_error_shape(create(gw, {"model": "demo", "input": 42}), 400)
    assert_error_shape(create(gw, {"model": "demo", "input": [{"type": "nonsense"}]}), 400)
    assert_error_shape(http_call(gw, "POST", RESPONSES, body=b'["model"]'), 400)
    err = assert_error_shape(create(gw, {"model": "no-such-model", "input": "x"}), 404)
    assert err["code"] == "model_not_found", err
    assert_error_shape(http_call(gw, "POST", CONVERSATIONS, body=b"{nope"), 400)


def test_wrong_methods_are_405(gw):
    b = respond(gw, {"model": "demo", "input": "x"})
    c = new_conversation(gw)
    for method, path in (("PUT", RESPONSES), ("GET", RESPONSES), ("DELETE", RESPONSES),
                         ("PUT", f"{RESPONSES}/{b['id']}"),
                         ("POST", f"{RESPONSES}/{b['id']}/input_items"),
                         ("PUT", CONVERSATIONS),
                         ("PATCH", f"{CONVERSATIONS}/{c['id']}"),
                         ("PUT", f"{CONVERSATIONS}/{c['id']}/items")):
        body = b"{}" if method in ("PUT", "POST", "PATCH") else None
        assert_error_shape(http_call(gw, method, path, body=body), 405)


# =============================================================================================
# Tenants
# =============================================================================================

KEY_A1, KEY_A2, KEY_B = "sk-resp-alpha-1", "sk-resp-alpha-2", "sk-resp-beta-1"
AUTH = f"""\
auth:
  enabled: true
  keys:
    - {{name: alpha-1, key_sha256: "{sha(KEY_A1)}", tenant: alpha}}
    - {{name: alpha-2, key_sha256: "{sha(KEY_A2)}", tenant: alpha}}
    - {{name: beta-1, key_sha256: "{sha(KEY_B)}", tenant: beta}}
"""


def test_responses_and_conversations_belong_to_their_tenant(start):
    gw = start(AUTH)
    a, a2, b = bearer(KEY_A1), bearer(KEY_A2), bearer(KEY_B)
    assert_error_shape(create(gw, {"model": "demo", "input": "x"}), 401)
    r1 = respond(gw, {"model": "demo", "input": "alpha secret"}, a)
    rid = r1["id"]
    # Another tenant cannot see, continue, list or delete it...
    assert_error_shape(get(gw, f"{RESPONSES}/{rid}", b), 404)
    assert_error_shape(get(gw, f"{RESPONSES}/{rid}/input_items", b), 404)
    check_not_found_previous(create(gw, {"model": "demo", "input": "y",
                                         "previous_response_id": rid}, b))
    assert_error_shape(delete(gw, f"{RESPONSES}/{rid}", b), 404)
    # ...the owner's tenant still can (another key of it too).
    assert get(gw, f"{RESPONSES}/{rid}", a).json() == r1
    assert get(gw, f"{RESPONSES}/{rid}", a2).status == 200
    respond(gw, {"model": "demo", "input": "z", "previous_response_id": rid}, a2)

    conv = new_conversation(gw, {"items": [{"role": "user", "content": "alpha only"}]}, a)
    cpath = f"{CONVERSATIONS}/{conv['id']}"
    assert_error_shape(get(gw, cpath, b), 404)
    assert_error_shape(get(gw, f"{cpath}/items", b), 404)
    item_id = conv_items(gw, conv["id"], headers=a)[0]["id"]
    assert_error_shape(get(gw, f"{cpath}/items/{item_id}", b), 404)
    assert_error_shape(http_call(gw, "POST", f"{cpath}/items", headers=b,
                                 json_body={"items": [{"role": "user", "content": "x"}]}), 404)
    assert_error_shape(http_call(gw, "POST", cpath, json_body={"metadata": {"x": "y"}},
                                 headers=b), 404)
    assert_error_shape(create(gw, {"model": "demo", "input": "x", "conversation": conv["id"]},
                              b), 404)
    assert_error_shape(delete(gw, f"{cpath}/items/{item_id}", b), 404)
    assert_error_shape(delete(gw, cpath, b), 404)
    # Nothing the other tenant tried changed it.
    assert get(gw, cpath, a).json() == conv
    assert [item_text(it) for it in conv_items(gw, conv["id"], headers=a2)] == ["alpha only"]
    assert get(gw, f"{RESPONSES}/{rid}", a).status == 200


# =============================================================================================
# Read-your-writes
# =============================================================================================


def _stream_until_completed(gw, body: dict):
    """Sends a streamed request and reads up to its response.completed event, leaving the rest
    of the body (the end of the chunked stream) unread. Returns (connection, rest, response)."""
    c = RawHttp(gw.host, gw.port, timeout=10)
    c.send(build_request("POST", RESPONSES, json.dumps({**body, "stream": True}).encode()))
    head = c.read_head()
    if head.status != 200:
        head.body = b"".join(c.iter_body(head))
        c.close()
        raise AssertionError(f"stream refused: {head!r}")
    events = parse_sse(c.iter_body(head))
    seq = 0
    for ev in events:
        data = ev.json()
        assert data["sequence_number"] == seq, (seq, ev.raw)
        seq += 1
        if data["type"] == "response.completed":
            return c, events, data["response"]
        assert data["type"] not in ("response.failed", "response.incomplete"), ev.raw
    c.close()
    raise AssertionError("stream ended without response.completed")


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
def test_read_your_writes_1000_chained_requests(start, backend, request):
    # max_chain 1000 (the default): the last requests replay a long chain too. On every backend
    # the answer is stored before its last byte, so the next request (sent at once) finds it.
    if backend == "redis":
        r = request.getfixturevalue("redis")
        gw = start(f'redis: {{url: "redis://127.0.0.1:{r.port}"}}\nstate: {{backend: redis}}\n')
    elif backend == "sqlite":
        gw = start("state: {backend: sqlite, path: state.db}\n")
    else:
        gw = start()
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=10)
    pending = None  # a stream whose end is read only after the next request
    prev = None
    try:
        for i in range(1000):
            body = {"model": "demo", "input": f"turn {i}"}
            if prev is not None:
                body["previous_response_id"] = prev
            if i % 2 == 0:
                conn.request("POST", RESPONSES, body=json.dumps(body),
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                assert r.status == 200, f"request {i} (after {prev}): {r.status} {data[:300]!r}"
                obj = json.loads(data)
            else:
                c, rest, obj = _stream_until_completed(gw, body)
            if pending is not None:  # drain the previous stream to its terminating chunk
                pc, prest = pending
                for _ in prest:
                    pass
                pc.close()
                pending = None
            if i % 2 == 1:
                pending = (c, rest)
            assert obj["previous_response_id"] == prev, (i, obj)
            assert obj["status"] == "completed", (i, obj)
            assert f'You said: "turn {i}".' in output_text(obj), (i, obj)
            prev = obj["id"]
        # The last one is stored and points at its predecessor.
        last = get(gw, f"{RESPONSES}/{prev}")
        assert last.status == 200, last
        assert last.json()["id"] == prev
    finally:
        conn.close()
        if pending is not None:
            pending[0].close()


# =============================================================================================
# Expiry and backends
# =============================================================================================


def test_responses_and_idle_conversations_expire(start):
    gw = start("state: {backend: memory, responses_ttl_s: 1, conversations_ttl_s: 1}\n")
    r1 = respond(gw, {"model": "demo", "input": "short-lived"})
    c = new_conversation(gw, {"items": [{"role": "user", "content": "x"}]})
    assert get(gw, f"{RESPONSES}/{r1['id']}").status == 200
    time.sleep(2.2)
    assert_error_shape(get(gw, f"{RESPONSES}/{r1['id']}"), 404)
    check_not_found_previous(create(gw, {"model": "demo", "input": "x",
                                         "previous_response_id": r1["id"]}))
    assert_error_shape(get(gw, f"{CONVERSATIONS}/{c['id']}"), 404)


def _fill_state(gw) -> dict:
    """A chain of two responses and a conversation with a response in it."""
    r1 = respond(gw, {"model": "mock-model", "input": "remember the kiwi"}, tokens(3))
    r2 = respond(gw, {"model": "mock-model", "input": "and the fig",
                      "previous_response_id": r1["id"]}, tokens(2))
    conv = new_conversation(gw, {"metadata": {"k": "v"},
                                 "items": [{"role": "user", "content": "conversation start"}]})
    rc = respond(gw, {"model": "mock-model", "conversation": conv["id"], "input": "in conv"},
                 tokens(1))
    return {"r1": r1, "r2": r2, "conv": conv, "rc": rc, "items": conv_items(gw, conv["id"])}


def _check_state(gw, st: dict):
    for k in ("r1", "r2", "rc"):
        r = get(gw, f"{RESPONSES}/{st[k]['id']}")
        assert r.status == 200 and r.json() == st[k], (k, r)
    b = respond(gw, {"model": "mock-model", "input": "what did I say?",
                     "previous_response_id": st["r2"]["id"]}, ECHO)
    assert_history("openai", echoed(b), [("user", "remember the kiwi"), ("assistant", "w1 w2 w3"),
                                         ("user", "and the fig"), ("assistant", "w1 w2"),
                                         ("user", "what did I say?")])
    cid = st["conv"]["id"]
    r = get(gw, f"{CONVERSATIONS}/{cid}")
    assert r.status == 200 and r.json() == st["conv"], r
    assert conv_items(gw, cid) == st["items"]
    b = respond(gw, {"model": "mock-model", "conversation": cid, "input": "more"}, ECHO)
    assert_history("openai", echoed(b), [("user", "conversation start"), ("user", "in conv"),
                                         ("assistant", "w1"), ("user", "more")])


def test_sqlite_state_survives_sigkill(start, tmp_path):
    stray = Path.cwd() / "state.db"
    stray_existed = stray.exists()
    try:
        gw = start("state: {backend: sqlite, path: state.db}\n")
        st = _fill_state(gw)
        gw.proc.signal(signal.SIGKILL)
        gw.proc.wait(5)
        # `path` is relative to the config file's folder.
        assert (gw.config_path.parent / "state.db").exists(), list(tmp_path.iterdir())
        gw2 = start.restart(gw)
        _check_state(gw2, st)
        # Deletions persist too.
        assert delete(gw2, f"{RESPONSES}/{st['r1']['id']}").status == 200
        gw2.proc.signal(signal.SIGKILL)
        gw2.proc.wait(5)
        gw3 = start.restart(gw)
        assert_error_shape(get(gw3, f"{RESPONSES}/{st['r1']['id']}"), 404)
        assert get(gw3, f"{RESPONSES}/{st['r2']['id']}").status == 200
    finally:
        if not stray_existed and stray.exists():
            stray.unlink()  # written relative to the cwd instead: the assertion above failed


def test_redis_state_is_shared_by_two_instances(start, redis):
    top = f'redis: {{url: "redis://127.0.0.1:{redis.port}"}}\nstate: {{backend: redis}}\n'
    a = start(top, name="gw-a")
    b = start(top, name="gw-b")
    st = _fill_state(a)
    _check_state(b, st)
    # Writes on b are seen by a.
    cid = st["conv"]["id"]
    r = http_call(b, "POST", f"{CONVERSATIONS}/{cid}", json_body={"metadata": {"k": "w"}})
    assert r.status == 200, r
    assert get(a, f"{CONVERSATIONS}/{cid}").json()["metadata"] == {"k": "w"}
    assert delete(b, f"{RESPONSES}/{st['r1']['id']}").status == 200
    assert_error_shape(get(a, f"{RESPONSES}/{st['r1']['id']}"), 404)
    # A streamed response created on a is continued on b at once.
    s = check_stream(stream(a, {"model": "mock-model", "input": "streamed on a"}, tokens(2)))
    r = respond(b, {"model": "mock-model", "input": "continued on b",
                    "previous_response_id": s.response["id"]}, ECHO)
    assert_history("openai", echoed(r), [("user", "streamed on a"), ("assistant", "w1 w2 "),
                                         ("user", "continued on b")])
    # Everything lives under the sluice: prefix.
    keys = redis.command("KEYS", "*")
    assert keys, "nothing stored in Redis"
    assert all(k.startswith("sluice:") for k in keys), keys
