// GCRA rate limiter: each bucket keeps only its theoretical arrival time (TAT). A charge of
// `cost` units moves the TAT forward by cost * T (T = period / limit, the emission interval); it
// fits while the TAT stays within one period of now (burst tolerance = a whole period). All
// arithmetic is in integer nanoseconds with 128-bit intermediates, so no overflow or drift.
#include "governance/rate_limiter.h"

#include <algorithm>
#include <functional>
#include <limits>

namespace sluice::governance {
namespace {

using Nanos = std::chrono::nanoseconds;

// Spans are clamped here so that now + span never overflows a steady_clock time_point
// (about 73 years: far beyond any period, and a debt that long means "blocked" anyway).
constexpr int64_t kMaxSpanNs = std::numeric_limits<int64_t>::max() / 4;

int64_t period_ns(Millis period) {
  return std::max<int64_t>(std::chrono::duration_cast<Nanos>(period).count(), 1);
}

int64_t clamp_span(__int128 v) {
  if (v > kMaxSpanNs) return kMaxSpanNs;
  if (v < -kMaxSpanNs) return -kMaxSpanNs;
  return static_cast<int64_t>(v);
}

// units * T in nanoseconds, rounded down (so exactly `limit` units fit in one period).
int64_t units_to_ns(int64_t units, int64_t period, int64_t limit) {
  return clamp_span(static_cast<__int128>(units) * period / limit);
}

// Whole units that still fit when the bucket is `used_ns` into its period.
int64_t remaining_units(int64_t used_ns, int64_t period, int64_t limit) {
  int64_t free_ns = period - std::max<int64_t>(used_ns, 0);
  if (free_ns <= 0) return 0;
  return std::min<int64_t>(clamp_span(static_cast<__int128>(free_ns) * limit / period), limit);
}

Millis ceil_ms(int64_t ns) {
  if (ns <= 0) return Millis{0};
  return std::chrono::ceil<Millis>(Nanos{ns});
}

int64_t ns_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<Nanos>(to - from).count();
}

// The decision for a bucket whose (possibly tentative) TAT is `tat`, charged nothing more.
Decision state_of(Clock::time_point tat, const Charge& c, Clock::time_point now) {
  int64_t period = period_ns(c.period);
  int64_t used = std::max<int64_t>(ns_between(now, tat), 0);
  Decision d;
  d.allowed = true;
  d.limit = c.limit;
  d.remaining = remaining_units(used, period, c.limit);
  d.reset_after = ceil_ms(used);
  return d;
}

}  // namespace

LocalRateLimiter::Shard& LocalRateLimiter::shard_for(std::string_view key) {
  return shards_[std::hash<std::string_view>{}(key) % kShards];
}

