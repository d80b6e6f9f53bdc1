// Upstream connections, the per-worker pool, DNS cache and the exchange state machine.
#include "upstream/client.h"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <tuple>
#include <vector>

#include "http/deadline.h"

namespace sluice::upstream {

namespace {
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunk = 16 * 1024;
// Interim (1xx) responses accepted before the final one; more is a broken or hostile upstream.
constexpr int kMaxInterimResponses = 8;
}  // namespace

// One upstream TCP (optionally TLS) connection with its read buffer and deadline.
class Connection {
 public:
  Connection(asio::io_context& io, const Origin& origin,
             const std::shared_ptr<asio::ssl::context>& tls)
      : key_(origin.key),
        socket_(io),
        deadline_(io.get_executor(), [this] { cancel(); }) {
    if (origin.tls) secure_.emplace(socket_, *tls);
  }
  ~Connection() {
    boost::system::error_code ec;
    socket_.close(ec);
  }

  void cancel() {
    boost::system::error_code ec;
    socket_.cancel(ec);
  }

  asio::awaitable<boost::system::error_code> handshake(const std::string& host) {
    SSL* ssl = secure_->native_handle();
    // SNI, and the name the certificate must match.
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    if (ec) SSL_set_tlsext_host_name(ssl, host.c_str());
    secure_->set_verify_callback(asio::ssl::host_name_verification(host));
    auto [hec] = co_await secure_->async_handshake(asio::ssl::stream_base::client, use_nothrow);
    co_return hec;
  }

  // Writes the request. Over plain TCP it is first handed to the kernel directly: a request
  // that fits the socket buffer (nearly all) leaves without an asio operation, its posted
  // completion and a suspension. (Waiting for the answer's readiness instead of asio's
  // speculative read would not save a syscall: asio re-arms the descriptor with epoll_ctl
  // for every wait.)
  asio::awaitable<std::tuple<boost::system::error_code, size_t>> write(
      std::span<const asio::const_buffer> bufs) {
    if (secure_) co_return co_await asio::async_write(*secure_, bufs, use_nothrow);
    size_t total = 0;
    std::array<iovec, 8> iov{};
    const size_t count = std::min(bufs.size(), iov.size());
    for (size_t i = 0; i < count; ++i) {
      iov[i].iov_base = const_cast<void*>(bufs[i].data());
      iov[i].iov_len = bufs[i].size();
      total += bufs[i].size();
    }
    size_t sent = 0;
    if (count == bufs.size()) {
      msghdr msg{};
      msg.msg_iov = iov.data();
      msg.msg_iovlen = count;
      ssize_t n = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        co_return std::tuple{boost::system::error_code(errno, asio::error::get_system_category()),
                             size_t{0}};
      }
      if (n > 0) sent = static_cast<size_t>(n);
      if (sent == total) co_return std::tuple{boost::system::error_code(), total};
    }
    // The rest (the socket buffer was full) the usual way.
    std::vector<asio::const_buffer> rest;
    size_t skip = sent;
    for (const asio::const_buffer& b : bufs) {
      if (skip >= b.size()) {
        skip -= b.size();
        continue;
      }
      rest.push_back(asio::buffer(static_cast<const char*>(b.data()) + skip, b.size() - skip));
      skip = 0;
    }
    auto [ec, n] = co_await asio::async_write(socket_, rest, use_nothrow);
    co_return std::tuple{ec, sent + n};
  }

  // Reads more bytes into the buffer tail.
  asio::awaitable<boost::system::error_code> read_more() {
    if (cap_ - size_ < kReadChunk / 2) {
      size_t cap = std::max(cap_ * 2, size_ + kReadChunk);
      std::unique_ptr<char[]> bigger(new char[cap]);
      if (size_) std::memcpy(bigger.get(), buf_.get(), size_);
      buf_ = std::move(bigger);
      cap_ = cap;
    }
    auto b = asio::buffer(buf_.get() + size_, cap_ - size_);
    boost::system::error_code ec;
    size_t n = 0;
    if (secure_) {
      std::tie(ec, n) = co_await secure_->async_read_some(b, use_nothrow);
    } else {
      std::tie(ec, n) = co_await socket_.async_read_some(b, use_nothrow);
    }
    size_ += n;
    if (n > 0) received_any_ = true;
    co_return ec;
  }

