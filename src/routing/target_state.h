// Live state of one upstream target, shared by every worker for the lifetime of a config:
// breaker, retry budget, in-flight count, latency EWMA, health and attempt counters.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "config/config.h"
#include "routing/resilience.h"

namespace sluice::routing {

/// Outcome of one upstream attempt, as counted per target.
enum class AttemptOutcome : int {
  success = 0,       // answered (2xx/3xx, or a 4xx that is the client's fault)
  upstream_error,    // 5xx / 429 / 408 / 409
  connect_error,     // refused, reset, DNS, TLS, pool limit
  timeout,           // any of the four timeouts
  protocol_error,    // malformed HTTP, cut mid-response
  rejected,          // not attempted: breaker open, concurrency limit, retry budget
  kCount
};
std::string_view to_string(AttemptOutcome o);

class TargetState {
 public:
  TargetState(const config::TargetConfig& target, const config::RouteConfig& route)
      : config(target), route(route), breaker(target.breaker), budget(route.retry) {}

  const config::TargetConfig& config;
  const config::RouteConfig& route;
  CircuitBreaker breaker;
  RetryBudget budget;
  std::atomic<int> in_flight{0};
  std::atomic<bool> healthy{true};  // false while active health checks fail
  std::atomic<uint64_t> ewma_ttfb_us{0};  // 0 = no sample yet
  std::array<std::atomic<uint64_t>, static_cast<size_t>(AttemptOutcome::kCount)> outcomes{};
  std::atomic<uint64_t> retries{0};

  void count(AttemptOutcome o) {
    outcomes[static_cast<size_t>(o)].fetch_add(1, std::memory_order_relaxed);
  }

  /// Folds a time-to-first-byte sample into the EWMA (weight 1/8), lock-free.
  void observe_ttfb(uint64_t micros) {
    uint64_t old = ewma_ttfb_us.load(std::memory_order_relaxed);
    uint64_t next;
    do {
      next = old == 0 ? micros : old - old / 8 + micros / 8;
    } while (!ewma_ttfb_us.compare_exchange_weak(old, next, std::memory_order_relaxed));
  }
};

}  // namespace sluice::routing
