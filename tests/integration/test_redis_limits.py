"""Rate limits shared through a real redis-server: exact across two gateway instances, and the
configured policy (fail open / fail closed) while Redis is down, recovering when it returns."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import time

import pytest

from conftest import SLUICE_BIN, Proc, chat_body, free_closed_port, http_call, poll, require_binaries

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
KEY = "sk-redis-test"


class Redis:
    def __init__(self, port: int):
        self.port = port
        self.proc = None

    def start(self):
        if not os.access(REDIS, os.X_OK):
            pytest.fail("redis-server is not installed (scripts/install-deps.sh installs it)")
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        import socket
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        pytest.fail("redis-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def redis():
    r = Redis(free_closed_port())
    r.start()
    yield r
    r.stop()


def start_gateway(tmp_path, redis_port: int, name: str, on_error: str = "fail_open") -> Proc:
    require_binaries(SLUICE_BIN)
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(f"""server: {{listen: "127.0.0.1:0", threads: 2}}
admin: {{listen: off}}
auth:
  enabled: true
  keys:
    - {{name: shared, key_sha256: "{hashlib.sha256(KEY.encode()).hexdigest()}",
        limits: {{requests_per_minute: 50}}}}
rate_limits:
  backend: redis
  redis: {{url: "redis://127.0.0.1:{redis_port}", timeout_ms: 300, on_error: {on_error}}}
routes:
  - model: demo
    targets: [{{provider: demo}}]
""")
    return Proc([str(SLUICE_BIN), "--config", str(cfg)], name=name)


def call(gw):
    return http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model="demo"),
                     headers={"Authorization": f"Bearer {KEY}"})


def test_limit_is_exact_across_two_instances(tmp_path, redis):
    a = start_gateway(tmp_path, redis.port, "gw-a")
    b = start_gateway(tmp_path, redis.port, "gw-b")
    try:
        statuses = []
        lock = threading.Lock()

        def worker(gw, n):
            for _ in range(n):
                s = call(gw).status
                with lock:
                    statuses.append(s)

        threads = [threading.Thread(target=worker, args=(gw, 25)) for gw in (a, b) * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(statuses) == 200
        assert statuses.count(200) == 50, sorted(set(statuses))
        assert statuses.count(429) == 150
    finally:
        a.stop()
        b.stop()


@pytest.mark.parametrize("policy", ["fail_open", "fail_closed"])
def test_redis_outage_follows_policy_and_recovers(tmp_path, redis, policy):
    gw = start_gateway(tmp_path, redis.port, "gw", on_error=policy)
    try:
        assert call(gw).status == 200
        redis.stop()
        t0 = time.monotonic()
        statuses = [call(gw).status for _ in range(10)]
        assert time.monotonic() - t0 < 5, "requests hung while Redis was down"
        want = 200 if policy == "fail_open" else 503
        assert statuses == [want] * 10, statuses
        assert gw.proc.poll() is None, "gateway died"
        redis.start()
        # The limiter reconnects by itself (each worker has its own connection and tries at most
        # once per 500 ms, so one worker can answer before the other): once it answers again its
        # headers are back, and the limit applies again.
        assert poll(lambda: call(gw).header("x-ratelimit-limit-requests") == "50", 5.0)
        seen = []

        def limited():
            seen.append(call(gw).status)
            return seen[-1] == 429

        assert poll(limited, 10.0, interval=0.0), seen
        assert set(seen) <= {200, 429, 503}, seen
    finally:
        gw.stop()


def start_token_gateway(tmp_path, redis_port: int, mock_port: int, name: str) -> Proc:
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(f"""server: {{listen: "127.0.0.1:0", threads: 2}}
admin: {{listen: off}}
auth:
  enabled: true
  keys:
    - {{name: shared, key_sha256: "{hashlib.sha256(KEY.encode()).hexdigest()}",
        limits: {{tokens_per_minute: 1000}}}}
rate_limits:
  backend: redis
  redis: {{url: "redis://127.0.0.1:{redis_port}", timeout_ms: 300}}
routes:
  - model: mock-model
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://127.0.0.1:{mock_port}/v1"}}]
""")
    return Proc([str(SLUICE_BIN), "--config", str(cfg)], name=name)


def test_token_reservations_are_exact_across_two_instances(tmp_path, redis, mock):
    a = start_token_gateway(tmp_path, redis.port, mock.port, "tok-a")
    b = start_token_gateway(tmp_path, redis.port, mock.port, "tok-b")
    try:
        statuses = []
        lock = threading.Lock()

        def one(gw):
            # Each request reserves max_tokens (400) + its prompt: two fit in 1000 tokens.
            r = http_call(gw, "POST", "/v1/chat/completions",
                          body=chat_body(max_tokens=400),
                          headers={"Authorization": f"Bearer {KEY}", "x-mock-latency-ms": "800",
                                   "x-mock-tokens": "3"})
            with lock:
                statuses.append(r.status)

        threads = [threading.Thread(target=one, args=(gw,)) for gw in (a, b) * 5]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert sorted(statuses) == [200, 200] + [429] * 8, statuses
    finally:
        a.stop()
        b.stop()


def test_retry_after_is_honoured(tmp_path, redis):
    gw = start_gateway(tmp_path, redis.port, "gw-reset")
    try:
        for _ in range(50):
            assert call(gw).status == 200
        r = call(gw)
        assert r.status == 429, r
        retry_after = int(r.header("retry-after"))
        # 50 per minute refills one request every 1.2 s.
        assert 1 <= retry_after <= 2, (retry_after, r.json()["error"]["message"])
        time.sleep(retry_after + 0.1)
        assert call(gw).status == 200
    finally:
        gw.stop()
