-- wrk script for bench/translate.sh: one chat request in a chosen client protocol, so the same
-- script drives every cell (OpenAI chat, Anthropic Messages, Gemini; unary or streaming).
-- Environment (read when wrk loads the script):
--   BENCH_PROTO   openai | anthropic | gemini   (default openai)
--   BENCH_MODEL   the route's model name        (default mock-model)
--   BENCH_STREAM  1 = streaming, 0 = unary      (default 1)
-- Usage: BENCH_PROTO=anthropic wrk -t1 -c64 -d10s --latency -s bench/translate.lua http://127.0.0.1:PORT
--   BENCH_CAPTURE optional file: write the first response (status, content-type, body) there and
--                 stop the thread. translate.sh checks every cell this way before timing it, so
--                 the request it validates is byte for byte the one it then measures.
-- done() prints one parseable line (latencies in microseconds), as bench/chat*.lua do:
--   BENCH_RESULT rps=<f> p50_us=<n> p99_us=<n> requests=<n> duration_us=<n> errors=<n> non2xx=<n> timeouts=<n>
local proto = os.getenv("BENCH_PROTO") or "openai"
local model = os.getenv("BENCH_MODEL") or "mock-model"
local stream = (os.getenv("BENCH_STREAM") or "1") == "1"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if proto == "openai" then
  wrk.path = "/v1/chat/completions"
  wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello"}]'
    .. (stream and ',"stream":true}' or '}')
elseif proto == "anthropic" then
  wrk.path = "/v1/messages"
  wrk.headers["anthropic-version"] = "2023-06-01"
  wrk.body = '{"model":"' .. model .. '","max_tokens":100,"messages":[{"role":"user","content":"hello"}]'
    .. (stream and ',"stream":true}' or '}')
elseif proto == "gemini" then
  -- The model is in the path; the method picks unary or SSE streaming.
  wrk.path = "/v1beta/models/" .. model
    .. (stream and ":streamGenerateContent?alt=sse" or ":generateContent")
  wrk.body = '{"contents":[{"role":"user","parts":[{"text":"hello"}]}]}'
else
  error("BENCH_PROTO must be openai, anthropic or gemini, not " .. proto)
end

local capture = os.getenv("BENCH_CAPTURE")
if capture and capture ~= "" then
  -- Only in check mode: defining response() makes wrk buffer every body, which costs CPU.
  local seen = false
  function response(status, headers, body)
    if seen then return end
    seen = true
    local ctype = ""
    for k, v in pairs(headers) do
      if string.lower(k) == "content-type" then ctype = v end
    end
    local f = assert(io.open(capture, "w"))
    f:write("STATUS ", status, "\nCONTENT-TYPE ", ctype, "\n", body)
    f:close()
    wrk.thread:stop()
  end
end

-- done(): the BENCH_RESULT line, shared (bench/wrk_result.lua next to this script).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_result.lua")
