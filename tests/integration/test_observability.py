"""Observability and operations (issue 6): /metrics after known traffic, gauges that return to
zero after cancelled streams, server-timing, the JSON access log, operational JSON logs, hot
reload (SIGHUP and file change, under load, and an invalid file that keeps the old routes) and
--check-config. Real processes and sockets: sluice + sluice-mock."""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (SLUICE_BIN, UPSTREAM_KEY, Gateway, Proc, RawHttp, build_request,
                      chat_body, free_closed_port, http_call, poll, render_config,
                      require_binaries, stream_request)


# ---- helpers -------------------------------------------------------------------------------

def parse_metrics(text: str) -> dict:
    """{(name, frozenset(labels.items())): value} from the Prometheus text format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, f"bad exposition line: {line!r}"
        labels = {}
        if m.group(3):
            for lm in re.finditer(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3)):
                labels[lm.group(1)] = lm.group(2)
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


def metric(metrics: dict, name: str, **labels) -> float:
    """Sum of every series of `name` whose labels include `labels`."""
    total = 0.0
    want = set(labels.items())
    for (n, ls), v in metrics.items():
        if n == name and want <= set(ls):
            total += v
    return total


def scrape(gw) -> dict:
    r = http_call(gw.admin, "GET", "/metrics")
    assert r.status == 200, r
    assert r.header("content-type", "").startswith("text/plain"), r
    return parse_metrics(r.body.decode())


def start_gateway(tmp_path: Path, mock, extra_top: str = "", extra_routes: str = "",
                  env: dict | None = None, name: str = "sluice.yaml",
                  args: list[str] | None = None, admin: dict | None = None) -> Gateway:
    require_binaries(SLUICE_BIN)
    text = render_config(mock.port, free_closed_port(), extra_routes=extra_routes,
                         admin=admin) + extra_top
    path = tmp_path / name
    path.write_text(text)
    e = dict(os.environ)
    e["MOCK_KEY"] = UPSTREAM_KEY
    e.update(env or {})
    proc = Proc([str(SLUICE_BIN), "--config", str(path)] + (args or []), env=e, name="sluice")
    gw = Gateway(proc, path, text)
    gw.routes_text = text[: len(text) - len(extra_top)]  # ends inside `routes:`
    gw.top_text = extra_top
    return gw


def rewrite(gw, added_routes: str) -> None:
    """Rewrites the gateway's config file with `added_routes` appended under `routes:`."""
    gw.config_path.write_text(gw.routes_text + added_routes + gw.top_text)


@pytest.fixture
def gateways():
    started = []
    yield started
    for gw in started:
        gw.proc.stop()


# ---- metrics -------------------------------------------------------------------------------

