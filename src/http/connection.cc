// Connection and Responder: request reading with limits and timeouts, keep-alive, pipelining,
// 100-continue, the head check, chunked request bodies, the body-memory budget, lingering close,
// the client watch, and the Responder writes (chunked, or close-delimited for HTTP/1.0).
#include "http/connection.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <random>

#include "http/deadline.h"
#include "http/parse/chunked.h"

namespace sluice::http {

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

// "<size in hex>\r\n" written into `out` (at least 19 bytes): once per relayed chunk, where
// snprintf's format parsing cost more than the rest of the framing.
std::string_view chunk_size_line(size_t size, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  char digits[16];
  size_t n = 0;
  do {
    digits[n++] = kHex[size & 15];
    size >>= 4;
  } while (size != 0);
  for (size_t i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
  out[n] = '\r';
  out[n + 1] = '\n';
  return std::string_view(out, n + 2);
}
constexpr size_t kInitialBuffer = 16 * 1024;
// A read needs room for kMinRead bytes; only then does the buffer grow (doubling, never past
// what the message can need): memory follows the bytes received (at most about twice them),
// not what Content-Length claims.
constexpr size_t kMinRead = 4096;
// Room for the undecoded tail of a chunked body (at most one read) beyond its payload.
constexpr size_t kReadStep = 64 * 1024;
// How long a response may take before the client socket is watched for a disconnect.
constexpr std::chrono::milliseconds kWatchDelay{20};
// Lingering close after an error sent before the request was read: stop sending, then read and
// discard what the client is still sending (bounded), so it reads our status instead of an RST.
constexpr std::chrono::milliseconds kLingerTime{2000};
constexpr size_t kLingerBytes = 4 * 1024 * 1024;

// Bytes of one connection's buffer above kInitialBuffer, counted against the process-wide
// ServerShared::buffered_bytes budget; released when resized down or destroyed.
class BufferBudget {
 public:
  BufferBudget(std::atomic<size_t>& pool, size_t limit) : pool_(pool), limit_(limit) {}
  ~BufferBudget() { resize(0); }
  BufferBudget(const BufferBudget&) = delete;
  BufferBudget& operator=(const BufferBudget&) = delete;

  /// Holds `bytes` from now on. False (holding what it held) when the budget cannot cover it.
  bool resize(size_t bytes) {
    if (bytes <= held_) {
      pool_.fetch_sub(held_ - bytes, std::memory_order_relaxed);
      held_ = bytes;
      return true;
    }
    // A compare-exchange, not add-then-undo: two connections growing at once must not both
    // see the other's transient addition and both fail when one of them fits.
    const size_t extra = bytes - held_;
    size_t cur = pool_.load(std::memory_order_relaxed);
    do {
      if (cur > limit_ || extra > limit_ - cur) return false;
    } while (!pool_.compare_exchange_weak(cur, cur + extra, std::memory_order_relaxed));
    held_ = bytes;
    return true;
  }

 private:
  std::atomic<size_t>& pool_;
  size_t limit_;
  size_t held_ = 0;
};

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// 32 hex characters: a per-thread random prefix and a counter. Unique and cheap.
void generate_request_id(char (&out)[33]) {
  static constexpr char kHex[] = "0123456789abcdef";
  thread_local uint64_t prefix = std::random_device{}() * 0x9E3779B97F4A7C15ull ^
                                 static_cast<uint64_t>(std::random_device{}());
  thread_local uint64_t counter = 0;
  uint64_t words[2] = {prefix, ++counter * 0xD6E8FEB86659FD93ull};
  for (int w = 0; w < 2; ++w) {
    for (int i = 0; i < 16; ++i) out[w * 16 + i] = kHex[(words[w] >> (60 - 4 * i)) & 15];
  }
  out[32] = 0;
}

}  // namespace

class Connection {
 public:
  Connection(Server& server, tcp::socket socket)
      : server_(server),
        socket_(std::move(socket)),
        deadline_(socket_.get_executor(), [this] { on_deadline(); }),
        watch_timer_(socket_.get_executor(), [this] {
          if (watching_ && !watch_pending_) start_watch_read();
        }),
        budget_(server.shared_.buffered_bytes, server.limits_.max_buffered_body_bytes) {
    server_.connections_.push_front(this);
    self_it_ = server_.connections_.begin();
  }

