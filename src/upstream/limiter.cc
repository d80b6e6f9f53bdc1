// ConcurrencyLimiter: semaphore + FIFO hand-off across worker executors.
#include "upstream/limiter.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>

namespace sluice::upstream {

namespace asio = boost::asio;

ConcurrencyLimiter::ConcurrencyLimiter(const config::ConcurrencyConfig& config,
                                       std::string target_name)
    : config_(config), target_name_(std::move(target_name)) {}

int ConcurrencyLimiter::in_use() const {
  std::lock_guard lock(mu_);
  return in_use_;
}

int ConcurrencyLimiter::queued() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(waiters_.size());
}

asio::awaitable<Result<void>> ConcurrencyLimiter::acquire(
    bool may_queue, std::chrono::steady_clock::time_point deadline) {
  if (unlimited()) co_return Result<void>{};
  std::shared_ptr<Waiter> me;
  {
    std::lock_guard lock(mu_);
    if (in_use_ < config_.max_in_flight) {
      in_use_++;
      co_return Result<void>{};
    }
    if (!may_queue || config_.max_queue <= 0 ||
        static_cast<int>(waiters_.size()) >= config_.max_queue) {
      Error e = make_error(Errc::rate_limited,
                           "Concurrency limit reached for upstream " + target_name_ + " (" +
                               std::to_string(config_.max_in_flight) + " in flight, " +
                               std::to_string(waiters_.size()) + " queued, queue limit " +
                               std::to_string(config_.max_queue) + ")");
      e.retry_after = std::chrono::milliseconds(1000);
      co_return e;
    }
    me = std::make_shared<Waiter>(co_await asio::this_coro::executor);
    waiters_.push_back(me);
  }
  // A frame destroyed while parked (its io_context torn down) never resumes: it must still
  // leave the queue, and pass on a slot already handed to it, or that slot is lost for good.
  struct Parked {
    ConcurrencyLimiter& self;
    const std::shared_ptr<Waiter>& me;
    bool resumed = false;
    ~Parked() {
      if (resumed) return;
      bool granted = false;
      {
        std::lock_guard lock(self.mu_);
        granted = me->granted;
        if (!granted) std::erase(self.waiters_, me);
      }
      if (granted) self.release();
    }
  } parked{*this, me};
  auto now = std::chrono::steady_clock::now();
  auto until = std::min(deadline, now + config_.queue_timeout);
  auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::max(until - now, std::chrono::steady_clock::duration::zero()));
  me->timer.expires_at(until);
  co_await me->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  parked.resumed = true;
  std::lock_guard lock(mu_);
  if (me->granted) co_return Result<void>{};  // the releaser handed its slot to us
  for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
    if (*it == me) {
      waiters_.erase(it);
      break;
    }
  }
  co_return make_error(Errc::unavailable,
                       "Timed out after " + std::to_string(limit.count()) +
                           " ms waiting for a concurrency slot on upstream " + target_name_ +
                           " (limit " + std::to_string(config_.max_in_flight) + ")");
}

void ConcurrencyLimiter::release() {
  if (unlimited()) return;
  std::lock_guard lock(mu_);
  if (!waiters_.empty()) {
    std::shared_ptr<Waiter> next = waiters_.front();
    waiters_.pop_front();
    next->granted = true;  // the slot passes on; in_use_ is unchanged
    asio::post(next->timer.get_executor(), [next] { next->timer.cancel(); });
    return;
  }
  in_use_--;
}

}  // namespace sluice::upstream
