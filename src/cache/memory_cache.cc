// The in-process cache tier: see memory_cache.h.
#include "cache/memory_cache.h"

namespace sluice::cache {

namespace {
constexpr size_t kNodeOverhead = 96;  // list node, map slot, Stored: counted against the bound
}

MemoryCache::MemoryCache(size_t max_bytes, size_t shards) {
  if (shards == 0) shards = 1;
  shard_bytes_ = max_bytes / shards;
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

MemoryCache::Shard& MemoryCache::shard_of(const std::string& key) {
  return *shards_[std::hash<std::string>{}(key) % shards_.size()];
}

void MemoryCache::remove(Shard& s, std::list<Node>::iterator it) {
  s.bytes -= it->bytes;
  s.index.erase(it->key);
  s.lru.erase(it);
}

std::optional<Stored> MemoryCache::get(const std::string& key, int64_t now_ms) {
  Shard& s = shard_of(key);
  std::lock_guard lock(s.mu);
  auto found = s.index.find(key);
  if (found == s.index.end()) return std::nullopt;
  auto it = found->second;
  if (it->entry.expires_ms != 0 && it->entry.expires_ms <= now_ms) {
    remove(s, it);
    return std::nullopt;
  }
  s.lru.splice(s.lru.begin(), s.lru, it);
  return it->entry;
}

void MemoryCache::put(const std::string& key, Stored entry) {
  const size_t bytes = key.size() + (entry.value ? entry.value->size() : 0) + entry.owner.size() +
                       entry.route.size() + kNodeOverhead;
  Shard& s = shard_of(key);
  std::lock_guard lock(s.mu);
  if (auto found = s.index.find(key); found != s.index.end()) remove(s, found->second);
  if (bytes > shard_bytes_) return;  // would push out everything else
  while (s.bytes + bytes > shard_bytes_ && !s.lru.empty()) {
    remove(s, std::prev(s.lru.end()));
    s.evictions++;
  }
  s.lru.push_front(Node{key, std::move(entry), bytes});
  s.index.emplace(key, s.lru.begin());
  s.bytes += bytes;
}

bool MemoryCache::erase(const std::string& key) {
  Shard& s = shard_of(key);
  std::lock_guard lock(s.mu);
  auto found = s.index.find(key);
  if (found == s.index.end()) return false;
  remove(s, found->second);
  return true;
}

size_t MemoryCache::erase_if(const std::function<bool(const Stored&)>& match) {
  size_t n = 0;
  for (auto& sp : shards_) {
    Shard& s = *sp;
    std::lock_guard lock(s.mu);
    for (auto it = s.lru.begin(); it != s.lru.end();) {
      auto next = std::next(it);
      if (match(it->entry)) {
        remove(s, it);
        ++n;
      }
      it = next;
    }
  }
  return n;
}

MemoryStats MemoryCache::stats() const {
  MemoryStats out;
  for (const auto& sp : shards_) {
    std::lock_guard lock(sp->mu);
    out.entries += sp->index.size();
    out.bytes += sp->bytes;
    out.evictions += sp->evictions;
  }
  return out;
}

}  // namespace sluice::cache
