// The resilient proxy: one client request → attempts over a route's targets and then its
// fallbacks, all inside one deadline. Nothing is retried once a byte of the answer reached
// the client; a stream that fails before its first event is retried like any other failure.
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>
#include <random>

#include "api/gateway.h"
#include "api/proxy_context.h"
#include "api/proxy_util.h"
#include "common/saturating.h"
#include "http/parse/sse_scan.h"
#include "providers/openai.h"
#include "providers/response_check.h"
#include "providers/usage_report.h"

namespace sluice::api {

using providers::Operation;
using routing::AttemptOutcome;
using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

namespace {

double random01() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}


}  // namespace

asio::awaitable<Gateway::AttemptResult> Gateway::attempt(ProxyContext& ctx,
                                                         TargetRuntime& runtime,
                                                         BreakerVerdict& verdict,
                                                         std::string_view model_override) {
  AttemptResult result;
  routing::TargetState& state = runtime.state;
  const config::TargetConfig& target = state.config;
  const config::RetryPolicy& policy = state.route.retry;
  http::Responder& responder = *ctx.responder;

  providers::EncodedRequest encoded;
  providers::encode_openai_request(ctx.parsed, target, *ctx.request->head,
                                   ctx.request->request_id, encoded, model_override);
  std::array<asio::const_buffer, 4> wire{
      asio::buffer(encoded.head),
      asio::buffer(encoded.body_prefix.data(), encoded.body_prefix.size()),
      asio::buffer(encoded.model_token),
      asio::buffer(encoded.body_suffix.data(), encoded.body_suffix.size())};

  upstream::Call call(*ctx.pool, runtime.origin, target.timeouts, ctx.deadline);
  ctx.live_call = &call;
  struct Unlink {
    ProxyContext& ctx;
    ~Unlink() { ctx.live_call = nullptr; }
  } unlink{ctx};

  // Upstreams are named by target in client-facing messages unless errors.expose_upstream.
  const bool expose = router_->config().expose_upstream_errors;
  const std::string& label = expose || target.name.empty() ? runtime.origin.key : target.name;
  auto fail = [&](Error e, bool after_send_ok) {
    // after_send_ok: the failure class may be retried even though the request was sent.
    result.error = std::move(e);
    if (responder.client_gone() || call.cancelled()) {
      // The client left and cancelled the exchange: nothing the upstream did wrong.
      verdict.abandon();
      return;
    }
    if (call.local_limit()) {
      // This worker's own connection cap for the host: a local limit, not the target's health.
      state.count(AttemptOutcome::rejected);
      verdict.abandon();
      result.retryable = true;
      return;
    }
    state.count(outcome_of_error(result.error));
    verdict.failure();
    bool before_send = !call.request_sent();
    result.retryable = before_send || after_send_ok || policy.retry_on_timeout;
  };

  auto started_at = Clock::now();
  // A request the client marked idempotent may be re-sent at once when a reused connection
  // turns out to have been closed by the upstream; any other waits for the retry policy.
  const bool replayable = !ctx.request->header("idempotency-key").empty();
  auto started = co_await call.start(wire, replayable);
  ctx.waited_since(started_at);
  if (!started) {
    // Connection failures — refused, reset, or closed before a single response byte — are
    // always retryable: the upstream produced nothing and (for refused) never saw the request.
    // Timeouts after the request was sent only when the route says so: the upstream may still
    // be doing (and billing) the work.
    bool connect = started.error().code == Errc::upstream_connect ||
                   started.error().code == Errc::unavailable;
    result.free_retry = connect;
    fail(std::move(started.error()), connect);
    co_return result;
  }
  state.observe_ttfb(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_at).count()));
  int status = call.status();
  // Copied now: the head's views die with the first body read.
  std::string content_type(call.head().header("content-type"));
  // The gateway asks for identity encoding; an upstream that compresses anyway must say so.
  std::string extra_headers;
  if (std::string_view enc = call.head().header("content-encoding"); !enc.empty()) {
    extra_headers = "Content-Encoding: " + std::string(enc) + "\r\n";
  }

  if (status >= 400) {
    auto retry_after = upstream_retry_after(call.head());
    auto read_at = Clock::now();
    auto body = co_await call.read_all(kMaxUpstreamErrorBody);
    ctx.waited_since(read_at);
    std::string_view text = body ? *body : std::string_view{};
    // Everything read from the body is taken before finish(), which releases its buffer.
    Error e = upstream_status_error(status, text, content_type, retry_after, label, expose);
    bool context_length = is_context_length_error(status, text);
    if (!expose && status >= 500 && !text.empty()) {
      spdlog::info("request {}: upstream {} answered {}: {}", ctx.request->request_id,
                   runtime.origin.key, status, text.substr(0, 300));
    }
    call.finish();
    if (e.retryable) {
      state.count(AttemptOutcome::upstream_error);
      verdict.failure();
      result.retryable = !responder.client_gone();
    } else {
      // The upstream is healthy; the request is at fault (or too long for this model).
      state.count(AttemptOutcome::success);
      verdict.success();
      result.context_length = context_length;
    }
    result.error = std::move(e);
    co_return result;
  }

  bool is_sse = content_type.starts_with("text/event-stream");
  if (!(ctx.parsed.stream && is_sse)) {
    auto read_at = Clock::now();
    auto body = co_await call.read_all(kMaxUpstreamBody);
    ctx.waited_since(read_at);
    if (!body) {
      fail(std::move(body.error()), false);
      co_return result;
    }
    // A compressed answer (the upstream ignored our identity Accept-Encoding) is relayed as
    // is: checking it would mean inflating it.
    if (auto problem = extra_headers.empty()
                           ? providers::check_unary_answer(ctx.parsed.op, *body)
                           : std::nullopt) {
      // A 2xx the client's SDK could not use: an upstream protocol error, retried like one
      // (nothing reached the client yet). The connection itself is fine.
      spdlog::warn("request {}: upstream {} answered HTTP {} with {}", ctx.request->request_id,
                   runtime.origin.key, status, *problem);
      Error bad = make_error(Errc::upstream_protocol,
                             "Upstream " + label + " answered HTTP " + std::to_string(status) +
                                 " with " + *problem);
      call.finish();
      fail(std::move(bad), true);
      co_return result;
    }
    if (content_type.empty()) content_type = "application/json";
    ctx.succeeded = true;
    ctx.usage = parse_usage(*body);
    state.count(AttemptOutcome::success);
    verdict.success();
    // Before the answer is written: a client's next request already sees this spend.
    account(ctx);
    responder.add_header("x-sluice-attempts", std::to_string(ctx.attempts));
    co_await responder.send(status, content_type, *body, extra_headers);
    call.finish();
    result.responded = true;
    co_return result;
  }

  // SSE relay. Nothing goes to the client until the first complete event is in hand, so a
  // stream that dies before it can still be retried. After that, bytes are forwarded as
  // whole events, byte for byte; an incomplete tail waits for its end, so an error event can
  // only ever follow a whole event.
  // The upstream's Content-Encoding (if any) goes with the stream too.
  std::string with_encoding;
  std::string_view stream_headers = kStreamHeaders;
  if (!extra_headers.empty()) {
    with_encoding.assign(kStreamHeaders);
    with_encoding += extra_headers;
    stream_headers = with_encoding;
  }
  http::SseEventBuffer events(kMaxSseEventBytes);
  providers::SseStreamObserver observer(kMaxSseEventBytes);
  bool begun = false;
  observe::GaugeHold open_stream;  // sluice_open_streams while this relay is live
  // Relayed bytes always end at an event boundary. Content events are counted exactly as
  // SseParser counts them (comments and [DONE] are not); only chunks that may carry a usage
  // object are parsed. Telemetry is stamped once per chunk, and not for comment-only chunks.
  auto observe_chunk = [&](std::string_view ready) {
    const size_t n = observer.observe(ready, ctx.usage);
    ctx.stream_events += static_cast<int64_t>(n);
    telemetry_.on_stream_events(*ctx.trace, n);
  };
  for (;;) {
    auto read_at = Clock::now();
    auto piece = co_await call.read_some();
    ctx.waited_since(read_at);
    if (!piece) {
      if (responder.client_gone()) {
        result.responded = begun;
        co_return result;
      }
      Error err = std::move(piece.error());
      if (!begun) {
        // Cut before the first event: a broken connection is as safe to retry as a 5xx.
        fail(std::move(err), err.code == Errc::upstream_protocol);
        co_return result;
      }
      state.count(outcome_of_error(err));
      verdict.failure();
      std::string_view code =
          err.code == Errc::upstream_timeout ? "upstream_timeout" : "upstream_stream_error";
      spdlog::warn("request {}: stream from {} failed: {}", ctx.request->request_id,
                   runtime.origin.key, err.message);
      std::string event = stream_error_event(
          "The upstream stream failed before it finished: " + err.message, code);
      ctx.trace->stream_error = true;
      responder.note_error(code == "upstream_timeout" ? "upstream_timeout"
                                                      : "upstream_stream_error");
      co_await responder.write_chunk(event);
      // The client's connection is healthy and the chunked body ends cleanly, so it stays
      // usable; only the upstream connection is discarded.
      co_await responder.end_stream();
      result.responded = true;
      co_return result;
    }
    std::string_view bytes = *piece;
    if (!bytes.empty()) {
      // Whole events; the common case (a read of whole events) is the read itself, no copy.
      std::string_view ready = events.push(bytes);
      if (events.too_large()) {
        // An event that never ends (or is too large): the upstream is broken or hostile.
        Error err = make_error(Errc::upstream_protocol,
                               "Upstream " + label + " sent an SSE event larger than " +
                                   std::to_string(kMaxSseEventBytes) + " bytes");
        if (!begun) {
          fail(std::move(err), false);
          co_return result;
        }
        state.count(AttemptOutcome::protocol_error);
        verdict.failure();
        std::string event = stream_error_event(err.message, "upstream_stream_error");
        ctx.trace->stream_error = true;
        responder.note_error("upstream_stream_error");
        co_await responder.write_chunk(event);
        co_await responder.end_stream();
        result.responded = true;
        co_return result;
      }
      if (!ready.empty()) {
        if (!begun) {
          begun = true;
          ctx.succeeded = true;
          responder.add_header("x-sluice-attempts", std::to_string(ctx.attempts));
          if (telemetry_.metrics_on()) open_stream.hold(telemetry_.open_streams);
          if (!co_await responder.begin_stream(status, content_type, stream_headers)) break;
        }
        observe_chunk(ready);
        if (!co_await responder.write_chunk(ready)) break;
      }
    }
    if (call.body_complete()) {
      if (!begun) {
        // A stream that ended before its first event is still the upstream's answer.
        begun = true;
        ctx.succeeded = true;
        responder.add_header("x-sluice-attempts", std::to_string(ctx.attempts));
        if (!co_await responder.begin_stream(status, content_type, stream_headers)) break;
      }
      // A clean end: forward a trailing partial event as is (the upstream chose to end there);
      // it may still complete an event (a last CR that no LF followed).
      if (!events.pending().empty()) {
        observe_chunk(events.pending());
        if (!co_await responder.write_chunk(events.pending())) break;
      }
      call.finish();
      co_await responder.end_stream();
      state.count(AttemptOutcome::success);
      verdict.success();
      result.responded = true;
      co_return result;
    }
  }
  // The client went away mid-stream: not the target's fault.
  verdict.success();
  result.responded = true;
  co_return result;
}

