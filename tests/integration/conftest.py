"""Shared fixtures and helpers for Sluice's integration tests.

Every test gets its own `sluice-mock` (the fake upstream) and its own `sluice` gateway, both on
ephemeral ports; they are always stopped in teardown. Only the Python standard library and
pytest are used.

    cd /work/main && /usr/bin/python3 -m pytest tests/integration -q

Binaries are taken from $SLUICE_BUILD_DIR (default: <repo>/build; a relative path is resolved
against the repository root).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def build_dir() -> Path:
    d = Path(os.environ.get("SLUICE_BUILD_DIR", "build"))
    if not d.is_absolute():
        d = REPO_ROOT / d
    return d


SLUICE_BIN = build_dir() / "sluice"
MOCK_BIN = build_dir() / "sluice-mock"

UPSTREAM_KEY = "sk-upstream-secret-for-mock"  # value of $MOCK_KEY given to the gateway

LISTEN_RE = re.compile(r"listening on http://([^:/\s]+|\[[^\]]+\]):(\d+)")
# sluice prints its operations listener (admin.listen) on the line after the main one:
# "sluice admin listening on http://HOST:PORT". LISTEN_RE matches it too: skip it for the main.
ADMIN_LISTEN_RE = re.compile(r"admin listening on http://([^:/\s]+|\[[^\]]+\]):(\d+)")

# The `admin` map every test config should use: an ephemeral operations listener, so gateways
# started in parallel never compete for the default 127.0.0.1:9090.
ADMIN_LISTEN = '"127.0.0.1:0"'


def admin_yaml(token_env: str | None = None, **keys) -> str:
    """`admin: {listen: "127.0.0.1:0", ...}` (one line, no newline) for test configs."""
    entries = {"listen": ADMIN_LISTEN}
    if token_env:
        entries["token_env"] = token_env
    entries.update(keys)
    return "admin: {" + ", ".join(f"{k}: {v}" for k, v in entries.items()) + "}"


def require_binaries(*paths: Path) -> None:
    missing = [str(p) for p in paths if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail("binaries not built: " + ", ".join(missing) + " (set SLUICE_BUILD_DIR?)")


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


@dataclass
class Address:
    """A host and port, usable wherever a helper takes a `target` with .host/.port."""
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class Proc:
    """A child process whose first stdout line announces `... listening on http://HOST:PORT`.

    stdout after that line is drained by a thread (so the pipe never fills); stderr goes to a
    temp file whose text is available via `.stderr_text()` for failure messages.
    """

    def __init__(self, argv: list[str], env: dict | None = None, startup_timeout: float = 10.0,
                 name: str = "proc"):
        self.name = name
        self.argv = argv
        self._stderr = tempfile.TemporaryFile()
        self.stdout_lines: list[str] = []
        self._admin: Address | None = None
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=env, start_new_session=True)
        self.host, self.port = self._wait_listening(startup_timeout)
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _wait_listening(self, timeout: float) -> tuple[str, int]:
        found: list[tuple[str, int]] = []
        done = threading.Event()

        def reader():
            try:
                for raw in self.proc.stdout:
                    line = raw.decode("utf-8", "replace")
                    self.stdout_lines.append(line)
                    m = LISTEN_RE.search(line)
                    if m and not ADMIN_LISTEN_RE.search(line):
                        found.append((m.group(1).strip("[]"), int(m.group(2))))
                        return
            finally:
                done.set()

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        done.wait(timeout)
        if not found:
            self.stop()
            raise RuntimeError(f"{self.name}: no 'listening on http://HOST:PORT' line on stdout "
                               f"within {timeout}s; exit={self.proc.poll()} "
                               f"stdout={self.stdout_lines!r}\nstderr:\n{self.stderr_text()}")
        return found[0]

    def _drain(self):
        try:
            for line in self.proc.stdout:
                self.stdout_lines.append(line.decode("utf-8", "replace"))
        except Exception:
            pass

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def admin(self) -> "Address":
        """The operations listener announced after the main line (sluice with admin.listen)."""
        if self._admin is None:
            deadline = time.monotonic() + 5.0
            while self._admin is None:
                for line in list(self.stdout_lines):
                    m = ADMIN_LISTEN_RE.search(line)
                    if m:
                        self._admin = Address(m.group(1).strip("[]"), int(m.group(2)))
                        break
                else:
                    if time.monotonic() >= deadline or not self.alive():
                        raise RuntimeError(f"{self.name}: no 'admin listening on' line on stdout "
                                           f"(admin.listen off?): {self.stdout_lines!r}")
                    time.sleep(0.02)
        return self._admin

    def stderr_text(self) -> str:
        try:
            self._stderr.seek(0)
            return self._stderr.read().decode("utf-8", "replace")[-8000:]
        except Exception:
            return ""

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> int | None:
        if self.proc.poll() is None:
            try:
                self.proc.terminate()
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        try:
            if self.proc.stdout:
                self.proc.stdout.close()
        except Exception:
            pass
        return self.proc.returncode


def free_closed_port() -> int:
    """A port on 127.0.0.1 on which (almost certainly) nothing listens."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------

