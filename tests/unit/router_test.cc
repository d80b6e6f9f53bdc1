// Unit tests for the router: exact names before globs, globs in file order, the /v1/models list,
// and the deterministic weighted round robin over a route's targets.
#include "routing/router.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"

namespace sluice::routing {
namespace {

// A demo target is enough for routing; `tag` (the target's model) tells targets apart.
std::string target(const std::string& tag, int weight = 1) {
  return "      - provider: demo\n        model: " + tag +
         "\n        weight: " + std::to_string(weight) + "\n";
}

std::string route(const std::string& model, const std::string& targets) {
  return "  - model: \"" + model + "\"\n    targets:\n" + targets;
}

Router make_router(const std::string& routes) {
  return Router(config::parse_config("routes:\n" + routes));
}

// The tag of the route matching `model`, or "<none>".
std::string matched(const Router& r, const std::string& model) {
  const config::RouteConfig* route = r.match(model);
  return route ? route->targets[0].model : "<none>";
}

TEST(Router, PrefersAnExactNameOverAnEarlierGlob) {
  Router r = make_router(route("gpt-*", target("glob")) + route("gpt-4o", target("exact")));
  EXPECT_EQ(matched(r, "gpt-4o"), "exact");
  EXPECT_EQ(matched(r, "gpt-4o-mini"), "glob");
  EXPECT_EQ(matched(r, "gpt-"), "glob");
}

TEST(Router, TriesGlobsInFileOrder) {
  Router r = make_router(route("gpt-4o*", target("narrow")) + route("gpt-*", target("wide")) +
                         route("*", target("catch-all")));
  EXPECT_EQ(matched(r, "gpt-4o-mini"), "narrow");
  EXPECT_EQ(matched(r, "gpt-3.5-turbo"), "wide");
  EXPECT_EQ(matched(r, "llama3"), "catch-all");

  Router reversed =
      make_router(route("gpt-*", target("wide")) + route("gpt-4o*", target("narrow")));
  EXPECT_EQ(matched(reversed, "gpt-4o-mini"), "wide");
}

TEST(Router, MatchesQuestionMarkGlobsOneCharacter) {
  Router r = make_router(route("gpt-?", target("one")));
  EXPECT_EQ(matched(r, "gpt-4"), "one");
  EXPECT_EQ(matched(r, "gpt-"), "<none>");
  EXPECT_EQ(matched(r, "gpt-44"), "<none>");
}

TEST(Router, ReturnsNullWhenNothingMatches) {
  Router r = make_router(route("gpt-4o", target("a")) + route("claude-*", target("b")));
  EXPECT_EQ(r.match("gpt-4"), nullptr);
  EXPECT_EQ(r.match(""), nullptr);
  EXPECT_EQ(r.match("GPT-4O"), nullptr);  // case-sensitive
  EXPECT_EQ(r.match("gpt-4o "), nullptr);
  EXPECT_EQ(r.match("xclaude-3"), nullptr);
}

TEST(Router, MatchReturnsTheConfigsOwnRoute) {
  Router r = make_router(route("a", target("ta")) + route("b", target("tb")));
  EXPECT_EQ(r.match("b"), &r.config().routes[1]);
}

TEST(Router, ListsOnlyExactModelNamesInFileOrder) {
  Router r = make_router(route("zeta", target("1")) + route("gpt-*", target("2")) +
                         route("alpha", target("3")) + route("?", target("4")) +
                         route("mid", target("5")));
  EXPECT_EQ(r.model_ids(), (std::vector<std::string>{"zeta", "alpha", "mid"}));
}

TEST(Router, ListsNothingWhenEveryRouteIsAGlob) {
  Router r = make_router(route("*", target("1")));
  EXPECT_TRUE(r.model_ids().empty());
}

TEST(Router, AlwaysPicksTheOnlyTarget) {
  Router r = make_router(route("m", target("only", 7)));
  const config::RouteConfig& rt = *r.match("m");
  for (int i = 0; i < 100; ++i) EXPECT_EQ(&r.pick(rt), &rt.targets[0]);
}

TEST(Router, SplitsPicksExactlyByWeight) {
  Router r = make_router(route("m", target("heavy", 3) + target("light", 1)));
  const config::RouteConfig& rt = *r.match("m");
  std::map<std::string, int> counts;
  for (int i = 0; i < 4000; ++i) ++counts[r.pick(rt).model];
  EXPECT_EQ(counts["heavy"], 3000);
  EXPECT_EQ(counts["light"], 1000);
}

TEST(Router, SplitsEveryWindowOfTotalWeightExactly) {
  Router r = make_router(route("m", target("a", 2) + target("b", 5) + target("c", 3)));
  const config::RouteConfig& rt = *r.match("m");
  for (int window = 0; window < 5; ++window) {
    std::map<std::string, int> counts;
    for (int i = 0; i < 10; ++i) ++counts[r.pick(rt).model];
    EXPECT_EQ(counts["a"], 2);
    EXPECT_EQ(counts["b"], 5);
    EXPECT_EQ(counts["c"], 3);
  }
}

TEST(Router, KeepsASeparateCounterPerRoute) {
  Router r = make_router(route("x", target("x1") + target("x2")) +
                         route("y", target("y1") + target("y2")));
  const config::RouteConfig& x = *r.match("x");
  const config::RouteConfig& y = *r.match("y");
  EXPECT_EQ(r.pick(x).model, "x1");
  EXPECT_EQ(r.pick(y).model, "y1");  // not advanced by the pick on x
  EXPECT_EQ(r.pick(x).model, "x2");
  EXPECT_EQ(r.pick(y).model, "y2");
}

TEST(Router, SplitsExactlyByWeightAcrossThreads) {
  Router r = make_router(route("m", target("heavy", 3) + target("light", 1)));
  const config::RouteConfig& rt = *r.match("m");
  std::vector<std::map<std::string, int>> counts(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) ++counts[t][r.pick(rt).model];
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

}  // namespace
}  // namespace sluice::routing
