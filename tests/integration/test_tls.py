"""TLS to upstreams: certificate verification, SNI and host-name checks.

nginx (from Debian) terminates TLS in front of sluice-mock with a certificate signed by a CA the
test makes with the openssl CLI. Sluice must verify the chain against `upstream.ca_file`, send
SNI, and refuse a certificate whose name does not match the base URL's host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (MOCK_BIN, SLUICE_BIN, Proc, assert_error_shape, chat_body, free_closed_port,
                      http_call, require_binaries, start_mock)

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def make_pki(d: Path) -> None:
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Sluice Test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
        "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")


@pytest.fixture
def tls_upstream(tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.fail("nginx is not installed (scripts/install-deps.sh installs it)")
    require_binaries(MOCK_BIN, SLUICE_BIN)
    make_pki(tmp_path)
    mock = start_mock()
    port = free_closed_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {tmp_path}; proxy_temp_path {tmp_path}; fastcgi_temp_path {tmp_path};
  uwsgi_temp_path {tmp_path}; scgi_temp_path {tmp_path};
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {tmp_path}/server.pem;
    ssl_certificate_key {tmp_path}/server.key;
    location / {{
      proxy_pass http://127.0.0.1:{mock.port};
      proxy_http_version 1.1;
      proxy_buffering off;
      proxy_set_header X-Seen-SNI $ssl_server_name;
    }}
  }}
}}
""")
    nginx = subprocess.Popen([NGINX, "-c", str(conf)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    import socket
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield tmp_path, port, mock
    nginx.terminate()
    try:
        nginx.wait(5)
    except subprocess.TimeoutExpired:
        nginx.kill()
    mock.proc.stop()


def start_gateway(tmp_path: Path, port: int, ca_file: str | None, host: str = "localhost") -> Proc:
    upstream = f'upstream: {{ca_file: "{ca_file}"}}\n' if ca_file else ""
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(f"""server: {{listen: "127.0.0.1:0", threads: 1}}
admin: {{listen: off}}
{upstream}routes:
  - model: mock-model
    targets: [{{provider: openai, forward_headers: ["x-mock-*"], base_url: "https://{host}:{port}/v1"}}]
""")
    return Proc([str(SLUICE_BIN), "--config", str(cfg)], name="sluice")


def test_verified_tls_upstream_serves_unary_and_stream_with_sni(tls_upstream):
    tmp_path, port, mock = tls_upstream
    gw = start_gateway(tmp_path, port, str(tmp_path / "ca.pem"))
    try:
        r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body())
        assert r.status == 200, r
        assert r.json()["choices"][0]["message"]["content"].startswith("w1")
        assert mock.last()["headers"].get("x-seen-sni") == "localhost"
        r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body(stream=True))
        assert r.status == 200, r
        assert b"data: [DONE]" in r.body
    finally:
        gw.stop()


def test_untrusted_certificate_is_refused_with_502(tls_upstream):
    tmp_path, port, _ = tls_upstream
    gw = start_gateway(tmp_path, port, None)
    try:
        r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body())
        err = assert_error_shape(r, 502)
        assert "certificate" in err["message"].lower() or "tls" in err["message"].lower(), err
    finally:
        gw.stop()


def test_certificate_for_another_host_name_is_refused(tls_upstream):
    tmp_path, port, _ = tls_upstream
    # The certificate names only "localhost"; reaching the same server as 127.0.0.1 must fail.
    gw = start_gateway(tmp_path, port, str(tmp_path / "ca.pem"), host="127.0.0.1")
    try:
        r = http_call(gw, "POST", "/v1/chat/completions", body=chat_body())
        assert_error_shape(r, 502)
    finally:
        gw.stop()
