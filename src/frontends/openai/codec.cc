// OpenAI Chat Completions (client side): canonical Response / Events → chat.completion,
// chat.completion.chunk SSE, and OpenAI error bodies.
//
// Lossy (what an OpenAI client cannot receive from a canonical answer):
// - stop_sequence and pause_turn both become finish_reason "stop"; the stop sequence itself is
//   not reported.
// - usage.cache_creation is folded into prompt_tokens (no field of its own).
// - thinking travels as reasoning_content (text) plus thinking_blocks (LiteLLM's carrier, with
//   signatures); clients that know neither see no reasoning.
// - in a stream, a redacted_thinking block's data arrives as its block_start text (canonical.h)
//   and is sent as delta.thinking_blocks.
// - the error type of a mid-stream error comes from the status (error_row), not the upstream.
#include <ctime>
#include <random>
#include <string>

#include "canonical/codec.h"
#include "canonical/json.h"
#include "canonical/tables.h"

namespace sluice::canonical::openai {
namespace {

std::string new_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "chatcmpl-";
  for (int i = 0; i < 24; ++i) id += kHex[rng() & 15];
  return id;
}

int64_t now() { return static_cast<int64_t>(std::time(nullptr)); }

json::object usage_json(const Usage& u) {
  json::object o;
  const int64_t prompt = u.prompt_total();
  o["prompt_tokens"] = prompt;
  o["completion_tokens"] = u.output;
  o["total_tokens"] = sat_add(prompt, u.output);
  o["prompt_tokens_details"] = json::object{{"cached_tokens", u.cache_read}};
  o["completion_tokens_details"] = json::object{{"reasoning_tokens", u.reasoning}};
  return o;
}

json::object thinking_entry(const Block& b) {
  if (b.kind == BlockKind::redacted_thinking) {
    return json::object{{"type", "redacted_thinking"}, {"data", b.data}};
  }
  return json::object{{"type", "thinking"}, {"thinking", b.text}, {"signature", b.signature}};
}

std::string sse(const json::object& o) {
  std::string out = "data: ";
  out += json::serialize(o);
  out += "\n\n";
  return out;
}

std::string error_json(int status, std::string_view message) {
  return openai_error_body(message, error_row(status).openai_type, {}, {});
}

class Encoder final : public StreamEncoder {
 public:
  explicit Encoder(const Request& req)
      : model_(req.model), include_usage_(req.stream && req.include_usage) {}

  void on_event(const Event& e, std::string& out) override {
    if (failed_) return;
    switch (e.kind) {
      case EventKind::message_start:
        if (!e.id.empty()) id_ = e.id;
        if (!e.model.empty()) model_ = e.model;
        prefix_.clear();  // rendered again with this id and model
        started_ = true;
        raw_chunk(kRoleDelta, out);
        break;
      case EventKind::block_start: start_block(e, out); break;
      case EventKind::block_delta: delta(e, out); break;
      case EventKind::block_stop: break;
      case EventKind::message_delta: {
        ensure_started(out);
        raw_chunk("{}", out, stop_row(e.stop_reason).openai);
        if (include_usage_) {
          json::object o = head();
          o["choices"] = json::array{};
          o["usage"] = usage_json(e.usage);
          out += sse(o);
        }
        break;
      }
      case EventKind::message_stop: break;
      case EventKind::error:
        fail(e.status ? e.status : 502, e.text, out);
        break;
    }
  }

  void finish(std::string& out) override {
    if (!failed_) out += "data: [DONE]\n\n";
  }

  void fail(int status, std::string_view message, std::string& out) override {
    if (failed_) return;
    failed_ = true;
    out += "data: ";
    out += error_json(status, message);
    out += "\n\n";
  }

 private:
  json::object head() const {
    return json::object{{"id", id_}, {"object", "chat.completion.chunk"}, {"created", created_},
                        {"model", model_}};
  }

  std::string chunk(json::object delta, std::string_view finish = {}) const {
    json::object o = head();
    json::object choice{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr}};
    if (finish.empty()) {
      choice["finish_reason"] = nullptr;
    } else {
      choice["finish_reason"] = finish;
    }
    o["choices"] = json::array{std::move(choice)};
    return sse(o);
  }

  // Events before message_start (a decoder that skipped it) still get the role chunk first.
  void ensure_started(std::string& out) {
    if (started_) return;
    started_ = true;
    raw_chunk(kRoleDelta, out);
  }

  void start_block(const Event& e, std::string& out) {
    ensure_started(out);
    if (e.index < 0) return;
    if (static_cast<size_t>(e.index) >= blocks_.size()) blocks_.resize(e.index + 1);
    BlockState& st = blocks_[e.index];
    st.kind = e.block;
    if (e.block == BlockKind::tool_use) {
      st.tool_index = tool_count_++;
      json::object fn{{"name", e.tool_name}, {"arguments", ""}};
      json::object call{{"index", st.tool_index}, {"id", e.tool_id}, {"type", "function"},
                        {"function", std::move(fn)}};
      out += chunk(json::object{{"tool_calls", json::array{std::move(call)}}});
    } else if (e.block == BlockKind::redacted_thinking && !e.text.empty()) {
      Block b;
      b.kind = BlockKind::redacted_thinking;
      b.data = e.text;
      out += chunk(json::object{{"thinking_blocks", json::array{thinking_entry(b)}}});
    }
  }

