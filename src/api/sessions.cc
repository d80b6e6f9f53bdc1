// Sessions, turns, memories and the augmentation of requests: see sessions.h.
#include "api/sessions.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "api/responses_util.h"
#include "canonical/codec.h"
#include "common/query.h"
#include "frontends/responses/responses.h"
#include "sessions/context.h"
#include "sessions/extract.h"

namespace sluice::api {

namespace json = canonical::json;
namespace rs = canonical::responses;

namespace {

constexpr int64_t kMaxTtlS = 10LL * 365 * 86'400;
constexpr size_t kMaxTurnsLoaded = 1000;   // newest turns considered for packing
constexpr size_t kMaxMemoriesLoaded = 10'000;
constexpr size_t kMaxSummariesLoaded = 64;
constexpr size_t kCachedSessions = 64;     // memory snapshots kept (LRU)

int64_t now_ms() { return store::system_now_ms(); }

// The session object's TTL from now in ms: 0 = none; nullopt = it has expired (max_ttl).
std::optional<int64_t> ttl_ms_of(const json::object& session, int64_t now) {
  int64_t ttl = 0;
  if (auto idle = canonical::integer(session, "idle_ttl"); idle && *idle > 0) ttl = *idle * 1000;
  if (auto exp = canonical::integer(session, "expires_at"); exp && *exp > 0) {
    const int64_t left = *exp * 1000 - now;
    if (left <= 0) return std::nullopt;
    ttl = ttl > 0 ? std::min(ttl, left) : left;
  }
  return ttl;
}

const json::object* session_of(const json::object& record) {
  const json::value* s = record.if_contains("session");
  return s != nullptr && s->is_object() ? &s->as_object() : nullptr;
}

// A fact's text up to case, spacing and punctuation (not stemmed: "lives" and "lived" are
// different facts).
std::string normalized(std::string_view text) { return sessions::join_words(text, ' '); }

bool memory_open(const json::object& m, int64_t now_s) {
  if (!m.contains("valid_to") || !m.at("valid_to").is_null()) return false;
  auto exp = canonical::integer(m, "expires_at");
  return !exp || *exp == 0 || *exp > now_s;
}

Result<std::optional<int64_t>> optional_int(const json::object& o, std::string_view key,
                                            int64_t min, int64_t max) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<int64_t>();
  auto n = canonical::integer(o, key);
  if (!n || *n < min || *n > max) {
    return canonical::invalid(std::string(key) + " must be an integer from " +
                                  std::to_string(min) + " to " + std::to_string(max) + ".",
                              std::string(key));
  }
  return std::optional<int64_t>(*n);
}

// A JSON array of strings (tags) or integers (source_turns); nullopt when absent.
Result<json::array> list_field(const json::object& o, std::string_view key, bool strings) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return json::array();
  if (!v->is_array() || v->as_array().size() > 100) {
    return canonical::invalid(std::string(key) + " must be an array of at most 100 " +
                                  (strings ? "strings." : "integers."),
                              std::string(key));
  }
  for (const json::value& e : v->as_array()) {
    if (strings ? !e.is_string() : !(e.is_int64() || e.is_uint64())) {
      return canonical::invalid(std::string(key) + " must be an array of " +
                                    (strings ? "strings." : "integers."),
                                std::string(key));
    }
  }
  return v->as_array();
}

void merge_into(json::array& into, const json::array& more) {
  for (const json::value& v : more) {
    if (std::find(into.begin(), into.end(), v) == into.end()) into.push_back(v);
  }
}

sessions::ScoreParams score_params(const config::SessionTuning& t) {
  sessions::ScoreParams p;
  p.alpha = t.alpha;
  p.beta = t.beta;
  p.gamma = t.gamma;
  p.half_life_s = t.half_life_s;
  return p;
}

sessions::MemoryDoc doc_of(const json::object& m) {
  sessions::MemoryDoc d{std::string(str_of(m, "key")), std::string(str_of(m, "text")),
                        canonical::number(m, "weight").value_or(0.5),
                        canonical::integer(m, "last_access").value_or(0) * 1000,
                        {}};
  if (const json::array* v = canonical::arr(m, "embedding")) {
    d.embedding.reserve(v->size());
    for (const json::value& x : *v) {
      d.embedding.push_back(x.is_double() ? static_cast<float>(x.as_double())
                            : x.is_int64() ? static_cast<float>(x.as_int64())
                                           : 0.0f);
    }
  }
  return d;
}

std::string turn_json(const store::ListItem& item) {
  json::value v = canonical::from_text(item.value);
  if (v.is_object()) v.as_object()["turn"] = item.seq;
  return canonical::to_text(v);
}

}  // namespace

// ---- memory writes ----------------------------------------------------------------------------

