"""Prices, budgets (insufficient_quota) and usage accounting (GET /admin/usage), persisted in
SQLite across restarts; partial streams are counted too."""

from __future__ import annotations

import hashlib
import os

from conftest import SLUICE_BIN, Proc, chat_body, http_call, poll, require_binaries, stream_request

ADMIN = "usage-admin"
KEY = "sk-budget-test"
OTHER = "sk-budget-other"


def start(tmp_path, mock, budget_usd: float = 0.05, tenant_budget: str = "") -> Proc:
    require_binaries(SLUICE_BIN)
    cfg = tmp_path / "usage.yaml"
    cfg.write_text(f"""server: {{listen: "127.0.0.1:0", threads: 2}}
admin: {{listen: "127.0.0.1:0", token_env: SLUICE_ADMIN_TOKEN}}
auth:
  enabled: true
  keys_db: "{tmp_path / 'keys.db'}"
  keys:
    - {{name: team-a, key_sha256: "{hashlib.sha256(KEY.encode()).hexdigest()}", tenant: alpha,
        budget: {{usd: {budget_usd}, period: day}}}}
    - {{name: team-b, key_sha256: "{hashlib.sha256(OTHER.encode()).hexdigest()}", tenant: beta}}
prices:
  - {{model: "mock-*", input_per_million: 1000, output_per_million: 1000}}
budgets:
  per_tenant:
{tenant_budget or "    nobody: {usd: 1}"}
usage: {{db: "{tmp_path / 'usage.db'}"}}
routes:
  - model: mock-model
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://127.0.0.1:{mock.port}/v1"}}]
""")
    env = dict(os.environ, SLUICE_ADMIN_TOKEN=ADMIN)
    return Proc([str(SLUICE_BIN), "--config", str(cfg)], env=env, name="sluice")


def call(gw, key=KEY, **kw):
    return http_call(gw, "POST", "/v1/chat/completions", body=chat_body(**kw),
                     headers={"Authorization": f"Bearer {key}"})


def usage(gw, key="team-a") -> list[dict]:
    r = http_call(gw.admin, "GET", f"/admin/usage?key={key}",
                  headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status == 200, r
    return r.json()["data"]


def test_budget_is_enforced_with_insufficient_quota_and_survives_restart(tmp_path, mock):
    gw = start(tmp_path, mock)
    try:
        first = call(gw)
        assert first.status == 200, first
        u = first.json()["usage"]
        expected_cost = (u["prompt_tokens"] + u["completion_tokens"]) * 1000 / 1e6
        assert expected_cost < 0.05 < 2 * expected_cost  # one request fits, two do not
        assert call(gw).status == 200
        r = call(gw)
        assert r.status == 429, r
        assert r.json()["error"]["code"] == "insufficient_quota", r
        assert r.json()["error"]["type"] == "insufficient_quota", r
        assert call(gw, key=OTHER).status == 200  # other keys are unaffected
        rows = usage(gw)
        assert len(rows) == 1, rows
        row = rows[0]
        assert row["requests"] == 2 and row["model"] == "mock-model" and row["tenant"] == "alpha"
        assert row["input_tokens"] == 2 * u["prompt_tokens"], row
        assert row["output_tokens"] == 2 * u["completion_tokens"], row
        assert abs(row["cost_usd"] - 2 * expected_cost) < 1e-6, row
    finally:
        gw.stop()
    # The spend is in SQLite: a restarted gateway still refuses the key today.
    gw = start(tmp_path, mock)
    try:
        r = call(gw)
        assert r.status == 429 and r.json()["error"]["code"] == "insufficient_quota", r
        assert usage(gw)[0]["requests"] == 2
    finally:
        gw.stop()


def test_tenant_budget_applies_to_all_its_keys(tmp_path, mock):
    gw = start(tmp_path, mock, budget_usd=100, tenant_budget="    beta: {usd: 0.03, period: month}")
    try:
        assert call(gw, key=OTHER).status == 200
        r = call(gw, key=OTHER)
        assert r.status == 429 and "tenant 'beta'" in r.json()["error"]["message"], r
        assert call(gw).status == 200  # tenant alpha is not limited
    finally:
        gw.stop()


def test_streams_are_counted_including_partial_ones(tmp_path, mock):
    gw = start(tmp_path, mock, budget_usd=100)
    try:
        full = stream_request(gw, chat_body(stream=True, stream_options={"include_usage": True}),
                              headers={"Authorization": f"Bearer {KEY}", "x-mock-tokens": "5"})
        assert full.data[-1] == "[DONE]"
        cut = stream_request(gw, chat_body(stream=True),
                             headers={"Authorization": f"Bearer {KEY}", "x-mock-tokens": "8",
                                      "x-mock-fault": "drop-after:3"})
        assert cut.data[-1] != "[DONE]"
        # The cut stream is recorded when the gateway has finished it, which can be just after
        # the client saw its end: wait for both rows' requests, not for the first row.
        def both_recorded():
            rows = usage(gw)
            return rows if rows and rows[0]["requests"] == 2 else None

        rows = poll(both_recorded, 10.0) or usage(gw)
        assert rows and rows[0]["requests"] == 2, rows
        # 5 reported completion tokens + an estimate (>= 1) for the cut stream.
        assert rows[0]["output_tokens"] >= 6, rows
        assert rows[0]["cost_usd"] > 0, rows
    finally:
        gw.stop()


def test_admin_created_key_carries_its_own_budget(tmp_path, mock):
    gw = start(tmp_path, mock, budget_usd=100)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    try:
        r = http_call(gw.admin, "POST", "/admin/keys", headers=admin,
                      json_body={"name": "capped", "budget": {"usd": 0.05, "period": "day"}})
        assert r.status == 201, r
        assert r.json()["budget"] == {"usd": 0.05, "period": "day"}, r.json()
        secret = r.json()["key"]
        assert call(gw, key=secret).status == 200
        assert call(gw, key=secret).status == 200
        r = call(gw, key=secret)
        assert r.status == 429 and r.json()["error"]["code"] == "insufficient_quota", r
        bad = http_call(gw.admin, "POST", "/admin/keys", headers=admin,
                        json_body={"name": "x", "budget": {"usd": -1}})
        assert bad.status == 400, bad
    finally:
        gw.stop()
