// Tests for the YAML config loader: defaults, every validation error with its exact YAML path,
// env-based secrets and route activation, base_url parsing, glob matching, and the shipped files.
#include "config/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "config_test_support.h"

namespace sluice::config {
namespace {

// A config with one route `m` whose single target is the given YAML (target keys at 6 spaces).
std::string with_target(const std::string& target_keys) {
  return "routes:\n  - model: m\n    targets:\n      - " + target_keys;
}

std::string write_temp_file(const std::string& name, const std::string& contents) {
  const std::string path = testing::TempDir() + "sluice_config_test_" + name;
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

// ---- Defaults ------------------------------------------------------------------------------

TEST(ConfigDefaults, FillEveryOmittedKey) {
  const auto config = parse_config(kDemoRoute);
  EXPECT_EQ(config->server.listen_host, "127.0.0.1");
  EXPECT_EQ(config->server.listen_port, 8080);
  EXPECT_EQ(config->server.threads, 0);
  EXPECT_EQ(config->server.max_header_bytes, 64u * 1024);
  EXPECT_EQ(config->server.max_body_bytes, 16u * 1024 * 1024);
  EXPECT_EQ(config->server.header_timeout, Millis(10'000));
  EXPECT_EQ(config->server.body_timeout, Millis(60'000));
  EXPECT_EQ(config->server.idle_timeout, Millis(60'000));
  EXPECT_EQ(config->server.max_connections, 20'000u);
  EXPECT_EQ(config->server.drain_timeout, Millis(15'000));
  EXPECT_EQ(config->upstream.max_idle_per_host, 64u);
  EXPECT_EQ(config->upstream.idle_timeout, Millis(60'000));
  EXPECT_EQ(config->upstream.max_connections_per_host, 1024u);
  EXPECT_EQ(config->upstream.dns_ttl, Millis(30'000));
  EXPECT_EQ(config->upstream.ca_file, "");
  EXPECT_EQ(config->upstream.timeouts.connect, Millis(5'000));
  EXPECT_EQ(config->upstream.timeouts.first_byte, Millis(60'000));
  EXPECT_EQ(config->upstream.timeouts.stream_idle, Millis(60'000));
  EXPECT_EQ(config->upstream.timeouts.total, Millis(600'000));
  EXPECT_EQ(config->source_path, "");
}

TEST(ConfigDefaults, FillEveryOmittedTargetKey) {
  const auto config =
      parse_config(with_target("provider: openai\n"
                               "        base_url: https://api.openai.com/v1\n"));
  ASSERT_EQ(config->routes.size(), 1u);
  const RouteConfig& route = config->routes[0];
  EXPECT_EQ(route.model, "m");
  EXPECT_FALSE(route.is_glob);
  EXPECT_EQ(route.description, "");
  ASSERT_EQ(route.targets.size(), 1u);
  const TargetConfig& target = route.targets[0];
  EXPECT_EQ(target.provider, ProviderKind::openai);
  EXPECT_EQ(target.model, "");
  EXPECT_EQ(target.api_key_env, "");
  EXPECT_EQ(target.api_key, "");
  EXPECT_EQ(target.api_style, ApiStyle::openai);
  EXPECT_EQ(target.api_version, "");
  EXPECT_EQ(target.weight, 1u);
  EXPECT_TRUE(target.headers.empty());
  EXPECT_EQ(target.timeouts.total, Millis(600'000));
}

TEST(ConfigDefaults, TreatAnEmptySectionAsAllDefaults) {
  const auto config = parse_config(std::string("server:\nupstream:\n") + kDemoRoute);
  EXPECT_EQ(config->server.listen_port, 8080);
  EXPECT_EQ(config->upstream.max_idle_per_host, 64u);
}

// ---- server ----------------------------------------------------------------------------------

TEST(ConfigServer, ReadsEveryKey) {
  const auto config = parse_config(std::string("server:\n"
                                               "  listen: 0.0.0.0:9000\n"
                                               "  threads: 8\n"
                                               "  max_header_bytes: 32768\n"
                                               "  max_body_bytes: 1GiB\n"
                                               "  header_timeout_ms: 1\n"
                                               "  body_timeout_ms: 2\n"
                                               "  idle_timeout_ms: 3\n"
                                               "  max_connections: 4\n"
                                               "  drain_timeout_ms: 5\n") +
                                   kDemoRoute);
  EXPECT_EQ(config->server.listen_host, "0.0.0.0");
  EXPECT_EQ(config->server.listen_port, 9000);
  EXPECT_EQ(config->server.threads, 8);
  EXPECT_EQ(config->server.max_header_bytes, 32768u);
  EXPECT_EQ(config->server.max_body_bytes, size_t{1} << 30);
  EXPECT_EQ(config->server.header_timeout, Millis(1));
  EXPECT_EQ(config->server.body_timeout, Millis(2));
  EXPECT_EQ(config->server.idle_timeout, Millis(3));
  EXPECT_EQ(config->server.max_connections, 4u);
  EXPECT_EQ(config->server.drain_timeout, Millis(5));
}

TEST(ConfigServer, AcceptsThreadsAutoAsZero) {
  const auto config = parse_config(std::string("server: {threads: auto}\n") + kDemoRoute);
  EXPECT_EQ(config->server.threads, 0);
}

TEST(ConfigServer, RejectsThreadsOutOfRangeOrNotAuto) {
  EXPECT_EQ(error_of(std::string("server: {threads: 0}\n") + kDemoRoute),
            "server.threads: must be \"auto\" or an integer 1..256");
  EXPECT_EQ(error_of(std::string("server: {threads: 257}\n") + kDemoRoute),
            "server.threads: must be \"auto\" or an integer 1..256");
  EXPECT_EQ(error_of(std::string("server: {threads: many}\n") + kDemoRoute),
            "server.threads: must be \"auto\" or an integer 1..256, got \"many\"");
}

TEST(ConfigServer, AcceptsSizeStringsWithEveryUnit) {
  const auto size_of = [](const std::string& value) {
    return parse_config("server: {max_body_bytes: " + value + "}\n" + kDemoRoute)
        ->server.max_body_bytes;
  };
  EXPECT_EQ(size_of("512B"), 512u);
  EXPECT_EQ(size_of("64KiB"), 64u * 1024);
  EXPECT_EQ(size_of("16MiB"), 16u * 1024 * 1024);
  EXPECT_EQ(size_of("1GiB"), size_t{1} << 30);
  EXPECT_EQ(size_of("\"64 KiB\""), 64u * 1024);
  EXPECT_EQ(size_of("65536"), 65536u);
}

TEST(ConfigServer, RejectsBadSizes) {
  const auto error = [](const std::string& value) {
    return error_of("server: {max_header_bytes: " + value + "}\n" + kDemoRoute);
  };
  EXPECT_EQ(error("0"), "server.max_header_bytes: must be > 0");
  EXPECT_EQ(error("-5"), "server.max_header_bytes: must be > 0");
  EXPECT_EQ(error("0KiB"), "server.max_header_bytes: must be > 0");
  EXPECT_EQ(error("64KB"),
            "server.max_header_bytes: unknown size unit \"KB\" (expected B, KiB, MiB, GiB)");
  EXPECT_EQ(error("big"),
            "server.max_header_bytes: expected a size like 65536, \"64KiB\" or \"16MiB\", "
            "got \"big\"");
  EXPECT_EQ(error("1.5MiB"),
            "server.max_header_bytes: expected a size like 65536, \"64KiB\" or \"16MiB\", "
            "got \"1.5MiB\"");
  EXPECT_EQ(error("99999999999999GiB"), "server.max_header_bytes: must be <= 1TiB");
}

TEST(ConfigServer, ParsesIpv6Listen) {
  const auto config = parse_config(std::string("server: {listen: \"[::1]:8443\"}\n") + kDemoRoute);
  EXPECT_EQ(config->server.listen_host, "::1");
  EXPECT_EQ(config->server.listen_port, 8443);
}

TEST(ConfigServer, AllowsPortZeroForAnEphemeralPort) {
  const auto config = parse_config(std::string("server: {listen: localhost:0}\n") + kDemoRoute);
  EXPECT_EQ(config->server.listen_host, "localhost");
  EXPECT_EQ(config->server.listen_port, 0);
}

TEST(ConfigServer, RejectsListenWithoutHostAndPort) {
  const auto error = [](const std::string& value) {
    return error_of("server: {listen: \"" + value + "\"}\n" + kDemoRoute);
  };
  EXPECT_EQ(error("8080"), "server.listen: expected host:port");
  EXPECT_EQ(error(":8080"), "server.listen: expected host:port");
  EXPECT_EQ(error("localhost"), "server.listen: expected host:port");
  EXPECT_EQ(error("[::1]"), "server.listen: expected host:port");
  EXPECT_EQ(error("localhost:http"), "server.listen: port must be 0..65535");
  EXPECT_EQ(error("localhost:65536"), "server.listen: port must be 0..65535");
  EXPECT_EQ(error("::1:8080"),
            "server.listen: expected host:port (IPv6 addresses must be in brackets, e.g. "
            "[::1]:8080)");
  EXPECT_EQ(error("[::1:8080"),
            "server.listen: expected host:port (unterminated [ in IPv6 address)");
  EXPECT_EQ(error("bad host:80"), "server.listen: expected host:port (invalid host \"bad host\")");
}

TEST(ConfigServer, RejectsNonPositiveTimeouts) {
  EXPECT_EQ(error_of(std::string("server: {header_timeout_ms: 0}\n") + kDemoRoute),
            "server.header_timeout_ms: must be > 0");
  EXPECT_EQ(error_of(std::string("server: {drain_timeout_ms: -1}\n") + kDemoRoute),
            "server.drain_timeout_ms: must be > 0");
  EXPECT_EQ(error_of(std::string("server: {idle_timeout_ms: 86400001}\n") + kDemoRoute),
            "server.idle_timeout_ms: must be <= 86400000");
}

TEST(ConfigServer, RejectsWrongTypesWithTheirPath) {
  EXPECT_EQ(error_of(std::string("server: {body_timeout_ms: soon}\n") + kDemoRoute),
            "server.body_timeout_ms: expected an integer, got \"soon\"");
  EXPECT_EQ(error_of(std::string("server: {max_connections: [1, 2]}\n") + kDemoRoute),
            "server.max_connections: expected an integer, got a sequence");
  EXPECT_EQ(error_of(std::string("server: {listen: {host: x}}\n") + kDemoRoute),
            "server.listen: expected a string, got a map");
  EXPECT_EQ(error_of(std::string("server: [listen]\n") + kDemoRoute),
            "server: expected a map, got a sequence");
  EXPECT_EQ(error_of(std::string("server: {max_connections: 99999999999999999999}\n") + kDemoRoute),
            "server.max_connections: expected an integer, got \"99999999999999999999\"");
}

// ---- Unknown and duplicate keys ------------------------------------------------------------

TEST(ConfigKeys, RejectsUnknownKeyAtTheTopLevel) {
  EXPECT_EQ(error_of(std::string("sever: {}\n") + kDemoRoute), "sever: unknown key");
}

TEST(ConfigKeys, RejectsUnknownKeyInServerWithItsPath) {
  EXPECT_EQ(error_of(std::string("server: {lisen: 127.0.0.1:80}\n") + kDemoRoute),
            "server.lisen: unknown key");
}

TEST(ConfigKeys, RejectsUnknownKeyInUpstreamAndItsTimeouts) {
  EXPECT_EQ(error_of(std::string("upstream: {max_idle: 1}\n") + kDemoRoute),
            "upstream.max_idle: unknown key");
  EXPECT_EQ(error_of(std::string("upstream: {timeouts: {read_ms: 1}}\n") + kDemoRoute),
            "upstream.timeouts.read_ms: unknown key");
}

TEST(ConfigKeys, RejectsUnknownKeyInARoute) {
  EXPECT_EQ(error_of("routes:\n"
                     "  - model: demo\n"
                     "    target: []\n"),
            "routes[0].target: unknown key");
}

TEST(ConfigKeys, RejectsUnknownKeyInATargetAndItsTimeouts) {
  EXPECT_EQ(error_of(with_target("provider: demo\n        region: us\n")),
            "routes[0].targets[0].region: unknown key");
  EXPECT_EQ(error_of(with_target("provider: demo\n        timeouts: {total: 1}\n")),
            "routes[0].targets[0].timeouts.total: unknown key");
}

TEST(ConfigKeys, RejectsDuplicateKeys) {
  EXPECT_EQ(error_of(std::string("server:\n  threads: 2\n  threads: 3\n") + kDemoRoute),
            "server.threads: duplicate key");
}

// ---- upstream --------------------------------------------------------------------------------

TEST(ConfigUpstream, ReadsEveryKey) {
  const std::string ca = write_temp_file("ca.pem", "-----BEGIN CERTIFICATE-----\n");
  const auto config = parse_config(
      "upstream:\n"
      "  max_idle_per_host: 0\n"
      "  idle_timeout_ms: 1000\n"
      "  max_connections_per_host: 10\n"
      "  dns_ttl_ms: 2000\n"
      "  ca_file: " +
      ca +
      "\n"
      "  timeouts: {connect_ms: 1, first_byte_ms: 2,\n"
      "             stream_idle_ms: 3, total_ms: 4}\n" +
      kDemoRoute);
  EXPECT_EQ(config->upstream.max_idle_per_host, 0u);
  EXPECT_EQ(config->upstream.idle_timeout, Millis(1000));
  EXPECT_EQ(config->upstream.max_connections_per_host, 10u);
  EXPECT_EQ(config->upstream.dns_ttl, Millis(2000));
  EXPECT_EQ(config->upstream.ca_file, ca);
  EXPECT_EQ(config->upstream.timeouts.connect, Millis(1));
  EXPECT_EQ(config->upstream.timeouts.first_byte, Millis(2));
  EXPECT_EQ(config->upstream.timeouts.stream_idle, Millis(3));
  EXPECT_EQ(config->upstream.timeouts.total, Millis(4));
  std::filesystem::remove(ca);
}

TEST(ConfigUpstream, RejectsMissingCaFile) {
  EXPECT_EQ(error_of(std::string("upstream: {ca_file: /nonexistent/ca.pem}\n") + kDemoRoute),
            "upstream.ca_file: cannot read file \"/nonexistent/ca.pem\"");
}

TEST(ConfigUpstream, RejectsFirstByteLongerThanTotal) {
  EXPECT_EQ(error_of(std::string("upstream: {timeouts: {first_byte_ms: 700000}}\n") + kDemoRoute),
            "upstream.timeouts.first_byte_ms: must be <= total_ms (600000)");
  EXPECT_EQ(error_of(std::string("upstream: {timeouts: {total_ms: 1000}}\n") + kDemoRoute),
            "upstream.timeouts.total_ms: must be >= first_byte_ms (60000, from the built-in "
            "defaults)");
}

TEST(ConfigUpstream, RejectsZeroConnectionLimit) {
  EXPECT_EQ(error_of(std::string("upstream: {max_connections_per_host: 0}\n") + kDemoRoute),
            "upstream.max_connections_per_host: must be > 0");
  EXPECT_EQ(error_of(std::string("upstream: {max_idle_per_host: -1}\n") + kDemoRoute),
            "upstream.max_idle_per_host: must be >= 0");
}

// ---- routes ----------------------------------------------------------------------------------

TEST(ConfigRoutes, AreRequired) {
  EXPECT_EQ(error_of("server: {threads: 2}\n"), "routes: required");
  EXPECT_EQ(error_of(""), "routes: required");
  EXPECT_EQ(error_of("routes:\n"), "routes: required");
}

TEST(ConfigRoutes, MustBeANonEmptySequence) {
  EXPECT_EQ(error_of("routes: []\n"), "routes: at least one route is required");
  EXPECT_EQ(error_of("routes: {demo: demo}\n"), "routes: expected a sequence, got a map");
  EXPECT_EQ(error_of("routes: [demo]\n"), "routes[0]: expected a map, got \"demo\"");
}

TEST(ConfigRoutes, RequireAModelAndTargets) {
  EXPECT_EQ(error_of("routes:\n  - targets: [{provider: demo}]\n"), "routes[0].model: required");
  EXPECT_EQ(error_of("routes:\n  - model: \"\"\n    targets: [{provider: demo}]\n"),
            "routes[0].model: must not be empty");
  EXPECT_EQ(error_of("routes:\n  - model: m\n"), "routes[0].targets: required");
  EXPECT_EQ(error_of("routes:\n  - model: m\n    targets: []\n"),
            "routes[0].targets: at least one target is required");
  EXPECT_EQ(error_of("routes:\n  - model: m\n    targets: {provider: demo}\n"),
            "routes[0].targets: expected a sequence, got a map");
}

TEST(ConfigRoutes, MarkPatternsWithWildcardsAsGlobs) {
  const auto config = parse_config(
      "routes:\n"
      "  - model: gpt-4o\n"
      "    targets: [{provider: demo}]\n"
      "  - model: gpt-4o*\n"
      "    targets: [{provider: demo}]\n"
      "  - model: o?-mini\n"
      "    targets: [{provider: demo}]\n"
      "  - model: \"*\"\n"
      "    targets: [{provider: demo}]\n");
  ASSERT_EQ(config->routes.size(), 4u);
  EXPECT_FALSE(config->routes[0].is_glob);
  EXPECT_TRUE(config->routes[1].is_glob);
  EXPECT_EQ(config->routes[2].model, "o?-mini");
  EXPECT_TRUE(config->routes[2].is_glob);
  EXPECT_EQ(config->routes[3].model, "*");
  EXPECT_TRUE(config->routes[3].is_glob);
}

TEST(ConfigRoutes, RejectDuplicateModelOnTheSecondRoute) {
  EXPECT_EQ(error_of("routes:\n"
                     "  - {model: a, targets: [{provider: demo}]}\n"
                     "  - {model: gpt-4o, targets: [{provider: demo}]}\n"
                     "  - {model: gpt-4o, targets: [{provider: demo}]}\n"),
            "routes[2].model: duplicate route for model \"gpt-4o\" (first at routes[1])");
}

TEST(ConfigRoutes, RejectDuplicatesEvenWhenOneIsInactive) {
  ScopedEnv unset("SLUICE_TEST_ROUTE_ON", std::nullopt);
  EXPECT_EQ(
      error_of("routes:\n"
               "  - {model: x, targets: [{provider: demo}]}\n"
               "  - {model: x, when_env: SLUICE_TEST_ROUTE_ON, targets: [{provider: demo}]}\n"),
      "routes[1].model: duplicate route for model \"x\" (first at routes[0])");
}

TEST(ConfigRoutes, KeepFileOrderAndDescriptions) {
  const auto config = parse_config(
      "routes:\n"
      "  - {model: b, description: second, targets: [{provider: demo}]}\n"
      "  - {model: a, targets: [{provider: demo}]}\n");
  ASSERT_EQ(config->routes.size(), 2u);
  EXPECT_EQ(config->routes[0].model, "b");
  EXPECT_EQ(config->routes[0].description, "second");
  EXPECT_EQ(config->routes[1].model, "a");
}

TEST(ConfigRoutes, AreActiveWhenTheirWhenEnvIsSet) {
  ScopedEnv on("SLUICE_TEST_ROUTE_ON", "1");
  const auto config = parse_config(
      "routes:\n"
      "  - {model: a, targets: [{provider: demo}]}\n"
      "  - {model: b, when_env: SLUICE_TEST_ROUTE_ON,\n"
      "     targets: [{provider: demo}]}\n");
  ASSERT_EQ(config->routes.size(), 2u);
  EXPECT_EQ(config->routes[1].model, "b");
}

TEST(ConfigRoutes, AreDroppedWhenTheirWhenEnvIsUnsetOrEmpty) {
  const std::string yaml =
      "routes:\n"
      "  - {model: a, targets: [{provider: demo}]}\n"
      "  - {model: b, when_env: SLUICE_TEST_ROUTE_ON,\n"
      "     targets: [{provider: demo}]}\n";
  {
    ScopedEnv off("SLUICE_TEST_ROUTE_ON", std::nullopt);
    const auto config = parse_config(yaml);
    ASSERT_EQ(config->routes.size(), 1u);
    EXPECT_EQ(config->routes[0].model, "a");
  }
  {
    ScopedEnv empty("SLUICE_TEST_ROUTE_ON", "");
    EXPECT_EQ(parse_config(yaml)->routes.size(), 1u);
  }
}

TEST(ConfigRoutes, ValidateInactiveRoutesToo) {
  ScopedEnv off("SLUICE_TEST_ROUTE_ON", std::nullopt);
  EXPECT_EQ(error_of("routes:\n"
                     "  - {model: a, targets: [{provider: demo}]}\n"
                     "  - {model: b, when_env: SLUICE_TEST_ROUTE_ON,\n"
                     "     targets: [{provider: demo, weight: 0}]}\n"),
            "routes[1].targets[0].weight: must be > 0");
}

TEST(ConfigRoutes, RequireAtLeastOneActiveRoute) {
  ScopedEnv off("SLUICE_TEST_ROUTE_ON", std::nullopt);
  EXPECT_EQ(
      error_of("routes:\n"
               "  - {model: a, when_env: SLUICE_TEST_ROUTE_ON, targets: [{provider: demo}]}\n"
               "  - {model: b, when_env: SLUICE_TEST_ROUTE_ON, targets: [{provider: demo}]}\n"),
      "routes: no active route (every route has an unset when_env: SLUICE_TEST_ROUTE_ON)");
}

TEST(ConfigRoutes, RejectWhenEnvThatIsNotAVariableName) {
  EXPECT_EQ(
      error_of("routes:\n  - {model: a, when_env: \"sk-123\", targets: [{provider: demo}]}\n"),
      "routes[0].when_env: must be the name of an environment variable (letters, digits, "
      "_), not its value");
}

// ---- targets ---------------------------------------------------------------------------------

TEST(ConfigTargets, RequireAKnownProvider) {
  EXPECT_EQ(error_of(with_target("weight: 1\n")), "routes[0].targets[0].provider: required");
  EXPECT_EQ(error_of(with_target("provider: foo\n")),
            "routes[0].targets[0].provider: unknown provider \"foo\" (expected openai, anthropic, "
            "gemini, demo)");
  // Every provider's credential header is a secret: from the environment only.
  for (const char* h : {"x-api-key", "X-Goog-Api-Key"}) {
    EXPECT_EQ(error_of(with_target(std::string("{provider: demo, headers: {") + h + ": k}}\n")),
              std::string("routes[0].targets[0].headers.") + h +
                  ": inline secrets are not allowed; use api_key_env");
  }
  EXPECT_EQ(error_of(with_target("provider: anthropic\n")),
            "routes[0].targets[0].base_url: required for provider anthropic");
  EXPECT_EQ(error_of(with_target("{provider: gemini, base_url: \"http://g/v1beta\", "
                                 "api_style: azure, api_version: v1}\n")),
            "routes[0].targets[0].api_style: azure applies to provider openai only");
}

TEST(ConfigTargets, NameTheRouteAndTargetIndexInErrors) {
  EXPECT_EQ(error_of("routes:\n"
                     "  - {model: a, targets: [{provider: demo}]}\n"
                     "  - {model: b, targets: [{provider: demo}]}\n"
                     "  - model: c\n"
                     "    targets:\n"
                     "      - provider: demo\n"
                     "      - {provider: demo, weight: 0}\n"),
            "routes[2].targets[1].weight: must be > 0");
  EXPECT_EQ(error_of("routes:\n  - {model: a, targets: [demo]}\n"),
            "routes[0].targets[0]: expected a map, got \"demo\"");
}

TEST(ConfigTargets, ReadEveryKey) {
  ScopedEnv key("SLUICE_TEST_KEY", "sk-test-123");
  const auto config =
      parse_config(with_target("provider: openai\n"
                               "        base_url: https://example.com/v1\n"
                               "        model: gpt-4o-2024-08-06\n"
                               "        api_key_env: SLUICE_TEST_KEY\n"
                               "        api_style: azure\n"
                               "        api_version: \"2024-06-01\"\n"
                               "        weight: 7\n"
                               "        headers: {X-Foo: bar, X-Num: 1}\n"));
  const TargetConfig& target = config->routes[0].targets[0];
  EXPECT_EQ(target.provider, ProviderKind::openai);
  EXPECT_EQ(target.base_url, "https://example.com/v1");
  EXPECT_EQ(target.model, "gpt-4o-2024-08-06");
  EXPECT_EQ(target.api_key_env, "SLUICE_TEST_KEY");
  EXPECT_EQ(target.api_key, "sk-test-123");
  EXPECT_EQ(target.api_style, ApiStyle::azure);
  EXPECT_EQ(target.api_version, "2024-06-01");
  EXPECT_EQ(target.weight, 7u);
  const std::map<std::string, std::string> headers = {{"X-Foo", "bar"}, {"X-Num", "1"}};
  EXPECT_EQ(target.headers, headers);
}

TEST(ConfigTargets, LeaveTheApiKeyEmptyWhenItsVariableIsUnset) {
  ScopedEnv key("SLUICE_TEST_KEY", std::nullopt);
  const auto config =
      parse_config(with_target("provider: demo\n"
                               "        api_key_env: SLUICE_TEST_KEY\n"));
  EXPECT_EQ(config->routes[0].targets[0].api_key_env, "SLUICE_TEST_KEY");
  EXPECT_EQ(config->routes[0].targets[0].api_key, "");
}

TEST(ConfigTargets, RejectAnInlineApiKey) {
  EXPECT_EQ(error_of(with_target("provider: openai\n"
                                 "        base_url: https://api.openai.com/v1\n"
                                 "        api_key: sk-live-abc\n")),
            "routes[0].targets[0].api_key: inline secrets are not allowed; use api_key_env");
}

TEST(ConfigTargets, RejectAKeyPastedIntoApiKeyEnvWithoutEchoingIt) {
  const std::string error =
      error_of(with_target("provider: demo\n"
                           "        api_key_env: sk-live-abc123\n"));
  EXPECT_EQ(error,
            "routes[0].targets[0].api_key_env: must be the name of an environment variable "
            "(letters, digits, _), not its value");
  EXPECT_EQ(error.find("sk-live"), std::string::npos);
}

TEST(ConfigTargets, RequireABaseUrlForOpenai) {
  EXPECT_EQ(error_of(with_target("provider: openai\n")),
            "routes[0].targets[0].base_url: required for provider openai");
  ScopedEnv unset("SLUICE_TEST_URL", std::nullopt);
  EXPECT_EQ(error_of(with_target("provider: openai\n        base_url_env: SLUICE_TEST_URL\n")),
            "routes[0].targets[0].base_url: required for provider openai (SLUICE_TEST_URL is "
            "unset)");
}

TEST(ConfigTargets, IgnoreTheBaseUrlOfTheDemoProvider) {
  const auto config = parse_config(with_target("provider: demo\n        base_url: not a url\n"));
  EXPECT_EQ(config->routes[0].targets[0].provider, ProviderKind::demo);
  EXPECT_EQ(config->routes[0].targets[0].host, "");
}

TEST(ConfigTargets, ParseAnHttpsBaseUrlWithItsDefaultPort) {
  const auto config =
      parse_config(with_target("provider: openai\n        base_url: https://api.openai.com/v1\n"));
  const TargetConfig& target = config->routes[0].targets[0];
  EXPECT_TRUE(target.tls);
  EXPECT_EQ(target.host, "api.openai.com");
  EXPECT_EQ(target.port, 443);
  EXPECT_EQ(target.base_path, "/v1");
}

TEST(ConfigTargets, ParseAnHttpBaseUrlWithAnExplicitPortAndTrimTrailingSlashes) {
  const auto config =
      parse_config(with_target("provider: openai\n        base_url: http://10.0.0.5:8000/v1//\n"));
  const TargetConfig& target = config->routes[0].targets[0];
  EXPECT_FALSE(target.tls);
  EXPECT_EQ(target.host, "10.0.0.5");
  EXPECT_EQ(target.port, 8000);
  EXPECT_EQ(target.base_path, "/v1");
}

TEST(ConfigTargets, ParseABaseUrlWithoutAPath) {
  const auto plain = parse_config(with_target("provider: openai\n        base_url: http://h\n"));
  EXPECT_EQ(plain->routes[0].targets[0].port, 80);
  EXPECT_EQ(plain->routes[0].targets[0].base_path, "");
  const auto slash = parse_config(with_target("provider: openai\n        base_url: http://h/\n"));
  EXPECT_EQ(slash->routes[0].targets[0].base_path, "");
}

TEST(ConfigTargets, ParseAnIpv6BaseUrl) {
  const auto config =
      parse_config(with_target("provider: openai\n        base_url: \"http://[::1]:11434/v1\"\n"));
  EXPECT_EQ(config->routes[0].targets[0].host, "::1");
  EXPECT_EQ(config->routes[0].targets[0].port, 11434);
}

TEST(ConfigTargets, RejectMalformedBaseUrls) {
  const auto error = [](const std::string& url) {
    return error_of(with_target("provider: openai\n        base_url: \"" + url + "\"\n"));
  };
  const std::string path = "routes[0].targets[0].base_url: ";
  EXPECT_EQ(error("api.openai.com/v1"), path + "expected an http:// or https:// URL");
  EXPECT_EQ(error("ftp://host/v1"), path + "expected an http:// or https:// URL");
  EXPECT_EQ(error("https:///v1"), path + "URL: missing host");
  EXPECT_EQ(error("https://host:0/v1"), path + "URL port must be 1..65535");
  EXPECT_EQ(error("https://host:99999"), path + "URL port must be 1..65535");
  EXPECT_EQ(error("https://host/v1?key=x"),
            path + "query strings and fragments are not allowed in base_url");
  EXPECT_EQ(error("https://user:pw@host/v1"),
            path + "credentials in URLs are not allowed; use api_key_env");
  EXPECT_EQ(error("https://host/v 1"), path + "URL contains whitespace or control characters");
}

TEST(ConfigTargets, TakeTheBaseUrlFromBaseUrlEnvWhenSet) {
  ScopedEnv url("SLUICE_TEST_URL", "http://proxy.internal:9000/anthropic/v1/");
  const auto config =
      parse_config(with_target("provider: openai\n"
                               "        base_url: https://api.anthropic.com/v1\n"
                               "        base_url_env: SLUICE_TEST_URL\n"));
  const TargetConfig& target = config->routes[0].targets[0];
  EXPECT_EQ(target.base_url, "http://proxy.internal:9000/anthropic/v1/");
  EXPECT_FALSE(target.tls);
  EXPECT_EQ(target.host, "proxy.internal");
  EXPECT_EQ(target.port, 9000);
  EXPECT_EQ(target.base_path, "/anthropic/v1");
}

TEST(ConfigTargets, KeepTheBaseUrlWhenBaseUrlEnvIsUnset) {
  ScopedEnv url("SLUICE_TEST_URL", std::nullopt);
  const auto config =
      parse_config(with_target("provider: openai\n"
                               "        base_url: https://api.anthropic.com/v1\n"
                               "        base_url_env: SLUICE_TEST_URL\n"));
  EXPECT_EQ(config->routes[0].targets[0].host, "api.anthropic.com");
}

TEST(ConfigTargets, BlameBaseUrlEnvForABadUrlFromTheEnvironment) {
  ScopedEnv url("SLUICE_TEST_URL", "proxy.internal");
  EXPECT_EQ(error_of(with_target("provider: openai\n"
                                 "        base_url: https://api.anthropic.com/v1\n"
                                 "        base_url_env: SLUICE_TEST_URL\n")),
            "routes[0].targets[0].base_url_env: SLUICE_TEST_URL: expected an http:// or "
            "https:// URL");
}

TEST(ConfigTargets, RejectUnknownApiStyleAndAzureWithoutVersion) {
  EXPECT_EQ(error_of(with_target("provider: demo\n        api_style: bedrock\n")),
            "routes[0].targets[0].api_style: unknown api_style \"bedrock\" (expected openai, "
            "azure)");
  EXPECT_EQ(error_of(with_target("provider: openai\n"
                                 "        base_url: https://x.openai.azure.com/openai\n"
                                 "        api_style: azure\n")),
            "routes[0].targets[0].api_version: required when api_style is azure");
}

TEST(ConfigTargets, RejectNonPositiveWeight) {
  EXPECT_EQ(error_of(with_target("provider: demo\n        weight: 0\n")),
            "routes[0].targets[0].weight: must be > 0");
  EXPECT_EQ(error_of(with_target("provider: demo\n        weight: -3\n")),
            "routes[0].targets[0].weight: must be > 0");
  EXPECT_EQ(error_of(with_target("provider: demo\n        weight: heavy\n")),
            "routes[0].targets[0].weight: expected an integer, got \"heavy\"");
  EXPECT_EQ(error_of(with_target("provider: demo\n        weight: 1000001\n")),
            "routes[0].targets[0].weight: must be <= 1000000");
}

TEST(ConfigTargets, RejectReservedAndInvalidHeaders) {
  const auto error = [](const std::string& headers) {
    return error_of(with_target("provider: demo\n        headers: " + headers + "\n"));
  };
  const std::string path = "routes[0].targets[0].headers.";
  EXPECT_EQ(error("{Authorization: Bearer x}"),
            path + "Authorization: inline secrets are not allowed; use api_key_env");
  EXPECT_EQ(error("{api-key: x}"),
            path + "api-key: inline secrets are not allowed; use api_key_env");
  EXPECT_EQ(error("{Host: example.com}"), path + "Host: set by the gateway; cannot be overridden");
  EXPECT_EQ(error("{content-length: 5}"),
            path + "content-length: set by the gateway; cannot be overridden");
  EXPECT_EQ(error("{Transfer-Encoding: chunked}"),
            path + "Transfer-Encoding: set by the gateway; cannot be overridden");
  EXPECT_EQ(error("{CONNECTION: close}"),
            path + "CONNECTION: set by the gateway; cannot be overridden");
  EXPECT_EQ(error("{\"X Foo\": bar}"), path + "X Foo: invalid header name");
  EXPECT_EQ(error("{\"X-Foo\": \"a\\r\\nInjected: 1\"}"),
            path + "X-Foo: header value contains control characters");
  EXPECT_EQ(error("{X-Foo: a, x-foo: b}"), path + "x-foo: duplicate header (names ignore case)");
  EXPECT_EQ(error("{X-Foo: [a]}"), path + "X-Foo: expected a string, got a sequence");
  EXPECT_EQ(error("[X-Foo]"), "routes[0].targets[0].headers: expected a map, got a sequence");
}

// ---- Timeouts --------------------------------------------------------------------------------

TEST(ConfigTimeouts, OverlayTargetValuesOnUpstreamDefaults) {
  const auto config = parse_config(
      "upstream:\n"
      "  timeouts: {connect_ms: 1000, total_ms: 300000}\n"
      "routes:\n"
      "  - model: m\n"
      "    targets:\n"
      "      - provider: demo\n"
      "        timeouts: {first_byte_ms: 5000}\n"
      "      - provider: demo\n");
  const Timeouts& own = config->routes[0].targets[0].timeouts;
  EXPECT_EQ(own.connect, Millis(1000));
  EXPECT_EQ(own.first_byte, Millis(5000));
  EXPECT_EQ(own.stream_idle, Millis(60'000));
  EXPECT_EQ(own.total, Millis(300'000));
  const Timeouts& inherited = config->routes[0].targets[1].timeouts;
  EXPECT_EQ(inherited.first_byte, Millis(60'000));
  EXPECT_EQ(inherited.total, Millis(300'000));
}

TEST(ConfigTimeouts, RejectPhasesLongerThanTheTotal) {
  EXPECT_EQ(error_of(with_target("provider: demo\n"
                                 "        timeouts: {stream_idle_ms: 20000, total_ms: 10000}\n")),
            "routes[0].targets[0].timeouts.stream_idle_ms: must be <= total_ms (10000)");
  EXPECT_EQ(error_of(with_target("provider: demo\n        timeouts: {first_byte_ms: 700000}\n")),
            "routes[0].targets[0].timeouts.first_byte_ms: must be <= total_ms (600000)");
}

TEST(ConfigTimeouts, BlameTheTotalWhenItUndercutsAnInheritedPhase) {
  EXPECT_EQ(error_of(with_target("provider: demo\n        timeouts: {total_ms: 30000}\n")),
            "routes[0].targets[0].timeouts.total_ms: must be >= first_byte_ms (60000, from "
            "upstream.timeouts)");
}

TEST(ConfigTimeouts, RejectZero) {
  EXPECT_EQ(error_of(with_target("provider: demo\n        timeouts: {connect_ms: 0}\n")),
            "routes[0].targets[0].timeouts.connect_ms: must be > 0");
}

// ---- Files and syntax ------------------------------------------------------------------------

TEST(ConfigLoad, ReportsAMissingFile) {
  EXPECT_THROW(
      {
        try {
          load_config("/nonexistent/sluice.yaml");
        } catch (const ConfigError& e) {
          EXPECT_STREQ(e.what(), "/nonexistent/sluice.yaml: cannot read file");
          throw;
        }
      },
      ConfigError);
}

TEST(ConfigLoad, ReportsADirectoryAsUnreadable) {
  const std::string dir = testing::TempDir();
  try {
    load_config(dir);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), dir + ": cannot read file");
  }
}

TEST(ConfigLoad, ReportsSyntaxErrorsWithFileLineAndColumn) {
  const std::string path = write_temp_file("bad.yaml", "server:\n  listen: [1, 2\nroutes: []\n");
  try {
    load_config(path);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(path + ":3:", 0), 0u) << message;
    EXPECT_NE(message.find("end of sequence flow not found"), std::string::npos) << message;
  }
  std::filesystem::remove(path);
}

TEST(ConfigLoad, NamesTheStringSourceInSyntaxErrors) {
  EXPECT_EQ(error_of("a: [1\n"), "<string>:2:1: end of sequence flow not found");
}

TEST(ConfigLoad, RejectsATopLevelThatIsNotAMap) {
  EXPECT_EQ(error_of("- a\n- b\n"), "<string>: expected a map at the top level, got a sequence");
  EXPECT_EQ(error_of("a: 1\n---\nb: 2\n"), "<string>: expected one YAML document, found several");
  // yaml-cpp 0.7's LoadAll() never returns on these (found by fuzz_config): a clear error.
  EXPECT_NE(error_of(" ,").find("invalid YAML"), std::string::npos);
  EXPECT_NE(error_of(",\n").find("invalid YAML"), std::string::npos);
}

TEST(ConfigLoad, SetsTheSourcePath) {
  const std::string path = write_temp_file("ok.yaml", kDemoRoute);
  const auto config = load_config(path);
  EXPECT_EQ(config->source_path, path);
  ASSERT_EQ(config->routes.size(), 1u);
  std::filesystem::remove(path);
}

TEST(ConfigLoad, LoadsTheDefaultConfigWithNoKeysInTheEnvironment) {
  ScopedEnv openai("OPENAI_API_KEY", std::nullopt);
  ScopedEnv anthropic("ANTHROPIC_API_KEY", std::nullopt);
  const auto config = load_config(kRepoRoot + "/config/sluice.yaml");
  EXPECT_EQ(config->server.listen_host, "127.0.0.1");
  EXPECT_EQ(config->server.listen_port, 8080);
  EXPECT_EQ(config->server.threads, 0);
  ASSERT_EQ(config->routes.size(), 2u);
  EXPECT_EQ(config->routes[0].model, "demo");
  EXPECT_FALSE(config->routes[0].is_glob);
  EXPECT_EQ(config->routes[1].model, "demo-*");
  EXPECT_TRUE(config->routes[1].is_glob);
  EXPECT_EQ(config->routes[1].targets[0].provider, ProviderKind::demo);
}

TEST(ConfigLoad, ActivatesTheProviderRoutesOfTheDefaultConfigFromTheEnvironment) {
  ScopedEnv openai("OPENAI_API_KEY", "sk-openai");
  ScopedEnv anthropic("ANTHROPIC_API_KEY", "sk-ant");
  ScopedEnv base_url("CLAUDE_OPENAI_BASE_URL", std::nullopt);
  const auto config = load_config(kRepoRoot + "/config/sluice.yaml");
  ASSERT_EQ(config->routes.size(), 4u);
  const TargetConfig& gpt = config->routes[2].targets[0];
  EXPECT_EQ(config->routes[2].model, "gpt-*");
  EXPECT_EQ(gpt.host, "api.openai.com");
  EXPECT_EQ(gpt.api_key, "sk-openai");
  const TargetConfig& claude = config->routes[3].targets[0];
  EXPECT_EQ(config->routes[3].model, "claude-*");
  EXPECT_EQ(claude.host, "api.anthropic.com");
  EXPECT_EQ(claude.base_path, "/v1");
  EXPECT_EQ(claude.api_key, "sk-ant");
}

TEST(ConfigLoad, LoadsEveryExampleConfig) {
  std::vector<std::string> loaded;
  for (const auto& entry : std::filesystem::directory_iterator(kRepoRoot + "/config/examples")) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW({
      try {
        load_config(entry.path().string());
      } catch (const ConfigError& e) {
        ADD_FAILURE() << e.what();
        throw;
      }
    });
    loaded.push_back(entry.path().filename().string());
  }
  EXPECT_GE(loaded.size(), 3u);
}

// ---- glob_match ------------------------------------------------------------------------------

TEST(GlobMatch, MatchesLiteralsExactlyAndCaseSensitively) {
  EXPECT_TRUE(glob_match("gpt-4o", "gpt-4o"));
  EXPECT_FALSE(glob_match("gpt-4o", "gpt-4o-mini"));
  EXPECT_FALSE(glob_match("gpt-4o", "GPT-4o"));
  EXPECT_FALSE(glob_match("gpt-4o", "gpt-4"));
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("", "a"));
}

TEST(GlobMatch, LetsStarMatchAnyRunIncludingEmpty) {
  EXPECT_TRUE(glob_match("gpt-4o*", "gpt-4o"));
  EXPECT_TRUE(glob_match("gpt-4o*", "gpt-4o-mini-2024-07-18"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("*-mini", "o3-mini"));
  EXPECT_TRUE(glob_match("a*b*c", "abc"));
  EXPECT_TRUE(glob_match("a*b*c", "axxbyyc"));
  EXPECT_FALSE(glob_match("a*b*c", "axxbyy"));
  EXPECT_TRUE(glob_match("**", "x"));
  EXPECT_FALSE(glob_match("claude-*", "gpt-4o"));
}

TEST(GlobMatch, LetsQuestionMarkMatchExactlyOneCharacter) {
  EXPECT_TRUE(glob_match("o?-mini", "o1-mini"));
  EXPECT_FALSE(glob_match("o?-mini", "o-mini"));
  EXPECT_FALSE(glob_match("o?-mini", "o10-mini"));
  EXPECT_TRUE(glob_match("?*", "a"));
  EXPECT_FALSE(glob_match("?*", ""));
}

TEST(GlobMatch, TreatsOtherCharactersLiterally) {
  EXPECT_TRUE(glob_match("a[b]c.d", "a[b]c.d"));
  EXPECT_FALSE(glob_match("a[b]c", "abc"));
  EXPECT_FALSE(glob_match("a.c", "abc"));
}

TEST(GlobMatch, StaysFastOnPathologicalPatterns) {
  const std::string as(100'000, 'a');
  EXPECT_FALSE(glob_match("a*a*a*a*a*a*a*a*a*a*b", as));
  EXPECT_TRUE(glob_match("a*a*a*a*a*a*a*a*a*a*a", as));
  EXPECT_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*a*b*", as));
}

}  // namespace
}  // namespace sluice::config
