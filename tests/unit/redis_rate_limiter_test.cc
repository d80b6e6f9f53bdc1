// RedisClient and RedisRateLimiter against a real redis-server started per test: GCRA semantics,
// exactness across two instances, pipelining, and behaviour while Redis dies and comes back.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>

#include <limits>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "governance/redis_rate_limiter.h"
#include "store/redis_client.h"
#include "redis_server_support.h"

namespace sluice::governance {
namespace {

using namespace std::chrono_literals;
using store::RedisClient;
using store::RedisReply;

// Runs `aw` on `io` until it completes (the client's reader keeps `io` busy, so no io.run()).
template <class T>
T run_sync(asio::io_context& io, asio::awaitable<T> aw) {
  std::optional<T> out;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { out.emplace(co_await std::move(aw)); },
      asio::detached);
  while (!out) io.run_one();
  return std::move(*out);
}

Charge charge(std::string key, int64_t limit, Millis period, int64_t cost = 1) {
  Charge c;
  c.key = std::move(key);
  c.limit = limit;
  c.period = period;
  c.cost = cost;
  return c;
}

class RedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(test::RedisServer::installed())
        << test::kRedisServerPath << " is missing: install redis-server (scripts/install-deps.sh)";
    port_ = redis_.port();
    ASSERT_TRUE(start_redis()) << "redis-server did not answer PING on port " << port_;
  }
  void TearDown() override { stop_redis(); }

  bool start_redis() { return redis_.start(); }
  void stop_redis() { redis_.stop(); }

  test::RedisServer redis_;
  uint16_t port_ = 0;
  asio::io_context io_;
};

Decision consume_one(asio::io_context& io, RedisRateLimiter& rl, const Charge& c) {
  auto r = run_sync(io, rl.consume_all(std::span<const Charge>(&c, 1)));
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  if (!r.ok()) return Decision{false};
  EXPECT_EQ(r->size(), 1u);
  return r->at(0);
}

TEST_F(RedisTest, BurstOfExactlyLimitThenRejects) {
  RedisClient client(io_.get_executor(), "127.0.0.1", port_, 2s);
  RedisRateLimiter rl(client);
  Charge c = charge("key:a:rpm", 10, 60s);
  for (int i = 0; i < 10; ++i) {
    Decision d = consume_one(io_, rl, c);
    EXPECT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.limit, 10);
    EXPECT_EQ(d.remaining, 9 - i);
    EXPECT_GT(d.reset_after.count(), 0);
  }
  Decision d = consume_one(io_, rl, c);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 0);
  EXPECT_GT(d.retry_after.count(), 0);
  EXPECT_LE(d.retry_after, 6000ms);
  // A cost above the limit can never fit: rejected with a whole period as retry.
  Decision big = consume_one(io_, rl, charge("key:b:tpm", 5, 60s, 6));
  EXPECT_FALSE(big.allowed);
  EXPECT_EQ(big.retry_after, 60s);
  // Unlimited charges are allowed and never reach Redis.
  EXPECT_TRUE(consume_one(io_, rl, charge("key:c", 0, 60s)).allowed);
  auto exists = run_sync(io_, client.command({"EXISTS", "sluice:rl:key:c"}));
  ASSERT_TRUE(exists.ok());
  EXPECT_EQ(exists->integer, 0);
  // The key holds a TAT in microseconds and expires after period + 1 s at most.
  auto ttl = run_sync(io_, client.command({"PTTL", "sluice:rl:key:a:rpm"}));
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->integer, 59'000);
  EXPECT_LE(ttl->integer, 61'000);
}

TEST_F(RedisTest, AllOrNothingAcrossBuckets) {
  RedisClient client(io_.get_executor(), "127.0.0.1", port_, 2s);
  RedisRateLimiter rl(client);
  Charge tight = charge("tenant:t:rpm", 1, 60s);
  ASSERT_TRUE(consume_one(io_, rl, tight).allowed);
  std::vector<Charge> both{charge("key:k:rpm", 5, 60s), tight};
  auto r = run_sync(io_, rl.consume_all(both));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->at(0).allowed);  // would have fit, but nothing was consumed
  EXPECT_EQ(r->at(0).remaining, 5);
  EXPECT_FALSE(r->at(1).allowed);
  EXPECT_GT(r->at(1).retry_after.count(), 0);
  // The first bucket is untouched: its whole burst is still there.
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(consume_one(io_, rl, both[0]).allowed) << i;
  EXPECT_FALSE(consume_one(io_, rl, both[0]).allowed);
  // The same bucket twice in one call sees its earlier charge.
  std::vector<Charge> twice{charge("key:d", 3, 60s, 2), charge("key:d", 3, 60s, 2)};
  auto r2 = run_sync(io_, rl.consume_all(twice));
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r2->at(0).allowed);
  EXPECT_FALSE(r2->at(1).allowed);
}

