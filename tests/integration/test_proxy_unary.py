"""Unary proxying: chat, completions, embeddings, models, header handling, model rewrite, demo."""

import json

from conftest import (UPSTREAM_KEY, RawHttp, assert_error_shape, chat_body, http_call,
                      stream_request)


def test_healthz_and_readyz(gateway):
    assert http_call(gateway, "GET", "/healthz").status == 200
    assert http_call(gateway, "GET", "/readyz").status == 200


def test_chat_unary_proxied(gateway, mock):
    r = http_call(gateway, "POST", "/v1/chat/completions", body=chat_body(),
                  headers={"x-mock-tokens": "5"})
    assert r.status == 200, r
    assert r.header("content-type", "").startswith("application/json"), r
    j = r.json()
    assert j["object"] == "chat.completion"
    assert j["id"].startswith("chatcmpl-mock-")
    assert j["choices"][0]["message"] == {"role": "assistant", "content": "w1 w2 w3 w4 w5"}
    assert j["choices"][0]["finish_reason"] == "stop"
    u = j["usage"]
    assert u["completion_tokens"] == 5
    assert u["total_tokens"] == u["prompt_tokens"] + 5
    last = mock.last()
    assert last["method"] == "POST"
    assert last["path"] == "/v1/chat/completions"


def test_completions_unary(gateway, mock):
    body = json.dumps({"model": "mock-model", "prompt": "Say hi"}).encode()
    r = http_call(gateway, "POST", "/v1/completions", body=body, headers={"x-mock-tokens": "3"})
    assert r.status == 200, r
    j = r.json()
    assert j["object"] == "text_completion"
    assert j["choices"][0]["text"] == "w1 w2 w3"
    assert mock.last()["path"] == "/v1/completions"


def test_embeddings_float_and_base64(gateway, mock):
    r = http_call(gateway, "POST", "/v1/embeddings",
                  json_body={"model": "mock-model", "input": ["alpha", "beta"]})
    assert r.status == 200, r
    j = r.json()
    assert len(j["data"]) == 2
    for item in j["data"]:
        assert len(item["embedding"]) == 8
        assert all(isinstance(x, (int, float)) for x in item["embedding"])
    assert mock.last()["path"] == "/v1/embeddings"

    r2 = http_call(gateway, "POST", "/v1/embeddings",
                   json_body={"model": "mock-model", "input": "alpha", "encoding_format": "base64"})
    assert r2.status == 200, r2
    emb = r2.json()["data"][0]["embedding"]
    assert isinstance(emb, str) and emb, r2
    import base64
    import struct
    floats = struct.unpack("<8f", base64.b64decode(emb))
    assert len(floats) == 8


def test_embeddings_deterministic_through_gateway(gateway, mock):
    direct = http_call(mock, "POST", "/v1/embeddings",
                       json_body={"model": "mock-model", "input": "same"}).json()
    via = http_call(gateway, "POST", "/v1/embeddings",
                    json_body={"model": "mock-model", "input": "same"}).json()
    assert via["data"][0]["embedding"] == direct["data"][0]["embedding"]


def test_models_list(gateway):
    r = http_call(gateway, "GET", "/v1/models")
    assert r.status == 200, r
    j = r.json()
    assert j["object"] == "list"
    ids = [m["id"] for m in j["data"]]
    assert set(ids) == {"mock-model", "demo", "dead"}, ids  # glob "mock-*" is not listed
    for m in j["data"]:
        assert m["object"] == "model"


def test_models_get_one(gateway):
    r = http_call(gateway, "GET", "/v1/models/demo")
    assert r.status == 200, r
    j = r.json()
    assert j["id"] == "demo" and j["object"] == "model"
    r404 = http_call(gateway, "GET", "/v1/models/no-such-model")
    assert_error_shape(r404, 404)


def test_request_id_generated(gateway):
    ids = set()
    for method, path, body in [("GET", "/healthz", None), ("GET", "/v1/models", None),
                               ("POST", "/v1/chat/completions", chat_body()),
                               ("GET", "/no/such/path", None),
                               ("POST", "/v1/chat/completions", chat_body(model="nope"))]:
        r = http_call(gateway, method, path, body=body)
        rid = r.header("x-request-id")
        assert rid, f"{method} {path}: no x-request-id in {r!r}"
        ids.add(rid)
    assert len(ids) == 5, f"request ids are not unique: {ids}"


