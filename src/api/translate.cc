// The translated path: a client protocol other than OpenAI (Anthropic Messages, Gemini), or a
// target that speaks another protocol than the client. The request is decoded into the
// canonical model once, encoded for each target's protocol per attempt; answers and streams
// are decoded into canonical responses / events and encoded in the client's protocol as they
// arrive. The retry rules are the fast path's: nothing is retried once a byte reached the
// client, and a stream that fails before its first event is retried like any failure.
#include <spdlog/spdlog.h>

#include <algorithm>

#include <boost/asio/this_coro.hpp>

#include "api/attempt.h"
#include "api/dispatcher.h"
#include "api/protocols.h"
#include "api/proxy_util.h"
#include "api/sink.h"
#include "api/stream_check.h"
#include "canonical/codec.h"
#include "canonical/events.h"
#include "canonical/json.h"
#include "providers/openai.h"
#include "providers/openai_format.h"

namespace sluice::api {

using providers::Operation;
using routing::AttemptOutcome;

Result<void> decode_client_request(RequestContext& ctx) {
  canonical::FrontendContext fc;
  if (ctx.ingress == canonical::Protocol::gemini) {
    GeminiTarget g = gemini_target(ctx.request->path());
    fc.model = std::string(g.model);
    fc.stream = g.method == "streamGenerateContent";
  }
  const bool count = ctx.parsed.op == Operation::count_tokens;
  auto decoded = count ? canonical::decode_count_request(ctx.ingress, ctx.request->body, fc)
                       : canonical::decode_request(ctx.ingress, ctx.request->body, fc);
  if (!decoded) return std::move(decoded.error());
  ctx.canon = std::move(decoded.value());
  return adopt_canonical_request(ctx);
}

Result<void> adopt_canonical_request(RequestContext& ctx) {
  const bool count = ctx.parsed.op == Operation::count_tokens;
  const canonical::Request& req = *ctx.canon;
  if (req.model.empty()) return canonical::invalid("model: Field required", "model");
  if (req.model.size() > providers::kMaxModelBytes) {
    return canonical::invalid("model is too long", "model");
  }
  int64_t max_tokens = req.max_tokens.value_or(0);
  if (max_tokens < 0 || max_tokens > providers::kMaxTokensLimit) {
    return canonical::invalid("max_tokens must be between 0 and " +
                                  std::to_string(providers::kMaxTokensLimit),
                              "max_tokens");
  }
  providers::ParsedRequest& p = ctx.parsed;
  p.op = count ? Operation::count_tokens : Operation::chat;
  p.body = ctx.request->body;
  p.model = req.model;
  p.stream = req.stream;
  p.include_usage = req.include_usage;
  p.max_tokens = max_tokens;
  return {};
}

const std::string& Dispatcher::upstream_label(const TargetRuntime& runtime) const {
  // Upstreams are named by target in client-facing messages unless errors.expose_upstream.
  const config::TargetConfig& target = runtime.state.config;
  return router_->config().expose_upstream_errors || target.name.empty() ? runtime.origin.key
                                                                         : target.name;
}

asio::awaitable<bool> Dispatcher::open_exchange(RequestContext& ctx, TargetRuntime& runtime,
                                                BreakerVerdict& verdict,
                                                canonical::Protocol egress, std::string_view path,
                                                std::string_view body, upstream::Call& call,
                                                AttemptResult& result) {
  const config::TargetConfig& target = runtime.state.config;
  routing::TargetState& state = runtime.state;
  http::Responder& responder = *ctx.responder;
  std::string head = "POST ";
  head += target.base_path;
  head += path;
  providers::render_upstream_head(target, *ctx.request->head, ctx.request->request_id,
                                  body.size(), head);
  std::array<asio::const_buffer, 2> wire{asio::buffer(head), asio::buffer(body)};

  const bool expose = router_->config().expose_upstream_errors;
  const std::string& label = upstream_label(runtime);
  // after_send_ok: the failure class may be retried even though the request was sent.
  auto fail = [&](Error e, bool after_send_ok) {
    fail_attempt(result, std::move(e), after_send_ok, call, responder, state, verdict);
  };

  auto started_at = Clock::now();
  const bool replayable = !ctx.request->header("idempotency-key").empty();
  auto started = co_await call.start(wire, replayable);
  ctx.waited_since(started_at);
  if (!started) {
    bool connect = started.error().code == Errc::upstream_connect ||
                   started.error().code == Errc::unavailable;
    result.free_retry = connect;
    fail(std::move(started.error()), connect);
    co_return false;
  }
  state.observe_ttfb(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_at).count()));
  const int status = call.status();
  if (!call.head().header("content-encoding").empty()) {
    // We ask for identity; a compressed answer cannot be translated.
    call.finish();
    fail(make_error(Errc::upstream_protocol,
                    "Upstream " + label + " answered with a Content-Encoding the gateway "
                                          "cannot translate"),
         true);
    co_return false;
  }

  if (status >= 400) {
    auto retry_after = upstream_retry_after(call.head());
    auto read_at = Clock::now();
    auto raw = co_await call.read_all(kMaxUpstreamErrorBody);
    ctx.waited_since(read_at);
    std::string text = raw ? std::string(*raw) : std::string();
    call.finish();
    canonical::UpstreamError ue = canonical::decode_error(egress, status, text);
    // The upstream's message, not its body: the client gets its own protocol's shape.
    Error e = upstream_status_error(status, ue.message, "", retry_after, label, expose);
    if (status < 500 && e.code == Errc::upstream_status && ue.status == status &&
        ctx.ingress == canonical::Protocol::openai && status != 401 && status != 403 &&
        status != 407) {
      // An OpenAI client gets the upstream's 4xx in OpenAI's shape with OpenAI's type for
      // the status (invalid_request_error, rate_limit_error, ...); other clients' shapes are
      // rendered from the message by render_error.
      e.upstream_body = canonical::encode_error(canonical::Protocol::openai, status, e.message).body;
    }
    if (!expose && status >= 500 && !text.empty()) {
      spdlog::info("request {}: upstream {} answered {}: {}", ctx.request->request_id,
                   runtime.origin.key, status, text.substr(0, 300));
    }
    if (e.retryable) {
      state.count(AttemptOutcome::upstream_error);
      verdict.failure();
      result.retryable = !responder.client_gone();
    } else {
      state.count(AttemptOutcome::success);
      verdict.success();
      result.context_length = ue.type == "context_length_exceeded";
    }
    result.error = std::move(e);
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> Dispatcher::attempt_translated(
    RequestContext& ctx, TargetRuntime& runtime, BreakerVerdict& verdict,
    std::string_view model_override, AttemptResult& result) {
  routing::TargetState& state = runtime.state;
  const config::TargetConfig& target = state.config;
  http::Responder& responder = *ctx.responder;
  const canonical::Protocol egress = protocol_of(target.provider);

  if (ctx.parsed.op != Operation::chat) {
    verdict.abandon();
    result.error = make_error(Errc::bad_request,
                              "This model's provider (" +
                                  std::string(canonical::protocol_name(egress)) +
                                  ") serves chat only; " +
                                  std::string(providers::operation_path(ctx.parsed.op)) +
                                  " is not available for it.");
    co_return;
  }
  if (!ctx.canon) {  // an OpenAI client on a route to another protocol: decoded once
    auto decoded = canonical::decode_request(canonical::Protocol::openai, ctx.request->body, {});
    if (!decoded) {
      verdict.abandon();
      result.error = std::move(decoded.error());
      co_return;
    }
    ctx.canon = std::move(decoded.value());
  }
  canonical::Request& req = *ctx.canon;
  std::string_view upstream_model = !target.model.empty()   ? std::string_view(target.model)
                                    : !model_override.empty() ? model_override
                                                              : std::string_view(ctx.parsed.model);
  // max_tokens is required by Anthropic: the route's default when the client gave none.
  const std::optional<int64_t> client_max = req.max_tokens;
  if (!req.max_tokens && egress == canonical::Protocol::anthropic) {
    req.max_tokens = state.route.default_max_tokens;
  }
  std::string body = canonical::encode_request(egress, req, upstream_model);
  req.max_tokens = client_max;
  std::string escaped_model;  // Gemini puts the model in the path: never a path of its own
  providers::append_path_segment(escaped_model, upstream_model);
  const std::string path = canonical::upstream_path(egress, escaped_model, req.stream);
  upstream::Call call(*ctx.pool, runtime.origin, target.timeouts, ctx.deadline);
  LiveCall live(ctx, call);
  const bool opened = co_await open_exchange(ctx, runtime, verdict, egress, path, body, call,
                                             result);
  if (!opened) co_return;
  const std::string& label = upstream_label(runtime);
  // after_send_ok: the failure class may be retried even though the request was sent.
  auto fail = [&](Error e, bool after_send_ok) {
    fail_attempt(result, std::move(e), after_send_ok, call, responder, state, verdict);
  };
  const int status = call.status();
  const bool is_sse = call.head().header("content-type").starts_with("text/event-stream");
  // Where the answer goes: the request's own sink when it has one, else the client.
  std::optional<HttpSink> http_sink;
  if (ctx.sink == nullptr) {
    http_sink.emplace(responder, ctx.ingress, req, router_->config().metrics.validate_streams,
                      ctx.request->request_id);
  }
  ResponseSink& sink = ctx.sink != nullptr ? *ctx.sink : *http_sink;
  if (!is_sse) {
    auto read_at = Clock::now();
    auto raw = co_await call.read_all(kMaxUpstreamBody);
    ctx.waited_since(read_at);
    if (!raw) {
      fail(std::move(raw.error()), false);
      co_return;
    }
    auto decoded = canonical::decode_response(egress, *raw);
    call.finish();
    if (!decoded) {
      spdlog::warn("request {}: upstream {} answered HTTP {} with {}", ctx.request->request_id,
                   runtime.origin.key, status, decoded.error().message);
      fail(make_error(Errc::upstream_protocol, "Upstream " + label + " answered HTTP " +
                                                   std::to_string(status) + " with " +
                                                   decoded.error().message),
           true);
      co_return;
    }
    canonical::Response& answer = decoded.value();
    answer.model = ctx.parsed.model;  // the name the client used
    ctx.succeeded = true;
    if (answer.usage.reported) ctx.usage = usage_tokens(answer.usage);
    state.count(AttemptOutcome::success);
    verdict.success();
    ctx.settle();
    responder.add_header("x-sluice-attempts", std::to_string(ctx.attempts));
    co_await sink.answer(answer);
    result.responded = true;
    co_return;
  }

  // A translated stream: upstream bytes → canonical events → the sink (the client's protocol),
  // one gathered write per upstream read. Nothing is sent before the first event, so a stream
  // that fails before it is retried.
  auto decoder = canonical::stream_decoder(egress);
  std::vector<canonical::Event> events;
  bool begun = false;
  bool ended = false;  // message_stop or an error event arrived
  observe::GaugeHold open_stream;
  // What the request learns from the events before the sink gets them: the client's model
  // name on message_start, the usage, the content events relayed, the end of the stream.
  auto observe_events = [&]() {
    size_t content = 0;
    for (canonical::Event& e : events) {
      if (ended) break;
      switch (e.kind) {
        case canonical::EventKind::message_start:
          e.model = ctx.parsed.model;
          if (e.usage.reported) ctx.usage = usage_tokens(e.usage);
          break;
        case canonical::EventKind::block_delta: ++content; break;
        case canonical::EventKind::message_delta:
          if (e.usage.reported) {
            // The final usage; input counts may come only at the start (Anthropic).
            UsageTokens u = usage_tokens(e.usage);
            if (ctx.usage && u.input == 0) {
              u.input = ctx.usage->input;
              u.cached = ctx.usage->cached;
            }
            ctx.usage = u;
          }
          break;
        case canonical::EventKind::error:
          ctx.trace->stream_error = true;
          ended = true;
          break;
        case canonical::EventKind::message_stop: ended = true; break;
        default: break;
      }
    }
    ctx.stream_events += static_cast<int64_t>(content);
    telemetry_.on_stream_events(*ctx.trace, content);
  };
  // An error event before anything reached the client: the attempt failed (retryable when
  // the upstream said it is overloaded or failing).
  auto early_error = [&]() -> std::optional<Error> {
    for (const auto& e : events) {
      if (e.kind == canonical::EventKind::error) {
        Error err = make_error(Errc::upstream_status, "Upstream " + label +
                                                          " failed before its first event: " +
                                                          e.text);
        err.upstream_status = e.status > 0 ? e.status : 502;
        err.retryable = err.upstream_status == 429 || err.upstream_status >= 500;
        return err;
      }
      if (e.kind == canonical::EventKind::block_start || e.kind == canonical::EventKind::block_delta) {
        return std::nullopt;
      }
    }
    return std::nullopt;
  };
  auto begin = [&]() -> asio::awaitable<bool> {
    begun = true;
    ctx.succeeded = true;
    responder.add_header("x-sluice-attempts", std::to_string(ctx.attempts));
    if (telemetry_.metrics_on()) open_stream.hold(telemetry_.open_streams);
    co_return co_await sink.begin_stream();
  };
  for (;;) {
    auto read_at = Clock::now();
    auto piece = co_await call.read_some();
    ctx.waited_since(read_at);
    if (!piece) {
      if (sink.gone()) {
        sink.abandon();
        result.responded = begun;
        co_return;
      }
      Error err = std::move(piece.error());
      if (!begun) {
        sink.abandon();
        fail(std::move(err), err.code == Errc::upstream_protocol);
        co_return;
      }
      state.count(outcome_of_error(err));
      verdict.failure();
      spdlog::warn("request {}: stream from {} failed: {}", ctx.request->request_id,
                   runtime.origin.key, err.message);
      ctx.trace->stream_error = true;
      co_await sink.fail_stream(err.code == Errc::upstream_timeout ? 504 : 502,
                                "The upstream stream failed before it finished: " + err.message);
      co_await sink.end_stream();
      result.responded = true;
      co_return;
    }
    if (!piece->empty()) {
      // Room for every event the read can hold (an SSE event is at least ~100 bytes of JSON
      // in any of the three formats), so decoding never moves events to grow the vector.
      const size_t room = std::min<size_t>(piece->size() / 64 + 4, 1024);
      if (events.capacity() < room) events.reserve(room);
      decoder->feed(*piece, events);
    }
    const bool complete = call.body_complete();
    if (complete) decoder->finish(events);
    if (!begun && !events.empty()) {
      if (auto err = early_error()) {
        call.finish();
        state.count(AttemptOutcome::upstream_error);
        verdict.failure();
        result.retryable = err->retryable && !sink.gone();
        result.error = std::move(*err);
        co_return;
      }
      if (!co_await begin()) break;
    }
    if (!events.empty()) {
      observe_events();
      const bool sent = co_await sink.events(events);
      events.clear();
      // A held stream keeps no large batch buffer between its small reads.
      if (events.capacity() > 64) events = {};
      if (!sent) break;
    }
    if (complete || ended) {
      call.finish();
      co_await sink.end_stream();
      if (responder.error_kind().empty()) {
        state.count(AttemptOutcome::success);
        verdict.success();
      } else {
        state.count(AttemptOutcome::protocol_error);
        verdict.failure();
      }
      result.responded = true;
      co_return;
    }
  }
  // The client went away mid-stream: not the target's fault.
  sink.abandon();
  verdict.success();
  result.responded = true;
  co_return;
}

}  // namespace sluice::api
