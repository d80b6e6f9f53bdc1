// The response cache's tiers (docs/cache.md): L1 in this process (cache/memory_cache.h), L2 in
// Redis (shared by every instance; it fails open: a Redis that is down is skipped for a second
// at a time, logged once per incident, counted), the semantic indexes (cache/semantic_index.h,
// one per embeddings model), and the single flight of identical misses. Shared by every Gateway
// of one `cache` config (kept across reloads that leave `cache` and `redis` unchanged); the
// stage that uses them is api/cache_stage.h.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/memory_cache.h"
#include "cache/semantic_index.h"
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
  /// Stores in L1 now and in L2 in the background (on `ex`), then releases this instance's
  /// flight lock of `key` when `unlock`. False when the entry is too big.
  bool store(asio::any_io_executor ex, const std::string& key, cache::Stored stored, int64_t ttl_ms,
             bool unlock = false);

  // ---- single flight across instances (cache.flight_lock: a lock per key in L2) ----
  bool flight_lock() const { return flight_lock_ && l2_ != nullptr; }
  enum class Lock { acquired, elsewhere, unavailable };
  /// Takes the key's lock for at most `ttl` (acquired), or finds another instance holding it
  /// (elsewhere); unavailable when Redis cannot be asked (go upstream: the cache fails open).
  asio::awaitable<Lock> lock_flight(const std::string& key, std::chrono::milliseconds ttl);
  /// Waits at most `wait` for the instance that holds the key's lock to store its answer in L2
  /// (polling); nullopt when it gave up (its lock is gone) or took too long.
  asio::awaitable<std::optional<Found>> wait_elsewhere(const std::string& key,
                                                       std::chrono::milliseconds wait);
  /// Releases this instance's lock of `key` (in the background, on `ex`).
  void unlock_flight(asio::any_io_executor ex, const std::string& key);
  /// Removes one key; or every entry of a route pattern or of an owner ("t:<tenant>" /
  /// "k:<key>" / ""). Returns the entries removed from L1 and L2.
  asio::awaitable<size_t> invalidate(const std::string& key, const std::string& route,
                                     const std::string& owner, bool all);
  /// The semantic index of `embeddings_model` (made on first use).
  std::shared_ptr<cache::SemanticIndex> semantic(const std::string& embeddings_model);
  canonical::json::object stats() const;
  Flights& flights() { return flights_; }
  /// Counts one decision for the admin view (hit tiers: l1, l2, flight, semantic).
  void note(std::string_view tier, std::string_view result);
  size_t max_entry_bytes() const { return max_entry_; }

 private:
  bool l2_usable(int64_t now_ms) const;
  /// Drops entries from L1 and the semantic indexes (this instance only); how many from L1.
  size_t drop_local(const std::string& key, const std::string& route, const std::string& owner,
                    bool all);
  /// At most once a second (on a lookup): applies the invalidations other instances logged in L2.
  void maybe_poll_invalidations(const asio::any_io_executor& ex, int64_t now_ms);
  asio::awaitable<void> poll_invalidations();
  void l2_result(bool ok, const std::string& what);

  cache::MemoryCache l1_;
  std::shared_ptr<store::StateService> l2_;  // null: no L2
  size_t max_entry_;
  Flights flights_;
  const size_t semantic_max_entries_;
  const bool flight_lock_;
  std::atomic<int64_t> next_poll_ms_{0};
  std::atomic<bool> polling_{false};
  std::string inv_after_;  // the last invalidation record applied (poll_invalidations only)
  bool inv_started_ = false;
  std::atomic<uint64_t> invalidation_seq_{0};
  const uint64_t instance_;  // random: makes log record ids unique across instances
  mutable std::mutex semantic_mu_;
  std::map<std::string, std::shared_ptr<cache::SemanticIndex>> semantic_;  // by embeddings model
  std::atomic<int64_t> l2_retry_at_ms_{0};
  std::atomic<bool> l2_down_{false};
  std::atomic<uint64_t> hits_l1_{0}, hits_l2_{0}, hits_flight_{0}, hits_semantic_{0}, misses_{0},
      bypasses_{0};
};

/// Counts one cache decision (sluice_cache_requests_total{tier, result}).
void count_cache(std::string_view tier, std::string_view result);
/// Counts one semantic lookup: hit, miss (nothing close enough), guarded (close, but the lexical
/// guards refused), ineligible (not a single-turn text question), error (no embedding in time).
void count_semantic(std::string_view result);
/// Records the time a semantic lookup took, the embedding call excluded.
void time_semantic(std::chrono::nanoseconds spent);
/// Counts one answer of a miss: 0 stored, 1 not stored, 2 too big (sluice_cache_stores_total).
void count_store(size_t which);

}  // namespace sluice::api
