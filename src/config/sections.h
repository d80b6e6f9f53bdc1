// The section parsers of the YAML config, grouped by concept in parse_<group>.cc and called in
// a fixed order by build() in load.cc (that order decides which error a file with several
// mistakes reports first). Each walks its map with the readers of yaml_read.h and throws
// ConfigError("<yaml.path>: <problem>") on the first bad value. Internal to src/config/.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/schema.h"

namespace sluice::config::detail {

class Section;  // yaml_read.h

// parse_server.cc: the listeners and what is served on them.
void parse_server(const YAML::Node& node, ServerConfig& server);
void parse_admin(const YAML::Node& node, Config& config);
void parse_metrics(const YAML::Node& node, MetricsConfig& m);
void parse_errors(const YAML::Node& node, Config& config);

// parse_upstream.cc: the connection pool defaults and the timeouts every target inherits.
void parse_upstream(const YAML::Node& node, UpstreamConfig& upstream);
// Overlays the keys present in a `timeouts:` map onto `timeouts`, then checks that the
// per-phase limits fit inside the total. `base_path` names where inherited values came from.
void parse_timeouts(const YAML::Node& node, const std::string& path, SchemaRef schema,
                    std::string_view base_path, Timeouts& timeouts);

// parse_target.cc: one `routes[].targets[]` entry (provider, URL, headers, breaker, health...).
TargetConfig parse_target(const YAML::Node& node, const std::string& path,
                          const UpstreamConfig& upstream);

// parse_routes.cc: `routes` (required), with the checks across routes: duplicate models and
// target names, when_env activation, fallbacks served by an active route. Reads
// config.upstream (inherited timeouts), so it runs after parse_upstream.
void parse_routes(const YAML::Node* node, Config& config);

// parse_auth.cc: `auth` (keys, JWT). Relative file paths are resolved against `base_dir`.
void parse_auth(const YAML::Node& node, const std::string& base_dir, AuthConfig& auth);

// parse_governance.cc: rate limits, the Redis connection, prices, budgets, usage.
void parse_rate_limits(const YAML::Node& node, RateLimitConfig& limits);
// `rate_limits` is the top-level `rate_limits` node (or nullptr), parsed before: its older
// `redis:` spelling may not set the same key a second time.
void parse_redis(const YAML::Node& node, const YAML::Node* rate_limits, RateLimitConfig& limits);
void parse_prices(const YAML::Node& node, std::vector<Price>& prices);
void parse_budgets(const YAML::Node& node, Config& config);
void parse_usage(const YAML::Node& node, const std::string& base_dir, Config& config);
void parse_pipeline(const YAML::Node& node, PipelineConfig& pipeline);
// Shared with auth.keys[]: a `limits:` map and a `{usd, period}` budget.
RateLimits parse_limits(const YAML::Node& node, const std::string& path, SchemaRef schema);
Budget parse_budget(const YAML::Node& node, const std::string& path, SchemaRef schema);

// parse_logging.cc: access log, process log, config reload.
void parse_access_log(const YAML::Node& node, const std::string& base_dir, AccessLogConfig& a);
void parse_logging(const YAML::Node& node, LoggingConfig& l);
void parse_reload(const YAML::Node& node, ReloadConfig& r);
void parse_state(const YAML::Node& node, const std::string& base_dir, StateConfig& state);
/// The top-level `cache` (the response cache's tiers) and a route's `cache`.
void parse_cache(const YAML::Node& node, CacheConfig& cache);
void parse_route_cache(const YAML::Node& node, const std::string& path, RouteCacheConfig& cache);
/// The keys of `state.sessions` and `routes[].sessions` that tune packing and the work after
/// a turn (present keys override `tuning`'s values).
void parse_session_tuning(const Section& s, SessionTuning& tuning);

}  // namespace sluice::config::detail
