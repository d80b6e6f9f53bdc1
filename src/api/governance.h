// Governance on the request path: who is calling (API key or JWT), may they use this model,
// and do their request/token rate limits admit the request (GCRA, in process). Token limits
// reserve an estimate before dispatch and are reconciled with the upstream's real usage.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "api/usage.h"
#include "common/error.h"
#include "config/config.h"
#include "governance/jwt_verifier.h"
#include "governance/key_store.h"
#include "governance/rate_limiter.h"
#include "governance/redis_rate_limiter.h"
#include "http/server.h"

namespace sluice::api {

struct Identity {
  bool anonymous = true;         // auth disabled
  std::string key_id;            // key id, or "jwt:<sub>"
  std::string name;
  std::string tenant;
  std::vector<std::string> models;  // allowed globs; empty = all
  config::RateLimits limits;        // the key's own (zero = use rate_limits.per_key)
  config::Budget budget;            // the key's own, else budgets.per_key
};

/// What admit() reserved, to be reconciled once the real usage is known.
struct Admission {
  std::vector<governance::Charge> token_buckets;  // buckets charged with `reserved_tokens`
  int64_t reserved_tokens = 0;
};

class Governance;

/// A request's token reservation, held for the request's lifetime. Whatever way the request
/// ends, the reservation is settled exactly once: by settle() with the real usage, or by the
/// destructor, which refunds it (a request that never got an answer costs nothing). With the
/// Redis backend the settlement runs detached on `executor` (the client need not wait for it)
/// and keeps the Governance alive until it is done.
class Reservation {
 public:
  Reservation() = default;
  Reservation(std::shared_ptr<Governance> governance, Admission admission,
              governance::RedisRateLimiter* redis, boost::asio::any_io_executor executor);
  Reservation(Reservation&& other) noexcept { *this = std::move(other); }
  Reservation& operator=(Reservation&& other) noexcept;
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;
  ~Reservation() { settle(0); }

  /// Replaces the reservation by `actual` tokens; nullopt keeps the reservation as charged
  /// (an answer without a usage report: the conservative choice). Later calls do nothing.
  void settle(std::optional<int64_t> actual);
  bool active() const { return governance_ != nullptr; }

 private:
  std::shared_ptr<Governance> governance_;
  Admission admission_;
  governance::RedisRateLimiter* redis_ = nullptr;
  boost::asio::any_io_executor executor_;
};

class Governance : public std::enable_shared_from_this<Governance> {
 public:
  /// Builds the key store (opening its SQLite file), the JWT verifier and the limiter, and
  /// starts a background thread refreshing keys (250 ms) and JWKS (1 s). Throws at startup.
  /// `ledger`: the usage ledger of the Governance this one replaces at a reload, when its
  /// storage (usage.db, budgets backend, Redis) is unchanged, so spend carries on (and what
  /// requests still in flight on the old one record is counted); null builds a new one.
  explicit Governance(std::shared_ptr<const config::Config> config,
                      std::shared_ptr<UsageLedger> ledger = nullptr);
  ~Governance();

  bool auth_enabled() const { return config_->auth.enabled; }

  /// The caller's identity from Authorization: Bearer, x-api-key or api-key. Errors: 401.
  Result<Identity> authenticate(const http::Request& request) const;

  /// 403 when the key's model globs do not cover `model`.
  Result<void> authorize_model(const Identity& who, std::string_view model) const;

  /// Charges one request and `estimated_tokens` against every applicable limit (key, tenant,
  /// model), all or nothing. Adds the x-ratelimit-* headers to `responder` either way.
  /// Error: 429 rate_limit_exceeded with retry_after.
  Result<Admission> admit(const Identity& who, std::string_view model, int64_t estimated_tokens,
                          http::Responder& responder);

  /// Replaces the reservation by the real token count (refund or extra charge).
  void reconcile(const Admission& admission, int64_t actual_tokens);

