// Rate limits shared by every gateway instance through Redis: the same GCRA as LocalRateLimiter,
// evaluated atomically by one Lua script per call on Redis' own clock.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "governance/rate_limiter.h"
#include "store/redis_client.h"

namespace sluice::governance {

namespace asio = boost::asio;

/// GCRA over Redis: keys "<prefix><bucket>" hold the TAT in microseconds of Redis server time.
/// One per RedisClient (same thread); not thread-safe by design.
class RedisRateLimiter {
 public:
  explicit RedisRateLimiter(store::RedisClient& client, std::string prefix = "sluice:rl:");

  /// Same contract as LocalRateLimiter::consume_all (all or nothing; limit <= 0 is always
  /// allowed and not sent), in one round trip. `charges` must stay alive until it completes.
  /// Errors: Errc::unavailable when Redis cannot be reached or the script fails.
  asio::awaitable<Result<std::vector<Decision>>> consume_all(std::span<const Charge> charges);

  /// Same contract as LocalRateLimiter::adjust: refunds (delta < 0) or charges extra (delta > 0)
  /// without ever rejecting.
  asio::awaitable<Result<void>> adjust(const Charge& bucket, int64_t delta);

 private:
  // EVALSHA (SCRIPT LOAD first if needed; EVAL on NOSCRIPT) with `keys` and `argv`.
  asio::awaitable<Result<store::RedisReply>> run_script(std::vector<std::string> keys,
                                                        std::vector<std::string> argv);

  store::RedisClient& client_;
  std::string prefix_;
  std::string sha_;  // of the loaded script; empty until SCRIPT LOAD answers
};

}  // namespace sluice::governance
