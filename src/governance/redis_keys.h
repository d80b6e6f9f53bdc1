// API keys created through the admin API, kept in Redis so that every gateway instance on every
// host shares them: SHA-256 hashes and metadata only (never a secret), plus a version counter
// bumped by every change so that instances can poll one small key instead of the whole set.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "governance/key_store.h"
#include "store/redis_sync.h"

namespace sluice::governance {

/// A created key as stored: the record and the SHA-256 (hex) of its secret.
struct StoredKey {
  KeyRecord record;
  std::string hash;
};

/// Redis layout (all under `prefix`, "sluice:" by default):
///   <prefix>keys          hash  key id → JSON record (with "key_sha256")
///   <prefix>keys:names    hash  key name → key id (names are unique, revoked keys included)
///   <prefix>keys:revoked  set   revoked key ids
///   <prefix>keys:version  integer, INCRed by every creation and revocation
class RedisKeys {
 public:
  /// Does not connect yet. `timeout` bounds each round trip (connect included).
  RedisKeys(std::string host, uint16_t port, std::chrono::milliseconds timeout,
            std::string prefix = "sluice:");

  /// The change counter (0 when no key was ever created). Background thread only.
  Result<int64_t> version();

  /// Every stored key, revocations applied, and the version they correspond to, read in one
  /// MULTI/EXEC. Entries that cannot be decoded are skipped (and logged). Background thread or
  /// startup only: the reply grows with the number of keys.
  Result<std::pair<int64_t, std::vector<StoredKey>>> load();

  /// Stores a new key and bumps the version, atomically (a Lua script). Errors: bad_request
  /// when the name is taken (by a live or a revoked key), unavailable when Redis cannot be
  /// reached, internal for an unexpected reply. One short blocking round trip.
  Result<void> create(const StoredKey& key);

  /// Marks a key revoked and bumps the version, atomically. Errors: not_found (no such id),
  /// unavailable, internal. One short blocking round trip.
  Result<void> revoke(std::string_view id);

  const std::string& address() const { return redis_.address(); }

 private:
  store::RedisSync redis_;
  std::string keys_, names_, revoked_, version_;
};

/// The JSON stored for one key, and back (nullopt for anything malformed). Pure; unit-tested.
std::string encode_stored_key(const StoredKey& key);
std::optional<StoredKey> decode_stored_key(std::string_view json);

}  // namespace sluice::governance
