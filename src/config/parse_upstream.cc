// The `upstream` section: connection pool defaults and the timeouts every target inherits.
#include <fmt/format.h>

#include <string>

#include "config/sections.h"
#include "config/yaml_read.h"

namespace sluice::config::detail {

// Overlays the keys present in a `timeouts:` map onto `timeouts`, then checks that the
// per-phase limits fit inside the total. `base_path` names where inherited values came from.
void parse_timeouts(const YAML::Node& node, const std::string& path, SchemaRef schema,
                    std::string_view base_path, Timeouts& timeouts) {
  const Section s(node, path, schema);
  const auto* connect = s.find("connect_ms");
  const auto* first_byte = s.find("first_byte_ms");
  const auto* stream_idle = s.find("stream_idle_ms");
  const auto* total = s.find("total_ms");
  if (connect) timeouts.connect = read_millis(*connect, s.path("connect_ms"));
  if (first_byte) timeouts.first_byte = read_millis(*first_byte, s.path("first_byte_ms"));
  if (stream_idle) timeouts.stream_idle = read_millis(*stream_idle, s.path("stream_idle_ms"));
  if (total) timeouts.total = read_millis(*total, s.path("total_ms"));

  const auto check = [&](const YAML::Node* phase, std::string_view key, Millis value) {
    if (value <= timeouts.total) return;
    if (phase != nullptr) {
      fail(s.path(key), fmt::format("must be <= total_ms ({})", timeouts.total.count()));
    }
    fail(s.path("total_ms"),
         fmt::format("must be >= {} ({}, from {})", key, value.count(), base_path));
  };
  // Values set here are blamed before inherited ones: they are the likelier mistake.
  if (first_byte) check(first_byte, "first_byte_ms", timeouts.first_byte);
  if (stream_idle) check(stream_idle, "stream_idle_ms", timeouts.stream_idle);
  check(first_byte, "first_byte_ms", timeouts.first_byte);
  check(stream_idle, "stream_idle_ms", timeouts.stream_idle);
}

void parse_upstream(const YAML::Node& node, UpstreamConfig& upstream) {
  const Section s(node, "upstream", "upstream");
  if (const auto* n = s.find("max_idle_per_host")) {
    upstream.max_idle_per_host =
        static_cast<size_t>(read_int_in(*n, s.path("max_idle_per_host"), 0, kMaxCount));
  }
  if (const auto* n = s.find("idle_timeout_ms")) {
    upstream.idle_timeout = read_millis(*n, s.path("idle_timeout_ms"));
  }
  if (const auto* n = s.find("max_connections_per_host")) {
    upstream.max_connections_per_host =
        static_cast<size_t>(read_int_in(*n, s.path("max_connections_per_host"), 1, kMaxCount));
  }
  if (const auto* n = s.find("dns_ttl_ms")) {
    upstream.dns_ttl = read_millis(*n, s.path("dns_ttl_ms"));
  }
  if (const auto* n = s.find("ca_file")) {
    upstream.ca_file = read_string(*n, s.path("ca_file"));
    if (!upstream.ca_file.empty()) check_readable_file(upstream.ca_file, s.path("ca_file"));
  }
  if (const auto* n = s.find("timeouts")) {
    parse_timeouts(*n, s.path("timeouts"), "upstream.timeouts", "the built-in defaults",
                   upstream.timeouts);
  }
}

}  // namespace sluice::config::detail
