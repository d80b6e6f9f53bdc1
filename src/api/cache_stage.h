// The response cache (docs/cache.md): a stage that answers a repeated question from the cache,
// and on a miss tees the answer into it. Exact match on a canonical form of the request
// (cache/key.h), in two tiers: L1 in this process (cache/memory_cache.h) and L2 in Redis
// (shared by every instance; it fails open: a Redis that is down is skipped for a second at a
// time, logged once per incident, counted). Identical misses in flight at once make one
// upstream call: the first leads, the others wait for its answer (bounded) and replay it.
// Entries are canonical answers, so one stored answer serves every client protocol, unary or
// streamed (burst, or paced with x-sluice-cache-replay: paced).
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/stage.h"
#include "cache/memory_cache.h"
#include "canonical/json.h"
#include "config/config.h"
#include "store/state_service.h"

namespace sluice::api {

namespace asio = boost::asio;

/// Identical misses in flight: the first request leads (goes upstream), later ones wait for
/// its stored answer.
class Flights {
 public:
  struct Flight {
    std::mutex mu;
    bool done = false;
    std::shared_ptr<const std::string> entry;  // what the leader stored (null: nothing)
    std::vector<std::pair<asio::any_io_executor, std::weak_ptr<asio::steady_timer>>> waiters;
  };
  /// The flight of `key`, and whether the caller leads it.
  std::pair<std::shared_ptr<Flight>, bool> join(const std::string& key);
  /// The leader is done: `entry` (null when it has nothing to share) goes to every waiter.
  void finish(const std::string& key, const std::shared_ptr<Flight>& flight,
              std::shared_ptr<const std::string> entry);
  /// Waits at most `wait` for the flight's entry (null: none came in time).
  static asio::awaitable<std::shared_ptr<const std::string>> wait(
      const std::shared_ptr<Flight>& flight, std::chrono::milliseconds wait);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
};

/// The tiers, shared by every Gateway of one `cache` config (kept across reloads that leave
/// `cache` and `redis` unchanged).
class ResponseCache : public std::enable_shared_from_this<ResponseCache> {
 public:
  explicit ResponseCache(const config::Config& config);
  ~ResponseCache();

  struct Found {
    cache::Stored stored;
    const char* tier = "l1";  // "l1", "l2"
  };
  /// The entry under `key`, from L1, else L2 (which then fills L1).
  asio::awaitable<std::optional<Found>> lookup(const std::string& key, int64_t now_ms);
  /// Stores in L1 now and in L2 in the background (on `ex`). False when the entry is too big.
  bool store(asio::any_io_executor ex, const std::string& key, cache::Stored stored, int64_t ttl_ms);
  /// Removes one key; or every entry of a route pattern or of an owner ("t:<tenant>" /
  /// "k:<key>" / ""). Returns the entries removed from L1 and L2.
  asio::awaitable<size_t> invalidate(const std::string& key, const std::string& route,
                                     const std::string& owner, bool all);
  canonical::json::object stats() const;
  Flights& flights() { return flights_; }
  /// Counts one decision for the admin view (hit tiers: l1, l2, flight).
  void note(std::string_view tier, std::string_view result);
  size_t max_entry_bytes() const { return max_entry_; }

 private:
  bool l2_usable(int64_t now_ms) const;
  void l2_result(bool ok, const std::string& what);

  cache::MemoryCache l1_;
  std::shared_ptr<store::StateService> l2_;  // null: no L2
  size_t max_entry_;
  Flights flights_;
  std::atomic<int64_t> l2_retry_at_ms_{0};
  std::atomic<bool> l2_down_{false};
  std::atomic<uint64_t> hits_l1_{0}, hits_l2_{0}, hits_flight_{0}, misses_{0}, bypasses_{0};
};

class CacheStage final : public Stage {
 public:
  CacheStage(std::shared_ptr<ResponseCache> cache, bool validate_streams)
      : cache_(std::move(cache)), validate_streams_(validate_streams) {}
  bool applies_to(providers::Operation op) const override {
    return op == providers::Operation::chat;
  }
  asio::awaitable<Verdict> on_request(RequestContext& ctx) const override;

 private:
  /// Answers from `stored` (its decoded entry when it has one, else its bytes).
  asio::awaitable<void> serve(RequestContext& ctx, const cache::Stored& stored,
                              const char* tier) const;
  std::shared_ptr<ResponseCache> cache_;
  bool validate_streams_;
};

/// Counts one cache decision (sluice_cache_requests_total{tier, result}).
void count_cache(std::string_view tier, std::string_view result);

}  // namespace sluice::api
