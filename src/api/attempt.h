// Pieces shared by the dispatcher's attempt loop and its attempts (dispatcher.cc, proxy.cc,
// translate.cc, demo.cc). Private to api/.
#pragma once

#include <vector>

#include "api/dispatcher.h"
#include "canonical/canonical.h"
#include "routing/target_state.h"

namespace sluice::api {

inline UsageTokens usage_tokens(const canonical::Usage& u) {
  return UsageTokens{u.prompt_total(), u.cache_read, u.output};
}

/// The attempt outcome an error counts as (sluice_upstream_attempts_total{outcome}).
inline routing::AttemptOutcome outcome_of_error(const Error& e) {
  using routing::AttemptOutcome;
  switch (e.code) {
    case Errc::upstream_timeout: return AttemptOutcome::timeout;
    case Errc::upstream_connect:
    case Errc::unavailable: return AttemptOutcome::connect_error;
    case Errc::upstream_protocol:
    case Errc::internal: return AttemptOutcome::protocol_error;
    default: return AttemptOutcome::upstream_error;
  }
}

/// The breaker's verdict on one picked target, given exactly once on every path: the
/// half-open probe slot pick() may have reserved is released however the attempt ends (an
/// early return, the client leaving, an exception).
class BreakerVerdict {
 public:
  explicit BreakerVerdict(routing::TargetState& state) : state_(state) {}
  BreakerVerdict(const BreakerVerdict&) = delete;
  BreakerVerdict& operator=(const BreakerVerdict&) = delete;
  ~BreakerVerdict() { abandon(); }
  void success() {
    if (take()) state_.breaker.on_success(Clock::now());
  }
  void failure() {
    if (take()) state_.breaker.on_failure(Clock::now());
  }
  void abandon() {
    if (take()) state_.breaker.on_abandon();
  }

 private:
  bool take() {
    bool first = !settled_;
    settled_ = true;
    return first;
  }
  routing::TargetState& state_;
  bool settled_ = false;
};

/// Links an attempt's upstream call to its request while it lives, so that a client that
/// leaves cancels it (RequestContext::live_call).
class LiveCall {
 public:
  LiveCall(RequestContext& ctx, upstream::Call& call) : ctx_(ctx) { ctx.live_call = &call; }
  ~LiveCall() { ctx_.live_call = nullptr; }
  LiveCall(const LiveCall&) = delete;
  LiveCall& operator=(const LiveCall&) = delete;

 private:
  RequestContext& ctx_;
};

/// Records a failed attempt in `result` and gives the breaker its verdict: a client that left
/// (or cancelled the call) is nobody's fault; this worker's own connection cap is a local
/// limit, retried elsewhere; anything else counts against the target and is retryable if the
/// request never left, if the failure class allows it (`after_send_ok`), or if the route
/// retries timeouts.
inline void fail_attempt(AttemptResult& result, Error e, bool after_send_ok,
                         const upstream::Call& call, const http::Responder& responder,
                         routing::TargetState& state, BreakerVerdict& verdict) {
  using routing::AttemptOutcome;
  result.error = std::move(e);
  if (responder.client_gone() || call.cancelled()) {
    verdict.abandon();
    return;
  }
  if (call.local_limit()) {
    state.count(AttemptOutcome::rejected);
    verdict.abandon();
    result.retryable = true;
    return;
  }
  state.count(outcome_of_error(result.error));
  verdict.failure();
  result.retryable =
      !call.request_sent() || after_send_ok || state.route.retry.retry_on_timeout;
}

}  // namespace sluice::api
