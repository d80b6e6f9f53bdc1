// Tests for the governance keys of the YAML config loader: `auth` (API keys hashed from the
// environment or given as SHA-256, model globs, limits, expiry, JWT settings and their files)
// and `rate_limits`, with every validation error and its YAML path, plus
// config/examples/governance.yaml.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "config_test_support.h"

namespace sluice::config {
namespace {

// SHA-256 of "sk-test", lower-case hex (printf %s sk-test | sha256sum).
constexpr const char* kSkTestSha256 =
    "f3abf2a6cc4f00987743db5f544ba345b4899ae31f326d8ee9c4816de153c9e0";
// SHA-256 of "" (any valid digest will do where the value does not matter).
constexpr const char* kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// `auth:` with the given body (keys at 2 spaces), then a demo route.
std::string with_auth(const std::string& body) { return "auth:\n" + body + kDemoRoute; }

// auth (enabled or not) with one key whose map body is `key` (flow-style contents, no braces).
std::string with_key(const std::string& key, bool enabled = true) {
  return with_auth(std::string("  enabled: ") + (enabled ? "true" : "false") +
                   "\n  keys:\n    - {" + key + "}\n");
}

// One key named k with a valid hash and the given extra flow-style entries.
std::string with_key_extra(const std::string& extra) {
  return with_key(std::string("name: k, key_sha256: \"") + kEmptySha256 + "\", " + extra);
}

std::string with_jwt(const std::string& body, bool auth_enabled = true) {
  return with_auth(std::string("  enabled: ") + (auth_enabled ? "true" : "false") +
                   "\n  jwt:\n" + body);
}

std::string with_rate_limits(const std::string& body) {
  return "rate_limits:\n" + body + kDemoRoute;
}

// A fresh directory under the test temp dir, removed with its contents at scope exit.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(std::filesystem::path(testing::TempDir()) / ("sluice_gov_test_" + name)) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string write(const std::string& name, const std::string& contents) const {
    const std::filesystem::path file = path_ / name;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << contents;
    return file.string();
  }
  std::string path() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// ---- Defaults --------------------------------------------------------------------------------

TEST(ConfigGovernanceDefaults, AuthIsDisabledAndNothingIsLimited) {
  const auto config = parse_config(kDemoRoute);
  EXPECT_FALSE(config->auth.enabled);
  EXPECT_EQ(config->auth.keys_db, "");
  EXPECT_TRUE(config->auth.keys.empty());
  const JwtConfig& jwt = config->auth.jwt;
  EXPECT_FALSE(jwt.enabled);
  EXPECT_TRUE(jwt.algorithms.empty());
  EXPECT_EQ(jwt.secret, "");
  EXPECT_EQ(jwt.secret_env, "");
  EXPECT_EQ(jwt.public_key_file, "");
  EXPECT_EQ(jwt.jwks_file, "");
  EXPECT_EQ(jwt.issuer, "");
  EXPECT_EQ(jwt.audience, "");
  EXPECT_EQ(jwt.clock_skew, Millis(60'000));
  EXPECT_EQ(jwt.tenant_claim, "tenant");
  EXPECT_FALSE(config->rate_limits.per_key.any());
  EXPECT_TRUE(config->rate_limits.per_tenant.empty());
  EXPECT_TRUE(config->rate_limits.per_model.empty());
}

TEST(ConfigGovernanceDefaults, EmptySectionsTakeTheDefaults) {
  const auto config = parse_config(std::string("auth:\nrate_limits:\n") + kDemoRoute);
  EXPECT_FALSE(config->auth.enabled);
  EXPECT_TRUE(config->auth.keys.empty());
  EXPECT_FALSE(config->rate_limits.per_key.any());
  const auto nested = parse_config(
      with_auth("  keys:\n  jwt:\n") + "rate_limits:\n  per_key:\n  per_tenant:\n  per_model:\n");
  EXPECT_TRUE(nested->auth.keys.empty());
  EXPECT_FALSE(nested->auth.jwt.enabled);
  EXPECT_TRUE(nested->rate_limits.per_model.empty());
}

TEST(ConfigGovernanceDefaults, TheDefaultConfigIsKeyless) {
  const auto config = load_config(kRepoRoot + "/config/sluice.yaml");
  EXPECT_FALSE(config->auth.enabled);
}

TEST(ConfigGovernanceKeys, RejectUnknownKeysWithTheirPath) {
  EXPECT_EQ(error_of(with_auth("  enable: true\n")), "auth.enable: unknown key");
  EXPECT_EQ(error_of(with_key_extra("tennant: x")), "auth.keys[0].tennant: unknown key");
  EXPECT_EQ(error_of(with_key_extra("limits: {rpm: 1}")), "auth.keys[0].limits.rpm: unknown key");
  EXPECT_EQ(error_of(with_jwt("    issuers: x\n")), "auth.jwt.issuers: unknown key");
  EXPECT_EQ(error_of(with_rate_limits("  per_user: {}\n")), "rate_limits.per_user: unknown key");
  EXPECT_EQ(error_of(with_auth("  enabled: yes\n")),
            "auth.enabled: expected true or false, got \"yes\"");
  EXPECT_EQ(error_of(with_auth("  keys: {a: 1}\n")), "auth.keys: expected a sequence, got a map");
  EXPECT_EQ(error_of(with_auth("  keys: [team-a]\n")),
            "auth.keys[0]: expected a map, got \"team-a\"");
}

// ---- auth.keys: secrets ----------------------------------------------------------------------

TEST(ConfigGovernanceKeys, HashKeyEnvWithSha256WhenEnabled) {
  ScopedEnv key("SLUICE_TEST_TEAM_KEY", "sk-test");
  const auto config = parse_config(with_key("name: team-a, key_env: SLUICE_TEST_TEAM_KEY"));
  ASSERT_TRUE(config->auth.enabled);
  ASSERT_EQ(config->auth.keys.size(), 1u);
  const ApiKeyConfig& k = config->auth.keys[0];
  EXPECT_EQ(k.name, "team-a");
  EXPECT_EQ(k.key_env, "SLUICE_TEST_TEAM_KEY");
  EXPECT_EQ(k.key_sha256, kSkTestSha256);
  EXPECT_EQ(k.tenant, "");
  EXPECT_TRUE(k.models.empty());
  EXPECT_FALSE(k.limits.any());
  EXPECT_EQ(k.expires_unix, 0);
}

TEST(ConfigGovernanceKeys, RequireTheKeyEnvVariableOnlyWhenAuthIsEnabled) {
  ScopedEnv key("SLUICE_TEST_TEAM_KEY", std::nullopt);
  EXPECT_EQ(error_of(with_key("name: a, key_env: SLUICE_TEST_TEAM_KEY")),
            "auth.keys[0].key_env: environment variable SLUICE_TEST_TEAM_KEY is not set");
  {
    ScopedEnv empty("SLUICE_TEST_TEAM_KEY", "");
    EXPECT_EQ(error_of(with_key("name: a, key_env: SLUICE_TEST_TEAM_KEY")),
              "auth.keys[0].key_env: environment variable SLUICE_TEST_TEAM_KEY is not set");
  }
  // Disabled: no secret needed, nothing hashed, everything else still parsed and checked.
  const auto config = parse_config(
      with_key("name: a, key_env: SLUICE_TEST_TEAM_KEY, tenant: t", /*enabled=*/false));
  EXPECT_FALSE(config->auth.enabled);
  ASSERT_EQ(config->auth.keys.size(), 1u);
  EXPECT_EQ(config->auth.keys[0].key_env, "SLUICE_TEST_TEAM_KEY");
  EXPECT_EQ(config->auth.keys[0].key_sha256, "");
  EXPECT_EQ(config->auth.keys[0].tenant, "t");
  EXPECT_EQ(error_of(with_key("name: a, key_env: \"sk-live-abc\"", false)),
            "auth.keys[0].key_env: must be the name of an environment variable (letters, digits, "
            "_), not its value");
}

TEST(ConfigGovernanceKeys, AcceptAPrecomputedSha256AndLowerCaseIt) {
  const std::string upper = "F3ABF2A6CC4F00987743DB5F544BA345B4899AE31F326D8EE9C4816DE153C9E0";
  const auto config = parse_config(with_key("name: a, key_sha256: \"" + upper + "\""));
  ASSERT_EQ(config->auth.keys.size(), 1u);
  EXPECT_EQ(config->auth.keys[0].key_sha256, kSkTestSha256);
  EXPECT_EQ(config->auth.keys[0].key_env, "");
}

TEST(ConfigGovernanceKeys, RejectAMalformedSha256WithoutEchoingIt) {
  const std::string expected =
      "auth.keys[0].key_sha256: must be the SHA-256 of the key as 64 hexadecimal characters (put "
      "the key itself in an environment variable and use key_env)";
  for (const std::string& bad : std::vector<std::string>{
           "sk-live-secret-value", std::string(kSkTestSha256).substr(1),
        std::string(kSkTestSha256) + "0", std::string(kSkTestSha256).substr(1) + "g", ""}) {
    SCOPED_TRACE(bad);
    const std::string error = error_of(with_key("name: a, key_sha256: \"" + bad + "\""));
    EXPECT_EQ(error, expected);
  }
  EXPECT_EQ(error_of(with_key("name: a, key_sha256: [x]")),
            "auth.keys[0].key_sha256: expected a string, got a sequence");
}

TEST(ConfigGovernanceKeys, RequireExactlyOneOfKeyEnvAndKeySha256) {
  ScopedEnv key("SLUICE_TEST_TEAM_KEY", "sk-test");
  EXPECT_EQ(error_of(with_key("name: a")), "auth.keys[0]: key_env or key_sha256 is required");
  EXPECT_EQ(error_of(with_key("name: a, tenant: t", false)),
            "auth.keys[0]: key_env or key_sha256 is required");
  EXPECT_EQ(error_of(with_key(std::string("name: a, key_env: SLUICE_TEST_TEAM_KEY, key_sha256: ") +
                              kSkTestSha256)),
            "auth.keys[0].key_sha256: cannot be used together with key_env (set exactly one)");
}

TEST(ConfigGovernanceKeys, RejectAnInlineKey) {
  const std::string expected =
      "auth.keys[0].key: inline secrets are not allowed; use key_env or key_sha256";
  EXPECT_EQ(error_of(with_key("name: a, key: sk-live-abc")), expected);
  // Even alongside a valid source, and even when auth is disabled.
  EXPECT_EQ(error_of(with_key_extra("key: sk-live-abc")), expected);
  EXPECT_EQ(error_of(with_key("name: a, key: sk-live-abc", false)), expected);
  EXPECT_EQ(error_of(with_key("key: sk-live-abc")).find("sk-live"), std::string::npos);
}

TEST(ConfigGovernanceKeys, RequireAUniqueNonEmptyName) {
  EXPECT_EQ(error_of(with_key(std::string("key_sha256: ") + kEmptySha256)),
            "auth.keys[0].name: required");
  EXPECT_EQ(error_of(with_key(std::string("name: \"\", key_sha256: ") + kEmptySha256)),
            "auth.keys[0].name: must not be empty");
  EXPECT_EQ(error_of(with_key(std::string("name: \"a\\tb\", key_sha256: ") + kEmptySha256)),
            "auth.keys[0].name: contains control characters");
  EXPECT_EQ(error_of(with_auth(std::string("  keys:\n") +
                               "    - {name: x, key_sha256: " + kEmptySha256 + "}\n" +
                               "    - {name: x, key_sha256: " + kSkTestSha256 + "}\n")),
            "auth.keys[1].name: duplicate key name \"x\"");
}

TEST(ConfigGovernanceKeys, RejectTwoKeysWithTheSameSecret) {
  ScopedEnv key("SLUICE_TEST_TEAM_KEY", "sk-test");
  EXPECT_EQ(error_of(with_auth(std::string("  enabled: true\n  keys:\n") +
                               "    - {name: a, key_sha256: " + kSkTestSha256 + "}\n" +
                               "    - {name: b, key_env: SLUICE_TEST_TEAM_KEY}\n")),
            "auth.keys[1].key_env: same secret as auth.keys[0]");
  EXPECT_EQ(error_of(with_auth(std::string("  keys:\n") +
                               "    - {name: a, key_sha256: " + kSkTestSha256 + "}\n" +
                               "    - {name: b, key_sha256: " + kEmptySha256 + "}\n" +
                               "    - {name: c, key_sha256: " + kEmptySha256 + "}\n")),
            "auth.keys[2].key_sha256: same secret as auth.keys[1]");
}

TEST(ConfigGovernanceKeys, ReadAllFieldsOfSeveralKeysInOrder) {
  ScopedEnv key("SLUICE_TEST_TEAM_KEY", "sk-test");
  const auto config = parse_config(with_auth(
      std::string("  enabled: true\n"
                  "  keys:\n"
                  "    - name: team-a\n"
                  "      key_env: SLUICE_TEST_TEAM_KEY\n"
                  "      tenant: alpha\n"
                  "      models: [\"gpt-4o*\", demo, \"o?-mini\"]\n"
                  "      limits: {requests_per_minute: 60, tokens_per_minute: 100000, "
                  "tokens_per_day: 0}\n"
                  "      expires: \"2026-12-31T00:00:00Z\"\n"
                  "    - name: team-b\n"
                  "      key_sha256: ") +
      kEmptySha256 + "\n"));
  ASSERT_EQ(config->auth.keys.size(), 2u);
  const ApiKeyConfig& a = config->auth.keys[0];
  EXPECT_EQ(a.name, "team-a");
  EXPECT_EQ(a.key_sha256, kSkTestSha256);
  EXPECT_EQ(a.tenant, "alpha");
  EXPECT_EQ(a.models, (std::vector<std::string>{"gpt-4o*", "demo", "o?-mini"}));
  EXPECT_EQ(a.limits.requests_per_minute, 60);
  EXPECT_EQ(a.limits.tokens_per_minute, 100000);
  EXPECT_EQ(a.limits.tokens_per_day, 0);
  EXPECT_EQ(a.expires_unix, 1798675200);
  const ApiKeyConfig& b = config->auth.keys[1];
  EXPECT_EQ(b.name, "team-b");
  EXPECT_EQ(b.key_sha256, kEmptySha256);
  EXPECT_TRUE(b.models.empty());
  EXPECT_FALSE(b.limits.any());
  EXPECT_EQ(b.expires_unix, 0);
}

// ---- auth.keys: models, tenant, limits, expiry ------------------------------------------------

TEST(ConfigGovernanceKeys, ValidateModelGlobs) {
  EXPECT_TRUE(parse_config(with_key_extra("models: []"))->auth.keys[0].models.empty());
  EXPECT_TRUE(parse_config(with_key_extra("models: ~"))->auth.keys[0].models.empty());
  EXPECT_EQ(parse_config(with_key_extra("models: [\"*\"]"))->auth.keys[0].models,
            std::vector<std::string>{"*"});
  EXPECT_EQ(error_of(with_key_extra("models: gpt-4o")),
            "auth.keys[0].models: expected a sequence, got \"gpt-4o\"");
  EXPECT_EQ(error_of(with_key_extra("models: [a, \"\"]")),
            "auth.keys[0].models[1]: must not be empty");
  EXPECT_EQ(error_of(with_key_extra("models: [a, {b: c}]")),
            "auth.keys[0].models[1]: expected a string, got a map");
  EXPECT_EQ(error_of(with_key_extra("models: [a, b, a]")),
            "auth.keys[0].models[2]: duplicate model \"a\" (first at auth.keys[0].models[0])");
}

TEST(ConfigGovernanceKeys, ValidateTheTenant) {
  EXPECT_EQ(error_of(with_key_extra("tenant: \"\"")), "auth.keys[0].tenant: must not be empty");
  EXPECT_EQ(error_of(with_key_extra("tenant: \"*\"")),
            "auth.keys[0].tenant: \"*\" is reserved (rate_limits.per_tenant uses it for each "
            "tenant)");
}

TEST(ConfigGovernanceKeys, ValidateLimits) {
  const auto config = parse_config(with_key_extra("limits: {tokens_per_day: 1000000000}"));
  const RateLimits& limits = config->auth.keys[0].limits;
  EXPECT_EQ(limits.requests_per_minute, 0);
  EXPECT_EQ(limits.tokens_per_minute, 0);
  EXPECT_EQ(limits.tokens_per_day, 1'000'000'000);
  EXPECT_TRUE(limits.any());
  EXPECT_EQ(error_of(with_key_extra("limits: {requests_per_minute: -1}")),
            "auth.keys[0].limits.requests_per_minute: must be >= 0");
  EXPECT_EQ(error_of(with_key_extra("limits: {tokens_per_minute: 1.5}")),
            "auth.keys[0].limits.tokens_per_minute: expected an integer, got \"1.5\"");
  EXPECT_EQ(error_of(with_key_extra("limits: {tokens_per_day: 10000000000000}")),
            "auth.keys[0].limits.tokens_per_day: must be <= 1000000000000");
  EXPECT_EQ(error_of(with_key_extra("limits: [1]")),
            "auth.keys[0].limits: expected a map, got a sequence");
}

TEST(ConfigGovernanceKeys, ParseRfc3339UtcExpiry) {
  const auto expires = [](const std::string& text) {
    return parse_config(with_key_extra("expires: \"" + text + "\""))->auth.keys[0].expires_unix;
  };
  EXPECT_EQ(expires("2026-12-31T00:00:00Z"), 1798675200);
  EXPECT_EQ(expires("2026-12-31T00:00:00+00:00"), 1798675200);
  EXPECT_EQ(expires("2026-12-31t00:00:00z"), 1798675200);
  EXPECT_EQ(expires("2026-12-31T00:00:00.999Z"), 1798675200);
  EXPECT_EQ(expires("2000-02-29T12:34:56Z"), 951827696);
  EXPECT_EQ(expires("1970-01-01T00:00:01Z"), 1);
  // Unquoted, YAML keeps it a plain scalar.
  EXPECT_EQ(parse_config(with_auth(std::string("  keys:\n    - name: a\n      key_sha256: ") +
                                   kEmptySha256 + "\n      expires: 2026-12-31T00:00:00Z\n"))
                ->auth.keys[0]
                .expires_unix,
            1798675200);
}

TEST(ConfigGovernanceKeys, RejectInvalidExpiry) {
  const auto error = [](const std::string& text) {
    return error_of(with_key_extra("expires: \"" + text + "\""));
  };
  const std::string path = "auth.keys[0].expires: ";
  const std::string expected = R"(expected an RFC 3339 UTC timestamp like "2026-12-31T00:00:00Z")";
  EXPECT_EQ(error("2026-12-31"), path + expected + ", got \"2026-12-31\"");
  EXPECT_EQ(error("2026-12-31 00:00:00Z"), path + expected + ", got \"2026-12-31 00:00:00Z\"");
  EXPECT_EQ(error("2026-12-31T00:00:00"), path + expected + ", got \"2026-12-31T00:00:00\"");
  EXPECT_EQ(error("2026-12-31T00:00Z"), path + expected + ", got \"2026-12-31T00:00Z\"");
  EXPECT_EQ(error("2026-12-31T00:00:00.Z"), path + expected + ", got \"2026-12-31T00:00:00.Z\"");
  EXPECT_EQ(error("next year"), path + expected + ", got \"next year\"");
  EXPECT_EQ(error("2026-12-31T00:00:00+02:00"),
            path + "must be in UTC (Z or +00:00), got \"2026-12-31T00:00:00+02:00\"");
  EXPECT_EQ(error("2026-12-31T00:00:00-00:00"),
            path + "must be in UTC (Z or +00:00), got \"2026-12-31T00:00:00-00:00\"");
  EXPECT_EQ(error("2026-02-29T00:00:00Z"), path + "invalid date or time \"2026-02-29T00:00:00Z\"");
  EXPECT_EQ(error("2026-13-01T00:00:00Z"), path + "invalid date or time \"2026-13-01T00:00:00Z\"");
  EXPECT_EQ(error("2026-04-31T00:00:00Z"), path + "invalid date or time \"2026-04-31T00:00:00Z\"");
  EXPECT_EQ(error("2026-12-31T24:00:00Z"), path + "invalid date or time \"2026-12-31T24:00:00Z\"");
  EXPECT_EQ(error("2026-12-31T23:60:00Z"), path + "invalid date or time \"2026-12-31T23:60:00Z\"");
  EXPECT_EQ(error("1970-01-01T00:00:00Z"), path + "must be after 1970-01-01T00:00:00Z");
  EXPECT_EQ(error("1969-12-31T00:00:00Z"), path + "must be after 1970-01-01T00:00:00Z");
  EXPECT_EQ(error_of(with_key_extra("expires: 1798675200")),
            path + expected + ", got \"1798675200\"");
}

// ---- auth.keys_db ----------------------------------------------------------------------------

TEST(ConfigGovernanceKeysDb, IsKeptAsGivenWhenParsedFromAString) {
  EXPECT_EQ(parse_config(with_auth("  keys_db: keys.db\n"))->auth.keys_db, "keys.db");
  EXPECT_EQ(parse_config(with_auth("  keys_db: /var/lib/sluice/keys.db\n"))->auth.keys_db,
            "/var/lib/sluice/keys.db");
  EXPECT_EQ(parse_config(with_auth("  keys_db: \"\"\n"))->auth.keys_db, "");
}

TEST(ConfigGovernanceKeysDb, IsRelativeToTheConfigFilesDirectory) {
  const TempDir dir("keys_db");
  const std::string config = dir.write("conf/sluice.yaml", with_auth("  keys_db: data/keys.db\n"));
  EXPECT_EQ(load_config(config)->auth.keys_db,
            (std::filesystem::path(dir.path()) / "conf" / "data" / "keys.db").string());
  const std::string absolute =
      dir.write("abs.yaml", with_auth("  keys_db: /var/lib/sluice/keys.db\n"));
  EXPECT_EQ(load_config(absolute)->auth.keys_db, "/var/lib/sluice/keys.db");
}

// ---- auth.jwt --------------------------------------------------------------------------------

TEST(ConfigGovernanceJwt, ReadEveryKeyAndResolveTheSecret) {
  ScopedEnv secret("SLUICE_TEST_JWT_SECRET", "a-long-enough-shared-secret-for-hs256!!");
  const TempDir dir("jwt_all");
  const std::string pem = dir.write("jwt.pem", "-----BEGIN PUBLIC KEY-----\n");
  const std::string jwks = dir.write("jwks.json", "{\"keys\": []}");
  const auto config = parse_config(with_jwt("    enabled: true\n"
                                            "    algorithms: [HS256, RS256, ES256]\n"
                                            "    secret_env: SLUICE_TEST_JWT_SECRET\n"
                                            "    public_key_file: \"" + pem + "\"\n"
                                            "    jwks_file: \"" + jwks + "\"\n"
                                            "    issuer: \"https://issuer.example\"\n"
                                            "    audience: sluice\n"
                                            "    clock_skew_ms: 0\n"
                                            "    tenant_claim: org\n"));
  const JwtConfig& jwt = config->auth.jwt;
  EXPECT_TRUE(jwt.enabled);
  EXPECT_EQ(jwt.algorithms, (std::vector<std::string>{"HS256", "RS256", "ES256"}));
  EXPECT_EQ(jwt.secret_env, "SLUICE_TEST_JWT_SECRET");
  EXPECT_EQ(jwt.secret, "a-long-enough-shared-secret-for-hs256!!");
  EXPECT_EQ(jwt.public_key_file, pem);
  EXPECT_EQ(jwt.jwks_file, jwks);
  EXPECT_EQ(jwt.issuer, "https://issuer.example");
  EXPECT_EQ(jwt.audience, "sluice");
  EXPECT_EQ(jwt.clock_skew, Millis(0));
  EXPECT_EQ(jwt.tenant_claim, "org");
}

TEST(ConfigGovernanceJwt, ValidateAlgorithms) {
  EXPECT_EQ(error_of(with_jwt("    algorithms: [RS256, PS256]\n")),
            "auth.jwt.algorithms[1]: unknown algorithm \"PS256\" (expected HS256, RS256, ES256)");
  EXPECT_EQ(error_of(with_jwt("    algorithms: [none]\n")),
            "auth.jwt.algorithms[0]: unknown algorithm \"none\" (expected HS256, RS256, ES256)");
  EXPECT_EQ(error_of(with_jwt("    algorithms: [hs256]\n")),
            "auth.jwt.algorithms[0]: unknown algorithm \"hs256\" (expected HS256, RS256, ES256)");
  EXPECT_EQ(error_of(with_jwt("    algorithms: RS256\n")),
            "auth.jwt.algorithms: expected a sequence, got \"RS256\"");
  EXPECT_EQ(error_of(with_jwt("    algorithms: [HS256, HS256]\n")),
            "auth.jwt.algorithms[1]: duplicate algorithm \"HS256\" (first at "
            "auth.jwt.algorithms[0])");
  EXPECT_EQ(error_of(with_jwt("    enabled: true\n")),
            "auth.jwt.algorithms: required when jwt is enabled");
  EXPECT_EQ(error_of(with_jwt("    enabled: true\n    algorithms: []\n")),
            "auth.jwt.algorithms: required when jwt is enabled");
  // Disabled: algorithms may be left out.
  EXPECT_FALSE(parse_config(with_jwt("    enabled: false\n"))->auth.jwt.enabled);
}

TEST(ConfigGovernanceJwt, RequireSecretEnvForHs256) {
  EXPECT_EQ(error_of(with_jwt("    enabled: true\n    algorithms: [HS256]\n")),
            "auth.jwt.secret_env: required when HS256 is allowed");
  EXPECT_EQ(error_of(with_jwt("    secret: hunter2\n")),
            "auth.jwt.secret: inline secrets are not allowed; use secret_env");
  EXPECT_EQ(error_of(with_jwt("    secret_env: \"not a name\"\n")),
            "auth.jwt.secret_env: must be the name of an environment variable (letters, digits, "
            "_), not its value");
  ScopedEnv secret("SLUICE_TEST_JWT_SECRET", std::nullopt);
  const std::string hs256 =
      "    enabled: true\n    algorithms: [HS256]\n    secret_env: SLUICE_TEST_JWT_SECRET\n";
  EXPECT_EQ(error_of(with_jwt(hs256)),
            "auth.jwt.secret_env: environment variable SLUICE_TEST_JWT_SECRET is not set");
  // With auth disabled, the secret is not needed (and not read).
  const auto config = parse_config(with_jwt(hs256, /*auth_enabled=*/false));
  EXPECT_TRUE(config->auth.jwt.enabled);
  EXPECT_EQ(config->auth.jwt.secret, "");
  // And with jwt disabled neither.
  EXPECT_EQ(error_of(with_jwt("    algorithms: [HS256]\n    secret_env: SLUICE_TEST_JWT_SECRET\n")),
            "");
}

TEST(ConfigGovernanceJwt, RequireAKeyFileForRs256AndEs256) {
  EXPECT_EQ(error_of(with_jwt("    enabled: true\n    algorithms: [RS256]\n")),
            "auth.jwt.public_key_file: public_key_file or jwks_file is required when RS256 is "
            "allowed");
  EXPECT_EQ(error_of(with_jwt("    enabled: true\n    algorithms: [ES256]\n")),
            "auth.jwt.public_key_file: public_key_file or jwks_file is required when ES256 is "
            "allowed");
  EXPECT_EQ(error_of(with_jwt("    enabled: true\n    algorithms: [RS256]\n"
                              "    public_key_file: \"\"\n")),
            "auth.jwt.public_key_file: public_key_file or jwks_file is required when RS256 is "
            "allowed");
  // Disabled: not required.
  EXPECT_EQ(error_of(with_jwt("    algorithms: [RS256]\n")), "");
}

TEST(ConfigGovernanceJwt, RequireGivenKeyFilesToExist) {
  const TempDir dir("jwt_missing");
  const std::string missing = dir.file("missing.pem");
  EXPECT_EQ(error_of(with_jwt("    public_key_file: \"" + missing + "\"\n")),
            "auth.jwt.public_key_file: cannot read file \"" + missing + "\"");
  EXPECT_EQ(error_of(with_jwt("    enabled: true\n    algorithms: [ES256]\n"
                              "    jwks_file: \"" + missing + "\"\n")),
            "auth.jwt.jwks_file: cannot read file \"" + missing + "\"");
  EXPECT_EQ(error_of(with_jwt("    jwks_file: \"" + dir.path() + "\"\n")),
            "auth.jwt.jwks_file: cannot read file \"" + dir.path() + "\"");
  const std::string jwks = dir.write("jwks.json", "{\"keys\": []}");
  EXPECT_EQ(parse_config(with_jwt("    enabled: true\n    algorithms: [RS256]\n"
                                  "    jwks_file: \"" + jwks + "\"\n"))
                ->auth.jwt.jwks_file,
            jwks);
}

TEST(ConfigGovernanceJwt, ResolveRelativeKeyFilesAgainstTheConfigFilesDirectory) {
  const TempDir dir("jwt_relative");
  dir.write("conf/keys/jwt.pem", "-----BEGIN PUBLIC KEY-----\n");
  dir.write("conf/jwks.json", "{\"keys\": []}");
  const std::string config = dir.write(
      "conf/sluice.yaml", with_jwt("    enabled: true\n    algorithms: [RS256, ES256]\n"
                                   "    public_key_file: keys/jwt.pem\n"
                                   "    jwks_file: ./jwks.json\n"));
  const auto loaded = load_config(config);
  const std::filesystem::path conf = std::filesystem::path(dir.path()) / "conf";
  EXPECT_EQ(loaded->auth.jwt.public_key_file, (conf / "keys" / "jwt.pem").string());
  EXPECT_EQ(loaded->auth.jwt.jwks_file, (conf / "jwks.json").string());

  // A file next to the config is not found relative to the working directory, and vice versa.
  const std::string wrong =
      dir.write("other/sluice.yaml", with_jwt("    public_key_file: keys/jwt.pem\n"));
  const std::string expected_missing =
      (std::filesystem::path(dir.path()) / "other" / "keys" / "jwt.pem").string();
  EXPECT_EQ(load_error_of(wrong),
            "auth.jwt.public_key_file: cannot read file \"" + expected_missing + "\"");
}

TEST(ConfigGovernanceJwt, ValidateOtherKeys) {
  EXPECT_EQ(error_of(with_jwt("    clock_skew_ms: -1\n")), "auth.jwt.clock_skew_ms: must be >= 0");
  EXPECT_EQ(error_of(with_jwt("    clock_skew_ms: 86400001\n")),
            "auth.jwt.clock_skew_ms: must be <= 86400000");
  EXPECT_EQ(error_of(with_jwt("    tenant_claim: \"\"\n")),
            "auth.jwt.tenant_claim: must not be empty");
  EXPECT_EQ(error_of(with_jwt("    enabled: maybe\n")),
            "auth.jwt.enabled: expected true or false, got \"maybe\"");
  EXPECT_EQ(error_of(with_jwt("    issuer: [a]\n")),
            "auth.jwt.issuer: expected a string, got a sequence");
}

// ---- rate_limits -----------------------------------------------------------------------------

TEST(ConfigGovernanceRateLimits, ReadEverySection) {
  const auto config = parse_config(with_rate_limits(
      "  per_key: {requests_per_minute: 10, tokens_per_minute: 20, tokens_per_day: 30}\n"
      "  per_tenant:\n"
      "    team-a: {requests_per_minute: 600}\n"
      "    \"*\": {requests_per_minute: 1000, tokens_per_day: 5}\n"
      "  per_model:\n"
      "    - {model: \"gpt-4o*\", requests_per_minute: 100, tokens_per_minute: 200000}\n"
      "    - {model: demo, tokens_per_day: 7}\n"
      "    - model: \"*\"\n"));
  const RateLimitConfig& limits = config->rate_limits;
  EXPECT_EQ(limits.per_key.requests_per_minute, 10);
  EXPECT_EQ(limits.per_key.tokens_per_minute, 20);
  EXPECT_EQ(limits.per_key.tokens_per_day, 30);
  ASSERT_EQ(limits.per_tenant.size(), 2u);
  EXPECT_EQ(limits.per_tenant.at("team-a").requests_per_minute, 600);
  EXPECT_EQ(limits.per_tenant.at("team-a").tokens_per_minute, 0);
  EXPECT_EQ(limits.per_tenant.at("*").requests_per_minute, 1000);
  EXPECT_EQ(limits.per_tenant.at("*").tokens_per_day, 5);
  ASSERT_EQ(limits.per_model.size(), 3u);
  EXPECT_EQ(limits.per_model[0].first, "gpt-4o*");
  EXPECT_EQ(limits.per_model[0].second.requests_per_minute, 100);
  EXPECT_EQ(limits.per_model[0].second.tokens_per_minute, 200000);
  EXPECT_EQ(limits.per_model[1].first, "demo");
  EXPECT_EQ(limits.per_model[1].second.tokens_per_day, 7);
  EXPECT_EQ(limits.per_model[2].first, "*");
  EXPECT_FALSE(limits.per_model[2].second.any());
}

TEST(ConfigGovernanceRateLimits, RejectInvalidEntriesWithTheirPath) {
  EXPECT_EQ(error_of(with_rate_limits("  per_key: {requests_per_minute: -5}\n")),
            "rate_limits.per_key.requests_per_minute: must be >= 0");
  EXPECT_EQ(error_of(with_rate_limits("  per_key: {requests_per_second: 5}\n")),
            "rate_limits.per_key.requests_per_second: unknown key");
  EXPECT_EQ(error_of(with_rate_limits("  per_tenant: [a]\n")),
            "rate_limits.per_tenant: expected a map, got a sequence");
  EXPECT_EQ(error_of(with_rate_limits("  per_tenant: {team-a: {tokens_per_minute: x}}\n")),
            "rate_limits.per_tenant.team-a.tokens_per_minute: expected an integer, got \"x\"");
  EXPECT_EQ(error_of(with_rate_limits("  per_tenant: {\"\": {requests_per_minute: 1}}\n")),
            "rate_limits.per_tenant.\"\": tenant name must not be empty");
  EXPECT_EQ(error_of(with_rate_limits("  per_tenant: {a: {rpm: 1}}\n")),
            "rate_limits.per_tenant.a.rpm: unknown key");
  EXPECT_EQ(error_of(with_rate_limits("  per_model: {gpt-4o: {requests_per_minute: 1}}\n")),
            "rate_limits.per_model: expected a sequence, got a map");
  EXPECT_EQ(error_of(with_rate_limits("  per_model:\n    - {requests_per_minute: 1}\n")),
            "rate_limits.per_model[0].model: required");
  EXPECT_EQ(error_of(with_rate_limits("  per_model:\n    - gpt-4o\n")),
            "rate_limits.per_model[0]: expected a map, got \"gpt-4o\"");
  EXPECT_EQ(error_of(with_rate_limits("  per_model:\n    - {model: \"\"}\n")),
            "rate_limits.per_model[0].model: must not be empty");
  EXPECT_EQ(error_of(with_rate_limits("  per_model:\n    - {model: a, limits: {}}\n")),
            "rate_limits.per_model[0].limits: unknown key");
  EXPECT_EQ(error_of(with_rate_limits("  per_model:\n    - {model: a, tokens_per_day: -1}\n")),
            "rate_limits.per_model[0].tokens_per_day: must be >= 0");
  EXPECT_EQ(error_of(with_rate_limits("  per_model:\n    - {model: a}\n    - {model: b}\n"
                                      "    - {model: a}\n")),
            "rate_limits.per_model[2].model: duplicate model \"a\" (first at "
            "rate_limits.per_model[0])");
}

// ---- The example -----------------------------------------------------------------------------

TEST(ConfigGovernanceExample, LoadsWithAnEmptyEnvironment) {
  ScopedEnv openai("OPENAI_API_KEY", std::nullopt);
  ScopedEnv admin("SLUICE_ADMIN_TOKEN", std::nullopt);
  ScopedEnv jwt("JWT_SECRET", std::nullopt);
  const auto config = load_config(kRepoRoot + "/config/examples/governance.yaml");
  EXPECT_TRUE(config->auth.enabled);
  ASSERT_EQ(config->auth.keys.size(), 2u);
  // The documented demo secrets hash to the values in the file.
  EXPECT_EQ(config->auth.keys[0].name, "team-a");
  EXPECT_EQ(config->auth.keys[0].key_sha256,
            "50a734ef22b610c7ad5e602d7a1aa5e39a9a39a6f6cc38aa2415f9d58b52146e");  // sk-demo-team-a
  EXPECT_EQ(config->auth.keys[1].key_sha256,
            "69a1ea6aaaae03a4b28e72194a044ebc6b63cdc969d9c93e4e92af76fc2be76d");  // sk-demo-team-b
  EXPECT_GT(config->auth.keys[1].expires_unix, 0);
  EXPECT_FALSE(config->auth.jwt.enabled);
  EXPECT_TRUE(config->rate_limits.per_key.any());
  EXPECT_EQ(config->rate_limits.per_tenant.count("*"), 1u);
  EXPECT_FALSE(config->rate_limits.per_model.empty());
  ASSERT_EQ(config->routes.size(), 1u);  // gpt-4o* is inactive without OPENAI_API_KEY
  EXPECT_EQ(config->routes[0].model, "demo");
}

}  // namespace
}  // namespace sluice::config

namespace sluice::config {
namespace {

TEST(ConfigRateLimitBackend, DefaultsToMemoryAndFailOpen) {
  auto c = parse_config(std::string("rate_limits: {}\n") + kDemoRoute);
  EXPECT_EQ(c->rate_limits.backend, RateLimitConfig::Backend::memory);
  EXPECT_TRUE(c->rate_limits.fail_open);
}

TEST(ConfigRateLimitBackend, ParsesRedisUrlTimeoutAndPolicy) {
  auto c = parse_config(std::string("rate_limits:\n  backend: redis\n  redis: {url: "
                                    "\"redis://10.1.2.3:6380\", timeout_ms: 100, on_error: "
                                    "fail_closed}\n") +
                        kDemoRoute);
  EXPECT_EQ(c->rate_limits.backend, RateLimitConfig::Backend::redis);
  EXPECT_EQ(c->rate_limits.redis_host, "10.1.2.3");
  EXPECT_EQ(c->rate_limits.redis_port, 6380);
  EXPECT_EQ(c->rate_limits.redis_timeout.count(), 100);
  EXPECT_FALSE(c->rate_limits.fail_open);
}

TEST(ConfigRateLimitBackend, RejectsBadBackendUrlAndPolicyWithTheirPaths) {
  EXPECT_EQ(error_of(std::string("rate_limits: {backend: etcd}\n") + kDemoRoute),
            "rate_limits.backend: unknown backend \"etcd\" (expected memory, redis)");
  EXPECT_EQ(error_of(std::string("rate_limits: {redis: {url: \"http://x:1\"}}\n") + kDemoRoute),
            "rate_limits.redis.url: expected redis://host:port");
  EXPECT_EQ(error_of(std::string("rate_limits: {redis: {url: \"redis://x:70000\"}}\n") +
                     kDemoRoute),
            "rate_limits.redis.url: port must be 1..65535");
  EXPECT_EQ(error_of(std::string("rate_limits: {redis: {on_error: maybe}}\n") + kDemoRoute),
            "rate_limits.redis.on_error: unknown policy \"maybe\" (expected fail_open, "
            "fail_closed)");
}

}  // namespace
}  // namespace sluice::config

namespace sluice::config {
namespace {

TEST(ConfigBudgets, ParsesPricesBudgetsAndUsageDb) {
  auto c = parse_config(std::string(
                            "prices:\n"
                            "  - {model: \"gpt-4o*\", input_per_million: 2.5, "
                            "cached_input_per_million: 1.25, output_per_million: 10}\n"
                            "budgets:\n"
                            "  per_key: {usd: 5}\n"
                            "  per_tenant: {team-a: {usd: 100, period: day}}\n"
                            "usage: {db: /tmp/u.db}\n") +
                        kDemoRoute);
  ASSERT_EQ(c->prices.size(), 1u);
  EXPECT_EQ(c->prices[0].model, "gpt-4o*");
  EXPECT_DOUBLE_EQ(c->prices[0].cached_input_per_million, 1.25);
  EXPECT_DOUBLE_EQ(c->budget_per_key.usd, 5);
  EXPECT_EQ(c->budget_per_key.period, Budget::Period::month);
  EXPECT_EQ(c->budget_per_tenant.at("team-a").period, Budget::Period::day);
  EXPECT_EQ(c->usage_db, "/tmp/u.db");
}

TEST(ConfigBudgets, RejectsBadBudgetsAndPricesWithTheirPaths) {
  EXPECT_EQ(error_of(std::string("budgets: {per_key: {usd: 5, period: week}}\n") + kDemoRoute),
            "budgets.per_key.period: unknown period \"week\" (expected day, month)");
  EXPECT_EQ(error_of(std::string("budgets: {per_key: {period: day}}\n") + kDemoRoute),
            "budgets.per_key.usd: required");
  EXPECT_EQ(error_of(std::string("prices: [{input_per_million: 1}]\n") + kDemoRoute),
            "prices[0].model: required");
  EXPECT_NE(error_of(std::string("prices: [{model: m, output_per_million: -1}]\n") + kDemoRoute)
                .find("prices[0].output_per_million"),
            std::string::npos);
}

// ---- pipeline --------------------------------------------------------------------------------

TEST(ConfigPipeline, DefaultsToTheGovernanceStagesInOrder) {
  const auto config = parse_config(kDemoRoute);
  EXPECT_EQ(config->pipeline.stages,
            (std::vector<std::string>{"authorize_model", "budget", "rate_limit", "usage", "cache"}));
}

TEST(ConfigPipeline, TakesAnOrderAndAStageLeftOut) {
  const auto config =
      parse_config(std::string("pipeline: {stages: [rate_limit, authorize_model]}\n") + kDemoRoute);
  EXPECT_EQ(config->pipeline.stages, (std::vector<std::string>{"rate_limit", "authorize_model"}));
  const auto none = parse_config(std::string("pipeline: {stages: []}\n") + kDemoRoute);
  EXPECT_TRUE(none->pipeline.stages.empty());
}

TEST(ConfigPipeline, RefusesWhatCannotWork) {
  auto err = [](const std::string& stages) {
    return error_of("pipeline:\n  stages: " + stages + "\n" + kDemoRoute);
  };
  EXPECT_EQ(err("[authorize_model, cachee]"),
            "pipeline.stages[1]: unknown stage \"cachee\" (known: authorize_model, budget, "
            "rate_limit, usage, cache)");
  EXPECT_EQ(err("[usage, usage]"), "pipeline.stages[1]: \"usage\" is listed twice");
  EXPECT_EQ(err("[rate_limit, budget, usage]"),
            "pipeline.stages: budget must come before rate_limit (a request over its budget "
            "would reserve rate-limit tokens first)");
  EXPECT_EQ(err("[budget]"),
            "pipeline.stages: budget needs usage in the pipeline (budgets are checked against "
            "the spend that usage records)");
  EXPECT_EQ(err("usage"), "pipeline.stages: expected a sequence, got \"usage\"");
  EXPECT_EQ(error_of(std::string("pipeline: {order: []}\n") + kDemoRoute),
            "pipeline.order: unknown key");
}

}  // namespace
}  // namespace sluice::config
