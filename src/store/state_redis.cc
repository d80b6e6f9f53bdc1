// The Redis state store: every instance that points at the same Redis shares the state.
//   <prefix>r:<key>    HASH {v: value, l: link}           (PEXPIRE = the record's TTL)
//   <prefix>l:<list>   ZSET id → sequence number           (the order)
//   <prefix>i:<list>   HASH id → value                     (the items)
//   <prefix>n:<list>   the list's sequence counter
// Multi-key operations (append, range, the walk of a chain) are Lua scripts, so each is one
// round trip and atomic. Expiry is Redis' own (sweep() has nothing to do). Calls block on a
// RedisSync connection: the StateService runs them off the worker threads.
#include <cstdlib>
#include <stdexcept>
#include <random>
#include <thread>

#include "store/redis_sync.h"
#include "store/state_store.h"

namespace sluice::store {

namespace {

constexpr const char* kChain = R"lua(
local out = {}
local k = ARGV[2]
local max = tonumber(ARGV[3])
while k ~= '' and #out < max do
  local v = redis.call('HMGET', ARGV[1] .. 'r:' .. k, 'v', 'l')
  if not v[1] then break end
  out[#out + 1] = v[1]
  k = v[2] or ''
end
return out
)lua";

constexpr const char* kAppend = R"lua(
local seen = {}
for i = 2, #ARGV, 2 do
  if seen[ARGV[i]] or redis.call('HEXISTS', KEYS[2], ARGV[i]) == 1 then
    return redis.error_reply('DUPLICATE ' .. ARGV[i])
  end
  seen[ARGV[i]] = true
end
local first = tonumber(redis.call('GET', KEYS[3]) or '0') + 1
for i = 2, #ARGV, 2 do
  local seq = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[1], seq, ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  for j = 1, 3 do redis.call('PEXPIRE', KEYS[j], ttl) end
end
return first
)lua";

constexpr const char* kRange = R"lua(
local lim = tonumber(ARGV[2])
local desc = ARGV[3] == '1'
local lo, hi = '-inf', '+inf'
if ARGV[1] ~= '' then
  local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if not s then return redis.error_reply('NOTFOUND') end
  if desc then hi = '(' .. s else lo = '(' .. s end
end
local ids
if desc then
  ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], hi, lo, 'LIMIT', 0, lim + 1)
else
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], lo, hi, 'LIMIT', 0, lim + 1)
end
local out = {}
for i, id in ipairs(ids) do
  if i > lim then break end
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
  out[#out + 1] = redis.call('ZSCORE', KEYS[1], id) or '0'
end
local more = 0
if #ids > lim then more = 1 end
return {more, out}
)lua";

constexpr const char* kReplaceItem = R"lua(
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
)lua";

constexpr const char* kUnlock = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

constexpr const char* kEraseItem = R"lua(
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
)lua";

class RedisStore final : public StateStore {
 public:
  RedisStore(std::string host, uint16_t port, std::chrono::milliseconds timeout,
             std::string prefix)
      : redis_(std::move(host), port, timeout, "state store"), prefix_(std::move(prefix)) {}

  std::string_view backend() const override { return "redis"; }
  bool blocking() const override { return true; }

  Result<void> put(std::string_view key, std::string_view value, std::string_view link,
                   std::chrono::milliseconds ttl) override {
    const std::string k = prefix_ + "r:" + std::string(key);
    std::vector<std::vector<std::string>> cmds{
        {"MULTI"},
        {"DEL", k},
        {"HSET", k, "v", std::string(value), "l", std::string(link)}};
    if (ttl.count() > 0) cmds.push_back({"PEXPIRE", k, std::to_string(ttl.count())});
    cmds.push_back({"EXEC"});
    auto r = redis_.pipeline(cmds);
    if (!r) return std::move(r.error());
    if (r->back().type != RedisReply::Type::array) return reply_error(r->back());
    return {};
  }

  Result<std::optional<std::string>> get(std::string_view key) override {
    auto r = redis_.command({"HGET", prefix_ + "r:" + std::string(key), "v"});
    if (!r) return std::move(r.error());
    if (r->is_error()) return reply_error(*r);
    if (r->type != RedisReply::Type::string) return std::optional<std::string>();
    return std::optional<std::string>(std::move(r->str));
  }

  Result<bool> erase(std::string_view key) override {
    auto r = redis_.command({"DEL", prefix_ + "r:" + std::string(key)});
    if (!r) return std::move(r.error());
    if (r->is_error()) return reply_error(*r);
    return r->integer > 0;
  }

  Result<bool> touch(std::string_view key, std::chrono::milliseconds ttl) override {
    const std::string k = prefix_ + "r:" + std::string(key);
    auto r = ttl.count() > 0 ? redis_.command({"PEXPIRE", k, std::to_string(ttl.count())})
                             : redis_.command({"EXISTS", k});
    if (!r) return std::move(r.error());
    if (r->is_error()) return reply_error(*r);
    return r->integer > 0;
  }

  // In this process a striped lock (as every backend), across instances a Redis lock:
  // SET NX PX with a random token, released by a compare-and-delete script.
  Result<void> atomically(std::string_view scope,
                          const std::function<Result<void>(StateStore&)>& fn) override {
    return StateStore::atomically(scope, [&](StateStore& self) -> Result<void> {
      const std::string lock = prefix_ + "lock:" + std::string(scope);
      thread_local std::mt19937_64 rng{std::random_device{}()};
      const std::string token = std::to_string(rng()) + std::to_string(rng());
      for (int attempt = 0;; ++attempt) {
        auto r = redis_.command({"SET", lock, token, "NX", "PX", "5000"});
        if (!r) return std::move(r.error());
        if (r->type == RedisReply::Type::status) break;  // OK: ours
        if (attempt == 500) {
          return make_error(Errc::unavailable, "State store (Redis " + redis_.address() +
                                                   ") kept " + std::string(scope) + " locked for 5 s");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(attempt < 20 ? 1 : 10));
      }
      Result<void> result = fn(self);
      (void)redis_.command({"EVAL", kUnlock, "1", lock, token});
      return result;
    });
  }

