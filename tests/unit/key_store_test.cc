// Unit tests for virtual API keys: SHA-256 hashing, config keys, keys created in SQLite (secret
// format, listing, revocation, expiry), cross-instance visibility through refresh(), the
// no-database mode, and hostile presented keys.
#include "governance/key_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace sluice::governance {
namespace {

constexpr int64_t kNow = 1'750'000'000;  // 2025-06-15

// A fresh directory under /tmp, removed with everything in it at the end of the test.
class KeyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice_key_store_test_" + std::to_string(::getpid()) + "_" +
            std::to_string(counter.fetch_add(1)));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string db() const { return (dir_ / "keys.db").string(); }

  std::filesystem::path dir_;
};

config::ApiKeyConfig config_key(std::string name, std::string secret) {
  config::ApiKeyConfig k;
  k.name = std::move(name);
  k.key_sha256 = sha256_hex(secret);
  return k;
}

KeyRecord fields(std::string name) {
  KeyRecord r;
  r.name = std::move(name);
  return r;
}

TEST(Sha256HexTest, KnownVectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(KeyStoreTest, ConfigKeyAuthenticates) {
  config::ApiKeyConfig k = config_key("ci", "sk-config-secret");
  k.models = {"gpt-4o*"};
  k.limits.requests_per_minute = 60;
  KeyStore store({k}, "");
  Result<KeyRecord> r = store.authenticate("sk-config-secret", kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->id, "cfg_ci");
  EXPECT_EQ(r->name, "ci");
  EXPECT_EQ(r->tenant, "ci");  // defaults to the key's name
  EXPECT_TRUE(r->from_config);
  EXPECT_EQ(r->models, std::vector<std::string>{"gpt-4o*"});
  EXPECT_EQ(r->limits.requests_per_minute, 60);

  Result<KeyRecord> bad = store.authenticate("sk-config-secreT", kNow);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::unauthorized);
  EXPECT_EQ(bad.error().message, "Invalid API key");
}

TEST_F(KeyStoreTest, ConfigKeyTenantAndUpperCaseHash) {
  config::ApiKeyConfig k = config_key("svc", "s3cret");
  k.tenant = "acme";
  for (char& c : k.key_sha256) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  KeyStore store({k}, db());
  Result<KeyRecord> r = store.authenticate("s3cret", kNow);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tenant, "acme");
}

TEST_F(KeyStoreTest, CreateReturnsASecretThatAuthenticates) {
  KeyStore store({}, db());
  KeyRecord f = fields("alice");
  f.tenant = "team-a";
  f.models = {"gpt-4o", "claude-*"};
  f.limits = {.requests_per_minute = 10, .tokens_per_minute = 1000, .tokens_per_day = 50000};
  auto created = store.create(f);
  ASSERT_TRUE(created.ok()) << created.error().message;
  const auto& [record, secret] = created.value();

  ASSERT_EQ(secret.size(), 10u + 40u);
  EXPECT_EQ(secret.substr(0, 10), "sk-sluice-");
  for (char c : secret.substr(10)) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << c;
  EXPECT_EQ(record.id.size(), 4u + 16u);
  EXPECT_EQ(record.id.substr(0, 4), "key_");
  EXPECT_EQ(record.key_prefix, secret.substr(0, 12));
  EXPECT_FALSE(record.from_config);
  EXPECT_GT(record.created_unix, 0);

  Result<KeyRecord> r = store.authenticate(secret, kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->id, record.id);
  EXPECT_EQ(r->name, "alice");
  EXPECT_EQ(r->tenant, "team-a");
  EXPECT_EQ(r->models, (std::vector<std::string>{"gpt-4o", "claude-*"}));
  EXPECT_EQ(r->limits.requests_per_minute, 10);
  EXPECT_EQ(r->limits.tokens_per_minute, 1000);
  EXPECT_EQ(r->limits.tokens_per_day, 50000);

  // Two keys never share a secret.
  auto other = store.create(fields("bob"));
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->second, secret);
  EXPECT_NE(other->first.id, record.id);
  EXPECT_EQ(other->first.tenant, "bob");
}

TEST_F(KeyStoreTest, KeysSurviveReopening) {
  std::string secret;
  {
    KeyStore store({}, db());
    auto created = store.create(fields("persistent"));
    ASSERT_TRUE(created.ok());
    secret = created->second;
  }
  KeyStore reopened({}, db());
  Result<KeyRecord> r = reopened.authenticate(secret, kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->name, "persistent");
}

TEST_F(KeyStoreTest, ListShowsKeysWithoutSecrets) {
  KeyStore store({config_key("cfg", "config-secret")}, db());
  auto created = store.create(fields("listed"));
  ASSERT_TRUE(created.ok());
  std::vector<KeyRecord> keys = store.list();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].name, "cfg");
  EXPECT_TRUE(keys[0].from_config);
  EXPECT_EQ(keys[1].name, "listed");
  EXPECT_EQ(keys[1].id, created->first.id);
  EXPECT_EQ(keys[1].key_prefix, created->second.substr(0, 12));
  EXPECT_NE(keys[1].key_prefix, created->second);
}

TEST_F(KeyStoreTest, RevokedKeyIsRejected) {
  KeyStore store({}, db());
  auto created = store.create(fields("gone"));
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(store.revoke(created->first.id).ok());
  Result<KeyRecord> r = store.authenticate(created->second, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unauthorized);
  EXPECT_NE(r.error().message.find("revoked"), std::string::npos) << r.error().message;
  // Still listed, marked revoked; revoking again is harmless.
  std::vector<KeyRecord> keys = store.list();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_TRUE(keys[0].revoked);
  EXPECT_TRUE(store.revoke(created->first.id).ok());
}

