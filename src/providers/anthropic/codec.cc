// Anthropic Messages API, upstream side: canonical Request → POST /v1/messages body, and the
// unary answer and error bodies back (the stream decoder is in stream.cc).
//
// Lossy (what the canonical model carries that an Anthropic upstream cannot take or give):
// - max_tokens is required: absent → 4096 (the gateway fills it per route before this), raised
//   to budget + 4096 when a thinking budget would not fit under it.
// - reasoning_effort without thinking_budget → thinking budget low/minimal=1024, medium=4096,
//   high=16384 ("none" → no thinking); a budget below Anthropic's minimum of 1024 is raised
//   to 1024; a budget <= 0 (Gemini's "off" / "dynamic") sends no thinking.
// - Consecutive messages of the same role are merged into one (Anthropic needs alternation);
//   tool_result blocks are moved to the front of a user message (Anthropic needs them first).
// - Thinking blocks without a signature (from other protocols) are dropped: Anthropic rejects
//   them; a message left empty is dropped. Foreign signatures (Gemini) are sent and rejected.
// - tool_choice is sent only with tools; parallel_tool_calls=true is the default (not sent).
// - Non-object tool arguments are sent as {"_raw_arguments": "<text>"}.
// - Answer blocks other than text, tool_use, thinking, redacted_thinking (server_tool_use,
//   web_search_tool_result, ...) are dropped; citations are dropped.
#include "canonical/codec.h"

#include <algorithm>
#include <exception>

#include "canonical/json.h"
#include "canonical/tables.h"
#include "frontends/anthropic/blocks.h"

namespace sluice::canonical::anthropic {
namespace {

constexpr int64_t kDefaultMaxTokens = 4096;
constexpr int64_t kMinThinkingBudget = 1024;

std::optional<int64_t> thinking_budget(const Request& req) {
  if (req.thinking_budget) {
    if (*req.thinking_budget <= 0) return std::nullopt;
    return std::max(*req.thinking_budget, kMinThinkingBudget);
  }
  const std::string& effort = req.reasoning_effort;
  if (effort == "minimal" || effort == "low") return 1024;
  if (effort == "medium") return 4096;
  if (effort == "high") return 16384;
  return std::nullopt;
}

// Sendable blocks of one message, tool_result blocks first.
json::array message_content(const std::vector<const Block*>& blocks) {
  json::array content;
  for (int pass = 0; pass < 2; ++pass) {
    for (const Block* b : blocks) {
      if ((b->kind == BlockKind::tool_result) != (pass == 0)) continue;
      if (b->kind == BlockKind::thinking && b->signature.empty()) continue;
      content.push_back(block_to_json(*b));
    }
  }
  return content;
}

json::array encode_messages(const std::vector<Message>& messages) {
  json::array out;
  size_t i = 0;
  while (i < messages.size()) {
    const Role role = messages[i].role;
    std::vector<const Block*> blocks;
    for (; i < messages.size() && messages[i].role == role; ++i) {
      for (const Block& b : messages[i].content) blocks.push_back(&b);
    }
    json::array content = message_content(blocks);
    if (content.empty()) continue;
    if (!out.empty() && out.back().as_object().at("role").as_string() ==
                            (role == Role::user ? "user" : "assistant")) {
      // The role run between two runs of this role was dropped as empty: join them.
      json::array& prev = out.back().as_object()["content"].as_array();
      for (auto& c : content) prev.push_back(std::move(c));
      continue;
    }
    json::object m;
    m["role"] = role == Role::user ? "user" : "assistant";
    m["content"] = std::move(content);
    out.push_back(std::move(m));
  }
  return out;
}

json::object encode_tool_choice(const Request& req) {
  json::object tc;
  switch (req.tool_choice.kind) {
    case ToolChoiceKind::unset:
    case ToolChoiceKind::auto_:
      tc["type"] = "auto";
      break;
    case ToolChoiceKind::none:
      tc["type"] = "none";
      return tc;
    case ToolChoiceKind::required:
      tc["type"] = "any";
      break;
    case ToolChoiceKind::named:
      tc["type"] = "tool";
      tc["name"] = req.tool_choice.name;
      break;
  }
  if (req.parallel_tool_calls == false) tc["disable_parallel_tool_use"] = true;
  return tc;
}

std::string encode_request_impl(const Request& req, std::string_view upstream_model) {
  json::object o;
  o["model"] = upstream_model;
  int64_t max_tokens = req.max_tokens.value_or(kDefaultMaxTokens);
  const std::optional<int64_t> budget = thinking_budget(req);
  if (!req.max_tokens && budget && *budget >= max_tokens) {
    max_tokens = sat_add(*budget, kDefaultMaxTokens);
  }
  o["max_tokens"] = max_tokens;
  if (req.system.size() == 1) {
    o["system"] = req.system.front().text;
  } else if (!req.system.empty()) {
    json::array system;
    for (const Block& b : req.system) system.push_back(block_to_json(b));
    o["system"] = std::move(system);
  }
  o["messages"] = encode_messages(req.messages);
  if (!req.tools.empty()) {
    json::array tools;
    for (const Tool& t : req.tools) {
      json::object tool;
      tool["name"] = t.name;
      if (!t.description.empty()) tool["description"] = t.description;
      json::value schema = from_text(t.parameters);
      if (!schema.is_object()) schema = json::object{{"type", "object"}};
      tool["input_schema"] = std::move(schema);
      tools.push_back(std::move(tool));
    }
    o["tools"] = std::move(tools);
    if (req.tool_choice.kind != ToolChoiceKind::unset || req.parallel_tool_calls == false) {
      o["tool_choice"] = encode_tool_choice(req);
    }
  }
  if (!req.stop.empty()) {
    json::array stops;
    for (const std::string& s : req.stop) stops.emplace_back(s);
    o["stop_sequences"] = std::move(stops);
  }
  if (req.temperature) o["temperature"] = *req.temperature;
  if (req.top_p) o["top_p"] = *req.top_p;
  if (req.top_k) o["top_k"] = *req.top_k;
  if (req.stream) o["stream"] = true;
  if (budget) {
    o["thinking"] = json::object{{"type", "enabled"}, {"budget_tokens", *budget}};
  }
  if (!req.user.empty()) o["metadata"] = json::object{{"user_id", req.user}};
  return to_text(o);
}

int64_t count(const json::object& usage, std::string_view key) {
  return std::max<int64_t>(0, integer(usage, key).value_or(0));
}

Error not_a_message(std::string_view why) {
  return make_error(
      Errc::upstream_protocol,
      "Upstream answered 200 with a body that is not an Anthropic message: " + std::string(why));
}

Result<Response> decode_response_impl(std::string_view body) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec) return not_a_message("not valid JSON (" + ec.message() + ")");
  const json::object* o = v.if_object();
  if (!o) return not_a_message("not a JSON object");
  const std::string_view type = str(*o, "type");
  if (type == "error") {
    const json::object* error = obj(*o, "error");
    const std::string_view message = error ? str(*error, "message") : std::string_view{};
    return not_a_message("an error (" + std::string(message) + ")");
  }
  if (type != "message") return not_a_message("type is not \"message\"");
  const json::array* content = arr(*o, "content");
  if (!content) return not_a_message("no content array");
  Response r;
  r.id = std::string(str(*o, "id"));
  r.model = std::string(str(*o, "model"));
  for (size_t i = 0; i < content->size(); ++i) {
    const json::object* b = (*content)[i].if_object();
    if (!b) return not_a_message("content[" + std::to_string(i) + "] is not an object");
    if (!known_block_type(str(*b, "type"))) continue;  // server tool blocks: lossy
    auto block = block_from_json((*content)[i], "content[" + std::to_string(i) + "]");
    if (!block) return not_a_message(block.error().message);
    r.content.push_back(std::move(*block));
  }
  r.stop_reason = stop_from_wire(str(*o, "stop_reason"));
  r.stop_sequence = std::string(str(*o, "stop_sequence"));
  if (const json::object* usage = obj(*o, "usage")) {
    r.usage.input = count(*usage, "input_tokens");
    r.usage.output = count(*usage, "output_tokens");
    r.usage.cache_read = count(*usage, "cache_read_input_tokens");
    r.usage.cache_creation = count(*usage, "cache_creation_input_tokens");
    r.usage.reported = true;
  }
  return r;
}

