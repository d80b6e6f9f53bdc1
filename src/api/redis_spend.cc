// RedisSpend: HINCRBYFLOAT per scope and period inside MULTI/EXEC, then HGETALL of the current
// day and month, all in one pipeline.
#include "api/redis_spend.h"

#include <cstdio>
#include <cstdlib>
#include <set>
#include <utility>
#include <vector>

namespace sluice::api {

namespace {

using store::RedisReply;

constexpr int64_t kDayHashTtlSeconds = 3 * 24 * 3600;     // > 1 day: outlives its period
constexpr int64_t kMonthHashTtlSeconds = 40 * 24 * 3600;  // > 31 days

bool is_day(const std::string& period) { return period.size() == 10; }  // YYYY-MM-DD

}  // namespace

bool split_spend_key(const std::string& key, std::string& scope, std::string& period) {
  size_t bar = key.rfind('|');
  if (bar == std::string::npos || bar == 0 || bar + 1 == key.size()) return false;
  scope = key.substr(0, bar);
  period = key.substr(bar + 1);
  return true;
}

RedisSpend::RedisSpend(std::string host, uint16_t port, std::chrono::milliseconds timeout,
                       std::string prefix)
    : redis_(std::move(host), port, timeout, "budgets"), prefix_(std::move(prefix) + "spend:") {}

Result<SpendMap> RedisSpend::sync(const SpendMap& deltas, const std::string& day,
                                  const std::string& month) {
  std::vector<std::vector<std::string>> commands;
  std::set<std::string> touched;  // period hashes written, for EXPIRE
  char amount[40];
  for (const auto& [key, usd] : deltas) {
    std::string scope, period;
    if (!split_spend_key(key, scope, period) || usd == 0) continue;
    if (commands.empty()) commands.push_back({"MULTI"});
    std::snprintf(amount, sizeof amount, "%.17g", usd);
    commands.push_back({"HINCRBYFLOAT", prefix_ + period, scope, amount});
    touched.insert(period);
  }
  for (const std::string& period : touched) {
    int64_t ttl = is_day(period) ? kDayHashTtlSeconds : kMonthHashTtlSeconds;
    commands.push_back({"EXPIRE", prefix_ + period, std::to_string(ttl)});
  }
  const bool wrote = !commands.empty();
  if (wrote) commands.push_back({"EXEC"});
  commands.push_back({"HGETALL", prefix_ + day});
  commands.push_back({"HGETALL", prefix_ + month});

  auto replies = redis_.pipeline(commands);
  if (!replies) return replies.error();
  const size_t n = replies->size();
  if (wrote && (*replies)[n - 3].type != RedisReply::Type::array) {
    const RedisReply& exec = (*replies)[n - 3];
    return make_error(Errc::internal, "budgets: Redis rejected the spend update" +
                                          (exec.is_error() ? ": " + exec.str : std::string()));
  }
  SpendMap totals;
  const std::string* periods[] = {&day, &month};
  for (int i = 0; i < 2; ++i) {
    const RedisReply& all = (*replies)[n - 2 + i];
    if (all.type != RedisReply::Type::array) {
      return make_error(Errc::internal, "budgets: unexpected reply from Redis to HGETALL");
    }
    for (size_t f = 0; f + 1 < all.elements.size(); f += 2) {
      double usd = std::strtod(all.elements[f + 1].str.c_str(), nullptr);
      totals[all.elements[f].str + "|" + *periods[i]] = usd;
    }
  }
  return totals;
}

}  // namespace sluice::api
