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
  if (const auto* n = s.find("files_max_bytes")) st.files_max_bytes = read_size(*n, s.path("files_max_bytes"));
  if (const auto* n = s.find("files_ttl_s")) {
    st.files_ttl_s = read_int_in(*n, s.path("files_ttl_s"), 0, 10LL * 365 * 86'400);
  }
  if (const auto* n = s.find("conversations_ttl_s")) {
    st.conversations_ttl_s =
        read_int_in(*n, s.path("conversations_ttl_s"), 0, 10LL * 365 * 86'400);
  }
  if (const auto* n = s.find("max_chain")) {
    st.max_chain = static_cast<int>(read_int_in(*n, s.path("max_chain"), 1, 100'000));
  }
  if (const auto* n = s.find("sessions")) {
    const Section ss(*n, s.path("sessions"), "state.sessions");
    auto& x = st.sessions;
    constexpr int64_t kTenYears = 10LL * 365 * 86'400;
    if (const auto* v = ss.find("idle_ttl_s")) x.idle_ttl_s = read_int_in(*v, ss.path("idle_ttl_s"), 0, kTenYears);
    if (const auto* v = ss.find("max_ttl_s")) x.max_ttl_s = read_int_in(*v, ss.path("max_ttl_s"), 0, kTenYears);
    if (const auto* v = ss.find("default_context_window")) {
      x.default_context_window = read_int_in(*v, ss.path("default_context_window"), 1, 100'000'000);
    }
    if (const auto* v = ss.find("embeddings_model")) {
      x.embeddings_model = read_string(*v, ss.path("embeddings_model"));
    }
    if (const auto* v = ss.find("vector_weight")) {
      x.vector_weight = read_double_in(*v, ss.path("vector_weight"), 0, 1, false);
    }
    if (const auto* v = ss.find("background_jobs")) {
      x.background_jobs = static_cast<int>(read_int_in(*v, ss.path("background_jobs"), 0, 10'000));
    }
    parse_session_tuning(ss, x.tuning);
  }
}

void parse_cache(const YAML::Node& node, CacheConfig& cache) {
  const Section s(node, "cache", "cache");
  if (const auto* n = s.find("l1_max_bytes")) cache.l1_max_bytes = read_size(*n, s.path("l1_max_bytes"));
  if (const auto* n = s.find("max_entry_bytes")) {
    cache.max_entry_bytes = read_size(*n, s.path("max_entry_bytes"));
  }
  if (const auto* n = s.find("flight_lock")) cache.flight_lock = read_bool(*n, s.path("flight_lock"));
  if (const auto* n = s.find("semantic_max_entries")) {
    cache.semantic_max_entries =
        static_cast<size_t>(read_int_in(*n, s.path("semantic_max_entries"), 1, 10'000'000));
  }
  if (const auto* n = s.find("l2")) {
    const std::string v = read_string(*n, s.path("l2"));
    if (v == "redis") {
      cache.l2_redis = true;
    } else if (v == "none") {
      cache.l2_redis = false;
    } else {
      fail(s.path("l2"), fmt::format("unknown tier {} (expected none, redis)", quote_value(v)));
    }
  }
  if (cache.flight_lock && !cache.l2_redis) {
    fail(s.path("flight_lock"), "needs the Redis tier (l2: redis): the lock lives there");
  }
}

void parse_route_cache(const YAML::Node& node, const std::string& path, RouteCacheConfig& c) {
  const Section s(node, path, "routes[].cache");
  c.enabled = true;  // a `cache:` map turns it on unless it says enabled: false
  if (const auto* n = s.find("enabled")) c.enabled = read_bool(*n, s.path("enabled"));
  if (const auto* n = s.find("mode")) {
    const std::string v = read_string(*n, s.path("mode"));
    if (v == "all") {
      c.mode = RouteCacheConfig::Mode::all;
    } else if (v == "on_request") {
      c.mode = RouteCacheConfig::Mode::on_request;
    } else {
      fail(s.path("mode"), fmt::format("unknown mode {} (expected all, on_request)", quote_value(v)));
    }
  }
  if (const auto* n = s.find("ttl_s")) c.ttl_s = read_int_in(*n, s.path("ttl_s"), 1, 10LL * 365 * 86'400);
  if (const auto* n = s.find("tool_calls")) c.tool_calls = read_bool(*n, s.path("tool_calls"));
  if (const auto* n = s.find("hit_cost")) c.hit_cost = read_double_in(*n, s.path("hit_cost"), 0, 1, false);
  if (const auto* n = s.find("flight_wait_ms")) c.flight_wait = read_millis_or_zero(*n, s.path("flight_wait_ms"));
  if (const auto* n = s.find("semantic")) {
    const Section ss(*n, s.path("semantic"), "routes[].cache.semantic");
    RouteCacheConfig::Semantic& x = c.semantic;
    x.enabled = true;  // like `cache:`, a `semantic:` map turns it on
    if (const auto* v = ss.find("enabled")) x.enabled = read_bool(*v, ss.path("enabled"));
    if (const auto* v = ss.find("embeddings_model")) {
      x.embeddings_model = read_string(*v, ss.path("embeddings_model"));
    }
    if (const auto* v = ss.find("threshold")) {
      x.threshold = read_double_in(*v, ss.path("threshold"), 0.5, 1, false);
    }
    if (const auto* v = ss.find("timeout_ms")) x.timeout = read_millis(*v, ss.path("timeout_ms"));
    if (x.enabled && x.embeddings_model.empty()) {
      fail(ss.path("embeddings_model"), "required when the semantic tier is enabled");
    }
  }
}

void parse_session_tuning(const Section& ss, SessionTuning& x) {
  if (const auto* v = ss.find("memories_k")) {
    x.memories_k = static_cast<int>(read_int_in(*v, ss.path("memories_k"), 0, 1000));
  }
  if (const auto* v = ss.find("memory_share")) {
    x.memory_share = read_double_in(*v, ss.path("memory_share"), 0, 1, false);
  }
  if (const auto* v = ss.find("margin_tokens")) {
    x.margin_tokens = read_int_in(*v, ss.path("margin_tokens"), 0, 1'000'000);
  }
  for (auto [key, field] : {std::pair{"alpha", &x.alpha}, {"beta", &x.beta}, {"gamma", &x.gamma}}) {
    if (const auto* v = ss.find(key)) *field = read_double_in(*v, ss.path(key), 0, 100, false);
  }
  if (const auto* v = ss.find("half_life_s")) {
    x.half_life_s = read_double_in(*v, ss.path("half_life_s"), 1, 1e10, false);
  }
  // "" turns a default off for one route.
  if (const auto* v = ss.find("extract_model")) x.extract_model = read_string(*v, ss.path("extract_model"));
  if (const auto* v = ss.find("summary_model")) x.summary_model = read_string(*v, ss.path("summary_model"));
  if (const auto* v = ss.find("summary_min_turns")) {
    x.summary_min_turns = static_cast<int>(read_int_in(*v, ss.path("summary_min_turns"), 1, 10'000));
  }
  if (const auto* v = ss.find("summary_max_turns")) {
    x.summary_max_turns = static_cast<int>(read_int_in(*v, ss.path("summary_max_turns"), 1, 10'000));
  }
  if (x.summary_max_turns < x.summary_min_turns) {
    fail(ss.path("summary_max_turns"), "must be at least summary_min_turns");
  }
}

}  // namespace sluice::config::detail
