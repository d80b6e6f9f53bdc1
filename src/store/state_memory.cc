// The in-process state store: 16 shards (a mutex each), each bounded by its share of the
// entries and bytes, least recently used first out. A record or a whole list is the unit of
// eviction; pinned keys (pin()) and the key being written are never evicted, so a request that
// holds a pin keeps what it reads and writes. Expired entries read as absent at once and are
// freed by sweep().
#include <algorithm>
#include <array>
#include <atomic>
#include <list>
#include <map>
#include <mutex>
#include <unordered_map>

#include "store/state_store.h"

namespace sluice::store {

Result<void> StateStore::atomically(std::string_view scope,
                                    const std::function<Result<void>(StateStore&)>& fn) {
  // One process: a striped lock is enough (a stripe shared by two scopes only serialises them).
  static std::array<std::mutex, 64> stripes;
  std::lock_guard lock(stripes[std::hash<std::string_view>{}(scope) % stripes.size()]);
  return fn(*this);
}

int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

constexpr size_t kShards = 16;
// What an entry costs besides its key and value bytes (map nodes, strings, LRU node).
constexpr size_t kOverhead = 96;

int64_t expiry(int64_t now, std::chrono::milliseconds ttl) {
  return ttl.count() > 0 ? now + ttl.count() : 0;
}

class MemoryStore final : public StateStore {
 public:
  MemoryStore(StoreLimits limits, NowMs now) : now_(std::move(now)) {
    max_entries_ = std::max<size_t>(1, limits.max_entries / kShards);
    max_bytes_ = std::max<size_t>(1, limits.max_bytes / kShards);
  }

  std::string_view backend() const override { return "memory"; }
  bool blocking() const override { return false; }

  Result<void> put(std::string_view key, std::string_view value, std::string_view link,
                   std::chrono::milliseconds ttl) override {
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    const int64_t now = now_();
    auto it = s.records.find(std::string(key));
    if (it == s.records.end()) {
      it = s.records.emplace(std::string(key), Record{}).first;
      s.lru.push_front(Lru{false, it->first});
      it->second.lru = s.lru.begin();
      s.entries++;
    } else {
      s.bytes -= it->second.bytes;
      to_front(s, it->second.lru);
    }
    Record& r = it->second;
    r.value.assign(value);
    r.link.assign(link);
    r.expires_at = expiry(now, ttl);
    r.bytes = key.size() + value.size() + link.size() + kOverhead;
    s.bytes += r.bytes;
    evict(s, key);
    return {};
  }

  Result<std::optional<std::string>> get(std::string_view key) override {
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    Record* r = live_record(s, key, now_());
    if (r == nullptr) return std::optional<std::string>();
    to_front(s, r->lru);
    return std::optional<std::string>(r->value);
  }

  Result<bool> erase(std::string_view key) override {
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    auto it = s.records.find(std::string(key));
    if (it == s.records.end()) return false;
    const bool live = !expired(it->second.expires_at, now_());
    drop_record(s, it);
    return live;
  }

  Result<bool> touch(std::string_view key, std::chrono::milliseconds ttl) override {
    Shard& s = shard(key);
    std::lock_guard lock(s.mu);
    const int64_t now = now_();
    Record* r = live_record(s, key, now);
    if (r == nullptr) return false;
    if (ttl.count() > 0) r->expires_at = expiry(now, ttl);
    to_front(s, r->lru);
    return true;
  }

  Result<std::vector<std::string>> chain(std::string_view key, size_t max) override {
    std::vector<std::string> out;
    std::string next(key);
    const int64_t now = now_();
    while (!next.empty() && out.size() < max) {
      Shard& s = shard(next);
      std::lock_guard lock(s.mu);
      Record* r = live_record(s, next, now);
      if (r == nullptr) break;
      to_front(s, r->lru);
      out.push_back(r->value);
      next = r->link;
    }
    return out;
  }

