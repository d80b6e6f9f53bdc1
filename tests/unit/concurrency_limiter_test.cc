// Unit tests for upstream::ConcurrencyLimiter: exactly max_in_flight admitted, the bounded FIFO
// queue and its hand-off on release, queue timeout and request deadline, fail-fast, the
// unlimited setting, and waiters that are cancelled or destroyed while parked (no slot leaks).
// Timers run on a real io_context; waits are bounded by a generous limit, never asserted on.
#include "upstream/limiter.h"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace sluice::upstream {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kGenerous = std::chrono::seconds(20);  // far above any wait a test expects
constexpr auto kNever = std::chrono::hours(1);         // a wait no test may sit out

config::ConcurrencyConfig limits(int max_in_flight, int max_queue,
                                 milliseconds queue_timeout = kNever) {
  config::ConcurrencyConfig c;
  c.max_in_flight = max_in_flight;
  c.max_queue = max_queue;
  c.queue_timeout = queue_timeout;
  return c;
}

SteadyClock::time_point no_deadline() { return SteadyClock::time_point::max(); }

// Runs `io` until `done()` holds or kGenerous passes; true if it holds.
bool run_until(asio::io_context& io, const std::function<bool()>& done) {
  auto give_up = SteadyClock::now() + kGenerous;
  io.restart();
  while (!done() && SteadyClock::now() < give_up) {
    if (io.run_one_for(milliseconds(100)) == 0 && io.stopped()) io.restart();
  }
  return done();
}

// One acquire() started on `io`; its result lands in `result` when it completes.
struct Attempt {
  std::optional<Result<void>> result;
  bool done() const { return result.has_value(); }
  bool ok() const { return result && result->ok(); }
  const Error& error() const { return result->error(); }
};

std::shared_ptr<Attempt> start(asio::io_context& io, ConcurrencyLimiter& limiter,
                               bool may_queue = true,
                               SteadyClock::time_point deadline = no_deadline()) {
  auto a = std::make_shared<Attempt>();
  asio::co_spawn(io, limiter.acquire(may_queue, deadline),
                 [a](std::exception_ptr e, Result<void> r) {
                   if (e) std::rethrow_exception(e);
                   a->result = std::move(r);
                 });
  return a;
}

// Acquires on `io` and waits for the answer.
std::shared_ptr<Attempt> acquire(asio::io_context& io, ConcurrencyLimiter& limiter,
                                 bool may_queue = true,
                                 SteadyClock::time_point deadline = no_deadline()) {
  auto a = start(io, limiter, may_queue, deadline);
  EXPECT_TRUE(run_until(io, [&] { return a->done(); }));
  return a;
}

TEST(ConcurrencyLimiter, AdmitsExactlyMaxInFlight) {
  asio::io_context io;
  ConcurrencyLimiter limiter(limits(3, 0), "gpt#0");
  EXPECT_FALSE(limiter.unlimited());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(acquire(io, limiter)->ok()) << "slot " << i;
  EXPECT_EQ(limiter.in_use(), 3);

  auto fourth = acquire(io, limiter);
  ASSERT_FALSE(fourth->ok());
  EXPECT_EQ(fourth->error().code, Errc::rate_limited);
  EXPECT_EQ(http_status(fourth->error()), 429);
  EXPECT_EQ(fourth->error().message,
            "Concurrency limit reached for upstream gpt#0 (3 in flight, 0 queued, queue limit 0)");
  ASSERT_TRUE(fourth->error().retry_after.has_value());
  EXPECT_EQ(*fourth->error().retry_after, milliseconds(1000));
  EXPECT_EQ(limiter.in_use(), 3);
  EXPECT_EQ(limiter.queued(), 0);

  limiter.release();
  EXPECT_EQ(limiter.in_use(), 2);
  EXPECT_TRUE(acquire(io, limiter)->ok());
  EXPECT_EQ(limiter.in_use(), 3);
  for (int i = 0; i < 3; ++i) limiter.release();
  EXPECT_EQ(limiter.in_use(), 0);
}