  ~Connection() {
    // A client watch may still be pending (the handler threw): its completion runs after the
    // socket is gone and must not touch this object.
    if (alive_) *alive_ = false;
    server_.connections_.erase(self_it_);
    server_.shared_.open_connections.fetch_sub(1, std::memory_order_relaxed);
  }

  asio::awaitable<void> run();

  // Called by Server::begin_drain: idle connections close now, busy ones after the response.
  void drain() {
    if (idle_) {
      boost::system::error_code ec;
      socket_.cancel(ec);
    }
  }

 private:
  friend class Responder;

  void on_deadline() {
    boost::system::error_code ec;
    socket_.cancel(ec);
  }

  // Grows buf_ to hold at least `needed` bytes: doubling, but never past `limit` (what the
  // current message can need at most) unless `needed` is larger. Once the message has shown
  // it needs a quarter of `limit`, the rest is taken in one step: two large uploads growing
  // side by side would otherwise each hold part of the budget and both be refused where one
  // fits. False (over_budget_ set) when the process-wide buffer budget cannot cover it.
  bool ensure_capacity(size_t needed, size_t limit = 0) {
    if (needed <= cap_) return true;
    size_t cap = std::min(cap_ * 2, limit);
    if (cap >= limit / 4) cap = limit;
    cap = std::max(needed, cap);
    if (!budget_.resize(cap > kInitialBuffer ? cap - kInitialBuffer : 0)) {
      over_budget_ = true;
      return false;
    }
    move_buffer(cap);
    return true;
  }

  // Moves what is buffered to a new buffer of `cap` bytes; the parsed head's views follow.
  void move_buffer(size_t cap) {
    std::unique_ptr<char[]> moved(new char[cap]);
    std::memcpy(moved.get(), buf_.get(), size_);
    rebase_request_head(head_, buf_.get(), size_, moved.get());
    buf_ = std::move(moved);
    cap_ = cap;
  }

  // Back to the initial buffer after a request that made it large (when what is left fits).
  void shrink_buffer() {
    if (!buf_ || cap_ <= kInitialBuffer || size_ + kBodyPadding > kInitialBuffer) return;
    move_buffer(kInitialBuffer);
    budget_.resize(0);
  }

  // A connection holds no buffer while it waits for a request (see wait_for_request).
  void allocate_buffer() {
    if (buf_) return;
    buf_.reset(new char[kInitialBuffer]);
    cap_ = kInitialBuffer;
  }

  // Waits for the next request without a read buffer, then takes what arrived in a buffer of
  // its size: an idle keep-alive connection holds only idle_buf_, and one whose response is
  // being produced (a held stream) only its request, not a 16 KiB buffer's first page. The
  // read is asio's usual one (speculative, then readiness): a wait for readiness instead would
  // cost an epoll_ctl each time, and a read into a buffer shared by the worker's connections
  // is unsafe (asio performs reads for several ready sockets before any completion runs).
  // False: EOF, error, deadline or drain.
  asio::awaitable<bool> wait_for_request() {
    buf_.reset();
    cap_ = 0;
    budget_.resize(0);
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(idle_buf_), use_nothrow);
    if (ec || n == 0) co_return false;
    // A full idle_buf_ means a larger request: room for the rest of it at once.
    const size_t cap = n < sizeof idle_buf_ ? n + kBodyPadding : kInitialBuffer;
    buf_.reset(new char[cap]);
    cap_ = cap;
    std::memcpy(buf_.get(), idle_buf_, n);
    size_ = n;
    co_return true;
  }

  // Reads at least one more byte into buf_ at size_. `limit` is the most buffer the current
  // message can need (head + body + padding); the buffer grows only when it is (nearly) full.
  // False on EOF, error, deadline or an exhausted budget (over_budget_).
  asio::awaitable<bool> read_more(size_t limit) {
    allocate_buffer();
    if (!ensure_capacity(size_ + kMinRead + kBodyPadding, limit)) co_return false;
    auto [ec, n] = co_await socket_.async_read_some(
        asio::buffer(buf_.get() + size_, cap_ - size_ - kBodyPadding), use_nothrow);
    if (ec) co_return false;
    size_ += n;
    co_return true;
  }

