// The state store: what the gateway remembers between requests (stored Responses, conversations
// and their items; sessions, turns and memories build on the same two shapes). One small
// interface, three backends that pass one contract suite (tests/unit/state_store_test.cc):
//   memory  the embedded default: sharded, bounded by entries and bytes, LRU (pinned keys are
//           never evicted), expiry by a sweeper;
//   sqlite  one file, WAL, survives restarts (a SIGKILL loses nothing committed);
//   redis   several instances share it; expiry is Redis' own.
// Two shapes:
//   records  key → value (opaque text), with an optional `link` to another key (a stored
//            response names the one it continues), a TTL, and a walk along the links (chain);
//   lists    an ordered list of items, each with an id unique in its list (conversation items,
//            dialog turns): append, page forward or backward from an item, get, delete.
// Every call is blocking and thread-safe; the request path reaches the store through
// StateService (state_service.h), which runs blocking backends off the worker threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"

namespace sluice::store {

/// Wall-clock milliseconds since the epoch (expiry must survive restarts, so not steady time).
using NowMs = std::function<int64_t()>;
int64_t system_now_ms();

struct ListItem {
  std::string id;
  std::string value;
  int64_t seq = 0;  // its position, filled by range(): 1, 2, 3, ... in append order, never reused
};

struct ListPage {
  std::vector<ListItem> items;
  bool has_more = false;  // more items exist past the last one returned, in that direction
};

struct StoreLimits {
  size_t max_entries = 1'000'000;          // memory: records + list items
  size_t max_bytes = size_t{512} << 20;    // memory: keys + values
};

class StateStore {
 public:
  virtual ~StateStore() = default;
  /// "memory", "sqlite", "redis".
  virtual std::string_view backend() const = 0;
  /// True when calls block on I/O (run them off the worker threads).
  virtual bool blocking() const = 0;

  // ---- records ----
  /// Creates or replaces the record at `key`. `ttl` 0 = no expiry. `link` "" = none.
  virtual Result<void> put(std::string_view key, std::string_view value, std::string_view link,
                           std::chrono::milliseconds ttl) = 0;
  virtual Result<std::optional<std::string>> get(std::string_view key) = 0;
  /// True when a record was removed.
  virtual Result<bool> erase(std::string_view key) = 0;
  /// Whether the record exists; with `ttl` > 0 its expiry restarts (its value is not
  /// rewritten, so a record deleted meanwhile stays deleted).
  virtual Result<bool> touch(std::string_view key, std::chrono::milliseconds ttl) = 0;
  /// The record at `key`, then the one its link names, and so on: newest first, at most `max`
  /// values. Ends at a record without a link or whose link is gone (expired, deleted); empty
  /// when `key` itself is gone.
  virtual Result<std::vector<std::string>> chain(std::string_view key, size_t max) = 0;

  // ---- lists ----
  /// Appends items in order and returns the position (seq) of the first (of the next item when
  /// `items` is empty, which only refreshes the TTL). An id already in the list is a bad_request
  /// (nothing is added). `ttl` > 0 (re)sets the whole list's expiry, 0 leaves it as it is (none
  /// for a new list).
  virtual Result<int64_t> append(std::string_view list, const std::vector<ListItem>& items,
                              std::chrono::milliseconds ttl) = 0;
  /// Up to `limit` items after the item `after` ("" = from the start; from the end when
  /// `descending`), in list order or reversed. An unknown `after` is not_found.
  virtual Result<ListPage> range(std::string_view list, std::string_view after, size_t limit,
                                 bool descending) = 0;
  virtual Result<std::optional<std::string>> item(std::string_view list, std::string_view id) = 0;
  virtual Result<bool> erase_item(std::string_view list, std::string_view id) = 0;
  /// Replaces an item's value in place (its position stays). False when there is no such item.
  virtual Result<bool> replace_item(std::string_view list, std::string_view id,
                                    std::string_view value) = 0;
  virtual Result<void> erase_list(std::string_view list) = 0;
  /// Number of items in the list (0 when there is none).
  virtual Result<size_t> size(std::string_view list) = 0;

  // ---- read, decide, write ----
  /// Runs fn while no other atomically() call on the same `scope` runs, in this process and
  /// (Redis) in every instance sharing the store: for a read-modify-write of a list (a memory
  /// upsert). fn uses the store's ordinary calls. Errors: unavailable when the scope could not
  /// be taken within about 5 s.
  virtual Result<void> atomically(std::string_view scope,
                                  const std::function<Result<void>(StateStore&)>& fn);

  // ---- upkeep ----
  /// Removes what expired (the sweeper calls it off the request path); how many entries went.
  virtual size_t sweep() = 0;
  /// Keeps `key` (a record or a list) from eviction while the returned handle lives (memory
  /// backend; the others never evict and return null).
  virtual std::shared_ptr<void> pin(std::string_view /*key*/) { return nullptr; }
};

std::unique_ptr<StateStore> make_memory_store(StoreLimits limits, NowMs now = system_now_ms);
/// Opens (creating) the SQLite file; throws std::runtime_error when it cannot.
std::unique_ptr<StateStore> make_sqlite_store(const std::string& path, NowMs now = system_now_ms);
/// Keys are prefixed with `prefix` (e.g. "sluice:state:").
std::unique_ptr<StateStore> make_redis_store(std::string host, uint16_t port,
                                             std::chrono::milliseconds timeout,
                                             std::string prefix = "sluice:state:");

}  // namespace sluice::store