TEST(ConcurrencyLimiter, UnlimitedNeverBlocksOrCounts) {
  asio::io_context io;
  ConcurrencyLimiter limiter(limits(0, 0), "free");
  EXPECT_TRUE(limiter.unlimited());
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(acquire(io, limiter, /*may_queue=*/false)->ok()) << "acquire " << i;
  }
  EXPECT_EQ(limiter.in_use(), 0);
  EXPECT_EQ(limiter.queued(), 0);
  limiter.release();  // a no-op: nothing to go negative
  EXPECT_EQ(limiter.in_use(), 0);
}

TEST(ConcurrencyLimiter, QueuesUpToMaxQueueAndHandsSlotsOverInFifoOrder) {
  asio::io_context io;
  ConcurrencyLimiter limiter(limits(1, 2), "t");
  ASSERT_TRUE(acquire(io, limiter)->ok());

  auto b = start(io, limiter);
  ASSERT_TRUE(run_until(io, [&] { return limiter.queued() == 1; }));
  auto c = start(io, limiter);
  ASSERT_TRUE(run_until(io, [&] { return limiter.queued() == 2; }));
  EXPECT_FALSE(b->done());
  EXPECT_FALSE(c->done());

  // The queue is full: the next one is turned away at once.
  auto d = acquire(io, limiter);
  ASSERT_FALSE(d->ok());
  EXPECT_EQ(d->error().code, Errc::rate_limited);
  EXPECT_EQ(d->error().message,
            "Concurrency limit reached for upstream t (1 in flight, 2 queued, queue limit 2)");
  EXPECT_EQ(limiter.queued(), 2);

  // Each release hands the slot to the oldest waiter; the count in use never dips.
  limiter.release();
  EXPECT_EQ(limiter.in_use(), 1);
  EXPECT_EQ(limiter.queued(), 1);
  ASSERT_TRUE(run_until(io, [&] { return b->done(); }));
  EXPECT_TRUE(b->ok());
  EXPECT_FALSE(c->done());

  limiter.release();
  EXPECT_EQ(limiter.queued(), 0);
  ASSERT_TRUE(run_until(io, [&] { return c->done(); }));
  EXPECT_TRUE(c->ok());
  EXPECT_EQ(limiter.in_use(), 1);

  limiter.release();
  EXPECT_EQ(limiter.in_use(), 0);
}

TEST(ConcurrencyLimiter, HandsOffInArrivalOrderAcrossManyWaiters) {
  asio::io_context io;
  ConcurrencyLimiter limiter(limits(1, 10), "t");
  ASSERT_TRUE(acquire(io, limiter)->ok());
  std::vector<int> order;
  std::vector<std::shared_ptr<Attempt>> waiters;
  for (int i = 0; i < 5; ++i) {
    waiters.push_back(start(io, limiter));
    ASSERT_TRUE(run_until(io, [&] { return limiter.queued() == i + 1; }));
  }
  for (int i = 0; i < 5; ++i) {
    limiter.release();
    ASSERT_TRUE(run_until(io, [&] {
      for (int k = 0; k < 5; ++k) {
        if (waiters[k]->done() && std::find(order.begin(), order.end(), k) == order.end()) {
          order.push_back(k);
        }
      }
      return static_cast<int>(order.size()) == i + 1;
    }));
  }
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  for (auto& w : waiters) EXPECT_TRUE(w->ok());
  limiter.release();
  EXPECT_EQ(limiter.in_use(), 0);
}

TEST(ConcurrencyLimiter, QueueTimeoutIsA503NamingTheLimitAndTarget) {
  asio::io_context io;
  ConcurrencyLimiter limiter(limits(1, 4, milliseconds(30)), "slow#1");
  ASSERT_TRUE(acquire(io, limiter)->ok());
  auto waiter = acquire(io, limiter);
  ASSERT_TRUE(waiter->done());
  ASSERT_FALSE(waiter->ok());
  EXPECT_EQ(waiter->error().code, Errc::unavailable);
  EXPECT_EQ(http_status(waiter->error()), 503);
  EXPECT_EQ(waiter->error().message,
            "Timed out after 30 ms waiting for a concurrency slot on upstream slow#1 (limit 1)");
  // The timed-out waiter left the queue and holds nothing.
  EXPECT_EQ(limiter.queued(), 0);
  EXPECT_EQ(limiter.in_use(), 1);
  limiter.release();
  EXPECT_EQ(limiter.in_use(), 0);
}

