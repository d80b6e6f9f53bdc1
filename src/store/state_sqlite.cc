// The SQLite state store: one file in WAL mode, one connection behind a mutex (calls come from
// the StateService's threads, never a worker). synchronous=NORMAL: a commit is in the WAL
// before the call returns, so a process killed with SIGKILL loses nothing it was told was
// written (a power cut may lose the last commits). Expired rows read as absent and are
// deleted by sweep().
#include <spdlog/spdlog.h>

#include <mutex>
#include <stdexcept>

#include "store/sqlite_stmt.h"
#include "store/state_store.h"

namespace sluice::store {

namespace {

constexpr const char* kSchema[] = {
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, value BLOB NOT NULL,"
    " link TEXT NOT NULL, expires_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS lists (list TEXT PRIMARY KEY, next_seq INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS items (list TEXT NOT NULL, seq INTEGER NOT NULL,"
    " id TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (list, seq))",
    "CREATE UNIQUE INDEX IF NOT EXISTS items_by_id ON items (list, id)",
    "CREATE INDEX IF NOT EXISTS records_expiry ON records (expires_at) WHERE expires_at > 0",
    "CREATE INDEX IF NOT EXISTS lists_expiry ON lists (expires_at) WHERE expires_at > 0",
};

class SqliteStore final : public StateStore {
 public:
  SqliteStore(const std::string& path, NowMs now) : now_(std::move(now)) {
    int rc = sqlite3_open_v2(path.c_str(), &db_,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
      std::string why = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close_v2(db_);
      throw std::runtime_error("state: cannot open SQLite file " + path + ": " + why);
    }
    sqlite3_busy_timeout(db_, 5000);
    for (const char* sql : kSchema) {
      char* err = nullptr;
      if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string why = err != nullptr ? err : "unknown error";
        sqlite3_free(err);
        sqlite3_close_v2(db_);
        throw std::runtime_error("state: cannot prepare SQLite file " + path + ": " + why);
      }
    }
  }
  ~SqliteStore() override { sqlite3_close_v2(db_); }

  std::string_view backend() const override { return "sqlite"; }
  bool blocking() const override { return true; }