  Result<int64_t> append(std::string_view list, const std::vector<ListItem>& items,
                      std::chrono::milliseconds ttl) override {
    Shard& s = shard(list);
    std::lock_guard lock(s.mu);
    const int64_t now = now_();
    List* l = live_list(s, list, now);
    for (size_t i = 0; i < items.size(); ++i) {
      if ((l != nullptr && l->index.contains(items[i].id)) ||
          std::any_of(items.begin(), items.begin() + static_cast<ptrdiff_t>(i),
                      [&](const ListItem& x) { return x.id == items[i].id; })) {
        return make_error(Errc::bad_request, "An item with id '" + items[i].id +
                                                 "' already exists in this list.");
      }
    }
    if (l == nullptr) {
      auto it = s.lists.emplace(std::string(list), List{}).first;
      s.lru.push_front(Lru{true, it->first});
      it->second.lru = s.lru.begin();
      it->second.bytes = list.size() + kOverhead;
      s.bytes += it->second.bytes;
      s.entries++;
      l = &it->second;
    } else {
      to_front(s, l->lru);
    }
    if (ttl.count() > 0) l->expires_at = expiry(now, ttl);
    const int64_t first = l->next_seq;
    for (const ListItem& item : items) {
      const int64_t seq = l->next_seq++;
      l->index.emplace(item.id, seq);
      l->items.emplace(seq, item);
      const size_t b = item.id.size() * 2 + item.value.size() + kOverhead;
      l->bytes += b;
      s.bytes += b;
      s.entries++;
    }
    evict(s, list);
    return first;
  }

  Result<ListPage> range(std::string_view list, std::string_view after, size_t limit,
                         bool descending) override {
    Shard& s = shard(list);
    std::lock_guard lock(s.mu);
    List* l = live_list(s, list, now_());
    ListPage page;
    if (l == nullptr) {
      if (!after.empty()) return not_found_after(after);
      return page;
    }
    to_front(s, l->lru);
    auto collect = [&](auto begin, auto end) {
      for (auto it = begin; it != end; ++it) {
        if (page.items.size() == limit) {
          page.has_more = true;
          break;
        }
        page.items.push_back(it->second);
        page.items.back().seq = it->first;
      }
    };
    if (after.empty()) {
      if (descending) collect(l->items.rbegin(), l->items.rend());
      else collect(l->items.begin(), l->items.end());
      return page;
    }
    auto at = l->index.find(std::string(after));
    if (at == l->index.end()) return not_found_after(after);
    if (descending) {
      collect(std::make_reverse_iterator(l->items.lower_bound(at->second)), l->items.rend());
    } else {
      collect(l->items.upper_bound(at->second), l->items.end());
    }
    return page;
  }

  Result<std::optional<std::string>> item(std::string_view list, std::string_view id) override {
    Shard& s = shard(list);
    std::lock_guard lock(s.mu);
    List* l = live_list(s, list, now_());
    if (l == nullptr) return std::optional<std::string>();
    auto at = l->index.find(std::string(id));
    if (at == l->index.end()) return std::optional<std::string>();
    to_front(s, l->lru);
    return std::optional<std::string>(l->items.at(at->second).value);
  }

  Result<bool> erase_item(std::string_view list, std::string_view id) override {
    Shard& s = shard(list);
    std::lock_guard lock(s.mu);
    List* l = live_list(s, list, now_());
    if (l == nullptr) return false;
    auto at = l->index.find(std::string(id));
    if (at == l->index.end()) return false;
    auto node = l->items.find(at->second);
    const size_t b = node->second.id.size() * 2 + node->second.value.size() + kOverhead;
    l->bytes -= b;
    s.bytes -= b;
    s.entries--;
    l->items.erase(node);
    l->index.erase(at);
    return true;
  }

  Result<bool> replace_item(std::string_view list, std::string_view id,
                            std::string_view value) override {
    Shard& s = shard(list);
    std::lock_guard lock(s.mu);
    List* l = live_list(s, list, now_());
    if (l == nullptr) return false;
    auto at = l->index.find(std::string(id));
    if (at == l->index.end()) return false;
    ListItem& item = l->items.at(at->second);
    l->bytes = l->bytes - item.value.size() + value.size();
    s.bytes = s.bytes - item.value.size() + value.size();
    item.value.assign(value);
    to_front(s, l->lru);
    evict(s, list);
    return true;
  }

  Result<void> erase_list(std::string_view list) override {
    Shard& s = shard(list);
    std::lock_guard lock(s.mu);
    auto it = s.lists.find(std::string(list));
    if (it != s.lists.end()) drop_list(s, it);
    return {};
  }

  Result<size_t> size(std::string_view list) override {
    Shard& s = shard(list);
    std::lock_guard lock(s.mu);
    List* l = live_list(s, list, now_());
    return l == nullptr ? size_t{0} : l->items.size();
  }

  size_t sweep() override {
    size_t removed = 0;
    const int64_t now = now_();
    for (Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      for (auto it = s.records.begin(); it != s.records.end();) {
        auto next = std::next(it);
        if (expired(it->second.expires_at, now)) {
          drop_record(s, it);
          removed++;
        }
        it = next;
      }
      for (auto it = s.lists.begin(); it != s.lists.end();) {
        auto next = std::next(it);
        if (expired(it->second.expires_at, now)) {
          removed += 1 + it->second.items.size();
          drop_list(s, it);
        }
        it = next;
      }
    }
    return removed;
  }

