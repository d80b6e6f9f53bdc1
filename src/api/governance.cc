// Governance: credentials → identity, model permission, GCRA admission and reconciliation.
#include "api/governance.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <cstdio>

#include "governance/redis_keys.h"

namespace sluice::api {

using governance::Charge;
using governance::Decision;
using Clock = std::chrono::steady_clock;

namespace {

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// OpenAI's reset format: "1s", "6m0s", "250ms".
std::string reset_string(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms < 1000) return std::to_string(ms) + "ms";
  int64_t s = (ms + 999) / 1000;
  if (s < 60) return std::to_string(s) + "s";
  int64_t m = s / 60;
  s %= 60;
  if (m < 60) return std::to_string(m) + "m" + std::to_string(s) + "s";
  return std::to_string(m / 60) + "h" + std::to_string(m % 60) + "m" + std::to_string(s) + "s";
}

std::string_view credential(const http::Request& request) {
  std::string_view auth = request.header("authorization");
  if (auth.size() > 7 && http::iequals(auth.substr(0, 7), "bearer ")) {
    std::string_view v = auth.substr(7);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    return v;
  }
  std::string_view x = request.header("x-api-key");
  if (!x.empty()) return x;
  return request.header("api-key");
}

}  // namespace

int64_t estimate_request_tokens(size_t body_bytes, int64_t max_tokens) {
  int64_t prompt = static_cast<int64_t>(body_bytes / 4) + 1;
  return prompt + (max_tokens > 0 ? max_tokens : 1024);
}

Governance::Governance(const config::Config& config) : config_(config) {
  if (config.auth.enabled && config.auth.keys_backend == config::AuthConfig::KeysBackend::redis) {
    keys_ = std::make_unique<governance::KeyStore>(
        config.auth.keys, std::make_unique<governance::RedisKeys>(
                              config.rate_limits.redis_host, config.rate_limits.redis_port,
                              config.rate_limits.redis_timeout));
  } else {
    std::string db;
    if (config.auth.enabled) db = config.auth.keys_db;
    keys_ = std::make_unique<governance::KeyStore>(config.auth.keys, db);
  }
  usage_ = std::make_unique<UsageLedger>(config);
  if (config.auth.enabled && config.auth.jwt.enabled) {
    jwt_ = std::make_unique<governance::JwtVerifier>(config.auth.jwt);
  }
  refresher_ = std::thread([this] {
    int tick = 0;
    while (!stop_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      try {
        keys_->refresh();
        if (jwt_ && ++tick % 4 == 0) jwt_->reload_if_changed();
        if (tick % 240 == 0) limiter_.sweep(Clock::now());
      } catch (const std::exception& e) {
        spdlog::warn("governance refresh failed: {}", e.what());
      }
    }
  });
}

Governance::~Governance() {
  stop_.store(true);
  if (refresher_.joinable()) refresher_.join();
}

Result<Identity> Governance::authenticate(const http::Request& request) const {
  Identity who;
  who.budget = config_.budget_per_key;
  if (!config_.auth.enabled) return who;
  std::string_view presented = credential(request);
  if (presented.empty()) {
    return make_error(Errc::unauthorized,
                      "You didn't provide an API key. Send it as 'Authorization: Bearer <key>', "
                      "'x-api-key' or 'api-key'.");
  }
  who.anonymous = false;
  if (jwt_ && governance::looks_like_jwt(presented)) {
    auto id = jwt_->verify(presented, unix_seconds());
    if (!id) return id.error();
    who.key_id = "jwt:" + id->subject;
    who.name = id->subject;
    who.tenant = id->tenant.empty() ? id->subject : id->tenant;
    return who;
  }
  auto rec = keys_->authenticate(presented, unix_seconds());
  if (!rec) return rec.error();
  who.key_id = rec->id;
  who.name = rec->name;
  who.tenant = rec->tenant.empty() ? rec->name : rec->tenant;
  who.models = rec->models;
  who.limits = rec->limits;
  if (rec->budget.any()) who.budget = rec->budget;
  return who;
}

Result<void> Governance::authorize_model(const Identity& who, std::string_view model) const {
  if (who.anonymous || who.models.empty()) return {};
  for (const auto& glob : who.models) {
    if (config::glob_match(glob, model)) return {};
  }
  Error e = make_error(Errc::forbidden, "API key '" + who.name + "' is not allowed to use model '" +
                                            std::string(model) + "'.",
                       "model");
  return e;
}

config::RateLimits Governance::key_limits(const Identity& who) const {
  return who.limits.any() ? who.limits : config_.rate_limits.per_key;
}

const config::RateLimits* Governance::tenant_limits(const std::string& tenant) const {
  const auto& m = config_.rate_limits.per_tenant;
  auto it = m.find(tenant);
  if (it != m.end()) return &it->second;
  it = m.find("*");
  return it != m.end() ? &it->second : nullptr;
}

const config::RateLimits* Governance::model_limits(std::string_view model) const {
  for (const auto& [glob, limits] : config_.rate_limits.per_model) {
    if (config::glob_match(glob, model)) return &limits;
  }
  return nullptr;
}

