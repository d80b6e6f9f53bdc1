// The same-protocol attempt (Dispatcher::attempt): an OpenAI client on an OpenAI-compatible
// target. The body is spliced at the model token and SSE events are relayed byte for byte,
// only read (usage, errors). A stream that fails before its first event is retried.
#include <spdlog/spdlog.h>

#include <cstring>

#include "api/attempt.h"
#include "api/dispatcher.h"
#include "api/proxy_util.h"
#include "common/saturating.h"
#include "http/parse/sse_scan.h"
#include "providers/openai.h"
#include "providers/response_check.h"
#include "providers/usage_report.h"

namespace sluice::api {

using providers::Operation;
using routing::AttemptOutcome;

namespace {

// An upstream's 4xx/5xx answer to a same-protocol attempt: read, turned into the client's
// error (retryable or not) and the breaker's verdict. Its own coroutine, so that its locals
// are not in the frame of every attempt (a held stream keeps that frame).
asio::awaitable<void> take_error_answer(RequestContext& ctx, TargetRuntime& runtime,
                                        BreakerVerdict& verdict, upstream::Call& call,
                                        AttemptResult& result, const std::string& content_type,
                                        const std::string& label, bool expose) {
  routing::TargetState& state = runtime.state;
  const int status = call.status();
  auto retry_after = upstream_retry_after(call.head());
  auto read_at = Clock::now();
  auto body = co_await call.read_all(kMaxUpstreamErrorBody);
  ctx.waited_since(read_at);
  std::string_view text = body ? *body : std::string_view{};
  // Everything read from the body is taken before finish(), which releases its buffer.
  Error e = upstream_status_error(status, text, content_type, retry_after, label, expose);
  bool context_length = is_context_length_error(status, text);
  if (!expose && status >= 500 && !text.empty()) {
    spdlog::info("request {}: upstream {} answered {}: {}", ctx.request->request_id,
                 runtime.origin.key, status, text.substr(0, 300));
  }
  call.finish();
  if (e.retryable) {
    state.count(AttemptOutcome::upstream_error);
    verdict.failure();
    result.retryable = !ctx.responder->client_gone();
  } else {
    // The upstream is healthy; the request is at fault (or too long for this model).
    state.count(AttemptOutcome::success);
    verdict.success();
    result.context_length = context_length;
  }
  result.error = std::move(e);
}

}  // namespace

asio::awaitable<void> Dispatcher::attempt(RequestContext& ctx, TargetRuntime& runtime,
                                          BreakerVerdict& verdict,
                                          std::string_view model_override,
                                          AttemptResult& result) {
  routing::TargetState& state = runtime.state;
  const config::TargetConfig& target = state.config;
  http::Responder& responder = *ctx.responder;

  providers::EncodedRequest encoded;
  providers::encode_openai_request(ctx.parsed, target, *ctx.request->head,
                                   ctx.request->request_id, encoded, model_override);
  std::array<asio::const_buffer, 4> wire{
      asio::buffer(encoded.head),
      asio::buffer(encoded.body_prefix.data(), encoded.body_prefix.size()),
      asio::buffer(encoded.model_token),
      asio::buffer(encoded.body_suffix.data(), encoded.body_suffix.size())};

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
  // A request the client marked idempotent may be re-sent at once when a reused connection
  // turns out to have been closed by the upstream; any other waits for the retry policy.
  const bool replayable = !ctx.request->header("idempotency-key").empty();
  auto started = co_await call.start(wire, replayable);
  ctx.waited_since(started_at);
  if (!started) {
    // Connection failures — refused, reset, or closed before a single response byte — are
    // always retryable: the upstream produced nothing and (for refused) never saw the request.
    // Timeouts after the request was sent only when the route says so: the upstream may still
    // be doing (and billing) the work.
    bool connect = started.error().code == Errc::upstream_connect ||
                   started.error().code == Errc::unavailable;
    result.free_retry = connect;
    fail(std::move(started.error()), connect);
    co_return;
  }
  state.observe_ttfb(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_at).count()));
  int status = call.status();
  // Copied now: the head's views die with the first body read.
  std::string content_type(call.head().header("content-type"));
  // The gateway asks for identity encoding; an upstream that compresses anyway must say so.
  std::string extra_headers;
  if (std::string_view enc = call.head().header("content-encoding"); !enc.empty()) {
    extra_headers = "Content-Encoding: " + std::string(enc) + "\r\n";
  }

  if (status >= 400) {
    co_await take_error_answer(ctx, runtime, verdict, call, result, content_type, label, expose);
    co_return;
  }

  bool is_sse = content_type.starts_with("text/event-stream");
  if (!(ctx.parsed.stream && is_sse)) {
    auto read_at = Clock::now();
    auto body = co_await call.read_all(kMaxUpstreamBody);
    ctx.waited_since(read_at);
    if (!body) {
      fail(std::move(body.error()), false);
      co_return;
    }
    // A compressed answer (the upstream ignored our identity Accept-Encoding) is relayed as
    // is: checking it would mean inflating it.
    std::optional<UsageTokens> usage;
    bool usage_read = false;  // the check read it from its parse; else the body is scanned
    if (auto problem = extra_headers.empty() ? providers::check_unary_answer(
                                                   ctx.parsed.op, *body, &usage, &usage_read)
                                             : std::nullopt) {
      // A 2xx the client's SDK could not use: an upstream protocol error, retried like one
      // (nothing reached the client yet). The connection itself is fine.
      spdlog::warn("request {}: upstream {} answered HTTP {} with {}", ctx.request->request_id,
                   runtime.origin.key, status, *problem);
      Error bad = make_error(Errc::upstream_protocol,
                             "Upstream " + label + " answered HTTP " + std::to_string(status) +
                                 " with " + *problem);
      call.finish();
      fail(std::move(bad), true);
      co_return;
    }
    if (content_type.empty()) content_type = "application/json";
    ctx.succeeded = true;
    ctx.usage = usage_read ? usage : parse_usage(*body);
    state.count(AttemptOutcome::success);
    verdict.success();
    // Before the answer is written: a client's next request already sees this spend.
    ctx.settle();
    responder.add_header("x-sluice-attempts", std::to_string(ctx.attempts));
    co_await responder.send(status, content_type, *body, extra_headers);
    call.finish();
    result.responded = true;
    co_return;
  }

  // SSE relay. Nothing goes to the client until the first complete event is in hand, so a
  // stream that dies before it can still be retried. After that, bytes are forwarded as
  // whole events, byte for byte; an incomplete tail waits for its end, so an error event can
  // only ever follow a whole event.
  // The upstream's Content-Encoding (if any) goes with the stream too.
  std::string with_encoding;
  std::string_view stream_headers = kStreamHeaders;
  if (!extra_headers.empty()) {
    with_encoding.assign(kStreamHeaders);
    with_encoding += extra_headers;
    stream_headers = with_encoding;
  }
  http::SseEventBuffer events(kMaxSseEventBytes);
  providers::SseStreamObserver observer(kMaxSseEventBytes);
  bool begun = false;
  observe::GaugeHold open_stream;  // sluice_open_streams while this relay is live
  // Relayed bytes always end at an event boundary. Content events are counted exactly as
  // SseParser counts them (comments and [DONE] are not); only chunks that may carry a usage
  // object are parsed. Telemetry is stamped once per chunk, and not for comment-only chunks.
  auto observe_chunk = [&](std::string_view ready) {
    const size_t n = observer.observe(ready, ctx.usage);
    ctx.stream_events += static_cast<int64_t>(n);
    telemetry_.on_stream_events(*ctx.trace, n);
  };
  for (;;) {
    auto read_at = Clock::now();
    auto piece = co_await call.read_some();
    ctx.waited_since(read_at);
    if (!piece) {
      if (responder.client_gone()) {
        result.responded = begun;
        co_return;
      }
      Error err = std::move(piece.error());
      if (!begun) {
        // Cut before the first event: a broken connection is as safe to retry as a 5xx.
        fail(std::move(err), err.code == Errc::upstream_protocol);
        co_return;
      }
      state.count(outcome_of_error(err));
      verdict.failure();
      std::string_view code =
          err.code == Errc::upstream_timeout ? "upstream_timeout" : "upstream_stream_error";
      spdlog::warn("request {}: stream from {} failed: {}", ctx.request->request_id,
                   runtime.origin.key, err.message);
      std::string event = stream_error_event(
          "The upstream stream failed before it finished: " + err.message, code);
      ctx.trace->stream_error = true;
      responder.note_error(code == "upstream_timeout" ? "upstream_timeout"
                                                      : "upstream_stream_error");
      co_await responder.write_chunk(event);
      // The client's connection is healthy and the chunked body ends cleanly, so it stays
      // usable; only the upstream connection is discarded.
      co_await responder.end_stream();
      result.responded = true;
      co_return;
    }
    std::string_view bytes = *piece;
    if (!bytes.empty()) {
      // Whole events; the common case (a read of whole events) is the read itself, no copy.
      std::string_view ready = events.push(bytes);
      if (events.too_large()) {
        // An event that never ends (or is too large): the upstream is broken or hostile.
        Error err = make_error(Errc::upstream_protocol,
                               "Upstream " + label + " sent an SSE event larger than " +
                                   std::to_string(kMaxSseEventBytes) + " bytes");
        if (!begun) {
          fail(std::move(err), false);
          co_return;
        }
        state.count(AttemptOutcome::protocol_error);
        verdict.failure();
        std::string event = stream_error_event(err.message, "upstream_stream_error");
        ctx.trace->stream_error = true;
        responder.note_error("upstream_stream_error");
        co_await responder.write_chunk(event);
        co_await responder.end_stream();
        result.responded = true;
        co_return;
      }
      if (!ready.empty()) {
        if (!begun) {
          begun = true;
          ctx.succeeded = true;
          responder.add_header("x-sluice-attempts", std::to_string(ctx.attempts));
          if (telemetry_.metrics_on()) open_stream.hold(telemetry_.open_streams);
          if (!co_await responder.begin_stream(status, content_type, stream_headers)) break;
        }
        observe_chunk(ready);
        // The upstream's body ended with these events: the chunked body ends in the same write.
        const bool last = call.body_complete() && events.pending().empty();
        if (!co_await responder.write_chunk(ready, last)) break;
      }
    }
    if (call.body_complete()) {
      if (!begun) {
        // A stream that ended before its first event is still the upstream's answer.
        begun = true;
        ctx.succeeded = true;
        responder.add_header("x-sluice-attempts", std::to_string(ctx.attempts));
        if (!co_await responder.begin_stream(status, content_type, stream_headers)) break;
      }
      // A clean end: forward a trailing partial event as is (the upstream chose to end there);
      // it may still complete an event (a last CR that no LF followed).
      if (!events.pending().empty()) {
        observe_chunk(events.pending());
        if (!co_await responder.write_chunk(events.pending())) break;
      }
      call.finish();
      co_await responder.end_stream();  // (already ended when the last events carried the end)
      state.count(AttemptOutcome::success);
      verdict.success();
      result.responded = true;
      co_return;
    }
  }
  // The client went away mid-stream: not the target's fault.
  verdict.success();
  result.responded = true;
  co_return;
}

}  // namespace sluice::api
