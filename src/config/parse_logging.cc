// The `access_log`, `logging` and `reload` sections.
#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <string>

#include "config/sections.h"
#include "config/yaml_read.h"

namespace sluice::config::detail {

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
  if (const auto* n = s.find("sample")) {
    a.sample = read_double_in(*n, s.path("sample"), 0, 1, false);
  }
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

}  // namespace sluice::config::detail
