// A lazily re-armed per-connection deadline: moving it later costs a store, not a timer
// operation, so the hot path can push it forward on every read. When it passes, the owner's
// callback runs once (it cancels the socket, turning the pending operation into a timeout).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>

namespace sluice::http {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  Deadline(boost::asio::any_io_executor executor, std::function<void()> on_expire);
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  /// Sets the deadline to `when` (earlier or later than before); clears fired().
  void expire_at(Clock::time_point when);
  void expire_after(std::chrono::milliseconds d) { expire_at(Clock::now() + d); }
  /// No deadline until the next expire_at.
  void clear();
  /// True once the deadline passed and the callback ran (until the next expire_at/clear).
  bool fired() const;

 private:
  struct State;
  static void start_wait(const std::shared_ptr<State>& s);
  std::shared_ptr<State> state_;
};

}  // namespace sluice::http
