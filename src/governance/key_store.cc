// Virtual API keys: config-declared keys plus keys created through the admin API and stored in
// SQLite or Redis as SHA-256 hashes. Authentication reads an immutable in-memory snapshot
// (hash → record) swapped atomically; every write and every reload happens under write_mu_.
#include "governance/key_store.h"

#include "store/sqlite_stmt.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <ctime>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "governance/redis_keys.h"

namespace sluice::governance {

struct KeyStore::Snapshot {
  std::vector<KeyRecord> records;                     // config keys first, then db keys
  std::unordered_map<std::string, size_t> by_hash;    // sha256 hex → index into records
};

namespace {

constexpr std::string_view kSecretPrefix = "sk-sluice-";
constexpr size_t kSecretRandomChars = 40;
constexpr size_t kDisplayPrefixChars = 12;
constexpr size_t kMaxNameBytes = 256;

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS api_keys ("
    " id TEXT PRIMARY KEY,"
    " key_hash TEXT UNIQUE NOT NULL,"
    " key_prefix TEXT,"
    " name TEXT UNIQUE NOT NULL,"
    " tenant TEXT,"
    " models TEXT,"  // newline-separated globs (a glob never contains a newline)
    " rpm INTEGER,"
    " tpm INTEGER,"
    " tpd INTEGER,"
    " expires_unix INTEGER,"
    " created_unix INTEGER,"
    " revoked INTEGER DEFAULT 0,"
    " budget_usd REAL DEFAULT 0,"
    " budget_period TEXT DEFAULT 'month')";

sqlite3* as_db(void* p) { return static_cast<sqlite3*>(p); }

using store::Stmt;

std::string db_error(void* db, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += db != nullptr ? sqlite3_errmsg(as_db(db)) : "no database";
  return msg;
}

std::string to_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string join_lines(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += '\n';
    out += items[i];
  }
  return out;
}

std::vector<std::string> split_lines(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    size_t nl = s.find('\n');
    std::string_view item = s.substr(0, nl);
    if (!item.empty()) out.emplace_back(item);
    if (nl == std::string_view::npos) break;
    s.remove_prefix(nl + 1);
  }
  return out;
}

std::string format_utc(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return std::to_string(unix_seconds);
  char buf[32];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return n ? std::string(buf, n) : std::to_string(unix_seconds);
}

// Uniform random characters from `alphabet` (rejection sampling: no modulo bias).
bool random_chars(std::string_view alphabet, size_t count, std::string& out) {
  const unsigned limit = 256 - 256 % static_cast<unsigned>(alphabet.size());
  unsigned char buf[64];
  while (count > 0) {
    if (RAND_bytes(buf, sizeof buf) != 1) return false;
    for (unsigned char b : buf) {
      if (count == 0) break;
      if (b >= limit) continue;
      out += alphabet[b % alphabet.size()];
      --count;
    }
  }
  return true;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A failed Redis write as the admin API reports it: 503 with a hint to retry.
Error admin_error(Error e) {
  if (e.code == Errc::unavailable) {
    e.message = "Key management is unavailable: " + e.message + "; try again shortly.";
    e.retry_after = std::chrono::milliseconds(1000);
  }
  return e;
}

}  // namespace


KeyStore::KeyStore(const std::vector<config::ApiKeyConfig>& declared, const std::string& db_path)
    : declared_(declared), db_path_(db_path) {
  if (db_path_.empty()) {
    std::lock_guard lock(write_mu_);
    load_locked();
    return;
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(db_path_.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "cannot open key database " + db_path_ + ": " +
                      (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    throw std::runtime_error(msg);
  }
  db_ = db;
  sqlite3_busy_timeout(db, 2000);
  auto exec = [&](const char* sql, std::string_view what) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = "key database " + db_path_ + ": " + std::string(what) + ": " +
                        (err != nullptr ? err : "unknown error");
      sqlite3_free(err);
      sqlite3_close_v2(db);
      db_ = nullptr;
      throw std::runtime_error(msg);
    }
  };
  exec("PRAGMA journal_mode=WAL", "enabling WAL");
  exec(kSchema, "creating schema");
  std::lock_guard lock(write_mu_);
  load_locked();
  if (data_version_ < 0) {
    std::string msg = db_error(db_, "key database " + db_path_ + ": loading keys");
    sqlite3_close_v2(db);
    db_ = nullptr;
    throw std::runtime_error(msg);
  }
}

KeyStore::KeyStore(const std::vector<config::ApiKeyConfig>& declared,
                   std::unique_ptr<RedisKeys> redis)
    : declared_(declared), redis_(std::move(redis)) {
  std::lock_guard lock(write_mu_);
  publish(declared_snapshot());
  load_redis_locked();  // Redis down at startup: declared keys only until refresh() succeeds
}

KeyStore::~KeyStore() {
  if (db_ != nullptr) sqlite3_close_v2(as_db(db_));
}

std::shared_ptr<KeyStore::Snapshot> KeyStore::declared_snapshot() const {
  auto snap = std::make_shared<Snapshot>();
  for (const config::ApiKeyConfig& k : declared_) {
    if (k.key_sha256.empty()) continue;  // cannot match anything
    KeyRecord r;
    r.id = "cfg_" + k.name;
    r.name = k.name;
    r.tenant = k.tenant.empty() ? k.name : k.tenant;
    r.models = k.models;
    r.limits = k.limits;
    r.budget = k.budget;
    r.expires_unix = k.expires_unix;
    r.from_config = true;
    std::string hash = to_lower(k.key_sha256);
    if (snap->by_hash.contains(hash)) continue;  // first declaration wins
    snap->by_hash.emplace(std::move(hash), snap->records.size());
    snap->records.push_back(std::move(r));
  }
  return snap;
}

void KeyStore::publish(std::shared_ptr<const Snapshot> snap) {
  std::unique_lock lock(snap_mu_);
  snapshot_ = std::move(snap);
}

std::shared_ptr<const KeyStore::Snapshot> KeyStore::current() const {
  std::shared_lock lock(snap_mu_);
  return snapshot_;
}

// Rebuilds the snapshot from the config keys and every key in Redis. On failure the previous
// snapshot stays (known keys keep working) and redis_version_ is left as it was, so the next
// refresh() retries.
void KeyStore::load_redis_locked() {
  auto loaded = redis_->load();
  if (!loaded) return;  // logged once per outage by RedisSync
  std::shared_ptr<Snapshot> snap = declared_snapshot();
  for (StoredKey& k : loaded->second) {
    std::string hash = to_lower(std::move(k.hash));
    if (k.record.tenant.empty()) k.record.tenant = k.record.name;
    if (snap->by_hash.contains(hash)) continue;  // config keys win
    snap->by_hash.emplace(std::move(hash), snap->records.size());
    snap->records.push_back(std::move(k.record));
  }
  redis_version_ = loaded->first;
  publish(std::move(snap));
}

// Rebuilds the snapshot from the config keys and every database row. On a database error the
// previous snapshot stays and data_version_ is left at -1 so the next refresh() retries.
void KeyStore::load_locked() {
  std::shared_ptr<Snapshot> snap = declared_snapshot();

  if (db_ != nullptr) {
    data_version_ = -1;
    sqlite3* db = as_db(db_);
    int64_t version = -1;
    {
      Stmt v(db, "PRAGMA data_version");
      if (!v.ok() || v.step() != SQLITE_ROW) return;
      version = v.integer(0);
    }
    Stmt q(db,
           "SELECT id, key_hash, key_prefix, name, tenant, models, rpm, tpm, tpd, expires_unix,"
           " created_unix, revoked, budget_usd, budget_period FROM api_keys"
           " ORDER BY created_unix, id");
    if (!q.ok()) return;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      KeyRecord r;
      r.id = q.text(0);
      std::string hash = to_lower(q.text(1));
      r.key_prefix = q.text(2);
      r.name = q.text(3);
      r.tenant = q.text(4);
      if (r.tenant.empty()) r.tenant = r.name;
      r.models = split_lines(q.text(5));
      r.budget.usd = sqlite3_column_double(q.raw(), 12);
      r.budget.period = q.text(13) == "day" ? config::Budget::Period::day
                                             : config::Budget::Period::month;
      r.limits.requests_per_minute = q.integer(6);
      r.limits.tokens_per_minute = q.integer(7);
      r.limits.tokens_per_day = q.integer(8);
      r.expires_unix = q.integer(9);
      r.created_unix = q.integer(10);
      r.revoked = q.integer(11) != 0;
      if (hash.empty() || snap->by_hash.contains(hash)) continue;  // config keys win
      snap->by_hash.emplace(std::move(hash), snap->records.size());
      snap->records.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return;
    data_version_ = version;
  }
  publish(std::move(snap));
}

Result<KeyRecord> KeyStore::authenticate(std::string_view presented, int64_t now_unix) const {
  if (presented.empty()) return make_error(Errc::unauthorized, "Invalid API key");
  std::string hash = sha256_hex(presented);
  std::shared_ptr<const Snapshot> snap = current();
  if (snap == nullptr) return make_error(Errc::unauthorized, "Invalid API key");
  auto it = snap->by_hash.find(hash);
  if (it == snap->by_hash.end()) return make_error(Errc::unauthorized, "Invalid API key");
  const KeyRecord& r = snap->records[it->second];
  if (r.revoked) {
    return make_error(Errc::unauthorized, "API key '" + r.name + "' has been revoked");
  }
  if (r.expires_unix != 0 && now_unix >= r.expires_unix) {
    return make_error(Errc::unauthorized,
                      "API key '" + r.name + "' expired at " + format_utc(r.expires_unix));
  }
  return r;
}

Result<std::pair<KeyRecord, std::string>> KeyStore::create(const KeyRecord& fields) {
  if (db_ == nullptr && redis_ == nullptr) {
    return make_error(Errc::unavailable,
                      "creating keys needs a key database (auth.keys_db in the config) or "
                      "auth.keys_backend: redis");
  }
  if (fields.name.empty()) return make_error(Errc::bad_request, "a key name is required", "name");
  if (fields.name.size() > kMaxNameBytes) {
    return make_error(Errc::bad_request, "the key name is too long (at most 256 bytes)", "name");
  }
  for (const std::string& m : fields.models) {
    if (m.empty() || m.find('\n') != std::string::npos) {
      return make_error(Errc::bad_request, "model globs must be non-empty single lines",
                        "models");
    }
  }
  if (fields.limits.requests_per_minute < 0 || fields.limits.tokens_per_minute < 0 ||
      fields.limits.tokens_per_day < 0 || fields.expires_unix < 0) {
    return make_error(Errc::bad_request, "limits and expiry must not be negative");
  }

  std::lock_guard lock(write_mu_);
  {
    std::shared_ptr<const Snapshot> snap = current();
    if (snap != nullptr) {
      for (const KeyRecord& r : snap->records) {
        if (r.name == fields.name) {
          return make_error(Errc::bad_request,
                            "an API key named '" + fields.name + "' already exists", "name");
        }
      }
    }
  }

  std::string secret(kSecretPrefix);
  std::string id = "key_";
  if (!random_chars("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                    kSecretRandomChars, secret) ||
      !random_chars("0123456789abcdef", 16, id)) {
    return make_error(Errc::internal, "could not generate a random key (OpenSSL RAND_bytes)");
  }

  KeyRecord r = fields;
  r.id = id;
  r.tenant = fields.tenant.empty() ? fields.name : fields.tenant;
  r.created_unix = unix_now();
  r.revoked = false;
  r.from_config = false;
  r.key_prefix = secret.substr(0, kDisplayPrefixChars);

  if (redis_ != nullptr) {
    StoredKey stored{r, sha256_hex(secret)};
    if (auto written = redis_->create(stored); !written) return admin_error(written.error());
    // Usable here at once; other instances (and this one, fully) reload on the version bump.
    auto snap = std::make_shared<Snapshot>(*current());
    snap->by_hash.emplace(std::move(stored.hash), snap->records.size());
    snap->records.push_back(r);
    publish(std::move(snap));
    return std::pair<KeyRecord, std::string>{std::move(r), std::move(secret)};
  }

  Stmt ins(as_db(db_),
           "INSERT INTO api_keys (id, key_hash, key_prefix, name, tenant, models, rpm, tpm, tpd,"
           " expires_unix, created_unix, revoked, budget_usd, budget_period)"
           " VALUES (?,?,?,?,?,?,?,?,?,?,?,0,?,?)");
  if (!ins.ok()) return make_error(Errc::internal, db_error(db_, "key database"));
  ins.bind_text(1, r.id);
  ins.bind_text(2, sha256_hex(secret));
  ins.bind_text(3, r.key_prefix);
  ins.bind_text(4, r.name);
  ins.bind_text(5, r.tenant);
  ins.bind_text(6, join_lines(r.models));
  ins.bind_int(7, r.limits.requests_per_minute);
  ins.bind_int(8, r.limits.tokens_per_minute);
  ins.bind_int(9, r.limits.tokens_per_day);
  ins.bind_int(10, r.expires_unix);
  ins.bind_int(11, r.created_unix);
  sqlite3_bind_double(ins.raw(), 12, r.budget.usd);
  ins.bind_text(13, r.budget.period == config::Budget::Period::day ? "day" : "month");
  int rc = ins.step();
  if (rc != SQLITE_DONE) {
    std::string msg = sqlite3_errmsg(as_db(db_));
    if ((rc & 0xff) == SQLITE_CONSTRAINT && msg.find("api_keys.name") != std::string::npos) {
      // Created by another instance since our last refresh.
      load_locked();
      return make_error(Errc::bad_request,
                        "an API key named '" + fields.name + "' already exists", "name");
    }
    return make_error(Errc::internal, "key database: " + msg);
  }
  load_locked();  // our own write: data_version does not move for this connection
  return std::pair<KeyRecord, std::string>{std::move(r), std::move(secret)};
}

std::vector<KeyRecord> KeyStore::list() const {
  std::shared_ptr<const Snapshot> snap = current();
  if (snap == nullptr) return {};
  return snap->records;
}

Result<void> KeyStore::revoke(std::string_view id) {
  for (const config::ApiKeyConfig& k : declared_) {
    if (id == "cfg_" + k.name) {
      return make_error(Errc::bad_request,
                        "keys declared in the config file cannot be revoked through the API; "
                        "remove them from the config");
    }
  }
  if (redis_ != nullptr) {
    std::lock_guard lock(write_mu_);
    if (auto done = redis_->revoke(id); !done) return admin_error(done.error());
    // Rejected here at once; other instances follow within a refresh.
    auto snap = std::make_shared<Snapshot>(*current());
    for (KeyRecord& r : snap->records) {
      if (r.id == id) r.revoked = true;
    }
    publish(std::move(snap));
    return {};
  }
  if (db_ == nullptr) {
    return make_error(Errc::not_found, "no API key with id '" + std::string(id) + "'");
  }
  std::lock_guard lock(write_mu_);
  Stmt upd(as_db(db_), "UPDATE api_keys SET revoked = 1 WHERE id = ?");
  if (!upd.ok()) return make_error(Errc::internal, db_error(db_, "key database"));
  upd.bind_text(1, id);
  if (upd.step() != SQLITE_DONE) return make_error(Errc::internal, db_error(db_, "key database"));
  if (sqlite3_changes(as_db(db_)) == 0) {
    return make_error(Errc::not_found, "no API key with id '" + std::string(id) + "'");
  }
  load_locked();
  return {};
}

void KeyStore::refresh() {
  if (redis_ != nullptr) {
    std::lock_guard lock(write_mu_);
    if (redis_version_ >= 0) {
      auto version = redis_->version();
      if (!version || *version == redis_version_) return;
    }
    load_redis_locked();
    return;
  }
  if (db_ == nullptr) return;
  std::lock_guard lock(write_mu_);
  if (data_version_ >= 0) {
    Stmt v(as_db(db_), "PRAGMA data_version");
    if (!v.ok() || v.step() != SQLITE_ROW) return;
    if (v.integer(0) == data_version_) return;
  }
  load_locked();
}

}  // namespace sluice::governance
