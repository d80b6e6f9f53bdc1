// Sinks: where a canonical answer goes (ARCHITECTURE.md, "Sinks"). The translated path, the
// demo model and (later) local engines produce canonical results — a whole Response or a stream
// of Events — and hand them to a sink, which knows nothing of upstreams:
//   HttpSink       the HTTP/1 responder, in the client's protocol (today's only consumer);
//   CollectingSink assembles the whole answer (a job's result, a cache entry, a session turn).
// The same-protocol fast path is the exception: it relays upstream bytes to the responder
// without ever building canonical values (that is what makes it fast).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/stream_check.h"
#include "canonical/canonical.h"
#include "canonical/codec.h"
#include "canonical/events.h"
#include "http/server.h"

namespace sluice::api {

class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  /// A whole answer (a sink whose consumer asked for a stream replays it as one).
  virtual boost::asio::awaitable<void> answer(const canonical::Response& r) = 0;
  /// The stream begins. False when the consumer is gone.
  virtual boost::asio::awaitable<bool> begin_stream() = 0;
  /// The next events, in order. An error event or message_stop ends the stream (later events
  /// are ignored). False when the consumer is gone.
  virtual boost::asio::awaitable<bool> events(const std::vector<canonical::Event>& events) = 0;
  /// The stream failed after it began (the upstream broke): the consumer learns it.
  virtual boost::asio::awaitable<void> fail_stream(int status, std::string_view message) = 0;
  /// The stream is over (after message_stop, an error event or fail_stream).
  virtual boost::asio::awaitable<void> end_stream() = 0;
  /// The consumer went away; nothing more will be taken.
  virtual bool gone() const = 0;
  /// A stream that ended without its final event (a cut, not a protocol breach): the check
  /// of the stream's shape is not judged.
  virtual void abandon() {}
};

/// The HTTP/1 responder in the client's protocol: unary JSON or SSE, one gathered write per
/// events() call, errors as that protocol's error event. With `validate`, every byte sent goes
/// through the protocol's stream validator (metrics.validate_streams).
class HttpSink final : public ResponseSink {
 public:
  HttpSink(http::Responder& responder, canonical::Protocol protocol,
           const canonical::Request& request, bool validate, std::string_view request_id);
  boost::asio::awaitable<void> answer(const canonical::Response& r) override;
  boost::asio::awaitable<bool> begin_stream() override;
  boost::asio::awaitable<bool> events(const std::vector<canonical::Event>& events) override;
  boost::asio::awaitable<void> fail_stream(int status, std::string_view message) override;
  boost::asio::awaitable<void> end_stream() override;
  bool gone() const override { return responder_.client_gone(); }
  void abandon() override { check_.abandon(); }

 private:
  // `last`: the stream ends with these bytes (the end goes in the same write).
  boost::asio::awaitable<bool> send(std::string_view bytes, bool last = false);
  http::Responder& responder_;
  canonical::Protocol protocol_;
  const canonical::Request& request_;
  std::unique_ptr<canonical::StreamEncoder> encoder_;
  StreamCheck check_;
  std::string out_;
  bool ended_ = false;  // message_stop or an error was encoded
};

/// Collects the answer instead of sending it: whole answers as they are, streams assembled
/// (canonical::ResponseBuilder). For consumers that want the result, not the wire.
class CollectingSink final : public ResponseSink {
 public:
  boost::asio::awaitable<void> answer(const canonical::Response& r) override;
  boost::asio::awaitable<bool> begin_stream() override;
  boost::asio::awaitable<bool> events(const std::vector<canonical::Event>& events) override;
  boost::asio::awaitable<void> fail_stream(int status, std::string_view message) override;
  boost::asio::awaitable<void> end_stream() override;
  bool gone() const override { return false; }

  /// The answer once it is complete (an answer() or a stream that reached message_stop).
  std::optional<canonical::Response> result() const { return result_; }
  /// Why there is none: the stream's error (status, message), when it failed.
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

 private:
  canonical::ResponseBuilder builder_;
  std::optional<canonical::Response> result_;
  int error_status_ = 0;
  std::string error_message_;
};

}  // namespace sluice::api
