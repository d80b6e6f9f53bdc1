// Unit tests for http::Server edge cases that need a real connection: a handler that throws
// while the client watch is pending (review §1.23; the use-after-free shows under ASan), the
// HeadCheck hook (runs before the body, its state reaches the handler) and the body budget
// being given back.
#include "http/server.h"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

namespace sluice::http {
namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

struct Exchange {
  std::string received;
  bool done = false;
};

// Sends `request`, then reads until the server closes.
asio::awaitable<void> client(uint16_t port, std::string request, Exchange& ex) {
  tcp::socket s(co_await asio::this_coro::executor);
  auto [cec] = co_await s.async_connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), use_nothrow);
  if (!cec) {
    co_await asio::async_write(s, asio::buffer(request), use_nothrow);
    char buf[4096];
    for (;;) {
      auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_nothrow);
      if (ec) break;
      ex.received.append(buf, n);
    }
  }
  ex.done = true;
}

// Runs `io` until `cond` holds (generous timeout: this is not a timing assertion).
template <typename Cond>
bool run_until(asio::io_context& io, Cond cond) {
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!cond()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    io.run_one_for(std::chrono::milliseconds(20));
  }
  return true;
}

TEST(Server, SurvivesAHandlerThatThrowsWhileTheClientIsWatched) {
  asio::io_context io;
  ServerShared shared;
  bool threw = false;
  Handler handler = [&threw](Request&, Responder& resp) -> asio::awaitable<void> {
    resp.watch_client([] {});
    // Past the 20 ms after which the watch is armed: the readiness wait is now pending.
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(60));
    co_await t.async_wait(use_nothrow);
    threw = true;
    throw std::runtime_error("handler failed");
  };
  Server server(io, ServerLimits{}, handler, shared);
  server.listen("127.0.0.1", 0);
  Exchange ex;
  asio::co_spawn(io, client(server.bound_port(), "GET / HTTP/1.1\r\nHost: h\r\n\r\n", ex),
                 asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return ex.done && server.connection_count() == 0; }));
  EXPECT_TRUE(threw);
  // The aborted watch completes after the Connection is gone; it must not touch it.
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(shared.open_connections.load(), 0u);
}

TEST(Server, HeadCheckRunsBeforeTheBodyAndPassesStateToTheHandler) {
  asio::io_context io;
  ServerShared shared;
  std::string seen;
  Handler handler = [&seen](Request& req, Responder& resp) -> asio::awaitable<void> {
    if (req.head_error != nullptr) {
      seen += "refused:" + std::to_string(req.body.size()) + ";";
      co_await resp.send_error(*req.head_error);
      co_return;
    }
    seen += *static_cast<std::string*>(req.head_state.get()) + ":" + std::string(req.body) + ";";
    co_await resp.send(200, "text/plain", "ok");
  };
  HeadCheck check = [](Request& req) -> std::optional<Error> {
    if (req.header("x-key") != "good") return make_error(Errc::unauthorized, "bad key");
    req.head_state = std::make_shared<std::string>("who");
    return std::nullopt;
  };
  Server server(io, ServerLimits{}, handler, shared, check);
  server.listen("127.0.0.1", 0);
  Exchange good;
  Exchange bad;
  asio::co_spawn(io,
                 client(server.bound_port(),
                        "POST / HTTP/1.1\r\nHost: h\r\nx-key: good\r\nContent-Length: 4\r\n"
                        "Connection: close\r\n\r\nbody",
                        good),
                 asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return good.done; }));
  // Refused with Expect: 100-continue and a body that never comes: answered at once.
  asio::co_spawn(io,
                 client(server.bound_port(),
                        "POST / HTTP/1.1\r\nHost: h\r\nx-key: bad\r\nExpect: 100-continue\r\n"
                        "Content-Length: 100000\r\n\r\n",
                        bad),
                 asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return !bad.received.empty(); }));
  EXPECT_EQ(seen, "who:body;refused:0;");
  EXPECT_EQ(good.received.rfind("HTTP/1.1 200 ", 0), 0u) << good.received;
  EXPECT_EQ(bad.received.rfind("HTTP/1.1 401 ", 0), 0u) << bad.received;
  EXPECT_EQ(bad.received.find("100 Continue"), std::string::npos) << bad.received;
  // Both connections end (the refused one after its lingering close): nothing outlives the test.
  ASSERT_TRUE(run_until(io, [&] { return bad.done && server.connection_count() == 0; }));
}

TEST(Server, GivesTheBodyBudgetBackAfterALargeRequest) {
  asio::io_context io;
  ServerShared shared;
  size_t held_in_handler = 0;
  size_t held_for_next = 1;
  Handler handler = [&](Request& req, Responder& resp) -> asio::awaitable<void> {
    (req.method() == "POST" ? held_in_handler : held_for_next) = shared.buffered_bytes.load();
    co_await resp.send(200, "text/plain", std::to_string(req.body.size()));
  };
  Server server(io, ServerLimits{}, handler, shared);
  server.listen("127.0.0.1", 0);
  const std::string body(300 * 1024, 'x');
  const std::string req = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body +
                          "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  Exchange ex;
  asio::co_spawn(io, client(server.bound_port(), req, ex), asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return ex.done; }));
  EXPECT_GE(held_in_handler, body.size() - 16 * 1024);  // while the large body was held
  // Bounded by what arrived (no doubling past the message): the body, its head and padding.
  EXPECT_LE(held_in_handler, body.size() + 1024);
  EXPECT_NE(ex.received.find("\r\n\r\n307200"), std::string::npos) << ex.received.substr(0, 300);
  EXPECT_NE(ex.received.find("\r\n\r\n0"), std::string::npos);  // the pipelined GET
  EXPECT_EQ(held_for_next, 0u);  // the buffer shrank back before the next request
  ASSERT_TRUE(run_until(io, [&] { return server.connection_count() == 0; }));
  EXPECT_EQ(shared.buffered_bytes.load(), 0u);
}

TEST(Server, AnswersOverTheBodyBudgetWith503AndHoldsNothingWhileLingering) {
  asio::io_context io;
  ServerShared shared;
  ServerLimits limits;
  limits.max_buffered_body_bytes = 64 * 1024;
  bool called = false;
  Handler handler = [&called](Request&, Responder& resp) -> asio::awaitable<void> {
    called = true;
    co_await resp.send(200, "text/plain", "ok");
  };
  Server server(io, limits, handler, shared);
  server.listen("127.0.0.1", 0);
  // A Content-Length of 200 KB costs nothing until the bytes come; 100 KB of them do not fit.
  const std::string req = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 200000\r\n\r\n" +
                          std::string(100 * 1000, 'x');
  Exchange ex;
  asio::co_spawn(io, client(server.bound_port(), req, ex), asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return !ex.received.empty(); }));
  EXPECT_EQ(ex.received.rfind("HTTP/1.1 503 ", 0), 0u) << ex.received;
  EXPECT_NE(ex.received.find("Retry-After: 1\r\n"), std::string::npos) << ex.received;
  EXPECT_FALSE(called);
  EXPECT_EQ(shared.buffered_bytes.load(), 0u);  // the lingering connection gave it back
  ASSERT_TRUE(run_until(io, [&] { return ex.done && server.connection_count() == 0; }));
}

}  // namespace
}  // namespace sluice::http
