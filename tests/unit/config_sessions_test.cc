// `state.sessions` and `routes[].sessions`: defaults, per-route overrides, and the models they
// name (extraction, summaries, embeddings) checked against the routes.
#include <gtest/gtest.h>

#include "config/config.h"
#include "config_test_support.h"

namespace sluice::config {
namespace {

const char* kRoutes =
    "routes:\n"
    "  - model: chat\n"
    "    sessions: {memories_k: 3, alpha: 2, extract_model: helper, summary_model: chat}\n"
    "    targets: [{provider: demo}]\n"
    "  - model: plain\n"
    "    targets: [{provider: demo}]\n"
    "  - model: \"help*\"\n"
    "    targets: [{provider: demo}]\n";

TEST(ConfigSessions, RoutesTakeStateDefaultsAndTheirOwnOverrides) {
  const auto config = parse_config(
      std::string("state: {sessions: {memories_k: 5, beta: 0.5, summary_min_turns: 2, "
                  "embeddings_model: helper-embed, vector_weight: 0.25}}\n") +
      kRoutes);
  const Config& c = *config;
  const SessionTuning& chat = c.routes[0].sessions;
  EXPECT_EQ(chat.memories_k, 3);
  EXPECT_DOUBLE_EQ(chat.alpha, 2);
  EXPECT_DOUBLE_EQ(chat.beta, 0.5);  // from state.sessions
  EXPECT_EQ(chat.summary_min_turns, 2);
  EXPECT_EQ(chat.extract_model, "helper");
  EXPECT_EQ(chat.summary_model, "chat");  // a route may summarize with itself
  const SessionTuning& plain = c.routes[1].sessions;
  EXPECT_EQ(plain.memories_k, 5);
  EXPECT_DOUBLE_EQ(plain.alpha, 1.0);
  EXPECT_EQ(plain.extract_model, "");
  EXPECT_EQ(c.state.sessions.embeddings_model, "helper-embed");
  EXPECT_DOUBLE_EQ(c.state.sessions.vector_weight, 0.25);
  EXPECT_EQ(c.state.sessions.background_jobs, 32);
}

TEST(ConfigSessions, StateDefaultsOfTheWorkAfterATurnReachEveryRoute) {
  const auto config = parse_config(
      "state: {sessions: {extract_model: plain}}\n"
      "routes:\n"
      "  - model: plain\n"
      "    targets: [{provider: demo}]\n"
      "  - model: quiet\n"
      "    sessions: {extract_model: \"\"}\n"
      "    targets: [{provider: demo}]\n");
  const Config& c = *config;
  EXPECT_EQ(c.routes[0].sessions.extract_model, "plain");
  EXPECT_EQ(c.routes[1].sessions.extract_model, "");  // turned off for this route
}

TEST(ConfigSessions, NamedModelsMustBeRouted) {
  EXPECT_EQ(error_of("routes:\n"
                     "  - model: chat\n"
                     "    sessions: {extract_model: nowhere}\n"
                     "    targets: [{provider: demo}]\n"),
            "routes[0].sessions.extract_model: no route serves model \"nowhere\"");
  EXPECT_EQ(error_of("routes:\n"
                     "  - model: chat\n"
                     "    sessions: {summary_model: nowhere}\n"
                     "    targets: [{provider: demo}]\n"),
            "routes[0].sessions.summary_model: no route serves model \"nowhere\"");
  EXPECT_EQ(error_of(std::string("state: {sessions: {embeddings_model: nowhere}}\n") + kDemoRoute),
            "state.sessions.embeddings_model: no route serves model \"nowhere\"");
}

TEST(ConfigSessions, BadValuesNameTheirPath) {
  EXPECT_EQ(error_of("routes:\n"
                     "  - model: chat\n"
                     "    sessions: {summary_min_turns: 8, summary_max_turns: 4}\n"
                     "    targets: [{provider: demo}]\n"),
            "routes[0].sessions.summary_max_turns: must be at least summary_min_turns");
  EXPECT_NE(error_of("routes:\n"
                     "  - model: chat\n"
                     "    sessions: {idle_ttl_s: 5}\n"
                     "    targets: [{provider: demo}]\n")
                .find("routes[0].sessions.idle_ttl_s: unknown key"),
            std::string::npos);
  EXPECT_NE(error_of(std::string("state: {sessions: {vector_weight: 2}}\n") + kDemoRoute)
                .find("state.sessions.vector_weight"),
            std::string::npos);
  EXPECT_NE(error_of(std::string("state: {sessions: {background_jobs: -1}}\n") + kDemoRoute)
                .find("state.sessions.background_jobs"),
            std::string::npos);
}

}  // namespace
}  // namespace sluice::config