void Gateway::account(ProxyContext& ctx) {
  if (ctx.accounted || !governance_) return;
  ctx.accounted = true;
  const Identity& who = *ctx.who;
  if (ctx.succeeded && governance_->accounts_usage()) {
    // Usage and cost, also for streams cut short: without a usage report the prompt is
    // estimated from the body and the answer from the events relayed (~1 token each). Billed
    // under the model that answered (a fallback's, when one did).
    UsageTokens tokens = ctx.usage.value_or(UsageTokens{
        static_cast<int64_t>(ctx.request->body.size() / 4) + 1, 0,
        std::max<int64_t>(0, ctx.stream_events - 2)});
    std::string_view served = ctx.served_model.empty() ? std::string_view(ctx.parsed.model)
                                                       : std::string_view(ctx.served_model);
    governance_->usage().record(who.key_id, who.tenant, served, tokens,
                                governance_->cost(served, tokens));
  }
  // Real usage replaces the estimate; a request that never got an answer costs nothing; an
  // answer without a usage report keeps its reservation (the conservative choice).
  if (ctx.reservation.active()) {
    std::optional<int64_t> actual;
    if (!ctx.succeeded) {
      actual = 0;
    } else if (ctx.usage) {  // estimates do not replace a reservation
      actual = sat_add(ctx.usage->input, ctx.usage->output);
    }
    ctx.reservation.settle(actual);
  }
}

