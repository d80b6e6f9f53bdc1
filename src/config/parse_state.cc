// The `state` section: where stored Responses and conversations live.
#include <fmt/format.h>

#include "config/sections.h"
#include "config/yaml_read.h"

namespace sluice::config::detail {

void parse_state(const YAML::Node& node, const std::string& base_dir, StateConfig& st) {
  const Section s(node, "state", "state");
  if (const auto* n = s.find("backend")) {
    std::string b = read_string(*n, s.path("backend"));
    if (b == "memory") {
      st.backend = StateConfig::Backend::memory;
    } else if (b == "sqlite") {
      st.backend = StateConfig::Backend::sqlite;
    } else if (b == "redis") {
      st.backend = StateConfig::Backend::redis;
    } else {
      fail(s.path("backend"),
           fmt::format("unknown backend {} (expected memory, sqlite, redis)", quote_value(b)));
    }
  }
  if (const auto* n = s.find("path")) {
    st.path = read_string(*n, s.path("path"));
    if (st.path.empty()) fail(s.path("path"), "must not be empty");
    if (st.path.front() != '/' && !base_dir.empty()) st.path = base_dir + "/" + st.path;
  }
  if (st.backend == StateConfig::Backend::sqlite && st.path.empty()) {
    fail(s.path("path"), "required with backend: sqlite (the SQLite file)");
  }
  if (st.backend != StateConfig::Backend::sqlite && s.find("path") != nullptr) {
    fail(s.path("path"), "only used with backend: sqlite");
  }
  if (const auto* n = s.find("max_entries")) {
    st.max_entries = static_cast<size_t>(read_int_in(*n, s.path("max_entries"), 16, 1'000'000'000));
  }
  if (const auto* n = s.find("max_bytes")) st.max_bytes = read_size(*n, s.path("max_bytes"));
  if (const auto* n = s.find("sweep_interval_ms")) {
    st.sweep_interval = read_millis(*n, s.path("sweep_interval_ms"));
  }
  if (const auto* n = s.find("responses_ttl_s")) {
    st.responses_ttl_s = read_int_in(*n, s.path("responses_ttl_s"), 0, 10LL * 365 * 86'400);
  }
  if (const auto* n = s.find("conversations_ttl_s")) {
    st.conversations_ttl_s =
        read_int_in(*n, s.path("conversations_ttl_s"), 0, 10LL * 365 * 86'400);
  }
  if (const auto* n = s.find("max_chain")) {
    st.max_chain = static_cast<int>(read_int_in(*n, s.path("max_chain"), 1, 100'000));
  }
}

}  // namespace sluice::config::detail
