// The dispatcher's attempt loop: one admitted request → attempts over its route's targets and
// then its fallbacks, all inside one deadline. Nothing is retried once a byte of the answer
// reached the client; a stream that fails before its first event is retried like any other
// failure. The attempts themselves: proxy.cc (same protocol), translate.cc, demo.cc.
#include "api/dispatcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <random>

#include "api/attempt.h"
#include "api/protocols.h"
#include "canonical/codec.h"

namespace sluice::api {

using routing::AttemptOutcome;
using Millis = std::chrono::milliseconds;

namespace {

double random01() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

// How a target serves a request: the one place the dispatcher looks at a provider's kind.
enum class ServePath {
  in_process,     // the built-in demo model
  same_protocol,  // OpenAI in, OpenAI-compatible out: the fast path (body spliced, events
                  // relayed as bytes)
  translated,     // every other pair: through the canonical model
  count,          // a token count asked of an upstream that counts
  estimate,       // a token count for a target that cannot count: estimated here
};

ServePath serve_path(const RequestContext& ctx, config::ProviderKind provider) {
  const canonical::Protocol ingress = ctx.ingress;
  if (ctx.parsed.op == providers::Operation::count_tokens) {
    return provider != config::ProviderKind::demo && canonical::counts_tokens(protocol_of(provider))
               ? ServePath::count
               : ServePath::estimate;
  }
  if (provider == config::ProviderKind::demo) return ServePath::in_process;
  if (ingress == canonical::Protocol::openai && provider == config::ProviderKind::openai &&
      !ctx.canonical_only) {
    return ServePath::same_protocol;
  }
  return ServePath::translated;
}

// The failures after which a token count falls back to the estimate: the upstream was out of
// reach, overloaded or failing (not: it refused the request as invalid).
bool counting_unavailable(const Error& e) {
  if (e.code != Errc::upstream_status) return true;
  return e.upstream_status == 429 || e.upstream_status >= 500;
}

}  // namespace

TargetRuntime::TargetRuntime(const config::TargetConfig& target,
                             const config::RouteConfig& route)
    : state(target, route),
      metrics(route.model, target.name),
      limiter(target.concurrency, target.name.empty() ? target.base_url : target.name) {
  if (config::is_http_provider(target.provider)) origin = upstream::origin_of(target);
}

Dispatcher::Dispatcher(std::shared_ptr<const routing::Router> router, Telemetry& telemetry)
    : router_(std::move(router)), telemetry_(telemetry) {
  for (const auto& route : router_->config().routes) {
    auto rr = std::make_unique<RouteRuntime>(route);
    for (const auto& target : route.targets) {
      rr->targets.push_back(std::make_unique<TargetRuntime>(target, route));
      rr->states.push_back(&rr->targets.back()->state);
    }
    rr->balancer = std::make_unique<routing::Balancer>(route.balancer, rr->states);
    routes_.push_back(std::move(rr));
  }
}

RouteRuntime* Dispatcher::runtime_for(const config::RouteConfig* route) {
  if (route == nullptr) return nullptr;
  size_t index = static_cast<size_t>(route - router_->config().routes.data());
  return index < routes_.size() ? routes_[index].get() : nullptr;
}

asio::awaitable<void> Dispatcher::dispatch(RequestContext& ctx, RouteRuntime& primary) {
  http::Responder& responder = *ctx.responder;
  Trace& trace = *ctx.trace;
  const config::RetryPolicy& policy = primary.route->retry;
  auto now = Clock::now();
  ctx.deadline = now + (policy.deadline.count() > 0 ? policy.deadline
                                                    : primary.route->targets[0].timeouts.total);

  // A client that leaves cancels whatever is in progress: the upstream exchange (its socket
  // is cancelled and the connection discarded, which the upstream sees as a close) or a wait.
  responder.watch_client([&ctx] {
    if (ctx.live_call) ctx.live_call->cancel();
    if (ctx.sleeper) ctx.sleeper->cancel();
  });
  // The backoff timer, made on the first retry that waits: most requests never retry, and
  // making a timer takes the io_context's service-registry lock.
  std::optional<asio::steady_timer> sleeper;

  // The chain: the route, then its fallbacks (each with its own attempt budget).
  struct Hop {
    RouteRuntime* route;
    std::string model;  // model name sent upstream when the target has none ("" = client's)
  };
  std::vector<Hop> chain{{&primary, ""}};
  // A fallback serves another model: the caller's key must be allowed to use it too.
  for (const auto& name : primary.route->fallbacks) {
    if (RouteRuntime* rr = runtime_for(router_->match(name));
        rr && rr != &primary && ctx.may_use(name)) {
      chain.push_back({rr, name});
    }
  }

  std::optional<Error> last_error;
  std::optional<std::chrono::milliseconds> wait_hint;  // upstream's Retry-After...
  const TargetRuntime* hint_from = nullptr;            // ...which binds only that target
  bool free_retry = false;  // the last failure was connection-level (see AttemptResult)
  Millis previous_backoff{0};
  bool done = false;
  AttemptResult r;  // the last attempt's
  for (size_t hop = 0; hop < chain.size() && !done; ++hop) {
    RouteRuntime& rr = *chain[hop].route;
    std::vector<bool> tried(rr.targets.size(), false);
    int budget = rr.route->retry.max_attempts;
    for (int a = 0; a < budget && !done; ++a) {
      if (responder.client_gone()) {
        done = true;
        break;
      }
      now = Clock::now();
      if (now >= ctx.deadline) {
        last_error = make_error(Errc::upstream_timeout,
                                "The request deadline passed after " +
                                    std::to_string(ctx.attempts) + " attempt(s)");
        done = true;
        break;
      }
      auto picked = rr.balancer->pick(tried, now);
      if (!picked) {
        if (!last_error || hop + 1 == chain.size()) {
          last_error = make_error(Errc::unavailable,
                                  "No available target for route '" + rr.route->model +
                                      "': every target's circuit breaker is open or unhealthy");
        }
        break;  // next fallback
      }
      TargetRuntime& tr = *rr.targets[*picked];
      tried[*picked] = true;
      trace.target = &tr;
      // From the pick on, the breaker gets exactly one verdict, whichever way this ends.
      BreakerVerdict verdict(tr.state);
      const ServePath path = serve_path(ctx, tr.state.config.provider);
      if (path == ServePath::estimate) {
        verdict.abandon();  // the target was not asked
        co_await serve_count_estimate(ctx, "the target's provider cannot count tokens");
        done = true;
        break;
      }
      if (path == ServePath::in_process) {
        observe::GaugeHold open_stream;
        if (ctx.parsed.stream && telemetry_.metrics_on()) open_stream.hold(telemetry_.open_streams);
        responder.add_header("x-sluice-attempts", std::to_string(ctx.attempts + 1));
        verdict.success();
        tr.state.count(AttemptOutcome::success);
        UsageTokens demo_usage;
        if (ctx.ingress == canonical::Protocol::openai && !ctx.canonical_only) {
          co_await serve_demo(ctx.parsed, responder, &demo_usage);
        } else {
          co_await serve_demo_translated(ctx, &demo_usage);
        }
        ctx.attempts++;
        ctx.succeeded = responder.responded() && responder.status() < 400;
        if (ctx.succeeded) ctx.usage = demo_usage;
        ctx.served_model = chain[hop].model;
        done = true;
        break;
      }
      if (ctx.attempts > 0) {
        // A retry: it must fit the target's retry budget (unless the last failure never
        // loaded an upstream) and the deadline, after a backoff.
        if (!free_retry && !tr.state.budget.try_spend_retry(now)) {
          verdict.abandon();
          tr.state.count(AttemptOutcome::rejected);
          last_error = make_error(Errc::unavailable,
                                  "Retry budget exhausted for upstream " +
                                      tr.state.config.name + "; not retrying" +
                                      (last_error ? ": " + last_error->message : std::string()));
          continue;
        }
        tr.state.retries.fetch_add(1, std::memory_order_relaxed);
        tr.state.budget.on_request(now);  // the denominator is every request the target sees
        Millis backoff = routing::backoff_delay(rr.route->retry, ctx.attempts, previous_backoff,
                                                random01());
        previous_backoff = backoff;
        // A Retry-After binds the target that sent it, not the others of the route.
        Millis hint = wait_hint && hint_from == &tr ? *wait_hint : Millis{0};
        Millis wait = std::max(backoff, hint);
        if (now + wait >= ctx.deadline) {
          verdict.abandon();
          if (wait_hint && hop + 1 < chain.size()) break;  // don't sleep: try the fallback
          done = true;
          break;
        }
        if (wait.count() > 0) {
          if (!sleeper) {
            auto ex = co_await asio::this_coro::executor;
            sleeper.emplace(ex);
          }
          sleeper->expires_after(wait);
          ctx.sleeper = &*sleeper;
          auto slept_at = Clock::now();
          co_await sleeper->async_wait(asio::as_tuple(asio::use_awaitable));
          ctx.waited_since(slept_at);
          ctx.sleeper = nullptr;
          if (responder.client_gone()) {
            verdict.abandon();
            done = true;
            break;
          }
        }
      } else {
        tr.state.budget.on_request(now);
      }
      auto queued_at = Clock::now();
      auto slot = co_await tr.limiter.acquire(!rr.route->fail_fast, ctx.deadline);
      ctx.waited_since(queued_at);
      if (!slot) {
        verdict.abandon();
        tr.state.count(AttemptOutcome::rejected);
        last_error = std::move(slot.error());
        // Another target of the route may have room; waiting on a full one again would just
        // double the wait, so stop once every target was tried.
        if (std::all_of(tried.begin(), tried.end(), [](bool t) { return t; })) break;
        continue;
      }
      ctx.attempts++;
      // The concurrency slot and the in-flight count are given back on every path (nothing
      // after the attempt in this iteration waits, so the end of the scope is "at once").
      struct SlotHold {
        TargetRuntime& tr;
        explicit SlotHold(TargetRuntime& t) : tr(t) {
          tr.state.in_flight.fetch_add(1, std::memory_order_relaxed);
        }
        ~SlotHold() {
          tr.state.in_flight.fetch_sub(1, std::memory_order_relaxed);
          tr.limiter.release();
        }
      } hold(tr);
      ctx.served_model = chain[hop].model;
      // (Not a ?: of two co_awaits: GCC 12 miscompiles that into a use-after-free.)
      r = AttemptResult{};
      if (path == ServePath::same_protocol) {
        co_await attempt(ctx, tr, verdict, chain[hop].model, r);
      } else if (path == ServePath::count) {
        co_await attempt_count(ctx, tr, verdict, chain[hop].model, r);
      } else {
        co_await attempt_translated(ctx, tr, verdict, chain[hop].model, r);
      }
      if (r.responded || responder.client_gone()) {
        done = true;
        break;
      }
      wait_hint = r.error.retry_after;
      hint_from = &tr;
      free_retry = r.free_retry;
      last_error = std::move(r.error);
      if (r.context_length && !rr.route->context_fallback.empty()) {
        // Too long for this model: go straight to the larger-context route.
        RouteRuntime* bigger = runtime_for(router_->match(rr.route->context_fallback));
        if (bigger && bigger != &rr && ctx.may_use(rr.route->context_fallback)) {
          chain.resize(hop + 1);
          chain.push_back({bigger, rr.route->context_fallback});
          wait_hint.reset();
        }
        break;
      }
      if (!r.retryable) {
        done = true;
        break;
      }
      // Waiting out the hint would pass the deadline: go on to the fallback, unless another
      // target of this route (whom the hint does not bind) is left to try.
      if (wait_hint && Clock::now() + *wait_hint >= ctx.deadline &&
          std::all_of(tried.begin(), tried.end(), [](bool t) { return t; })) {
        break;
      }
    }
  }
  co_await responder.stop_watching();
  ctx.settle();
  if (responder.client_gone()) {
    spdlog::debug("request {}: client disconnected; upstream request cancelled",
                  ctx.request->request_id);
    responder.close_after();
    co_return;
  }
  if (!responder.responded() && ctx.parsed.op == providers::Operation::count_tokens &&
      last_error && counting_unavailable(*last_error)) {
    // No upstream could count: an estimate (marked as one) serves the client better than an
    // error for a number that is an estimate of cost anyway.
    spdlog::info("request {}: token count estimated: {}", ctx.request->request_id,
                 last_error->message);
    co_await serve_count_estimate(ctx, "no upstream could count");
    co_return;
  }
  if (!responder.responded()) {
    if (!last_error) {
      last_error = make_error(Errc::unavailable,
                              "No attempt could be made for route '" + primary.route->model + "'");
    }
    responder.add_header("x-sluice-attempts", std::to_string(ctx.attempts));
    co_await responder.send_error(*last_error);
  }
}

}  // namespace sluice::api