def test_metrics_count_known_traffic(mock, tmp_path, gateways):
    gw = start_gateway(tmp_path, mock)
    gateways.append(gw)
    for _ in range(5):
        r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(),
                      headers={"x-mock-tokens": "7"})
        assert r.status == 200, r
    prompt_tokens = len(chat_body()) // 4
    r = http_call(gw, "POST", "/v1/chat/completions", body=b"{not json")
    assert r.status == 400
    r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model="no-such-model"))
    assert r.status == 404
    r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(),
                  headers={"x-mock-status": "400"})
    assert r.status == 400
    r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model="dead"))
    assert r.status in (502, 503), r
    s = stream_request(gw, chat_body(stream=True), headers={"x-mock-tokens": "4"})
    assert s.head.status == 200 and s.data[-1] == "[DONE]"

    route = "/v1/chat/completions"
    # A request is recorded just after its last byte is written: wait for all 10.
    assert poll(lambda: metric(scrape(gw), "sluice_requests_total", route=route) == 10, 5)
    m = scrape(gw)
    assert metric(m, "sluice_requests_total", route=route, model="mock-model",
                  target="mock-model#0", status="2xx", outcome="success") == 6
    assert metric(m, "sluice_requests_total", route=route, model="mock-model",
                  status="4xx", outcome="client_error") == 1  # the upstream's 400
    assert metric(m, "sluice_requests_total", route=route, model="", status="4xx",
                  outcome="client_error") == 2  # bad JSON + unknown model: no model label
    assert metric(m, "sluice_requests_total", route=route, model="dead", outcome="error") == 1
    # Unknown model names never become label values.
    assert not any(("model", "no-such-model") in ls for (_, ls) in m)
    assert metric(m, "sluice_tokens_total", model="mock-model", direction="output") == 5 * 7
    assert metric(m, "sluice_tokens_total", model="mock-model", direction="input") == \
        5 * prompt_tokens
    assert metric(m, "sluice_request_duration_seconds_count", route=route,
                  model="mock-model") == 7
    assert metric(m, "sluice_overhead_microseconds_count", route=route) == 10
    # Histogram buckets are cumulative and end at the count.
    inf = metric(m, "sluice_request_duration_seconds_bucket", route=route, model="mock-model",
                 le="+Inf")
    assert inf == 7
    assert metric(m, "sluice_time_to_first_token_seconds_count", model="mock-model") == 1
    assert metric(m, "sluice_inter_token_latency_seconds_count", model="mock-model") >= 4
    assert metric(m, "sluice_upstream_attempts_total", target="mock-model#0",
                  outcome="success") == 7
    assert metric(m, "sluice_upstream_attempts_total", target="dead#0",
                  outcome="connect_error") >= 1
    assert metric(m, "sluice_circuit_breaker_state", target="mock-model#0") == 0
    # The scrape itself is in flight while rendering: active requests is 1 (the previous
    # scrape may still be finishing on the other worker for a few microseconds: poll).
    assert poll(lambda: metric(scrape(gw), "sluice_active_requests") == 1, 5)
    assert metric(m, "sluice_open_streams") == 0
    # Every family has HELP and TYPE, counters end in _total.
    text = http_call(gw.admin, "GET", "/metrics").body.decode()
    for fam in set(re.findall(r"^# TYPE (\S+) counter$", text, re.M)):
        assert fam.endswith("_total"), fam
    for name in {n for (n, _) in m}:
        assert name.startswith(("sluice_", "process_")), name


def test_active_gauges_return_to_zero_after_cancelled_streams(mock, tmp_path, gateways):
    gw = start_gateway(tmp_path, mock)
    gateways.append(gw)
    conns = []
    for _ in range(6):
        c = RawHttp(gw.host, gw.port, timeout=5)
        c.send(build_request("POST", "/v1/chat/completions", chat_body(stream=True),
                             {"x-mock-tokens": "200", "x-mock-itl-ms": "50"}))
        head = c.read_head(5)
        assert head.status == 200
        conns.append(c)

    def streams_open():
        m = scrape(gw)
        return metric(m, "sluice_open_streams") == 6 and metric(m, "sluice_active_requests") == 7
    assert poll(streams_open, 5), scrape(gw)
    for c in conns:
        c.close()  # the client walks away mid-stream

    def drained():
        m = scrape(gw)
        return metric(m, "sluice_open_streams") == 0 and metric(m, "sluice_active_requests") == 1
    assert poll(drained, 5), {k: v for k, v in scrape(gw).items() if "active" in k[0] or
                              "open_streams" in k[0]}
    m = scrape(gw)
    assert metric(m, "sluice_requests_total", model="mock-model", outcome="cancelled") == 6


def test_server_timing_header(mock, tmp_path, gateways):
    gw = start_gateway(tmp_path, mock, extra_top="metrics: {server_timing: true}\n")
    gateways.append(gw)
    r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(),
                  headers={"x-mock-latency-ms": "60"})
    assert r.status == 200
    st = r.header("server-timing")
    assert st, r
    phases = dict(re.findall(r"(\w+);dur=([0-9.]+)", st))
    assert set(phases) == {"parse", "auth", "route", "upstream", "total"}, st
    vals = {k: float(v) for k, v in phases.items()}
    assert vals["upstream"] >= 60.0, st  # the mock waited 60 ms before answering
    assert vals["total"] >= vals["upstream"], st
    # Errors carry it too.
    r = http_call(gw, "POST", "/v1/chat/completions", body=b"{")
    assert r.status == 400 and r.header("server-timing"), r


