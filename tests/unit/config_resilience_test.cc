// Tests for the resilience keys of the YAML config loader: admin token, balancer, retry policy,
// fallbacks (and their cross-route resolution), target names, breaker, concurrency and health
// checks, with every validation error and its YAML path, plus config/examples/resilience.yaml.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "config/config.h"
#include "config_test_support.h"

namespace sluice::config {
namespace {

// One route `m` with the given route-level keys (4 spaces) and a demo target.
std::string with_route_keys(const std::string& keys) {
  return "routes:\n  - model: m\n" + keys + "    targets:\n      - provider: demo\n";
}

// One route `m` whose single demo target has the given extra keys (8 spaces, after provider).
std::string with_target_keys(const std::string& keys) {
  return "routes:\n  - model: m\n    targets:\n      - provider: demo\n" + keys;
}

std::string retry(const std::string& body) { return with_route_keys("    retry: " + body + "\n"); }
std::string breaker(const std::string& body) {
  return with_target_keys("        breaker: " + body + "\n");
}
std::string concurrency(const std::string& body) {
  return with_target_keys("        concurrency: " + body + "\n");
}
std::string health(const std::string& body) {
  return with_target_keys("        health: " + body + "\n");
}

// ---- Defaults ------------------------------------------------------------------------------

TEST(ConfigResilienceDefaults, FillEveryOmittedRouteKey) {
  const auto config = parse_config(with_route_keys(""));
  EXPECT_EQ(config->admin_token, "");
  ASSERT_EQ(config->routes.size(), 1u);
  const RouteConfig& route = config->routes[0];
  EXPECT_EQ(route.balancer, BalancerKind::weighted_round_robin);
  EXPECT_TRUE(route.fallbacks.empty());
  EXPECT_EQ(route.context_fallback, "");
  EXPECT_FALSE(route.fail_fast);
  const RetryPolicy& r = route.retry;
  EXPECT_EQ(r.max_attempts, 2);
  EXPECT_EQ(r.backoff_base, Millis(100));
  EXPECT_EQ(r.backoff_cap, Millis(2'000));
  EXPECT_EQ(r.jitter, Jitter::full);
  EXPECT_EQ(r.deadline, Millis(0));
  EXPECT_FALSE(r.retry_on_timeout);
  EXPECT_DOUBLE_EQ(r.budget_ratio, 0.2);
  EXPECT_EQ(r.budget_window, Millis(10'000));
  EXPECT_EQ(r.budget_min_retries, 3);
}

TEST(ConfigResilienceDefaults, FillEveryOmittedTargetKey) {
  const auto config = parse_config(with_target_keys(""));
  const TargetConfig& t = config->routes[0].targets[0];
  EXPECT_EQ(t.name, "m#0");
  EXPECT_TRUE(t.breaker.enabled);
  EXPECT_DOUBLE_EQ(t.breaker.failure_ratio, 0.5);
  EXPECT_EQ(t.breaker.min_requests, 10);
  EXPECT_EQ(t.breaker.window, Millis(10'000));
  EXPECT_EQ(t.breaker.cooldown, Millis(5'000));
  EXPECT_EQ(t.breaker.half_open_probes, 1);
  EXPECT_EQ(t.concurrency.max_in_flight, 0);
  EXPECT_EQ(t.concurrency.max_queue, 0);
  EXPECT_EQ(t.concurrency.queue_timeout, Millis(1'000));
  EXPECT_FALSE(t.health.enabled);
  EXPECT_EQ(t.health.path, "/models");
  EXPECT_EQ(t.health.interval, Millis(10'000));
  EXPECT_EQ(t.health.timeout, Millis(2'000));
  EXPECT_EQ(t.health.healthy_threshold, 2);
  EXPECT_EQ(t.health.unhealthy_threshold, 3);
}

TEST(ConfigResilienceDefaults, TreatEmptySectionsAsAllDefaults) {
  const auto config = parse_config(
      "admin:\n"
      "routes:\n  - model: m\n    retry:\n    fallbacks:\n    targets:\n"
      "      - provider: demo\n        breaker:\n        concurrency:\n        health:\n");
  const RouteConfig& route = config->routes[0];
  EXPECT_EQ(route.retry.max_attempts, 2);
  EXPECT_TRUE(route.fallbacks.empty());
  EXPECT_TRUE(route.targets[0].breaker.enabled);
  EXPECT_EQ(config->admin_token, "");
}

TEST(ConfigResilienceDefaults, NameTargetsAfterTheirRouteAndIndex) {
  const auto config = parse_config(
      "routes:\n"
      "  - model: gpt-4o*\n"
      "    targets:\n"
      "      - provider: demo\n"
      "      - provider: demo\n"
      "        name: backup\n"
      "      - provider: demo\n");
  const auto& targets = config->routes[0].targets;
  ASSERT_EQ(targets.size(), 3u);
  EXPECT_EQ(targets[0].name, "gpt-4o*#0");
  EXPECT_EQ(targets[1].name, "backup");
  EXPECT_EQ(targets[2].name, "gpt-4o*#2");
}

// ---- Every key -----------------------------------------------------------------------------

TEST(ConfigResilienceKeys, ReadEveryRouteKey) {
  const auto config = parse_config(
      "routes:\n"
      "  - model: main\n"
      "    balancer: least_in_flight\n"
      "    retry:\n"
      "      max_attempts: 4\n"
      "      backoff_base_ms: 50\n"
      "      backoff_cap_ms: 800\n"
      "      jitter: decorrelated\n"
      "      deadline_ms: 30000\n"
      "      retry_on_timeout: true\n"
      "      budget_ratio: 0.1\n"
      "      budget_window_ms: 20000\n"
      "      budget_min_retries: 0\n"
      "    fallbacks: [small, demo]\n"
      "    context_fallback: big\n"
      "    fail_fast: true\n"
      "    targets:\n      - provider: demo\n"
      "  - model: small\n    targets:\n      - provider: demo\n"
      "  - model: big\n    targets:\n      - provider: demo\n"
      "  - model: demo\n    targets:\n      - provider: demo\n");
  const RouteConfig& route = config->routes[0];
  EXPECT_EQ(route.balancer, BalancerKind::least_in_flight);
  EXPECT_EQ(route.retry.max_attempts, 4);
  EXPECT_EQ(route.retry.backoff_base, Millis(50));
  EXPECT_EQ(route.retry.backoff_cap, Millis(800));
  EXPECT_EQ(route.retry.jitter, Jitter::decorrelated);
  EXPECT_EQ(route.retry.deadline, Millis(30'000));
  EXPECT_TRUE(route.retry.retry_on_timeout);
  EXPECT_DOUBLE_EQ(route.retry.budget_ratio, 0.1);
  EXPECT_EQ(route.retry.budget_window, Millis(20'000));
  EXPECT_EQ(route.retry.budget_min_retries, 0);
  EXPECT_EQ(route.fallbacks, (std::vector<std::string>{"small", "demo"}));
  EXPECT_EQ(route.context_fallback, "big");
  EXPECT_TRUE(route.fail_fast);
}

TEST(ConfigResilienceKeys, ReadEveryTargetKey) {
  const auto config = parse_config(with_target_keys(
      "        name: primary\n"
      "        breaker: {enabled: false, failure_ratio: 1, min_requests: 5, window_ms: 30000,\n"
      "                  cooldown_ms: 7000, half_open_probes: 3}\n"
      "        concurrency: {max_in_flight: 8, max_queue: 16, queue_timeout_ms: 250}\n"
      "        health: {enabled: true, path: \"/health?deep=1\", interval_ms: 5000,\n"
      "                 timeout_ms: 5000, healthy_threshold: 1, unhealthy_threshold: 4}\n"));
  const TargetConfig& t = config->routes[0].targets[0];
  EXPECT_EQ(t.name, "primary");
  EXPECT_FALSE(t.breaker.enabled);
  EXPECT_DOUBLE_EQ(t.breaker.failure_ratio, 1.0);
  EXPECT_EQ(t.breaker.min_requests, 5);
  EXPECT_EQ(t.breaker.window, Millis(30'000));
  EXPECT_EQ(t.breaker.cooldown, Millis(7'000));
  EXPECT_EQ(t.breaker.half_open_probes, 3);
  EXPECT_EQ(t.concurrency.max_in_flight, 8);
  EXPECT_EQ(t.concurrency.max_queue, 16);
  EXPECT_EQ(t.concurrency.queue_timeout, Millis(250));
  EXPECT_TRUE(t.health.enabled);
  EXPECT_EQ(t.health.path, "/health?deep=1");
  EXPECT_EQ(t.health.interval, Millis(5'000));
  EXPECT_EQ(t.health.timeout, Millis(5'000));
  EXPECT_EQ(t.health.healthy_threshold, 1);
  EXPECT_EQ(t.health.unhealthy_threshold, 4);
}

TEST(ConfigResilienceKeys, ReadEveryBalancer) {
  const auto balancer_of = [](const std::string& name) {
    return parse_config(with_route_keys("    balancer: " + name + "\n"))->routes[0].balancer;
  };
  EXPECT_EQ(balancer_of("weighted_round_robin"), BalancerKind::weighted_round_robin);
  EXPECT_EQ(balancer_of("least_in_flight"), BalancerKind::least_in_flight);
  EXPECT_EQ(balancer_of("latency"), BalancerKind::latency);
}

TEST(ConfigResilienceKeys, ReadEveryJitter) {
  const auto jitter_of = [](const std::string& name) {
    return parse_config(retry("{jitter: " + name + "}"))->routes[0].retry.jitter;
  };
  EXPECT_EQ(jitter_of("full"), Jitter::full);
  EXPECT_EQ(jitter_of("equal"), Jitter::equal);
  EXPECT_EQ(jitter_of("none"), Jitter::none);
  EXPECT_EQ(jitter_of("decorrelated"), Jitter::decorrelated);
}

TEST(ConfigResilienceKeys, AcceptIntegersAndFloatsForRatios) {
  const auto ratio_of = [](const std::string& value) {
    return parse_config(retry("{budget_ratio: " + value + "}"))->routes[0].retry.budget_ratio;
  };
  EXPECT_DOUBLE_EQ(ratio_of("0"), 0.0);
  EXPECT_DOUBLE_EQ(ratio_of("1"), 1.0);
  EXPECT_DOUBLE_EQ(ratio_of("1.0"), 1.0);
  EXPECT_DOUBLE_EQ(ratio_of("0.25"), 0.25);
  EXPECT_DOUBLE_EQ(ratio_of("\"0.5\""), 0.5);
  EXPECT_DOUBLE_EQ(ratio_of("+0.5"), 0.5);
  EXPECT_DOUBLE_EQ(ratio_of("5e-2"), 0.05);
  EXPECT_DOUBLE_EQ(ratio_of(".75"), 0.75);
  EXPECT_DOUBLE_EQ(parse_config(breaker("{failure_ratio: 0.01}"))
                       ->routes[0].targets[0].breaker.failure_ratio,
                   0.01);
}

TEST(ConfigResilienceKeys, AcceptZeroWhereItMeansUnlimitedOrDefault) {
  const auto config = parse_config(
      "routes:\n  - model: m\n    retry: {deadline_ms: 0, budget_min_retries: 0}\n"
      "    targets:\n      - provider: demo\n"
      "        concurrency: {max_in_flight: 0, max_queue: 0, queue_timeout_ms: 0}\n");
  EXPECT_EQ(config->routes[0].retry.deadline, Millis(0));
  EXPECT_EQ(config->routes[0].targets[0].concurrency.queue_timeout, Millis(0));
}

TEST(ConfigResilienceKeys, AcceptYaml12BooleansOnly) {
  EXPECT_TRUE(parse_config(with_route_keys("    fail_fast: True\n"))->routes[0].fail_fast);
  EXPECT_FALSE(parse_config(with_route_keys("    fail_fast: FALSE\n"))->routes[0].fail_fast);
  EXPECT_EQ(error_of(with_route_keys("    fail_fast: yes\n")),
            "routes[0].fail_fast: expected true or false, got \"yes\"");
  EXPECT_EQ(error_of(with_route_keys("    fail_fast: 1\n")),
            "routes[0].fail_fast: expected true or false, got \"1\"");
  EXPECT_EQ(error_of(with_route_keys("    fail_fast: [true]\n")),
            "routes[0].fail_fast: expected true or false, got a sequence");
  EXPECT_EQ(error_of(retry("{retry_on_timeout: on}")),
            "routes[0].retry.retry_on_timeout: expected true or false, got \"on\"");
  EXPECT_EQ(error_of(breaker("{enabled: no}")),
            "routes[0].targets[0].breaker.enabled: expected true or false, got \"no\"");
  EXPECT_EQ(error_of(health("{enabled: maybe}")),
            "routes[0].targets[0].health.enabled: expected true or false, got \"maybe\"");
}

// ---- Unknown keys and wrong shapes -----------------------------------------------------------

TEST(ConfigResilienceErrors, RejectUnknownKeysWithTheirPath) {
  EXPECT_EQ(error_of(std::string("admin: {token: x}\n") + with_route_keys("")),
            "admin.token: unknown key");
  EXPECT_EQ(error_of(retry("{max_retries: 3}")), "routes[0].retry.max_retries: unknown key");
  EXPECT_EQ(error_of(breaker("{threshold: 3}")),
            "routes[0].targets[0].breaker.threshold: unknown key");
  EXPECT_EQ(error_of(concurrency("{limit: 3}")),
            "routes[0].targets[0].concurrency.limit: unknown key");
  EXPECT_EQ(error_of(health("{url: /x}")), "routes[0].targets[0].health.url: unknown key");
  EXPECT_EQ(error_of(with_route_keys("    fallback: demo\n")), "routes[0].fallback: unknown key");
}

TEST(ConfigResilienceErrors, RejectSectionsThatAreNotMaps) {
  EXPECT_EQ(error_of(std::string("admin: x\n") + with_route_keys("")),
            "admin: expected a map, got \"x\"");
  EXPECT_EQ(error_of(retry("3")), "routes[0].retry: expected a map, got \"3\"");
  EXPECT_EQ(error_of(breaker("[1]")), "routes[0].targets[0].breaker: expected a map, got a sequence");
  EXPECT_EQ(error_of(concurrency("8")),
            "routes[0].targets[0].concurrency: expected a map, got \"8\"");
  EXPECT_EQ(error_of(health("true")), "routes[0].targets[0].health: expected a map, got \"true\"");
}

// ---- admin -----------------------------------------------------------------------------------

TEST(ConfigAdmin, ReadsTheTokenFromTheNamedVariable) {
  ScopedEnv token("SLUICE_TEST_ADMIN_TOKEN", "s3cret-token");
  const auto config =
      parse_config("admin:\n  token_env: SLUICE_TEST_ADMIN_TOKEN\n" + with_route_keys(""));
  EXPECT_EQ(config->admin_token, "s3cret-token");
}

TEST(ConfigAdmin, LeavesTheTokenEmptyWhenTheVariableIsUnsetOrEmpty) {
  {
    ScopedEnv token("SLUICE_TEST_ADMIN_TOKEN", std::nullopt);
    EXPECT_EQ(parse_config("admin: {token_env: SLUICE_TEST_ADMIN_TOKEN}\n" + with_route_keys(""))
                  ->admin_token,
              "");
  }
  {
    ScopedEnv token("SLUICE_TEST_ADMIN_TOKEN", "");
    EXPECT_EQ(parse_config("admin: {token_env: SLUICE_TEST_ADMIN_TOKEN}\n" + with_route_keys(""))
                  ->admin_token,
              "");
  }
}

TEST(ConfigAdmin, RejectsATokenPastedIntoTokenEnvWithoutEchoingIt) {
  const std::string message =
      error_of("admin: {token_env: \"hunter2-secret!\"}\n" + with_route_keys(""));
  EXPECT_EQ(message,
            "admin.token_env: must be the name of an environment variable (letters, digits, _), "
            "not its value");
  EXPECT_EQ(message.find("hunter2"), std::string::npos);
  EXPECT_EQ(error_of("admin: {token_env: 1ABC}\n" + with_route_keys("")).rfind("admin.token_env: ", 0),
            0u);
}

// ---- balancer and retry errors ----------------------------------------------------------------

TEST(ConfigResilienceErrors, RejectAnUnknownBalancer) {
  EXPECT_EQ(error_of(with_route_keys("    balancer: random\n")),
            "routes[0].balancer: unknown balancer \"random\" (expected weighted_round_robin, "
            "least_in_flight, latency)");
}

TEST(ConfigResilienceErrors, RejectRetryValuesOutOfRange) {
  EXPECT_EQ(error_of(retry("{max_attempts: 0}")), "routes[0].retry.max_attempts: must be > 0");
  EXPECT_EQ(error_of(retry("{max_attempts: 11}")), "routes[0].retry.max_attempts: must be <= 10");
  EXPECT_EQ(error_of(retry("{max_attempts: 2.5}")),
            "routes[0].retry.max_attempts: expected an integer, got \"2.5\"");
  EXPECT_EQ(error_of(retry("{backoff_base_ms: 0}")),
            "routes[0].retry.backoff_base_ms: must be > 0");
  EXPECT_EQ(error_of(retry("{backoff_cap_ms: -5}")),
            "routes[0].retry.backoff_cap_ms: must be > 0");
  EXPECT_EQ(error_of(retry("{deadline_ms: -1}")), "routes[0].retry.deadline_ms: must be >= 0");
  EXPECT_EQ(error_of(retry("{deadline_ms: 86400001}")),
            "routes[0].retry.deadline_ms: must be <= 86400000");
  EXPECT_EQ(error_of(retry("{budget_window_ms: 0}")),
            "routes[0].retry.budget_window_ms: must be > 0");
  EXPECT_EQ(error_of(retry("{budget_min_retries: -1}")),
            "routes[0].retry.budget_min_retries: must be >= 0");
  EXPECT_EQ(error_of(retry("{jitter: random}")),
            "routes[0].retry.jitter: unknown jitter \"random\" (expected full, equal, none, "
            "decorrelated)");
}

TEST(ConfigResilienceErrors, RejectABackoffCapBelowTheBase) {
  EXPECT_EQ(error_of(retry("{backoff_base_ms: 500, backoff_cap_ms: 400}")),
            "routes[0].retry.backoff_cap_ms: must be >= backoff_base_ms (500)");
  EXPECT_EQ(error_of(retry("{backoff_cap_ms: 50}")),
            "routes[0].retry.backoff_cap_ms: must be >= backoff_base_ms (100)");
  EXPECT_EQ(error_of(retry("{backoff_base_ms: 5000}")),
            "routes[0].retry.backoff_base_ms: must be <= backoff_cap_ms (2000, the default)");
  EXPECT_EQ(error_of(retry("{backoff_base_ms: 300, backoff_cap_ms: 300}")), "");
}

TEST(ConfigResilienceErrors, RejectBadBudgetRatios) {
  EXPECT_EQ(error_of(retry("{budget_ratio: -0.1}")), "routes[0].retry.budget_ratio: must be >= 0");
  EXPECT_EQ(error_of(retry("{budget_ratio: 1.01}")), "routes[0].retry.budget_ratio: must be <= 1");
  EXPECT_EQ(error_of(retry("{budget_ratio: 20%}")),
            "routes[0].retry.budget_ratio: expected a number, got \"20%\"");
  EXPECT_EQ(error_of(retry("{budget_ratio: .nan}")),
            "routes[0].retry.budget_ratio: expected a number, got \".nan\"");
  EXPECT_EQ(error_of(retry("{budget_ratio: nan}")),
            "routes[0].retry.budget_ratio: expected a number, got \"nan\"");
  EXPECT_EQ(error_of(retry("{budget_ratio: inf}")),
            "routes[0].retry.budget_ratio: expected a number, got \"inf\"");
  EXPECT_EQ(error_of(retry("{budget_ratio: 0x1}")),
            "routes[0].retry.budget_ratio: expected a number, got \"0x1\"");
  EXPECT_EQ(error_of(retry("{budget_ratio: \"\"}")),
            "routes[0].retry.budget_ratio: expected a number, got \"\"");
  EXPECT_EQ(error_of(retry("{budget_ratio: [0.1]}")),
            "routes[0].retry.budget_ratio: expected a number, got a sequence");
}

// ---- target errors ------------------------------------------------------------------------------

TEST(ConfigResilienceErrors, RejectBadBreakerValues) {
  EXPECT_EQ(error_of(breaker("{failure_ratio: 0}")),
            "routes[0].targets[0].breaker.failure_ratio: must be > 0");
  EXPECT_EQ(error_of(breaker("{failure_ratio: 1.5}")),
            "routes[0].targets[0].breaker.failure_ratio: must be <= 1");
  EXPECT_EQ(error_of(breaker("{min_requests: 0}")),
            "routes[0].targets[0].breaker.min_requests: must be > 0");
  EXPECT_EQ(error_of(breaker("{window_ms: 0}")),
            "routes[0].targets[0].breaker.window_ms: must be > 0");
  EXPECT_EQ(error_of(breaker("{cooldown_ms: 0}")),
            "routes[0].targets[0].breaker.cooldown_ms: must be > 0");
  EXPECT_EQ(error_of(breaker("{half_open_probes: 0}")),
            "routes[0].targets[0].breaker.half_open_probes: must be > 0");
}

TEST(ConfigResilienceErrors, RejectNegativeConcurrencyValues) {
  EXPECT_EQ(error_of(concurrency("{max_in_flight: -1}")),
            "routes[0].targets[0].concurrency.max_in_flight: must be >= 0");
  EXPECT_EQ(error_of(concurrency("{max_queue: -1}")),
            "routes[0].targets[0].concurrency.max_queue: must be >= 0");
  EXPECT_EQ(error_of(concurrency("{queue_timeout_ms: -1}")),
            "routes[0].targets[0].concurrency.queue_timeout_ms: must be >= 0");
  EXPECT_EQ(error_of(concurrency("{max_in_flight: lots}")),
            "routes[0].targets[0].concurrency.max_in_flight: expected an integer, got \"lots\"");
}

TEST(ConfigResilienceErrors, RejectBadHealthChecks) {
  EXPECT_EQ(error_of(health("{path: models}")),
            "routes[0].targets[0].health.path: must start with '/'");
  EXPECT_EQ(error_of(health("{path: \"\"}")),
            "routes[0].targets[0].health.path: must start with '/'");
  EXPECT_EQ(error_of(health("{path: \"/a b\"}")),
            "routes[0].targets[0].health.path: must not contain spaces, control characters or '#'");
  EXPECT_EQ(error_of(health("{interval_ms: 0}")),
            "routes[0].targets[0].health.interval_ms: must be > 0");
  EXPECT_EQ(error_of(health("{timeout_ms: 0}")),
            "routes[0].targets[0].health.timeout_ms: must be > 0");
  EXPECT_EQ(error_of(health("{interval_ms: 1000, timeout_ms: 1500}")),
            "routes[0].targets[0].health.timeout_ms: must be <= interval_ms (1000)");
  EXPECT_EQ(error_of(health("{timeout_ms: 20000}")),
            "routes[0].targets[0].health.timeout_ms: must be <= interval_ms (10000)");
  EXPECT_EQ(error_of(health("{interval_ms: 1000}")),
            "routes[0].targets[0].health.interval_ms: must be >= timeout_ms (2000, the default)");
  EXPECT_EQ(error_of(health("{healthy_threshold: 0}")),
            "routes[0].targets[0].health.healthy_threshold: must be > 0");
  EXPECT_EQ(error_of(health("{unhealthy_threshold: 0}")),
            "routes[0].targets[0].health.unhealthy_threshold: must be > 0");
}

TEST(ConfigResilienceErrors, RejectBadTargetNames) {
  EXPECT_EQ(error_of(with_target_keys("        name: \"\"\n")),
            "routes[0].targets[0].name: must not be empty");
  EXPECT_EQ(error_of(with_target_keys("        name: \"a\\nb\"\n")),
            "routes[0].targets[0].name: contains control characters");
  EXPECT_EQ(error_of(with_target_keys("        name: [a]\n")),
            "routes[0].targets[0].name: expected a string, got a sequence");
}

TEST(ConfigResilienceErrors, RejectDuplicateTargetNamesAcrossTheFile) {
  EXPECT_EQ(error_of("routes:\n"
                     "  - model: a\n    targets:\n"
                     "      - {provider: demo, name: x}\n"
                     "  - model: b\n    targets:\n"
                     "      - {provider: demo, name: x}\n"),
            "routes[1].targets[0].name: duplicate target name \"x\" (also routes[0].targets[0])");
  // A name written in the file is blamed, not the defaulted one it collides with.
  EXPECT_EQ(error_of("routes:\n"
                     "  - model: a\n    targets:\n"
                     "      - {provider: demo, name: \"b#0\"}\n"
                     "  - model: b\n    targets:\n"
                     "      - {provider: demo}\n"),
            "routes[0].targets[0].name: duplicate target name \"b#0\" (also routes[1].targets[0])");
  // Inactive routes count too, so validity does not depend on the environment.
  ScopedEnv unset("SLUICE_TEST_UNSET_VAR", std::nullopt);
  EXPECT_EQ(error_of("routes:\n"
                     "  - model: a\n    when_env: SLUICE_TEST_UNSET_VAR\n    targets:\n"
                     "      - {provider: demo, name: x}\n"
                     "  - model: b\n    targets:\n"
                     "      - {provider: demo, name: x}\n"),
            "routes[1].targets[0].name: duplicate target name \"x\" (also routes[0].targets[0])");
}

// ---- fallbacks: shape -----------------------------------------------------------------------

TEST(ConfigFallbacks, RejectBadShapes) {
  EXPECT_EQ(error_of(with_route_keys("    fallbacks: demo\n")),
            "routes[0].fallbacks: expected a sequence, got \"demo\"");
  EXPECT_EQ(error_of(with_route_keys("    fallbacks: [\"\"]\n")),
            "routes[0].fallbacks[0]: must not be empty");
  EXPECT_EQ(error_of(with_route_keys("    fallbacks: [demo, {a: b}]\n")),
            "routes[0].fallbacks[1]: expected a string, got a map");
  EXPECT_EQ(error_of(with_route_keys("    fallbacks: [\"gpt-*\"]\n")),
            "routes[0].fallbacks[0]: must be a model name, not a glob pattern (got \"gpt-*\")");
  EXPECT_EQ(error_of(with_route_keys("    fallbacks: [x, y, x]\n")),
            "routes[0].fallbacks[2]: duplicate fallback \"x\" (first at routes[0].fallbacks[0])");
  EXPECT_EQ(error_of(with_route_keys("    context_fallback: \"\"\n")),
            "routes[0].context_fallback: must not be empty");
  EXPECT_EQ(error_of(with_route_keys("    context_fallback: [a]\n")),
            "routes[0].context_fallback: expected a string, got a sequence");
  EXPECT_EQ(error_of(with_route_keys("    context_fallback: big-?\n")),
            "routes[0].context_fallback: must be a model name, not a glob pattern (got \"big-?\")");
}

// ---- fallbacks: resolution ------------------------------------------------------------------

constexpr const char* kTwoRoutes =
    "  - model: demo\n    targets:\n      - provider: demo\n"
    "  - model: \"gpt-4o*\"\n    targets:\n      - provider: demo\n";

std::string main_route(const std::string& keys) {
  return "routes:\n  - model: main\n" + keys + "    targets:\n      - provider: demo\n" +
         kTwoRoutes;
}

TEST(ConfigFallbacks, ResolveToAnExactRoute) {
  const auto config = parse_config(main_route("    fallbacks: [demo]\n"));
  EXPECT_EQ(config->routes[0].fallbacks, (std::vector<std::string>{"demo"}));
}

TEST(ConfigFallbacks, ResolveThroughAGlob) {
  const auto config = parse_config(
      main_route("    fallbacks: [gpt-4o-mini, demo]\n    context_fallback: gpt-4o-128k\n"));
  EXPECT_EQ(config->routes[0].fallbacks, (std::vector<std::string>{"gpt-4o-mini", "demo"}));
  EXPECT_EQ(config->routes[0].context_fallback, "gpt-4o-128k");
}

TEST(ConfigFallbacks, ResolveLaterRoutesToo) {
  // The fallback's route comes after the route naming it: checked once every route is read.
  EXPECT_EQ(error_of("routes:\n"
                     "  - model: a\n    fallbacks: [b]\n    targets:\n      - provider: demo\n"
                     "  - model: b\n    fallbacks: [a]\n    targets:\n      - provider: demo\n"),
            "");
}

TEST(ConfigFallbacks, RejectAMissingModelWithItsPath) {
  EXPECT_EQ(error_of(main_route("    fallbacks: [demo, claude-3]\n")),
            "routes[0].fallbacks[1]: no route serves model \"claude-3\"");
  EXPECT_EQ(error_of(main_route("    context_fallback: gpt-5\n")),
            "routes[0].context_fallback: no route serves model \"gpt-5\"");
  // Globs are case-sensitive, like the router.
  EXPECT_EQ(error_of(main_route("    fallbacks: [GPT-4o]\n")),
            "routes[0].fallbacks[0]: no route serves model \"GPT-4o\"");
}

TEST(ConfigFallbacks, RejectFallingBackToItself) {
  EXPECT_EQ(error_of(main_route("    fallbacks: [demo, main]\n")),
            "routes[0].fallbacks[1]: a route cannot fall back to itself");
  EXPECT_EQ(error_of(main_route("    context_fallback: main\n")),
            "routes[0].context_fallback: a route cannot fall back to itself");
  // A glob route whose own pattern would serve the fallback.
  EXPECT_EQ(error_of("routes:\n"
                     "  - model: \"gpt-*\"\n    fallbacks: [gpt-4o-mini]\n"
                     "    targets:\n      - provider: demo\n"),
            "routes[0].fallbacks[0]: a route cannot fall back to itself (its pattern \"gpt-*\" "
            "matches \"gpt-4o-mini\")");
}

TEST(ConfigFallbacks, ResolveLikeTheRouterExactBeforeGlob) {
  // gpt-* would match gpt-4o-mini, but the exact route wins, so this is not a self-fallback.
  const auto config = parse_config(
      "routes:\n"
      "  - model: \"gpt-*\"\n    fallbacks: [gpt-4o-mini]\n    targets:\n      - provider: demo\n"
      "  - model: gpt-4o-mini\n    targets:\n      - provider: demo\n");
  EXPECT_EQ(config->routes[0].fallbacks, (std::vector<std::string>{"gpt-4o-mini"}));
  // Among globs the first in file order wins.
  EXPECT_EQ(error_of("routes:\n"
                     "  - model: \"gpt-4o*\"\n    targets:\n      - provider: demo\n"
                     "  - model: \"gpt-*\"\n    fallbacks: [gpt-4o-mini]\n"
                     "    targets:\n      - provider: demo\n"),
            "");
}

TEST(ConfigFallbacks, RejectAFallbackServedOnlyByAnInactiveRoute) {
  ScopedEnv unset("SLUICE_TEST_UNSET_VAR", std::nullopt);
  EXPECT_EQ(error_of("routes:\n"
                     "  - model: main\n    fallbacks: [claude-3]\n"
                     "    targets:\n      - provider: demo\n"
                     "  - model: \"claude-*\"\n    when_env: SLUICE_TEST_UNSET_VAR\n"
                     "    targets:\n      - provider: demo\n"),
            "routes[0].fallbacks[0]: no route serves model \"claude-3\" (routes[1] would, but it "
            "is inactive: SLUICE_TEST_UNSET_VAR is unset)");
  EXPECT_EQ(error_of("routes:\n"
                     "  - model: big\n    when_env: SLUICE_TEST_UNSET_VAR\n"
                     "    targets:\n      - provider: demo\n"
                     "  - model: main\n    context_fallback: big\n"
                     "    targets:\n      - provider: demo\n"),
            "routes[1].context_fallback: no route serves model \"big\" (routes[0] would, but it is "
            "inactive: SLUICE_TEST_UNSET_VAR is unset)");
}

TEST(ConfigFallbacks, AcceptAFallbackToARouteActivatedByTheEnvironment) {
  ScopedEnv set("SLUICE_TEST_SET_VAR", "1");
  const auto config = parse_config(
      "routes:\n"
      "  - model: main\n    fallbacks: [claude-3]\n    targets:\n      - provider: demo\n"
      "  - model: \"claude-*\"\n    when_env: SLUICE_TEST_SET_VAR\n"
      "    targets:\n      - provider: demo\n");
  ASSERT_EQ(config->routes.size(), 2u);
  EXPECT_EQ(config->routes[0].fallbacks, (std::vector<std::string>{"claude-3"}));
}

TEST(ConfigFallbacks, SkipTheFallbacksOfInactiveRoutes) {
  ScopedEnv unset("SLUICE_TEST_UNSET_VAR", std::nullopt);
  // The inactive route falls back to a model nothing serves, and to itself: not checked.
  const auto config = parse_config(
      "routes:\n"
      "  - model: opt\n    when_env: SLUICE_TEST_UNSET_VAR\n"
      "    fallbacks: [nowhere, opt]\n    context_fallback: also-nowhere\n"
      "    targets:\n      - provider: demo\n"
      "  - model: demo\n    targets:\n      - provider: demo\n");
  ASSERT_EQ(config->routes.size(), 1u);
  EXPECT_EQ(config->routes[0].model, "demo");
  // ...but their shape still is.
  EXPECT_EQ(error_of("routes:\n"
                     "  - model: opt\n    when_env: SLUICE_TEST_UNSET_VAR\n"
                     "    fallbacks: [\"*\"]\n    targets:\n      - provider: demo\n"
                     "  - model: demo\n    targets:\n      - provider: demo\n"),
            "routes[0].fallbacks[0]: must be a model name, not a glob pattern (got \"*\")");
}

TEST(ConfigFallbacks, NameTheFileIndexOfTheRouteNotItsActiveIndex) {
  ScopedEnv unset("SLUICE_TEST_UNSET_VAR", std::nullopt);
  EXPECT_EQ(error_of("routes:\n"
                     "  - model: opt\n    when_env: SLUICE_TEST_UNSET_VAR\n"
                     "    targets:\n      - provider: demo\n"
                     "  - model: main\n    fallbacks: [demo, missing]\n"
                     "    targets:\n      - provider: demo\n"
                     "  - model: demo\n    targets:\n      - provider: demo\n"),
            "routes[1].fallbacks[1]: no route serves model \"missing\"");
}

// ---- The shipped example ------------------------------------------------------------------------

TEST(ConfigResilienceExample, LoadsWithAnEmptyEnvironment) {
  ScopedEnv key("OPENAI_API_KEY", std::nullopt);
  ScopedEnv backup("OPENAI_API_KEY_BACKUP", std::nullopt);
  ScopedEnv admin("SLUICE_ADMIN_TOKEN", std::nullopt);
  const auto config = load_config(kRepoRoot + "/config/examples/resilience.yaml");
  EXPECT_EQ(config->admin_token, "");
  ASSERT_GE(config->routes.size(), 2u);
  const RouteConfig& route = config->routes[0];
  ASSERT_EQ(route.targets.size(), 2u);
  EXPECT_EQ(route.targets[0].provider, ProviderKind::openai);
  EXPECT_EQ(route.targets[1].provider, ProviderKind::openai);
  EXPECT_NE(route.targets[0].weight, route.targets[1].weight);
  EXPECT_GT(route.retry.max_attempts, 1);
  EXPECT_EQ(route.fallbacks, (std::vector<std::string>{"demo"}));
  EXPECT_TRUE(route.targets[0].breaker.enabled);
  EXPECT_GT(route.targets[0].concurrency.max_in_flight, 0);
  bool serves_demo = false;
  for (const RouteConfig& r : config->routes) serves_demo |= r.model == "demo";
  EXPECT_TRUE(serves_demo);
}

TEST(ConfigResilienceExample, ReadsTheAdminTokenFromTheEnvironment) {
  ScopedEnv admin("SLUICE_ADMIN_TOKEN", "admin-secret");
  const auto config = load_config(kRepoRoot + "/config/examples/resilience.yaml");
  EXPECT_EQ(config->admin_token, "admin-secret");
}

}  // namespace
}  // namespace sluice::config
