// Gateway: endpoint table, OpenAI request decoding, and the proxy loop (unary and SSE relay).
#include "api/gateway.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <random>

#include "http/parse/sse_parser.h"
#include "providers/demo.h"
#include "providers/openai.h"
#include "observe/profiler.h"
#include "providers/openai_format.h"
#include "api/protocols.h"
#include "api/stream_check.h"
#include "api/proxy_util.h"

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

TargetRuntime::TargetRuntime(const config::TargetConfig& target,
                             const config::RouteConfig& route)
    : state(target, route),
      metrics(route.model, target.name),
      limiter(target.concurrency, target.name.empty() ? target.base_url
                                                                              : target.name) {
  if (config::is_http_provider(target.provider)) origin = upstream::origin_of(target);
}

Gateway::Gateway(std::shared_ptr<const routing::Router> router, const std::atomic<bool>* draining,
                 std::shared_ptr<Governance> governance,
                 std::shared_ptr<observe::AccessLog> access_log)
    : router_(std::move(router)),
      draining_(draining),
      governance_(std::move(governance)),
      telemetry_(router_->config(), std::move(access_log)) {
  for (const auto& route : router_->config().routes) {
    auto rr = std::make_unique<RouteRuntime>(route);
    for (const auto& target : route.targets) {
      rr->targets.push_back(std::make_unique<TargetRuntime>(target, route));
      rr->states.push_back(&rr->targets.back()->state);
    }
    rr->balancer = std::make_unique<routing::Balancer>(route.balancer, rr->states);
    routes_.push_back(std::move(rr));
  }
  if (router_->config().metrics.validate_streams) register_stream_check_metrics();
}

RouteRuntime* Gateway::runtime_for(const config::RouteConfig* route) {
  if (route == nullptr) return nullptr;
  size_t index = static_cast<size_t>(route - router_->config().routes.data());
  return index < routes_.size() ? routes_[index].get() : nullptr;
}

namespace {

// `path` without its "/v1" (api_path): the OpenAI, Anthropic and Gemini API surfaces.
bool is_api_path(std::string_view path) {
  return path == "/chat/completions" || path == "/completions" || path == "/embeddings" ||
         path == "/models" || path.starts_with("/models/") || path == "/messages" ||
         path.starts_with("/messages/") || path.starts_with("/v1beta/");
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
    const Error unknown = make_error(Errc::not_found, "Unknown request URL: " +
                                                          std::string(method) + " " +
                                                          std::string(request.path()) + ".");
    co_await responder.send_error(unknown);
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
    if (method != "POST") co_return co_await method_not_allowed("POST");
    co_return co_await count_tokens(request, responder, canonical::Protocol::anthropic, {});
  } else if (GeminiTarget g = gemini_target(request.path()); !g.model.empty()) {
    if (method != "POST") co_return co_await method_not_allowed("POST");
    if (g.method == "countTokens") {
      co_return co_await count_tokens(request, responder, canonical::Protocol::gemini, g.model);
    }
    if (g.method != "generateContent" && g.method != "streamGenerateContent") {
      const Error error = make_error(Errc::not_found, "Unknown Gemini method '" +
                                                          std::string(g.method) + "'.");
      co_await responder.send_error(error);
      co_return;
    }
    co_return co_await proxy(Operation::chat, request, responder, worker, who, trace,
                             canonical::Protocol::gemini);
  } else if (path == "/completions") {
    op = Operation::completions;
  } else if (path == "/embeddings") {
    op = Operation::embeddings;
  } else if (path == "/models" || path.starts_with("/models/")) {
    if (method != "GET" && method != "HEAD") co_return co_await method_not_allowed("GET");
    if (path == "/models") co_return co_await list_models(responder);
    co_return co_await get_model(path.substr(8), responder);
  } else if (request.path() == "/admin/keys" || request.path().starts_with("/admin/keys/")) {
    co_return co_await admin_keys(request, responder);
  } else if (request.path() == "/admin/usage") {
    if (method != "GET" && method != "HEAD") co_return co_await method_not_allowed("GET");
    co_return co_await admin_usage(request, responder);
  } else if (request.path() == "/admin/upstreams") {
    if (method != "GET" && method != "HEAD") co_return co_await method_not_allowed("GET");
    co_return co_await admin_upstreams(request, responder);
  } else if (request.path().starts_with("/debug/pprof/")) {
    if (!co_await admin_allowed(request, responder)) co_return;
    if (method != "GET") co_return co_await method_not_allowed("GET");
    co_return co_await observe::serve_pprof(request, responder);
  } else if (router_->config().metrics.enabled &&
             request.path() == router_->config().metrics.path) {
    if (method != "GET" && method != "HEAD") co_return co_await method_not_allowed("GET");
    co_return co_await serve_metrics(request, responder);
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
    {
      const Error error = make_error(
        Errc::not_found, "Unknown request URL: " + std::string(method) + " " +
                             std::string(request.path()) + ".");
      co_await responder.send_error(error);
    }
    co_return;
  }
  if (method != "POST") co_return co_await method_not_allowed("POST");
  co_await proxy(op, request, responder, worker, who, trace, ingress);
}

