// The response cache stage and its tiers: see cache_stage.h.
#include "api/cache_stage.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>

#include "api/attempt.h"
#include "api/request_context.h"
#include "api/responses.h"
#include "api/sink.h"
#include "cache/entry.h"
#include "cache/key.h"
#include "cache/semantic.h"
#include "sessions/extract.h"
#include "canonical/codec.h"
#include "canonical/events.h"
#include "observe/metrics.h"

namespace sluice::api {

namespace json = canonical::json;

namespace {

constexpr int64_t kL2Cooldown_ms = 1000;  // after a Redis error, L2 is skipped this long

int64_t now_ms() { return store::system_now_ms(); }

// ---- request headers ----

struct CacheControl {
  bool no_store = false, no_cache = false, is_private = false;
  std::optional<int64_t> max_age;
};

CacheControl cache_control(std::string_view v) {
  CacheControl cc;
  while (!v.empty()) {
    size_t comma = v.find(',');
    std::string_view d = v.substr(0, comma);
    v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
    while (!d.empty() && (d.front() == ' ' || d.front() == '\t')) d.remove_prefix(1);
    while (!d.empty() && (d.back() == ' ' || d.back() == '\t')) d.remove_suffix(1);
    std::string low(d);
    for (char& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (low == "no-store") cc.no_store = true;
    if (low == "no-cache") cc.no_cache = true;
    if (low == "private") cc.is_private = true;
    if (low.starts_with("max-age=")) {
      int64_t n = 0;
      const char* b = low.data() + 8;
      auto [end, ec] = std::from_chars(b, low.data() + low.size(), n);
      if (ec == std::errc() && end == low.data() + low.size() && n >= 0) cc.max_age = n;
    }
  }
  return cc;
}

// ---- paced replay ----

// events_of(r) with each text or thinking delta cut into pieces of about `piece` bytes (never
// inside a UTF-8 sequence), as a model would have streamed them.
std::vector<canonical::Event> fine_events(const canonical::Response& r, size_t piece) {
  std::vector<canonical::Event> out;
  for (canonical::Event& e : canonical::events_of(r)) {
    const bool textual = e.kind == canonical::EventKind::block_delta &&
                         (e.delta == canonical::DeltaKind::text || e.delta == canonical::DeltaKind::thinking);
    if (!textual || e.text.size() <= piece) {
      out.push_back(std::move(e));
      continue;
    }
    std::string_view t = e.text;
    while (!t.empty()) {
      size_t n = std::min(piece, t.size());
      while (n < t.size() && n > 1 && (static_cast<unsigned char>(t[n]) & 0xC0) == 0x80) --n;
      canonical::Event part = e;
      part.text = std::string(t.substr(0, n));
      out.push_back(std::move(part));
      t.remove_prefix(n);
    }
  }
  return out;
}

}  // namespace


// ---- the semantic tier ----

/// A single-turn question on its way through the semantic tier: its embedding is requested at
/// once (a local call to the route's embeddings model, as the client), waited for at most the
/// route's timeout, and used twice: to look for a similar question, and, on a miss, to index
/// this one with its answer (if the embedding has come by the time the answer is stored).
struct SemanticProbe {
  std::string model;   // the embeddings model
  std::string bucket;  // key_of(scope, the question without its text)
  std::string text;
  std::optional<std::vector<float>> vector;
  bool done = false;   // the embedding call has returned (touched on one worker only)
  std::weak_ptr<asio::steady_timer> waiter;
  // The answer was stored before the embedding came: indexed when it does.
  std::optional<cache::SemanticIndex::Item> pending;
  std::shared_ptr<cache::SemanticIndex> index;
};

namespace {

asio::awaitable<void> embed_question(std::shared_ptr<void> hold, LocalCaller* caller,
                                     std::shared_ptr<SemanticProbe> probe, Identity who,
                                     WorkerContext* worker) {
  const std::string path = "/v1/embeddings";
  const std::string purpose = "cache";
  const std::string body = sessions::embeddings_request(probe->model, probe->text);
  const LocalAnswer answer = co_await caller->call(path, body, who, *worker, purpose);
  if (answer.status == 200) {
    if (auto v = sessions::embedding_of(answer.body); v && !v->empty()) probe->vector = std::move(*v);
  }
  probe->done = true;
  if (auto t = probe->waiter.lock()) t->cancel();
  if (probe->pending && probe->vector && probe->index) {
    probe->index->add(*probe->vector, std::move(*probe->pending), store::system_now_ms());
    probe->pending.reset();
  }
  (void)hold;
}

// x-sluice-cache-threshold: a request may ask for a closer match than the route's, never a
// looser one (a lower value is the route's). Errors: not a number in [0, 1].
Result<double> threshold_of(std::string_view header, double route) {
  if (header.empty()) return route;
  double v = -1;
  const auto [end, ec] = std::from_chars(header.data(), header.data() + header.size(), v);
  if (ec != std::errc() || end != header.data() + header.size() || !(v >= 0 && v <= 1)) {
    return make_error(Errc::bad_request,
                      "x-sluice-cache-threshold must be a number between 0 and 1 (a cosine "
                      "similarity; values below the route's threshold have no effect).");
  }
  return std::max(v, route);
}

}  // namespace

// ---- the tee of a miss ----

namespace {

/// Forwards the answer to the client's sink and stores it when it is complete and storable;
/// leads the single flight of its key (waiters get the stored entry, or nothing).
class CacheFill final : public ResponseSink {
 public:
  CacheFill(std::shared_ptr<ResponseCache> cache, std::string key, cache::Stored meta,
            int64_t ttl_ms, bool tool_calls, std::unique_ptr<HttpSink> own, ResponseSink* inner,
            std::shared_ptr<Flights::Flight> lead, std::shared_ptr<SemanticProbe> probe,
            asio::any_io_executor remote_lock)
      : cache_(std::move(cache)),
        key_(std::move(key)),
        meta_(std::move(meta)),
        ttl_ms_(ttl_ms),
        tool_calls_(tool_calls),
        own_(std::move(own)),
        inner_(inner != nullptr ? inner : own_.get()),
        lead_(std::move(lead)),
        probe_(std::move(probe)),
        remote_lock_(std::move(remote_lock)),
        started_(std::chrono::steady_clock::now()) {}
  ~CacheFill() override {
    if (!done_) count_store(1);  // no answer came (an upstream error, a client gone)
    if (lead_) cache_->flights().finish(key_, lead_, nullptr);  // nothing to share
    if (remote_lock_) cache_->unlock_flight(remote_lock_, key_);
  }
  asio::awaitable<void> answer(const canonical::Response& r) override {
    co_await store(r);
    co_await inner_->answer(r);
  }
  asio::awaitable<bool> begin_stream() override { return inner_->begin_stream(); }
  asio::awaitable<bool> events(const std::vector<canonical::Event>& events) override {
    if (!done_) {
      builder_.add(events);
      if (builder_.complete()) {
        const canonical::Response whole = builder_.take();
        co_await store(whole);  // before the terminal event goes out
      } else if (builder_.failed()) {
        done_ = true;
        count_store(1);
        release();
      }
    }
    co_return co_await inner_->events(events);
  }
  asio::awaitable<void> fail_stream(int status, std::string_view message) override {
    if (!done_) {
      done_ = true;
      count_store(1);
      release();
    }
    return inner_->fail_stream(status, message);
  }
  asio::awaitable<void> end_stream() override { return inner_->end_stream(); }
  bool gone() const override { return inner_->gone(); }
  void abandon() override { inner_->abandon(); }