  Result<void> put(std::string_view key, std::string_view value, std::string_view link,
                   std::chrono::milliseconds ttl) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, "INSERT OR REPLACE INTO records (key, value, link, expires_at) VALUES (?,?,?,?)");
    st.bind_text(1, key);
    st.bind_text(2, value);
    st.bind_text(3, link);
    st.bind_int(4, expiry(ttl));
    return done(st, "write a record");
  }

  Result<std::optional<std::string>> get(std::string_view key) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, "SELECT value FROM records WHERE key = ? AND (expires_at = 0 OR expires_at > ?)");
    st.bind_text(1, key);
    st.bind_int(2, now_());
    int rc = st.step();
    if (rc == SQLITE_ROW) return std::optional<std::string>(st.text(0));
    if (rc == SQLITE_DONE) return std::optional<std::string>();
    return failure("read a record");
  }

  Result<bool> erase(std::string_view key) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, "DELETE FROM records WHERE key = ? AND (expires_at = 0 OR expires_at > ?)");
    st.bind_text(1, key);
    st.bind_int(2, now_());
    if (st.step() != SQLITE_DONE) return failure("delete a record");
    return sqlite3_changes(db_) > 0;
  }

  Result<bool> touch(std::string_view key, std::chrono::milliseconds ttl) override {
    std::lock_guard lock(mu_);
    Stmt st(db_, ttl.count() > 0
                     ? "UPDATE records SET expires_at = ?2 WHERE key = ?1 AND "
                       "(expires_at = 0 OR expires_at > ?3)"
                     : "UPDATE records SET expires_at = expires_at WHERE key = ?1 AND "
                       "(expires_at = 0 OR expires_at > ?3)");
    st.bind_text(1, key);
    if (ttl.count() > 0) st.bind_int(2, expiry(ttl));
    st.bind_int(3, now_());
    if (st.step() != SQLITE_DONE) return failure("touch a record");
    return sqlite3_changes(db_) > 0;
  }

  Result<std::vector<std::string>> chain(std::string_view key, size_t max) override {
    std::lock_guard lock(mu_);
    Stmt st(db_,
            "SELECT value, link FROM records WHERE key = ? AND (expires_at = 0 OR expires_at > ?)");
    std::vector<std::string> out;
    std::string next(key);
    const int64_t now = now_();
    while (!next.empty() && out.size() < max) {
      st.reset();
      st.bind_text(1, next);
      st.bind_int(2, now);
      int rc = st.step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return failure("read a chain");
      out.push_back(st.text(0));
      next = st.text(1);
    }
    return out;
  }

  Result<int64_t> append(std::string_view list, const std::vector<ListItem>& items,
                      std::chrono::milliseconds ttl) override {
    std::lock_guard lock(mu_);
    const int64_t now = now_();
    if (!exec("BEGIN IMMEDIATE")) return failure("begin a transaction");
    struct Rollback {
      SqliteStore* self;
      bool armed = true;
      ~Rollback() {
        if (armed) self->exec("ROLLBACK");
      }
    } rollback{this};
    int64_t next_seq = 1;
    {
      // An expired list is gone: it restarts empty.
      Stmt st(db_, "SELECT next_seq, expires_at FROM lists WHERE list = ?");
      st.bind_text(1, list);
      int rc = st.step();
      if (rc == SQLITE_ROW) {
        int64_t expires = st.integer(1);
        if (expires != 0 && expires <= now) {
          if (!drop_list_locked(list)) return failure("drop an expired list");
        } else {
          next_seq = st.integer(0);
        }
      } else if (rc != SQLITE_DONE) {
        return failure("read a list");
      }
    }
    const int64_t first = next_seq;
    Stmt insert(db_, "INSERT INTO items (list, seq, id, value) VALUES (?,?,?,?)");
    for (const ListItem& item : items) {
      insert.reset();
      insert.bind_text(1, list);
      insert.bind_int(2, next_seq++);
      insert.bind_text(3, item.id);
      insert.bind_text(4, item.value);
      int rc = insert.step();
      if (rc == SQLITE_CONSTRAINT) {
        return make_error(Errc::bad_request,
                          "An item with id '" + item.id + "' already exists in this list.");
      }
      if (rc != SQLITE_DONE) return failure("append an item");
    }
    Stmt upsert(db_,
                "INSERT INTO lists (list, next_seq, expires_at) VALUES (?1, ?2, ?3) "
                "ON CONFLICT(list) DO UPDATE SET next_seq = ?2, "
                "expires_at = CASE WHEN ?4 THEN ?3 ELSE expires_at END");
    upsert.bind_text(1, list);
    upsert.bind_int(2, next_seq);
    upsert.bind_int(3, expiry(ttl));
    upsert.bind_int(4, ttl.count() > 0 ? 1 : 0);
    if (upsert.step() != SQLITE_DONE) return failure("update a list");
    if (!exec("COMMIT")) return failure("commit");
    rollback.armed = false;
    return first;
  }

  Result<ListPage> range(std::string_view list, std::string_view after, size_t limit,
                         bool descending) override {
    std::lock_guard lock(mu_);
    ListPage page;
    if (!live_list_locked(list)) {
      if (!after.empty()) return not_found_after(after);
      return page;
    }
    int64_t from = descending ? INT64_MAX : 0;
    if (!after.empty()) {
      Stmt st(db_, "SELECT seq FROM items WHERE list = ? AND id = ?");
      st.bind_text(1, list);
      st.bind_text(2, after);
      if (st.step() != SQLITE_ROW) return not_found_after(after);
      from = st.integer(0);
    }
    Stmt st(db_, descending ? "SELECT id, value, seq FROM items WHERE list = ? AND seq < ? "
                              "ORDER BY seq DESC LIMIT ?"
                            : "SELECT id, value, seq FROM items WHERE list = ? AND seq > ? "
                              "ORDER BY seq ASC LIMIT ?");
    st.bind_text(1, list);
    st.bind_int(2, from);
    st.bind_int(3, static_cast<int64_t>(limit) + 1);
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) {
      if (page.items.size() == limit) {
        page.has_more = true;
        break;
      }
      page.items.push_back(ListItem{st.text(0), st.text(1), st.integer(2)});
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return failure("read a list");
    return page;
  }

  Result<std::optional<std::string>> item(std::string_view list, std::string_view id) override {
    std::lock_guard lock(mu_);
    if (!live_list_locked(list)) return std::optional<std::string>();
    Stmt st(db_, "SELECT value FROM items WHERE list = ? AND id = ?");
    st.bind_text(1, list);
    st.bind_text(2, id);
    int rc = st.step();
    if (rc == SQLITE_ROW) return std::optional<std::string>(st.text(0));
    if (rc == SQLITE_DONE) return std::optional<std::string>();
    return failure("read an item");
  }

  Result<bool> erase_item(std::string_view list, std::string_view id) override {
    std::lock_guard lock(mu_);
    if (!live_list_locked(list)) return false;
    Stmt st(db_, "DELETE FROM items WHERE list = ? AND id = ?");
    st.bind_text(1, list);
    st.bind_text(2, id);
    if (st.step() != SQLITE_DONE) return failure("delete an item");
    return sqlite3_changes(db_) > 0;
  }

  Result<bool> replace_item(std::string_view list, std::string_view id,
                            std::string_view value) override {
    std::lock_guard lock(mu_);
    if (!live_list_locked(list)) return false;
    Stmt st(db_, "UPDATE items SET value = ? WHERE list = ? AND id = ?");
    st.bind_text(1, value);
    st.bind_text(2, list);
    st.bind_text(3, id);
    if (st.step() != SQLITE_DONE) return failure("replace an item");
    return sqlite3_changes(db_) > 0;
  }

  Result<void> erase_list(std::string_view list) override {
    std::lock_guard lock(mu_);
    if (!exec("BEGIN IMMEDIATE")) return failure("begin a transaction");
    if (!drop_list_locked(list) || !exec("COMMIT")) {
      exec("ROLLBACK");
      return failure("delete a list");
    }
    return {};
  }

  Result<size_t> size(std::string_view list) override {
    std::lock_guard lock(mu_);
    if (!live_list_locked(list)) return size_t{0};
    Stmt st(db_, "SELECT count(*) FROM items WHERE list = ?");
    st.bind_text(1, list);
    if (st.step() != SQLITE_ROW) return failure("count a list");
    return static_cast<size_t>(st.integer(0));
  }

  size_t sweep() override {
    std::lock_guard lock(mu_);
    const int64_t now = now_();
    size_t removed = 0;
    if (!exec("BEGIN IMMEDIATE")) return 0;
    {
      Stmt st(db_, "DELETE FROM records WHERE expires_at > 0 AND expires_at <= ?");
      st.bind_int(1, now);
      if (st.step() == SQLITE_DONE) removed += static_cast<size_t>(sqlite3_changes(db_));
    }
    {
      Stmt st(db_,
              "DELETE FROM items WHERE list IN "
              "(SELECT list FROM lists WHERE expires_at > 0 AND expires_at <= ?)");
      st.bind_int(1, now);
      if (st.step() == SQLITE_DONE) removed += static_cast<size_t>(sqlite3_changes(db_));
    }
    {
      Stmt st(db_, "DELETE FROM lists WHERE expires_at > 0 AND expires_at <= ?");
      st.bind_int(1, now);
      if (st.step() == SQLITE_DONE) removed += static_cast<size_t>(sqlite3_changes(db_));
    }
    if (!exec("COMMIT")) {
      exec("ROLLBACK");
      return 0;
    }
    return removed;
  }

 private:
  int64_t expiry(std::chrono::milliseconds ttl) const {
    return ttl.count() > 0 ? now_() + ttl.count() : 0;
  }
  bool exec(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK; }
  Error failure(std::string_view what) {
    return make_error(Errc::unavailable,
                      "State store (SQLite) failed to " + std::string(what) + ": " +
                          sqlite3_errmsg(db_));
  }
  Result<void> done(Stmt& st, std::string_view what) {
    if (st.step() != SQLITE_DONE) return failure(what);
    return {};
  }
  static Error not_found_after(std::string_view after) {
    return make_error(Errc::not_found, "No item with id '" + std::string(after) + "'.", "after");
  }
  // The list exists and has not expired.
  bool live_list_locked(std::string_view list) {
    Stmt st(db_, "SELECT 1 FROM lists WHERE list = ? AND (expires_at = 0 OR expires_at > ?)");
    st.bind_text(1, list);
    st.bind_int(2, now_());
    return st.step() == SQLITE_ROW;
  }
  bool drop_list_locked(std::string_view list) {
    Stmt items(db_, "DELETE FROM items WHERE list = ?");
    items.bind_text(1, list);
    Stmt lists(db_, "DELETE FROM lists WHERE list = ?");
    lists.bind_text(1, list);
    return items.step() == SQLITE_DONE && lists.step() == SQLITE_DONE;
  }

  NowMs now_;
  std::mutex mu_;
  sqlite3* db_ = nullptr;
};

}  // namespace

std::unique_ptr<StateStore> make_sqlite_store(const std::string& path, NowMs now) {
  return std::make_unique<SqliteStore>(path, std::move(now));
}

}  // namespace sluice::store
