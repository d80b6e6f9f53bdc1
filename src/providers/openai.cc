// OpenAI-compatible request encoding: path (plain or Azure style), auth, forwarded headers.
#include "providers/openai.h"

#include <algorithm>
#include <cctype>

#include "common/error.h"

namespace sluice::providers {

using http::iequals;

void append_path_segment(std::string& out, std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : segment) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                      (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    // "." and ".." alone would walk the path: encode dots when the segment is only dots.
    if (unreserved && !(c == '.' && segment.find_first_not_of('.') == std::string_view::npos)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
}

bool is_forwarded_header(std::string_view name, std::string_view connection_header,
                         const std::vector<std::string>& forward_headers) {
  // What an OpenAI-compatible upstream needs from the client; x-request-id is re-added with
  // the resolved id. Everything else stays at the gateway unless the target lists it.
  static constexpr std::string_view kAllowed[] = {"content-type", "accept", "user-agent",
                                                  "idempotency-key", "openai-beta"};
  bool allowed = false;
  for (std::string_view a : kAllowed) {
    if (iequals(name, a)) {
      allowed = true;
      break;
    }
  }
  if (!allowed && !forward_headers.empty()) {
    static constexpr std::string_view kNever[] = {
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
        "upgrade", "proxy-authorization", "proxy-authenticate", "host", "content-length",
        "authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie", "expect", "http2-settings"};
    for (std::string_view d : kNever) {
      if (iequals(name, d)) return false;
    }
    char lowered[128];
    if (name.size() > sizeof lowered) return false;
    for (size_t i = 0; i < name.size(); ++i) {
      lowered[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
    }
    std::string_view low(lowered, name.size());
    for (const auto& glob : forward_headers) {
      if (config::glob_match(glob, low)) {
        allowed = true;
        break;
      }
    }
  }
  if (!allowed) return false;
  if (!connection_header.empty() && http::has_token(connection_header, name)) return false;
  return true;
}

void encode_openai_request(const ParsedRequest& request, const config::TargetConfig& target,
                           const http::RequestHead& client_head, std::string_view request_id,
                           EncodedRequest& out, std::string_view model_override) {
  std::string_view body = request.body;
  out.body_prefix = body.substr(0, request.model_begin);
  out.body_suffix = body.substr(request.model_end);
  std::string_view upstream_model = !target.model.empty() ? std::string_view(target.model)
                                                           : model_override;
  if (upstream_model.empty()) {
    out.model_token.assign(body.substr(request.model_begin,
                                       request.model_end - request.model_begin));
  } else {
    out.model_token = "\"";
    append_json_escaped(out.model_token, upstream_model);
    out.model_token += '"';
  }
  std::string& h = out.head;
  h.clear();
  h.reserve(512);
  h += "POST ";
  if (target.api_style == config::ApiStyle::azure) {
    std::string_view deployment = upstream_model.empty() ? std::string_view(request.model)
                                                         : upstream_model;
    h += target.base_path;
    h += "/openai/deployments/";
    append_path_segment(h, deployment);
    h += operation_path(request.op);
    h += "?api-version=";
    h += target.api_version;
  } else {
    h += target.base_path;
    h += operation_path(request.op);
  }
  render_upstream_head(target, client_head, request_id, out.body_size(), h);
}

void render_upstream_head(const config::TargetConfig& target, const http::RequestHead& client_head,
                          std::string_view request_id, size_t content_length, std::string& h) {
  h += " HTTP/1.1\r\nHost: ";
  bool v6 = target.host.find(':') != std::string::npos;
  if (v6) h += '[';
  h += target.host;
  if (v6) h += ']';
  if ((target.tls && target.port != 443) || (!target.tls && target.port != 80)) {
    h += ':';
    h += std::to_string(target.port);
  }
  h += "\r\nContent-Length: ";
  h += std::to_string(content_length);
  if (!target.api_key.empty()) {
    if (target.provider == config::ProviderKind::anthropic) {
      h += "\r\nx-api-key: ";
    } else if (target.provider == config::ProviderKind::gemini) {
      h += "\r\nx-goog-api-key: ";
    } else if (target.api_style == config::ApiStyle::azure) {
      h += "\r\napi-key: ";
    } else {
      h += "\r\nAuthorization: Bearer ";
    }
    h += target.api_key;
  }
  h += "\r\n";
  // Every Connection header nominates hop-by-hop headers, not only the first.
  std::string connection;
  for (size_t i = 0; i < client_head.header_count; ++i) {
    if (iequals(client_head.headers[i].name, "connection")) {
      if (!connection.empty()) connection += ',';
      connection += client_head.headers[i].value;
    }
  }
  auto target_sets = [&](std::string_view name) {  // the target's own headers win (any case)
    return std::any_of(target.headers.begin(), target.headers.end(),
                       [&](const auto& kv) { return iequals(kv.first, name); });
  };
  const bool anthropic = target.provider == config::ProviderKind::anthropic;
  bool have_content_type = target_sets("content-type");
  bool have_version = target_sets("anthropic-version");
  for (size_t i = 0; i < client_head.header_count; ++i) {
    const http::Header& hd = client_head.headers[i];
    // Anthropic's version and beta headers go to Anthropic upstreams only.
    const bool anthropic_header =
        iequals(hd.name, "anthropic-version") || iequals(hd.name, "anthropic-beta");
    if (anthropic_header ? !anthropic || (!connection.empty() && http::has_token(connection, hd.name))
                         : !is_forwarded_header(hd.name, connection, target.forward_headers)) {
      continue;
    }
    if (target_sets(hd.name)) continue;
    if (iequals(hd.name, "content-type")) have_content_type = true;
    if (iequals(hd.name, "anthropic-version")) have_version = true;
    if (iequals(hd.name, "x-request-id")) continue;  // re-added below with the resolved id
    h += hd.name;
    h += ": ";
    h += hd.value;
    h += "\r\n";
  }
  if (!have_content_type) h += "Content-Type: application/json\r\n";
  if (anthropic && !have_version) h += "anthropic-version: 2023-06-01\r\n";
  h += "x-request-id: ";
  h += request_id;
  h += "\r\n";
  for (const auto& [name, value] : target.headers) {
    h += name;
    h += ": ";
    h += value;
    h += "\r\n";
  }
  h += "\r\n";
}

}  // namespace sluice::providers