 private:
  void release(std::shared_ptr<const std::string> entry = nullptr) {
    if (lead_) cache_->flights().finish(key_, lead_, std::move(entry));
    lead_ = nullptr;
    if (remote_lock_) cache_->unlock_flight(remote_lock_, key_);
    remote_lock_ = {};
  }
  asio::awaitable<void> store(const canonical::Response& r) {
    if (done_) co_return;
    done_ = true;
    if (!cache::storable(r, tool_calls_) || inner_->gone()) {
      count_store(1);
      release();
      co_return;
    }
    const int64_t now = now_ms();
    cache::Entry e;
    e.answer = r;
    e.stored_ms = now;
    e.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started_)
                        .count();
    e.model = r.model;
    auto value = std::make_shared<const std::string>(cache::encode_entry(e));
    meta_.value = value;
    meta_.decoded = std::make_shared<const cache::Entry>(std::move(e));
    meta_.stored_ms = now;
    meta_.expires_ms = now + ttl_ms_;
    const auto ex = co_await asio::this_coro::executor;
    // The lock across instances is released by store(), once the entry is in L2.
    const bool kept = cache_->store(ex, key_, meta_, ttl_ms_, static_cast<bool>(remote_lock_));
    remote_lock_ = {};
    count_store(kept ? 0 : 2);
    if (kept && probe_ != nullptr && (probe_->vector || !probe_->done)) {
      cache::SemanticIndex::Item item;
      item.bucket = probe_->bucket;
      item.text = probe_->text;
      item.key = key_;
      item.owner = meta_.owner;
      item.route = meta_.route;
      item.expires_ms = meta_.expires_ms;
      if (probe_->vector) {
        cache_->semantic(probe_->model)->add(*probe_->vector, std::move(item), now);
      } else {  // its embedding is still on its way (the probe lives in that call too)
        probe_->index = cache_->semantic(probe_->model);
        probe_->pending = std::move(item);
      }
    }
    release(kept ? value : nullptr);
  }

