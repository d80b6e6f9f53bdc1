// The `server`, `admin`, `metrics` and `errors` sections: the listeners and what they serve.
#include <fmt/format.h>

#include <optional>
#include <string>

#include "config/sections.h"
#include "config/yaml_read.h"

namespace sluice::config::detail {
namespace {

constexpr int kMaxThreads = 256;

}  // namespace

void parse_server(const YAML::Node& node, ServerConfig& server) {
  const Section s(node, "server", "server");
  if (const auto* n = s.find("listen")) {
    parse_listen(*n, s.path("listen"), server.listen_host, server.listen_port);
  }
  if (const auto* n = s.find("threads")) {
    const std::string path = s.path("threads");
    const std::string expected = fmt::format("must be \"auto\" or an integer 1..{}", kMaxThreads);
    if (!n->IsScalar()) fail(path, fmt::format("{}, got {}", expected, describe(*n)));
    if (n->Scalar() == "auto") {
      server.threads = 0;
    } else {
      const std::optional<int64_t> threads = to_int(n->Scalar());
      if (!threads) fail(path, fmt::format("{}, got {}", expected, quote_value(n->Scalar())));
      if (*threads < 1 || *threads > kMaxThreads) fail(path, expected);
      server.threads = static_cast<int>(*threads);
    }
  }
  if (const auto* n = s.find("max_header_bytes")) {
    server.max_header_bytes = read_size(*n, s.path("max_header_bytes"));
  }
  if (const auto* n = s.find("max_body_bytes")) {
    server.max_body_bytes = read_size(*n, s.path("max_body_bytes"));
  }
  if (const auto* n = s.find("header_timeout_ms")) {
    server.header_timeout = read_millis(*n, s.path("header_timeout_ms"));
  }
  if (const auto* n = s.find("body_timeout_ms")) {
    server.body_timeout = read_millis(*n, s.path("body_timeout_ms"));
  }
  if (const auto* n = s.find("idle_timeout_ms")) {
    server.idle_timeout = read_millis(*n, s.path("idle_timeout_ms"));
  }
  if (const auto* n = s.find("max_connections")) {
    server.max_connections =
        static_cast<size_t>(read_int_in(*n, s.path("max_connections"), 1, kMaxCount));
  }
  if (const auto* n = s.find("drain_timeout_ms")) {
    server.drain_timeout = read_millis(*n, s.path("drain_timeout_ms"));
  }
  if (const auto* n = s.find("max_buffered_body_bytes")) {
    server.max_buffered_body_bytes = read_size(*n, s.path("max_buffered_body_bytes"));
  }
}

void parse_admin(const YAML::Node& node, Config& config) {
  const Section s(node, "admin", "admin");
  if (const auto* n = s.find("listen")) {
    // `off`, empty or null: no admin listener.
    if (n->IsNull() || (n->IsScalar() && (n->Scalar().empty() || n->Scalar() == "off"))) {
      config.admin.listen_enabled = false;
    } else {
      parse_listen(*n, s.path("listen"), config.admin.listen_host, config.admin.listen_port);
    }
  }
  if (const auto* n = s.find("on_public_listener")) {
    config.admin.on_public_listener = read_bool(*n, s.path("on_public_listener"));
  }
  if (const auto* n = s.find("token_env")) {
    config.admin_token =
        secret_env_value(read_env_name(*n, s.path("token_env")), s.path("token_env")).value_or("");
  }
}

void parse_errors(const YAML::Node& node, Config& config) {
  const Section s(node, "errors", "errors");
  if (const auto* n = s.find("expose_upstream")) {
    config.expose_upstream_errors = read_bool(*n, s.path("expose_upstream"));
  }
}

void parse_metrics(const YAML::Node& node, MetricsConfig& m) {
  const Section s(node, "metrics", "metrics");
  if (const auto* n = s.find("enabled")) m.enabled = read_bool(*n, s.path("enabled"));
  if (const auto* n = s.find("path")) {
    m.path = read_string(*n, s.path("path"));
    if (m.path.empty() || m.path.front() != '/') fail(s.path("path"), "must start with /");
    if (m.path.starts_with("/v1/") || m.path == "/v1" || m.path.starts_with("/admin/") ||
        m.path == "/healthz" || m.path == "/readyz") {
      fail(s.path("path"), fmt::format("{} is taken by another endpoint", quote_value(m.path)));
    }
  }
  if (const auto* n = s.find("require_admin_token")) {
    m.require_admin_token = read_bool(*n, s.path("require_admin_token"));
  }
  if (const auto* n = s.find("validate_streams")) {
    m.validate_streams = read_bool(*n, s.path("validate_streams"));
  }
  if (const auto* n = s.find("server_timing")) {
    m.server_timing = read_bool(*n, s.path("server_timing"));
  }
}

}  // namespace sluice::config::detail
