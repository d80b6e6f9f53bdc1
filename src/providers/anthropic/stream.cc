// Anthropic Messages API, upstream side: the SSE body of a streamed answer → canonical events,
// each forwarded as soon as its SSE event is complete.
//
// Lossy: blocks of types the canonical model lacks (server_tool_use, web_search_tool_result,
// ...) are dropped with their deltas (the following blocks are renumbered 0, 1, 2, ...);
// citations_delta is dropped; `ping` is ignored.
#include <algorithm>
#include <exception>
#include <optional>

#include "canonical/codec.h"
#include "canonical/events.h"
#include "canonical/json.h"
#include "canonical/ondemand.h"
#include "canonical/skeleton.h"
#include "frontends/anthropic/blocks.h"
#include "http/parse/sse_parser.h"

namespace sluice::canonical::anthropic {
namespace {

int status_for_error_type(std::string_view type) {
  if (type == "overloaded_error") return 529;
  if (type == "api_error") return 500;
  if (type == "rate_limit_error") return 429;
  if (type == "invalid_request_error") return 400;
  if (type == "authentication_error") return 401;
  if (type == "permission_error") return 403;
  if (type == "not_found_error") return 404;
  if (type == "request_too_large") return 413;
  if (type == "timeout_error") return 504;
  return 502;
}

// Overwrites the counts the upstream reported in `usage` (message_delta counts are cumulative).
void merge_usage(const json::object& usage, Usage& into) {
  auto take = [&usage](std::string_view key, int64_t& field_ref) {
    if (auto v = integer(usage, key)) field_ref = std::max<int64_t>(0, *v);
  };
  take("input_tokens", into.input);
  take("output_tokens", into.output);
  take("cache_read_input_tokens", into.cache_read);
  take("cache_creation_input_tokens", into.cache_creation);
  into.reported = true;
}

class AnthropicStreamDecoder final : public StreamDecoder {
 public:
  explicit AnthropicStreamDecoder(bool fast) : fast_(fast) {}
  size_t fast_events() const override { return fast_events_; }
  size_t skeleton_events() const override { return skeleton_events_; }
  void feed(std::string_view bytes, std::vector<Event>& out) override {
    if (done_) return;
    try {
      parser_.feed(bytes, [this, &out](const http::SseEvent& e) { on_sse(e, out); });
      if (parser_.overflowed()) fail(502, "api_error", "upstream stream event too large", out);
    } catch (const std::exception& ex) {
      fail(502, "api_error", std::string("upstream stream unreadable: ") + ex.what(), out);
    }
  }

  void finish(std::vector<Event>& out) override {
    if (done_) return;
    fail(502, "api_error", "upstream stream ended early", out);
  }

 private:
  void on_sse(const http::SseEvent& sse, std::vector<Event>& out) {
    if (done_) return;
    if (fast_ && sse.event == "content_block_delta") {
      // The delta before with another text: what fast_delta would do with it, unparsed.
      if (const std::optional<std::string_view> text = skeleton_.match(sse.data)) {
        if (open_ && skeleton_index_ == wire_index_) delta(skeleton_kind_, *text, out);
        ++fast_events_;
        ++skeleton_events_;
        return;
      }
      if (fast_delta(sse.data, out)) return;
    }
    if (fast_ && exact_event(sse.data, out)) return;
    boost::system::error_code ec;
    ChunkArena arena;
    const json::value v = json::parse(sse.data, ec, arena.storage());
    const json::object* o = ec ? nullptr : v.if_object();
    if (!o) {
      fail(502, "api_error", "upstream sent a stream event that is not a JSON object", out);
      return;
    }
    // The data's own type is authoritative (the `event:` line repeats it).
    std::string_view type = str(*o, "type");
    if (type.empty()) type = sse.event;
    if (type == "message_start") {
      message_start(obj(*o, "message"), out);
    } else if (type == "content_block_start") {
      block_start(*o, out);
    } else if (type == "content_block_delta") {
      block_delta(*o, out);
    } else if (type == "content_block_stop") {
      if (integer(*o, "index") == wire_index_ && open_) close_block(out);
    } else if (type == "message_delta") {
      if (const json::object* delta = obj(*o, "delta")) {
        if (field(*delta, "stop_reason")) stop_reason_ = stop_from_wire(str(*delta, "stop_reason"));
        stop_sequence_ = std::string(str(*delta, "stop_sequence"));
      }
      if (const json::object* usage = obj(*o, "usage")) merge_usage(*usage, usage_);
    } else if (type == "message_stop") {
      message_stop(out);
    } else if (type == "error") {
      const json::object* error = obj(*o, "error");
      const std::string_view error_type = error ? str(*error, "type") : std::string_view{};
      std::string message(error ? str(*error, "message") : std::string_view{});
      if (message.empty()) message = "upstream stream error";
      fail(status_for_error_type(error_type),
           known_error_type(error_type) ? error_type : std::string_view("api_error"), message, out);
    }
    // ping and event types added later by Anthropic: ignored
  }

