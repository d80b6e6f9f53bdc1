// Unit tests for http::Deadline: the callback runs once when the deadline passes (never early),
// clear() disarms it, moving it earlier or later re-arms correctly, it can be re-armed after
// firing, fired() reports it, and destroying an armed Deadline is safe. Runs a real io_context;
// waits are bounded by a generous limit and nothing is asserted about how long they took.
#include "http/deadline.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <vector>

namespace sluice::http {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using Clock = Deadline::Clock;

constexpr auto kGenerous = std::chrono::seconds(20);

// Runs `io` until `done()` holds, `io` runs out of work, or kGenerous passes.
void run_until(asio::io_context& io, const std::function<bool()>& done) {
  auto give_up = Clock::now() + kGenerous;
  io.restart();
  while (!done() && Clock::now() < give_up) {
    if (io.run_one_for(milliseconds(100)) == 0 && io.stopped()) return;  // no work left
  }
}

// Runs `io` until it has no work left (bounded by kGenerous); true if it ran dry.
bool run_dry(asio::io_context& io) {
  io.restart();
  io.run_for(kGenerous);
  return io.stopped();
}

// A Deadline whose callback counts and records when it ran.
struct Counted {
  explicit Counted(asio::io_context& io)
      : deadline(io.get_executor(), [this] {
          ++fires;
          fired_at.push_back(Clock::now());
          if (on_fire) on_fire();
        }) {}
  int fires = 0;
  std::vector<Clock::time_point> fired_at;
  std::function<void()> on_fire;
  Deadline deadline;
};

TEST(Deadline, FiresItsCallbackOnceAfterTheDeadline) {
  asio::io_context io;
  Counted c(io);
  EXPECT_FALSE(c.deadline.fired());
  auto armed_at = Clock::now();
  c.deadline.expire_after(milliseconds(20));
  EXPECT_FALSE(c.deadline.fired());
  ASSERT_TRUE(run_dry(io)) << "the deadline kept the io_context busy";
  EXPECT_EQ(c.fires, 1);
  EXPECT_TRUE(c.deadline.fired());
  ASSERT_EQ(c.fired_at.size(), 1u);
  EXPECT_GE(c.fired_at[0], armed_at + milliseconds(20)) << "fired early";
}

TEST(Deadline, APastDeadlineFiresOnTheNextRun) {
  asio::io_context io;
  Counted c(io);
  c.deadline.expire_at(Clock::now() - milliseconds(5));
  EXPECT_EQ(c.fires, 0);  // never inline
  ASSERT_TRUE(run_dry(io));
  EXPECT_EQ(c.fires, 1);
  EXPECT_TRUE(c.deadline.fired());
}

TEST(Deadline, ClearPreventsTheCallback) {
  asio::io_context io;
  Counted c(io);
  c.deadline.expire_after(milliseconds(20));
  c.deadline.clear();
  ASSERT_TRUE(run_dry(io)) << "a cleared deadline must let the io_context run dry";
  EXPECT_EQ(c.fires, 0);
  EXPECT_FALSE(c.deadline.fired());
}

TEST(Deadline, ClearResetsFired) {
  asio::io_context io;
  Counted c(io);
  c.deadline.expire_after(milliseconds(1));
  ASSERT_TRUE(run_dry(io));
  ASSERT_TRUE(c.deadline.fired());
  c.deadline.clear();
  EXPECT_FALSE(c.deadline.fired());
}

TEST(Deadline, MovingItLaterDelaysTheCallback) {
  asio::io_context io;
  Counted c(io);
  c.deadline.expire_after(milliseconds(10));
  auto later = Clock::now() + milliseconds(60);
  c.deadline.expire_at(later);  // the pending wait stays; it re-checks and waits again
  ASSERT_TRUE(run_dry(io));
  ASSERT_EQ(c.fires, 1);
  EXPECT_GE(c.fired_at[0], later) << "fired at the old, earlier deadline";
}

TEST(Deadline, MovingItEarlierReArmsTheTimer) {
  asio::io_context io;
  Counted c(io);
  c.deadline.expire_after(std::chrono::hours(1));
  auto sooner = Clock::now() + milliseconds(20);
  c.deadline.expire_at(sooner);
  run_until(io, [&] { return c.fires > 0; });
  ASSERT_EQ(c.fires, 1) << "still waiting for the hour-long deadline";
  EXPECT_GE(c.fired_at[0], sooner);
  // The superseded hour-long wait must not fire later or keep the io_context busy.
  ASSERT_TRUE(run_dry(io));
  EXPECT_EQ(c.fires, 1);
}

TEST(Deadline, PushedForwardManyTimesFiresOnceAtTheLastDeadline) {
  // The hot path pushes the deadline forward on every read.
  asio::io_context io;
  Counted c(io);
  Clock::time_point last;
  int pushes = 0;
  c.deadline.expire_after(milliseconds(15));
  std::function<void()> push = [&] {
    if (++pushes > 10) return;
    last = Clock::now() + milliseconds(15);
    c.deadline.expire_at(last);
    asio::post(io, push);
  };
  asio::post(io, push);
  ASSERT_TRUE(run_dry(io));
  EXPECT_EQ(c.fires, 1);
  ASSERT_EQ(c.fired_at.size(), 1u);
  EXPECT_GE(c.fired_at[0], last);
}

TEST(Deadline, AWaitThatCompletedBeforeBeingSupersededDoesNotFireAgain) {
  // Both timers are due when the io_context first runs, so their completions are queued in
  // one batch, `first` ahead of the Deadline's. Re-arming the Deadline from `first` cannot
  // cancel the already completed wait; that stale completion must be ignored.
  asio::io_context io;
  Counted c(io);
  auto now = Clock::now();
  asio::steady_timer first(io, now - milliseconds(10));
  c.deadline.expire_at(now - milliseconds(1));
  bool rearmed = false;
  first.async_wait([&](const boost::system::error_code&) {
    rearmed = c.fires == 0;  // the Deadline's completion is queued but has not run yet
    c.deadline.expire_at(now - milliseconds(5));  // earlier: a new wait replaces the old
  });
  ASSERT_TRUE(run_dry(io));
  ASSERT_TRUE(rearmed) << "the test's premise (ordering of the two completions) broke";
  EXPECT_EQ(c.fires, 1);
}

TEST(Deadline, CanBeReArmedAfterItFired) {
  asio::io_context io;
  Counted c(io);
  c.deadline.expire_after(milliseconds(5));
  ASSERT_TRUE(run_dry(io));
  ASSERT_EQ(c.fires, 1);
  ASSERT_TRUE(c.deadline.fired());

  auto second = Clock::now() + milliseconds(10);
  c.deadline.expire_at(second);
  EXPECT_FALSE(c.deadline.fired()) << "re-arming clears fired()";
  ASSERT_TRUE(run_dry(io));
  ASSERT_EQ(c.fires, 2);
  EXPECT_GE(c.fired_at[1], second);
  EXPECT_TRUE(c.deadline.fired());
}

TEST(Deadline, CanBeReArmedFromItsOwnCallback) {
  asio::io_context io;
  Counted c(io);
  c.on_fire = [&] {
    if (c.fires < 3) c.deadline.expire_after(milliseconds(2));
  };
  c.deadline.expire_after(milliseconds(2));
  ASSERT_TRUE(run_dry(io));
  EXPECT_EQ(c.fires, 3);
}

TEST(Deadline, ReArmsAfterClearWhileTheOldWaitIsPending) {
  asio::io_context io;
  Counted c(io);
  c.deadline.expire_after(milliseconds(10));
  c.deadline.clear();
  auto later = Clock::now() + milliseconds(40);
  c.deadline.expire_at(later);
  ASSERT_TRUE(run_dry(io));
  ASSERT_EQ(c.fires, 1);
  EXPECT_GE(c.fired_at[0], later);
}

TEST(Deadline, DestroyingItWhileArmedIsSafeAndSilent) {
  asio::io_context io;
  int fires = 0;
  auto owner = std::make_unique<int>(0);  // what a real callback would touch (the socket)
  auto d = std::make_unique<Deadline>(io.get_executor(), [&fires, p = owner.get()] {
    ++fires;
    ++*p;
  });
  d->expire_after(milliseconds(5));
  d.reset();
  owner.reset();  // the callback's target is gone too: it must not run
  ASSERT_TRUE(run_dry(io));
  EXPECT_EQ(fires, 0);
}

TEST(Deadline, DestroyingItAfterTheWaitCompletedButBeforeTheHandlerRanIsSafe) {
  asio::io_context io;
  int fires = 0;
  auto d = std::make_unique<Deadline>(io.get_executor(), [&fires] { ++fires; });
  d->expire_at(Clock::now() - milliseconds(1));
  // Queue the destruction ahead of the (already due) timer handler.
  asio::post(io, [&d] { d.reset(); });
  ASSERT_TRUE(run_dry(io));
  EXPECT_EQ(fires, 0);
}

TEST(Deadline, DestroyingItBeforeItsIoContextIsSafe) {
  int fires = 0;
  {
    asio::io_context io;
    Deadline d(io.get_executor(), [&fires] { ++fires; });
    d.expire_after(std::chrono::hours(1));
  }  // the Deadline goes first, then the io_context holding the cancelled, never-run wait
  EXPECT_EQ(fires, 0);
}

}  // namespace
}  // namespace sluice::http
