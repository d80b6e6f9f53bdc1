// The dispatcher: one admitted request → attempts over its route's targets and then the route's
// fallbacks, all inside one deadline (retries with backoff, breakers, retry budgets,
// concurrency limits, balancing). It owns the live state of every route and target of a config.
// It knows no provider by name: a target is served by the same-protocol fast path (body spliced,
// events relayed as bytes: proxy.cc), by the translated path (translate.cc), or by the built-in
// demo model (demo.cc).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string_view>
#include <vector>

#include "api/request_context.h"
#include "api/telemetry.h"
#include "routing/balancer.h"
#include "routing/router.h"
#include "routing/target_state.h"
#include "upstream/client.h"
#include "upstream/limiter.h"

namespace sluice::api {

/// Live state of one target: breaker, budget, counters, concurrency limit, origin.
struct TargetRuntime {
  TargetRuntime(const config::TargetConfig& target, const config::RouteConfig& route);
  routing::TargetState state;
  RequestSeries metrics;
  upstream::ConcurrencyLimiter limiter;
  upstream::Origin origin;  // HTTP targets only
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

class BreakerVerdict;

/// How one attempt ended.
struct AttemptResult {
  bool responded = false;     // an answer (success, stream, pass-through) reached the client
  bool retryable = false;     // nothing reached the client and another attempt may help
  bool context_length = false;
  bool free_retry = false;    // connection-level failure: retrying adds no upstream load, so
                              // it does not spend the retry budget
  Error error;                // what to tell the client if no attempt succeeds
};

class Dispatcher {
 public:
  /// `telemetry` must outlive the Dispatcher (both belong to one Gateway).
  Dispatcher(std::shared_ptr<const routing::Router> router, Telemetry& telemetry);

  /// The runtime of a configured route (null for null).
  RouteRuntime* runtime_for(const config::RouteConfig* route);
  /// Every route's runtime, parallel to the config's routes (stable for the Dispatcher's
  /// lifetime).
  const std::vector<std::unique_ptr<RouteRuntime>>& routes() const { return routes_; }

  /// Answers `ctx` (decoded, routed to `primary`, through the stages) from the route or its
  /// fallbacks, or with the last error. Calls ctx.settle() before a unary answer is written,
  /// and once more when it ends.
  asio::awaitable<void> dispatch(RequestContext& ctx, RouteRuntime& primary);

 private:
  // Each attempt fills `result` (the caller's, reset): returned by value, it would take a
  // slot in the frame of every coroutine on the way, for as long as a stream is held.
  // The same-protocol fast path (proxy.cc): OpenAI client, OpenAI-compatible target.
  asio::awaitable<void> attempt(RequestContext& ctx, TargetRuntime& target,
                                BreakerVerdict& verdict, std::string_view model_override,
                                AttemptResult& result);
  // The translated path (translate.cc): a client protocol other than OpenAI, or a target
  // protocol other than the client's.
  asio::awaitable<void> attempt_translated(RequestContext& ctx, TargetRuntime& target,
                                           BreakerVerdict& verdict,
                                           std::string_view model_override,
                                           AttemptResult& result);
  // Token counting (count.cc): an upstream that counts (Anthropic, Gemini) is asked; every
  // other target gets the estimate (serve_count_estimate), as does a request no counting
  // upstream could answer.
  asio::awaitable<void> attempt_count(RequestContext& ctx, TargetRuntime& target,
                                      BreakerVerdict& verdict, std::string_view model_override,
                                      AttemptResult& result);
  asio::awaitable<void> serve_count_estimate(RequestContext& ctx, std::string_view why);
  // The exchange of a translated or counting attempt up to a 2xx answer's head: true when
  // the answer can be read from `call`, else `result` holds the failure (the verdict given).
  asio::awaitable<bool> open_exchange(RequestContext& ctx, TargetRuntime& runtime,
                                      BreakerVerdict& verdict, canonical::Protocol egress,
                                      std::string_view path, std::string_view body,
                                      upstream::Call& call, AttemptResult& result);
  // A target as client-facing messages name it (its origin only with errors.expose_upstream).
  const std::string& upstream_label(const TargetRuntime& runtime) const;
  // The built-in demo model (demo.cc); `usage` receives what the answer reports.
  asio::awaitable<void> serve_demo(const providers::ParsedRequest& parsed,
                                   http::Responder& responder, UsageTokens* usage);
  asio::awaitable<void> serve_demo_translated(RequestContext& ctx, UsageTokens* usage);

  std::shared_ptr<const routing::Router> router_;
  Telemetry& telemetry_;
  std::vector<std::unique_ptr<RouteRuntime>> routes_;  // parallel to config routes
};

}  // namespace sluice::api
