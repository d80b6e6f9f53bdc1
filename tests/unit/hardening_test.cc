// Regression tests for review findings that a unit can pin down: saturating token estimates
// (§1.1), per-model buckets keyed by their pattern (§1.6), secrets from the environment
// checked for control bytes (§2.4), forward_headers / context_window / errors config keys, and
// the validation of upstream unary answers.
#include <gtest/gtest.h>

#include <limits>
#include <memory>

#include "api/governance.h"
#include "common/saturating.h"
#include "config_test_support.h"
#include "providers/response_check.h"

namespace sluice {
namespace {

using config::test::error_of;
using config::test::ScopedEnv;

TEST(Saturating, NeverWraps) {
  EXPECT_EQ(sat_add(kInt64Max - 10, 100), kInt64Max);
  EXPECT_EQ(sat_add(kInt64Min + 10, -100), kInt64Min);
  EXPECT_EQ(sat_sub(100, kInt64Min), kInt64Max);
  EXPECT_EQ(sat_sub(-100, kInt64Max), kInt64Min);
  EXPECT_EQ(sat_mul(kInt64Max / 2, 3), kInt64Max);
  EXPECT_EQ(sat_mul(kInt64Max / 2, -3), kInt64Min);
  EXPECT_EQ(sat_add(2, 3), 5);
  EXPECT_EQ(clamp_nonneg(-5, 10), 0);
  EXPECT_EQ(clamp_nonneg(50, 10), 10);
}

TEST(TokenEstimate, HugeMaxTokensIsClampedNotWrapped) {
  // b6e93f9: 100/4 + 1 + (INT64_MAX - 10) wrapped negative and was admitted for free.
  int64_t e = api::estimate_request_tokens(100, kInt64Max - 10);
  EXPECT_GT(e, 0);
  EXPECT_EQ(e, 26 + api::kMaxTokensBound);
  EXPECT_EQ(api::estimate_request_tokens(100, 0), 26 + 1024);
  EXPECT_EQ(api::estimate_request_tokens(100, -5), 26 + 1024);
  EXPECT_GT(api::estimate_request_tokens(std::numeric_limits<size_t>::max(), kInt64Max), 0);
  EXPECT_EQ(api::estimate_request_tokens(100, 10, 3), 26 + 30);  // n answers
  EXPECT_GT(api::estimate_request_tokens(100, api::kMaxTokensBound, 128), 0);
}

TEST(GovernancePlan, PerModelBucketIsKeyedByTheMatchingPattern) {
  auto cfg = std::make_shared<config::Config>();
  config::RateLimits limits;
  limits.tokens_per_minute = 1000;
  cfg->rate_limits.per_model.emplace_back("gpt-4o*", limits);
  api::Governance governance(cfg);
  api::Identity anonymous;
  auto a = governance.plan(anonymous, "gpt-4o-a", 10);
  auto b = governance.plan(anonymous, "gpt-4o-b", 10);
  ASSERT_EQ(a.charges.size(), 1u);
  ASSERT_EQ(b.charges.size(), 1u);
  EXPECT_EQ(a.charges[0].key, "model:gpt-4o*:tpm");
  EXPECT_EQ(a.charges[0].key, b.charges[0].key);
  EXPECT_TRUE(governance.plan(anonymous, "claude", 10).charges.empty());
}

TEST(UsageStorage, SameStorageOnlyWhenEveryStorageSettingMatches) {
  config::Config a, b;
  EXPECT_TRUE(api::same_usage_storage(a, b));
  b.prices.push_back({"m", 1, 0, 1});  // prices and budgets are not storage
  b.budget_per_key.usd = 3;
  EXPECT_TRUE(api::same_usage_storage(a, b));
  b.usage_db = "/tmp/x.db";
  EXPECT_FALSE(api::same_usage_storage(a, b));
  config::Config c;
  c.budget_spend_in_redis = true;
  EXPECT_FALSE(api::same_usage_storage(a, c));
}

constexpr const char* kTargetWithKey =
    "routes:\n"
    "  - model: m\n"
    "    targets:\n"
    "      - provider: openai\n"
    "        base_url: http://127.0.0.1:9/v1\n"
    "        api_key_env: SLUICE_HARDENING_KEY\n";

TEST(EnvSecrets, ATrailingNewlineIsAConfigErrorNamingTheVariable) {
  ScopedEnv env("SLUICE_HARDENING_KEY", std::string("sk-abc123\n"));
  std::string e = error_of(kTargetWithKey);
  EXPECT_NE(e.find("SLUICE_HARDENING_KEY"), std::string::npos) << e;
  EXPECT_NE(e.find("line feed"), std::string::npos) << e;
  EXPECT_NE(e.find("routes[0].targets[0].api_key_env"), std::string::npos) << e;
  EXPECT_EQ(e.find("sk-abc123"), std::string::npos) << "the secret must not be echoed: " << e;
}

TEST(EnvSecrets, ControlBytesAnywhereAreRejectedAndCleanKeysAccepted) {
  {
    ScopedEnv env("SLUICE_HARDENING_KEY", std::string("sk-a\rb"));
    EXPECT_NE(error_of(kTargetWithKey).find("carriage return"), std::string::npos);
  }
  {
    ScopedEnv env("SLUICE_HARDENING_KEY", std::string("sk-a\x01" "b"));
    EXPECT_NE(error_of(kTargetWithKey).find("control character"), std::string::npos);
  }
  {
    ScopedEnv env("SLUICE_HARDENING_KEY", std::string("sk-clean-key"));
    EXPECT_EQ(error_of(kTargetWithKey), "");
  }
}

TEST(EnvSecrets, AdminTokenIsCheckedToo) {
  ScopedEnv env("SLUICE_HARDENING_ADMIN", std::string("token\n"));
  std::string e = error_of(std::string("admin: {token_env: SLUICE_HARDENING_ADMIN}\n") +
                           config::test::kDemoRoute);
  EXPECT_NE(e.find("SLUICE_HARDENING_ADMIN"), std::string::npos) << e;
}

TEST(ConfigKeys, ApiVersionMayNotCarryRequestLineBytes) {
  std::string e = error_of(
      "routes:\n"
      "  - model: m\n"
      "    targets:\n"
      "      - provider: openai\n"
      "        base_url: http://127.0.0.1:9/openai/deployments/d\n"
      "        api_style: azure\n"
      "        api_version: \"2024-06-01 HTTP/1.1\"\n");
  EXPECT_NE(e.find("api_version"), std::string::npos) << e;
}

TEST(ConfigKeys, ForwardHeadersContextWindowAndErrors) {
  auto c = config::parse_config(
      "errors: {expose_upstream: true}\n"
      "routes:\n"
      "  - model: m\n"
      "    context_window: 8192\n"
      "    targets:\n"
      "      - provider: openai\n"
      "        base_url: http://127.0.0.1:9/v1\n"
      "        forward_headers: [X-Trace-Id, \"x-mock-*\"]\n");
  EXPECT_TRUE(c->expose_upstream_errors);
  EXPECT_EQ(c->routes[0].context_window, 8192);
  EXPECT_EQ(c->routes[0].targets[0].forward_headers,
            (std::vector<std::string>{"x-trace-id", "x-mock-*"}));
  for (const char* bad : {"authorization", "Cookie", "x-api-key", "host", "bad header"}) {
    std::string e = error_of(std::string("routes:\n  - model: m\n    targets:\n"
                                         "      - provider: openai\n"
                                         "        base_url: http://127.0.0.1:9/v1\n"
                                         "        forward_headers: [\"") +
                             bad + "\"]\n");
    EXPECT_NE(e.find("forward_headers[0]"), std::string::npos) << bad << ": " << e;
  }
}

TEST(UnaryAnswerCheck, AcceptsWellFormedAnswersAndNamesWhatIsWrong) {
  using providers::check_unary_answer;
  using providers::Operation;
  EXPECT_FALSE(check_unary_answer(Operation::chat, R"({"id":"x","choices":[]})"));
  EXPECT_FALSE(check_unary_answer(Operation::completions, R"({"choices":[{"text":"a"}]})"));
  EXPECT_FALSE(check_unary_answer(Operation::embeddings, R"({"data":[{"embedding":[1]}]})"));
  auto truncated = check_unary_answer(Operation::chat, R"({"id":"x","choices":[{"mess)");
  ASSERT_TRUE(truncated);
  EXPECT_NE(truncated->find("not valid JSON"), std::string::npos) << *truncated;
  auto no_choices = check_unary_answer(Operation::chat, R"({"id":"x"})");
  ASSERT_TRUE(no_choices);
  EXPECT_NE(no_choices->find("'choices'"), std::string::npos) << *no_choices;
  EXPECT_TRUE(check_unary_answer(Operation::chat, "[1,2]"));
  EXPECT_TRUE(check_unary_answer(Operation::chat, ""));
  EXPECT_TRUE(check_unary_answer(Operation::embeddings, R"({"choices":[]})"));
}

TEST(UnaryAnswerCheck, ReadsUsageFromItsParseAsTheScannerWould) {
  using providers::check_unary_answer;
  using providers::Operation;
  for (std::string_view body : {
           R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":1}}})",
           R"({"usage":{"completion_tokens":7},"choices":[]})",
           R"({"data":[],"choices":[],"usage":{"prompt_tokens":0,"total_tokens":9}})",
           R"({"choices":[],"usage":{"total_tokens":9}})",
           R"({"choices":[],"usage":{"prompt_tokens":-3,"completion_tokens":4.0}})",
           R"({"choices":[],"usage":{}})",
       }) {
    SCOPED_TRACE(body);
    std::optional<providers::UsageTokens> usage;
    bool read = false;
    EXPECT_FALSE(check_unary_answer(Operation::chat, body, &usage, &read));
    EXPECT_TRUE(read);
    EXPECT_EQ(usage, providers::parse_usage(body));
  }
  std::optional<providers::UsageTokens> usage;
  bool read = false;
  EXPECT_FALSE(check_unary_answer(Operation::chat, R"({"choices":[],"usage":null})", &usage, &read));
  EXPECT_FALSE(read);  // no usage object: the caller scans (and finds none)
}

}  // namespace
}  // namespace sluice