namespace {

// The admin token must leak neither its bytes nor its length through response timing: compare
// fixed-size digests of both sides in constant time (the time depends only on the length of
// what the client sent, which it knows).
bool token_equals(std::string_view given, std::string_view expected) {
  unsigned char a[SHA256_DIGEST_LENGTH];
  unsigned char b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

}  // namespace

asio::awaitable<bool> Gateway::admin_allowed(http::Request& request,
                                             http::Responder& responder) {
  const std::string& token = router_->config().admin_token;
  if (token.empty()) {
    {
      const Error error = make_error(
        Errc::not_found, "The admin API is disabled: set admin.token_env in the config and "
                         "export that variable.");
      co_await responder.send_error(error);
    }
    co_return false;
  }
  std::string_view auth = request.header("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (!auth.starts_with(kBearer) || !token_equals(auth.substr(kBearer.size()), token)) {
    const Error error =
        make_error(Errc::unauthorized, "A valid admin token is required (Authorization: Bearer).");
    co_await responder.send_error(error);
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> Gateway::admin_usage(http::Request& request, http::Responder& responder) {
  if (!co_await admin_allowed(request, responder)) co_return;
  if (!governance_) {
    {
      const Error error = make_error(Errc::unavailable, "Usage is not recorded.");
      co_await responder.send_error(error);
    }
    co_return;
  }
  // ?key=<id or name>&from=YYYY-MM-DD&to=YYYY-MM-DD (all optional)
  std::string key, from, to;
  std::string_view q = request.head->query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = pair.substr(0, eq), value = pair.substr(eq + 1);
    if (name == "key") key.assign(value);
    if (name == "from") from.assign(value);
    if (name == "to") to.assign(value);
  }
  if (!key.empty()) {
    for (const auto& k : governance_->keys().list()) {
      if (k.name == key) key = k.id;
    }
  }
  std::string body = governance_->usage().query_json(key, from, to);
  co_await responder.send(200, "application/json", body);
}

asio::awaitable<void> Gateway::admin_upstreams(http::Request& request,
                                               http::Responder& responder) {
  if (!co_await admin_allowed(request, responder)) co_return;
  auto now = std::chrono::steady_clock::now();
  std::string body = R"({"routes":[)";
  bool first_route = true;
  for (const auto& rr : routes_) {
    if (!first_route) body += ',';
    first_route = false;
    body += R"({"model":")";
    append_json_escaped(body, rr->route->model);
    body += R"(","targets":[)";
    bool first = true;
    for (const auto& t : rr->targets) {
      const routing::TargetState& st = t->state;
      if (!first) body += ',';
      first = false;
      body += R"({"name":")";
      append_json_escaped(body, st.config.name);
      body += R"(","base_url":")";
      append_json_escaped(body, st.config.base_url);
      body += R"(","breaker":")";
      body += routing::to_string(st.breaker.state(now));
      body += R"(","breaker_transitions":)" + std::to_string(st.breaker.transitions());
      body += R"(,"healthy":)";
      body += st.healthy.load() ? "true" : "false";
      body += R"(,"in_flight":)" + std::to_string(st.in_flight.load());
      body += R"(,"queued":)" + std::to_string(t->limiter.queued());
      char ratio[32];
      snprintf(ratio, sizeof ratio, "%.4f", st.breaker.failure_ratio(now));
      body += R"(,"error_ratio":)";
      body += ratio;
      body += R"(,"ewma_ttfb_ms":)";
      char ttfb[32];
      snprintf(ttfb, sizeof ttfb, "%.3f", st.ewma_ttfb_us.load() / 1000.0);
      body += ttfb;
      body += R"(,"retries":)" + std::to_string(st.retries.load());
      body += R"(,"attempts":{)";
      for (size_t k = 0; k < st.outcomes.size(); ++k) {
        if (k) body += ',';
        body += '"';
        body += routing::to_string(static_cast<routing::AttemptOutcome>(k));
        body += R"(":)" + std::to_string(st.outcomes[k].load());
      }
      body += "}}";
    }
    body += "]}";
  }
  body += "]}";
  co_await responder.send(200, "application/json", body);
}

