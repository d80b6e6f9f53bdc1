// Unit tests for the balancer's least_in_flight and latency (power-of-two-choices over the TTFB
// EWMA) policies: the load / cost they compare, weights, skipping tried, unhealthy and open
// targets, falling back to tried ones, half-open probe slots, and the single-target shortcut.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "config/config.h"
#include "routing/balancer.h"

namespace sluice::routing {
namespace {

using config::BalancerKind;

const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(1);

// One route's targets (configs built in code) with their live state and a balancer of `kind`.
struct Targets {
  Targets(BalancerKind kind, std::vector<uint32_t> weights) {
    route.balancer = kind;
    for (uint32_t w : weights) {
      config::TargetConfig& t = configs.emplace_back();  // deque: addresses stay put
      t.weight = w;
      t.breaker.min_requests = 1;
      t.breaker.failure_ratio = 0.5;
      t.breaker.cooldown = Millis(1'000);
      t.breaker.half_open_probes = 1;
    }
    for (const auto& t : configs) states.push_back(std::make_unique<TargetState>(t, route));
    for (auto& s : states) raw.push_back(s.get());
    balancer = std::make_unique<Balancer>(kind, raw);
  }
  std::optional<size_t> pick(Clock::time_point now = kT0) {
    return balancer->pick(std::vector<bool>(raw.size(), false), now);
  }
  std::optional<size_t> pick(const std::vector<bool>& tried, Clock::time_point now = kT0) {
    return balancer->pick(tried, now);
  }
  void set_in_flight(const std::vector<int>& loads) {
    for (size_t i = 0; i < loads.size(); ++i) states[i]->in_flight = loads[i];
  }
  void set_ttfb(const std::vector<uint64_t>& micros) {
    for (size_t i = 0; i < micros.size(); ++i) states[i]->ewma_ttfb_us = micros[i];
  }
  // One failure with min_requests 1 opens the breaker at kT0 (half-open from kT0 + 1 s).
  void open_breaker(size_t i) {
    states[i]->breaker.on_failure(kT0);
    ASSERT_EQ(states[i]->breaker.state(kT0), BreakerState::open);
  }
  std::map<size_t, int> count(int picks, Clock::time_point now = kT0) {
    std::map<size_t, int> counts;
    for (int i = 0; i < picks; ++i) {
      auto p = pick(now);
      counts[p ? *p : SIZE_MAX]++;
    }
    return counts;
  }

  config::RouteConfig route;
  std::deque<config::TargetConfig> configs;
  std::vector<std::unique_ptr<TargetState>> states;
  std::vector<TargetState*> raw;
  std::unique_ptr<Balancer> balancer;
};

// ---------------------------------------------------------------------------------------------
// least_in_flight

TEST(LeastInFlight, PicksTheTargetWithTheFewestInFlight) {
  Targets t(BalancerKind::least_in_flight, {1, 1, 1});
  t.set_in_flight({5, 1, 3});
  // The scan starts at a rotating offset; the answer must not depend on it.
  for (int i = 0; i < 30; ++i) EXPECT_EQ(t.pick(), 1u) << "pick " << i;
  t.set_in_flight({0, 1, 3});
  for (int i = 0; i < 30; ++i) EXPECT_EQ(t.pick(), 0u) << "pick " << i;
  t.set_in_flight({4, 4, 2});
  for (int i = 0; i < 30; ++i) EXPECT_EQ(t.pick(), 2u) << "pick " << i;
}

TEST(LeastInFlight, ComparesLoadPerUnitOfWeight) {
  Targets t(BalancerKind::least_in_flight, {4, 1});
  // 6 in flight on weight 4 (1.5 per unit) beats 2 on weight 1 (2 per unit), though 6 > 2.
  t.set_in_flight({6, 2});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(t.pick(), 0u);
  // 9 on weight 4 (2.25 per unit) loses to 2 on weight 1.
  t.set_in_flight({9, 2});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(t.pick(), 1u);
}

TEST(LeastInFlight, SpreadsTiesEvenlyInsteadOfPilingOnTheFirstTarget) {
  Targets t(BalancerKind::least_in_flight, {1, 1, 1});
  auto counts = t.count(300);  // all idle: every pick is a three-way tie
  EXPECT_EQ(counts[0], 100);
  EXPECT_EQ(counts[1], 100);
  EXPECT_EQ(counts[2], 100);
}

TEST(LeastInFlight, SkipsTriedTargets) {
  Targets t(BalancerKind::least_in_flight, {1, 1, 1});
  t.set_in_flight({0, 7, 3});
  for (int i = 0; i < 10; ++i) EXPECT_EQ(t.pick({true, false, false}), 2u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(t.pick({true, false, true}), 1u);
}

TEST(LeastInFlight, SkipsUnhealthyTargets) {
  Targets t(BalancerKind::least_in_flight, {1, 1});
  t.set_in_flight({0, 7});
  t.states[0]->healthy = false;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(t.pick(), 1u);
}

TEST(LeastInFlight, SkipsTargetsWithAnOpenBreaker) {
  Targets t(BalancerKind::least_in_flight, {1, 1});
  t.set_in_flight({0, 7});
  t.open_breaker(0);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(t.pick(kT0 + Millis(999)), 1u);
}

TEST(LeastInFlight, FallsBackToTriedTargetsWhenEveryUsableOneWasTried) {
  Targets t(BalancerKind::least_in_flight, {1, 1, 1});
  t.set_in_flight({3, 1, 0});
  t.states[2]->healthy = false;  // the idlest target is out: never chosen, tried or not
  // 0 and 1 were tried and 2 is unusable: the least loaded tried one is eligible again.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(t.pick({true, true, false}), 1u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(t.pick({true, true, true}), 1u);
}

TEST(LeastInFlight, AnOpenUntriedTargetDoesNotBlockTheFallbackToTriedOnes) {
  Targets t(BalancerKind::least_in_flight, {1, 1});
  t.set_in_flight({0, 4});
  t.open_breaker(0);
  // 0 is untried but open, so every usable target (just 1) was tried: 1 again, not none.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(t.pick({false, true}, kT0 + Millis(1)), 1u);
}

TEST(LeastInFlight, AHalfOpenUntriedTargetWithoutAProbeSlotDoesNotBlockTheFallback) {
  Targets t(BalancerKind::least_in_flight, {1, 1});
  t.set_in_flight({0, 4});
  t.open_breaker(0);
  auto half_open = kT0 + Millis(1'000);
  EXPECT_EQ(t.pick(half_open), 0u);  // another request holds the only probe slot
  // 0 is untried but cannot take this request: the retry goes back to tried 1, not nowhere.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(t.pick({false, true}, half_open), 1u);
}

TEST(LeastInFlight, ReportsNoneWhenNoTargetIsUsable) {
  Targets t(BalancerKind::least_in_flight, {1, 1, 1});
  t.states[0]->healthy = false;
  t.open_breaker(1);
  t.states[2]->healthy = false;
  EXPECT_EQ(t.pick(), std::nullopt);
  EXPECT_EQ(t.pick({true, true, true}), std::nullopt);
}

TEST(LeastInFlight, AHalfOpenTargetTakesOneProbeThenIsSkippedUntilSettled) {
  Targets t(BalancerKind::least_in_flight, {1, 1});
  t.set_in_flight({0, 9});
  t.open_breaker(0);
  auto half_open = kT0 + Millis(1'000);
  ASSERT_EQ(t.states[0]->breaker.state(half_open), BreakerState::half_open);
  EXPECT_EQ(t.pick(half_open), 0u);  // the idle half-open target takes the one probe slot
  EXPECT_EQ(t.states[0]->breaker.state(half_open), BreakerState::half_open);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(t.pick(half_open), 1u) << "the probe slot is taken; pick " << i;
  }
  t.states[0]->breaker.on_success(half_open);  // the probe succeeded: closed again
  EXPECT_EQ(t.states[0]->breaker.state(half_open), BreakerState::closed);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(t.pick(half_open), 0u);
}

TEST(LeastInFlight, AnAbandonedProbeFreesTheSlotForTheNextPick) {
  Targets t(BalancerKind::least_in_flight, {1, 1});
  t.set_in_flight({0, 9});
  t.open_breaker(0);
  auto half_open = kT0 + Millis(1'000);
  EXPECT_EQ(t.pick(half_open), 0u);
  EXPECT_EQ(t.pick(half_open), 1u);
  t.states[0]->breaker.on_abandon();
  EXPECT_EQ(t.pick(half_open), 0u);
}

TEST(LeastInFlight, ReportsNoneWhenTheOnlyUsableTargetsProbeIsTaken) {
  Targets t(BalancerKind::least_in_flight, {1, 1});
  t.states[1]->healthy = false;
  t.open_breaker(0);
  auto half_open = kT0 + Millis(1'000);
  EXPECT_EQ(t.pick(half_open), 0u);
  EXPECT_EQ(t.pick(half_open), std::nullopt);
}

TEST(LeastInFlight, HonoursSeveralHalfOpenProbes) {
  Targets t(BalancerKind::least_in_flight, {1, 1});
  t.configs[0].breaker.half_open_probes = 3;
  t.states[0] = std::make_unique<TargetState>(t.configs[0], t.route);
  t.raw[0] = t.states[0].get();
  t.balancer = std::make_unique<Balancer>(BalancerKind::least_in_flight, t.raw);
  t.set_in_flight({0, 9});
  t.open_breaker(0);
  auto half_open = kT0 + Millis(1'000);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(t.pick(half_open), 0u) << "probe " << i;
  EXPECT_EQ(t.pick(half_open), 1u);
}

TEST(LeastInFlight, SingleTargetShortcutRespectsHealthAndTheBreaker) {
  Targets t(BalancerKind::least_in_flight, {1});
  t.set_in_flight({1'000});
  EXPECT_EQ(t.pick(), 0u);
  t.states[0]->healthy = false;
  EXPECT_EQ(t.pick(), std::nullopt);
  t.states[0]->healthy = true;
  t.open_breaker(0);
  EXPECT_EQ(t.pick(kT0 + Millis(999)), std::nullopt);
  auto half_open = kT0 + Millis(1'000);
  EXPECT_EQ(t.pick(half_open), 0u);              // the probe
  EXPECT_EQ(t.pick(half_open), std::nullopt);    // no second probe while the first is out
}

// ---------------------------------------------------------------------------------------------
// latency

TEST(LatencyBalancer, WithTwoTargetsAlwaysPicksTheCheaperOne) {
  // Power of two choices over two targets compares both every time (a == b is resolved to the
  // other target), so the 10x faster one wins every pick.
  Targets t(BalancerKind::latency, {1, 1});
  t.set_ttfb({10'000, 1'000});
  auto counts = t.count(1000);
  EXPECT_EQ(counts[1], 1000);
  EXPECT_EQ(counts[0], 0);
}

TEST(LatencyBalancer, PrefersTheFasterTargetStatistically) {
  Targets t(BalancerKind::latency, {1, 1, 1, 1});
  t.set_ttfb({10'000, 1'000, 10'000, 10'000});
  auto counts = t.count(1000);
  // The fast target wins whenever it is one of the two sampled: about half of the picks
  // (1 - C(3,2)/C(4,2)), each slow one about a sixth.
  EXPECT_GT(counts[1], 400);
  for (size_t slow : {0u, 2u, 3u}) {
    EXPECT_GT(counts[slow], 80) << "slow target " << slow << " still sampled";
    EXPECT_LT(counts[slow], counts[1] / 2) << "slow target " << slow;
  }
  EXPECT_EQ(counts[0] + counts[1] + counts[2] + counts[3], 1000);

  Targets three(BalancerKind::latency, {1, 1, 1});
  three.set_ttfb({10'000, 10'000, 1'000});
  auto c3 = three.count(1000);
  EXPECT_GT(c3[2], 550);  // about two thirds
  EXPECT_GT(c3[2], c3[0] + c3[1]);
}

TEST(LatencyBalancer, InFlightWorkCountsAsQueueing) {
  Targets t(BalancerKind::latency, {1, 1});
  t.set_ttfb({1'000, 10'000});
  t.set_in_flight({20, 0});  // 1001 * 21 > 10001 * 1: the busy fast target costs more
  for (int i = 0; i < 50; ++i) EXPECT_EQ(t.pick(), 1u);
  t.set_in_flight({5, 0});   // 1001 * 6 < 10001
  for (int i = 0; i < 50; ++i) EXPECT_EQ(t.pick(), 0u);
}

TEST(LatencyBalancer, DividesTheCostByTheWeight) {
  Targets t(BalancerKind::latency, {1, 20});
  t.set_ttfb({1'000, 10'000});  // 1001 / 1 > 10001 / 20
  for (int i = 0; i < 50; ++i) EXPECT_EQ(t.pick(), 1u);
}

TEST(LatencyBalancer, UnmeasuredTargetsGetSampled) {
  Targets t(BalancerKind::latency, {1, 1});
  t.set_ttfb({1'000, 0});  // target 1 has no sample yet: it looks fast so it gets one
  for (int i = 0; i < 20; ++i) EXPECT_EQ(t.pick(), 1u);
  t.states[1]->observe_ttfb(50'000);  // its first sample shows it is slow
  EXPECT_EQ(t.states[1]->ewma_ttfb_us.load(), 50'000u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(t.pick(), 0u);

  Targets many(BalancerKind::latency, {1, 1, 1});
  many.set_ttfb({1'000, 1'000, 0});
  auto counts = many.count(300);
  EXPECT_GT(counts[2], 150);  // whenever it is sampled (about two thirds)
}

TEST(LatencyBalancer, SkipsTriedUnhealthyAndOpenTargets) {
  Targets t(BalancerKind::latency, {1, 1, 1});
  t.set_ttfb({1'000, 5'000, 10'000});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(t.pick({true, false, false}), 1u);
  t.states[0]->healthy = false;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(t.pick(), 1u);
  t.open_breaker(1);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(t.pick(kT0 + Millis(1)), 2u);
  t.states[2]->healthy = false;
  EXPECT_EQ(t.pick(kT0 + Millis(1)), std::nullopt);
}

TEST(LatencyBalancer, FallsBackToTriedTargetsWhenEveryUsableOneWasTried) {
  Targets t(BalancerKind::latency, {1, 1, 1});
  t.set_ttfb({10'000, 1'000, 100});
  t.states[2]->healthy = false;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(t.pick({true, true, false}), 1u);
}

TEST(LatencyBalancer, AnOpenUntriedTargetDoesNotBlockTheFallbackToTriedOnes) {
  Targets t(BalancerKind::latency, {1, 1, 1});
  t.set_ttfb({100, 10'000, 1'000});
  t.open_breaker(0);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(t.pick({false, true, true}, kT0 + Millis(1)), 2u);
}

TEST(LatencyBalancer, AHalfOpenUntriedTargetWithoutAProbeSlotDoesNotBlockTheFallback) {
  Targets t(BalancerKind::latency, {1, 1, 1});
  t.set_ttfb({100, 10'000, 1'000});
  t.open_breaker(0);
  auto half_open = kT0 + Millis(1'000);
  ASSERT_EQ(t.pick({false, true, true}, half_open), 0u);  // takes the only probe slot
  for (int i = 0; i < 20; ++i) EXPECT_EQ(t.pick({false, true, true}, half_open), 2u);
}

TEST(LatencyBalancer, OneEligibleTargetIsPickedWithoutSampling) {
  Targets t(BalancerKind::latency, {1, 1, 1});
  t.set_ttfb({1'000, 50'000, 1'000});
  t.states[0]->healthy = false;
  t.states[2]->healthy = false;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(t.pick(), 1u);

  Targets single(BalancerKind::latency, {3});
  single.set_ttfb({99'000});
  single.set_in_flight({50});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(single.pick(), 0u);
}

TEST(LatencyBalancer, AHalfOpenTargetTakesOneProbeThenIsSkipped) {
  Targets t(BalancerKind::latency, {1, 1});
  t.set_ttfb({1'000, 50'000});
  t.open_breaker(0);
  auto half_open = kT0 + Millis(1'000);
  EXPECT_EQ(t.pick(half_open), 0u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(t.pick(half_open), 1u);
}

}  // namespace
}  // namespace sluice::routing
