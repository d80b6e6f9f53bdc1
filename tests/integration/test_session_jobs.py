"""The work after a session's turn (api/session_jobs.cc): facts extracted by a configured model,
evicted turns folded into rolling summaries, and vector similarity through an embeddings route.

The "models" are sluice-mock targets with a fixed answer (`x-mock-reply` set as a target header:
the JSON an extraction model would give) or trigram embeddings (`x-mock-embedding: trigrams`:
texts that share spellings point the same way). What reached the upstream is read back with
`x-mock-echo-request: 1`.

    cd /work/main && /usr/bin/python3 -m pytest tests/integration/test_session_jobs.py -q
"""

from __future__ import annotations

import json

import pytest

from conftest import ConfigStarter, http_call, poll, sha
from test_sessions import (CHAT, SESSIONS, add_memory, assistant, get, memories, new_session,
                           ok_json, search, user)

ECHO = {"x-mock-echo-request": "1"}
ROOMY = "sk-roomy-0123456789abcdef"
TIGHT = "sk-tight-0123456789abcdef"


def reply_target(reply: dict | str) -> str:
    text = reply if isinstance(reply, str) else json.dumps(reply)
    # YAML single-quoted: a quote inside doubles.
    text = text.replace("'", "''")
    return ('{provider: openai, base_url: "{MOCK}", model: mock-model, '
            "headers: {x-mock-reply: '" + text + "'}}")


FACTS_A = {"facts": [{"key": "home city", "text": "The user lives in Paris", "weight": 0.6},
                     {"key": "pet", "text": "The user has a dog named Rex"}]}
FACTS_B = {"facts": [{"key": "home_city", "text": "The user lives in Lyon", "weight": 0.7}]}

# Prose and a fence around the JSON (a header value has no newlines).
PROSE = "Sure! Here you go: ```json " + json.dumps(FACTS_B) + " ```"

ROUTES = f"""\
  - model: chat-a
    sessions: {{extract_model: extractor-a}}
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "{{MOCK}}", model: mock-model}}]
  - model: chat-b
    sessions: {{extract_model: extractor-b}}
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "{{MOCK}}", model: mock-model}}]
  - model: extractor-a
    targets: [{reply_target(FACTS_A)}]
  - model: extractor-b
    targets: [{reply_target(FACTS_B)}]
  - model: extractor-prose
    targets: [{reply_target(PROSE)}]
  - model: chat-prose
    sessions: {{extract_model: extractor-prose}}
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "{{MOCK}}", model: mock-model}}]
  - model: extractor-broken
    targets: [{reply_target("I cannot do that")}]
  - model: chat-broken
    sessions: {{extract_model: extractor-broken}}
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "{{MOCK}}", model: mock-model}}]
  - model: summarizer
    targets: [{reply_target("The user planned a trip to Japan and asked about trains.")}]
  - model: chat-small
    context_window: 400
    sessions: {{summary_model: summarizer, summary_min_turns: 2, summary_max_turns: 3, margin_tokens: 0}}
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "{{MOCK}}", model: mock-model}}]
  - model: embedder
    targets: [{{provider: openai, base_url: "{{MOCK}}", model: mock-model, headers: {{x-mock-embedding: trigrams}}}}]
"""

EMBED_TOP = "state: {sessions: {embeddings_model: embedder, vector_weight: 0.7}}\n"


@pytest.fixture
def start(mock, tmp_path):
    s = ConfigStarter(mock, tmp_path, ROUTES)
    yield s
    s.stop_all()


@pytest.fixture
def gw(start):
    return start()


