// The `openai` provider: any OpenAI-compatible upstream (OpenAI, Azure OpenAI path style, vLLM,
// Ollama, llama.cpp server, Together, ...). Same protocol in and out, so the request body is
// forwarded as is, with only the model token spliced when the route rewrites it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "http/parse/http_head.h"
#include "providers/request.h"

namespace sluice::providers {

/// The upstream request as three body pieces around the (possibly rewritten) model token plus
/// a rendered head: written in one gathered write, never copied.
struct EncodedRequest {
  std::string head;
  std::string_view body_prefix;  // body[0, model_begin)
  std::string model_token;       // "\"upstream-model\"" (JSON string) or the original token
  std::string_view body_suffix;  // body[model_end, end)
  size_t body_size() const { return body_prefix.size() + model_token.size() + body_suffix.size(); }
};

/// True for client headers that are forwarded upstream, by allowlist: the few an
/// OpenAI-compatible upstream needs (Content-Type, Accept, User-Agent, Idempotency-Key,
/// OpenAI-Beta) plus the target's `forward_headers` (lower-case names or globs). Credentials,
/// framing and hop-by-hop headers (and any the client's Connection header nominates) never.
bool is_forwarded_header(std::string_view name, std::string_view connection_header,
                         const std::vector<std::string>& forward_headers = {});

/// Appends `segment` percent-encoded (RFC 3986 unreserved characters kept), so a client-chosen
/// name can never add path segments, a query, or bytes that break the request line.
void append_path_segment(std::string& out, std::string_view segment);

/// Renders the upstream request for `target`.
/// `model_override` (a fallback route's model name) replaces the client's model when the
/// target has no `model` of its own.
void encode_openai_request(const ParsedRequest& request, const config::TargetConfig& target,
                           const http::RequestHead& client_head, std::string_view request_id,
                           EncodedRequest& out, std::string_view model_override = {});

/// Appends the rest of an upstream request head after "POST <path>": the request line's
/// version, Host, Content-Length, the target's credentials in its provider's header
/// (Authorization: Bearer, Azure api-key, Anthropic x-api-key, Gemini x-goog-api-key), the
/// forwarded client headers (allowlist; anthropic-version/-beta to Anthropic targets only),
/// Content-Type, anthropic-version for Anthropic, x-request-id, the target's headers, and the
/// blank line.
void render_upstream_head(const config::TargetConfig& target, const http::RequestHead& client_head,
                          std::string_view request_id, size_t content_length, std::string& h);

}  // namespace sluice::providers
