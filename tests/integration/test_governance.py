"""Governance: API keys (config and admin API, SHA-256 only), JWT, model permissions, request and
token rate limits with OpenAI's headers, and cross-instance revocation through a shared SQLite
key database."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from conftest import (SLUICE_BIN, Proc, b64url, chat_body, http_call, poll, require_binaries,
                      sha)
from conftest import hs256_token as conftest_hs256_token

ADMIN = "gov-admin-token"
KEY_A = "sk-test-team-a"
KEY_B = "sk-test-team-b"
JWT_SECRET = "jwt-test-secret-0123456789"


def hs256_token(claims: dict, secret: str = JWT_SECRET, alg: str = "HS256") -> str:
    return conftest_hs256_token(claims, secret, alg)


def start(tmp_path, mock, auth_extra: str = "", limits: str = "", name: str = "gw",
          db: str | None = None) -> Proc:
    require_binaries(SLUICE_BIN)
    db_line = f'  keys_db: "{db}"\n' if db else ""
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(f"""server: {{listen: "127.0.0.1:0", threads: 2}}
admin: {{listen: "127.0.0.1:0", token_env: SLUICE_ADMIN_TOKEN}}
auth:
  enabled: true
{db_line}  keys:
    - {{name: team-a, key_sha256: "{sha(KEY_A)}", tenant: alpha}}
    - {{name: team-b, key_sha256: "{sha(KEY_B)}", models: ["demo*"],
        limits: {{requests_per_minute: 5}}}}
{auth_extra}{limits}routes:
  - model: mock-model
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://127.0.0.1:{mock.port}/v1"}}]
  - model: demo
    targets: [{{provider: demo}}]
""")
    env = dict(os.environ, SLUICE_ADMIN_TOKEN=ADMIN, JWT_SECRET=JWT_SECRET)
    return Proc([str(SLUICE_BIN), "--config", str(cfg)], env=env, name=name)


def call(gw, key: str | None = None, model: str = "mock-model", header: str = "authorization",
         **extra):
    headers = {}
    if key is not None:
        headers[header] = f"Bearer {key}" if header == "authorization" else key
    headers.update(extra.pop("headers", {}))
    return http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model=model, **extra),
                     headers=headers)


def test_keys_are_required_and_accepted_in_all_three_headers(tmp_path, mock):
    gw = start(tmp_path, mock)
    try:
        r = call(gw)
        assert r.status == 401, r
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert call(gw, "sk-wrong").status == 401
        assert call(gw, KEY_A).status == 200
        assert call(gw, KEY_A, header="x-api-key").status == 200
        assert call(gw, KEY_A, header="api-key").status == 200
        # /v1/models needs a key too; health endpoints do not.
        assert http_call(gw, "GET", "/v1/models").status == 401
        assert http_call(gw, "GET", "/healthz").status == 200
    finally:
        gw.stop()


def test_model_globs_restrict_a_key(tmp_path, mock):
    gw = start(tmp_path, mock)
    try:
        r = call(gw, KEY_B, model="mock-model")
        assert r.status == 403, r
        assert call(gw, KEY_B, model="demo").status == 200
    finally:
        gw.stop()


def test_request_limit_rejects_with_429_and_openai_headers(tmp_path, mock):
    gw = start(tmp_path, mock)
    try:
        remaining = []
        for _ in range(5):
            r = call(gw, KEY_B, model="demo")
            assert r.status == 200, r
            assert r.header("x-ratelimit-limit-requests") == "5"
            remaining.append(int(r.header("x-ratelimit-remaining-requests")))
        assert remaining == sorted(remaining, reverse=True) and remaining[-1] == 0, remaining
        r = call(gw, KEY_B, model="demo")
        assert r.status == 429, r
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        assert int(r.header("retry-after")) >= 1
        assert r.header("x-ratelimit-reset-requests")
        # Another key is not affected.
        assert call(gw, KEY_A, model="demo").status == 200
    finally:
        gw.stop()


def test_token_limit_reserves_before_dispatch_and_reconciles_after(tmp_path, mock):
    limits = """rate_limits:
  per_tenant:
    alpha: {tokens_per_minute: 1000}