  void reset_buffer() {
    size_ = 0;
    received_any_ = false;
  }

  // An idle connection may be reused only if nothing arrived on it while it sat in the pool:
  // EAGAIN means quiet; EOF, bytes (a late second response, a TLS close_notify or alert) or
  // an error mean it must be closed. Never blocks.
  bool quiet() {
    if (secure_ && SSL_pending(secure_->native_handle()) > 0) return false;
    char byte;
    ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  std::string key_;
  tcp::socket socket_;
  std::optional<asio::ssl::stream<tcp::socket&>> secure_;
  http::Deadline deadline_;
  std::unique_ptr<char[]> buf_{new char[kReadChunk]};
  size_t cap_ = kReadChunk;
  size_t size_ = 0;
  bool received_any_ = false;
  Clock::time_point idle_since_{};
  uint64_t exchanges_ = 0;
};

// ---- TLS, origins ----

std::shared_ptr<asio::ssl::context> make_tls_context(const std::string& ca_file) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  ctx->set_default_verify_paths();
  if (!ca_file.empty()) ctx->load_verify_file(ca_file);
  ctx->set_verify_mode(asio::ssl::verify_peer);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  return ctx;
}

Origin origin_of(const config::TargetConfig& target) {
  Origin o;
  o.tls = target.tls;
  o.host = target.host;
  o.port = target.port;
  o.key = (o.tls ? "https://" : "http://") + o.host + ":" + std::to_string(o.port);
  return o;
}

// ---- Pool ----

Pool::Pool(asio::io_context& io, PoolLimits limits, std::shared_ptr<asio::ssl::context> tls)
    : io_(io), limits_(limits), tls_(std::move(tls)) {}

Pool::~Pool() = default;

size_t Pool::idle_count() const {
  size_t n = 0;
  for (auto& [k, h] : hosts_) n += h.idle.size();
  return n;
}

asio::awaitable<Result<std::vector<tcp::endpoint>>> Pool::resolve(const Origin& origin,
                                                                   Clock::time_point deadline) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(origin.host, ec);
  if (!ec) co_return std::vector<tcp::endpoint>{tcp::endpoint(addr, origin.port)};
  auto now = Clock::now();
  auto it = dns_.find(origin.key);
  if (it != dns_.end() && it->second.expires > now) co_return it->second.endpoints;
  tcp::resolver resolver(io_);
  // The resolver runs getaddrinfo on asio's internal thread; bound it by the connect deadline.
  http::Deadline guard(io_.get_executor(), [&resolver] { resolver.cancel(); });
  guard.expire_at(deadline);
  const std::string service = std::to_string(origin.port);  // no temporaries in co_await
  auto [rec, results] = co_await resolver.async_resolve(origin.host, service, use_nothrow);
  bool timed_out = guard.fired();
  guard.clear();
  if (rec || results.empty()) {
    if (timed_out) {
      co_return make_error(Errc::upstream_timeout, "DNS lookup of " + origin.host + " timed out");
    }
    co_return make_error(Errc::upstream_connect,
                         "Cannot resolve upstream host " + origin.host + ": " + rec.message());
  }
  std::vector<tcp::endpoint> eps;
  for (auto& r : results) eps.push_back(r.endpoint());
  dns_[origin.key] = DnsEntry{eps, now + limits_.dns_ttl};
  co_return eps;
}