Result<MemoryWrite> upsert_memory(store::StateStore& store, const std::string& id,
                                  const json::object& mem, int64_t now_s,
                                  std::chrono::milliseconds life) {
  const std::string list = "mems:" + id;
  const std::string key_s(str_of(mem, "key"));
  const std::string want = normalized(str_of(mem, "text"));
  MemoryWrite out;
  // Read, decide and write as one step for this session's memories (concurrent writes of one
  // key must neither lose a weight increase nor leave two open texts): the same open key
  // either merges (same fact) or is closed.
  auto done = store.atomically(list, [&](store::StateStore& s) -> Result<void> {
    auto page = s.range(list, "", kMaxMemoriesLoaded, false);
    if (!page) return std::move(page.error());
    out.action = MemoryWrite::added;
    for (const store::ListItem& item : page->items) {
      auto m = parse_record(item.value);
      if (!m || str_of(*m, "key") != key_s || !memory_open(*m, now_s)) continue;
      if (normalized(str_of(*m, "text")) == want) {
        // The same fact again: its weight rises (1 − (1−w)(1−w')), nothing is duplicated.
        const double w0 = canonical::number(*m, "weight").value_or(0.5);
        const double w1 = canonical::number(mem, "weight").value_or(0.5);
        (*m)["weight"] = std::min(1.0, 1 - (1 - w0) * (1 - w1));
        (*m)["last_access"] = now_s;
        json::value& st = (*m)["source_turns"];
        if (!st.is_array()) st = json::array();
        merge_into(st.as_array(), mem.at("source_turns").as_array());
        json::value& tg = (*m)["tags"];
        if (!tg.is_array()) tg = json::array();
        merge_into(tg.as_array(), mem.at("tags").as_array());
        if (auto r = s.replace_item(list, item.id, canonical::to_text(*m)); !r) {
          return std::move(r.error());
        }
        out.action = MemoryWrite::reinforced;
        out.needs_embedding = !m->contains("embedding");
        out.memory = std::move(*m);
        return {};
      }
      // A new text for the key: the old fact stays, closed (history is kept).
      (*m)["valid_to"] = now_s;
      if (auto r = s.replace_item(list, item.id, canonical::to_text(*m)); !r) {
        return std::move(r.error());
      }
      out.action = MemoryWrite::superseded;
    }
    const std::string mid(mem.at("id").as_string());
    if (auto a = s.append(list, {store::ListItem{mid, canonical::to_text(mem)}}, life); !a) {
      return std::move(a.error());
    }
    out.memory = mem;
    out.needs_embedding = true;
    return {};
  });
  // A new version after the write: cached snapshots of the memories are stale from now.
  if (done) done = store.put("memver:" + id, rs::new_id("v"), "", life);
  if (!done) return std::move(done.error());
  return out;
}

std::string memory_json(json::object m) {
  m.erase("embedding");  // internal: the vector of its text
  return canonical::to_text(m);
}

// ---- memory snapshots -------------------------------------------------------------------------

struct MemorySnapshot {
  std::string version;
  std::vector<json::object> mems;  // the open memories, oldest first (index order)
  sessions::MemoryIndex index;
  bool vectors = false;  // some memory has an embedding
};

Result<std::shared_ptr<const MemorySnapshot>> SessionsApi::memories_of(store::StateStore& s,
                                                                       const std::string& id) {
  // The version first, the memories after: a snapshot is never newer-labelled than its data.
  auto ver = s.get("memver:" + id);
  if (!ver) return std::move(ver.error());
  const std::string version = ver->value_or("");
  {
    std::lock_guard lock(cache_mu_);
    auto it = cache_.find(id);
    if (it != cache_.end() && it->second.snapshot->version == version) {
      cache_lru_.splice(cache_lru_.begin(), cache_lru_, it->second.lru);
      return it->second.snapshot;
    }
  }
  auto page = s.range("mems:" + id, "", kMaxMemoriesLoaded, false);
  if (!page) return std::move(page.error());
  std::vector<json::object> mems;
  std::vector<sessions::MemoryDoc> docs;
  std::vector<int64_t> expires;
  bool vectors = false;
  for (const store::ListItem& item : page->items) {
    auto m = parse_record(item.value);
    if (!m || !m->contains("valid_to") || !m->at("valid_to").is_null()) continue;  // closed
    docs.push_back(doc_of(*m));
    vectors = vectors || !docs.back().embedding.empty();
    expires.push_back(canonical::integer(*m, "expires_at").value_or(0) * 1000);
    mems.push_back(std::move(*m));
  }
  auto snapshot = std::make_shared<const MemorySnapshot>(MemorySnapshot{
      version, std::move(mems), sessions::MemoryIndex(std::move(docs), std::move(expires)),
      vectors});
  std::lock_guard lock(cache_mu_);
  if (auto it = cache_.find(id); it != cache_.end()) {
    cache_lru_.erase(it->second.lru);
    cache_.erase(it);
  }
  cache_lru_.push_front(id);
  cache_.emplace(id, CacheEntry{cache_lru_.begin(), snapshot});
  while (cache_.size() > kCachedSessions) {
    cache_.erase(cache_lru_.back());
    cache_lru_.pop_back();
  }
  return std::shared_ptr<const MemorySnapshot>(std::move(snapshot));
}

// ---- the sink that records the exchange -------------------------------------------------------

SessionTurn::SessionTurn(SessionsApi& api, std::string session_id, std::string record,
                         json::array user_items, std::unique_ptr<HttpSink> own_sink,
                         ResponseSink* inner)
    : api_(api),
      session_id_(std::move(session_id)),
      record_(std::move(record)),
      user_items_(std::move(user_items)),
      own_sink_(std::move(own_sink)),
      inner_(inner != nullptr ? inner : own_sink_.get()) {}

