// Governance beyond authentication: `rate_limits`, the shared `redis` connection, `prices`,
// `budgets` and `usage`, plus the limit and budget maps that auth.keys[] reuses.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/sections.h"
#include "config/yaml_read.h"

namespace sluice::config::detail {
namespace {

// Requests or tokens per minute/day.
constexpr int64_t kMaxRate = 1'000'000'000'000;

// The limit keys of an already checked section (a `limits:` map, or a per_model entry).
RateLimits read_limits(const Section& s) {
  RateLimits limits;
  if (const auto* n = s.find("requests_per_minute")) {
    limits.requests_per_minute = read_int_in(*n, s.path("requests_per_minute"), 0, kMaxRate);
  }
  if (const auto* n = s.find("tokens_per_minute")) {
    limits.tokens_per_minute = read_int_in(*n, s.path("tokens_per_minute"), 0, kMaxRate);
  }
  if (const auto* n = s.find("tokens_per_day")) {
    limits.tokens_per_day = read_int_in(*n, s.path("tokens_per_day"), 0, kMaxRate);
  }
  return limits;
}

// redis://host:port (no auth, no database index: Debian's hiredis 0.14 has no TLS).
void parse_redis_url(const YAML::Node& node, const std::string& path, RateLimitConfig& limits) {
  std::string url = read_string(node, path);
  constexpr std::string_view kScheme = "redis://";
  if (!std::string_view(url).starts_with(kScheme)) fail(path, "expected redis://host:port");
  std::string rest = url.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  size_t colon = rest.rfind(':');
  std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host.find('/') != std::string::npos || host.find('@') != std::string::npos) {
    fail(path, "expected redis://host:port");
  }
  int port = 6379;
  if (colon != std::string::npos) {
    std::string digits = rest.substr(colon + 1);
    if (digits.empty() || digits.size() > 5 ||
        digits.find_first_not_of("0123456789") != std::string::npos || std::stoi(digits) < 1 ||
        std::stoi(digits) > 65535) {
      fail(path, "port must be 1..65535");
    }
    port = std::stoi(digits);
  }
  limits.redis_host = host;
  limits.redis_port = static_cast<uint16_t>(port);
}

}  // namespace

RateLimits parse_limits(const YAML::Node& node, const std::string& path, SchemaRef schema) {
  return read_limits(Section(node, path, schema));
}

// {usd: 100, period: month|day}
Budget parse_budget(const YAML::Node& node, const std::string& path, SchemaRef schema) {
  if (!node.IsMap()) fail(path, fmt::format("expected a map, got {}", describe(node)));
  const Section s(node, path, schema);
  Budget b;
  const auto* usd = s.find("usd");
  if (usd == nullptr) fail(s.path("usd"), "required");
  b.usd = read_double_in(*usd, s.path("usd"), 0.0, 1e12, false);
  if (const auto* p = s.find("period")) {
    std::string period = read_string(*p, s.path("period"));
    if (period == "day") {
      b.period = Budget::Period::day;
    } else if (period == "month") {
      b.period = Budget::Period::month;
    } else {
      fail(s.path("period"),
           fmt::format("unknown period {} (expected day, month)", quote_value(period)));
    }
  }
  return b;
}

// Top-level `redis`: the one connection every Redis feature uses (rate limits, keys, budgets).
// `rate_limits.redis.url` / `timeout_ms` (the older spelling) may not set it a second time.
void parse_redis(const YAML::Node& node, const YAML::Node* rate_limits, RateLimitConfig& limits) {
  const Section s(node, "redis", "redis");
  const YAML::Node old_spelling = rate_limits != nullptr && rate_limits->IsMap()
                                      ? (*rate_limits)["redis"]
                                      : YAML::Node();
  for (const char* key : {"url", "timeout_ms"}) {
    if (s.find(key) != nullptr && old_spelling.IsMap() && old_spelling[key].IsDefined()) {
      fail(std::string("rate_limits.redis.") + key,
           fmt::format("also set as redis.{}; set it in one place (redis.{})", key, key));
    }
  }
  if (const auto* u = s.find("url")) parse_redis_url(*u, s.path("url"), limits);
  if (const auto* t = s.find("timeout_ms")) {
    limits.redis_timeout = read_millis(*t, s.path("timeout_ms"));
  }
}

