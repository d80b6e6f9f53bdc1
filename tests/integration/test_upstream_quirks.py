"""Upstreams that misbehave in ways the mock cannot: an SSE event that never ends (memory must
stay bounded) and a compressed body sent although the gateway asked for identity."""

from __future__ import annotations

import gzip
import http.server
import json
import threading

import pytest

from conftest import assert_error_shape, chat_body, http_call


class QuirkyUpstream(http.server.ThreadingHTTPServer):
    daemon_threads = True


def make_handler(kind: str):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", "0")))
            if kind == "endless-event":
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                chunk = b"data: " + b"x" * (1 << 20)
                try:
                    for _ in range(12):  # 12 MiB, never a blank line
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return
            body = gzip.compress(json.dumps({
                "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "zipped"},
                             "finish_reason": "stop"}]}).encode())
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def quirky():
    servers = {}

    def start(kind: str) -> int:
        srv = QuirkyUpstream(("127.0.0.1", 0), make_handler(kind))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers[kind] = srv
        return srv.server_address[1]

    yield start
    for srv in servers.values():
        srv.shutdown()
        srv.server_close()


def test_endless_sse_event_is_cut_with_a_clear_error(gateway_factory, quirky):
    port = quirky("endless-event")
    gw = gateway_factory(
        extra_routes=f"""  - model: endless
    retry: {{max_attempts: 1}}
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://127.0.0.1:{port}/v1"}}]
""",
        timeouts={"first_byte_ms": 5000, "stream_idle_ms": 5000, "total_ms": 20000})
    r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model="endless", stream=True),
                  timeout=30)
    err = assert_error_shape(r, 502)
    assert "SSE event larger than" in err["message"], err
    assert gw.proc.proc.poll() is None


def test_compressed_upstream_body_keeps_its_content_encoding(gateway_factory, quirky):
    port = quirky("gzip")
    gw = gateway_factory(extra_routes=f"""  - model: zipped
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://127.0.0.1:{port}/v1"}}]
""")
    r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model="zipped"))
    assert r.status == 200, r
    assert r.header("content-encoding") == "gzip", r
    assert json.loads(gzip.decompress(r.body))["choices"][0]["message"]["content"] == "zipped"
