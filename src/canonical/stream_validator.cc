// The three validators. Each keeps only the state its rules need (ids, open block, counts), so
// it can run alongside a live stream. Rules follow the official stream shapes:
//   OpenAI chat.completion.chunk streams, Anthropic Messages streaming events, Gemini
//   streamGenerateContent?alt=sse (one GenerateContentResponse per data line).
#include "canonical/stream_validator.h"

#include <algorithm>
#include <array>
#include <optional>
#include <string>

#include "canonical/json.h"

namespace sluice::canonical {
namespace {

constexpr std::array<std::string_view, 12> kOpenAiRules{
    "openai.invalid_json",          // a data line is neither a JSON object nor [DONE]
    "openai.done_missing",          // no [DONE] (and the stream did not end with an error chunk)
    "openai.data_after_done",       // anything (also a second [DONE]) after [DONE]
    "openai.data_after_error",      // anything after an {"error":...} chunk
    "openai.id_mismatch",           // chunks carry different ids
    "openai.tool_index_order",      // tool_calls index not 0 first / not an old one or max+1
    "openai.tool_call_first_delta", // first delta of an index lacks id or function.name
    "openai.finish_reason_missing",
    "openai.finish_reason_repeated",
    "openai.finish_reason_mismatch",  // "tool_calls" iff tool_calls deltas were sent
    "openai.usage_before_finish",     // the usage-only chunk (choices []) before finish_reason
    "openai.unterminated_event",      // the body ended inside an event (no blank line)
};
constexpr std::array<std::string_view, 17> kAnthropicRules{
    "anthropic.invalid_json",            // data not a JSON object with a string type
    "anthropic.event_name_mismatch",     // `event:` differs from data.type
    "anthropic.message_start_not_first", // an event (other than error) before message_start
    "anthropic.message_start_repeated",
    "anthropic.block_index_order",       // content_block_start index not 0, 1, 2, ... in order
    "anthropic.block_not_closed",        // next block / message_delta / end while one is open
    "anthropic.delta_wrong_block",       // delta to an index that is not the open block
    "anthropic.delta_type_mismatch",     // e.g. text_delta into a tool_use block
    "anthropic.block_stop_mismatch",     // content_block_stop for a block that is not open
    "anthropic.block_after_message_delta",
    "anthropic.message_delta_missing",
    "anthropic.message_delta_repeated",
    "anthropic.stop_reason_mismatch",    // tool_use iff a tool_use block was sent
    "anthropic.message_stop_missing",
    "anthropic.event_after_stop",        // anything after message_stop
    "anthropic.event_after_error",       // anything after an error event
    "anthropic.unterminated_event",      // the body ended inside an event (no blank line)
};
constexpr std::array<std::string_view, 9> kGeminiRules{
    "gemini.invalid_json",            // data not a JSON object
    "gemini.missing_candidates",      // an object with neither candidates nor error
    "gemini.data_after_error",        // anything after an error object
    "gemini.finish_reason_missing",
    "gemini.finish_reason_repeated",
    "gemini.finish_reason_not_last",  // a chunk with candidates follows the finishReason one
    "gemini.function_call_shape",     // functionCall without a name or with non-object args
    "gemini.usage_negative",          // a usageMetadata count negative or not an integer
    "gemini.unterminated_event",
};

std::optional<json::object> parse_object(std::string_view data) {
  auto v = parse_json(data);
  if (!v || !v->is_object()) return std::nullopt;
  return std::move(v->as_object());
}

std::string at(int event) { return "event " + std::to_string(event); }

// ---- OpenAI -----------------------------------------------------------------------------------

class OpenAiValidator final : public StreamValidator {
  void on_event(const http::SseEvent& e) override {
    if (done_) violate("openai.data_after_done", at(events()));
    if (errored_) violate("openai.data_after_error", at(events()));
    if (e.data == "[DONE]") {
      done_ = true;
      return;
    }
    auto o = parse_object(e.data);
    if (!o) {
      violate("openai.invalid_json", at(events()));
      return;
    }
    if (field(*o, "error") != nullptr) {
      errored_ = true;
      return;
    }
    const std::string_view id = str(*o, "id");
    if (!have_id_) {
      id_ = id;
      have_id_ = true;
    } else if (id != id_) {
      violate("openai.id_mismatch", at(events()) + ": " + std::string(id) + " != " + id_);
    }
    const json::array* choices = arr(*o, "choices");
    if (choices != nullptr && choices->empty() && field(*o, "usage") != nullptr &&
        finish_count_ == 0) {
      violate("openai.usage_before_finish", at(events()));
    }
    if (choices == nullptr) return;
    for (const json::value& cv : *choices) {
      if (!cv.is_object()) continue;
      const json::object& c = cv.as_object();
      if (const json::object* delta = obj(c, "delta")) check_tools(*delta);
      const std::string_view fr = str(c, "finish_reason");
      if (!fr.empty()) {
        if (++finish_count_ > 1) violate("openai.finish_reason_repeated", at(events()));
        finish_reason_ = fr;
      }
    }
  }