def chat(gw, sid: str, text: str, model: str = "chat-a", headers: dict | None = None,
         max_tokens: int | None = None):
    body = {"model": model, "messages": [user(text)]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    h = {"x-sluice-session": sid}
    h.update(headers or {})
    return http_call(gw, "POST", CHAT, json_body=body, headers=h)


def open_facts(gw, sid: str, n: int, history: bool = False) -> list[dict]:
    got = poll(lambda: (m := memories(gw, sid, history=history)) and len(m) >= n and m, 10)
    assert got and len(got) >= n, memories(gw, sid, history=history)
    return got


def metric(gw, name: str, labels: str) -> float:
    text = http_call(gw.admin, "GET", "/metrics").body.decode()
    for line in text.splitlines():
        if line.startswith(name + "{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_extraction_writes_facts_after_the_turn(gw):
    sid = new_session(gw)["id"]
    r = chat(gw, sid, "I moved to Paris last year with my dog Rex.")
    assert r.status == 200, r
    mems = open_facts(gw, sid, 2)
    by_key = {m["key"]: m for m in mems}
    assert set(by_key) == {"home_city", "pet"}, mems
    assert by_key["home_city"]["text"] == "The user lives in Paris"
    assert by_key["home_city"]["weight"] == pytest.approx(0.6)
    assert by_key["pet"]["weight"] == pytest.approx(0.5)  # default
    assert by_key["home_city"]["tags"] == ["extracted"]
    assert by_key["home_city"]["source_turns"] == [1]  # turns count from 1
    assert "embedding" not in by_key["home_city"]
    assert poll(lambda: metric(gw, "sluice_session_jobs_total", 'job="extract",outcome="ok"') >= 1, 5)
    # The next request of the session gets them in its context.
    r = chat(gw, sid, "Where do I live?", headers=ECHO)
    sent = json.loads(r.json()["choices"][0]["message"]["content"])
    system = sent["messages"][0]["content"]
    assert "home_city: The user lives in Paris" in json.dumps(system), sent


def test_same_fact_reinforces_and_a_new_text_closes_the_old(gw):
    sid = new_session(gw)["id"]
    assert chat(gw, sid, "hi").status == 200
    open_facts(gw, sid, 2)
    assert chat(gw, sid, "hi again").status == 200  # the same facts again: weights rise
    def reinforced():
        m = {x["key"]: x for x in memories(gw, sid)}
        return m if m.get("home_city", {}).get("source_turns") == [1, 2] else None
    m = poll(reinforced, 10)
    assert m, memories(gw, sid)
    assert len(memories(gw, sid)) == 2  # not duplicated
    assert m["home_city"]["weight"] == pytest.approx(1 - 0.4 * 0.4)
    # chat-b's extractor says Lyon: Paris is closed (kept in history), Lyon is open.
    assert chat(gw, sid, "I moved again", model="chat-b").status == 200
    def moved():
        m = [x for x in memories(gw, sid) if x["key"] == "home_city"]
        return m if m and m[0]["text"] == "The user lives in Lyon" else None
    assert poll(moved, 10), memories(gw, sid)
    hist = [x for x in memories(gw, sid, history=True) if x["key"] == "home_city"]
    assert len(hist) == 2, hist
    closed = [x for x in hist if x["valid_to"] is not None]
    assert len(closed) == 1 and closed[0]["text"] == "The user lives in Paris", hist


def test_extraction_reads_fenced_json_and_survives_a_broken_model(gw):
    sid = new_session(gw)["id"]
    assert chat(gw, sid, "hello", model="chat-prose").status == 200
    assert open_facts(gw, sid, 1)[0]["text"] == "The user lives in Lyon"
    sid2 = new_session(gw)["id"]
    r = chat(gw, sid2, "hello", model="chat-broken")
    assert r.status == 200, r  # the client never sees the extraction's failure
    assert poll(lambda: metric(gw, "sluice_session_jobs_total", 'job="extract",outcome="failed"') >= 1, 5)
    assert memories(gw, sid2) == []


def test_summaries_of_evicted_turns(gw):
    sid = new_session(gw)["id"]
    long = "word " * 120  # ~150 tokens a turn: a 400-token window keeps about one
    for i in range(5):
        r = chat(gw, sid, f"turn {i} {long}", model="chat-small", max_tokens=10)
        assert r.status == 200, r
    sums = poll(lambda: ok_json(get(gw, f"{SESSIONS}/{sid}/summaries"))["data"], 10)
    assert sums, "no summary was made"
    s0 = sums[0]
    assert s0["object"] == "session.summary"
    assert s0["from"] == 1 and 3 <= s0["to"] <= 4, sums
    assert s0["text"].startswith("The user planned a trip")
    # Summaries are contiguous and never overlap.
    for a, b in zip(sums, sums[1:]):
        assert b["from"] == a["to"], sums
    # A later request carries the summary (its turns are evicted) and says so.
    r = chat(gw, sid, "and now?", model="chat-small", max_tokens=10, headers=ECHO)
    assert r.status == 200
    assert int(r.header("x-sluice-summaries-used")) >= 1, r.headers
    sent = json.loads(r.json()["choices"][0]["message"]["content"])
    assert "Summary of earlier turns of this conversation:" in json.dumps(sent["messages"][0])
    assert int(r.header("x-sluice-context-tokens")) <= 400 - 10


def test_vector_similarity_finds_a_misspelt_query(start):
    gw = start(top=EMBED_TOP)
    sid = new_session(gw)["id"]
    add_memory(gw, sid, key="restaurant", text="Favourite restaurant is Kagurazaka Ishikawa")
    add_memory(gw, sid, key="car", text="Drives a blue Volvo")
    # The vectors are computed off the write path; they appear in the scores once stored.
    def with_similarity():
        hits = search(gw, sid, "kagurasaka ishikava restorant", explain=True)
        return hits if hits and hits[0]["explain"].get("similarity", 0) > 0.3 else None
    hits = poll(with_similarity, 10)
    assert hits, search(gw, sid, "kagurasaka ishikava restorant", explain=True)
    assert hits[0]["key"] == "restaurant"
    assert hits[0]["explain"]["bm25"] == 0  # no word matches: the vector found it
    assert hits[0]["explain"]["vector_weight"] == pytest.approx(0.7)
    assert "embedding" not in hits[0]
    # Without an embeddings model the same query finds nothing relevant.
    gw2 = start()
    sid2 = new_session(gw2)["id"]
    add_memory(gw2, sid2, key="restaurant", text="Favourite restaurant is Kagurazaka Ishikawa")
    hits2 = search(gw2, sid2, "kagurasaka ishikava restorant", explain=True)
    assert all(h["explain"]["relevance"] == 0 for h in hits2), hits2


def test_demo_model_extracts_offline(start):
    """The embedded default's demo model answers the extraction prompt by rule, so memories
    work with no provider at all."""
    gw = start(routes="""\
  - model: demo-chat
    sessions: {extract_model: demo}
    targets: [{provider: demo}]
""")
    sid = new_session(gw)["id"]
    r = chat(gw, sid, "Hi! My name is Ada. I live in Lyon. My favourite colour is green.",
             model="demo-chat")
    assert r.status == 200, r
    mems = {m["key"]: m["text"] for m in open_facts(gw, sid, 3)}
    assert mems == {"name": "The user's name is Ada", "home_city": "The user lives in Lyon",
                    "favourite_colour": "The user's favourite colour is green"}, mems
    # Moving closes the old city, keeps it in the history.
    assert chat(gw, sid, "I moved to Nantes.", model="demo-chat").status == 200
    assert poll(lambda: any(m["text"] == "The user lives in Nantes" for m in memories(gw, sid)), 10)
    hist = [m for m in memories(gw, sid, history=True) if m["key"] == "home_city"]
    assert sorted(m["text"] for m in hist) == ["The user lives in Lyon", "The user lives in Nantes"]


def test_background_jobs_zero_drops_and_counts(start):
    gw = start(top="state: {sessions: {background_jobs: 0}}\n")
    sid = new_session(gw)["id"]
    assert chat(gw, sid, "I live in Paris").status == 200
    assert poll(lambda: metric(gw, "sluice_session_jobs_total", 'job="extract",outcome="dropped"') >= 1, 5)
    assert memories(gw, sid) == []


def test_extraction_runs_as_the_client_on_its_limits(start):
    """The extraction call is a request of the client's key, through the whole pipeline: it is
    counted on the extraction model, and a key whose rate limit the chat request used up gets
    no extraction (the job fails, the client's answer does not)."""
    keys = f"""\
auth:
  enabled: true
  keys:
    - {{name: roomy, key_sha256: "{sha(ROOMY)}"}}
    - {{name: tight, key_sha256: "{sha(TIGHT)}", limits: {{requests_per_minute: 1}}}}
"""
    gw = start(top=keys)
    for key, expect_facts in ((ROOMY, True), (TIGHT, False)):
        h = {"Authorization": f"Bearer {key}"}
        sid = ok_json(http_call(gw, "POST", SESSIONS, json_body={}, headers=h))["id"]
        r = http_call(gw, "POST", CHAT, json_body={"model": "chat-a", "messages": [user("hi")]},
                      headers={**h, "x-sluice-session": sid})
        assert r.status == 200, r
        if expect_facts:
            got = poll(lambda: len(ok_json(get(gw, f"{SESSIONS}/{sid}/memories", h))["data"]) >= 2, 10)
            assert got, "no facts for the roomy key"
        else:
            assert poll(lambda: metric(gw, "sluice_session_jobs_total",
                                       'job="extract",outcome="failed"') >= 1, 5)
            assert ok_json(get(gw, f"{SESSIONS}/{sid}/memories", h))["data"] == []
    text = http_call(gw.admin, "GET", "/metrics").body.decode()
    assert 'model="extractor-a"' in text, "the extraction call is not in the request metrics"
