// Token counting across protocols (codec.h "token counting"): a client's count request decoded
// like its messages request, re-encoded for an upstream that counts (Anthropic, Gemini), and
// the upstream's number put back in the client's shape. The fields a count request may carry
// are narrower than a messages request's: the encoders' output is filtered to them.
#include "canonical/codec.h"
#include "canonical/json.h"

namespace sluice::canonical {

namespace {

// What Anthropic's count_tokens accepts (it refuses max_tokens, stream, sampling parameters:
// "Extra inputs are not permitted").
constexpr std::string_view kAnthropicCountFields[] = {"model", "messages", "system", "tools",
                                                       "tool_choice", "thinking"};
// What a Gemini generateContentRequest inside countTokens keeps (sampling settings do not
// change the count).
constexpr std::string_view kGeminiCountFields[] = {"contents", "systemInstruction", "tools",
                                                   "toolConfig"};

}  // namespace

bool counts_tokens(Protocol p) { return p == Protocol::anthropic || p == Protocol::gemini; }

Result<Request> decode_count_request(Protocol p, std::string_view body,
                                     const FrontendContext& ctx) {
  FrontendContext fc = ctx;
  fc.count = true;
  fc.stream = false;
  if (p != Protocol::gemini) return decode_request(p, body, fc);
  // Gemini: {"contents":[...]} or {"generateContentRequest":{...}} (the whole request, when
  // system instruction and tools should count too).
  auto parsed = parse_json(body);
  if (!parsed) return parsed.error();
  const json::object* o = parsed->if_object();
  if (o == nullptr) return invalid("Invalid JSON payload received: the body must be an object");
  if (const json::object* inner = obj(*o, "generateContentRequest")) {
    if (field(*o, "contents")) {
      return invalid("Only one of contents and generateContentRequest may be set", "contents");
    }
    return decode_request(p, to_text(*inner), fc);
  }
  return decode_request(p, body, fc);
}

std::string encode_count_request(Protocol p, const Request& req, std::string_view upstream_model) {
  Request r = req;
  r.stream = false;
  json::value full = from_text(encode_request(p, r, upstream_model));
  json::object out;
  if (const json::object* o = full.if_object()) {
    if (p == Protocol::gemini) {
      json::object inner;
      inner["model"] = "models/" + std::string(upstream_model);
      for (std::string_view key : kGeminiCountFields) {
        if (const json::value* v = field(*o, key)) inner[key] = *v;
      }
      out["generateContentRequest"] = std::move(inner);
    } else {
      for (std::string_view key : kAnthropicCountFields) {
        if (const json::value* v = field(*o, key)) out[key] = *v;
      }
    }
  }
  return to_text(out);
}

std::string count_path(Protocol p, std::string_view upstream_model) {
  if (p == Protocol::gemini) {
    std::string path = "/models/";
    path += upstream_model;
    path += ":countTokens";
    return path;
  }
  return "/v1/messages/count_tokens";
}

Result<int64_t> decode_count(Protocol p, std::string_view body) {
  json::error_code ec;
  json::value v = json::parse(body, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  const std::string_view key = p == Protocol::gemini ? "totalTokens" : "input_tokens";
  std::optional<int64_t> n = o ? integer(*o, key) : std::nullopt;
  if (!n && o && p == Protocol::gemini && !field(*o, key) && !field(*o, "error")) {
    n = 0;  // proto3 JSON leaves zero counts out
  }
  if (!n || *n < 0) {
    return make_error(Errc::upstream_protocol,
                      "a token count answer without a non-negative " + std::string(key));
  }
  return *n;
}

std::string encode_count(Protocol p, int64_t tokens) {
  return (p == Protocol::gemini ? R"({"totalTokens":)" : R"({"input_tokens":)") +
         std::to_string(tokens) + "}";
}

}  // namespace sluice::canonical
