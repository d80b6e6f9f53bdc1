// Anthropic Messages API, client side: a POST /v1/messages body → canonical Request, and the
// unary answer and error bodies back (the stream encoder is in stream.cc).
//
// Lossy (what an Anthropic client can send or expect that the canonical model does not carry):
// - cache_control on blocks, system and tools is ignored (the upstream caches as it decides).
// - Server tools (tools with a `type` other than "custom": web_search, bash, text_editor, ...)
//   are dropped from the tool list.
// - document, search_result, container_upload, server_tool_use and other block types are
//   rejected with 400 (param messages[i].content[j].type); image sources other than base64 and
//   url (e.g. Files API "file") likewise.
// - citations, text block `citations`, `container`, `mcp_servers`, `service_tier` and
//   `context_management` are ignored.
// - thinking {type:"disabled"} and {type:"adaptive"} carry no budget: no thinking_budget is set.
// - metadata other than user_id is ignored.
// - tool_choice {type:"auto", disable_parallel_tool_use:false} is the default and is not kept
//   as parallel_tool_calls=true (only `true` → parallel_tool_calls=false is carried).
// - Assistant image blocks in an answer are dropped (Anthropic answers carry no images).
#include "canonical/codec.h"

#include <cmath>
#include <exception>

#include "canonical/json.h"
#include "canonical/tables.h"
#include "frontends/anthropic/blocks.h"

namespace sluice::canonical::anthropic {
namespace {

std::string at(std::string_view base, size_t i) {
  return std::string(base) + "[" + std::to_string(i) + "]";
}

Result<std::vector<Block>> decode_system(const json::value& v) {
  std::vector<Block> out;
  if (v.is_string()) {
    if (!v.get_string().empty()) {
      Block b;
      b.text = std::string(v.get_string());
      out.push_back(std::move(b));
    }
    return out;
  }
  const json::array* parts = v.if_array();
  if (!parts)
    return invalid("system: Input should be a valid string or list of text blocks", "system");
  for (size_t i = 0; i < parts->size(); ++i) {
    const std::string where = at("system", i);
    const json::object* p = (*parts)[i].if_object();
    if (!p || str(*p, "type") != "text") {
      return invalid(where + ".type: system blocks must be of type 'text'", where + ".type");
    }
    auto b = block_from_json((*parts)[i], where);
    if (!b) return b.error();
    out.push_back(std::move(*b));
  }
  return out;
}

Result<std::vector<Message>> decode_messages(const json::array& messages) {
  std::vector<Message> out;
  out.reserve(messages.size());
  // tool_result blocks carry only the id; the name is the earlier tool_use's (Gemini needs it).
  std::vector<std::pair<std::string, std::string>> tool_names;
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string where = at("messages", i);
    const json::object* m = messages[i].if_object();
    if (!m) return invalid(where + ": Input should be a valid message object", where);
    Message msg;
    const std::string_view role = str(*m, "role");
    if (role == "user") {
      msg.role = Role::user;
    } else if (role == "assistant") {
      msg.role = Role::assistant;
    } else {
      return invalid(where + ".role: Input should be 'user' or 'assistant'", where + ".role");
    }
    const json::value* content = field(*m, "content");
    if (!content) return invalid(where + ".content: Field required", where + ".content");
    if (content->is_string()) {
      Block b;
      b.text = std::string(content->get_string());
      msg.content.push_back(std::move(b));
    } else if (const json::array* blocks = content->if_array()) {
      for (size_t j = 0; j < blocks->size(); ++j) {
        auto b = block_from_json((*blocks)[j], at(where + ".content", j));
        if (!b) return b.error();
        if (b->kind == BlockKind::tool_use) tool_names.emplace_back(b->tool_id, b->tool_name);
        if (b->kind == BlockKind::tool_result) {
          for (const auto& [id, name] : tool_names) {
            if (id == b->tool_id) b->tool_name = name;
          }
        }
        msg.content.push_back(std::move(*b));
      }
    } else {
      return invalid(where + ".content: Input should be a valid string or list of blocks",
                     where + ".content");
    }
    out.push_back(std::move(msg));
  }
  return out;
}

Result<void> decode_tools(const json::array& tools, Request& req) {
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string where = at("tools", i);
    const json::object* t = tools[i].if_object();
    if (!t) return invalid(where + ": Input should be a valid tool object", where);
    const std::string_view type = str(*t, "type");
    if (!type.empty() && type != "custom") continue;  // a server tool: lossy, see the head
    const std::string_view name = str(*t, "name");
    if (name.empty()) return invalid(where + ".name: Field required", where + ".name");
    const json::object* schema = obj(*t, "input_schema");
    if (!schema) {
      return invalid(where + ".input_schema: Field required (a JSON Schema object)",
                     where + ".input_schema");
    }
    Tool tool;
    tool.name = std::string(name);
    tool.description = std::string(str(*t, "description"));
    tool.parameters = to_text(*schema);
    req.tools.push_back(std::move(tool));
  }
  return {};
}