  void check_tools(const json::object& delta) {
    const json::array* calls = arr(delta, "tool_calls");
    if (calls == nullptr) return;
    for (const json::value& tv : *calls) {
      if (!tv.is_object()) continue;
      const json::object& t = tv.as_object();
      saw_tools_ = true;
      const std::optional<int64_t> index = integer(t, "index");
      if (!index || *index < 0 || *index > max_index_ + 1) {
        violate("openai.tool_index_order", at(events()));
        continue;
      }
      if (*index <= max_index_) continue;  // a later delta of a known call
      max_index_ = *index;
      const json::object* fn = obj(t, "function");
      if (str(t, "id").empty() || fn == nullptr || str(*fn, "name").empty()) {
        violate("openai.tool_call_first_delta", at(events()) + " index " +
                                                    std::to_string(*index));
      }
    }
  }

  void on_finish() override {
    if (!done_ && !errored_) violate("openai.done_missing");
    if (finish_count_ == 0 && !errored_) violate("openai.finish_reason_missing");
    if (finish_count_ > 0 && (finish_reason_ == "tool_calls") != saw_tools_) {
      violate("openai.finish_reason_mismatch", "finish_reason " + finish_reason_);
    }
  }
  std::string_view unterminated_rule() const override { return "openai.unterminated_event"; }

  bool done_ = false;
  bool errored_ = false;
  bool have_id_ = false;
  std::string id_;
  int64_t max_index_ = -1;
  bool saw_tools_ = false;
  int finish_count_ = 0;
  std::string finish_reason_;
};

// ---- Anthropic --------------------------------------------------------------------------------

class AnthropicValidator final : public StreamValidator {
  void on_event(const http::SseEvent& e) override {
    if (stopped_) violate("anthropic.event_after_stop", at(events()));
    if (errored_) violate("anthropic.event_after_error", at(events()));
    auto o = parse_object(e.data);
    if (!o || str(*o, "type").empty()) {
      violate("anthropic.invalid_json", at(events()));
      return;
    }
    const std::string type(str(*o, "type"));
    if (e.event != type) {
      violate("anthropic.event_name_mismatch",
              at(events()) + ": event " + std::string(e.event) + ", type " + type);
    }
    if (type == "error") {
      errored_ = true;
      return;
    }
    if (type == "message_start") {
      if (started_) violate("anthropic.message_start_repeated", at(events()));
      else if (events() != 1) violate("anthropic.message_start_not_first", at(events()));
      started_ = true;
      return;
    }
    if (!started_) violate("anthropic.message_start_not_first", at(events()) + ": " + type);
    if (type == "content_block_start") {
      block_start(*o);
    } else if (type == "content_block_delta") {
      block_delta(*o);
    } else if (type == "content_block_stop") {
      const std::optional<int64_t> index = integer(*o, "index");
      if (open_ < 0 || index != open_) {
        violate("anthropic.block_stop_mismatch", at(events()));
      } else {
        open_ = -1;
      }
    } else if (type == "message_delta") {
      if (message_delta_) violate("anthropic.message_delta_repeated", at(events()));
      message_delta_ = true;
      if (open_ >= 0) violate("anthropic.block_not_closed", at(events()) + ": message_delta");
      const json::object* delta = obj(*o, "delta");
      const std::string_view sr = delta != nullptr ? str(*delta, "stop_reason") : "";
      if ((sr == "tool_use") != saw_tool_use_) {
        violate("anthropic.stop_reason_mismatch", "stop_reason " + std::string(sr));
      }
    } else if (type == "message_stop") {
      stopped_ = true;
    }
    // ping and event types added later are allowed anywhere after message_start.
  }

  void block_start(const json::object& o) {
    if (message_delta_) violate("anthropic.block_after_message_delta", at(events()));
    if (open_ >= 0) violate("anthropic.block_not_closed", at(events()));
    const std::optional<int64_t> index = integer(o, "index");
    if (index != next_index_) {
      violate("anthropic.block_index_order", at(events()));
    }
    const json::object* block = obj(o, "content_block");
    open_type_ = block != nullptr ? std::string(str(*block, "type")) : std::string();
    if (open_type_ == "tool_use") saw_tool_use_ = true;
    open_ = index.value_or(-1);
    next_index_ = std::max(next_index_, index.value_or(-1) + 1);
  }

  void block_delta(const json::object& o) {
    const std::optional<int64_t> index = integer(o, "index");
    if (open_ < 0 || index != open_) {
      violate("anthropic.delta_wrong_block", at(events()));
      return;
    }
    const json::object* delta = obj(o, "delta");
    const std::string_view dt = delta != nullptr ? str(*delta, "type") : "";
    std::string_view want;
    if (dt == "text_delta" || dt == "citations_delta") want = "text";
    else if (dt == "input_json_delta") want = "tool_use";
    else if (dt == "thinking_delta" || dt == "signature_delta") want = "thinking";
    bool ok = want == open_type_;
    // Server tools stream their input like client tools do.
    if (dt == "input_json_delta" && open_type_ == "server_tool_use") ok = true;
    if (!ok) {
      violate("anthropic.delta_type_mismatch",
              at(events()) + ": " + std::string(dt) + " into " + open_type_);
    }
  }

