// The SSE relay's fast path, kept pure so it can be tested against SseParser: where events end
// in a byte stream (scanning only new bytes), how many content events a chunk of whole events
// holds, and whether a chunk may carry a usage object. SseParser stays the reference; these
// functions only avoid copying and re-parsing the common chunk.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::http {

/// Offset just past the last event boundary in `s` (0 if none). A boundary is the end of two
/// consecutive line terminators (LF, CR or CRLF), i.e. a blank line, where SseParser
/// dispatches. A CR at the very end is undecided (an LF may follow) and is not a boundary yet,
/// so events are never cut between CR and LF. Only positions >= `from` are examined: a caller
/// that appended bytes to a buffer already scanned passes its old size (O(new bytes)).
size_t last_event_boundary(std::string_view s, size_t from = 0);

/// Offset just past the first boundary at a position >= `from`, or 0 if none.
size_t first_event_boundary(std::string_view s, size_t from = 0);

/// True if `s` ends at an event boundary (O(1)).
bool ends_at_event_boundary(std::string_view s);

/// Content events in `chunk`, counted as SseParser would dispatch them: a blank line ends an
/// event that has a field (data, event, a NUL-free id, a numeric retry); comments and unknown
/// fields are not fields; an event whose data is exactly `[DONE]` is not content. `chunk` must
/// start at an event boundary other than the stream's start (a BOM there is not stripped);
/// an unterminated last line is ignored. Events are assumed within SseParser's size bound.
size_t count_sse_events(std::string_view chunk);

/// False only if every `"usage"` in `chunk` is followed by `:null` (blanks allowed), as in
/// OpenAI's include_usage chunks; otherwise the chunk may carry a usage object and needs the
/// full parser. Conservative: parse_usage() can only find usage in a chunk where this is true.
bool sse_may_carry_usage(std::string_view chunk);

/// Offset of the first `"usage"` in `chunk` that is not followed by `:null`, or npos:
/// sse_may_carry_usage() is true exactly when there is one. Events that end before it carry
/// no usage object.
size_t first_usage_candidate(std::string_view chunk);

/// The relay's buffer: bytes in, complete events out, never an event cut in two. Each event
/// (from one boundary to the next, or an unfinished tail) must fit in `max_event_bytes`;
/// given reads no larger than that bound the verdict does not depend on how reads are split.
class SseEventBuffer {
 public:
  explicit SseEventBuffer(size_t max_event_bytes) : max_event_bytes_(max_event_bytes) {}

  /// Takes the next bytes read. Returns the prefix that ends at the last boundary (whole
  /// events, ready to relay), or empty if there is none yet. When nothing is pending and
  /// `bytes` ends at a boundary the result is `bytes` itself (no copy); otherwise it views
  /// this buffer, valid until the next push(). Returns empty and sets too_large() when an
  /// event exceeds the bound.
  std::string_view push(std::string_view bytes);

  /// The unfinished tail (bytes after the last boundary), e.g. to forward at a clean end.
  std::string_view pending() const {
    return std::string_view(pending_).substr(ready_end_ != 0 ? ready_end_ : base_);
  }

  bool too_large() const { return too_large_; }

 private:
  // [context][relayed last time][pending tail]: up to 3 relayed bytes stay as context so a
  // boundary right after the last one is found without rescanning.
  std::string pending_;
  size_t base_ = 0;       // context bytes at the front of pending_
  size_t ready_end_ = 0;  // end of what push() returned from pending_ (0: nothing or no copy)
  size_t max_event_bytes_;
  bool too_large_ = false;
};

}  // namespace sluice::http
