// YAML → Config: reads the file, walks the node tree against the schema in config.h, and throws
// ConfigError("<yaml.path>: <problem>") on the first unknown key, wrong type or invalid value.
// Secrets are only ever read from the environment variables the file names.
//
// This file holds the top level only: reading the text, dispatching the sections in order
// (sections.h, one parse_<section>.cc each), and the checks that span sections. The shared
// readers are in yaml_read.h.
#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include "config/config.h"
#include "config/schema.h"
#include "config/sections.h"
#include "config/yaml_read.h"

namespace sluice::config {

using namespace detail;  // NOLINT(google-build-using-namespace): this file's own toolkit

namespace {

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
  if (const auto* n = top.find("redis")) {
    parse_redis(*n, top.find("rate_limits"), config.rate_limits);
  }
  if (const auto* n = top.find("prices")) parse_prices(*n, config.prices);
  if (const auto* n = top.find("budgets")) parse_budgets(*n, config);
  if (const auto* n = top.find("usage")) parse_usage(*n, base_dir, config);
  if (const auto* n = top.find("pipeline")) parse_pipeline(*n, config.pipeline);
  // Before routes: their `sessions` default to state.sessions'.
  if (const auto* n = top.find("state")) parse_state(*n, base_dir, config.state);
  if (const auto* n = top.find("cache")) parse_cache(*n, config.cache);
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
  config.state_fingerprint = dump({"state", "redis"});
  config.cache_fingerprint = dump({"cache", "redis"});
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
