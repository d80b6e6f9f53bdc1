// Per-target concurrency limit shared by all workers: a counting semaphore with a bounded FIFO
// wait queue. A waiter parks on a timer of its own worker; a release hands the slot over and
// wakes it on that worker's executor, so no worker ever blocks.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>

#include "common/error.h"
#include "config/config.h"

namespace sluice::upstream {

class ConcurrencyLimiter {
 public:
  explicit ConcurrencyLimiter(const config::ConcurrencyConfig& config, std::string target_name);

  /// Takes a slot, waiting in the queue (FIFO) until `deadline` or the queue timeout when the
  /// limit is reached and `may_queue`. Errors: rate_limited (429) when the queue is full or
  /// queuing is not allowed; unavailable (503) when the wait timed out. The message names the
  /// limit and the target. Each success must be paired with release().
  boost::asio::awaitable<Result<void>> acquire(bool may_queue,
                                               std::chrono::steady_clock::time_point deadline);
  void release();

  bool unlimited() const { return config_.max_in_flight <= 0; }
  int in_use() const;
  int queued() const;

 private:
  struct Waiter {
    explicit Waiter(boost::asio::any_io_executor ex) : timer(std::move(ex)) {}
    boost::asio::steady_timer timer;
    bool granted = false;
  };
  config::ConcurrencyConfig config_;
  std::string target_name_;
  mutable std::mutex mu_;
  int in_use_ = 0;
  std::deque<std::shared_ptr<Waiter>> waiters_;
};

}  // namespace sluice::upstream
