// RedisRateLimiter: GCRA in a Lua script (mirrors rate_limiter.cc, in microseconds of Redis
// server time so every instance shares one clock), loaded once and run with EVALSHA.
#include "governance/redis_rate_limiter.h"

#include <limits>

namespace sluice::governance {
namespace {

using store::RedisReply;

// KEYS: bucket keys. ARGV[1] = "consume" | "adjust".
// consume: ARGV[2 + 3(i-1) ..] = cost, limit, period_ms per key; returns 4 integers per key:
//   allowed (0/1), remaining, reset_after_ms, retry_after_ms.
// adjust: ARGV[2..4] = delta, limit, period_ms for KEYS[1]; returns 0.
// Lua numbers are doubles: all values stay below 2^53 (spans are clamped to 2^50 us) so integer
// arithmetic is exact; numbers are written with %.0f (tostring would round to 14 digits).
constexpr char kScript[] = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local MAX = 1125899906842624
local function clamp(v)
  if v > MAX then return MAX elseif v < -MAX then return -MAX end
  return v
end
-- units * (p / l) rounded down, as q * units + floor(r * units / l) to stay exact.
local function span(units, p, l)
  local q = math.floor(p / l)
  local r = p - q * l
  return clamp(units * q + math.floor(units * r / l))
end
local function remaining(used, p, l)
  if used < 0 then used = 0 end
  local free = p - used
  if free <= 0 then return 0 end
  return math.min(clamp(math.floor(free * l / p)), l)
end
local function ceil_ms(us)
  if us <= 0 then return 0 end
  return math.ceil(us / 1000)
end
local function store(key, tat, pms)
  local ttl = math.max(pms, ceil_ms(tat - now), 0) + 1000
  redis.call('SET', key, string.format('%.0f', tat), 'PX', string.format('%.0f', ttl))
end
local function load(key)
  local s = redis.call('GET', key)
  if s then return tonumber(s) end
  return nil
end

if ARGV[1] == 'adjust' then
  local key = KEYS[1]
  local delta, l, pms = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local p = math.max(pms * 1000, 1)
  local tat = load(key)
  if delta > 0 then
    local used = 0
    if tat and tat > now then used = tat - now end
    store(key, now + math.min(used + span(delta, p, l), p, MAX), pms)
  elseif tat then
    store(key, math.max(tat - span(-delta, p, l), now), pms)
  end
  return 0
end

local n = #KEYS
local tentative = {}
local old, new, out = {}, {}, {}
local all = true
for i = 1, n do
  local key = KEYS[i]
  local base = 2 + 3 * (i - 1)
  local cost = math.max(tonumber(ARGV[base]), 0)
  local l, pms = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  local p = math.max(pms * 1000, 1)
  local tat = tentative[key]
  if tat == nil then tat = load(key) or now end
  if tat < now then tat = now end
  old[i] = tat
  local o = 4 * (i - 1)
  if cost > l then
    out[o + 1], out[o + 2], out[o + 3], out[o + 4] =
        0, remaining(tat - now, p, l), ceil_ms(tat - now), pms
    new[i] = tat
    all = false
  else
    local new_tat = tat + span(cost, p, l)
    local used = new_tat - now
    if used > p then
      out[o + 1], out[o + 2], out[o + 3], out[o + 4] =
          0, remaining(tat - now, p, l), ceil_ms(tat - now), ceil_ms(used - p)
      new[i] = tat
      all = false
    else
      out[o + 1], out[o + 2], out[o + 3], out[o + 4] =
          1, remaining(used, p, l), ceil_ms(used), 0
      new[i] = new_tat
    end
  end
  tentative[key] = new[i]
end
if not all then
  for i = 1, n do
    local o = 4 * (i - 1)
    if out[o + 1] == 1 then
      local base = 2 + 3 * (i - 1)
      local l, pms = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
      local used = old[i] - now
      out[o + 2], out[o + 3] = remaining(used, math.max(pms * 1000, 1), l), ceil_ms(used)
    end
  end
  return out
end
for i = 1, n do
  store(KEYS[i], new[i], tonumber(ARGV[2 + 3 * (i - 1) + 2]))
end
return out
)lua";

Error script_error(const std::string& what) {
  return make_error(Errc::unavailable, "Redis rate limit script failed: " + what);
}

}  // namespace

