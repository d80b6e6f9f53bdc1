#!/usr/bin/env python3
"""Instructions per response of the gateway, per translation cell, under callgrind.

The host this project is benchmarked on is shared and noisy (req/s moves by ±30% between runs);
instruction counts do not. This counts the user-space instructions the gateway executes per
response (callgrind's Ir, kernel time excluded) for each client>upstream cell, after a warm-up,
so that two builds can be compared exactly. It is a proxy for CPU cost, not a throughput figure:
bench/translate.sh and bench/run.sh measure those.

  python3 bench/instructions.py [--gw build/sluice] [--mock build/sluice-mock] [-n 400]
      [--openai-only] [--governance] [--keep DIR] [cells...]

Cells as in bench/translate.sh: oai>oai/stream anth>oai/stream oai>anth/stream gem>oai/stream
oai>gem/stream (default), also */unary. Every process started here is stopped by PID.
"""
from __future__ import annotations

import argparse
import glob
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

PROTO = {"oai": "openai", "anth": "anthropic", "gem": "gemini"}
MODEL = {"oai": "mock-model", "anth": "claude-up", "gem": "gemini-up"}


def request(cell: str):
    m = re.fullmatch(r"(oai|anth|gem)>(oai|anth|gem)/(stream|unary)", cell)
    if not m:
        sys.exit(f"bad cell {cell!r}")
    client, upstream, mode = m.groups()
    model, stream = MODEL[upstream], mode == "stream"
    headers = {"Content-Type": "application/json"}
    if client == "oai":
        body = f'{{"model":"{model}","messages":[{{"role":"user","content":"hello"}}]'
        return "/v1/chat/completions", headers, body + (',"stream":true}' if stream else "}")
    if client == "anth":
        headers["anthropic-version"] = "2023-06-01"
        body = f'{{"model":"{model}","max_tokens":100,"messages":[{{"role":"user","content":"hello"}}]'
        return "/v1/messages", headers, body + (',"stream":true}' if stream else "}")
    path = f"/v1beta/models/{model}" + (":streamGenerateContent?alt=sse" if stream else ":generateContent")
    return path, headers, '{"contents":[{"role":"user","parts":[{"text":"hello"}]}]}'


def listen_addr(log: str, timeout: float = 60.0) -> tuple[str, int]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            text = open(log).read()
        except FileNotFoundError:
            text = ""
        # "sluice: listening on http://HOST:PORT" / "sluice-mock: listening on ..." (not the
        # operations listener's "sluice admin listening on ..." line)
        m = re.search(r"^[^ ]+: listening on http://127\.0\.0\.1:(\d+)", text, re.M)
        if m:
            return "127.0.0.1", int(m.group(1))
        time.sleep(0.1)
    sys.exit(f"no listen address in {log}")


API_KEY = "sk-instructions-bench"  # the key --governance configures and sends


def drive(addr, cell: str, n: int, key: str | None = None) -> None:
    path, headers, body = request(cell)
    if key:
        headers = dict(headers, Authorization=f"Bearer {key}")
    conn = http.client.HTTPConnection(*addr, timeout=60)
    for _ in range(n):
        conn.request("POST", path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            sys.exit(f"{cell}: HTTP {r.status}: {data[:300]!r}")
    conn.close()


def total_ir(out_file: str) -> int:
    for line in open(out_file):
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    sys.exit(f"no totals in {out_file}")


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser()
    ap.add_argument("--gw", default=os.path.join(root, "build/sluice"))
    ap.add_argument("--mock", default=os.path.join(root, "build/sluice-mock"))
    ap.add_argument("-n", type=int, default=400, help="responses counted per cell")
    ap.add_argument("--openai-only", action="store_true",
                    help="configure the OpenAI route only, without an admin section (for "
                         "builds older than the translation work; oai>oai cells only)")
    ap.add_argument("--governance", action="store_true",
                    help="auth on with one API key (sent on every request) whose requests and "
                         "tokens per minute are limited so high that nothing is refused, memory "
                         "rate limiter: the cost of bench/governance.sh's 'local' config")
    ap.add_argument("--keep", metavar="DIR", help="keep each cell's callgrind dump in DIR "
                    "(for callgrind_annotate)")
    ap.add_argument("cells", nargs="*", default=["oai>oai/stream", "anth>oai/stream",
                                                 "oai>anth/stream", "gem>oai/stream",
                                                 "oai>gem/stream"])
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sluice-ir.")
    procs = []
    try:
        mock_log = os.path.join(tmp, "mock.log")
        procs.append(subprocess.Popen([a.mock, "--listen", "127.0.0.1:0", "--threads", "1",
                                       "--tokens", "20"], stdout=open(mock_log, "w"),
                                      stderr=subprocess.STDOUT))
        up = "%s:%d" % listen_addr(mock_log)
        cfg = os.path.join(tmp, "gw.yaml")
        text = f"""server: {{listen: "127.0.0.1:0", threads: 1}}
routes:
  - model: mock-model
    targets: [{{provider: openai, base_url: "http://{up}/v1"}}]
"""
        if not a.openai_only:
            text = text.replace("routes:", "admin: {listen: off}\nroutes:") + f"""\
  - model: claude-up
    targets: [{{provider: anthropic, base_url: "http://{up}", model: claude-mock}}]
  - model: gemini-up
    targets: [{{provider: gemini, base_url: "http://{up}/v1beta", model: gemini-mock}}]
"""
        if a.governance:
            import hashlib
            sha = hashlib.sha256(API_KEY.encode()).hexdigest()
            text = text.replace("routes:", f"""auth:
  enabled: true
  keys:
    - {{name: bench, key_sha256: "{sha}",
       limits: {{requests_per_minute: 10000000, tokens_per_minute: 100000000}}}}
rate_limits:
  backend: memory
routes:""", 1)
        open(cfg, "w").write(text)
        gw_log = os.path.join(tmp, "gw.log")
        out = os.path.join(tmp, "callgrind.out")
        gw = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                               "--dump-instr=no", "--collect-jumps=no", a.gw, "--config", cfg],
                              stdout=open(gw_log, "w"), stderr=subprocess.STDOUT)
        procs.append(gw)
        addr = listen_addr(gw_log)
        print(f"gateway {a.gw} (pid {gw.pid}) under callgrind; {a.n} responses per cell")
        ref = None
        for cell in a.cells:
            key = API_KEY if a.governance else None
            drive(addr, cell, 50, key)  # warm-up: pools, caches, every code path of the cell
            subprocess.run(["callgrind_control", "-z", str(gw.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            drive(addr, cell, a.n, key)
            for f in glob.glob(out + "*"):
                os.remove(f)
            subprocess.run(["callgrind_control", "-d", str(gw.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            dumps = sorted(glob.glob(out + ".*"), key=os.path.getmtime)
            if not dumps:
                sys.exit("callgrind wrote no dump")
            per = total_ir(dumps[-1]) / a.n
            if a.keep:
                os.makedirs(a.keep, exist_ok=True)
                name = cell.replace(">", "-").replace("/", "-")
                shutil.copy(dumps[-1], os.path.join(a.keep, f"callgrind.{name}"))
            if cell.startswith("oai>oai/") and ref is None:
                ref = per
            ratio = f"  {per / ref:.2f}x oai>oai" if ref else ""
            print(f"{cell:18} {per / 1000:9.1f} k instructions/response{ratio}", flush=True)
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


if __name__ == "__main__":
    main()
