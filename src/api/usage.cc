// UsageLedger: in-memory aggregation, batched SQLite writes, budget checks, usage queries.
#include "api/usage.h"

#include "common/saturating.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <charconv>
#include <chrono>
#include <ctime>
#include <stdexcept>

namespace sluice::api {

namespace {

// "2026-11-24" (UTC) for now; month = first 7 characters.
std::string utc_day() {
  // Formatted once per second per thread: this runs on every accounted request.
  thread_local time_t cached_second = -1;
  thread_local char buf[16];
  time_t now = time(nullptr);
  if (now != cached_second) {
    cached_second = now;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  }
  return buf;
}

std::string period_key(const std::string& day, config::Budget::Period p) {
  return p == config::Budget::Period::day ? day : day.substr(0, 7);
}

void append_escaped(std::string& out, std::string_view s) {
  out += '"';
  append_json_escaped(out, s);
  out += '"';
}

bool valid_day(std::string_view d) {
  if (d.size() != 10 || d[4] != '-' || d[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (d[i] < '0' || d[i] > '9') return false;
  }
  return true;
}

}  // namespace

UsageLedger::UsageLedger(std::shared_ptr<const config::Config> config_ptr)
    : config_(std::move(config_ptr)) {
  const config::Config& config = *config_;
  if (!config.usage_db.empty()) {
    sqlite3* db = nullptr;
    if (sqlite3_open(config.usage_db.c_str(), &db) != SQLITE_OK) {
      std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
      sqlite3_close(db);
      throw std::runtime_error(config.usage_db + ": cannot open usage database: " + msg);
    }
    db_ = db;
    sqlite3_busy_timeout(db, 2000);
    char* err = nullptr;
    const char* schema =
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE IF NOT EXISTS usage (day TEXT NOT NULL, key_id TEXT NOT NULL, tenant TEXT "
        "NOT NULL, model TEXT NOT NULL, requests INTEGER NOT NULL, input_tokens INTEGER NOT "
        "NULL, cached_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_usd REAL NOT "
        "NULL, PRIMARY KEY (day, key_id, tenant, model));";
    if (sqlite3_exec(db, schema, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(config.usage_db + ": cannot create the usage schema: " + msg);
    }
    // This month's spend so far: budgets hold across restarts.
    std::string today = utc_day();
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db,
                       "SELECT day, key_id, tenant, SUM(cost_usd) FROM usage WHERE day >= ? "
                       "GROUP BY day, key_id, tenant",
                       -1, &st, nullptr);
    std::string month_start = today.substr(0, 7) + "-01";
    sqlite3_bind_text(st, 1, month_start.c_str(), -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::string day = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      std::string key = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
      std::string tenant = reinterpret_cast<const char*>(sqlite3_column_text(st, 2));
      double usd = sqlite3_column_double(st, 3);
      for (auto p : {config::Budget::Period::day, config::Budget::Period::month}) {
        if (p == config::Budget::Period::day && day != today) continue;
        spend_["k:" + key + "|" + period_key(day, p)] += usd;
        spend_["t:" + tenant + "|" + period_key(day, p)] += usd;
      }
    }
    sqlite3_finalize(st);
  }
  if (config.budget_spend_in_redis) {
    redis_spend_ = std::make_unique<RedisSpend>(
        config.rate_limits.redis_host, config.rate_limits.redis_port,
        config.rate_limits.redis_timeout);
    sync_spend();  // Redis down: the spend loaded above (if any) serves until it returns
  }
  flusher_ = std::thread([this] {
    // Shared spend is synced every 250 ms (so an instance sees the others' within ~0.5 s);
    // SQLite rows are written every 500 ms.
    const bool shared = redis_spend_ != nullptr;
    for (uint64_t tick = 1; !stop_.load(); ++tick) {
      std::this_thread::sleep_for(std::chrono::milliseconds(shared ? 250 : 500));
      try {
        if (shared) sync_spend();
        if (!shared || tick % 2 == 0) flush();
      } catch (const std::exception& e) {
        spdlog::warn("usage: flush failed: {}", e.what());
      }
    }
  });
}

UsageLedger::~UsageLedger() {
  stop_.store(true);
  if (flusher_.joinable()) flusher_.join();
  flush();
  sync_spend();  // best effort: this instance's last spend reaches the others
  if (db_) sqlite3_close(static_cast<sqlite3*>(db_));
}

void UsageLedger::record(const std::string& key_id, const std::string& tenant,
                         std::string_view model, const UsageTokens& t, double cost_usd) {
  std::string day = utc_day();
  RowKey k{day, key_id, tenant, std::string(model)};
  std::lock_guard lock(mu_);
  for (auto* rows : {&pending_, db_ ? nullptr : &memory_}) {
    if (rows == nullptr) continue;
    Row& r = (*rows)[k];
    r.requests = sat_add(r.requests, 1);
    r.input = sat_add(r.input, std::max<int64_t>(t.input, 0));
    r.cached = sat_add(r.cached, std::max<int64_t>(t.cached, 0));
    r.output = sat_add(r.output, std::max<int64_t>(t.output, 0));
    r.cost += cost_usd;
  }
  if (!db_) pending_.clear();  // memory_ holds everything; nothing to write
  for (auto p : {config::Budget::Period::day, config::Budget::Period::month}) {
    std::string key_scope = "k:" + key_id + "|" + period_key(day, p);
    std::string tenant_scope = "t:" + tenant + "|" + period_key(day, p);
    spend_[key_scope] += cost_usd;
    spend_[tenant_scope] += cost_usd;
    if (redis_spend_ && cost_usd != 0) {
      spend_pending_[key_scope] += cost_usd;
      spend_pending_[tenant_scope] += cost_usd;
    }
  }
}

void UsageLedger::sync_spend() {
  if (!redis_spend_) return;
  SpendMap batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(spend_pending_);
  }
  std::string day = utc_day();
  auto totals = redis_spend_->sync(batch, day, day.substr(0, 7));
  std::lock_guard lock(mu_);
  if (!totals) {
    // Kept for the next attempt (spend_ already counts it). If the connection broke after the
    // update was sent, it may be applied twice: budgets err on the strict side.
    for (const auto& [key, usd] : batch) spend_pending_[key] += usd;
    if (totals.error().code != Errc::unavailable && !spend_sync_failing_) {
      spdlog::warn("budgets: syncing spend with Redis failed: {}", totals.error().message);
    }
    spend_sync_failing_ = true;  // unavailable: RedisSync logs it once per outage
    return;
  }
  spend_sync_failing_ = false;
  for (const auto& [key, usd] : spend_pending_) (*totals)[key] += usd;  // recorded meanwhile
  spend_.swap(*totals);
}

double UsageLedger::spent(const std::string& scope, config::Budget::Period period) const {
  auto it = spend_.find(scope + "|" + period_key(utc_day(), period));
  return it == spend_.end() ? 0 : it->second;
}

Result<void> UsageLedger::check_budget(
    const std::string& key_id, const std::string& tenant, const config::Budget& key_budget,
    const std::map<std::string, config::Budget>& tenants) const {
  if (!key_budget.any() && tenants.empty()) return {};  // no budgets: no lock on the hot path
  std::lock_guard lock(mu_);
  auto over = [](double spent, const config::Budget& b) { return b.any() && spent >= b.usd; };
  auto period_name = [](const config::Budget& b) {
    return b.period == config::Budget::Period::day ? "today" : "this month";
  };
  if (!key_id.empty() && over(spent("k:" + key_id, key_budget.period), key_budget)) {
    return make_error(Errc::quota_exceeded,
                      "You exceeded your current quota: this API key's budget of $" +
                          std::to_string(key_budget.usd) + " for " + period_name(key_budget) +
                          " is spent.");
  }
  auto it = tenants.find(tenant);
  if (it == tenants.end()) it = tenants.find("*");
  if (it != tenants.end() && !tenant.empty() &&
      over(spent("t:" + tenant, it->second.period), it->second)) {
    return make_error(Errc::quota_exceeded,
                      "You exceeded your current quota: tenant '" + tenant + "' spent its $" +
                          std::to_string(it->second.usd) + " for " + period_name(it->second) + ".");
  }
  return {};
}

void UsageLedger::flush() {
  if (!db_) return;
  std::map<RowKey, Row> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(pending_);
  }
  if (batch.empty()) return;
  std::lock_guard lock(db_mu_);
  sqlite3* db = static_cast<sqlite3*>(db_);
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(
      db,
      "INSERT INTO usage VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (day, key_id, tenant, model) DO "
      "UPDATE SET requests = requests + excluded.requests, input_tokens = input_tokens + "
      "excluded.input_tokens, cached_tokens = cached_tokens + excluded.cached_tokens, "
      "output_tokens = output_tokens + excluded.output_tokens, cost_usd = cost_usd + "
      "excluded.cost_usd",
      -1, &st, nullptr);
  for (const auto& [k, r] : batch) {
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, std::get<0>(k).c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, std::get<1>(k).c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, std::get<2>(k).c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, std::get<3>(k).c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, r.requests);
    sqlite3_bind_int64(st, 6, r.input);
    sqlite3_bind_int64(st, 7, r.cached);
    sqlite3_bind_int64(st, 8, r.output);
    sqlite3_bind_double(st, 9, r.cost);
    if (sqlite3_step(st) != SQLITE_DONE) {
      spdlog::warn("usage: write failed: {}", sqlite3_errmsg(db));
    }
  }
  sqlite3_finalize(st);
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
}

