// ConcurrencyLimiter across workers: four threads, each running its own io_context (as the
// gateway's workers do), acquire and release one limiter. Slots are handed over from one
// worker to a waiter parked on another; the limit must hold at every moment and every waiter
// must be served. `make test` also runs this under ThreadSanitizer.
#include "upstream/limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <thread>
#include <vector>

namespace sluice::upstream {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(ConcurrencyLimiterThreads, HandsSlotsOverAcrossWorkersWithinTheLimit) {
  config::ConcurrencyConfig cfg;
  cfg.max_in_flight = 2;
  cfg.max_queue = 1000;
  cfg.queue_timeout = std::chrono::milliseconds(120'000);  // generous: no waiter may time out
  ConcurrencyLimiter limiter(cfg, "t");
  constexpr int kWorkers = 4;
  constexpr int kTasksPerWorker = 50;
  std::atomic<int> holding{0}, most{0}, served{0}, refused{0};

  auto task = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = co_await limiter.acquire(true, std::chrono::steady_clock::now() + 120s);
    if (!r.ok()) {
      ++refused;
      co_return;
    }
    const int now = ++holding;
    for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
    }
    asio::steady_timer hold(ex, 200us);  // hold the slot across a real wait
    co_await hold.async_wait(asio::use_awaitable);
    --holding;
    ++served;
    limiter.release();
  };

  std::vector<std::unique_ptr<asio::io_context>> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.push_back(std::make_unique<asio::io_context>());
    for (int i = 0; i < kTasksPerWorker; ++i) {
      asio::co_spawn(*workers.back(), task(), asio::detached);
    }
  }
  std::vector<std::thread> threads;
  for (auto& io : workers) threads.emplace_back([&io] { io->run(); });
  for (auto& t : threads) t.join();  // run() returns once every task of that worker is done

  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(served.load(), kWorkers * kTasksPerWorker);
  EXPECT_LE(most.load(), cfg.max_in_flight);
  EXPECT_EQ(most.load(), cfg.max_in_flight);  // the limit was actually reached
  EXPECT_EQ(limiter.in_use(), 0);
  EXPECT_EQ(limiter.queued(), 0);
}

}  // namespace
}  // namespace sluice::upstream