bool says_context_too_long(std::string_view message) {
  std::string lower(message);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("prompt is too long") != std::string::npos ||
         lower.find("exceed context limit") != std::string::npos ||
         lower.find("context window") != std::string::npos;
}

}  // namespace

std::string encode_request(const Request& req, std::string_view upstream_model) {
  try {
    return encode_request_impl(req, upstream_model);
  } catch (const std::exception&) {
    // Only allocation can throw here; an empty body makes the upstream answer 400.
    return {};
  }
}

Result<Response> decode_response(std::string_view body) {
  try {
    return decode_response_impl(body);
  } catch (const std::exception& e) {
    return not_a_message(e.what());
  }
}

UpstreamError decode_error(int status, std::string_view body) {
  UpstreamError out;
  out.status = status;
  out.type = std::string(error_row(status).anthropic_type);
  try {
    boost::system::error_code ec;
    const json::value v = json::parse(body, ec);
    const json::object* o = ec ? nullptr : v.if_object();
    // Anthropic: {"type":"error","error":{"type","message"}}; compatible servers may answer in
    // OpenAI's {"error":{"message","type"}}: the same fields.
    const json::object* error = o ? obj(*o, "error") : nullptr;
    if (error) {
      const std::string_view type = str(*error, "type");
      if (known_error_type(type) && type != "billing_error") out.type = std::string(type);
      out.message = std::string(str(*error, "message"));
    }
  } catch (const std::exception&) {
    // a body we cannot read: the type from the status and the generic message below
  }
  if (out.message.empty()) {
    out.message = "The upstream answered HTTP " + std::to_string(status) + " with no message";
  }
  if (status >= 400 && status < 500 && says_context_too_long(out.message)) {
    out.type = "context_length_exceeded";
  }
  return out;
}

}  // namespace sluice::canonical::anthropic
