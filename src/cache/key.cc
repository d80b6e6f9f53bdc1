// Canonical request forms and cache keys: see key.h.
#include "cache/key.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "canonical/json.h"
#include "common/sha256.h"

namespace sluice::cache {

namespace json = canonical::json;

namespace {

// Sorted keys at every depth; integral doubles as integers.
json::value normalized(const json::value& v) {
  switch (v.kind()) {
    case json::kind::object: {
      const json::object& o = v.as_object();
      std::vector<const json::key_value_pair*> kv;
      kv.reserve(o.size());
      for (const auto& p : o) kv.push_back(&p);
      std::sort(kv.begin(), kv.end(),
                [](const auto* a, const auto* b) { return a->key() < b->key(); });
      json::object out;
      out.reserve(kv.size());
      for (const auto* p : kv) out.emplace(p->key(), normalized(p->value()));
      return out;
    }
    case json::kind::array: {
      json::array out;
      out.reserve(v.as_array().size());
      for (const json::value& e : v.as_array()) out.push_back(normalized(e));
      return out;
    }
    case json::kind::double_: {
      const double d = v.as_double();
      if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.0e15) {
        return static_cast<int64_t>(d);
      }
      return d;
    }
    case json::kind::uint64:
      if (v.as_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return static_cast<int64_t>(v.as_uint64());
      }
      return v;
    default:
      return v;
  }
}

bool equals_number(const json::value& v, double x) {
  if (v.is_int64()) return static_cast<double>(v.as_int64()) == x;
  if (v.is_uint64()) return static_cast<double>(v.as_uint64()) == x;
  if (v.is_double()) return v.as_double() == x;
  return false;
}

// "text" content as the one-part array it stands for, in every message.
void content_as_parts(json::object& body, std::string_view messages_key, std::string_view part_type) {
  json::value* msgs = body.if_contains(messages_key);
  if (msgs == nullptr || !msgs->is_array()) return;
  for (json::value& m : msgs->as_array()) {
    if (!m.is_object()) continue;
    json::value* c = m.as_object().if_contains("content");
    if (c != nullptr && c->is_string()) {
      json::string text = c->as_string();
      *c = json::array{json::object{{"type", part_type}, {"text", std::move(text)}}};
    }
  }
}

void drop_if_number(json::object& o, std::string_view key, double dflt) {
  if (const json::value* v = o.if_contains(key); v && equals_number(*v, dflt)) o.erase(key);
}

void drop_if_bool(json::object& o, std::string_view key, bool dflt) {
  if (const json::value* v = o.if_contains(key); v && v->is_bool() && v->as_bool() == dflt) {
    o.erase(key);
  }
}

void drop_if_empty_array(json::object& o, std::string_view key) {
  if (const json::value* v = o.if_contains(key); v && v->is_array() && v->as_array().empty()) {
    o.erase(key);
  }
}

}  // namespace

Result<std::string> canonical_form(Api api, std::string_view body) {
  auto parsed = canonical::parse_json(body);
  if (!parsed || !parsed->is_object()) {
    return canonical::invalid("The request body must be a JSON object.");
  }
  json::object& o = parsed->as_object();
  // Not part of the question.
  for (const char* k : {"user", "metadata", "stream", "stream_options", "store", "service_tier",
                        "prompt_cache_key", "safety_identifier", "background"}) {
    o.erase(k);
  }
  for (auto it = o.begin(); it != o.end();) {  // null = unset
    it = it->value().is_null() ? o.erase(it) : std::next(it);
  }
  switch (api) {
    case Api::chat:
      if (o.contains("max_tokens") && !o.contains("max_completion_tokens")) {
        json::value v = o.at("max_tokens");
        o.erase("max_tokens");
        o["max_completion_tokens"] = std::move(v);
      }
      drop_if_number(o, "temperature", 1);
      drop_if_number(o, "top_p", 1);
      drop_if_number(o, "n", 1);
      drop_if_number(o, "presence_penalty", 0);
      drop_if_number(o, "frequency_penalty", 0);
      drop_if_bool(o, "logprobs", false);
      drop_if_bool(o, "parallel_tool_calls", true);
      drop_if_empty_array(o, "tools");
      drop_if_empty_array(o, "stop");
      if (const json::value* tc = o.if_contains("tool_choice"); tc && tc->is_string()) {
        // "auto" with tools and "none" without are what an absent tool_choice means.
        const bool tools = o.contains("tools");
        if (tc->as_string() == (tools ? "auto" : "none")) o.erase("tool_choice");
      }
      content_as_parts(o, "messages", "text");
      break;
    case Api::messages:
      drop_if_number(o, "temperature", 1);
      drop_if_empty_array(o, "stop_sequences");
      drop_if_empty_array(o, "tools");
      if (const json::value* s = o.if_contains("system"); s && s->is_string()) {
        json::string text = s->as_string();
        o["system"] = json::array{json::object{{"type", "text"}, {"text", std::move(text)}}};
      }
      content_as_parts(o, "messages", "text");
      break;
    case Api::responses:
      drop_if_number(o, "temperature", 1);
      drop_if_number(o, "top_p", 1);
      drop_if_bool(o, "parallel_tool_calls", true);
      drop_if_empty_array(o, "tools");
      break;
    case Api::gemini:
      break;
  }
  return canonical::to_text(normalized(*parsed));
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
