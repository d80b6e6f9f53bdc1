// Unit tests for the balancer's smooth weighted round robin: exact splits by weight, in every
// window of the total weight, per route, across threads; skipping tried and open targets.
#include "routing/balancer.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"

namespace sluice::routing {
namespace {

std::string target(const std::string& tag, int weight = 1) {
  return "      - provider: demo\n        model: " + tag +
         "\n        weight: " + std::to_string(weight) + "\n";
}

std::string route(const std::string& model, const std::string& targets) {
  return "  - model: \"" + model + "\"\n    targets:\n" + targets;
}

// One route's targets with their live state and a weighted-round-robin balancer.
struct Fixture {
  explicit Fixture(const std::string& routes, size_t index = 0)
      : config(config::parse_config("routes:\n" + routes)), rt(config->routes.at(index)) {
    for (const auto& t : rt.targets) states.push_back(std::make_unique<TargetState>(t, rt));
    for (auto& s : states) raw.push_back(s.get());
    balancer = std::make_unique<Balancer>(config::BalancerKind::weighted_round_robin, raw);
  }
  std::string pick() {
    auto i = balancer->pick(std::vector<bool>(raw.size(), false), Clock::now());
    return i ? rt.targets[*i].model : "<none>";
  }
  std::shared_ptr<const config::Config> config;
  const config::RouteConfig& rt;
  std::vector<std::unique_ptr<TargetState>> states;
  std::vector<TargetState*> raw;
  std::unique_ptr<Balancer> balancer;
};

TEST(Balancer, AlwaysPicksTheOnlyTarget) {
  Fixture f(route("m", target("only", 7)));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(f.pick(), "only");
}

TEST(Balancer, SplitsPicksExactlyByWeight) {
  Fixture f(route("m", target("heavy", 3) + target("light", 1)));
  std::map<std::string, int> counts;
  for (int i = 0; i < 4000; ++i) ++counts[f.pick()];
  EXPECT_EQ(counts["heavy"], 3000);
  EXPECT_EQ(counts["light"], 1000);
}

TEST(Balancer, SplitsEveryWindowOfTotalWeightExactly) {
  Fixture f(route("m", target("a", 2) + target("b", 5) + target("c", 3)));
  for (int window = 0; window < 5; ++window) {
    std::map<std::string, int> counts;
    for (int i = 0; i < 10; ++i) ++counts[f.pick()];
    EXPECT_EQ(counts["a"], 2);
    EXPECT_EQ(counts["b"], 5);
    EXPECT_EQ(counts["c"], 3);
  }
}

TEST(Balancer, KeepsSeparateStatePerRoute) {
  std::string routes = route("x", target("x1") + target("x2")) +
                       route("y", target("y1") + target("y2"));
  Fixture x(routes, 0);
  Fixture y(routes, 1);
  EXPECT_EQ(x.pick(), "x1");
  EXPECT_EQ(y.pick(), "y1");  // not advanced by the pick on x
  EXPECT_EQ(x.pick(), "x2");
  EXPECT_EQ(y.pick(), "y2");
}

TEST(Balancer, SplitsExactlyByWeightAcrossThreads) {
  Fixture f(route("m", target("heavy", 3) + target("light", 1)));
  std::vector<std::map<std::string, int>> counts(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) ++counts[t][f.pick()];
    });
  }
  for (auto& t : threads) t.join();
  int heavy = 0;
  int light = 0;
  for (auto& c : counts) {
    heavy += c["heavy"];
    light += c["light"];
  }
  EXPECT_EQ(heavy, 3000);
  EXPECT_EQ(light, 1000);
}

TEST(Balancer, SkipsTriedTargetsUntilAllWereTried) {
  Fixture f(route("m", target("a") + target("b")));
  std::vector<bool> tried{true, false};
  EXPECT_EQ(*f.balancer->pick(tried, Clock::now()), 1u);
  tried = {true, true};
  EXPECT_TRUE(f.balancer->pick(tried, Clock::now()).has_value());
}

TEST(Balancer, SkipsUnhealthyTargetsAndReportsNoneWhenAllAreOut) {
  Fixture f(route("m", target("a") + target("b")));
  f.states[0]->healthy = false;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(f.pick(), "b");
  f.states[1]->healthy = false;
  EXPECT_EQ(f.pick(), "<none>");
}

}  // namespace
}  // namespace sluice::routing
