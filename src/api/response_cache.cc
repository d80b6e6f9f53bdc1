// The response cache's tiers and single flight: see response_cache.h.
#include "api/response_cache.h"

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
#include <random>

#include "cache/entry.h"
#include "observe/metrics.h"

namespace sluice::api {

namespace json = canonical::json;

namespace {

constexpr int64_t kL2Cooldown_ms = 1000;  // after a Redis error, L2 is skipped this long

int64_t now_ms() { return store::system_now_ms(); }

std::string lock_key(const std::string& key) { return "lock:" + key; }

constexpr std::string_view kInvalidationLog = "inv:log";
constexpr std::chrono::milliseconds kInvalidationLogTtl{3'600'000};  // from its newest record
constexpr int64_t kInvalidationPoll_ms = 1000;

// ---- metrics ----

struct CacheCells {
  static constexpr std::array<std::string_view, 5> kTiers = {"l1", "l2", "flight", "semantic", "none"};
  static constexpr std::array<std::string_view, 3> kResults = {"hit", "miss", "bypass"};
  static constexpr std::array<std::string_view, 5> kSemantic = {"hit", "miss", "guarded",
                                                                "ineligible", "error"};
  std::array<std::array<observe::Cell, 3>, 5> requests{};
  std::array<observe::Cell, 5> semantic{};
  observe::Histogram semantic_time{};
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
            "Requests on cached routes: hit (by the tier that had the answer: l1, l2, "
            "flight = another request's answer in flight, or semantic = a similar question's), "
            "miss, or bypass (not looked up).",
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
    for (size_t i = 0; i < c.kSemantic.size(); ++i) {
      c.semantic[i] = r.counter(
          "sluice_cache_semantic_lookups_total",
          "Semantic-tier lookups: hit, miss (nothing close enough), guarded (close enough but "
          "refused by the lexical guards), ineligible (not a single-turn text question), error "
          "(no embedding in time).",
          observe::label("result", c.kSemantic[i]));
    }
    static constexpr std::array<uint64_t, 16> kBounds = {25,   50,   75,   100,  150,   200,
                                                         300,  500,  750,  1000, 1500,  2000,
                                                         5000, 10000, 50000, 100000};
    c.semantic_time = r.histogram("sluice_cache_semantic_lookup_seconds",
                                  "Time a semantic lookup took, the embedding call excluded.", "",
                                  kBounds, 1e6);
    c.l2_errors = r.counter("sluice_cache_l2_errors_total",
                            "Redis (L2) operations that failed; the cache served from L1 or "
                            "upstream instead.");
    return c;
  }();
  return c;
}

}  // namespace

void count_store(size_t which) { observe::add(cells().stores[which]); }

void count_cache(std::string_view tier, std::string_view result) {
  const CacheCells& c = cells();
  const size_t t = static_cast<size_t>(std::find(c.kTiers.begin(), c.kTiers.end(), tier) - c.kTiers.begin());
  const size_t x =
      static_cast<size_t>(std::find(c.kResults.begin(), c.kResults.end(), result) - c.kResults.begin());
  if (t < c.kTiers.size() && x < c.kResults.size()) observe::add(c.requests[t][x]);
}

void count_semantic(std::string_view result) {
  const CacheCells& c = cells();
  const size_t i =
      static_cast<size_t>(std::find(c.kSemantic.begin(), c.kSemantic.end(), result) - c.kSemantic.begin());
  if (i < c.kSemantic.size()) observe::add(c.semantic[i]);
}

