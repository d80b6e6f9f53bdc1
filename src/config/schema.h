// The shape of the YAML config: every map the loader reads and the keys allowed in it. This is
// the single list the loader checks keys against (load.cc) and docs/configuration.md is tested
// against (tests/unit/config_docs_test.cc): add a key here, then read it in load.cc and
// document it, or the unit tests fail.
//
// A section is named by its normalized YAML path: list indexes become `[]` and the entries of a
// map with free-form keys (tenant names) become `*`, e.g. `routes[].targets[].retry`,
// `rate_limits.per_tenant.*`. The top level is "". Error messages still name the concrete path
// (`routes[2].targets[0].breaker.window_ms: must be > 0`).
#pragma once

#include <cstddef>
#include <iterator>
#include <string_view>
#include <vector>

namespace sluice::config {

struct SchemaSection {
  std::string_view path;               // normalized path, "" = the top level
  std::vector<std::string_view> keys;  // allowed keys, in documentation order
};

/// Every map of the config, in file/documentation order. Built once from the table below.
const std::vector<SchemaSection>& schema();

namespace schema_detail {

struct Entry {
  std::string_view path;
  std::string_view keys;  // space-separated
};

// clang-format off
inline constexpr Entry kEntries[] = {
    {"", "server upstream admin auth redis rate_limits prices budgets usage pipeline routes "
         "metrics errors access_log logging reload state cache"},
    {"server", "listen threads max_header_bytes max_body_bytes header_timeout_ms body_timeout_ms "
               "idle_timeout_ms max_connections drain_timeout_ms max_buffered_body_bytes"},
    {"upstream", "max_idle_per_host idle_timeout_ms max_connections_per_host dns_ttl_ms ca_file "
                 "timeouts"},
    {"upstream.timeouts", "connect_ms first_byte_ms stream_idle_ms total_ms"},
    {"admin", "listen on_public_listener token_env"},
    {"auth", "enabled keys_db keys_backend keys jwt"},
    {"auth.keys[]", "name key_env key_sha256 key tenant models limits budget expires"},
    {"auth.keys[].limits", "requests_per_minute tokens_per_minute tokens_per_day"},
    {"auth.keys[].budget", "usd period"},
    {"auth.jwt", "enabled algorithms secret_env secret public_key_file jwks_file issuer audience "
                 "clock_skew_ms tenant_claim"},
    {"redis", "url timeout_ms"},
    {"rate_limits", "backend redis per_key per_tenant per_model"},
    {"rate_limits.redis", "url timeout_ms on_error"},
    {"rate_limits.per_key", "requests_per_minute tokens_per_minute tokens_per_day"},
    {"rate_limits.per_tenant.*", "requests_per_minute tokens_per_minute tokens_per_day"},
    {"rate_limits.per_model[]", "model requests_per_minute tokens_per_minute tokens_per_day"},
    {"prices[]", "model input_per_million cached_input_per_million output_per_million"},
    {"budgets", "backend per_key per_tenant"},
    {"budgets.per_key", "usd period"},
    {"budgets.per_tenant.*", "usd period"},
    {"usage", "db"},
    {"state", "backend path max_entries max_bytes sweep_interval_ms responses_ttl_s "
              "conversations_ttl_s max_chain files_max_bytes files_ttl_s sessions"},
    {"state.sessions", "idle_ttl_s max_ttl_s memories_k memory_share margin_tokens "
                       "default_context_window alpha beta gamma half_life_s extract_model "
                       "summary_model summary_min_turns summary_max_turns embeddings_model "
                       "vector_weight background_jobs"},
    {"pipeline", "stages"},
    {"routes[]", "model description when_env targets balancer retry fallbacks context_fallback "
                 "fail_fast context_window default_max_tokens sessions cache"},
    {"routes[].cache", "enabled mode ttl_s tool_calls hit_cost flight_wait_ms semantic"},
    {"routes[].cache.semantic", "enabled embeddings_model threshold timeout_ms"},
    {"cache", "l1_max_bytes max_entry_bytes l2 semantic_max_entries flight_lock"},
    {"routes[].sessions", "memories_k memory_share margin_tokens alpha beta gamma half_life_s "
                          "extract_model summary_model summary_min_turns summary_max_turns"},
    {"routes[].retry", "max_attempts backoff_base_ms backoff_cap_ms jitter deadline_ms "
                       "retry_on_timeout budget_ratio budget_window_ms budget_min_retries"},
    {"routes[].targets[]", "provider base_url base_url_env model api_key_env api_key api_style "
                           "api_version weight headers forward_headers timeouts name breaker concurrency "
                           "health"},
    {"routes[].targets[].timeouts", "connect_ms first_byte_ms stream_idle_ms total_ms"},
    {"routes[].targets[].breaker", "enabled failure_ratio min_requests window_ms cooldown_ms "
                                   "half_open_probes"},
    {"routes[].targets[].concurrency", "max_in_flight max_queue queue_timeout_ms"},
    {"routes[].targets[].health", "enabled path interval_ms timeout_ms healthy_threshold "
                                  "unhealthy_threshold"},
    {"metrics", "enabled path require_admin_token server_timing validate_streams"},
    {"errors", "expose_upstream"},
    {"access_log", "enabled path sample include_bodies queue"},
    {"logging", "level format"},
    {"reload", "watch interval_ms"},
};
// clang-format on

inline constexpr size_t kNotFound = static_cast<size_t>(-1);

constexpr size_t find_index(std::string_view path) {
  for (size_t i = 0; i < std::size(kEntries); ++i) {
    if (kEntries[i].path == path) return i;
  }
  return kNotFound;
}

// Each section once; each key once per section, separated by single spaces.
constexpr bool well_formed() {
  for (size_t i = 0; i < std::size(kEntries); ++i) {
    if (find_index(kEntries[i].path) != i) return false;
    const std::string_view keys = kEntries[i].keys;
    if (keys.empty() || keys.front() == ' ' || keys.back() == ' ') return false;
    if (keys.find("  ") != std::string_view::npos) return false;
    size_t start = 0;
    while (start < keys.size()) {
      size_t end = keys.find(' ', start);
      if (end == std::string_view::npos) end = keys.size();
      const std::string_view key = keys.substr(start, end - start);
      size_t count = 0;
      size_t pos = 0;
      while (pos < keys.size()) {
        size_t e = keys.find(' ', pos);
        if (e == std::string_view::npos) e = keys.size();
        if (keys.substr(pos, e - pos) == key) ++count;
        pos = e + 1;
      }
      if (count != 1) return false;
      start = end + 1;
    }
  }
  return true;
}
static_assert(well_formed(), "config schema: duplicate section or key, or bad spacing");

}  // namespace schema_detail

/// A section of the table, checked at compile time: `SchemaRef("routes[].retry")` does not
/// compile unless that path is in kEntries (the error points at the `throw` below).
class SchemaRef {
 public:
  consteval SchemaRef(const char* path) : index_(schema_detail::find_index(path)) {  // NOLINT
    if (index_ == schema_detail::kNotFound) {
      throw "config schema: no such section in schema_detail::kEntries";
    }
  }

  const SchemaSection& section() const { return schema()[index_]; }

 private:
  size_t index_;
};

}  // namespace sluice::config