def test_server_timing_is_off_by_default(mock, tmp_path, gateways):
    # The header tells every client the gateway's phase times: only when asked for.
    gw = start_gateway(tmp_path, mock)
    gateways.append(gw)
    r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body())
    assert r.status == 200 and r.header("server-timing") is None, r
    r = http_call(gw, "POST", "/v1/chat/completions", body=b"{")
    assert r.status == 400 and r.header("server-timing") is None, r


def test_server_timing_can_be_turned_off_and_metrics_disabled(mock, tmp_path, gateways):
    gw = start_gateway(tmp_path, mock, extra_top="metrics: {enabled: false, server_timing: false}\n")
    gateways.append(gw)
    r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body())
    assert r.status == 200 and r.header("server-timing") is None, r
    assert http_call(gw.admin, "GET", "/metrics").status == 404
    assert http_call(gw, "GET", "/metrics").status == 404


def test_metrics_can_require_the_admin_token(mock, tmp_path, gateways):
    gw = start_gateway(tmp_path, mock, admin={"token_env": "ADMIN_T"},
                       extra_top="metrics: {require_admin_token: true, path: /internal/metrics}\n",
                       env={"ADMIN_T": "adm-secret"})
    gateways.append(gw)
    assert http_call(gw.admin, "GET", "/internal/metrics").status == 401
    r = http_call(gw.admin, "GET", "/internal/metrics",
                  headers={"authorization": "Bearer adm-secret"})
    assert r.status == 200 and b"sluice_build_info" in r.body, r
    # Not on the public listener, not even with the token.
    r = http_call(gw, "GET", "/internal/metrics", headers={"authorization": "Bearer adm-secret"})
    assert r.status == 404, r


# ---- access log ----------------------------------------------------------------------------

def read_json_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_access_log_lines(mock, tmp_path, gateways):
    log = tmp_path / "access.log"
    gw = start_gateway(
        tmp_path, mock,
        extra_top=f"access_log: {{enabled: true, path: {log}}}\n"
                  "auth:\n  enabled: true\n  keys:\n"
                  "    - {name: team-a, key_env: KEY_A, tenant: acme}\n",
        env={"KEY_A": "sk-team-a-very-secret"})
    gateways.append(gw)
    auth = {"authorization": "Bearer sk-team-a-very-secret"}
    secret_prompt = "my-private-prompt-text"
    r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(content=secret_prompt),
                  headers={**auth, "x-request-id": "req-one"})
    assert r.status == 200
    s = stream_request(gw, chat_body(stream=True), headers={**auth, "x-mock-tokens": "3"})
    assert s.head.status == 200
    r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(),
                  headers={"authorization": "Bearer wrong"})
    assert r.status == 401
    lines = poll(lambda: (ls := read_json_lines(log)) and len(ls) >= 3 and ls, 5)
    assert lines and len(lines) == 3, lines
    one = next(l for l in lines if l["request_id"] == "req-one")
    assert one["status"] == 200 and one["model"] == "mock-model"
    assert one["target"] == "mock-model#0" and one["tenant"] == "acme"
    assert one["key"].startswith("cfg_") and one["attempts"] == 1
    assert one["output_tokens"] == 16 and one["outcome"] == "success"
    assert one["duration_ms"] >= one["upstream_ms"] >= 0 and one["overhead_us"] >= 0
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", one["ts"])
    streamed = next(l for l in lines if l["stream"])
    assert "ttft_ms" in streamed and streamed["outcome"] == "success"
    denied = next(l for l in lines if l["status"] == 401)
    assert denied["error"] == "invalid_api_key" and denied["outcome"] == "denied"
    raw = log.read_text()
    assert "sk-team-a-very-secret" not in raw and "wrong" not in raw
    assert secret_prompt not in raw  # prompts are not logged unless include_bodies


