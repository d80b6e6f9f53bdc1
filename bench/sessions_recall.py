#!/usr/bin/env python3
"""Evidence recall of session memory search on LoCoMo-format conversations.

Starts sluice (state in memory, the demo route) on an ephemeral port, creates one session per
conversation, stores every dialog turn as a memory (key = its dia_id, text = "speaker: text"),
then asks each question through `GET /v1/sessions/{id}/memories/search?q=...&k=K` and reports
evidence Recall@k: the fraction of a question's evidence dia_ids among the top k results,
averaged over the questions (overall and per category). No LLM and no judge: this measures the
retrieval only (BM25 + recency + weight as the gateway scores it). Stops the gateway by PID.

  python3 bench/sessions_recall.py [--gateway build/sluice] [--k 1,5,10]
                                   [--data bench/data/locomo_mini.json] [--misses]

The data is a list of LoCoMo samples (the format of snap-research's locomo10.json, which can be
passed as --data as is): {"sample_id", "conversation": {"speaker_a", "speaker_b",
"session_N_date_time", "session_N": [{"speaker", "dia_id", "text"}]}, "qa": [{"question",
"answer", "evidence": ["D1:3"], "category"}]}. Questions without evidence are skipped.
"""
import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import quote

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# LoCoMo's category numbers (as its evaluation code names them).
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}

LISTEN_RE = re.compile(r"sluice: listening on http://([0-9.]+):(\d+)")


class Gateway:
    """sluice on 127.0.0.1:0 with the given config; the port is read from its first line."""

    def __init__(self, binary: str, config: str):
        self.proc = subprocess.Popen([binary, "--config", config], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        found = []
        done = threading.Event()

        def read():
            for raw in self.proc.stdout:
                m = LISTEN_RE.search(raw.decode("utf-8", "replace"))
                if m and not found:
                    found.append((m.group(1), int(m.group(2))))
                    done.set()
            done.set()

        threading.Thread(target=read, daemon=True).start()
        done.wait(10)
        if not found:
            self.stop()
            err = self.proc.stderr.read().decode("utf-8", "replace")[-2000:]
            sys.exit(f"sluice did not start (exit {self.proc.poll()}): {err}")
        self.host, self.port = found[0]
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def call(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        out = r.read()
        if r.status != 200:
            sys.exit(f"{method} {path}: {r.status} {out[:300]!r}")
        return json.loads(out)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def dialog_turns(conversation: dict):
    """(dia_id, speaker, text) of every turn, session by session in order."""
    sessions = sorted((int(m.group(1)), k) for k in conversation
                      if (m := re.fullmatch(r"session_(\d+)", k)))
    for _, k in sessions:
        for t in conversation[k]:
            text = t.get("text", "")
            if t.get("blip_caption"):  # LoCoMo's shared photos
                text += f" [shares a photo of {t['blip_caption']}]"
            yield t["dia_id"], t["speaker"], text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateway", default=os.path.join(REPO, "build", "sluice"),
                    help="the sluice binary (default: build/sluice)")
    ap.add_argument("--k", default="1,5,10", help="comma-separated k values (1..100)")
    ap.add_argument("--data", default=os.path.join(REPO, "bench", "data", "locomo_mini.json"))
    ap.add_argument("--misses", action="store_true",
                    help="also list the questions whose evidence is not all in the top max(k)")
    args = ap.parse_args()
    ks = sorted({int(x) for x in args.k.split(",") if x.strip()})
    if not ks or ks[0] < 1 or ks[-1] > 100:
        sys.exit("--k: values from 1 to 100")
    with open(args.data, encoding="utf-8") as f:
        samples = json.load(f)

    work = tempfile.mkdtemp(prefix="sluice-recall-")
    cfg = os.path.join(work, "sluice.yaml")
    with open(cfg, "w") as f:
        f.write("""server: {listen: "127.0.0.1:0", threads: 1}
admin: {listen: "off"}
state: {backend: memory, sessions: {idle_ttl_s: 0}}
routes:
  - model: demo
    targets: [{provider: demo}]
""")
    gw = Gateway(args.gateway, cfg)
    rows = []  # (category, {k: recall}, question, evidence, top ids)
    n_mem = 0
    t0 = time.monotonic()
    try:
        for s in samples:
            sid = gw.call("POST", "/v1/sessions", {"metadata": {"sample": str(s.get("sample_id", ""))[:64]}})["id"]
            for dia_id, speaker, text in dialog_turns(s["conversation"]):
                gw.call("POST", f"/v1/sessions/{sid}/memories",
                        {"key": dia_id, "text": f"{speaker}: {text}"[:8192]})
                n_mem += 1
            for qa in s["qa"]:
                evidence = set(qa.get("evidence") or [])
                if not evidence:
                    continue
                hits = gw.call("GET", f"/v1/sessions/{sid}/memories/search?q={quote(qa['question'])}&k={ks[-1]}")["data"]
                top = [h["key"] for h in hits]
                recall = {k: len(evidence & set(top[:k])) / len(evidence) for k in ks}
                rows.append((qa.get("category"), recall, qa["question"], sorted(evidence), top))
            gw.call("DELETE", f"/v1/sessions/{sid}")
    finally:
        gw.stop()
    elapsed = time.monotonic() - t0
    if not rows:
        sys.exit("no question with evidence in the data")

    def line(name, group):
        cells = [f"{sum(r[1][k] for r in group) / len(group):>8.3f}" for k in ks]
        return f"{name:<14}{len(group):>6}" + "".join(cells)

    print(f"data: {os.path.relpath(args.data)} ({len(samples)} conversations, {n_mem} turns stored "
          f"as memories, {len(rows)} questions with evidence; {elapsed:.1f} s)")
    print(f"{'category':<14}{'n':>6}" + "".join(f"{'R@' + str(k):>8}" for k in ks))
    cats = sorted({r[0] for r in rows}, key=lambda c: (c is None, c))
    for c in cats:
        print(line(f"{c} {CATEGORIES.get(c, '')}".strip(), [r for r in rows if r[0] == c]))
    print(line("all", rows))
    if args.misses:
        kmax = ks[-1]
        print(f"\nquestions with evidence outside the top {kmax}:")
        for cat, recall, q, ev, top in rows:
            if recall[kmax] < 1:
                print(f"  [{cat}] {q}  evidence={ev}  top5={top[:5]}")


if __name__ == "__main__":
    main()
