// The OpenAI Responses API as a client protocol: a request's fields and input items decoded into
// the canonical model, an answer rendered as a Response object or as the Responses stream
// events. Pure (no I/O): what is stored and replayed (previous_response_id, conversations) is the
// caller's (api/responses.cc); this file only turns items into messages and answers into items.
//
// Items are kept in one normal form, the one the API returns (and the store keeps):
//   {"type":"message","id","status":"completed","role","content":[{"type":"input_text"|
//    "output_text","text"...}|{"type":"input_image","image_url"}]}
//   {"type":"function_call","id","status":"completed","call_id","name","arguments"}
//   {"type":"function_call_output","id","status":"completed","call_id","output"}
// Reasoning items sent back by a client are dropped (no upstream could replay them);
// item_reference, built-in tool calls and file inputs are refused with a 400 naming the field.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "canonical/canonical.h"
#include "canonical/json.h"
#include "common/error.h"

namespace sluice::canonical::responses {

/// A fresh id: `prefix` + "_" + 48 random hex digits ("resp", "msg", "fc", "conv", ...).
std::string new_id(std::string_view prefix);

struct Decoded {
  Request request;                   // model, options, system (instructions); no messages yet:
                                     // the caller appends the history, then `input`
  json::array input;                 // `input` as items in normal form, ids assigned
  std::string previous_response_id;  // "" = none
  std::string conversation;          // "" = none
  bool store = true;
  json::object echo;                 // the request fields a Response object repeats
};

/// `metadata` as OpenAI allows it: absent or null → {}, else an object of at most 16 string
/// values (keys up to 64 characters, values up to 512). Errors: 400 naming `metadata`.
Result<json::object> check_metadata(const json::value* metadata);

/// A request body that must be a JSON object (`allow_empty`: no body at all is {}).
Result<json::object> parse_object_body(std::string_view body, bool allow_empty);

/// Decodes a POST /v1/responses body. Errors: 400 naming the field.
Result<Decoded> decode_request(std::string_view body);

/// Validates `items` (a request's `input` array, a conversation's items) and returns them in
/// normal form with fresh ids. `param` names the field in errors ("input", "items").
Result<json::array> normalize_items(const json::array& items, std::string_view param);

/// Appends items in normal form to `req`: system/developer messages to `req.system`, each other
/// message as a message; function calls join the assistant message before them, their outputs
/// one user message (a function_call_output's tool name is looked up from its function_call).
void append_items(const json::array& items, Request& req);

/// The inverse of append_items for messages: canonical messages as items in normal form with
/// fresh ids (thinking blocks are left out). append_items(items_of(m)) gives back m's content.
json::array items_of(const std::vector<Message>& messages);

/// What a Response object says besides its output.
struct Meta {
  std::string id;
  int64_t created_at = 0;
  std::string model;                 // the client's name for it
  std::string previous_response_id;
  std::string conversation;
  bool store = true;
  const json::object* echo = nullptr;
};

/// The output items of a whole answer (thinking blocks are left out), with fresh ids.
json::array output_items(const Response& r);

/// status, incomplete_details.reason ("" = none) for how an answer stopped.
std::pair<std::string_view, std::string_view> status_of(StopReason reason);

/// A Response object. `error_message` non-empty: status "failed" with that error.
json::object response_object(const Meta& meta, std::string_view status,
                             std::string_view incomplete_reason, json::array output,
                             const Usage* usage, std::string_view error_message = {});

/// Canonical stream events → Responses SSE events. The caller sends created() first, then
/// on_event() for each event up to message_stop (exclusive), then completed() with the object
/// final_object() built (after storing it) — or failed().
class StreamEncoder {
 public:
  explicit StreamEncoder(Meta meta) : meta_(std::move(meta)) {}
  void created(std::string& out);
  void on_event(const Event& e, std::string& out);
  /// The Response object as the events so far make it (status from the stop reason).
  json::object final_object() const;
  void completed(const json::object& response, std::string& out);
  void failed(std::string_view message, std::string& out);

 private:
  void emit(std::string_view type, json::object data, std::string& out);
  void close_open(std::string& out);
  Meta meta_;
  json::array output_;
  int64_t seq_ = 0;
  int open_index_ = -1;        // the canonical block index open, -1 = none
  bool open_is_text_ = false;  // the open item is a message (else a function_call)
  bool skipping_ = false;      // the open canonical block has no item (thinking)
  std::string text_;           // the open item's text / arguments so far
  StopReason stop_ = StopReason::unset;
  Usage usage_;
};

}  // namespace sluice::canonical::responses
