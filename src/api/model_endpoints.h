// Endpoints answered from the config alone, without an upstream (model_endpoints.cc).
#pragma once

#include <boost/asio/awaitable.hpp>
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
/// /v1/messages/count_tokens (Anthropic) and Gemini :countTokens (`model` from the path): an
/// estimate of the request's input tokens, marked by x-sluice-token-count: estimate.
boost::asio::awaitable<void> serve_count_tokens(const routing::Router& router,
                                                http::Request& request,
                                                http::Responder& responder,
                                                canonical::Protocol protocol,
                                                std::string_view model);

}  // namespace sluice::api
