"""API keys and budget spend shared across gateway instances through a real redis-server
(`auth.keys_backend: redis`, `budgets.backend: redis`): the instances share no SQLite file, so
Redis is the only thing connecting them."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import (SLUICE_BIN, Proc, assert_error_shape, chat_body,
                      http_call, poll, require_binaries)

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
ADMIN = "redis-keys-admin"
KEY = "sk-redis-keys-declared"
KEY_A2 = "sk-redis-keys-declared-2"  # same tenant as KEY


class Redis:
    """A redis-server on an ephemeral port. Every write is fsynced to an append-only file in
    `data_dir`, so a killed and restarted server comes back with its data."""

    def __init__(self, port: int, data_dir):
        self.port = port
        self.data_dir = data_dir
        self.proc = None

    def start(self):
        if not os.access(REDIS, os.X_OK):
            pytest.fail("redis-server is not installed (scripts/install-deps.sh installs it)")
        self.data_dir.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.command("PING") == "PONG":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        pytest.fail("redis-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def command(self, *args: str):
        """One command over RESP; returns str, int, None or a list (enough for these tests)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            out = f"*{len(args)}\r\n".encode()
            for a in args:
                b = a.encode()
                out += b"$%d\r\n%s\r\n" % (len(b), b)
            s.sendall(out)
            f = s.makefile("rb")
            return _read_resp(f)


def _read_resp(f):
    line = f.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:n]
        return data.decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_resp(f) for _ in range(n)]
    raise RuntimeError(f"bad RESP line {line!r}")


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def start(tmp_path, redis_port: int, name: str, mock=None, budgets: str = "",
          usage_db: bool = False) -> Proc:
    require_binaries(SLUICE_BIN)
    cfg = tmp_path / f"{name}.yaml"
    usage = f'usage: {{db: "{tmp_path / (name + "-usage.db")}"}}\n' if usage_db else ""
    mock_route = ""
    if mock is not None:
        mock_route = f"""  - model: mock-model
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://127.0.0.1:{mock.port}/v1"}}]
"""
    cfg.write_text(f"""server: {{listen: "127.0.0.1:0", threads: 2}}
admin: {{listen: "127.0.0.1:0", token_env: SLUICE_ADMIN_TOKEN}}
redis: {{url: "redis://127.0.0.1:{redis_port}", timeout_ms: 300}}
auth:
  enabled: true
  keys_backend: redis
  keys:
    - {{name: declared, key_sha256: "{sha(KEY)}", tenant: alpha}}
    - {{name: declared-2, key_sha256: "{sha(KEY_A2)}", tenant: alpha}}
{budgets}{usage}routes:
  - model: demo
    targets: [{{provider: demo}}]
  - model: other-demo
    targets: [{{provider: demo}}]
{mock_route}""")
    env = dict(os.environ, SLUICE_ADMIN_TOKEN=ADMIN)
    return Proc([str(SLUICE_BIN), "--config", str(cfg)], env=env, name=name)


def call(gw, key: str, model: str = "demo"):
    return http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model=model),
                     headers={"Authorization": f"Bearer {key}"})


ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


def create_key(gw, name: str, **fields):
    return http_call(gw.admin, "POST", "/admin/keys", json_body={"name": name, **fields},
                     headers=ADMIN_HEADERS)


def until_status(gw, key: str, status: int, timeout: float) -> float:
    """Seconds until `key` gets `status` on `gw` (fails the test after `timeout`)."""
    t0 = time.monotonic()
    last = poll(lambda: call(gw, key).status == status, timeout, interval=0.02)
    elapsed = time.monotonic() - t0
    assert last, f"{gw.name}: still not {status} after {timeout}s: {call(gw, key)!r}"
    return elapsed


def logs(gw: Proc) -> str:
    return gw.stderr_text() + "".join(gw.stdout_lines)


