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
#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "api/local_call.h"
#include "api/request_context.h"
#include "api/sink.h"
#include "canonical/json.h"
#include "config/config.h"
#include "http/server.h"
#include "sessions/context.h"
#include "store/state_service.h"

namespace sluice::api {

namespace asio = boost::asio;

class SessionsApi;
struct MemorySnapshot;  // a session's open memories, parsed and indexed (sessions.cc)

/// What the work after a turn needs (session_jobs.cc): who asked (the calls run as them, on
/// their limits and budgets), the route's tuning, and what augment() learnt.
struct AfterTurn {
  std::string session_id;
  Identity who;
  WorkerContext* worker = nullptr;
  config::SessionTuning tuning;
  std::chrono::milliseconds life{0};       // the session's TTL when the turn came
  std::vector<std::string> known_keys;     // open memory keys, for the extraction prompt
  std::vector<store::ListItem> to_summarize;  // evicted, unsummarized turns, oldest first
};

/// The outcome of writing one memory (upsert_memory).
struct MemoryWrite {
  enum Action { added, reinforced, superseded } action = added;
  canonical::json::object memory;  // as stored
  bool needs_embedding = false;    // its text has no vector yet
};

/// Writes memory `mem` of session `id` as one atomic step: the same open fact again raises its
/// weight, a new text for an open key closes the old one (valid_to) and is added, else it is
/// added; the session's memory version is stamped after.
Result<MemoryWrite> upsert_memory(store::StateStore& store, const std::string& id,
                                  const canonical::json::object& mem, int64_t now_s,
                                  std::chrono::milliseconds life);
/// Counts a memory write (sluice_session_memory_writes_total{action}).
void count_fact(MemoryWrite::Action action);
/// A memory as the API shows it (without its vector).
std::string memory_json(canonical::json::object m);

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
  std::shared_ptr<AfterTurn> after_;  // null: nothing to do after the turn
  friend class SessionsApi;
};

class SessionsApi {
 public:
  /// `caller` makes the model calls of extraction, summaries and embeddings.
  SessionsApi(std::shared_ptr<store::StateService> state, const config::StateConfig& config,
              bool validate_streams, LocalCaller& caller);

  /// Every /v1/sessions path (`api_path` without "/v1"); `who` and `worker` for the embedding
  /// calls of memory writes and searches.
  asio::awaitable<void> serve(http::Request& request, http::Responder& responder,
                              std::string_view api_path, const std::string& owner,
                              const Identity& who, WorkerContext& worker);

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
                                       const std::string& record, const Identity& who,
                                       WorkerContext& worker);
  // ---- the work after a turn, off the request path (session_jobs.cc) ----
  /// Starts extraction (when the route has an extract_model) and a summary (when evicted turns
  /// wait for one) for turn `seq`, whose messages read as `transcript`.
  void after_turn(asio::any_io_executor ex, std::shared_ptr<AfterTurn> after, int64_t seq,
                  std::string transcript);
  /// Embeds a memory's text and stores the vector with it (when an embeddings model is set).
  void start_embedding(asio::any_io_executor ex, const std::string& id,
                       const canonical::json::object& memory, const Identity& who,
                       WorkerContext& worker, std::chrono::milliseconds life);
  /// A background job may start (at most state.sessions.background_jobs at once); the hold
  /// keeps the gateway alive until it ends. Null: dropped (counted).
  std::shared_ptr<void> begin_job(std::string_view job);
  asio::awaitable<void> extract_job(std::shared_ptr<void> hold, std::shared_ptr<AfterTurn> after,
                                    int64_t seq, std::string transcript);
  asio::awaitable<void> summary_job(std::shared_ptr<void> hold, std::shared_ptr<AfterTurn> after);
  asio::awaitable<void> embedding_job(std::shared_ptr<void> hold, std::string id, std::string mid,
                                      std::string text, Identity who, WorkerContext* worker,
                                      std::chrono::milliseconds life);
  /// `text` embedded by state.sessions.embeddings_model; nullopt when none is set or it failed.
  asio::awaitable<std::optional<std::vector<float>>> embed(const std::string& text,
                                                           const Identity& who,
                                                           WorkerContext& worker);
  /// Sets the query vector of `params` (vector similarity) when `text` can be embedded.
  asio::awaitable<void> embed_query(const std::string& text, const Identity& who,
                                    WorkerContext& worker, sessions::ScoreParams& params);
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
  LocalCaller& caller_;
  std::atomic<int> jobs_{0};  // background jobs in flight
  std::mutex summarizing_mu_;
  std::unordered_set<std::string> summarizing_;  // sessions with a summary in flight here
  struct CacheEntry {
    std::list<std::string>::iterator lru;
    std::shared_ptr<const MemorySnapshot> snapshot;
  };
  std::mutex cache_mu_;
  std::list<std::string> cache_lru_;  // session ids, most recently used first
  std::unordered_map<std::string, CacheEntry> cache_;
};

}  // namespace sluice::api
