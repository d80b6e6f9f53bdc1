// Gateway: endpoint table, OpenAI request decoding, and the proxy loop (unary and SSE relay).
#include "api/gateway.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "http/parse/sse_parser.h"
#include "providers/demo.h"
#include "providers/openai.h"
#include "providers/openai_format.h"

namespace sluice::api {

using providers::Operation;

namespace {

constexpr size_t kMaxUpstreamBody = 64 * 1024 * 1024;
constexpr size_t kMaxUpstreamErrorBody = 1024 * 1024;
constexpr std::string_view kStreamHeaders = "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n";

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Offset just past the last complete SSE event in `s` (0 if none): events end with a blank
// line, i.e. two consecutive line terminators of any kind.
size_t last_event_boundary(std::string_view s) {
  for (size_t i = s.size(); i >= 2; --i) {
    char a = s[i - 2], b = s[i - 1];
    if ((a == '\n' && b == '\n') || (a == '\r' && b == '\r')) return i;
    if (b == '\n' && a == '\r' && i >= 3 && (s[i - 3] == '\n' || s[i - 3] == '\r')) return i;
  }
  return 0;
}

std::string stream_error_event(std::string_view message, std::string_view code) {
  // Leading newline: ends any line the client might hold; a blank line alone dispatches nothing.
  return "\ndata: " + openai_error_body(message, "upstream_error", "", code) + "\n\n";
}

bool looks_like_openai_error(std::string_view body) {
  // {"error": {...}} — cheap structural check; the body is only passed through when it has it.
  size_t i = body.find_first_not_of(" \t\r\n");
  if (i == std::string_view::npos || body[i] != '{') return false;
  size_t k = body.find("\"error\"");
  return k != std::string_view::npos && k < 64;
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view v) {
  if (v.empty()) return std::nullopt;
  int64_t secs = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;  // HTTP-date form: handled with retries later
    secs = secs * 10 + (c - '0');
    if (secs > 86400) break;
  }
  return std::chrono::milliseconds(secs * 1000);
}

// Upstream error status → our Error; 4xx bodies in OpenAI's shape are passed through.
Error upstream_status_error(int status, std::string_view body, std::string_view content_type,
                            std::string_view retry_after, const std::string& origin) {
  Error e;
  e.code = Errc::upstream_status;
  e.upstream_status = status;
  std::string snippet(body.substr(0, 300));
  e.message = "Upstream " + origin + " returned HTTP " + std::to_string(status) +
              (snippet.empty() ? std::string() : ": " + snippet);
  if (status < 500 && content_type.find("json") != std::string_view::npos &&
      looks_like_openai_error(body)) {
    e.upstream_body.assign(body);
  }
  e.retry_after = parse_retry_after(retry_after);
  e.retryable = status == 429 || status >= 500;
  return e;
}

// Strips an optional "/v1" so both base URL styles (…/v1 and bare) reach the same endpoints.
std::string_view api_path(std::string_view path) {
  if (path.size() >= 3 && path.substr(0, 3) == "/v1" && (path.size() == 3 || path[3] == '/')) {
    return path.substr(3);
  }
  return path;
}

}  // namespace

Gateway::Gateway(std::shared_ptr<const routing::Router> router, const std::atomic<bool>* draining)
    : router_(std::move(router)), draining_(draining) {
  for (const auto& route : router_->config().routes) {
    for (const auto& target : route.targets) {
      if (target.provider == config::ProviderKind::openai) {
        origins_.emplace(&target, upstream::origin_of(target));
      }
    }
  }
}

asio::awaitable<void> Gateway::handle(http::Request& request, http::Responder& responder,
                                      upstream::Pool& pool) {
  std::string_view method = request.method();
  std::string_view path = api_path(request.path());
  auto method_not_allowed = [&](std::string_view allow) -> asio::awaitable<void> {
    ErrorResponse r = to_response(make_error(
        Errc::method_not_allowed,
        "Method " + std::string(method) + " is not allowed on " + std::string(request.path()) +
            "; use " + std::string(allow) + "."));
    co_await responder.send(r.status, "application/json", r.body,
                            "Allow: " + std::string(allow) + "\r\n");
  };
  Operation op;
  if (path == "/chat/completions") {
    op = Operation::chat;
  } else if (path == "/completions") {
    op = Operation::completions;
  } else if (path == "/embeddings") {
    op = Operation::embeddings;
  } else if (path == "/models" || path.starts_with("/models/")) {
    if (method != "GET" && method != "HEAD") co_return co_await method_not_allowed("GET");
    if (path == "/models") co_return co_await list_models(responder);
    co_return co_await get_model(path.substr(8), responder);
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
    co_await responder.send_error(make_error(
        Errc::not_found, "Unknown request URL: " + std::string(method) + " " +
                             std::string(request.path()) + "."));
    co_return;
  }
  if (method != "POST") co_return co_await method_not_allowed("POST");
  co_await proxy(op, request, responder, pool);
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
    co_await responder.send_error(make_error(
        Errc::model_not_found, "The model '" + std::string(id) + "' does not exist.", "model"));
    co_return;
  }
  std::string body = R"({"id":")";
  append_json_escaped(body, id);
  body += R"(","object":"model","created":0,"owned_by":"sluice"})";
  co_await responder.send(200, "application/json", body);
}