def test_key_created_on_a_works_on_b_within_a_second_and_redis_holds_no_secret(tmp_path, redis):
    a = start(tmp_path, redis.port, "gw-a")
    b = start(tmp_path, redis.port, "gw-b")
    try:
        created = create_key(a, "shared", tenant="team", models=["demo"],
                             limits={"requests_per_minute": 100})
        t0 = time.monotonic()
        assert created.status == 201, created
        secret = created.json()["key"]
        key_id = created.json()["id"]
        assert call(a, secret).status == 200  # at once on the instance that created it
        assert until_status(b, secret, 200, 2.0) < 1.0
        assert time.monotonic() - t0 < 1.5
        listed = http_call(b.admin, "GET", "/admin/keys", headers=ADMIN_HEADERS).json()["data"]
        mine = [k for k in listed if k["id"] == key_id]
        assert mine and mine[0]["tenant"] == "team" and mine[0]["models"] == ["demo"], listed
        assert mine[0]["limits"]["requests_per_minute"] == 100, mine
        # The model globs travelled with the key.
        assert_error_shape(call(b, secret, model="other-demo"), 403)

        # Redis holds the SHA-256 and metadata, never the secret.
        stored = redis.command("HGETALL", "sluice:keys")
        text = " ".join(stored)
        assert sha(secret) in text and secret not in text, stored
        assert redis.command("HGET", "sluice:keys:names", "shared") == key_id

        # Names stay unique across instances.
        dup = create_key(b, "shared")
        assert_error_shape(dup, 400)
    finally:
        a.stop()
        b.stop()


def test_key_revoked_on_a_is_rejected_by_b_within_a_second(tmp_path, redis):
    a = start(tmp_path, redis.port, "gw-a")
    b = start(tmp_path, redis.port, "gw-b")
    try:
        created = create_key(a, "short-lived")
        assert created.status == 201, created
        secret, key_id = created.json()["key"], created.json()["id"]
        until_status(b, secret, 200, 2.0)

        revoked = http_call(a.admin, "DELETE", f"/admin/keys/{key_id}", headers=ADMIN_HEADERS)
        assert revoked.status == 200, revoked
        r = call(a, secret)
        assert r.status == 401 and "revoked" in assert_error_shape(r)["message"], r
        assert until_status(b, secret, 401, 2.0) < 1.0
        err = assert_error_shape(call(b, secret), 401)
        assert "revoked" in err["message"], err
        listed = http_call(b.admin, "GET", "/admin/keys", headers=ADMIN_HEADERS).json()["data"]
        assert [k["revoked"] for k in listed if k["id"] == key_id] == [True], listed
        # Unknown ids and config keys cannot be revoked.
        assert http_call(b.admin, "DELETE", "/admin/keys/key_nope",
                         headers=ADMIN_HEADERS).status == 404
        assert http_call(b.admin, "DELETE", "/admin/keys/cfg_declared",
                         headers=ADMIN_HEADERS).status == 400
    finally:
        a.stop()
        b.stop()


def test_redis_outage_keeps_known_keys_and_fails_admin_writes_with_503(tmp_path, redis):
    a = start(tmp_path, redis.port, "gw-a")
    b = start(tmp_path, redis.port, "gw-b")
    try:
        created = create_key(a, "before-outage")
        assert created.status == 201, created
        secret, key_id = created.json()["key"], created.json()["id"]
        until_status(b, secret, 200, 2.0)

        redis.stop()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5:  # several refresh rounds fail meanwhile
            for gw in (a, b):
                assert call(gw, secret).status == 200
                assert call(gw, KEY).status == 200
            time.sleep(0.1)
        for gw in (a, b):
            r = create_key(gw, "during-outage")
            err = assert_error_shape(r, 503)
            assert "Redis" in err["message"], err
            assert r.header("retry-after"), r
            r = http_call(gw.admin, "DELETE", f"/admin/keys/{key_id}", headers=ADMIN_HEADERS)
            assert_error_shape(r, 503)
            # Logged once for the whole outage, not once per attempt.
            assert logs(gw).count("key store: Redis at") == 1, logs(gw)

        redis.start()  # same data directory: the keys are still there
        r = poll(lambda: create_key(a, "after-outage"), 3.0, interval=0.1)
        assert r.status == 201, r
        new_secret = r.json()["key"]
        assert until_status(b, new_secret, 200, 2.0) < 1.0
        for gw in (a, b):
            assert call(gw, secret).status == 200
            assert poll(lambda: "Redis at" in logs(gw) and "reachable again" in logs(gw), 2.0)
        # The revocation path works again too.
        assert http_call(b.admin, "DELETE", f"/admin/keys/{key_id}",
                         headers=ADMIN_HEADERS).status == 200
        assert until_status(a, secret, 401, 2.0) < 1.0
    finally:
        a.stop()
        b.stop()


