// Router: exact map + ordered globs; weighted target choice.
#include "routing/router.h"

namespace sluice::routing {

Router::Router(std::shared_ptr<const config::Config> config) : config_(std::move(config)) {
  for (const auto& route : config_->routes) {
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

}  // namespace sluice::routing
