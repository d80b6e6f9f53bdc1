// Server: SO_REUSEPORT acceptor and accept loop, graceful drain; the shared helpers (reason
// phrases, the cached Date, server-timing, rejection counters). Connections: connection.cc.
#include "http/server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <ctime>

#include "http/connection.h"
#include "observe/metrics.h"

namespace sluice::http {

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

}  // namespace

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
  }
}

std::string_view http_date() {
  thread_local time_t cached_second = 0;
  thread_local char buf[40];
  thread_local size_t len = 0;
  time_t now = time(nullptr);
  if (now != cached_second) {
    cached_second = now;
    struct tm tm;
    gmtime_r(&now, &tm);
    len = strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  }
  return {buf, len};
}

// One client connection. Owns its input buffer; requests and their bodies are views into it.

void count_rejection(const Error& error) {
  // Requests refused before a handler saw them (malformed, too large, too slow): cached per
  // error code, so a flood of bad requests never takes the registry lock.
  static std::array<std::atomic<observe::Cell>, 64> cells{};
  size_t i = static_cast<size_t>(error.code) % cells.size();
  observe::Cell c = cells[i].load(std::memory_order_relaxed);
  if (c == 0) {
    c = observe::Registry::instance().counter(
        "sluice_http_rejected_total",
        "Requests refused by the HTTP layer before routing (malformed, too large, too slow).",
        observe::label("reason", error_kind(error)));
    cells[i].store(c, std::memory_order_relaxed);
  }
  observe::add(c);
}

void append_server_timing(std::string& out, const Timing& t, Timing::Clock::time_point now) {
  using std::chrono::nanoseconds;
  int64_t parse = std::chrono::duration_cast<nanoseconds>(t.handler - t.received).count();
  int64_t total = std::chrono::duration_cast<nanoseconds>(now - t.received).count();
  if (t.received == Timing::Clock::time_point{}) parse = total = 0;
  // Milliseconds with three decimals, formatted with integers (this is on every response).
  auto phase = [&out](std::string_view name, int64_t ns, bool last) {
    int64_t us = std::max<int64_t>(0, ns) / 1000;
    out += name;
    out += ";dur=";
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, us / 1000);
    out.append(buf, end);
    char frac[4] = {'.', static_cast<char>('0' + us % 1000 / 100),
                    static_cast<char>('0' + us % 100 / 10), static_cast<char>('0' + us % 10)};
    out.append(frac, 4);
    out += last ? "\r\n" : ", ";
  };
  out += "server-timing: ";
  phase("parse", parse, false);
  phase("auth", t.auth_ns, false);
  phase("route", t.route_ns, false);
  phase("upstream", t.upstream_ns, false);
  phase("total", total, true);
}

// ---- Server ----

Server::Server(asio::io_context& io, ServerLimits limits, Handler handler, ServerShared& shared,
               HeadCheck head_check)
    : io_(io),
      limits_(limits),
      handler_(std::move(handler)),
      head_check_(std::move(head_check)),
      shared_(shared),
      acceptor_(io) {}

Server::~Server() = default;

void Server::listen(const std::string& host, uint16_t port, bool reuse_port) {
  tcp::endpoint ep(asio::ip::make_address(host), port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  int one = 1;
  if (reuse_port &&
      ::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    throw std::runtime_error("setsockopt(SO_REUSEPORT) failed");
  }
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(io_, accept_loop(), asio::detached);
}

asio::awaitable<void> Server::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      // EMFILE and friends: back off briefly instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer pause(io_, std::chrono::milliseconds(50));
      co_await pause.async_wait(use_nothrow);
      continue;
    }
    if (draining_) {
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    size_t open = shared_.open_connections.fetch_add(1, std::memory_order_relaxed) + 1;
    if (open > limits_.max_connections) {
      shared_.open_connections.fetch_sub(1, std::memory_order_relaxed);
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    spawn_connection(*this, std::move(socket));
  }
}

void Server::begin_drain() {
  draining_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (Connection* c : connections_) drain_connection(*c);
}

}  // namespace sluice::http