asio::awaitable<void> Gateway::serve_demo(const providers::ParsedRequest& parsed,
                                          http::Responder& responder) {
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
  std::string id = (parsed.op == Operation::chat ? "chatcmpl-demo-" : "cmpl-demo-") +
                   std::to_string(std::hash<std::string>{}(prompt) & 0xffffffffffull);
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

asio::awaitable<void> Gateway::proxy(Operation op, http::Request& request,
                                     http::Responder& responder, upstream::Pool& pool) {
  providers::ParsedRequest parsed;
  if (auto r = providers::parse_request(op, request.body, parsed); !r) {
    co_await responder.send_error(r.error());
    co_return;
  }
  if (op == Operation::embeddings) parsed.stream = false;
  const config::RouteConfig* route = router_->match(parsed.model);
  if (route == nullptr) {
    co_await responder.send_error(make_error(
        Errc::model_not_found,
        "The model '" + parsed.model + "' does not exist or is not routed by this gateway.",
        "model"));
    co_return;
  }
  const config::TargetConfig& target = router_->pick(*route);
  if (target.provider == config::ProviderKind::demo) {
    co_return co_await serve_demo(parsed, responder);
  }
  const upstream::Origin& origin = origins_.at(&target);

  providers::EncodedRequest encoded;
  providers::encode_openai_request(parsed, target, *request.head, request.request_id, encoded);
  std::array<asio::const_buffer, 4> wire{
      asio::buffer(encoded.head), asio::buffer(encoded.body_prefix.data(),
                                               encoded.body_prefix.size()),
      asio::buffer(encoded.model_token),
      asio::buffer(encoded.body_suffix.data(), encoded.body_suffix.size())};

  upstream::Call call(pool, origin, target.timeouts);
  bool streaming_request = parsed.stream;

  auto exchange = [&]() -> asio::awaitable<void> {
    auto started = co_await call.start(wire);
    if (!started) {
      co_await responder.send_error(started.error());
      co_return;
    }
    int status = call.status();
    std::string content_type(call.head().header("content-type"));
    if (status >= 400) {
      std::string retry_after(call.head().header("retry-after"));
      auto body = co_await call.read_all(kMaxUpstreamErrorBody);
      std::string_view text = body ? *body : std::string_view{};
      Error e = upstream_status_error(status, text, content_type, retry_after, origin.key);
      call.finish();
      co_await responder.send_error(e);
      co_return;
    }
    bool is_sse = content_type.starts_with("text/event-stream");
    if (!(streaming_request && is_sse)) {
      auto body = co_await call.read_all(kMaxUpstreamBody);
      if (!body) {
        co_await responder.send_error(body.error());
        co_return;
      }
      if (content_type.empty()) content_type = "application/json";
      co_await responder.send(status, content_type, *body);
      call.finish();
      co_return;
    }
    // SSE relay: complete events are forwarded as they arrive, byte for byte; an incomplete
    // tail waits for its end so an error event can only ever follow a whole event.
    if (!co_await responder.begin_stream(status, content_type, kStreamHeaders)) co_return;
    http::SseParser observer;
    bool saw_done = false;
    std::string pending;
    auto observe = [&saw_done](const http::SseEvent& ev) {
      if (ev.data == "[DONE]") saw_done = true;
    };
    for (;;) {
      auto piece = co_await call.read_some();
      if (!piece) {
        if (responder.client_gone()) co_return;
        const Error& err = piece.error();
        std::string_view code =
            err.code == Errc::upstream_timeout ? "upstream_timeout" : "upstream_stream_error";
        spdlog::warn("request {}: stream from {} failed: {}", request.request_id, origin.key,
                     err.message);
        std::string event = stream_error_event(
            "The upstream stream failed before it finished: " + err.message, code);
        co_await responder.write_chunk(event);
        // The client's connection is healthy and the chunked body ends cleanly, so it stays
        // usable; only the upstream connection is discarded.
        co_await responder.end_stream();
        co_return;
      }
      std::string_view bytes = *piece;
      if (!bytes.empty()) {
        std::string_view ready;
        if (pending.empty() && last_event_boundary(bytes) == bytes.size()) {
          ready = bytes;  // the common case: whole events, forwarded without a copy
        } else {
          pending.append(bytes);
          size_t cut = last_event_boundary(pending);
          ready = std::string_view(pending).substr(0, cut);
        }
        if (!ready.empty()) {
          observer.feed(ready, observe);
          if (!co_await responder.write_chunk(ready)) co_return;
          if (!pending.empty()) pending.erase(0, ready.size());
        }
      }
      if (call.body_complete()) {
        // A clean end: forward a trailing partial event as is (the upstream chose to end there).
        if (!pending.empty() && !co_await responder.write_chunk(pending)) co_return;
        (void)saw_done;
        call.finish();
        co_await responder.end_stream();
        co_return;
      }
    }
  };

  // A client that leaves cancels the upstream exchange at once (its socket is cancelled and
  // the call discards the connection, which the upstream sees as a close).
  responder.watch_client([&call] { call.cancel(); });
  try {
    co_await exchange();
  } catch (const boost::system::system_error& e) {
    spdlog::error("request {}: {}", request.request_id, e.what());
  }
  co_await responder.stop_watching();
  if (responder.client_gone()) {
    spdlog::debug("request {}: client disconnected; upstream request cancelled",
                  request.request_id);
    responder.close_after();
  }
}

}  // namespace sluice::api
