// Config keys of the Redis-backed features: the top-level `redis` connection (and its older
// spelling under rate_limits.redis), `auth.keys_backend` and `budgets.backend`.
#include <gtest/gtest.h>

#include <string>

#include "config/config.h"
#include "config_test_support.h"

namespace sluice::config {
namespace {

TEST(ConfigRedis, DefaultsToSqliteKeysAndLocalBudgets) {
  auto c = parse_config(kDemoRoute);
  EXPECT_EQ(c->auth.keys_backend, AuthConfig::KeysBackend::sqlite);
  EXPECT_FALSE(c->budget_spend_in_redis);
  EXPECT_EQ(c->rate_limits.redis_host, "127.0.0.1");
  EXPECT_EQ(c->rate_limits.redis_port, 6379);
}

TEST(ConfigRedis, TopLevelRedisSetsTheSharedConnection) {
  auto c = parse_config(std::string("redis: {url: \"redis://10.0.0.7:6390\", timeout_ms: 120}\n"
                                    "auth: {keys_backend: redis}\n"
                                    "budgets: {backend: redis}\n") +
                        kDemoRoute);
  EXPECT_EQ(c->rate_limits.redis_host, "10.0.0.7");
  EXPECT_EQ(c->rate_limits.redis_port, 6390);
  EXPECT_EQ(c->rate_limits.redis_timeout, Millis{120});
  EXPECT_EQ(c->auth.keys_backend, AuthConfig::KeysBackend::redis);
  EXPECT_TRUE(c->budget_spend_in_redis);
}

TEST(ConfigRedis, TheOlderRateLimitsSpellingStillWorks) {
  auto c = parse_config(std::string("rate_limits:\n  redis: {url: \"redis://h:7000\"}\n"
                                    "auth: {keys_backend: redis}\n") +
                        kDemoRoute);
  EXPECT_EQ(c->rate_limits.redis_host, "h");
  EXPECT_EQ(c->rate_limits.redis_port, 7000);
}

TEST(ConfigRedis, RejectsInvalidValuesWithTheirPath) {
  EXPECT_EQ(error_of(std::string("redis: {url: \"http://x\"}\n") + kDemoRoute),
            "redis.url: expected redis://host:port");
  EXPECT_EQ(error_of(std::string("redis: {url: \"redis://x:0\"}\n") + kDemoRoute),
            "redis.url: port must be 1..65535");
  EXPECT_EQ(error_of(std::string("redis: {on_error: fail_open}\n") + kDemoRoute),
            "redis.on_error: unknown key");
  EXPECT_EQ(error_of(std::string("auth: {keys_backend: etcd}\n") + kDemoRoute),
            "auth.keys_backend: unknown backend \"etcd\" (expected sqlite, redis)");
  EXPECT_EQ(error_of(std::string("budgets: {backend: sqlite}\n") + kDemoRoute),
            "budgets.backend: unknown backend \"sqlite\" (expected memory, redis)");
  EXPECT_EQ(error_of(std::string("auth: {keys_backend: redis, keys_db: k.db}\n") + kDemoRoute),
            "auth.keys_db: not used with keys_backend: redis (created keys live in Redis)");
}

TEST(ConfigRedis, RejectsTheSameSettingInBothPlaces) {
  EXPECT_EQ(error_of(std::string("redis: {url: \"redis://a:1\"}\n"
                                 "rate_limits: {redis: {url: \"redis://b:2\"}}\n") +
                     kDemoRoute),
            "rate_limits.redis.url: also set as redis.url; set it in one place (redis.url)");
  // Different settings in each place are fine.
  auto c = parse_config(std::string("redis: {url: \"redis://a:1\"}\n"
                                    "rate_limits: {redis: {timeout_ms: 50, on_error: "
                                    "fail_closed}}\n") +
                        kDemoRoute);
  EXPECT_EQ(c->rate_limits.redis_host, "a");
  EXPECT_EQ(c->rate_limits.redis_timeout, Millis{50});
  EXPECT_FALSE(c->rate_limits.fail_open);
}

}  // namespace
}  // namespace sluice::config