asio::awaitable<void> SessionTurn::record(const canonical::Response& r) {
  if (recorded_) co_return;
  recorded_ = true;
  json::array items = user_items_;
  json::array out = rs::output_items(r);
  for (json::value& v : out) items.push_back(std::move(v));
  std::string transcript;
  if (after_ && !after_->tuning.extract_model.empty()) {
    canonical::Request messages;
    rs::append_items(items, messages);
    transcript = sessions::transcript(messages.messages, 16 * 1024);
  }
  const std::string intent;
  auto turn = co_await api_.append_turn(session_id_, record_, std::move(items), intent);
  count_state_write("turn", turn.ok());
  if (!turn) {
    spdlog::warn("sessions: could not record a turn of {}: {}", session_id_, turn.error().message);
    co_return;
  }
  if (after_) {
    const auto ex = co_await asio::this_coro::executor;
    api_.after_turn(ex, std::move(after_), *turn, std::move(transcript));
  }
}

asio::awaitable<void> SessionTurn::answer(const canonical::Response& r) {
  co_await record(r);  // before the answer leaves: the next request sees this turn
  co_await inner_->answer(r);
}

asio::awaitable<bool> SessionTurn::events(const std::vector<canonical::Event>& events) {
  if (!recorded_) {
    builder_.add(events);
    if (builder_.complete()) {
      const canonical::Response whole = builder_.take();
      co_await record(whole);  // before the terminal event is sent
    }
  }
  co_return co_await inner_->events(events);
}

// ---- the API ----------------------------------------------------------------------------------

SessionsApi::SessionsApi(std::shared_ptr<store::StateService> state,
                         const config::StateConfig& config, bool validate_streams,
                         LocalCaller& caller)
    : state_(std::move(state)),
      config_(config.sessions),
      validate_streams_(validate_streams),
      caller_(caller) {}

asio::awaitable<Result<int64_t>> SessionsApi::append_turn(const std::string& id,
                                                          const std::string& record,
                                                          json::array&& items,
                                                          const std::string& intent) {
  auto rec = parse_record(record);
  const json::object* session = rec ? session_of(*rec) : nullptr;
  if (session == nullptr) co_return make_error(Errc::internal, "A session record is damaged.");
  auto ttl = ttl_ms_of(*session, now_ms());
  if (!ttl) co_return make_error(Errc::not_found, "Session with id '" + id + "' has expired.");
  json::object turn{{"id", rs::new_id("turn")},
                    {"object", "session.turn"},
                    {"created_at", now_ms() / 1000},
                    {"intent", intent.empty() ? json::value(nullptr) : json::value(intent)},
                    {"items", std::move(items)}};
  const std::string item_id(turn.at("id").as_string());
  const std::string value = canonical::to_text(turn);
  const std::chrono::milliseconds life(*ttl);
  const std::string key = "sess:" + id;
  const auto op = [key, value, item_id, life, id](store::StateStore& s) -> Result<int64_t> {
    // The session lives `life` longer, unless it was deleted meanwhile: then no turn is added
    // (a touch never rewrites the record, so a deleted session stays deleted).
    auto alive = s.touch(key, life);
    if (!alive) return std::move(alive.error());
    if (!*alive) return make_error(Errc::not_found, "Session with id '" + id + "' not found.");
    auto seq = s.append("turns:" + id, {store::ListItem{item_id, value}}, life);
    if (!seq) return seq;
    if (life.count() > 0) {  // the session's other lists live as long
      if (auto m = s.append("mems:" + id, {}, life); !m) return std::move(m.error());
      if (auto m = s.append("sums:" + id, {}, life); !m) return std::move(m.error());
    }
    return seq;
  };
  co_return co_await state_->run(op);
}

