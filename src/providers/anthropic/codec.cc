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
void add_sendable(const std::vector<const Block*>& blocks, std::vector<const Block*>& into) {
  for (int pass = 0; pass < 2; ++pass) {
    for (const Block* b : blocks) {
      if ((b->kind == BlockKind::tool_result) != (pass == 0)) continue;
      if (b->kind == BlockKind::thinking && b->signature.empty()) continue;
      into.push_back(b);
    }
  }
}

// Anthropic wants alternating turns: consecutive messages of one role are one turn, a turn with
// nothing sendable is dropped, and the turns around a dropped one are joined.
void write_messages(const std::vector<Message>& messages, JsonWriter& w) {
  struct Turn {
    Role role;
    std::vector<const Block*> blocks;
  };
  std::vector<Turn> turns;
  size_t i = 0;
  while (i < messages.size()) {
    const Role role = messages[i].role;
    std::vector<const Block*> blocks;
    for (; i < messages.size() && messages[i].role == role; ++i) {
      for (const Block& b : messages[i].content) blocks.push_back(&b);
    }
    std::vector<const Block*> sendable;
    add_sendable(blocks, sendable);
    if (sendable.empty()) continue;
    if (!turns.empty() && turns.back().role == role) {
      // The role run between two runs of this role was dropped as empty: join them.
      turns.back().blocks.insert(turns.back().blocks.end(), sendable.begin(), sendable.end());
      continue;
    }
    turns.push_back(Turn{role, std::move(sendable)});
  }
  w.begin_array();
  for (const Turn& t : turns) {
    w.begin_object().member("role", t.role == Role::user ? "user" : "assistant");
    w.key("content").begin_array();
    for (const Block* b : t.blocks) write_block(*b, w);
    w.end_array().end_object();
  }
  w.end_array();
}

void write_tool_choice(const Request& req, JsonWriter& w) {
  w.begin_object();
  switch (req.tool_choice.kind) {
    case ToolChoiceKind::unset:
    case ToolChoiceKind::auto_: w.member("type", "auto"); break;
    case ToolChoiceKind::none: w.member("type", "none").end_object(); return;
    case ToolChoiceKind::required: w.member("type", "any"); break;
    case ToolChoiceKind::named: w.member("type", "tool").member("name", req.tool_choice.name); break;
  }
  if (req.parallel_tool_calls == false) w.member("disable_parallel_tool_use", true);
  w.end_object();
}

// Written directly (JsonWriter), byte for byte what the Boost.JSON tree it replaced gave.
std::string encode_request_impl(const Request& req, std::string_view upstream_model) {
  std::string out;
  out.reserve(256);
  JsonWriter w(out);
  w.begin_object().member("model", upstream_model);
  int64_t max_tokens = req.max_tokens.value_or(kDefaultMaxTokens);
  const std::optional<int64_t> budget = thinking_budget(req);
  if (!req.max_tokens && budget && *budget >= max_tokens) {
    max_tokens = sat_add(*budget, kDefaultMaxTokens);
  }
  w.member("max_tokens", max_tokens);
  if (req.system.size() == 1) {
    w.member("system", req.system.front().text);
  } else if (!req.system.empty()) {
    w.key("system").begin_array();
    for (const Block& b : req.system) write_block(b, w);
    w.end_array();
  }
  write_messages(req.messages, w.key("messages"));
  if (!req.tools.empty()) {
    w.key("tools").begin_array();
    for (const Tool& t : req.tools) {
      w.begin_object().member("name", t.name);
      if (!t.description.empty()) w.member("description", t.description);
      const json::value schema = from_text(t.parameters);
      w.key("input_schema").raw(schema.is_object() ? to_text(schema) : R"({"type":"object"})");
      w.end_object();
    }
    w.end_array();
    if (req.tool_choice.kind != ToolChoiceKind::unset || req.parallel_tool_calls == false) {
      write_tool_choice(req, w.key("tool_choice"));
    }
  }
  if (!req.stop.empty()) {
    w.key("stop_sequences").begin_array();
    for (const std::string& s : req.stop) w.string(s);
    w.end_array();
  }
  if (req.temperature) w.key("temperature").number(*req.temperature);
  if (req.top_p) w.key("top_p").number(*req.top_p);
  if (req.top_k) w.member("top_k", *req.top_k);
  if (req.stream) w.member("stream", true);
  if (budget) {
    w.key("thinking").begin_object().member("type", "enabled");
    w.member("budget_tokens", *budget).end_object();
  }
  if (!req.user.empty()) {
    w.key("metadata").begin_object().member("user_id", req.user).end_object();
  }
  w.end_object();
  return out;
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
