// What one client request carries through its attempts (shared by the same-protocol relay in
// proxy.cc and the translated path in translate.cc). Private to api/.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "api/gateway.h"
#include "canonical/canonical.h"

namespace sluice::api {

using Clock = std::chrono::steady_clock;

struct Gateway::AttemptResult {
  bool responded = false;     // an answer (success, stream, pass-through) reached the client
  bool retryable = false;     // nothing reached the client and another attempt may help
  bool context_length = false;
  bool free_retry = false;    // connection-level failure: retrying adds no upstream load, so
                              // it does not spend the retry budget
  Error error;                // what to tell the client if no attempt succeeds
};

/// Everything one client request carries through its attempts.
struct ProxyContext {
  providers::ParsedRequest parsed;
  http::Request* request = nullptr;
  http::Responder* responder = nullptr;
  upstream::Pool* pool = nullptr;
  Clock::time_point deadline;
  int attempts = 0;
  // Cancellation when the client leaves: the live upstream call and the backoff timer.
  upstream::Call* live_call = nullptr;
  asio::steady_timer* sleeper = nullptr;
  // Governance: the token reservation (settled or refunded on every path by its destructor)
  // and what the upstream says was used.
  Reservation reservation;
  std::string served_model;  // a fallback's model when one answered ("" = the client's)
  const Identity* who = nullptr;
  bool accounted = false;    // usage recorded and the reservation settled (account())
  bool succeeded = false;
  std::optional<UsageTokens> usage;  // as the upstream reported it
  int64_t stream_events = 0;         // content events relayed (an estimate when no usage)
  Trace* trace = nullptr;
  // The client's protocol, and the canonical request: decoded up front for Anthropic and Gemini
  // clients, on the first translated attempt for OpenAI clients (never on the fast path).
  canonical::Protocol ingress = canonical::Protocol::openai;
  std::optional<canonical::Request> canon;

  /// Adds the time since `since` to the upstream phase (time not charged as overhead).
  void waited_since(Clock::time_point since) const {
    http::Timing::add_since(request->timing->upstream_ns, since);
  }
};

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

}  // namespace sluice::api
