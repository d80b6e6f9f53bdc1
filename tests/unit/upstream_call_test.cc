// upstream::Call and Pool against a tiny in-process upstream (an Asio acceptor on 127.0.0.1:0
// whose connections run a scripted coroutine): body framings, reads split across segments,
// interim responses, stale bytes on pooled connections, the stale-connection replay rule,
// cancellation and local-limit flags, and the lifetime of read_all()'s view.
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "upstream/client.h"

namespace sluice::upstream {
namespace {

using namespace std::chrono_literals;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

// A one-shot signal between the scripted upstream and the client coroutine.
class Event {
 public:
  explicit Event(asio::io_context& io) : timer_(io, Clock::time_point::max()) {}
  void set() {
    set_ = true;
    timer_.cancel();
  }
  asio::awaitable<void> wait() {
    while (!set_) co_await timer_.async_wait(use_nothrow);
  }

 private:
  asio::steady_timer timer_;
  bool set_ = false;
};

class ScriptedUpstream;

// One accepted connection, as the script sees it.
struct Session {
  tcp::socket socket;
  int index;  // 0 for the first accepted connection
  ScriptedUpstream* server;
  std::string in;

  // Reads one request head (the client sends GETs without a body); false on EOF or error.
  asio::awaitable<bool> read_request();
  asio::awaitable<void> send(std::string_view bytes) {
    co_await asio::async_write(socket, asio::buffer(bytes), use_nothrow);
  }
  void close() {
    boost::system::error_code ec;
    socket.close(ec);
  }
};

class ScriptedUpstream {
 public:
  using Script = std::function<asio::awaitable<void>(Session&)>;

  ScriptedUpstream(asio::io_context& io, Script script)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        script_(std::move(script)) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_; }
  int requests() const { return requests_; }
  void count_request() { requests_++; }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(use_nothrow);
      if (ec) co_return;
      auto s = std::make_shared<Session>(Session{std::move(sock), connections_++, this, {}});
      asio::co_spawn(
          acceptor_.get_executor(),
          [this, s]() -> asio::awaitable<void> { co_await script_(*s); }, asio::detached);
    }
  }

  tcp::acceptor acceptor_;
  const Script script_;
  int connections_ = 0;
  int requests_ = 0;
};

asio::awaitable<bool> Session::read_request() {
  auto [ec, n] = co_await asio::async_read_until(socket, asio::dynamic_buffer(in), "\r\n\r\n",
                                                 use_nothrow);
  if (ec) co_return false;
  in.erase(0, n);
  server->count_request();
  co_return true;
}