DEFAULT_SERVER = {
    "listen": '"127.0.0.1:0"',
    "threads": 2,
    "max_body_bytes": "1MiB",
    "header_timeout_ms": 1000,
    "idle_timeout_ms": 2000,
    "drain_timeout_ms": 3000,
}

DEFAULT_TIMEOUTS = {"connect_ms": 1000, "first_byte_ms": 1000, "stream_idle_ms": 1000,
                    "total_ms": 5000}


def _flow(d: dict) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"


def render_config(mock_port: int, dead_port: int, server: dict | None = None,
                  timeouts: dict | None = None, extra_routes: str = "",
                  admin: dict | None = None, metrics: dict | None = None) -> str:
    srv = dict(DEFAULT_SERVER)
    srv.update(server or {})
    to = dict(DEFAULT_TIMEOUTS)
    to.update(timeouts or {})
    adm = {"listen": ADMIN_LISTEN}
    adm.update(admin or {})
    mock = f"http://127.0.0.1:{mock_port}/v1"
    text = f"""\
server: {_flow(srv)}
upstream: {{timeouts: {_flow(to)}}}
admin: {_flow(adm)}
{"metrics: " + _flow(metrics) if metrics else ""}
routes:
  - model: mock-model
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "{mock}", api_key_env: MOCK_KEY}}]
  - model: "mock-*"
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "{mock}", model: mock-model}}]
  - model: demo
    targets: [{{provider: demo}}]
  - model: dead
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://127.0.0.1:{dead_port}/v1"}}]
"""
    if extra_routes:
        text += extra_routes.replace("{MOCK}", mock).replace(
            "{MOCK_ROOT}", f"http://127.0.0.1:{mock_port}")
    return text


# --------------------------------------------------------------------------------------------
# HTTP helpers
# --------------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    version: str = "HTTP/1.1"

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise AssertionError(f"body is not JSON ({e}): {self.body[:500]!r}") from None

    def __repr__(self) -> str:  # readable assertion messages
        return (f"Response({self.status} {self.reason}, headers={self.headers}, "
                f"body={self.body[:600]!r})")


def http_call(target, method: str, path: str, json_body=None, body: bytes | None = None,
              headers: dict | None = None, timeout: float = 10.0) -> Response:
    """One request on a fresh http.client connection. `target` has .host/.port."""
    hdrs = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
    if body is not None and not any(k.lower() == "content-type" for k in hdrs):
        hdrs["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.reason, list(r.getheaders()), data,
                        "HTTP/1.1" if r.version == 11 else "HTTP/1.0")
    finally:
        conn.close()


def build_request(method: str, path: str, body: bytes | None = None,
                  headers: dict | list | None = None, host: str = "sluice.test",
                  content_length: bool = True) -> bytes:
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in items}
    lines = [f"{method} {path} HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: {host}")
    for k, v in items:
        lines.append(f"{k}: {v}")
    if body is not None:
        if "content-type" not in names:
            lines.append("Content-Type: application/json")
        if content_length and "content-length" not in names and "transfer-encoding" not in names:
            lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")


def chat_body(model: str = "mock-model", stream: bool = False, content: str = "hello",
              **extra) -> bytes:
    b = {"model": model, "messages": [{"role": "user", "content": content}]}
    if stream:
        b["stream"] = True
    b.update(extra)
    return json.dumps(b).encode()


class ConnectionClosed(Exception):
    pass


