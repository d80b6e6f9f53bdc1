// Gateway: the endpoint table, listener checks, authentication on the head, and the pipeline of
// the model endpoints (decode → route → stages → dispatcher).
#include "api/gateway.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "api/governance_stages.h"
#include "api/model_endpoints.h"
#include "api/protocols.h"
#include "api/stream_check.h"
#include "observe/profiler.h"
#include "providers/openai.h"

namespace sluice::api {

using providers::Operation;

namespace {

// Strips an optional "/v1" so both base URL styles (…/v1 and bare) reach the same endpoints.
std::string_view api_path(std::string_view path) {
  if (path.size() >= 3 && path.substr(0, 3) == "/v1" && (path.size() == 3 || path[3] == '/')) {
    return path.substr(3);
  }
  return path;
}

// The metrics label of a request: `api` is the path without its optional "/v1".
Endpoint endpoint_of(std::string_view api, std::string_view path,
                     const config::MetricsConfig& metrics) {
  if (api == "/chat/completions") return Endpoint::chat;
  if (api == "/completions") return Endpoint::completions;
  if (api == "/embeddings") return Endpoint::embeddings;
  if (api == "/messages") return Endpoint::messages;
  if (api == "/messages/count_tokens") return Endpoint::count_tokens;
  if (api == "/responses" || api.starts_with("/responses/")) return Endpoint::responses;
  if (api == "/conversations" || api.starts_with("/conversations/")) return Endpoint::conversations;
  if (api == "/sessions" || api.starts_with("/sessions/")) return Endpoint::sessions;
  if (api == "/files" || api.starts_with("/files/")) return Endpoint::files;
  if (!gemini_target(path).model.empty()) return Endpoint::gemini_generate;
  if (api == "/models" || api.starts_with("/models/")) return Endpoint::models;
  if (path.starts_with("/admin/")) return Endpoint::admin;
  if (path.starts_with("/debug/pprof/")) return Endpoint::debug;
  if (metrics.enabled && path == metrics.path) return Endpoint::metrics;
  if (path == "/healthz" || path == "/readyz") return Endpoint::health;
  return Endpoint::other;
}

// The operations endpoints: served on admin.listen, and on the public listener only with
// admin.on_public_listener: true.
bool operations_endpoint(Endpoint e) {
  return e == Endpoint::admin || e == Endpoint::debug || e == Endpoint::metrics;
}

}  // namespace

Gateway::Gateway(std::shared_ptr<const routing::Router> router, const std::atomic<bool>* draining,
                 std::shared_ptr<Governance> governance,
                 std::shared_ptr<observe::AccessLog> access_log,
                 std::shared_ptr<store::StateService> state,
                 std::shared_ptr<ResponseCache> cache)
    : router_(std::move(router)),
      draining_(draining),
      governance_(std::move(governance)),
      telemetry_(router_->config(), std::move(access_log)),
      dispatcher_(router_, telemetry_),
      admin_(router_, governance_, dispatcher_),
      cache_(std::move(cache)) {
  // The stages, in the configured order (pipeline.stages; on_finish in reverse). By default:
  // the model permission, the budget (before anything is reserved), the rate limits (which
  // reserve tokens), the usage record, the response cache. Authentication ran earlier, on the
  // head. A stage that cannot change anything under this config (no auth, no limits, no route
  // that caches, ...) is left out.
  const config::Config& cfg = router_->config();
  const bool caching = cache_ != nullptr && std::any_of(cfg.routes.begin(), cfg.routes.end(), [](const auto& r) {
    return r.cache.enabled;
  });
  {
    for (const std::string& name : router_->config().pipeline.stages) {
      if (name == "cache") {
        if (caching) stages_.push_back(std::make_unique<CacheStage>(cache_, cfg.metrics.validate_streams, *this));
        caching_ = caching;
        continue;
      }
      if (!governance_) continue;
      const Governance& g = *governance_;
      if (name == "authorize_model") {
        if (g.restricts_models()) stages_.push_back(std::make_unique<AuthorizeModelStage>(governance_));
      } else if (name == "budget") {
        if (g.has_budgets()) stages_.push_back(std::make_unique<BudgetStage>(governance_));
      } else if (name == "rate_limit") {
        if (g.has_rate_limits()) stages_.push_back(std::make_unique<AdmitStage>(governance_));
      } else if (name == "usage") {
        if (g.accounts_usage()) stages_.push_back(std::make_unique<UsageStage>(governance_));
      } else {
        throw std::invalid_argument("pipeline.stages: no stage named '" + name + "'");
      }
    }
  }
  if (router_->config().metrics.validate_streams) register_stream_check_metrics();
  if (state) {
    const config::Config& c = router_->config();
    sessions_ = std::make_unique<SessionsApi>(state, c.state, c.metrics.validate_streams, *this);
    files_ = std::make_unique<FilesApi>(state, c.state);
    responses_ = std::make_unique<ResponsesApi>(std::move(state), c.state);
  }
}

namespace {

// `path` without its "/v1" (api_path): the OpenAI, Anthropic and Gemini API surfaces.
bool is_api_path(std::string_view path) {
  return path == "/chat/completions" || path == "/completions" || path == "/embeddings" ||
         path == "/models" || path.starts_with("/models/") || path == "/messages" ||
         path.starts_with("/messages/") || path.starts_with("/v1beta/") ||
         path == "/responses" || path.starts_with("/responses/") || path == "/conversations" ||
         path.starts_with("/conversations/") || path == "/sessions" ||
         path.starts_with("/sessions/") || path == "/files" || path.starts_with("/files/");
}

}  // namespace

std::optional<Error> Gateway::check_head(http::Request& request) {
  if (!governance_ || !governance_->auth_enabled() || !is_api_path(api_path(request.path()))) {
    return std::nullopt;
  }
  auto t0 = http::Timing::Clock::now();
  auto id = governance_->authenticate(request);
  http::Timing::add_since(request.timing->auth_ns, t0);
  if (!id) return std::move(id.error());
  request.head_state = std::make_shared<Identity>(std::move(id.value()));
  return std::nullopt;
}

namespace {

// Sends the error `build()` makes, in a coroutine of its own: an Error declared in
// Gateway::handle or Gateway::proxy (or the temporaries of its message, in a full-expression
// with a co_await) would take slots in their frames, which every held stream keeps.
template <class Build>
asio::awaitable<void> send_built_error(http::Responder& responder, Build build) {
  const Error error = build();
  co_await responder.send_error(error);
}

}  // namespace

asio::awaitable<void> Gateway::handle(http::Request& request, http::Responder& responder,
                                      WorkerContext& worker, std::shared_ptr<void> keep,
                                      Listener listener) {
  std::string_view method = request.method();
  std::string_view path = api_path(request.path());
  // Whatever way this coroutine ends, the request is counted and logged once (the trace and
  // the identity it points to are declared first, so they outlive the Finish).
  Trace trace;
  Identity who;
  struct Finish {
    Telemetry& telemetry;
    http::Request& request;
    http::Responder& responder;
    Trace& trace;
    observe::GaugeHold active;
    ~Finish() { telemetry.finish(request, responder, trace); }
  } finish{telemetry_, request, responder, trace, {}};
  if (telemetry_.metrics_on()) finish.active.hold(telemetry_.active_requests);
  trace.endpoint = endpoint_of(path, request.path(), router_->config().metrics);

  auto method_not_allowed = [&](std::string_view allow) -> asio::awaitable<void> {
    ErrorResponse r = to_response(make_error(
        Errc::method_not_allowed,
        "Method " + std::string(method) + " is not allowed on " + std::string(request.path()) +
            "; use " + std::string(allow) + "."));
    const std::string allow_header = "Allow: " + std::string(allow) + "\r\n";
    co_await responder.send(r.status, "application/json", r.body, allow_header);
  };
  bool api_path_hit = is_api_path(path);
  // Each listener answers only its own endpoints; the rest look like unknown URLs (no hint
  // that an operations endpoint exists elsewhere).
  if (listener == Listener::admin ? api_path_hit || trace.endpoint == Endpoint::other
                                  : operations_endpoint(trace.endpoint) &&
                                        !router_->config().admin.on_public_listener) {
    trace.endpoint = Endpoint::other;
    co_await send_built_error(responder, [&] {
      return make_error(Errc::not_found, "Unknown request URL: " + std::string(method) + " " +
                                             std::string(request.path()) + ".");
    });
    co_return;
  }
  if (api_path_hit) {
    request.timing->emit = router_->config().metrics.server_timing;
    if (request.head_error) {  // check_head refused it; the body was not read
      co_await responder.send_error(*request.head_error);
      co_return;
    }
    if (request.head_state) {  // authenticated on the head by check_head
      who = std::move(*static_cast<Identity*>(request.head_state.get()));
      trace.who = &who;
    } else if (governance_ && governance_->auth_enabled()) {
      auto t0 = http::Timing::Clock::now();
      auto id = governance_->authenticate(request);
      http::Timing::add_since(request.timing->auth_ns, t0);
      if (!id) {
        co_await responder.send_error(id.error());
        co_return;
      }
      who = std::move(id.value());
      trace.who = &who;
    }
  }
  Operation op;
  canonical::Protocol ingress = canonical::Protocol::openai;
  if (path == "/chat/completions") {
    op = Operation::chat;
  } else if (path == "/messages") {
    op = Operation::chat;
    ingress = canonical::Protocol::anthropic;
  } else if (path == "/messages/count_tokens") {
    op = Operation::count_tokens;
    ingress = canonical::Protocol::anthropic;
  } else if (GeminiTarget g = gemini_target(request.path()); !g.model.empty()) {
    if (method != "POST") co_return co_await method_not_allowed("POST");
    if (g.method != "generateContent" && g.method != "streamGenerateContent" &&
        g.method != "countTokens") {
      co_await send_built_error(responder, [&] {
        return make_error(Errc::not_found, "Unknown Gemini method '" + std::string(g.method) + "'.");
      });
      co_return;
    }
    co_return co_await proxy(g.method == "countTokens" ? Operation::count_tokens : Operation::chat,
                             request, responder, worker, who, trace, canonical::Protocol::gemini);
  } else if (trace.endpoint == Endpoint::responses || trace.endpoint == Endpoint::conversations ||
             trace.endpoint == Endpoint::sessions || trace.endpoint == Endpoint::files) {
    if (!responses_) {
      co_await send_built_error(responder, [] {
        return make_error(Errc::unavailable, "No state store is configured for this gateway.");
      });
      co_return;
    }
    if (path == "/responses") {
      if (method != "POST") co_return co_await method_not_allowed("POST");
      co_return co_await create_response(request, responder, worker, who, trace);
    }
    const std::string owner = state_owner(who);
    if (trace.endpoint == Endpoint::files) co_return co_await files_->serve(request, responder, path, owner);
    if (trace.endpoint == Endpoint::sessions) {
      co_return co_await sessions_->serve(request, responder, path, owner, who, worker);
    }
    if (trace.endpoint == Endpoint::responses) {
      co_return co_await responses_->serve_response(request, responder, path, owner);
    }
    co_return co_await responses_->serve_conversations(request, responder, path, owner);
  } else if (path == "/completions") {
    op = Operation::completions;
  } else if (path == "/embeddings") {
    op = Operation::embeddings;
  } else if (path == "/models" || path.starts_with("/models/")) {
    if (method != "GET" && method != "HEAD") co_return co_await method_not_allowed("GET");
    if (path == "/models") co_return co_await serve_model_list(*router_, responder);
    co_return co_await serve_model(*router_, path.substr(8), responder);
  } else if (request.path() == "/admin/keys" || request.path().starts_with("/admin/keys/")) {
    co_return co_await admin_.keys(request, responder);
  } else if (request.path() == "/admin/usage") {
    if (method != "GET" && method != "HEAD") co_return co_await method_not_allowed("GET");
    co_return co_await admin_.usage(request, responder);
  } else if (request.path() == "/admin/upstreams") {
    if (method != "GET" && method != "HEAD") co_return co_await method_not_allowed("GET");
    co_return co_await admin_.upstreams(request, responder);
  } else if (request.path() == "/admin/cache") {
    co_return co_await admin_.cache(request, responder, caching_ ? cache_.get() : nullptr);
  } else if (request.path().starts_with("/debug/pprof/")) {
    if (!co_await admin_.allowed(request, responder)) co_return;
    if (method != "GET") co_return co_await method_not_allowed("GET");
    co_return co_await observe::serve_pprof(request, responder);
  } else if (router_->config().metrics.enabled &&
             request.path() == router_->config().metrics.path) {
    if (method != "GET" && method != "HEAD") co_return co_await method_not_allowed("GET");
    co_return co_await admin_.metrics(request, responder);
  } else if (request.path() == "/healthz") {
    if (method != "GET" && method != "HEAD") co_return co_await method_not_allowed("GET");
    co_await responder.send(200, "application/json", R"({"status":"ok"})");
    co_return;
  } else if (request.path() == "/readyz") {
    if (method != "GET" && method != "HEAD") co_return co_await method_not_allowed("GET");
    if (draining_ && draining_->load(std::memory_order_relaxed)) {
      co_await responder.send(503, "application/json", R"({"status":"draining"})");
    } else {
      co_await responder.send(200, "application/json", R"({"status":"ready"})");
    }
    co_return;
  } else {
    co_await send_built_error(responder, [&] {
      return make_error(Errc::not_found, "Unknown request URL: " + std::string(method) + " " +
                                             std::string(request.path()) + ".");
    });
    co_return;
  }
  if (method != "POST") co_return co_await method_not_allowed("POST");
  co_await proxy(op, request, responder, worker, who, trace, ingress);
}

asio::awaitable<LocalAnswer> Gateway::call(const std::string& path, const std::string& body,
                                            const Identity& who, WorkerContext& worker,
                                            const std::string& purpose) {
  static std::atomic<uint64_t> calls{0};
  const std::string request_id = "sluice-" + purpose + "-" + std::to_string(calls.fetch_add(1) + 1);
  const std::string head = "POST " + path + " HTTP/1.1\r\nhost: sluice.internal\r\n" +
                           "content-type: application/json\r\ncontent-length: " +
                           std::to_string(body.size()) + "\r\nx-sluice-internal: " + purpose +
                           "\r\nx-request-id: " + request_id + "\r\n\r\n";
  http::RequestHead parsed;
  if (http::parse_request_head(head, parsed) != http::ParseStatus::complete) {
    co_return LocalAnswer{500, R"({"error":{"message":"internal request head"}})"};
  }
  std::string padded;  // the body, followed by the padding the JSON parser reads past
  padded.reserve(body.size() + http::kBodyPadding);
  padded.assign(body);
  padded.append(http::kBodyPadding, ' ');
  http::Timing timing;
  timing.received = timing.handler = http::Timing::Clock::now();
  http::Request request;
  request.head = &parsed;
  request.timing = &timing;
  request.body = std::string_view(padded).substr(0, body.size());
  request.request_id = request_id;
  request.head_state = std::make_shared<Identity>(who);
  http::Captured captured;
  http::Responder responder(captured);
  // The call is made first and awaited after: its by-value arguments are not temporaries of
  // a co_await expression (GCC 12, docs/architecture.md).
  auto work = handle(request, responder, worker, hold(), Listener::api);
  co_await std::move(work);
  co_return LocalAnswer{captured.status, std::move(captured.body)};
}

asio::awaitable<bool> Gateway::attach_session(RequestContext& ctx, const RouteRuntime& route,
                                              std::unique_ptr<SessionTurn>& turn) {
  const std::string id(ctx.request->header("x-sluice-session"));
  const std::string owner = state_owner(*ctx.who);
  auto at = Clock::now();
  auto attached = co_await sessions_->augment(ctx, id, owner, *route.route);
  http::Timing::add_since(ctx.request->timing->route_ns, at);
  if (!attached) {
    co_await ctx.responder->send_error(attached.error());
    co_return false;
  }
  turn = std::move(attached.value());
  co_return true;
}

asio::awaitable<void> Gateway::create_response(http::Request& request,
                                               http::Responder& responder, WorkerContext& worker,
                                               const Identity& who, Trace& trace) {
  const std::string owner = state_owner(who);
  auto prepared = co_await responses_->prepare(request.body, owner);
  if (!prepared) {
    co_await responder.send_error(prepared.error());
    co_return;
  }
  PreparedResponse& p = *prepared.value();
  ResponsesSink sink(responder, *responses_, p);
  co_await proxy(Operation::chat, request, responder, worker, who, trace,
                 canonical::Protocol::openai, &p.decoded.request, &sink, p.history_messages);
}

asio::awaitable<void> Gateway::proxy(Operation op, http::Request& request,
                                     http::Responder& responder, WorkerContext& worker,
                                     const Identity& who, Trace& trace,
                                     canonical::Protocol ingress, canonical::Request* prepared,
                                     ResponseSink* sink, size_t replayed) {
  RequestContext ctx;
  ctx.request = &request;
  ctx.responder = &responder;
  ctx.worker = &worker;
  ctx.pool = worker.pool;
  ctx.trace = &trace;
  ctx.who = &who;
  ctx.ingress = ingress;
  ctx.parsed.op = op;
  auto route_at = Clock::now();
  auto route_done = [&] { http::Timing::add_since(request.timing->route_ns, route_at); };
  if (prepared != nullptr) {
    ctx.canon = std::move(*prepared);
    ctx.canonical_only = true;
    ctx.sink = sink;
    ctx.replayed_messages = replayed;
  }
  if (auto r = prepared != nullptr                     ? adopt_canonical_request(ctx)
               : ingress == canonical::Protocol::openai ? providers::parse_request(op, request.body, ctx.parsed)
                                                        : decode_client_request(ctx);
      !r) {
    route_done();
    co_await responder.send_error(r.error());
    co_return;
  }
  if (op == Operation::embeddings) ctx.parsed.stream = false;
  if (telemetry_.logging()) trace.model = ctx.parsed.model;  // copied: ctx ends before the log
  trace.stream = ctx.parsed.stream;
  RouteRuntime* primary = dispatcher_.runtime_for(router_->match(ctx.parsed.model));
  route_done();
  trace.route = primary;
  if (primary != nullptr) ctx.route = primary->route;
  // Everything below fills the trace; its attempts and usage are read when the request ends.
  struct TraceAttempts {
    Trace& trace;
    RequestContext& ctx;
    ~TraceAttempts() {
      trace.attempts = ctx.attempts;
      if (ctx.usage) trace.usage = ctx.usage;
    }
  } trace_attempts{trace, ctx};
  if (primary == nullptr) {
    co_await send_built_error(responder, [&] {
      return make_error(
          Errc::model_not_found,
          "The model '" + ctx.parsed.model + "' does not exist or is not routed by this gateway.",
          "model");
    });
    co_return;
  }
  if (int64_t window = primary->route->context_window;
      window > 0 && ctx.parsed.max_tokens > window) {
    co_await send_built_error(responder, [&] {
      Error too_many = make_error(Errc::bad_request,
                                  "max_tokens is too large: " +
                                      std::to_string(ctx.parsed.max_tokens) +
                                      ". This model supports at most " + std::to_string(window) +
                                      " completion tokens.",
                                  "max_tokens");
      too_many.code_override = "integer_above_max_value";
      return too_many;
    });
    co_return;
  }
  // A request in a session: its memories and turns packed around it, its answer recorded.
  std::unique_ptr<SessionTurn> session_turn;
  if (sessions_ && !request.header("x-sluice-session").empty()) {
    const bool attached = co_await attach_session(ctx, *primary, session_turn);
    if (!attached) co_return;
  }
  // The stages (today all governance: their time is the auth phase). What they acquire lives
  // in ctx (RAII); their on_finish runs through ctx.settle(): here when one refuses, else from
  // the dispatcher, before a unary answer is written or when the request ends.
  StageChain stages(stages_);
  ctx.stages = &stages;
  auto stages_at = Clock::now();
  Verdict verdict = co_await stages.run(ctx);
  http::Timing::add_since(request.timing->auth_ns, stages_at);
  if (!verdict.proceeds()) {
    ctx.settle();
    if (const Error* error = verdict.error()) co_await responder.send_error(*error);
    co_return;
  }
  co_await dispatcher_.dispatch(ctx, *primary);
}

}  // namespace sluice::api
