// A small pipelined Redis client on Asio: RESP arrays out, hiredis' reader for replies, replies
// matched to commands in FIFO order, per-command timeouts, lazy connect and a reconnect gate.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"

namespace sluice::store {

namespace asio = boost::asio;

/// One RESP2 reply. Redis error replies are values of type `error` (message in `str`).
struct RedisReply {
  enum class Type { nil, integer, string, status, error, array };
  Type type = Type::nil;
  int64_t integer = 0;
  std::string str;  // string, status and error replies
  std::vector<RedisReply> elements;

  bool is_error() const { return type == Type::error; }
};

/// A connection to one Redis server, bound to one executor (one client per worker thread; not
/// thread-safe by design). Commands from several coroutines are pipelined on one connection.
class RedisClient {
 public:
  RedisClient(asio::any_io_executor ex, std::string host, uint16_t port,
              std::chrono::milliseconds timeout);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  /// Sends one command (e.g. {"GET", "k"}) and waits for its reply. Connects lazily; after a
  /// failure at most one connect attempt is made per 500 ms, others fail at once. Errors (all
  /// Errc::unavailable): unreachable / connection lost, "Redis timed out" (which also drops the
  /// connection, since later replies would queue behind the stuck one).
  asio::awaitable<Result<RedisReply>> command(std::vector<std::string> args);

  /// "host:port", for messages.
  const std::string& address() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::store
