// Canonical request forms and cache keys: see key.h.
#include "cache/key.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <simdjson.h>

#include <charconv>
#include <utility>
#include <vector>

#include "canonical/json.h"
#include "common/error.h"
#include "common/sha256.h"

namespace sluice::cache {


namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// Numbers: an integral value below 2^53 as an integer (7.0 is 7, -0 is 0), any other double in
// its shortest round-trip scientific form (simdjson parses exactly, so the form is a fixed point).
void write_double(std::string& out, double d) {
  if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.0e15) {
    out += std::to_string(static_cast<int64_t>(d));
    return;
  }
  char buf[64];
  // Scientific: a big integral double written as plain digits would read back as an integer
  // too big for JSON parsers.
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  out.append(buf, ec == std::errc() ? end : buf);
}

void write(std::string& out, element e);

// Typed views of an element already known to be of that type (copied out of the result, which
// is a temporary: a reference into it would dangle).
simdjson::dom::array array_of(element e) {
  simdjson::dom::array a;
  if (e.get(a) != simdjson::SUCCESS) return {};
  return a;
}
simdjson::dom::object object_of(element e) {
  simdjson::dom::object o;
  if (e.get(o) != simdjson::SUCCESS) return {};
  return o;
}
std::string_view string_of(element e) {
  std::string_view s;
  if (e.get(s) != simdjson::SUCCESS) return {};
  return s;
}

void write_string(std::string& out, std::string_view s) {
  out += '"';
  append_json_escaped(out, s);
  out += '"';
}

// An object's members sorted by key; of repeated keys the last one counts (as a JSON object
// read into a map would keep it).
std::vector<std::pair<std::string_view, element>> sorted_members(simdjson::dom::object o) {
  std::vector<std::pair<std::string_view, element>> kv;
  for (auto field : o) kv.emplace_back(field.key, field.value);
  std::stable_sort(kv.begin(), kv.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<std::string_view, element>> out;
  for (size_t i = 0; i < kv.size(); ++i) {
    if (i + 1 < kv.size() && kv[i + 1].first == kv[i].first) continue;
    out.push_back(kv[i]);
  }
  return out;
}

void write_members(std::string& out, const std::vector<std::pair<std::string_view, element>>& kv) {
  out += '{';
  for (size_t i = 0; i < kv.size(); ++i) {
    if (i) out += ',';
    write_string(out, kv[i].first);
    out += ':';
    write(out, kv[i].second);
  }
  out += '}';
}

void write(std::string& out, element e) {
  switch (e.type()) {
    case element_type::OBJECT: write_members(out, sorted_members(object_of(e))); break;
    case element_type::ARRAY: {
      out += '[';
      bool first = true;
      for (element x : array_of(e)) {
        if (!first) out += ',';
        first = false;
        write(out, x);
      }
      out += ']';
      break;
    }
    case element_type::STRING: write_string(out, string_of(e)); break;
    case element_type::INT64: out += std::to_string(int64_t(e)); break;
    case element_type::UINT64: out += std::to_string(uint64_t(e)); break;
    case element_type::DOUBLE: write_double(out, double(e)); break;
    case element_type::BOOL: out += bool(e) ? "true" : "false"; break;
    case element_type::NULL_VALUE: out += "null"; break;
  }
}

// The one-part array a string content stands for ({"text":..., "type":"text"}, keys sorted).
void write_text_part(std::string& out, std::string_view text) {
  out += R"([{"text":)";
  write_string(out, text);
  out += R"(,"type":"text"}])";
}

// Messages with every string content written as its one text part.
void write_messages(std::string& out, element msgs) {
  if (!msgs.is_array()) return write(out, msgs);
  out += '[';
  bool first = true;
  for (element m : array_of(msgs)) {
    if (!first) out += ',';
    first = false;
    if (!m.is_object()) {
      write(out, m);
      continue;
    }
    auto kv = sorted_members(object_of(m));
    out += '{';
    for (size_t i = 0; i < kv.size(); ++i) {
      if (i) out += ',';
      write_string(out, kv[i].first);
      out += ':';
      if (kv[i].first == "content" && kv[i].second.is_string()) {
        write_text_part(out, string_of(kv[i].second));
      } else {
        write(out, kv[i].second);
      }
    }
    out += '}';
  }
  out += ']';
}

bool is_number(element e, double x) {
  switch (e.type()) {
    case element_type::INT64: return static_cast<double>(int64_t(e)) == x;
    case element_type::UINT64: return static_cast<double>(uint64_t(e)) == x;
    case element_type::DOUBLE: return double(e) == x;
    default: return false;
  }
}

bool is_bool(element e, bool b) { return e.is_bool() && bool(e) == b; }
bool is_empty_array(element e) { return e.is_array() && array_of(e).size() == 0; }
bool is_string(element e, std::string_view s) { return e.is_string() && string_of(e) == s; }

}  // namespace

