// The operations API (admin_api.cc, admin_keys.cc): virtual keys, usage, upstream state and the
// metrics scrape, each behind the admin token. The gateway's endpoint table checks the listener
// and the method and routes here.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>

#include "api/cache_stage.h"
#include "api/dispatcher.h"
#include "api/governance.h"
#include "http/server.h"
#include "routing/router.h"

namespace sluice::api {

class AdminApi {
 public:
  /// `dispatcher` (whose target state /admin/upstreams shows) must outlive the AdminApi.
  /// `governance` may be null (no keys, no usage: those endpoints answer 503).
  AdminApi(std::shared_ptr<const routing::Router> router, std::shared_ptr<Governance> governance,
           const Dispatcher& dispatcher)
      : router_(std::move(router)), governance_(std::move(governance)), dispatcher_(dispatcher) {}

  /// Checks the admin token; answers 404 (admin disabled) or 401 itself when it fails.
  boost::asio::awaitable<bool> allowed(http::Request& request, http::Responder& responder);
  /// GET/POST /admin/keys, DELETE /admin/keys/{id} (admin_keys.cc).
  boost::asio::awaitable<void> keys(http::Request& request, http::Responder& responder);
  /// GET /admin/usage?key=&from=&to=
  boost::asio::awaitable<void> usage(http::Request& request, http::Responder& responder);
  /// GET /admin/upstreams: every route's targets (breaker, health, load, attempts).
  boost::asio::awaitable<void> upstreams(http::Request& request, http::Responder& responder);
  /// GET /admin/cache: the response cache's sizes and hit ratios; DELETE /admin/cache with
  /// ?key= (one entry), ?model= (a route's pattern), ?tenant= or ?api_key= (an owner's), or
  /// ?all=1 (L1 only; L2 entries then expire by their TTL).
  boost::asio::awaitable<void> cache(http::Request& request, http::Responder& responder,
                                     ResponseCache* cache);
  /// The Prometheus scrape (metrics.path; the admin token when metrics.require_admin_token).
  boost::asio::awaitable<void> metrics(http::Request& request, http::Responder& responder);

 private:
  std::shared_ptr<const routing::Router> router_;
  std::shared_ptr<Governance> governance_;
  const Dispatcher& dispatcher_;
};

}  // namespace sluice::api
