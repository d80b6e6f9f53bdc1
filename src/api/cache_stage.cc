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
#include "canonical/codec.h"
#include "canonical/events.h"
#include "observe/metrics.h"

namespace sluice::api {

namespace json = canonical::json;

namespace {

constexpr int64_t kL2Cooldown_ms = 1000;  // after a Redis error, L2 is skipped this long

int64_t now_ms() { return store::system_now_ms(); }

// ---- metrics ----

struct CacheCells {
  static constexpr std::array<std::string_view, 4> kTiers = {"l1", "l2", "flight", "none"};
  static constexpr std::array<std::string_view, 3> kResults = {"hit", "miss", "bypass"};
  std::array<std::array<observe::Cell, 3>, 4> requests{};
  std::array<observe::Cell, 3> stores{};  // stored, not_stored, too_big
  observe::Cell l2_errors{};
};

const CacheCells& cells() {
  static const CacheCells c = [] {
    CacheCells c;
    auto& r = observe::Registry::instance();
    for (size_t t = 0; t < c.kTiers.size(); ++t) {
      for (size_t x = 0; x < c.kResults.size(); ++x) {
        c.requests[t][x] = r.counter(
            "sluice_cache_requests_total",
            "Requests on cached routes: hit (by the tier that had the answer: l1, l2, or "
            "flight = another request's answer in flight), miss, or bypass (not looked up).",
            observe::label("tier", c.kTiers[t]) + "," + observe::label("result", c.kResults[x]));
      }
    }
    const char* stores[] = {"stored", "not_stored", "too_big"};
    for (size_t i = 0; i < 3; ++i) {
      c.stores[i] = r.counter("sluice_cache_stores_total",
                              "Answers of misses: stored, not stored (an error, a cut stream, a "
                              "refusal, a tool call), or too big for cache.max_entry_bytes.",
                              observe::label("result", stores[i]));
    }
    c.l2_errors = r.counter("sluice_cache_l2_errors_total",
                            "Redis (L2) operations that failed; the cache served from L1 or "
                            "upstream instead.");
    return c;
  }();
  return c;
}

void count_store(size_t which) { observe::add(cells().stores[which]); }

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

void count_cache(std::string_view tier, std::string_view result) {
  const CacheCells& c = cells();
  const size_t t = static_cast<size_t>(std::find(c.kTiers.begin(), c.kTiers.end(), tier) - c.kTiers.begin());
  const size_t x =
      static_cast<size_t>(std::find(c.kResults.begin(), c.kResults.end(), result) - c.kResults.begin());
  if (t < c.kTiers.size() && x < c.kResults.size()) observe::add(c.requests[t][x]);
}

// ---- single flight ----

std::pair<std::shared_ptr<Flights::Flight>, bool> Flights::join(const std::string& key) {
  std::lock_guard lock(mu_);
  auto [it, fresh] = flights_.try_emplace(key);
  if (fresh) it->second = std::make_shared<Flight>();
  return {it->second, fresh};
}

void Flights::finish(const std::string& key, const std::shared_ptr<Flight>& flight,
                     std::shared_ptr<const std::string> entry) {
  {
    std::lock_guard lock(mu_);
    if (auto it = flights_.find(key); it != flights_.end() && it->second == flight) flights_.erase(it);
  }
  std::vector<std::pair<asio::any_io_executor, std::weak_ptr<asio::steady_timer>>> waiters;
  {
    std::lock_guard lock(flight->mu);
    if (flight->done) return;
    flight->done = true;
    flight->entry = std::move(entry);
    waiters.swap(flight->waiters);
  }
  // Each waiter's timer is cancelled on its own worker.
  for (auto& [ex, weak] : waiters) {
    asio::post(ex, [weak] {
      if (auto t = weak.lock()) t->cancel();
    });
  }
}

asio::awaitable<std::shared_ptr<const std::string>> Flights::wait(
    const std::shared_ptr<Flight>& flight, std::chrono::milliseconds wait) {
  auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
  timer->expires_after(wait);
  {
    std::lock_guard lock(flight->mu);
    if (flight->done) co_return flight->entry;
    flight->waiters.emplace_back(timer->get_executor(), timer);
  }
  co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
  std::lock_guard lock(flight->mu);
  co_return flight->done ? flight->entry : nullptr;
}

// ---- the tiers ----

ResponseCache::ResponseCache(const config::Config& config)
    : l1_(config.cache.l1_max_bytes), max_entry_(config.cache.max_entry_bytes) {
  if (config.cache.l2_redis) {
    const config::RateLimitConfig& r = config.rate_limits;
    l2_ = std::make_shared<store::StateService>(
        store::make_redis_store(r.redis_host, r.redis_port, r.redis_timeout, "sluice:cache:"),
        std::chrono::milliseconds(60'000));
  }
}

ResponseCache::~ResponseCache() = default;

bool ResponseCache::l2_usable(int64_t now) const {
  return l2_ != nullptr && now >= l2_retry_at_ms_.load(std::memory_order_relaxed);
}

void ResponseCache::l2_result(bool ok, const std::string& what) {
  if (ok) {
    if (l2_down_.exchange(false)) spdlog::info("cache: Redis (L2) answers again");
    return;
  }
  observe::add(cells().l2_errors);
  l2_retry_at_ms_.store(now_ms() + kL2Cooldown_ms, std::memory_order_relaxed);
  if (!l2_down_.exchange(true)) {
    spdlog::warn("cache: Redis (L2) failed ({}); serving from L1 and upstream until it answers", what);
  }
}

asio::awaitable<std::optional<ResponseCache::Found>> ResponseCache::lookup(const std::string& key,
                                                                          int64_t now) {
  if (auto hit = l1_.get(key, now)) co_return Found{std::move(*hit), "l1"};
  if (!l2_usable(now)) co_return std::nullopt;
  const auto op = [key](store::StateStore& s) { return s.get(key); };
  auto got = co_await l2_->run(op);
  l2_result(got.ok(), got.ok() ? "" : got.error().message);
  if (!got || !got->has_value()) co_return std::nullopt;
  // L2 values are "<stored_ms> <expires_ms> <owner>\n<route>\n<entry>".
  const std::string& v = **got;
  cache::Stored s;
  const size_t l1 = v.find('\n'), l2 = l1 == std::string::npos ? l1 : v.find('\n', l1 + 1);
  if (l2 == std::string::npos) co_return std::nullopt;
  std::string_view head(v.data(), l1);
  const size_t sp1 = head.find(' '), sp2 = sp1 == std::string_view::npos ? sp1 : head.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) co_return std::nullopt;
  std::from_chars(head.data(), head.data() + sp1, s.stored_ms);
  std::from_chars(head.data() + sp1 + 1, head.data() + sp2, s.expires_ms);
  s.owner = std::string(head.substr(sp2 + 1));
  s.route = v.substr(l1 + 1, l2 - l1 - 1);
  s.value = std::make_shared<const std::string>(v.substr(l2 + 1));
  if (s.expires_ms != 0 && s.expires_ms <= now) co_return std::nullopt;
  auto decoded = cache::decode_entry(*s.value);
  if (!decoded) co_return std::nullopt;  // damaged: a miss (the answer will replace it)
  s.decoded = std::make_shared<const cache::Entry>(std::move(*decoded));
  l1_.put(key, s);  // an L2 hit fills L1
  co_return Found{std::move(s), "l2"};
}

bool ResponseCache::store(asio::any_io_executor ex, const std::string& key, cache::Stored stored,
                          int64_t ttl_ms) {
  if (stored.value == nullptr || stored.value->size() > max_entry_) return false;
  l1_.put(key, stored);
  if (l2_ == nullptr || !l2_usable(now_ms())) return true;
  std::string value = fmt::format("{} {} {}\n{}\n", stored.stored_ms, stored.expires_ms,
                                  stored.owner, stored.route);
  value += *stored.value;
  auto self = shared_from_this();
  const std::string route_index = "idx:r:" + stored.route;
  const std::string owner_index = "idx:o:" + stored.owner;
  const std::string item = key + ":" + std::to_string(stored.stored_ms);
  auto write = [self, key, value = std::move(value), route_index, owner_index, item,
                ttl_ms]() -> asio::awaitable<void> {
    const std::chrono::milliseconds ttl(ttl_ms);
    const auto op = [&](store::StateStore& s) -> Result<void> {
      if (auto p = s.put(key, value, "", ttl); !p) return p;
      // Indexes for invalidation by route and by owner (they live as long as their newest entry).
      if (auto a = s.append(route_index, {store::ListItem{item, key}}, ttl); !a) return std::move(a.error());
      if (auto a = s.append(owner_index, {store::ListItem{item, key}}, ttl); !a) return std::move(a.error());
      return {};
    };
    auto done = co_await self->l2_->run(op);
    self->l2_result(done.ok(), done.ok() ? "" : done.error().message);
  };
  asio::co_spawn(ex, std::move(write), asio::detached);
  return true;
}

asio::awaitable<size_t> ResponseCache::invalidate(const std::string& key, const std::string& route,
                                                  const std::string& owner, bool all) {
  size_t n = 0;
  if (all) {
    n += l1_.erase_if([](const cache::Stored&) { return true; });
  } else if (!key.empty()) {
    n += l1_.erase(key) ? 1 : 0;
  } else {
    n += l1_.erase_if([&](const cache::Stored& s) {
      return (route.empty() || s.route == route) && (owner.empty() || s.owner == owner);
    });
  }
  if (l2_ == nullptr) co_return n;
  const auto op = [&](store::StateStore& s) -> Result<size_t> {
    size_t gone = 0;
    if (!key.empty()) {
      auto e = s.erase(key);
      if (!e) return std::move(e.error());
      return *e ? 1 : 0;
    }
    // The index lists name their keys; every key of the list goes, then the list.
    const std::string index = !route.empty() ? "idx:r:" + route : "idx:o:" + owner;
    std::string after;
    for (;;) {
      auto page = s.range(index, after, 1000, false);
      if (!page) return std::move(page.error());
      for (const store::ListItem& item : page->items) {
        auto e = s.erase(item.value);
        if (!e) return std::move(e.error());
        gone += *e ? 1 : 0;
        after = item.id;
      }
      if (!page->has_more) break;
    }
    if (auto e = s.erase_list(index); !e) return std::move(e.error());
    return gone;
  };
  if (all) co_return n;  // L2 entries expire by their TTL (no SCAN on a shared Redis)
  auto erased = co_await l2_->run(op);
  l2_result(erased.ok(), erased.ok() ? "" : erased.error().message);
  if (erased) n += *erased;
  co_return n;
}

void ResponseCache::note(std::string_view tier, std::string_view result) {
  count_cache(tier, result);
  auto& c = result == "miss"     ? misses_
            : result == "bypass" ? bypasses_
            : tier == "l1"       ? hits_l1_
            : tier == "l2"       ? hits_l2_
                                 : hits_flight_;
  c.fetch_add(1, std::memory_order_relaxed);
}

json::object ResponseCache::stats() const {
  const cache::MemoryStats m = l1_.stats();
  const uint64_t h1 = hits_l1_.load(), h2 = hits_l2_.load(), hf = hits_flight_.load();
  const uint64_t miss = misses_.load();
  const uint64_t looked = h1 + h2 + hf + miss;
  return json::object{
      {"l1", json::object{{"entries", static_cast<uint64_t>(m.entries)},
                          {"bytes", static_cast<uint64_t>(m.bytes)},
                          {"evictions", m.evictions}}},
      {"l2", l2_ == nullptr ? json::value("none") : json::value("redis")},
      {"l2_down", l2_down_.load()},
      {"requests", json::object{{"hits_l1", h1},
                                {"hits_l2", h2},
                                {"hits_flight", hf},
                                {"misses", miss},
                                {"bypassed", bypasses_.load()}}},
      {"hit_ratio", looked == 0 ? 0.0 : static_cast<double>(h1 + h2 + hf) / static_cast<double>(looked)}};
}

// ---- the tee of a miss ----

namespace {

/// Forwards the answer to the client's sink and stores it when it is complete and storable;
/// leads the single flight of its key (waiters get the stored entry, or nothing).
class CacheFill final : public ResponseSink {
 public:
  CacheFill(std::shared_ptr<ResponseCache> cache, std::string key, cache::Stored meta,
            int64_t ttl_ms, bool tool_calls, std::unique_ptr<HttpSink> own, ResponseSink* inner,
            std::shared_ptr<Flights::Flight> lead)
      : cache_(std::move(cache)),
        key_(std::move(key)),
        meta_(std::move(meta)),
        ttl_ms_(ttl_ms),
        tool_calls_(tool_calls),
        own_(std::move(own)),
        inner_(inner != nullptr ? inner : own_.get()),
        lead_(std::move(lead)),
        started_(std::chrono::steady_clock::now()) {}
  ~CacheFill() override {
    if (!done_) count_store(1);  // no answer came (an upstream error, a client gone)
    if (lead_) cache_->flights().finish(key_, lead_, nullptr);  // nothing to share
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
    const bool kept = cache_->store(ex, key_, meta_, ttl_ms_);
    count_store(kept ? 0 : 2);
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

  if (!cc.no_cache) {
    auto found = co_await cache_->lookup(key, now);
    if (found && (!cc.max_age || now - found->stored.stored_ms <= *cc.max_age * 1000)) {
      co_await serve(ctx, found->stored, found->tier);
      co_return Verdict::answered();
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
  // A miss: the answer is teed into the cache (through the canonical model, so one entry
  // serves every protocol and both shapes).
  if (!ctx.canon) {
    auto decoded = canonical::decode_request(canonical::Protocol::openai, request.body, {});
    if (!decoded) {
      if (flight) cache_->flights().finish(key, flight, nullptr);
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
                                          rc.tool_calls, std::move(own), ctx.sink, flight);
  ctx.sink = fill.get();
  ctx.cache_fill = std::move(fill);
  responder.add_header("x-sluice-cache", "miss");
  ctx.trace->cache = "miss";
  cache_->note("none", "miss");
  co_return Verdict::proceed();
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
  responder.add_header("x-sluice-cache", "hit");
  responder.add_header("age", std::to_string(age_s));
  ctx.trace->cache = "hit";
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
