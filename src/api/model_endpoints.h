// Endpoints answered from the config alone, without an upstream (model_endpoints.cc), and the
// token-count estimate.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string_view>

#include "canonical/canonical.h"
#include "http/server.h"
#include "routing/router.h"

namespace sluice::api {

/// GET /v1/models: every routed model id (globs excluded), OpenAI's list shape.
boost::asio::awaitable<void> serve_model_list(const routing::Router& router,
                                              http::Responder& responder);
/// GET /v1/models/{id}: the model when a route matches it, else 404 model_not_found.
boost::asio::awaitable<void> serve_model(const routing::Router& router, std::string_view id,
                                         http::Responder& responder);
/// A rough count of the input tokens of a count_tokens request body (Anthropic's, or Gemini's
/// with or without generateContentRequest): ~4 bytes per token of every string in its system
/// prompt, messages/contents and tools. For upstreams that cannot count.
int64_t estimate_count_tokens(std::string_view body);

}  // namespace sluice::api