TEST_F(RedisTest, AdjustRefundsAndCharges) {
  RedisClient client(io_.get_executor(), "127.0.0.1", port_, 2s);
  RedisRateLimiter rl(client);
  Charge c = charge("key:t:tpm", 100, 60s, 100);
  ASSERT_TRUE(consume_one(io_, rl, c).allowed);
  c.cost = 1;
  EXPECT_FALSE(consume_one(io_, rl, c).allowed);
  ASSERT_TRUE(run_sync(io_, rl.adjust(c, -40)).ok());  // the request used only 60 tokens
  c.cost = 40;
  Decision d = consume_one(io_, rl, c);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 0);
  // A refund never goes below "full"; extra charges never reject; they fill the bucket for at
  // most one period (review §1.1: an absurd figure must not lock it for years).
  ASSERT_TRUE(run_sync(io_, rl.adjust(c, -1'000'000)).ok());
  c.cost = 100;
  EXPECT_TRUE(consume_one(io_, rl, c).allowed);
  ASSERT_TRUE(run_sync(io_, rl.adjust(c, 50)).ok());
  c.cost = 1;
  Decision owe = consume_one(io_, rl, c);
  EXPECT_FALSE(owe.allowed);
  EXPECT_GT(owe.retry_after, 0ms);
  EXPECT_LE(owe.retry_after, 600ms);  // one unit of a full bucket, not 150% of a period
  ASSERT_TRUE(run_sync(io_, rl.adjust(c, std::numeric_limits<int64_t>::max())).ok());
  Decision capped = consume_one(io_, rl, c);
  EXPECT_FALSE(capped.allowed);
  EXPECT_LE(capped.retry_after, 600ms);
  // A refund on a bucket Redis does not know is a no-op.
  ASSERT_TRUE(run_sync(io_, rl.adjust(charge("key:none", 10, 60s), -5)).ok());
  auto exists = run_sync(io_, client.command({"EXISTS", "sluice:rl:key:none"}));
  ASSERT_TRUE(exists.ok());
  EXPECT_EQ(exists->integer, 0);
}

TEST_F(RedisTest, ScriptCacheLossFallsBackToEval) {
  RedisClient client(io_.get_executor(), "127.0.0.1", port_, 2s);
  RedisRateLimiter rl(client);
  Charge c = charge("key:f", 2, 60s);
  EXPECT_TRUE(consume_one(io_, rl, c).allowed);
  ASSERT_TRUE(run_sync(io_, client.command({"SCRIPT", "FLUSH"})).ok());
  EXPECT_TRUE(consume_one(io_, rl, c).allowed);  // NOSCRIPT → EVAL
  EXPECT_FALSE(consume_one(io_, rl, c).allowed);  // reloaded → EVALSHA
}

TEST_F(RedisTest, ExactAcrossTwoInstances) {
  constexpr int kPerInstance = 100;
  std::atomic<int> allowed{0};
  std::atomic<int> failed{0};
  auto instance = [&] {
    asio::io_context io;
    RedisClient client(io.get_executor(), "127.0.0.1", port_, 3s);
    RedisRateLimiter rl(client);
    int done = 0;
    for (int i = 0; i < kPerInstance; ++i) {
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            std::vector<Charge> charges{charge("shared:rpm", 50, 60s)};
            auto r = co_await rl.consume_all(charges);
            if (!r.ok()) {
              failed++;
            } else if (r->at(0).allowed) {
              allowed++;
            }
            done++;
          },
          asio::detached);
    }
    while (done < kPerInstance) io.run_one();
  };
  std::thread a(instance);
  std::thread b(instance);
  a.join();
  b.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(allowed.load(), 50);
}

