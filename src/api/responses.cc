// The Responses API on the state store: preparing a request (history), storing an answer, the
// sink, and GET/DELETE of stored responses. Conversations are in conversations.cc.
#include "api/responses.h"

#include <spdlog/spdlog.h>

#include "api/proxy_util.h"
#include "api/responses_util.h"

namespace sluice::api {

namespace json = canonical::json;
namespace rs = canonical::responses;

std::string state_owner(const Identity& who) {
  if (who.anonymous) return "";
  if (!who.tenant.empty()) return "t:" + who.tenant;
  return "k:" + who.key_id;
}

ResponsesApi::ResponsesApi(std::shared_ptr<store::StateService> state,
                           const config::StateConfig& config)
    : state_(std::move(state)),
      responses_ttl_(std::chrono::seconds(config.responses_ttl_s)),
      conversations_ttl_(std::chrono::seconds(config.conversations_ttl_s)),
      max_chain_(static_cast<size_t>(config.max_chain)) {}

asio::awaitable<Result<std::unique_ptr<PreparedResponse>>> ResponsesApi::prepare(
    std::string_view body, const std::string& owner) {
  auto decoded = rs::decode_request(body);
  if (!decoded) co_return std::move(decoded.error());
  auto p = std::make_unique<PreparedResponse>();
  p->decoded = std::move(decoded.value());
  p->owner = owner;
  rs::Decoded& d = p->decoded;

  json::array history;
  if (!d.previous_response_id.empty()) {
    const std::string key = "resp:" + d.previous_response_id;
    const size_t max = max_chain_;
    const auto op1 = [key, max](store::StateStore& s) { return s.chain(key, max); };
    auto chain = co_await state_->run(op1);
    if (!chain) co_return std::move(chain.error());
    // Newest first; a link that belongs to someone else ends the walk like a missing one.
    std::vector<json::object> records;
    for (const std::string& text : *chain) {
      auto rec = parse_record(text);
      if (!rec || str_of(*rec, "owner") != p->owner) break;
      records.push_back(std::move(*rec));
    }
    if (records.empty()) {
      Error e = make_error(Errc::not_found,
                           "Previous response with id '" + d.previous_response_id + "' not found.",
                           "previous_response_id");
      e.code_override = "previous_response_not_found";
      co_return e;
    }
    for (auto it = records.rbegin(); it != records.rend(); ++it) {
      append_array(history, it->if_contains("input"));
      if (const json::value* resp = it->if_contains("response"); resp && resp->is_object()) {
        append_array(history, resp->as_object().if_contains("output"));
      }
    }
  } else if (!d.conversation.empty()) {
    auto conv = co_await load_conversation(*state_, d.conversation, p->owner);
    if (!conv) co_return std::move(conv.error());
    p->conversation_record = std::move(conv.value());
    const std::string list = "conv:" + d.conversation;
    p->pin = state_->store().pin(list);
    std::string after;
    for (;;) {
      const auto op2 = [list, after](store::StateStore& s) { return s.range(list, after, 1000, false); };
      auto page = co_await state_->run(op2);
      if (!page) co_return std::move(page.error());
      for (store::ListItem& item : page->items) {
        auto v = canonical::from_text(item.value);
        if (v.is_object()) history.push_back(std::move(v));
      }
      if (!page->has_more || page->items.empty()) break;
      after = page->items.back().id;
    }
  }

  // The model's input: this request's instructions, then the history, then the new input.
  canonical::Request& req = d.request;
  rs::append_items(history, req);
  p->history_messages = req.messages.size();
  rs::append_items(d.input, req);

  rs::Meta& m = p->meta;
  m.id = rs::new_id("resp");
  m.created_at = store::system_now_ms() / 1000;
  m.model = req.model;
  m.previous_response_id = d.previous_response_id;
  m.conversation = d.conversation;
  m.store = d.store;
  m.echo = &d.echo;
  co_return std::move(p);
}

asio::awaitable<Result<void>> ResponsesApi::save(const PreparedResponse& p,
                                                 const json::object& response) {
  if (!p.decoded.store) co_return Result<void>();
  json::object record;
  record["owner"] = p.owner;
  record["response"] = response;
  record["input"] = p.decoded.input;
  std::string key = "resp:" + p.meta.id;
  std::string value = canonical::to_text(record);
  std::string link = p.meta.previous_response_id.empty() ? std::string()
                                                          : "resp:" + p.meta.previous_response_id;
  const auto ttl = responses_ttl_;
  const auto op3 = [key, value, link, ttl](store::StateStore& s) {
    return s.put(key, value, link, ttl);
  };
  auto put = co_await state_->run(op3);
  count_state_write("response", put.ok());
  if (!put) {
    spdlog::warn("responses: could not store {}: {}", p.meta.id, put.error().message);
    co_return std::move(put.error());
  }
  if (!p.meta.conversation.empty()) {
    std::vector<store::ListItem> items;
    auto add = [&](const json::value* arr) {
      if (arr == nullptr || !arr->is_array()) return;
      for (const json::value& v : arr->as_array()) {
        if (!v.is_object()) continue;
        items.push_back(store::ListItem{std::string(str_of(v.as_object(), "id")),
                                        canonical::to_text(v)});
      }
    };
    add(record.if_contains("input"));
    add(response.if_contains("output"));
    auto appended = co_await append_conversation_items(*state_, p.meta.conversation,
                                                       p.conversation_record, std::move(items),
                                                       conversations_ttl_);
    count_state_write("conversation_items", appended.ok());
    if (!appended) {
      spdlog::warn("responses: could not add {}'s items to {}: {}", p.meta.id,
                   p.meta.conversation, appended.error().message);
      co_return std::move(appended.error());
    }
  }
  co_return Result<void>();
}

asio::awaitable<void> ResponsesApi::serve_response(http::Request& request,
                                                   http::Responder& responder,
                                                   std::string_view api_path,
                                                   const std::string& owner) {
  // /responses/{id} or /responses/{id}/input_items
  std::string_view rest = api_path.substr(std::string_view("/responses/").size());
  std::string_view id = rest.substr(0, rest.find('/'));
  std::string_view sub = rest.substr(id.size());
  const std::string_view method = request.method();
  if (id.empty() || (!sub.empty() && sub != "/input_items")) {
    co_return co_await send_unknown_url(responder, request);
  }
  const bool items = !sub.empty();
  if (items ? method != "GET" : method != "GET" && method != "DELETE") {
    co_return co_await send_method_not_allowed(responder, request, items ? "GET" : "GET, DELETE");
  }
  ListQuery query;
  if (items) {
    auto q = parse_list_query(request.head->query);
    if (!q) co_return co_await send_error_value(responder, q.error());
    query = *q;
  }
  const std::string key = "resp:" + std::string(id);
  const auto op4 = [key](store::StateStore& s) { return s.get(key); };
  auto got = co_await state_->run(op4);
  if (!got) co_return co_await send_error_value(responder, got.error());
  std::optional<json::object> rec;
  if (got->has_value()) rec = parse_record(**got);
  if (!rec || str_of(*rec, "owner") != owner) {
    const std::string message = "Response with id '" + std::string(id) + "' not found.";
    co_return co_await send_not_found(responder, message);
  }
  if (method == "DELETE") {
    const auto op5 = [key](store::StateStore& s) { return s.erase(key); };
    auto erased = co_await state_->run(op5);
    if (!erased) co_return co_await send_error_value(responder, erased.error());
    json::object out{{"id", id}, {"object", "response.deleted"}, {"deleted", true}};
    const std::string body = canonical::to_text(out);
    co_await responder.send(200, "application/json", body);
    co_return;
  }
  if (!items) {
    const json::value* resp = rec->if_contains("response");
    const std::string body = resp != nullptr ? canonical::to_text(*resp) : std::string("{}");
    co_await responder.send(200, "application/json", body);
    co_return;
  }
  // input_items: this response's own input, paged in memory.
  std::vector<store::ListItem> all;
  if (const json::value* input = rec->if_contains("input"); input && input->is_array()) {
    for (const json::value& v : input->as_array()) {
      if (v.is_object()) all.push_back({std::string(str_of(v.as_object(), "id")), canonical::to_text(v)});
    }
  }
  auto page = page_of(all, query);
  if (!page) co_return co_await send_error_value(responder, page.error());
  const std::string body = list_body(*page);
  co_await responder.send(200, "application/json", body);
}

// ---- the sink ---------------------------------------------------------------------------------

ResponsesSink::ResponsesSink(http::Responder& responder, ResponsesApi& api,
                             PreparedResponse& prepared)
    : responder_(responder),
      api_(api),
      prepared_(prepared),
      encoder_(prepared.meta),
      stream_(prepared.decoded.request.stream) {}

asio::awaitable<void> ResponsesSink::answer(const canonical::Response& r) {
  if (!stream_) {
    auto [status, reason] = rs::status_of(r.stop_reason);
    json::object obj =
        rs::response_object(prepared_.meta, status, reason, rs::output_items(r), &r.usage);
    auto saved = co_await api_.save(prepared_, obj);
    if (!saved) responder_.add_header("x-sluice-stored", "false");
    const std::string body = canonical::to_text(obj);
    co_await responder_.send(200, "application/json", body);
    co_return;
  }
  // A stream asked for and a whole answer came: replayed as its events.
  if (!co_await begin_stream()) co_return;
  const std::vector<canonical::Event> all = canonical::events_of(r);
  if (co_await events(all)) co_await end_stream();
}

asio::awaitable<bool> ResponsesSink::begin_stream() {
  out_.clear();
  encoder_.created(out_);  // leaves with the first events (the head too)
  co_return co_await responder_.begin_stream(200, "text/event-stream", kStreamHeaders);
}

asio::awaitable<bool> ResponsesSink::events(const std::vector<canonical::Event>& events) {
  for (const canonical::Event& e : events) {
    if (ended_) break;
    if (e.kind == canonical::EventKind::error) {
      encoder_.failed(e.text.empty() ? std::string_view("The upstream failed.") : e.text, out_);
      responder_.note_error("upstream_stream_error");
      ended_ = true;
      break;
    }
    if (e.kind == canonical::EventKind::message_stop) {
      const json::object obj = encoder_.final_object();
      co_await api_.save(prepared_, obj);  // before the terminal event: read-your-writes
      encoder_.completed(obj, out_);
      ended_ = true;
      break;
    }
    encoder_.on_event(e, out_);
  }
  if (out_.empty()) co_return !gone();
  const bool sent = co_await responder_.write_chunk(out_, ended_);
  out_.clear();
  co_return sent;
}

asio::awaitable<void> ResponsesSink::fail_stream(int status, std::string_view message) {
  if (ended_) co_return;
  ended_ = true;
  encoder_.failed(message, out_);
  responder_.note_error(status == 504 ? "upstream_timeout" : "upstream_stream_error");
  co_await responder_.write_chunk(out_, true);
  out_.clear();
}

asio::awaitable<void> ResponsesSink::end_stream() { co_await responder_.end_stream(); }

}  // namespace sluice::api