asio::awaitable<Result<std::unique_ptr<Connection>>> Pool::acquire(const Origin& origin,
                                                                   Clock::time_point deadline,
                                                                   bool* reused) {
  HostPool& host = hosts_[origin.key];
  auto now = Clock::now();
  // Most recently used first (LIFO): it is the one least likely to have been closed.
  while (!host.idle.empty()) {
    std::unique_ptr<Connection> c = std::move(host.idle.back());
    host.idle.pop_back();
    if (now - c->idle_since_ < limits_.idle_timeout && c->quiet()) {
      *reused = true;
      co_return std::move(c);
    }
    host.open--;  // expired, closed by the upstream, or has stray bytes: closed here
  }
  *reused = false;
  if (host.open >= limits_.max_connections_per_host) {
    co_return make_error(Errc::unavailable,
                         "Upstream connection limit (" +
                             std::to_string(limits_.max_connections_per_host) + ") reached for " +
                             origin.key);
  }
  auto endpoints = co_await resolve(origin, deadline);
  if (!endpoints) co_return endpoints.error();
  auto conn = std::make_unique<Connection>(io_, origin, tls_);
  conn->deadline_.expire_at(deadline);
  auto [ec, ep] = co_await asio::async_connect(conn->socket_, *endpoints, use_nothrow);
  if (ec) {
    bool timed_out = conn->deadline_.fired();
    if (timed_out) {
      co_return make_error(Errc::upstream_timeout, "Timed out connecting to " + origin.key);
    }
    co_return make_error(Errc::upstream_connect,
                         "Cannot connect to upstream " + origin.key + ": " + ec.message());
  }
  boost::system::error_code ignored;
  conn->socket_.set_option(tcp::no_delay(true), ignored);
  if (origin.tls) {
    auto hec = co_await conn->handshake(origin.host);
    if (hec) {
      if (conn->deadline_.fired()) {
        co_return make_error(Errc::upstream_timeout,
                             "Timed out in the TLS handshake with " + origin.key);
      }
      co_return make_error(Errc::upstream_connect,
                           "TLS handshake with " + origin.key + " failed: " + hec.message());
    }
  }
  conn->deadline_.clear();
  host.open++;
  co_return std::move(conn);
}

void Pool::release(std::unique_ptr<Connection> conn) {
  HostPool& host = hosts_[conn->key_];
  if (host.idle.size() >= limits_.max_idle_per_host) {
    host.open--;
    return;  // closed by the destructor
  }
  conn->idle_since_ = Clock::now();
  conn->reset_buffer();
  host.idle.push_back(std::move(conn));
}

void Pool::discard(std::unique_ptr<Connection> conn) {
  if (!conn) return;
  auto it = hosts_.find(conn->key_);
  if (it != hosts_.end() && it->second.open > 0) it->second.open--;
}

// ---- Call ----

Call::Call(Pool& pool, const Origin& origin, const config::Timeouts& timeouts,
           Clock::time_point deadline)
    : pool_(pool), origin_(origin), timeouts_(timeouts) {
  total_deadline_ = std::min(deadline, Clock::now() + timeouts.total);
}

Call::~Call() {
  if (!conn_) return;
  if (release_on_destroy_) {
    pool_.release(std::move(conn_));
  } else {
    pool_.discard(std::move(conn_));
  }
}

Error Call::timeout_or(Errc code, std::string what) {
  if (conn_ && conn_->deadline_.fired()) {
    bool total = Clock::now() >= total_deadline_;
    std::string which = total ? "total" : phase_;
    return make_error(Errc::upstream_timeout,
                      "Upstream " + origin_.key + " timed out (" + which + " timeout)");
  }
  return make_error(code, std::move(what));
}

asio::awaitable<Result<void>> Call::start(std::span<const asio::const_buffer> request,
                                          bool replayable) {
  bool retry_on_fresh = false;
  auto r = co_await exchange(request, replayable, &retry_on_fresh);
  if (!r.ok() && retry_on_fresh && !cancelled_) {
    // The pooled connection failed before the upstream could have processed the request
    // (the write failed, or it closed with no byte back and the request is replayable).
    r = co_await exchange(request, replayable, nullptr);
  }
  co_return r;
}

