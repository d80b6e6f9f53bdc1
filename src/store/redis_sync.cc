// RedisSync: hiredis' blocking API behind a mutex. A failed call drops the connection, so a
// reply can never be matched to the wrong command after a timeout.
#include "store/redis_sync.h"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>
#include <sys/time.h>

#include <utility>

namespace sluice::store {

namespace {

timeval to_timeval(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

}  // namespace

RedisReply convert_hiredis_reply(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      out.type = r->type == REDIS_REPLY_STRING   ? RedisReply::Type::string
                 : r->type == REDIS_REPLY_STATUS ? RedisReply::Type::status
                                                 : RedisReply::Type::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::array;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) {
        out.elements.push_back(convert_hiredis_reply(r->element[i]));
      }
      break;
    default:
      out.type = RedisReply::Type::nil;
  }
  return out;
}

RedisSync::RedisSync(std::string host, uint16_t port, std::chrono::milliseconds timeout,
                     std::string purpose)
    : host_(std::move(host)),
      port_(port),
      timeout_(timeout),
      purpose_(std::move(purpose)),
      address_((host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_) + ":" +
               std::to_string(port)) {}

RedisSync::~RedisSync() {
  std::lock_guard lock(mu_);
  disconnect_locked();
}

bool RedisSync::connect_locked(std::string& error) {
  if (context_ != nullptr) return true;
  redisContext* c = redisConnectWithTimeout(host_.c_str(), port_, to_timeval(timeout_));
  if (c == nullptr) {
    error = "cannot allocate a Redis context";
    return false;
  }
  if (c->err != 0 || redisSetTimeout(c, to_timeval(timeout_)) != REDIS_OK) {
    error = c->errstr[0] != '\0' ? c->errstr : "cannot connect";
    redisFree(c);
    return false;
  }
  context_ = c;
  return true;
}

void RedisSync::disconnect_locked() {
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
}

void RedisSync::note_locked(bool ok, const std::string& error) {
  if (ok) {
    if (down_) spdlog::info("{}: Redis at {} is reachable again", purpose_, address_);
    down_ = false;
    return;
  }
  // Once per outage: a background thread retrying every 250 ms must not flood the log.
  if (!down_) {
    spdlog::warn("{}: Redis at {} is unavailable ({}); retrying", purpose_, address_, error);
  }
  down_ = true;
}

Result<std::vector<RedisReply>> RedisSync::pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  std::lock_guard lock(mu_);
  std::string error;
  auto fail = [&](std::string what) -> Error {
    disconnect_locked();
    note_locked(false, what);
    return make_error(Errc::unavailable, "Redis at " + address_ + " is unavailable: " + what);
  };
  if (!connect_locked(error)) return fail(error);

  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& args : commands) {
    argv.clear();
    lengths.clear();
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      return fail(context_->errstr[0] != '\0' ? context_->errstr : "cannot queue a command");
    }
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
      // hiredis reports a read timeout as an I/O error (EAGAIN).
      return fail(context_->errstr[0] != '\0' ? context_->errstr : "no reply");
    }
    auto* reply = static_cast<redisReply*>(raw);
    replies.push_back(convert_hiredis_reply(reply));
    freeReplyObject(reply);
  }
  note_locked(true, {});
  return replies;
}

Result<RedisReply> RedisSync::command(const std::vector<std::string>& args) {
  auto replies = pipeline({args});
  if (!replies) return replies.error();
  return std::move(replies->front());
}

}  // namespace sluice::store