TEST_F(KeyStoreTest, RevokeErrors) {
  KeyStore store({config_key("cfg", "config-secret")}, db());
  Result<void> unknown = store.revoke("key_0000000000000000");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, Errc::not_found);

  Result<void> cfg = store.revoke("cfg_cfg");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.error().code, Errc::bad_request);
  EXPECT_EQ(cfg.error().message,
            "keys declared in the config file cannot be revoked through the API; remove them "
            "from the config");
  EXPECT_TRUE(store.authenticate("config-secret", kNow).ok());
}

TEST_F(KeyStoreTest, ExpiredKeysAreRejected) {
  config::ApiKeyConfig k = config_key("old-cfg", "old-config-secret");
  k.expires_unix = kNow - 1;
  KeyStore store({k}, db());
  Result<KeyRecord> r = store.authenticate("old-config-secret", kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unauthorized);
  EXPECT_NE(r.error().message.find("expired"), std::string::npos) << r.error().message;

  KeyRecord f = fields("temp");
  f.expires_unix = 1'767'225'600;  // 2026-01-01T00:00:00Z
  auto created = store.create(f);
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(store.authenticate(created->second, 1'767'225'599).ok());
  r = store.authenticate(created->second, 1'767'225'600);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unauthorized);
  EXPECT_NE(r.error().message.find("expired at 2026-01-01T00:00:00Z"), std::string::npos)
      << r.error().message;
}

TEST_F(KeyStoreTest, CrossInstanceCreateAndRevoke) {
  KeyStore a({}, db());
  KeyStore b({}, db());
  auto created = a.create(fields("shared"));
  ASSERT_TRUE(created.ok()) << created.error().message;
  const std::string secret = created->second;

  // B does not know the key until it refreshes.
  EXPECT_FALSE(b.authenticate(secret, kNow).ok());
  b.refresh();
  Result<KeyRecord> r = b.authenticate(secret, kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->id, created->first.id);

  // Refreshing with no change keeps working.
  b.refresh();
  EXPECT_TRUE(b.authenticate(secret, kNow).ok());

  ASSERT_TRUE(a.revoke(created->first.id).ok());
  b.refresh();
  r = b.authenticate(secret, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("revoked"), std::string::npos);

  // B can revoke keys created by A, and sees names A used.
  auto second = a.create(fields("second"));
  ASSERT_TRUE(second.ok());
  b.refresh();
  EXPECT_TRUE(b.revoke(second->first.id).ok());
  auto dup = b.create(fields("second"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::bad_request);
  a.refresh();
  EXPECT_FALSE(a.authenticate(second->second, kNow).ok());
}

TEST_F(KeyStoreTest, DuplicateNameFromAnUnrefreshedInstance) {
  KeyStore a({}, db());
  KeyStore b({}, db());
  ASSERT_TRUE(a.create(fields("race")).ok());
  auto dup = b.create(fields("race"));  // B has not refreshed: the UNIQUE constraint catches it
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::bad_request);
}

TEST_F(KeyStoreTest, NoDatabaseStore) {
  KeyStore store({config_key("cfg", "config-secret")}, "");
  auto created = store.create(fields("new"));
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().code, Errc::unavailable);
  store.refresh();  // no-op
  EXPECT_TRUE(store.authenticate("config-secret", kNow).ok());
  EXPECT_EQ(store.list().size(), 1u);
  EXPECT_EQ(store.revoke("key_0123456789abcdef").error().code, Errc::not_found);
}

TEST_F(KeyStoreTest, CreateValidation) {
  KeyStore store({config_key("cfg", "config-secret")}, db());
  auto empty = store.create(fields(""));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, Errc::bad_request);

  ASSERT_TRUE(store.create(fields("dup")).ok());
  auto dup = store.create(fields("dup"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::bad_request);

  auto vs_config = store.create(fields("cfg"));
  ASSERT_FALSE(vs_config.ok());
  EXPECT_EQ(vs_config.error().code, Errc::bad_request);

  KeyRecord bad_model = fields("bad-model");
  bad_model.models = {"gpt\nclaude"};
  EXPECT_EQ(store.create(bad_model).error().code, Errc::bad_request);
  EXPECT_EQ(store.list().size(), 2u);
}

TEST_F(KeyStoreTest, MalformedPresentedKeysAreUnauthorized) {
  KeyStore store({config_key("cfg", "config-secret")}, db());
  ASSERT_TRUE(store.create(fields("k")).ok());
  const std::string nul_key("sk-sluice-\0abc", 14);
  const std::string huge(1 << 20, 'x');
  for (std::string_view presented :
       {std::string_view{}, std::string_view{""}, std::string_view{"sk-sluice-"},
        std::string_view{" "}, std::string_view{"\xff\xfe\x80"}, std::string_view{nul_key},
        std::string_view{huge}}) {
    Result<KeyRecord> r = store.authenticate(presented, kNow);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::unauthorized);
    EXPECT_EQ(r.error().message, "Invalid API key");
  }
}

TEST_F(KeyStoreTest, BadDatabasePathThrowsNamingTheFile) {
  std::string path = (dir_ / "missing-dir" / "keys.db").string();
  try {
    KeyStore store({}, path);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST_F(KeyStoreTest, ConcurrentAuthenticateDuringWrites) {
  KeyStore store({config_key("cfg", "config-secret")}, db());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        if (!store.authenticate("config-secret", kNow).ok()) failures.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 20; ++i) {
    auto created = store.create(fields("k" + std::to_string(i)));
    if (!created.ok()) {
      ADD_FAILURE() << created.error().message;
      break;
    }
    store.refresh();
    EXPECT_TRUE(store.revoke(created->first.id).ok());
  }
  stop.store(true);
  for (std::thread& th : readers) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace sluice::governance
