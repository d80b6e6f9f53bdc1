// What one client request carries from its decoding through the stages and every attempt of
// the dispatcher (ARCHITECTURE.md §1: identity, route, deadline, raw body, canonical view, RAII
// holds). Everything a stage or an attempt acquires for the request is a member here, released
// by its destructor however the request ends.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "api/governance.h"
#include "api/stage.h"
#include "api/telemetry.h"
#include "canonical/canonical.h"
#include "http/server.h"
#include "providers/request.h"
#include "upstream/client.h"

namespace sluice::api {

class ResponseSink;

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

/// What one worker thread owns and lends to the requests it serves.
struct WorkerContext {
  upstream::Pool* pool = nullptr;
  governance::RedisRateLimiter* redis = nullptr;  // null unless rate_limits.backend is redis
};


/// Whether the caller may be served `model` (a fallback or a larger-context route picked by the
/// dispatcher). Set by the stage that authorizes models; null when nothing restricts them.
class ModelAccess {
 public:
  virtual ~ModelAccess() = default;
  virtual bool allows(const RequestContext& ctx, std::string_view model) const = 0;
};

/// Everything one client request carries through its stages and attempts.
struct RequestContext {
  providers::ParsedRequest parsed;
  http::Request* request = nullptr;
  http::Responder* responder = nullptr;
  WorkerContext* worker = nullptr;
  upstream::Pool* pool = nullptr;
  Clock::time_point deadline;
  int attempts = 0;
  // Cancellation when the client leaves: the live upstream call and the backoff timer.
  upstream::Call* live_call = nullptr;
  asio::steady_timer* sleeper = nullptr;
  // Governance: the token reservation (settled or refunded on every path by its destructor)
  // and what the upstream says was used.
  Reservation reservation;
  std::string served_model;  // a fallback's model when one answered ("" = the client's)
  const Identity* who = nullptr;
  const ModelAccess* model_access = nullptr;  // null: every routed model is allowed
  StageChain* stages = nullptr;  // the stages that ran on this request (settle())
  bool succeeded = false;
  std::optional<UsageTokens> usage;  // as the upstream reported it
  int64_t stream_events = 0;         // content events relayed (an estimate when no usage)
  Trace* trace = nullptr;
  // Where a canonical answer (translated, demo) goes; null: the client, through an HttpSink in
  // its protocol. Set by consumers that want the result rather than the wire (sink.h).
  ResponseSink* sink = nullptr;
  // The client's protocol, and the canonical request: decoded up front for Anthropic and Gemini
  // clients, on the first translated attempt for OpenAI clients (never on the fast path).
  canonical::Protocol ingress = canonical::Protocol::openai;
  std::optional<canonical::Request> canon;
  // The client's wire is not one any upstream speaks (the Responses API): every target,
  // OpenAI-compatible ones included, is served through the canonical model and ctx.sink.
  bool canonical_only = false;
  // Messages at the front of ctx.canon the gateway replayed from its store (a Responses
  // request's history): not part of the client's new turn.
  size_t replayed_messages = 0;
  // The route the request was matched to (set once routed).
  const config::RouteConfig* route = nullptr;
  // The response cache: the answer came from it (cost_factor: the share of the normal cost
  // charged), and what a miss holds until its answer is stored (the tee sink, the
  // single-flight lead; api/cache_stage.h).
  bool cache_hit = false;
  double cost_factor = 1;
  std::shared_ptr<void> cache_fill;

  /// Adds the time since `since` to the upstream phase (time not charged as overhead).
  void waited_since(Clock::time_point since) const {
    http::Timing::add_since(request->timing->upstream_ns, since);
  }

  /// Runs the stages' on_finish (usage record, reservation settlement), once. The dispatcher
  /// calls it before it writes a unary answer (so a client's next request already sees this
  /// spend) and again when the request ends (a no-op when it already ran).
  void settle() {
    if (stages) stages->finish(*this);
  }

  /// True when the caller may be served `model` (see ModelAccess).
  bool may_use(std::string_view model) const {
    return model_access == nullptr || model_access->allows(*this, model);
  }
};

/// Decodes an Anthropic or Gemini client's body into ctx.canon and fills ctx.parsed from it
/// (translate.cc). OpenAI clients are parsed by providers::parse_request instead.
Result<void> decode_client_request(RequestContext& ctx);
/// Checks ctx.canon (model, max_tokens) and fills ctx.parsed from it.
Result<void> adopt_canonical_request(RequestContext& ctx);

}  // namespace sluice::api