class RawHttp:
    """A minimal HTTP/1.1 client over a raw socket: exact control of bytes and timing."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.timeout = timeout
        self.eof = False

    # -- io
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _deadline(self, timeout: float | None) -> float:
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def _fill(self, deadline: float) -> None:
        if self.eof:
            raise ConnectionClosed("connection closed by peer")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out waiting for data")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("timed out waiting for data") from None
        if not data:
            self.eof = True
            raise ConnectionClosed("connection closed by peer")
        self.buf += data

    def read_until(self, sep: bytes, deadline: float) -> bytes:
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i + len(sep)], self.buf[i + len(sep):]
                return out
            self._fill(deadline)

    def read_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_available(self, deadline: float) -> bytes:
        """Whatever is buffered, or the next recv()."""
        if not self.buf:
            self._fill(deadline)
        out, self.buf = self.buf, b""
        return out

    def wait_closed(self, timeout: float) -> tuple[bool, bytes]:
        """Reads until EOF/reset or timeout. Returns (closed, bytes received meanwhile)."""
        deadline = time.monotonic() + timeout
        got = self.buf
        self.buf = b""
        while True:
            if self.eof:
                return True, got
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False, got
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False, got
            except (ConnectionResetError, BrokenPipeError):
                self.eof = True
                return True, got
            if not data:
                self.eof = True
                return True, got
            got += data

    # -- http
    def read_head(self, timeout: float | None = None) -> Response:
        deadline = self._deadline(timeout)
        raw = self.read_until(b"\r\n\r\n", deadline)
        text = raw.decode("latin-1")
        lines = text.split("\r\n")
        status_line = lines[0]
        parts = status_line.split(" ", 2)
        assert len(parts) >= 2 and parts[0].startswith("HTTP/1."), f"bad status line {status_line!r}"
        headers = []
        for ln in lines[1:]:
            if not ln:
                continue
            k, _, v = ln.partition(":")
            headers.append((k.strip(), v.strip()))
        return Response(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, b"", parts[0])

    def iter_body(self, head: Response, timeout: float | None = None,
                  method: str = "POST") -> Iterator[bytes]:
        """Yields body pieces as they arrive (decoded chunks for chunked encoding)."""
        deadline = self._deadline(timeout)
        if method == "HEAD" or head.status in (204, 304) or 100 <= head.status < 200:
            return
        te = (head.header("transfer-encoding") or "").lower()
        cl = head.header("content-length")
        if "chunked" in te:
            while True:
                size_line = self.read_until(b"\r\n", deadline)
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    # trailers until an empty line
                    while self.read_until(b"\r\n", deadline) != b"\r\n":
                        pass
                    return
                remaining = size
                while remaining:
                    if not self.buf:
                        self._fill(deadline)
                    piece = self.buf[:remaining]
                    self.buf = self.buf[len(piece):]
                    remaining -= len(piece)
                    yield piece
                if self.read_exact(2, deadline) != b"\r\n":
                    raise AssertionError("chunk not followed by CRLF")
        elif cl is not None:
            remaining = int(cl)
            while remaining:
                if not self.buf:
                    self._fill(deadline)
                piece = self.buf[:remaining]
                self.buf = self.buf[len(piece):]
                remaining -= len(piece)
                yield piece
        else:
            while True:
                try:
                    yield self.read_available(deadline)
                except ConnectionClosed:
                    return

    def read_response(self, timeout: float | None = None, method: str = "POST",
                      skip_informational: bool = True) -> Response:
        deadline = self._deadline(timeout)
        while True:
            head = self.read_head(max(0.0, deadline - time.monotonic()))
            if skip_informational and 100 <= head.status < 200:
                continue
            break
        head.body = b"".join(self.iter_body(head, max(0.0, deadline - time.monotonic()), method))
        return head

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None, timeout: float | None = None) -> Response:
        self.send(build_request(method, path, body, headers))
        return self.read_response(timeout, method)


# --------------------------------------------------------------------------------------------
# SSE
# --------------------------------------------------------------------------------------------


@dataclass
class SseEvent:
    t: float            # time.monotonic() when the event was complete
    data: str           # joined `data:` lines
    raw: str

    @property
    def is_done(self) -> bool:
        return self.data == "[DONE]"

    def json(self):
        return json.loads(self.data)


def parse_sse(pieces: Iterator[bytes]) -> Iterator[SseEvent]:
    """Turns body pieces into SSE events, stamping each with its arrival time."""
    buf = b""
    for piece in pieces:
        buf += piece
        buf = buf.replace(b"\r\n", b"\n")
        while True:
            i = buf.find(b"\n\n")
            if i < 0:
                break
            block, buf = buf[:i], buf[i + 2:]
            text = block.decode("utf-8")
            data_lines = []
            for line in text.split("\n"):
                if line.startswith("data:"):
                    v = line[5:]
                    data_lines.append(v[1:] if v.startswith(" ") else v)
            if not data_lines:
                continue  # comment / keep-alive
            yield SseEvent(time.monotonic(), "\n".join(data_lines), text)
    if buf.strip():
        # trailing bytes without a blank line: surface as an incomplete event
        yield SseEvent(time.monotonic(), "<incomplete>" + buf.decode("utf-8", "replace"),
                       buf.decode("utf-8", "replace"))


@dataclass
class StreamResult:
    head: Response
    events: list[SseEvent] = field(default_factory=list)
    t_start: float = 0.0
    t_end: float = 0.0
    ended_by: str = ""   # "eof-chunk" | "close" | "timeout" | "error:<exc>"

    @property
    def data(self) -> list[str]:
        return [e.data for e in self.events]

    def chunks(self) -> list[dict]:
        return [e.json() for e in self.events if not e.is_done and e.data.startswith("{")]

    def content(self, field_name: str = "chat") -> str:
        out = []
        for c in self.chunks():
            for ch in c.get("choices") or []:
                if field_name == "chat":
                    out.append((ch.get("delta") or {}).get("content") or "")
                else:
                    out.append(ch.get("text") or "")
        return "".join(out)


def stream_request(target, body: bytes, path: str = "/v1/chat/completions",
                   headers: dict | None = None, timeout: float = 10.0) -> StreamResult:
    """Sends one request and collects the whole SSE response with arrival times."""
    with RawHttp(target.host, target.port, timeout=timeout) as c:
        t0 = time.monotonic()
        c.send(build_request("POST", path, body, headers))
        head = c.read_head(timeout)
        res = StreamResult(head=head, t_start=t0)
        if not head.header("content-type", "").startswith("text/event-stream"):
            head.body = b"".join(c.iter_body(head, timeout))
            res.t_end = time.monotonic()
            res.ended_by = "not-sse"
            return res
        try:
            for ev in parse_sse(c.iter_body(head, timeout)):
                res.events.append(ev)
            res.ended_by = "eof-chunk" if "chunked" in (head.header("transfer-encoding") or "") \
                else "close"
        except ConnectionClosed:
            res.ended_by = "close"
        except TimeoutError:
            res.ended_by = "timeout"
        except OSError as e:
            res.ended_by = f"error:{e!r}"
        res.t_end = time.monotonic()
        return res


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


class Mock:
    def __init__(self, proc: Proc):
        self.proc = proc
        self.host, self.port = proc.host, proc.port

    def stats(self) -> dict:
        return http_call(self, "GET", "/mock/stats").json()

    def last(self) -> dict:
        return http_call(self, "GET", "/mock/last").json()

    def reset(self) -> None:
        r = http_call(self, "POST", "/mock/reset", body=b"")
        assert r.status == 200, r


class Gateway:
    def __init__(self, proc: Proc, config_path: Path, config_text: str):
        self.proc = proc
        self.host, self.port = proc.host, proc.port
        self.config_path = config_path
        self.config_text = config_text

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def admin(self) -> Address:
        """The operations listener (/metrics, /admin/*, /debug/pprof/*): admin.listen."""
        return self.proc.admin


def start_mock(extra_args: list[str] | None = None) -> Mock:
    require_binaries(MOCK_BIN)
    argv = [str(MOCK_BIN), "--listen", "127.0.0.1:0", "--threads", "2"] + (extra_args or [])
    return Mock(Proc(argv, name="sluice-mock"))


@pytest.fixture
def mock():
    m = start_mock()
    yield m
    m.proc.stop()


@pytest.fixture
def gateway_factory(mock, tmp_path):
    """gateway_factory(server={...}, timeouts={...}, extra_routes="...", admin={...}) -> Gateway.

    `admin` entries are merged into `admin: {listen: "127.0.0.1:0"}` (e.g.
    `{"token_env": "SLUICE_ADMIN_TOKEN"}`); the operations listener is `gw.admin`.

    `extra_routes` is YAML appended under `routes:` (indent 2); `{MOCK}` is replaced with the
    mock's base URL.
    """
    started: list[Gateway] = []
    dead_port = free_closed_port()

    def make(server: dict | None = None, timeouts: dict | None = None,
             extra_routes: str = "", env: dict | None = None,
             admin: dict | None = None, metrics: dict | None = None) -> Gateway:
        require_binaries(SLUICE_BIN)
        text = render_config(mock.port, dead_port, server, timeouts, extra_routes, admin,
                             metrics)
        path = tmp_path / f"sluice-{len(started)}.yaml"
        path.write_text(text)
        e = dict(os.environ)
        e["MOCK_KEY"] = UPSTREAM_KEY
        e.update(env or {})
        proc = Proc([str(SLUICE_BIN), "--config", str(path)], env=e, name="sluice")
        gw = Gateway(proc, path, text)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.proc.stop()


@pytest.fixture
def gateway(gateway_factory) -> Gateway:
    return gateway_factory()


def assert_error_shape(resp: Response, status: int | None = None) -> dict:
    if status is not None:
        assert resp.status == status, resp
    ctype = resp.header("content-type", "")
    assert ctype.startswith("application/json"), f"content-type {ctype!r}: {resp!r}"
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), resp
    err = body["error"]
    for k in ("message", "type", "param", "code"):
        assert k in err, f"error object lacks {k!r}: {body}"
    assert isinstance(err["message"], str) and err["message"], body
    assert isinstance(err["type"], str) and err["type"], body
    return err


def sha(s: str) -> str:
    """Hex SHA-256, as key_sha256 in the config wants it."""
    return hashlib.sha256(s.encode()).hexdigest()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(claims: dict, secret: str, alg: str = "HS256") -> str:
    """A JWT signed with HMAC-SHA256 (the header may name another `alg`, for negative tests)."""
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signing = f"{header}.{payload}".encode()
    sig = b64url(hmac.new(secret.encode(), signing, hashlib.sha256).digest())
    return f"{header}.{payload}.{sig}"


def poll(fn, timeout: float, interval: float = 0.05):
    """Calls fn() until it returns a truthy value or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


class ConfigStarter:
    """start(top="...", routes="...") → a Gateway on conftest's config plus `base_routes` and
    `routes`; `top` is YAML put before it (top-level sections: state, redis, auth). restart(gw)
    starts a new process on the same config file. stop_all() stops every process by PID (the
    fixtures using it call it in teardown)."""

    def __init__(self, mock, tmp_path, base_routes: str = ""):
        self.mock = mock
        self.tmp_path = tmp_path
        self.base_routes = base_routes
        self.dead_port = free_closed_port()
        self.procs: list[Proc] = []
        self.n = 0

    def _launch(self, path: Path, name: str) -> Proc:
        env = dict(os.environ)
        env["MOCK_KEY"] = UPSTREAM_KEY
        proc = Proc([str(SLUICE_BIN), "--config", str(path)], env=env, name=name)
        self.procs.append(proc)
        return proc

    def __call__(self, top: str = "", routes: str = "", name: str = "sluice") -> "Gateway":
        require_binaries(SLUICE_BIN)
        text = top + render_config(self.mock.port, self.dead_port,
                                   extra_routes=self.base_routes + routes)
        path = self.tmp_path / f"{name}-{self.n}.yaml"
        self.n += 1
        path.write_text(text)
        return Gateway(self._launch(path, name), path, text)

    def restart(self, gw: "Gateway") -> "Gateway":
        return Gateway(self._launch(gw.config_path, gw.proc.name), gw.config_path,
                       gw.config_text)

    def stop_all(self):
        for p in self.procs:
            p.stop()


@pytest.fixture
def redis(tmp_path):
    """A real redis-server on an ephemeral port for one test (stopped by PID after it)."""
    from test_redis_keys import Redis  # the Redis helper of the Redis suites
    r = Redis(free_closed_port(), tmp_path / "redis-data")
    r.start()
    yield r
    r.stop()