  // After an error sent before the request was read: stop sending, read and discard what the
  // client still sends (up to kLingerTime / kLingerBytes), so it sees the status, not an RST.
  asio::awaitable<void> linger() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) co_return;
    size_ = 0;
    allocate_buffer();
    shrink_buffer();  // what was buffered is dropped: give the budget back while lingering
    deadline_.expire_after(kLingerTime);
    size_t discarded = 0;
    while (discarded < kLingerBytes) {
      auto [rec, n] = co_await socket_.async_read_some(
          asio::buffer(buf_.get(), cap_ - kBodyPadding), use_nothrow);
      if (rec) break;
      discarded += n;
    }
    deadline_.clear();
  }

  // The error in the shape of the API the request's path belongs to.
  ErrorResponse render_error(const Error& error) const {
    const auto render = server_.limits_.render_error;
    return render ? render(error, head_.path) : to_response(error);
  }

  asio::awaitable<void> reply_over_budget() {
    Error e = make_error(Errc::unavailable,
                         "The server is buffering too many request bodies; retry shortly.");
    e.retry_after = std::chrono::seconds(1);
    co_await reply_error_and_close(e);
  }

  // The body stopped arriving: over the memory budget, too slow, or the client left (nothing
  // to say then).
  asio::awaitable<void> reply_body_failure() {
    if (over_budget_) {
      co_await reply_over_budget();
    } else if (deadline_.fired()) {
      const Error timeout = make_error(Errc::request_timeout, "Timed out reading the request body");
      co_await reply_error_and_close(timeout);
    }
  }

  asio::awaitable<bool> write_all(std::string_view a, std::string_view b = {},
                                  std::string_view c = {}) {
    std::array<asio::const_buffer, 3> bufs{asio::buffer(a.data(), a.size()),
                                          asio::buffer(b.data(), b.size()),
                                          asio::buffer(c.data(), c.size())};
    // A write must finish within the idle timeout: a client that stops reading does not pin us.
    deadline_.expire_after(server_.limits_.idle_timeout);
    auto [ec, n] = co_await asio::async_write(socket_, bufs, use_nothrow);
    deadline_.clear();
    if (ec) {
      write_failed_ = true;
      co_return false;
    }
    co_return true;
  }

  // Sends a complete error response (used before the request was read) and marks a
  // lingering close.
  asio::awaitable<void> reply_error_and_close(const Error& error) {
    count_rejection(error);
    ErrorResponse r = render_error(error);
    std::string extra;
    if (r.retry_after_seconds > 0) {
      extra = "Retry-After: " + std::to_string(r.retry_after_seconds) + "\r\n";
    }
    std::string head;
    render_head(head, r.status, "application/json", r.body.size(), true, extra);
    co_await write_all(head, r.body);
    close_ = true;
    linger_ = true;
  }

  void render_head(std::string& out, int status, std::string_view content_type,
                   int64_t content_length, bool close, std::string_view extra) {
    out.clear();
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += reason_phrase(status);
    out += "\r\nDate: ";
    out += http_date();
    if (!content_type.empty()) {
      out += "\r\nContent-Type: ";
      out += content_type;
    }
    if (content_length >= 0) {
      out += "\r\nContent-Length: ";
      out += std::to_string(content_length);
    } else if (!close_delimited_) {
      out += "\r\nTransfer-Encoding: chunked";
    }
    if (request_id_.empty()) {
      // An error before the request was parsed still gets an id to quote in a bug report.
      char id[33];
      generate_request_id(id);
      request_id_.assign(id, 32);
    }
    out += "\r\nx-request-id: ";
    out += request_id_;
    if (close) out += "\r\nConnection: close";
    out += "\r\n";
    out += added_headers_;
    out += extra;
    if (timing_.emit) append_server_timing(out, timing_, Timing::Clock::now());
    out += "\r\n";
  }

  bool should_close(const Responder& r) const {
    return close_ || r.close_after_ || !head_.keep_alive || server_.draining_ || write_failed_;
  }

  asio::awaitable<bool> read_body();

  // The client watch: while a response is produced, wait for the client socket to become
  // readable (no syscall: asio does not attempt a wait speculatively), then peek. EOF or an
  // error means the client left; bytes mean a pipelined request, which stays in the kernel
  // buffer for the next loop iteration (the watch ends: an active client is not leaving).
  void start_watch_read() {
    watch_pending_ = true;
    if (!alive_) alive_ = std::make_shared<bool>(true);
    socket_.async_wait(tcp::socket::wait_read, [this, alive = alive_](
                                                   const boost::system::error_code& ec) {
      if (!*alive) return;  // the Connection is gone
      watch_pending_ = false;
      if (!ec && watching_) {
        char probe;
        ssize_t n = ::recv(socket_.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
          start_watch_read();  // spurious wake-up
          return;
        }
        if (n <= 0) {
          client_gone_ = true;
          if (on_gone_) on_gone_();
        }
      }
      if (watch_waiter_) watch_waiter_->cancel();
    });
  }

  asio::awaitable<void> stop_watch() {
    watching_ = false;
    on_gone_ = nullptr;
    watch_timer_.clear();
    if (!watch_pending_) co_return;
    boost::system::error_code ec;
    socket_.cancel(ec);
    asio::steady_timer waiter(socket_.get_executor(),
                              std::chrono::steady_clock::time_point::max());
    watch_waiter_ = &waiter;
    while (watch_pending_) co_await waiter.async_wait(use_nothrow);
    watch_waiter_ = nullptr;
  }

  Server& server_;
  tcp::socket socket_;
  Deadline deadline_;
  Deadline watch_timer_;  // arms the client watch once a response has taken kWatchDelay
  BufferBudget budget_;   // buf_ bytes above kInitialBuffer
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t size_ = 0;
  size_t consumed_ = 0;        // bytes of buf_ taken by the current request (head + body)
  RequestHead head_;
  std::string_view body_;
  std::string request_id_;
  Timing timing_;
  std::string out_;            // response head scratch, reused
  std::string added_headers_;  // Responder::add_header lines for the current request
  char chunk_line_[24];
  char idle_buf_[512];         // where the next request's first bytes are read (wait_for_request)
  bool idle_ = false;
  bool close_ = false;
  bool linger_ = false;            // an early error was sent: lingering close
  bool over_budget_ = false;       // a buffer could not grow: the budget is spent
  bool close_delimited_ = false;   // streaming to an HTTP/1.0 client: no chunked framing
  bool write_failed_ = false;
  bool client_gone_ = false;
  bool watching_ = false;
  bool watch_pending_ = false;
  std::function<void()> on_gone_;
  asio::steady_timer* watch_waiter_ = nullptr;
  std::shared_ptr<bool> alive_;  // shared with a pending watch; false once destroyed
  std::list<Connection*>::iterator self_it_;
};

