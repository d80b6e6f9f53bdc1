"""Command line: --version, --help, --check-config, bad configs."""

import os
import re
import subprocess

import pytest

from conftest import SLUICE_BIN, free_closed_port, render_config, require_binaries


def run(*args, timeout=10, env_extra=None):
    require_binaries(SLUICE_BIN)
    env = dict(os.environ)
    env["MOCK_KEY"] = "sk-x"
    env.update(env_extra or {})
    return subprocess.run([str(SLUICE_BIN), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def valid_config(tmp_path, text=None):
    p = tmp_path / "sluice.yaml"
    p.write_text(text if text is not None else render_config(free_closed_port(), free_closed_port()))
    return p


def test_version():
    r = run("--version")
    assert r.returncode == 0, r
    assert re.search(r"\d+\.\d+\.\d+", r.stdout + r.stderr), r


def test_help():
    r = run("--help")
    assert r.returncode == 0, r
    out = r.stdout + r.stderr
    assert "--config" in out and "--check-config" in out, out


def test_unknown_flag_fails():
    r = run("--no-such-flag")
    assert r.returncode != 0, r


def test_check_config_valid(tmp_path):
    p = valid_config(tmp_path)
    r = run("--config", str(p), "--check-config")
    assert r.returncode == 0, f"rc={r.returncode}\nstdout={r.stdout}\nstderr={r.stderr}"
    assert "listening on" not in r.stdout


def test_check_config_flag_order_independent(tmp_path):
    p = valid_config(tmp_path)
    r = run("--check-config", "--config", str(p))
    assert r.returncode == 0, f"rc={r.returncode}\nstdout={r.stdout}\nstderr={r.stderr}"


BAD_CONFIGS = {
    # yaml path expected in the message -> config text
    "server.listen": 'server: {listen: "not-an-address"}\nroutes:\n  - model: demo\n'
                     '    targets: [{provider: demo}]\n',
    "server.bogus_key": 'server: {listen: "127.0.0.1:0", bogus_key: 1}\nroutes:\n'
                        '  - model: demo\n    targets: [{provider: demo}]\n',
    "routes[1].targets[0].provider": 'server: {listen: "127.0.0.1:0"}\nroutes:\n'
                                     '  - model: demo\n    targets: [{provider: demo}]\n'
                                     '  - model: x\n    targets: [{provider: nosuchprovider, '
                                     'base_url: "http://127.0.0.1:1/v1"}]\n',
    "routes[0].targets": 'server: {listen: "127.0.0.1:0"}\nroutes:\n  - model: x\n'
                         '    targets: []\n',
    "server.max_body_bytes": 'server: {listen: "127.0.0.1:0", max_body_bytes: lots}\nroutes:\n'
                             '  - model: demo\n    targets: [{provider: demo}]\n',
    "upstream.timeouts.connect_ms": 'server: {listen: "127.0.0.1:0"}\n'
                                    'upstream: {timeouts: {connect_ms: soon}}\nroutes:\n'
                                    '  - model: demo\n    targets: [{provider: demo}]\n',
    "admin.listen": 'server: {listen: "127.0.0.1:0"}\nadmin: {listen: "nowhere:port"}\n'
                    'routes:\n  - model: demo\n    targets: [{provider: demo}]\n',
    "admin.on_public_listener": 'admin: {listen: off, on_public_listener: yes}\n'
                                'routes:\n  - model: demo\n    targets: [{provider: demo}]\n',
}


@pytest.mark.parametrize("yaml_path", list(BAD_CONFIGS))
def test_check_config_invalid_names_yaml_path(tmp_path, yaml_path):
    p = valid_config(tmp_path, BAD_CONFIGS[yaml_path])
    r = run("--config", str(p), "--check-config")
    assert r.returncode != 0, f"invalid config accepted ({yaml_path}): stdout={r.stdout}"
    assert yaml_path in r.stderr, f"stderr does not name {yaml_path!r}: {r.stderr!r}"


def test_check_config_yaml_syntax_error(tmp_path):
    p = valid_config(tmp_path, "server: {listen: [unclosed\nroutes: - : :\n")
    r = run("--config", str(p), "--check-config")
    assert r.returncode != 0, r
    assert r.stderr.strip(), r


def test_check_config_missing_file(tmp_path):
    r = run("--config", str(tmp_path / "nope.yaml"), "--check-config")
    assert r.returncode != 0, r
    assert r.stderr.strip(), r


def test_start_with_invalid_config_fails_fast(tmp_path):
    p = valid_config(tmp_path, BAD_CONFIGS["server.bogus_key"])
    r = run("--config", str(p), timeout=10)
    assert r.returncode != 0, r
    assert "listening on" not in r.stdout, r
    assert "server.bogus_key" in r.stderr, r


def test_start_with_occupied_port_fails(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        text = render_config(free_closed_port(), free_closed_port()).replace(
            '"127.0.0.1:0"', f'"127.0.0.1:{port}"', 1)
        p = valid_config(tmp_path, text)
        r = run("--config", str(p), timeout=10)
        assert r.returncode != 0, r
        assert "listening on" not in r.stdout, r
    finally:
        s.close()


def test_admin_listen_equal_to_server_listen_is_rejected(tmp_path):
    p = valid_config(tmp_path, 'server: {listen: "127.0.0.1:8181"}\n'
                               'admin: {listen: "127.0.0.1:8181"}\n'
                               'routes:\n  - model: demo\n    targets: [{provider: demo}]\n')
    r = run("--config", str(p), "--check-config")
    assert r.returncode == 2, r
    assert "admin.listen: must differ from server.listen" in r.stderr, r


def test_start_with_occupied_admin_port_fails(tmp_path):
    """The operations listener binds exclusively: a taken admin.listen stops the start (no
    "listening on" line at all) instead of sharing the port with another process."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        text = render_config(free_closed_port(), free_closed_port(),
                             admin={"listen": f'"127.0.0.1:{port}"'})
        p = valid_config(tmp_path, text)
        r = run("--config", str(p), timeout=10)
        assert r.returncode != 0, r
        assert "listening on" not in r.stdout, r
        assert f"sluice admin: cannot listen on 127.0.0.1:{port}" in r.stderr, r
    finally:
        s.close()
