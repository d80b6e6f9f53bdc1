// The translated path: a client protocol other than OpenAI (Anthropic Messages, Gemini), or a
// target that speaks another protocol than the client. The request is decoded into the
// canonical model once, encoded for each target's protocol per attempt; answers and streams
// are decoded into canonical responses / events and encoded in the client's protocol as they
// arrive. The retry rules are the fast path's: nothing is retried once a byte reached the
// client, and a stream that fails before its first event is retried like any failure.
#include <spdlog/spdlog.h>

#include <boost/asio/this_coro.hpp>

#include "api/attempt.h"
#include "api/dispatcher.h"
#include "api/protocols.h"
#include "api/proxy_util.h"
#include "api/stream_check.h"
#include "canonical/codec.h"
#include "canonical/events.h"
#include "canonical/json.h"
#include "providers/openai.h"
#include "providers/openai_format.h"

namespace sluice::api {

using providers::Operation;
using routing::AttemptOutcome;

namespace {

canonical::Protocol protocol_of(config::ProviderKind k) {
  switch (k) {
    case config::ProviderKind::anthropic: return canonical::Protocol::anthropic;
    case config::ProviderKind::gemini: return canonical::Protocol::gemini;
    default: return canonical::Protocol::openai;
  }
}

}  // namespace

Result<void> decode_client_request(RequestContext& ctx) {
  canonical::FrontendContext fc;
  if (ctx.ingress == canonical::Protocol::gemini) {
    GeminiTarget g = gemini_target(ctx.request->path());
    fc.model = std::string(g.model);
    fc.stream = g.method == "streamGenerateContent";
  }
  auto decoded = canonical::decode_request(ctx.ingress, ctx.request->body, fc);
  if (!decoded) return std::move(decoded.error());
  ctx.canon = std::move(decoded.value());
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
  p.op = Operation::chat;
  p.body = ctx.request->body;
  p.model = req.model;
  p.stream = req.stream;
  p.include_usage = req.include_usage;
  p.max_tokens = max_tokens;
  return {};
}

asio::awaitable<AttemptResult> Dispatcher::attempt_translated(
    RequestContext& ctx, TargetRuntime& runtime, BreakerVerdict& verdict,
    std::string_view model_override) {
  AttemptResult result;
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
    co_return result;
  }
  if (!ctx.canon) {  // an OpenAI client on a route to another protocol: decoded once
    auto decoded = canonical::decode_request(canonical::Protocol::openai, ctx.request->body, {});
    if (!decoded) {
      verdict.abandon();
      result.error = std::move(decoded.error());
      co_return result;
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
  std::string head = "POST ";
  head += target.base_path;
  head += canonical::upstream_path(egress, escaped_model, req.stream);
  providers::render_upstream_head(target, *ctx.request->head, ctx.request->request_id,
                                  body.size(), head);
  std::array<asio::const_buffer, 2> wire{asio::buffer(head), asio::buffer(body)};

  upstream::Call call(*ctx.pool, runtime.origin, target.timeouts, ctx.deadline);
  LiveCall live(ctx, call);

  // Upstreams are named by target in client-facing messages unless errors.expose_upstream.
  const bool expose = router_->config().expose_upstream_errors;
  const std::string& label = expose || target.name.empty() ? runtime.origin.key : target.name;
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
    co_return result;
  }
  state.observe_ttfb(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_at).count()));
  const int status = call.status();
  std::string content_type(call.head().header("content-type"));
  if (!call.head().header("content-encoding").empty()) {
    // We ask for identity; a compressed answer cannot be translated.
    call.finish();
    fail(make_error(Errc::upstream_protocol,
                    "Upstream " + label + " answered with a Content-Encoding the gateway "
                                          "cannot translate"),
         true);
    co_return result;
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
    co_return result;
  }

  const bool is_sse = content_type.starts_with("text/event-stream");
  if (!is_sse) {
    auto read_at = Clock::now();
    auto raw = co_await call.read_all(kMaxUpstreamBody);
    ctx.waited_since(read_at);
    if (!raw) {
      fail(std::move(raw.error()), false);
      co_return result;
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
      co_return result;
    }
    canonical::Response& answer = decoded.value();
    answer.model = ctx.parsed.model;  // the name the client used
    ctx.succeeded = true;
    if (answer.usage.reported) ctx.usage = usage_tokens(answer.usage);
    state.count(AttemptOutcome::success);
    verdict.success();
    ctx.settle();
    responder.add_header("x-sluice-attempts", std::to_string(ctx.attempts));
    if (req.stream) {
      // The client asked for a stream and the upstream answered whole: replay it as one.
      auto encoder = canonical::stream_encoder(ctx.ingress, req);
      std::string out;
      for (const auto& e : canonical::events_of(answer)) encoder->on_event(e, out);
      encoder->finish(out);
      if (co_await responder.begin_stream(200, "text/event-stream", kStreamHeaders)) {
        if (co_await responder.write_chunk(out)) co_await responder.end_stream();
      }
    } else {
      co_await responder.send(200, "application/json",
                              canonical::encode_response(ctx.ingress, answer, req));
    }
    result.responded = true;
    co_return result;
  }

  // A translated stream: upstream bytes → canonical events → the client's protocol, one
  // gathered write per upstream read. Nothing is sent before the first event, so a stream
  // that fails before it is retried.
  auto decoder = canonical::stream_decoder(egress);
  auto encoder = canonical::stream_encoder(ctx.ingress, req);
  StreamCheck check(router_->config().metrics.validate_streams, ctx.ingress,
                    ctx.request->request_id);
  // Everything written to the client goes through here (and the check, when it is on).
  auto send = [&](std::string_view bytes) -> asio::awaitable<bool> {
    check.feed(bytes);
    co_return co_await responder.write_chunk(bytes);
  };
  std::vector<canonical::Event> events;
  std::string out;
  bool begun = false;
  bool ended = false;  // message_stop or an error event was encoded
  observe::GaugeHold open_stream;
  // Encodes `events` into `out`, taking usage from them; an error event or message_stop ends
  // the stream (sets `ended`).
  auto encode = [&]() {
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
          encoder->fail(e.status > 0 ? e.status : 502, e.text, out);
          ctx.trace->stream_error = true;
          responder.note_error("upstream_stream_error");
          ended = true;
          continue;
        case canonical::EventKind::message_stop:
          encoder->on_event(e, out);
          encoder->finish(out);
          ended = true;
          continue;
        default: break;
      }
      encoder->on_event(e, out);
    }
    ctx.stream_events += static_cast<int64_t>(content);
    telemetry_.on_stream_events(*ctx.trace, content);
    events.clear();
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
    co_return co_await responder.begin_stream(200, "text/event-stream", kStreamHeaders);
  };
  for (;;) {
    auto read_at = Clock::now();
    auto piece = co_await call.read_some();
    ctx.waited_since(read_at);
    if (!piece) {
      if (responder.client_gone()) {
        check.abandon();
        result.responded = begun;
        co_return result;
      }
      Error err = std::move(piece.error());
      if (!begun) {
        check.abandon();
        fail(std::move(err), err.code == Errc::upstream_protocol);
        co_return result;
      }
      state.count(outcome_of_error(err));
      verdict.failure();
      spdlog::warn("request {}: stream from {} failed: {}", ctx.request->request_id,
                   runtime.origin.key, err.message);
      out.clear();
      encoder->fail(err.code == Errc::upstream_timeout ? 504 : 502,
                    "The upstream stream failed before it finished: " + err.message, out);
      ctx.trace->stream_error = true;
      responder.note_error(err.code == Errc::upstream_timeout ? "upstream_timeout"
                                                              : "upstream_stream_error");
      co_await send(out);
      co_await responder.end_stream();
      result.responded = true;
      co_return result;
    }
    if (!piece->empty()) decoder->feed(*piece, events);
    const bool complete = call.body_complete();
    if (complete) decoder->finish(events);
    if (!begun && !events.empty()) {
      if (auto err = early_error()) {
        call.finish();
        state.count(AttemptOutcome::upstream_error);
        verdict.failure();
        result.retryable = err->retryable && !responder.client_gone();
        result.error = std::move(*err);
        co_return result;
      }
      if (!co_await begin()) break;
    }
    if (!events.empty()) {
      out.clear();
      encode();
      if (!out.empty() && !co_await send(out)) break;
    }
    if (complete || ended) {
      call.finish();
      co_await responder.end_stream();
      if (responder.error_kind().empty()) {
        state.count(AttemptOutcome::success);
        verdict.success();
      } else {
        state.count(AttemptOutcome::protocol_error);
        verdict.failure();
      }
      result.responded = true;
      co_return result;
    }
  }
  // The client went away mid-stream: not the target's fault.
  check.abandon();
  verdict.success();
  result.responded = true;
  co_return result;
}

}  // namespace sluice::api