TEST(ConcurrencyLimiter, FailFastNeverQueues) {
  asio::io_context io;
  ConcurrencyLimiter limiter(limits(1, 5), "t");
  ASSERT_TRUE(acquire(io, limiter)->ok());
  auto refused = acquire(io, limiter, /*may_queue=*/false);
  ASSERT_FALSE(refused->ok());
  EXPECT_EQ(refused->error().code, Errc::rate_limited);
  EXPECT_EQ(limiter.queued(), 0);
  // With room, fail-fast still admits.
  limiter.release();
  EXPECT_TRUE(acquire(io, limiter, /*may_queue=*/false)->ok());
  EXPECT_EQ(limiter.in_use(), 1);
}

TEST(ConcurrencyLimiter, ARequestDeadlineEarlierThanTheQueueTimeoutWins) {
  asio::io_context io;
  ConcurrencyLimiter limiter(limits(1, 4, kNever), "t");
  ASSERT_TRUE(acquire(io, limiter)->ok());

  // The queue timeout is an hour; the request's deadline ends the wait long before kGenerous.
  auto soon = acquire(io, limiter, true, SteadyClock::now() + milliseconds(30));
  ASSERT_TRUE(soon->done()) << "the wait outlived the request deadline";
  ASSERT_FALSE(soon->ok());
  EXPECT_EQ(soon->error().code, Errc::unavailable);
  EXPECT_NE(soon->error().message.find("waiting for a concurrency slot on upstream t"),
            std::string::npos)
      << soon->error().message;
  // The message names the wait that applied, not the hour-long queue timeout.
  EXPECT_EQ(soon->error().message.find("3600000"), std::string::npos) << soon->error().message;
  EXPECT_EQ(limiter.queued(), 0);

  // A deadline already past: no wait at all.
  auto past = acquire(io, limiter, true, SteadyClock::now() - milliseconds(1));
  ASSERT_TRUE(past->done());
  ASSERT_FALSE(past->ok());
  EXPECT_EQ(past->error().code, Errc::unavailable);
  EXPECT_EQ(past->error().message,
            "Timed out after 0 ms waiting for a concurrency slot on upstream t (limit 1)");
  EXPECT_EQ(limiter.queued(), 0);
  EXPECT_EQ(limiter.in_use(), 1);
}

TEST(ConcurrencyLimiter, ACancelledWaiterLeavesTheQueueAndTakesNoSlot) {
  asio::io_context io;
  ConcurrencyLimiter limiter(limits(1, 4), "t");
  ASSERT_TRUE(acquire(io, limiter)->ok());

  asio::cancellation_signal cancel;
  auto cancelled = std::make_shared<Attempt>();
  asio::co_spawn(io, limiter.acquire(true, no_deadline()),
                 asio::bind_cancellation_slot(cancel.slot(),
                                              [cancelled](std::exception_ptr, Result<void> r) {
                                                cancelled->result = std::move(r);
                                              }));
  auto behind = start(io, limiter);
  ASSERT_TRUE(run_until(io, [&] { return limiter.queued() == 2; }));

  cancel.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until(io, [&] { return cancelled->done(); }));
  EXPECT_FALSE(cancelled->ok());
  EXPECT_EQ(limiter.queued(), 1);

  // The release goes to the waiter behind it, not to the cancelled one.
  limiter.release();
  ASSERT_TRUE(run_until(io, [&] { return behind->done(); }));
  EXPECT_TRUE(behind->ok());
  limiter.release();
  EXPECT_EQ(limiter.in_use(), 0);
  EXPECT_EQ(limiter.queued(), 0);
}

