// Usage accounting and budgets: each answered request's tokens and cost (from the upstream's
// reported usage and the configured prices) are added per key / tenant / model / UTC day in
// memory and written to SQLite in batches by a background thread, never on a worker. Budgets
// per key and per tenant are checked against the running spend of the current day or month:
// this instance's own, or (budgets.backend: redis) every instance's, synced every 250 ms.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "api/redis_spend.h"
#include "common/error.h"
#include "config/config.h"
#include "providers/usage_report.h"

namespace sluice::api {

// Parsing lives with the pure code (providers/usage_report.h) so the fuzzers reach it.
using providers::parse_usage;
using providers::UsageTokens;

class UsageLedger {
 public:
  /// Opens (creating) `config.usage_db` when set and loads the current month's spend, so
  /// budgets survive restarts. With `budgets.backend: redis` the spend comes from Redis instead
  /// (read once here if Redis answers, then every 250 ms by the background thread). Throws
  /// std::runtime_error naming the file on failure.
  /// Only the storage settings of `config` are used (usage.db, budgets backend, Redis); prices
  /// and budgets come from the Governance that asks, so a reload can keep the ledger.
  explicit UsageLedger(std::shared_ptr<const config::Config> config);
  ~UsageLedger();  // flushes what is pending

  /// Adds one answered request. Thread-safe, in memory (flushed within a second).
  void record(const std::string& key_id, const std::string& tenant, std::string_view model,
              const UsageTokens& tokens, double cost_usd);

  /// quota_exceeded (429 insufficient_quota) when the key's or the tenant's budget for the
  /// current period is spent. `key_budget` is the key's own or budgets.per_key. In memory,
  /// never waits on Redis or SQLite.
  Result<void> check_budget(const std::string& key_id, const std::string& tenant,
                            const config::Budget& key_budget,
                            const std::map<std::string, config::Budget>& tenant_budgets) const;

  /// Rows of usage between two UTC days (YYYY-MM-DD, inclusive) for one key id (empty = all),
  /// as a JSON object {"object":"list","data":[...]}.
  std::string query_json(std::string_view key_id, std::string_view from, std::string_view to);

  /// Writes pending rows now (tests, shutdown).
  void flush();

  /// budgets.backend: redis — adds the spend recorded since the last call to Redis and replaces
  /// the in-memory totals by Redis' (every instance's). While Redis is unreachable the deltas
  /// are kept for the next call and budgets are checked against the last totals plus this
  /// instance's own spend. Blocking: background thread, startup, shutdown and tests only.
  void sync_spend();

 private:
  struct Row {
    int64_t requests = 0, input = 0, cached = 0, output = 0;
    double cost = 0;
  };
  using RowKey = std::tuple<std::string, std::string, std::string, std::string>;  // day,key,tenant,model
  double spent(const std::string& scope, config::Budget::Period period) const;

  std::shared_ptr<const config::Config> config_;
  void* db_ = nullptr;  // sqlite3*
  mutable std::mutex mu_;
  std::map<RowKey, Row> pending_;   // not yet in SQLite
  std::map<RowKey, Row> memory_;    // every row, when there is no database
  SpendMap spend_;                  // "<k|t>:<id>|<day or month>" → USD
  SpendMap spend_pending_;          // budgets.backend: redis — not yet added to Redis
  std::unique_ptr<RedisSpend> redis_spend_;
  bool spend_sync_failing_ = false;  // flusher thread only: log once per failure streak
  std::mutex db_mu_;
  std::atomic<bool> stop_{false};
  std::thread flusher_;
};

}  // namespace sluice::api
