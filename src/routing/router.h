// Model name → route. Exact names are a hash lookup; globs are tried in file order after them.
// Built once per config and shared read-only by every worker.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"

namespace sluice::routing {

class Router {
 public:
  explicit Router(std::shared_ptr<const config::Config> config);

  /// The route serving `model`, or nullptr (→ 404 model_not_found).
  const config::RouteConfig* match(std::string_view model) const;

  /// Exact (non-glob) model names, in config order: what GET /v1/models lists.
  const std::vector<std::string>& model_ids() const { return model_ids_; }

  const config::Config& config() const { return *config_; }

 private:
  std::shared_ptr<const config::Config> config_;
  std::unordered_map<std::string, const config::RouteConfig*> exact_;
  std::vector<const config::RouteConfig*> globs_;
  std::vector<std::string> model_ids_;
};

}  // namespace sluice::routing
