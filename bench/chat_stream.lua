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

-- done(): the BENCH_RESULT line, shared (bench/wrk_result.lua next to this script).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_result.lua")