asio::awaitable<void> Gateway::list_models(http::Responder& responder) {
  std::string body = R"({"object":"list","data":[)";
  bool first = true;
  for (const auto& id : router_->model_ids()) {
    if (!first) body += ',';
    first = false;
    body += R"({"id":")";
    append_json_escaped(body, id);
    body += R"(","object":"model","created":0,"owned_by":"sluice"})";
  }
  body += "]}";
  co_await responder.send(200, "application/json", body);
}

asio::awaitable<void> Gateway::get_model(std::string_view id, http::Responder& responder) {
  if (id.empty() || router_->match(id) == nullptr) {
    {
      const Error error = make_error(
        Errc::model_not_found, "The model '" + std::string(id) + "' does not exist.", "model");
      co_await responder.send_error(error);
    }
    co_return;
  }
  std::string body = R"({"id":")";
  append_json_escaped(body, id);
  body += R"(","object":"model","created":0,"owned_by":"sluice"})";
  co_await responder.send(200, "application/json", body);
}

asio::awaitable<void> Gateway::serve_demo(const providers::ParsedRequest& parsed,
                                          http::Responder& responder, UsageTokens* reported) {
  if (auto valid = providers::validate_json(parsed.body); !valid) {
    co_await responder.send_error(valid.error());
    co_return;
  }
  std::string model = parsed.model;
  if (parsed.op == Operation::embeddings) {
    auto inputs = providers::extract_embedding_inputs(parsed.body);
    if (!inputs) {
      co_await responder.send_error(inputs.error());
      co_return;
    }
    co_await responder.send(200, "application/json",
                            providers::embeddings_response(model, inputs->inputs,
                                                           inputs->encoding_format == "base64"));
    co_return;
  }
  std::string prompt = providers::extract_prompt(parsed.op, parsed.body);
  std::string answer = providers::demo_answer(prompt);
  auto words = providers::split_words(answer);
  providers::Usage usage{providers::estimate_tokens(prompt) + 8,
                         static_cast<int64_t>(words.size())};
  if (reported) *reported = UsageTokens{usage.prompt_tokens, 0, usage.completion_tokens};
  // Unique per answer (two answers to the same prompt in the same second must differ): a
  // per-thread random prefix and a counter, as the server's request ids.
  thread_local uint64_t id_prefix =
      (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  thread_local uint64_t id_counter = 0;
  char id_hex[33];
  snprintf(id_hex, sizeof id_hex, "%016llx%016llx", static_cast<unsigned long long>(id_prefix),
           static_cast<unsigned long long>(++id_counter * 0x9E3779B97F4A7C15ull));
  std::string id = (parsed.op == Operation::chat ? "chatcmpl-demo-" : "cmpl-demo-");
  id += id_hex;
  providers::CompletionShape shape{parsed.op, id, model, unix_now()};
  if (!parsed.stream) {
    co_await responder.send(200, "application/json",
                            providers::unary_completion(shape, answer, usage));
    co_return;
  }
  if (!co_await responder.begin_stream(200, "text/event-stream", kStreamHeaders)) co_return;
  if (parsed.op == Operation::chat) {
    if (!co_await responder.write_chunk(providers::chunk_event(shape, "", true))) co_return;
  }
  for (std::string_view w : words) {
    if (!co_await responder.write_chunk(providers::chunk_event(shape, w))) co_return;
  }
  std::string tail = providers::chunk_event(shape, "", false, "stop");
  if (parsed.include_usage) tail += providers::usage_event(shape, usage);
  tail += providers::kDoneEvent;
  if (!co_await responder.write_chunk(tail)) co_return;
  co_await responder.end_stream();
}

}  // namespace sluice::api
