// Prompts and answer readers of the work after a session's turn: see extract.h.
#include "sessions/extract.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "canonical/json.h"
#include "sessions/context.h"

namespace sluice::sessions {

namespace json = canonical::json;
using canonical::Block;
using canonical::BlockKind;
using canonical::Message;

namespace {

// The longest prefix of `s` of at most `max` bytes that does not split a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

std::string chat_body(std::string_view model, std::string_view system, std::string_view user,
                      int max_tokens) {
  json::object body{
      {"model", model},
      {"messages", json::array{json::object{{"role", "system"}, {"content", system}},
                               json::object{{"role", "user"}, {"content", user}}}},
      {"temperature", 0},
      {"max_tokens", max_tokens},
      {"stream", false}};
  return canonical::to_text(body);
}

const char* role_name(canonical::Role r) {
  switch (r) {
    case canonical::Role::user: return "user";
    case canonical::Role::assistant: return "assistant";
    default: return "user";
  }
}

std::string fact_key(std::string_view raw) {
  const std::string out = join_words(raw, '_');
  std::string key(utf8_prefix(out, 64));
  while (!key.empty() && key.back() == '_') key.pop_back();  // a cut may end on a separator
  return key;
}

}  // namespace

std::string transcript(const std::vector<Message>& messages, size_t max_bytes) {
  std::string out;
  for (const Message& m : messages) {
    for (const Block& b : m.content) {
      std::string line;
      switch (b.kind) {
        case BlockKind::text: line = std::string(role_name(m.role)) + ": " + b.text; break;
        case BlockKind::tool_use:
          line = "assistant called " + b.tool_name + "(" + b.tool_input + ")";
          break;
        case BlockKind::tool_result: {
          line = "tool result: ";
          for (const Block& c : b.content) {
            if (c.kind == BlockKind::text) line += c.text;
          }
          break;
        }
        default: continue;  // images, thinking: not facts about the user
      }
      if (!out.empty()) out += '\n';
      out += line;
      if (out.size() >= max_bytes) return std::string(utf8_prefix(out, max_bytes));
    }
  }
  return out;
}

std::string extraction_request(std::string_view model, std::string_view turn,
                               const std::vector<std::string>& known_keys) {
  static constexpr std::string_view kSystem =
      "You maintain a memory of durable facts about the user of a conversation (who they are, "
      "where they live, what they prefer, plans, relationships, decisions). From the turn you are "
      "given, extract only facts worth remembering in later conversations; skip small talk and "
      "anything only about this moment. Answer with one JSON object and nothing else: "
      "{\"facts\": [{\"key\": \"<short snake_case topic, e.g. home_city>\", \"text\": \"<the fact "
      "as one sentence>\", \"weight\": <importance from 0 to 1>}]}. When a fact updates or "
      "contradicts a known topic, reuse that topic's key. Answer {\"facts\": []} when there is "
      "nothing to remember.";
  std::string user = "Known topics: ";
  if (known_keys.empty()) user += "(none)";
  for (size_t i = 0; i < known_keys.size() && i < 200; ++i) {
    if (i) user += ", ";
    user += known_keys[i];
  }
  user += "\n\nTurn:\n";
  user += turn;
  return chat_body(model, kSystem, user, 1024);
}

Result<std::vector<Fact>> parse_facts(std::string_view answer, size_t max_facts) {
  // The first '{' that starts a JSON object holding "facts" (prose or a fence may surround it).
  for (size_t start = answer.find('{'); start != std::string_view::npos;
       start = answer.find('{', start + 1)) {
    const size_t end = answer.rfind('}');
    if (end == std::string_view::npos || end < start) break;
    auto parsed = canonical::parse_json(answer.substr(start, end - start + 1));
    if (!parsed || !parsed->is_object()) continue;
    const json::array* facts = canonical::arr(parsed->as_object(), "facts");
    if (facts == nullptr) continue;
    std::vector<Fact> out;
    for (const json::value& v : *facts) {
      if (out.size() >= max_facts) break;
      if (!v.is_object()) continue;
      const json::object& o = v.as_object();
      Fact f;
      f.key = fact_key(canonical::str(o, "key"));
      f.text = std::string(utf8_prefix(canonical::str(o, "text"), 1000));
      while (!f.text.empty() && std::isspace(static_cast<unsigned char>(f.text.back()))) f.text.pop_back();
      if (f.key.empty() || f.text.empty()) continue;
      if (auto w = canonical::number(o, "weight")) f.weight = std::isfinite(*w) ? std::clamp(*w, 0.0, 1.0) : 0.5;
      out.push_back(std::move(f));
    }
    return out;
  }
  return make_error(Errc::upstream_protocol, "The extraction model's answer holds no {\"facts\": [...]} object.");
}

std::string summary_request(std::string_view model, std::string_view turns) {
  static constexpr std::string_view kSystem =
      "Summarize the following part of a conversation in at most five sentences, for the "
      "assistant to remember it later: keep names, numbers, decisions, open questions and what "
      "the user asked for; leave out pleasantries. Answer with the summary only.";
  return chat_body(model, kSystem, turns, 512);
}

std::string embeddings_request(std::string_view model, std::string_view input) {
  return canonical::to_text(json::object{{"model", model}, {"input", input}});
}

Result<std::string> completion_text(std::string_view body) {
  auto parsed = canonical::parse_json(body);
  if (!parsed || !parsed->is_object()) {
    return make_error(Errc::upstream_protocol, "The answer is not a chat completion.");
  }
  const json::array* choices = canonical::arr(parsed->as_object(), "choices");
  if (choices == nullptr || choices->empty() || !choices->front().is_object()) {
    return make_error(Errc::upstream_protocol, "The answer has no choices.");
  }
  const json::object* message = canonical::obj(choices->front().as_object(), "message");
  if (message == nullptr) return make_error(Errc::upstream_protocol, "The answer has no message.");
  return std::string(canonical::str(*message, "content"));
}

Result<std::vector<float>> embedding_of(std::string_view body) {
  auto parsed = canonical::parse_json(body);
  if (!parsed || !parsed->is_object()) {
    return make_error(Errc::upstream_protocol, "The answer is not an embeddings list.");
  }
  const json::array* data = canonical::arr(parsed->as_object(), "data");
  if (data == nullptr || data->empty() || !data->front().is_object()) {
    return make_error(Errc::upstream_protocol, "The embeddings answer has no data.");
  }
  const json::array* vec = canonical::arr(data->front().as_object(), "embedding");
  if (vec == nullptr || vec->empty() || vec->size() > 65'536) {
    return make_error(Errc::upstream_protocol, "The embeddings answer has no float vector.");
  }
  std::vector<float> out;
  out.reserve(vec->size());
  for (const json::value& x : *vec) {
    if (x.is_double()) {
      out.push_back(static_cast<float>(x.as_double()));
    } else if (x.is_int64()) {
      out.push_back(static_cast<float>(x.as_int64()));
    } else if (x.is_uint64()) {
      out.push_back(static_cast<float>(x.as_uint64()));
    } else {
      return make_error(Errc::upstream_protocol, "The embeddings answer has a value that is not a number.");
    }
    if (!std::isfinite(out.back())) {
      return make_error(Errc::upstream_protocol, "The embeddings answer has a value that is not finite.");
    }
  }
  return out;
}

}  // namespace sluice::sessions
