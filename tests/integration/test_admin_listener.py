"""The operations listener (issue 10, review §2.7): /metrics, /admin/* and /debug/pprof/* are
served on admin.listen only; the public listener answers 404 for them unless
admin.on_public_listener: true; the admin token is compared without leaking its length; the
admin address binds exclusively and moves only at a restart."""

from __future__ import annotations

import signal

import pytest

from conftest import assert_error_shape, chat_body, free_closed_port, http_call, poll

ADMIN = "operations-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
TOKEN_ADMIN = {"token_env": "SLUICE_ADMIN_TOKEN"}
TOKEN_ENV = {"SLUICE_ADMIN_TOKEN": ADMIN}

# The operations endpoints, one request each (with the token, so only the listener decides).
OPERATIONS = [
    ("GET", "/metrics"),
    ("GET", "/admin/keys"),
    ("GET", "/admin/upstreams"),
    ("GET", "/admin/usage"),
    ("GET", "/debug/pprof/profile?seconds=0"),  # 400 when served: no profile is taken
    ("GET", "/debug/pprof/heap"),
]


def assert_unknown_url(r, method: str, path: str) -> None:
    err = assert_error_shape(r, 404)
    assert err["message"] == f"Unknown request URL: {method} {path.split('?')[0]}.", r


def test_public_listener_answers_404_for_operations_endpoints_by_default(gateway_factory):
    gw = gateway_factory(admin=TOKEN_ADMIN, env=TOKEN_ENV)
    for method, path in OPERATIONS:
        assert_unknown_url(http_call(gw, method, path, headers=AUTH), method, path)
    # /v1-prefixed spellings are not a way around it.
    assert_unknown_url(http_call(gw, "GET", "/v1/admin/keys", headers=AUTH), "GET",
                       "/v1/admin/keys")
    # The API and the health endpoints stay on the public listener.
    assert http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model="demo")).status == 200
    assert http_call(gw, "GET", "/healthz").status == 200
    assert http_call(gw, "GET", "/readyz").status == 200


def test_admin_listener_serves_operations_and_nothing_of_the_api(gateway_factory):
    gw = gateway_factory(admin=TOKEN_ADMIN, env=TOKEN_ENV)
    assert gw.admin.host == "127.0.0.1" and gw.admin.port not in (0, gw.port), gw.admin
    r = http_call(gw.admin, "GET", "/metrics")
    assert r.status == 200 and b"sluice_build_info" in r.body, r
    r = http_call(gw.admin, "GET", "/admin/upstreams", headers=AUTH)
    assert r.status == 200 and any(rt["model"] == "mock-model" for rt in r.json()["routes"]), r
    r = http_call(gw.admin, "GET", "/admin/keys", headers=AUTH)
    assert r.status == 200 and "data" in r.json(), r
    r = http_call(gw.admin, "GET", "/admin/usage", headers=AUTH)
    assert r.status == 200, r
    r = http_call(gw.admin, "GET", "/debug/pprof/profile?seconds=0", headers=AUTH)
    assert assert_error_shape(r, 400)["param"] == "seconds", r
    # Admin endpoints still need the token there.
    assert_error_shape(http_call(gw.admin, "GET", "/admin/keys"), 401)
    # Health on both listeners; the API and unknown paths are unknown URLs on the admin one.
    assert http_call(gw.admin, "GET", "/healthz").status == 200
    assert http_call(gw.admin, "GET", "/readyz").status == 200
    assert_unknown_url(http_call(gw.admin, "POST", "/v1/chat/completions",
                                 body=chat_body(model="demo")), "POST", "/v1/chat/completions")
    assert_unknown_url(http_call(gw.admin, "GET", "/v1/models"), "GET", "/v1/models")
    assert_unknown_url(http_call(gw.admin, "GET", "/"), "GET", "/")


def test_operations_on_the_public_listener_when_configured(gateway_factory):
    gw = gateway_factory(admin={"listen": "off", "on_public_listener": "true", **TOKEN_ADMIN},
                         env=TOKEN_ENV)
    r = http_call(gw, "GET", "/metrics")
    assert r.status == 200 and b"sluice_build_info" in r.body, r
    assert http_call(gw, "GET", "/admin/upstreams", headers=AUTH).status == 200
    assert_error_shape(http_call(gw, "GET", "/admin/upstreams"), 401)
    r = http_call(gw, "GET", "/debug/pprof/profile?seconds=0", headers=AUTH)
    assert assert_error_shape(r, 400)["param"] == "seconds", r
    # `listen: off`: no operations listener at all.
    assert not any("admin listening on" in line for line in gw.proc.stdout_lines), \
        gw.proc.stdout_lines
    with pytest.raises(RuntimeError):
        _ = gw.admin


def test_on_public_listener_applies_at_reload_and_admin_listen_needs_a_restart(gateway_factory):
    gw = gateway_factory(admin=TOKEN_ADMIN, env=TOKEN_ENV)
    admin_port = gw.admin.port
    assert http_call(gw, "GET", "/metrics").status == 404
    moved = free_closed_port()
    text = gw.config_text.replace('admin: {listen: "127.0.0.1:0", ',
                                  f'admin: {{listen: "127.0.0.1:{moved}", '
                                  'on_public_listener: true, ', 1)
    assert text != gw.config_text
    gw.config_path.write_text(text)
    gw.proc.signal(signal.SIGHUP)
    assert poll(lambda: http_call(gw, "GET", "/metrics").status == 200, 5), \
        gw.proc.stderr_text()
    assert "admin.listen changed" in gw.proc.stderr_text()
    # The operations listener stays where it was until a restart.
    assert http_call(gw.admin, "GET", "/metrics").status == 200
    assert gw.admin.port == admin_port


def test_wrong_admin_tokens_of_any_length_are_401(gateway_factory):
    gw = gateway_factory(admin=TOKEN_ADMIN, env=TOKEN_ENV)
    for token in ["x",                # much shorter
                  ADMIN[:-1],         # a prefix of the real one
                  ADMIN + "x",        # the real one and more
                  ADMIN[:-1] + "X",   # same length, last byte wrong
                  "y" * 4096,         # much longer
                  ""]:                # empty
        r = http_call(gw.admin, "GET", "/admin/upstreams",
                      headers={"Authorization": f"Bearer {token}"})
        err = assert_error_shape(r, 401)
        assert err["code"] == "invalid_api_key", (token, r)
    assert http_call(gw.admin, "GET", "/admin/upstreams", headers=AUTH).status == 200


def test_admin_listen_is_bound_exclusively(gateway_factory):
    """A second process on the same admin address fails to start instead of sharing the port
    (with SO_REUSEPORT the kernel would split scrapes and admin calls between the two)."""
    port = free_closed_port()
    first = gateway_factory(admin={"listen": f'"127.0.0.1:{port}"'})
    assert first.admin.port == port
    with pytest.raises(RuntimeError, match=f"sluice admin: cannot listen on 127.0.0.1:{port}"):
        gateway_factory(admin={"listen": f'"127.0.0.1:{port}"'})
    assert http_call(first.admin, "GET", "/healthz").status == 200
