// RedisClient: one connection per client, a writer loop draining an output buffer, a reader loop
// feeding hiredis' RESP parser and completing waiting commands in order.
#include "store/redis_client.h"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <optional>

#include "store/redis_sync.h"  // convert_hiredis_reply

namespace sluice::store {
namespace {

using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::milliseconds kReconnectGap{500};

struct ReaderDeleter {
  void operator()(redisReader* r) const { redisReaderFree(r); }
};
using ReaderPtr = std::unique_ptr<redisReader, ReaderDeleter>;

void append_command(std::string& out, const std::vector<std::string>& args) {
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (const std::string& a : args) {
    out += '$';
    out += std::to_string(a.size());
    out += "\r\n";
    out += a;
    out += "\r\n";
  }
}

// One command waiting for its reply; `timer` doubles as the wake-up signal (cancelled on reply).
struct Pending {
  explicit Pending(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  std::optional<Result<RedisReply>> result;
};

}  // namespace

struct RedisClient::Impl {
  enum class State { idle, connecting, connected };

  Impl(asio::any_io_executor ex, std::string host, uint16_t port,
       std::chrono::milliseconds timeout)
      : ex_(std::move(ex)),
        host_(std::move(host)),
        port_(port),
        timeout_(timeout),
        address_(host_ + ":" + std::to_string(port_)),
        writer_wake_(ex_),
        reader_(redisReaderCreate()) {}

  ~Impl() {
    boost::system::error_code ignored;
    if (socket_) socket_->close(ignored);
  }

  std::string unreachable(const std::string& why) const {
    return "Redis at " + address_ + " is unreachable: " + why;
  }

  static void complete(const std::shared_ptr<Pending>& p, Result<RedisReply> r) {
    if (p->result) return;
    p->result.emplace(std::move(r));
    p->timer.cancel();
  }

  // Drops the connection of generation `gen` (if still current) and fails every waiting command.
  void fail(uint64_t gen, const std::string& message) {
    if (gen != generation_) return;
    ++generation_;
    state_ = State::idle;
    last_error_ = message;
    boost::system::error_code ignored;
    if (socket_) socket_->close(ignored);
    socket_.reset();
    out_.clear();
    reader_.reset(redisReaderCreate());
    std::deque<std::shared_ptr<Pending>> waiting;
    waiting.swap(waiting_);
    for (auto& p : waiting) complete(p, make_error(Errc::unavailable, message));
    writer_wake_.cancel();
  }

  static asio::awaitable<void> session(std::shared_ptr<Impl> self, uint64_t gen) {
    auto sock = std::make_shared<tcp::socket>(self->ex_);
    self->socket_ = sock;
    std::vector<tcp::endpoint> endpoints;
    boost::system::error_code aec;
    auto addr = asio::ip::make_address(self->host_, aec);
    if (!aec) {
      endpoints.emplace_back(addr, self->port_);
    } else {
      tcp::resolver resolver(self->ex_);
      const std::string service = std::to_string(self->port_);  // no temporaries in co_await
      auto [rec, results] = co_await resolver.async_resolve(self->host_, service, use_nothrow);
      if (gen != self->generation_) co_return;
      if (rec || results.empty()) {
        self->fail(gen, self->unreachable("cannot resolve: " + rec.message()));
        co_return;
      }
      for (auto& r : results) endpoints.push_back(r.endpoint());
    }
    auto fired = std::make_shared<bool>(false);
    asio::steady_timer guard(self->ex_);
    guard.expires_after(self->timeout_);
    guard.async_wait([sock, fired](boost::system::error_code ec) {
      if (ec) return;
      *fired = true;
      boost::system::error_code ignored;
      sock->close(ignored);
    });
    auto [ec, ep] = co_await asio::async_connect(*sock, endpoints, use_nothrow);
    guard.cancel();
    if (gen != self->generation_) co_return;
    if (ec) {
      self->fail(gen, self->unreachable(*fired ? "connect timed out" : ec.message()));
      co_return;
    }
    boost::system::error_code ignored;
    sock->set_option(tcp::no_delay(true), ignored);
    self->state_ = State::connected;
    asio::co_spawn(self->ex_, writer(self, gen, sock), asio::detached);
    co_await reader(self, gen, sock);
  }

