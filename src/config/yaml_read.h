// The small toolkit every section parser uses: error paths, typed scalar readers and the map
// walker that rejects unknown keys against the schema (schema.h). Internal to src/config/.
//
// Every reader throws ConfigError("<yaml.path>: <problem>") on the first bad value; the wording
// of those messages is pinned by tests/unit/config*_test.cc.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/schema.h"

namespace sluice::config::detail {

// Longest accepted duration: keeps `now() + timeout` far from overflowing a nanosecond clock.
inline constexpr int64_t kMaxMillis = 86'400'000;      // 24 h
inline constexpr int64_t kMaxSize = int64_t{1} << 40;  // 1 TiB
inline constexpr int64_t kMaxCount = 10'000'000;

// ---- Paths and messages ----------------------------------------------------------------------

[[noreturn]] void fail(std::string_view path, std::string_view problem);

// `parent.key`; a key with control characters (or none at all) is shown quoted.
std::string child_path(std::string_view parent, std::string_view key);
std::string index_path(std::string_view parent, size_t index);

// A value echoed in an error message: quoted, control characters escaped, long values cut.
std::string quote_value(std::string_view value);

// What a node is, for "expected X, got Y": "a map", "a sequence", a quoted scalar, "nothing".
std::string describe(const YAML::Node& node);

// ---- Environment -----------------------------------------------------------------------------

// The value of an environment variable, or nullopt when it is unset or empty.
std::optional<std::string> env_value(const std::string& name);

// env_value() for a value that goes on the wire or is compared with what clients send: control
// bytes are a configuration error at `path` naming the variable (never echoing the value).
std::optional<std::string> secret_env_value(const std::string& name, const std::string& path);

// ---- Text --------------------------------------------------------------------------------------

std::string lower(std::string_view s);
// A decimal integer with an optional leading '+'; nullopt on anything else or overflow.
std::optional<int64_t> to_int(std::string_view text);
bool has_control_chars(std::string_view text);

// ---- Maps with checked keys ----------------------------------------------------------------

using Entries = std::vector<std::pair<std::string, YAML::Node>>;

// The entries of a map node in file order, rejecting non-string and duplicate keys.
// A missing or null node is an empty map, so `server:` alone means "all defaults".
Entries map_entries(const YAML::Node& node, std::string_view path);

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

std::string read_string(const YAML::Node& node, std::string_view path);
int64_t read_int(const YAML::Node& node, std::string_view path);
int64_t read_int_in(const YAML::Node& node, std::string_view path, int64_t min, int64_t max);
// 1 .. kMaxMillis.
Millis read_millis(const YAML::Node& node, std::string_view path);
// A duration where 0 has a meaning of its own (unlimited, "use the default", fail at once).
Millis read_millis_or_zero(const YAML::Node& node, std::string_view path);
// min .. kMaxCount.
int read_count(const YAML::Node& node, std::string_view path, int64_t min);
// A byte count: a plain integer, or a number with a unit: B, KiB, MiB, GiB ("16MiB", "64 KiB").
size_t read_size(const YAML::Node& node, std::string_view path);
// The name of an environment variable (never its value, which is not echoed).
std::string read_env_name(const YAML::Node& node, std::string_view path);
// A YAML 1.2 boolean (yes/no/on/off are rejected).
bool read_bool(const YAML::Node& node, std::string_view path);
// A finite decimal number; integers are accepted too ("1", "0.25", "1e-2").
double read_double(const YAML::Node& node, std::string_view path);
// A number in [min, max], or (min, max] when `min_exclusive`.
double read_double_in(const YAML::Node& node, std::string_view path, double min, double max,
                      bool min_exclusive);
// A non-empty name without control characters (key names, tenants, model globs).
std::string read_label(const YAML::Node& node, std::string_view path);

// ---- Files -----------------------------------------------------------------------------------

// A path from the file, made relative to the directory of the config file (`base_dir`; empty
// when parsed from a string, i.e. the working directory).
std::string resolve_path(const std::string& path, const std::string& base_dir);
// Fails at `path` with "cannot read file ..." unless `file` is a readable regular file.
void check_readable_file(const std::string& file, std::string_view path);

// ---- Addresses -------------------------------------------------------------------------------

// 0..65535 from 1-5 digits.
std::optional<uint16_t> parse_port(std::string_view text);

struct HostPort {
  std::string host;                 // IPv6 literals without their brackets
  std::optional<std::string> port;  // digits as written, if a port was given
};

// Splits "host", "host:port", "[v6]" or "[v6]:port". Returns an error message on failure.
std::optional<std::string> split_host_port(std::string_view text, HostPort& out);

// `listen: host:port` (port 0 allowed: ephemeral).
void parse_listen(const YAML::Node& node, std::string_view path, std::string& host,
                  uint16_t& listen_port);

}  // namespace sluice::config::detail
