// YAML → Config: reads the file, walks the node tree against the schema in config.h, and throws
// ConfigError("<yaml.path>: <problem>") on the first unknown key, wrong type or invalid value.
// Secrets are only ever read from the environment variables the file names.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/evp.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/schema.h"

namespace sluice::config {
namespace {

// Longest accepted duration: keeps `now() + timeout` far from overflowing a nanosecond clock.
constexpr int64_t kMaxMillis = 86'400'000;      // 24 h
constexpr int64_t kMaxSize = int64_t{1} << 40;  // 1 TiB
constexpr int64_t kMaxWeight = 1'000'000;
constexpr int64_t kMaxCount = 10'000'000;
constexpr int kMaxThreads = 256;
constexpr int64_t kMaxRate = 1'000'000'000'000;  // requests or tokens per minute/day

[[noreturn]] void fail(std::string_view path, std::string_view problem) {
  throw ConfigError(fmt::format("{}: {}", path, problem));
}

std::string quote_value(std::string_view value);

std::string child_path(std::string_view parent, std::string_view key) {
  // Keys come from the file: one with control characters (or none at all) is shown quoted, so
  // an error message never carries raw bytes.
  bool plain = !key.empty() && std::none_of(key.begin(), key.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
  std::string shown = plain ? std::string(key) : quote_value(key);
  if (parent.empty()) return shown;
  return fmt::format("{}.{}", parent, shown);
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

// A value that goes on the wire (upstream key, base URL) or is compared with what clients send
// (admin token, key secrets): control bytes are a configuration error naming the variable. A
// trailing newline from a Kubernetes secret file would otherwise end the upstream request head
// early and desynchronise a pooled connection. The value itself is never echoed.
std::optional<std::string> secret_env_value(const std::string& name, const std::string& path) {
  std::optional<std::string> value = env_value(name);
  if (!value) return value;
  for (size_t i = 0; i < value->size(); ++i) {
    unsigned char c = static_cast<unsigned char>((*value)[i]);
    if (c < 0x20 || c == 0x7f) {
      const char* what = c == '\n' ? "a line feed (LF)" : c == '\r' ? "a carriage return (CR)"
                                                                     : "a control character";
      throw ConfigError(fmt::format(
          "{}: environment variable {} contains {} at byte {} of {} (a trailing newline from a "
          "secret file?); remove it",
          path, name, what, i + 1, value->size()));
    }
  }
  return value;
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
// `path` is the concrete YAML path (for messages), `schema` the section of schema.h whose keys
// are allowed (checked at compile time to exist there).
class Section {
 public:
  Section(const YAML::Node& node, std::string path, SchemaRef schema)
      : path_(std::move(path)), entries_(map_entries(node, path_)) {
    const std::vector<std::string_view>& known = schema.section().keys;
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

// A YAML 1.2 boolean. yes/no/on/off are rejected: YAML 1.1 reads them as booleans, 1.2 as
// strings, so they mean different things to different tools.
bool read_bool(const YAML::Node& node, std::string_view path) {
  if (node.IsScalar()) {
    const std::string& text = node.Scalar();
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
  }
  fail(path, fmt::format("expected true or false, got {}", describe(node)));
}

// A finite decimal number; integers are accepted too ("1", "0.25", "1e-2").
double read_double(const YAML::Node& node, std::string_view path) {
  if (!node.IsScalar()) fail(path, fmt::format("expected a number, got {}", describe(node)));
  std::string_view text = node.Scalar();
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || text[0] == '+' || ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(value)) {
    fail(path, fmt::format("expected a number, got {}", quote_value(node.Scalar())));
  }
  return value;
}

// A number in [min, max], or (min, max] when `min_exclusive`.
double read_double_in(const YAML::Node& node, std::string_view path, double min, double max,
                      bool min_exclusive) {
  const double value = read_double(node, path);
  if (min_exclusive ? value <= min : value < min) {
    fail(path, fmt::format("must be {} {}", min_exclusive ? ">" : ">=", min));
  }
  if (value > max) fail(path, fmt::format("must be <= {}", max));
  return value;
}

// A duration where 0 has a meaning of its own (unlimited, "use the default", fail at once).
Millis read_millis_or_zero(const YAML::Node& node, std::string_view path) {
  return Millis(read_int_in(node, path, 0, kMaxMillis));
}

int read_count(const YAML::Node& node, std::string_view path, int64_t min) {
  return static_cast<int>(read_int_in(node, path, min, kMaxCount));
}

bool has_control_chars(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
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

void parse_listen(const YAML::Node& node, std::string_view path, std::string& host,
                  uint16_t& listen_port) {
  const std::string text = read_string(node, path);
  HostPort parts;
  if (const auto error = split_host_port(text, parts)) {
    if (*error == "missing host") fail(path, "expected host:port");
    fail(path, fmt::format("expected host:port ({})", *error));
  }
  if (!parts.port) fail(path, "expected host:port");
  const std::optional<uint16_t> port = parse_port(*parts.port);
  if (!port) fail(path, "port must be 0..65535");
  host = std::move(parts.host);
  listen_port = *port;
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
    if (!upstream.ca_file.empty()) {
      std::error_code ec;
      const bool regular = std::filesystem::is_regular_file(upstream.ca_file, ec);
      if (!regular || !std::ifstream(upstream.ca_file).is_open()) {
        fail(s.path("ca_file"), fmt::format("cannot read file {}", quote_value(upstream.ca_file)));
      }
    }
  }
  if (const auto* n = s.find("timeouts")) {
    parse_timeouts(*n, s.path("timeouts"), "upstream.timeouts", "the built-in defaults",
                   upstream.timeouts);
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
      if (!n->IsSequence()) fail(list_path, fmt::format("expected a sequence, got {}", describe(*n)));
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
              "x-api-key", "proxy-authorization", "cookie"}) {
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

void parse_retry(const YAML::Node& node, const std::string& path, RetryPolicy& retry) {
  const Section s(node, path, "routes[].retry");
  if (const auto* n = s.find("max_attempts")) {
    retry.max_attempts = static_cast<int>(read_int_in(*n, s.path("max_attempts"), 1, 10));
  }
  const auto* base = s.find("backoff_base_ms");
  const auto* cap = s.find("backoff_cap_ms");
  if (base) retry.backoff_base = read_millis(*base, s.path("backoff_base_ms"));
  if (cap) retry.backoff_cap = read_millis(*cap, s.path("backoff_cap_ms"));
  if (retry.backoff_cap < retry.backoff_base) {
    if (cap != nullptr) {
      fail(s.path("backoff_cap_ms"),
           fmt::format("must be >= backoff_base_ms ({})", retry.backoff_base.count()));
    }
    fail(s.path("backoff_base_ms"),
         fmt::format("must be <= backoff_cap_ms ({}, the default)", retry.backoff_cap.count()));
  }
  if (const auto* n = s.find("jitter")) {
    const std::string jitter = read_string(*n, s.path("jitter"));
    if (jitter == "full") {
      retry.jitter = Jitter::full;
    } else if (jitter == "equal") {
      retry.jitter = Jitter::equal;
    } else if (jitter == "none") {
      retry.jitter = Jitter::none;
    } else if (jitter == "decorrelated") {
      retry.jitter = Jitter::decorrelated;
    } else {
      fail(s.path("jitter"),
           fmt::format("unknown jitter {} (expected full, equal, none, decorrelated)",
                       quote_value(jitter)));
    }
  }
  if (const auto* n = s.find("deadline_ms")) {
    retry.deadline = read_millis_or_zero(*n, s.path("deadline_ms"));
  }
  if (const auto* n = s.find("retry_on_timeout")) {
    retry.retry_on_timeout = read_bool(*n, s.path("retry_on_timeout"));
  }
  if (const auto* n = s.find("budget_ratio")) {
    retry.budget_ratio = read_double_in(*n, s.path("budget_ratio"), 0, 1, false);
  }
  if (const auto* n = s.find("budget_window_ms")) {
    retry.budget_window = read_millis(*n, s.path("budget_window_ms"));
  }
  if (const auto* n = s.find("budget_min_retries")) {
    retry.budget_min_retries = read_count(*n, s.path("budget_min_retries"), 0);
  }
}

// A model name a route falls back to: what a client could ask for, so never a glob.
std::string read_model_name(const YAML::Node& node, std::string_view path) {
  std::string model = read_string(node, path);
  if (model.empty()) fail(path, "must not be empty");
  if (model.find_first_of("*?") != std::string::npos) {
    fail(path, fmt::format("must be a model name, not a glob pattern (got {})", quote_value(model)));
  }
  if (has_control_chars(model)) fail(path, "contains control characters");
  return model;
}

struct ParsedRoute {
  RouteConfig route;
  std::string when_env;          // empty = always active
  bool active = true;
  std::vector<bool> named;       // per target: `name` was set in the file (not defaulted)
};

ParsedRoute parse_route(const YAML::Node& node, const std::string& path,
                        const UpstreamConfig& upstream) {
  if (!node.IsMap()) fail(path, fmt::format("expected a map, got {}", describe(node)));
  const Section s(node, path, "routes[]");
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
    TargetConfig& target = route.targets.back();
    parsed.named.push_back(!target.name.empty());
    if (target.name.empty()) target.name = fmt::format("{}#{}", route.model, i);
  }

  if (const auto* n = s.find("balancer")) {
    const std::string balancer = read_string(*n, s.path("balancer"));
    if (balancer == "weighted_round_robin") {
      route.balancer = BalancerKind::weighted_round_robin;
    } else if (balancer == "least_in_flight") {
      route.balancer = BalancerKind::least_in_flight;
    } else if (balancer == "latency") {
      route.balancer = BalancerKind::latency;
    } else {
      fail(s.path("balancer"),
           fmt::format("unknown balancer {} (expected weighted_round_robin, least_in_flight, "
                       "latency)",
                       quote_value(balancer)));
    }
  }
  if (const auto* n = s.find("retry")) parse_retry(*n, s.path("retry"), route.retry);
  if (const auto* n = s.find("fallbacks")) {
    const std::string fallbacks_path = s.path("fallbacks");
    if (!n->IsNull()) {
      if (!n->IsSequence()) {
        fail(fallbacks_path, fmt::format("expected a sequence, got {}", describe(*n)));
      }
      for (size_t j = 0; j < n->size(); ++j) {
        const std::string entry_path = index_path(fallbacks_path, j);
        std::string model = read_model_name((*n)[j], entry_path);
        const auto first = std::find(route.fallbacks.begin(), route.fallbacks.end(), model);
        if (first != route.fallbacks.end()) {
          fail(entry_path, fmt::format("duplicate fallback {} (first at {})", quote_value(model),
                                       index_path(fallbacks_path, first - route.fallbacks.begin())));
        }
        route.fallbacks.push_back(std::move(model));
      }
    }
  }
  if (const auto* n = s.find("context_fallback")) {
    route.context_fallback = read_model_name(*n, s.path("context_fallback"));
  }
  if (const auto* n = s.find("fail_fast")) route.fail_fast = read_bool(*n, s.path("fail_fast"));
  if (const auto* n = s.find("context_window")) {
    route.context_window = read_int_in(*n, s.path("context_window"), 1, 2147483647);
  }
  if (const auto* n = s.find("default_max_tokens")) {
    route.default_max_tokens = read_int_in(*n, s.path("default_max_tokens"), 1, 2147483647);
  }
  return parsed;
}

// The route that serves `model`, the way the router picks it: an exact name first, then the
// first glob in file order. Only routes with `active == want_active` are considered.
std::optional<size_t> find_route(const std::vector<ParsedRoute>& routes, std::string_view model,
                                 bool want_active) {
  for (size_t i = 0; i < routes.size(); ++i) {
    const RouteConfig& route = routes[i].route;
    if (routes[i].active == want_active && !route.is_glob && route.model == model) return i;
  }
  for (size_t i = 0; i < routes.size(); ++i) {
    const RouteConfig& route = routes[i].route;
    if (routes[i].active == want_active && route.is_glob && glob_match(route.model, model)) {
      return i;
    }
  }
  return std::nullopt;
}

// Every fallback of an active route must be served by another active route.
void check_fallback(const std::vector<ParsedRoute>& routes, size_t index, const std::string& model,
                    const std::string& path) {
  const std::optional<size_t> target = find_route(routes, model, true);
  if (target == index) {
    const RouteConfig& route = routes[index].route;
    if (route.model == model) fail(path, "a route cannot fall back to itself");
    fail(path, fmt::format("a route cannot fall back to itself (its pattern {} matches {})",
                           quote_value(route.model), quote_value(model)));
  }
  if (target) return;
  if (const std::optional<size_t> inactive = find_route(routes, model, false)) {
    fail(path, fmt::format("no route serves model {} (routes[{}] would, but it is inactive: {} "
                           "is unset)",
                           quote_value(model), *inactive, routes[*inactive].when_env));
  }
  fail(path, fmt::format("no route serves model {}", quote_value(model)));
}

// Target names label metrics and admin output, so they are unique across the whole file
// (inactive routes included, like route models).
void check_target_names(const std::vector<ParsedRoute>& routes) {
  struct Seen {
    size_t route;
    size_t target;
  };
  std::map<std::string, Seen> seen;
  for (size_t i = 0; i < routes.size(); ++i) {
    for (size_t k = 0; k < routes[i].route.targets.size(); ++k) {
      const std::string& name = routes[i].route.targets[k].name;
      const auto [it, inserted] = seen.emplace(name, Seen{i, k});
      if (inserted) continue;
      // Blame a name written in the file over a defaulted one ("<model>#<index>").
      Seen blamed{i, k};
      Seen other = it->second;
      if (!routes[i].named[k]) std::swap(blamed, other);
      fail(fmt::format("routes[{}].targets[{}].name", blamed.route, blamed.target),
           fmt::format("duplicate target name {} (also routes[{}].targets[{}])", quote_value(name),
                       other.route, other.target));
    }
  }
}

void parse_routes(const YAML::Node* node, Config& config) {
  if (node == nullptr || node->IsNull()) fail("routes", "required");
  if (!node->IsSequence()) {
    fail("routes", fmt::format("expected a sequence, got {}", describe(*node)));
  }
  if (node->size() == 0) fail("routes", "at least one route is required");

  std::vector<ParsedRoute> routes;  // every route, active or not, in file order
  for (size_t i = 0; i < node->size(); ++i) {
    const std::string path = index_path("routes", i);
    ParsedRoute parsed = parse_route((*node)[i], path, config.upstream);
    // Checked across inactive routes too, so validity never depends on which secrets are set.
    const auto first =
        std::find_if(routes.begin(), routes.end(),
                     [&](const ParsedRoute& r) { return r.route.model == parsed.route.model; });
    if (first != routes.end()) {
      fail(child_path(path, "model"),
           fmt::format("duplicate route for model {} (first at routes[{}])",
                       quote_value(parsed.route.model), first - routes.begin()));
    }
    parsed.active = parsed.when_env.empty() || env_value(parsed.when_env).has_value();
    routes.push_back(std::move(parsed));
  }
  check_target_names(routes);

  if (std::none_of(routes.begin(), routes.end(), [](const ParsedRoute& r) { return r.active; })) {
    std::vector<std::string> unset;
    for (const ParsedRoute& r : routes) {
      if (std::find(unset.begin(), unset.end(), r.when_env) == unset.end()) {
        unset.push_back(r.when_env);
      }
    }
    fail("routes", fmt::format("no active route (every route has an unset when_env: {})",
                               fmt::join(unset, ", ")));
  }

  // Fallbacks are resolved against the routes that will actually serve: an inactive route's
  // own fallbacks are not checked, but nothing active may depend on an inactive route.
  for (size_t i = 0; i < routes.size(); ++i) {
    if (!routes[i].active) continue;
    const RouteConfig& route = routes[i].route;
    const std::string path = index_path("routes", i);
    for (size_t j = 0; j < route.fallbacks.size(); ++j) {
      check_fallback(routes, i, route.fallbacks[j],
                     index_path(child_path(path, "fallbacks"), j));
    }
    if (!route.context_fallback.empty()) {
      check_fallback(routes, i, route.context_fallback, child_path(path, "context_fallback"));
    }
  }

  for (ParsedRoute& parsed : routes) {
    if (parsed.active) config.routes.push_back(std::move(parsed.route));
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

// ---- Observability -------------------------------------------------------------------------

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
  if (const auto* n = s.find("server_timing")) {
    m.server_timing = read_bool(*n, s.path("server_timing"));
  }
}

void parse_access_log(const YAML::Node& node, const std::string& base_dir, AccessLogConfig& a) {
  const Section s(node, "access_log", "access_log");
  if (const auto* n = s.find("enabled")) a.enabled = read_bool(*n, s.path("enabled"));
  if (const auto* n = s.find("path")) {
    a.path = read_string(*n, s.path("path"));
    if (a.path.empty()) fail(s.path("path"), "must not be empty (stdout, stderr or a file)");
    if (a.path != "stdout" && a.path != "stderr" && a.path.front() != '/' && !base_dir.empty()) {
      a.path = base_dir + "/" + a.path;
    }
  }
  if (const auto* n = s.find("sample")) a.sample = read_double_in(*n, s.path("sample"), 0, 1, false);
  if (const auto* n = s.find("include_bodies")) {
    a.include_bodies = read_bool(*n, s.path("include_bodies"));
  }
  if (const auto* n = s.find("queue")) {
    a.queue = static_cast<size_t>(read_int_in(*n, s.path("queue"), 16, 10'000'000));
  }
}

void parse_logging(const YAML::Node& node, LoggingConfig& l) {
  const Section s(node, "logging", "logging");
  if (const auto* n = s.find("level")) {
    l.level = read_string(*n, s.path("level"));
    static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (std::find(std::begin(kLevels), std::end(kLevels), l.level) == std::end(kLevels)) {
      fail(s.path("level"),
           fmt::format("unknown level {} (expected trace, debug, info, warn, error, critical, off)",
                       quote_value(l.level)));
    }
  }
  if (const auto* n = s.find("format")) {
    std::string format = read_string(*n, s.path("format"));
    if (format != "text" && format != "json") {
      fail(s.path("format"), fmt::format("unknown format {} (expected text, json)",
                                         quote_value(format)));
    }
    l.json = format == "json";
  }
}

void parse_reload(const YAML::Node& node, ReloadConfig& r) {
  const Section s(node, "reload", "reload");
  if (const auto* n = s.find("watch")) r.watch = read_bool(*n, s.path("watch"));
  if (const auto* n = s.find("interval_ms")) {
    r.interval = Millis{read_int_in(*n, s.path("interval_ms"), 100, 3'600'000)};
  }
}

// ---- Auth and rate limits ------------------------------------------------------------------

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw ConfigError("SHA-256 is unavailable (OpenSSL EVP_Digest failed)");
  }
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

// A path from the file, made relative to the directory of the config file (`base_dir`; empty
// when parsed from a string, i.e. the working directory).
std::string resolve_path(const std::string& path, const std::string& base_dir) {
  const std::filesystem::path p(path);
  if (p.is_absolute() || base_dir.empty()) return path;
  return (std::filesystem::path(base_dir) / p).lexically_normal().string();
}

void check_readable_file(const std::string& file, std::string_view path) {
  std::error_code ec;
  const bool regular = std::filesystem::is_regular_file(file, ec);
  if (!regular || !std::ifstream(file).is_open()) {
    fail(path, fmt::format("cannot read file {}", quote_value(file)));
  }
}

// A non-empty name without control characters (key names, tenants, model globs).
std::string read_label(const YAML::Node& node, std::string_view path) {
  std::string value = read_string(node, path);
  if (value.empty()) fail(path, "must not be empty");
  if (has_control_chars(value)) fail(path, "contains control characters");
  return value;
}

// The limit keys of an already checked section (a `limits:` map, or a per_model entry).
RateLimits read_limits(const Section& s) {
  RateLimits limits;
  if (const auto* n = s.find("requests_per_minute")) {
    limits.requests_per_minute = read_int_in(*n, s.path("requests_per_minute"), 0, kMaxRate);
  }
  if (const auto* n = s.find("tokens_per_minute")) {
    limits.tokens_per_minute = read_int_in(*n, s.path("tokens_per_minute"), 0, kMaxRate);
  }
  if (const auto* n = s.find("tokens_per_day")) {
    limits.tokens_per_day = read_int_in(*n, s.path("tokens_per_day"), 0, kMaxRate);
  }
  return limits;
}

RateLimits parse_limits(const YAML::Node& node, const std::string& path, SchemaRef schema) {
  return read_limits(Section(node, path, schema));
}

int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// An RFC 3339 timestamp in UTC ("2026-12-31T00:00:00Z", "...+00:00", optional fraction, which
// is dropped) → Unix seconds.
int64_t read_timestamp(const YAML::Node& node, std::string_view path) {
  constexpr std::string_view kExpected =
      R"(expected an RFC 3339 UTC timestamp like "2026-12-31T00:00:00Z")";
  if (!node.IsScalar()) fail(path, fmt::format("{}, got {}", kExpected, describe(node)));
  const std::string& text = node.Scalar();
  const auto bad = [&]() { fail(path, fmt::format("{}, got {}", kExpected, quote_value(text))); };
  const auto digits = [&](size_t pos, size_t count) -> int64_t {
    if (pos + count > text.size()) bad();
    int64_t value = 0;
    for (size_t i = pos; i < pos + count; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(text[i]))) bad();
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  const auto expect = [&](size_t pos, std::string_view chars) {
    if (pos >= text.size() || chars.find(text[pos]) == std::string_view::npos) bad();
  };
  const int64_t year = digits(0, 4);
  expect(4, "-");
  const int64_t month = digits(5, 2);
  expect(7, "-");
  const int64_t day = digits(8, 2);
  expect(10, "Tt");
  const int64_t hour = digits(11, 2);
  expect(13, ":");
  const int64_t minute = digits(14, 2);
  expect(16, ":");
  const int64_t second = digits(17, 2);
  size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const size_t start = pos;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) ++pos;
    if (pos == start) bad();
  }
  const std::string_view zone = std::string_view(text).substr(std::min(pos, text.size()));
  if (zone != "Z" && zone != "z" && zone != "+00:00") {
    if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
      fail(path, fmt::format("must be in UTC (Z or +00:00), got {}", quote_value(text)));
    }
    bad();
  }
  static constexpr int kDaysInMonth[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  const bool valid_day = month >= 1 && month <= 12 && day >= 1 &&
                         day <= kDaysInMonth[month - 1] + (month == 2 && leap ? 1 : 0);
  if (!valid_day || hour > 23 || minute > 59 || second > 60) {
    fail(path, fmt::format("invalid date or time {}", quote_value(text)));
  }
  const int64_t unix_seconds =
      days_from_civil(year, month, day) * 86'400 + hour * 3'600 + minute * 60 + second;
  if (unix_seconds <= 0) fail(path, "must be after 1970-01-01T00:00:00Z");
  return unix_seconds;
}

bool is_hex64(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c));
         });
}