  static asio::awaitable<void> writer(std::shared_ptr<Impl> self, uint64_t gen,
                                      std::shared_ptr<tcp::socket> sock) {
    std::string buf;
    while (gen == self->generation_) {
      if (self->out_.empty()) {
        self->writer_wake_.expires_at(asio::steady_timer::time_point::max());
        co_await self->writer_wake_.async_wait(use_nothrow);
        continue;
      }
      buf.clear();
      buf.swap(self->out_);
      auto [ec, n] = co_await asio::async_write(*sock, asio::buffer(buf), use_nothrow);
      if (gen != self->generation_) co_return;
      if (ec) {
        self->fail(gen, self->unreachable(ec.message()));
        co_return;
      }
    }
  }

  static asio::awaitable<void> reader(std::shared_ptr<Impl> self, uint64_t gen,
                                      std::shared_ptr<tcp::socket> sock) {
    std::array<char, 16 * 1024> buf;
    for (;;) {
      auto [ec, n] = co_await sock->async_read_some(asio::buffer(buf), use_nothrow);
      if (gen != self->generation_) co_return;
      if (ec) {
        self->fail(gen, self->unreachable(ec == asio::error::eof ? "connection closed by server"
                                                                 : ec.message()));
        co_return;
      }
      if (redisReaderFeed(self->reader_.get(), buf.data(), n) != REDIS_OK) {
        self->fail(gen, "Redis protocol error: " + std::string(self->reader_->errstr));
        co_return;
      }
      for (;;) {
        void* raw = nullptr;
        if (redisReaderGetReply(self->reader_.get(), &raw) != REDIS_OK) {
          self->fail(gen, "Redis protocol error: " + std::string(self->reader_->errstr));
          co_return;
        }
        if (raw == nullptr) break;
        RedisReply reply = convert_hiredis_reply(static_cast<redisReply*>(raw));
        freeReplyObject(raw);
        if (self->waiting_.empty()) {
          self->fail(gen, "Redis protocol error: reply without a command");
          co_return;
        }
        std::shared_ptr<Pending> p = std::move(self->waiting_.front());
        self->waiting_.pop_front();
        complete(p, std::move(reply));
      }
    }
  }

  asio::any_io_executor ex_;
  std::string host_;
  uint16_t port_;
  std::chrono::milliseconds timeout_;
  std::string address_;
  State state_ = State::idle;
  uint64_t generation_ = 0;                         // bumped per connection and per failure
  std::shared_ptr<tcp::socket> socket_;
  std::string out_;                                 // encoded commands not yet written
  asio::steady_timer writer_wake_;
  std::deque<std::shared_ptr<Pending>> waiting_;    // queued or sent, awaiting replies in order
  ReaderPtr reader_;
  std::optional<Clock::time_point> last_attempt_;  // last connect attempt
  std::string last_error_;
  bool closed_ = false;
};

RedisClient::RedisClient(asio::any_io_executor ex, std::string host, uint16_t port,
                         std::chrono::milliseconds timeout)
    : impl_(std::make_shared<Impl>(std::move(ex), std::move(host), port, timeout)) {}

RedisClient::~RedisClient() {
  impl_->closed_ = true;
  impl_->fail(impl_->generation_, "Redis client closed");
}

const std::string& RedisClient::address() const { return impl_->address_; }

asio::awaitable<Result<RedisReply>> RedisClient::command(std::vector<std::string> args) {
  std::shared_ptr<Impl> self = impl_;  // the coroutine outlives neither the reply nor the Impl
  if (self->closed_) co_return make_error(Errc::unavailable, "Redis client closed");
  if (self->state_ == Impl::State::idle) {
    auto now = Clock::now();
    if (self->last_attempt_ && now - *self->last_attempt_ < kReconnectGap) {
      co_return make_error(Errc::unavailable, self->last_error_.empty()
                                                  ? self->unreachable("reconnecting")
                                                  : self->last_error_);
    }
    self->last_attempt_ = now;
    self->state_ = Impl::State::connecting;
    uint64_t gen = ++self->generation_;
    asio::co_spawn(self->ex_, Impl::session(self, gen), asio::detached);
  }
  auto p = std::make_shared<Pending>(self->ex_);
  append_command(self->out_, args);
  self->waiting_.push_back(p);
  if (self->state_ == Impl::State::connected) self->writer_wake_.cancel();
  p->timer.expires_after(self->timeout_);
  while (!p->result) {
    auto [ec] = co_await p->timer.async_wait(use_nothrow);
    if (p->result) break;
    if (!ec) self->fail(self->generation_, "Redis timed out");  // completes p as well
  }
  co_return std::move(*p->result);
}

}  // namespace sluice::store
