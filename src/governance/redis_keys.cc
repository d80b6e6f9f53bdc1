// RedisKeys: created API keys in Redis. Writes are Lua scripts (check, write and version bump in
// one atomic step); reads are one MULTI/EXEC so the version always matches the keys read.
#include "governance/redis_keys.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <unordered_set>
#include <utility>

namespace sluice::governance {

namespace {

using store::RedisReply;

// KEYS: keys, names, version. ARGV: id, name, JSON. 0 = the name is taken.
constexpr const char* kCreateScript =
    "if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[1]) == 0 then return 0 end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])\n"
    "redis.call('INCR', KEYS[3])\n"
    "return 1\n";

// KEYS: keys, revoked, version. ARGV: id. 0 = no such key.
constexpr const char* kRevokeScript =
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end\n"
    "if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then redis.call('INCR', KEYS[3]) end\n"
    "return 1\n";

void append_string_field(std::string& out, std::string_view name, std::string_view value) {
  out += '"';
  out += name;
  out += R"(":")";
  append_json_escaped(out, value);
  out += "\",";
}

void append_int_field(std::string& out, std::string_view name, int64_t value) {
  out += '"';
  out += name;
  out += "\":";
  out += std::to_string(value);
  out += ',';
}

Error unexpected(const RedisReply& reply) {
  return make_error(Errc::internal,
                    "unexpected reply from Redis" + (reply.is_error() ? ": " + reply.str : ""));
}

// Integer replies may also arrive as strings (GET of a counter) or nil (never set).
std::optional<int64_t> as_integer(const RedisReply& r) {
  if (r.type == RedisReply::Type::integer) return r.integer;
  if (r.type == RedisReply::Type::nil) return 0;
  if (r.type != RedisReply::Type::string) return std::nullopt;
  try {
    size_t used = 0;
    int64_t v = std::stoll(r.str, &used);
    if (used == r.str.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace

std::string encode_stored_key(const StoredKey& key) {
  const KeyRecord& r = key.record;
  std::string out = "{";
  append_string_field(out, "id", r.id);
  append_string_field(out, "key_sha256", key.hash);
  append_string_field(out, "key_prefix", r.key_prefix);
  append_string_field(out, "name", r.name);
  append_string_field(out, "tenant", r.tenant);
  out += R"("models":[)";
  for (size_t i = 0; i < r.models.size(); ++i) {
    if (i) out += ',';
    out += '"';
    append_json_escaped(out, r.models[i]);
    out += '"';
  }
  out += "],";
  append_int_field(out, "requests_per_minute", r.limits.requests_per_minute);
  append_int_field(out, "tokens_per_minute", r.limits.tokens_per_minute);
  append_int_field(out, "tokens_per_day", r.limits.tokens_per_day);
  char usd[40];
  std::snprintf(usd, sizeof usd, "%.17g", r.budget.usd);
  out += R"("budget_usd":)";
  out += usd;
  out += ',';
  append_string_field(out, "budget_period",
                      r.budget.period == config::Budget::Period::day ? "day" : "month");
  append_int_field(out, "expires_unix", r.expires_unix);
  append_int_field(out, "created_unix", r.created_unix);
  out.back() = '}';
  return out;
}

std::optional<StoredKey> decode_stored_key(std::string_view json) {
  namespace dom = simdjson::dom;
  thread_local dom::parser parser;
  simdjson::padded_string padded(json);
  dom::object obj;
  if (parser.parse(padded).get_object().get(obj)) return std::nullopt;
  StoredKey key;
  KeyRecord& r = key.record;
  for (auto [field, value] : obj) {
    std::string_view s;
    int64_t n = 0;
    if (field == "id" || field == "key_sha256" || field == "key_prefix" || field == "name" ||
        field == "tenant" || field == "budget_period") {
      if (value.get_string().get(s)) return std::nullopt;
      if (field == "id") r.id = s;
      if (field == "key_sha256") key.hash = s;
      if (field == "key_prefix") r.key_prefix = s;
      if (field == "name") r.name = s;
      if (field == "tenant") r.tenant = s;
      if (field == "budget_period") {
        r.budget.period = s == "day" ? config::Budget::Period::day : config::Budget::Period::month;
      }
    } else if (field == "models") {
      dom::array models;
      if (value.get_array().get(models)) return std::nullopt;
      for (auto m : models) {
        if (m.get_string().get(s)) return std::nullopt;
        r.models.emplace_back(s);
      }
    } else if (field == "budget_usd") {
      double usd = 0;
      if (value.get_double().get(usd) || usd < 0) return std::nullopt;
      r.budget.usd = usd;
    } else if (field == "requests_per_minute" || field == "tokens_per_minute" ||
               field == "tokens_per_day" || field == "expires_unix" || field == "created_unix") {
      if (value.get_int64().get(n) || n < 0) return std::nullopt;
      if (field == "requests_per_minute") r.limits.requests_per_minute = n;
      if (field == "tokens_per_minute") r.limits.tokens_per_minute = n;
      if (field == "tokens_per_day") r.limits.tokens_per_day = n;
      if (field == "expires_unix") r.expires_unix = n;
      if (field == "created_unix") r.created_unix = n;
    }
    // Unknown fields are ignored: a newer gateway may add some.
  }
  if (r.id.empty() || r.name.empty() || key.hash.size() != 64) return std::nullopt;
  return key;
}

RedisKeys::RedisKeys(std::string host, uint16_t port, std::chrono::milliseconds timeout,
                     std::string prefix)
    : redis_(std::move(host), port, timeout, "key store"),
      keys_(prefix + "keys"),
      names_(prefix + "keys:names"),
      revoked_(prefix + "keys:revoked"),
      version_(prefix + "keys:version") {}

Result<int64_t> RedisKeys::version() {
  auto reply = redis_.command({"GET", version_});
  if (!reply) return reply.error();
  auto v = as_integer(*reply);
  if (!v) return unexpected(*reply);
  return *v;
}

Result<std::pair<int64_t, std::vector<StoredKey>>> RedisKeys::load() {
  auto replies = redis_.pipeline(
      {{"MULTI"}, {"GET", version_}, {"HGETALL", keys_}, {"SMEMBERS", revoked_}, {"EXEC"}});
  if (!replies) return replies.error();
  const RedisReply& exec = replies->back();
  if (exec.type != RedisReply::Type::array || exec.elements.size() != 3) return unexpected(exec);
  auto version = as_integer(exec.elements[0]);
  const RedisReply& all = exec.elements[1];
  const RedisReply& revoked = exec.elements[2];
  if (!version || all.type != RedisReply::Type::array || revoked.type != RedisReply::Type::array) {
    return unexpected(exec);
  }
  std::unordered_set<std::string> revoked_ids;
  for (const RedisReply& id : revoked.elements) revoked_ids.insert(id.str);
  std::vector<StoredKey> keys;
  keys.reserve(all.elements.size() / 2);
  for (size_t i = 0; i + 1 < all.elements.size(); i += 2) {
    auto key = decode_stored_key(all.elements[i + 1].str);
    if (!key || key->record.id != all.elements[i].str) {
      spdlog::warn("key store: skipping malformed entry '{}' in Redis hash {}", all.elements[i].str,
                   keys_);
      continue;
    }
    key->record.revoked = revoked_ids.contains(key->record.id);
    keys.push_back(std::move(*key));
  }
  return std::pair<int64_t, std::vector<StoredKey>>{*version, std::move(keys)};
}

Result<void> RedisKeys::create(const StoredKey& key) {
  auto reply = redis_.command({"EVAL", kCreateScript, "3", keys_, names_, version_, key.record.id,
                               key.record.name, encode_stored_key(key)});
  if (!reply) return reply.error();
  if (reply->type != RedisReply::Type::integer) return unexpected(*reply);
  if (reply->integer == 0) {
    return make_error(Errc::bad_request,
                      "an API key named '" + key.record.name + "' already exists", "name");
  }
  return {};
}

Result<void> RedisKeys::revoke(std::string_view id) {
  auto reply =
      redis_.command({"EVAL", kRevokeScript, "3", keys_, revoked_, version_, std::string(id)});
  if (!reply) return reply.error();
  if (reply->type != RedisReply::Type::integer) return unexpected(*reply);
  if (reply->integer == 0) {
    return make_error(Errc::not_found, "no API key with id '" + std::string(id) + "'");
  }
  return {};
}

}  // namespace sluice::governance