// {usd: 100, period: month|day}
Budget parse_budget(const YAML::Node& node, const std::string& path, SchemaRef schema) {
  if (!node.IsMap()) fail(path, fmt::format("expected a map, got {}", describe(node)));
  const Section s(node, path, schema);
  Budget b;
  const auto* usd = s.find("usd");
  if (usd == nullptr) fail(s.path("usd"), "required");
  b.usd = read_double_in(*usd, s.path("usd"), 0.0, 1e12, false);
  if (const auto* p = s.find("period")) {
    std::string period = read_string(*p, s.path("period"));
    if (period == "day") {
      b.period = Budget::Period::day;
    } else if (period == "month") {
      b.period = Budget::Period::month;
    } else {
      fail(s.path("period"),
           fmt::format("unknown period {} (expected day, month)", quote_value(period)));
    }
  }
  return b;
}

ApiKeyConfig parse_api_key(const YAML::Node& node, const std::string& path, bool auth_enabled) {
  if (!node.IsMap()) fail(path, fmt::format("expected a map, got {}", describe(node)));
  const Section s(node, path, "auth.keys[]");
  // Checked before anything else, and the value is never echoed.
  if (s.find("key") != nullptr) {
    fail(s.path("key"), "inline secrets are not allowed; use key_env or key_sha256");
  }
  ApiKeyConfig key;
  const auto* name = s.find("name");
  if (name == nullptr) fail(s.path("name"), "required");
  key.name = read_label(*name, s.path("name"));

  const auto* key_env = s.find("key_env");
  const auto* key_sha256 = s.find("key_sha256");
  if (key_env == nullptr && key_sha256 == nullptr) {
    fail(path, "key_env or key_sha256 is required");
  }
  if (key_env != nullptr && key_sha256 != nullptr) {
    fail(s.path("key_sha256"), "cannot be used together with key_env (set exactly one)");
  }
  if (key_env != nullptr) {
    key.key_env = read_env_name(*key_env, s.path("key_env"));
    // A disabled gateway never checks keys, so it does not need their secrets either.
    if (auth_enabled) {
      const std::optional<std::string> secret = secret_env_value(key.key_env, s.path("key_env"));
      if (!secret) {
        fail(s.path("key_env"), fmt::format("environment variable {} is not set", key.key_env));
      }
      key.key_sha256 = sha256_hex(*secret);
    }
  } else {
    const std::string hash = read_string(*key_sha256, s.path("key_sha256"));
    // Not echoed: the secret itself may have been pasted here by mistake.
    if (!is_hex64(hash)) {
      fail(s.path("key_sha256"),
           "must be the SHA-256 of the key as 64 hexadecimal characters (put the key itself in "
           "an environment variable and use key_env)");
    }
    key.key_sha256 = lower(hash);
  }

  if (const auto* n = s.find("tenant")) {
    key.tenant = read_label(*n, s.path("tenant"));
    if (key.tenant == "*") {
      fail(s.path("tenant"), "\"*\" is reserved (rate_limits.per_tenant uses it for each tenant)");
    }
  }
  if (const auto* n = s.find("models")) {
    const std::string models_path = s.path("models");
    if (!n->IsNull()) {
      if (!n->IsSequence()) {
        fail(models_path, fmt::format("expected a sequence, got {}", describe(*n)));
      }
      for (size_t j = 0; j < n->size(); ++j) {
        const std::string entry_path = index_path(models_path, j);
        std::string model = read_label((*n)[j], entry_path);
        const auto first = std::find(key.models.begin(), key.models.end(), model);
        if (first != key.models.end()) {
          fail(entry_path, fmt::format("duplicate model {} (first at {})", quote_value(model),
                                       index_path(models_path, first - key.models.begin())));
        }
        key.models.push_back(std::move(model));
      }
    }
  }
  if (const auto* n = s.find("limits")) {
    key.limits = parse_limits(*n, s.path("limits"), "auth.keys[].limits");
  }
  if (const auto* n = s.find("budget")) {
    key.budget = parse_budget(*n, s.path("budget"), "auth.keys[].budget");
  }
  if (const auto* n = s.find("expires")) key.expires_unix = read_timestamp(*n, s.path("expires"));
  return key;
}

