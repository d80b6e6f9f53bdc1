#!/usr/bin/env python3
"""The semantic cache tier's lookup time, on a full index, in one run on this machine.

Starts sluice-mock (chat answers and 256-dim trigram embeddings) and Sluice with one worker and
a route with the semantic tier (threshold 0.95). Fills the index with --entries distinct
questions (misses: each is embedded, answered and indexed), then sends --lookups paraphrases of
stored questions (semantic hits) and as many new questions (misses after a search). Reports the
hit rate and the lookup time from Sluice's histogram sluice_cache_semantic_lookup_seconds: the
index search, the guards and reading the entry, the embedding call excluded (it is the
embeddings model's time, not the cache's). Every process is stopped by PID.

  python3 bench/semantic.py [--entries 10000] [--lookups 2000] [--gateway build/sluice] [--mock build/sluice-mock]
"""
import argparse
import http.client
import json
import os
import random
import re
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cache import REPO, Procs, wait_listen  # noqa: E402

WORDS = ("vector index cache latency python rust kernel socket thread memory queue stream "
         "token model prompt shard replica cluster schema query join table column lock mutex "
         "future promise coroutine parser lexer grammar compiler linker loader debugger profiler "
         "allocator garbage collector pointer reference closure lambda iterator generator "
         "decorator module package library framework container image volume network gateway "
         "router balancer proxy certificate cipher hash signature key secret vault policy role "
         "user group tenant budget quota limit window bucket counter gauge histogram trace span "
         "log metric alert dashboard").split()


def question(rng):
    w = rng.sample(WORDS, 4)
    return f"How does the {w[0]} {w[1]} interact with a {w[2]} {w[3]} in production systems?"


def post(conn, text, stream=False):
    body = json.dumps({"model": "chat", "messages": [{"role": "user", "content": text}]})
    conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status, r.getheader("x-sluice-cache")


def histogram(host, port):
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    buckets = {}
    for m in re.finditer(r'^sluice_cache_semantic_lookup_seconds_bucket\{le="([^"]+)"\} (\d+)', text, re.M):
        buckets[float("inf") if m.group(1) == "+Inf" else float(m.group(1))] = int(m.group(2))
    return buckets


def quantile(before, after, q):
    bounds = sorted(after)
    total = after[bounds[-1]] - before.get(bounds[-1], 0)
    for b in bounds:
        if after[b] - before.get(b, 0) >= q * total:
            return b
    return float("inf")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=10000)
    ap.add_argument("--lookups", type=int, default=2000)
    ap.add_argument("--gateway", default=os.path.join(REPO, "build", "sluice"))
    ap.add_argument("--mock", default=os.path.join(REPO, "build", "sluice-mock"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sluice-semantic-bench-")
    procs = Procs()
    try:
        procs.start([a.mock, "--listen", "127.0.0.1:0", "--threads", "1", "--tokens", "20"],
                    f"{tmp}/mock.log")
        mh, mp = wait_listen(f"{tmp}/mock.log")
        base = f"http://{mh}:{mp}/v1"
        open(f"{tmp}/gw.yaml", "w").write(f"""server: {{listen: "127.0.0.1:0", threads: 1}}
admin: {{listen: "127.0.0.1:0"}}
cache: {{semantic_max_entries: {a.entries + 10}}}
routes:
  - model: chat
    cache: {{ttl_s: 3600, semantic: {{embeddings_model: embed}}}}
    targets: [{{provider: openai, base_url: "{base}", model: mock-model}}]
  - model: embed
    targets: [{{provider: openai, base_url: "{base}", model: mock-embed, headers: {{x-mock-embedding: trigrams}}}}]
""")
        procs.start([a.gateway, "--config", f"{tmp}/gw.yaml"], f"{tmp}/gw.log")
        host, port = wait_listen(f"{tmp}/gw.log")
        admin = re.search(r"admin listening on http://([0-9.]+):(\d+)", open(f"{tmp}/gw.log").read())
        ah, ap_ = admin.group(1), int(admin.group(2))
        rng = random.Random(1)
        stored = list({question(rng) for _ in range(a.entries * 2)})[:a.entries]

        def fill(part):
            c = http.client.HTTPConnection(host, port, timeout=30)
            for q in part:
                assert post(c, q)[0] == 200
            c.close()

        threads = [threading.Thread(target=fill, args=(stored[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        c = http.client.HTTPConnection(ah, ap_, timeout=10)
        c.request("GET", "/metrics")
        c.getresponse().read()
        c.close()
        known = set(stored)
        fresh = []
        while len(fresh) < a.lookups:  # questions never stored (a repeat would rightly hit)
            q = question(rng)
            if q not in known:
                fresh.append(q + " Explain.")
        for name, texts in (("paraphrases", [q.lower().rstrip("?") for q in rng.sample(stored, a.lookups)]),
                            ("new questions", fresh)):
            before = histogram(ah, ap_)
            conn = http.client.HTTPConnection(host, port, timeout=30)
            served = 0
            for t in texts:
                if post(conn, t)[1] in ("semantic", "hit"):
                    served += 1
                    if name == "new questions":  # a false hit: show it
                        print("  served a new question:", t)
            conn.close()
            after = histogram(ah, ap_)
            n = after[float("inf")] - before.get(float("inf"), 0)
            print(f"{name}: {len(texts)} lookups on {a.entries} indexed questions, "
                  f"{served} served from the cache ({served / len(texts):.0%}); "
                  f"lookup time (embedding excluded) p50 <= {quantile(before, after, 0.5) * 1e6:.0f} us, "
                  f"p99 <= {quantile(before, after, 0.99) * 1e6:.0f} us ({n} timed)")
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
