// Virtual API keys: declared in config and/or created through the admin API, stored only as
// SHA-256 hashes (created keys in SQLite or in Redis). Lookups are in memory; a background
// refresh picks up keys created or revoked by another instance sharing the database or the
// Redis within a second.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "common/sha256.h"
#include "config/config.h"

namespace sluice::governance {

class RedisKeys;

struct KeyRecord {
  std::string id;                    // stable id: "key_" + 16 hex chars (config keys: "cfg_<name>")
  std::string name;
  std::string tenant;
  std::vector<std::string> models;   // allowed model globs; empty = all
  config::RateLimits limits;
  config::Budget budget;             // the key's own (usd 0 = budgets.per_key)
  int64_t expires_unix = 0;          // 0 = never
  int64_t created_unix = 0;
  bool revoked = false;
  bool from_config = false;
  std::string key_prefix;            // first 12 characters of the secret, for display
};

using sluice::sha256_hex;  // common/sha256.h

class KeyStore {
 public:
  /// `db_path` empty: only config keys. Otherwise opens/creates the SQLite database (WAL mode,
  /// busy timeout) and its schema. Throws std::runtime_error naming the file on failure.
  KeyStore(const std::vector<config::ApiKeyConfig>& declared, const std::string& db_path);
  /// Created keys live in Redis (`auth.keys_backend: redis`). Loads them once if Redis
  /// answers; otherwise starts with the declared keys only and refresh() keeps trying.
  KeyStore(const std::vector<config::ApiKeyConfig>& declared, std::unique_ptr<RedisKeys> redis);
  ~KeyStore();

  /// The key whose secret is `presented`: Errc::unauthorized if unknown ("Invalid API key"),
  /// revoked ("API key ... has been revoked") or expired ("API key ... expired at ...").
  /// In memory, thread-safe, no I/O.
  Result<KeyRecord> authenticate(std::string_view presented, int64_t now_unix) const;

  /// Creates a key (admin API). Returns the record and the secret, shown once:
  /// "sk-sluice-" + 40 random base62 characters (OpenSSL RAND_bytes). Errors: bad_request
  /// (empty or duplicate name), unavailable (no database configured, or Redis unreachable),
  /// internal (SQLite). Blocks for one SQLite write or one Redis round trip (bounded by the
  /// Redis timeout); the key is usable on this instance as soon as it returns.
  Result<std::pair<KeyRecord, std::string>> create(const KeyRecord& fields);
  std::vector<KeyRecord> list() const;
  /// Revokes (soft delete; the hash stays so the key keeps failing as "revoked").
  /// Errors: not_found, bad_request (config keys cannot be revoked here), internal,
  /// unavailable (Redis unreachable). Blocks like create().
  Result<void> revoke(std::string_view id);

  /// Reloads from the database if another writer changed it (PRAGMA data_version), or from
  /// Redis if its version counter moved (one GET; the full reload only on a change). While
  /// Redis is unreachable the last key set keeps serving. Call about every 250 ms from a
  /// background thread (never from a worker).
  void refresh();

 private:
  struct Snapshot;
  std::shared_ptr<Snapshot> declared_snapshot() const;
  void publish(std::shared_ptr<const Snapshot> snap);
  std::shared_ptr<const Snapshot> current() const;
  void load_locked();
  void load_redis_locked();
  std::vector<config::ApiKeyConfig> declared_;
  std::string db_path_;
  void* db_ = nullptr;  // sqlite3*
  mutable std::mutex write_mu_;
  mutable std::shared_mutex snap_mu_;
  std::shared_ptr<const Snapshot> snapshot_;
  int64_t data_version_ = -1;
  std::unique_ptr<RedisKeys> redis_;
  int64_t redis_version_ = -1;  // -1: not loaded from Redis yet
};

}  // namespace sluice::governance
