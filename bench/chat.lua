-- wrk script: non-streaming POST /v1/chat/completions.
-- Usage: wrk -t1 -c64 -d10s --latency -s bench/chat.lua http://127.0.0.1:PORT
-- done() prints one parseable line (latencies in microseconds):
--   BENCH_RESULT rps=<f> p50_us=<n> p99_us=<n> requests=<n> duration_us=<n> errors=<n> non2xx=<n> timeouts=<n>
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"mock-model","messages":[{"role":"user","content":"hello"}]}'

-- done(): the BENCH_RESULT line, shared (bench/wrk_result.lua next to this script).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_result.lua")
