// The OpenAI-compatible API surface: endpoint dispatch, request decoding, and the resilient
// proxy (attempt loop over targets and fallbacks: retries with backoff, breakers, concurrency
// limits, balancing) to upstream targets or the built-in demo provider.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "api/governance.h"
#include "api/telemetry.h"
#include "canonical/canonical.h"
#include "http/server.h"
#include "providers/request.h"
#include "routing/balancer.h"
#include "routing/router.h"
#include "routing/target_state.h"
#include "upstream/client.h"
#include "upstream/limiter.h"

namespace sluice::api {

namespace asio = boost::asio;

/// Live state of one target: breaker, budget, counters, concurrency limit, origin.
struct TargetRuntime {
  TargetRuntime(const config::TargetConfig& target, const config::RouteConfig& route);
  routing::TargetState state;
  RequestSeries metrics;
  upstream::ConcurrencyLimiter limiter;
  upstream::Origin origin;  // openai targets only
};

/// Live state of one route: its targets, balancer and resolved fallbacks.
struct RouteRuntime {
  explicit RouteRuntime(const config::RouteConfig& r) : route(&r), metrics(r.model) {}
  const config::RouteConfig* route = nullptr;
  RouteMetrics metrics;
  std::vector<std::unique_ptr<TargetRuntime>> targets;
  std::vector<routing::TargetState*> states;  // parallel to targets, for the balancer
  std::unique_ptr<routing::Balancer> balancer;
};

struct ProxyContext;
class BreakerVerdict;

/// What one worker thread owns and lends to the requests it serves.
struct WorkerContext {
  upstream::Pool* pool = nullptr;
  governance::RedisRateLimiter* redis = nullptr;  // null unless rate_limits.backend is redis
};

/// The listener a request arrived on. `api` (server.listen) serves the OpenAI API, /healthz and
/// /readyz, plus the operations endpoints only with admin.on_public_listener: true; `admin`
/// (admin.listen) serves /metrics, /admin/*, /debug/pprof/*, /healthz and /readyz only.
enum class Listener { api, admin };

class Gateway : public std::enable_shared_from_this<Gateway> {
 public:
  /// `draining` is read by /readyz (503 while the process shuts down). `access_log` may be
  /// null (off); it is shared with the next Gateway when a reload leaves it unchanged.
  Gateway(std::shared_ptr<const routing::Router> router, const std::atomic<bool>* draining,
          std::shared_ptr<Governance> governance,
          std::shared_ptr<observe::AccessLog> access_log = nullptr);

  /// Serves one request on the calling worker (`worker` lends its upstream pool). `keep` is
  /// held for the request's lifetime (the owner of this Gateway, across a reload). Paths the
  /// `listener` does not serve answer 404 "Unknown request URL", as unknown paths do.
  asio::awaitable<void> handle(http::Request& request, http::Responder& responder,
                               WorkerContext& worker, std::shared_ptr<void> keep = nullptr,
                               Listener listener = Listener::api);

  /// The server's HeadCheck: authenticates API requests on their head, before the body is
  /// read. The Identity goes to request.head_state (std::shared_ptr<Identity>) for handle().
  std::optional<Error> check_head(http::Request& request);

  /// Starts active health checks (targets with health.enabled) on `io`, using `pool`.
  /// Call once, on one worker; the checks run until the io_context stops or retire().
  /// The Gateway must be owned by a shared_ptr (the checks keep it alive).
  void start_health_checks(asio::io_context& io, upstream::Pool& pool);

  /// A newer config replaced this one: background work (health checks) stops; requests in
  /// flight finish on it.
  void retire() { retired_.store(true); }
  bool retired() const { return retired_.load(std::memory_order_relaxed); }

  /// Registers the scrape-time collector of per-target state (attempts, retries, breakers,
  /// health, in-flight). Call once the Gateway is owned by a shared_ptr; a later Gateway's
  /// call replaces it.
  void register_collectors();


  /// Runtime state for admin views and tests (stable for the Gateway's lifetime).
  const std::vector<std::unique_ptr<RouteRuntime>>& routes() const { return routes_; }

 private:
  struct AttemptResult;
  asio::awaitable<void> proxy(providers::Operation op, http::Request& request,
                              http::Responder& responder, WorkerContext& worker,
                              const Identity& who, Trace& trace,
                              canonical::Protocol ingress = canonical::Protocol::openai);
  // The translated path (translate.cc): a client protocol other than OpenAI, or a target
  // protocol other than the client's.
  Result<void> decode_client_request(ProxyContext& ctx);
  asio::awaitable<AttemptResult> attempt_translated(ProxyContext& ctx, TargetRuntime& target,
                                                    BreakerVerdict& verdict,
                                                    std::string_view model_override);
  asio::awaitable<void> serve_demo_translated(ProxyContext& ctx, UsageTokens* usage);
  /// /v1/messages/count_tokens and Gemini :countTokens (an estimate, marked as one).
  asio::awaitable<void> count_tokens(http::Request& request, http::Responder& responder,
                                     canonical::Protocol protocol, std::string_view model);
  asio::awaitable<void> serve_metrics(http::Request& request, http::Responder& responder);
  /// Records the request's usage and settles its token reservation, once (before a unary
  /// answer is written, so a client's next request sees the spend; else when it ends).
  void account(ProxyContext& ctx);
  asio::awaitable<AttemptResult> attempt(ProxyContext& ctx, TargetRuntime& target,
                                         BreakerVerdict& verdict,
                                         std::string_view model_override);
  /// Answers from the built-in demo model; `usage` receives what the answer reports.
  asio::awaitable<void> serve_demo(const providers::ParsedRequest& parsed,
                                   http::Responder& responder, UsageTokens* usage = nullptr);
  asio::awaitable<void> list_models(http::Responder& responder);
  asio::awaitable<void> get_model(std::string_view id, http::Responder& responder);
  asio::awaitable<void> admin_upstreams(http::Request& request, http::Responder& responder);
  asio::awaitable<void> admin_keys(http::Request& request, http::Responder& responder);
  asio::awaitable<void> admin_usage(http::Request& request, http::Responder& responder);
  /// Checks the admin token; answers 404 (admin disabled) or 401 itself when it fails.
  asio::awaitable<bool> admin_allowed(http::Request& request, http::Responder& responder);
  RouteRuntime* runtime_for(const config::RouteConfig* route);

  std::shared_ptr<const routing::Router> router_;
  const std::atomic<bool>* draining_;
  std::shared_ptr<Governance> governance_;
  Telemetry telemetry_;
  std::vector<std::unique_ptr<RouteRuntime>> routes_;  // parallel to config routes
  std::atomic<bool> retired_{false};
};

}  // namespace sluice::api
