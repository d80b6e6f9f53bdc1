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
#include <vector>

namespace sluice::http {
namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

struct Exchange {
  std::string received;
  bool done = false;
};


// Sends `pieces` one after the other, `gap` apart (each may then arrive in a read of its own),
// then reads until the server closes.
asio::awaitable<void> paced_client(uint16_t port, std::vector<std::string> pieces,
                                   std::chrono::milliseconds gap, Exchange& ex) {
  tcp::socket s(co_await asio::this_coro::executor);
  auto [cec] = co_await s.async_connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), use_nothrow);
  if (!cec) {
    s.set_option(tcp::no_delay(true));
    asio::steady_timer t(co_await asio::this_coro::executor);
    for (const std::string& p : pieces) {
      co_await asio::async_write(s, asio::buffer(p), use_nothrow);
      t.expires_after(gap);
      co_await t.async_wait(use_nothrow);
    }
    char buf[4096];
    for (;;) {
      auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_nothrow);
      if (ec) break;
      ex.received.append(buf, n);
    }
  }
  ex.done = true;
}

// Sends `request`, then reads until the server closes.
asio::awaitable<void> client(uint16_t port, std::string request, Exchange& ex) {
  std::vector<std::string> pieces;  // (a braced list in the co_await: GCC 12 rejects it)
  pieces.push_back(std::move(request));
  co_await paced_client(port, std::move(pieces), std::chrono::milliseconds(0), ex);
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


// A stream handler for path `p`: what it writes is named by the path.
Handler stream_handler() {
  return [](Request& req, Responder& resp) -> asio::awaitable<void> {
    const std::string_view p = req.path();
    if (p == "/send") {
      co_await resp.send(200, "text/plain", "whole");
      co_return;
    }
    co_await resp.begin_stream(200, "text/event-stream");
    if (p == "/chunks") {
      co_await resp.write_chunk("a");
      co_await resp.write_chunk("");  // nothing: an empty chunk would end the body
      co_await resp.write_chunk("bc");
      co_await resp.end_stream();
    } else if (p == "/last") {
      co_await resp.write_chunk("a");
      co_await resp.write_chunk("bc", true);
      co_await resp.end_stream();  // already ended: writes nothing
    } else if (p == "/first-is-last") {
      co_await resp.write_chunk("xyz", true);
    } else if (p == "/big") {
      co_await resp.write_chunk(std::string(0x12c, 'x'));
      co_await resp.write_chunk(std::string(0x10000, 'y'), true);
    } else if (p == "/empty") {
      co_await resp.end_stream();
    }
    // "/abandoned": begun, never written to nor ended.
  };
}

std::string get(std::string_view path, std::string_view extra = "") {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: h\r\n" + std::string(extra) + "\r\n";
}

// The head of a stream leaves with its first chunk, its end with the last one: the bytes a
// client sees are the same chunked body whichever call carried them, and the connection
// stays usable after every complete stream.
TEST(Server, StreamsKeepTheirFramingWhenHeadAndEndShareAWrite) {
  asio::io_context io;
  ServerShared shared;
  Server server(io, ServerLimits{}, stream_handler(), shared);
  server.listen("127.0.0.1", 0);
  Exchange ex;
  const std::string all = get("/chunks") + get("/last") + get("/first-is-last") + get("/empty") +
                          get("/big") + get("/send", "Connection: close\r\n");
  asio::co_spawn(io, client(server.bound_port(), all, ex), asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return ex.done; }));
  std::vector<std::string> bodies;
  size_t pos = 0;
  while ((pos = ex.received.find("\r\n\r\n", pos)) != std::string::npos) {
    pos += 4;
    size_t next = ex.received.find("HTTP/1.1 ", pos);
    bodies.push_back(ex.received.substr(pos, next == std::string::npos ? std::string::npos
                                                                       : next - pos));
    if (next == std::string::npos) break;
    pos = next;
  }
  ASSERT_EQ(bodies.size(), 6u) << ex.received.substr(0, 2000);
  EXPECT_EQ(bodies[0], "1\r\na\r\n2\r\nbc\r\n0\r\n\r\n");
  EXPECT_EQ(bodies[1], "1\r\na\r\n2\r\nbc\r\n0\r\n\r\n");
  EXPECT_EQ(bodies[2], "3\r\nxyz\r\n0\r\n\r\n");
  EXPECT_EQ(bodies[3], "0\r\n\r\n");
  EXPECT_EQ(bodies[4], "12c\r\n" + std::string(0x12c, 'x') + "\r\n10000\r\n" +
                          std::string(0x10000, 'y') + "\r\n0\r\n\r\n");
  EXPECT_EQ(bodies[5], "whole");
  EXPECT_NE(ex.received.find("Transfer-Encoding: chunked"), std::string::npos);
}