  // The small events Anthropic sends byte for byte the same in every stream (ping,
  // content_block_stop, message_stop, and content_block_start of a text block), recognised by
  // their exact bytes: what the DOM way below does with them, without parsing. Anything else,
  // spacing included, goes that way.
  bool exact_event(std::string_view data, std::vector<Event>& out) {
    if (data == R"({"type":"ping"})") {
      ++fast_events_;
      return true;
    }
    if (data == R"({"type":"message_stop"})") {
      ++fast_events_;
      message_stop(out);
      return true;
    }
    if (const std::optional<int64_t> index =
            exact_index(data, R"({"type":"content_block_stop","index":)", "}")) {
      ++fast_events_;
      if (*index == wire_index_ && open_) close_block(out);
      return true;
    }
    if (const std::optional<int64_t> index =
            exact_index(data, R"({"type":"content_block_start","index":)",
                        R"(,"content_block":{"type":"text","text":""}})")) {
      ++fast_events_;
      // block_start for an empty text block.
      message_start(nullptr, out);
      close_block(out);
      emit_block_start(out, next_index_, BlockKind::text);
      open_ = true;
      wire_index_ = *index;
      return true;
    }
    return false;
  }

  // The index of `data` when it is `head`, one to nine digits (no leading zero, as JSON's
  // grammar has it), then `tail`.
  static std::optional<int64_t> exact_index(std::string_view data, std::string_view head,
                                            std::string_view tail) {
    const size_t fixed = head.size() + tail.size();
    if (data.size() <= fixed || data.size() > fixed + 9 || !data.starts_with(head) ||
        !data.ends_with(tail)) {
      return std::nullopt;
    }
    const std::string_view digits = data.substr(head.size(), data.size() - fixed);
    if (digits[0] == '0' && digits.size() > 1) return std::nullopt;
    int64_t index = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      index = index * 10 + (c - '0');
    }
    return index;
  }

  void message_stop(std::vector<Event>& out) {
    message_start(nullptr, out);
    close_block(out);
    emit_message_end(out, stop_reason_, stop_sequence_, usage_);
    done_ = true;
  }

  void message_start(const json::object* message, std::vector<Event>& out) {
    if (started_) return;
    started_ = true;
    Event e;
    e.kind = EventKind::message_start;
    if (message) {
      e.id = std::string(str(*message, "id"));
      e.model = std::string(str(*message, "model"));
      if (const json::object* usage = obj(*message, "usage")) merge_usage(*usage, usage_);
    }
    e.usage = usage_;
    out.push_back(std::move(e));
  }

  void block_start(const json::object& o, std::vector<Event>& out) {
    message_start(nullptr, out);
    close_block(out);
    const json::object* block = obj(o, "content_block");
    const std::string_view type = block ? str(*block, "type") : std::string_view{};
    Event e;
    e.kind = EventKind::block_start;
    e.index = next_index_;
    if (type == "text") {
      e.block = BlockKind::text;
    } else if (type == "tool_use") {
      e.block = BlockKind::tool_use;
      e.tool_id = std::string(str(*block, "id"));
      e.tool_name = std::string(str(*block, "name"));
    } else if (type == "thinking") {
      e.block = BlockKind::thinking;
    } else if (type == "redacted_thinking") {
      e.block = BlockKind::redacted_thinking;
      e.text = std::string(str(*block, "data"));  // the canonical carrier for its data
    } else {
      return;  // a block the model lacks: it and its deltas are dropped
    }
    open_ = true;
    wire_index_ = integer(o, "index").value_or(-1);
    out.push_back(std::move(e));
    // Content given at the start already (Anthropic sends it empty; compatible servers may not).
    if (type == "text" && !str(*block, "text").empty()) {
      delta(DeltaKind::text, str(*block, "text"), out);
    } else if (type == "tool_use") {
      const json::object* input = obj(*block, "input");
      if (input && !input->empty()) delta(DeltaKind::input_json, to_text(*input), out);
    } else if (type == "thinking") {
      if (!str(*block, "thinking").empty()) {
        delta(DeltaKind::thinking, str(*block, "thinking"), out);
      }
      if (!str(*block, "signature").empty()) {
        delta(DeltaKind::signature, str(*block, "signature"), out);
      }
    }
  }

