// Anthropic Messages API, client side: canonical stream events → Anthropic's SSE event sequence
// (message_start, content_block_start/delta/stop, message_delta, message_stop; `error`).
//
// Lossy: image and tool_result blocks in an answer have no Anthropic stream form and are
// dropped, with their deltas; a delta whose kind does not fit its block (a signature on a text
// block) is dropped. A redacted_thinking block's data is taken from its block_start's text.
#include "canonical/codec.h"
#include "canonical/json.h"
#include "canonical/tables.h"
#include "frontends/anthropic/blocks.h"

namespace sluice::canonical::anthropic {
namespace {

void append_event(std::string& out, std::string_view type, const json::object& data) {
  out += "event: ";
  out += type;
  out += "\ndata: ";
  out += json::serialize(data);
  out += "\n\n";
}

class AnthropicStreamEncoder final : public StreamEncoder {
 public:
  explicit AnthropicStreamEncoder(const Request& req) : model_(req.model) {}

  void on_event(const Event& e, std::string& out) override {
    if (closed_) return;
    switch (e.kind) {
      case EventKind::message_start:
        start(e, out);
        break;
      case EventKind::block_start:
        ensure_started(out);
        block_start(e, out);
        break;
      case EventKind::block_delta:
        block_delta(e, out);
        break;
      case EventKind::block_stop:
        if (open_ && e.index == canonical_index_) close_block(out);
        break;
      case EventKind::message_delta:
        ensure_started(out);
        close_block(out);
        message_delta(e.stop_reason, e.stop_sequence, e.usage, out);
        break;
      case EventKind::message_stop:
        ensure_started(out);
        close_block(out);
        // The SDK reads stop_reason from message_delta only: never end without one.
        if (!delta_sent_) message_delta(StopReason::end_turn, {}, Usage{}, out);
        out += "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        closed_ = true;
        break;
      case EventKind::error: {
        std::string_view type = e.error_type;
        if (!known_error_type(type)) type = error_row(e.status).anthropic_type;
        error(type, e.text, out);
        break;
      }
    }
  }

  void finish(std::string& /*out*/) override {}  // message_stop already ended the stream

  void fail(int status, std::string_view message, std::string& out) override {
    if (closed_) return;
    error(error_row(status).anthropic_type, message, out);
  }

 private:
  // message_start, once; a stream that begins with something else gets one first.
  void ensure_started(std::string& out) {
    if (!started_) start(Event{}, out);
  }

  // The events below are written directly (no JSON tree), byte-identical to serialising the
  // objects in the order Anthropic sends them: they are once per message or per block, but a
  // tree per event cost as much as the text deltas themselves.
  void start(const Event& e, std::string& out) {
    if (started_) return;
    started_ = true;
    out += "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"";
    append_json_escaped(out, e.id.empty() ? new_id("msg_") : e.id);
    out += "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"";
    append_json_escaped(out, !model_.empty() ? model_ : e.model);
    out += "\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{"
           "\"input_tokens\":";
    out += std::to_string(e.usage.input);
    out += ",\"output_tokens\":";
    out += std::to_string(e.usage.output);
    out += ",\"cache_creation_input_tokens\":";
    out += std::to_string(e.usage.cache_creation);
    out += ",\"cache_read_input_tokens\":";
    out += std::to_string(e.usage.cache_read);
    out += "}}}\n\n";
  }

  void block_start(const Event& e, std::string& out) {
    close_block(out);  // blocks never interleave; a missing stop is supplied
    if (e.block == BlockKind::image || e.block == BlockKind::tool_result) {
      return;  // no Anthropic answer form: dropped (lossy)
    }
    open_ = true;
    open_kind_ = e.block;
    canonical_index_ = e.index;
    out += "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":";
    out += std::to_string(next_index_);
    out += ",\"content_block\":{\"type\":";
    switch (e.block) {
      case BlockKind::text: out += "\"text\",\"text\":\"\""; break;
      case BlockKind::tool_use:
        out += "\"tool_use\",\"id\":\"";
        append_json_escaped(out, e.tool_id.empty() ? new_id("toolu_") : e.tool_id);
        out += "\",\"name\":\"";
        append_json_escaped(out, e.tool_name);
        out += "\",\"input\":{}";
        break;
      case BlockKind::thinking: out += "\"thinking\",\"thinking\":\"\",\"signature\":\"\""; break;
      case BlockKind::redacted_thinking:
        out += "\"redacted_thinking\",\"data\":\"";
        append_json_escaped(out, e.text);
        out += "\"";
        break;
      default: break;
    }
    out += "}}\n\n";
  }

