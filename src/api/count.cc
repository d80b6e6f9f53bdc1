// Token counting (/v1/messages/count_tokens, Gemini :countTokens) through the dispatcher: a
// target whose provider counts (Anthropic, Gemini) is asked, with the same breakers, retries,
// concurrency limits and fallbacks as a generation; the count comes back in the client's shape
// with `x-sluice-token-count: exact`. Any other target (OpenAI-compatible, demo), or a request
// no counting upstream could answer, gets an estimate marked `x-sluice-token-count: estimate`.
#include <spdlog/spdlog.h>

#include "api/attempt.h"
#include "api/dispatcher.h"
#include "api/model_endpoints.h"
#include "api/protocols.h"
#include "api/proxy_util.h"
#include "canonical/codec.h"
#include "providers/openai.h"

namespace sluice::api {

using routing::AttemptOutcome;

asio::awaitable<void> Dispatcher::serve_count_estimate(RequestContext& ctx, std::string_view why) {
  http::Responder& responder = *ctx.responder;
  responder.add_header("x-sluice-token-count", "estimate");
  responder.add_header("x-sluice-token-count-reason", why);
  ctx.succeeded = true;
  const std::string body =
      canonical::encode_count(ctx.ingress, estimate_count_tokens(ctx.request->body));
  co_await responder.send(200, "application/json", body);
}

asio::awaitable<void> Dispatcher::attempt_count(RequestContext& ctx, TargetRuntime& runtime,
                                                BreakerVerdict& verdict,
                                                std::string_view model_override,
                                                AttemptResult& result) {
  routing::TargetState& state = runtime.state;
  const config::TargetConfig& target = state.config;
  const canonical::Protocol egress = protocol_of(target.provider);
  std::string_view upstream_model = !target.model.empty()   ? std::string_view(target.model)
                                    : !model_override.empty() ? model_override
                                                              : std::string_view(ctx.parsed.model);
  const std::string body = canonical::encode_count_request(egress, *ctx.canon, upstream_model);
  std::string escaped_model;
  providers::append_path_segment(escaped_model, upstream_model);
  const std::string path = canonical::count_path(egress, escaped_model);
  upstream::Call call(*ctx.pool, runtime.origin, target.timeouts, ctx.deadline);
  LiveCall live(ctx, call);
  const bool opened = co_await open_exchange(ctx, runtime, verdict, egress, path, body, call,
                                             result);
  if (!opened) co_return;
  auto read_at = Clock::now();
  auto raw = co_await call.read_all(kMaxUpstreamErrorBody);
  ctx.waited_since(read_at);
  if (!raw) {
    fail_attempt(result, std::move(raw.error()), false, call, *ctx.responder, state, verdict);
    co_return;
  }
  auto tokens = canonical::decode_count(egress, *raw);
  call.finish();
  if (!tokens) {
    Error e = make_error(Errc::upstream_protocol, "Upstream " + upstream_label(runtime) +
                                                      " answered its token count with " +
                                                      tokens.error().message);
    fail_attempt(result, std::move(e), true, call, *ctx.responder, state, verdict);
    co_return;
  }
  state.count(AttemptOutcome::success);
  verdict.success();
  ctx.succeeded = true;
  http::Responder& responder = *ctx.responder;
  responder.add_header("x-sluice-token-count", "exact");
  responder.add_header("x-sluice-attempts", std::to_string(ctx.attempts));
  const std::string answer = canonical::encode_count(ctx.ingress, *tokens);
  co_await responder.send(200, "application/json", answer);
  result.responded = true;
  co_return;
}

}  // namespace sluice::api
