"""Active health checks: a target whose probes fail is taken out of rotation, and put back once
its probes succeed again."""

from __future__ import annotations

from conftest import MOCK_BIN, Proc, chat_body, free_closed_port, http_call, poll, require_binaries

ADMIN = "test-admin-token"


def admin_targets(gw) -> dict:
    r = http_call(gw.admin, "GET", "/admin/upstreams",
                  headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status == 200, r
    out = {}
    for route in r.json()["routes"]:
        for t in route["targets"]:
            out[t["name"]] = t
    return out


def test_failing_target_leaves_rotation_and_returns_when_healthy(gateway_factory, mock):
    require_binaries(MOCK_BIN)
    flaky_port = free_closed_port()
    routes = f"""  - model: checked
    retry: {{max_attempts: 1}}
    targets:
      - {{provider: openai, forward_headers: ["x-mock-*"], name: flaky, base_url: "http://127.0.0.1:{flaky_port}/v1",
          health: {{enabled: true, path: /models, interval_ms: 150, timeout_ms: 100,
                    unhealthy_threshold: 2, healthy_threshold: 1}}}}
      - {{provider: openai, forward_headers: ["x-mock-*"], name: steady, base_url: "{{MOCK}}",
          health: {{enabled: true, path: /models, interval_ms: 150, timeout_ms: 100}}}}
"""
    gw = gateway_factory(extra_routes=routes, admin={"token_env": "SLUICE_ADMIN_TOKEN"},
                         env={"SLUICE_ADMIN_TOKEN": ADMIN})
    try:
        assert poll(lambda: admin_targets(gw)["flaky"]["healthy"] is False, 5.0), \
            admin_targets(gw)
        assert admin_targets(gw)["steady"]["healthy"] is True
        for _ in range(20):
            r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model="checked"))
            assert r.status == 200, r
            assert r.header("x-sluice-attempts") == "1", r
        # Bring the flaky target up: the probe succeeds and it is back in rotation.
        revived = Proc([str(MOCK_BIN), "--listen", f"127.0.0.1:{flaky_port}"], name="revived")
        try:
            assert poll(lambda: admin_targets(gw)["flaky"]["healthy"] is True, 5.0), \
                admin_targets(gw)
            for _ in range(20):
                r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model="checked"))
                assert r.status == 200, r
            served = http_call(revived, "GET", "/mock/stats").json()["requests"]
            assert served > 0, "revived target got no traffic"
        finally:
            revived.stop()
    finally:
        gw.proc.stop()