void time_semantic(std::chrono::nanoseconds spent) {
  observe::observe(cells().semantic_time, static_cast<uint64_t>(std::max<int64_t>(0, spent.count() / 1000)));
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
    : l1_(config.cache.l1_max_bytes),
      max_entry_(config.cache.max_entry_bytes),
      semantic_max_entries_(config.cache.semantic_max_entries),
      flight_lock_(config.cache.flight_lock),
      instance_(static_cast<uint64_t>(std::random_device{}()) << 32 | std::random_device{}()) {
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
  if (l2_ != nullptr) {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    maybe_poll_invalidations(ex, now);
  }
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
                          int64_t ttl_ms, bool unlock) {
  if (stored.value == nullptr || stored.value->size() > max_entry_) {
    if (unlock) unlock_flight(ex, key);
    return false;
  }
  l1_.put(key, stored);
  if (l2_ == nullptr || !l2_usable(now_ms())) {
    if (unlock) unlock_flight(ex, key);
    return true;
  }
  std::string value = fmt::format("{} {} {}\n{}\n", stored.stored_ms, stored.expires_ms,
                                  stored.owner, stored.route);
  value += *stored.value;
  auto self = shared_from_this();
  const std::string route_index = "idx:r:" + stored.route;
  const std::string owner_index = "idx:o:" + stored.owner;
  const std::string item = key + ":" + std::to_string(stored.stored_ms);
  auto write = [self, key, value = std::move(value), route_index, owner_index, item,
                ttl_ms, unlock]() -> asio::awaitable<void> {
    const std::chrono::milliseconds ttl(ttl_ms);
    const auto op = [&](store::StateStore& s) -> Result<void> {
      if (auto p = s.put(key, value, "", ttl); !p) return p;
      // The lock goes after the entry is there, so that waiters elsewhere find the entry.
      if (unlock) (void)s.erase_list(lock_key(key));
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

asio::awaitable<ResponseCache::Lock> ResponseCache::lock_flight(const std::string& key,
                                                                 std::chrono::milliseconds ttl) {
  if (!flight_lock() || !l2_usable(now_ms())) co_return Lock::unavailable;
  // A one-item list is the lock: adding an id that is already there fails, atomically (a Lua
  // script in Redis), and the list expires with `ttl` should its holder vanish.
  const std::string lock = lock_key(key);
  const auto op = [&](store::StateStore& s) -> Result<int64_t> {
    return s.append(lock, {store::ListItem{"lead", "1"}}, std::max(ttl, std::chrono::milliseconds(1)));
  };
  auto taken = co_await l2_->run(op);
  if (taken) {
    l2_result(true, "");
    co_return Lock::acquired;
  }
  if (taken.error().code == Errc::bad_request) {
    l2_result(true, "");
    co_return Lock::elsewhere;
  }
  l2_result(false, taken.error().message);
  co_return Lock::unavailable;
}

asio::awaitable<std::optional<ResponseCache::Found>> ResponseCache::wait_elsewhere(
    const std::string& key, std::chrono::milliseconds wait) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  const std::string lock = lock_key(key);
  const auto held = [&](store::StateStore& s) { return s.size(lock); };
  while (std::chrono::steady_clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(20));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    auto found = co_await lookup(key, now_ms());
    if (found) co_return found;
    if (!l2_usable(now_ms())) co_return std::nullopt;
    auto n = co_await l2_->run(held);
    if (!n || *n == 0) co_return std::nullopt;  // its holder finished without an answer, or died
  }
  co_return std::nullopt;
}

void ResponseCache::unlock_flight(asio::any_io_executor ex, const std::string& key) {
  if (!flight_lock()) return;
  auto self = shared_from_this();
  auto release = [self, lock = lock_key(key)]() -> asio::awaitable<void> {
    const auto op = [&](store::StateStore& s) { return s.erase_list(lock); };
    auto done = co_await self->l2_->run(op);
    self->l2_result(done.ok(), done.ok() ? "" : done.error().message);
  };
  asio::co_spawn(ex, std::move(release), asio::detached);
}

std::shared_ptr<cache::SemanticIndex> ResponseCache::semantic(const std::string& embeddings_model) {
  std::lock_guard lock(semantic_mu_);
  auto& index = semantic_[embeddings_model];
  if (index == nullptr) index = std::make_shared<cache::SemanticIndex>(semantic_max_entries_);
  return index;
}

size_t ResponseCache::drop_local(const std::string& key, const std::string& route,
                                 const std::string& owner, bool all) {
  {
    // The semantic indexes point at entries: what goes from the tiers goes from them too (not
    // counted: they are not entries).
    std::lock_guard lock(semantic_mu_);
    for (auto& [model, index] : semantic_) {
      index->erase_if([&](const cache::SemanticIndex::Item& item) {
        if (all) return true;
        if (!key.empty()) return item.key == key;
        return (route.empty() || item.route == route) && (owner.empty() || item.owner == owner);
      });
    }
  }
  if (all) return l1_.erase_if([](const cache::Stored&) { return true; });
  if (!key.empty()) return l1_.erase(key) ? 1 : 0;
  return l1_.erase_if([&](const cache::Stored& s) {
    return (route.empty() || s.route == route) && (owner.empty() || s.owner == owner);
  });
}

// The invalidation log: "k <key>", "r <route>", "o <owner>" or "a", read back by every instance.
std::string invalidation_record(const std::string& key, const std::string& route,
                                const std::string& owner, bool all) {
  if (all) return "a";
  if (!key.empty()) return "k " + key;
  if (!route.empty()) return "r " + route;
  return "o " + owner;
}

asio::awaitable<size_t> ResponseCache::invalidate(const std::string& key, const std::string& route,
                                                  const std::string& owner, bool all) {
  size_t n = drop_local(key, route, owner, all);
  if (l2_ == nullptr) co_return n;
  // Other instances drop their L1 copies when they next read the log (poll_invalidations).
  const std::string record = invalidation_record(key, route, owner, all);
  const std::string id = fmt::format("{}-{}", now_ms(), invalidation_seq_.fetch_add(1) ^ instance_);
  const auto log = [&](store::StateStore& s) {
    return s.append(kInvalidationLog, {store::ListItem{id, record}}, kInvalidationLogTtl);
  };
  auto logged = co_await l2_->run(log);
  l2_result(logged.ok(), logged.ok() ? "" : logged.error().message);
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

void ResponseCache::maybe_poll_invalidations(const asio::any_io_executor& ex, int64_t now) {
  int64_t due = next_poll_ms_.load(std::memory_order_relaxed);
  if (now < due || !next_poll_ms_.compare_exchange_strong(due, now + kInvalidationPoll_ms)) return;
  if (polling_.exchange(true)) return;  // the last one is still running
  auto self = shared_from_this();
  asio::co_spawn(ex, [self]() { return self->poll_invalidations(); }, asio::detached);
}

asio::awaitable<void> ResponseCache::poll_invalidations() {
  // One poll at a time (next_poll_ms_ lets one through a second); inv_after_ is only touched here.
  std::string after = inv_after_;
  const bool first = !inv_started_;
  const auto op = [&](store::StateStore& s) -> Result<std::vector<store::ListItem>> {
    std::vector<store::ListItem> out;
    if (first) {
      // From the newest record on: what was logged before this instance looked is not its to
      // apply (its L1 was filled after it).
      auto last = s.range(kInvalidationLog, "", 1, true);
      if (!last) return std::move(last.error());
      if (!last->items.empty()) after = last->items[0].id;
      return out;
    }
    for (;;) {  // after "" = from the start (the log was empty when last read)
      auto page = s.range(kInvalidationLog, after, 500, false);
      if (!page && page.error().code == Errc::not_found) {
        // Our place in the log expired: start again from its newest record.
        after.clear();
        auto last = s.range(kInvalidationLog, "", 1, true);
        if (!last) return std::move(last.error());
        if (!last->items.empty()) after = last->items[0].id;
        return out;
      }
      if (!page) return std::move(page.error());
      for (store::ListItem& item : page->items) {
        after = item.id;
        out.push_back(std::move(item));
      }
      if (!page->has_more) return out;
    }
  };
  auto records = co_await l2_->run(op);
  struct Done {
    std::atomic<bool>& flag;
    ~Done() { flag.store(false); }
  } done{polling_};
  l2_result(records.ok(), records.ok() ? "" : records.error().message);
  if (!records) co_return;
  inv_started_ = true;
  inv_after_ = after;
  for (const store::ListItem& item : *records) {
    const std::string& r = item.value;
    const std::string arg = r.size() > 2 ? r.substr(2) : std::string();
    if (r == "a") {
      drop_local("", "", "", true);
    } else if (r.starts_with("k ")) {
      drop_local(arg, "", "", false);
    } else if (r.starts_with("r ")) {
      drop_local("", arg, "", false);
    } else if (r.starts_with("o ")) {
      drop_local("", "", arg, false);
    }
  }
}

void ResponseCache::note(std::string_view tier, std::string_view result) {
  count_cache(tier, result);
  auto& c = result == "miss"     ? misses_
            : result == "bypass" ? bypasses_
            : tier == "l1"       ? hits_l1_
            : tier == "l2"       ? hits_l2_
            : tier == "semantic" ? hits_semantic_
                                 : hits_flight_;
  c.fetch_add(1, std::memory_order_relaxed);
}

json::object ResponseCache::stats() const {
  const cache::MemoryStats m = l1_.stats();
  const uint64_t h1 = hits_l1_.load(), h2 = hits_l2_.load(), hf = hits_flight_.load();
  const uint64_t hs = hits_semantic_.load();
  const uint64_t miss = misses_.load();
  const uint64_t looked = h1 + h2 + hf + hs + miss;
  json::object semantic;
  {
    std::lock_guard lock(semantic_mu_);
    for (const auto& [model, index] : semantic_) {
      semantic[model] = json::object{{"entries", static_cast<uint64_t>(index->size())},
                                     {"dimensions", static_cast<uint64_t>(index->dimensions())}};
    }
  }
  return json::object{
      {"l1", json::object{{"entries", static_cast<uint64_t>(m.entries)},
                          {"bytes", static_cast<uint64_t>(m.bytes)},
                          {"evictions", m.evictions}}},
      {"l2", l2_ == nullptr ? json::value("none") : json::value("redis")},
      {"l2_down", l2_down_.load()},
      {"requests", json::object{{"hits_l1", h1},
                                {"hits_l2", h2},
                                {"hits_flight", hf},
                                {"hits_semantic", hs},
                                {"misses", miss},
                                {"bypassed", bypasses_.load()}}},
      {"semantic", std::move(semantic)},
      {"hit_ratio",
       looked == 0 ? 0.0 : static_cast<double>(h1 + h2 + hf + hs) / static_cast<double>(looked)}};
}

}  // namespace sluice::api
