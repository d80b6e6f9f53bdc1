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

namespace {
constexpr size_t kMaxGap = 64;
}  // namespace

void ResponseBuilder::add(const Event& e) {
  if (complete_ || failed()) return;  // nothing follows the end of a stream
  switch (e.kind) {
    case EventKind::message_start:
      if (!e.id.empty()) r_.id = e.id;
      if (!e.model.empty()) r_.model = e.model;
      if (e.usage.reported) {
        r_.usage = e.usage;
        r_.usage.output = 0;
        input_from_start_ = true;
      }
      break;
    case EventKind::block_start: {
      // Indices are dense and in order (canonical.h); a small gap is filled with empty text
      // blocks so that an index always names its block; a negative or absurd index is ignored
      // (it must not make the builder allocate without bound).
      if (e.index < 0 || static_cast<size_t>(e.index) > r_.content.size() + kMaxGap) break;
      while (r_.content.size() < static_cast<size_t>(e.index)) r_.content.emplace_back();
      Block b;
      b.kind = e.block;
      b.tool_id = e.tool_id;
      b.tool_name = e.tool_name;
      if (e.block == BlockKind::tool_use) b.tool_input.clear();
      if (e.block == BlockKind::redacted_thinking) b.data = e.text;
      if (static_cast<size_t>(e.index) < r_.content.size()) {
        r_.content[static_cast<size_t>(e.index)] = std::move(b);
      } else {
        r_.content.push_back(std::move(b));
      }
      break;
    }
    case EventKind::block_delta: {
      if (e.index < 0 || static_cast<size_t>(e.index) >= r_.content.size()) break;
      Block& b = r_.content[static_cast<size_t>(e.index)];
      switch (e.delta) {
        case DeltaKind::text:
        case DeltaKind::thinking: b.text += e.text; break;
        case DeltaKind::input_json: b.tool_input += e.text; break;
        case DeltaKind::signature: b.signature += e.text; break;
      }
      break;
    }
    case EventKind::block_stop:
      if (e.index >= 0 && static_cast<size_t>(e.index) < r_.content.size()) {
        Block& b = r_.content[static_cast<size_t>(e.index)];
        if (b.kind == BlockKind::tool_use && b.tool_input.empty()) b.tool_input = "{}";
      }
      break;
    case EventKind::message_delta:
      r_.stop_reason = e.stop_reason;
      r_.stop_sequence = e.stop_sequence;
      if (e.usage.reported) {
        Usage u = e.usage;
        if (input_from_start_ && u.input == 0 && u.cache_read == 0 && u.cache_creation == 0) {
          u.input = r_.usage.input;
          u.cache_read = r_.usage.cache_read;
          u.cache_creation = r_.usage.cache_creation;
        }
        r_.usage = u;
      }
      break;
    case EventKind::message_stop: complete_ = true; break;
    case EventKind::error:
      error_status_ = e.status > 0 ? e.status : 502;
      error_message_ = e.text;
      break;
  }
}

Response ResponseBuilder::take() {
  for (Block& b : r_.content) {
    if (b.kind == BlockKind::tool_use && b.tool_input.empty()) b.tool_input = "{}";
  }
  Response out = std::move(r_);
  r_ = Response();
  return out;
}

}  // namespace sluice::canonical