  /// admit() through the worker's Redis limiter when `rate_limits.backend` is redis (limits
  /// exact across every instance sharing that Redis), else the in-process one. When Redis is
  /// unreachable: fail_open admits without limits, fail_closed answers 503; either way the
  /// incident is logged once and counted, and the next request tries Redis again.
  boost::asio::awaitable<Result<Admission>> admit(const Identity& who, std::string_view model,
                                                  int64_t estimated_tokens,
                                                  http::Responder& responder,
                                                  governance::RedisRateLimiter* redis);
  /// Takes the admission by value: it may run detached, after the request is gone.
  boost::asio::awaitable<void> reconcile(Admission admission, int64_t actual_tokens,
                                         governance::RedisRateLimiter* redis);

  bool uses_redis() const {
    return config_->rate_limits.backend == config::RateLimitConfig::Backend::redis;
  }
  uint64_t redis_failures() const { return redis_failures_.load(); }

  governance::KeyStore& keys() { return *keys_; }
  UsageLedger& usage() { return *usage_; }
  const std::shared_ptr<UsageLedger>& usage_ledger() const { return usage_; }

  /// Cost in USD of `tokens` on `model` (first matching price; 0 when none matches).
  double cost(std::string_view model, const UsageTokens& tokens) const;
  /// 429 insufficient_quota when the caller's key or tenant budget is spent.
  Result<void> check_budget(const Identity& who) const;
  /// Whether a stage can change anything under this config (Gateway leaves out the others: each
  /// costs a coroutine frame per request). With auth on, every one can: keys carry their own
  /// models, limits and budgets, also keys created later through the admin API.
  bool restricts_models() const { return config_->auth.enabled; }
  bool has_budgets() const {
    const config::Config& c = *config_;
    return c.auth.enabled || c.budget_per_key.any() || !c.budget_per_tenant.empty();
  }
  bool has_rate_limits() const {
    const config::RateLimitConfig& r = config_->rate_limits;
    return config_->auth.enabled || r.per_key.any() || !r.per_tenant.empty() ||
           !r.per_model.empty();
  }
  /// Usage is recorded when there is someone to bill or something to keep: auth on, prices,
  /// budgets or a usage database configured. The embedded default records nothing.
  bool accounts_usage() const {
    const config::Config& c = *config_;
    return c.auth.enabled || !c.prices.empty() || !c.usage_db.empty() || c.budget_per_key.any() ||
           !c.budget_per_tenant.empty();
  }

  /// The charges a request makes (requests and tokens per key, tenant and model).
  struct Plan {
    std::vector<governance::Charge> charges;
    std::vector<bool> is_tokens;  // parallel to charges
    int64_t estimated_tokens = 0;
  };
  Plan plan(const Identity& who, std::string_view model, int64_t estimated_tokens) const;
  /// Turns the limiter's decisions into headers and an Admission, or the 429 error.
  Result<Admission> settle(const Plan& plan, const std::vector<governance::Decision>& decisions,
                           http::Responder& responder) const;

 private:
  config::RateLimits key_limits(const Identity& who) const;
  const config::RateLimits* tenant_limits(const std::string& tenant) const;
  /// The first per_model entry whose glob matches `model`, with that glob (the bucket is
  /// keyed by the pattern, so every model it covers shares one bucket).
  const std::pair<std::string, config::RateLimits>* model_limits(std::string_view model) const;

  std::shared_ptr<const config::Config> config_;
  std::unique_ptr<governance::KeyStore> keys_;
  std::unique_ptr<governance::JwtVerifier> jwt_;
  std::shared_ptr<UsageLedger> usage_;
  governance::LocalRateLimiter limiter_;
  void note_redis_result(bool ok, const Error* error);
  std::atomic<bool> redis_down_{false};
  std::atomic<uint64_t> redis_failures_{0};
  std::atomic<bool> stop_{false};
  std::thread refresher_;
};

/// Tokens an answer will cost before it exists: max_tokens (or a default of 1024 when the
/// client sets none; clamped to kMaxTokensBound) times `n` choices, plus ~4 bytes per prompt
/// token. Saturating.
int64_t estimate_request_tokens(size_t body_bytes, int64_t max_tokens, int64_t n = 1);

/// The largest max_tokens a request may ask for when its route sets no context window (2^31-1).
inline constexpr int64_t kMaxTokensBound = 2147483647;

/// True when two configs keep usage in the same place (usage.db, budgets backend, Redis), so a
/// reload can hand the running ledger to the new Governance.
bool same_usage_storage(const config::Config& a, const config::Config& b);

}  // namespace sluice::api
