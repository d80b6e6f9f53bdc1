// The OpenAI-compatible API surface: endpoint dispatch, request decoding, routing, and the
// unary/streaming proxy to upstream targets (or the built-in demo provider).
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <unordered_map>

#include "http/server.h"
#include "providers/request.h"
#include "routing/router.h"
#include "upstream/client.h"

namespace sluice::api {

namespace asio = boost::asio;

class Gateway {
 public:
  /// `draining` is read by /readyz (503 while the process shuts down).
  Gateway(std::shared_ptr<const routing::Router> router, const std::atomic<bool>* draining);

  /// Serves one request on the calling worker; `pool` is that worker's upstream pool.
  asio::awaitable<void> handle(http::Request& request, http::Responder& responder,
                               upstream::Pool& pool);

 private:
  asio::awaitable<void> proxy(providers::Operation op, http::Request& request,
                              http::Responder& responder, upstream::Pool& pool);
  asio::awaitable<void> serve_demo(const providers::ParsedRequest& parsed,
                                   http::Responder& responder);
  asio::awaitable<void> list_models(http::Responder& responder);
  asio::awaitable<void> get_model(std::string_view id, http::Responder& responder);

  std::shared_ptr<const routing::Router> router_;
  const std::atomic<bool>* draining_;
  std::unordered_map<const config::TargetConfig*, upstream::Origin> origins_;
};

}  // namespace sluice::api
