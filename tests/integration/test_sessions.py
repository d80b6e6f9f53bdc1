"""Sessions (/v1/sessions): sessions, turns and weighted memories, and the augmentation of chat
requests that carry `x-sluice-session` (OpenAI chat, Anthropic Messages and the Responses API,
unary and streamed, on the demo model and on sluice-mock speaking OpenAI and Anthropic).

What reached the upstream is read back with the mock's `x-mock-echo-request: 1` (the answer text
is the exact upstream request body) or `GET /mock/last`: that is how these tests prove which
memories went into the system prompt and which stored turns were replayed, in what order.
Stored state is exercised on the three `state` backends: memory (default), SQLite (survives
SIGKILL) and Redis (shared by two instances).

    cd /work/main && /usr/bin/python3 -m pytest tests/integration/test_sessions.py -q
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import (ConfigStarter, SLUICE_BIN, UPSTREAM_KEY, Gateway, Proc, RawHttp, assert_error_shape,
                      build_request, http_call, parse_sse, poll,
                      render_config, require_binaries, sha, stream_request)

SESSIONS = "/v1/sessions"
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
RESPONSES = "/v1/responses"

ECHO = {"x-mock-echo-request": "1"}
MEMORY_HEADING = "Relevant memories from this session:"
DEMO_PREFIX = "Hello from Sluice's built-in demo model, answering offline. "

# Routes added to conftest's (mock-model, "mock-*", demo, dead): the mock speaking Anthropic.
ROUTES = """\
  - model: claude-up
    targets: [{provider: anthropic, forward_headers: ["x-mock-*"], base_url: "{MOCK_ROOT}", model: claude-mock}]