asio::awaitable<void> SessionsApi::serve(http::Request& request, http::Responder& responder,
                                         std::string_view api_path, const std::string& owner,
                                         const Identity& who, WorkerContext& worker) {
  const std::string_view method = request.method();
  std::string_view rest = api_path.substr(std::string_view("/sessions").size());
  const std::string index = "sessions:" + owner;
  if (rest.empty()) {
    if (method == "POST") {  // create
      auto body = rs::parse_object_body(request.body, true);
      if (!body) co_return co_await send_error_value(responder, body.error());
      auto idle = optional_int(*body, "idle_ttl", 0, kMaxTtlS);
      if (!idle) co_return co_await send_error_value(responder, idle.error());
      auto max = optional_int(*body, "max_ttl", 0, kMaxTtlS);
      if (!max) co_return co_await send_error_value(responder, max.error());
      auto metadata = rs::check_metadata(body->if_contains("metadata"));
      if (!metadata) co_return co_await send_error_value(responder, metadata.error());
      const int64_t created = now_ms() / 1000;
      const int64_t idle_s = idle->value_or(config_.idle_ttl_s);
      const int64_t max_s = max->value_or(config_.max_ttl_s);
      const std::string id = rs::new_id("sess");
      json::object session{{"id", id},
                           {"object", "session"},
                           {"created_at", created},
                           {"idle_ttl", idle_s},
                           {"max_ttl", max_s},
                           {"expires_at", max_s > 0 ? json::value(created + max_s) : json::value(nullptr)},
                           {"metadata", std::move(*metadata)}};
      const std::string value = canonical::to_text(json::object{{"owner", owner}, {"session", session}});
      const std::chrono::milliseconds life(ttl_ms_of(session, now_ms()).value_or(0));
      const std::string key = "sess:" + id;
      const auto op = [key, value, life, index, id](store::StateStore& s) -> Result<void> {
        if (auto put = s.put(key, value, "", life); !put) return put;
        if (auto a = s.append(index, {store::ListItem{id, id}}, std::chrono::milliseconds(0)); !a) {
          return std::move(a.error());
        }
        return {};
      };
      auto made = co_await state_->run(op);
      if (!made) co_return co_await send_error_value(responder, made.error());
      const std::string out = canonical::to_text(session);
      co_await responder.send(200, "application/json", out);
      co_return;
    }
    if (method != "GET") co_return co_await send_method_not_allowed(responder, request, "GET, POST");
    // The caller's sessions (ids of expired ones are dropped from the index as they are met).
    auto query = parse_list_query(request.head->query);
    if (!query) co_return co_await send_error_value(responder, query.error());
    const ListQuery q = *query;
    const auto op = [index, q](store::StateStore& s) -> Result<store::ListPage> {
      auto page = s.range(index, q.after, q.limit, q.descending);
      if (!page) return page;
      store::ListPage out;
      out.has_more = page->has_more;
      for (store::ListItem& item : page->items) {
        auto rec = s.get("sess:" + item.id);
        if (!rec) return std::move(rec.error());
        if (!rec->has_value()) {
          (void)s.erase_item(index, item.id);
          continue;
        }
        auto parsed = parse_record(**rec);
        const json::object* session = parsed ? session_of(*parsed) : nullptr;
        if (session != nullptr) out.items.push_back({item.id, canonical::to_text(*session), item.seq});
      }
      return out;
    };
    auto page = co_await state_->run(op);
    if (!page) co_return co_await send_error_value(responder, page.error());
    const std::string out = list_body(*page);
    co_await responder.send(200, "application/json", out);
    co_return;
  }
  if (rest.front() != '/') {
    co_return co_await send_unknown_url(responder, request);
  }
  rest.remove_prefix(1);
  const std::string id(rest.substr(0, rest.find('/')));
  const std::string_view sub = rest.substr(id.size());
  // The session, as its owner sees it.
  const std::string key = "sess:" + id;
  const auto get_op = [key](store::StateStore& s) { return s.get(key); };
  auto got = co_await state_->run(get_op);
  if (!got) co_return co_await send_error_value(responder, got.error());
  std::optional<json::object> rec;
  if (got->has_value()) rec = parse_record(**got);
  if (!rec || str_of(*rec, "owner") != owner || session_of(*rec) == nullptr ||
      !ttl_ms_of(*session_of(*rec), now_ms())) {
    const std::string message = "Session with id '" + id + "' not found.";
    co_return co_await send_not_found(responder, message);
  }
  const std::string& record = **got;

  if (sub.empty()) {
    if (method == "GET") {
      const std::string turns = "turns:" + id;
      const auto size_op = [turns](store::StateStore& s) { return s.size(turns); };
      auto n = co_await state_->run(size_op);
      if (!n) co_return co_await send_error_value(responder, n.error());
      json::object session = *session_of(*rec);
      session["turns"] = static_cast<int64_t>(*n);
      const std::string out = canonical::to_text(session);
      co_await responder.send(200, "application/json", out);
    } else if (method == "DELETE") {
      const auto op = [key, id, index](store::StateStore& s) -> Result<void> {
        if (auto e = s.erase(key); !e) return std::move(e.error());
        if (auto e = s.erase_list("turns:" + id); !e) return e;
        if (auto e = s.erase_list("mems:" + id); !e) return e;
        if (auto e = s.erase_list("sums:" + id); !e) return e;
        if (auto e = s.erase("memver:" + id); !e) return std::move(e.error());
        if (auto e = s.erase_item(index, id); !e) return std::move(e.error());
        return {};
      };
      auto erased = co_await state_->run(op);
      if (!erased) co_return co_await send_error_value(responder, erased.error());
      const std::string out = canonical::to_text(
          json::object{{"id", id}, {"object", "session.deleted"}, {"deleted", true}});
      co_await responder.send(200, "application/json", out);
    } else {
      co_await send_method_not_allowed(responder, request, "GET, DELETE");
    }
    co_return;
  }
  if (sub == "/turns") {
    if (method == "POST") {
      auto body = rs::parse_object_body(request.body, false);
      if (!body) co_return co_await send_error_value(responder, body.error());
      const json::value* items = body->if_contains("items");
      if (items == nullptr || !items->is_array() || items->as_array().empty() ||
          items->as_array().size() > 100) {
        const Error e = canonical::invalid("items must be an array of 1 to 100 items.", "items");
        co_return co_await send_error_value(responder, e);
      }
      auto normal = rs::normalize_items(items->as_array(), "items");
      if (!normal) co_return co_await send_error_value(responder, normal.error());
      std::string intent;
      if (const json::value* in = body->if_contains("intent"); in && !in->is_null()) {
        if (!in->is_string() || in->as_string().size() > 256) {
          const Error e = canonical::invalid("intent must be a string of at most 256 characters.", "intent");
          co_return co_await send_error_value(responder, e);
        }
        intent = std::string(in->as_string());
      }
      auto seq = co_await append_turn(id, record, std::move(*normal), intent);
      if (!seq) co_return co_await send_error_value(responder, seq.error());
      // The stored turn's id is the newest in the list; read it back for the answer.
      const std::string turns = "turns:" + id;
      const auto last_op = [turns](store::StateStore& s) { return s.range(turns, "", 1, true); };
      auto last = co_await state_->run(last_op);
      if (!last || last->items.empty()) {
        const Error e = make_error(Errc::unavailable, "The turn was stored but cannot be read back.");
        co_return co_await send_error_value(responder, e);
      }
      const std::string out = turn_json(last->items.front());
      co_await responder.send(200, "application/json", out);
      co_return;
    }
    if (method != "GET") co_return co_await send_method_not_allowed(responder, request, "GET, POST");
    const std::string turns = "turns:" + id;
    co_return co_await send_list_page(*state_, responder, request, turns, &turn_json);
  }
  if (sub == "/memories" || sub.starts_with("/memories/")) {
    co_return co_await serve_memories(request, responder, id, sub.substr(9), record, who, worker);
  }
  if (sub == "/summaries") {  // the rolling summaries of evicted turns, oldest first
    if (method != "GET") co_return co_await send_method_not_allowed(responder, request, "GET");
    const std::string sums = "sums:" + id;
    co_return co_await send_list_page(*state_, responder, request, sums);
  }
  co_await send_unknown_url(responder, request);
}

