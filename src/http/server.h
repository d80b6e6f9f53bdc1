// HTTP/1.1 server: one Server per worker thread, each with its own SO_REUSEPORT acceptor on the
// shared address. Connections are coroutines that parse requests in place (zero-copy heads,
// contiguous padded bodies), call the Handler, and write responses in one gathered write.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "http/parse/http_head.h"

namespace sluice::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

/// Readable bytes guaranteed after the end of every request body (simdjson needs 64).
inline constexpr size_t kBodyPadding = 64;

struct ServerLimits {
  size_t max_header_bytes = 64 * 1024;
  size_t max_body_bytes = 16 * 1024 * 1024;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{60'000};
  std::chrono::milliseconds idle_timeout{60'000};
  size_t max_connections = 20'000;
  /// Process-wide cap on connection buffer bytes above the initial 16 KiB each (request bodies
  /// being read): a request that would need more gets 503 (ServerShared::buffered_bytes).
  size_t max_buffered_body_bytes = 256 * 1024 * 1024;
  /// Renders every error response for a request path (the API's protocol decides the shape:
  /// OpenAI, Anthropic, Gemini). Null: to_response() (OpenAI's shape).
  ErrorResponse (*render_error)(const Error& error, std::string_view path) = nullptr;
};

/// Where one request's time went. The server stamps `received` (first byte of the head) and
/// `handler` (head and body read); the handler adds its phases. When `emit` is set, every
/// response head carries them as a `server-timing` header (parse, auth, route, upstream,
/// total; milliseconds).
struct Timing {
  using Clock = std::chrono::steady_clock;
  Clock::time_point received{};
  Clock::time_point handler{};
  int64_t auth_ns = 0;
  int64_t route_ns = 0;
  int64_t upstream_ns = 0;  // waiting on upstreams: connect, answer, stream reads, backoff, queue
  bool emit = false;

  /// Adds the time elapsed since `since` to one of the phases above.
  static void add_since(int64_t& phase_ns, Clock::time_point since) {
    phase_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - since).count();
  }
};

/// Counts a request the HTTP layer refused itself (sluice_http_rejected_total{reason}).
void count_rejection(const Error& error);

/// Appends `server-timing: parse;dur=…, auth;dur=…, route;dur=…, upstream;dur=…, total;dur=…`
/// (with CRLF) measured up to `now`.
void append_server_timing(std::string& out, const Timing& t, Timing::Clock::time_point now);

struct Request {
  const RequestHead* head = nullptr;
  Timing* timing = nullptr;     // never null for requests from the Server
  std::string_view body;        // followed by at least kBodyPadding readable bytes
  std::string_view request_id;  // client's x-request-id when valid, else generated
  /// Whatever the HeadCheck wants to hand to the handler (e.g. the authenticated caller).
  std::shared_ptr<void> head_state;
  /// Set when the HeadCheck refused the request: the body was not read (`body` is empty) and
  /// the handler must answer with this error (the server does if the handler sends nothing).
  const Error* head_error = nullptr;
  std::string_view method() const { return head->method; }
  std::string_view path() const { return head->path; }
  std::string_view header(std::string_view name) const { return head->header(name); }
};

class Connection;

/// The handler's way to answer. Exactly one of send()/send_error() or a stream
/// (begin_stream, write_chunk..., end_stream) per request. Every call suspends until written;
/// false means the client is gone (the handler should stop and clean up).
/// What a Responder without a connection keeps (a request the gateway makes to itself: a
/// session's memory extraction or summary, later a batch line): the status, the headers added,
/// and the body bytes as they would have been written (an SSE body, unchunked).
struct Captured {
  int status = 0;
  std::string headers;  // "Name: value\r\n" lines from add_header
  std::string body;
  bool streamed = false;
};

class Responder {
 public:
  explicit Responder(Connection& c) : conn_(&c) {}
  /// A responder that writes nowhere: everything sent lands in `into`. The client is never
  /// gone and watch_client() does nothing.
  explicit Responder(Captured& into) : capture_(&into) {}

  /// Whole response in one write. `extra_headers` are complete "Name: value\r\n" lines.
  asio::awaitable<bool> send(int status, std::string_view content_type, std::string_view body,
                             std::string_view extra_headers = {});
  /// An error in OpenAI's shape (status, body and Retry-After from to_response()).
  asio::awaitable<bool> send_error(const Error& error);