def test_instance_started_while_redis_is_down_serves_declared_keys_then_catches_up(tmp_path,
                                                                                   redis):
    a = start(tmp_path, redis.port, "gw-a")
    try:
        created = create_key(a, "early")
        assert created.status == 201, created
        secret = created.json()["key"]
        redis.stop()
        b = start(tmp_path, redis.port, "gw-b")
        try:
            assert call(b, KEY).status == 200  # declared keys need no Redis
            assert call(b, secret).status == 401  # never loaded yet
            redis.start()
            assert until_status(b, secret, 200, 3.0) < 3.0
        finally:
            b.stop()
    finally:
        a.stop()


BUDGETS = """prices:
  - {model: "mock-*", input_per_million: 1000, output_per_million: 1000}
budgets:
  backend: redis
  per_key: {usd: 0.05, period: day}
  per_tenant:
    alpha: {usd: 0.05, period: month}
"""


def test_budget_spent_on_a_is_enforced_by_b(tmp_path, redis, mock):
    # Separate usage databases: only Redis carries the spend from A to B.
    a = start(tmp_path, redis.port, "gw-a", mock=mock, budgets=BUDGETS, usage_db=True)
    b = start(tmp_path, redis.port, "gw-b", mock=mock, budgets=BUDGETS, usage_db=True)
    try:
        first = call(a, KEY, model="mock-model")
        assert first.status == 200, first
        u = first.json()["usage"]
        cost = (u["prompt_tokens"] + u["completion_tokens"]) * 1000 / 1e6
        assert cost < 0.05 < 2 * cost  # one request fits a budget, two do not
        assert call(a, KEY, model="mock-model").status == 200
        t_spent = time.monotonic()
        r = call(a, KEY, model="mock-model")
        assert r.status == 429 and assert_error_shape(r)["code"] == "insufficient_quota", r

        # B never served these keys: it only knows the spend through Redis.
        time.sleep(1.0)
        r = call(b, KEY, model="mock-model")
        err = assert_error_shape(r, 429)
        assert err["code"] == "insufficient_quota" and "API key" in err["message"], err
        # A key of the same tenant that was never used anywhere: the tenant's budget is spent.
        r = call(b, KEY_A2, model="mock-model")
        err = assert_error_shape(r, 429)
        assert err["code"] == "insufficient_quota" and "tenant 'alpha'" in err["message"], err
        assert time.monotonic() - t_spent < 2.0

        day = time.strftime("%Y-%m-%d", time.gmtime())
        spent = dict(zip(*[iter(redis.command("HGETALL", f"sluice:spend:{day}"))] * 2))
        assert abs(float(spent["t:alpha"]) - 2 * cost) < 1e-6, spent
        assert abs(float(spent["k:cfg_declared"]) - 2 * cost) < 1e-6, spent
        month = dict(zip(*[iter(redis.command("HGETALL", f"sluice:spend:{day[:7]}"))] * 2))
        assert abs(float(month["t:alpha"]) - 2 * cost) < 1e-6, month
        assert redis.command("TTL", f"sluice:spend:{day}") > 24 * 3600
    finally:
        a.stop()
        b.stop()


def test_budget_spend_reaches_other_instances_within_a_second(tmp_path, redis, mock):
    a = start(tmp_path, redis.port, "gw-a", mock=mock, budgets=BUDGETS)
    b = start(tmp_path, redis.port, "gw-b", mock=mock, budgets=BUDGETS)
    try:
        assert call(a, KEY, model="mock-model").status == 200
        assert call(a, KEY, model="mock-model").status == 200  # tenant alpha is now over budget
        # B admits requests until the shared spend reaches it (the documented lag), then 429.
        assert until_status(b, KEY_A2, 429, 2.0) < 1.0
        r = call(b, KEY_A2, model="mock-model")
        assert "tenant 'alpha'" in assert_error_shape(r, 429)["message"], r
    finally:
        a.stop()
        b.stop()
