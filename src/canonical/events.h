// Building canonical stream events: the small constructors every stream decoder uses, so the
// shape of each event is written once.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "canonical/canonical.h"

namespace sluice::canonical {

// (Each event is built in place: an Event is large, and a temporary moved in cost as much as
// the rest of a text delta's decoding.)
inline void emit_block_start(std::vector<Event>& out, int index, BlockKind kind,
                             std::string tool_id = {}, std::string tool_name = {}) {
  Event& e = out.emplace_back();
  e.kind = EventKind::block_start;
  e.index = index;
  e.block = kind;
  e.tool_id = std::move(tool_id);
  e.tool_name = std::move(tool_name);
}

inline void emit_delta(std::vector<Event>& out, int index, DeltaKind kind, std::string_view text) {
  Event& e = out.emplace_back();
  e.kind = EventKind::block_delta;
  e.index = index;
  e.delta = kind;
  e.text.assign(text);
}

inline void emit_block_stop(std::vector<Event>& out, int index) {
  Event& e = out.emplace_back();
  e.kind = EventKind::block_stop;
  e.index = index;
}

/// The end of a message: message_delta (stop reason, final usage) then message_stop.
inline void emit_message_end(std::vector<Event>& out, StopReason reason,
                             std::string stop_sequence, const Usage& usage) {
  Event& d = out.emplace_back();
  d.kind = EventKind::message_delta;
  d.stop_reason = reason;
  d.stop_sequence = std::move(stop_sequence);
  d.usage = usage;
  out.emplace_back().kind = EventKind::message_stop;
}

/// A whole answer as the canonical stream that would have carried it (a stream answered from
/// a unary upstream answer, or by the demo model).
std::vector<Event> events_of(const Response& r);

/// The inverse of events_of: assembles the whole answer a stream carried, as its events arrive
/// (a job's result, a cache entry, a session's assistant turn from a streamed answer).
/// Usage is merged as the stream reports it: input (and cache) counts from message_start unless
/// message_delta carries them, output from message_delta.
class ResponseBuilder {
 public:
  void add(const Event& e);
  void add(const std::vector<Event>& events) {
    for (const Event& e : events) add(e);
  }
  /// message_stop arrived (and no error before it).
  bool complete() const { return complete_; }
  /// An error event arrived: its status and message (the answer is incomplete).
  bool failed() const { return error_status_ != 0; }
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }
  /// The answer so far (blocks still open included); the builder is left empty.
  Response take();

 private:
  Response r_;
  bool complete_ = false;
  int error_status_ = 0;
  std::string error_message_;
  bool input_from_start_ = false;
};

}  // namespace sluice::canonical
