// Pure building blocks of the retry loop, each thread-safe and clock-injectable for tests:
// backoff with jitter, a per-target retry budget, a per-target circuit breaker, and the
// retry-after hint parsing (Retry-After seconds / HTTP-date, x-ratelimit-reset-*).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>

#include "config/config.h"

namespace sluice::routing {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

/// Wait before retry number `retry` (1 = the first retry): min(cap, base * 2^(retry-1)) with
/// the policy's jitter. `previous` is the last wait (decorrelated jitter uses it).
/// `random01` returns a uniform double in [0, 1).
Millis backoff_delay(const config::RetryPolicy& policy, int retry, Millis previous,
                     double random01);

/// Parses a Retry-After value: delta-seconds ("3", "0") or an HTTP-date
/// ("Wed, 21 Oct 2015 07:28:00 GMT", relative to `now_unix_seconds`). nullopt if invalid.
std::optional<Millis> parse_retry_after(std::string_view value, int64_t now_unix_seconds);

/// Parses OpenAI's x-ratelimit-reset-requests / -tokens duration format: "1s", "6m0s",
/// "20ms", "1h2m3.5s", "0.5s". nullopt if invalid.
std::optional<Millis> parse_reset_duration(std::string_view value);

/// A count that many threads add to without sharing a cache line: each thread adds to its
/// own slot (a relaxed add on a line no other worker writes), and the owner takes the total
/// under its own lock. Counting every request of a target in one locked or atomic word made
/// the workers of `threads: auto` bounce that line between cores on each request.
class ShardedCount {
 public:
  void add() { slots_[slot()].n.fetch_add(1, std::memory_order_relaxed); }
  /// The adds since the last take.
  int64_t take() {
    int64_t total = 0;
    for (Slot& s : slots_) total += s.n.exchange(0, std::memory_order_relaxed);
    return total;
  }

 private:
  static constexpr size_t kSlots = 8;
  static size_t slot();  // this thread's, fixed at its first use
  struct alignas(64) Slot {
    std::atomic<int64_t> n{0};
  };
  Slot slots_[kSlots];
};

/// Retries may add at most `ratio` of the target's requests over a rolling `window`
/// (plus `min_retries` per window always). Thread-safe; time passed in for tests.
class RetryBudget {
 public:
  explicit RetryBudget(const config::RetryPolicy& policy);
  /// Counts a first attempt (not a retry). Lock-free within a half-window bucket.
  void on_request(Clock::time_point now) {
    if (now.time_since_epoch().count() < fast_until_.load(std::memory_order_relaxed)) {
      pending_.add();
      return;
    }
    on_request_slow(now);
  }
  /// True (and counts it) if one more retry fits the budget.
  bool try_spend_retry(Clock::time_point now);

 private:
  void on_request_slow(Clock::time_point now);
  // Under mu_: folds the pending requests into the current bucket, then rolls the buckets.
  void roll(Clock::time_point now);
  // Requests counted since the last roll (they belong to the current bucket: the lock-free
  // path is taken only until the bucket ends). A request racing a roll may land in the next
  // bucket: the budget is approximate by half a window anyway.
  ShardedCount pending_;
  std::atomic<Clock::rep> fast_until_{0};  // end of the current bucket
  double ratio_;
  Millis window_;
  int min_retries_;
  std::mutex mu_;
  // Two half-window buckets approximate the rolling window: cheap and smooth enough.
  Clock::time_point bucket_start_{};
  int64_t requests_[2] = {0, 0};
  int64_t retries_[2] = {0, 0};
};

enum class BreakerState { closed, open, half_open };
std::string_view to_string(BreakerState s);

/// closed → open when, over the rolling window, requests >= min_requests and
/// failures/requests > failure_ratio; open → half-open after cooldown (on the next allow());
/// half-open admits half_open_probes concurrent probes: a success closes (window reset), a
/// failure re-opens. Thread-safe.
class CircuitBreaker {
 public:
  explicit CircuitBreaker(const config::BreakerConfig& config);
  /// May a request go to this target now? In half-open, true reserves a probe slot that the
  /// caller must settle with on_success/on_failure (or on_abandon if it never ran).
  bool allow(Clock::time_point now) {
    if (!config_.enabled || closed_.load(std::memory_order_relaxed)) return true;
    return allow_slow(now);
  }
  /// Lock-free while closed, within a half-window bucket.
  void on_success(Clock::time_point now) {
    if (now.time_since_epoch().count() < fast_until_.load(std::memory_order_relaxed)) {
      pending_successes_.add();
      return;
    }
    on_success_slow(now);
  }
  void on_failure(Clock::time_point now);
  void on_abandon();
  BreakerState state(Clock::time_point now) const;  // reports half_open once cooldown passed
  /// Transitions so far (closed→open, open→half_open, half_open→closed, half_open→open).
  uint64_t transitions() const { return transitions_.load(std::memory_order_relaxed); }
  double failure_ratio(Clock::time_point now) const;  // over the current window

 private:
  bool allow_slow(Clock::time_point now);
  void on_success_slow(Clock::time_point now);
  // Under mu_: folds the pending successes into the current bucket, rolls the buckets and
  // renews the lock-free window.
  void roll(Clock::time_point now) const;
  void set_state(BreakerState s);
  config::BreakerConfig config_;
  mutable std::mutex mu_;
  BreakerState state_ = BreakerState::closed;
  std::atomic<bool> closed_{true};  // state_ == closed, for allow() without the lock
  // While closed: successes since the last roll (the current bucket's), and the end of that
  // bucket; 0 when not closed (every success takes the lock).
  mutable ShardedCount pending_successes_;
  mutable std::atomic<Clock::rep> fast_until_{0};
  Clock::time_point opened_at_{};
  int probes_in_flight_ = 0;
  mutable Clock::time_point bucket_start_{};
  mutable int64_t requests_[2] = {0, 0};
  mutable int64_t failures_[2] = {0, 0};
  std::atomic<uint64_t> transitions_{0};
};

}  // namespace sluice::routing