TEST(Server, AStreamBegunButNeverWrittenSendsItsHeadAndCloses) {
  asio::io_context io;
  ServerShared shared;
  Server server(io, ServerLimits{}, stream_handler(), shared);
  server.listen("127.0.0.1", 0);
  Exchange ex;
  // Keep-alive asked for, and a second request queued: the cut body must end the connection.
  asio::co_spawn(io, client(server.bound_port(), get("/abandoned") + get("/send"), ex),
                 asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return ex.done; }));
  EXPECT_EQ(ex.received.rfind("HTTP/1.1 200 ", 0), 0u) << ex.received;
  EXPECT_NE(ex.received.find("text/event-stream"), std::string::npos);
  EXPECT_EQ(ex.received.find("whole"), std::string::npos) << ex.received;
}

TEST(Server, StreamsToHttp10ClientsAreCloseDelimitedWithTheLastWrite) {
  asio::io_context io;
  ServerShared shared;
  Server server(io, ServerLimits{}, stream_handler(), shared);
  server.listen("127.0.0.1", 0);
  for (const char* path : {"/last", "/first-is-last", "/empty"}) {
    Exchange ex;
    asio::co_spawn(io,
                   client(server.bound_port(),
                          "GET " + std::string(path) + " HTTP/1.0\r\nHost: h\r\n\r\n", ex),
                   asio::detached);
    ASSERT_TRUE(run_until(io, [&] { return ex.done; })) << path;
    size_t body = ex.received.find("\r\n\r\n");
    ASSERT_NE(body, std::string::npos) << ex.received;
    const std::string expect = std::string(path) == "/last"            ? "abc"
                               : std::string(path) == "/first-is-last" ? "xyz"
                                                                       : "";
    EXPECT_EQ(ex.received.substr(body + 4), expect) << path;
    EXPECT_EQ(ex.received.find("chunked"), std::string::npos) << ex.received;
  }
}

// An idle keep-alive connection holds no read buffer: the next request's first bytes are read
// into a small buffer of the connection's and copied into one of their size. A request whose head and body arrive in
// pieces (the buffer then grows from that size), requests after idle pauses, and pipelined
// ones all read right.
TEST(Server, ReadsRequestsThatArriveInPiecesAfterIdlePauses) {
  asio::io_context io;
  ServerShared shared;
  std::vector<std::string> seen;
  Handler handler = [&seen](Request& req, Responder& resp) -> asio::awaitable<void> {
    seen.push_back(std::string(req.path()) + ":" + std::to_string(req.body.size()) + ":" +
                   std::string(req.body.substr(0, 3)) + std::string(req.header("x-h")));
    co_await resp.send(200, "text/plain", "ok");
  };
  Server server(io, ServerLimits{}, handler, shared);
  server.listen("127.0.0.1", 0);
  const std::string big(40 * 1024, 'b');
  std::vector<std::string> pieces = {
      "POST /a HTTP/1.1\r\nHo", "st: h\r\nx-h: 1\r\nContent-Len", "gth: 5\r\n\r\nab",
      "cde",
      // after an idle pause: a body larger than the scratch, in three pieces
      "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(big.size()) +
          "\r\n\r\n" + big.substr(0, 100),
      big.substr(100, 20000), big.substr(20100),
      // two pipelined requests in one write, the second one cut in the middle of its head
      get("/c", "x-h: 2\r\n") + "GET /d HTTP/1.1\r\nHost: h\r\n",
      "Connection: close\r\n\r\n"};
  Exchange ex;
  asio::co_spawn(io, paced_client(server.bound_port(), pieces, std::chrono::milliseconds(15), ex),
                 asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return ex.done; }));
  ASSERT_EQ(seen.size(), 4u) << ex.received;
  EXPECT_EQ(seen[0], "/a:5:abc1");
  EXPECT_EQ(seen[1], "/b:40960:bbb");
  EXPECT_EQ(seen[2], "/c:0:2");
  EXPECT_EQ(seen[3], "/d:0:");
  ASSERT_TRUE(run_until(io, [&] { return server.connection_count() == 0; }));
  EXPECT_EQ(shared.buffered_bytes.load(), 0u);
}

}  // namespace
}  // namespace sluice::http