  void delta(const Event& e, std::string& out) {
    ensure_started(out);
    const BlockState* st = nullptr;
    if (e.index >= 0 && static_cast<size_t>(e.index) < blocks_.size()) st = &blocks_[e.index];
    switch (e.delta) {
      case DeltaKind::text: text_chunk("content", e.text, out); break;
      case DeltaKind::thinking: text_chunk("reasoning_content", e.text, out); break;
      case DeltaKind::signature: {
        Block b;
        if (st && st->kind == BlockKind::redacted_thinking) {
          b.kind = BlockKind::redacted_thinking;
          b.data = e.text;
        } else {
          b.kind = BlockKind::thinking;
          b.signature = e.text;
        }
        out += chunk(json::object{{"thinking_blocks", json::array{thinking_entry(b)}}});
        break;
      }
      case DeltaKind::input_json: {
        if (!st || st->kind != BlockKind::tool_use) return;  // no tool call to attach it to
        std::string call = "{\"tool_calls\":[{\"index\":" + std::to_string(st->tool_index) +
                           ",\"function\":{\"arguments\":\"";
        append_json_escaped(call, e.text);
        call += "\"}}]}";
        raw_chunk(call, out);
        break;
      }
    }
  }

  static constexpr std::string_view kRoleDelta = R"({"role":"assistant","content":""})";

  // The per-event hot path: chunks written directly around a prefix rendered once, byte-
  // identical to chunk() (same key order).
  void raw_chunk(std::string_view delta_json, std::string& out, std::string_view finish = {}) {
    if (prefix_.empty()) {
      prefix_ = "data: {\"id\":\"";
      append_json_escaped(prefix_, id_);
      prefix_ += "\",\"object\":\"chat.completion.chunk\",\"created\":";
      prefix_ += std::to_string(created_);
      prefix_ += ",\"model\":\"";
      append_json_escaped(prefix_, model_);
      prefix_ += "\",\"choices\":[{\"index\":0,\"delta\":";
    }
    out += prefix_;
    out += delta_json;
    if (finish.empty()) {
      out += ",\"logprobs\":null,\"finish_reason\":null}]}\n\n";
    } else {
      out += ",\"logprobs\":null,\"finish_reason\":\"";
      append_json_escaped(out, finish);
      out += "\"}]}\n\n";
    }
  }

  void text_chunk(std::string_view key, std::string_view text, std::string& out) {
    scratch_.clear();
    scratch_ += "{\"";
    scratch_ += key;
    scratch_ += "\":\"";
    append_json_escaped(scratch_, text);
    scratch_ += "\"}";
    raw_chunk(scratch_, out);
  }

  struct BlockState {
    BlockKind kind = BlockKind::text;
    int tool_index = 0;
  };

  std::string id_ = new_id();
  int64_t created_ = now();
  std::string model_;
  std::string prefix_;   // raw_chunk's rendering of everything before the delta
  std::string scratch_;  // text_chunk's delta object
  bool include_usage_;
  bool started_ = false;
  bool failed_ = false;
  int tool_count_ = 0;
  std::vector<BlockState> blocks_;
};

}  // namespace

std::string encode_response(const Response& r, const Request& req) {
  std::string text, reasoning;
  bool any_text = false;
  json::array tool_calls, thinking_blocks;
  for (const Block& b : r.content) {
    switch (b.kind) {
      case BlockKind::text:
        text += b.text;
        any_text = true;
        break;
      case BlockKind::thinking:
        reasoning += b.text;
        thinking_blocks.push_back(thinking_entry(b));
        break;
      case BlockKind::redacted_thinking: thinking_blocks.push_back(thinking_entry(b)); break;
      case BlockKind::tool_use: {
        json::object fn{{"name", b.tool_name}, {"arguments", b.tool_input}};
        tool_calls.push_back(json::object{{"id", b.tool_id}, {"type", "function"},
                                          {"function", std::move(fn)}});
        break;
      }
      case BlockKind::image:
      case BlockKind::tool_result: break;  // not part of an assistant answer in OpenAI
    }
  }
  json::object message{{"role", "assistant"}};
  if (any_text) {
    message["content"] = text;
  } else {
    message["content"] = nullptr;
  }
  if (!tool_calls.empty()) message["tool_calls"] = std::move(tool_calls);
  if (!reasoning.empty()) message["reasoning_content"] = reasoning;
  if (!thinking_blocks.empty()) message["thinking_blocks"] = std::move(thinking_blocks);
  json::object choice{{"index", 0}, {"message", std::move(message)}, {"logprobs", nullptr},
                      {"finish_reason", stop_row(r.stop_reason).openai}};
  json::object o{{"id", r.id.empty() ? new_id() : r.id}, {"object", "chat.completion"},
                 {"created", now()}, {"model", r.model.empty() ? req.model : r.model}};
  o["choices"] = json::array{std::move(choice)};
  o["usage"] = usage_json(r.usage);
  return json::serialize(o);
}

std::unique_ptr<StreamEncoder> stream_encoder(const Request& req) {
  return std::make_unique<Encoder>(req);
}

ErrorBody encode_error(int status, std::string_view message) {
  return ErrorBody{status, error_json(status, message)};
}

}  // namespace sluice::canonical::openai
