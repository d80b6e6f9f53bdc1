// `cache` (the response cache's tiers) and `routes[].cache`.
#include <gtest/gtest.h>

#include "config/config.h"
#include "config_test_support.h"

namespace sluice::config {
namespace {

TEST(ConfigCache, OffByDefaultOnWithAMap) {
  const auto plain = parse_config(kDemoRoute);
  EXPECT_FALSE(plain->routes[0].cache.enabled);
  EXPECT_EQ(plain->cache.l1_max_bytes, size_t{256} << 20);
  EXPECT_FALSE(plain->cache.l2_redis);
  const auto c = parse_config(
      "cache: {l1_max_bytes: 1MiB, max_entry_bytes: 64KiB, l2: redis}\n"
      "routes:\n"
      "  - model: a\n"
      "    cache: {}\n"
      "    targets: [{provider: demo}]\n"
      "  - model: b\n"
      "    cache: {mode: on_request, ttl_s: 5, tool_calls: true, hit_cost: 0.25, flight_wait_ms: 0}\n"
      "    targets: [{provider: demo}]\n"
      "  - model: c\n"
      "    cache: {enabled: false}\n"
      "    targets: [{provider: demo}]\n");
  EXPECT_EQ(c->cache.l1_max_bytes, size_t{1} << 20);
  EXPECT_EQ(c->cache.max_entry_bytes, size_t{64} << 10);
  EXPECT_TRUE(c->cache.l2_redis);
  const RouteCacheConfig& a = c->routes[0].cache;
  EXPECT_TRUE(a.enabled);
  EXPECT_EQ(a.mode, RouteCacheConfig::Mode::all);
  EXPECT_EQ(a.ttl_s, 3600);
  EXPECT_FALSE(a.tool_calls);
  EXPECT_DOUBLE_EQ(a.hit_cost, 0);
  EXPECT_EQ(a.flight_wait.count(), 30'000);
  const RouteCacheConfig& b = c->routes[1].cache;
  EXPECT_EQ(b.mode, RouteCacheConfig::Mode::on_request);
  EXPECT_EQ(b.ttl_s, 5);
  EXPECT_TRUE(b.tool_calls);
  EXPECT_DOUBLE_EQ(b.hit_cost, 0.25);
  EXPECT_EQ(b.flight_wait.count(), 0);
  EXPECT_FALSE(c->routes[2].cache.enabled);
}

TEST(ConfigCache, BadValuesNameTheirPath) {
  auto route = [](const std::string& cache) {
    return error_of("routes:\n  - model: a\n    cache: " + cache + "\n    targets: [{provider: demo}]\n");
  };
  EXPECT_EQ(route("{mode: sometimes}"),
            "routes[0].cache.mode: unknown mode \"sometimes\" (expected all, on_request)");
  EXPECT_NE(route("{ttl_s: 0}").find("routes[0].cache.ttl_s"), std::string::npos);
  EXPECT_NE(route("{hit_cost: 2}").find("routes[0].cache.hit_cost"), std::string::npos);
  EXPECT_NE(route("{ttl: 5}").find("routes[0].cache.ttl: unknown key"), std::string::npos);
  EXPECT_EQ(error_of(std::string("cache: {l2: memcached}\n") + kDemoRoute),
            "cache.l2: unknown tier \"memcached\" (expected none, redis)");
  EXPECT_EQ(error_of(std::string("cache: {max_entry_bytes: 0}\n") + kDemoRoute),
            "cache.max_entry_bytes: must be > 0");
}

TEST(ConfigCache, SemanticTier) {
  const auto c = parse_config(
      "cache: {semantic_max_entries: 500}\n"
      "routes:\n"
      "  - model: a\n"
      "    cache: {semantic: {embeddings_model: e, threshold: 0.97, timeout_ms: 250}}\n"
      "    targets: [{provider: demo}]\n"
      "  - model: b\n"
      "    cache: {semantic: {enabled: false}}\n"
      "    targets: [{provider: demo}]\n"
      "  - model: e\n"
      "    targets: [{provider: demo}]\n");
  EXPECT_EQ(c->cache.semantic_max_entries, 500u);
  const auto& a = c->routes[0].cache.semantic;
  EXPECT_TRUE(a.enabled);
  EXPECT_EQ(a.embeddings_model, "e");
  EXPECT_DOUBLE_EQ(a.threshold, 0.97);
  EXPECT_EQ(a.timeout.count(), 250);
  EXPECT_FALSE(c->routes[1].cache.semantic.enabled);
  const auto plain = parse_config(kDemoRoute);
  EXPECT_FALSE(plain->routes[0].cache.semantic.enabled);
  EXPECT_DOUBLE_EQ(plain->routes[0].cache.semantic.threshold, 0.95);
  EXPECT_EQ(plain->cache.semantic_max_entries, 10'000u);

  auto route = [](const std::string& semantic) {
    return error_of("routes:\n  - model: a\n    cache: {semantic: " + semantic +
                    "}\n    targets: [{provider: demo}]\n");
  };
  EXPECT_EQ(route("{}"), "routes[0].cache.semantic.embeddings_model: required when the semantic tier is enabled");
  EXPECT_EQ(route("{embeddings_model: nowhere}"),
            "routes[0].cache.semantic.embeddings_model: no route serves model \"nowhere\"");
  EXPECT_NE(route("{embeddings_model: a, threshold: 0.2}").find("routes[0].cache.semantic.threshold"),
            std::string::npos);
  EXPECT_NE(route("{embeddings_model: a, k: 3}").find("routes[0].cache.semantic.k: unknown key"),
            std::string::npos);
  EXPECT_NE(error_of(std::string("cache: {semantic_max_entries: 0}\n") + kDemoRoute)
                .find("cache.semantic_max_entries"),
            std::string::npos);
}

}  // namespace
}  // namespace sluice::config
