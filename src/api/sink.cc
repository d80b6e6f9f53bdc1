// The response sinks: see sink.h.
#include "api/sink.h"

#include "api/proxy_util.h"

namespace sluice::api {

namespace asio = boost::asio;

HttpSink::HttpSink(http::Responder& responder, canonical::Protocol protocol,
                   const canonical::Request& request, bool validate, std::string_view request_id)
    : responder_(responder),
      protocol_(protocol),
      request_(request),
      check_(validate, protocol, request_id) {}

asio::awaitable<bool> HttpSink::send(std::string_view bytes, bool last) {
  check_.feed(bytes);
  co_return co_await responder_.write_chunk(bytes, last);
}

asio::awaitable<void> HttpSink::answer(const canonical::Response& r) {
  if (!request_.stream) {
    co_await responder_.send(200, "application/json",
                             canonical::encode_response(protocol_, r, request_));
    co_return;
  }
  // The client asked for a stream and the answer came whole: replay it as one.
  if (!co_await begin_stream()) co_return;
  const std::vector<canonical::Event> all = canonical::events_of(r);
  if (co_await events(all)) co_await end_stream();
}

asio::awaitable<bool> HttpSink::begin_stream() {
  encoder_ = canonical::stream_encoder(protocol_, request_);
  co_return co_await responder_.begin_stream(200, "text/event-stream", kStreamHeaders);
}

asio::awaitable<bool> HttpSink::events(const std::vector<canonical::Event>& events) {
  if (!encoder_) encoder_ = canonical::stream_encoder(protocol_, request_);  // (no begin_stream)
  out_.clear();
  out_.reserve(events.size() * 192);  // an encoded event is ~100-250 bytes: no regrowth

  for (const canonical::Event& e : events) {
    if (ended_) break;
    if (e.kind == canonical::EventKind::error) {
      encoder_->fail(e.status > 0 ? e.status : 502, e.text, out_);
      responder_.note_error("upstream_stream_error");
      ended_ = true;
      break;
    }
    encoder_->on_event(e, out_);
    if (e.kind == canonical::EventKind::message_stop) {
      encoder_->finish(out_);
      ended_ = true;
    }
  }
  if (out_.empty()) co_return !gone();
  const bool sent = co_await send(out_, ended_);
  if (out_.capacity() > 32 * 1024) std::string().swap(out_);  // held streams keep no big buffer
  co_return sent;
}

asio::awaitable<void> HttpSink::fail_stream(int status, std::string_view message) {
  if (ended_) co_return;
  ended_ = true;
  if (!encoder_) encoder_ = canonical::stream_encoder(protocol_, request_);
  out_.clear();
  encoder_->fail(status, message, out_);
  responder_.note_error(status == 504 ? "upstream_timeout" : "upstream_stream_error");
  co_await send(out_, true);
}

asio::awaitable<void> HttpSink::end_stream() { co_await responder_.end_stream(); }

asio::awaitable<void> CollectingSink::answer(const canonical::Response& r) {
  result_ = r;
  co_return;
}

asio::awaitable<bool> CollectingSink::begin_stream() { co_return true; }

asio::awaitable<bool> CollectingSink::events(const std::vector<canonical::Event>& events) {
  builder_.add(events);
  if (builder_.failed() && error_status_ == 0) {
    error_status_ = builder_.error_status();
    error_message_ = builder_.error_message();
  }
  co_return true;
}

asio::awaitable<void> CollectingSink::fail_stream(int status, std::string_view message) {
  if (error_status_ == 0) {
    error_status_ = status;
    error_message_ = std::string(message);
  }
  co_return;
}

asio::awaitable<void> CollectingSink::end_stream() {
  if (error_status_ == 0 && builder_.complete()) result_ = builder_.take();
  co_return;
}

}  // namespace sluice::api
