// In-process rate limiting with GCRA (generic cell rate algorithm): smooth, no window-boundary
// bursts, O(1) state per bucket (its theoretical arrival time). Several charges (requests and
// tokens, per key / tenant / model) are decided all-or-nothing under one call.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::governance {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

/// One charge against one bucket: `cost` units of a limit of `limit` units per `period`
/// (burst: a whole period's worth may be spent at once, then the rate is steady).
struct Charge {
  std::string key;   // bucket name, e.g. "key:abc:rpm"
  int64_t cost = 1;
  int64_t limit = 0;
  Millis period{60'000};
};

struct Decision {
  bool allowed = true;
  int64_t limit = 0;
  int64_t remaining = 0;     // units still available right now after this charge
  Millis reset_after{0};     // until the bucket is full again
  Millis retry_after{0};     // when rejected: wait this long before the same charge fits
};

class LocalRateLimiter {
 public:
  /// Applies every charge or none: if any would exceed its limit, nothing is consumed and the
  /// decisions say which were rejected (allowed = false) and when to retry. Thread-safe.
  std::vector<Decision> consume_all(std::span<const Charge> charges, Clock::time_point now);

  /// Corrects a bucket after the fact (token reconciliation): negative `delta` gives units
  /// back, positive charges extra without ever rejecting. Thread-safe.
  void adjust(const Charge& bucket, int64_t delta, Clock::time_point now);

  /// The bucket's state without charging (for headers).
  Decision peek(const Charge& bucket, Clock::time_point now);

  /// Drops buckets idle for longer than their period (memory bound). Call now and then.
  void sweep(Clock::time_point now);

  size_t bucket_count();

 private:
  struct Bucket {
    Clock::time_point tat{};  // theoretical arrival time
    Millis period{0};
  };
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Bucket> buckets;
  };
  Shard& shard_for(std::string_view key);
  Shard shards_[kShards];
};

}  // namespace sluice::governance