RedisRateLimiter::RedisRateLimiter(store::RedisClient& client, std::string prefix)
    : client_(client), prefix_(std::move(prefix)) {}

asio::awaitable<Result<RedisReply>> RedisRateLimiter::run_script(std::vector<std::string> keys,
                                                                 std::vector<std::string> argv) {
  if (sha_.empty()) {
    // (Argument vectors are built before co_await: GCC 12 rejects braced lists of literals
    // as temporaries across a suspension point.)
    std::vector<std::string> load{"SCRIPT", "LOAD", kScript};
    auto loaded = co_await client_.command(std::move(load));
    if (!loaded) co_return loaded.error();
    if (loaded->type != RedisReply::Type::string) co_return script_error(loaded->str);
    sha_ = loaded->str;
  }
  std::vector<std::string> cmd;
  cmd.reserve(3 + keys.size() + argv.size());
  cmd.push_back("EVALSHA");
  cmd.push_back(sha_);
  cmd.push_back(std::to_string(keys.size()));
  for (auto& k : keys) cmd.push_back(std::move(k));
  for (auto& a : argv) cmd.push_back(std::move(a));
  auto reply = co_await client_.command(cmd);
  if (reply && reply->is_error() && reply->str.starts_with("NOSCRIPT")) {
    // Redis lost its script cache (restart, SCRIPT FLUSH): send the body; reload next time.
    sha_.clear();
    cmd[0] = "EVAL";
    cmd[1] = kScript;
    reply = co_await client_.command(std::move(cmd));
  }
  co_return reply;
}

asio::awaitable<Result<std::vector<Decision>>> RedisRateLimiter::consume_all(
    std::span<const Charge> charges) {
  std::vector<Decision> decisions(charges.size());
  std::vector<size_t> sent;  // indexes of the charges sent to Redis
  std::vector<std::string> keys;
  std::vector<std::string> argv{"consume"};
  for (size_t i = 0; i < charges.size(); ++i) {
    const Charge& c = charges[i];
    if (c.limit <= 0) continue;
    sent.push_back(i);
    keys.push_back(prefix_ + c.key);
    argv.push_back(std::to_string(c.cost));
    argv.push_back(std::to_string(c.limit));
    argv.push_back(std::to_string(c.period.count()));
  }
  if (sent.empty()) co_return decisions;
  auto reply = co_await run_script(std::move(keys), std::move(argv));
  if (!reply) co_return reply.error();
  if (reply->is_error()) co_return script_error(reply->str);
  const auto& el = reply->elements;
  if (reply->type != RedisReply::Type::array || el.size() != 4 * sent.size()) {
    co_return script_error("unexpected reply shape");
  }
  for (size_t j = 0; j < sent.size(); ++j) {
    for (size_t k = 0; k < 4; ++k) {
      if (el[4 * j + k].type != RedisReply::Type::integer) {
        co_return script_error("unexpected reply element");
      }
    }
    Decision& d = decisions[sent[j]];
    d.allowed = el[4 * j].integer != 0;
    d.limit = charges[sent[j]].limit;
    d.remaining = el[4 * j + 1].integer;
    d.reset_after = Millis{el[4 * j + 2].integer};
    d.retry_after = Millis{el[4 * j + 3].integer};
  }
  co_return decisions;
}

asio::awaitable<Result<void>> RedisRateLimiter::adjust(const Charge& bucket, int64_t delta) {
  if (bucket.limit <= 0 || delta == 0) co_return Result<void>{};
  // INT64_MIN has no positive counterpart; the script clamps any huge refund anyway.
  if (delta == std::numeric_limits<int64_t>::min()) delta = -std::numeric_limits<int64_t>::max();
  std::vector<std::string> keys{prefix_ + bucket.key};
  std::vector<std::string> argv{"adjust", std::to_string(delta), std::to_string(bucket.limit),
                                std::to_string(bucket.period.count())};
  auto reply = co_await run_script(std::move(keys), std::move(argv));
  if (!reply) co_return reply.error();
  if (reply->is_error()) co_return script_error(reply->str);
  co_return Result<void>{};
}

}  // namespace sluice::governance