def test_request_id_echoed(gateway):
    r = http_call(gateway, "POST", "/v1/chat/completions", body=chat_body(),
                  headers={"X-Request-Id": "client-rid-123"})
    assert r.status == 200, r
    assert r.header("x-request-id") == "client-rid-123", r
    r = http_call(gateway, "POST", "/v1/chat/completions", body=chat_body(model="unknown-x"),
                  headers={"x-request-id": "client-rid-404"})
    assert r.status == 404
    assert r.header("x-request-id") == "client-rid-404", r


def test_request_id_on_stream(gateway):
    res = stream_request(gateway, chat_body(stream=True), headers={"x-request-id": "rid-stream"})
    assert res.head.status == 200, res.head
    assert res.head.header("x-request-id") == "rid-stream", res.head


def test_client_credentials_not_forwarded_target_key_sent(gateway, mock):
    r = http_call(gateway, "POST", "/v1/chat/completions", body=chat_body(), headers={
        "Authorization": "Bearer sk-client-secret",
        "x-api-key": "client-x-api-key",
        "api-key": "client-api-key",
        "Cookie": "session=abc",
        "Accept-Encoding": "gzip, br",
    })
    assert r.status == 200, r
    h = mock.last()["headers"]
    assert h.get("authorization") == f"Bearer {UPSTREAM_KEY}", h
    for name in ("x-api-key", "api-key", "cookie", "accept-encoding"):
        assert name not in h, f"{name} forwarded upstream: {h}"
    assert "sk-client-secret" not in json.dumps(h)


def test_no_authorization_sent_when_target_has_no_key(gateway, mock):
    # the "mock-*" route's target has no api_key_env: the client's Authorization must not leak
    r = http_call(gateway, "POST", "/v1/chat/completions", body=chat_body(model="mock-abc"),
                  headers={"Authorization": "Bearer sk-client-secret"})
    assert r.status == 200, r
    h = mock.last()["headers"]
    assert "sk-client-secret" not in json.dumps(h), h


def test_headers_forwarded_by_allowlist(gateway, mock):
    # Review §2.3: client headers go upstream by allowlist (what the provider needs plus the
    # target's forward_headers, here "x-mock-*"), never by denylist.
    r = http_call(gateway, "POST", "/v1/chat/completions", body=chat_body(), headers={
        "Host": "client.example",
        "X-Custom-Thing": "not-listed",
        "OpenAI-Organization": "org-123",
        "OpenAI-Project": "proj-123",
        "X-Forwarded-For": "6.6.6.6",
        "Forwarded": "for=6.6.6.6",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        "User-Agent": "OpenAI/Python 1.40.0",
        "Idempotency-Key": "idem-1",
        "x-mock-tokens": "2",
    })
    assert r.status == 200, r
    assert r.json()["choices"][0]["message"]["content"] == "w1 w2"  # x-mock-* listed: forwarded
    h = mock.last()["headers"]
    assert h.get("x-mock-tokens") == "2", h
    assert h.get("user-agent") == "OpenAI/Python 1.40.0", h
    assert h.get("idempotency-key") == "idem-1", h
    for name in ("x-custom-thing", "openai-organization", "openai-project", "x-forwarded-for",
                 "forwarded"):
        assert name not in h, f"{name} forwarded without being listed: {h}"
    for name in ("keep-alive", "te", "proxy-authorization"):
        assert name not in h, f"hop-by-hop {name} forwarded: {h}"
    assert h.get("host") != "client.example", f"client Host forwarded: {h}"
    assert h.get("host", "").startswith("127.0.0.1"), h
    # Content-Length is recomputed, not copied blindly: it must match the body actually sent
    last = mock.last()
    if "content-length" in h:
        assert int(h["content-length"]) == len(last["body"].encode()), h


def test_exact_route_body_forwarded_byte_identical(gateway, mock):
    body = (b'{"model":"mock-model",  "messages": [{"role":"user","content":"h\\u00e9llo  '
            b'world"}],\n "temperature": 0.50, "x_vendor": {"a": [1, 2.0, 3e0]}}')
    r = http_call(gateway, "POST", "/v1/chat/completions", body=body)
    assert r.status == 200, r
    assert mock.last()["body"].encode() == body


