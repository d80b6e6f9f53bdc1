"""The response cache across instances sharing a real redis-server (docs/cache.md): single flight
across instances (`cache.flight_lock`: a lock per key in L2), and invalidation that reaches the
other instances' L1 (each reads the invalidation log in L2 at most once a second, on a lookup).

    cd /work/main && /usr/bin/python3 -m pytest tests/integration/test_cache_instances.py -q
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from conftest import SLUICE_BIN, http_call, poll, require_binaries
from test_cache import (CHAT, ROUTES, CacheStarter, _stats, admin_cache, cache_header, chat,
                        invalidate, metric, run_concurrently)


@pytest.fixture
def start(mock, tmp_path):
    s = CacheStarter(mock, tmp_path, ROUTES)
    yield s
    s.stop_all()


def top(redis, lock: bool) -> str:
    return (f'redis: {{url: "redis://127.0.0.1:{redis.port}", timeout_ms: 300}}\n'
            f'cache: {{l2: redis, flight_lock: {"true" if lock else "false"}}}\n')


def slow_body(text: str) -> dict:
    # cached-slow: a first-byte timeout well above the mock's latency.
    return {"model": "cached-slow", "messages": [{"role": "user", "content": text}]}


@pytest.mark.parametrize("lock", [True, False])
def test_identical_misses_on_two_instances(start, mock, redis, lock):
    a = start(top=top(redis, lock), name="a")
    b = start(top=top(redis, lock), name="b")
    before = _stats(mock)
    body = slow_body(f"q-two-instances-{lock}")
    results = run_concurrently(6, lambda i: http_call(
        (a, b)[i % 2], "POST", CHAT, json_body=body, headers={"x-mock-latency-ms": "1500"},
        timeout=20))
    assert [getattr(r, "status", r) for r in results] == [200] * 6, results
    calls = _stats(mock) - before
    if lock:
        # One upstream call for both instances; everyone gets its answer.
        assert calls == 1, calls
        assert sorted(cache_header(r) for r in results) == ["hit"] * 5 + ["miss"]
        assert len({json.dumps(r.json()["choices"][0]["message"]) for r in results}) == 1
        flights = sum(metric(g, "sluice_cache_requests_total", tier="flight", result="hit")
                      for g in (a, b))
        assert flights == 5, flights
    else:
        # The control: each instance leads its own flight.
        assert calls == 2, calls


def test_waiters_on_another_instance_go_upstream_when_the_lock_holder_fails(start, mock, redis):
    a = start(top=top(redis, True), name="a")
    b = start(top=top(redis, True), name="b")
    body = slow_body("q-lock-holder-fails")
    leader: list = []
    t = threading.Thread(target=lambda: leader.append(http_call(
        a, "POST", CHAT, json_body=body,
        headers={"x-mock-latency-ms": "1500", "x-mock-status": "400"}, timeout=20)))
    t.start()
    try:
        assert poll(lambda: mock.stats()["active"] >= 1, 10), mock.stats()
        t0 = time.monotonic()
        r = http_call(b, "POST", CHAT, json_body=body, timeout=40)
        elapsed = time.monotonic() - t0
    finally:
        t.join(30)
    assert leader and leader[0].status == 400, leader
    # b waited for a's lock, saw it released without an answer, and went upstream itself: well
    # before the flight wait (30 s) ran out.
    assert r.status == 200 and cache_header(r) == "miss", r
    assert elapsed < 10, elapsed
    assert cache_header(http_call(a, "POST", CHAT, json_body=body)) == "hit"


def test_lock_is_skipped_when_redis_is_down(start, mock, redis):
    a = start(top=top(redis, True), name="a")
    redis.stop()
    r = chat(a, "q-lock-redis-down")
    assert r.status == 200 and cache_header(r) == "miss", r
    assert cache_header(chat(a, "q-lock-redis-down")) == "hit"  # from L1


def l1_entries(gw) -> int:
    return admin_cache(gw)["l1"]["entries"]


@pytest.mark.parametrize("query", ["model=cached", "key", "all=1"])
def test_invalidation_reaches_the_other_instances_l1(start, mock, redis, query):
    a = start(top=top(redis, False), name="a")
    b = start(top=top(redis, False), name="b")
    assert cache_header(chat(a, "q-inv-l1")) == "miss"
    # b's L1 gets the entry from L2 (once a's background write has landed).
    assert poll(lambda: cache_header(chat(b, "q-inv-l1")) == "hit", 5)
    assert l1_entries(b) == 1 and admin_cache(b)["requests"]["hits_l2"] == 1
    if query == "key":
        # Entry records are "sluice:cache:r:<key>" in Redis.
        keys = redis.command("KEYS", "sluice:cache:r:*") or []
        assert len(keys) == 1, keys
        query = "key=" + keys[0].removeprefix("sluice:cache:r:")
    r = invalidate(a, query)
    assert r.status == 200 and r.json()["invalidated"] >= 1, r
    # b drops its copy when it next reads the invalidation log: at most a second after its last
    # read, on a lookup (each chat below is one). Until then it serves its L1 copy.
    if query == "all=1":
        # all=1 clears every L1 but not L2: b finds the entry in L2 again.
        assert poll(lambda: chat(b, "q-inv-l1") and admin_cache(b)["requests"]["hits_l2"] == 2, 6), \
            admin_cache(b)
    else:
        # The entry is gone from L2 too: b's next lookup after reading the log is a miss.
        assert poll(lambda: cache_header(chat(b, "q-inv-l1")) == "miss", 6), admin_cache(b)


def test_flight_lock_needs_the_redis_tier(tmp_path):
    require_binaries(SLUICE_BIN)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("routes: [{model: m, targets: [{provider: demo}]}]\ncache: {flight_lock: true}\n")
    r = subprocess.run([str(SLUICE_BIN), "--check-config", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "cache.flight_lock: needs the Redis tier (l2: redis)" in r.stderr, r
