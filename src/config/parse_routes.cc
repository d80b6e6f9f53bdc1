// The `routes` section: each route and its retry policy, then the checks across routes
// (duplicate models and target names, when_env activation, fallbacks that resolve).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/sections.h"
#include "config/yaml_read.h"

namespace sluice::config::detail {
namespace {

void parse_retry(const YAML::Node& node, const std::string& path, RetryPolicy& retry) {
  const Section s(node, path, "routes[].retry");
  if (const auto* n = s.find("max_attempts")) {
    retry.max_attempts = static_cast<int>(read_int_in(*n, s.path("max_attempts"), 1, 10));
  }
  const auto* base = s.find("backoff_base_ms");
  const auto* cap = s.find("backoff_cap_ms");
  if (base) retry.backoff_base = read_millis(*base, s.path("backoff_base_ms"));
  if (cap) retry.backoff_cap = read_millis(*cap, s.path("backoff_cap_ms"));
  if (retry.backoff_cap < retry.backoff_base) {
    if (cap != nullptr) {
      fail(s.path("backoff_cap_ms"),
           fmt::format("must be >= backoff_base_ms ({})", retry.backoff_base.count()));
    }
    fail(s.path("backoff_base_ms"),
         fmt::format("must be <= backoff_cap_ms ({}, the default)", retry.backoff_cap.count()));
  }
  if (const auto* n = s.find("jitter")) {
    const std::string jitter = read_string(*n, s.path("jitter"));
    if (jitter == "full") {
      retry.jitter = Jitter::full;
    } else if (jitter == "equal") {
      retry.jitter = Jitter::equal;
    } else if (jitter == "none") {
      retry.jitter = Jitter::none;
    } else if (jitter == "decorrelated") {
      retry.jitter = Jitter::decorrelated;
    } else {
      fail(s.path("jitter"),
           fmt::format("unknown jitter {} (expected full, equal, none, decorrelated)",
                       quote_value(jitter)));
    }
  }
  if (const auto* n = s.find("deadline_ms")) {
    retry.deadline = read_millis_or_zero(*n, s.path("deadline_ms"));
  }
  if (const auto* n = s.find("retry_on_timeout")) {
    retry.retry_on_timeout = read_bool(*n, s.path("retry_on_timeout"));
  }
  if (const auto* n = s.find("budget_ratio")) {
    retry.budget_ratio = read_double_in(*n, s.path("budget_ratio"), 0, 1, false);
  }
  if (const auto* n = s.find("budget_window_ms")) {
    retry.budget_window = read_millis(*n, s.path("budget_window_ms"));
  }
  if (const auto* n = s.find("budget_min_retries")) {
    retry.budget_min_retries = read_count(*n, s.path("budget_min_retries"), 0);
  }
}

// A model name a route falls back to: what a client could ask for, so never a glob.
std::string read_model_name(const YAML::Node& node, std::string_view path) {
  std::string model = read_string(node, path);
  if (model.empty()) fail(path, "must not be empty");
  if (model.find_first_of("*?") != std::string::npos) {
    fail(path,
         fmt::format("must be a model name, not a glob pattern (got {})", quote_value(model)));
  }
  if (has_control_chars(model)) fail(path, "contains control characters");
  return model;
}

struct ParsedRoute {
  RouteConfig route;
  std::string when_env;          // empty = always active
  bool active = true;
  std::vector<bool> named;       // per target: `name` was set in the file (not defaulted)
};

ParsedRoute parse_route(const YAML::Node& node, const std::string& path,
                        const UpstreamConfig& upstream, const SessionTuning& session_defaults) {
  if (!node.IsMap()) fail(path, fmt::format("expected a map, got {}", describe(node)));
  const Section s(node, path, "routes[]");
  ParsedRoute parsed;
  RouteConfig& route = parsed.route;
  route.sessions = session_defaults;
  if (const auto* n = s.find("sessions")) {
    parse_session_tuning(Section(*n, s.path("sessions"), "routes[].sessions"), route.sessions);
  }

  const auto* model = s.find("model");
  if (model == nullptr) fail(s.path("model"), "required");
  route.model = read_string(*model, s.path("model"));
  if (route.model.empty()) fail(s.path("model"), "must not be empty");
  route.is_glob = route.model.find_first_of("*?") != std::string::npos;

  if (const auto* n = s.find("description")) {
    route.description = read_string(*n, s.path("description"));
  }
  if (const auto* n = s.find("when_env")) parsed.when_env = read_env_name(*n, s.path("when_env"));

  const auto* targets = s.find("targets");
  if (targets == nullptr) fail(s.path("targets"), "required");
  if (!targets->IsSequence()) {
    fail(s.path("targets"), fmt::format("expected a sequence, got {}", describe(*targets)));
  }
  if (targets->size() == 0) fail(s.path("targets"), "at least one target is required");
  for (size_t i = 0; i < targets->size(); ++i) {
    route.targets.push_back(
        parse_target((*targets)[i], index_path(s.path("targets"), i), upstream));
    TargetConfig& target = route.targets.back();
    parsed.named.push_back(!target.name.empty());
    if (target.name.empty()) target.name = fmt::format("{}#{}", route.model, i);
  }

  if (const auto* n = s.find("balancer")) {
    const std::string balancer = read_string(*n, s.path("balancer"));
    if (balancer == "weighted_round_robin") {
      route.balancer = BalancerKind::weighted_round_robin;
    } else if (balancer == "least_in_flight") {
      route.balancer = BalancerKind::least_in_flight;
    } else if (balancer == "latency") {
      route.balancer = BalancerKind::latency;
    } else {
      fail(s.path("balancer"),
           fmt::format("unknown balancer {} (expected weighted_round_robin, least_in_flight, "
                       "latency)",
                       quote_value(balancer)));
    }
  }
  if (const auto* n = s.find("retry")) parse_retry(*n, s.path("retry"), route.retry);
  if (const auto* n = s.find("fallbacks")) {
    const std::string fallbacks_path = s.path("fallbacks");
    if (!n->IsNull()) {
      if (!n->IsSequence()) {
        fail(fallbacks_path, fmt::format("expected a sequence, got {}", describe(*n)));
      }
      for (size_t j = 0; j < n->size(); ++j) {
        const std::string entry_path = index_path(fallbacks_path, j);
        std::string model = read_model_name((*n)[j], entry_path);
        const auto first = std::find(route.fallbacks.begin(), route.fallbacks.end(), model);
        if (first != route.fallbacks.end()) {
          fail(entry_path,
               fmt::format("duplicate fallback {} (first at {})", quote_value(model),
                           index_path(fallbacks_path, first - route.fallbacks.begin())));
        }
        route.fallbacks.push_back(std::move(model));
      }
    }
  }
  if (const auto* n = s.find("context_fallback")) {
    route.context_fallback = read_model_name(*n, s.path("context_fallback"));
  }
  if (const auto* n = s.find("fail_fast")) route.fail_fast = read_bool(*n, s.path("fail_fast"));
  if (const auto* n = s.find("context_window")) {
    route.context_window = read_int_in(*n, s.path("context_window"), 1, 2147483647);
  }
  if (const auto* n = s.find("cache")) parse_route_cache(*n, s.path("cache"), route.cache);
  if (const auto* n = s.find("default_max_tokens")) {
    route.default_max_tokens = read_int_in(*n, s.path("default_max_tokens"), 1, 2147483647);
  }
  return parsed;
}

// The route that serves `model`, the way the router picks it: an exact name first, then the
// first glob in file order. Only routes with `active == want_active` are considered.
std::optional<size_t> find_route(const std::vector<ParsedRoute>& routes, std::string_view model,
                                 bool want_active) {
  for (size_t i = 0; i < routes.size(); ++i) {
    const RouteConfig& route = routes[i].route;
    if (routes[i].active == want_active && !route.is_glob && route.model == model) return i;
  }
  for (size_t i = 0; i < routes.size(); ++i) {
    const RouteConfig& route = routes[i].route;
    if (routes[i].active == want_active && route.is_glob && glob_match(route.model, model)) {
      return i;
    }
  }
  return std::nullopt;
}

// Every fallback of an active route must be served by another active route.
// `model` must be served by an active route (a fallback, or a session's extraction or
// summary model).
void check_served(const std::vector<ParsedRoute>& routes, const std::string& model,
                  const std::string& path) {
  if (find_route(routes, model, true)) return;
  if (const std::optional<size_t> inactive = find_route(routes, model, false)) {
    fail(path, fmt::format("no route serves model {} (routes[{}] would, but it is inactive: {} "
                           "is unset)",
                           quote_value(model), *inactive, routes[*inactive].when_env));
  }
  fail(path, fmt::format("no route serves model {}", quote_value(model)));
}

void check_fallback(const std::vector<ParsedRoute>& routes, size_t index, const std::string& model,
                    const std::string& path) {
  if (find_route(routes, model, true) == index) {
    const RouteConfig& route = routes[index].route;
    if (route.model == model) fail(path, "a route cannot fall back to itself");
    fail(path, fmt::format("a route cannot fall back to itself (its pattern {} matches {})",
                           quote_value(route.model), quote_value(model)));
  }
  check_served(routes, model, path);
}

// Target names label metrics and admin output, so they are unique across the whole file
// (inactive routes included, like route models).
void check_target_names(const std::vector<ParsedRoute>& routes) {
  struct Seen {
    size_t route;
    size_t target;
  };
  std::map<std::string, Seen> seen;
  for (size_t i = 0; i < routes.size(); ++i) {
    for (size_t k = 0; k < routes[i].route.targets.size(); ++k) {
      const std::string& name = routes[i].route.targets[k].name;
      const auto [it, inserted] = seen.emplace(name, Seen{i, k});
      if (inserted) continue;
      // Blame a name written in the file over a defaulted one ("<model>#<index>").
      Seen blamed{i, k};
      Seen other = it->second;
      if (!routes[i].named[k]) std::swap(blamed, other);
      fail(fmt::format("routes[{}].targets[{}].name", blamed.route, blamed.target),
           fmt::format("duplicate target name {} (also routes[{}].targets[{}])", quote_value(name),
                       other.route, other.target));
    }
  }
}

}  // namespace

void parse_routes(const YAML::Node* node, Config& config) {
  if (node == nullptr || node->IsNull()) fail("routes", "required");
  if (!node->IsSequence()) {
    fail("routes", fmt::format("expected a sequence, got {}", describe(*node)));
  }
  if (node->size() == 0) fail("routes", "at least one route is required");

  std::vector<ParsedRoute> routes;  // every route, active or not, in file order
  for (size_t i = 0; i < node->size(); ++i) {
    const std::string path = index_path("routes", i);
    ParsedRoute parsed = parse_route((*node)[i], path, config.upstream, config.state.sessions.tuning);
    // Checked across inactive routes too, so validity never depends on which secrets are set.
    const auto first =
        std::find_if(routes.begin(), routes.end(),
                     [&](const ParsedRoute& r) { return r.route.model == parsed.route.model; });
    if (first != routes.end()) {
      fail(child_path(path, "model"),
           fmt::format("duplicate route for model {} (first at routes[{}])",
                       quote_value(parsed.route.model), first - routes.begin()));
    }
    parsed.active = parsed.when_env.empty() || env_value(parsed.when_env).has_value();
    routes.push_back(std::move(parsed));
  }
  check_target_names(routes);

  if (std::none_of(routes.begin(), routes.end(), [](const ParsedRoute& r) { return r.active; })) {
    std::vector<std::string> unset;
    for (const ParsedRoute& r : routes) {
      if (std::find(unset.begin(), unset.end(), r.when_env) == unset.end()) {
        unset.push_back(r.when_env);
      }
    }
    fail("routes", fmt::format("no active route (every route has an unset when_env: {})",
                               fmt::join(unset, ", ")));
  }

  // Fallbacks are resolved against the routes that will actually serve: an inactive route's
  // own fallbacks are not checked, but nothing active may depend on an inactive route.
  for (size_t i = 0; i < routes.size(); ++i) {
    if (!routes[i].active) continue;
    const RouteConfig& route = routes[i].route;
    const std::string path = index_path("routes", i);
    for (size_t j = 0; j < route.fallbacks.size(); ++j) {
      check_fallback(routes, i, route.fallbacks[j],
                     index_path(child_path(path, "fallbacks"), j));
    }
    if (!route.context_fallback.empty()) {
      check_fallback(routes, i, route.context_fallback, child_path(path, "context_fallback"));
    }
    const std::string sessions = child_path(path, "sessions");
    if (!route.sessions.extract_model.empty()) {
      check_served(routes, route.sessions.extract_model, child_path(sessions, "extract_model"));
    }
    if (!route.sessions.summary_model.empty()) {
      check_served(routes, route.sessions.summary_model, child_path(sessions, "summary_model"));
    }
    if (route.cache.enabled && route.cache.semantic.enabled) {
      check_served(routes, route.cache.semantic.embeddings_model,
                   child_path(child_path(child_path(path, "cache"), "semantic"), "embeddings_model"));
    }
  }
  // A session's embeddings model (state.sessions.embeddings_model) is routed too.
  if (const std::string& m = config.state.sessions.embeddings_model; !m.empty()) {
    check_served(routes, m, "state.sessions.embeddings_model");
  }

  for (ParsedRoute& parsed : routes) {
    if (parsed.active) config.routes.push_back(std::move(parsed.route));
  }
}
}  // namespace sluice::config::detail
