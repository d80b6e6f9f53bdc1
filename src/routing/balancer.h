// Target choice for one attempt: weighted round robin (smooth, nginx-style), least in-flight,
// or latency-aware power-of-two-choices over the TTFB EWMA. Targets already tried in this
// request, open breakers and unhealthy targets are skipped (h2o's `tried` idea); when every
// target was tried, tried ones become eligible again.
#pragma once

#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "config/config.h"
#include "routing/target_state.h"

namespace sluice::routing {

class Balancer {
 public:
  Balancer(config::BalancerKind kind, std::span<TargetState* const> targets);

  /// Index of the target for the next attempt, or nullopt when none is eligible (all open or
  /// unhealthy). `tried[i]` marks targets used earlier in this request. Thread-safe. In a
  /// half-open breaker the returned target holds a probe slot (settle it via the breaker).
  std::optional<size_t> pick(const std::vector<bool>& tried, Clock::time_point now);

 private:
  std::optional<size_t> choose(const std::vector<bool>& eligible);
  config::BalancerKind kind_;
  std::vector<TargetState*> targets_;
  std::mutex mu_;
  std::vector<int64_t> current_;  // smooth WRR current weights
  uint64_t rng_state_ = 0x9E3779B97F4A7C15ull;
};

}  // namespace sluice::routing
