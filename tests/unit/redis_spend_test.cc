// Budget spend shared through Redis: the scope|period key format, RedisSpend's increments and
// totals on a real redis-server, and two UsageLedgers (two gateway instances) enforcing one
// budget; while Redis is down the spend is kept and sent once it returns.
#include "api/redis_spend.h"

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <string>

#include "api/usage.h"
#include "redis_server_support.h"

namespace sluice::api {
namespace {

using namespace std::chrono_literals;

std::string today() {
  time_t now = time(nullptr);
  struct tm tm;
  gmtime_r(&now, &tm);
  char buf[16];
  strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

TEST(SpendKey, SplitsAtTheLastBar) {
  std::string scope, period;
  ASSERT_TRUE(split_spend_key("t:a|b|2026-11-24", scope, period));
  EXPECT_EQ(scope, "t:a|b");
  EXPECT_EQ(period, "2026-11-24");
  EXPECT_FALSE(split_spend_key("no-bar", scope, period));
  EXPECT_FALSE(split_spend_key("|2026-11", scope, period));
  EXPECT_FALSE(split_spend_key("k:x|", scope, period));
}

class RedisSpendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(test::RedisServer::installed()) << "install redis-server";
    ASSERT_TRUE(redis_.start());
  }
  test::RedisServer redis_;
};

TEST_F(RedisSpendTest, IncrementsAreSummedAcrossClientsPerPeriod) {
  RedisSpend a("127.0.0.1", redis_.port(), 300ms);
  RedisSpend b("127.0.0.1", redis_.port(), 300ms);
  auto r = a.sync({{"k:x|2026-11-24", 0.25}, {"k:x|2026-11", 0.25}, {"t:y|2026-11-23", 5}},
                  "2026-11-24", "2026-11");
  ASSERT_TRUE(r.ok()) << r.error().message;
  r = b.sync({{"k:x|2026-11-24", 0.5}, {"k:x|2026-11", 0.5}}, "2026-11-24", "2026-11");
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ((*r)["k:x|2026-11-24"], 0.75);
  EXPECT_DOUBLE_EQ((*r)["k:x|2026-11"], 0.75);
  EXPECT_FALSE(r->contains("t:y|2026-11-23"));  // not a current period
  r = b.sync({}, "2026-11-23", "2026-11");
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ((*r)["t:y|2026-11-23"], 5);
}

config::Config budget_config(uint16_t port) {
  config::Config c;
  c.rate_limits.redis_port = port;
  c.rate_limits.redis_timeout = config::Millis{300};
  c.budget_spend_in_redis = true;
  c.budget_per_key = {1.0, config::Budget::Period::day};
  c.budget_per_tenant["team"] = {1.5, config::Budget::Period::month};
  return c;
}

TEST_F(RedisSpendTest, TwoLedgersEnforceOneBudget) {
  auto shared = std::make_shared<const config::Config>(budget_config(redis_.port()));
  const config::Config& config = *shared;
  UsageLedger a(shared);
  UsageLedger b(shared);
  a.record("key_1", "team", "m", {}, 0.6);
  a.record("key_1", "team", "m", {}, 0.6);
  EXPECT_FALSE(a.check_budget("key_1", "team", config.budget_per_key, config.budget_per_tenant).ok());  // own: at once
  a.sync_spend();
  b.sync_spend();
  auto r = b.check_budget("key_1", "team", config.budget_per_key, config.budget_per_tenant);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::quota_exceeded);
  // Another key of the tenant: 1.2 spent of 1.5, still allowed, until b adds its own 0.4.
  EXPECT_TRUE(b.check_budget("key_2", "team", config.budget_per_key, config.budget_per_tenant).ok());
  b.record("key_2", "team", "m", {}, 0.4);
  b.sync_spend();
  a.sync_spend();
  r = a.check_budget("key_2", "team", config.budget_per_key, config.budget_per_tenant);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("tenant 'team'"), std::string::npos) << r.error().message;
}

TEST_F(RedisSpendTest, SpendRecordedDuringAnOutageIsSentWhenRedisReturns) {
  auto shared = std::make_shared<const config::Config>(budget_config(redis_.port()));
  const config::Config& config = *shared;
  UsageLedger a(shared);
  redis_.stop();
  a.record("key_1", "team", "m", {}, 2.0);
  a.sync_spend();  // fails: kept for later, still enforced locally
  EXPECT_FALSE(a.check_budget("key_1", "team", config.budget_per_key, config.budget_per_tenant).ok());
  ASSERT_TRUE(redis_.start());
  a.sync_spend();
  EXPECT_FALSE(a.check_budget("key_1", "team", config.budget_per_key, config.budget_per_tenant).ok());
  UsageLedger b(shared);  // reads the totals in its constructor
  EXPECT_FALSE(b.check_budget("key_1", "team", config.budget_per_key, config.budget_per_tenant).ok());
  RedisSpend raw("127.0.0.1", redis_.port(), 300ms);
  auto totals = raw.sync({}, today(), today().substr(0, 7));
  ASSERT_TRUE(totals.ok());
  EXPECT_DOUBLE_EQ((*totals)["k:key_1|" + today()], 2.0);
}

}  // namespace
}  // namespace sluice::api
