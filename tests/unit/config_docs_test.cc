// docs/configuration.md against the config schema (src/config/schema.h), so neither can drift:
// every key of every section must have a row with a type, a default and a meaning in the doc,
// and every documented key must exist. Also checks that the loader enforces each section of the
// schema at the YAML path it names.
//
// Doc format: a table whose header is `| Key | Type | Default | Meaning |` documents the
// section(s) named by the code spans of the heading above it (`### `routes[].retry``; a heading
// may name several sections sharing one table). The top level is named `(top level)`. Each row
// starts with the key in backticks. Tables with other headers are prose and ignored.
#include "config/schema.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config_test_support.h"

namespace sluice::config {
namespace {

constexpr std::string_view kTopLevelName = "(top level)";

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The cells of a Markdown table row; `\|` inside a cell is not a separator.
std::vector<std::string> split_row(std::string_view line) {
  std::string row = trim(line);
  if (!row.empty() && row.front() == '|') row.erase(0, 1);
  if (!row.empty() && row.back() == '|' && !(row.size() >= 2 && row[row.size() - 2] == '\\')) {
    row.pop_back();
  }
  std::vector<std::string> cells;
  std::string cell;
  for (size_t i = 0; i < row.size(); ++i) {
    if (row[i] == '\\' && i + 1 < row.size() && row[i + 1] == '|') {
      cell += '|';
      ++i;
    } else if (row[i] == '|') {
      cells.push_back(trim(cell));
      cell.clear();
    } else {
      cell += row[i];
    }
  }
  cells.push_back(trim(cell));
  return cells;
}

// The contents of the `code spans` in `text`.
std::vector<std::string> code_spans(std::string_view text) {
  std::vector<std::string> spans;
  size_t pos = 0;
  while ((pos = text.find('`', pos)) != std::string_view::npos) {
    const size_t end = text.find('`', pos + 1);
    if (end == std::string_view::npos) break;
    spans.emplace_back(text.substr(pos + 1, end - pos - 1));
    pos = end + 1;
  }
  return spans;
}

std::string full_key(std::string_view section, std::string_view key) {
  return section.empty() ? std::string(key) : std::string(section) + "." + std::string(key);
}

std::string doc_name(std::string_view section) {
  return section.empty() ? std::string(kTopLevelName) : std::string(section);
}

struct DocRow {
  int line = 0;
  std::string type;
  std::string default_value;
  std::string meaning;
};

struct Doc {
  std::map<std::pair<std::string, std::string>, DocRow> rows;  // (section, key) → row
  std::set<std::string> sections;                              // sections with a table
  std::vector<std::string> problems;                           // format problems
};

Doc parse_doc(const std::string& text, const std::set<std::string>& known_sections) {
  Doc doc;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  std::string heading;
  int heading_line = 0;
  std::vector<std::string> sections;  // of the table being read; empty = not in a key table
  bool in_fence = false;
  while (std::getline(in, line)) {
    ++number;
    const std::string trimmed = trim(line);
    if (trimmed.starts_with("```")) in_fence = !in_fence;
    if (in_fence) continue;
    if (trimmed.starts_with("#")) {
      heading = trimmed;
      heading_line = number;
      sections.clear();
      continue;
    }
    if (!trimmed.starts_with("|")) {
      sections.clear();
      continue;
    }
    const std::vector<std::string> cells = split_row(trimmed);
    if (sections.empty()) {
      // A new table: is it a key table?
      if (cells.size() != 4 || lower(cells[0]) != "key" || lower(cells[1]) != "type" ||
          lower(cells[2]) != "default" || lower(cells[3]) != "meaning") {
        continue;
      }
      for (std::string span : code_spans(heading)) {
        if (span == kTopLevelName) span.clear();
        if (!known_sections.contains(span)) {
          doc.problems.push_back("docs/configuration.md:" + std::to_string(heading_line) +
                                 ": heading names `" + doc_name(span) +
                                 "`, which is not a section of the config schema "
                                 "(src/config/schema.h)");
          continue;
        }
        sections.push_back(span);
        doc.sections.insert(span);
      }
      if (sections.empty()) {
        doc.problems.push_back("docs/configuration.md:" + std::to_string(number) +
                               ": key table under a heading that names no config section: " +
                               heading);
        sections.push_back("\x01");  // read the rows, attach them to nothing
      }
      continue;
    }
    if (cells.size() >= 1 && cells[0].find_first_not_of("-: ") == std::string::npos) continue;
    if (sections.front() == "\x01") continue;
    if (cells.size() != 4) {
      doc.problems.push_back("docs/configuration.md:" + std::to_string(number) + ": expected 4 " +
                             "cells (Key | Type | Default | Meaning), got " +
                             std::to_string(cells.size()));
      continue;
    }
    const std::vector<std::string> keys = code_spans(cells[0]);
    if (keys.size() != 1 || cells[0] != "`" + keys[0] + "`") {
      doc.problems.push_back("docs/configuration.md:" + std::to_string(number) +
                             ": the Key cell must be one key in backticks, got " + cells[0]);
      continue;
    }
    for (const std::string& section : sections) {
      const auto [it, inserted] = doc.rows.emplace(
          std::make_pair(section, keys[0]), DocRow{number, cells[1], cells[2], cells[3]});
      if (!inserted) {
        doc.problems.push_back("docs/configuration.md:" + std::to_string(number) + ": `" +
                               full_key(section, keys[0]) + "` is documented twice (also line " +
                               std::to_string(it->second.line) + ")");
      }
    }
  }
  return doc;
}

std::string read_doc() {
  std::ifstream file(kRepoRoot + "/docs/configuration.md", std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// Every problem between the schema and the doc text, one message each.
std::vector<std::string> doc_problems(const std::string& text) {
  std::set<std::string> known;
  for (const SchemaSection& section : schema()) known.emplace(section.path);
  Doc doc = parse_doc(text, known);
  std::vector<std::string> problems = std::move(doc.problems);
  for (const SchemaSection& section : schema()) {
    if (!doc.sections.contains(std::string(section.path))) {
      problems.push_back("docs/configuration.md: section `" + doc_name(section.path) +
                         "` has no `| Key | Type | Default | Meaning |` table under a heading "
                         "naming it");
      continue;
    }
    for (std::string_view key : section.keys) {
      const std::string name = full_key(section.path, key);
      const auto it = doc.rows.find({std::string(section.path), std::string(key)});
      if (it == doc.rows.end()) {
        problems.push_back("docs/configuration.md: key `" + name + "` is not documented (add a " +
                           "row for `" + std::string(key) + "` to the table of `" +
                           doc_name(section.path) + "`)");
        continue;
      }
      const std::string where = "docs/configuration.md:" + std::to_string(it->second.line) + ": `" +
                                name + "`";
      if (it->second.type.empty()) problems.push_back(where + " has no type");
      if (it->second.default_value.empty()) problems.push_back(where + " has no default");
      if (it->second.meaning.empty()) problems.push_back(where + " has no meaning");
    }
  }
  for (const auto& [where, row] : doc.rows) {
    const auto& [section_path, key] = where;
    const auto section = std::find_if(schema().begin(), schema().end(),
                                      [&](const SchemaSection& s) { return s.path == section_path; });
    if (section == schema().end()) continue;  // reported with its heading
    if (std::find(section->keys.begin(), section->keys.end(), key) == section->keys.end()) {
      problems.push_back("docs/configuration.md:" + std::to_string(row.line) + ": `" +
                         full_key(section_path, key) +
                         "` is documented but is not a key of the config (stale: not in "
                         "src/config/schema.h)");
    }
  }
  return problems;
}

TEST(ConfigDocs, EveryKeyIsDocumentedAndEveryDocumentedKeyExists) {
  const std::string text = read_doc();
  ASSERT_FALSE(text.empty()) << "cannot read " << kRepoRoot << "/docs/configuration.md";
  for (const std::string& problem : doc_problems(text)) ADD_FAILURE() << problem;
}

// The checker itself: it notices a missing row, a stale row and an empty default.
TEST(ConfigDocs, CheckerReportsMissingStaleAndIncompleteRows) {
  const std::string text = read_doc();
  ASSERT_FALSE(text.empty());
  std::string edited = text;

  // Drop the row of reload.interval_ms.
  const size_t heading = edited.find("\n## `reload`");
  ASSERT_NE(heading, std::string::npos);
  const size_t row = edited.find("| `interval_ms` |", heading);
  ASSERT_NE(row, std::string::npos);
  edited.erase(row, edited.find('\n', row) + 1 - row);
  // Add a row for a key that does not exist, and blank the default of logging.level.
  const size_t logging = edited.find("| `level` |", edited.find("\n## `logging`"));
  ASSERT_NE(logging, std::string::npos);
  edited.insert(logging, "| `colour` | boolean | `false` | Not a real key |\n");
  const size_t level = edited.find("| `level` |", logging);
  const size_t type_end = edited.find('|', edited.find('|', level + 1) + 1);
  const size_t default_end = edited.find('|', type_end + 1);
  edited.replace(type_end + 1, default_end - type_end - 1, "  ");

  const std::vector<std::string> problems = doc_problems(edited);
  const auto has = [&](std::string_view needle) {
    return std::any_of(problems.begin(), problems.end(),
                       [&](const std::string& p) { return p.find(needle) != std::string::npos; });
  };
  EXPECT_TRUE(has("key `reload.interval_ms` is not documented")) << testing::PrintToString(problems);
  EXPECT_TRUE(has("`logging.colour` is documented but is not a key of the config"))
      << testing::PrintToString(problems);
  EXPECT_TRUE(has("`logging.level` has no default")) << testing::PrintToString(problems);
  EXPECT_EQ(problems.size(), 3u) << testing::PrintToString(problems);
}

// ---- The loader enforces each section of the schema where it says ------------------------

// Keys a map needs before its other keys are looked at, per section (so the only problem in
// the generated file is the unknown key).
std::string skeleton(std::string_view section) {
  if (section == "routes[]" || section == "rate_limits.per_model[]" || section == "prices[]") {
    return "model: m, ";
  }
  if (section == "routes[].targets[]") return "provider: demo, ";
  if (section == "auth.keys[]") return "name: k, key_sha256: \"" + std::string(64, 'a') + "\", ";
  return "";
}

// For the section `path`, a YAML file with an unknown key in that section, and the concrete
// path the loader should name: `routes[].targets[].retry` → `routes[0].targets[0].retry`.
std::pair<std::string, std::string> unknown_key_case(std::string_view path) {
  std::vector<std::string> segments;
  if (!path.empty()) {
    size_t start = 0;
    while (true) {
      const size_t dot = path.find('.', start);
      segments.emplace_back(path.substr(start, dot == std::string_view::npos ? dot : dot - start));
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  std::string concrete;
  std::string prefix;  // normalized path of the level being built
  std::vector<std::string> prefixes;
  for (const std::string& segment : segments) {
    const bool list = segment.ends_with("[]");
    std::string name = list ? segment.substr(0, segment.size() - 2) : segment;
    if (name == "*") name = "t1";
    concrete += (concrete.empty() ? "" : ".") + name + (list ? "[0]" : "");
    prefix += (prefix.empty() ? "" : ".") + segment;
    prefixes.push_back(prefix);
  }
  // Innermost first: the map of `path` with the unknown key, then wrap outwards.
  std::string yaml = "{" + skeleton(path) + "zz_unknown: 1}";
  for (size_t i = segments.size(); i-- > 0;) {
    const bool list = segments[i].ends_with("[]");
    std::string name = list ? segments[i].substr(0, segments[i].size() - 2) : segments[i];
    if (name == "*") name = "t1";
    const std::string value = list ? "[" + yaml + "]" : yaml;
    const std::string parent = i == 0 ? "" : prefixes[i - 1];
    // A route's targets are required; give the generated route a demo target beside it.
    std::string extra = skeleton(parent);
    if (parent == "routes[]" && name != "targets") extra += "targets: [{provider: demo}], ";
    yaml = "{" + extra + name + ": " + value + "}";
  }
  if (segments.empty() || segments.front() != "routes[]") {
    // Every file needs a route.
    yaml.insert(1, "routes: [{model: m, targets: [{provider: demo}]}], ");
  }
  return {yaml, concrete.empty() ? "zz_unknown" : concrete + ".zz_unknown"};
}

TEST(ConfigSchema, EverySectionIsEnforcedAtItsPath) {
  for (const SchemaSection& section : schema()) {
    const auto [yaml, concrete] = unknown_key_case(section.path);
    EXPECT_EQ(error_of(yaml), concrete + ": unknown key")
        << "section `" << doc_name(section.path) << "`, file: " << yaml;
    // And each of its keys is accepted there (a wrong value may be reported, an unknown key not).
    for (std::string_view key : section.keys) {
      std::string with_key = yaml;
      const size_t at = with_key.find("zz_unknown");
      with_key.replace(at, std::string_view("zz_unknown").size(), key);
      const std::string error = error_of(with_key);
      EXPECT_EQ(error.find("unknown key"), std::string::npos)
          << "`" << full_key(section.path, key) << "`: " << error << "\nfile: " << with_key;
    }
  }
}

TEST(ConfigSchema, SectionsAndKeysAreUnique) {
  std::set<std::string_view> paths;
  for (const SchemaSection& section : schema()) {
    EXPECT_TRUE(paths.insert(section.path).second) << section.path;
    std::set<std::string_view> keys(section.keys.begin(), section.keys.end());
    EXPECT_EQ(keys.size(), section.keys.size()) << section.path;
    EXPECT_FALSE(section.keys.empty()) << section.path;
  }
}

}  // namespace
}  // namespace sluice::config