  /// Starts a chunked response. The head goes out with the first write_chunk() or
  /// end_stream(), in one write (one send fewer per stream); it is rendered now, so headers
  /// added later are not in it. To an HTTP/1.0 client the body is close-delimited instead: no
  /// Transfer-Encoding, raw writes, the connection closes at the end.
  asio::awaitable<bool> begin_stream(int status, std::string_view content_type,
                                     std::string_view extra_headers = {});
  /// Writes `data` as one chunk, flushed immediately (with the head if still pending). `last`
  /// ends the body in the same write (end_stream() is then a no-op).
  asio::awaitable<bool> write_chunk(std::string_view data, bool last = false);
  /// Ends the chunked body. After an abnormal end pass `close = true` to close the connection.
  asio::awaitable<bool> end_stream(bool close = false);
  /// Writes a pending stream head now (for a stream whose first bytes may take a while).
  asio::awaitable<bool> flush_head();

  /// Starts watching the client socket while the response is produced: if the client closes,
  /// client_gone() becomes true and `on_gone` runs once (it should cancel the upstream I/O).
  /// Bytes that arrive meanwhile (a pipelined request) end the watch and are left for the next
  /// request. The server stops the watch when the handler returns; stop_watching() does it
  /// earlier. One readiness wait, no coroutine; it is armed only once the response has taken
  /// 20 ms, so fast answers pay nothing and a slow one notices a gone client within 20 ms.
  void watch_client(std::function<void()> on_gone);
  /// Stops the watch and suspends until its pending read has completed.
  asio::awaitable<void> stop_watching();

  /// Adds a header line ("Name: value", no CRLF) to whatever response this request gets,
  /// errors included (e.g. x-sluice-attempts).
  void add_header(std::string_view name, std::string_view value);

  bool responded() const { return responded_; }
  bool streaming() const { return streaming_; }
  bool client_gone() const;
  int status() const { return status_; }
  /// The error_kind() of what send_error() sent, or of an error the handler reported with
  /// note_error() (e.g. a stream ended by an error event); empty when none.
  std::string_view error_kind() const { return error_kind_; }
  void note_error(std::string_view kind) { error_kind_ = kind; }
  /// Ask for the connection to be closed after this response.
  void close_after() { close_after_ = true; }
  /// Writes bytes as they are, bypassing HTTP framing (fault injection in sluice-mock only).
  asio::awaitable<bool> write_raw(std::string_view bytes);
  /// Closes the connection now, mid-response (fault injection in sluice-mock); `reset` sends
  /// a TCP RST instead of a FIN.
  void abort(bool reset = false);

 private:
  friend class Connection;
  Connection* conn_ = nullptr;
  Captured* capture_ = nullptr;  // set instead of conn_
  bool responded_ = false;
  bool streaming_ = false;
  bool head_pending_ = false;  // begin_stream rendered the head into the connection's out_
  bool stream_ended_ = false;
  bool close_after_ = false;
  int status_ = 0;
  std::string_view error_kind_;
};

using Handler = std::function<asio::awaitable<void>(Request&, Responder&)>;

/// Runs on the parsed head, before any `100 Continue` or body byte is read (e.g. to
/// authenticate). An error is answered without reading the body (the connection then closes
/// with a lingering close); it may leave state for the handler in Request::head_state.
using HeadCheck = std::function<std::optional<Error>(Request&)>;

/// Per-process connection accounting shared by all workers (max_connections, drain, the
/// buffered-body budget).
struct ServerShared {
  std::atomic<size_t> open_connections{0};
  std::atomic<bool> draining{false};
  std::atomic<size_t> buffered_bytes{0};  // connection buffer bytes above the initial size
};

class Server {
 public:
  Server(asio::io_context& io, ServerLimits limits, Handler handler, ServerShared& shared,
         HeadCheck head_check = {});
  ~Server();

  /// Binds with SO_REUSEPORT (so every worker may bind the same address) and starts accepting.
  /// Port 0 picks an ephemeral port; pass the port the first worker got to the others.
  /// `reuse_port = false`: an exclusive bind (a single-worker listener; EADDRINUSE if taken).
  void listen(const std::string& host, uint16_t port, bool reuse_port = true);
  uint16_t bound_port() const { return port_; }

  /// Stops accepting, closes idle keep-alive connections, and asks busy ones to close after
  /// their current response. Call on this server's io_context thread.
  void begin_drain();
  size_t connection_count() const { return connections_.size(); }

 private:
  friend class Connection;
  asio::awaitable<void> accept_loop();

  asio::io_context& io_;
  ServerLimits limits_;
  Handler handler_;
  HeadCheck head_check_;
  ServerShared& shared_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  bool draining_ = false;
  std::list<Connection*> connections_;
};

/// "Sat, 01 Jan 2026 00:00:00 GMT" for the current second, cached per thread.
std::string_view http_date();

/// Reason phrase for a status code ("OK", "Not Found", ...).
std::string_view reason_phrase(int status);

}  // namespace sluice::http