std::string UsageLedger::query_json(std::string_view key_id, std::string_view from,
                                    std::string_view to) {
  std::string lo = valid_day(from) ? std::string(from) : "0000-00-00";
  std::string hi = valid_day(to) ? std::string(to) : "9999-99-99";
  std::map<RowKey, Row> rows;
  if (db_) {
    flush();
    std::lock_guard lock(db_mu_);
    sqlite3* db = static_cast<sqlite3*>(db_);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db,
                       "SELECT day, key_id, tenant, model, requests, input_tokens, "
                       "cached_tokens, output_tokens, cost_usd FROM usage WHERE day BETWEEN ? "
                       "AND ? AND (? = '' OR key_id = ?)",
                       -1, &st, nullptr);
    std::string key(key_id);
    sqlite3_bind_text(st, 1, lo.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, hi.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, key.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, key.c_str(), -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) {
      auto text = [st](int i) { return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, i))); };
      Row r;
      r.requests = sqlite3_column_int64(st, 4);
      r.input = sqlite3_column_int64(st, 5);
      r.cached = sqlite3_column_int64(st, 6);
      r.output = sqlite3_column_int64(st, 7);
      r.cost = sqlite3_column_double(st, 8);
      rows[{text(0), text(1), text(2), text(3)}] = r;
    }
    sqlite3_finalize(st);
  } else {
    std::lock_guard lock(mu_);
    for (const auto& [k, r] : memory_) {
      const std::string& day = std::get<0>(k);
      if (day < lo || day > hi) continue;
      if (!key_id.empty() && std::get<1>(k) != key_id) continue;
      rows[k] = r;
    }
  }
  std::string out = R"({"object":"list","data":[)";
  bool first = true;
  char cost[32];
  for (const auto& [k, r] : rows) {
    if (!first) out += ',';
    first = false;
    out += R"({"day":)";
    append_escaped(out, std::get<0>(k));
    out += R"(,"key_id":)";
    append_escaped(out, std::get<1>(k));
    out += R"(,"tenant":)";
    append_escaped(out, std::get<2>(k));
    out += R"(,"model":)";
    append_escaped(out, std::get<3>(k));
    snprintf(cost, sizeof cost, "%.6f", r.cost);
    out += R"(,"requests":)" + std::to_string(r.requests) + R"(,"input_tokens":)" +
           std::to_string(r.input) + R"(,"cached_input_tokens":)" + std::to_string(r.cached) +
           R"(,"output_tokens":)" + std::to_string(r.output) + R"(,"cost_usd":)" + cost + "}";
  }
  out += "]}";
  return out;
}

}  // namespace sluice::api