asio::awaitable<void> SessionsApi::serve_memories(http::Request& request,
                                                  http::Responder& responder,
                                                  const std::string& id, std::string_view sub,
                                                  const std::string& record, const Identity& who,
                                                  WorkerContext& worker) {
  const auto ex = co_await asio::this_coro::executor;
  const std::string_view method = request.method();
  const std::string list = "mems:" + id;
  const int64_t now = now_ms();
  const int64_t now_s = now / 1000;
  auto session_ttl = ttl_ms_of(*session_of(*parse_record(record)), now).value_or(0);
  const std::chrono::milliseconds life(session_ttl);
  // Every memory of the session, oldest first.
  const auto all_op = [list](store::StateStore& s) {
    return s.range(list, "", kMaxMemoriesLoaded, false);
  };

  if (sub.empty() && method == "POST") {
    auto body = rs::parse_object_body(request.body, false);
    if (!body) co_return co_await send_error_value(responder, body.error());
    std::string_view key = str_of(*body, "key"), text = str_of(*body, "text");
    if (key.empty() || key.size() > 256) {
      const Error e = canonical::invalid("key is required (a string of at most 256 characters).", "key");
      co_return co_await send_error_value(responder, e);
    }
    if (text.empty() || text.size() > 8192) {
      const Error e = canonical::invalid("text is required (a string of at most 8192 characters).", "text");
      co_return co_await send_error_value(responder, e);
    }
    double weight = 0.5;
    if (const json::value* w = body->if_contains("weight"); w && !w->is_null()) {
      auto x = canonical::number(*body, "weight");
      if (!x || *x < 0 || *x > 1) {
        const Error e = canonical::invalid("weight must be a number from 0 to 1.", "weight");
        co_return co_await send_error_value(responder, e);
      }
      weight = *x;
    }
    auto ttl = optional_int(*body, "ttl", 1, kMaxTtlS);
    if (!ttl) co_return co_await send_error_value(responder, ttl.error());
    auto valid_from = optional_int(*body, "valid_from", 0, INT64_MAX / 1000);
    if (!valid_from) co_return co_await send_error_value(responder, valid_from.error());
    auto tags = list_field(*body, "tags", true);
    if (!tags) co_return co_await send_error_value(responder, tags.error());
    auto sources = list_field(*body, "source_turns", false);
    if (!sources) co_return co_await send_error_value(responder, sources.error());

    json::object mem{{"id", rs::new_id("mem")},
                     {"object", "session.memory"},
                     {"key", key},
                     {"text", text},
                     {"weight", weight},
                     {"source_turns", *sources},
                     {"tags", *tags},
                     {"created_at", now_s},
                     {"last_access", now_s},
                     {"valid_from", valid_from->value_or(now_s)},
                     {"valid_to", nullptr},
                     {"ttl", ttl->has_value() ? json::value(**ttl) : json::value(nullptr)},
                     {"expires_at", ttl->has_value() ? json::value(now_s + **ttl) : json::value(nullptr)}};
    const std::string session_id = id;
    const auto op = [session_id, mem, now_s, life](store::StateStore& store) {
      return upsert_memory(store, session_id, mem, now_s, life);
    };
    auto saved = co_await state_->run(op);
    count_state_write("memory", saved.ok());
    if (!saved) co_return co_await send_error_value(responder, saved.error());
    count_fact(saved->action);
    if (saved->needs_embedding) start_embedding(ex, id, saved->memory, who, worker, life);
    const std::string out = memory_json(saved->memory);
    co_await responder.send(200, "application/json", out);
    co_return;
  }
  if (sub.empty() || sub == "/search") {
    if (method != "GET") {
      co_return co_await send_method_not_allowed(responder, request, sub.empty() ? "GET, POST" : "GET");
    }
    std::string q_text;
    size_t k = 10;
    bool explain = false, history = false;
    std::optional<Error> bad;
    for_each_query_param(request.head->query, [&](std::string_view name, std::string_view value) {
      if (name == "q") q_text = percent_decode(value);
      if (name == "k") {
        size_t n = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc() || end != value.data() + value.size() || n < 1 || n > 100) {
          bad = canonical::invalid("k must be an integer from 1 to 100.", "k");
        }
        k = n;
      }
      if (name == "explain") explain = value == "1" || value == "true";
      if (name == "include_history") history = value == "1" || value == "true";
    });
    if (bad) co_return co_await send_error_value(responder, *bad);
    store::ListPage out;
    sessions::ScoreParams params = score_params(config_.tuning);
    auto add_scored = [&](json::object m, const sessions::Scored& s) {
      m["score"] = s.score;
      if (explain) {
        json::object e{{"relevance", s.relevance}, {"bm25", s.bm25},
                       {"recency", s.recency},     {"weight", s.weight},
                       {"alpha", params.alpha},    {"beta", params.beta},
                       {"gamma", params.gamma}};
        if (!params.query_vector.empty()) {
          e["similarity"] = s.similarity;
          e["vector_weight"] = params.vector_weight;
        }
        m["explain"] = std::move(e);
      }
      const std::string mid(str_of(m, "id"));
      out.items.push_back({mid, memory_json(std::move(m))});
    };
    if (!sub.empty() && !history) {  // search the open memories: the indexed snapshot
      const auto snap_op = [this, id](store::StateStore& s) { return memories_of(s, id); };
      auto snapshot = co_await state_->run(snap_op);
      if (!snapshot) co_return co_await send_error_value(responder, snapshot.error());
      const MemorySnapshot& snap = **snapshot;
      if (snap.vectors) co_await embed_query(q_text, who, worker, params);
      for (const sessions::Scored& s : snap.index.search(q_text, k, now, params)) {
        add_scored(snap.mems[s.index], s);
      }
      const std::string body = list_body(out);
      co_await responder.send(200, "application/json", body);
      co_return;
    }
    auto page = co_await state_->run(all_op);
    if (!page) co_return co_await send_error_value(responder, page.error());
    std::vector<json::object> mems;
    for (const store::ListItem& item : page->items) {
      auto m = parse_record(item.value);
      if (m && (history || memory_open(*m, now_s))) mems.push_back(std::move(*m));
    }
    if (sub.empty()) {
      for (json::object& m : mems) out.items.push_back({std::string(str_of(m, "id")), memory_json(m)});
      std::reverse(out.items.begin(), out.items.end());  // newest first
    } else {  // a search of the history too: scored one-off
      std::vector<sessions::MemoryDoc> docs;
      bool vectors = false;
      for (const json::object& m : mems) {
        docs.push_back(doc_of(m));
        vectors = vectors || !docs.back().embedding.empty();
      }
      if (vectors) co_await embed_query(q_text, who, worker, params);
      for (const sessions::Scored& s : sessions::score_memories(docs, q_text, k, now, params)) {
        add_scored(mems[s.index], s);
      }
    }
    const std::string body = list_body(out);
    co_await responder.send(200, "application/json", body);
    co_return;
  }
  // /memories/{mid}
  const std::string mid(sub.substr(1));
  if (mid.empty() || mid.find('/') != std::string::npos) {
    co_return co_await send_unknown_url(responder, request);
  }
  const auto item_op = [list, mid](store::StateStore& s) { return s.item(list, mid); };
  auto got = co_await state_->run(item_op);
  if (!got) co_return co_await send_error_value(responder, got.error());
  if (!got->has_value()) {
    const std::string message = "Memory with id '" + mid + "' not found.";
    co_return co_await send_not_found(responder, message);
  }
  if (method == "GET") {
    auto m = parse_record(**got);
    const std::string out = m ? memory_json(std::move(*m)) : **got;
    co_await responder.send(200, "application/json", out);
  } else if (method == "DELETE") {
    const std::string ver_key = "memver:" + id;
    const auto op = [list, mid, ver_key, life](store::StateStore& s) -> Result<bool> {
      auto erased = s.erase_item(list, mid);
      if (!erased) return erased;
      if (auto v = s.put(ver_key, rs::new_id("v"), "", life); !v) return std::move(v.error());
      return erased;
    };
    auto erased = co_await state_->run(op);
    if (!erased) co_return co_await send_error_value(responder, erased.error());
    const std::string out = canonical::to_text(
        json::object{{"id", mid}, {"object", "session.memory.deleted"}, {"deleted", true}});
    co_await responder.send(200, "application/json", out);
  } else if (method == "POST") {  // edit text, weight or tags in place
    auto body = rs::parse_object_body(request.body, false);
    if (!body) co_return co_await send_error_value(responder, body.error());
    auto m = parse_record(**got);
    if (!m) {
      const Error e = make_error(Errc::internal, "A stored memory is damaged.");
      co_return co_await send_error_value(responder, e);
    }
    if (const json::value* t = body->if_contains("text"); t && !t->is_null()) {
      if (!t->is_string() || t->as_string().empty() || t->as_string().size() > 8192) {
        const Error e = canonical::invalid("text must be a string of 1 to 8192 characters.", "text");
        co_return co_await send_error_value(responder, e);
      }
      if (t->as_string() != str_of(*m, "text")) m->erase("embedding");  // stale now
      (*m)["text"] = *t;
    }
    if (const json::value* w = body->if_contains("weight"); w && !w->is_null()) {
      auto x = canonical::number(*body, "weight");
      if (!x || *x < 0 || *x > 1) {
        const Error e = canonical::invalid("weight must be a number from 0 to 1.", "weight");
        co_return co_await send_error_value(responder, e);
      }
      (*m)["weight"] = *x;
    }
    if (body->contains("tags")) {
      auto tags = list_field(*body, "tags", true);
      if (!tags) co_return co_await send_error_value(responder, tags.error());
      (*m)["tags"] = std::move(*tags);
    }
    (*m)["last_access"] = now_s;
    const std::string value = canonical::to_text(*m);
    const std::string ver_key = "memver:" + id;
    const auto op = [list, mid, value, ver_key, life](store::StateStore& s) -> Result<bool> {
      auto replaced = s.replace_item(list, mid, value);
      if (!replaced) return replaced;
      if (auto v = s.put(ver_key, rs::new_id("v"), "", life); !v) return std::move(v.error());
      return replaced;
    };
    auto replaced = co_await state_->run(op);
    if (!replaced) co_return co_await send_error_value(responder, replaced.error());
    if (!m->contains("embedding")) start_embedding(ex, id, *m, who, worker, life);
    const std::string out = memory_json(std::move(*m));
    co_await responder.send(200, "application/json", out);
  } else {
    co_await send_method_not_allowed(responder, request, "GET, POST, DELETE");
  }
}

