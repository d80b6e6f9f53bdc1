// Small pure helpers of the proxy path, shared by gateway.cc and proxy.cc and reachable from
// unit tests: the stream error event, upstream error classification. (SSE event boundaries:
// http/parse/sse_scan.h.)
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "http/parse/http_head.h"

namespace sluice::api {

inline constexpr size_t kMaxUpstreamBody = 64 * 1024 * 1024;
inline constexpr size_t kMaxUpstreamErrorBody = 1024 * 1024;
inline constexpr size_t kMaxSseEventBytes = 8 * 1024 * 1024;  // one upstream SSE event
inline constexpr std::string_view kStreamHeaders =
    "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n";

int64_t unix_now();

/// `data: {"error":{...}}` framed as its own event (leading newline ends any open line).
std::string stream_error_event(std::string_view message, std::string_view code);

/// {"error": ...} near the start of a JSON body.
bool looks_like_openai_error(std::string_view body);

/// How long the upstream asks us to wait: Retry-After (seconds or HTTP-date) or OpenAI's
/// x-ratelimit-reset-requests / -tokens, whichever is longest. nullopt if none.
std::optional<std::chrono::milliseconds> upstream_retry_after(const http::ResponseHead& head);

/// Upstream error status → Error; 4xx bodies in OpenAI's shape are kept for pass-through.
/// 401/403/407 (the gateway's credentials refused) never carry the upstream's body and are
/// answered 502. `label` names the upstream in the message (the target's name, or its origin
/// when `expose` = errors.expose_upstream, which also quotes 5xx bodies).
Error upstream_status_error(int status, std::string_view body, std::string_view content_type,
                            std::optional<std::chrono::milliseconds> retry_after,
                            const std::string& label, bool expose = false);

/// True for an upstream 400 that says the prompt is longer than the model's context.
bool is_context_length_error(int status, std::string_view body);

}  // namespace sluice::api
