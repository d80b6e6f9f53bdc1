-- wrk script: non-streaming POST /v1/chat/completions offered at a fixed rate (scenario chat-half
-- of bench/run.sh: half of nginx's saturation rate).
-- Usage: BENCH_RATE=20000 wrk -t1 -c64 -d10s --latency -s bench/chat_half.lua http://127.0.0.1:PORT
--
-- wrk is closed-loop: a connection sends its next request when the previous answer is in. The
-- think time returned by delay() (called before every request) turns it into a paced load: every
-- call claims the next free slot of one schedule with slots 1/BENCH_RATE seconds apart and waits
-- until it. All connections share the schedule (one wrk thread, one Lua state), so the offered
-- rate is BENCH_RATE whatever the target's latency, as long as the connections suffice (each
-- one is idle between its answer and its next slot) — no calibration per target, no
-- synchronised connections. A late connection takes the next slot from now on (no catch-up
-- burst). wrk's delay() is in whole milliseconds (it truncates, and its timers tick per ms), so
-- the fraction is dithered: floor or floor + 1 ms at random, averaging to the exact wait; the
-- requests of one millisecond still leave together (BENCH_RATE / 1000 of them), for every target
-- alike. wrk starts a request's latency clock when it writes the request: the wait is not in
-- p50/p99.
-- done() prints the same BENCH_RESULT line as bench/chat.lua.
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"mock-model","messages":[{"role":"user","content":"hello"}]}'

local ffi = require("ffi")
ffi.cdef [[
  struct bench_timespec { long tv_sec; long tv_nsec; };
  int clock_gettime(int clk_id, struct bench_timespec *tp);
]]
local ts = ffi.new("struct bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local rate = tonumber(os.getenv("BENCH_RATE") or "") or 0
local gap = rate > 0 and 1000 / rate or 0  -- ms between two slots
local next_slot = nil

function delay()
  if gap == 0 then return 0 end
  local now = now_ms()
  if next_slot == nil or next_slot < now then next_slot = now end
  local wait = next_slot - now
  next_slot = next_slot + gap
  local whole = math.floor(wait)
  if math.random() < wait - whole then whole = whole + 1 end
  return whole
end

-- done(): the BENCH_RESULT line, shared (bench/wrk_result.lua next to this script).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_result.lua")