  // The per-event hot path: written directly (no JSON tree), byte-identical to serialising
  // {"type":"content_block_delta","index":N,"delta":{"type":T,KEY:text}}.
  void block_delta(const Event& e, std::string& out) {
    if (!open_ || e.index != canonical_index_) return;  // its block was dropped or is closed
    std::string_view type, key;
    if (e.delta == DeltaKind::text && open_kind_ == BlockKind::text) {
      type = "text_delta", key = "text";
    } else if (e.delta == DeltaKind::input_json && open_kind_ == BlockKind::tool_use) {
      type = "input_json_delta", key = "partial_json";
    } else if (e.delta == DeltaKind::thinking && open_kind_ == BlockKind::thinking) {
      type = "thinking_delta", key = "thinking";
    } else if (e.delta == DeltaKind::signature && open_kind_ == BlockKind::thinking) {
      type = "signature_delta", key = "signature";
    } else {
      return;
    }
    if (delta_head_index_ != next_index_ || delta_head_kind_ != e.delta) {
      // Everything before the text: the same for every delta of the block.
      delta_head_index_ = next_index_;
      delta_head_kind_ = e.delta;
      delta_head_ = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":";
      delta_head_ += std::to_string(next_index_);
      delta_head_ += ",\"delta\":{\"type\":\"";
      delta_head_ += type;
      delta_head_ += "\",\"";
      delta_head_ += key;
      delta_head_ += "\":\"";
    }
    out += delta_head_;
    append_json_escaped(out, e.text);
    out += "\"}}\n\n";
  }

  void close_block(std::string& out) {
    if (!open_) return;
    open_ = false;
    out += "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":";
    out += std::to_string(next_index_);
    out += "}\n\n";
    ++next_index_;
  }

  void message_delta(StopReason reason, std::string_view stop_sequence, const Usage& u,
                     std::string& out) {
    delta_sent_ = true;
    out += "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"";
    append_json_escaped(out, stop_row(reason).anthropic);
    out += "\",\"stop_sequence\":";
    if (stop_sequence.empty()) {
      out += "null";
    } else {
      out += '"';
      append_json_escaped(out, stop_sequence);
      out += '"';
    }
    // The SDK overwrites message_start's counts with any present here: only real values.
    out += "},\"usage\":{\"output_tokens\":";
    out += std::to_string(u.output);
    if (u.input > 0) out += ",\"input_tokens\":" + std::to_string(u.input);
    if (u.cache_creation > 0) {
      out += ",\"cache_creation_input_tokens\":" + std::to_string(u.cache_creation);
    }
    if (u.cache_read > 0) out += ",\"cache_read_input_tokens\":" + std::to_string(u.cache_read);
    out += "}}\n\n";
  }

  void error(std::string_view type, std::string_view message, std::string& out) {
    json::object error;
    error["type"] = type;
    error["message"] = message;
    json::object data;
    data["type"] = "error";
    data["error"] = std::move(error);
    append_event(out, "error", data);
    closed_ = true;
  }

  std::string model_;
  bool started_ = false;
  bool delta_sent_ = false;
  bool closed_ = false;
  bool open_ = false;
  BlockKind open_kind_ = BlockKind::text;
  int canonical_index_ = -1;  // the open block's index in the canonical stream
  int next_index_ = 0;        // the open (or next) block's index in this stream
  std::string delta_head_;    // a content_block_delta event up to its text, for:
  int delta_head_index_ = -1;
  DeltaKind delta_head_kind_ = DeltaKind::text;
};

}  // namespace

std::unique_ptr<StreamEncoder> stream_encoder(const Request& req) {
  return std::make_unique<AnthropicStreamEncoder>(req);
}

}  // namespace sluice::canonical::anthropic
