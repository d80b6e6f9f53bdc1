// Unit tests for the resilience building blocks: backoff jitter bounds, Retry-After and
// x-ratelimit-reset-* parsing, the retry budget and the circuit breaker (time injected).
#include "routing/resilience.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "config/config.h"

namespace sluice::routing {
namespace {

Clock::time_point at(int64_t ms) { return Clock::time_point{} + std::chrono::milliseconds(ms); }

config::RetryPolicy policy(config::Jitter jitter, int64_t base = 100, int64_t cap = 2000) {
  config::RetryPolicy p;
  p.jitter = jitter;
  p.backoff_base = Millis(base);
  p.backoff_cap = Millis(cap);
  return p;
}

constexpr double kRandoms[] = {0.0, 0.5, 0.999};

// ---- backoff_delay ----

TEST(Backoff, NoJitterDoublesFromBaseUpToTheCap) {
  auto p = policy(config::Jitter::none);
  EXPECT_EQ(backoff_delay(p, 1, Millis(0), 0.5), Millis(100));
  EXPECT_EQ(backoff_delay(p, 2, Millis(0), 0.5), Millis(200));
  EXPECT_EQ(backoff_delay(p, 3, Millis(0), 0.5), Millis(400));
  EXPECT_EQ(backoff_delay(p, 5, Millis(0), 0.5), Millis(1600));
  EXPECT_EQ(backoff_delay(p, 6, Millis(0), 0.5), Millis(2000));
}

TEST(Backoff, FullJitterStaysBetweenZeroAndTheExponentialWait) {
  auto p = policy(config::Jitter::full);
  for (int retry = 1; retry <= 8; ++retry) {
    int64_t exp = std::min<int64_t>(2000, 100LL << (retry - 1));
    for (double r : kRandoms) {
      Millis d = backoff_delay(p, retry, Millis(0), r);
      EXPECT_GE(d.count(), 0);
      EXPECT_LE(d.count(), exp);
    }
  }
  EXPECT_EQ(backoff_delay(p, 1, Millis(0), 0.0), Millis(0));
  EXPECT_EQ(backoff_delay(p, 2, Millis(0), 0.5), Millis(100));
}

TEST(Backoff, EqualJitterStaysBetweenHalfAndTheWholeExponentialWait) {
  auto p = policy(config::Jitter::equal);
  for (int retry = 1; retry <= 8; ++retry) {
    int64_t exp = std::min<int64_t>(2000, 100LL << (retry - 1));
    for (double r : kRandoms) {
      Millis d = backoff_delay(p, retry, Millis(0), r);
      EXPECT_GE(d.count(), exp / 2);
      EXPECT_LE(d.count(), exp);
    }
  }
  EXPECT_EQ(backoff_delay(p, 1, Millis(0), 0.0), Millis(50));
  EXPECT_EQ(backoff_delay(p, 1, Millis(0), 0.5), Millis(75));
}

TEST(Backoff, DecorrelatedJitterStaysBetweenBaseAndThreeTimesThePreviousWaitCapped) {
  auto p = policy(config::Jitter::decorrelated);
  for (int64_t prev : {0, 50, 100, 300, 1000, 5000}) {
    for (double r : kRandoms) {
      Millis d = backoff_delay(p, 3, Millis(prev), r);
      EXPECT_GE(d.count(), 100) << prev << " " << r;
      EXPECT_LE(d.count(), std::min<int64_t>(2000, std::max<int64_t>(prev, 100) * 3));
    }
  }
  EXPECT_EQ(backoff_delay(p, 2, Millis(100), 0.0), Millis(100));
  EXPECT_EQ(backoff_delay(p, 2, Millis(100), 0.5), Millis(200));  // 100 + 0.5 * (300 - 100)
  EXPECT_EQ(backoff_delay(p, 2, Millis(10'000), 0.999), Millis(2000));
}

TEST(Backoff, NeverExceedsTheCapForAnyJitter) {
  for (auto j : {config::Jitter::none, config::Jitter::full, config::Jitter::equal,
                 config::Jitter::decorrelated}) {
    auto p = policy(j, 100, 700);
    for (int retry = 1; retry <= 20; ++retry) {
      for (double r : kRandoms) {
        Millis d = backoff_delay(p, retry, Millis(650), r);
        EXPECT_GE(d.count(), 0);
        EXPECT_LE(d.count(), 700);
      }
    }
  }
}

TEST(Backoff, HugeRetryNumbersDoNotOverflow) {
  for (auto j : {config::Jitter::none, config::Jitter::full, config::Jitter::equal,
                 config::Jitter::decorrelated}) {
    auto p = policy(j);
    for (int retry : {100, 1000, 1 << 30}) {
      for (double r : kRandoms) {
        Millis d = backoff_delay(p, retry, Millis(2000), r);
        EXPECT_GE(d.count(), 0);
        EXPECT_LE(d.count(), 2000);
      }
    }
  }
  EXPECT_EQ(backoff_delay(policy(config::Jitter::none), 100, Millis(0), 0), Millis(2000));
  // A zero base never reaches the cap by doubling: must still return at once.
  EXPECT_EQ(backoff_delay(policy(config::Jitter::none, 0), 1 << 30, Millis(0), 0), Millis(0));
}

TEST(Backoff, OutOfRangeRandomValuesAreClamped) {
  auto p = policy(config::Jitter::full);
  EXPECT_EQ(backoff_delay(p, 1, Millis(0), -3.0), Millis(0));
  EXPECT_LE(backoff_delay(p, 1, Millis(0), 7.0), Millis(100));
}

// ---- parse_retry_after ----

constexpr int64_t kNow = 1445412480;  // Wed, 21 Oct 2015 07:28:00 GMT

TEST(RetryAfter, ParsesDeltaSeconds) {
  EXPECT_EQ(parse_retry_after("3", kNow), Millis(3000));
  EXPECT_EQ(parse_retry_after("0", kNow), Millis(0));
  EXPECT_EQ(parse_retry_after("  120 ", kNow), Millis(120'000));
}

TEST(RetryAfter, CapsDeltaSecondsAtOneDay) {
  EXPECT_EQ(parse_retry_after("86400", kNow), Millis(86'400'000));
  EXPECT_EQ(parse_retry_after("999999999999999999999999", kNow), Millis(86'400'000));
}

TEST(RetryAfter, ParsesAFutureImfFixdateRelativeToNow) {
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", kNow), Millis(30'000));
  EXPECT_EQ(parse_retry_after("Thu, 22 Oct 2015 07:27:59 GMT", kNow), Millis(86'399'000));
}

TEST(RetryAfter, PastOrPresentDateMeansNoWait) {
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", kNow), Millis(0));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", kNow), Millis(0));
}

TEST(RetryAfter, ParsesObsoleteRfc850AndAsctimeDates) {
  EXPECT_EQ(parse_retry_after("Wednesday, 21-Oct-15 07:28:10 GMT", kNow), Millis(10'000));
  EXPECT_EQ(parse_retry_after("Wed Oct 21 07:28:05 2015", kNow), Millis(5'000));
  EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:37 1994", kNow), Millis(0));
}

TEST(RetryAfter, RejectsInvalidValues) {
  for (const char* bad :
       {"", "  ", "-5", "+5", "1.5", "3s", "abc", "5 5", "Wed, 21 Oct 2015 07:28:00",
        "Wed, 21 Oct 2015 07:28:00 UTC", "Wed, 32 Oct 2015 07:28:00 GMT",
        "Wed, 29 Feb 2015 07:28:00 GMT", "Wed, 21 Foo 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 24:00:00 GMT", "Xyz, 21 Oct 2015 07:28:00 GMT",
        "Wed, 21 Oct 15 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT trailing"}) {
    EXPECT_EQ(parse_retry_after(bad, kNow), std::nullopt) << bad;
  }
}

// ---- parse_reset_duration ----

TEST(ResetDuration, ParsesOpenAiDurations) {
  EXPECT_EQ(parse_reset_duration("1s"), Millis(1000));
  EXPECT_EQ(parse_reset_duration("6m0s"), Millis(360'000));
  EXPECT_EQ(parse_reset_duration("20ms"), Millis(20));
  EXPECT_EQ(parse_reset_duration("1h2m3.5s"), Millis(3'723'500));
  EXPECT_EQ(parse_reset_duration("0.5s"), Millis(500));
  EXPECT_EQ(parse_reset_duration("0"), Millis(0));
  EXPECT_EQ(parse_reset_duration("0s"), Millis(0));
  EXPECT_EQ(parse_reset_duration(".25s"), Millis(250));
}

TEST(ResetDuration, RoundsSubMillisecondRemaindersUp) {
  EXPECT_EQ(parse_reset_duration("1500us"), Millis(2));
  EXPECT_EQ(parse_reset_duration("1ns"), Millis(1));
  EXPECT_EQ(parse_reset_duration("0.3s"), Millis(300));
}

TEST(ResetDuration, RejectsInvalidValues) {
  for (const char* bad : {"abc", "", "5x", "5", "s", "1.s.", "-1s", "1s2", ".s", "1 s",
                          "99999999999999999999h", "3000000h"}) {
    EXPECT_EQ(parse_reset_duration(bad), std::nullopt) << bad;
  }
}

// ---- RetryBudget ----

config::RetryPolicy budget_policy(double ratio, int64_t window_ms, int min_retries) {
  config::RetryPolicy p;
  p.budget_ratio = ratio;
  p.budget_window = Millis(window_ms);
  p.budget_min_retries = min_retries;
  return p;
}

TEST(RetryBudget, AllowsMinRetriesWithNoTraffic) {
  RetryBudget b(budget_policy(0.2, 10'000, 3));
  EXPECT_TRUE(b.try_spend_retry(at(0)));
  EXPECT_TRUE(b.try_spend_retry(at(1)));
  EXPECT_TRUE(b.try_spend_retry(at(2)));
  EXPECT_FALSE(b.try_spend_retry(at(3)));
}

TEST(RetryBudget, AllowsTheRatioOfRequestsWithTraffic) {
  RetryBudget b(budget_policy(0.2, 10'000, 3));
  for (int i = 0; i < 100; ++i) b.on_request(at(i));
  int allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += b.try_spend_retry(at(100 + i)) ? 1 : 0;
  EXPECT_EQ(allowed, 20);
}

TEST(RetryBudget, RefillsAfterTheWindow) {
  RetryBudget b(budget_policy(0.2, 10'000, 1));
  EXPECT_TRUE(b.try_spend_retry(at(0)));
  EXPECT_FALSE(b.try_spend_retry(at(4'000)));
  EXPECT_FALSE(b.try_spend_retry(at(9'000)));  // still in the previous half-window bucket
  EXPECT_TRUE(b.try_spend_retry(at(10'001)));
  EXPECT_FALSE(b.try_spend_retry(at(10'002)));
  EXPECT_TRUE(b.try_spend_retry(at(30'000)));  // a long idle gap resets both buckets
}

TEST(RetryBudget, OldRequestsAgeOutOfTheWindow) {
  RetryBudget b(budget_policy(0.5, 10'000, 0));
  for (int i = 0; i < 10; ++i) b.on_request(at(0));
  EXPECT_TRUE(b.try_spend_retry(at(6'000)));    // 10 requests still in the previous bucket
  EXPECT_FALSE(b.try_spend_retry(at(25'000)));  // they aged out; min_retries is 0
}

// ---- CircuitBreaker ----

config::BreakerConfig breaker_config(int min_requests = 10, double ratio = 0.5, int probes = 1) {
  config::BreakerConfig c;
  c.failure_ratio = ratio;
  c.min_requests = min_requests;
  c.window = Millis(10'000);
  c.cooldown = Millis(5'000);
  c.half_open_probes = probes;
  return c;
}

// Opens `b` at time 0 with min_requests failures.
void trip(CircuitBreaker& b, int n = 10) {
  for (int i = 0; i < n; ++i) b.on_failure(at(0));
}

TEST(CircuitBreaker, StaysClosedUnderMinRequests) {
  CircuitBreaker b(breaker_config());
  for (int i = 0; i < 9; ++i) b.on_failure(at(i));
  EXPECT_EQ(b.state(at(10)), BreakerState::closed);
  EXPECT_TRUE(b.allow(at(10)));
  EXPECT_DOUBLE_EQ(b.failure_ratio(at(10)), 1.0);
}

TEST(CircuitBreaker, OpensWhenFailureRatioPassesThresholdAfterMinRequests) {
  CircuitBreaker b(breaker_config());
  for (int i = 0; i < 5; ++i) b.on_success(at(i));
  for (int i = 0; i < 5; ++i) b.on_failure(at(10 + i));
  EXPECT_EQ(b.state(at(20)), BreakerState::closed);  // 0.5 is not above 0.5
  b.on_failure(at(20));
  EXPECT_EQ(b.state(at(21)), BreakerState::open);
  EXPECT_EQ(b.transitions(), 1u);
}

TEST(CircuitBreaker, StaysClosedWhileFailureRatioIsBelowThreshold) {
  CircuitBreaker b(breaker_config());
  for (int i = 0; i < 100; ++i) {
    if (i % 3 == 0) {
      b.on_failure(at(i));
    } else {
      b.on_success(at(i));
    }
  }
  EXPECT_EQ(b.state(at(100)), BreakerState::closed);
  EXPECT_NEAR(b.failure_ratio(at(100)), 0.34, 0.01);
}

TEST(CircuitBreaker, FailuresOutsideTheWindowAreForgotten) {
  CircuitBreaker b(breaker_config());
  for (int i = 0; i < 9; ++i) b.on_failure(at(0));
  EXPECT_DOUBLE_EQ(b.failure_ratio(at(30'000)), 0.0);
  b.on_failure(at(30'000));
  EXPECT_EQ(b.state(at(30'001)), BreakerState::closed);
}

TEST(CircuitBreaker, RejectsWhileOpen) {
  CircuitBreaker b(breaker_config());
  trip(b);
  EXPECT_FALSE(b.allow(at(1)));
  EXPECT_FALSE(b.allow(at(4'999)));
  EXPECT_EQ(b.state(at(4'999)), BreakerState::open);
}

TEST(CircuitBreaker, ReportsHalfOpenAfterCooldownWithoutTransitioning) {
  CircuitBreaker b(breaker_config());
  trip(b);
  EXPECT_EQ(b.state(at(5'000)), BreakerState::half_open);
  EXPECT_EQ(b.transitions(), 1u);
}

TEST(CircuitBreaker, HalfOpenAfterCooldownAdmitsExactlyTheProbeCount) {
  CircuitBreaker b(breaker_config(10, 0.5, 2));
  trip(b);
  EXPECT_TRUE(b.allow(at(5'000)));
  EXPECT_EQ(b.state(at(5'000)), BreakerState::half_open);
  EXPECT_TRUE(b.allow(at(5'001)));
  EXPECT_FALSE(b.allow(at(5'002)));
  EXPECT_FALSE(b.allow(at(9'000)));
  EXPECT_EQ(b.transitions(), 2u);
}

TEST(CircuitBreaker, ProbeSuccessCloses) {
  CircuitBreaker b(breaker_config());
  trip(b);
  ASSERT_TRUE(b.allow(at(5'000)));
  b.on_success(at(5'100));
  EXPECT_EQ(b.state(at(5'100)), BreakerState::closed);
  EXPECT_DOUBLE_EQ(b.failure_ratio(at(5'100)), 0.0);  // window reset
  EXPECT_TRUE(b.allow(at(5'200)));
  EXPECT_TRUE(b.allow(at(5'200)));
  EXPECT_EQ(b.transitions(), 3u);
}

TEST(CircuitBreaker, ProbeFailureReopensForAnotherCooldown) {
  CircuitBreaker b(breaker_config());
  trip(b);
  ASSERT_TRUE(b.allow(at(5'000)));
  b.on_failure(at(6'000));
  EXPECT_EQ(b.state(at(6'000)), BreakerState::open);
  EXPECT_FALSE(b.allow(at(10'999)));
  EXPECT_TRUE(b.allow(at(11'000)));
  EXPECT_EQ(b.transitions(), 4u);  // open, half-open, open, half-open
}

TEST(CircuitBreaker, AbandonFreesTheProbeSlot) {
  CircuitBreaker b(breaker_config());
  trip(b);
  ASSERT_TRUE(b.allow(at(5'000)));
  EXPECT_FALSE(b.allow(at(5'001)));
  b.on_abandon();
  EXPECT_EQ(b.state(at(5'002)), BreakerState::half_open);
  EXPECT_TRUE(b.allow(at(5'002)));
}

TEST(CircuitBreaker, DisabledBreakerNeverOpens) {
  auto c = breaker_config();
  c.enabled = false;
  CircuitBreaker b(c);
  for (int i = 0; i < 100; ++i) b.on_failure(at(i));
  EXPECT_TRUE(b.allow(at(100)));
  EXPECT_EQ(b.state(at(100)), BreakerState::closed);
  EXPECT_EQ(b.transitions(), 0u);
}

TEST(CircuitBreaker, CountsEveryTransition) {
  CircuitBreaker b(breaker_config(2, 0.5, 1));
  EXPECT_EQ(b.transitions(), 0u);
  trip(b, 2);  // closed -> open
  EXPECT_EQ(b.transitions(), 1u);
  ASSERT_TRUE(b.allow(at(5'000)));  // open -> half-open
  EXPECT_EQ(b.transitions(), 2u);
  b.on_failure(at(5'000));  // half-open -> open
  EXPECT_EQ(b.transitions(), 3u);
  ASSERT_TRUE(b.allow(at(10'000)));  // open -> half-open
  b.on_success(at(10'000));          // half-open -> closed
  EXPECT_EQ(b.transitions(), 5u);
  EXPECT_EQ(to_string(b.state(at(10'000))), "closed");
}

// Successes are counted without the lock within a half-window bucket (ShardedCount): they
// still weigh in the ratio, in the bucket they happened in, and age out with it.
TEST(CircuitBreaker, LockFreeSuccessesCountInTheirBucket) {
  CircuitBreaker b(breaker_config(10, 0.5));
  for (int i = 0; i < 30; ++i) b.on_success(at(1'000 + i));
  for (int i = 0; i < 20; ++i) b.on_failure(at(6'000 + i));  // the next bucket
  EXPECT_EQ(b.state(at(6'100)), BreakerState::closed);
  EXPECT_DOUBLE_EQ(b.failure_ratio(at(6'100)), 20.0 / 50.0);
  // One half-window later the successes' bucket is gone: only the failures remain.
  EXPECT_DOUBLE_EQ(b.failure_ratio(at(11'500)), 1.0);
}

TEST(CircuitBreaker, NoSuccessIsLostAcrossThreads) {
  CircuitBreaker b(breaker_config(10, 0.5));
  b.on_success(at(100));  // opens the lock-free window
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&b] {
      for (int i = 0; i < 10'000; ++i) b.on_success(at(200 + i / 10));
    });
  }
  for (auto& th : threads) th.join();
  b.on_failure(at(1'300));
  EXPECT_DOUBLE_EQ(b.failure_ratio(at(1'300)), 1.0 / 40'002.0);
}

TEST(RetryBudget, LockFreeRequestsCountAcrossThreads) {
  RetryBudget b(budget_policy(0.001, 10'000, 0));
  b.on_request(at(100));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&b] {
      for (int i = 0; i < 2'500; ++i) b.on_request(at(200 + i / 10));
    });
  }
  for (auto& th : threads) th.join();
  // 10,001 requests at 0.1%: a retry fits while retries < 10.001, so 11 do and the 12th not
  // (one request lost would make it 10).
  for (int i = 0; i < 11; ++i) EXPECT_TRUE(b.try_spend_retry(at(1'000))) << i;
  EXPECT_FALSE(b.try_spend_retry(at(1'000)));
}

TEST(CircuitBreaker, ConcurrentUseFromFourThreadsIsSafe) {
  CircuitBreaker b(breaker_config(5, 0.3, 2));
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20'000; ++i) {
        auto now = at(i);
        if (b.allow(now)) {
          admitted.fetch_add(1, std::memory_order_relaxed);
          switch ((i + t) % 5) {
            case 0:
              b.on_failure(now);
              break;
            case 1:
              b.on_abandon();
              break;
            default:
              b.on_success(now);
          }
        }
        (void)b.state(now);
        (void)b.failure_ratio(now);
      }
    });
  }
  for (auto& th : threads) th.join();
  // Interleavings differ run to run, so only invariants are checked: requests got through,
  // and the breaker ends in a state it can report (no torn state, no crash).
  EXPECT_GT(admitted.load(), 0);
  auto s = b.state(at(20'000));
  EXPECT_TRUE(s == BreakerState::closed || s == BreakerState::open ||
              s == BreakerState::half_open);
}

}  // namespace
}  // namespace sluice::routing
