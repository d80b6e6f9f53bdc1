// One `routes[].targets[]` entry: provider, base URL, credentials, headers, timeouts and the
// per-target breaker, concurrency limit and health check.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "config/sections.h"
#include "config/yaml_read.h"

namespace sluice::config::detail {
namespace {

constexpr int64_t kMaxWeight = 1'000'000;

// Fills tls/host/port/base_path from an http(s) URL. Returns an error message on failure;
// the URL itself is never echoed because it may come from the environment.
std::optional<std::string> parse_base_url(std::string_view url, TargetConfig& target) {
  if (std::any_of(url.begin(), url.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
    return "URL contains whitespace or control characters";
  }
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "expected an http:// or https:// URL";
  const std::string scheme = lower(url.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") return "expected an http:// or https:// URL";
  const std::string_view rest = url.substr(scheme_end + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return "query strings and fragments are not allowed in base_url";
  }
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  if (authority.find('@') != std::string_view::npos) {
    return "credentials in URLs are not allowed; use api_key_env";
  }
  HostPort parts;
  if (const auto error = split_host_port(authority, parts)) return fmt::format("URL: {}", *error);
  const bool tls = scheme == "https";
  uint16_t port = tls ? 443 : 80;
  if (parts.port) {
    const std::optional<uint16_t> explicit_port = parse_port(*parts.port);
    if (!explicit_port || *explicit_port == 0) return "URL port must be 1..65535";
    port = *explicit_port;
  }
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  target.tls = tls;
  target.host = std::move(parts.host);
  target.port = port;
  target.base_path = std::string(path);
  return std::nullopt;
}

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

void parse_headers(const YAML::Node& node, const std::string& path,
                   std::map<std::string, std::string>& headers) {
  for (auto& [name, value_node] : map_entries(node, path)) {
    const std::string header_path = child_path(path, name);
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char)) {
      fail(header_path, "invalid header name");
    }
    const std::string name_lower = lower(name);
    if (name_lower == "authorization" || name_lower == "api-key" || name_lower == "x-api-key" ||
        name_lower == "x-goog-api-key") {
      fail(header_path, "inline secrets are not allowed; use api_key_env");
    }
    for (std::string_view managed :
         {"host", "content-length", "transfer-encoding", "connection", "keep-alive",
          "proxy-connection", "te", "trailer", "upgrade"}) {
      if (name_lower == managed) fail(header_path, "set by the gateway; cannot be overridden");
    }
    for (const auto& [existing, unused] : headers) {
      if (lower(existing) == name_lower) fail(header_path, "duplicate header (names ignore case)");
    }
    std::string value = read_string(value_node, header_path);
    if (std::any_of(value.begin(), value.end(), [](char c) {
          return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f;
        })) {
      fail(header_path, "header value contains control characters");
    }
    headers.emplace(name, std::move(value));
  }
}

void parse_breaker(const YAML::Node& node, const std::string& path, BreakerConfig& breaker) {
  const Section s(node, path, "routes[].targets[].breaker");
  if (const auto* n = s.find("enabled")) breaker.enabled = read_bool(*n, s.path("enabled"));
  if (const auto* n = s.find("failure_ratio")) {
    breaker.failure_ratio = read_double_in(*n, s.path("failure_ratio"), 0, 1, true);
  }
  if (const auto* n = s.find("min_requests")) {
    breaker.min_requests = read_count(*n, s.path("min_requests"), 1);
  }
  if (const auto* n = s.find("window_ms")) breaker.window = read_millis(*n, s.path("window_ms"));
  if (const auto* n = s.find("cooldown_ms")) {
    breaker.cooldown = read_millis(*n, s.path("cooldown_ms"));
  }
  if (const auto* n = s.find("half_open_probes")) {
    breaker.half_open_probes = read_count(*n, s.path("half_open_probes"), 1);
  }
}

void parse_concurrency(const YAML::Node& node, const std::string& path,
                       ConcurrencyConfig& concurrency) {
  const Section s(node, path, "routes[].targets[].concurrency");
  if (const auto* n = s.find("max_in_flight")) {
    concurrency.max_in_flight = read_count(*n, s.path("max_in_flight"), 0);
  }
  if (const auto* n = s.find("max_queue")) {
    concurrency.max_queue = read_count(*n, s.path("max_queue"), 0);
  }
  if (const auto* n = s.find("queue_timeout_ms")) {
    concurrency.queue_timeout = read_millis_or_zero(*n, s.path("queue_timeout_ms"));
  }
}

void parse_health(const YAML::Node& node, const std::string& path, HealthCheckConfig& health) {
  const Section s(node, path, "routes[].targets[].health");
  if (const auto* n = s.find("enabled")) health.enabled = read_bool(*n, s.path("enabled"));
  if (const auto* n = s.find("path")) {
    health.path = read_string(*n, s.path("path"));
    if (health.path.empty() || health.path.front() != '/') {
      fail(s.path("path"), "must start with '/'");
    }
    if (std::any_of(health.path.begin(), health.path.end(), [](char c) {
          return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#';
        })) {
      fail(s.path("path"), "must not contain spaces, control characters or '#'");
    }
  }
  const auto* interval = s.find("interval_ms");
  const auto* timeout = s.find("timeout_ms");
  if (interval) health.interval = read_millis(*interval, s.path("interval_ms"));
  if (timeout) health.timeout = read_millis(*timeout, s.path("timeout_ms"));
  if (health.timeout > health.interval) {
    // Blame the value set here; if both are, the timeout is the likelier mistake.
    if (timeout != nullptr) {
      fail(s.path("timeout_ms"),
           fmt::format("must be <= interval_ms ({})", health.interval.count()));
    }
    fail(s.path("interval_ms"),
         fmt::format("must be >= timeout_ms ({}, the default)", health.timeout.count()));
  }
  if (const auto* n = s.find("healthy_threshold")) {
    health.healthy_threshold = read_count(*n, s.path("healthy_threshold"), 1);
  }
  if (const auto* n = s.find("unhealthy_threshold")) {
    health.unhealthy_threshold = read_count(*n, s.path("unhealthy_threshold"), 1);
  }
}

}  // namespace

TargetConfig parse_target(const YAML::Node& node, const std::string& path,
                          const UpstreamConfig& upstream) {
  if (!node.IsMap()) fail(path, fmt::format("expected a map, got {}", describe(node)));
  const Section s(node, path, "routes[].targets[]");
  if (s.find("api_key") != nullptr) {
    fail(s.path("api_key"), "inline secrets are not allowed; use api_key_env");
  }
  TargetConfig target;

  const auto* provider = s.find("provider");
  if (provider == nullptr) fail(s.path("provider"), "required");
  const std::string provider_name = read_string(*provider, s.path("provider"));
  if (provider_name == "openai") {
    target.provider = ProviderKind::openai;
  } else if (provider_name == "anthropic") {
    target.provider = ProviderKind::anthropic;
  } else if (provider_name == "gemini") {
    target.provider = ProviderKind::gemini;
  } else if (provider_name == "demo") {
    target.provider = ProviderKind::demo;
  } else {
    fail(s.path("provider"),
         fmt::format("unknown provider {} (expected openai, anthropic, gemini, demo)",
                     quote_value(provider_name)));
  }

  if (const auto* n = s.find("base_url")) target.base_url = read_string(*n, s.path("base_url"));
  std::string base_url_env;
  if (const auto* n = s.find("base_url_env")) {
    base_url_env = read_env_name(*n, s.path("base_url_env"));
    if (auto value = secret_env_value(base_url_env, s.path("base_url_env"))) {
      target.base_url = std::move(*value);
    }
  }
  if (is_http_provider(target.provider)) {
    const bool from_env = !base_url_env.empty() && env_value(base_url_env).has_value();
    if (target.base_url.empty()) {
      if (!base_url_env.empty()) {
        fail(s.path("base_url"), fmt::format("required for provider {} ({} is unset)",
                                             provider_name, base_url_env));
      }
      fail(s.path("base_url"), fmt::format("required for provider {}", provider_name));
    }
    if (const auto error = parse_base_url(target.base_url, target)) {
      if (from_env) fail(s.path("base_url_env"), fmt::format("{}: {}", base_url_env, *error));
      fail(s.path("base_url"), *error);
    }
  }

  if (const auto* n = s.find("model")) target.model = read_string(*n, s.path("model"));
  if (const auto* n = s.find("api_key_env")) {
    target.api_key_env = read_env_name(*n, s.path("api_key_env"));
    target.api_key = secret_env_value(target.api_key_env, s.path("api_key_env")).value_or("");
  }
  if (const auto* n = s.find("api_style")) {
    const std::string style = read_string(*n, s.path("api_style"));
    if (style == "openai") {
      target.api_style = ApiStyle::openai;
    } else if (style == "azure") {
      target.api_style = ApiStyle::azure;
    } else {
      fail(s.path("api_style"),
           fmt::format("unknown api_style {} (expected openai, azure)", quote_value(style)));
    }
  }
  if (const auto* n = s.find("api_version")) {
    target.api_version = read_string(*n, s.path("api_version"));
    // Written into the request line's query: only characters that need no escaping there.
    for (char c : target.api_version) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
        fail(s.path("api_version"), "may contain only letters, digits, '-', '.' and '_'");
      }
    }
  }
  if (target.api_style == ApiStyle::azure && target.provider != ProviderKind::openai) {
    fail(s.path("api_style"), "azure applies to provider openai only");
  }
  if (target.api_style == ApiStyle::azure && target.api_version.empty()) {
    fail(s.path("api_version"), "required when api_style is azure");
  }
  if (const auto* n = s.find("weight")) {
    target.weight = static_cast<uint32_t>(read_int_in(*n, s.path("weight"), 1, kMaxWeight));
  }
  if (const auto* n = s.find("headers")) parse_headers(*n, s.path("headers"), target.headers);
  if (const auto* n = s.find("forward_headers")) {
    const std::string list_path = s.path("forward_headers");
    if (!n->IsNull()) {
      if (!n->IsSequence()) {
        fail(list_path, fmt::format("expected a sequence, got {}", describe(*n)));
      }
      for (size_t j = 0; j < n->size(); ++j) {
        const std::string entry_path = index_path(list_path, j);
        std::string name = lower(read_string((*n)[j], entry_path));
        bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
          return c == '*' || c == '?' || is_token_char(c);
        });
        if (!ok) fail(entry_path, "expected a header name or a glob of one (`x-trace-*`)");
        for (std::string_view managed :
             {"host", "content-length", "transfer-encoding", "connection", "keep-alive",
              "proxy-connection", "te", "trailer", "upgrade", "authorization", "api-key",
              "x-api-key", "x-goog-api-key", "proxy-authorization", "cookie"}) {
          if (name == managed) fail(entry_path, "never forwarded: the gateway owns this header");
        }
        target.forward_headers.push_back(std::move(name));
      }
    }
  }
  target.timeouts = upstream.timeouts;
  if (const auto* n = s.find("timeouts")) {
    parse_timeouts(*n, s.path("timeouts"), "routes[].targets[].timeouts", "upstream.timeouts",
                   target.timeouts);
  }
  if (const auto* n = s.find("name")) {
    target.name = read_string(*n, s.path("name"));
    if (target.name.empty()) fail(s.path("name"), "must not be empty");
    if (has_control_chars(target.name)) fail(s.path("name"), "contains control characters");
  }
  if (const auto* n = s.find("breaker")) parse_breaker(*n, s.path("breaker"), target.breaker);
  if (const auto* n = s.find("concurrency")) {
    parse_concurrency(*n, s.path("concurrency"), target.concurrency);
  }
  if (const auto* n = s.find("health")) parse_health(*n, s.path("health"), target.health);
  return target;
}

}  // namespace sluice::config::detail
