// The built-in demo model (provider: demo): answers in process, in the client's protocol, as a
// whole answer or as a stream of its words. Used by the default config and by tests.
#include <cstdio>
#include <random>

#include "api/attempt.h"
#include "api/sink.h"
#include "api/dispatcher.h"
#include "api/proxy_util.h"
#include "canonical/codec.h"
#include "canonical/events.h"
#include "common/saturating.h"
#include "providers/demo.h"
#include "providers/openai.h"
#include "providers/openai_format.h"

namespace sluice::api {

using providers::Operation;

namespace {

/// The text of the last user turn (what the demo model answers).
std::string last_user_text(const canonical::Request& req) {
  for (auto it = req.messages.rbegin(); it != req.messages.rend(); ++it) {
    if (it->role != canonical::Role::user) continue;
    std::string text;
    for (const auto& b : it->content) {
      if (b.kind == canonical::BlockKind::text) text += b.text;
    }
    if (!text.empty()) return text;
  }
  return {};
}

}  // namespace

asio::awaitable<void> Dispatcher::serve_demo(const providers::ParsedRequest& parsed,
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
  co_await responder.write_chunk(tail, true);  // the body ends in the same write
}

asio::awaitable<void> Dispatcher::serve_demo_translated(RequestContext& ctx, UsageTokens* usage) {
  const canonical::Request& req = *ctx.canon;
  std::string prompt = last_user_text(req);
  canonical::Response answer;
  answer.id = "demo-" + std::string(ctx.request->request_id);
  answer.model = ctx.parsed.model;
  canonical::Block text;
  text.text = providers::demo_answer(prompt);
  answer.usage.input = sat_add(providers::estimate_tokens(prompt), 8);
  answer.usage.output = static_cast<int64_t>(providers::split_words(text.text).size());
  answer.usage.reported = true;
  answer.content.push_back(std::move(text));
  answer.stop_reason = canonical::StopReason::end_turn;
  if (usage) *usage = usage_tokens(answer.usage);
  if (ctx.sink != nullptr) {
    co_await ctx.sink->answer(answer);
    co_return;
  }
  HttpSink sink(*ctx.responder, ctx.ingress, req, router_->config().metrics.validate_streams,
                ctx.request->request_id);
  co_await sink.answer(answer);
}

}  // namespace sluice::api