"""

# upstream format → the model routed to it
FORMATS = {"openai": "mock-model", "anthropic": "claude-up"}


# ---- gateways (the Starter pattern of test_responses.py) -------------------------------------


@pytest.fixture
def start(mock, tmp_path):
    s = ConfigStarter(mock, tmp_path, ROUTES)
    yield s
    s.stop_all()


@pytest.fixture
def gw(start) -> Gateway:
    return start()


def windowed_route(name: str, window: int, fmt: str = "openai") -> str:
    """A route to the mock (in `fmt`) with a `context_window`."""
    if fmt == "openai":
        target = '{provider: openai, forward_headers: ["x-mock-*"], base_url: "{MOCK}", model: mock-model}'
    else:
        target = ('{provider: anthropic, forward_headers: ["x-mock-*"], base_url: "{MOCK_ROOT}", '
                  'model: claude-mock}')
    return f"  - model: {name}\n    context_window: {window}\n    targets: [{target}]\n"


# ---- the API ---------------------------------------------------------------------------------


def ok_json(r, status: int = 200):
    assert r.status == status, r
    assert (r.header("content-type") or "").startswith("application/json"), r
    return r.json()


def new_session(gw, body: dict | None = None, headers: dict | None = None) -> dict:
    s = ok_json(http_call(gw, "POST", SESSIONS, json_body=body if body is not None else {},
                          headers=headers))
    assert re.fullmatch(r"sess_[A-Za-z0-9_-]+", s["id"]), s
    return s


def get(gw, path: str, headers: dict | None = None):
    return http_call(gw, "GET", path, headers=headers)


def delete(gw, path: str, headers: dict | None = None):
    return http_call(gw, "DELETE", path, headers=headers)


def add_turn(gw, sid: str, items: list, intent: str | None = None,
             headers: dict | None = None) -> dict:
    body = {"items": items}
    if intent is not None:
        body["intent"] = intent
    return ok_json(http_call(gw, "POST", f"{SESSIONS}/{sid}/turns", json_body=body,
                             headers=headers))


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def add_memory(gw, sid: str, headers: dict | None = None, **fields) -> dict:
    m = ok_json(http_call(gw, "POST", f"{SESSIONS}/{sid}/memories", json_body=fields,
                          headers=headers))
    assert m["object"] == "session.memory", m
    assert re.fullmatch(r"mem_[A-Za-z0-9_-]+", m["id"]), m
    return m


def memories(gw, sid: str, history: bool = False, headers: dict | None = None) -> list[dict]:
    q = "?include_history=1" if history else ""
    return ok_json(get(gw, f"{SESSIONS}/{sid}/memories{q}", headers))["data"]


def search(gw, sid: str, q: str, k: int | None = None, explain: bool = False,
           headers: dict | None = None) -> list[dict]:
    path = f"{SESSIONS}/{sid}/memories/search?q={quote(q)}"
    if k is not None:
        path += f"&k={k}"
    if explain:
        path += "&explain=1"
    body = ok_json(get(gw, path, headers))
    assert body["object"] == "list", body
    return body["data"]


def all_turns(gw, sid: str, headers: dict | None = None) -> list[dict]:
    """Every turn, oldest first (paged with limit=100)."""
    out, after = [], None
    while True:
        path = f"{SESSIONS}/{sid}/turns?order=asc&limit=100"
        if after:
            path += f"&after={after}"
        page = ok_json(get(gw, path, headers))
        out += page["data"]
        if not page["has_more"]:
            return out
        after = page["last_id"]


def turn_count(gw, sid: str, headers: dict | None = None) -> int:
    return ok_json(get(gw, f"{SESSIONS}/{sid}", headers))["turns"]


def item_text(item: dict) -> str:
    c = item.get("content")
    if isinstance(c, str):
        return c
    return "".join(p.get("text", "") for p in c or [])


def turn_view(turn: dict) -> list[tuple]:
    """A stored turn as (role, text) / ("tool_call", call_id) / ("tool_result", call_id)."""
    out = []
    for it in turn["items"]:
        if it["type"] == "message":
            out.append((it["role"], item_text(it)))
        elif it["type"] == "function_call":
            out.append(("tool_call", it["call_id"]))
        elif it["type"] == "function_call_output":
            out.append(("tool_result", it["call_id"]))
    return out


# ---- augmented requests ----------------------------------------------------------------------


def sess(sid: str, *more: dict) -> dict:
    h = {"x-sluice-session": sid}
    for m in more:
        h.update(m)
    return h


def chat(gw, sid: str, messages: list, model: str = "mock-model", headers: dict | None = None,
         **extra):
    body = {"model": model, "messages": messages, **extra}
    return http_call(gw, "POST", CHAT, json_body=body, headers=sess(sid, headers or {}),
                     timeout=15)


def messages_call(gw, sid: str, messages: list, model: str = "claude-up",
                  headers: dict | None = None, **extra):
    body = {"model": model, "max_tokens": 64, "messages": messages, **extra}
    return http_call(gw, "POST", MESSAGES, json_body=body, headers=sess(sid, headers or {}),
                     timeout=15)


def chat_text(r) -> str:
    b = ok_json(r)
    return b["choices"][0]["message"]["content"]


def anthropic_text(r) -> str:
    b = ok_json(r)
    assert b["type"] == "message", b
    return "".join(c["text"] for c in b["content"] if c["type"] == "text")


def responses_text(b: dict) -> str:
    return "".join(p["text"] for it in b["output"] if it["type"] == "message"
                   for p in it["content"] if p["type"] == "output_text")


def session_headers(r, sid: str, evicted: int | None = 0, memories: int | None = None) -> dict:
    """The x-sluice-* headers of an augmented answer, checked."""
    h = r.head if hasattr(r, "head") else r
    got = {k: h.header(f"x-sluice-{k}") for k in ("context-tokens", "turns-evicted",
                                                  "memories-used", "session")}
    assert got["session"] == sid, h
    for k in ("context-tokens", "turns-evicted", "memories-used"):
        assert got[k] is not None and got[k].isdigit(), (k, h)
        got[k] = int(got[k])
    assert got["context-tokens"] > 0, h
    if evicted is not None:
        assert got["turns-evicted"] == evicted, h
    if memories is not None:
        assert got["memories-used"] == memories, h
    return got


def _texts(content) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content] if content else []
    return [p["text"] for p in content if p.get("type") in ("text", "input_text", "output_text")
            and p.get("text")]


def upstream_view(fmt: str, sent: dict) -> tuple[str, list[tuple]]:
    """The upstream request body as (system text, [(role, text) | ("tool_call", id) |
    ("tool_result", id)]), in order. Anthropic's system blocks are joined with a blank line,
    as the OpenAI encoder joins them into one system message."""
    system: list[str] = []
    out: list[tuple] = []
    if fmt == "openai":
        for m in sent["messages"]:
            if m["role"] in ("system", "developer"):
                system += _texts(m.get("content"))
                continue
            if m["role"] == "tool":
                out.append(("tool_result", m["tool_call_id"]))
                continue
            for t in _texts(m.get("content")):
                out.append((m["role"], t))
            for tc in m.get("tool_calls") or []:
                out.append(("tool_call", tc["id"]))
    elif fmt == "anthropic":
        system = _texts(sent.get("system"))
        for m in sent["messages"]:
            c = m["content"]
            if isinstance(c, str):
                out.append((m["role"], c))
                continue
            for b in c:
                if b["type"] == "text":
                    out.append((m["role"], b["text"]))
                elif b["type"] == "tool_use":
                    out.append(("tool_call", b["id"]))
                elif b["type"] == "tool_result":
                    out.append(("tool_result", b["tool_use_id"]))
    else:
        raise AssertionError(fmt)
    return "\n\n".join(system), out


def memory_block(*lines: str) -> str:
    return MEMORY_HEADING + "".join(f"\n- {ln}" for ln in lines)


def echoed(text: str) -> dict:
    try:
        return json.loads(text)
    except ValueError:
        raise AssertionError(f"the answer is not an echoed request body: {text[:500]!r}") from None


def sse_text(res, fmt: str) -> str:
    """The answer text of a client stream: OpenAI chat chunks, Anthropic events or Responses
    events; the stream must have ended properly."""
    assert res.head.status == 200, res.head
    assert res.ended_by in ("eof-chunk", "close"), res.ended_by
    out = []
    if fmt == "chat":
        assert res.events and res.events[-1].is_done, res.data[-3:]
        for c in res.chunks():
            for ch in c.get("choices") or []:
                out.append((ch.get("delta") or {}).get("content") or "")
    elif fmt == "messages":
        types = [json.loads(e.data)["type"] for e in res.events]
        assert types[0] == "message_start" and types[-1] == "message_stop", types
        for e in res.events:
            d = json.loads(e.data)
            if d["type"] == "content_block_delta" and d["delta"]["type"] == "text_delta":
                out.append(d["delta"]["text"])
    elif fmt == "responses":
        types = [json.loads(e.data)["type"] for e in res.events]
        assert types[-1] == "response.completed", types
        for e in res.events:
            d = json.loads(e.data)
            if d["type"] == "response.output_text.delta":
                out.append(d["delta"])
    else:
        raise AssertionError(fmt)
    return "".join(out)


def stream(gw, path: str, body: dict, headers: dict):
    return stream_request(gw, json.dumps({**body, "stream": True}).encode(), path=path,
                          headers=headers, timeout=15)


# Estimated tokens of a one-text-block message, as sessions/context.cc counts them (about four
# bytes a token, 3 per block, 4 per message): used only to size windows with ample slack.
def est_message(text: str) -> int:
    return (len(text.encode()) + 3) // 4 + 3 + 4


# =============================================================================================
# Sessions: create, get, list, delete
# =============================================================================================


def test_session_create_get_and_defaults(gw):
    t0 = int(time.time())
    s = new_session(gw)
    assert s["object"] == "session", s
    assert abs(s["created_at"] - t0) <= 5, s
    # state.sessions defaults: idle 1 day, no max
    assert (s["idle_ttl"], s["max_ttl"], s["expires_at"], s["metadata"]) == (86400, 0, None, {}), s
    assert set(s) == {"id", "object", "created_at", "idle_ttl", "max_ttl", "expires_at",
                      "metadata"}, s
    assert ok_json(get(gw, f"{SESSIONS}/{s['id']}")) == {**s, "turns": 0}

    t = new_session(gw, {"idle_ttl": 60, "max_ttl": 3600, "metadata": {"user": "u-17", "app": "x"}})
    assert (t["idle_ttl"], t["max_ttl"]) == (60, 3600), t
    assert t["expires_at"] == t["created_at"] + 3600, t
    assert t["metadata"] == {"user": "u-17", "app": "x"}, t
    assert t["id"] != s["id"]
    # A bodiless POST is a session with the defaults too.
    r = http_call(gw, "POST", SESSIONS, body=b"", headers={"Content-Type": "application/json"})
    assert ok_json(r)["idle_ttl"] == 86400


def test_session_list_paging_and_order(gw):
    ids = [new_session(gw, {"metadata": {"n": str(i)}})["id"] for i in range(5)]
    page = ok_json(get(gw, SESSIONS))
    assert page["object"] == "list", page
    assert [s["id"] for s in page["data"]] == ids[::-1], page  # newest first by default
    assert (page["first_id"], page["last_id"], page["has_more"]) == (ids[-1], ids[0], False)
    assert all(s["object"] == "session" for s in page["data"])

    p1 = ok_json(get(gw, f"{SESSIONS}?limit=2"))
    assert [s["id"] for s in p1["data"]] == [ids[4], ids[3]] and p1["has_more"], p1
    p2 = ok_json(get(gw, f"{SESSIONS}?limit=2&after={p1['last_id']}"))
    assert [s["id"] for s in p2["data"]] == [ids[2], ids[1]] and p2["has_more"], p2
    p3 = ok_json(get(gw, f"{SESSIONS}?limit=2&after={p2['last_id']}"))
    assert [s["id"] for s in p3["data"]] == [ids[0]] and not p3["has_more"], p3

    asc = ok_json(get(gw, f"{SESSIONS}?order=asc&limit=3"))
    assert [s["id"] for s in asc["data"]] == ids[:3] and asc["has_more"], asc


def test_session_delete(gw):
    s = new_session(gw)
    keep = new_session(gw)
    sid = s["id"]
    add_turn(gw, sid, [user("hello")])
    add_memory(gw, sid, key="k", text="a fact")
    r = delete(gw, f"{SESSIONS}/{sid}")
    assert ok_json(r) == {"id": sid, "object": "session.deleted", "deleted": True}
    # Every later use is a 404.
    assert_error_shape(get(gw, f"{SESSIONS}/{sid}"), 404)
    assert_error_shape(delete(gw, f"{SESSIONS}/{sid}"), 404)
    assert_error_shape(get(gw, f"{SESSIONS}/{sid}/turns"), 404)
    assert_error_shape(http_call(gw, "POST", f"{SESSIONS}/{sid}/turns",
                                 json_body={"items": [user("x")]}), 404)
    assert_error_shape(get(gw, f"{SESSIONS}/{sid}/memories"), 404)
    assert_error_shape(get(gw, f"{SESSIONS}/{sid}/memories/search?q=fact"), 404)
    assert_error_shape(chat(gw, sid, [user("x")], model="demo"), 404)
    assert [x["id"] for x in ok_json(get(gw, SESSIONS))["data"]] == [keep["id"]]
    assert ok_json(get(gw, f"{SESSIONS}/{keep['id']}"))["turns"] == 0


def test_session_requests_are_validated(gw):
    sid = new_session(gw)["id"]
    bad_creates = [{"idle_ttl": -1}, {"idle_ttl": "60"}, {"max_ttl": 10 ** 12},
                   {"metadata": "x"}, {"metadata": {f"k{i}": "v" for i in range(17)}}]
    for body in bad_creates:
        assert_error_shape(http_call(gw, "POST", SESSIONS, json_body=body), 400)
    assert_error_shape(http_call(gw, "POST", SESSIONS, body=b"[1]"), 400)
    assert_error_shape(http_call(gw, "POST", SESSIONS, body=b"{nope"), 400)
    for q in ("limit=0", "limit=101", "limit=x", "order=sideways"):
        assert_error_shape(get(gw, f"{SESSIONS}?{q}"), 400)
        assert_error_shape(get(gw, f"{SESSIONS}/{sid}/turns?{q}"), 400)
    for body in ({}, {"items": []}, {"items": "hi"}, {"items": [{"type": "bogus"}]},
                 {"items": [user("x")] * 101}, {"items": [user("x")], "intent": "i" * 257},
                 {"items": [user("x")], "intent": 7}):
        assert_error_shape(http_call(gw, "POST", f"{SESSIONS}/{sid}/turns", json_body=body), 400)
    mems = f"{SESSIONS}/{sid}/memories"
    for body in ({"text": "no key"}, {"key": "no text"}, {"key": "k", "text": ""},
                 {"key": "k", "text": "t", "weight": 1.5}, {"key": "k", "text": "t", "weight": -0.1},
                 {"key": "k", "text": "t", "ttl": 0}, {"key": "k", "text": "t", "tags": [1]},
                 {"key": "k", "text": "t", "source_turns": ["one"]}, {"key": "k" * 257, "text": "t"}):
        assert_error_shape(http_call(gw, "POST", mems, json_body=body), 400)
    for q in ("k=0", "k=101", "k=two"):
        assert_error_shape(get(gw, f"{mems}/search?q=x&{q}"), 400)
    # Wrong methods are 405.
    assert_error_shape(http_call(gw, "PUT", SESSIONS, json_body={}), 405)
    assert_error_shape(http_call(gw, "POST", f"{SESSIONS}/{sid}", json_body={}), 405)
    assert_error_shape(http_call(gw, "DELETE", f"{SESSIONS}/{sid}/turns"), 405)
    assert_error_shape(http_call(gw, "POST", f"{mems}/search", json_body={}), 405)
    # Nothing above created anything.
    assert turn_count(gw, sid) == 0
    assert memories(gw, sid) == []


# =============================================================================================
# Turns
# =============================================================================================


def test_turns_append_list_and_page(gw):
    sid = new_session(gw)["id"]
    t1 = add_turn(gw, sid, [user("hello"), assistant("hi, how can I help?")], intent="greet")
    assert re.fullmatch(r"turn_[A-Za-z0-9_-]+", t1["id"]), t1
    assert (t1["object"], t1["turn"], t1["intent"]) == ("session.turn", 1, "greet"), t1
    assert abs(t1["created_at"] - time.time()) < 600, t1
    # Items are stored as Responses items.
    u, a = t1["items"]
    assert (u["type"], u["role"], u["content"]) == (
        "message", "user", [{"type": "input_text", "text": "hello"}]), u
    assert (a["type"], a["role"], item_text(a)) == ("message", "assistant", "hi, how can I help?"), a
    made = [t1]
    for i in range(2, 6):
        t = add_turn(gw, sid, [user(f"message {i}")])
        assert t["turn"] == i and t["intent"] is None, t
        made.append(t)
    call = add_turn(gw, sid, [{"type": "function_call", "call_id": "call_w", "name": "weather",
                               "arguments": '{"city":"Oslo"}'}])
    out = add_turn(gw, sid, [{"type": "function_call_output", "call_id": "call_w",
                              "output": "rain"}])
    assert (call["turn"], out["turn"]) == (6, 7)
    assert turn_view(call) == [("tool_call", "call_w")] and turn_view(out) == [("tool_result", "call_w")]
    made += [call, out]
    assert turn_count(gw, sid) == 7

    # Default order: newest first.
    page = ok_json(get(gw, f"{SESSIONS}/{sid}/turns"))
    assert [t["turn"] for t in page["data"]] == [7, 6, 5, 4, 3, 2, 1], page
    assert page["data"][::-1] == made
    assert (page["first_id"], page["last_id"], page["has_more"]) == (out["id"], t1["id"], False)
    # Paging.
    p1 = ok_json(get(gw, f"{SESSIONS}/{sid}/turns?limit=3"))
    assert [t["turn"] for t in p1["data"]] == [7, 6, 5] and p1["has_more"], p1
    p2 = ok_json(get(gw, f"{SESSIONS}/{sid}/turns?limit=3&after={p1['last_id']}"))
    assert [t["turn"] for t in p2["data"]] == [4, 3, 2] and p2["has_more"], p2
    p3 = ok_json(get(gw, f"{SESSIONS}/{sid}/turns?limit=3&after={p2['last_id']}"))
    assert [t["turn"] for t in p3["data"]] == [1] and not p3["has_more"], p3
    asc = ok_json(get(gw, f"{SESSIONS}/{sid}/turns?order=asc&limit=4&after={t1['id']}"))
    assert [t["turn"] for t in asc["data"]] == [2, 3, 4, 5] and asc["has_more"], asc
    assert [t["turn"] for t in all_turns(gw, sid)] == list(range(1, 8))


# =============================================================================================
# Memories
# =============================================================================================


def test_the_same_fact_again_raises_its_weight(gw):
    sid = new_session(gw)["id"]
    m1 = add_memory(gw, sid, key="home", text="Alice lives in Paris.", weight=0.5,
                    source_turns=[1], tags=["place"])
    assert (m1["key"], m1["text"], m1["weight"], m1["source_turns"], m1["tags"]) == (
        "home", "Alice lives in Paris.", 0.5, [1], ["place"]), m1
    assert m1["valid_to"] is None and m1["ttl"] is None and m1["expires_at"] is None, m1
    assert m1["valid_from"] == m1["created_at"], m1
    # Case, spacing and punctuation differ: the same fact.
    m2 = add_memory(gw, sid, key="home", text="  alice LIVES   in paris!! ", weight=0.6,
                    source_turns=[2], tags=["confirmed"])
    assert m2["id"] == m1["id"], (m1, m2)
    assert m2["text"] == "Alice lives in Paris.", m2
    assert m2["weight"] == pytest.approx(1 - (1 - 0.5) * (1 - 0.6)), m2
    assert m2["source_turns"] == [1, 2] and m2["tags"] == ["place", "confirmed"], m2
    # A third time with the default weight (0.5).
    m3 = add_memory(gw, sid, key="home", text="Alice lives in Paris")
    assert m3["id"] == m1["id"] and m3["weight"] == pytest.approx(1 - 0.2 * 0.5), m3
    listed = memories(gw, sid)
    assert [m["id"] for m in listed] == [m1["id"]], listed
    assert memories(gw, sid, history=True) == listed
    assert ok_json(get(gw, f"{SESSIONS}/{sid}/memories/{m1['id']}")) == m3
    # The same text under another key is another memory.
    other = add_memory(gw, sid, key="office", text="Alice lives in Paris.")
    assert other["id"] != m1["id"] and other["weight"] == 0.5


def test_a_new_text_closes_the_old_memory_and_keeps_history(gw):
    sid = new_session(gw)["id"]
    old = add_memory(gw, sid, key="home", text="Alice lives in Paris.", weight=0.8)
    pet = add_memory(gw, sid, key="pet", text="Alice has a beagle named Rex.")
    new = add_memory(gw, sid, key="home", text="Alice moved to Berlin in May.", weight=0.4)
    assert new["id"] != old["id"] and new["valid_to"] is None and new["weight"] == 0.4, new
    # Open memories only, newest first.
    assert [m["id"] for m in memories(gw, sid)] == [new["id"], pet["id"]]
    hist = memories(gw, sid, history=True)
    assert [m["id"] for m in hist] == [new["id"], pet["id"], old["id"]], hist
    closed = hist[2]
    assert closed["text"] == "Alice lives in Paris." and closed["weight"] == 0.8, closed
    assert isinstance(closed["valid_to"], int) and closed["valid_to"] >= closed["valid_from"], closed
    assert ok_json(get(gw, f"{SESSIONS}/{sid}/memories/{old['id']}")) == closed
    # The closed fact is not searched.
    assert [m["id"] for m in search(gw, sid, "Alice lives in Paris", k=10)] == [new["id"], pet["id"]]
    # Back to the first text: again a new memory (the Berlin one is closed too).
    back = add_memory(gw, sid, key="home", text="Alice lives in Paris.")
    assert back["id"] not in (old["id"], new["id"]), back
    assert [m["id"] for m in memories(gw, sid)] == [back["id"], pet["id"]]
    assert len(memories(gw, sid, history=True)) == 4


def test_a_changed_tense_is_a_new_fact_not_the_same_one(gw):
    sid = new_session(gw)["id"]
    old = add_memory(gw, sid, key="home", text="Bob lives in Rome.")
    new = add_memory(gw, sid, key="home", text="Bob lived in Rome.")
    assert new["id"] != old["id"], new
    assert new["text"] == "Bob lived in Rome." and new["weight"] == 0.5, new
    hist = memories(gw, sid, history=True)
    assert [m["valid_to"] is None for m in hist] == [True, False], hist


def test_memory_edit_and_delete(gw):
    sid = new_session(gw)["id"]
    m = add_memory(gw, sid, key="job", text="Dana is a nurse.", weight=0.3, tags=["work"])
    other = add_memory(gw, sid, key="pet", text="Dana has a cat.")
    path = f"{SESSIONS}/{sid}/memories/{m['id']}"
    assert ok_json(get(gw, path)) == m
    edited = ok_json(http_call(gw, "POST", path, json_body={"text": "Dana is a surgeon.",
                                                            "weight": 0.9, "tags": ["work", "new"]}))
    assert (edited["id"], edited["key"], edited["text"], edited["weight"], edited["tags"]) == (
        m["id"], "job", "Dana is a surgeon.", 0.9, ["work", "new"]), edited
    assert edited["created_at"] == m["created_at"] and edited["valid_to"] is None, edited
    assert ok_json(get(gw, path)) == edited
    # A partial edit keeps the rest.
    w = ok_json(http_call(gw, "POST", path, json_body={"weight": 0.2}))
    assert (w["text"], w["weight"], w["tags"]) == ("Dana is a surgeon.", 0.2, ["work", "new"]), w
    hits = search(gw, sid, "surgeon")
    assert hits[0]["id"] == m["id"] and hits[0]["text"] == "Dana is a surgeon.", hits
    assert all(h["explain"]["bm25"] == 0 for h in search(gw, sid, "nurse", explain=True))
    for body in ({"weight": 2}, {"text": ""}, {"tags": "x"}):
        assert_error_shape(http_call(gw, "POST", path, json_body=body), 400)
    # Delete.
    d = ok_json(delete(gw, path))
    assert d == {"id": m["id"], "object": "session.memory.deleted", "deleted": True}, d
    assert_error_shape(get(gw, path), 404)
    assert_error_shape(delete(gw, path), 404)
    assert_error_shape(http_call(gw, "POST", path, json_body={"weight": 0.5}), 404)
    assert [x["id"] for x in memories(gw, sid, history=True)] == [other["id"]]
    assert [h["id"] for h in search(gw, sid, "surgeon")] == [other["id"]]
    assert_error_shape(get(gw, f"{SESSIONS}/{sid}/memories/mem_nope"), 404)


def test_memory_ttl_expires(gw):
    sid = new_session(gw)["id"]
    short = add_memory(gw, sid, key="mood", text="Erin is tired today.", ttl=1)
    assert short["ttl"] == 1 and short["expires_at"] == short["created_at"] + 1, short
    keep = add_memory(gw, sid, key="city", text="Erin lives in Quito.")
    assert {m["id"] for m in memories(gw, sid)} == {short["id"], keep["id"]}
    r = chat(gw, sid, [user("how is Erin today?")], headers=ECHO)
    session_headers(r, sid, memories=2)
    time.sleep(2.1)
    assert [m["id"] for m in memories(gw, sid)] == [keep["id"]]
    assert [m["id"] for m in search(gw, sid, "Erin tired today")] == [keep["id"]]
    # Kept as history.
    assert short["id"] in [m["id"] for m in memories(gw, sid, history=True)]
    # And no longer in the prompt.
    r = chat(gw, sid, [user("how is Erin today?")], headers=ECHO)
    session_headers(r, sid, memories=1)
    system, _ = upstream_view("openai", echoed(chat_text(r)))
    assert system == memory_block("city: Erin lives in Quito."), system
    # A new memory under the expired key is simply a new one.
    again = add_memory(gw, sid, key="mood", text="Erin is tired today.")
    assert again["id"] != short["id"] and again["weight"] == 0.5, again


FACTS = [
    ("job", "Dana works as a nurse at St. Mary's hospital.", 0.5),
    ("home", "Dana lives in Lisbon, near the river.", 0.5),
    ("pet", "Dana has two cats named Miso and Tofu.", 0.5),
    ("hobby", "Dana enjoys climbing on weekends.", 0.9),
    ("food", "Dana is vegetarian.", 0.1),
]


def test_search_ranking_explain_and_stemming(gw):
    sid = new_session(gw)["id"]
    ids = {k: add_memory(gw, sid, key=k, text=t, weight=w)["id"] for k, t, w in FACTS}
    key_of = {v: k for k, v in ids.items()}
    # lives / lived / living all meet "live"; plural cats meets cat.
    for q in ("where has she lived?", "living abroad", "LIVES", "live"):
        hits = search(gw, sid, q, explain=True)
        assert key_of[hits[0]["id"]] == "home", (q, hits)
        assert hits[0]["explain"]["relevance"] == pytest.approx(1.0), hits[0]
    assert key_of[search(gw, sid, "cat")[0]["id"]] == "pet"
    assert key_of[search(gw, sid, "nursing")[0]["id"]] == "job"
    # Ranking: alpha·relevance + beta·recency + gamma·weight, best first, with explain.
    hits = search(gw, sid, "what does Dana do at the hospital", explain=True)
    assert len(hits) == len(FACTS), hits
    assert key_of[hits[0]["id"]] == "job", hits
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True), scores
    best_bm25 = max(h["explain"]["bm25"] for h in hits)
    assert best_bm25 > 0
    for h in hits:
        e = h["explain"]
        assert set(e) == {"relevance", "bm25", "recency", "weight", "alpha", "beta", "gamma"}, e
        assert (e["alpha"], e["beta"], e["gamma"]) == (1.0, 0.2, 0.3), e  # the defaults
        assert e["relevance"] == pytest.approx(e["bm25"] / best_bm25), e
        assert 0.99 < e["recency"] <= 1.0, e  # just written, a week's half-life
        assert e["weight"] == pytest.approx(h["weight"]), (e, h)
        assert h["score"] == pytest.approx(e["alpha"] * e["relevance"] + e["beta"] * e["recency"]
                                           + e["gamma"] * e["weight"]), h
    # "Dana" is in every memory: the other terms decide; with no matching term, weight does.
    hits = search(gw, sid, "zebra")
    assert [key_of[h["id"]] for h in hits][:1] == ["hobby"], hits
    assert key_of[hits[-1]["id"]] == "food", hits
    # k limits; without explain there is a score but no explain.
    hits = search(gw, sid, "Dana", k=2)
    assert len(hits) == 2 and all("score" in h and "explain" not in h for h in hits), hits
    # The key is searched too.
    assert key_of[search(gw, sid, "hobby")[0]["id"]] == "hobby"
    # k defaults to 10.
    for i in range(7):
        add_memory(gw, sid, key=f"extra{i}", text=f"Dana's extra fact number {i}.")
    assert len(search(gw, sid, "Dana")) == 10


def _backend_top(request, backend: str) -> str:
    if backend == "redis":
        r = request.getfixturevalue("redis")
        return f'redis: {{url: "redis://127.0.0.1:{r.port}"}}\nstate: {{backend: redis}}\n'
    if backend == "sqlite":
        return f"state: {{backend: sqlite, path: {backend}.db}}\n"
    return ""


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
def test_concurrent_writes_of_one_memory_key(start, request, backend):
    """20 writers at once, 10 rounds: the same text is one memory whose weight counts every
    write (1 − 0.5^20); 20 different texts leave exactly one open memory and 19 closed ones."""
    gw = start(_backend_top(request, backend))
    n = 20

    def at_once(fn):
        barrier = threading.Barrier(n)
        out = [None] * n

        def one(i):
            barrier.wait(10)
            out[i] = fn(i)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        return out

    for rnd in range(10):
        sid = new_session(gw)["id"]
        path = f"{SESSIONS}/{sid}/memories"
        out = at_once(lambda i: http_call(gw, "POST", path, json_body={"key": "same", "text": "one fact"}))
        assert all(r.status == 200 for r in out), out
        got = memories(gw, sid, history=True)
        assert len(got) == 1, (rnd, got)
        assert got[0]["weight"] == pytest.approx(1 - 0.5 ** n, abs=1e-12), (rnd, got)
        out = at_once(lambda i: http_call(gw, "POST", path, json_body={"key": "k", "text": f"fact {i}"}))
        assert all(r.status == 200 for r in out), out
        got = [m for m in memories(gw, sid, history=True) if m["key"] == "k"]
        assert len(got) == n, (rnd, got)
        assert sum(m["valid_to"] is None for m in got) == 1, (rnd, [m["text"] for m in got
                                                                   if m["valid_to"] is None])


# =============================================================================================
# Augmentation
# =============================================================================================


def _seed(gw) -> str:
    """A session with two turns and three memories; the query 'What breed is Rex?' makes the
    pet memory the most relevant, then by weight home (0.9) and job (0.2)."""
    sid = new_session(gw)["id"]
    add_turn(gw, sid, [user("I adopted a dog last week."), assistant("Congratulations!")])
    add_turn(gw, sid, [user("His name is Rex."), assistant("Lovely name.")])
    add_memory(gw, sid, key="pet", text="Rex is a beagle.", weight=0.5)
    add_memory(gw, sid, key="home", text="The user lives in Oslo.", weight=0.9)
    add_memory(gw, sid, key="job", text="The user teaches math.", weight=0.2)
    return sid


SEED_HISTORY = [("user", "I adopted a dog last week."), ("assistant", "Congratulations!"),
                ("user", "His name is Rex."), ("assistant", "Lovely name.")]
SEED_MEMORIES = memory_block("pet: Rex is a beagle.", "home: The user lives in Oslo.",
                             "job: The user teaches math.")
QUESTION = "What breed is Rex?"


def _check_recorded(gw, sid: str, n: int, question: str, answer: str):
    """The session's newest turn is number n and holds the question and the answer (the client's
    system prompt is not part of it)."""
    turns = all_turns(gw, sid)
    assert len(turns) == n, [turn_view(t) for t in turns]
    assert turns[-1]["turn"] == n, turns[-1]
    assert turn_view(turns[-1]) == [("user", question), ("assistant", answer)], turns[-1]


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_chat_unary_is_augmented_and_recorded(gw, fmt):
    sid = _seed(gw)
    r = chat(gw, sid, [{"role": "system", "content": "Answer briefly."}, user(QUESTION)],
             model=FORMATS[fmt], headers=ECHO, max_tokens=64)
    h = session_headers(r, sid, evicted=0, memories=3)
    text = chat_text(r)
    sent = echoed(text)
    system, msgs = upstream_view(fmt, sent)
    assert system == "Answer briefly.\n\n" + SEED_MEMORIES, system
    assert msgs == SEED_HISTORY + [("user", QUESTION)], msgs
    assert h["context-tokens"] >= est_message(QUESTION)
    _check_recorded(gw, sid, 3, QUESTION, text)
    # The next request replays the recorded exchange too.
    r = chat(gw, sid, [user("And his age?")], model=FORMATS[fmt], headers=ECHO, max_tokens=64)
    session_headers(r, sid, evicted=0)
    _, msgs = upstream_view(fmt, echoed(chat_text(r)))
    assert msgs == SEED_HISTORY + [("user", QUESTION), ("assistant", text),
                                   ("user", "And his age?")], msgs


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_chat_stream_is_augmented_and_recorded(gw, fmt):
    sid = _seed(gw)
    res = stream(gw, CHAT, {"model": FORMATS[fmt], "messages": [user(QUESTION)]}, sess(sid, ECHO))
    session_headers(res, sid, evicted=0, memories=3)
    assert (res.head.header("content-type") or "").startswith("text/event-stream"), res.head
    text = sse_text(res, "chat")
    system, msgs = upstream_view(fmt, echoed(text))
    assert system == SEED_MEMORIES, system
    assert msgs == SEED_HISTORY + [("user", QUESTION)], msgs
    _check_recorded(gw, sid, 3, QUESTION, text)


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_anthropic_messages_are_augmented_and_recorded(gw, fmt):
    sid = _seed(gw)
    r = messages_call(gw, sid, [user(QUESTION)], model=FORMATS[fmt], headers=ECHO,
                      system="Answer briefly.")
    session_headers(r, sid, evicted=0, memories=3)
    text = anthropic_text(r)
    system, msgs = upstream_view(fmt, echoed(text))
    assert system == "Answer briefly.\n\n" + SEED_MEMORIES, system
    assert msgs == SEED_HISTORY + [("user", QUESTION)], msgs
    _check_recorded(gw, sid, 3, QUESTION, text)
    # Streamed.
    res = stream(gw, MESSAGES, {"model": FORMATS[fmt], "max_tokens": 64,
                                "messages": [user("Is he trained?")]}, sess(sid, ECHO))
    session_headers(res, sid, evicted=0)
    text2 = sse_text(res, "messages")
    _, msgs = upstream_view(fmt, echoed(text2))
    assert msgs == SEED_HISTORY + [("user", QUESTION), ("assistant", text),
                                   ("user", "Is he trained?")], msgs
    _check_recorded(gw, sid, 4, "Is he trained?", text2)


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_responses_api_is_augmented_and_recorded(gw, fmt):
    sid = _seed(gw)
    r = http_call(gw, "POST", RESPONSES, json_body={"model": FORMATS[fmt], "input": QUESTION,
                                                    "instructions": "Answer briefly."},
                  headers=sess(sid, ECHO), timeout=15)
    session_headers(r, sid, evicted=0, memories=3)
    b = ok_json(r)
    assert b["object"] == "response" and b["status"] == "completed", b
    text = responses_text(b)
    system, msgs = upstream_view(fmt, echoed(text))
    assert system == "Answer briefly.\n\n" + SEED_MEMORIES, system
    assert msgs == SEED_HISTORY + [("user", QUESTION)], msgs
    _check_recorded(gw, sid, 3, QUESTION, text)
    # The stored response's input items are its own input, not the session's context.
    items = ok_json(get(gw, f"{RESPONSES}/{b['id']}/input_items"))["data"]
    assert [item_text(i) for i in items] == [QUESTION], items
    # Streamed.
    res = stream(gw, RESPONSES, {"model": FORMATS[fmt], "input": "Is he trained?"}, sess(sid, ECHO))
    session_headers(res, sid, evicted=0)
    text2 = sse_text(res, "responses")
    _, msgs = upstream_view(fmt, echoed(text2))
    assert msgs == SEED_HISTORY + [("user", QUESTION), ("assistant", text),
                                   ("user", "Is he trained?")], msgs
    _check_recorded(gw, sid, 4, "Is he trained?", text2)


def test_demo_model_in_a_session_on_every_protocol(gw):
    sid = _seed(gw)
    n = 2
    calls = [
        ("chat", lambda q: chat(gw, sid, [user(q)], model="demo"),
         lambda r: chat_text(r)),
        ("messages", lambda q: messages_call(gw, sid, [user(q)], model="demo"),
         lambda r: anthropic_text(r)),
        ("responses", lambda q: http_call(gw, "POST", RESPONSES, json_body={"model": "demo", "input": q},
                                          headers=sess(sid)),
         lambda r: responses_text(ok_json(r))),
    ]
    for name, call, text_of in calls:
        q = f"Tell me about Rex ({name})"
        r = call(q)
        session_headers(r, sid, evicted=0, memories=3)
        text = text_of(r)
        assert text.startswith(DEMO_PREFIX) and f'You said: "{q}"' in text, text
        n += 1
        _check_recorded(gw, sid, n, q, text)
    for path, body in ((CHAT, {"model": "demo", "messages": [user("streamed chat")]}),
                       (MESSAGES, {"model": "demo", "max_tokens": 64,
                                   "messages": [user("streamed messages")]}),
                       (RESPONSES, {"model": "demo", "input": "streamed responses"})):
        res = stream(gw, path, body, sess(sid))
        session_headers(res, sid, evicted=0, memories=3)
        kind = {CHAT: "chat", MESSAGES: "messages", RESPONSES: "responses"}[path]
        text = sse_text(res, kind)
        assert text.startswith(DEMO_PREFIX), text
        n += 1
        _check_recorded(gw, sid, n, f"streamed {kind}", text)


def test_memories_in_the_prompt_follow_memories_k_and_memory_share(start):
    gw = start("state: {backend: memory, sessions: {memories_k: 2}}\n")
    sid = _seed(gw)
    r = chat(gw, sid, [user(QUESTION)], headers=ECHO)
    session_headers(r, sid, memories=2)
    system, _ = upstream_view("openai", echoed(chat_text(r)))
    assert system == memory_block("pet: Rex is a beagle.", "home: The user lives in Oslo."), system
    # The best memory is the one most relevant to the newest user text.
    r = chat(gw, sid, [user("What subject do they teach?")], headers=ECHO)
    system, _ = upstream_view("openai", echoed(chat_text(r)))
    assert system == memory_block("job: The user teaches math.", "home: The user lives in Oslo."), system
    # A memory share too small for a second line: only the best one.
    gw2 = start("state: {backend: memory, sessions: {memory_share: 0.0002}}\n")  # ~25 tokens
    sid2 = _seed(gw2)
    r = chat(gw2, sid2, [user(QUESTION)], headers=ECHO)
    session_headers(r, sid2, memories=1)
    system, _ = upstream_view("openai", echoed(chat_text(r)))
    assert system == memory_block("pet: Rex is a beagle."), system


# ---- eviction --------------------------------------------------------------------------------


def _filler(i: int) -> str:
    head = f"old turn {i}: "
    return head + "x" * (200 - len(head))


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_eviction_keeps_the_newest_whole_turns(start, fmt):
    # margin 0: the budget is context_window − max_tokens; 3 of the 6 turns fit, with slack.
    per_turn, question, max_tokens = est_message(_filler(0)), "now?", 16
    window = max_tokens + est_message(question) + 3 * per_turn + per_turn // 2
    gw = start("state: {backend: memory, sessions: {margin_tokens: 0}}\n",
               routes=windowed_route("tight", window, fmt))
    sid = new_session(gw)["id"]
    for i in range(1, 7):
        add_turn(gw, sid, [user(_filler(i))])
    r = chat(gw, sid, [user(question)], model="tight", headers=ECHO, max_tokens=max_tokens)
    h = session_headers(r, sid, evicted=3, memories=0)
    assert h["context-tokens"] <= window - max_tokens, h
    _, msgs = upstream_view(fmt, echoed(chat_text(r)))
    assert msgs == [("user", _filler(4)), ("user", _filler(5)), ("user", _filler(6)),
                    ("user", question)], msgs
    # A larger max_tokens leaves room for fewer turns.
    r = chat(gw, sid, [user(question)], model="tight", headers=ECHO,
             max_tokens=max_tokens + 2 * per_turn)
    session_headers(r, sid, evicted=7)  # 7 turns now; the newest (the echo above) is too big
    _, msgs = upstream_view(fmt, echoed(chat_text(r)))
    assert msgs == [("user", question)], msgs


def test_eviction_on_the_demo_model_uses_default_context_window(start):
    per_turn, question = est_message(_filler(0)), "demo?"
    # The demo route has no context_window: state.sessions.default_context_window applies.
    window = est_message(question) + 2 * per_turn + per_turn // 2
    gw = start(f"state: {{backend: memory, sessions: {{margin_tokens: 0, "
               f"default_context_window: {window}}}}}\n")
    sid = new_session(gw)["id"]
    for i in range(1, 6):
        add_turn(gw, sid, [user(_filler(i))])
    r = chat(gw, sid, [user(question)], model="demo")
    h = session_headers(r, sid, evicted=3)
    assert h["context-tokens"] <= window, h
    assert f'You said: "{question}"' in chat_text(r)


def test_eviction_never_splits_a_tool_call_from_its_result(start):
    question, latest, max_tokens = "and tomorrow?", "Thanks, so it rains in Oslo today.", 16
    args = json.dumps({"city": "Oslo", "notes": "n" * 400})
    call = {"type": "function_call", "call_id": "call_wx", "name": "weather", "arguments": args}
    result = {"type": "function_call_output", "call_id": "call_wx", "output": "rain, 7 C"}
    first = [user(_filler(1))]  # ~57 tokens
    call_tokens = (len("weather") + len(args) + 3) // 4 + 3 + 4  # ~117
    result_tokens = 15  # the id, the output and the framing, roughly
    base = max_tokens + est_message(question) + est_message(latest) + result_tokens
    # Room for the newest turn and the (small) result turn, not for the call turn: the result
    # must be left out with its call.
    tight = base + 30
    # Room for call and result, not for the first turn: they travel together.
    roomy = base + call_tokens + 30
    gw = start("state: {backend: memory, sessions: {margin_tokens: 0}}\n",
               routes=windowed_route("tight", tight) + windowed_route("roomy", roomy))
    sids = []
    for _ in range(2):
        sid = new_session(gw)["id"]
        for items in (first, [call], [result], [user(latest)]):
            add_turn(gw, sid, items)
        sids.append(sid)
    r = chat(gw, sids[0], [user(question)], model="tight", headers=ECHO, max_tokens=max_tokens)
    session_headers(r, sids[0], evicted=3)
    _, msgs = upstream_view("openai", echoed(chat_text(r)))
    assert msgs == [("user", latest), ("user", question)], msgs
    r = chat(gw, sids[1], [user(question)], model="roomy", headers=ECHO, max_tokens=max_tokens)
    session_headers(r, sids[1], evicted=1)
    _, msgs = upstream_view("openai", echoed(chat_text(r)))
    assert msgs == [("tool_call", "call_wx"), ("tool_result", "call_wx"), ("user", latest),
                    ("user", question)], msgs


def test_the_budget_counts_the_max_tokens_sent_upstream(start):
    window = 1000
    route = windowed_route("claude-win", window, "anthropic") + "    default_max_tokens: 600\n"
    gw = start("state: {backend: memory, sessions: {margin_tokens: 0}}\n", routes=route)
    sid = new_session(gw)["id"]
    for i in range(20):  # ~57 tokens each
        add_turn(gw, sid, [user(_filler(i))])
    # An OpenAI client that names no max_tokens: the gateway sends 600 to Anthropic.
    r = chat(gw, sid, [user("q")], model="claude-win", headers=ECHO)
    h = session_headers(r, sid, evicted=None)
    sent = echoed(chat_text(r))
    assert sent["max_tokens"] == 600, sent.get("max_tokens")
    assert h["context-tokens"] + sent["max_tokens"] <= window, (h, sent["max_tokens"])


def test_a_request_answering_a_stored_tool_call_keeps_that_call(start):
    call = {"type": "function_call", "call_id": "call_big", "name": "weather",
            "arguments": json.dumps({"city": "Oslo", "notes": "n" * 400})}
    gw = start("state: {backend: memory, sessions: {margin_tokens: 0}}\n",
               routes=windowed_route("tight", 80))
    sid = new_session(gw)["id"]
    add_turn(gw, sid, [user("What is the weather in Oslo?"), call])
    r = chat(gw, sid, [{"role": "tool", "tool_call_id": "call_big", "content": "rain"}],
             model="tight", headers=ECHO, max_tokens=16)
    if r.status == 200:
        _, msgs = upstream_view("openai", echoed(chat_text(r)))
        calls = [m[1] for m in msgs if m[0] == "tool_call"]
        results = [m[1] for m in msgs if m[0] == "tool_result"]
        assert all(c in calls for c in results), f"orphan tool result sent upstream: {msgs}"
    else:  # refusing the request is acceptable too, as a client error
        assert_error_shape(r, 400)


# ---- what is recorded, and when --------------------------------------------------------------


def test_failed_upstream_answers_record_no_turn(gw):
    sid = new_session(gw)["id"]
    r = chat(gw, sid, [user("this fails")], headers={"x-mock-status": "400"})
    assert_error_shape(r, 400)
    res = stream(gw, CHAT, {"model": "mock-model", "messages": [user("this breaks")]},
                 sess(sid, {"x-mock-error-after": "2"}))
    assert res.head.status == 200, res.head
    assert turn_count(gw, sid) == 0
    r = chat(gw, sid, [user("this works")], headers={"x-mock-tokens": "2"})
    assert chat_text(r) == "w1 w2"
    assert [turn_view(t) for t in all_turns(gw, sid)] == [[("user", "this works"),
                                                          ("assistant", "w1 w2")]]


def _stream_until_done(gw, path: str, body: dict, headers: dict):
    """Sends a streamed request and reads up to its last event ([DONE] / message_stop), leaving
    the end of the chunked body unread. Returns (connection, rest of the events)."""
    c = RawHttp(gw.host, gw.port, timeout=10)
    c.send(build_request("POST", path, json.dumps({**body, "stream": True}).encode(), headers))
    head = c.read_head()
    if head.status != 200:
        head.body = b"".join(c.iter_body(head))
        c.close()
        raise AssertionError(f"stream refused: {head!r}")
    events = parse_sse(c.iter_body(head))
    for ev in events:
        if ev.is_done or '"message_stop"' in ev.data:
            return c, events
    c.close()
    raise AssertionError("stream ended without its last event")


def test_read_your_writes_200_back_to_back_requests(gw, mock):
    """Each request's upstream body (GET /mock/last) holds every earlier exchange, the previous
    one last: its turn was stored before the client had the whole answer. Streams are answered
    up to their last event and left undrained while the next request goes out."""
    sid = new_session(gw)["id"]
    tok = {"x-mock-tokens": "1"}
    pending = None
    expected_users: list[str] = []
    for i in range(200):
        q = f"ryw {i}"
        kind = i % 4
        if kind == 0:
            assert chat_text(chat(gw, sid, [user(q)], headers=tok)) == "w1"
        elif kind == 1:
            anthropic_text(messages_call(gw, sid, [user(q)], model="mock-model", headers=tok))
        elif kind == 2:
            conn, rest = _stream_until_done(gw, CHAT, {"model": "mock-model",
                                                       "messages": [user(q)]}, sess(sid, tok))
        else:
            conn, rest = _stream_until_done(gw, MESSAGES, {"model": "mock-model", "max_tokens": 8,
                                                           "messages": [user(q)]}, sess(sid, tok))
        if pending is not None:
            pc, prest = pending
            for _ in prest:
                pass
            pc.close()
            pending = None
        if kind >= 2:
            pending = (conn, rest)
        sent = json.loads(mock.last()["body"])
        _, msgs = upstream_view("openai", sent)
        users = [t for r, t in msgs if r == "user"]
        assert users == expected_users + [q], (i, msgs[-6:])
        assert len(msgs) == 2 * i + 1, (i, len(msgs))
        expected_users.append(q)
    if pending is not None:
        for _ in pending[1]:
            pass
        pending[0].close()
    assert turn_count(gw, sid) == 200


def _concurrent(gw, sid: str, n: int) -> list:
    """n augmented requests at once on one session (half streamed); returns the errors."""
    errors: list = []
    barrier = threading.Barrier(n)
    tok = {"x-mock-tokens": "1"}

    def one(i: int):
        try:
            barrier.wait(10)
            if i % 2:
                res = stream(gw, CHAT, {"model": "mock-model", "messages": [user(f"conc {i}")]},
                             sess(sid, tok))
                assert sse_text(res, "chat") == "w1 ", res.data
            else:
                assert chat_text(chat(gw, sid, [user(f"conc {i}")], headers=tok)) == "w1"
        except BaseException as e:  # noqa: BLE001 (reported by the test)
            errors.append((i, repr(e)[:500]))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return errors


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
def test_50_concurrent_requests_on_one_session(start, request, backend):
    gw = start(_backend_top(request, backend))
    sid = new_session(gw)["id"]
    add_turn(gw, sid, [user("before")])
    errors = _concurrent(gw, sid, 50)
    assert not errors, errors
    turns = all_turns(gw, sid)
    nums = [t["turn"] for t in turns]
    assert nums == list(range(1, 52)), nums  # unique, strictly increasing, no gap
    assert turn_count(gw, sid) == 51
    texts = [turn_view(t) for t in turns[1:]]
    assert sorted(v[0][1] for v in texts) == sorted(f"conc {i}" for i in range(50)), texts
    assert all(len(v) == 2 and v[1][0] == "assistant" for v in texts), texts
    assert len({t["id"] for t in turns}) == 51


# =============================================================================================
# Errors, owners, expiry
# =============================================================================================


def test_unknown_session_is_404_in_each_protocols_shape(gw, mock):
    missing = "sess_0123456789abcdef"
    mock.reset()
    err = assert_error_shape(chat(gw, missing, [user("x")], model="demo"), 404)
    assert missing in err["message"], err
    res = stream(gw, CHAT, {"model": "demo", "messages": [user("x")]}, sess(missing))
    assert res.head.status == 404, res.head
    r = messages_call(gw, missing, [user("x")], model="demo")
    assert r.status == 404, r
    b = ok_json(r, 404)
    assert b["type"] == "error" and b["error"]["type"] == "not_found_error", b
    assert missing in b["error"]["message"], b
    r = http_call(gw, "POST", RESPONSES, json_body={"model": "demo", "input": "x"},
                  headers=sess(missing))
    assert_error_shape(r, 404)
    for path in (f"{SESSIONS}/{missing}", f"{SESSIONS}/{missing}/turns",
                 f"{SESSIONS}/{missing}/memories"):
        assert_error_shape(get(gw, path), 404)
    # On mock routes (OpenAI and Anthropic upstreams, Anthropic client too): the upstream is
    # never asked.
    assert_error_shape(chat(gw, missing, [user("x")], model="mock-model"), 404)
    assert messages_call(gw, missing, [user("x")], model="claude-up").json()["error"]["type"] \
        == "not_found_error"
    assert mock.stats()["requests"] == 0


def test_a_non_chat_request_with_a_session_is_400(gw, mock):
    sid = new_session(gw)["id"]
    mock.reset()
    r = http_call(gw, "POST", "/v1/embeddings", json_body={"model": "mock-model", "input": "x"},
                  headers=sess(sid))
    err = assert_error_shape(r, 400)
    assert "x-sluice-session" in err["message"], err
    assert mock.stats()["requests"] == 0
    assert turn_count(gw, sid) == 0
    r = http_call(gw, "POST", "/v1/completions", json_body={"model": "mock-model", "prompt": "x"},
                  headers=sess(sid))
    assert_error_shape(r, 400)
    assert mock.stats()["requests"] == 0
    # Without the header the same request is served.
    assert http_call(gw, "POST", "/v1/embeddings",
                     json_body={"model": "mock-model", "input": "x"}).status == 200


KEY_A1, KEY_A2, KEY_B = "sk-sess-alpha-1", "sk-sess-alpha-2", "sk-sess-beta-1"
AUTH = f"""\
auth:
  enabled: true
  keys:
    - {{name: alpha-1, key_sha256: "{sha(KEY_A1)}", tenant: alpha}}
    - {{name: alpha-2, key_sha256: "{sha(KEY_A2)}", tenant: alpha}}
    - {{name: beta-1, key_sha256: "{sha(KEY_B)}", tenant: beta}}