void parse_jwt(const YAML::Node& node, const std::string& path, bool auth_enabled,
               const std::string& base_dir, JwtConfig& jwt) {
  const Section s(node, path, "auth.jwt");
  if (s.find("secret") != nullptr) {
    fail(s.path("secret"), "inline secrets are not allowed; use secret_env");
  }
  if (const auto* n = s.find("enabled")) jwt.enabled = read_bool(*n, s.path("enabled"));

  const auto* algorithms = s.find("algorithms");
  if (algorithms != nullptr && !algorithms->IsNull()) {
    const std::string algorithms_path = s.path("algorithms");
    if (!algorithms->IsSequence()) {
      fail(algorithms_path, fmt::format("expected a sequence, got {}", describe(*algorithms)));
    }
    for (size_t j = 0; j < algorithms->size(); ++j) {
      const std::string entry_path = index_path(algorithms_path, j);
      std::string algorithm = read_string((*algorithms)[j], entry_path);
      if (algorithm != "HS256" && algorithm != "RS256" && algorithm != "ES256") {
        fail(entry_path, fmt::format("unknown algorithm {} (expected HS256, RS256, ES256)",
                                     quote_value(algorithm)));
      }
      const auto first = std::find(jwt.algorithms.begin(), jwt.algorithms.end(), algorithm);
      if (first != jwt.algorithms.end()) {
        fail(entry_path,
             fmt::format("duplicate algorithm {} (first at {})", quote_value(algorithm),
                         index_path(algorithms_path, first - jwt.algorithms.begin())));
      }
      jwt.algorithms.push_back(std::move(algorithm));
    }
  }
  const auto uses = [&](std::string_view algorithm) {
    return std::find(jwt.algorithms.begin(), jwt.algorithms.end(), algorithm) !=
           jwt.algorithms.end();
  };

  if (const auto* n = s.find("secret_env")) {
    jwt.secret_env = read_env_name(*n, s.path("secret_env"));
  }
  if (const auto* n = s.find("public_key_file")) {
    const std::string file = read_string(*n, s.path("public_key_file"));
    if (!file.empty()) {
      jwt.public_key_file = resolve_path(file, base_dir);
      check_readable_file(jwt.public_key_file, s.path("public_key_file"));
    }
  }
  if (const auto* n = s.find("jwks_file")) {
    const std::string file = read_string(*n, s.path("jwks_file"));
    if (!file.empty()) {
      jwt.jwks_file = resolve_path(file, base_dir);
      check_readable_file(jwt.jwks_file, s.path("jwks_file"));
    }
  }
  if (const auto* n = s.find("issuer")) jwt.issuer = read_string(*n, s.path("issuer"));
  if (const auto* n = s.find("audience")) jwt.audience = read_string(*n, s.path("audience"));
  if (const auto* n = s.find("clock_skew_ms")) {
    jwt.clock_skew = read_millis_or_zero(*n, s.path("clock_skew_ms"));
  }
  if (const auto* n = s.find("tenant_claim")) {
    jwt.tenant_claim = read_label(*n, s.path("tenant_claim"));
  }

  if (!jwt.enabled) return;
  if (jwt.algorithms.empty()) fail(s.path("algorithms"), "required when jwt is enabled");
  if (uses("HS256")) {
    if (jwt.secret_env.empty()) fail(s.path("secret_env"), "required when HS256 is allowed");
    if (auth_enabled) {
      const std::optional<std::string> secret = secret_env_value(jwt.secret_env, s.path("secret_env"));
      if (!secret) {
        fail(s.path("secret_env"),
             fmt::format("environment variable {} is not set", jwt.secret_env));
      }
      jwt.secret = *secret;
    }
  }
  if ((uses("RS256") || uses("ES256")) && jwt.public_key_file.empty() && jwt.jwks_file.empty()) {
    fail(s.path("public_key_file"),
         fmt::format("public_key_file or jwks_file is required when {} is allowed",
                     uses("RS256") ? "RS256" : "ES256"));
  }
}

