// Sluice configuration: plain structs filled from YAML by load_config(). Read-only once built;
// the whole Config is swapped atomically on reload, so nothing here is ever mutated in place.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::config {

using Millis = std::chrono::milliseconds;

/// Thrown by load_config()/parse_config() only (startup and reload, never the data plane).
/// what() is "<yaml.path>: <problem>", e.g. "routes[2].targets[0].weight: must be > 0".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ServerConfig {
  std::string listen_host = "127.0.0.1";    // from `listen: host:port`
  uint16_t listen_port = 8080;              // 0 = ephemeral (the bound port is logged)
  int threads = 0;                          // 0 = auto (hardware concurrency)
  size_t max_header_bytes = 64 * 1024;      // → 431
  size_t max_body_bytes = 16 * 1024 * 1024; // → 413
  Millis header_timeout{10'000};            // whole request head must arrive within this
  Millis body_timeout{60'000};              // whole request body must arrive within this
  Millis idle_timeout{60'000};              // keep-alive connection with no request
  size_t max_connections = 20'000;          // beyond: accepted and closed at once
  Millis drain_timeout{15'000};             // graceful shutdown deadline
};

struct Timeouts {
  Millis connect{5'000};
  Millis first_byte{60'000};    // request sent → response head received
  Millis stream_idle{60'000};   // between two body reads (stream events)
  Millis total{600'000};        // whole exchange
};

struct UpstreamConfig {
  size_t max_idle_per_host = 64;            // per worker thread
  Millis idle_timeout{60'000};              // pooled connection unused this long is closed
  size_t max_connections_per_host = 1024;   // per worker thread
  Millis dns_ttl{30'000};
  Timeouts timeouts;                        // defaults for every target
  std::string ca_file;                      // extra CA bundle (PEM); empty = system store
};

enum class ProviderKind { openai, demo };
enum class ApiStyle { openai, azure };

struct TargetConfig {
  ProviderKind provider = ProviderKind::openai;
  std::string base_url;       // e.g. https://api.openai.com/v1 (required for openai)
  std::string model;          // upstream model name; empty = the client's model unchanged
  std::string api_key_env;    // name of the environment variable holding the key; may be empty
  std::string api_key;        // resolved from api_key_env at load time (never from YAML)
  ApiStyle api_style = ApiStyle::openai;
  std::string api_version;    // azure: api-version query parameter
  uint32_t weight = 1;        // > 0
  Timeouts timeouts;          // upstream.timeouts overlaid with the target's own
  std::map<std::string, std::string> headers;  // extra headers sent upstream
  // Parsed from base_url:
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string base_path;      // path prefix without trailing slash, e.g. "/v1"
};

struct RouteConfig {
  std::string model;          // exact name or glob (`*`, `?`), e.g. "gpt-4o*"
  bool is_glob = false;
  std::vector<TargetConfig> targets;  // at least one
  std::string description;
};

struct Config {
  ServerConfig server;
  UpstreamConfig upstream;
  std::vector<RouteConfig> routes;  // active routes only (see `when_env`), in file order
  std::string source_path;          // file it came from (empty when parsed from a string)
};

/// Reads and validates a YAML file. Throws ConfigError with a YAML path on any problem,
/// including unknown keys and unreadable files.
std::shared_ptr<const Config> load_config(const std::string& path);

/// Same, from YAML text (tests).
std::shared_ptr<const Config> parse_config(const std::string& yaml_text);

/// Glob match with `*` (any run) and `?` (one char); case-sensitive.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace sluice::config