asio::awaitable<Result<void>> Call::exchange(std::span<const asio::const_buffer> request,
                                             bool replayable, bool* retry_on_fresh) {
  if (conn_) pool_.discard(std::move(conn_));
  request_sent_ = false;
  head_parsed_ = false;
  body_done_ = false;
  body_in_conn_ = false;
  release_on_destroy_ = false;
  local_limit_ = false;
  phase_ = "connect";
  auto connect_deadline = std::min(total_deadline_, Clock::now() + timeouts_.connect);
  bool reused = false;
  auto acquired = co_await pool_.acquire(origin_, connect_deadline, &reused);
  if (!acquired) {
    local_limit_ = acquired.error().code == Errc::unavailable;
    co_return acquired.error();
  }
  if (!retry_on_fresh) reused = false;
  conn_ = std::move(acquired.value());
  conn_->reset_buffer();
  conn_->exchanges_++;

  phase_ = "first byte";
  conn_->deadline_.expire_at(std::min(total_deadline_, Clock::now() + timeouts_.first_byte));
  auto [wec, wn] = co_await conn_->write(request);
  if (!wec) request_sent_ = true;
  if (wec) {
    // Not all of the request reached the upstream, so it cannot have been processed.
    if (reused && !conn_->deadline_.fired() && !cancelled_) *retry_on_fresh = true;
    co_return timeout_or(Errc::upstream_connect,
                         "Failed to send the request to " + origin_.key + ": " + wec.message());
  }
  int interim = 0;
  bool buffered = false;  // bytes after an interim head still to parse before reading more
  for (;;) {
    boost::system::error_code rec;
    if (!buffered) rec = co_await conn_->read_more();
    buffered = false;
    if (conn_->size_ > 0) {
      auto st = http::parse_response_head({conn_->buf_.get(), conn_->size_}, head_);
      if (st == http::ParseStatus::complete) {
        if (head_.status == 101) {
          co_return make_error(Errc::upstream_protocol,
                               "Upstream " + origin_.key +
                                   " answered 101 Switching Protocols, which is not HTTP");
        }
        if (head_.status >= 100 && head_.status < 200) {
          // Interim response (100 Continue, 103 Early Hints): drop it; the final response
          // may already be buffered behind it.
          if (++interim > kMaxInterimResponses) {
            co_return make_error(Errc::upstream_protocol,
                                 "Upstream " + origin_.key + " sent more than " +
                                     std::to_string(kMaxInterimResponses) +
                                     " interim (1xx) responses");
          }
          size_t rest = conn_->size_ - head_.head_size;
          std::memmove(conn_->buf_.get(), conn_->buf_.get() + head_.head_size, rest);
          conn_->size_ = rest;
          buffered = rest > 0;
          continue;
        }
        break;
      }
      if (st == http::ParseStatus::error) {
        co_return make_error(Errc::upstream_protocol,
                             std::string("Upstream sent a malformed response head: ") +
                                 (head_.error ? head_.error : "invalid"));
      }
      if (conn_->size_ > 64 * 1024) {
        co_return make_error(Errc::upstream_protocol, "Upstream response head is too large");
      }
    }
    if (rec) {
      if (reused && !conn_->received_any_ && !conn_->deadline_.fired() && !cancelled_ &&
          rec != asio::error::operation_aborted) {
        // A reused connection closed with no byte back. The upstream may have closed it just
        // as we wrote (then it never saw the request) or may have processed the request and
        // died: only a replayable request is sent again.
        if (replayable) *retry_on_fresh = true;
        co_return make_error(Errc::upstream_connect,
                             "Upstream " + origin_.key +
                                 " closed a reused connection after the request was sent, "
                                 "before answering (" +
                                 rec.message() + ")");
      }
      co_return timeout_or(Errc::upstream_connect, "Upstream " + origin_.key +
                                                       " closed the connection before answering (" +
                                                       rec.message() + ")");
    }
  }
  head_parsed_ = true;
  body_start_ = head_.head_size;
  chunked_.reset();
  switch (head_.framing) {
    case http::BodyFraming::none:
      body_done_ = true;
      break;
    case http::BodyFraming::content_length:
      body_remaining_ = head_.content_length;
      body_done_ = body_remaining_ == 0;
      break;
    default:
      break;
  }
  co_return Result<void>{};
}

