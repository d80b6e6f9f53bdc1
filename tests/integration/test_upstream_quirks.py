"""Upstreams that misbehave in ways the mock cannot: an SSE event that never ends (memory must
stay bounded), a compressed body sent although the gateway asked for identity, interim (1xx)
responses in the same segment as the final one, 101, and a second response written after the
first on a keep-alive connection."""

from __future__ import annotations

import gzip
import http.server
import json
import threading

import pytest

from conftest import assert_error_shape, chat_body, http_call


class QuirkyUpstream(http.server.ThreadingHTTPServer):
    daemon_threads = True


def completion(content: str) -> bytes:
    return json.dumps({
        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}]}).encode()


def raw_response(content: str) -> bytes:
    body = completion(content)
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def make_handler(kind: str, state: dict):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", "0")))
            if kind == "continue-same-segment":
                # Interim responses and the final one in a single write (one TCP segment).
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n"
                                 b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" +
                                 raw_response("after-interim"))
                self.wfile.flush()
                return
            if kind == "switching-protocols":
                self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
                                 b"Connection: Upgrade\r\n\r\n")
                self.wfile.flush()
                return
            if kind == "double-response":
                with state["lock"]:
                    state["requests"] += 1
                    first = state["requests"] == 1
                if not first:
                    self.wfile.write(raw_response("fresh"))
                    self.wfile.flush()
                    return
                self.wfile.write(raw_response("first"))
                self.wfile.flush()
                # A buggy upstream answers twice: this one is stale for any later request.
                state["first_sent"].wait(5)
                self.wfile.write(raw_response("stale"))
                self.wfile.flush()
                state["stale_sent"].set()
                return
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

    def start(kind: str, state: dict | None = None) -> int:
        srv = QuirkyUpstream(("127.0.0.1", 0), make_handler(kind, state or {}))
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


def test_interim_and_final_response_in_one_segment(gateway_factory, quirky):
    # §1.8: the final response is already buffered behind the 1xx heads; before the fix the
    # gateway waited for more bytes until the first-byte timeout (504).
    port = quirky("continue-same-segment")
    gw = gateway_factory(extra_routes=f"""  - model: interim
    targets: [{{provider: openai, base_url: "http://127.0.0.1:{port}/v1"}}]
""", timeouts={"first_byte_ms": 3000})
    r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model="interim"))
    assert r.status == 200, r
    assert json.loads(r.body)["choices"][0]["message"]["content"] == "after-interim"


def test_switching_protocols_is_an_upstream_protocol_error(gateway_factory, quirky):
    port = quirky("switching-protocols")
    gw = gateway_factory(extra_routes=f"""  - model: upgrade
    retry: {{max_attempts: 1}}
    targets: [{{provider: openai, base_url: "http://127.0.0.1:{port}/v1"}}]
""", timeouts={"first_byte_ms": 3000})
    r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model="upgrade"))
    assert_error_shape(r, 502)


def test_second_response_on_a_pooled_connection_is_never_relayed(gateway_factory, quirky):
    # §1.9: the upstream writes a second, unsolicited response after the first. It must not
    # become the answer to the next request on that pooled connection. One worker thread, so
    # both requests use the same per-worker pool.
    state = {"lock": threading.Lock(), "requests": 0, "first_sent": threading.Event(),
             "stale_sent": threading.Event()}
    port = quirky("double-response", state)
    gw = gateway_factory(server={"threads": 1}, extra_routes=f"""  - model: twice
    targets: [{{provider: openai, base_url: "http://127.0.0.1:{port}/v1"}}]
""")
    r1 = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model="twice"))
    assert r1.status == 200, r1
    assert json.loads(r1.body)["choices"][0]["message"]["content"] == "first"
    state["first_sent"].set()  # the gateway has relayed the first answer; now the stale one
    assert state["stale_sent"].wait(5)
    r2 = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(model="twice"))
    assert r2.status == 200, r2
    assert json.loads(r2.body)["choices"][0]["message"]["content"] == "fresh"
    assert state["requests"] == 2
