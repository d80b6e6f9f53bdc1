// Unit tests for the router: exact names before globs, globs in file order, the /v1/models list.
// Target choice within a route is the Balancer's (balancer_test.cc).
#include "routing/router.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
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

}  // namespace
}  // namespace sluice::routing