asio::awaitable<Result<std::string_view>> Call::read_some() {
  if (body_done_) co_return std::string_view{};
  phase_ = "stream idle";
  for (;;) {
    // Bytes already buffered after the head or from the last read.
    if (body_start_ < conn_->size_) {
      char* p = conn_->buf_.get() + body_start_;
      size_t avail = conn_->size_ - body_start_;
      if (head_.framing == http::BodyFraming::content_length) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(avail, body_remaining_));
        body_remaining_ -= n;
        body_start_ += n;
        if (body_remaining_ == 0) body_done_ = true;
        co_return std::string_view(p, n);
      }
      if (head_.framing == http::BodyFraming::chunked) {
        size_t payload = 0;
        size_t used = chunked_.decode(p, avail, payload);
        body_start_ += used;
        if (chunked_.failed()) {
          co_return make_error(Errc::upstream_protocol,
                               std::string("Upstream sent malformed chunked encoding: ") +
                                   (chunked_.error() ? chunked_.error() : "invalid"));
        }
        if (chunked_.done()) body_done_ = true;
        if (payload > 0 || body_done_) co_return std::string_view(p, payload);
        continue;  // only framing bytes so far
      }
      // until_close
      body_start_ += avail;
      co_return std::string_view(p, avail);
    }
    // Need more bytes: reuse the buffer from the start.
    conn_->size_ = 0;
    body_start_ = 0;
    conn_->deadline_.expire_at(std::min(total_deadline_, Clock::now() + timeouts_.stream_idle));
    auto ec = co_await conn_->read_more();
    if (conn_->size_ > 0) continue;
    if (ec == asio::error::eof && head_.framing == http::BodyFraming::until_close) {
      body_done_ = true;
      head_.keep_alive = false;
      co_return std::string_view{};
    }
    if (ec) {
      if (cancelled_ || (ec == asio::error::operation_aborted && !conn_->deadline_.fired())) {
        co_return make_error(Errc::internal, "Upstream read cancelled");
      }
      co_return timeout_or(Errc::upstream_protocol,
                           "Upstream " + origin_.key + " closed the connection mid-response (" +
                               ec.message() + ")");
    }
  }
}

asio::awaitable<Result<std::string_view>> Call::read_all(size_t limit) {
  phase_ = "first byte";
  // Fast path: the whole content-length body arrived with the head. No copy.
  if (head_.framing == http::BodyFraming::content_length &&
      conn_->size_ - body_start_ >= body_remaining_) {
    std::string_view v(conn_->buf_.get() + body_start_, body_remaining_);
    if (v.size() > limit) co_return make_error(Errc::upstream_protocol, "Upstream body too large");
    body_start_ += body_remaining_;
    body_remaining_ = 0;
    body_done_ = true;
    body_in_conn_ = true;  // finish() keeps the buffer alive for this view
    co_return v;
  }
  accumulated_.clear();
  for (;;) {
    auto piece = co_await read_some();
    if (!piece) co_return piece.error();
    if (piece->empty() && body_done_) break;
    if (accumulated_.size() + piece->size() > limit) {
      co_return make_error(Errc::upstream_protocol, "Upstream body exceeds " +
                                                         std::to_string(limit) + " bytes");
    }
    accumulated_.append(*piece);
    if (body_done_) break;
  }
  co_return std::string_view(accumulated_);
}

void Call::cancel() {
  cancelled_ = true;
  if (conn_) conn_->cancel();
}

void Call::finish() {
  if (!conn_ || release_on_destroy_) return;
  conn_->deadline_.clear();
  // Bytes buffered after the body (a second response, garbage) make the connection unusable.
  bool clean = head_parsed_ && body_done_ && head_.keep_alive && body_start_ == conn_->size_ &&
               !cancelled_;
  if (clean && body_in_conn_) {
    // A read_all view points into this connection's buffer: the next exchange on it would
    // overwrite the view, so it goes back to the pool when the Call is destroyed.
    release_on_destroy_ = true;
  } else if (clean) {
    pool_.release(std::move(conn_));
  } else {
    if (body_in_conn_) kept_buf_ = std::move(conn_->buf_);  // keeps the view valid
    pool_.discard(std::move(conn_));
  }
}

}  // namespace sluice::upstream