  Result<std::vector<std::string>> chain(std::string_view key, size_t max) override {
    auto r = redis_.command({"EVAL", kChain, "0", prefix_, std::string(key), std::to_string(max)});
    if (!r) return std::move(r.error());
    if (r->is_error()) return reply_error(*r);
    std::vector<std::string> out;
    for (RedisReply& e : r->elements) out.push_back(std::move(e.str));
    return out;
  }

  Result<int64_t> append(std::string_view list, const std::vector<ListItem>& items,
                      std::chrono::milliseconds ttl) override {
    std::vector<std::string> args{"EVAL", kAppend, "3"};
    push_list_keys(args, list, true);
    args.push_back(std::to_string(ttl.count()));
    for (const ListItem& item : items) {
      args.push_back(item.id);
      args.push_back(item.value);
    }
    auto r = redis_.command(args);
    if (!r) return std::move(r.error());
    if (r->is_error()) {
      if (r->str.find("DUPLICATE ") != std::string::npos) {
        std::string id = r->str.substr(r->str.find("DUPLICATE ") + 10);
        return make_error(Errc::bad_request,
                          "An item with id '" + id + "' already exists in this list.");
      }
      return reply_error(*r);
    }
    return r->integer;
  }

  Result<ListPage> range(std::string_view list, std::string_view after, size_t limit,
                         bool descending) override {
    std::vector<std::string> args{"EVAL", kRange, "2"};
    push_list_keys(args, list, false);
    args.push_back(std::string(after));
    args.push_back(std::to_string(limit));
    args.push_back(descending ? "1" : "0");
    auto r = redis_.command(args);
    if (!r) return std::move(r.error());
    if (r->is_error()) {
      if (r->str.find("NOTFOUND") != std::string::npos) {
        return make_error(Errc::not_found, "No item with id '" + std::string(after) + "'.",
                          "after");
      }
      return reply_error(*r);
    }
    ListPage page;
    if (r->elements.size() != 2) return make_error(Errc::internal, "state store: bad range reply");
    page.has_more = r->elements[0].integer != 0;
    auto& flat = r->elements[1].elements;
    for (size_t i = 0; i + 2 < flat.size(); i += 3) {
      page.items.push_back(ListItem{std::move(flat[i].str), std::move(flat[i + 1].str),
                                    std::atoll(flat[i + 2].str.c_str())});
    }
    return page;
  }

  Result<std::optional<std::string>> item(std::string_view list, std::string_view id) override {
    auto r = redis_.command({"HGET", prefix_ + "i:" + std::string(list), std::string(id)});
    if (!r) return std::move(r.error());
    if (r->is_error()) return reply_error(*r);
    if (r->type != RedisReply::Type::string) return std::optional<std::string>();
    return std::optional<std::string>(std::move(r->str));
  }

  Result<bool> erase_item(std::string_view list, std::string_view id) override {
    std::vector<std::string> args{"EVAL", kEraseItem, "2"};
    push_list_keys(args, list, false);
    args.push_back(std::string(id));
    auto r = redis_.command(args);
    if (!r) return std::move(r.error());
    if (r->is_error()) return reply_error(*r);
    return r->integer > 0;
  }

  Result<bool> replace_item(std::string_view list, std::string_view id,
                            std::string_view value) override {
    std::vector<std::string> args{"EVAL", kReplaceItem, "2"};
    push_list_keys(args, list, false);
    args.push_back(std::string(id));
    args.push_back(std::string(value));
    auto r = redis_.command(args);
    if (!r) return std::move(r.error());
    if (r->is_error()) return reply_error(*r);
    return r->integer > 0;
  }

  Result<void> erase_list(std::string_view list) override {
    std::vector<std::string> args{"DEL"};
    push_list_keys(args, list, true);
    auto r = redis_.command(args);
    if (!r) return std::move(r.error());
    if (r->is_error()) return reply_error(*r);
    return {};
  }

  Result<size_t> size(std::string_view list) override {
    auto r = redis_.command({"ZCARD", prefix_ + "l:" + std::string(list)});
    if (!r) return std::move(r.error());
    if (r->is_error()) return reply_error(*r);
    return static_cast<size_t>(std::max<int64_t>(0, r->integer));
  }

  size_t sweep() override { return 0; }

 private:
  void push_list_keys(std::vector<std::string>& args, std::string_view list, bool counter) const {
    const std::string l(list);
    args.push_back(prefix_ + "l:" + l);
    args.push_back(prefix_ + "i:" + l);
    if (counter) args.push_back(prefix_ + "n:" + l);
  }
  Error reply_error(const RedisReply& r) const {
    return make_error(Errc::unavailable,
                      "State store (Redis " + redis_.address() + ") refused a command: " +
                          (r.is_error() ? r.str : std::string("unexpected reply")));
  }

  RedisSync redis_;
  std::string prefix_;
};

}  // namespace

std::unique_ptr<StateStore> make_redis_store(std::string host, uint16_t port,
                                             std::chrono::milliseconds timeout,
                                             std::string prefix) {
  return std::make_unique<RedisStore>(std::move(host), port, timeout, std::move(prefix));
}

}  // namespace sluice::store
