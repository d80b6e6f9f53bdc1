// The Conversations API (/v1/conversations...) and the helpers it shares with responses.cc.
#include <algorithm>
#include <array>
#include <charconv>

#include "common/query.h"
#include "observe/metrics.h"

#include "api/responses.h"
#include "api/responses_util.h"

namespace sluice::api {

namespace json = canonical::json;
namespace rs = canonical::responses;

// ---- shared helpers ---------------------------------------------------------------------------

std::optional<json::object> parse_record(std::string_view text) {
  json::value v = canonical::from_text(text);
  if (!v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

std::string_view str_of(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string_view(v->as_string()) : std::string_view();
}

void append_array(json::array& out, const json::value* arr) {
  if (arr == nullptr || !arr->is_array()) return;
  for (const json::value& v : arr->as_array()) out.push_back(v);
}

Result<ListQuery> parse_list_query(std::string_view q) {
  ListQuery out;
  std::optional<Error> bad;
  for_each_query_param(q, [&](std::string_view name, std::string_view value) {
    if (name == "after") {
      out.after = percent_decode(value);
    } else if (name == "limit") {
      size_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || n < 1 || n > 100) {
        bad = make_error(Errc::bad_request, "limit must be an integer between 1 and 100.", "limit");
      }
      out.limit = n;
    } else if (name == "order") {
      if (value != "asc" && value != "desc") {
        bad = make_error(Errc::bad_request, "order must be asc or desc.", "order");
      }
      out.descending = value == "desc";
    }
  });
  if (bad) return std::move(*bad);
  return out;
}

Result<store::ListPage> page_of(const std::vector<store::ListItem>& all, const ListQuery& q) {
  std::vector<const store::ListItem*> ordered;
  for (const auto& i : all) ordered.push_back(&i);
  if (q.descending) std::reverse(ordered.begin(), ordered.end());
  size_t start = 0;
  if (!q.after.empty()) {
    auto it = std::find_if(ordered.begin(), ordered.end(),
                           [&](const store::ListItem* i) { return i->id == q.after; });
    if (it == ordered.end()) {
      return make_error(Errc::not_found, "No item with id '" + q.after + "'.", "after");
    }
    start = static_cast<size_t>(it - ordered.begin()) + 1;
  }
  store::ListPage page;
  for (size_t i = start; i < ordered.size(); ++i) {
    if (page.items.size() == q.limit) {
      page.has_more = true;
      break;
    }
    page.items.push_back(*ordered[i]);
  }
  return page;
}

std::string list_body(const store::ListPage& page) {
  std::string body = R"({"object":"list","data":[)";
  for (size_t i = 0; i < page.items.size(); ++i) {
    if (i > 0) body += ',';
    body += page.items[i].value;
  }
  body += "],\"first_id\":";
  auto id_or_null = [&](const store::ListItem* item) {
    if (item == nullptr) return std::string("null");
    return canonical::to_text(json::value(item->id));
  };
  body += id_or_null(page.items.empty() ? nullptr : &page.items.front());
  body += ",\"last_id\":";
  body += id_or_null(page.items.empty() ? nullptr : &page.items.back());
  body += ",\"has_more\":";
  body += page.has_more ? "true" : "false";
  body += '}';
  return body;
}

asio::awaitable<Result<std::string>> load_conversation(store::StateService& state,
                                                       const std::string& id,
                                                       const std::string& owner) {
  const std::string key = "conv:" + id;
  const auto op1 = [key](store::StateStore& s) { return s.get(key); };
  auto got = co_await state.run(op1);
  if (!got) co_return std::move(got.error());
  if (got->has_value()) {
    auto rec = parse_record(**got);
    if (rec && str_of(*rec, "owner") == owner) co_return std::move(**got);
  }
  co_return make_error(Errc::not_found, "Conversation with id '" + id + "' not found.",
                       "conversation");
}

asio::awaitable<Result<void>> append_conversation_items(store::StateService& state,
                                                        const std::string& id,
                                                        const std::string& record,
                                                        std::vector<store::ListItem>&& items,
                                                        std::chrono::milliseconds ttl) {
  const std::string key = "conv:" + id;
  const auto op2 = [key, record, items = std::move(items),
                    ttl](store::StateStore& s) -> Result<void> {
    if (ttl.count() > 0) {
      if (auto put = s.put(key, record, "", ttl); !put) return put;
    }
    if (auto a = s.append(key, items, ttl); !a) return std::move(a.error());
    return {};
  };
  co_return co_await state.run(op2);
}

asio::awaitable<void> send_error_value(http::Responder& responder, const Error& error) {
  co_await responder.send_error(error);
}

void count_state_write(std::string_view what, bool ok) {
  static const auto cells = [] {
    std::array<std::array<observe::Cell, 2>, 5> c{};
    const char* whats[] = {"response", "conversation_items", "turn", "memory", "file"};
    for (size_t i = 0; i < 5; ++i) {
      for (size_t r = 0; r < 2; ++r) {
        c[i][r] = observe::Registry::instance().counter(
            "sluice_state_writes_total",
            "Writes to the state store by what they keep, and whether the store took them.",
            observe::label("what", whats[i]) + "," + observe::label("result", r ? "ok" : "error"));
      }
    }
    return c;
  }();
  const size_t i = what == "response"             ? 0
                   : what == "conversation_items" ? 1
                   : what == "turn"               ? 2
                   : what == "memory"             ? 3
                                                  : 4;
  observe::add(cells[i][ok ? 1 : 0]);
}

asio::awaitable<void> send_unknown_url(http::Responder& responder, const http::Request& request) {
  const std::string message = "Unknown request URL: " + std::string(request.method()) + " " +
                              std::string(request.path()) + ".";
  co_await send_not_found(responder, message);
}

asio::awaitable<void> send_list_page(store::StateService& state, http::Responder& responder,
                                     const http::Request& request, const std::string& key,
                                     std::string (*shape)(const store::ListItem&)) {
  auto query = parse_list_query(request.head->query);
  if (!query) co_return co_await send_error_value(responder, query.error());
  const ListQuery q = *query;
  const auto op = [key, q](store::StateStore& s) {
    return s.range(key, q.after, q.limit, q.descending);
  };
  auto page = co_await state.run(op);
  if (!page) co_return co_await send_error_value(responder, page.error());
  if (shape != nullptr) {
    for (store::ListItem& item : page->items) item.value = shape(item);
  }
  const std::string out = list_body(*page);
  co_await responder.send(200, "application/json", out);
}

asio::awaitable<void> send_not_found(http::Responder& responder, const std::string& message) {
  const Error error = make_error(Errc::not_found, message);
  co_await responder.send_error(error);
}

asio::awaitable<void> send_method_not_allowed(http::Responder& responder,
                                              const http::Request& request,
                                              std::string_view allow) {
  ErrorResponse r = to_response(make_error(
      Errc::method_not_allowed, "Method " + std::string(request.method()) +
                                    " is not allowed on " + std::string(request.path()) +
                                    "; use " + std::string(allow) + "."));
  const std::string allow_header = "Allow: " + std::string(allow) + "\r\n";
  co_await responder.send(r.status, "application/json", r.body, allow_header);
}

// ---- /v1/conversations ------------------------------------------------------------------------

namespace {

// The items of a create request (`items`, at most 20 per call as OpenAI), in normal form.
Result<std::vector<store::ListItem>> request_items(const json::object& body, bool required) {
  std::vector<store::ListItem> out;
  const json::value* items = body.if_contains("items");
  if (items == nullptr || items->is_null()) {
    if (required) return canonical::invalid("items: Field required", "items");
    return out;
  }
  if (!items->is_array()) return canonical::invalid("items must be an array.", "items");
  if (items->as_array().size() > 20) {
    return canonical::invalid("At most 20 items can be added at once.", "items");
  }
  auto normal = rs::normalize_items(items->as_array(), "items");
  if (!normal) return std::move(normal.error());
  for (const json::value& v : *normal) {
    out.push_back({std::string(str_of(v.as_object(), "id")), canonical::to_text(v)});
  }
  return out;
}

std::string conversation_json(const json::object& record) {
  const json::value* c = record.if_contains("conversation");
  return c != nullptr ? canonical::to_text(*c) : std::string("{}");
}

}  // namespace

asio::awaitable<void> ResponsesApi::serve_conversations(http::Request& request,
                                                        http::Responder& responder,
                                                        std::string_view api_path,
                                                        const std::string& owner) {
  const std::string_view method = request.method();
  std::string_view rest = api_path.substr(std::string_view("/conversations").size());
  if (rest.empty()) {  // POST /conversations: create
    if (method != "POST") co_return co_await send_method_not_allowed(responder, request, "POST");
    auto body = rs::parse_object_body(request.body, true);
    if (!body) co_return co_await send_error_value(responder, body.error());
    auto metadata = rs::check_metadata(body->if_contains("metadata"));
    if (!metadata) co_return co_await send_error_value(responder, metadata.error());
    auto items = request_items(*body, false);
    if (!items) co_return co_await send_error_value(responder, items.error());
    const std::string id = rs::new_id("conv");
    json::object conv{{"id", id},
                      {"object", "conversation"},
                      {"created_at", store::system_now_ms() / 1000},
                      {"metadata", std::move(*metadata)}};
    json::object record{{"owner", owner}, {"conversation", conv}};
    const std::string key = "conv:" + id;
    const std::string value = canonical::to_text(record);
    const auto ttl = conversations_ttl_;
    const auto op3 = [key, value, ttl,
                      items = std::move(*items)](store::StateStore& s) -> Result<void> {
      if (auto put = s.put(key, value, "", ttl); !put) return put;
      if (items.empty()) return {};
      if (auto a = s.append(key, items, ttl); !a) return std::move(a.error());
      return {};
    };
    auto made = co_await state_->run(op3);
    if (!made) co_return co_await send_error_value(responder, made.error());
    const std::string out = canonical::to_text(conv);
    co_await responder.send(200, "application/json", out);
    co_return;
  }
  if (rest.front() != '/') {
    co_return co_await send_unknown_url(responder, request);
  }
  rest.remove_prefix(1);
  const std::string id(rest.substr(0, rest.find('/')));
  std::string_view sub = rest.substr(id.size());
  std::string item_id;
  if (sub.starts_with("/items/")) item_id = std::string(sub.substr(7));
  const bool items_path = sub == "/items";
  if (id.empty() || (!sub.empty() && !items_path && (item_id.empty() ||
                                                     item_id.find('/') != std::string::npos))) {
    co_return co_await send_unknown_url(responder, request);
  }
  const std::string_view allow = sub.empty()   ? "GET, POST, DELETE"
                                 : items_path  ? "GET, POST"
                                               : "GET, DELETE";
  const bool allowed = method == "GET" || (method == "POST" && allow.find("POST") != std::string_view::npos) ||
                       (method == "DELETE" && allow.find("DELETE") != std::string_view::npos);
  if (!allowed) {
    co_return co_await send_method_not_allowed(responder, request, allow);
  }
  auto record_text = co_await load_conversation(*state_, id, owner);
  if (!record_text) co_return co_await send_error_value(responder, record_text.error());
  auto record = parse_record(*record_text);
  const std::string key = "conv:" + id;

  if (sub.empty()) {
    if (method == "GET") {
      const std::string out = conversation_json(*record);
      co_await responder.send(200, "application/json", out);
    } else if (method == "POST") {  // update the metadata
      auto body = rs::parse_object_body(request.body, false);
      if (!body) co_return co_await send_error_value(responder, body.error());
      if (!body->contains("metadata")) {
        const Error e = canonical::invalid("metadata: Field required", "metadata");
        co_return co_await send_error_value(responder, e);
      }
      auto metadata = rs::check_metadata(body->if_contains("metadata"));
      if (!metadata) co_return co_await send_error_value(responder, metadata.error());
      (*record)["conversation"].as_object()["metadata"] = std::move(*metadata);
      const std::string value = canonical::to_text(*record);
      const auto ttl = conversations_ttl_;
      const auto op4 = [key, value, ttl](store::StateStore& s) { return s.put(key, value, "", ttl); };
      auto put = co_await state_->run(op4);
      if (!put) co_return co_await send_error_value(responder, put.error());
      const std::string out = conversation_json(*record);
      co_await responder.send(200, "application/json", out);
    } else {  // DELETE: the conversation and its items
      const auto op5 = [key](store::StateStore& s) -> Result<void> {
        if (auto e = s.erase(key); !e) return std::move(e.error());
        return s.erase_list(key);
      };
      auto erased = co_await state_->run(op5);
      if (!erased) co_return co_await send_error_value(responder, erased.error());
      json::object out{{"id", id}, {"object", "conversation.deleted"}, {"deleted", true}};
      const std::string text = canonical::to_text(out);
      co_await responder.send(200, "application/json", text);
    }
    co_return;
  }

  if (items_path && method == "POST") {
    auto body = rs::parse_object_body(request.body, false);
    if (!body) co_return co_await send_error_value(responder, body.error());
    auto items = request_items(*body, true);
    if (!items) co_return co_await send_error_value(responder, items.error());
    store::ListPage added;
    added.items = *items;
    auto appended = co_await append_conversation_items(*state_, id, *record_text,
                                                       std::move(*items), conversations_ttl_);
    if (!appended) co_return co_await send_error_value(responder, appended.error());
    const std::string out = list_body(added);
    co_await responder.send(200, "application/json", out);
    co_return;
  }
  if (items_path) co_return co_await send_list_page(*state_, responder, request, key);  // GET
  // /items/{item_id}
  if (method == "GET") {
    const auto op7 = [key, item_id](store::StateStore& s) { return s.item(key, item_id); };
    auto got = co_await state_->run(op7);
    if (!got) co_return co_await send_error_value(responder, got.error());
    if (!got->has_value()) {
      const std::string message = "Item with id '" + item_id + "' not found.";
      co_return co_await send_not_found(responder, message);
    }
    co_await responder.send(200, "application/json", **got);
    co_return;
  }
  const auto op8 = [key, item_id](store::StateStore& s) { return s.erase_item(key, item_id); };
  auto erased = co_await state_->run(op8);
  if (!erased) co_return co_await send_error_value(responder, erased.error());
  if (!*erased) {
    const std::string message = "Item with id '" + item_id + "' not found.";
    co_return co_await send_not_found(responder, message);
  }
  const std::string out = conversation_json(*record);
  co_await responder.send(200, "application/json", out);
}

}  // namespace sluice::api
