// Anthropic Messages API bodies and SSE events, written by hand after the official shapes
// (docs.anthropic.com: Messages, Streaming Messages, Errors, Token counting).
#include <boost/json.hpp>

#include "mock/formats.h"

namespace sluice::mock::anthropic {

namespace json = boost::json;

namespace {

std::string_view stop_reason(Stop s) {
  switch (s) {
    case Stop::end: return "end_turn";
    case Stop::max_tokens: return "max_tokens";
    case Stop::stop_sequence: return "stop_sequence";
    case Stop::refusal: return "refusal";
    case Stop::tool: return "tool_use";
  }
  return "end_turn";
}

std::string_view stop_sequence(Stop s) {
  return s == Stop::stop_sequence ? R"("END")" : "null";
}

// input_tokens excludes both cache reads and cache writes (they are reported apart).
void append_usage(std::string& out, const Answer& a, int64_t output_tokens) {
  out += R"("usage":{"input_tokens":)";
  out += std::to_string(a.prompt_tokens);
  out += R"(,"cache_creation_input_tokens":)";
  out += std::to_string(a.sc.cache_creation);
  out += R"(,"cache_read_input_tokens":)";
  out += std::to_string(a.sc.cache_read);
  out += R"(,"output_tokens":)";
  out += std::to_string(output_tokens);
  out += '}';
}

std::string tool_id(int i) { return "toolu_" + std::to_string(i); }

// The message object up to and including "content":[ (the caller closes it).
void append_message_head(std::string& out, const Answer& a) {
  out += R"({"id":)";
  append_str(out, a.id);
  out += R"(,"type":"message","role":"assistant","model":)";
  append_str(out, a.model);
  out += R"(,"content":[)";
}

std::string block_start(int index, std::string_view block) {
  return sse_event("content_block_start", R"({"type":"content_block_start","index":)" +
                                              std::to_string(index) + R"(,"content_block":)" +
                                              std::string(block) + "}");
}

std::string block_delta(int index, std::string_view type, std::string_view field,
                        std::string_view value) {
  std::string d = R"({"type":"content_block_delta","index":)" + std::to_string(index) +
                  R"(,"delta":{"type":")" + std::string(type) + R"(",")" + std::string(field) +
                  R"(":)";
  append_str(d, value);
  d += "}}";
  return sse_event("content_block_delta", d);
}

std::string block_stop(int index) {
  return sse_event("content_block_stop",
                   R"({"type":"content_block_stop","index":)" + std::to_string(index) + "}");
}

// Bytes of message text: strings under "text" / "thinking" keys and plain string contents.
size_t text_bytes(const json::value& v) {
  size_t n = 0;
  if (const json::object* o = v.if_object()) {
    for (const auto& [k, x] : *o) {
      if ((k == "text" || k == "thinking" || k == "content") && x.is_string()) {
        n += x.get_string().size();
      } else {
        n += text_bytes(x);
      }
    }
  } else if (const json::array* arr = v.if_array()) {
    for (const json::value& x : *arr) n += text_bytes(x);
  }
  return n;
}

}  // namespace

bool parse_request(std::string_view body, bool count, Request& out, std::string& error) {
  json::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    error = "The request body is not valid JSON.";
    return false;
  }
  const json::object& o = v.get_object();
  const json::value* model = o.if_contains("model");
  if (model == nullptr || !model->is_string() || model->get_string().empty()) {
    error = "model: Field required";
    return false;
  }
  out.model = std::string(model->get_string());
  const json::value* messages = o.if_contains("messages");
  if (messages == nullptr || !messages->is_array()) {
    error = "messages: Field required";
    return false;
  }
  if (count) {
    // Anthropic's count_tokens refuses what only a generation takes.
    for (const char* extra : {"max_tokens", "stream", "temperature", "stop_sequences"}) {
      if (o.if_contains(extra) != nullptr) {
        error = std::string(extra) + ": Extra inputs are not permitted";
        return false;
      }
    }
  } else {
    const json::value* max_tokens = o.if_contains("max_tokens");
    if (max_tokens == nullptr || !max_tokens->is_int64() || max_tokens->get_int64() < 1) {
      error = "max_tokens: Field required";
      return false;
    }
  }
  if (const json::value* s = o.if_contains("stream")) {
    if (!s->is_bool()) {
      error = "stream: Input should be a valid boolean";
      return false;
    }
    out.stream = s->get_bool();
  }
  return true;
}

