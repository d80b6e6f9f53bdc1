// libFuzzer target for the server's connection loop (http/server.cc): a real Server on an
// io_context, fed the input over loopback TCP in pieces (pipelined requests, chunked bodies,
// Expect, slow splits), with a trivial handler (echoes the body length; "/stream" streams,
// "/watch" watches the client and then throws) and a HeadCheck that refuses "/deny". The
// connection must always end: no crash, leak (ASan) or hang (the step cap below).
//
// Input: byte 0 = number of split points (low 3 bits); then one byte per split point (a piece
// length); the rest is the byte stream the client sends, cut at those lengths, with a turn of
// the event loop between pieces. The client half-closes after the last piece and reads until
// the server closes.
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "http/server.h"

namespace {

namespace asio = boost::asio;
using sluice::http::Request;
using sluice::http::Responder;
using tcp = asio::ip::tcp;

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> handle(Request& req, Responder& resp) {
  if (req.head_error != nullptr) {
    co_await resp.send_error(*req.head_error);
    co_return;
  }
  if (req.path() == "/stream") {
    if (!co_await resp.begin_stream(200, "text/event-stream")) co_return;
    for (int i = 0; i < 3; ++i) {
      if (!co_await resp.write_chunk("data: x\n\n")) co_return;
    }
    co_await resp.end_stream();
    co_return;
  }
  if (req.path() == "/watch") {
    // Long enough for the client watch to be armed; then the handler fails with the watch
    // pending (the Connection is destroyed under it).
    resp.watch_client([] {});
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(25));
    co_await t.async_wait(use_nothrow);
    throw std::runtime_error("handler failed");
  }
  std::string body = "{\"length\":" + std::to_string(req.body.size()) + "}";
  co_await resp.send(200, "application/json", body);
}

struct Harness {
  asio::io_context io{1};
  sluice::http::ServerShared shared;
  std::unique_ptr<sluice::http::Server> server;
  uint16_t port = 0;

  Harness() {
    spdlog::set_level(spdlog::level::off);
    sluice::http::ServerLimits limits;
    limits.max_header_bytes = 8 * 1024;
    limits.max_body_bytes = 256 * 1024;
    limits.max_buffered_body_bytes = 128 * 1024;
    limits.header_timeout = std::chrono::milliseconds(2000);
    limits.body_timeout = std::chrono::milliseconds(2000);
    limits.idle_timeout = std::chrono::milliseconds(2000);
    server = std::make_unique<sluice::http::Server>(
        io, limits, handle, shared, [](Request& req) -> std::optional<sluice::Error> {
          if (req.path() == "/deny") {
            return sluice::make_error(sluice::Errc::unauthorized, "denied");
          }
          return std::nullopt;
        });
    server->listen("127.0.0.1", 0);
    port = server->bound_port();
  }
};

asio::awaitable<void> send_pieces(tcp::socket& s, const std::vector<std::string_view>& pieces,
                                  bool& sent) {
  for (std::string_view p : pieces) {
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(p.data(), p.size()), use_nothrow);
    if (ec) break;
    // Let the server see this piece on its own before the next one arrives.
    for (int i = 0; i < 4; ++i) co_await asio::post(co_await asio::this_coro::executor,
                                                    asio::use_awaitable);
  }
  boost::system::error_code ignored;
  s.shutdown(tcp::socket::shutdown_send, ignored);
  sent = true;
}

asio::awaitable<void> read_all(tcp::socket& s, bool& closed) {
  char buf[16 * 1024];
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_nothrow);
    if (ec) break;
  }
  closed = true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness* h = new Harness();  // one server for the whole run
  size_t pos = 0;
  size_t splits = size > 0 ? (data[pos++] & 7) : 0;
  std::vector<size_t> lengths;
  for (size_t i = 0; i < splits && pos < size; ++i) lengths.push_back(data[pos++] + 1);
  std::string_view stream(reinterpret_cast<const char*>(data) + pos, size - pos);
  std::vector<std::string_view> pieces;
  for (size_t len : lengths) {
    if (stream.empty()) break;
    size_t n = std::min(len, stream.size());
    pieces.push_back(stream.substr(0, n));
    stream.remove_prefix(n);
  }
  if (!stream.empty()) pieces.push_back(stream);

  // The client half-closes first, so its side of every connection goes through TIME_WAIT:
  // cycle through source addresses in 127.0.0.0/8 so long runs never run out of ports.
  static uint32_t next_source = 0;
  tcp::socket client(h->io);
  for (int attempt = 0;; ++attempt) {
    const uint32_t n = next_source++ % (1u << 16);
    const asio::ip::address_v4 source((127u << 24) | (1u << 16) | n);
    boost::system::error_code ec;
    client.close(ec);
    client.open(tcp::v4(), ec);
    if (!ec) client.bind(tcp::endpoint(source, 0), ec);
    if (!ec) client.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), h->port), ec);
    if (!ec) break;
    if (attempt == 100) abort();  // the harness cannot connect at all
  }
  bool sent = false;
  bool closed = false;
  asio::co_spawn(h->io, send_pieces(client, pieces, sent), asio::detached);
  asio::co_spawn(h->io, read_all(client, closed), asio::detached);
  // Until the server closed this connection and dropped it (timeouts are 2 s; 10 s is a hang).
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!(sent && closed && h->server->connection_count() == 0)) {
    h->io.run_one_for(std::chrono::milliseconds(50));
    if (std::chrono::steady_clock::now() > give_up) abort();
  }
  boost::system::error_code ignored;
  client.set_option(asio::socket_base::linger(true, 0), ignored);  // no TIME_WAIT pile-up
  client.close(ignored);
  // Nothing may stay buffered against the budget once the connection is gone.
  if (h->shared.buffered_bytes.load() != 0) abort();
  return 0;
}
