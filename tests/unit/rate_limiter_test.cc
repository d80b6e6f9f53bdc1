// Unit tests for the GCRA rate limiter: burst of exactly `limit`, retry-after, steady refill,
// all-or-nothing across buckets, token costs, refunds through adjust(), peek(), sweep(),
// unlimited charges and exact admission counts under contention.
#include "governance/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <limits>
#include <chrono>
#include <thread>
#include <vector>

namespace sluice::governance {
namespace {

using namespace std::chrono_literals;

// A non-zero origin so no test depends on the zero time_point being special.
const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(1);

Charge charge(std::string key, int64_t limit, Millis period, int64_t cost = 1) {
  Charge c;
  c.key = std::move(key);
  c.limit = limit;
  c.period = period;
  c.cost = cost;
  return c;
}

Decision consume(LocalRateLimiter& rl, const Charge& c, Clock::time_point now) {
  std::vector<Decision> d = rl.consume_all(std::span<const Charge>(&c, 1), now);
  EXPECT_EQ(d.size(), 1u);
  return d.at(0);
}

TEST(RateLimiterTest, AllowsExactlyLimitInABurstThenRejects) {
  LocalRateLimiter rl;
  Charge c = charge("key:a:rpm", 10, 60s);
  for (int i = 0; i < 10; ++i) {
    Decision d = consume(rl, c, kT0);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.limit, 10);
    EXPECT_EQ(d.remaining, 9 - i);
    EXPECT_EQ(d.reset_after, Millis{6'000 * (i + 1)});
  }
  Decision d = consume(rl, c, kT0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 0);
  EXPECT_EQ(d.limit, 10);
}

TEST(RateLimiterTest, RetryAfterIsTheWaitUntilTheChargeFits) {
  LocalRateLimiter rl;
  Charge c = charge("k", 10, 60s);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(consume(rl, c, kT0).allowed);
  Decision d = consume(rl, c, kT0);
  ASSERT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 6'000ms);

  // 2.5 s later the wait is 3.5 s; just before it ends still rejected, at the end allowed.
  d = consume(rl, c, kT0 + 2'500ms);
  ASSERT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 3'500ms);
  EXPECT_FALSE(consume(rl, c, kT0 + 6'000ms - 1ns).allowed);
  EXPECT_TRUE(consume(rl, c, kT0 + 6'000ms).allowed);
}

TEST(RateLimiterTest, RetryAfterRoundsUpToMilliseconds) {
  LocalRateLimiter rl;
  Charge c = charge("k", 3, 1'000ms);  // T = 333.333... ms
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(consume(rl, c, kT0).allowed);
  Decision d = consume(rl, c, kT0);
  ASSERT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 334ms);  // 333.333333 ms rounded up
}

TEST(RateLimiterTest, SteadyRateRefill) {
  LocalRateLimiter rl;
  Charge c = charge("k", 60, 60s);  // one per second
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(consume(rl, c, kT0).allowed);
  ASSERT_FALSE(consume(rl, c, kT0).allowed);
  // Each second exactly one more fits.
  for (int s = 1; s <= 5; ++s) {
    Clock::time_point now = kT0 + std::chrono::seconds(s);
    EXPECT_TRUE(consume(rl, c, now).allowed) << s;
    EXPECT_FALSE(consume(rl, c, now).allowed) << s;
  }
  // After a full idle period the whole burst is available again.
  Clock::time_point later = kT0 + 5s + 60s;
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(consume(rl, c, later).allowed) << i;
  EXPECT_FALSE(consume(rl, c, later).allowed);
}

TEST(RateLimiterTest, AllOrNothingAcrossBuckets) {
  LocalRateLimiter rl;
  Charge full = charge("tenant:t:rpm", 2, 60s);
  Charge free = charge("key:k:rpm", 5, 60s);
  ASSERT_TRUE(consume(rl, full, kT0).allowed);
  ASSERT_TRUE(consume(rl, full, kT0).allowed);

  std::vector<Charge> both = {free, full};
  std::vector<Decision> d = rl.consume_all(both, kT0);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_TRUE(d[0].allowed);   // would have fit...
  EXPECT_EQ(d[0].remaining, 5);  // ...but nothing was consumed
  EXPECT_FALSE(d[1].allowed);
  EXPECT_EQ(d[1].retry_after, 30'000ms);

  // The free bucket is untouched: its whole burst is still there.
  EXPECT_EQ(rl.peek(free, kT0).remaining, 5);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(consume(rl, free, kT0).allowed) << i;
  EXPECT_FALSE(consume(rl, free, kT0).allowed);
}

TEST(RateLimiterTest, AllAllowedCommitsEveryBucket) {
  LocalRateLimiter rl;
  std::vector<Charge> both = {charge("a", 3, 60s), charge("b", 4, 60s)};
  std::vector<Decision> d = rl.consume_all(both, kT0);
  ASSERT_TRUE(d[0].allowed && d[1].allowed);
  EXPECT_EQ(d[0].remaining, 2);
  EXPECT_EQ(d[1].remaining, 3);
  EXPECT_EQ(rl.peek(both[0], kT0).remaining, 2);
  EXPECT_EQ(rl.peek(both[1], kT0).remaining, 3);
}

TEST(RateLimiterTest, SameBucketTwiceInOneCallSeesBothCharges) {
  LocalRateLimiter rl;
  std::vector<Charge> twice = {charge("a", 3, 60s, 2), charge("a", 3, 60s, 2)};
  std::vector<Decision> d = rl.consume_all(twice, kT0);
  EXPECT_TRUE(d[0].allowed);
  EXPECT_FALSE(d[1].allowed);  // 2 + 2 > 3
  EXPECT_EQ(rl.peek(twice[0], kT0).remaining, 3);  // nothing consumed
}

TEST(RateLimiterTest, TokenCosts) {
  LocalRateLimiter rl;
  Charge c = charge("key:k:tpm", 1'000, 60s, 400);
  Decision d = consume(rl, c, kT0);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 600);
  d = consume(rl, c, kT0);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 200);
  d = consume(rl, c, kT0);
  ASSERT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 200);
  EXPECT_EQ(d.retry_after, 12'000ms);  // 200 tokens short at 1000 per minute
  c.cost = 200;
  EXPECT_TRUE(consume(rl, c, kT0).allowed);
}

TEST(RateLimiterTest, CostAboveLimitIsRejectedWithAFullPeriod) {
  LocalRateLimiter rl;
  Charge c = charge("k", 100, 60s, 101);
  Decision d = consume(rl, c, kT0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 60'000ms);
  EXPECT_EQ(d.remaining, 100);
  EXPECT_EQ(rl.bucket_count(), 0u);
}

TEST(RateLimiterTest, AdjustRefundsAllowMore) {
  LocalRateLimiter rl;
  Charge c = charge("key:k:tpm", 1'000, 60s, 1'000);  // reserve the estimate
  ASSERT_TRUE(consume(rl, c, kT0).allowed);
  c.cost = 1;
  ASSERT_FALSE(consume(rl, c, kT0).allowed);
  rl.adjust(c, -700, kT0);  // actual usage was 300
  EXPECT_EQ(rl.peek(c, kT0).remaining, 700);
  c.cost = 700;
  EXPECT_TRUE(consume(rl, c, kT0).allowed);
  c.cost = 1;
  EXPECT_FALSE(consume(rl, c, kT0).allowed);
}

TEST(RateLimiterTest, AdjustNeverRefundsBeyondFull) {
  LocalRateLimiter rl;
  Charge c = charge("k", 10, 60s);
  ASSERT_TRUE(consume(rl, c, kT0).allowed);
  rl.adjust(c, -1'000, kT0);
  EXPECT_EQ(rl.peek(c, kT0).remaining, 10);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(consume(rl, c, kT0).allowed) << i;
  EXPECT_FALSE(consume(rl, c, kT0).allowed);
}

TEST(RateLimiterTest, PositiveAdjustChargesWithoutRejecting) {
  LocalRateLimiter rl;
  Charge c = charge("k", 10, 60s);
  rl.adjust(c, 25, kT0);  // more than the limit: the bucket is full for (at most) a period
  Decision p = rl.peek(c, kT0);
  EXPECT_EQ(p.remaining, 0);
  EXPECT_EQ(p.reset_after, 60'000ms);
  Decision d = consume(rl, c, kT0);
  ASSERT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 6'000ms);  // a full period plus one unit (6 s), minus one period
}

// Review §1.1: a reconciliation with an absurd figure (a wrapped max_tokens estimate) pushed
// every bucket of the plan 73 years into the future, denying everyone. One adjust can fill a
// bucket for at most one period.
TEST(RateLimiterTest, AnAbsurdAdjustLocksTheBucketForAtMostOnePeriod) {
  LocalRateLimiter rl;
  Charge c = charge("model:gpt-4o*:tpm", 1000, 60s);
  rl.adjust(c, std::numeric_limits<int64_t>::max(), kT0);
  EXPECT_FALSE(consume(rl, c, kT0).allowed);  // full...
  EXPECT_TRUE(consume(rl, c, kT0 + 1s).allowed);  // ...for one period: a second later, room
  rl.adjust(c, std::numeric_limits<int64_t>::min(), kT0 + 1s);  // and the other way: no wrap
  EXPECT_EQ(rl.peek(c, kT0 + 1s).remaining, 1000);
}

TEST(RateLimiterTest, PeekDoesNotCharge) {
  LocalRateLimiter rl;
  Charge c = charge("k", 5, 10s);
  Decision p = rl.peek(c, kT0);
  EXPECT_TRUE(p.allowed);
  EXPECT_EQ(p.remaining, 5);
  EXPECT_EQ(p.reset_after, 0ms);
  ASSERT_TRUE(consume(rl, c, kT0).allowed);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rl.peek(c, kT0).remaining, 4);
  EXPECT_EQ(rl.peek(c, kT0).reset_after, 2'000ms);
  EXPECT_EQ(rl.peek(c, kT0 + 2s).remaining, 5);
}

TEST(RateLimiterTest, SweepDropsIdleBuckets) {
  LocalRateLimiter rl;
  ASSERT_TRUE(consume(rl, charge("short", 10, 1s), kT0).allowed);
  ASSERT_TRUE(consume(rl, charge("long", 10, 1h), kT0).allowed);
  EXPECT_EQ(rl.bucket_count(), 2u);
  rl.sweep(kT0 + 500ms);
  EXPECT_EQ(rl.bucket_count(), 2u);
  rl.sweep(kT0 + 2s);
  EXPECT_EQ(rl.bucket_count(), 1u);
  rl.sweep(kT0 + 2h);
  EXPECT_EQ(rl.bucket_count(), 0u);
  // A swept bucket starts full again.
  EXPECT_EQ(rl.peek(charge("long", 10, 1h), kT0 + 2h).remaining, 10);
}

TEST(RateLimiterTest, LimitZeroIsUnlimited) {
  LocalRateLimiter rl;
  Charge unlimited = charge("k", 0, 60s, 1'000'000);
  for (int i = 0; i < 100; ++i) {
    Decision d = consume(rl, unlimited, kT0);
    ASSERT_TRUE(d.allowed);
    EXPECT_EQ(d.limit, 0);
    EXPECT_EQ(d.remaining, 0);
  }
  EXPECT_EQ(rl.bucket_count(), 0u);
  // An unlimited charge next to a full one does not change the all-or-nothing outcome.
  Charge one = charge("one", 1, 60s);
  ASSERT_TRUE(consume(rl, one, kT0).allowed);
  std::vector<Charge> both = {unlimited, one};
  std::vector<Decision> d = rl.consume_all(both, kT0);
  EXPECT_TRUE(d[0].allowed);
  EXPECT_FALSE(d[1].allowed);
  rl.adjust(unlimited, 5, kT0);
  EXPECT_EQ(rl.bucket_count(), 1u);
  EXPECT_EQ(rl.peek(unlimited, kT0).limit, 0);
}

TEST(RateLimiterTest, EmptyChargeListIsAllowed) {
  LocalRateLimiter rl;
  EXPECT_TRUE(rl.consume_all({}, kT0).empty());
}

TEST(RateLimiterTest, LargeLimitsAndLongPeriodsDoNotOverflow) {
  LocalRateLimiter rl;
  Charge c = charge("key:k:tpd", 4'000'000'000, std::chrono::hours(24), 3'999'999'999);
  Decision d = consume(rl, c, kT0);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 1);
  c.cost = 2;
  d = consume(rl, c, kT0);
  EXPECT_FALSE(d.allowed);
  EXPECT_GT(d.retry_after, 0ms);
  EXPECT_LE(d.retry_after, 1ms);
}

TEST(RateLimiterTest, ExactlyLimitAdmittedUnderContention) {
  LocalRateLimiter rl;
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      // Each request charges its own key bucket and the shared tenant bucket.
      std::vector<Charge> charges = {charge("tenant:shared:rph", 500, 1h),
                                     charge("key:" + std::to_string(t) + ":rph", 10'000, 1h)};
      for (int i = 0; i < 1000; ++i) {
        std::vector<Decision> d = rl.consume_all(charges, kT0);
        if (d[0].allowed && d[1].allowed) allowed.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(allowed.load(), 500);
  EXPECT_EQ(rl.peek(charge("tenant:shared:rph", 500, 1h), kT0).remaining, 0);
}

}  // namespace
}  // namespace sluice::governance