void parse_auth(const YAML::Node& node, const std::string& base_dir, AuthConfig& auth) {
  const Section s(node, "auth", "auth");
  if (const auto* n = s.find("enabled")) auth.enabled = read_bool(*n, s.path("enabled"));
  if (const auto* n = s.find("keys_backend")) {
    std::string backend = read_string(*n, s.path("keys_backend"));
    if (backend == "sqlite") {
      auth.keys_backend = AuthConfig::KeysBackend::sqlite;
    } else if (backend == "redis") {
      auth.keys_backend = AuthConfig::KeysBackend::redis;
    } else {
      fail(s.path("keys_backend"),
           fmt::format("unknown backend {} (expected sqlite, redis)", quote_value(backend)));
    }
  }
  if (const auto* n = s.find("keys_db")) {
    const std::string file = read_string(*n, s.path("keys_db"));
    if (has_control_chars(file)) fail(s.path("keys_db"), "contains control characters");
    if (!file.empty()) auth.keys_db = resolve_path(file, base_dir);
    if (!file.empty() && auth.keys_backend == AuthConfig::KeysBackend::redis) {
      fail(s.path("keys_db"), "not used with keys_backend: redis (created keys live in Redis)");
    }
  }
  if (const auto* n = s.find("keys")) {
    const std::string keys_path = s.path("keys");
    if (!n->IsNull()) {
      if (!n->IsSequence()) {
        fail(keys_path, fmt::format("expected a sequence, got {}", describe(*n)));
      }
      for (size_t i = 0; i < n->size(); ++i) {
        const std::string path = index_path(keys_path, i);
        ApiKeyConfig key = parse_api_key((*n)[i], path, auth.enabled);
        for (size_t k = 0; k < auth.keys.size(); ++k) {
          const ApiKeyConfig& other = auth.keys[k];
          if (other.name == key.name) {
            fail(child_path(path, "name"),
                 fmt::format("duplicate key name {}", quote_value(key.name)));
          }
          // Two names for one secret would make authentication ambiguous.
          if (!key.key_sha256.empty() && other.key_sha256 == key.key_sha256) {
            fail(child_path(path, key.key_env.empty() ? "key_sha256" : "key_env"),
                 fmt::format("same secret as {}", index_path(keys_path, k)));
          }
        }
        auth.keys.push_back(std::move(key));
      }
    }
  }
  if (const auto* n = s.find("jwt")) {
    parse_jwt(*n, s.path("jwt"), auth.enabled, base_dir, auth.jwt);
  }
}