std::vector<Decision> LocalRateLimiter::consume_all(std::span<const Charge> charges,
                                                    Clock::time_point now) {
  std::vector<Decision> decisions(charges.size());

  // Lock every shard touched, in ascending index order (deadlock-free across callers).
  std::vector<size_t> shard_ids;
  shard_ids.reserve(charges.size());
  for (const Charge& c : charges) {
    if (c.limit > 0) shard_ids.push_back(static_cast<size_t>(&shard_for(c.key) - shards_));
  }
  std::sort(shard_ids.begin(), shard_ids.end());
  shard_ids.erase(std::unique(shard_ids.begin(), shard_ids.end()), shard_ids.end());
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(shard_ids.size());
  for (size_t id : shard_ids) locks.emplace_back(shards_[id].mu);

  // Tentative TATs; a bucket charged twice in one call sees its earlier charge.
  std::vector<Clock::time_point> old_tats(charges.size(), now);
  std::vector<Clock::time_point> new_tats(charges.size(), now);
  bool all_allowed = true;
  for (size_t i = 0; i < charges.size(); ++i) {
    const Charge& c = charges[i];
    Decision& d = decisions[i];
    if (c.limit <= 0) {  // no limit: always allowed, no state
      d = Decision{};
      continue;
    }
    Clock::time_point tat = now;
    bool seen = false;
    for (size_t j = i; j-- > 0;) {
      if (charges[j].limit > 0 && charges[j].key == c.key) {
        tat = new_tats[j];
        seen = true;
        break;
      }
    }
    if (!seen) {
      Shard& shard = shard_for(c.key);
      auto it = shard.buckets.find(c.key);
      if (it != shard.buckets.end()) tat = it->second.tat;
    }
    tat = std::max(tat, now);
    old_tats[i] = tat;

    int64_t period = period_ns(c.period);
    int64_t cost = std::max<int64_t>(c.cost, 0);
    if (cost > c.limit) {
      // Can never fit, however long the caller waits: reject, and suggest a full period
      // (the caller should not retry the same charge; a finite value keeps headers sane).
      d.allowed = false;
      d.limit = c.limit;
      d.remaining = remaining_units(ns_between(now, tat), period, c.limit);
      d.reset_after = ceil_ms(ns_between(now, tat));
      d.retry_after = c.period;
      new_tats[i] = tat;
      all_allowed = false;
      continue;
    }
    Clock::time_point new_tat = tat + Nanos{units_to_ns(cost, period, c.limit)};
    int64_t used = ns_between(now, new_tat);
    if (used > period) {
      d.allowed = false;
      d.limit = c.limit;
      d.remaining = remaining_units(ns_between(now, tat), period, c.limit);
      d.reset_after = ceil_ms(ns_between(now, tat));
      d.retry_after = ceil_ms(used - period);
      new_tats[i] = tat;
      all_allowed = false;
      continue;
    }
    new_tats[i] = new_tat;
    d.allowed = true;
    d.limit = c.limit;
    d.remaining = remaining_units(used, period, c.limit);
    d.reset_after = ceil_ms(used);
  }

  if (!all_allowed) {
    // Nothing is consumed: the charges that would have fit report the untouched state.
    for (size_t i = 0; i < charges.size(); ++i) {
      const Charge& c = charges[i];
      if (c.limit <= 0 || !decisions[i].allowed) continue;
      decisions[i] = state_of(old_tats[i], c, now);
    }
    return decisions;
  }
  for (size_t i = 0; i < charges.size(); ++i) {
    const Charge& c = charges[i];
    if (c.limit <= 0) continue;
    Bucket& b = shard_for(c.key).buckets[c.key];
    b.tat = new_tats[i];
    b.period = c.period;
  }
  return decisions;
}

void LocalRateLimiter::adjust(const Charge& bucket, int64_t delta, Clock::time_point now) {
  if (bucket.limit <= 0 || delta == 0) return;
  Shard& shard = shard_for(bucket.key);
  std::lock_guard lock(shard.mu);
  int64_t period = period_ns(bucket.period);
  auto it = shard.buckets.find(bucket.key);
  if (delta > 0) {
    Bucket& b = it != shard.buckets.end() ? it->second : shard.buckets[bucket.key];
    // One request's extra charge can fill the bucket, never lock it beyond one period: a
    // reconciliation with an absurd figure must not deny the bucket's users for years.
    int64_t debt = std::min<int64_t>(std::max<int64_t>(ns_between(now, b.tat), 0) +
                                         units_to_ns(delta, period, bucket.limit),
                                     std::min<int64_t>(kMaxSpanNs, period));
    b.tat = now + Nanos{debt};
    b.period = bucket.period;
    return;
  }
  if (it == shard.buckets.end()) return;  // nothing to give back: the bucket is already full
  // Refund, but never below "full" (a TAT before now would carry extra burst).
  Bucket& b = it->second;
  int64_t back = delta == std::numeric_limits<int64_t>::min() ? kMaxSpanNs : -delta;
  Clock::time_point refunded = b.tat - Nanos{units_to_ns(back, period, bucket.limit)};
  b.tat = std::max(refunded, now);
}

Decision LocalRateLimiter::peek(const Charge& bucket, Clock::time_point now) {
  if (bucket.limit <= 0) return Decision{};
  Shard& shard = shard_for(bucket.key);
  std::lock_guard lock(shard.mu);
  auto it = shard.buckets.find(bucket.key);
  Clock::time_point tat = it != shard.buckets.end() ? it->second.tat : now;
  return state_of(std::max(tat, now), bucket, now);
}

void LocalRateLimiter::sweep(Clock::time_point now) {
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    std::erase_if(shard.buckets,
                  [&](const auto& kv) { return kv.second.tat + kv.second.period < now; });
  }
}

size_t LocalRateLimiter::bucket_count() {
  size_t n = 0;
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    n += shard.buckets.size();
  }
  return n;
}

}  // namespace sluice::governance
