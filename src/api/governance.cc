// Governance: credentials → identity, model permission, GCRA admission and reconciliation.
#include "api/governance.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <cstdio>

#include "common/saturating.h"
#include "governance/redis_keys.h"
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

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
  x = request.header("x-goog-api-key");  // Gemini clients
  if (!x.empty()) return x;
  x = request.header("api-key");
  if (!x.empty()) return x;
  // Gemini clients may send the key as ?key=... (taken as sent: keys need no escaping).
  std::string_view q = request.head->query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    if (pair.starts_with("key=")) return pair.substr(4);
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return {};
}

}  // namespace

int64_t estimate_request_tokens(size_t body_bytes, int64_t max_tokens, int64_t n) {
  int64_t prompt = static_cast<int64_t>(std::min<size_t>(body_bytes / 4, kMaxTokensBound)) + 1;
  int64_t answer = max_tokens > 0 ? clamp_nonneg(max_tokens, kMaxTokensBound) : 1024;
  // n choices are n answers (the prompt is read once).
  return sat_add(prompt, sat_mul(answer, std::max<int64_t>(n, 1)));
}

bool same_usage_storage(const config::Config& a, const config::Config& b) {
  const auto& ra = a.rate_limits;
  const auto& rb = b.rate_limits;
  return a.usage_db == b.usage_db && a.budget_spend_in_redis == b.budget_spend_in_redis &&
         ra.redis_host == rb.redis_host && ra.redis_port == rb.redis_port &&
         ra.redis_timeout == rb.redis_timeout;
}

Reservation::Reservation(std::shared_ptr<Governance> governance, Admission admission,
                         governance::RedisRateLimiter* redis,
                         boost::asio::any_io_executor executor)
    : governance_(std::move(governance)),
      admission_(std::move(admission)),
      redis_(redis),
      executor_(std::move(executor)) {
  if (admission_.token_buckets.empty()) governance_.reset();  // nothing to settle
}

Reservation& Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    settle(0);
    governance_ = std::move(other.governance_);
    admission_ = std::move(other.admission_);
    redis_ = other.redis_;
    executor_ = std::move(other.executor_);
    other.governance_.reset();
  }
  return *this;
}

void Reservation::settle(std::optional<int64_t> actual) {
  std::shared_ptr<Governance> g = std::move(governance_);
  governance_.reset();
  if (!g || !actual) return;
  try {
    if (redis_ != nullptr && g->uses_redis() && executor_) {
      // A Redis round trip nobody waits for: it owns the Governance until it is done.
      boost::asio::co_spawn(
          executor_,
          [](std::shared_ptr<Governance> gov, Admission a, int64_t n,
             governance::RedisRateLimiter* r) -> boost::asio::awaitable<void> {
            co_await gov->reconcile(std::move(a), n, r);
          }(g, std::move(admission_), *actual, redis_),
          boost::asio::detached);
    } else {
      g->reconcile(admission_, *actual);
    }
  } catch (const std::exception& e) {
    spdlog::warn("rate limiter: settling a token reservation failed: {}", e.what());
  }
}

Governance::Governance(std::shared_ptr<const config::Config> config_ptr,
                       std::shared_ptr<UsageLedger> ledger)
    : config_(std::move(config_ptr)) {
  const config::Config& config = *config_;
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
  usage_ = ledger ? std::move(ledger) : std::make_shared<UsageLedger>(config_);
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
  who.budget = config_->budget_per_key;
  if (!config_->auth.enabled) return who;
  std::string_view presented = credential(request);
  if (presented.empty()) {
    return make_error(Errc::unauthorized,
                      "You didn't provide an API key. Send it as 'Authorization: Bearer <key>', "
                      "'x-api-key', 'x-goog-api-key', 'api-key' or '?key='.");
  }
  who.anonymous = false;
  if (jwt_ && governance::looks_like_jwt(presented)) {
    auto id = jwt_->verify(presented, unix_seconds());
    if (!id) return id.error();
    if (id->subject.empty()) {
      // Without a subject every such caller would share one identity (limits, usage, budget).
      return make_error(Errc::unauthorized,
                        "The token has no 'sub' claim; the gateway needs it to identify the "
                        "caller.");
    }
    who.key_id = "jwt:" + id->subject;
    who.name = id->subject;
    // A token without a tenant claim is its own tenant, in a namespace of its own: subject
    // "acme" must not share tenant limits or budgets with an API key or tenant named "acme".
    who.tenant = id->tenant.empty() ? "jwt:" + id->subject : id->tenant;
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
  return who.limits.any() ? who.limits : config_->rate_limits.per_key;
}

const config::RateLimits* Governance::tenant_limits(const std::string& tenant) const {
  const auto& m = config_->rate_limits.per_tenant;
  auto it = m.find(tenant);
  if (it != m.end()) return &it->second;
  it = m.find("*");
  return it != m.end() ? &it->second : nullptr;
}

const std::pair<std::string, config::RateLimits>* Governance::model_limits(
    std::string_view model) const {
  for (const auto& entry : config_->rate_limits.per_model) {
    if (config::glob_match(entry.first, model)) return &entry;
  }
  return nullptr;
}

double Governance::cost(std::string_view model, const UsageTokens& t) const {
  for (const auto& p : config_->prices) {
    if (!config::glob_match(p.model, model)) continue;
    int64_t uncached = std::max<int64_t>(0, sat_sub(t.input, t.cached));
    double cached_price =
        p.cached_input_per_million > 0 ? p.cached_input_per_million : p.input_per_million;
    return (static_cast<double>(uncached) * p.input_per_million +
            static_cast<double>(std::max<int64_t>(t.cached, 0)) * cached_price +
            static_cast<double>(std::max<int64_t>(t.output, 0)) * p.output_per_million) /
           1e6;
  }
  return 0;
}

Result<void> Governance::check_budget(const Identity& who) const {
  return usage_->check_budget(who.key_id, who.tenant, who.budget, config_->budget_per_tenant);
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
  // Keyed by the matching pattern: every model a glob covers shares its bucket.
  if (const auto* ml = model_limits(model)) add("model:" + ml->first, ml->second);
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
                 config_->rate_limits.fail_open ? "fail_open (admitting without limits)"
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
    if (config_->rate_limits.fail_open) co_return Admission{};
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
  int64_t delta = sat_sub(actual_tokens, admission.reserved_tokens);
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
  int64_t delta = sat_sub(actual_tokens, admission.reserved_tokens);
  if (delta == 0) return;
  auto now = Clock::now();
  for (const auto& bucket : admission.token_buckets) limiter_.adjust(bucket, delta, now);
}

}  // namespace sluice::api