def test_glob_route_rewrites_model_only(gateway, mock):
    body = (b'{"messages": [{"role": "user", "content": "hi \\"mock-xyz\\" there"}],  '
            b'"model": "mock-xyz", "temperature":0.25, "n": 1}')
    r = http_call(gateway, "POST", "/v1/chat/completions", body=body)
    assert r.status == 200, r
    sent = mock.last()["body"].encode()
    expected = body.replace(b'"model": "mock-xyz"', b'"model": "mock-model"')
    assert sent == expected, f"upstream body\n  got      {sent!r}\n  expected {expected!r}"
    assert json.loads(sent)["model"] == "mock-model"


def test_keepalive_sequential_requests_one_connection(gateway):
    with RawHttp(gateway.host, gateway.port) as c:
        for i in range(3):
            r = c.request("POST", "/v1/chat/completions", chat_body(),
                          headers={"x-mock-tokens": str(i + 1)})
            assert r.status == 200, r
            want = " ".join(f"w{k}" for k in range(1, i + 2))
            assert r.json()["choices"][0]["message"]["content"] == want
        r = c.request("GET", "/healthz")
        assert r.status == 200


def _demo_chat(gateway, stream=False):
    body = json.dumps({"model": "demo", "stream": stream,
                       "messages": [{"role": "user", "content": "Tell me about sluices."}]}).encode()
    return body


def test_demo_unary_deterministic_with_usage(gateway, mock):
    s1 = mock.stats()["requests"]
    s2 = mock.stats()["requests"]
    per_stats_call = s2 - s1  # whether /mock/stats counts itself
    r1 = http_call(gateway, "POST", "/v1/chat/completions", body=_demo_chat(gateway))
    r2 = http_call(gateway, "POST", "/v1/chat/completions", body=_demo_chat(gateway))
    assert r1.status == 200 and r2.status == 200, (r1, r2)
    j1, j2 = r1.json(), r2.json()
    c1 = j1["choices"][0]["message"]["content"]
    assert isinstance(c1, str) and c1.strip(), j1
    assert c1 == j2["choices"][0]["message"]["content"]
    assert j1["choices"][0]["message"]["role"] == "assistant"
    assert j1["object"] == "chat.completion"
    u = j1["usage"]
    assert u["prompt_tokens"] > 0 and u["completion_tokens"] > 0
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert mock.stats()["requests"] - s2 == per_stats_call, "demo model must not call any upstream"


def test_demo_streaming_deterministic(gateway):
    contents = []
    for _ in range(2):
        res = stream_request(gateway, _demo_chat(gateway, stream=True))
        assert res.head.status == 200, res.head
        assert res.head.header("content-type", "").startswith("text/event-stream"), res.head
        assert res.events and res.events[-1].is_done, res.data
        assert res.content().strip(), res.data
        for c in res.chunks():
            assert c["object"] == "chat.completion.chunk"
        contents.append(res.content())
    assert contents[0] == contents[1]


def test_demo_streaming_usage(gateway):
    body = json.dumps({"model": "demo", "stream": True,
                       "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    res = stream_request(gateway, body)
    assert res.head.status == 200, res.head
    assert res.events[-1].is_done, res.data
    last = res.chunks()[-1]
    assert last.get("usage") and last["usage"]["total_tokens"] > 0, res.data


def test_large_body_forwarded_byte_identical(gateway, mock):
    # bodies that span many socket reads (64 KiB .. 900 KiB) reach the upstream unchanged
    for size in (70_000, 300_000, 900_000):
        text = ("abcdefghij" * (size // 10 + 1))[:size]
        body = (b'{"model":"mock-model","messages":[{"role":"user","content":"' + text.encode()
                + b'"}]}')
        r = http_call(gateway, "POST", "/v1/chat/completions", body=body,
                      headers={"x-mock-tokens": "1"})
        assert r.status == 200, f"{len(body)}-byte body: {r!r}"
        assert mock.last()["body"].encode() == body, f"{len(body)}-byte body altered upstream"