Result<void> decode_tool_choice(const json::value& v, Request& req) {
  const json::object* tc = v.if_object();
  if (!tc) return invalid("tool_choice: Input should be a valid object", "tool_choice");
  const std::string_view type = str(*tc, "type");
  if (type == "auto") {
    req.tool_choice.kind = ToolChoiceKind::auto_;
  } else if (type == "any") {
    req.tool_choice.kind = ToolChoiceKind::required;
  } else if (type == "none") {
    req.tool_choice.kind = ToolChoiceKind::none;
  } else if (type == "tool") {
    const std::string_view name = str(*tc, "name");
    if (name.empty()) return invalid("tool_choice.name: Field required", "tool_choice.name");
    req.tool_choice.kind = ToolChoiceKind::named;
    req.tool_choice.name = std::string(name);
  } else {
    return invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'",
                   "tool_choice.type");
  }
  if (boolean(*tc, "disable_parallel_tool_use").value_or(false)) req.parallel_tool_calls = false;
  return {};
}

Result<void> decode_sampling(const json::object& o, Request& req) {
  // A number too big for a double (1e400) reads as infinity: refused like any invalid number.
  if (const json::value* v = field(o, "temperature")) {
    req.temperature = number(o, "temperature");
    if (!v->is_number() || !std::isfinite(*req.temperature))
      return invalid("temperature: Input should be a valid number", "temperature");
  }
  if (const json::value* v = field(o, "top_p")) {
    req.top_p = number(o, "top_p");
    if (!v->is_number() || !std::isfinite(*req.top_p)) {
      return invalid("top_p: Input should be a valid number", "top_p");
    }
  }
  if (field(o, "top_k")) {
    req.top_k = integer(o, "top_k");
    if (!req.top_k) return invalid("top_k: Input should be a valid integer", "top_k");
  }
  if (const json::value* v = field(o, "stop_sequences")) {
    const json::array* stops = v->if_array();
    if (!stops) return invalid("stop_sequences: Input should be a valid list", "stop_sequences");
    for (size_t i = 0; i < stops->size(); ++i) {
      if (!(*stops)[i].is_string()) {
        return invalid(at("stop_sequences", i) + ": Input should be a valid string",
                       at("stop_sequences", i));
      }
      req.stop.emplace_back((*stops)[i].get_string());
    }
  }
  if (const json::value* v = field(o, "stream")) {
    if (!v->is_bool()) return invalid("stream: Input should be a valid boolean", "stream");
    req.stream = v->get_bool();
  }
  if (const json::object* thinking = obj(o, "thinking")) {
    if (str(*thinking, "type") == "enabled") {
      req.thinking_budget = integer(*thinking, "budget_tokens");
      if (!req.thinking_budget) {
        return invalid("thinking.budget_tokens: Field required", "thinking.budget_tokens");
      }
    }
  }
  if (const json::object* metadata = obj(o, "metadata")) {
    req.user = std::string(str(*metadata, "user_id"));
  }
  return {};
}