// redis://host:port (no auth, no database index: Debian's hiredis 0.14 has no TLS).
void parse_redis_url(const YAML::Node& node, const std::string& path, RateLimitConfig& limits) {
  std::string url = read_string(node, path);
  constexpr std::string_view kScheme = "redis://";
  if (!std::string_view(url).starts_with(kScheme)) fail(path, "expected redis://host:port");
  std::string rest = url.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  size_t colon = rest.rfind(':');
  std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host.find('/') != std::string::npos || host.find('@') != std::string::npos) {
    fail(path, "expected redis://host:port");
  }
  int port = 6379;
  if (colon != std::string::npos) {
    std::string digits = rest.substr(colon + 1);
    if (digits.empty() || digits.size() > 5 ||
        digits.find_first_not_of("0123456789") != std::string::npos || std::stoi(digits) < 1 ||
        std::stoi(digits) > 65535) {
      fail(path, "port must be 1..65535");
    }
    port = std::stoi(digits);
  }
  limits.redis_host = host;
  limits.redis_port = static_cast<uint16_t>(port);
}

// Top-level `redis`: the one connection every Redis feature uses (rate limits, keys, budgets).
// `rate_limits.redis.url` / `timeout_ms` (the older spelling) may not set it a second time.
void parse_redis(const YAML::Node& node, const YAML::Node* rate_limits, RateLimitConfig& limits) {
  const Section s(node, "redis", "redis");
  const YAML::Node old_spelling = rate_limits != nullptr && rate_limits->IsMap()
                                      ? (*rate_limits)["redis"]
                                      : YAML::Node();
  for (const char* key : {"url", "timeout_ms"}) {
    if (s.find(key) != nullptr && old_spelling.IsMap() && old_spelling[key].IsDefined()) {
      fail(std::string("rate_limits.redis.") + key,
           fmt::format("also set as redis.{}; set it in one place (redis.{})", key, key));
    }
  }
  if (const auto* u = s.find("url")) parse_redis_url(*u, s.path("url"), limits);
  if (const auto* t = s.find("timeout_ms")) {
    limits.redis_timeout = read_millis(*t, s.path("timeout_ms"));
  }
}

