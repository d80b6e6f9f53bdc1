// The response cache's first tier (L1): in this process, sharded, bounded in bytes,
// least-recently-used first out, each entry with its own expiry. Thread-safe; a hit hands out
// a shared reference to the stored bytes (no copy under the lock).
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace sluice::cache {

struct Stored {
  std::shared_ptr<const std::string> value;
  int64_t stored_ms = 0;   // when it was first stored (for Age and max-age)
  int64_t expires_ms = 0;  // 0 = never
  std::string owner, route;  // for invalidation by tenant or route
  // The value decoded once by its user (the cache stage keeps its cache::Entry here, so a hit
  // does not parse it again); not counted in the byte bound.
  std::shared_ptr<const void> decoded;
};

struct MemoryStats {
  size_t entries = 0;
  size_t bytes = 0;
  uint64_t evictions = 0;  // pushed out by the byte bound (not expiry)
};

class MemoryCache {
 public:
  /// At most `max_bytes` of keys and values (over all shards); an entry bigger than a shard's
  /// share is not kept.
  explicit MemoryCache(size_t max_bytes, size_t shards = 16);

  /// The live entry under `key` (an expired one is removed and not returned).
  std::optional<Stored> get(const std::string& key, int64_t now_ms);
  /// Stores (or replaces) `key`; evicts least recently used entries of its shard to fit.
  void put(const std::string& key, Stored entry);
  bool erase(const std::string& key);
  /// Removes every entry `match` selects (by owner and route); returns how many.
  size_t erase_if(const std::function<bool(const Stored&)>& match);
  MemoryStats stats() const;

 private:
  struct Node {
    std::string key;
    Stored entry;
    size_t bytes = 0;
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<Node> lru;  // most recently used first
    std::unordered_map<std::string, std::list<Node>::iterator> index;
    size_t bytes = 0;
    uint64_t evictions = 0;
  };
  Shard& shard_of(const std::string& key);
  static void remove(Shard& s, std::list<Node>::iterator it);

  size_t shard_bytes_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace sluice::cache