// A waiter's coroutine frame can be destroyed without ever resuming (its io_context is torn
// down, e.g. a worker stopping). Its place in the queue must go with it: otherwise the next
// release hands the slot to nobody (leaked for good) and posts to a dead executor.
TEST(ConcurrencyLimiter, AWaiterDestroyedWhileQueuedLeaksNoSlot) {
  asio::io_context io;
  // Heap-held so that, should the waiter leak, the test can fail without touching the dead
  // executor it refers to.
  auto limiter = std::make_unique<ConcurrencyLimiter>(limits(1, 4), "t");
  ASSERT_TRUE(acquire(io, *limiter)->ok());
  {
    auto doomed = std::make_unique<asio::io_context>();
    auto lost = start(*doomed, *limiter);
    ASSERT_TRUE(run_until(*doomed, [&] { return limiter->queued() == 1; }));
    doomed.reset();  // destroys the parked coroutine
    EXPECT_FALSE(lost->done());
  }
  if (limiter->queued() != 0) {
    ADD_FAILURE() << "the destroyed waiter is still queued";
    (void)limiter.release();  // deliberately leaked: releasing would post to a dead executor
    return;
  }
  limiter->release();
  EXPECT_EQ(limiter->in_use(), 0);
  EXPECT_TRUE(acquire(io, *limiter)->ok());
  EXPECT_EQ(limiter->in_use(), 1);
}

// The slot was already handed to the waiter (release() ran) but its coroutine is destroyed
// before it resumes: the slot must pass on rather than vanish.
TEST(ConcurrencyLimiter, AWaiterDestroyedAfterTheHandOffPassesTheSlotOn) {
  asio::io_context io;
  auto limiter = std::make_unique<ConcurrencyLimiter>(limits(1, 4), "t");
  ASSERT_TRUE(acquire(io, *limiter)->ok());
  auto doomed = std::make_unique<asio::io_context>();
  auto lost = start(*doomed, *limiter);
  ASSERT_TRUE(run_until(*doomed, [&] { return limiter->queued() == 1; }));
  limiter->release();  // granted; its wake-up is posted to `doomed`, which never runs it
  EXPECT_EQ(limiter->queued(), 0);
  EXPECT_EQ(limiter->in_use(), 1);
  doomed.reset();
  EXPECT_FALSE(lost->done());
  EXPECT_EQ(limiter->in_use(), 0) << "the slot handed to the destroyed waiter is lost";
  EXPECT_TRUE(acquire(io, *limiter, /*may_queue=*/false)->ok());
}

TEST(ConcurrencyLimiter, WaitersOnOtherExecutorsAreWokenOnTheirOwn) {
  // Two workers, each with its own io_context: a release on one wakes a waiter on the other.
  asio::io_context a;
  asio::io_context b;
  ConcurrencyLimiter limiter(limits(1, 2), "t");
  ASSERT_TRUE(acquire(a, limiter)->ok());
  auto waiter = start(b, limiter);
  ASSERT_TRUE(run_until(b, [&] { return limiter.queued() == 1; }));
  limiter.release();
  EXPECT_FALSE(waiter->done());  // woken by a handler on b, not inline in release()
  ASSERT_TRUE(run_until(b, [&] { return waiter->done(); }));
  EXPECT_TRUE(waiter->ok());
  EXPECT_EQ(limiter.in_use(), 1);
}

TEST(ConcurrencyLimiter, NeverAdmitsMoreThanTheLimitAcrossWorkerThreads) {
  constexpr int kLimit = 3;
  constexpr int kPerWorker = 200;
  ConcurrencyLimiter limiter(limits(kLimit, 2 * kPerWorker), "t");
  std::atomic<int> holding{0};
  std::atomic<int> most{0};
  std::atomic<int> served{0};
  std::atomic<int> refused{0};
  auto client = [&]() -> asio::awaitable<void> {
    auto slot = co_await limiter.acquire(true, no_deadline());
    if (!slot) {
      refused++;
      co_return;
    }
    int now = ++holding;
    for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
    }
    // Hold the slot across a suspension so the other worker and other clients interleave.
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    --holding;
    served++;
    limiter.release();
  };
  auto worker = [&] {
    asio::io_context io;
    for (int i = 0; i < kPerWorker; ++i) asio::co_spawn(io, client(), asio::detached);
    io.run_for(kGenerous);
  };
  std::thread a(worker);
  std::thread b(worker);
  a.join();
  b.join();
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(served.load(), 2 * kPerWorker);
  EXPECT_LE(most.load(), kLimit);
  EXPECT_EQ(most.load(), kLimit) << "the test never filled the limit";
  EXPECT_EQ(limiter.in_use(), 0);
  EXPECT_EQ(limiter.queued(), 0);
}

}  // namespace
}  // namespace sluice::upstream