std::string unary(const Answer& a) {
  const Scenario& sc = a.sc;
  std::string out;
  out.reserve(512 + sc.text.size());
  append_message_head(out, a);
  bool first = true;
  auto sep = [&] {
    if (!first) out += ',';
    first = false;
  };
  if (sc.thinking) {
    sep();
    out += R"({"type":"thinking","thinking":)";
    append_str(out, kThinkingText);
    out += R"(,"signature":)";
    append_str(out, kSignature);
    out += '}';
  }
  if (sc.has_text()) {
    sep();
    out += R"({"type":"text","text":)";
    append_str(out, sc.text);
    out += '}';
  }
  for (int i = 1; i <= sc.tool_calls; ++i) {
    sep();
    out += R"({"type":"tool_use","id":)";
    append_str(out, tool_id(i));
    out += R"(,"name":)";
    append_str(out, tool_name(i));
    out += R"(,"input":)";
    out += tool_args(i);
    out += '}';
  }
  out += R"(],"stop_reason":")";
  out += stop_reason(sc.stop);
  out += R"(","stop_sequence":)";
  out += stop_sequence(sc.stop);
  out += ',';
  append_usage(out, a, sc.output_tokens());
  out += '}';
  return out;
}

Events stream(const Answer& a) {
  const Scenario& sc = a.sc;
  Events ev;
  std::string start = R"({"type":"message_start","message":)";
  append_message_head(start, a);
  start += R"(],"stop_reason":null,"stop_sequence":null,)";
  append_usage(start, a, 1);
  start += "}}";
  ev.push_back({sse_event("message_start", start)});
  int index = 0;
  // The docs' order: the first content_block_start, then a ping, then the deltas.
  auto open = [&](std::string_view block) {
    ev.push_back({block_start(index, block)});
    if (index == 0) ev.push_back({sse_event("ping", R"({"type":"ping"})")});
  };
  if (sc.thinking) {
    open(R"({"type":"thinking","thinking":""})");
    for (std::string_view p : kThinkingPieces) {
      ev.push_back({block_delta(index, "thinking_delta", "thinking", p), true});
    }
    ev.push_back({block_delta(index, "signature_delta", "signature", kSignature), true});
    ev.push_back({block_stop(index++)});
  }
  if (sc.has_text()) {
    open(R"({"type":"text","text":""})");
    for (const std::string& p : sc.pieces) {
      ev.push_back({block_delta(index, "text_delta", "text", p), true});
    }
    ev.push_back({block_stop(index++)});
  }
  for (int i = 1; i <= sc.tool_calls; ++i) {
    std::string block = R"({"type":"tool_use","id":)";
    append_str(block, tool_id(i));
    block += R"(,"name":)";
    append_str(block, tool_name(i));
    block += R"(,"input":{}})";
    open(block);
    for (const std::string& piece : split3(tool_args(i))) {
      ev.push_back({block_delta(index, "input_json_delta", "partial_json", piece), true});
    }
    ev.push_back({block_stop(index++)});
  }
  std::string delta = R"({"type":"message_delta","delta":{"stop_reason":")";
  delta += stop_reason(sc.stop);
  delta += R"(","stop_sequence":)";
  delta += stop_sequence(sc.stop);
  delta += R"(},"usage":{"output_tokens":)";
  delta += std::to_string(sc.output_tokens());
  delta += "}}";
  ev.push_back({sse_event("message_delta", delta), false, true});
  ev.push_back({sse_event("message_stop", R"({"type":"message_stop"})")});
  return ev;
}

std::string count_tokens(std::string_view body) {
  size_t bytes = 0;
  json::error_code ec;
  json::value v = json::parse(body, ec);
  if (!ec && v.is_object()) {
    const json::object& o = v.get_object();
    if (const json::value* s = o.if_contains("system")) {
      bytes += s->is_string() ? s->get_string().size() : text_bytes(*s);
    }
    if (const json::value* m = o.if_contains("messages")) bytes += text_bytes(*m);
  }
  return R"({"input_tokens":)" + std::to_string(estimate_tokens(bytes)) + "}";
}

std::string error_body(int status, std::string_view message) {
  std::string_view type = "api_error";
  switch (status) {
    case 400: type = "invalid_request_error"; break;
    case 401: type = "authentication_error"; break;
    case 402: type = "billing_error"; break;
    case 403: type = "permission_error"; break;
    case 404: type = "not_found_error"; break;
    case 413: type = "request_too_large"; break;
    case 429: type = "rate_limit_error"; break;
    case 504: type = "timeout_error"; break;
    case 529: type = "overloaded_error"; break;
    default: break;
  }
  std::string out = R"({"type":"error","error":{"type":")";
  out += type;
  out += R"(","message":)";
  append_str(out, message);
  out += "}}";
  return out;
}

std::string stream_error() {
  return sse_event("error",
                   R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
}

}  // namespace sluice::mock::anthropic