std::string response(std::string_view body) {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

// What one exchange produced, copied out before the Call is destroyed.
struct Fetched {
  bool ok = false;
  Errc code = Errc::internal;
  std::string message;
  int status = 0;
  std::string body;
  bool request_sent = false;
};

const std::string kRequest = "GET /v1/models HTTP/1.1\r\nHost: upstream\r\n\r\n";

class UpstreamCallTest : public ::testing::Test {
 protected:
  void serve(ScriptedUpstream::Script script, PoolLimits limits = {}) {
    server_.emplace(io_, std::move(script));
    origin_ = Origin{false, "127.0.0.1", server_->port(),
                     "http://127.0.0.1:" + std::to_string(server_->port())};
    pool_ = std::make_unique<Pool>(io_, limits, nullptr);
  }

  // Runs the client coroutine until it completes; a generous bound turns a hang into a
  // failure instead of a stuck suite.
  void run(std::function<asio::awaitable<void>()> client) {
    bool done = false;
    std::exception_ptr failure;
    asio::co_spawn(io_, client(), [&](std::exception_ptr e) {
      failure = e;
      done = true;
      io_.stop();
    });
    auto give_up = Clock::now() + 20s;
    while (!done && Clock::now() < give_up) io_.run_for(100ms);
    io_.restart();
    ASSERT_TRUE(done) << "the exchange did not finish within 20 s (hung)";
    if (failure) std::rethrow_exception(failure);
  }

  // start → read the body (read_all, or read_some until done) → finish.
  asio::awaitable<Fetched> fetch(bool replayable = false, bool piecewise = false) {
    Fetched f;
    Call call(*pool_, origin_, timeouts_);
    std::array<asio::const_buffer, 1> wire{asio::buffer(kRequest)};
    auto started = co_await call.start(wire, replayable);
    f.request_sent = call.request_sent();
    if (!started) {
      f.code = started.error().code;
      f.message = started.error().message;
      co_return f;
    }
    f.status = call.status();
    for (;;) {
      // Two statements: GCC 12 mis-destroys a co_await inside a conditional expression.
      Result<std::string_view> piece = std::string_view{};
      if (piecewise) {
        piece = co_await call.read_some();
      } else {
        piece = co_await call.read_all(1 << 20);
      }
      if (!piece) {
        f.code = piece.error().code;
        f.message = piece.error().message;
        co_return f;
      }
      f.body.append(*piece);
      if (!piecewise || call.body_complete()) break;
    }
    call.finish();
    f.ok = true;
    co_return f;
  }

  asio::io_context io_;
  std::optional<ScriptedUpstream> server_;
  Origin origin_;
  std::unique_ptr<Pool> pool_;
  // Long enough that a client waiting for bytes that never come hits run()'s bound first.
  config::Timeouts timeouts_{5000ms, 60'000ms, 60'000ms, 120'000ms};
};

// Answers every request on every connection with `bytes`, in one write.
ScriptedUpstream::Script answer_each(std::string bytes) {
  return [bytes](Session& s) -> asio::awaitable<void> {
    while (co_await s.read_request()) co_await s.send(bytes);
  };
}

TEST_F(UpstreamCallTest, ContentLengthBodyAndTheConnectionIsReused) {
  serve(answer_each(response("hello")));
  run([&]() -> asio::awaitable<void> {
    for (int i = 0; i < 2; ++i) {
      Fetched f = co_await fetch();
      EXPECT_TRUE(f.ok) << f.message;
      EXPECT_EQ(f.status, 200);
      EXPECT_EQ(f.body, "hello");
    }
  });
  EXPECT_EQ(server_->connections(), 1);
  EXPECT_EQ(pool_->idle_count(), 1u);
}

TEST_F(UpstreamCallTest, ChunkedBody) {
  serve(answer_each("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"));
  Fetched f;
  run([&]() -> asio::awaitable<void> { f = co_await fetch(); });
  EXPECT_TRUE(f.ok) << f.message;
  EXPECT_EQ(f.body, "hello world");
  EXPECT_EQ(pool_->idle_count(), 1u);
}

TEST_F(UpstreamCallTest, ChunkedBodySplitAcrossReads) {
  Event got_first(io_), got_second(io_);
  serve([&](Session& s) -> asio::awaitable<void> {
    if (!co_await s.read_request()) co_return;
    co_await s.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    co_await got_first.wait();  // the client has read the first segment
    co_await s.send("lo\r\n6\r\n wo");
    co_await got_second.wait();
    co_await s.send("rld\r\n0\r\n\r\n");
    co_await s.read_request();
  });
  std::vector<std::string> pieces;
  run([&]() -> asio::awaitable<void> {
    Call call(*pool_, origin_, timeouts_);
    std::array<asio::const_buffer, 1> wire{asio::buffer(kRequest)};
    auto started = co_await call.start(wire);
    EXPECT_TRUE(started.ok());
    if (!started) co_return;
    while (!call.body_complete()) {
      auto piece = co_await call.read_some();
      EXPECT_TRUE(piece.ok()) << piece.error().message;
      if (!piece) co_return;
      if (!piece->empty()) pieces.emplace_back(*piece);
      if (pieces.size() == 1) got_first.set();
      if (pieces.size() == 2) got_second.set();
    }
    call.finish();
  });
  EXPECT_EQ(pieces, (std::vector<std::string>{"hel", "lo wo", "rld"}));
  EXPECT_EQ(pool_->idle_count(), 1u);
}

TEST_F(UpstreamCallTest, ContentLengthBodySplitAcrossReads) {
  Event got_head(io_);
  serve([&](Session& s) -> asio::awaitable<void> {
    if (!co_await s.read_request()) co_return;
    co_await s.send("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello");
    co_await got_head.wait();
    co_await s.send(" world");
    co_await s.read_request();
  });
  std::string body;
  run([&]() -> asio::awaitable<void> {
    Call call(*pool_, origin_, timeouts_);
    std::array<asio::const_buffer, 1> wire{asio::buffer(kRequest)};
    EXPECT_TRUE((co_await call.start(wire)).ok());
    got_head.set();  // the rest of the body is sent only now
    auto all = co_await call.read_all(1024);
    EXPECT_TRUE(all.ok());
    if (!all) co_return;
    body = std::string(*all);
    call.finish();
  });
  EXPECT_EQ(body, "hello world");
  EXPECT_EQ(pool_->idle_count(), 1u);
}

TEST_F(UpstreamCallTest, CloseDelimitedBodyEndsAtEofAndIsNotPooled) {
  serve([](Session& s) -> asio::awaitable<void> {
    if (!co_await s.read_request()) co_return;
    co_await s.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc");
    co_await s.send("def");
    s.close();
  });
  Fetched f;
  run([&]() -> asio::awaitable<void> { f = co_await fetch(false, true); });
  EXPECT_TRUE(f.ok) << f.message;
  EXPECT_EQ(f.body, "abcdef");
  EXPECT_EQ(pool_->idle_count(), 0u);
}

// §1.8: the final response sits in the same segment as the interim one.
TEST_F(UpstreamCallTest, ContinueAndFinalResponseInOneSegment) {
  serve(answer_each("HTTP/1.1 100 Continue\r\n\r\n" + response("ok")));
  Fetched f;
  run([&]() -> asio::awaitable<void> { f = co_await fetch(); });
  EXPECT_TRUE(f.ok) << f.message;
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(f.body, "ok");
}

TEST_F(UpstreamCallTest, SeveralInterimResponsesInOneSegment) {
  serve(answer_each("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
                    "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" +
                    response("final")));
  Fetched f;
  run([&]() -> asio::awaitable<void> { f = co_await fetch(); });
  EXPECT_TRUE(f.ok) << f.message;
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(f.body, "final");
}

TEST_F(UpstreamCallTest, InterimResponsesAreBounded) {
  std::string many;
  for (int i = 0; i < 20; ++i) many += "HTTP/1.1 100 Continue\r\n\r\n";
  serve(answer_each(many));  // and then nothing: the final response never comes
  Fetched f;
  run([&]() -> asio::awaitable<void> { f = co_await fetch(); });
  EXPECT_FALSE(f.ok);
  EXPECT_EQ(f.code, Errc::upstream_protocol) << f.message;
  EXPECT_NE(f.message.find("interim"), std::string::npos) << f.message;
}

TEST_F(UpstreamCallTest, SwitchingProtocolsIsAProtocolError) {
  serve(answer_each("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\n\r\n"));
  Fetched f;
  run([&]() -> asio::awaitable<void> { f = co_await fetch(); });
  EXPECT_FALSE(f.ok);
  EXPECT_EQ(f.code, Errc::upstream_protocol) << f.message;
  EXPECT_EQ(pool_->idle_count(), 0u);
}

TEST_F(UpstreamCallTest, GarbageAfterTheBodyKeepsTheConnectionOutOfThePool) {
  serve(answer_each(response("ok") + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale"));
  Fetched all, some;
  run([&]() -> asio::awaitable<void> {
    all = co_await fetch();
    some = co_await fetch(false, true);
  });
  EXPECT_EQ(all.body, "ok");
  EXPECT_EQ(some.body, "ok");
  EXPECT_EQ(server_->connections(), 2);
  EXPECT_EQ(pool_->idle_count(), 0u);
}

TEST_F(UpstreamCallTest, TruncatedBodyIsAnError) {
  serve([](Session& s) -> asio::awaitable<void> {
    if (!co_await s.read_request()) co_return;
    co_await s.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    s.close();
  });
  Fetched f;
  run([&]() -> asio::awaitable<void> { f = co_await fetch(); });
  EXPECT_FALSE(f.ok);
  EXPECT_EQ(f.code, Errc::upstream_protocol) << f.message;
  EXPECT_EQ(pool_->idle_count(), 0u);
}

// §1.9: bytes that arrive on an idle pooled connection are never read as the next response.
TEST_F(UpstreamCallTest, StaleBytesOnAnIdleConnectionAreNotReadAsTheNextResponse) {
  Event first_done(io_), stale_sent(io_);
  serve([&](Session& s) -> asio::awaitable<void> {
    if (s.index == 0) {
      if (!co_await s.read_request()) co_return;
      co_await s.send(response("first"));
      co_await first_done.wait();  // the connection is back in the pool
      co_await s.send(response("stale"));
      stale_sent.set();
      co_await s.read_request();  // a request here means the connection was reused
      co_return;
    }
    while (co_await s.read_request()) co_await s.send(response("fresh"));
  });
  Fetched first, second;
  run([&]() -> asio::awaitable<void> {
    first = co_await fetch();
    first_done.set();
    co_await stale_sent.wait();
    second = co_await fetch();
  });
  EXPECT_EQ(first.body, "first");
  EXPECT_TRUE(second.ok) << second.message;
  EXPECT_EQ(second.body, "fresh");
  EXPECT_EQ(server_->connections(), 2);
}

TEST_F(UpstreamCallTest, IdleConnectionClosedByTheUpstreamIsNotReused) {
  Event closed(io_);
  serve([&](Session& s) -> asio::awaitable<void> {
    if (!co_await s.read_request()) co_return;
    co_await s.send(response(s.index == 0 ? "first" : "fresh"));
    if (s.index == 0) {
      s.close();  // keep-alive announced, then closed while idle
      closed.set();
    }
    co_await s.read_request();
  });
  Fetched first, second;
  run([&]() -> asio::awaitable<void> {
    first = co_await fetch();
    co_await closed.wait();
    second = co_await fetch(/*replayable=*/false);
  });
  EXPECT_EQ(first.body, "first");
  EXPECT_TRUE(second.ok) << second.message;
  EXPECT_EQ(second.body, "fresh");
  EXPECT_EQ(server_->requests(), 2);  // the request went out once
}

// §1.10: a reused connection that closes after the request was written, before any response
// byte: the upstream may have processed it, so it is re-sent only when replayable.
ScriptedUpstream::Script dies_on_second_request() {
  return [](Session& s) -> asio::awaitable<void> {
    if (s.index == 0) {
      if (!co_await s.read_request()) co_return;
      co_await s.send(response("first"));
      if (co_await s.read_request()) s.close();  // took the request, died before answering
      co_return;
    }
    while (co_await s.read_request()) co_await s.send(response("fresh"));
  };
}

TEST_F(UpstreamCallTest, NonReplayableRequestIsNotResentAfterAReusedConnectionCloses) {
  serve(dies_on_second_request());
  Fetched first, second;
  run([&]() -> asio::awaitable<void> {
    first = co_await fetch();
    second = co_await fetch(/*replayable=*/false);
  });
  EXPECT_EQ(first.body, "first");
  EXPECT_FALSE(second.ok);
  EXPECT_EQ(second.code, Errc::upstream_connect) << second.message;
  EXPECT_TRUE(second.request_sent);
  EXPECT_NE(second.message.find("after the request was sent"), std::string::npos)
      << second.message;
  EXPECT_EQ(server_->requests(), 2);
  EXPECT_EQ(server_->connections(), 1);
}

TEST_F(UpstreamCallTest, ReplayableRequestIsResentOnAFreshConnection) {
  serve(dies_on_second_request());
  Fetched first, second;
  run([&]() -> asio::awaitable<void> {
    first = co_await fetch();
    second = co_await fetch(/*replayable=*/true);
  });
  EXPECT_TRUE(second.ok) << second.message;
  EXPECT_EQ(second.body, "fresh");
  EXPECT_EQ(server_->requests(), 3);
  EXPECT_EQ(server_->connections(), 2);
}

// §1.5: a failure caused by cancel() says so.
TEST_F(UpstreamCallTest, CancelledCallIsReported) {
  Event got_request(io_);
  serve([&](Session& s) -> asio::awaitable<void> {
    if (!co_await s.read_request()) co_return;
    got_request.set();
    co_await s.read_request();  // never answers; ends when the client closes
  });
  bool ok = true, cancelled = false, cancelled_before = true;
  run([&]() -> asio::awaitable<void> {
    Call call(*pool_, origin_, timeouts_);
    cancelled_before = call.cancelled();
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          co_await got_request.wait();
          call.cancel();
        },
        asio::detached);
    std::array<asio::const_buffer, 1> wire{asio::buffer(kRequest)};
    auto started = co_await call.start(wire);
    ok = started.ok();
    cancelled = call.cancelled();
  });
  EXPECT_FALSE(cancelled_before);
  EXPECT_FALSE(ok);
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(pool_->idle_count(), 0u);
}

// §1.5: the worker's own connection cap is not an upstream failure.
TEST_F(UpstreamCallTest, LocalConnectionLimitIsDistinguishable) {
  PoolLimits limits;
  limits.max_connections_per_host = 1;
  serve(answer_each(response("x")), limits);
  bool first_ok = false, first_limit = true, second_limit = false;
  Errc second_code = Errc::internal;
  run([&]() -> asio::awaitable<void> {
    std::array<asio::const_buffer, 1> wire{asio::buffer(kRequest)};
    Call holder(*pool_, origin_, timeouts_);
    first_ok = (co_await holder.start(wire)).ok();
    first_limit = holder.local_limit();
    Call second(*pool_, origin_, timeouts_);
    auto r = co_await second.start(wire);
    if (!r) second_code = r.error().code;
    second_limit = second.local_limit();
  });
  EXPECT_TRUE(first_ok);
  EXPECT_FALSE(first_limit);
  EXPECT_EQ(second_code, Errc::unavailable);
  EXPECT_TRUE(second_limit);
}

TEST_F(UpstreamCallTest, RefusedConnectionIsNotALocalLimit) {
  serve(answer_each(response("x")));
  origin_.port = 1;  // nothing listens on port 1 of 127.0.0.1
  origin_.key = "http://127.0.0.1:1";
  bool ok = true, limit = true;
  run([&]() -> asio::awaitable<void> {
    Call call(*pool_, origin_, timeouts_);
    std::array<asio::const_buffer, 1> wire{asio::buffer(kRequest)};
    ok = (co_await call.start(wire)).ok();
    limit = call.local_limit();
  });
  EXPECT_FALSE(ok);
  EXPECT_FALSE(limit);
}

// §1.24: read_all's view stays valid after finish() until the Call is destroyed: when the
// connection is discarded (its buffer would be freed; ASan reports the read)...
TEST_F(UpstreamCallTest, ReadAllViewOutlivesFinishWhenTheConnectionIsDiscarded) {
  serve(answer_each(response("hello") + "JUNK"));
  std::string seen;
  run([&]() -> asio::awaitable<void> {
    Call call(*pool_, origin_, timeouts_);
    std::array<asio::const_buffer, 1> wire{asio::buffer(kRequest)};
    EXPECT_TRUE((co_await call.start(wire)).ok());
    auto body = co_await call.read_all(1024);
    EXPECT_TRUE(body.ok());
    if (!body) co_return;
    call.finish();
    seen = std::string(*body);
  });
  EXPECT_EQ(seen, "hello");
  EXPECT_EQ(pool_->idle_count(), 0u);
}

// ...and when it is pooled (the next exchange on it would overwrite the buffer).
TEST_F(UpstreamCallTest, ReadAllViewOutlivesFinishWhenTheConnectionIsPooled) {
  serve([](Session& s) -> asio::awaitable<void> {
    while (co_await s.read_request()) {
      co_await s.send(response(s.server->requests() == 1 ? "hello" : "WORLD"));
    }
  });
  std::string seen, other;
  run([&]() -> asio::awaitable<void> {
    Call call(*pool_, origin_, timeouts_);
    std::array<asio::const_buffer, 1> wire{asio::buffer(kRequest)};
    EXPECT_TRUE((co_await call.start(wire)).ok());
    auto body = co_await call.read_all(1024);
    EXPECT_TRUE(body.ok());
    if (!body) co_return;
    call.finish();
    Fetched next = co_await fetch();  // another exchange while the first Call still lives
    other = next.body;
    seen = std::string(*body);
  });
  EXPECT_EQ(other, "WORLD");
  EXPECT_EQ(seen, "hello");
  EXPECT_EQ(pool_->idle_count(), 2u);  // both connections pooled once their Calls ended
}

}  // namespace
}  // namespace sluice::upstream
