// Gemini API (generativelanguage v1beta) GenerateContentResponse bodies and SSE chunks, written
// by hand after the official reference (models.generateContent, streamGenerateContent,
// countTokens, error model).
#include <boost/json.hpp>

#include "mock/formats.h"

namespace sluice::mock::gemini {

namespace json = boost::json;

namespace {

std::string_view finish_reason(Stop s) {
  switch (s) {
    case Stop::end: return "STOP";
    case Stop::max_tokens: return "MAX_TOKENS";
    case Stop::stop_sequence: return "STOP";
    case Stop::refusal: return "SAFETY";
    case Stop::tool: return "STOP";
  }
  return "STOP";
}

std::string thought_part() {
  std::string p = R"({"text":)";
  append_str(p, kThinkingText);
  p += R"(,"thought":true,"thoughtSignature":)";
  append_str(p, kSignature);
  p += '}';
  return p;
}

std::string text_part(std::string_view text) {
  std::string p = R"({"text":)";
  append_str(p, text);
  p += '}';
  return p;
}

std::string call_part(int i) {
  std::string p = R"({"functionCall":{"name":)";
  append_str(p, tool_name(i));
  p += R"(,"args":)";
  p += tool_args(i);
  p += "}}";
  return p;
}

// promptTokenCount includes the cached tokens (cachedContentTokenCount); Gemini has no
// cache-write count, so x-mock-cache-creation is not reported.
void append_usage(std::string& out, const Answer& a) {
  const Scenario& sc = a.sc;
  int64_t prompt = a.prompt_tokens + sc.cache_read;
  out += R"("usageMetadata":{"promptTokenCount":)";
  out += std::to_string(prompt);
  out += R"(,"candidatesTokenCount":)";
  out += std::to_string(sc.tokens);
  out += R"(,"totalTokenCount":)";
  out += std::to_string(prompt + sc.output_tokens());
  if (sc.cache_read > 0) {
    out += R"(,"cachedContentTokenCount":)";
    out += std::to_string(sc.cache_read);
  }
  if (sc.thinking) {
    out += R"(,"thoughtsTokenCount":)";
    out += std::to_string(sc.thinking_tokens());
  }
  out += '}';
}

// One GenerateContentResponse with `parts` (JSON, comma-separated); `last` adds finishReason
// and usageMetadata.
std::string response(const Answer& a, std::string_view parts, bool last) {
  std::string out = R"({"candidates":[{"content":{"parts":[)";
  out += parts;
  out += R"(],"role":"model"})";
  if (last) {
    out += R"(,"finishReason":")";
    out += finish_reason(a.sc.stop);
    out += '"';
  }
  out += R"(,"index":0}],)";
  if (last) {
    append_usage(out, a);
    out += ',';
  }
  out += R"("modelVersion":)";
  append_str(out, a.model);
  out += R"(,"responseId":)";
  append_str(out, a.id);
  out += '}';
  return out;
}

size_t text_bytes(const json::value& v) {
  size_t n = 0;
  if (const json::object* o = v.if_object()) {
    for (const auto& [k, x] : *o) n += k == "text" && x.is_string() ? x.get_string().size() : text_bytes(x);
  } else if (const json::array* arr = v.if_array()) {
    for (const json::value& x : *arr) n += text_bytes(x);
  }
  return n;
}

}  // namespace

bool parse_request(std::string_view body, bool count, std::string& error) {
  json::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    error = "Invalid JSON payload received.";
    return false;
  }
  const json::object& o = v.get_object();
  const json::value* contents = o.if_contains("contents");
  if (count && contents == nullptr) {
    if (const json::value* g = o.if_contains("generateContentRequest"); g && g->is_object()) {
      contents = g->get_object().if_contains("contents");
    }
  }
  if (contents == nullptr || !contents->is_array() || contents->get_array().empty()) {
    error = "* GenerateContentRequest.contents: contents is not specified";
    return false;
  }
  return true;
}

std::string unary(const Answer& a) {
  const Scenario& sc = a.sc;
  std::string parts;
  auto add = [&](const std::string& p) {
    if (!parts.empty()) parts += ',';
    parts += p;
  };
  if (sc.thinking) add(thought_part());
  if (sc.has_text()) add(text_part(sc.text));
  for (int i = 1; i <= sc.tool_calls; ++i) add(call_part(i));
  return response(a, parts, true);
}

Events stream(const Answer& a) {
  const Scenario& sc = a.sc;
  std::vector<std::string> parts;  // one part per chunk
  if (sc.thinking) parts.push_back(thought_part());
  if (sc.has_text()) {
    for (const std::string& p : sc.pieces) parts.push_back(text_part(p));
  }
  for (int i = 1; i <= sc.tool_calls; ++i) parts.push_back(call_part(i));
  // An answer with no content at all (x-mock-tokens: 0) still ends with one chunk.
  if (parts.empty()) parts.push_back(text_part(""));
  Events ev;
  for (size_t i = 0; i < parts.size(); ++i) {
    bool last = i + 1 == parts.size();
    ev.push_back({sse_data(response(a, parts[i], last)), true, last});
  }
  return ev;
}

std::string json_array(const Events& events) {
  std::string out = "[";
  for (const Event& e : events) {
    std::string_view b = e.bytes;
    if (!b.starts_with("data: ") || !b.ends_with("\n\n")) continue;
    if (out.size() > 1) out += ",\n";
    out += b.substr(6, b.size() - 8);
  }
  out += "]";
  return out;
}

std::string count_tokens(std::string_view body) {
  size_t bytes = 0;
  json::error_code ec;
  json::value v = json::parse(body, ec);
  if (!ec && v.is_object()) {
    const json::object* o = &v.get_object();
    if (const json::value* g = o->if_contains("generateContentRequest"); g && g->is_object()) {
      o = &g->get_object();
    }
    if (const json::value* s = o->if_contains("systemInstruction")) bytes += text_bytes(*s);
    if (const json::value* c = o->if_contains("contents")) bytes += text_bytes(*c);
  }
  return R"({"totalTokens":)" + std::to_string(estimate_tokens(bytes)) + "}";
}

std::string error_body(int status, std::string_view message) {
  std::string_view s = "UNKNOWN";
  switch (status) {
    case 400: s = "INVALID_ARGUMENT"; break;
    case 401: s = "UNAUTHENTICATED"; break;
    case 403: s = "PERMISSION_DENIED"; break;
    case 404: s = "NOT_FOUND"; break;
    case 409: s = "ABORTED"; break;
    case 429: s = "RESOURCE_EXHAUSTED"; break;
    case 499: s = "CANCELLED"; break;
    case 500: s = "INTERNAL"; break;
    case 501: s = "UNIMPLEMENTED"; break;
    case 503: s = "UNAVAILABLE"; break;
    case 504: s = "DEADLINE_EXCEEDED"; break;
    default: break;
  }
  std::string out = R"({"error":{"code":)" + std::to_string(status) + R"(,"message":)";
  append_str(out, message);
  out += R"(,"status":")";
  out += s;
  out += "\"}}";
  return out;
}

std::string stream_error() {
  return sse_data(R"({"error":{"code":503,"message":"The model is overloaded. Please try again )"
                  R"(later.","status":"UNAVAILABLE"}})");
}

}  // namespace sluice::mock::gemini