def test_access_log_sampling_keeps_errors_and_bodies_only_when_asked(mock, tmp_path, gateways):
    log = tmp_path / "access.log"
    gw = start_gateway(
        tmp_path, mock,
        extra_top=f"access_log: {{enabled: true, path: {log}, sample: 0, include_bodies: true}}\n")
    gateways.append(gw)
    for _ in range(5):
        assert http_call(gw, "POST", "/v1/chat/completions", body=chat_body()).status == 200
    r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(content="body-marker"),
                  headers={"x-mock-status": "500"})
    assert r.status >= 500
    lines = poll(lambda: read_json_lines(log), 5)
    time.sleep(0.2)
    lines = read_json_lines(log)
    assert len(lines) == 1, lines  # sample 0: successes dropped, the error kept
    assert lines[0]["status"] >= 500 and "body-marker" in lines[0]["body"]


def test_json_operational_logs(mock, tmp_path, gateways):
    gw = start_gateway(tmp_path, mock, extra_top="logging: {level: debug, format: json}\n")
    gateways.append(gw)
    http_call(gw, "POST", "/v1/chat/completions", body=chat_body())
    gw.proc.signal(signal.SIGHUP)  # logs a line about the reload
    assert poll(lambda: "reloaded" in gw.proc.stderr_text(), 5)
    lines = [l for l in gw.proc.stderr_text().splitlines() if l.startswith("{")]
    assert lines, gw.proc.stderr_text()
    for l in lines:
        obj = json.loads(l)
        assert {"ts", "level", "msg"} <= set(obj)
    reloaded = [json.loads(l) for l in lines if "reloaded" in l]
    assert reloaded and reloaded[0]["level"] == "info", lines


# ---- hot reload ----------------------------------------------------------------------------

def test_reload_under_load_loses_nothing(mock, tmp_path, gateways):
    gw = start_gateway(tmp_path, mock)
    gateways.append(gw)
    assert http_call(gw, "POST", "/v1/chat/completions",
                     body=chat_body(model="added-later")).status == 404
    results = []
    errors = []
    stop = threading.Event()

    def streamer():
        while not stop.is_set():
            try:
                s = stream_request(gw, chat_body(stream=True),
                                   headers={"x-mock-tokens": "20", "x-mock-itl-ms": "20"},
                                   timeout=10)
                ok = s.head.status == 200 and s.data and s.data[-1] == "[DONE]" and \
                    s.content() == "".join(f"w{i} " for i in range(1, 21))
                results.append(ok)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

    def unary():
        while not stop.is_set():
            try:
                r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body())
                results.append(r.status == 200)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

    threads = [threading.Thread(target=streamer) for _ in range(6)] + \
              [threading.Thread(target=unary) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    # Streams are open across every swap: 3 reloads by SIGHUP, each adding a route.
    for i in range(3):
        rewrite(gw, f"""  - model: added-later
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://127.0.0.1:{mock.port}/v1", model: mock-model}}]
  - model: gen-{i}
    targets: [{{provider: demo}}]
""")
        gw.proc.signal(signal.SIGHUP)
        time.sleep(0.4)
    stop.set()
    for t in threads:
        t.join(20)
    assert not errors, errors[:5]
    assert len(results) > 20 and all(results), (len(results), results.count(False))
    r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model="added-later"))
    assert r.status == 200, r
    assert http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model="gen-2")).status == 200
    m = scrape(gw)
    assert metric(m, "sluice_config_reloads_total", result="success") >= 3
    assert metric(m, "sluice_config_reloads_total", result="failure") == 0
    # Counters of routes that survive a reload keep counting (no reset to zero).
    assert poll(lambda: metric(scrape(gw), "sluice_requests_total", model="mock-model",
                               outcome="success") >= len(results), 5)


