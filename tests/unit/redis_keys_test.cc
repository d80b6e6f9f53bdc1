// API keys in Redis: the stored JSON (round trip, malformed entries, no secret), and KeyStore on
// a real redis-server: a key created or revoked by one store reaches another on refresh(),
// names are unique across stores, and while Redis is down known keys keep working and admin
// writes fail as unavailable, until Redis returns.
#include "governance/redis_keys.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "redis_server_support.h"

namespace sluice::governance {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kNow = 1'750'000'000;

StoredKey sample() {
  StoredKey k;
  k.hash = sha256_hex("sk-sample");
  k.record.id = "key_0123456789abcdef";
  k.record.name = "team \"a\"\n";
  k.record.tenant = "alpha";
  k.record.models = {"gpt-4o*", "demo"};
  k.record.limits = {10, 2000, 30000};
  k.record.budget = {12.5, config::Budget::Period::day};
  k.record.expires_unix = 1'900'000'000;
  k.record.created_unix = kNow;
  k.record.key_prefix = "sk-sluice-ab";
  return k;
}

TEST(StoredKeyJson, RoundTripsEveryField) {
  StoredKey in = sample();
  std::string json = encode_stored_key(in);
  EXPECT_EQ(json.find("sk-sample"), std::string::npos);  // the secret itself is never there
  auto out = decode_stored_key(json);
  ASSERT_TRUE(out.has_value()) << json;
  EXPECT_EQ(out->hash, in.hash);
  const KeyRecord& r = out->record;
  EXPECT_EQ(r.id, in.record.id);
  EXPECT_EQ(r.name, in.record.name);
  EXPECT_EQ(r.tenant, "alpha");
  EXPECT_EQ(r.models, in.record.models);
  EXPECT_EQ(r.limits.requests_per_minute, 10);
  EXPECT_EQ(r.limits.tokens_per_minute, 2000);
  EXPECT_EQ(r.limits.tokens_per_day, 30000);
  EXPECT_DOUBLE_EQ(r.budget.usd, 12.5);
  EXPECT_EQ(r.budget.period, config::Budget::Period::day);
  EXPECT_EQ(r.expires_unix, 1'900'000'000);
  EXPECT_EQ(r.created_unix, kNow);
  EXPECT_EQ(r.key_prefix, "sk-sluice-ab");
  EXPECT_FALSE(r.revoked);
}

TEST(StoredKeyJson, RejectsMalformedEntries) {
  EXPECT_FALSE(decode_stored_key(""));
  EXPECT_FALSE(decode_stored_key("[]"));
  EXPECT_FALSE(decode_stored_key("{\"id\":\"key_1\",\"name\":\"a\"}"));  // no hash
  std::string json = encode_stored_key(sample());
  EXPECT_FALSE(decode_stored_key(json.substr(0, json.size() - 1)));  // truncated
  StoredKey bad = sample();
  bad.hash = "abc";
  EXPECT_FALSE(decode_stored_key(encode_stored_key(bad)));
  std::string negative = json;
  negative.replace(negative.find("\"tokens_per_day\":30000"), 22, "\"tokens_per_day\":-1");
  EXPECT_FALSE(decode_stored_key(negative));
}

class RedisKeyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(test::RedisServer::installed()) << "install redis-server";
    ASSERT_TRUE(redis_.start());
  }
  std::unique_ptr<KeyStore> store(std::vector<config::ApiKeyConfig> declared = {}) {
    return std::make_unique<KeyStore>(
        declared, std::make_unique<RedisKeys>("127.0.0.1", redis_.port(), 300ms));
  }
  test::RedisServer redis_;
};

KeyRecord fields(std::string name) {
  KeyRecord r;
  r.name = std::move(name);
  r.tenant = "t";
  r.models = {"demo"};
  r.limits.requests_per_minute = 7;
  return r;
}

TEST_F(RedisKeyStoreTest, AKeyCreatedByOneStoreReachesAnotherOnRefresh) {
  auto a = store();
  auto b = store();
  auto created = a->create(fields("shared"));
  ASSERT_TRUE(created.ok()) << created.error().message;
  const std::string& secret = created->second;
  EXPECT_TRUE(a->authenticate(secret, kNow).ok());  // at once where it was created
  EXPECT_FALSE(b->authenticate(secret, kNow).ok());
  b->refresh();
  auto seen = b->authenticate(secret, kNow);
  ASSERT_TRUE(seen.ok()) << seen.error().message;
  EXPECT_EQ(seen->id, created->first.id);
  EXPECT_EQ(seen->tenant, "t");
  EXPECT_EQ(seen->models, std::vector<std::string>{"demo"});
  EXPECT_EQ(seen->limits.requests_per_minute, 7);

  // A third store started later loads it in its constructor.
  EXPECT_TRUE(store()->authenticate(secret, kNow).ok());
}

TEST_F(RedisKeyStoreTest, ARevocationByOneStoreReachesAnother) {
  auto a = store();
  auto b = store();
  auto created = a->create(fields("doomed"));
  ASSERT_TRUE(created.ok());
  b->refresh();
  ASSERT_TRUE(b->authenticate(created->second, kNow).ok());
  ASSERT_TRUE(a->revoke(created->first.id).ok());
  EXPECT_FALSE(a->authenticate(created->second, kNow).ok());
  b->refresh();
  auto r = b->authenticate(created->second, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("revoked"), std::string::npos) << r.error().message;
  EXPECT_EQ(b->revoke("key_missing").error().code, Errc::not_found);
}

TEST_F(RedisKeyStoreTest, NamesAreUniqueAcrossStoresAndConfig) {
  config::ApiKeyConfig declared;
  declared.name = "cfg";
  declared.key_sha256 = sha256_hex("sk-cfg");
  auto a = store({declared});
  auto b = store({declared});
  ASSERT_TRUE(a->create(fields("once")).ok());
  auto dup = b->create(fields("once"));  // b has not refreshed: Redis decides
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::bad_request);
  EXPECT_EQ(a->create(fields("cfg")).error().code, Errc::bad_request);
  EXPECT_EQ(a->revoke("cfg_cfg").error().code, Errc::bad_request);
  EXPECT_TRUE(a->authenticate("sk-cfg", kNow).ok());
}

TEST_F(RedisKeyStoreTest, KnownKeysSurviveAnOutageAndWritesFailAsUnavailable) {
  auto a = store();
  auto created = a->create(fields("kept"));
  ASSERT_TRUE(created.ok());
  redis_.stop();
  a->refresh();  // fails: the last key set stays
  EXPECT_TRUE(a->authenticate(created->second, kNow).ok());
  auto failed = a->create(fields("later"));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, Errc::unavailable);
  // Refused at once ("is unavailable: Connection refused"), not after a read timeout.
  EXPECT_NE(failed.error().message.find("127.0.0.1:" + std::to_string(redis_.port())),
            std::string::npos)
      << failed.error().message;
  EXPECT_TRUE(failed.error().retry_after.has_value());
  EXPECT_EQ(a->revoke(created->first.id).error().code, Errc::unavailable);
  // A store created during the outage serves declared keys only, and catches up later.
  auto b = store();
  EXPECT_FALSE(b->authenticate(created->second, kNow).ok());

  ASSERT_TRUE(redis_.start());  // empty: this test's Redis keeps no data
  auto again = a->create(fields("after"));
  ASSERT_TRUE(again.ok()) << again.error().message;
  b->refresh();
  EXPECT_TRUE(b->authenticate(again->second, kNow).ok());
}

}  // namespace
}  // namespace sluice::governance
