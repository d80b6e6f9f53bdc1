"""Live profiling: GET /debug/pprof/profile (gperftools CPU profile) and /debug/pprof/heap
(tcmalloc heap sample) behind the admin token; the files must be ones google-pprof reads."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import threading
import time

import pytest

from conftest import SLUICE_BIN, Proc, admin_yaml, build_dir, http_call, require_binaries

ADMIN = "pprof-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
DEMO_BODY = json.dumps({"model": "demo", "messages": [{"role": "user", "content": "hi"}]}).encode()


def start(tmp_path, threads: int = 1, admin: bool = True,
          sample_parameter: str | None = None) -> Proc:
    require_binaries(SLUICE_BIN)
    cfg = tmp_path / "pprof.yaml"
    cfg.write_text(f"""server: {{listen: "127.0.0.1:0", threads: {threads}}}
{admin_yaml("SLUICE_ADMIN_TOKEN" if admin else None)}
routes:
  - model: demo
    targets: [{{provider: demo}}]
""")
    env = dict(os.environ, SLUICE_ADMIN_TOKEN=ADMIN)
    env.pop("CPUPROFILE", None)
    env.pop("TCMALLOC_SAMPLE_PARAMETER", None)
    if sample_parameter is not None:
        env["TCMALLOC_SAMPLE_PARAMETER"] = sample_parameter
    return Proc([str(SLUICE_BIN), "--config", str(cfg)], env=env, name="sluice")


class Traffic:
    """Sends demo chat requests from a few client threads until stopped; counts the 200s and
    remembers when each finished, so a test can tell whether the gateway kept serving."""

    def __init__(self, gw, clients: int = 4):
        self.gw = gw
        self.stop_flag = threading.Event()
        self.done: list[float] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self):
        while not self.stop_flag.is_set():
            try:
                r = http_call(self.gw, "POST", "/v1/chat/completions", body=DEMO_BODY, timeout=5)
                with self.lock:
                    if r.status == 200:
                        self.done.append(time.monotonic())
                    else:
                        self.failures.append(repr(r))
            except OSError as e:
                with self.lock:
                    self.failures.append(repr(e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=10)

    def finished_between(self, start: float, end: float) -> int:
        with self.lock:
            return sum(1 for t in self.done if start <= t <= end)


def pprof_text(profile: bytes, tmp_path, name: str) -> str:
    """google-pprof --text on the profile (installed by scripts/install-deps.sh)."""
    tool = shutil.which("google-pprof") or shutil.which("pprof")
    if tool is None:
        pytest.fail("google-pprof not installed (scripts/install-deps.sh installs google-perftools)")
    path = tmp_path / name
    path.write_bytes(profile)
    out = subprocess.run([tool, "--text", "--nodecount=100000", str(SLUICE_BIN), str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"pprof failed ({out.returncode}): {out.stderr[-2000:]}"
    return out.stdout


def built_allocator() -> str:
    cache = build_dir() / "CMakeCache.txt"
    for line in cache.read_text().splitlines():
        if line.startswith("SLUICE_ALLOCATOR:"):
            return line.split("=", 1)[1]
    return "unknown"


def test_pprof_needs_the_admin_token_and_is_hidden_when_admin_is_off(tmp_path):
    gw = start(tmp_path)
    try:
        for path in ("/debug/pprof/profile?seconds=1", "/debug/pprof/heap"):
            r = http_call(gw.admin, "GET", path)
            assert r.status == 401, r
            r = http_call(gw.admin, "GET", path, headers={"Authorization": "Bearer wrong-token"})
            assert r.status == 401, r
            assert r.json()["error"]["code"] == "invalid_api_key", r
    finally:
        gw.stop()
    off = start(tmp_path, admin=False)
    try:
        r = http_call(off.admin, "GET", "/debug/pprof/profile?seconds=1", headers=AUTH)
        assert r.status == 404, r
        assert "admin API is disabled" in r.json()["error"]["message"], r
        assert http_call(off.admin, "GET", "/debug/pprof/heap", headers=AUTH).status == 404
    finally:
        off.stop()


def test_bad_requests_are_rejected_in_openai_shape(tmp_path):
    gw = start(tmp_path)
    try:
        for seconds in ("0", "301", "-1", "abc", "1.5", ""):
            r = http_call(gw.admin, "GET", f"/debug/pprof/profile?seconds={seconds}", headers=AUTH)
            assert r.status == 400, (seconds, r)
            assert r.json()["error"]["param"] == "seconds", r
            assert r.json()["error"]["type"] == "invalid_request_error", r
        r = http_call(gw.admin, "GET", "/debug/pprof/goroutine", headers=AUTH)
        assert r.status == 404, r
        assert r.json()["error"]["code"] == "not_found", r
        r = http_call(gw.admin, "POST", "/debug/pprof/profile?seconds=1", headers=AUTH, body=b"{}")
        assert r.status == 405, r
        assert r.header("allow") == "GET", r
    finally:
        gw.stop()


def test_cpu_profile_under_load_is_valid_and_does_not_block_the_worker(tmp_path):
    # One worker thread: if the profile blocked it, no request could finish meanwhile.
    gw = start(tmp_path, threads=1)
    try:
        with Traffic(gw) as traffic:
            time.sleep(0.3)
            began = time.monotonic()
            r = http_call(gw.admin, "GET", "/debug/pprof/profile?seconds=1", headers=AUTH,
                          timeout=30)
            ended = time.monotonic()
        assert r.status == 200, r
        assert r.header("content-type") == "application/octet-stream", r
        assert 0.9 <= ended - began < 10, ended - began
        served = traffic.finished_between(began + 0.1, ended - 0.1)
        assert served >= 20, f"only {served} requests finished during the profile"
        assert not traffic.failures, traffic.failures[:3]
        # gperftools' CPU profile header: 5 machine words 0, 3, 0, sampling period (µs), 0.
        assert len(r.body) > 40, r
        hdr_count, hdr_words, version, period_us, padding = struct.unpack("<5Q", r.body[:40])
        assert (hdr_count, hdr_words, version, padding) == (0, 3, 0, 0), r.body[:40]
        assert 0 < period_us <= 1_000_000, period_us
        text = pprof_text(r.body, tmp_path, "cpu.prof")
        total = [line for line in text.splitlines() if line.startswith("Total:")]
        assert total and int(total[0].split()[1]) > 0, text[:2000]
        # Samples come from the worker thread (started before ProfilerStart), not only main.
        assert "sluice::" in text, text[:3000]
    finally:
        gw.stop()


def test_only_one_cpu_profile_runs_at_a_time(tmp_path):
    gw = start(tmp_path, threads=2)
    try:
        first: dict = {}

        def take():
            first["r"] = http_call(gw.admin, "GET", "/debug/pprof/profile?seconds=2", headers=AUTH,
                                   timeout=30)

        t = threading.Thread(target=take)
        t.start()
        time.sleep(0.5)
        second = http_call(gw.admin, "GET", "/debug/pprof/profile?seconds=1", headers=AUTH,
                           timeout=30)
        assert second.status == 409, second
        assert second.json()["error"]["code"] == "profile_in_progress", second
        assert "one runs at a time" in second.json()["error"]["message"], second
        # Other requests are served while the profile runs.
        assert http_call(gw, "POST", "/v1/chat/completions", body=DEMO_BODY).status == 200
        t.join(timeout=30)
        assert first["r"].status == 200, first["r"]
        # The slot is free again afterwards.
        third = http_call(gw.admin, "GET", "/debug/pprof/profile?seconds=1", headers=AUTH,
                          timeout=30)
        assert third.status == 200, third
    finally:
        gw.stop()


def fetch_heap(tmp_path, sample_parameter: str | None):
    gw = start(tmp_path, threads=2, sample_parameter=sample_parameter)
    try:
        with Traffic(gw):
            time.sleep(0.5)
            return http_call(gw.admin, "GET", "/debug/pprof/heap", headers=AUTH, timeout=30)
    finally:
        gw.stop()


def test_heap_profile_is_sampled_by_default_or_501_without_tcmalloc(tmp_path):
    r = fetch_heap(tmp_path, None)
    if built_allocator() != "tcmalloc":
        assert r.status == 501, r
        assert r.json()["error"]["code"] == "not_implemented", r
        assert "tcmalloc" in r.json()["error"]["message"], r
        return
    assert r.status == 200, r
    assert r.header("content-type") == "application/octet-stream", r
    # Sampling is on without any environment variable: one sample per 4 MiB allocated.
    assert r.body.startswith(b"heap profile:"), r.body[:300]
    assert r.body.splitlines()[0].endswith(b"@ heap_v2/4194304"), r.body[:300]
    assert b"MAPPED_LIBRARIES:" in r.body, r.body[-500:]
    pprof_text(r.body, tmp_path, "heap.prof")  # exits 0


def test_heap_profile_lists_allocation_sites_pprof_can_name(tmp_path):
    if built_allocator() != "tcmalloc":
        pytest.skip("heap profiles need SLUICE_ALLOCATOR=tcmalloc")
    # A small sampling period (honoured from the environment) so that the long-lived start-up
    # allocations are sampled for sure and the profile is not empty.
    r = fetch_heap(tmp_path, "4096")
    assert r.status == 200, r
    assert r.body.splitlines()[0].endswith(b"@ heap_v2/4096"), r.body[:300]
    text = pprof_text(r.body, tmp_path, "heap.prof")
    total = [line for line in text.splitlines() if line.startswith("Total:")]
    assert total and float(total[0].split()[1]) > 0, text[:2000]
    assert "sluice::" in text, text[:3000]