  void on_finish() override {
    if (errored_) return;  // an error event is a complete ending
    if (!started_) violate("anthropic.message_start_not_first", "empty stream");
    if (open_ >= 0) violate("anthropic.block_not_closed", "at the end");
    if (!message_delta_) violate("anthropic.message_delta_missing");
    if (!stopped_) violate("anthropic.message_stop_missing");
  }
  std::string_view unterminated_rule() const override { return "anthropic.unterminated_event"; }

  bool started_ = false;
  bool stopped_ = false;
  bool errored_ = false;
  bool message_delta_ = false;
  bool saw_tool_use_ = false;
  int64_t open_ = -1;  // index of the open block, -1 when none
  std::string open_type_;
  int64_t next_index_ = 0;
};

// ---- Gemini -----------------------------------------------------------------------------------

class GeminiValidator final : public StreamValidator {
  void on_event(const http::SseEvent& e) override {
    if (errored_) violate("gemini.data_after_error", at(events()));
    auto o = parse_object(e.data);
    if (!o) {
      violate("gemini.invalid_json", at(events()));
      return;
    }
    if (field(*o, "error") != nullptr) {
      errored_ = true;
      return;
    }
    if (const json::object* usage = obj(*o, "usageMetadata")) check_usage(*usage);
    const json::array* candidates = arr(*o, "candidates");
    if (candidates == nullptr) {
      violate("gemini.missing_candidates", at(events()));
      return;
    }
    if (finish_seen_) violate("gemini.finish_reason_not_last", at(events()));
    for (const json::value& cv : *candidates) {
      if (!cv.is_object()) continue;
      const json::object& c = cv.as_object();
      if (!str(c, "finishReason").empty()) {
        if (finish_seen_) violate("gemini.finish_reason_repeated", at(events()));
        finish_seen_ = true;
      }
      const json::object* content = obj(c, "content");
      const json::array* parts = content != nullptr ? arr(*content, "parts") : nullptr;
      if (parts == nullptr) continue;
      for (const json::value& pv : *parts) {
        if (!pv.is_object()) continue;
        const json::object* call = obj(pv.as_object(), "functionCall");
        if (call == nullptr) continue;
        if (str(*call, "name").empty() || obj(*call, "args") == nullptr) {
          violate("gemini.function_call_shape", at(events()));
        }
      }
    }
  }

  void check_usage(const json::object& usage) {
    for (const auto& kv : usage) {
      // Counts are the *Count fields; the *Details arrays hold per-modality counts.
      const std::string_view key = kv.key();
      if (key.size() < 5 || key.substr(key.size() - 5) != "Count") continue;
      const std::optional<int64_t> n = integer(usage, key);
      if (!n || *n < 0) violate("gemini.usage_negative", at(events()) + ": " + std::string(key));
    }
  }

  void on_finish() override {
    if (!finish_seen_ && !errored_) violate("gemini.finish_reason_missing");
  }
  std::string_view unterminated_rule() const override { return "gemini.unterminated_event"; }

  bool errored_ = false;
  bool finish_seen_ = false;
};

}  // namespace

std::unique_ptr<StreamValidator> StreamValidator::make(Protocol p) {
  switch (p) {
    case Protocol::anthropic: return std::make_unique<AnthropicValidator>();
    case Protocol::gemini: return std::make_unique<GeminiValidator>();
    case Protocol::openai: break;
  }
  return std::make_unique<OpenAiValidator>();
}

std::span<const std::string_view> StreamValidator::rules(Protocol p) {
  switch (p) {
    case Protocol::anthropic: return kAnthropicRules;
    case Protocol::gemini: return kGeminiRules;
    case Protocol::openai: break;
  }
  return kOpenAiRules;
}

void StreamValidator::feed(std::string_view bytes) {
  if (finished_) return;
  parser_.feed(bytes, [this](const http::SseEvent& e) {
    ++events_;
    on_event(e);
  });
}

void StreamValidator::finish() {
  if (finished_) return;
  finished_ = true;
  if (parser_.pending_bytes() > 0) violate(unterminated_rule(), "the body ended inside an event");
  on_finish();
}

void StreamValidator::violate(std::string_view rule, std::string_view detail) {
  std::string line(rule);
  if (!detail.empty()) line.append(": ").append(detail);
  details_.push_back(std::move(line));
  if (std::find(violations_.begin(), violations_.end(), rule) == violations_.end()) {
    violations_.emplace_back(rule);
  }
}

}  // namespace sluice::canonical
