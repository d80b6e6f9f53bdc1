// Balancer implementations.
#include "routing/balancer.h"

#include <algorithm>

namespace sluice::routing {

std::string_view to_string(AttemptOutcome o) {
  switch (o) {
    case AttemptOutcome::success: return "success";
    case AttemptOutcome::upstream_error: return "upstream_error";
    case AttemptOutcome::connect_error: return "connect_error";
    case AttemptOutcome::timeout: return "timeout";
    case AttemptOutcome::protocol_error: return "protocol_error";
    case AttemptOutcome::rejected: return "rejected";
    case AttemptOutcome::kCount: break;
  }
  return "unknown";
}

Balancer::Balancer(config::BalancerKind kind, std::span<TargetState* const> targets)
    : kind_(kind), targets_(targets.begin(), targets.end()), current_(targets.size(), 0) {}

std::optional<size_t> Balancer::choose(const std::vector<bool>& eligible) {
  size_t n = targets_.size();
  switch (kind_) {
    case config::BalancerKind::weighted_round_robin: {
      // Smooth WRR: add each weight to its current value, take the largest, subtract total.
      int64_t total = 0;
      std::optional<size_t> best;
      for (size_t i = 0; i < n; ++i) {
        if (!eligible[i]) continue;
        int64_t w = targets_[i]->config.weight;
        current_[i] += w;
        total += w;
        if (!best || current_[i] > current_[*best]) best = i;
      }
      if (best) current_[*best] -= total;
      return best;
    }
    case config::BalancerKind::least_in_flight: {
      std::optional<size_t> best;
      int best_load = 0;
      // Start the scan at a rotating offset so ties spread instead of piling on target 0.
      size_t offset = static_cast<size_t>(rng_state_++ % n);
      for (size_t k = 0; k < n; ++k) {
        size_t i = (k + offset) % n;
        if (!eligible[i]) continue;
        int load = targets_[i]->in_flight.load(std::memory_order_relaxed);
        // Weight scales capacity: compare load/weight without division.
        if (!best || static_cast<int64_t>(load) * targets_[*best]->config.weight <
                         static_cast<int64_t>(best_load) * targets_[i]->config.weight) {
          best = i;
          best_load = load;
        }
      }
      return best;
    }
    case config::BalancerKind::latency: {
      std::vector<size_t> pool;
      for (size_t i = 0; i < n; ++i) {
        if (eligible[i]) pool.push_back(i);
      }
      if (pool.empty()) return std::nullopt;
      if (pool.size() == 1) return pool[0];
      // xorshift64: cheap, and the lock is held anyway.
      auto next = [this] {
        rng_state_ ^= rng_state_ << 13;
        rng_state_ ^= rng_state_ >> 7;
        rng_state_ ^= rng_state_ << 17;
        return rng_state_;
      };
      size_t a = pool[next() % pool.size()];
      size_t b = pool[next() % pool.size()];
      if (a == b) b = pool[(std::find(pool.begin(), pool.end(), a) - pool.begin() + 1) % pool.size()];
      auto cost = [this](size_t i) {
        // Unmeasured targets look fast so they get sampled; in-flight work adds queueing.
        double ttfb = static_cast<double>(targets_[i]->ewma_ttfb_us.load());
        double inflight = targets_[i]->in_flight.load();
        return (ttfb + 1.0) * (inflight + 1.0) / targets_[i]->config.weight;
      };
      return cost(a) <= cost(b) ? a : b;
    }
  }
  return std::nullopt;
}

std::optional<size_t> Balancer::pick(const std::vector<bool>& tried, Clock::time_point now) {
  size_t n = targets_.size();
  if (n == 1) {
    // One target (the common case): no choice to make, no shared lock to take.
    TargetState& t = *targets_[0];
    if (!t.healthy.load(std::memory_order_relaxed)) return std::nullopt;
    if (!t.breaker.allow(now)) return std::nullopt;
    return 0;
  }
  auto usable = [&](size_t i) {
    TargetState& t = *targets_[i];
    return t.healthy.load(std::memory_order_relaxed) && t.breaker.state(now) != BreakerState::open;
  };
  std::vector<bool> eligible(n, false);
  bool any_untried = false;
  for (size_t i = 0; i < n; ++i) {
    eligible[i] = !tried[i] && usable(i);
    any_untried = any_untried || eligible[i];
  }
  // Every usable target was tried already: a retry may go back to one of them.
  auto fall_back = [&] {
    for (size_t i = 0; i < n; ++i) eligible[i] = tried[i] && usable(i);
  };
  bool fell_back = !any_untried;
  if (fell_back) fall_back();
  std::lock_guard lock(mu_);
  // Each round either returns or drops one target; the fall-back adds at most n more rounds.
  for (size_t round = 0; round <= 2 * n; ++round) {
    auto choice = choose(eligible);
    if (!choice) {
      if (fell_back) return std::nullopt;
      // The untried ones were all half-open with their probe slots taken: as good as tried.
      fell_back = true;
      fall_back();
      continue;
    }
    // allow() reserves a half-open probe; a target whose probes are all out is skipped.
    if (targets_[*choice]->breaker.allow(now)) return choice;
    eligible[*choice] = false;
  }
  return std::nullopt;
}

}  // namespace sluice::routing
