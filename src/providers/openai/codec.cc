// OpenAI Chat Completions (upstream side, for OpenAI-compatible servers: OpenAI, Azure, vLLM,
// llama.cpp): canonical Request → body, chat.completion → Response, error bodies.
//
// Lossy (what an OpenAI-compatible upstream cannot receive or return):
// - thinking and redacted_thinking blocks in the conversation are not sent (the upstreams
//   reject them); the answer's reasoning arrives without signatures unless the upstream
//   speaks LiteLLM's thinking_blocks.
// - tool_result is_error is dropped (tool messages have no error flag).
// - images inside tool results are replaced by the text "[image omitted]".
// - thinking_budget is not sent (reasoning_effort is, when the client gave one).
// - tool_choice and parallel_tool_calls are sent only when tools are (OpenAI refuses them
//   otherwise).
// - stop_sequence: OpenAI reports "stop" for both a natural end and a stop sequence, so the
//   answer's stop reason is end_turn and the sequence is unknown.
// - choices beyond the first are ignored.
#include <algorithm>
#include <string>

#include "canonical/codec.h"
#include "canonical/json.h"
#include "canonical/json_writer.h"
#include "canonical/tables.h"
#include "providers/openai/stream_decoder.h"

namespace sluice::canonical::openai {
namespace {

std::string image_url_of(const Block& b) {
  if (!b.image_url.empty()) return b.image_url;
  return "data:" + b.image_media_type + ";base64," + b.image_data;
}

void user_content(const std::vector<const Block*>& blocks, JsonWriter& w) {
  if (blocks.size() == 1 && blocks[0]->kind == BlockKind::text) {
    w.string(blocks[0]->text);
    return;
  }
  w.begin_array();
  for (const Block* b : blocks) {
    w.begin_object();
    if (b->kind == BlockKind::text) {
      w.member("type", "text").member("text", b->text);
    } else {
      w.member("type", "image_url").key("image_url").begin_object();
      w.member("url", image_url_of(*b)).end_object();
    }
    w.end_object();
  }
  w.end_array();
}

void encode_user(const Message& m, JsonWriter& w) {
  std::vector<const Block*> rest;
  for (const Block& b : m.content) {
    if (b.kind == BlockKind::tool_result) {
      std::string text;
      for (const Block& c : b.content) {
        if (!text.empty()) text += "\n";
        text += c.kind == BlockKind::text ? c.text : std::string("[image omitted]");
      }
      w.begin_object().member("role", "tool").member("tool_call_id", b.tool_id);
      w.member("content", text).end_object();
    } else if (b.kind == BlockKind::text || b.kind == BlockKind::image) {
      rest.push_back(&b);
    }
  }
  if (rest.empty()) return;
  w.begin_object().member("role", "user").key("content");
  user_content(rest, w);
  w.end_object();
}

void encode_assistant(const Message& m, JsonWriter& w) {
  std::string text;
  bool any_text = false;
  bool any_call = false;
  for (const Block& b : m.content) {
    if (b.kind == BlockKind::text) {
      text += b.text;
      any_text = true;
    } else if (b.kind == BlockKind::tool_use) {
      any_call = true;
    }
  }
  w.begin_object().member("role", "assistant").key("content");
  if (any_text || !any_call) {
    w.string(text);
  } else {
    w.null();
  }
  if (any_call) {
    w.key("tool_calls").begin_array();
    for (const Block& b : m.content) {
      if (b.kind != BlockKind::tool_use) continue;
      w.begin_object().member("id", b.tool_id).member("type", "function");
      w.key("function").begin_object().member("name", b.tool_name);
      w.member("arguments", b.tool_input).end_object();
      w.end_object();
    }
    w.end_array();
  }
  w.end_object();
}

StopReason finish_to_stop(std::string_view f) {
  if (f == "length") return StopReason::max_tokens;
  if (f == "tool_calls" || f == "function_call") return StopReason::tool_use;
  if (f == "content_filter") return StopReason::refusal;
  return StopReason::end_turn;  // "stop", missing, or a server-specific value
}

int64_t nonneg(const json::object& o, std::string_view key) {
  return std::max<int64_t>(0, integer(o, key).value_or(0));
}

Error protocol_error(std::string_view why) {
  return make_error(Errc::upstream_protocol,
                    "Upstream answered 200 with a body that is not an OpenAI chat.completion: " +
                        std::string(why));
}

}  // namespace

// Shared with the stream decoder (declared in stream_decoder.h).
Usage usage_of(int64_t prompt, int64_t cached, int64_t completion, int64_t reasoning) {
  Usage usage;
  prompt = std::max<int64_t>(0, prompt);
  usage.cache_read = std::min(std::max<int64_t>(0, cached), prompt);
  usage.input = sat_sub(prompt, usage.cache_read);
  usage.output = std::max<int64_t>(0, completion);
  usage.reasoning = std::max<int64_t>(0, reasoning);
  usage.reported = true;
  return usage;
}

Usage usage_from(const json::object& u) {
  int64_t cached = 0, reasoning = 0;
  if (const json::object* d = obj(u, "prompt_tokens_details")) cached = nonneg(*d, "cached_tokens");
  if (const json::object* d = obj(u, "completion_tokens_details")) {
    reasoning = nonneg(*d, "reasoning_tokens");
  }
  return usage_of(nonneg(u, "prompt_tokens"), cached, nonneg(u, "completion_tokens"), reasoning);
}

StopReason stop_from_finish(std::string_view finish_reason) { return finish_to_stop(finish_reason); }

std::string error_type_for(int status, std::string_view code, std::string_view message) {
  for (std::string_view s : {code, message}) {
    if (s.find("context_length_exceeded") != std::string_view::npos ||
        s.find("maximum context length") != std::string_view::npos ||
        s.find("exceed_context_size") != std::string_view::npos ||
        s.find("exceeds the available context size") != std::string_view::npos) {
      return "context_length_exceeded";
    }
  }
  return std::string(error_row(status).anthropic_type);  // the canonical vocabulary
}

// Written directly (JsonWriter), byte for byte what the Boost.JSON tree it replaced gave.
std::string encode_request(const Request& req, std::string_view upstream_model) {
  std::string out;
  out.reserve(256);
  JsonWriter w(out);
  w.begin_object().member("model", upstream_model);
  w.key("messages").begin_array();
  if (!req.system.empty()) {
    std::string system;
    for (const Block& b : req.system) {
      if (b.kind != BlockKind::text) continue;
      if (!system.empty()) system += "\n\n";
      system += b.text;
    }
    w.begin_object().member("role", "system").member("content", system).end_object();
  }
  for (const Message& m : req.messages) {
    if (m.role == Role::user) {
      encode_user(m, w);
    } else {
      encode_assistant(m, w);
    }
  }
  w.end_array();
  if (!req.tools.empty()) {
    w.key("tools").begin_array();
    for (const Tool& t : req.tools) {
      w.begin_object().member("type", "function").key("function").begin_object();
      w.member("name", t.name);
      if (!t.description.empty()) w.member("description", t.description);
      w.key("parameters").raw(to_text(from_text(t.parameters)));
      w.end_object().end_object();
    }
    w.end_array();
    switch (req.tool_choice.kind) {
      case ToolChoiceKind::unset: break;
      case ToolChoiceKind::auto_: w.member("tool_choice", "auto"); break;
      case ToolChoiceKind::none: w.member("tool_choice", "none"); break;
      case ToolChoiceKind::required: w.member("tool_choice", "required"); break;
      case ToolChoiceKind::named:
        w.key("tool_choice").begin_object().member("type", "function");
        w.key("function").begin_object().member("name", req.tool_choice.name).end_object();
        w.end_object();
        break;
    }
    if (req.parallel_tool_calls) w.member("parallel_tool_calls", *req.parallel_tool_calls);
  }
  if (req.max_tokens) w.member("max_tokens", *req.max_tokens);
  if (req.temperature) w.key("temperature").number(*req.temperature);
  if (req.top_p) w.key("top_p").number(*req.top_p);
  if (req.top_k) w.member("top_k", *req.top_k);
  if (!req.stop.empty()) {
    w.key("stop").begin_array();
    for (const std::string& s : req.stop) w.string(s);
    w.end_array();
  }
  if (!req.reasoning_effort.empty()) w.member("reasoning_effort", req.reasoning_effort);
  if (!req.user.empty()) w.member("user", req.user);
  if (req.stream) {
    // The gateway meters every stream, so it always asks for the usage chunk.
    w.member("stream", true).key("stream_options").begin_object();
    w.member("include_usage", true).end_object();
  }
  w.end_object();
  return out;
}

Result<Response> decode_response(std::string_view body) {
  try {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec) return protocol_error("not valid JSON");
    const json::object* o = v.if_object();
    if (!o) return protocol_error("not a JSON object");
    const json::array* choices = arr(*o, "choices");
    if (!choices || choices->empty()) return protocol_error("no choices");
    const json::object* choice = (*choices)[0].if_object();
    const json::object* msg = choice ? obj(*choice, "message") : nullptr;
    if (!msg) return protocol_error("choices[0].message is missing");
    Response r;
    r.id = std::string(str(*o, "id"));
    r.model = std::string(str(*o, "model"));
    if (const json::array* tb = arr(*msg, "thinking_blocks")) {
      for (const json::value& e : *tb) {
        const json::object* t = e.if_object();
        if (!t) continue;
        Block b;
        if (str(*t, "type") == "redacted_thinking") {
          b.kind = BlockKind::redacted_thinking;
          b.data = std::string(str(*t, "data"));
        } else {
          b.kind = BlockKind::thinking;
          b.text = std::string(str(*t, "thinking"));
          b.signature = std::string(str(*t, "signature"));
        }
        r.content.push_back(std::move(b));
      }
    } else {
      std::string_view reasoning = str(*msg, "reasoning_content");
      if (reasoning.empty()) reasoning = str(*msg, "reasoning");
      if (!reasoning.empty()) {
        Block b;
        b.kind = BlockKind::thinking;
        b.text = std::string(reasoning);
        r.content.push_back(std::move(b));
      }
    }
    if (const json::value* c = field(*msg, "content")) {
      std::string text;
      if (c->is_string()) {
        text = std::string(c->get_string());
      } else if (const json::array* parts = c->if_array()) {  // some servers answer with parts
        for (const json::value& p : *parts) {
          if (const json::object* po = p.if_object()) text += str(*po, "text");
        }
      }
      if (!text.empty()) {
        Block b;
        b.text = std::move(text);
        r.content.push_back(std::move(b));
      }
    }
    const std::string_view refusal = str(*msg, "refusal");
    if (!refusal.empty()) {
      Block b;
      b.text = std::string(refusal);
      r.content.push_back(std::move(b));
    }
    auto add_call = [&r](const json::object& fn, std::string id) {
      Block b;
      b.kind = BlockKind::tool_use;
      b.tool_id = std::move(id);
      b.tool_name = std::string(str(fn, "name"));
      if (const json::value* a = field(fn, "arguments")) {
        b.tool_input = a->is_string() ? std::string(a->get_string()) : to_text(*a);
      }
      r.content.push_back(std::move(b));
    };
    if (const json::array* calls = arr(*msg, "tool_calls")) {
      for (size_t i = 0; i < calls->size(); ++i) {
        const json::object* tc = (*calls)[i].if_object();
        const json::object* fn = tc ? obj(*tc, "function") : nullptr;
        if (!fn) return protocol_error("a tool call without a function");
        std::string id(str(*tc, "id"));
        if (id.empty()) id = "call_" + std::to_string(i);  // llama.cpp has omitted ids
        add_call(*fn, std::move(id));
      }
    } else if (const json::object* fc = obj(*msg, "function_call")) {
      add_call(*fc, "call_0");
    }
    r.stop_reason = refusal.empty() ? finish_to_stop(str(*choice, "finish_reason"))
                                    : StopReason::refusal;
    if (const json::object* u = obj(*o, "usage")) r.usage = usage_from(*u);
    return r;
  } catch (const std::exception& e) {
    return protocol_error(e.what());
  }
}