Result<Request> decode_request_impl(std::string_view body, bool count) {
  ChunkArena arena;  // the tree dies here: the Request holds copies
  auto parsed = parse_json(body, arena.storage());
  if (!parsed) return parsed.error();
  const json::object* o = parsed->if_object();
  if (!o) return invalid("The request body must be a JSON object");
  Request req;
  req.include_usage = true;  // an Anthropic stream always reports usage
  const json::value* model = field(*o, "model");
  if (!model) return invalid("model: Field required", "model");
  if (!model->is_string() || model->get_string().empty()) {
    return invalid("model: Input should be a non-empty string", "model");
  }
  req.model = std::string(model->get_string());
  if (!count) {  // (count_tokens takes no max_tokens)
    if (!field(*o, "max_tokens")) return invalid("max_tokens: Field required", "max_tokens");
    req.max_tokens = integer(*o, "max_tokens");
    if (!req.max_tokens) {
      return invalid("max_tokens: Input should be a valid integer", "max_tokens");
    }
    if (*req.max_tokens < 1) {
      return invalid("max_tokens: Input should be greater than or equal to 1", "max_tokens");
    }
  }
  const json::value* messages = field(*o, "messages");
  if (!messages) return invalid("messages: Field required", "messages");
  if (!messages->is_array()) return invalid("messages: Input should be a valid list", "messages");
  auto decoded = decode_messages(messages->get_array());
  if (!decoded) return decoded.error();
  req.messages = std::move(*decoded);
  if (const json::value* system = field(*o, "system")) {
    auto blocks = decode_system(*system);
    if (!blocks) return blocks.error();
    req.system = std::move(*blocks);
  }
  if (const json::value* tools = field(*o, "tools")) {
    if (!tools->is_array()) return invalid("tools: Input should be a valid list", "tools");
    if (auto r = decode_tools(tools->get_array(), req); !r) return r.error();
  }
  if (const json::value* tc = field(*o, "tool_choice")) {
    if (auto r = decode_tool_choice(*tc, req); !r) return r.error();
  }
  if (auto r = decode_sampling(*o, req); !r) return r.error();
  return req;
}

}  // namespace

Result<Request> decode_request(std::string_view body, const FrontendContext& ctx) {
  try {
    return decode_request_impl(body, ctx.count);
  } catch (const std::exception& e) {
    return invalid(std::string("The request body could not be read: ") + e.what());
  }
}

std::string encode_response(const Response& r, const Request& /*req*/) {
  std::string out;
  out.reserve(256);
  JsonWriter w(out);
  w.begin_object().member("id", r.id.empty() ? new_id("msg_") : r.id);
  w.member("type", "message").member("role", "assistant").member("model", r.model);
  w.key("content").begin_array();
  for (const Block& b : r.content) {
    if (b.kind == BlockKind::image || b.kind == BlockKind::tool_result) continue;  // lossy
    if (b.kind == BlockKind::tool_use && b.tool_id.empty()) {
      Block named = b;
      named.tool_id = new_id("toolu_");
      write_block(named, w);
    } else {
      write_block(b, w);
    }
  }
  w.end_array().member("stop_reason", stop_row(r.stop_reason).anthropic);
  if (r.stop_sequence.empty()) {
    w.key("stop_sequence").null();
  } else {
    w.member("stop_sequence", r.stop_sequence);
  }
  w.key("usage").begin_object().member("input_tokens", r.usage.input);
  w.member("output_tokens", r.usage.output);
  w.member("cache_creation_input_tokens", r.usage.cache_creation);
  w.member("cache_read_input_tokens", r.usage.cache_read).end_object();
  w.end_object();
  return out;
}

ErrorBody encode_error(int status, std::string_view message) {
  json::object error;
  error["type"] = error_row(status).anthropic_type;
  error["message"] = message;
  json::object o;
  o["type"] = "error";
  o["error"] = std::move(error);
  return {status, to_text(o)};
}

}  // namespace sluice::canonical::anthropic