  std::shared_ptr<ResponseCache> cache_;
  std::string key_;
  cache::Stored meta_;
  int64_t ttl_ms_;
  bool tool_calls_;
  std::unique_ptr<HttpSink> own_;
  ResponseSink* inner_;
  std::shared_ptr<Flights::Flight> lead_;
  std::shared_ptr<SemanticProbe> probe_;  // null: not indexed
  asio::any_io_executor remote_lock_;     // set: this request holds the key's lock in L2
  std::chrono::steady_clock::time_point started_;
  canonical::ResponseBuilder builder_;
  bool done_ = false;
};

// A Responses request that continues stored state (previous_response_id, conversation) asks
// a different question each time: never cached.
bool continues_state(std::string_view body) {
  auto parsed = canonical::parse_json(body);
  if (!parsed || !parsed->is_object()) return false;
  const json::object& o = parsed->as_object();
  for (const char* k : {"previous_response_id", "conversation"}) {
    if (const json::value* v = o.if_contains(k); v != nullptr && !v->is_null()) return true;
  }
  return false;
}

std::string upstream_models(const config::RouteConfig& route) {
  std::vector<std::string> models;
  for (const config::TargetConfig& t : route.targets) {
    const char* kind = t.provider == config::ProviderKind::openai      ? "openai"
                       : t.provider == config::ProviderKind::anthropic ? "anthropic"
                       : t.provider == config::ProviderKind::gemini    ? "gemini"
                                                                       : "demo";
    models.push_back(std::string(kind) + ":" + t.model);
  }
  std::sort(models.begin(), models.end());
  models.erase(std::unique(models.begin(), models.end()), models.end());
  std::string out;
  for (const std::string& m : models) {
    if (!out.empty()) out += ',';
    out += m;
  }
  return out;
}

}  // namespace

// ---- the stage ----

asio::awaitable<Verdict> CacheStage::on_request(RequestContext& ctx) const {
  const config::RouteConfig* route = ctx.route;
  if (route == nullptr || !route->cache.enabled) co_return Verdict::proceed();
  const config::RouteCacheConfig& rc = route->cache;
  http::Request& request = *ctx.request;
  http::Responder& responder = *ctx.responder;
  const std::string_view opt = request.header("x-sluice-cache");
  if (rc.mode == config::RouteCacheConfig::Mode::on_request && opt != "on") {
    co_return Verdict::proceed();  // not asked for
  }
  auto bypass = [&] {
    responder.add_header("x-sluice-cache", "bypass");
    ctx.trace->cache = "bypass";
    cache_->note("none", "bypass");
    return Verdict::proceed();
  };
  const CacheControl cc = cache_control(request.header("cache-control"));
  if (opt == "off" || cc.no_store || !request.header("x-sluice-session").empty() ||
      ctx.replayed_messages > 0) {
    co_return bypass();
  }
  const std::string_view path = request.path();
  cache::Api api = cache::Api::chat;
  std::string endpoint;
  if (ctx.ingress == canonical::Protocol::gemini) {
    api = cache::Api::gemini;
    endpoint = "gemini:" + ctx.parsed.model;  // the model is in the path; stream is not
  } else if (path.ends_with("/chat/completions")) {
    endpoint = "chat";
  } else if (path.ends_with("/messages")) {
    api = cache::Api::messages;
    endpoint = "messages";
  } else if (path.ends_with("/responses")) {
    api = cache::Api::responses;
    endpoint = "responses";
    if (continues_state(request.body)) co_return bypass();
  } else {
    co_return bypass();
  }
  auto canonical = cache::canonical_form(api, request.body);
  if (!canonical) co_return bypass();  // the request's own checks will answer it
  const Identity& who = *ctx.who;
  cache::Scope scope;
  scope.owner = cc.is_private && !who.anonymous ? "k:" + who.key_id : state_owner(who);
  scope.route = route->model;
  scope.upstream = upstream_models(*route);
  scope.endpoint = std::move(endpoint);
  const std::string key = cache::key_of(scope, *canonical);
  const int64_t now = now_ms();

  // A malformed threshold is refused whatever the cache holds.
  Result<double> threshold = rc.semantic.enabled
                                 ? threshold_of(request.header("x-sluice-cache-threshold"),
                                                rc.semantic.threshold)
                                 : Result<double>(1.0);
  if (!threshold) co_return Verdict::refuse(std::move(threshold.error()));
  auto young = [&](const cache::Stored& s) {
    return !cc.max_age || now - s.stored_ms <= *cc.max_age * 1000;
  };
  if (!cc.no_cache) {
    auto found = co_await cache_->lookup(key, now);
    if (found && young(found->stored)) {
      co_await serve(ctx, found->stored, found->tier);
      co_return Verdict::answered();
    }
  }
  // The semantic tier: a single-turn question may be answered by a similar earlier one.
  std::shared_ptr<SemanticProbe> probe;
  if (rc.semantic.enabled) {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    probe = start_probe(ex, ctx, api, scope);
    if (probe != nullptr && !cc.no_cache) {
      const std::chrono::milliseconds timeout = rc.semantic.timeout;
      const std::function<bool(const cache::Stored&)> is_young = young;
      auto lookup = find_similar(*probe, *threshold, timeout, now, is_young);
      std::optional<Similar> similar = co_await std::move(lookup);
      if (similar) {
        responder.add_header("x-sluice-cache-similarity", fmt::format("{:.4f}", similar->similarity));
        co_await serve(ctx, similar->found.stored, "semantic");
        co_return Verdict::answered();
      }
    }
  }
  // Identical misses in flight: the first leads, later ones wait for its answer.
  auto [flight, lead] = cache_->flights().join(key);
  if (!lead) {
    std::shared_ptr<const std::string> entry;
    if (rc.flight_wait.count() > 0) {
      const std::chrono::milliseconds wait = rc.flight_wait;
      entry = co_await Flights::wait(flight, wait);
    }
    if (entry != nullptr) {
      cache::Stored stored;
      stored.value = std::move(entry);
      stored.stored_ms = now;
      co_await serve(ctx, stored, "flight");
      co_return Verdict::answered();
    }
    flight = nullptr;  // no answer in time: this one goes upstream too, leading nothing
  }
  // Across instances (cache.flight_lock): the leader here also takes the key's lock in L2; when
  // another instance holds it, its answer is awaited in L2 (bounded), then shared locally too.
  bool remote_lock = false;
  if (flight != nullptr && cache_->flight_lock() && rc.flight_wait.count() > 0) {
    const std::chrono::milliseconds wait = rc.flight_wait;
    const ResponseCache::Lock lock = co_await cache_->lock_flight(key, wait);
    remote_lock = lock == ResponseCache::Lock::acquired;
    if (lock == ResponseCache::Lock::elsewhere) {
      std::optional<ResponseCache::Found> found = co_await cache_->wait_elsewhere(key, wait);
      if (found && found->stored.value != nullptr) {
        cache_->flights().finish(key, flight, found->stored.value);
        co_await serve(ctx, found->stored, "flight");
        co_return Verdict::answered();
      }
    }
  }
  const asio::any_io_executor fill_ex = co_await asio::this_coro::executor;
  // A miss: the answer is teed into the cache (through the canonical model, so one entry
  // serves every protocol and both shapes).
  if (!ctx.canon) {
    auto decoded = canonical::decode_request(canonical::Protocol::openai, request.body, {});
    if (!decoded) {
      if (flight) cache_->flights().finish(key, flight, nullptr);
      if (remote_lock) cache_->unlock_flight(fill_ex, key);
      co_return bypass();
    }
    ctx.canon = std::move(decoded.value());
  }
  ctx.canonical_only = true;
  std::unique_ptr<HttpSink> own;
  if (ctx.sink == nullptr) {
    own = std::make_unique<HttpSink>(responder, ctx.ingress, *ctx.canon, validate_streams_,
                                     request.request_id);
  }
  cache::Stored meta;
  meta.owner = scope.owner;
  meta.route = scope.route;
  auto fill = std::make_shared<CacheFill>(cache_, key, std::move(meta), rc.ttl_s * 1000,
                                          rc.tool_calls, std::move(own), ctx.sink, flight,
                                          std::move(probe), remote_lock ? fill_ex : asio::any_io_executor());
  ctx.sink = fill.get();
  ctx.cache_fill = std::move(fill);
  responder.add_header("x-sluice-cache", "miss");
  ctx.trace->cache = "miss";
  cache_->note("none", "miss");
  co_return Verdict::proceed();
}

std::shared_ptr<SemanticProbe> CacheStage::start_probe(const asio::any_io_executor& ex,
                                                      RequestContext& ctx, cache::Api api,
                                                      const cache::Scope& scope) const {
  const config::RouteCacheConfig::Semantic& sc = ctx.route->cache.semantic;
  auto question = cache::semantic_question(api, ctx.request->body);
  if (!question || !question->has_value()) {
    count_semantic("ineligible");
    return nullptr;
  }
  std::shared_ptr<void> hold = caller_.hold();
  if (hold == nullptr || ctx.worker == nullptr) return nullptr;  // the gateway is going away
  auto probe = std::make_shared<SemanticProbe>();
  probe->model = sc.embeddings_model;
  probe->bucket = cache::key_of(scope, (*question)->rest);
  probe->text = std::move((*question)->text);
  asio::co_spawn(ex,
                 embed_question(std::move(hold), &caller_, probe, *ctx.who, ctx.worker),
                 asio::detached);
  return probe;
}

asio::awaitable<std::optional<CacheStage::Similar>> CacheStage::find_similar(
    SemanticProbe& probe, double threshold, std::chrono::milliseconds timeout, int64_t now,
    const std::function<bool(const cache::Stored&)>& young) const {
  if (!probe.done) {
    auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
    timer->expires_after(timeout);
    probe.waiter = timer;
    co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (!probe.vector) {
    count_semantic("error");
    co_return std::nullopt;
  }
  const auto started = std::chrono::steady_clock::now();
  std::optional<Similar> out;
  bool guarded = false;
  const auto matches = cache_->semantic(probe.model)->search(probe.bucket, *probe.vector,
                                                             static_cast<float>(threshold), 4, now);
  for (const cache::SemanticIndex::Match& m : matches) {
    if (cache::guard_refuses(probe.text, m.text) != nullptr) {
      guarded = true;
      continue;
    }
    auto found = co_await cache_->lookup(m.key, now);
    if (found && young(found->stored)) {
      out = Similar{std::move(*found), m.similarity};
      break;
    }
  }
  time_semantic(std::chrono::steady_clock::now() - started);
  count_semantic(out ? "hit" : guarded ? "guarded" : "miss");
  co_return out;
}

asio::awaitable<void> CacheStage::serve(RequestContext& ctx, const cache::Stored& stored,
                                        const char* tier) const {
  http::Request& request = *ctx.request;
  http::Responder& responder = *ctx.responder;
  std::shared_ptr<const cache::Entry> entry = std::static_pointer_cast<const cache::Entry>(stored.decoded);
  if (entry == nullptr && stored.value != nullptr) {
    if (auto e = cache::decode_entry(*stored.value)) entry = std::make_shared<const cache::Entry>(std::move(*e));
  }
  if (!ctx.canon) {
    // An OpenAI chat client: its encoder needs only the model and the stream options.
    canonical::Request minimal;
    minimal.model = ctx.parsed.model;
    minimal.stream = ctx.parsed.stream;
    minimal.include_usage = ctx.parsed.include_usage;
    ctx.canon = std::move(minimal);
  }
  if (entry == nullptr) {  // unreadable: answered as an upstream failure would be
    const Error e = make_error(Errc::internal, "A cached answer could not be read.");
    co_await responder.send_error(e);
    co_return;
  }
  const int64_t age_s = std::max<int64_t>(0, (now_ms() - stored.stored_ms) / 1000);
  const bool semantic = std::string_view(tier) == "semantic";
  responder.add_header("x-sluice-cache", semantic ? "semantic" : "hit");
  responder.add_header("age", std::to_string(age_s));
  ctx.trace->cache = semantic ? "semantic" : "hit";
  cache_->note(tier, "hit");
  canonical::Response r = entry->answer;
  r.id = "cache-" + std::string(request.request_id);
  r.model = ctx.parsed.model;
  // Billing: the original answer's tokens, at the route's hit_cost share of the price.
  ctx.succeeded = true;
  ctx.cache_hit = true;
  ctx.cost_factor = ctx.route != nullptr ? ctx.route->cache.hit_cost : 0;
  ctx.usage = usage_tokens(r.usage);
  ctx.settle();
  std::optional<HttpSink> own;
  if (ctx.sink == nullptr) {
    own.emplace(responder, ctx.ingress, *ctx.canon, validate_streams_, request.request_id);
  }
  ResponseSink& sink = ctx.sink != nullptr ? *ctx.sink : *own;
  const bool paced = ctx.canon->stream && request.header("x-sluice-cache-replay") == "paced";
  if (!paced) {
    co_await sink.answer(r);
    co_return;
  }
  // Paced: the pieces spread over the original answer's time (at most 10 s), in ≤ 50 steps.
  const std::vector<canonical::Event> events = fine_events(r, 16);
  const int64_t spread_ms = std::clamp<int64_t>(entry->duration_ms, 0, 10'000);
  const size_t steps = std::min<size_t>(50, std::max<size_t>(1, events.size()));
  const size_t per = (events.size() + steps - 1) / steps;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  if (!co_await sink.begin_stream()) co_return;
  for (size_t i = 0; i < events.size(); i += per) {
    if (i > 0 && spread_ms > 0) {
      timer.expires_after(std::chrono::milliseconds(spread_ms / static_cast<int64_t>(steps)));
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    const std::vector<canonical::Event> batch(events.begin() + static_cast<ptrdiff_t>(i),
                                              events.begin() + static_cast<ptrdiff_t>(std::min(events.size(), i + per)));
    if (!co_await sink.events(batch)) co_return;
  }
  co_await sink.end_stream();
}

}  // namespace sluice::api