void parse_rate_limits(const YAML::Node& node, RateLimitConfig& limits) {
  const Section s(node, "rate_limits", "rate_limits");
  if (const auto* n = s.find("backend")) {
    std::string backend = read_string(*n, s.path("backend"));
    if (backend == "memory") {
      limits.backend = RateLimitConfig::Backend::memory;
    } else if (backend == "redis") {
      limits.backend = RateLimitConfig::Backend::redis;
    } else {
      fail(s.path("backend"),
           fmt::format("unknown backend {} (expected memory, redis)", quote_value(backend)));
    }
  }
  if (const auto* n = s.find("redis")) {
    const Section r(*n, s.path("redis"), "rate_limits.redis");
    if (const auto* u = r.find("url")) parse_redis_url(*u, r.path("url"), limits);
    if (const auto* t = r.find("timeout_ms")) limits.redis_timeout = read_millis(*t, r.path("timeout_ms"));
    if (const auto* e = r.find("on_error")) {
      std::string policy = read_string(*e, r.path("on_error"));
      if (policy == "fail_open") {
        limits.fail_open = true;
      } else if (policy == "fail_closed") {
        limits.fail_open = false;
      } else {
        fail(r.path("on_error"),
             fmt::format("unknown policy {} (expected fail_open, fail_closed)", quote_value(policy)));
      }
    }
  }
  if (const auto* n = s.find("per_key")) {
    limits.per_key = parse_limits(*n, s.path("per_key"), "rate_limits.per_key");
  }
  if (const auto* n = s.find("per_tenant")) {
    const std::string tenants_path = s.path("per_tenant");
    for (const auto& [tenant, value] : map_entries(*n, tenants_path)) {
      const std::string path = child_path(tenants_path, tenant);
      if (tenant.empty()) fail(path, "tenant name must not be empty");
      if (has_control_chars(tenant)) fail(path, "tenant name contains control characters");
      limits.per_tenant.emplace(tenant, parse_limits(value, path, "rate_limits.per_tenant.*"));
    }
  }
  if (const auto* n = s.find("per_model")) {
    const std::string models_path = s.path("per_model");
    if (!n->IsNull()) {
      if (!n->IsSequence()) {
        fail(models_path, fmt::format("expected a sequence, got {}", describe(*n)));
      }
      for (size_t i = 0; i < n->size(); ++i) {
        const std::string path = index_path(models_path, i);
        const YAML::Node& entry = (*n)[i];
        if (!entry.IsMap()) fail(path, fmt::format("expected a map, got {}", describe(entry)));
        const Section e(entry, path, "rate_limits.per_model[]");
        const auto* model = e.find("model");
        if (model == nullptr) fail(e.path("model"), "required");
        std::string pattern = read_label(*model, e.path("model"));
        for (size_t k = 0; k < limits.per_model.size(); ++k) {
          if (limits.per_model[k].first == pattern) {
            fail(e.path("model"), fmt::format("duplicate model {} (first at {})",
                                              quote_value(pattern), index_path(models_path, k)));
          }
        }
        limits.per_model.emplace_back(std::move(pattern), read_limits(e));
      }
    }
  }
}