Governance::Plan Governance::plan(const Identity& who, std::string_view model,
                                  int64_t estimated_tokens) const {
  using std::chrono::hours;
  using std::chrono::minutes;
  Plan plan;
  auto add = [&](const std::string& scope, const config::RateLimits& l) {
    if (l.requests_per_minute > 0) {
      plan.charges.push_back({scope + ":rpm", 1, l.requests_per_minute, minutes(1)});
      plan.is_tokens.push_back(false);
    }
    if (l.tokens_per_minute > 0) {
      plan.charges.push_back({scope + ":tpm", estimated_tokens, l.tokens_per_minute, minutes(1)});
      plan.is_tokens.push_back(true);
    }
    if (l.tokens_per_day > 0) {
      plan.charges.push_back({scope + ":tpd", estimated_tokens, l.tokens_per_day, hours(24)});
      plan.is_tokens.push_back(true);
    }
  };
  if (!who.anonymous) {
    add("key:" + who.key_id, key_limits(who));
    if (const auto* t = tenant_limits(who.tenant)) add("tenant:" + who.tenant, *t);
  }
  if (const config::RateLimits* ml = model_limits(model)) add("model:" + std::string(model), *ml);
  plan.estimated_tokens = estimated_tokens;
  return plan;
}

Result<Admission> Governance::settle(const Plan& plan, const std::vector<Decision>& decisions,
                                     http::Responder& responder) const {
  using std::chrono::hours;
  // Headers report the tightest request and token buckets (OpenAI's names).
  const Decision* req = nullptr;
  const Decision* tok = nullptr;
  const Decision* rejected = nullptr;
  for (size_t i = 0; i < decisions.size(); ++i) {
    const Decision& d = decisions[i];
    const Decision*& slot = plan.is_tokens[i] ? tok : req;
    if (!slot || d.remaining < slot->remaining) slot = &d;
    if (!d.allowed && (!rejected || d.retry_after > rejected->retry_after)) rejected = &d;
  }
  if (req) {
    responder.add_header("x-ratelimit-limit-requests", std::to_string(req->limit));
    responder.add_header("x-ratelimit-remaining-requests", std::to_string(req->remaining));
    responder.add_header("x-ratelimit-reset-requests", reset_string(req->reset_after));
  }
  if (tok) {
    responder.add_header("x-ratelimit-limit-tokens", std::to_string(tok->limit));
    responder.add_header("x-ratelimit-remaining-tokens", std::to_string(tok->remaining));
    responder.add_header("x-ratelimit-reset-tokens", reset_string(tok->reset_after));
  }
  if (rejected) {
    size_t index = static_cast<size_t>(rejected - decisions.data());
    const Charge& c = plan.charges[index];
    Error e = make_error(Errc::rate_limited,
                         "Rate limit reached for " + c.key + ": limit " +
                             std::to_string(c.limit) +
                             (plan.is_tokens[index] ? " tokens" : " requests") + " per " +
                             (c.period == hours(24) ? "day" : "minute") + ". Retry after " +
                             reset_string(rejected->retry_after) + ".");
    e.retry_after = std::max(rejected->retry_after, std::chrono::milliseconds(1));
    return e;
  }
  Admission admission;
  for (size_t i = 0; i < plan.charges.size(); ++i) {
    if (plan.is_tokens[i]) admission.token_buckets.push_back(plan.charges[i]);
  }
  admission.reserved_tokens = plan.estimated_tokens;
  return admission;
}

Result<Admission> Governance::admit(const Identity& who, std::string_view model,
                                    int64_t estimated_tokens, http::Responder& responder) {
  Plan p = plan(who, model, estimated_tokens);
  if (p.charges.empty()) return Admission{};
  return settle(p, limiter_.consume_all(p.charges, Clock::now()), responder);
}

void Governance::note_redis_result(bool ok, const Error* error) {
  if (ok) {
    if (redis_down_.exchange(false)) spdlog::info("rate limiter: Redis is reachable again");
    return;
  }
  redis_failures_.fetch_add(1, std::memory_order_relaxed);
  // Logged once per incident, not once per request.
  if (!redis_down_.exchange(true)) {
    spdlog::warn("rate limiter: Redis unavailable ({}); policy {}", error ? error->message : "",
                 config_.rate_limits.fail_open ? "fail_open (admitting without limits)"
                                                : "fail_closed (rejecting)");
  }
}

boost::asio::awaitable<Result<Admission>> Governance::admit(const Identity& who,
                                                            std::string_view model,
                                                            int64_t estimated_tokens,
                                                            http::Responder& responder,
                                                            governance::RedisRateLimiter* redis) {
  if (!uses_redis() || redis == nullptr) {
    co_return admit(who, model, estimated_tokens, responder);
  }
  Plan p = plan(who, model, estimated_tokens);
  if (p.charges.empty()) co_return Admission{};
  auto decisions = co_await redis->consume_all(p.charges);
  if (!decisions) {
    note_redis_result(false, &decisions.error());
    if (config_.rate_limits.fail_open) co_return Admission{};
    Error e = make_error(Errc::unavailable,
                         "Rate limiting is unavailable (Redis cannot be reached) and the gateway "
                         "is configured to fail closed; try again shortly.");
    e.retry_after = std::chrono::milliseconds(1000);
    co_return e;
  }
  note_redis_result(true, nullptr);
  co_return settle(p, *decisions, responder);
}

boost::asio::awaitable<void> Governance::reconcile(Admission admission,
                                                   int64_t actual_tokens,
                                                   governance::RedisRateLimiter* redis) {
  if (!uses_redis() || redis == nullptr) {
    reconcile(admission, actual_tokens);
    co_return;
  }
  int64_t delta = actual_tokens - admission.reserved_tokens;
  if (delta == 0) co_return;
  for (const auto& bucket : admission.token_buckets) {
    auto r = co_await redis->adjust(bucket, delta);
    if (!r) {
      note_redis_result(false, &r.error());
      co_return;
    }
  }
}

void Governance::reconcile(const Admission& admission, int64_t actual_tokens) {
  if (admission.token_buckets.empty()) return;
  int64_t delta = actual_tokens - admission.reserved_tokens;
  if (delta == 0) return;
  auto now = Clock::now();
  for (const auto& bucket : admission.token_buckets) limiter_.adjust(bucket, delta, now);
}

}  // namespace sluice::api
