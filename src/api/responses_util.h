// Pieces shared by the Responses and Conversations endpoints (responses.cc, conversations.cc):
// stored records, list pages and their query parameters, OpenAI-shaped errors.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "canonical/json.h"
#include "common/error.h"
#include "http/server.h"
#include "store/state_service.h"

namespace sluice::api {

namespace asio = boost::asio;

/// A stored record's JSON object; nullopt when it is not one.
std::optional<canonical::json::object> parse_record(std::string_view text);
/// A string member ("" when absent or not a string).
std::string_view str_of(const canonical::json::object& o, std::string_view key);
/// Appends the elements of `arr` (when it is an array) to `out`.
void append_array(canonical::json::array& out, const canonical::json::value* arr);

/// ?after=&limit=&order= of a list endpoint (OpenAI: limit 1..100, default 20; order desc).
struct ListQuery {
  std::string after;
  size_t limit = 20;
  bool descending = true;
};
Result<ListQuery> parse_list_query(std::string_view query);
/// A page of `all` (in stored order) as the query asks.
Result<store::ListPage> page_of(const std::vector<store::ListItem>& all, const ListQuery& q);
/// {"object":"list","data":[...],"first_id","last_id","has_more"} of a page of JSON items.
std::string list_body(const store::ListPage& page);

/// The conversation's record text, when it exists and belongs to `owner`; else 404.
asio::awaitable<Result<std::string>> load_conversation(store::StateService& state,
                                                       const std::string& id,
                                                       const std::string& owner);
// (Coroutines here take references, never by-value objects with destructors: a caller's
// argument temporary that lives across the co_await is destroyed twice by GCC 12.)

/// Appends items to a conversation; with a TTL, the conversation's record is rewritten so it
/// lives as long as its items.
asio::awaitable<Result<void>> append_conversation_items(store::StateService& state,
                                                        const std::string& id,
                                                        const std::string& record,
                                                        std::vector<store::ListItem>&& items,
                                                        std::chrono::milliseconds ttl);

/// Counts a state write on sluice_state_writes_total{what, result="ok"|"error"}
/// (what: response, conversation_items, turn, memory).
void count_state_write(std::string_view what, bool ok);

asio::awaitable<void> send_error_value(http::Responder& responder, const Error& error);
/// 404 "Unknown request URL: <method> <path>." (as for any unknown path).
asio::awaitable<void> send_unknown_url(http::Responder& responder, const http::Request& request);
/// Pages the list `key` as the request's ?after=&limit=&order= ask and sends it as an OpenAI
/// list; `shape` (when given) rewrites each item's value first.
asio::awaitable<void> send_list_page(store::StateService& state, http::Responder& responder,
                                     const http::Request& request, const std::string& key,
                                     std::string (*shape)(const store::ListItem&) = nullptr);
asio::awaitable<void> send_not_found(http::Responder& responder, const std::string& message);
asio::awaitable<void> send_method_not_allowed(http::Responder& responder,
                                              const http::Request& request,
                                              std::string_view allow);

}  // namespace sluice::api