"""


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_sessions_belong_to_their_tenant(start):
    gw = start(AUTH)
    a, a2, b = bearer(KEY_A1), bearer(KEY_A2), bearer(KEY_B)
    assert_error_shape(http_call(gw, "POST", SESSIONS, json_body={}), 401)
    s = new_session(gw, {"metadata": {"owner": "alpha"}}, a)
    sid = s["id"]
    add_turn(gw, sid, [user("alpha secret turn")], headers=a)
    mem = add_memory(gw, sid, a, key="secret", text="The alpha launch code is 1234.")
    sb = new_session(gw, {}, b)
    base = f"{SESSIONS}/{sid}"
    # Another tenant: every path is a 404, and nothing changes.
    for method, path, body in (
            ("GET", base, None), ("DELETE", base, None), ("GET", f"{base}/turns", None),
            ("POST", f"{base}/turns", {"items": [user("beta was here")]}),
            ("GET", f"{base}/memories", None), ("GET", f"{base}/memories/search?q=launch", None),
            ("POST", f"{base}/memories", {"key": "secret", "text": "overwritten"}),
            ("GET", f"{base}/memories/{mem['id']}", None),
            ("POST", f"{base}/memories/{mem['id']}", {"text": "edited"}),
            ("DELETE", f"{base}/memories/{mem['id']}", None)):
        assert_error_shape(http_call(gw, method, path, json_body=body, headers=b), 404)
    assert_error_shape(chat(gw, sid, [user("x")], model="demo", headers=b), 404)
    r = messages_call(gw, sid, [user("x")], model="demo", headers=b)
    assert r.status == 404 and r.json()["error"]["type"] == "not_found_error", r
    assert [x["id"] for x in ok_json(get(gw, SESSIONS, b))["data"]] == [sb["id"]]
    # The owner's tenant (another key of it too) sees everything unchanged.
    assert [x["id"] for x in ok_json(get(gw, SESSIONS, a2))["data"]] == [sid]
    assert ok_json(get(gw, base, a2)) == {**s, "turns": 1}
    assert [turn_view(t) for t in all_turns(gw, sid, a2)] == [[("user", "alpha secret turn")]]
    assert memories(gw, sid, history=True, headers=a2) == [mem]
    r = chat(gw, sid, [user("hi")], model="demo", headers=a2)
    session_headers(r, sid, memories=1)
    assert turn_count(gw, sid, a) == 2
    # And beta's session is beta's.
    assert_error_shape(get(gw, f"{SESSIONS}/{sb['id']}", a), 404)


def test_idle_and_max_ttl_expiry(gw):
    idle1 = new_session(gw, {"idle_ttl": 1})["id"]
    idle2 = new_session(gw, {"idle_ttl": 2})["id"]
    capped = new_session(gw, {"idle_ttl": 0, "max_ttl": 1})["id"]
    forever = new_session(gw, {"idle_ttl": 0})["id"]
    add_memory(gw, idle1, key="k", text="v")
    time.sleep(1.2)
    # A turn keeps idle2 alive for another 2 s.
    add_turn(gw, idle2, [user("still here")])
    time.sleep(1.0)
    for sid in (idle1, capped):
        assert_error_shape(get(gw, f"{SESSIONS}/{sid}"), 404)
        assert_error_shape(get(gw, f"{SESSIONS}/{sid}/memories"), 404)
        assert_error_shape(chat(gw, sid, [user("x")], model="demo"), 404)
        assert_error_shape(http_call(gw, "POST", f"{SESSIONS}/{sid}/turns",
                                     json_body={"items": [user("x")]}), 404)
    assert turn_count(gw, idle2) == 1
    assert turn_count(gw, forever) == 0
    listed = [s["id"] for s in ok_json(get(gw, SESSIONS))["data"]]
    assert sorted(listed) == sorted([idle2, forever]), listed


def test_a_session_deleted_during_a_request_stays_deleted(gw, mock):
    sid = new_session(gw)["id"]
    mock.reset()
    out = {}

    def slow():
        out["r"] = chat(gw, sid, [user("slow one")], headers={"x-mock-latency-ms": "600"})

    t = threading.Thread(target=slow)
    t.start()
    # Deleted once the augmented request is at the upstream.
    assert poll(lambda: mock.stats()["active"] >= 1, 5), mock.stats()
    assert ok_json(delete(gw, f"{SESSIONS}/{sid}"))["deleted"] is True
    t.join(10)
    assert out["r"].status in (200, 404), out["r"]
    assert_error_shape(get(gw, f"{SESSIONS}/{sid}"), 404)
    assert_error_shape(get(gw, f"{SESSIONS}/{sid}/turns"), 404)


# =============================================================================================
# Backends
# =============================================================================================


def _fill(gw) -> dict:
    sid = new_session(gw, {"metadata": {"who": "persisted"}})["id"]
    add_turn(gw, sid, [user("My sister is called Ines.")], intent="family")
    r = chat(gw, sid, [user("Where should we eat tonight?")], headers={"x-mock-tokens": "2"})
    assert chat_text(r) == "w1 w2"
    old = add_memory(gw, sid, key="city", text="The user lives in Porto.", weight=0.7)
    new = add_memory(gw, sid, key="city", text="The user moved to Braga.", weight=0.6)
    add_memory(gw, sid, key="sister", text="The user's sister is Ines.", tags=["family"],
               source_turns=[1])
    return {"sid": sid, "session": ok_json(get(gw, f"{SESSIONS}/{sid}")),
            "turns": all_turns(gw, sid), "mems": memories(gw, sid, history=True),
            "old": old["id"], "new": new["id"]}


def _check(gw, st: dict):
    sid = st["sid"]
    assert ok_json(get(gw, f"{SESSIONS}/{sid}")) == st["session"]
    assert st["session"]["turns"] == 2
    assert all_turns(gw, sid) == st["turns"]
    assert memories(gw, sid, history=True) == st["mems"]
    assert st["old"] not in [m["id"] for m in memories(gw, sid)]
    assert search(gw, sid, "where does the user live")[0]["id"] == st["new"]
    assert sid in [s["id"] for s in ok_json(get(gw, SESSIONS))["data"]]
    # An augmented request replays the stored turns and memories.
    r = chat(gw, sid, [user("Who is Ines?")], headers=ECHO)
    session_headers(r, sid, memories=2)
    system, msgs = upstream_view("openai", echoed(chat_text(r)))
    assert system == memory_block("sister: The user's sister is Ines.",
                                  "city: The user moved to Braga."), system
    assert msgs == [("user", "My sister is called Ines."), ("user", "Where should we eat tonight?"),
                    ("assistant", "w1 w2"), ("user", "Who is Ines?")], msgs


def test_sqlite_keeps_sessions_turns_and_memories_across_a_restart(start, tmp_path):
    gw = start("state: {backend: sqlite, path: sessions.db}\n")
    st = _fill(gw)
    gw.proc.signal(signal.SIGKILL)
    gw.proc.wait(5)
    assert (gw.config_path.parent / "sessions.db").exists(), list(tmp_path.iterdir())
    gw2 = start.restart(gw)
    _check(gw2, st)
    assert turn_count(gw2, st["sid"]) == 3
    # A deletion persists too.
    assert ok_json(delete(gw2, f"{SESSIONS}/{st['sid']}"))["deleted"] is True
    gw2.proc.signal(signal.SIGKILL)
    gw2.proc.wait(5)
    gw3 = start.restart(gw)
    assert_error_shape(get(gw3, f"{SESSIONS}/{st['sid']}"), 404)
    assert ok_json(get(gw3, SESSIONS))["data"] == []


def test_redis_sessions_are_shared_by_two_instances(start, redis):
    top = f'redis: {{url: "redis://127.0.0.1:{redis.port}"}}\nstate: {{backend: redis}}\n'
    a = start(top, name="gw-a")
    b = start(top, name="gw-b")
    st = _fill(a)
    _check(b, st)
    sid = st["sid"]
    # Writes on b are seen by a at once: a turn recorded by an augmented request on b...
    r = chat(b, sid, [user("written on b")], headers={"x-mock-tokens": "1"})
    assert chat_text(r) == "w1"
    assert turn_view(all_turns(a, sid)[-1]) == [("user", "written on b"), ("assistant", "w1")]
    # ...a memory merged on b...
    m = add_memory(b, sid, key="sister", text="the user's sister is ines")
    assert m["weight"] == pytest.approx(0.75), m
    assert [x["weight"] for x in memories(a, sid) if x["key"] == "sister"] == [pytest.approx(0.75)]
    # ...and a deletion.
    assert ok_json(delete(b, f"{SESSIONS}/{sid}"))["deleted"] is True
    assert_error_shape(get(a, f"{SESSIONS}/{sid}"), 404)
    assert_error_shape(chat(a, sid, [user("x")], model="demo"), 404)
    keys = redis.command("KEYS", "*")
    assert all(k.startswith("sluice:") for k in keys), keys
