// The shared readers of yaml_read.h: paths, messages, scalars, maps with checked keys, addresses.
#include "config/yaml_read.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace sluice::config::detail {
namespace {

bool is_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

int64_t check_range(int64_t value, std::string_view path, int64_t min, int64_t max) {
  if (value < min) {
    if (min == 1) fail(path, "must be > 0");
    fail(path, fmt::format("must be >= {}", min));
  }
  if (value > max) fail(path, fmt::format("must be <= {}", max));
  return value;
}

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

}  // namespace

// ---- Paths and messages ----------------------------------------------------------------------

[[noreturn]] void fail(std::string_view path, std::string_view problem) {
  throw ConfigError(fmt::format("{}: {}", path, problem));
}

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

// ---- Environment and text ------------------------------------------------------------------

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

// A non-empty name without control characters (key names, tenants, model globs).
std::string read_label(const YAML::Node& node, std::string_view path) {
  std::string value = read_string(node, path);
  if (value.empty()) fail(path, "must not be empty");
  if (has_control_chars(value)) fail(path, "contains control characters");
  return value;
}

// ---- Files -----------------------------------------------------------------------------------

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

// ---- Addresses -------------------------------------------------------------------------------

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
}  // namespace sluice::config::detail