def test_invalid_reload_keeps_old_routes(mock, tmp_path, gateways):
    gw = start_gateway(tmp_path, mock)
    gateways.append(gw)
    rewrite(gw, "  - model: broken\n    targets: [{provider: nope}]\n")
    gw.proc.signal(signal.SIGHUP)
    assert poll(lambda: "reload rejected" in gw.proc.stderr_text(), 5), gw.proc.stderr_text()
    assert "routes[4].targets[0].provider" in gw.proc.stderr_text()
    assert http_call(gw, "POST", "/v1/chat/completions", body=chat_body()).status == 200
    assert gw.proc.alive()
    m = scrape(gw)
    assert metric(m, "sluice_config_reloads_total", result="failure") == 1
    assert metric(m, "sluice_config_last_reload_successful") == 0
    # Not YAML at all: same story.
    gw.config_path.write_text("routes: [unclosed\n")
    gw.proc.signal(signal.SIGHUP)
    assert poll(lambda: metric(scrape(gw), "sluice_config_reloads_total", result="failure") == 2, 5)
    assert http_call(gw, "POST", "/v1/chat/completions", body=chat_body()).status == 200


def test_reload_on_file_change_without_signal(mock, tmp_path, gateways):
    gw = start_gateway(tmp_path, mock, extra_top="reload: {watch: true, interval_ms: 200}\n")
    gateways.append(gw)
    assert http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model="fresh")).status == 404
    # Write a new file and rename it over the old one (what editors and ConfigMaps do).
    new = gw.config_path.with_suffix(".new")
    new.write_text(gw.routes_text + "  - model: fresh\n    targets: [{provider: demo}]\n"
                   + gw.top_text)
    os.replace(new, gw.config_path)
    assert poll(lambda: http_call(gw, "POST", "/v1/chat/completions",
                                  body=chat_body(model="fresh")).status == 200, 5)


def test_reload_keeps_rate_limit_state_when_governance_is_unchanged(mock, tmp_path, gateways):
    top = ("rate_limits:\n  per_model:\n    - {model: mock-model, requests_per_minute: 3}\n")
    gw = start_gateway(tmp_path, mock, extra_top=top)
    gateways.append(gw)
    statuses = [http_call(gw, "POST", "/v1/chat/completions", body=chat_body()).status
                for _ in range(3)]
    assert statuses == [200, 200, 200]
    # Add a route (governance sections untouched): the limiter keeps its state.
    rewrite(gw, "  - model: other\n    targets: [{provider: demo}]\n")
    gw.proc.signal(signal.SIGHUP)
    assert poll(lambda: http_call(gw, "POST", "/v1/chat/completions",
                                  body=chat_body(model="other")).status == 200, 5)
    assert http_call(gw, "POST", "/v1/chat/completions", body=chat_body()).status == 429


# ---- --check-config ------------------------------------------------------------------------

def test_check_config(tmp_path, mock):
    require_binaries(SLUICE_BIN)
    good = tmp_path / "good.yaml"
    good.write_text(render_config(mock.port, free_closed_port()))
    r = subprocess.run([str(SLUICE_BIN), "--check-config", "-c", str(good)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "is valid" in r.stdout, r
    bad = tmp_path / "bad.yaml"
    route = "routes: [{model: m, targets: [{provider: demo}]}]\n"
    bad.write_text(route + "metrics: {enabled: maybe}\n")
    r = subprocess.run([str(SLUICE_BIN), "--check-config", "-c", str(bad)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "metrics.enabled" in r.stderr, r
    bad.write_text(route + "access_log: {sample: 2}\n")
    r = subprocess.run([str(SLUICE_BIN), "--check-config", "-c", str(bad)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "access_log.sample" in r.stderr, r


def test_http_layer_rejections_are_counted(mock, tmp_path, gateways):
    gw = start_gateway(tmp_path, mock)
    gateways.append(gw)
    with socket.create_connection((gw.host, gw.port), timeout=5) as s:
        s.sendall(b"GARBAGE\r\n\r\n")
        assert b" 400 " in s.recv(4096)
    with socket.create_connection((gw.host, gw.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        assert b" 431 " in s.recv(4096)
    m = scrape(gw)
    assert metric(m, "sluice_http_rejected_total", reason="invalid_request") == 1
    assert metric(m, "sluice_http_rejected_total", reason="request_header_fields_too_large") == 1