asio::awaitable<bool> Connection::read_body() {
  const ServerLimits& limits = server_.limits_;
  size_t head_size = head_.head_size;
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  if (head_.framing == BodyFraming::content_length) {
    if (head_.content_length > limits.max_body_bytes) {
      {
        const Error error = make_error(
          Errc::payload_too_large, "Request body of " + std::to_string(head_.content_length) +
                                       " bytes exceeds the limit of " +
                                       std::to_string(limits.max_body_bytes) + " bytes");
        co_await reply_error_and_close(error);
      }
      co_return false;
    }
    size_t need = head_size + head_.content_length;
    if (size_ < need) {
      if (head_.expect_continue) {
        if (!co_await write_all(kContinue)) co_return false;
      }
      deadline_.expire_after(limits.body_timeout);
      while (size_ < need) {
        if (!co_await read_more(need + kBodyPadding)) {
          co_await reply_body_failure();
          co_return false;
        }
      }
      deadline_.clear();
    }
    if (!ensure_capacity(need + kBodyPadding, need + kBodyPadding)) {
      co_await reply_over_budget();
      co_return false;
    }
    body_ = std::string_view(buf_.get() + head_size, head_.content_length);
    consumed_ = need;
    co_return true;
  }
  if (head_.framing == BodyFraming::chunked) {
    // Decode in place: payload is compacted to start right after the head. The raw tail after
    // the payload is at most one read's worth.
    const size_t limit = head_size + limits.max_body_bytes + kReadStep + kBodyPadding;
    ChunkedDecoder decoder;
    size_t payload_end = head_size;
    size_t raw_pos = head_size;
    bool sent_continue = false;
    deadline_.expire_after(limits.body_timeout);
    for (;;) {
      size_t payload_n = 0;
      size_t used = decoder.decode(buf_.get() + raw_pos, size_ - raw_pos, payload_n);
      std::memmove(buf_.get() + payload_end, buf_.get() + raw_pos, payload_n);
      payload_end += payload_n;
      raw_pos += used;
      if (decoder.failed()) {
        {
          const Error error = make_error(
            Errc::bad_request, std::string("Malformed chunked request body: ") +
                                   (decoder.error() ? decoder.error() : "invalid"));
          co_await reply_error_and_close(error);
        }
        co_return false;
      }
      if (payload_end - head_size > limits.max_body_bytes) {
        {
          const Error error = make_error(
            Errc::payload_too_large, "Request body exceeds the limit of " +
                                         std::to_string(limits.max_body_bytes) + " bytes");
          co_await reply_error_and_close(error);
        }
        co_return false;
      }
      if (decoder.done()) break;
      // Everything up to raw_pos is decoded; move the undecoded tail down to payload_end.
      std::memmove(buf_.get() + payload_end, buf_.get() + raw_pos, size_ - raw_pos);
      size_ = payload_end + (size_ - raw_pos);
      raw_pos = payload_end;
      if (head_.expect_continue && !sent_continue) {
        sent_continue = true;
        if (!co_await write_all(kContinue)) co_return false;
      }
      if (!co_await read_more(limit)) {
        co_await reply_body_failure();
        co_return false;
      }
    }
    deadline_.clear();
    // Pipelined bytes after the message move to just after the payload.
    size_t rest = size_ - raw_pos;
    std::memmove(buf_.get() + payload_end, buf_.get() + raw_pos, rest);
    size_ = payload_end + rest;
    if (!ensure_capacity(size_ + kBodyPadding, size_ + kBodyPadding)) {
      co_await reply_over_budget();
      co_return false;
    }
    body_ = std::string_view(buf_.get() + head_size, payload_end - head_size);
    consumed_ = payload_end;
    co_return true;
  }
  body_ = std::string_view(buf_.get() + head_size, 0);
  consumed_ = head_size;
  if (!ensure_capacity(head_size + kBodyPadding, head_size + kBodyPadding)) {
    co_await reply_over_budget();
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> Connection::run() {
  const ServerLimits& limits = server_.limits_;
  boost::system::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  for (;;) {
    // 1. Wait for a complete request head (idle timeout while nothing arrived, then the
    //    header timeout from the first byte: a slowloris client is cut off).
    if (size_ > 0) timing_.received = Timing::Clock::now();  // pipelined bytes already here
    ParseStatus st = size_ > 0 ? parse_request_head({buf_.get(), size_}, head_)
                               : ParseStatus::incomplete;
    if (st == ParseStatus::incomplete) {
      if (server_.draining_ && size_ == 0) break;
      idle_ = size_ == 0;
      deadline_.expire_after(size_ == 0 ? limits.idle_timeout : limits.header_timeout);
      if (size_ == 0) {
        if (co_await wait_for_request()) {
          timing_.received = Timing::Clock::now();
          idle_ = false;
          deadline_.expire_after(limits.header_timeout);
          st = parse_request_head({buf_.get(), size_}, head_);
        } else {
          close_ = true;  // nothing was started: the connection just ends
        }
      }
      while (!close_ && st == ParseStatus::incomplete) {
        if (size_ >= limits.max_header_bytes) {
          {
            const Error error = make_error(
              Errc::headers_too_large, "Request head exceeds the limit of " +
                                           std::to_string(limits.max_header_bytes) + " bytes");
            co_await reply_error_and_close(error);
          }
          break;
        }
        if (!co_await read_more(limits.max_header_bytes + kBodyPadding)) {
          if (over_budget_) {
            co_await reply_over_budget();
          } else if (deadline_.fired()) {
            const Error timeout =
                make_error(Errc::request_timeout, "Timed out reading the request head");
            co_await reply_error_and_close(timeout);
          }
          close_ = true;
          break;
        }
        st = parse_request_head({buf_.get(), size_}, head_);
      }
      idle_ = false;
      deadline_.clear();
      if (close_) break;
    }
    if (st == ParseStatus::error) {
      Error e = make_error(Errc::bad_request,
                           std::string("Malformed HTTP request: ") +
                               (head_.error ? head_.error : "invalid"));
      if (head_.error_status == 431) e.code = Errc::headers_too_large;
      if (head_.error_status == 501 || head_.error_status == 505) {
        e.code = Errc::bad_request;  // reported as 400 with the reason; never guessed further
      }
      co_await reply_error_and_close(e);
      break;
    }
    if (head_.head_size > limits.max_header_bytes) {
      {
        const Error error = make_error(
          Errc::headers_too_large, "Request head exceeds the limit of " +
                                       std::to_string(limits.max_header_bytes) + " bytes");
        co_await reply_error_and_close(error);
      }
      break;
    }
    // 2. Request id: the client's when it is sane, else a fresh one.
    std::string_view client_id = head_.header("x-request-id");
    if (valid_request_id(client_id)) {
      request_id_.assign(client_id);
    } else {
      char id[33];
      generate_request_id(id);
      request_id_.assign(id, 32);
    }
    Request request;
    request.head = &head_;
    request.timing = &timing_;
    request.request_id = request_id_;
    // 3. The head check (before any 100 Continue or body byte), the body, then the handler.
    std::optional<Error> refused;
    if (server_.head_check_) refused = server_.head_check_(request);
    if (refused) {
      // The body is never read; the connection ends with a lingering close.
      request.head_error = &*refused;
      body_ = std::string_view(buf_.get() + head_.head_size, 0);  // padding: cap_ >= size_ + 64
      close_ = true;
      linger_ = true;
    } else {
      if (!co_await read_body()) break;
    }
    timing_.handler = Timing::Clock::now();
    request.body = body_;
    Responder responder(*this);
    co_await server_.handler_(request, responder);
    if (responder.head_pending_ && !write_failed_) {
      // A stream begun but never written to nor ended: its head still goes out, and the
      // connection closes (the body was cut).
      responder.head_pending_ = false;
      close_ = true;
      co_await write_all(out_);
    }
    if (watching_ || watch_pending_) co_await stop_watch();
    if (!responder.responded_ && !write_failed_ && !client_gone_) {
      if (refused) {
        co_await responder.send_error(*refused);
      } else {
        {
          const Error error = make_error(Errc::internal, "Handler produced no response");
          co_await responder.send_error(error);
        }
      }
    }
    if (should_close(responder) || client_gone_) break;
    // 4. Keep-alive: drop this request's bytes, keep pipelined ones; give back a buffer the
    //    request made large.
    size_t rest = size_ - consumed_;
    if (rest > 0) std::memmove(buf_.get(), buf_.get() + consumed_, rest);
    size_ = rest;
    consumed_ = 0;
    shrink_buffer();
    request_id_.clear();
    added_headers_.clear();
    timing_ = Timing{};
  }
  deadline_.clear();
  if (linger_ && !write_failed_) co_await linger();
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  socket_.close(ignored);
}

// ---- Responder ----

asio::awaitable<bool> Responder::send(int status, std::string_view content_type,
                                      std::string_view body, std::string_view extra_headers) {
  responded_ = true;
  status_ = status;
  if (capture_ != nullptr) {
    capture_->status = status;
    capture_->headers += extra_headers;
    capture_->body.assign(body);
    co_return true;
  }
  Connection& c = *conn_;
  bool close = c.should_close(*this);
  c.render_head(c.out_, status, content_type, static_cast<int64_t>(body.size()), close,
                extra_headers);
  if (c.head_.method == "HEAD") body = {};
  co_return co_await c.write_all(c.out_, body);
}

asio::awaitable<bool> Responder::send_error(const Error& error) {
  ErrorResponse r = conn_ != nullptr ? conn_->render_error(error) : to_response(error);
  error_kind_ = sluice::error_kind(error);
  std::string extra;
  if (r.retry_after_seconds > 0) {
    extra = "Retry-After: " + std::to_string(r.retry_after_seconds) + "\r\n";
  }
  co_return co_await send(r.status, "application/json", r.body, extra);
}

asio::awaitable<bool> Responder::begin_stream(int status, std::string_view content_type,
                                              std::string_view extra_headers) {
  responded_ = true;
  streaming_ = true;
  status_ = status;
  if (capture_ != nullptr) {
    capture_->status = status;
    capture_->streamed = true;
    capture_->headers += extra_headers;
    co_return true;
  }
  Connection& c = *conn_;
  if (c.head_.version_minor == 0) {
    // RFC 9112 §6.1: no chunked coding for HTTP/1.0; the body ends when the connection does.
    c.close_delimited_ = true;
    close_after_ = true;
  }
  c.render_head(c.out_, status, content_type, -1, c.should_close(*this), extra_headers);
  head_pending_ = true;
  co_return !client_gone();
}

asio::awaitable<bool> Responder::write_chunk(std::string_view data, bool last) {
  if (stream_ended_) co_return false;
  if (capture_ != nullptr) {
    if (last) stream_ended_ = true;
    capture_->body += data;
    co_return true;
  }
  Connection& c = *conn_;
  if (data.empty() && !last) co_return true;  // an empty chunk would end the body
  if (last) stream_ended_ = true;
  // What goes before `data`: the pending head, and the chunk-size line.
  std::string_view before;
  if (!c.close_delimited_ && !data.empty()) {
    before = chunk_size_line(data.size(), c.chunk_line_);
  }
  if (head_pending_) {
    head_pending_ = false;
    c.out_ += before;
    before = c.out_;
  }
  std::string_view after;
  if (!c.close_delimited_) {
    after = !last ? std::string_view("\r\n")
                  : data.empty() ? std::string_view("0\r\n\r\n") : std::string_view("\r\n0\r\n\r\n");
  }
  if (before.empty() && data.empty() && after.empty()) co_return !client_gone();
  co_return co_await c.write_all(before, data, after);
}

asio::awaitable<bool> Responder::flush_head() {
  if (!head_pending_) co_return !client_gone();
  head_pending_ = false;
  co_return co_await conn_->write_all(conn_->out_);
}

asio::awaitable<bool> Responder::end_stream(bool close) {
  if (close) close_after_ = true;
  if (stream_ended_) co_return conn_ == nullptr || !conn_->write_failed_;
  co_return co_await write_chunk({}, true);
}

asio::awaitable<bool> Responder::write_raw(std::string_view bytes) {
  responded_ = true;
  if (capture_ != nullptr) {
    capture_->body += bytes;
    co_return true;
  }
  co_return co_await conn_->write_all(bytes);
}

void Responder::add_header(std::string_view name, std::string_view value) {
  std::string& h = capture_ != nullptr ? capture_->headers : conn_->added_headers_;
  h += name;
  h += ": ";
  h += value;
  h += "\r\n";
}

void Responder::abort(bool reset) {
  responded_ = true;
  if (capture_ != nullptr) return;
  Connection& c = *conn_;
  c.close_ = true;
  c.write_failed_ = true;
  boost::system::error_code ec;
  if (reset) c.socket_.set_option(asio::socket_base::linger(true, 0), ec);
  c.socket_.close(ec);
}

bool Responder::client_gone() const {
  return conn_ != nullptr && (conn_->client_gone_ || conn_->write_failed_);
}

void Responder::watch_client(std::function<void()> on_gone) {
  if (capture_ != nullptr) return;  // no client to lose
  Connection& c = *conn_;
  c.on_gone_ = std::move(on_gone);
  c.watching_ = true;
  // Most answers come back within a few milliseconds; arming the readiness wait costs an
  // epoll_ctl, so it starts only once the response has taken kWatchDelay (the lazy deadline
  // makes re-arming it per request free).
  if (!c.watch_pending_) c.watch_timer_.expire_after(kWatchDelay);
}

asio::awaitable<void> Responder::stop_watching() {
  if (conn_ != nullptr) co_await conn_->stop_watch();
}

// ---- Server hooks ----

void spawn_connection(Server& server, tcp::socket socket) {
  asio::any_io_executor ex = socket.get_executor();
  auto conn = std::make_unique<Connection>(server, std::move(socket));
  Connection* raw = conn.release();
  asio::co_spawn(ex, raw->run(), [raw](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("connection failed: {}", ex.what());
      }
    }
    delete raw;
  });
}

void drain_connection(Connection& c) { c.drain(); }

}  // namespace sluice::http