"""
    gw = start(tmp_path, mock, limits=limits)
    try:
        # Each request reserves ~400 (max_tokens) + prompt: only two fit at once.
        results = []

        def one():
            results.append(call(gw, KEY_A, max_tokens=400,
                                headers={"x-mock-latency-ms": "600", "x-mock-tokens": "5"}))

        threads = [threading.Thread(target=one) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        statuses = sorted(r.status for r in results)
        assert statuses == [200, 200, 429, 429, 429], [(r.status, r.body[:200]) for r in results]
        # The real usage (a few tokens each) replaced the reservations: far more than two
        # sequential requests now fit in the same minute.
        ok = sum(call(gw, KEY_A, max_tokens=400, headers={"x-mock-tokens": "5"}).status == 200
                 for _ in range(6))
        assert ok >= 4, ok
    finally:
        gw.stop()


def test_admin_api_creates_lists_and_revokes_keys_across_instances(tmp_path, mock):
    db = str(tmp_path / "keys.db")
    a = start(tmp_path, mock, name="gw-a", db=db)
    b = start(tmp_path, mock, name="gw-b", db=db)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    try:
        r = http_call(a.admin, "POST", "/admin/keys", headers=admin,
                      json_body={"name": "ci-bot", "tenant": "ci", "models": ["mock-*"],
                                 "limits": {"requests_per_minute": 100}})
        assert r.status == 201, r
        created = r.json()
        secret = created["key"]
        assert secret.startswith("sk-sluice-"), created
        assert http_call(a.admin, "POST", "/admin/keys", headers={"Authorization": "Bearer nope"},
                         json_body={"name": "x"}).status == 401
        listed = http_call(a.admin, "GET", "/admin/keys", headers=admin).json()["data"]
        assert any(k["id"] == created["id"] for k in listed)
        assert all("key" not in k for k in listed), "list must never show secrets"
        assert call(a, secret).status == 200
        assert poll(lambda: call(b, secret).status == 200, 2.0), "instance B never saw the key"
        r = http_call(a.admin, "DELETE", f"/admin/keys/{created['id']}", headers=admin)
        assert r.status == 200, r
        assert call(a, secret).status == 401
        t0 = time.monotonic()
        assert poll(lambda: call(b, secret).status == 401, 1.5), "B still accepts a revoked key"
        assert time.monotonic() - t0 <= 1.5
    finally:
        a.stop()
        b.stop()


@pytest.mark.parametrize("case", ["valid", "none", "expired", "bad-signature", "malformed",
                                  "wrong-issuer"])
def test_jwt_hs256(tmp_path, mock, case):
    auth_extra = """  jwt:
    enabled: true
    algorithms: [HS256]
    secret_env: JWT_SECRET
    issuer: sluice-tests
    tenant_claim: org
"""
    gw = start(tmp_path, mock, auth_extra=auth_extra)
    now = int(time.time())
    claims = {"sub": "user-1", "org": "acme", "iss": "sluice-tests", "exp": now + 300}
    token = {
        "valid": hs256_token(claims),
        "none": b64url(b'{"alg":"none","typ":"JWT"}') + "." + b64url(json.dumps(claims).encode())
        + ".",
        "expired": hs256_token(dict(claims, exp=now - 3600)),
        "bad-signature": hs256_token(claims, secret="another-secret-entirely"),
        "malformed": "abc.def",
        "wrong-issuer": hs256_token(dict(claims, iss="someone-else")),
    }[case]
    try:
        r = call(gw, token)
        if case == "valid":
            assert r.status == 200, r
        else:
            assert r.status == 401, r
            assert r.json()["error"]["message"], r
    finally:
        gw.stop()


def test_model_token_limit_without_auth_is_reconciled_with_real_usage(tmp_path, mock):
    # No auth, no prices: nothing is billed, but the per-model token limit still reserves
    # ~420 tokens per request and must refund down to the real (small) usage afterwards.
    cfg = tmp_path / "anon.yaml"
    cfg.write_text(f"""server: {{listen: "127.0.0.1:0", threads: 2}}
admin: {{listen: off}}
rate_limits:
  per_model:
    - {{model: mock-model, tokens_per_minute: 1000}}
routes:
  - model: mock-model
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://127.0.0.1:{mock.port}/v1"}}]
""")
    gw = Proc([str(SLUICE_BIN), "--config", str(cfg)], name="anon")
    try:
        ok = sum(http_call(gw, "POST", "/v1/chat/completions", body=chat_body(max_tokens=400),
                           headers={"x-mock-tokens": "5"}).status == 200 for _ in range(6))
        assert ok >= 4, ok  # without reconciliation only two would fit
    finally:
        gw.stop()


# ---- the configured pipeline ----------------------------------------------------------------


def test_pipeline_runs_the_configured_stages_only(tmp_path, mock):
    # Without rate_limit in the pipeline, team-b's 5 requests per minute are not enforced;
    # authorize_model still is.
    gw = start(tmp_path, mock, limits="pipeline: {stages: [authorize_model, usage]}\n")
    try:
        statuses = [call(gw, KEY_B, model="demo").status for _ in range(8)]
        assert statuses == [200] * 8, statuses
        assert call(gw, KEY_B, model="mock-model").status == 403
    finally:
        gw.stop()


def test_pipeline_without_authorize_model_serves_any_model(tmp_path, mock):
    gw = start(tmp_path, mock, limits="pipeline: {stages: [rate_limit]}\n")
    try:
        assert call(gw, KEY_B, model="mock-model").status == 200
        assert call(gw, "sk-unknown", model="mock-model").status == 401  # auth is not a stage
    finally:
        gw.stop()


def test_token_counting_is_authorized_but_not_rate_limited(tmp_path, mock):
    gw = start(tmp_path, mock)
    try:
        body = {"model": "mock-model", "messages": [{"role": "user", "content": "hello"}]}
        r = http_call(gw, "POST", "/v1/messages/count_tokens", json_body=body,
                      headers={"x-api-key": KEY_B})
        assert r.status == 403, r  # team-b may not use mock-model, nor count for it
        assert r.json()["type"] == "error", r  # in Anthropic's shape
        body["model"] = "demo"
        for _ in range(8):  # more than team-b's 5 requests per minute
            r = http_call(gw, "POST", "/v1/messages/count_tokens", json_body=body,
                          headers={"x-api-key": KEY_B})
            assert r.status == 200 and r.header("x-sluice-token-count") == "estimate", r
        assert http_call(gw, "POST", "/v1/messages/count_tokens", json_body=body).status == 401
        # ...and counting used none of team-b's request budget.
        assert call(gw, KEY_B, model="demo").status == 200
        r = call(gw, KEY_B, model="demo")
        assert r.header("x-ratelimit-remaining-requests") == "3", r
    finally:
        gw.stop()
