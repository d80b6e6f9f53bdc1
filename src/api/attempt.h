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

}  // namespace sluice::api