TEST_F(RedisTest, PipelinedCommandsGetTheirOwnReplies) {
  RedisClient client(io_.get_executor(), "127.0.0.1", port_, 2s);
  constexpr int kN = 100;
  int done = 0;
  int correct = 0;
  for (int i = 0; i < kN; ++i) {
    asio::co_spawn(
        io_,
        [&, i]() -> asio::awaitable<void> {
          std::string key = "p:" + std::to_string(i);
          // (Named vectors: GCC 12 rejects braced lists of literals across co_await.)
          std::vector<std::string> set_cmd{"SET", key, "v" + std::to_string(i)};
          std::vector<std::string> incr_cmd{"INCRBY", key + ":n", std::to_string(i)};
          std::vector<std::string> get_cmd{"GET", key};
          auto set = co_await client.command(std::move(set_cmd));
          auto incr = co_await client.command(std::move(incr_cmd));
          auto get = co_await client.command(std::move(get_cmd));
          if (set.ok() && set->type == RedisReply::Type::status && set->str == "OK" &&
              incr.ok() && incr->type == RedisReply::Type::integer && incr->integer == i &&
              get.ok() && get->type == RedisReply::Type::string &&
              get->str == "v" + std::to_string(i)) {
            correct++;
          }
          done++;
        },
        asio::detached);
  }
  while (done < kN) io_.run_one();
  EXPECT_EQ(correct, kN);
  // Error replies are values, not failed results; nil and arrays parse too.
  auto err = run_sync(io_, client.command({"NOSUCHCOMMAND"}));
  ASSERT_TRUE(err.ok());
  EXPECT_TRUE(err->is_error());
  auto nil = run_sync(io_, client.command({"GET", "missing"}));
  ASSERT_TRUE(nil.ok());
  EXPECT_EQ(nil->type, RedisReply::Type::nil);
  auto arr = run_sync(io_, client.command({"MGET", "p:1", "missing"}));
  ASSERT_TRUE(arr.ok());
  ASSERT_EQ(arr->elements.size(), 2u);
  EXPECT_EQ(arr->elements[0].str, "v1");
  EXPECT_EQ(arr->elements[1].type, RedisReply::Type::nil);
}

TEST_F(RedisTest, TimeoutDropsTheConnectionAndRecovers) {
  RedisClient client(io_.get_executor(), "127.0.0.1", port_, 300ms);
  auto t0 = std::chrono::steady_clock::now();
  // BLPOP would answer nil after 5 s: only the client's own timeout makes this an error.
  auto r = run_sync(io_, client.command({"BLPOP", "nothing", "5"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_EQ(r.error().message, "Redis timed out");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms);  // not before the timeout
  // Within 500 ms of the last connect attempt the gate answers at once; then a fresh
  // connection serves commands (not stuck behind the abandoned BLPOP). A loaded host may
  // reach the PING after the gate has reopened; the gate is only checked when it did not.
  auto gated = run_sync(io_, client.command({"PING"}));
  if (std::chrono::steady_clock::now() - t0 < 500ms) {
    ASSERT_FALSE(gated.ok());
    EXPECT_EQ(gated.error().code, Errc::unavailable);
  }
  std::this_thread::sleep_for(500ms);
  auto pong = run_sync(io_, client.command({"PING"}));
  ASSERT_TRUE(pong.ok()) << pong.error().message;
  EXPECT_EQ(pong->str, "PONG");
}

TEST_F(RedisTest, RedisDeathFailsFastAndRestartRecovers) {
  RedisClient client(io_.get_executor(), "127.0.0.1", port_, 3s);
  RedisRateLimiter rl(client);
  Charge c = charge("key:x", 100, 60s);
  ASSERT_TRUE(consume_one(io_, rl, c).allowed);

  // A command in flight when Redis dies fails at once, not after the 3 s timeout.
  asio::steady_timer killer(io_);
  killer.expires_after(100ms);
  killer.async_wait([this](boost::system::error_code) { stop_redis(); });
  // "is unreachable" (the connection closed), not "timed out" (the 3 s timeout fired).
  auto blocked = run_sync(io_, client.command({"BLPOP", "nothing", "10"}));
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.error().code, Errc::unavailable);
  EXPECT_NE(blocked.error().message.find("is unreachable"), std::string::npos)
      << blocked.error().message;

  // Next calls: one refused connect attempt, then the gate answers without trying. Neither
  // waits for the timeout, whose error would not name the address.
  for (int i = 0; i < 20; ++i) {
    auto r = run_sync(io_, rl.consume_all(std::span<const Charge>(&c, 1)));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::unavailable);
    EXPECT_NE(r.error().message.find("127.0.0.1:" + std::to_string(port_)), std::string::npos)
        << r.error().message;
    EXPECT_EQ(r.error().message.find("timed out"), std::string::npos) << r.error().message;
  }

  ASSERT_TRUE(start_redis());
  std::this_thread::sleep_for(600ms);  // past the reconnect gate
  auto after = run_sync(io_, rl.consume_all(std::span<const Charge>(&c, 1)));
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_TRUE(after->at(0).allowed);  // new server, empty store, script loaded again
  auto pong = run_sync(io_, client.command({"PING"}));
  ASSERT_TRUE(pong.ok());
  EXPECT_EQ(pong->str, "PONG");
}

TEST_F(RedisTest, UnreachableFromTheStart) {
  uint16_t dead = test::RedisServer().port();  // free, nothing listening
  RedisClient client(io_.get_executor(), "127.0.0.1", dead, 2s);
  auto r = run_sync(io_, client.command({"PING"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_EQ(r.error().message.rfind("Redis at 127.0.0.1:" + std::to_string(dead) +
                                        " is unreachable: ", 0),
            0u)
      << r.error().message;
}

}  // namespace
}  // namespace sluice::governance
