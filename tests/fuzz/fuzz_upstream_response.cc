// libFuzzer target for the upstream response reader (upstream::Call): head parse, interim
// (1xx) responses, content-length / chunked / close-delimited bodies and bytes after the body,
// fed from a scripted local socket in pieces whose split points come from the input.
//
// Input: [flags][n][n × 2-byte split offsets][response bytes]. flags bit 0: read the body with
// read_some (else read_all); bit 1: the request is replayable.
//
// Checks: a 1xx never surfaces as the final status; a content-length body that completes has
// exactly that length; read_all's view is unchanged after finish(); and a second exchange on
// the same pool always gets its own answer ("ok"), whatever the first connection carried after
// its response (stale bytes on a pooled connection must never be read as the next response).
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "upstream/client.h"

namespace {

namespace asio = boost::asio;
using sluice::upstream::Call;
using sluice::upstream::Origin;
using sluice::upstream::Pool;
using sluice::upstream::PoolLimits;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

const std::string kRequest = "GET /v1/models HTTP/1.1\r\nHost: upstream\r\n\r\n";
const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

struct Input {
  bool piecewise = false;
  bool replayable = false;
  std::vector<std::string_view> pieces;
};

Input decode(const uint8_t* data, size_t size) {
  Input in;
  if (size < 2) return in;
  in.piecewise = data[0] & 1;
  in.replayable = data[0] & 2;
  size_t n = data[1] % 8;
  size_t pos = 2;
  std::vector<size_t> cuts;
  for (size_t i = 0; i < n && pos + 2 <= size; ++i, pos += 2) {
    cuts.push_back(static_cast<size_t>(data[pos]) << 8 | data[pos + 1]);
  }
  std::string_view script(reinterpret_cast<const char*>(data) + pos, size - pos);
  for (auto& c : cuts) c = script.empty() ? 0 : c % script.size();
  cuts.push_back(script.size());
  std::sort(cuts.begin(), cuts.end());
  size_t from = 0;
  for (size_t c : cuts) {
    if (c > from) in.pieces.push_back(script.substr(from, c - from));
    from = std::max(from, c);
  }
  return in;
}

struct Shared {
  bool first_done = false;      // the client finished its first exchange
  bool script_written = false;  // the scripted connection wrote all it will write
  bool client_done = false;
};

asio::awaitable<void> yield_n(int n) {
  auto ex = co_await asio::this_coro::executor;
  for (int i = 0; i < n; ++i) co_await asio::post(ex, asio::use_awaitable);
}

asio::awaitable<bool> read_request(tcp::socket& s, std::string& buf) {
  auto [ec, n] = co_await asio::async_read_until(s, asio::dynamic_buffer(buf), "\r\n\r\n",
                                                 use_nothrow);
  if (ec) co_return false;
  buf.erase(0, n);
  co_return true;
}

// The first connection plays the script; any later request on any connection gets kOk.
asio::awaitable<void> session(tcp::socket s, bool scripted, const Input& in, Shared& shared) {
  std::string buf;
  if (scripted) {
    if (co_await read_request(s, buf)) {
      for (auto piece : in.pieces) {
        auto [ec, n] = co_await asio::async_write(s, asio::buffer(piece), use_nothrow);
        if (ec) break;
        co_await yield_n(4);  // let the client read this piece on its own
      }
      for (int i = 0; i < 64 && !shared.first_done; ++i) co_await yield_n(1);
      if (!shared.first_done) {
        // The client still waits for more (an incomplete or close-delimited message).
        boost::system::error_code ec;
        s.shutdown(tcp::socket::shutdown_send, ec);
      }
    }
    shared.script_written = true;
  }
  while (co_await read_request(s, buf)) {
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(kOk), use_nothrow);
    if (ec) break;
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, const Input& in, Shared& shared) {
  for (bool first = true;; first = false) {
    auto [ec, s] = co_await acceptor.async_accept(use_nothrow);
    if (ec) co_return;
    asio::co_spawn(acceptor.get_executor(), session(std::move(s), first, in, shared),
                   asio::detached);
  }
}

asio::awaitable<void> client(asio::io_context& io, Pool& pool, const Origin& origin,
                             const Input& in, Shared& shared, tcp::acceptor& acceptor) {
  sluice::config::Timeouts timeouts{2000ms, 5000ms, 5000ms, 8000ms};
  std::array<asio::const_buffer, 1> wire{asio::buffer(kRequest)};
  {
    Call call(pool, origin, timeouts);
    auto started = co_await call.start(wire, in.replayable);
    if (started) {
      CHECK(call.status() < 100 || call.status() >= 200);
      bool counted = call.head().framing == sluice::http::BodyFraming::content_length;
      uint64_t expected = call.head().content_length;
      if (in.piecewise) {
        uint64_t total = 0;
        for (;;) {
          auto piece = co_await call.read_some();
          if (!piece) break;
          total += piece->size();
          if (call.body_complete()) {
            if (counted) CHECK(total == expected);
            call.finish();
            break;
          }
        }
      } else {
        auto body = co_await call.read_all(1 << 20);
        if (body) {
          if (counted) CHECK(body->size() == expected);
          std::string copy(*body);
          call.finish();
          CHECK(*body == copy);  // the view outlives finish()
        }
      }
    }
  }
  shared.first_done = true;
  while (!shared.script_written) co_await yield_n(1);
  {
    // Whatever the first connection carried, this exchange gets its own answer.
    Call call(pool, origin, timeouts);
    auto started = co_await call.start(wire, in.replayable);
    CHECK(started.ok());
    CHECK(call.status() == 200);
    auto body = co_await call.read_all(1024);
    CHECK(body.ok() && *body == "ok");
    call.finish();
  }
  boost::system::error_code ec;
  acceptor.close(ec);
  shared.client_done = true;
  io.stop();  // run_for returns; the Pool is destroyed next, which ends the sessions
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in = decode(data, size);
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  uint16_t port = acceptor.local_endpoint().port();
  Origin origin{false, "127.0.0.1", port, "http://127.0.0.1:" + std::to_string(port)};
  Shared shared;
  {
    Pool pool(io, PoolLimits{}, nullptr);
    asio::co_spawn(io, accept_loop(acceptor, in, shared), asio::detached);
    asio::co_spawn(io, client(io, pool, origin, in, shared, acceptor), asio::detached);
    io.run_for(9s);  // the run's -timeout (10 s) would report a hang
    CHECK(shared.client_done);
  }
  io.restart();
  io.run();  // sessions end once the pool closed its connections
  return 0;
}