  std::shared_ptr<void> pin(std::string_view key) override {
    Shard& s = shard(key);
    {
      std::lock_guard lock(s.mu);
      s.pins[std::string(key)]++;
    }
    // The handle unpins on destruction (whichever way the request ends).
    return std::shared_ptr<void>(nullptr, [&s, k = std::string(key)](void*) {
      std::lock_guard lock(s.mu);
      auto it = s.pins.find(k);
      if (it != s.pins.end() && --it->second == 0) s.pins.erase(it);
    });
  }

 private:
  struct Lru {
    bool list;
    std::string_view key;  // points into the map's key (stable: node-based map)
  };
  using LruList = std::list<Lru>;
  struct Record {
    std::string value, link;
    int64_t expires_at = 0;
    size_t bytes = 0;
    LruList::iterator lru;
  };
  struct List {
    std::map<int64_t, ListItem> items;
    std::unordered_map<std::string, int64_t> index;
    int64_t next_seq = 1;
    int64_t expires_at = 0;
    size_t bytes = 0;
    LruList::iterator lru;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Record> records;
    std::unordered_map<std::string, List> lists;
    std::unordered_map<std::string, int> pins;
    LruList lru;  // most recent first
    size_t entries = 0, bytes = 0;
  };

  static bool expired(int64_t expires_at, int64_t now) {
    return expires_at != 0 && expires_at <= now;
  }
  static Error not_found_after(std::string_view after) {
    return make_error(Errc::not_found, "No item with id '" + std::string(after) + "'.", "after");
  }

  Shard& shard(std::string_view key) { return shards_[std::hash<std::string_view>{}(key) % kShards]; }

  static void to_front(Shard& s, LruList::iterator it) { s.lru.splice(s.lru.begin(), s.lru, it); }

  // The entry at `key` in `map` (records or lists) unless it is absent or expired (then
  // dropped on the way).
  template <class Map>
  typename Map::mapped_type* live(Shard& s, Map& map, std::string_view key, int64_t now) {
    auto it = map.find(std::string(key));
    if (it == map.end()) return nullptr;
    if (expired(it->second.expires_at, now)) {
      drop(s, it);
      return nullptr;
    }
    return &it->second;
  }
  Record* live_record(Shard& s, std::string_view key, int64_t now) {
    return live(s, s.records, key, now);
  }
  List* live_list(Shard& s, std::string_view key, int64_t now) { return live(s, s.lists, key, now); }
  static void drop(Shard& s, std::unordered_map<std::string, Record>::iterator it) {
    drop_record(s, it);
  }
  static void drop(Shard& s, std::unordered_map<std::string, List>::iterator it) {
    drop_list(s, it);
  }
  static void drop_record(Shard& s, std::unordered_map<std::string, Record>::iterator it) {
    s.bytes -= it->second.bytes;
    s.entries--;
    s.lru.erase(it->second.lru);
    s.records.erase(it);
  }
  static void drop_list(Shard& s, std::unordered_map<std::string, List>::iterator it) {
    s.bytes -= it->second.bytes;
    s.entries -= 1 + it->second.items.size();
    s.lru.erase(it->second.lru);
    s.lists.erase(it);
  }

  // Least recently used first, past pinned keys and `keep` (the key just written).
  void evict(Shard& s, std::string_view keep) {
    auto it = s.lru.end();
    while ((s.entries > max_entries_ || s.bytes > max_bytes_) && it != s.lru.begin()) {
      --it;
      const Lru victim = *it;
      if (victim.key == keep || s.pins.contains(std::string(victim.key))) continue;
      auto next = std::next(it);  // erasing `it` leaves `next` valid
      if (victim.list) {
        drop_list(s, s.lists.find(std::string(victim.key)));
      } else {
        drop_record(s, s.records.find(std::string(victim.key)));
      }
      evicted_.fetch_add(1, std::memory_order_relaxed);
      it = next;
    }
  }

  NowMs now_;
  size_t max_entries_, max_bytes_;
  std::array<Shard, kShards> shards_;
  std::atomic<size_t> evicted_{0};
};

}  // namespace

std::unique_ptr<StateStore> make_memory_store(StoreLimits limits, NowMs now) {
  return std::make_unique<MemoryStore>(limits, std::move(now));
}

}  // namespace sluice::store
