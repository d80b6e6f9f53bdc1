// Router: exact map + ordered globs; weighted target choice.
#include "routing/router.h"

namespace sluice::routing {

Router::Router(std::shared_ptr<const config::Config> config) : config_(std::move(config)) {
  for (const auto& route : config_->routes) {
    auto st = std::make_unique<RouteState>();
    uint32_t sum = 0;
    for (const auto& t : route.targets) {
      sum += t.weight;
      st->cumulative.push_back(sum);
    }
    state_.push_back(std::move(st));
    if (route.is_glob) {
      globs_.push_back(&route);
    } else if (exact_.emplace(route.model, &route).second) {
      model_ids_.push_back(route.model);
    }
  }
}

const config::RouteConfig* Router::match(std::string_view model) const {
  auto it = exact_.find(std::string(model));
  if (it != exact_.end()) return it->second;
  for (const auto* route : globs_) {
    if (config::glob_match(route->model, model)) return route;
  }
  return nullptr;
}

const config::TargetConfig& Router::pick(const config::RouteConfig& route) const {
  if (route.targets.size() == 1) return route.targets[0];
  size_t index = static_cast<size_t>(&route - config_->routes.data());
  const RouteState& st = *state_[index];
  uint64_t n = st.counter.fetch_add(1, std::memory_order_relaxed) % st.cumulative.back();
  for (size_t i = 0; i < st.cumulative.size(); ++i) {
    if (n < st.cumulative[i]) return route.targets[i];
  }
  return route.targets.back();
}

}  // namespace sluice::routing
