// The API surface of one config: the endpoint table (path → handler), listener checks,
// authentication on the request head, and for the model endpoints the pipeline: decode → route
// → stages (governance) → Dispatcher (attempts over targets and fallbacks). It owns the
// Dispatcher, the AdminApi and the stage table.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "api/admin_api.h"
#include "api/cache_stage.h"
#include "api/dispatcher.h"
#include "api/governance.h"
#include "api/local_call.h"
#include "api/request_context.h"
#include "api/files.h"
#include "api/responses.h"
#include "api/sessions.h"
#include "api/stage.h"
#include "api/telemetry.h"
#include "canonical/canonical.h"
#include "http/server.h"
#include "providers/request.h"
#include "routing/router.h"

namespace sluice::api {

/// The listener a request arrived on. `api` (server.listen) serves the OpenAI API, /healthz and
/// /readyz, plus the operations endpoints only with admin.on_public_listener: true; `admin`
/// (admin.listen) serves /metrics, /admin/*, /debug/pprof/*, /healthz and /readyz only.
enum class Listener { api, admin };

class Gateway : public std::enable_shared_from_this<Gateway>, public LocalCaller {
 public:
  /// `draining` is read by /readyz (503 while the process shuts down). `access_log` may be
  /// null (off); it is shared with the next Gateway when a reload leaves it unchanged.
  /// `state` (may be null: the Responses and Conversations endpoints then answer 503) is the
  /// store shared with the next Gateway when a reload leaves `state` unchanged.
  Gateway(std::shared_ptr<const routing::Router> router, const std::atomic<bool>* draining,
          std::shared_ptr<Governance> governance,
          std::shared_ptr<observe::AccessLog> access_log = nullptr,
          std::shared_ptr<store::StateService> state = nullptr,
          std::shared_ptr<ResponseCache> cache = nullptr);

  /// Serves one request on the calling worker (`worker` lends its upstream pool). `keep` is
  /// held for the request's lifetime (the owner of this Gateway, across a reload). Paths the
  /// `listener` does not serve answer 404 "Unknown request URL", as unknown paths do.
  asio::awaitable<void> handle(http::Request& request, http::Responder& responder,
                               WorkerContext& worker, std::shared_ptr<void> keep = nullptr,
                               Listener listener = Listener::api);

  /// A request to this gateway from itself (LocalCaller): through handle(), as `who`, its
  /// answer captured.
  asio::awaitable<LocalAnswer> call(const std::string& path, const std::string& body,
                                    const Identity& who, WorkerContext& worker,
                                    const std::string& purpose) override;
  std::shared_ptr<void> hold() override { return weak_from_this().lock(); }

  /// The server's HeadCheck: authenticates API requests on their head, before the body is
  /// read. The Identity goes to request.head_state (std::shared_ptr<Identity>) for handle().
  std::optional<Error> check_head(http::Request& request);

  /// Starts active health checks (targets with health.enabled) on `io`, using `pool`.
  /// Call once, on one worker; the checks run until the io_context stops or retire().
  /// The Gateway must be owned by a shared_ptr (the checks keep it alive).
  void start_health_checks(asio::io_context& io, upstream::Pool& pool);

  /// A newer config replaced this one: background work (health checks) stops; requests in
  /// flight finish on it.
  void retire() { retired_.store(true); }
  bool retired() const { return retired_.load(std::memory_order_relaxed); }

  /// Registers the scrape-time collector of per-target state (attempts, retries, breakers,
  /// health, in-flight). Call once the Gateway is owned by a shared_ptr; a later Gateway's
  /// call replaces it.
  void register_collectors();

  /// Runtime state for admin views and tests (stable for the Gateway's lifetime).
  const std::vector<std::unique_ptr<RouteRuntime>>& routes() const {
    return dispatcher_.routes();
  }

 private:
  /// The model endpoints: decode, route, run the stages, dispatch. With `prepared` (a
  /// Responses request, decoded with its history), its canonical request is dispatched and
  /// the answer goes to `sink` instead of being decoded from the body.
  asio::awaitable<void> proxy(providers::Operation op, http::Request& request,
                              http::Responder& responder, WorkerContext& worker,
                              const Identity& who, Trace& trace,
                              canonical::Protocol ingress = canonical::Protocol::openai,
                              canonical::Request* prepared = nullptr,
                              ResponseSink* sink = nullptr, size_t replayed = 0);
  /// x-sluice-session: the session's memories and turns packed into the request, its answer
  /// recorded as a turn (`turn` holds the sink). False when an error was sent.
  asio::awaitable<bool> attach_session(RequestContext& ctx, const RouteRuntime& route,
                                       std::unique_ptr<SessionTurn>& turn);
  /// POST /v1/responses: the history loaded, then proxy() with a ResponsesSink.
  asio::awaitable<void> create_response(http::Request& request, http::Responder& responder,
                                        WorkerContext& worker, const Identity& who,
                                        Trace& trace);

  std::shared_ptr<const routing::Router> router_;
  const std::atomic<bool>* draining_;
  std::shared_ptr<Governance> governance_;
  Telemetry telemetry_;
  Dispatcher dispatcher_;  // after telemetry_, which it uses
  AdminApi admin_;         // after dispatcher_, which it reads
  Stages stages_;          // in the order they run (the table in the constructor)
  std::unique_ptr<ResponsesApi> responses_;  // null without a state store
  std::unique_ptr<FilesApi> files_;          // null without a state store
  std::unique_ptr<SessionsApi> sessions_;    // null without a state store
  std::shared_ptr<ResponseCache> cache_;     // shared by the Gateways of one `cache` config
  bool caching_ = false;                     // some route caches (and the stage runs)
  std::atomic<bool> retired_{false};
};

}  // namespace sluice::api
