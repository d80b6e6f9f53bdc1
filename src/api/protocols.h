// Which client protocol a request path speaks, and errors rendered in that protocol's shape.
#pragma once

#include <string_view>

#include "canonical/canonical.h"
#include "common/error.h"
#include "config/config.h"

namespace sluice::api {

/// The API a client path belongs to: /v1/messages... → anthropic; /v1beta/models/...:verb
/// (and /v1/models/...:verb) → gemini; everything else → openai.
canonical::Protocol client_protocol(std::string_view path);

/// The wire protocol of a provider's upstreams (demo: openai, as it answers like one).
canonical::Protocol protocol_of(config::ProviderKind provider);

/// The server's error renderer (http::ServerLimits::render_error): status and Retry-After as
/// to_response() decides them, the body in the path's protocol (OpenAI's shape unchanged,
/// including a passed-through upstream 4xx body).
ErrorResponse render_error(const Error& error, std::string_view path);

/// A Gemini path's model and method: "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
/// → {"gemini-2.0-flash", "streamGenerateContent"}. Empty model when the path is not one.
struct GeminiTarget {
  std::string_view model;
  std::string_view method;
};
GeminiTarget gemini_target(std::string_view path);

}  // namespace sluice::api
