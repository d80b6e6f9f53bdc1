// A blocking Redis connection (hiredis' synchronous API) for background threads and the rare
// admin write: lazy connect, per-command timeout, pipelining, reconnect after any failure, and
// one log line per outage. Never use it on a worker's request path (use RedisClient there).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.h"
#include "store/redis_client.h"  // RedisReply

struct redisContext;
struct redisReply;

namespace sluice::store {

/// Converts a hiredis reply tree (never null) into a RedisReply.
RedisReply convert_hiredis_reply(const redisReply* reply);

/// One synchronous connection, thread-safe (calls are serialised by a mutex). Each call blocks
/// for at most about `timeout` per round trip (connect included).
class RedisSync {
 public:
  /// `purpose` names the user in log lines ("key store", "budgets").
  RedisSync(std::string host, uint16_t port, std::chrono::milliseconds timeout,
            std::string purpose);
  ~RedisSync();
  RedisSync(const RedisSync&) = delete;
  RedisSync& operator=(const RedisSync&) = delete;

  /// Sends `commands` in one pipeline and returns their replies in order. Connects first if
  /// needed. Redis error replies are values (RedisReply::is_error). Errors (Errc::unavailable):
  /// cannot connect, I/O error or timeout; the connection is then dropped and the next call
  /// reconnects. The first failure of an outage is logged (warn), the recovery too (info).
  Result<std::vector<RedisReply>> pipeline(const std::vector<std::vector<std::string>>& commands);

  /// One command; same errors as pipeline().
  Result<RedisReply> command(const std::vector<std::string>& args);

  /// "host:port", for messages.
  const std::string& address() const { return address_; }

 private:
  bool connect_locked(std::string& error);
  void disconnect_locked();
  void note_locked(bool ok, const std::string& error);

  std::string host_;
  uint16_t port_;
  std::chrono::milliseconds timeout_;
  std::string purpose_;
  std::string address_;
  std::mutex mu_;
  redisContext* context_ = nullptr;
  bool down_ = false;  // an outage was logged and has not ended yet
};

}  // namespace sluice::store
