// Budget spend shared through Redis (`budgets.backend: redis`): every instance adds what its
// requests cost to one hash per period and reads the totals back, so each one checks budgets
// against the spend of all instances, about a second old. Background thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "common/error.h"
#include "store/redis_sync.h"

namespace sluice::api {

/// Spend in USD keyed like UsageLedger's: "<k|t>:<id>|<YYYY-MM-DD or YYYY-MM>".
using SpendMap = std::unordered_map<std::string, double>;

/// Redis layout: one hash per period, `<prefix>spend:<YYYY-MM-DD>` and `<prefix>spend:<YYYY-MM>`,
/// field "k:<key id>" or "t:<tenant>", value the USD spent (HINCRBYFLOAT). Day hashes expire
/// 3 days, month hashes 40 days after their last write, i.e. always after the period ends.
class RedisSpend {
 public:
  /// Does not connect yet. `timeout` bounds each round trip.
  RedisSpend(std::string host, uint16_t port, std::chrono::milliseconds timeout,
             std::string prefix = "sluice:");

  /// Adds `deltas` (atomically: one MULTI/EXEC) and returns the totals of every scope for the
  /// periods `day` (YYYY-MM-DD) and `month` (YYYY-MM), keyed like SpendMap. One blocking
  /// pipelined round trip. Errors: unavailable (Redis unreachable; whether the deltas were
  /// applied is then unknown only if the connection broke after they were sent), internal
  /// (unexpected reply).
  Result<SpendMap> sync(const SpendMap& deltas, const std::string& day, const std::string& month);

 private:
  store::RedisSync redis_;
  std::string prefix_;
};

/// Splits "<scope>|<period>" at the last '|'; false when there is none. Pure; unit-tested.
bool split_spend_key(const std::string& key, std::string& scope, std::string& period);

}  // namespace sluice::api
