-- wrk script: streaming ("stream": true, SSE) POST /v1/chat/completions.
-- Usage: wrk -t1 -c64 -d10s --latency -s bench/chat_stream.lua http://127.0.0.1:PORT
-- done() prints one parseable line (latencies in microseconds):
--   BENCH_RESULT rps=<f> p50_us=<n> p99_us=<n> requests=<n> duration_us=<n> errors=<n> non2xx=<n> timeouts=<n>
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
-- Ignored by sluice-mock (it streams because of "stream": true); the static upstream of run.sh
-- (bench/static-upstream.conf.tmpl, an nginx that cannot look into the body) answers the
-- recorded stream instead of the unary answer when it sees it. Every gateway forwards it.
wrk.headers["x-mock-stream"] = "1"
wrk.body = '{"model":"mock-model","messages":[{"role":"user","content":"hello"}],"stream":true}'
-- Each response is 1 role chunk + N content chunks (--tokens 20) + final chunk + [DONE];
-- wrk counts a request complete at the end of the chunked body, so latency = time to the last event.

function done(summary, latency, requests)
  local e = summary.errors
  local sock_errors = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH_RESULT rps=%.2f p50_us=%d p99_us=%d requests=%d duration_us=%d errors=%d non2xx=%d timeouts=%d\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(99),
    summary.requests, summary.duration, sock_errors, e.status, e.timeout))
end