Result<std::string> canonical_form(Api api, std::string_view body) {
  thread_local simdjson::dom::parser parser;
  element root;
  if (parser.parse(body.data(), body.size(), true).get(root) || !root.is_object()) {
    return canonical::invalid("The request body must be a JSON object.");
  }
  auto members = sorted_members(object_of(root));
  auto find = [&](std::string_view k) -> const element* {
    for (const auto& [key, v] : members) {
      if (key == k) return &v;
    }
    return nullptr;
  };
  const bool tools = [&] {
    const element* t = find("tools");
    return t != nullptr && !t->is_null() && !is_empty_array(*t);
  }();
  const bool has_max_completion = find("max_completion_tokens") != nullptr;
  std::vector<std::pair<std::string_view, element>> kept;
  for (const auto& [key, v] : members) {
    // Not part of the question, or unset.
    if (v.is_null() || key == "user" || key == "metadata" || key == "stream" ||
        key == "stream_options" || key == "store" || key == "service_tier" ||
        key == "prompt_cache_key" || key == "safety_identifier" || key == "background") {
      continue;
    }
    bool drop = false;
    switch (api) {
      case Api::chat:
        drop = (key == "temperature" && is_number(v, 1)) || (key == "top_p" && is_number(v, 1)) ||
               (key == "n" && is_number(v, 1)) ||
               (key == "presence_penalty" && is_number(v, 0)) ||
               (key == "frequency_penalty" && is_number(v, 0)) ||
               (key == "logprobs" && is_bool(v, false)) ||
               (key == "parallel_tool_calls" && is_bool(v, true)) ||
               ((key == "tools" || key == "stop") && is_empty_array(v)) ||
               (key == "tool_choice" && is_string(v, tools ? "auto" : "none")) ||
               (key == "max_tokens" && has_max_completion);
        break;
      case Api::messages:
        drop = (key == "temperature" && is_number(v, 1)) ||
               ((key == "stop_sequences" || key == "tools") && is_empty_array(v));
        break;
      case Api::responses:
        drop = (key == "temperature" && is_number(v, 1)) || (key == "top_p" && is_number(v, 1)) ||
               (key == "parallel_tool_calls" && is_bool(v, true)) ||
               (key == "tools" && is_empty_array(v));
        break;
      case Api::gemini: break;
    }
    if (!drop) kept.emplace_back(key, v);
  }
  // max_tokens is max_completion_tokens in chat: renamed, then the order is the keys' again.
  if (api == Api::chat) {
    for (auto& [key, v] : kept) {
      if (key == "max_tokens") key = "max_completion_tokens";
    }
    std::stable_sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  std::string out;
  out.reserve(body.size() + 32);
  out += '{';
  for (size_t i = 0; i < kept.size(); ++i) {
    const auto& [key, v] = kept[i];
    if (i) out += ',';
    write_string(out, key);
    out += ':';
    if (key == "messages" && api != Api::gemini && api != Api::responses) {
      write_messages(out, v);
    } else if (key == "system" && api == Api::messages && v.is_string()) {
      write_text_part(out, string_of(v));
    } else {
      write(out, v);
    }
  }
  out += '}';
  return out;
}

std::string key_of(const Scope& scope, std::string_view canonical) {
  std::string in;
  in.reserve(canonical.size() + 128);
  for (std::string_view part : {std::string_view(scope.owner), std::string_view(scope.route),
                                std::string_view(scope.upstream), std::string_view(scope.endpoint),
                                canonical}) {
    in += std::to_string(part.size());
    in += ':';
    in += part;
  }
  return sha256_hex(in);
}

}  // namespace sluice::cache
