"""Graceful shutdown on SIGTERM: in-flight streams finish, new connections are refused."""

import signal
import socket
import subprocess
import time

from conftest import RawHttp, build_request, chat_body, http_call, parse_sse


def _connect_refused(host, port) -> bool:
    try:
        s = socket.create_connection((host, port), timeout=0.5)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    s.close()
    return False


def test_sigterm_idle_exits_zero_quickly(gateway):
    assert http_call(gateway, "GET", "/healthz").status == 200
    t0 = time.monotonic()
    gateway.proc.signal(signal.SIGTERM)
    try:
        rc = gateway.proc.wait(5)
    except subprocess.TimeoutExpired:
        raise AssertionError("gateway did not exit within 5 s of SIGTERM while idle")
    assert rc == 0, f"exit code {rc}; stderr:\n{gateway.proc.stderr_text()}"
    assert time.monotonic() - t0 < 3.0  # drain_timeout_ms 3000; idle should be near-instant
    assert _connect_refused(gateway.host, gateway.port)


def test_sigterm_drains_inflight_stream(gateway):
    with RawHttp(gateway.host, gateway.port, timeout=10) as c:
        c.send(build_request("POST", "/v1/chat/completions", chat_body(stream=True),
                             {"x-mock-itl-ms": "200", "x-mock-tokens": "10"}))
        head = c.read_head()
        assert head.status == 200, head
        events = []
        it = parse_sse(c.iter_body(head))
        for ev in it:
            events.append(ev)
            if len(events) == 2:  # role chunk + first content chunk
                break
        t_sig = time.monotonic()
        gateway.proc.signal(signal.SIGTERM)

        # new connections are refused while the stream drains (stream has ~1.6 s left)
        refused_at = None
        while time.monotonic() - t_sig < 1.0:
            if _connect_refused(gateway.host, gateway.port):
                refused_at = time.monotonic() - t_sig
                break
            time.sleep(0.05)
        assert refused_at is not None, "new connections still accepted 1 s after SIGTERM"

        try:
            for ev in it:
                events.append(ev)
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"in-flight stream broken by SIGTERM after {len(events)} "
                                 f"events: {e!r}; got {[x.data for x in events]}")
    data = [e.data for e in events]
    assert data[-1] == "[DONE]", f"stream did not complete: {data}"
    content = "".join(e.json()["choices"][0]["delta"].get("content") or ""
                      for e in events[:-1] if e.json().get("choices"))
    assert content == "".join(f"w{i} " for i in range(1, 11)), data

    try:
        rc = gateway.proc.wait(3.5)
    except subprocess.TimeoutExpired:
        raise AssertionError("gateway still running after the drained stream and drain_timeout")
    assert rc == 0, f"exit code {rc}; stderr:\n{gateway.proc.stderr_text()}"
    assert time.monotonic() - t_sig < 3.0 + 0.5, "exit later than drain_timeout_ms 3000"


def test_sigterm_with_stuck_stream_exits_by_drain_timeout(gateway_factory):
    # upstream stalls for ever; stream_idle raised so only the drain deadline can end it
    gw = gateway_factory(timeouts={"stream_idle_ms": 20000, "total_ms": 30000})
    with RawHttp(gw.host, gw.port, timeout=10) as c:
        c.send(build_request("POST", "/v1/chat/completions", chat_body(stream=True),
                             {"x-mock-fault": "stall-after:1"}))
        head = c.read_head()
        assert head.status == 200, head
        t_sig = time.monotonic()
        gw.proc.signal(signal.SIGTERM)
        try:
            gw.proc.wait(3.0 + 2.0)
        except subprocess.TimeoutExpired:
            raise AssertionError("gateway ignored drain_timeout_ms 3000 with a stuck stream")
        elapsed = time.monotonic() - t_sig
        assert elapsed >= 2.0, f"exited after {elapsed:.2f}s, before drain_timeout with a live stream"
        closed, _ = c.wait_closed(2)
        assert closed, "client connection not closed after the gateway exited"


def test_readyz_while_serving(gateway):
    r = http_call(gateway, "GET", "/readyz")
    assert r.status == 200, r
