// OpenAI chat.completion / text_completion bodies and SSE chunks, written by hand (the shape
// the OpenAI SDKs parse). Without scenario headers the bytes are the mock's historical ones.
#include "common/error.h"
#include "mock/formats.h"

namespace sluice::mock::openai {

namespace {

std::string_view finish_reason(Stop s) {
  switch (s) {
    case Stop::end: return "stop";
    case Stop::max_tokens: return "length";
    case Stop::stop_sequence: return "stop";
    case Stop::refusal: return "content_filter";
    case Stop::tool: return "tool_calls";
  }
  return "stop";
}

void append_head(std::string& out, const Answer& a, bool chunk) {
  out += R"({"id":)";
  append_str(out, a.id);
  out += R"(,"object":")";
  if (a.completions) {
    out += "text_completion";
  } else {
    out += chunk ? "chat.completion.chunk" : "chat.completion";
  }
  out += R"(","created":)";
  out += std::to_string(a.created);
  out += R"(,"model":)";
  append_str(out, a.model);
}

// prompt_tokens counts cached and cache-written tokens too; cached_tokens is the read part.
void append_usage(std::string& out, const Answer& a) {
  const Scenario& sc = a.sc;
  int64_t prompt = a.prompt_tokens + sc.cache_read + sc.cache_creation;
  int64_t completion = sc.output_tokens();
  out += R"("usage":{"prompt_tokens":)";
  out += std::to_string(prompt);
  out += R"(,"completion_tokens":)";
  out += std::to_string(completion);
  out += R"(,"total_tokens":)";
  out += std::to_string(prompt + completion);
  if (sc.cache_read > 0 || sc.cache_creation > 0) {
    out += R"(,"prompt_tokens_details":{"cached_tokens":)";
    out += std::to_string(sc.cache_read);
    out += '}';
  }
  if (sc.thinking) {
    out += R"(,"completion_tokens_details":{"reasoning_tokens":)";
    out += std::to_string(sc.thinking_tokens());
    out += '}';
  }
  out += '}';
}

// One chat chunk: `delta` is the delta object's JSON; `finish` empty = null.
std::string chunk(const Answer& a, std::string_view delta, std::string_view finish = {}) {
  std::string out = "data: ";
  append_head(out, a, true);
  out += R"(,"choices":[{"index":0,)";
  if (a.completions) {
    out += R"("text":)";
    out += delta;
  } else {
    out += R"("delta":)";
    out += delta;
  }
  out += R"(,"logprobs":null,"finish_reason":)";
  if (finish.empty()) {
    out += "null";
  } else {
    append_str(out, finish);
  }
  out += "}]}\n\n";
  return out;
}

std::string delta_field(std::string_view field, std::string_view value) {
  std::string d = "{\"";
  d += field;
  d += "\":";
  append_str(d, value);
  d += '}';
  return d;
}

}  // namespace

std::string unary(const Answer& a) {
  const Scenario& sc = a.sc;
  std::string out;
  out.reserve(256 + sc.text.size());
  append_head(out, a, false);
  if (a.completions) {
    out += R"(,"choices":[{"index":0,"text":)";
    append_str(out, sc.text);
  } else {
    out += R"(,"choices":[{"index":0,"message":{"role":"assistant","content":)";
    if (sc.has_text()) {
      append_str(out, sc.text);
    } else {
      out += "null";
    }
    if (sc.thinking) {
      out += R"(,"reasoning_content":)";
      append_str(out, kThinkingText);
    }
    if (sc.tool_calls > 0) {
      out += R"(,"tool_calls":[)";
      for (int i = 1; i <= sc.tool_calls; ++i) {
        if (i > 1) out += ',';
        out += R"({"id":"call_)" + std::to_string(i) + R"(","type":"function","function":{"name":)";
        append_str(out, tool_name(i));
        out += R"(,"arguments":)";
        append_str(out, tool_args(i));
        out += "}}";
      }
      out += ']';
    }
    out += '}';
  }
  out += R"(,"logprobs":null,"finish_reason":")";
  out += finish_reason(sc.stop);
  out += R"("}],)";
  append_usage(out, a);
  out += '}';
  return out;
}

Events stream(const Answer& a) {
  const Scenario& sc = a.sc;
  Events ev;
  if (a.completions) {
    for (const std::string& p : sc.pieces) {
      std::string t;
      append_str(t, p);
      ev.push_back({chunk(a, t), true});
    }
    ev.push_back({chunk(a, R"("")", finish_reason(sc.stop)), false, true});
  } else {
    ev.push_back({chunk(a, R"({"role":"assistant","content":""})")});
    if (sc.thinking) {
      for (std::string_view p : kThinkingPieces) {
        ev.push_back({chunk(a, delta_field("reasoning_content", p)), true});
      }
    }
    if (sc.has_text()) {
      for (const std::string& p : sc.pieces) ev.push_back({chunk(a, delta_field("content", p)), true});
    }
    for (int i = 1; i <= sc.tool_calls; ++i) {
      // The first delta of a call names it (arguments ""); its arguments follow in 3 pieces.
      std::string idx = std::to_string(i - 1);
      std::string d = R"({"tool_calls":[{"index":)" + idx + R"(,"id":"call_)" +
                      std::to_string(i) + R"(","type":"function","function":{"name":)";
      append_str(d, tool_name(i));
      d += R"(,"arguments":""}}]})";
      ev.push_back({chunk(a, d), true});
      for (const std::string& piece : split3(tool_args(i))) {
        std::string p = R"({"tool_calls":[{"index":)" + idx + R"(,"function":{"arguments":)";
        append_str(p, piece);
        p += "}}]}";
        ev.push_back({chunk(a, p), true});
      }
    }
    ev.push_back({chunk(a, "{}", finish_reason(sc.stop)), false, true});
  }
  if (a.include_usage) {
    std::string u = "data: ";
    append_head(u, a, true);
    u += R"(,"choices":[],)";
    append_usage(u, a);
    u += "}\n\n";
    ev.push_back({std::move(u)});
  }
  ev.push_back({"data: [DONE]\n\n"});
  return ev;
}

std::string error_body(int status, std::string_view message) {
  return openai_error_body(message, "mock_error", "", "mock_" + std::to_string(status));
}

std::string stream_error() {
  return sse_data(R"({"error":{"message":"mock: error in the middle of the stream",)"
                  R"("type":"server_error","param":null,"code":"mock_stream_error"}})");
}

}  // namespace sluice::mock::openai