// ---- augmentation -----------------------------------------------------------------------------

asio::awaitable<Result<std::unique_ptr<SessionTurn>>> SessionsApi::augment(
    RequestContext& ctx, const std::string& session_id, const std::string& owner,
    const config::RouteConfig& route) {
  if (ctx.parsed.op != providers::Operation::chat) {
    co_return canonical::invalid(
        "x-sluice-session applies to chat requests (chat completions, messages, responses).");
  }
  if (!ctx.canon) {  // an OpenAI chat client: decoded once, served through the canonical model
    auto decoded = canonical::decode_request(canonical::Protocol::openai, ctx.request->body, {});
    if (!decoded) co_return std::move(decoded.error());
    ctx.canon = std::move(decoded.value());
  }
  ctx.canonical_only = true;
  const std::string key = "sess:" + session_id;
  const std::string turns_list = "turns:" + session_id;
  struct Loaded {
    std::optional<std::string> record;
    std::vector<store::ListItem> turns;      // newest first
    std::vector<store::ListItem> summaries;  // oldest first
    std::shared_ptr<const MemorySnapshot> memories;
  };
  const bool summaries = !route.sessions.summary_model.empty();
  const auto load_op = [this, key, turns_list, session_id, summaries](store::StateStore& s) -> Result<Loaded> {
    Loaded l;
    auto rec = s.get(key);
    if (!rec) return std::move(rec.error());
    l.record = std::move(*rec);
    if (!l.record) return l;
    auto turns = s.range(turns_list, "", kMaxTurnsLoaded, true);
    if (!turns) return std::move(turns.error());
    l.turns = std::move(turns->items);
    if (summaries) {  // the newest ones, oldest first
      auto sums = s.range("sums:" + session_id, "", kMaxSummariesLoaded, true);
      if (!sums) return std::move(sums.error());
      l.summaries.assign(std::make_move_iterator(sums->items.rbegin()),
                         std::make_move_iterator(sums->items.rend()));
    }
    auto mems = memories_of(s, session_id);
    if (!mems) return std::move(mems.error());
    l.memories = std::move(*mems);
    return l;
  };
  auto pin = state_->store().pin(turns_list);
  auto loaded = co_await state_->run(load_op);
  if (!loaded) co_return std::move(loaded.error());
  std::optional<json::object> rec;
  if (loaded->record) rec = parse_record(*loaded->record);
  const int64_t now = now_ms();
  if (!rec || str_of(*rec, "owner") != owner || session_of(*rec) == nullptr ||
      !ttl_ms_of(*session_of(*rec), now)) {
    co_return make_error(Errc::not_found, "Session with id '" + session_id + "' not found.");
  }
  canonical::Request& req = *ctx.canon;
  // The new turn as the client sent it (before the context is packed around it; a Responses
  // request's replayed history is not part of it).
  const size_t replayed = std::min(ctx.replayed_messages, req.messages.size());
  const std::vector<canonical::Message> fresh(req.messages.begin() + static_cast<ptrdiff_t>(replayed),
                                              req.messages.end());
  json::array user_items = rs::items_of(fresh);

  // Memories scored against the newest user text.
  std::string query;
  for (auto it = req.messages.rbegin(); it != req.messages.rend() && query.empty(); ++it) {
    if (it->role != canonical::Role::user) continue;
    for (const canonical::Block& b : it->content) {
      if (b.kind == canonical::BlockKind::text) query += b.text + " ";
    }
  }
  sessions::PackInput input;
  const config::SessionTuning& tuning = route.sessions;
  sessions::ScoreParams params = score_params(tuning);
  const sessions::MemoryIndex& index = loaded->memories->index;
  if (loaded->memories->vectors && tuning.memories_k > 0) {
    co_await embed_query(query, *ctx.who, *ctx.worker, params);
  }
  for (const sessions::Scored& s :
       index.search(query, static_cast<size_t>(tuning.memories_k), now, params)) {
    input.memory_lines.push_back(index.doc(s.index).key + ": " + index.doc(s.index).text);
  }
  // Turns oldest first, each as the messages it holds.
  for (auto it = loaded->turns.rbegin(); it != loaded->turns.rend(); ++it) {
    auto turn = parse_record(it->value);
    if (!turn) continue;
    canonical::Request one;
    if (const json::value* items = turn->if_contains("items"); items && items->is_array()) {
      rs::append_items(items->as_array(), one);
    }
    input.turns.push_back(std::move(one.messages));
    input.turn_numbers.push_back(it->seq);
  }
  for (const store::ListItem& item : loaded->summaries) {
    auto sum = parse_record(item.value);
    if (!sum) continue;
    input.summaries.push_back({canonical::integer(*sum, "from").value_or(0),
                               canonical::integer(*sum, "to").value_or(0),
                               std::string(str_of(*sum, "text"))});
  }
  const int64_t summarized_to = input.summaries.empty() ? 0 : input.summaries.back().to;
  const int64_t window = route.context_window > 0 ? route.context_window
                                                  : config_.default_context_window;
  // What will be sent as max_tokens: the client's, else the route's default when one of its
  // targets needs one (Anthropic: the dispatcher sends default_max_tokens).
  bool needs_default = false;
  for (const config::TargetConfig& t : route.targets) {
    needs_default = needs_default || t.provider == config::ProviderKind::anthropic;
  }
  const int64_t client_max = req.max_tokens.value_or(ctx.parsed.max_tokens);
  const int64_t max_tokens =
      client_max > 0 ? client_max : needs_default ? route.default_max_tokens : 0;
  input.budget = std::max<int64_t>(0, window - max_tokens - tuning.margin_tokens);
  input.memory_budget = static_cast<int64_t>(static_cast<double>(input.budget) * tuning.memory_share);
  const sessions::PackResult packed = sessions::pack(req, std::move(input));
  http::Responder& responder = *ctx.responder;
  responder.add_header("x-sluice-context-tokens", std::to_string(packed.context_tokens));
  responder.add_header("x-sluice-turns-evicted", std::to_string(packed.turns_evicted));
  responder.add_header("x-sluice-memories-used", std::to_string(packed.memories_used));
  if (summaries) {
    responder.add_header("x-sluice-summaries-used", std::to_string(packed.summaries_used));
  }
  responder.add_header("x-sluice-session", session_id);

  std::unique_ptr<HttpSink> own;
  if (ctx.sink == nullptr) {
    own = std::make_unique<HttpSink>(responder, ctx.ingress, req, validate_streams_,
                                     ctx.request->request_id);
  }
  auto turn = std::make_unique<SessionTurn>(*this, session_id, std::move(*loaded->record),
                                            std::move(user_items), std::move(own), ctx.sink);
  turn->pin_ = std::move(pin);
  // The work after the turn: facts extracted; evicted turns not yet summarized (from the
  // oldest, at most summary_max_turns, once at least summary_min_turns wait).
  if (!tuning.extract_model.empty() || summaries) {
    auto after = std::make_shared<AfterTurn>();
    after->session_id = session_id;
    after->who = *ctx.who;
    after->worker = ctx.worker;
    after->tuning = tuning;
    after->life = std::chrono::milliseconds(ttl_ms_of(*session_of(*rec), now).value_or(0));
    if (!tuning.extract_model.empty()) {
      for (const json::object& m : loaded->memories->mems) {
        std::string k(str_of(m, "key"));
        if (std::find(after->known_keys.begin(), after->known_keys.end(), k) == after->known_keys.end()) {
          after->known_keys.push_back(std::move(k));
        }
      }
    }
    if (summaries) {
      for (auto it = loaded->turns.rbegin(); it != loaded->turns.rend(); ++it) {
        if (it->seq < summarized_to || it->seq >= packed.first_kept_turn) continue;
        if (after->to_summarize.size() >= static_cast<size_t>(tuning.summary_max_turns)) break;
        after->to_summarize.push_back(*it);
      }
      if (after->to_summarize.size() < static_cast<size_t>(tuning.summary_min_turns)) {
        after->to_summarize.clear();
      }
    }
    if (!tuning.extract_model.empty() || !after->to_summarize.empty()) turn->after_ = std::move(after);
  }
  ctx.sink = turn.get();
  co_return std::move(turn);
}

}  // namespace sluice::api
