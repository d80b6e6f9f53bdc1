// Sessions: dialog turns and weighted memories kept by the gateway (store/state_store.h), and
// the augmentation of any chat, messages or responses request that names a session in
// `x-sluice-session`: its new turn is recorded, memories are scored against it, and the context
// is packed into the model's window (sessions/context.h). Sluice's own API:
//   POST/GET /v1/sessions, GET/DELETE /v1/sessions/{id}
//   POST/GET /v1/sessions/{id}/turns
//   POST/GET /v1/sessions/{id}/memories, GET/POST/DELETE /v1/sessions/{id}/memories/{mid},
//   GET /v1/sessions/{id}/memories/search?q=&k=&explain=1
// Store layout: record "sess:<id>" = {"owner","session"}; list "turns:<id>" (a turn's number is
// its position); list "mems:<id>"; list "sessions:<owner>" (the owner's session ids).
// Memories are never deleted by a contradiction: a new text for an open key closes the old one
// (valid_to), the same text again raises its weight.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "api/request_context.h"
#include "api/sink.h"
#include "canonical/json.h"
#include "config/config.h"
#include "http/server.h"
#include "store/state_service.h"

namespace sluice::api {

namespace asio = boost::asio;

class SessionsApi;
struct MemorySnapshot;  // a session's open memories, parsed and indexed (sessions.cc)

/// One augmented request's session state: where its answer goes (the client's sink, after the
/// turn is recorded) and what the turn holds.
class SessionTurn final : public ResponseSink {
 public:
  SessionTurn(SessionsApi& api, std::string session_id, std::string record,
              canonical::json::array user_items, std::unique_ptr<HttpSink> own_sink,
              ResponseSink* inner);
  asio::awaitable<void> answer(const canonical::Response& r) override;
  asio::awaitable<bool> begin_stream() override { return inner_->begin_stream(); }
  asio::awaitable<bool> events(const std::vector<canonical::Event>& events) override;
  asio::awaitable<void> fail_stream(int status, std::string_view message) override {
    return inner_->fail_stream(status, message);
  }
  asio::awaitable<void> end_stream() override { return inner_->end_stream(); }
  bool gone() const override { return inner_->gone(); }
  void abandon() override { inner_->abandon(); }

 private:
  asio::awaitable<void> record(const canonical::Response& r);
  SessionsApi& api_;
  std::string session_id_, record_;
  canonical::json::array user_items_;
  std::unique_ptr<HttpSink> own_sink_;  // when the client had no sink of its own
  ResponseSink* inner_;
  canonical::ResponseBuilder builder_;
  bool recorded_ = false;
  std::shared_ptr<void> pin_;
  friend class SessionsApi;
};

class SessionsApi {
 public:
  SessionsApi(std::shared_ptr<store::StateService> state, const config::StateConfig& config,
              bool validate_streams);

  /// Every /v1/sessions path (`api_path` without "/v1").
  asio::awaitable<void> serve(http::Request& request, http::Responder& responder,
                              std::string_view api_path, const std::string& owner);

  /// Augments a routed chat request (ctx.canon decoded here when the client spoke OpenAI chat)
  /// with the session's memories and turns packed into the route's context window (or the
  /// default) less the max_tokens that will be sent (the route's default_max_tokens when the
  /// client named none), sets
  /// ctx.sink to the returned turn (which records the exchange before the answer's last byte),
  /// and reports x-sluice-context-tokens, -turns-evicted and -memories-used. Errors: 404
  /// unknown session, 400 not a chat request, 503 store unreachable.
  asio::awaitable<Result<std::unique_ptr<SessionTurn>>> augment(RequestContext& ctx,
                                                                 const std::string& session_id,
                                                                 const std::string& owner,
                                                                 const config::RouteConfig& route);

 private:
  friend class SessionTurn;
  asio::awaitable<void> serve_memories(http::Request& request, http::Responder& responder,
                                       const std::string& id, std::string_view sub,
                                       const std::string& record);
  /// Appends a turn and keeps the session alive (idle TTL) for as long again.
  asio::awaitable<Result<int64_t>> append_turn(const std::string& id, const std::string& record,
                                               canonical::json::array&& items,
                                               const std::string& intent);
  /// The session's open memories, parsed and indexed: the cached snapshot while the session's
  /// memory version ("memver:<id>", stamped after every memory write) is unchanged, so a search
  /// or an augmented request reads and indexes them again only after a write. Runs on the
  /// store's side (inside a run()).
  Result<std::shared_ptr<const MemorySnapshot>> memories_of(store::StateStore& s,
                                                            const std::string& id);

  std::shared_ptr<store::StateService> state_;
  config::StateConfig::Sessions config_;
  bool validate_streams_;
  struct CacheEntry {
    std::list<std::string>::iterator lru;
    std::shared_ptr<const MemorySnapshot> snapshot;
  };
  std::mutex cache_mu_;
  std::list<std::string> cache_lru_;  // session ids, most recently used first
  std::unordered_map<std::string, CacheEntry> cache_;
};

}  // namespace sluice::api
