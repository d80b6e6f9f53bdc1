// Incremental Server-Sent Events parser (WHATWG HTML §9.2.6 event stream interpretation):
// bytes in, complete events out. Handles events split across reads, CRLF / CR / LF line
// endings, comments, multi-line `data:`, `event:`, `id:`, `retry:` and a leading BOM.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace sluice::http {

struct SseEvent {
  std::string_view event;  // "" when no `event:` field was given (means "message")
  std::string_view data;   // data lines joined with '\n' (no trailing newline)
  std::string_view id;     // last `id:` seen in this event, "" if none
  int retry_ms = -1;       // `retry:` value, -1 if none
};

class SseParser {
 public:
  /// Called once per complete event (a blank line ends an event that has at least one field).
  /// The views are valid only during the call.
  using Sink = std::function<void(const SseEvent&)>;

  /// Feeds the next bytes of the stream; calls `sink` for each event completed by them.
  /// Partial lines are buffered (bounded by `max_event_bytes`; past it, the event is dropped
  /// and overflowed() becomes true).
  void feed(std::string_view bytes, const Sink& sink);

  /// The stream's start was read elsewhere: no BOM is stripped from what is fed from now on.
  void past_start() { bom_checked_ = true; }

  /// True if any event was larger than max_event_bytes.
  bool overflowed() const { return overflowed_; }
  void set_max_event_bytes(size_t n) { max_event_bytes_ = n; }

  /// Bytes of an unfinished event still buffered (0 at a clean event boundary).
  size_t pending_bytes() const { return line_.size() + data_.size() + event_.size(); }

 private:
  void process_line(std::string_view line, const Sink& sink);
  // The event starting at the line [i, j) of p[0, n) (LF at j), when it is whole in these
  // bytes and of the common shape: dispatched, and the offset after it returned; else 0.
  size_t dispatch_whole(const char* p, size_t n, size_t i, size_t j, const Sink& sink);
  void dispatch(const Sink& sink);
  // Past max_event_bytes_: forget the event and skip to its end.
  void drop_oversized_event();

  std::string line_;     // partial line carried over between feeds
  std::string data_;
  std::string event_;
  std::string id_;
  int retry_ms_ = -1;
  bool has_fields_ = false;
  bool saw_cr_ = false;     // last byte fed was CR: a following LF belongs to it
  bool bom_checked_ = false;
  bool overflowed_ = false;
  bool skipping_ = false;   // dropping an oversized event until its blank line
  size_t max_event_bytes_ = 4 * 1024 * 1024;
};

}  // namespace sluice::http