UpstreamError decode_error(int status, std::string_view body) {
  UpstreamError e;
  e.status = status;
  std::string code;
  try {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (!ec && v.is_object()) {
      const json::object& o = v.get_object();
      if (const json::object* err = obj(o, "error")) {
        e.message = std::string(str(*err, "message"));
        if (const json::value* c = field(*err, "code")) {
          code = c->is_string() ? std::string(c->get_string()) : to_text(*c);
        }
        code += " ";
        code += str(*err, "type");
      } else if (!str(o, "error").empty()) {
        e.message = std::string(str(o, "error"));
      } else if (!str(o, "message").empty()) {
        e.message = std::string(str(o, "message"));
      } else if (!str(o, "detail").empty()) {  // FastAPI-based servers
        e.message = std::string(str(o, "detail"));
      }
    } else if (ec && !body.empty()) {
      e.message = std::string(body.substr(0, 512));  // a proxy's text or HTML page
    }
  } catch (const std::exception&) {
  }
  if (e.message.empty()) e.message = "The upstream answered HTTP " + std::to_string(status) + ".";
  e.type = error_type_for(status, code, e.message);
  return e;
}

std::unique_ptr<StreamDecoder> stream_decoder() { return std::make_unique<ChunkDecoder>(); }

}  // namespace sluice::canonical::openai
