#include "canonical/events.h"

namespace sluice::canonical {

std::vector<Event> events_of(const Response& r) {
  std::vector<Event> out;
  Event start;
  start.kind = EventKind::message_start;
  start.id = r.id;
  start.model = r.model;
  start.usage = r.usage;
  start.usage.output = 0;
  out.push_back(std::move(start));
  int index = 0;
  for (const Block& b : r.content) {
    emit_block_start(out, index, b.kind, b.tool_id, b.tool_name);
    auto delta = [&](DeltaKind kind, const std::string& text) {
      if (!text.empty()) emit_delta(out, index, kind, text);
    };
    switch (b.kind) {
      case BlockKind::text: delta(DeltaKind::text, b.text); break;
      case BlockKind::tool_use: delta(DeltaKind::input_json, b.tool_input); break;
      case BlockKind::thinking:
        delta(DeltaKind::thinking, b.text);
        delta(DeltaKind::signature, b.signature);
        break;
      case BlockKind::redacted_thinking: out.back().text = b.data; break;  // on block_start
      default: break;
    }
    emit_block_stop(out, index++);
  }
  emit_message_end(out, r.stop_reason, r.stop_sequence, r.usage);
  return out;
}

}  // namespace sluice::canonical
