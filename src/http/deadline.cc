// Deadline: one asio timer per owner, re-armed only when the deadline moves earlier.
#include "http/deadline.h"

namespace sluice::http {

struct Deadline::State {
  explicit State(boost::asio::any_io_executor ex) : timer(std::move(ex)) {}
  boost::asio::steady_timer timer;
  Clock::time_point expiry = Clock::time_point::max();
  Clock::time_point armed_for = Clock::time_point::max();  // what the pending wait targets
  bool waiting = false;
  bool fired = false;
  uint64_t generation = 0;
  std::function<void()> on_expire;
};

Deadline::Deadline(boost::asio::any_io_executor executor, std::function<void()> on_expire)
    : state_(std::make_shared<State>(std::move(executor))) {
  state_->on_expire = std::move(on_expire);
}

Deadline::~Deadline() {
  state_->on_expire = nullptr;
  state_->generation++;
  state_->timer.cancel();
}

void Deadline::expire_at(Clock::time_point when) {
  State& s = *state_;
  s.fired = false;
  s.expiry = when;
  // A pending wait that fires later than the new deadline must be replaced; one that fires
  // earlier just re-checks and waits again.
  if (!s.waiting || when < s.armed_for) start_wait(state_);
}

void Deadline::clear() {
  state_->fired = false;
  state_->expiry = Clock::time_point::max();
}

bool Deadline::fired() const { return state_->fired; }

void Deadline::start_wait(const std::shared_ptr<State>& s) {
  uint64_t gen = ++s->generation;
  s->waiting = true;
  s->armed_for = s->expiry;
  s->timer.expires_at(s->expiry);
  s->timer.async_wait([s, gen](const boost::system::error_code& ec) {
    if (gen != s->generation) return;  // superseded by a newer wait
    s->waiting = false;
    if (ec) return;
    if (s->expiry == Clock::time_point::max()) return;
    if (Clock::now() < s->expiry) {
      start_wait(s);
      return;
    }
    s->fired = true;
    if (s->on_expire) s->on_expire();
  });
}

}  // namespace sluice::http
