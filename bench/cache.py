#!/usr/bin/env python3
"""Response cache hits against nginx, in one run on this machine.

Starts sluice-mock (the upstream of the first miss), two Sluice instances with one worker each
(A: a cached route, hits from L1; B: the same route with cache.l2 redis and an L1 too small to
keep anything, so every hit comes from Redis), a redis-server, and nginx with one worker in two
roles: answering the cached body itself (`return 200`, the same bytes as a hit: nginx serving
static content from memory) and proxying to that (nginx `proxy_pass` with keep-alive, the
gateway baseline of bench/run.sh). Then, for each target, `--runs` runs of wrk (64 connections)
report req/s and latency medians and the ratio to nginx; and 2000 sequential requests read
Sluice's own `server-timing` (total = first byte of the request to the end of the answer) for
the gateway time of a hit, p50 and p99. Every process is stopped by PID.

  python3 bench/cache.py [--runs 3] [--duration 5] [--gateway build/sluice] [--mock build/sluice-mock]
"""
import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BODY = '{"model":"cached","messages":[{"role":"user","content":"hello"}]}'
LISTEN_RE = re.compile(r"listening on http://([0-9.]+):(\d+)")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, args, log, **kw):
        f = open(log, "wb")
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def wait_listen(log, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            m = LISTEN_RE.search(open(log).read())
            if m:
                return m.group(1), int(m.group(2))
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    sys.exit(f"no listening line in {log}:\n{open(log).read()[-2000:]}")


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def post(host, port, body=BODY):
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    headers = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, headers, data


def nginx_conf(d, port, body=None, upstream=None):
    esc = body.replace("\\", "\\\\").replace("'", "\\'") if body else ""
    pieces = [esc[i:i + 1024] for i in range(0, len(esc), 1024)]
    if body is not None:
        sets = "\n".join(f"            set $b{i} '{p}';" for i, p in enumerate(pieces))
        action = sets + "\n            default_type application/json;\n            return 200 \"" + \
            "".join(f"$b{i}" for i in range(len(pieces))) + "\";"
        extra = ""
    else:
        action = ("            proxy_pass http://up;\n            proxy_http_version 1.1;\n"
                  "            proxy_set_header Connection \"\";")
        extra = f"    upstream up {{ server 127.0.0.1:{upstream}; keepalive 128; }}\n"
    return f"""worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 20000; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {d}/cb; proxy_temp_path {d}/px; fastcgi_temp_path {d}/fc;
    uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;
    keepalive_requests 1000000;
{extra}    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /v1/chat/completions {{
{action}
        }}
    }}
}}
"""


def wrk(url, lua, duration, conns=64):
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "-s", lua, url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    m = re.search(r"BENCH_RESULT (.*)", out)
    if not m:
        sys.exit(f"wrk printed no result:\n{out}")
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def server_timing(host, port, n=2000):
    """Sluice's own time for each of n sequential hits (server-timing total), in µs."""
    c = http.client.HTTPConnection(host, port, timeout=10)
    out = []
    for _ in range(n):
        c.request("POST", "/v1/chat/completions", body=BODY, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        st = r.getheader("server-timing") or ""
        m = re.search(r"total;dur=([0-9.]+)", st)
        if m:
            out.append(float(m.group(1)) * 1000)
    c.close()
    out.sort()
    return out[len(out) // 2], out[int(len(out) * 0.99) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--gateway", default=os.path.join(REPO, "build", "sluice"))
    ap.add_argument("--mock", default=os.path.join(REPO, "build", "sluice-mock"))
    a = ap.parse_args()
    for tool in ("wrk", "nginx", "redis-server"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"{tool} not found (scripts/install-deps.sh installs it)")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = tempfile.mkdtemp(prefix="sluice-cache-bench-")
    procs = Procs()
    try:
        mock = procs.start([a.mock, "--listen", "127.0.0.1:0", "--threads", "1", "--tokens", "20"],
                           f"{tmp}/mock.log")
        mh, mp = wait_listen(f"{tmp}/mock.log")
        rport = free_port()
        procs.start(["redis-server", "--port", str(rport), "--save", "", "--appendonly", "no",
                     "--dir", tmp], f"{tmp}/redis.log")
        wait_port(rport)
        route = (f"routes:\n  - model: cached\n    cache: {{ttl_s: 3600}}\n"
                 f"    targets: [{{provider: openai, base_url: \"http://{mh}:{mp}/v1\", model: mock-model}}]\n")
        common = ("server: {listen: \"127.0.0.1:0\", threads: 1, max_connections: 20000}\n"
                  "admin: {listen: off}\nmetrics: {server_timing: true}\n")
        open(f"{tmp}/l1.yaml", "w").write(common + route)
        open(f"{tmp}/l2.yaml", "w").write(
            common + f"redis: {{url: \"redis://127.0.0.1:{rport}\"}}\n"
            "cache: {l2: redis, l1_max_bytes: 16}\n" + route)
        gws = {}
        for name in ("l1", "l2"):
            procs.start([a.gateway, "--config", f"{tmp}/{name}.yaml"], f"{tmp}/{name}.log")
            gws[name] = wait_listen(f"{tmp}/{name}.log")
        # The first request is the miss; every later one a hit.
        for name, (h, p) in gws.items():
            st, hd, body = post(h, p)
            assert st == 200, (name, st, body)
            time.sleep(0.2)  # the L2 write is asynchronous
            st, hd, body = post(h, p)
            assert st == 200 and hd.get("x-sluice-cache") == "hit", (name, st, hd)
            hit_body = body.decode()
        nport, pport = free_port(), free_port()
        for d, port, conf in ((f"{tmp}/nginx-static", nport, nginx_conf(f"{tmp}/nginx-static", nport, body=hit_body)),
                              (f"{tmp}/nginx-proxy", pport, nginx_conf(f"{tmp}/nginx-proxy", pport, upstream=nport))):
            os.makedirs(d)
            open(f"{d}/nginx.conf", "w").write(conf)
            procs.start([nginx, "-p", d, "-e", f"{d}/error.log", "-c", f"{d}/nginx.conf", "-g", "daemon off;"],
                        f"{d}/stdout.log")
            wait_port(port)
        st, _, body = post("127.0.0.1", nport)
        assert st == 200 and len(body) == len(hit_body.encode()), (st, len(body), len(hit_body))
        lua = f"{tmp}/hit.lua"
        open(lua, "w").write(
            'wrk.method = "POST"\nwrk.path = "/v1/chat/completions"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = '{BODY}'\n"
            f'dofile("{REPO}/bench/wrk_result.lua")\n')
        targets = {"sluice L1 hit": gws["l1"], "sluice L2 hit": gws["l2"],
                   "nginx static": ("127.0.0.1", nport), "nginx proxy": ("127.0.0.1", pport)}
        for h, p in targets.values():  # warm-up
            wrk(f"http://{h}:{p}", lua, 1)
        results = {t: [] for t in targets}
        for _ in range(a.runs):
            for t, (h, p) in targets.items():
                results[t].append(wrk(f"http://{h}:{p}", lua, a.duration))
        med = {t: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_us", "p99_us")}
               for t, rs in results.items()}
        errors = {t: sum(r["errors"] + r["non2xx"] for r in rs) for t, rs in results.items()}
        print(f"Response cache hits, body {len(hit_body)} bytes, 1 worker each, wrk -c64 "
              f"{a.duration}s x {a.runs} runs (medians)")
        print(f"{'target':16} {'req/s':>9} {'p50':>9} {'p99':>9} {'x nginx static':>15} {'x nginx proxy':>14} errors")
        for t, m in med.items():
            print(f"{t:16} {m['rps']:9.0f} {m['p50_us']/1000:8.2f}ms {m['p99_us']/1000:8.2f}ms "
                  f"{m['rps']/med['nginx static']['rps']:14.2f}x {m['rps']/med['nginx proxy']['rps']:13.2f}x {errors[t]:.0f}")
        for name in ("l1", "l2"):
            p50, p99 = server_timing(*gws[name])
            print(f"gateway time of an {name.upper()} hit (server-timing total, 2000 sequential): "
                  f"p50 {p50:.0f} us, p99 {p99:.0f} us")
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