asio::awaitable<void> Gateway::proxy(Operation op, http::Request& request,
                                     http::Responder& responder, WorkerContext& worker,
                                     const Identity& who, Trace& trace,
                                     canonical::Protocol ingress) {
  ProxyContext ctx;
  ctx.request = &request;
  ctx.responder = &responder;
  ctx.pool = worker.pool;
  ctx.trace = &trace;
  ctx.who = &who;
  ctx.ingress = ingress;
  auto route_at = Clock::now();
  auto route_done = [&] { http::Timing::add_since(request.timing->route_ns, route_at); };
  if (auto r = ingress == canonical::Protocol::openai
                   ? providers::parse_request(op, request.body, ctx.parsed)
                   : decode_client_request(ctx);
      !r) {
    route_done();
    co_await responder.send_error(r.error());
    co_return;
  }
  if (op == Operation::embeddings) ctx.parsed.stream = false;
  if (telemetry_.logging()) trace.model = ctx.parsed.model;  // copied: ctx ends before the log
  trace.stream = ctx.parsed.stream;
  RouteRuntime* primary = runtime_for(router_->match(ctx.parsed.model));
  route_done();
  trace.route = primary;
  // Everything below fills the trace; its attempts and usage are read when the request ends.
  struct TraceAttempts {
    Trace& trace;
    ProxyContext& ctx;
    ~TraceAttempts() {
      trace.attempts = ctx.attempts;
      if (ctx.usage) trace.usage = ctx.usage;
    }
  } trace_attempts{trace, ctx};
  if (primary == nullptr) {
    Error unknown = make_error(
        Errc::model_not_found,
        "The model '" + ctx.parsed.model + "' does not exist or is not routed by this gateway.",
        "model");
    co_await responder.send_error(unknown);
    co_return;
  }
  if (int64_t window = primary->route->context_window;
      window > 0 && ctx.parsed.max_tokens > window) {
    Error too_many = make_error(Errc::bad_request,
                                "max_tokens is too large: " + std::to_string(ctx.parsed.max_tokens) +
                                    ". This model supports at most " + std::to_string(window) +
                                    " completion tokens.",
                                "max_tokens");
    too_many.code_override = "integer_above_max_value";
    co_await responder.send_error(too_many);
    co_return;
  }
  auto auth_at = Clock::now();
  auto auth_done = [&] { http::Timing::add_since(request.timing->auth_ns, auth_at); };
  if (governance_) {
    if (auto allowed = governance_->authorize_model(who, ctx.parsed.model); !allowed) {
      auth_done();
      co_await responder.send_error(allowed.error());
      co_return;
    }
    // The budget first: a request it refuses must not reserve (and drain) shared buckets.
    if (auto budget = governance_->check_budget(who); !budget) {
      auth_done();
      co_await responder.send_error(budget.error());
      co_return;
    }
    int64_t estimate =
        estimate_request_tokens(request.body.size(), ctx.parsed.max_tokens, ctx.parsed.n);
    auto admitted =
        co_await governance_->admit(who, ctx.parsed.model, estimate, responder, worker.redis);
    if (!admitted) {
      auth_done();
      co_await responder.send_error(admitted.error());
      co_return;
    }
    // From here the reservation is settled on every path (refunded if no answer comes).
    // (The executor is fetched first: no temporaries across a co_await.)
    auto executor = co_await asio::this_coro::executor;
    ctx.reservation = Reservation(governance_, std::move(admitted.value()), worker.redis,
                                  std::move(executor));
    auth_done();
  }
  const config::RetryPolicy& policy = primary->route->retry;
  auto now = Clock::now();
  ctx.deadline = now + (policy.deadline.count() > 0 ? policy.deadline
                                                    : primary->route->targets[0].timeouts.total);

  // A client that leaves cancels whatever is in progress: the upstream exchange (its socket
  // is cancelled and the connection discarded, which the upstream sees as a close) or a wait.
  responder.watch_client([&ctx] {
    if (ctx.live_call) ctx.live_call->cancel();
    if (ctx.sleeper) ctx.sleeper->cancel();
  });
  asio::steady_timer sleeper(co_await asio::this_coro::executor);

  // The chain: the route, then its fallbacks (each with its own attempt budget).
  struct Hop {
    RouteRuntime* route;
    std::string model;  // model name sent upstream when the target has none ("" = client's)
  };
  std::vector<Hop> chain{{primary, ""}};
  // A fallback serves another model: the caller's key must be allowed to use it too.
  auto allowed = [&](std::string_view model) {
    return !governance_ || governance_->authorize_model(who, model).ok();
  };
  for (const auto& name : primary->route->fallbacks) {
    if (RouteRuntime* rr = runtime_for(router_->match(name)); rr && rr != primary && allowed(name)) {
      chain.push_back({rr, name});
    }
  }

  std::optional<Error> last_error;
  std::optional<std::chrono::milliseconds> wait_hint;  // upstream's Retry-After...
  const TargetRuntime* hint_from = nullptr;            // ...which binds only that target
  bool free_retry = false;  // the last failure was connection-level (see AttemptResult)
  Millis previous_backoff{0};
  bool done = false;
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
      if (tr.state.config.provider == config::ProviderKind::demo) {
        observe::GaugeHold open_stream;
        if (ctx.parsed.stream && telemetry_.metrics_on()) open_stream.hold(telemetry_.open_streams);
        responder.add_header("x-sluice-attempts", std::to_string(ctx.attempts + 1));
        verdict.success();
        tr.state.count(AttemptOutcome::success);
        UsageTokens demo_usage;
        if (ctx.ingress == canonical::Protocol::openai) {
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
          sleeper.expires_after(wait);
          ctx.sleeper = &sleeper;
          auto slept_at = Clock::now();
          co_await sleeper.async_wait(asio::as_tuple(asio::use_awaitable));
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
      // OpenAI in, OpenAI-compatible out: the fast path (body spliced, events relayed as
      // bytes). Every other pair goes through the canonical model.
      // (Not a ?: of two co_awaits: GCC 12 miscompiles that into a use-after-free.)
      AttemptResult r;
      if (ctx.ingress == canonical::Protocol::openai &&
          tr.state.config.provider == config::ProviderKind::openai) {
        r = co_await attempt(ctx, tr, verdict, chain[hop].model);
      } else {
        r = co_await attempt_translated(ctx, tr, verdict, chain[hop].model);
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
        if (bigger && bigger != &rr && allowed(rr.route->context_fallback)) {
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
  account(ctx);
  if (responder.client_gone()) {
    spdlog::debug("request {}: client disconnected; upstream request cancelled",
                  request.request_id);
    responder.close_after();
    co_return;
  }
  if (!responder.responded()) {
    if (!last_error) {
      last_error = make_error(Errc::unavailable,
                              "No attempt could be made for route '" + primary->route->model + "'");
    }
    responder.add_header("x-sluice-attempts", std::to_string(ctx.attempts));
    co_await responder.send_error(*last_error);
  }
}

}  // namespace sluice::api