void parse_rate_limits(const YAML::Node& node, RateLimitConfig& limits) {
  const Section s(node, "rate_limits", "rate_limits");
  if (const auto* n = s.find("backend")) {
    std::string backend = read_string(*n, s.path("backend"));
    if (backend == "memory") {
      limits.backend = RateLimitConfig::Backend::memory;
    } else if (backend == "redis") {
      limits.backend = RateLimitConfig::Backend::redis;
    } else {
      fail(s.path("backend"),
           fmt::format("unknown backend {} (expected memory, redis)", quote_value(backend)));
    }
  }
  if (const auto* n = s.find("redis")) {
    const Section r(*n, s.path("redis"), "rate_limits.redis");
    if (const auto* u = r.find("url")) parse_redis_url(*u, r.path("url"), limits);
    if (const auto* t = r.find("timeout_ms")) {
      limits.redis_timeout = read_millis(*t, r.path("timeout_ms"));
    }
    if (const auto* e = r.find("on_error")) {
      std::string policy = read_string(*e, r.path("on_error"));
      if (policy == "fail_open") {
        limits.fail_open = true;
      } else if (policy == "fail_closed") {
        limits.fail_open = false;
      } else {
        fail(r.path("on_error"),
             fmt::format("unknown policy {} (expected fail_open, fail_closed)",
                         quote_value(policy)));
      }
    }
  }
  if (const auto* n = s.find("per_key")) {
    limits.per_key = parse_limits(*n, s.path("per_key"), "rate_limits.per_key");
  }
  if (const auto* n = s.find("per_tenant")) {
    const std::string tenants_path = s.path("per_tenant");
    for (const auto& [tenant, value] : map_entries(*n, tenants_path)) {
      const std::string path = child_path(tenants_path, tenant);
      if (tenant.empty()) fail(path, "tenant name must not be empty");
      if (has_control_chars(tenant)) fail(path, "tenant name contains control characters");
      limits.per_tenant.emplace(tenant, parse_limits(value, path, "rate_limits.per_tenant.*"));
    }
  }
  if (const auto* n = s.find("per_model")) {
    const std::string models_path = s.path("per_model");
    if (!n->IsNull()) {
      if (!n->IsSequence()) {
        fail(models_path, fmt::format("expected a sequence, got {}", describe(*n)));
      }
      for (size_t i = 0; i < n->size(); ++i) {
        const std::string path = index_path(models_path, i);
        const YAML::Node& entry = (*n)[i];
        if (!entry.IsMap()) fail(path, fmt::format("expected a map, got {}", describe(entry)));
        const Section e(entry, path, "rate_limits.per_model[]");
        const auto* model = e.find("model");
        if (model == nullptr) fail(e.path("model"), "required");
        std::string pattern = read_label(*model, e.path("model"));
        for (size_t k = 0; k < limits.per_model.size(); ++k) {
          if (limits.per_model[k].first == pattern) {
            fail(e.path("model"), fmt::format("duplicate model {} (first at {})",
                                              quote_value(pattern), index_path(models_path, k)));
          }
        }
        limits.per_model.emplace_back(std::move(pattern), read_limits(e));
      }
    }
  }
}

void parse_prices(const YAML::Node& node, std::vector<Price>& prices) {
  if (!node.IsSequence()) {
    fail("prices", fmt::format("expected a sequence, got {}", describe(node)));
  }
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string path = index_path("prices", i);
    const YAML::Node& entry = node[i];
    if (!entry.IsMap()) fail(path, fmt::format("expected a map, got {}", describe(entry)));
    const Section e(entry, path, "prices[]");
    Price price;
    const auto* model = e.find("model");
    if (model == nullptr) fail(e.path("model"), "required");
    price.model = read_label(*model, e.path("model"));
    auto money = [&](const char* key, double& out) {
      if (const auto* v = e.find(key)) out = read_double_in(*v, e.path(key), 0.0, 1e9, false);
    };
    money("input_per_million", price.input_per_million);
    money("cached_input_per_million", price.cached_input_per_million);
    money("output_per_million", price.output_per_million);
    prices.push_back(std::move(price));
  }
}

void parse_budgets(const YAML::Node& node, Config& config) {
  const Section b(node, "budgets", "budgets");
  if (const auto* k = b.find("backend")) {
    std::string backend = read_string(*k, b.path("backend"));
    if (backend != "memory" && backend != "redis") {
      fail(b.path("backend"),
           fmt::format("unknown backend {} (expected memory, redis)", quote_value(backend)));
    }
    config.budget_spend_in_redis = backend == "redis";
  }
  if (const auto* k = b.find("per_key")) {
    config.budget_per_key = parse_budget(*k, b.path("per_key"), "budgets.per_key");
  }
  if (const auto* t = b.find("per_tenant")) {
    for (const auto& [tenant, value] : map_entries(*t, b.path("per_tenant"))) {
      config.budget_per_tenant.emplace(
          tenant, parse_budget(value, child_path(b.path("per_tenant"), tenant),
                               "budgets.per_tenant.*"));
    }
  }
}

void parse_usage(const YAML::Node& node, const std::string& base_dir, Config& config) {
  const Section u(node, "usage", "usage");
  if (const auto* d = u.find("db")) {
    std::string db = read_string(*d, u.path("db"));
    if (!db.empty() && db.front() != '/' && !base_dir.empty()) db = base_dir + "/" + db;
    config.usage_db = db;
  }
}
void parse_pipeline(const YAML::Node& node, PipelineConfig& pipeline) {
  const Section s(node, "pipeline", "pipeline");
  const YAML::Node* n = s.find("stages");
  if (n == nullptr) return;
  const std::string path = s.path("stages");
  if (!n->IsSequence()) fail(path, fmt::format("expected a sequence, got {}", describe(*n)));
  std::vector<std::string> stages;
  auto position = [&](std::string_view name) {
    return std::find(stages.begin(), stages.end(), name) - stages.begin();
  };
  for (size_t i = 0; i < n->size(); ++i) {
    const std::string entry = index_path(path, i);
    std::string name = read_string((*n)[i], entry);
    if (std::find(std::begin(kStageNames), std::end(kStageNames), name) == std::end(kStageNames)) {
      std::string known;
      for (std::string_view k : kStageNames) known += (known.empty() ? "" : ", ") + std::string(k);
      fail(entry, fmt::format("unknown stage {} (known: {})", quote_value(name), known));
    }
    if (position(name) < static_cast<ptrdiff_t>(stages.size())) {
      fail(entry, fmt::format("{} is listed twice", quote_value(name)));
    }
    stages.push_back(std::move(name));
  }
  const auto end = static_cast<ptrdiff_t>(stages.size());
  if (position("budget") < end && position("rate_limit") < end &&
      position("budget") > position("rate_limit")) {
    fail(path, "budget must come before rate_limit (a request over its budget would reserve "
               "rate-limit tokens first)");
  }
  if (position("budget") < end && position("usage") == end) {
    fail(path, "budget needs usage in the pipeline (budgets are checked against the spend "
               "that usage records)");
  }
  pipeline.stages = std::move(stages);
}

}  // namespace sluice::config::detail
