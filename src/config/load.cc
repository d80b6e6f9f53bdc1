// YAML → Config: reads the file, walks the node tree against the schema in config.h, and throws
// ConfigError("<yaml.path>: <problem>") on the first unknown key, wrong type or invalid value.
// Secrets are only ever read from the environment variables the file names.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace sluice::config {
namespace {

// Longest accepted duration: keeps `now() + timeout` far from overflowing a nanosecond clock.
constexpr int64_t kMaxMillis = 86'400'000;      // 24 h
constexpr int64_t kMaxSize = int64_t{1} << 40;  // 1 TiB
constexpr int64_t kMaxWeight = 1'000'000;
constexpr int64_t kMaxCount = 10'000'000;
constexpr int kMaxThreads = 256;

[[noreturn]] void fail(std::string_view path, std::string_view problem) {
  throw ConfigError(fmt::format("{}: {}", path, problem));
}

std::string child_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return fmt::format("{}.{}", parent, key);
}

std::string index_path(std::string_view parent, size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

// A value echoed in an error message: quoted, control characters escaped, long values cut.
std::string quote_value(std::string_view value) {
  constexpr size_t kMaxShown = 60;
  std::string out = "\"";
  for (size_t i = 0; i < value.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (value.size() > kMaxShown) out += "...";
  out += '"';
  return out;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Scalar:
      return quote_value(node.Scalar());
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

bool is_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// The value of an environment variable, or nullopt when it is unset or empty.
std::optional<std::string> env_value(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<int64_t> to_int(std::string_view text) {
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  if (text.empty() || text[0] == '+') return std::nullopt;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// ---- Maps with checked keys ----------------------------------------------------------------

using Entries = std::vector<std::pair<std::string, YAML::Node>>;

// The entries of a map node in file order, rejecting non-string and duplicate keys.
// A missing or null node is an empty map, so `server:` alone means "all defaults".
Entries map_entries(const YAML::Node& node, std::string_view path) {
  Entries entries;
  if (!node.IsDefined() || node.IsNull()) return entries;
  if (!node.IsMap()) fail(path, fmt::format("expected a map, got {}", describe(node)));
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) {
      fail(path.empty() ? "(top level)" : path, "map keys must be strings");
    }
    std::string key = it->first.Scalar();
    for (const auto& [seen, value] : entries) {
      if (seen == key) fail(child_path(path, key), "duplicate key");
    }
    entries.emplace_back(std::move(key), it->second);
  }
  return entries;
}

// One map of the schema: unknown keys are rejected up front, known ones looked up by name.
class Section {
 public:
  Section(const YAML::Node& node, std::string path, std::initializer_list<std::string_view> known)
      : path_(std::move(path)), entries_(map_entries(node, path_)) {
    for (const auto& [key, value] : entries_) {
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        fail(child_path(path_, key), "unknown key");
      }
    }
  }

  /// The value under `key`, or nullptr when the key is absent.
  const YAML::Node* find(std::string_view key) const {
    for (const auto& [name, value] : entries_) {
      if (name == key) return &value;
    }
    return nullptr;
  }

  std::string path(std::string_view key) const { return child_path(path_, key); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  Entries entries_;
};

// ---- Scalars ---------------------------------------------------------------------------------

std::string read_string(const YAML::Node& node, std::string_view path) {
  if (!node.IsScalar()) fail(path, fmt::format("expected a string, got {}", describe(node)));
  return node.Scalar();
}

int64_t read_int(const YAML::Node& node, std::string_view path) {
  if (!node.IsScalar()) fail(path, fmt::format("expected an integer, got {}", describe(node)));
  const std::optional<int64_t> value = to_int(node.Scalar());
  if (!value) fail(path, fmt::format("expected an integer, got {}", quote_value(node.Scalar())));
  return *value;
}

int64_t check_range(int64_t value, std::string_view path, int64_t min, int64_t max) {
  if (value < min) {
    if (min == 1) fail(path, "must be > 0");
    fail(path, fmt::format("must be >= {}", min));
  }
  if (value > max) fail(path, fmt::format("must be <= {}", max));
  return value;
}

int64_t read_int_in(const YAML::Node& node, std::string_view path, int64_t min, int64_t max) {
  return check_range(read_int(node, path), path, min, max);
}

Millis read_millis(const YAML::Node& node, std::string_view path) {
  return Millis(read_int_in(node, path, 1, kMaxMillis));
}

// A byte count: a plain integer, or a number with a unit: B, KiB, MiB, GiB ("16MiB", "64 KiB").
size_t read_size(const YAML::Node& node, std::string_view path) {
  constexpr std::string_view kExpected = R"(expected a size like 65536, "64KiB" or "16MiB")";
  if (!node.IsScalar()) fail(path, fmt::format("{}, got {}", kExpected, describe(node)));
  const std::string& text = node.Scalar();
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  std::string_view unit = std::string_view(text).substr(digits);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  int64_t multiplier = 0;
  if (unit.empty() || unit == "B") {
    multiplier = 1;
  } else if (unit == "KiB") {
    multiplier = int64_t{1} << 10;
  } else if (unit == "MiB") {
    multiplier = int64_t{1} << 20;
  } else if (unit == "GiB") {
    multiplier = int64_t{1} << 30;
  }
  const std::optional<int64_t> number = to_int(std::string_view(text).substr(0, digits));
  if (digits == 0 || multiplier == 0 || !number) {
    // "-1" gets a range message rather than a syntax one.
    if (const std::optional<int64_t> plain = to_int(text); plain && *plain < 1) {
      fail(path, "must be > 0");
    }
    const bool unit_is_word = std::all_of(unit.begin(), unit.end(), [](char c) {
      return std::isalpha(static_cast<unsigned char>(c));
    });
    if (number && multiplier == 0 && unit_is_word) {
      fail(path,
           fmt::format("unknown size unit {} (expected B, KiB, MiB, GiB)", quote_value(unit)));
    }
    fail(path, fmt::format("{}, got {}", kExpected, quote_value(text)));
  }
  if (*number < 1) fail(path, "must be > 0");
  if (*number > kMaxSize / multiplier) fail(path, "must be <= 1TiB");
  return static_cast<size_t>(*number * multiplier);
}

std::string read_env_name(const YAML::Node& node, std::string_view path) {
  std::string name = read_string(node, path);
  // The value is never echoed: a key pasted here by mistake must not end up in a log.
  if (!is_env_name(name)) {
    fail(path, "must be the name of an environment variable (letters, digits, _), not its value");
  }
  return name;
}

// ---- Addresses -------------------------------------------------------------------------------

bool is_host_name(std::string_view host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

bool is_ipv6_literal(std::string_view host) {
  return host.find(':') != std::string_view::npos &&
         std::all_of(host.begin(), host.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
         });
}

std::optional<uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  if (!std::all_of(text.begin(), text.end(),
                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return std::nullopt;
  }
  const std::optional<int64_t> value = to_int(text);
  if (!value || *value > 65535) return std::nullopt;
  return static_cast<uint16_t>(*value);
}

struct HostPort {
  std::string host;                 // IPv6 literals without their brackets
  std::optional<std::string> port;  // digits as written, if a port was given
};

// Splits "host", "host:port", "[v6]" or "[v6]:port". Returns an error message on failure.
std::optional<std::string> split_host_port(std::string_view text, HostPort& out) {
  std::string_view rest;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return "unterminated [ in IPv6 address";
    const std::string_view host = text.substr(1, close - 1);
    if (!is_ipv6_literal(host)) return fmt::format("invalid IPv6 address {}", quote_value(host));
    out.host = std::string(host);
    rest = text.substr(close + 1);
  } else {
    const size_t colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos) {
      return "IPv6 addresses must be in brackets, e.g. [::1]:8080";
    }
    const std::string_view host = text.substr(0, colon);
    if (host.empty()) return "missing host";
    if (!is_host_name(host)) return fmt::format("invalid host {}", quote_value(host));
    out.host = std::string(host);
    rest = colon == std::string_view::npos ? std::string_view() : text.substr(colon);
  }
  if (rest.empty()) return std::nullopt;
  if (rest.front() != ':') return "unexpected characters after the host";
  out.port = std::string(rest.substr(1));
  return std::nullopt;
}

void parse_listen(const YAML::Node& node, std::string_view path, ServerConfig& server) {
  const std::string text = read_string(node, path);
  HostPort parts;
  if (const auto error = split_host_port(text, parts)) {
    if (*error == "missing host") fail(path, "expected host:port");
    fail(path, fmt::format("expected host:port ({})", *error));
  }
  if (!parts.port) fail(path, "expected host:port");
  const std::optional<uint16_t> port = parse_port(*parts.port);
  if (!port) fail(path, "port must be 0..65535");
  server.listen_host = std::move(parts.host);
  server.listen_port = *port;
}

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

// ---- Sections --------------------------------------------------------------------------------

void parse_server(const YAML::Node& node, ServerConfig& server) {
  const Section s(node, "server",
                  {"listen", "threads", "max_header_bytes", "max_body_bytes", "header_timeout_ms",
                   "body_timeout_ms", "idle_timeout_ms", "max_connections", "drain_timeout_ms"});
  if (const auto* n = s.find("listen")) parse_listen(*n, s.path("listen"), server);
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
}

// Overlays the keys present in a `timeouts:` map onto `timeouts`, then checks that the
// per-phase limits fit inside the total. `base_path` names where inherited values came from.
void parse_timeouts(const YAML::Node& node, const std::string& path, std::string_view base_path,
                    Timeouts& timeouts) {
  const Section s(node, path, {"connect_ms", "first_byte_ms", "stream_idle_ms", "total_ms"});
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
  const Section s(node, "upstream",
                  {"max_idle_per_host", "idle_timeout_ms", "max_connections_per_host", "dns_ttl_ms",
                   "ca_file", "timeouts"});
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
    if (!upstream.ca_file.empty()) {
      std::error_code ec;
      const bool regular = std::filesystem::is_regular_file(upstream.ca_file, ec);
      if (!regular || !std::ifstream(upstream.ca_file).is_open()) {
        fail(s.path("ca_file"), fmt::format("cannot read file {}", quote_value(upstream.ca_file)));
      }
    }
  }
  if (const auto* n = s.find("timeouts")) {
    parse_timeouts(*n, s.path("timeouts"), "the built-in defaults", upstream.timeouts);
  }
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
    if (name_lower == "authorization" || name_lower == "api-key") {
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

TargetConfig parse_target(const YAML::Node& node, const std::string& path,
                          const UpstreamConfig& upstream) {
  if (!node.IsMap()) fail(path, fmt::format("expected a map, got {}", describe(node)));
  const Section s(node, path,
                  {"provider", "base_url", "base_url_env", "model", "api_key_env", "api_key",
                   "api_style", "api_version", "weight", "headers", "timeouts"});
  if (s.find("api_key") != nullptr) {
    fail(s.path("api_key"), "inline secrets are not allowed; use api_key_env");
  }
  TargetConfig target;

  const auto* provider = s.find("provider");
  if (provider == nullptr) fail(s.path("provider"), "required");
  const std::string provider_name = read_string(*provider, s.path("provider"));
  if (provider_name == "openai") {
    target.provider = ProviderKind::openai;
  } else if (provider_name == "demo") {
    target.provider = ProviderKind::demo;
  } else {
    fail(s.path("provider"),
         fmt::format("unknown provider {} (expected openai, demo)", quote_value(provider_name)));
  }

  if (const auto* n = s.find("base_url")) target.base_url = read_string(*n, s.path("base_url"));
  std::string base_url_env;
  if (const auto* n = s.find("base_url_env")) {
    base_url_env = read_env_name(*n, s.path("base_url_env"));
    if (auto value = env_value(base_url_env)) target.base_url = std::move(*value);
  }
  if (target.provider == ProviderKind::openai) {
    const bool from_env = !base_url_env.empty() && env_value(base_url_env).has_value();
    if (target.base_url.empty()) {
      if (!base_url_env.empty()) {
        fail(s.path("base_url"),
             fmt::format("required for provider openai ({} is unset)", base_url_env));
      }
      fail(s.path("base_url"), "required for provider openai");
    }
    if (const auto error = parse_base_url(target.base_url, target)) {
      if (from_env) fail(s.path("base_url_env"), fmt::format("{}: {}", base_url_env, *error));
      fail(s.path("base_url"), *error);
    }
  }

  if (const auto* n = s.find("model")) target.model = read_string(*n, s.path("model"));
  if (const auto* n = s.find("api_key_env")) {
    target.api_key_env = read_env_name(*n, s.path("api_key_env"));
    target.api_key = env_value(target.api_key_env).value_or("");
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
  }
  if (target.api_style == ApiStyle::azure && target.api_version.empty()) {
    fail(s.path("api_version"), "required when api_style is azure");
  }
  if (const auto* n = s.find("weight")) {
    target.weight = static_cast<uint32_t>(read_int_in(*n, s.path("weight"), 1, kMaxWeight));
  }
  if (const auto* n = s.find("headers")) parse_headers(*n, s.path("headers"), target.headers);
  target.timeouts = upstream.timeouts;
  if (const auto* n = s.find("timeouts")) {
    parse_timeouts(*n, s.path("timeouts"), "upstream.timeouts", target.timeouts);
  }
  return target;
}

struct ParsedRoute {
  RouteConfig route;
  std::string when_env;  // empty = always active
};

ParsedRoute parse_route(const YAML::Node& node, const std::string& path,
                        const UpstreamConfig& upstream) {
  if (!node.IsMap()) fail(path, fmt::format("expected a map, got {}", describe(node)));
  const Section s(node, path, {"model", "description", "when_env", "targets"});
  ParsedRoute parsed;
  RouteConfig& route = parsed.route;

  const auto* model = s.find("model");
  if (model == nullptr) fail(s.path("model"), "required");
  route.model = read_string(*model, s.path("model"));
  if (route.model.empty()) fail(s.path("model"), "must not be empty");
  route.is_glob = route.model.find_first_of("*?") != std::string::npos;

  if (const auto* n = s.find("description")) {
    route.description = read_string(*n, s.path("description"));
  }
  if (const auto* n = s.find("when_env")) parsed.when_env = read_env_name(*n, s.path("when_env"));

  const auto* targets = s.find("targets");
  if (targets == nullptr) fail(s.path("targets"), "required");
  if (!targets->IsSequence()) {
    fail(s.path("targets"), fmt::format("expected a sequence, got {}", describe(*targets)));
  }
  if (targets->size() == 0) fail(s.path("targets"), "at least one target is required");
  for (size_t i = 0; i < targets->size(); ++i) {
    route.targets.push_back(
        parse_target((*targets)[i], index_path(s.path("targets"), i), upstream));
  }
  return parsed;
}

void parse_routes(const YAML::Node* node, Config& config) {
  if (node == nullptr || node->IsNull()) fail("routes", "required");
  if (!node->IsSequence()) {
    fail("routes", fmt::format("expected a sequence, got {}", describe(*node)));
  }
  if (node->size() == 0) fail("routes", "at least one route is required");

  std::vector<std::string> models;  // every route's pattern, active or not, in file order
  std::vector<std::string> inactive_because;
  for (size_t i = 0; i < node->size(); ++i) {
    const std::string path = index_path("routes", i);
    ParsedRoute parsed = parse_route((*node)[i], path, config.upstream);
    // Checked across inactive routes too, so validity never depends on which secrets are set.
    const auto first = std::find(models.begin(), models.end(), parsed.route.model);
    if (first != models.end()) {
      fail(child_path(path, "model"),
           fmt::format("duplicate route for model {} (first at routes[{}])",
                       quote_value(parsed.route.model), first - models.begin()));
    }
    models.push_back(parsed.route.model);
    if (!parsed.when_env.empty() && !env_value(parsed.when_env)) {
      inactive_because.push_back(parsed.when_env);
      continue;
    }
    config.routes.push_back(std::move(parsed.route));
  }
  if (config.routes.empty()) {
    std::vector<std::string> unset;
    for (std::string& name : inactive_because) {
      if (std::find(unset.begin(), unset.end(), name) == unset.end()) unset.push_back(name);
    }
    fail("routes", fmt::format("no active route (every route has an unset when_env: {})",
                               fmt::join(unset, ", ")));
  }
}

// Parses YAML text; `source` names it in syntax errors ("<file>:<line>:<col>: <msg>").
Config build(const std::string& text, const std::string& source) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) throw ConfigError(fmt::format("{}: {}", source, e.msg));
    throw ConfigError(
        fmt::format("{}:{}:{}: {}", source, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (documents.size() > 1) fail(source, "expected one YAML document, found several");
  const YAML::Node root = documents.empty() ? YAML::Node() : documents.front();
  if (root.IsDefined() && !root.IsNull() && !root.IsMap()) {
    fail(source, fmt::format("expected a map at the top level, got {}", describe(root)));
  }

  Config config;
  const Section top(root, "", {"server", "upstream", "routes"});
  if (const auto* n = top.find("server")) parse_server(*n, config.server);
  if (const auto* n = top.find("upstream")) parse_upstream(*n, config.upstream);
  parse_routes(top.find("routes"), config);
  return config;
}

}  // namespace

std::shared_ptr<const Config> load_config(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, "cannot read file");
  std::ifstream file(path, std::ios::binary);
  if (!file.is_open()) fail(path, "cannot read file");
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) fail(path, "cannot read file");
  Config config = build(text.str(), path);
  config.source_path = path;
  return std::make_shared<const Config>(std::move(config));
}

std::shared_ptr<const Config> parse_config(const std::string& yaml_text) {
  return std::make_shared<const Config>(build(yaml_text, "<string>"));
}

bool glob_match(std::string_view pattern, std::string_view text) {
  // Greedy scan remembering only the last `*`: on a mismatch, let that star swallow one more
  // character and retry. O(pattern * text) in the worst case, never exponential.
  constexpr size_t kNone = std::string_view::npos;
  size_t p = 0;
  size_t t = 0;
  size_t star = kNone;   // position of the last `*` seen in pattern
  size_t star_text = 0;  // text position that star currently matches up to
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_text = t;
    } else if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (star != kNone) {
      p = star + 1;
      t = ++star_text;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace sluice::config