  // The per-token event in one on-demand pass: {"type":"content_block_delta","index":N,
  // "delta":{"type":T,KEY:"..."}} for the four delta types the model has. Anything else
  // (another delta type, a nested or invalid value, a key twice) goes the DOM way; nothing is
  // emitted before the pass is sure. Same rules as block_delta.
  bool fast_delta(std::string_view data, std::vector<Event>& out) {
    using namespace ondemand;
    od::document doc;
    if (thread_parser().iterate(padded(data, padded_)).get(doc)) return false;
    od::object o;
    if (doc.get_object().get(o)) return false;
    std::string_view type, delta_type, text, text_key, text_token;
    int64_t index = -1;
    bool seen_type = false, seen_index = false, seen_delta = false;
    for (auto field : o) {
      std::string_view key;
      od::value v;
      if (field.unescaped_key().get(key) || field.value().get(v)) return false;
      if (key == "type") {
        if (seen_type || v.get_string().get(type)) return false;
        seen_type = true;
      } else if (key == "index") {
        if (seen_index || v.get_int64().get(index)) return false;
        seen_index = true;
      } else if (key == "delta") {
        od::object d;
        if (seen_delta || v.get_object().get(d)) return false;
        seen_delta = true;
        bool seen_dtype = false, seen_text = false;
        text_key = {};
        for (auto df : d) {
          std::string_view dk;
          od::value dv;
          if (df.unescaped_key().get(dk) || df.value().get(dv)) return false;
          if (dk == "type") {
            if (seen_dtype || dv.get_string().get(delta_type)) return false;
            seen_dtype = true;
          } else if (dk == "text" || dk == "partial_json" || dk == "thinking" ||
                     dk == "signature") {
            // (A delta carries one of these; which one must match its type, checked below.)
            text_token = dv.raw_json_token();
            if (seen_text || dv.get_string().get(text)) return false;
            seen_text = true;
            text_key = dk;
          } else if (!skip_scalar(dv)) {
            return false;
          }
        }
      } else if (!skip_scalar(v)) {
        return false;
      }
    }
    if (!at_end(doc) || type != "content_block_delta" || !seen_index || !seen_delta) {
      return false;
    }
    DeltaKind kind;
    std::string_view key;
    if (delta_type == "text_delta") {
      kind = DeltaKind::text, key = "text";
    } else if (delta_type == "input_json_delta") {
      kind = DeltaKind::input_json, key = "partial_json";
    } else if (delta_type == "thinking_delta") {
      kind = DeltaKind::thinking, key = "thinking";
    } else if (delta_type == "signature_delta") {
      kind = DeltaKind::signature, key = "signature";
    } else {
      return false;
    }
    if (text_key != key) text = {};  // the field its type names is absent: an empty delta
    if (open_ && index == wire_index_) delta(kind, text, out);
    ++fast_events_;
    if (!text.empty()) {  // the shape the next deltas are likely to repeat
      skeleton_.remember(data, padded_, text_token);
      skeleton_kind_ = kind;
      skeleton_index_ = index;
    } else {
      skeleton_.forget();
    }
    return true;
  }

  void block_delta(const json::object& o, std::vector<Event>& out) {
    if (!open_ || integer(o, "index") != wire_index_) return;
    const json::object* d = obj(o, "delta");
    if (!d) return;
    const std::string_view type = str(*d, "type");
    if (type == "text_delta") {
      delta(DeltaKind::text, str(*d, "text"), out);
    } else if (type == "input_json_delta") {
      delta(DeltaKind::input_json, str(*d, "partial_json"), out);
    } else if (type == "thinking_delta") {
      delta(DeltaKind::thinking, str(*d, "thinking"), out);
    } else if (type == "signature_delta") {
      delta(DeltaKind::signature, str(*d, "signature"), out);
    }
  }

  void delta(DeltaKind kind, std::string_view text, std::vector<Event>& out) {
    if (text.empty()) return;
    emit_delta(out, next_index_, kind, text);
  }

  void close_block(std::vector<Event>& out) {
    if (!open_) return;
    open_ = false;
    emit_block_stop(out, next_index_++);
  }

  void fail(int status, std::string_view type, std::string message, std::vector<Event>& out) {
    if (done_) return;
    done_ = true;
    Event e;
    e.kind = EventKind::error;
    e.status = status;
    e.error_type = std::string(type);
    e.text = std::move(message);
    out.push_back(std::move(e));
  }

  const bool fast_;
  http::SseParser parser_;
  std::string padded_;          // the event's data with simdjson's padding (fast_delta)
  Skeleton skeleton_;           // the last delta fast_delta accepted, but for its text
  DeltaKind skeleton_kind_ = DeltaKind::text;  // that delta's kind and wire index
  int64_t skeleton_index_ = -1;
  size_t fast_events_ = 0;
  size_t skeleton_events_ = 0;
  bool started_ = false;
  bool done_ = false;  // message_stop or an error was emitted: nothing more follows
  bool open_ = false;
  int64_t wire_index_ = -1;  // the open block's Anthropic index
  int next_index_ = 0;       // the open (or next) block's canonical index
  StopReason stop_reason_ = StopReason::unset;
  std::string stop_sequence_;
  Usage usage_;
};

}  // namespace

std::unique_ptr<StreamDecoder> stream_decoder() {
  return std::make_unique<AnthropicStreamDecoder>(true);
}

std::unique_ptr<StreamDecoder> stream_decoder_without_fast_pass() {
  return std::make_unique<AnthropicStreamDecoder>(false);
}

}  // namespace sluice::canonical::anthropic
