// The OpenAI Responses and Conversations APIs on top of the state store (store/state_store.h):
//   POST /v1/responses                 decoded (frontends/responses), its history loaded from
//                                      previous_response_id or the conversation, then sent through
//                                      the same pipeline as every routed request (stages,
//                                      dispatcher, any provider: always the translated path);
//                                      the answer reaches the client through a ResponsesSink,
//                                      which stores it before the last byte leaves.
//   GET/DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items
//   /v1/conversations[/{id}[/items[/{item_id}]]]
// Store layout: record "resp:<id>" = {"owner","response","input"} linked to its previous
// response; record "conv:<id>" = {"owner","conversation"}; list "conv:<id>" = its items.
// Everything is scoped to its owner (tenant, else key; "" without auth): another owner's ids
// answer 404 as unknown ones do.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>

#include "api/governance.h"
#include "api/sink.h"
#include "config/config.h"
#include "frontends/responses/responses.h"
#include "http/server.h"
#include "store/state_service.h"

namespace sluice::api {

namespace asio = boost::asio;

/// Whose state a caller sees: "t:<tenant>", else "k:<key id>", "" when auth is off.
std::string state_owner(const Identity& who);

/// A POST /v1/responses request ready for dispatch.
struct PreparedResponse {
  canonical::responses::Decoded decoded;   // request = instructions + history + new input
  canonical::responses::Meta meta;         // meta.echo points into decoded.echo
  std::string owner;
  std::string conversation_record;         // the conversation's stored record (to refresh TTL)
  std::shared_ptr<void> pin;               // keeps the conversation from eviction meanwhile
  size_t history_messages = 0;             // request.messages replayed from the store
};

class ResponsesApi {
 public:
  ResponsesApi(std::shared_ptr<store::StateService> state, const config::StateConfig& config);

  /// Decodes the body and loads its history. Errors: 400 (body), 404
  /// previous_response_not_found / unknown conversation, 503 (store unreachable).
  asio::awaitable<Result<std::unique_ptr<PreparedResponse>>> prepare(std::string_view body,
                                                                      const std::string& owner);

  /// Stores a finished (or failed) response when it asked to be stored, and appends its input
  /// and output items to its conversation. A store failure is logged and returned.
  asio::awaitable<Result<void>> save(const PreparedResponse& p,
                                     const canonical::json::object& response);

  /// GET/DELETE /v1/responses/{id}, GET .../input_items (`api_path` without "/v1").
  asio::awaitable<void> serve_response(http::Request& request, http::Responder& responder,
                                       std::string_view api_path, const std::string& owner);
  /// Every /v1/conversations path.
  asio::awaitable<void> serve_conversations(http::Request& request, http::Responder& responder,
                                            std::string_view api_path, const std::string& owner);

 private:
  std::shared_ptr<store::StateService> state_;
  std::chrono::milliseconds responses_ttl_;
  std::chrono::milliseconds conversations_ttl_;
  size_t max_chain_;
};

/// Where a Responses request's answer goes: the client, as a Response object or the Responses
/// stream events, after ResponsesApi::save() (read-your-writes: stored before the last byte).
class ResponsesSink final : public ResponseSink {
 public:
  ResponsesSink(http::Responder& responder, ResponsesApi& api, PreparedResponse& prepared);
  asio::awaitable<void> answer(const canonical::Response& r) override;
  asio::awaitable<bool> begin_stream() override;
  asio::awaitable<bool> events(const std::vector<canonical::Event>& events) override;
  asio::awaitable<void> fail_stream(int status, std::string_view message) override;
  asio::awaitable<void> end_stream() override;
  bool gone() const override { return responder_.client_gone(); }

 private:
  http::Responder& responder_;
  ResponsesApi& api_;
  PreparedResponse& prepared_;
  canonical::responses::StreamEncoder encoder_;
  std::string out_;
  bool stream_;  // the client asked for a stream (the request itself moves into the dispatch)
  bool ended_ = false;
};

}  // namespace sluice::api
