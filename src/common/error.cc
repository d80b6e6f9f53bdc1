// Error → HTTP status and OpenAI error body; JSON string escaping shared by every writer.
#include "common/error.h"

#include <cstdio>

namespace sluice {

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  // Runs of bytes that need no escape are appended whole (text is mostly such runs).
  const char* run = s.data();
  const char* const end = s.data() + s.size();
  for (const char* p = run; p != end; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(run, static_cast<size_t>(p - run));
    run = p + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: {
        const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out.append(u, sizeof u);
      }
    }
  }
  out.append(run, static_cast<size_t>(end - run));
}

std::string openai_error_body(std::string_view message, std::string_view type,
                              std::string_view param, std::string_view code) {
  std::string out;
  out.reserve(96 + message.size());
  out += R"({"error":{"message":")";
  append_json_escaped(out, message);
  out += R"(","type":")";
  append_json_escaped(out, type);
  out += R"(","param":)";
  if (param.empty()) {
    out += "null";
  } else {
    out += '"';
    append_json_escaped(out, param);
    out += '"';
  }
  out += R"(,"code":)";
  if (code.empty()) {
    out += "null";
  } else {
    out += '"';
    append_json_escaped(out, code);
    out += '"';
  }
  out += "}}";
  return out;
}

namespace {

struct Shape {
  int status;
  const char* type;
  const char* code;
};

Shape shape_of(const Error& e) {
  switch (e.code) {
    case Errc::bad_request: return {400, "invalid_request_error", ""};
    case Errc::unauthorized: return {401, "authentication_error", "invalid_api_key"};
    case Errc::forbidden: return {403, "permission_error", "forbidden"};
    case Errc::not_found: return {404, "invalid_request_error", "not_found"};
    case Errc::model_not_found: return {404, "invalid_request_error", "model_not_found"};
    case Errc::method_not_allowed: return {405, "invalid_request_error", "method_not_allowed"};
    case Errc::payload_too_large: return {413, "invalid_request_error", "request_too_large"};
    case Errc::headers_too_large:
      return {431, "invalid_request_error", "request_header_fields_too_large"};
    case Errc::request_timeout: return {408, "invalid_request_error", "request_timeout"};
    case Errc::rate_limited: return {429, "rate_limit_error", "rate_limit_exceeded"};
    case Errc::quota_exceeded: return {429, "insufficient_quota", "insufficient_quota"};
    case Errc::upstream_connect: return {502, "upstream_error", "upstream_unreachable"};
    case Errc::upstream_timeout: return {504, "upstream_error", "upstream_timeout"};
    case Errc::upstream_status:
      if (e.upstream_status == 401 || e.upstream_status == 403 || e.upstream_status == 407) {
        return {502, "upstream_error", "upstream_auth_failed"};
      }
      if (e.upstream_status >= 400 && e.upstream_status < 500) {
        return {e.upstream_status, "upstream_error", "upstream_error"};
      }
      return {502, "upstream_error", "upstream_error"};
    case Errc::upstream_protocol: return {502, "upstream_error", "upstream_protocol_error"};
    case Errc::unavailable: return {503, "service_unavailable", "service_unavailable"};
    case Errc::internal: return {500, "server_error", "internal_error"};
  }
  return {500, "server_error", "internal_error"};
}

}  // namespace

int http_status(const Error& error) { return shape_of(error).status; }

std::string_view error_kind(const Error& error) {
  if (!error.code_override.empty()) return error.code_override;
  Shape s = shape_of(error);
  return *s.code ? std::string_view(s.code) : std::string_view("invalid_request");
}

ErrorResponse to_response(const Error& error) {
  Shape s = shape_of(error);
  ErrorResponse r;
  r.status = s.status;
  // An upstream 4xx in OpenAI's own shape is passed through unchanged: the client's SDK then
  // reports exactly what the provider said. Anything else is wrapped in our shape.
  if (error.code == Errc::upstream_status && !error.upstream_body.empty() && s.status < 500) {
    r.body = error.upstream_body;
  } else {
    r.body = openai_error_body(error.message, s.type, error.param,
                               error.code_override.empty() ? std::string_view(s.code)
                                                           : error.code_override);
  }
  if (error.retry_after) {
    auto secs = (error.retry_after->count() + 999) / 1000;
    r.retry_after_seconds = static_cast<int>(secs < 1 ? 1 : secs);
  }
  return r;
}

}  // namespace sluice
