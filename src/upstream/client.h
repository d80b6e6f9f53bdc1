// Upstream HTTP/1.1 client: per-worker keep-alive pools keyed by scheme://host:port, TLS with
// verification and SNI, a DNS cache with TTL, and the four timeouts (connect, first byte, idle
// between body reads, total). One UpstreamCall is one request/response exchange.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "config/config.h"
#include "http/parse/chunked.h"
#include "http/parse/http_head.h"

namespace sluice::upstream {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct PoolLimits {
  size_t max_idle_per_host = 64;
  std::chrono::milliseconds idle_timeout{60'000};
  size_t max_connections_per_host = 1024;
  std::chrono::milliseconds dns_ttl{30'000};
};

struct Origin {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string key;  // "https://host:port", the pool key
};

class Connection;

/// Per-worker pool of upstream connections and DNS cache. Not thread-safe by design: each
/// worker thread owns one, so the hot path takes no lock.
class Pool {
 public:
  Pool(asio::io_context& io, PoolLimits limits, std::shared_ptr<asio::ssl::context> tls);
  ~Pool();

  /// An idle connection to `origin`, or a new one (resolve + connect + TLS handshake) that
  /// must complete before `deadline`. An idle connection is reused only if it has nothing to
  /// read (a non-blocking MSG_PEEK says EAGAIN): EOF, stray bytes (a second response, a TLS
  /// close_notify) or an error close it. Errors: upstream_connect, upstream_timeout,
  /// unavailable (per-host connection limit: local, not the upstream's fault).
  asio::awaitable<Result<std::unique_ptr<Connection>>> acquire(const Origin& origin,
                                                               Clock::time_point deadline,
                                                               bool* reused);
  /// Returns a connection whose exchange finished cleanly; it is kept if the pool has room.
  void release(std::unique_ptr<Connection> conn);
  /// Drops a connection (broken or mid-message); it is closed.
  void discard(std::unique_ptr<Connection> conn);

  size_t idle_count() const;
  asio::io_context& io() { return io_; }

 private:
  struct HostPool {
    std::vector<std::unique_ptr<Connection>> idle;
    size_t open = 0;  // idle + in use
  };
  struct DnsEntry {
    std::vector<tcp::endpoint> endpoints;
    Clock::time_point expires;
  };
  asio::awaitable<Result<std::vector<tcp::endpoint>>> resolve(const Origin& origin,
                                                              Clock::time_point deadline);

  asio::io_context& io_;
  PoolLimits limits_;
  std::shared_ptr<asio::ssl::context> tls_;
  std::unordered_map<std::string, HostPool> hosts_;
  std::unordered_map<std::string, DnsEntry> dns_;
};

/// One request/response exchange. Usage: start() → head() → read_some()/read_all() until the
/// body ends → finish(). Destroying an unfinished call discards its connection (the upstream
/// sees the close: this is how a client disconnect cancels the upstream request).
class Call {
 public:
  /// `deadline` bounds the whole exchange on top of timeouts.total (the request's deadline).
  Call(Pool& pool, const Origin& origin, const config::Timeouts& timeouts,
       Clock::time_point deadline = Clock::time_point::max());
  ~Call();

  /// Connects (or reuses), writes `request` (head + body buffers) and reads the response head
  /// (interim 1xx responses are skipped; 101 is an upstream_protocol error). Idle pooled
  /// connections are checked before reuse (Pool::acquire). If a reused connection fails while
  /// the request is being written, the request was not processed and it is retried once on a
  /// fresh connection. If it closes after the request was written but before a response byte,
  /// the request is re-sent on a fresh connection only when `replayable` (e.g. the client sent
  /// an Idempotency-Key); otherwise the error is upstream_connect with request_sent() true.
  asio::awaitable<Result<void>> start(std::span<const asio::const_buffer> request,
                                      bool replayable = false);

  /// Response head; views are valid until the first read_some/read_all.
  const http::ResponseHead& head() const { return head_; }
  int status() const { return head_.status; }

  /// Next piece of decoded body; empty view = body complete. Views valid until the next
  /// read_some/read_all or finish().
  asio::awaitable<Result<std::string_view>> read_some();
  /// Whole body (bounded by `limit` bytes, else upstream_protocol). The view stays valid until
  /// the Call is destroyed, also after finish(): it may point into the connection's read
  /// buffer, which finish() then keeps (a pooled connection is handed back by ~Call).
  asio::awaitable<Result<std::string_view>> read_all(size_t limit);

  /// Settles the exchange: the connection goes back to the pool if the body was read
  /// completely, nothing else was buffered after it and the upstream allows keep-alive, else
  /// it is closed. If a read_all() view still points into its buffer, the pooled connection is
  /// handed back when the Call is destroyed instead (so the view stays valid).
  void finish();

  bool body_complete() const { return body_done_; }
  /// True once the request bytes were written: a failure after this may have been processed.
  bool request_sent() const { return request_sent_; }
  /// True when the failure was a timeout before the request was written (connect, TLS).
  bool failed_before_send() const { return !request_sent_; }

  /// Cancels pending I/O (the client left): the current operation fails and the connection
  /// is discarded rather than pooled.
  void cancel();
  /// True once cancel() was called: a failure is then the client's doing, not the upstream's.
  bool cancelled() const { return cancelled_; }
  /// True when start() failed because this worker's pool reached max_connections_per_host
  /// (Errc::unavailable): a local limit, not an upstream failure.
  bool local_limit() const { return local_limit_; }

 private:
  asio::awaitable<Result<void>> exchange(std::span<const asio::const_buffer> request,
                                         bool replayable, bool* retry_on_fresh);
  Error timeout_or(Errc code, std::string what);

  Pool& pool_;
  const Origin& origin_;
  config::Timeouts timeouts_;
  Clock::time_point total_deadline_;
  std::unique_ptr<Connection> conn_;
  http::ResponseHead head_;
  http::ChunkedDecoder chunked_;
  uint64_t body_remaining_ = 0;  // content_length framing
  size_t body_start_ = 0;        // offset in the connection buffer of undelivered body bytes
  bool body_done_ = false;
  bool head_parsed_ = false;
  bool cancelled_ = false;
  bool request_sent_ = false;
  bool local_limit_ = false;
  bool body_in_conn_ = false;    // a read_all view points into conn_'s buffer
  bool release_on_destroy_ = false;  // finish() found conn_ reusable; ~Call pools it
  std::string accumulated_;      // read_all when the body spans several reads
  std::unique_ptr<char[]> kept_buf_;  // a discarded connection's buffer, for read_all views
  const char* phase_ = "connect";
};

/// Builds the TLS client context: system trust store (plus `ca_file` if given), peer
/// verification on. Throws at startup if ca_file cannot be loaded.
std::shared_ptr<asio::ssl::context> make_tls_context(const std::string& ca_file);

/// Origin for a target's base URL fields.
Origin origin_of(const config::TargetConfig& target);

}  // namespace sluice::upstream