// Counts the documents of a YAML stream, and those with any content, from parser events.
class DocumentCounter final : public YAML::EventHandler {
 public:
  void next() {
    ++documents_;
    if (content_) ++with_content_;
    content_ = false;
  }
  int documents() const { return documents_; }
  int with_content() const { return with_content_; }
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override { content_ = true; }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {
    content_ = true;
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    content_ = true;
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    content_ = true;
  }
  void OnMapEnd() override {}

 private:
  int documents_ = 0;
  int with_content_ = 0;
  bool content_ = false;
};

// Parses YAML text; `source` names it in syntax errors ("<file>:<line>:<col>: <msg>").
// Relative paths in the file (keys_db, JWT key files) are resolved against `base_dir`
// (empty = the working directory).
Config build(const std::string& text, const std::string& source, const std::string& base_dir) {
  YAML::Node root;
  try {
    // yaml-cpp 0.7's LoadAll() loops forever (allocating) on some invalid inputs such as " ,"
    // (yaml-cpp PR #1319): count documents with a bounded loop instead, then load the first.
    DocumentCounter counter;
    std::istringstream in(text);
    YAML::Parser parser(in);
    for (int i = 0; i < 3 && parser.HandleNextDocument(counter); ++i) counter.next();
    if (counter.with_content() > 1) fail(source, "expected one YAML document, found several");
    if (counter.documents() > 1 && counter.with_content() == 0) {
      fail(source, "invalid YAML: nothing could be parsed (a stray ',' or similar?)");
    }
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) throw ConfigError(fmt::format("{}: {}", source, e.msg));
    throw ConfigError(
        fmt::format("{}:{}:{}: {}", source, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (root.IsDefined() && !root.IsNull() && !root.IsMap()) {
    fail(source, fmt::format("expected a map at the top level, got {}", describe(root)));
  }

  Config config;
  const Section top(root, "", "");
  if (const auto* n = top.find("server")) parse_server(*n, config.server);
  if (const auto* n = top.find("upstream")) parse_upstream(*n, config.upstream);
  if (const auto* n = top.find("admin")) parse_admin(*n, config);
  if (config.admin.listen_enabled && config.admin.listen_port != 0 &&
      config.admin.listen_port == config.server.listen_port &&
      config.admin.listen_host == config.server.listen_host) {
    fail("admin.listen", "must differ from server.listen (to serve the operations endpoints "
                         "there, set admin.listen: off and admin.on_public_listener: true)");
  }
  if (const auto* n = top.find("auth")) parse_auth(*n, base_dir, config.auth);
  if (const auto* n = top.find("rate_limits")) parse_rate_limits(*n, config.rate_limits);
  if (const auto* n = top.find("redis")) parse_redis(*n, top.find("rate_limits"), config.rate_limits);
  if (const auto* n = top.find("prices")) {
    if (!n->IsSequence()) fail("prices", fmt::format("expected a sequence, got {}", describe(*n)));
    for (size_t i = 0; i < n->size(); ++i) {
      const std::string path = index_path("prices", i);
      const YAML::Node& entry = (*n)[i];
      if (!entry.IsMap()) fail(path, fmt::format("expected a map, got {}", describe(entry)));
      const Section e(entry, path, "prices[]");
      Price price;
      const auto* model = e.find("model");
      if (model == nullptr) fail(e.path("model"), "required");
      price.model = read_label(*model, e.path("model"));
      auto money = [&](const char* key, double& out) {
        if (const auto* v = e.find(key)) out = read_double_in(*v, e.path(key), 0.0, 1e9, false);
      };
      money("input_per_million", price.input_per_million);
      money("cached_input_per_million", price.cached_input_per_million);
      money("output_per_million", price.output_per_million);
      config.prices.push_back(std::move(price));
    }
  }
  if (const auto* n = top.find("budgets")) {
    const Section b(*n, "budgets", "budgets");
    if (const auto* k = b.find("backend")) {
      std::string backend = read_string(*k, b.path("backend"));
      if (backend != "memory" && backend != "redis") {
        fail(b.path("backend"),
             fmt::format("unknown backend {} (expected memory, redis)", quote_value(backend)));
      }
      config.budget_spend_in_redis = backend == "redis";
    }
    if (const auto* k = b.find("per_key")) {
      config.budget_per_key = parse_budget(*k, b.path("per_key"), "budgets.per_key");
    }
    if (const auto* t = b.find("per_tenant")) {
      for (const auto& [tenant, value] : map_entries(*t, b.path("per_tenant"))) {
        config.budget_per_tenant.emplace(tenant,
                                         parse_budget(value, child_path(b.path("per_tenant"), tenant),
                                                      "budgets.per_tenant.*"));
      }
    }
  }
  if (const auto* n = top.find("usage")) {
    const Section u(*n, "usage", "usage");
    if (const auto* d = u.find("db")) {
      std::string db = read_string(*d, u.path("db"));
      if (!db.empty() && db.front() != '/' && !base_dir.empty()) db = base_dir + "/" + db;
      config.usage_db = db;
    }
  }
  parse_routes(top.find("routes"), config);
  if (const auto* n = top.find("metrics")) parse_metrics(*n, config.metrics);
  if (const auto* n = top.find("errors")) parse_errors(*n, config);
  if (const auto* n = top.find("access_log")) parse_access_log(*n, base_dir, config.access_log);
  if (const auto* n = top.find("logging")) parse_logging(*n, config.logging);
  if (const auto* n = top.find("reload")) parse_reload(*n, config.reload);
  auto dump = [&](std::initializer_list<const char*> keys) {
    std::string out;
    for (const char* key : keys) {
      out += key;
      out += ':';
      if (const auto* n = top.find(key)) out += YAML::Dump(*n);
      out += '\n';
    }
    return out;
  };
  config.server_fingerprint = dump({"server"});
  config.governance_fingerprint =
      dump({"admin", "auth", "rate_limits", "prices", "budgets", "usage", "redis"});
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
  const std::string base_dir = std::filesystem::path(path).parent_path().string();
  Config config = build(text.str(), path, base_dir);
  config.source_path = path;
  return std::make_shared<const Config>(std::move(config));
}

std::shared_ptr<const Config> parse_config(const std::string& yaml_text) {
  return std::make_shared<const Config>(build(yaml_text, "<string>", ""));
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
