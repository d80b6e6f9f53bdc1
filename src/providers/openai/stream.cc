// OpenAI Chat Completions stream decoder: `data: {chat.completion.chunk}` events until
// `data: [DONE]`, turned into canonical events as each chunk completes.
//
// Lossy (stream-specific):
// - a tool-argument delta for a tool call whose block was already closed (a server that
//   interleaves parallel tool calls) is dropped and counted in dropped_deltas().
// - reasoning arriving after the open thinking block's signature starts a new thinking block.
// - choices other than index 0 are ignored; the stop sequence is never known.
#include <string>

#include "canonical/events.h"
#include "canonical/ondemand.h"
#include "canonical/tables.h"
#include "providers/openai/stream_decoder.h"

namespace sluice::canonical::openai {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' ||
                        s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' ||
                        s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

void ChunkDecoder::feed(std::string_view bytes, std::vector<Event>& out) {
  if (done_) return;
  try {
    sse_.feed(bytes, [this, &out](const http::SseEvent& ev) {
      if (!done_) on_data(ev.data, out);
    });
  } catch (const std::exception&) {
    error(502, "api_error", "upstream sent a malformed stream chunk", out);
  }
  if (sse_.overflowed() && !done_) {
    error(502, "api_error", "upstream sent an oversized stream event", out);
  }
}

void ChunkDecoder::finish(std::vector<Event>& out) {
  // A last event without its blank line (some servers end that way) still counts.
  if (!done_ && sse_.pending_bytes() > 0) feed("\n\n", out);
  if (done_) return;
  // Some servers omit [DONE]: a finish_reason already said the answer is complete.
  if (!finish_reason_.empty()) {
    end(out);
  } else {
    error(502, "api_error", "upstream stream ended early", out);
  }
}

void ChunkDecoder::on_data(std::string_view data, std::vector<Event>& out) {
  data = trim(data);
  if (data.empty()) return;
  if (data == "[DONE]") {
    end(out);
    return;
  }
  if (fast_) {
    // The chunk before with another text: what fast_chunk would do with it, unparsed.
    if (const std::optional<std::string_view> text = skeleton_.match(data)) {
      if (!text->empty()) text_delta(*text, out);
      ++fast_chunks_;
      ++skeleton_chunks_;
      return;
    }
    if (fast_chunk(data, out)) return;
  }
  boost::system::error_code ec;
  ChunkArena arena;
  json::value v = json::parse(data, ec, arena.storage());
  if (ec || !v.is_object()) {
    error(502, "api_error", "upstream sent a malformed stream chunk", out);
    return;
  }
  on_chunk(v.get_object(), out);
}

using namespace ondemand;  // od, skip_scalar, string_or_null, ...

namespace {

// One count of a usage object: an integer (what usage_from reads); false for anything else
// (a float, a string, null, a count beyond int64: the DOM way decides).
bool count_of(od::value v, int64_t& out) { return !v.get_int64().get(out); }

// A details object ({"cached_tokens": N, ...}): `key`'s count, other members scalars; null
// reads as absent, as obj() does on the DOM path.
bool details_count(od::value v, std::string_view key, int64_t& out) {
  if (is_null(v)) return true;
  od::object o;
  if (v.get_object().get(o)) return false;
  bool seen = false;
  for (auto f : o) {
    std::string_view k;
    od::value fv;
    if (f.unescaped_key().get(k) || f.value().get(fv)) return false;
    if (k == key) {
      if (seen || !count_of(fv, out)) return false;
      seen = true;
    } else if (!skip_scalar(fv)) {
      return false;
    }
  }
  return true;
}

// A chat.completion.chunk's usage object as usage_from reads it, when it has the usual shape
// (integer counts, details objects of scalars, no key twice); false otherwise.
bool usage_of_value(od::value v, Usage& usage) {
  od::object o;
  if (v.get_object().get(o)) return false;
  int64_t prompt = 0, completion = 0, cached = 0, reasoning = 0;
  bool seen_prompt = false, seen_completion = false, seen_pd = false, seen_cd = false;
  for (auto f : o) {
    std::string_view k;
    od::value fv;
    if (f.unescaped_key().get(k) || f.value().get(fv)) return false;
    if (k == "prompt_tokens") {
      if (seen_prompt || !count_of(fv, prompt)) return false;
      seen_prompt = true;
    } else if (k == "completion_tokens") {
      if (seen_completion || !count_of(fv, completion)) return false;
      seen_completion = true;
    } else if (k == "prompt_tokens_details") {
      if (seen_pd || !details_count(fv, "cached_tokens", cached)) return false;
      seen_pd = true;
    } else if (k == "completion_tokens_details") {
      if (seen_cd || !details_count(fv, "reasoning_tokens", reasoning)) return false;
      seen_cd = true;
    } else if (!skip_scalar(fv)) {
      return false;
    }
  }
  usage = usage_of(prompt, cached, completion, reasoning);
  return true;
}

}  // namespace

// The common chunk in one pass: {"id","model",...,"choices":[{"index":0,"delta":{"role"?,
// "content"},"finish_reason"}]} with usage absent, null or of the usual shape (the last chunk
// of a stream with include_usage has "choices":[] and the usage). Anything else (tool calls,
// reasoning, refusals, errors, several choices, nested unknown values, a key twice) is left to
// the DOM path, which sees the chunk from the start: nothing is emitted before the pass is
// sure.
bool ChunkDecoder::fast_chunk(std::string_view data, std::vector<Event>& out) {
  od::document doc;
  if (thread_parser().iterate(padded(data, padded_)).get(doc)) return false;
  od::object chunk;
  if (doc.get_object().get(chunk)) return false;
  std::string_view id, model, content, finish;
  std::string_view content_token;  // its raw JSON, for the skeleton
  bool seen_id = false, seen_model = false, seen_choices = false, seen_usage = false;
  Usage usage;
  bool has_usage = false;
  for (auto field : chunk) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    od::value v;
    if (field.value().get(v)) return false;
    if (key == "choices") {
      if (seen_choices) return false;
      seen_choices = true;
      od::array choices;
      if (v.get_array().get(choices)) return false;
      size_t n = 0;
      for (auto cv : choices) {
        if (++n > 1) return false;
        od::object choice;
        if (cv.get_object().get(choice)) return false;
        bool seen_index = false, seen_delta = false, seen_finish = false;
        for (auto cf : choice) {
          std::string_view ck;
          if (cf.unescaped_key().get(ck)) return false;
          od::value cvv;
          if (cf.value().get(cvv)) return false;
          if (ck == "index") {
            int64_t index = 0;
            if (seen_index || cvv.get_int64().get(index) || index != 0) return false;
            seen_index = true;
          } else if (ck == "delta") {
            if (seen_delta) return false;
            seen_delta = true;
            od::object delta;
            if (cvv.get_object().get(delta)) return false;
            bool seen_role = false, seen_content = false;
            for (auto df : delta) {
              std::string_view dk;
              if (df.unescaped_key().get(dk)) return false;
              od::value dv;
              if (df.value().get(dv)) return false;
              if (dk == "content") {
                content_token = dv.raw_json_token();
                if (seen_content || !string_or_null(dv, content)) return false;
                seen_content = true;
              } else if (dk == "role") {
                if (seen_role || !skip_scalar(dv)) return false;
                seen_role = true;
              } else {
                if (!is_null(dv)) return false;  // tools, reasoning, ...
              }
            }
          } else if (ck == "finish_reason") {
            if (seen_finish || !string_or_null(cvv, finish)) return false;
            seen_finish = true;
          } else if (!skip_scalar(cvv)) {
            return false;  // logprobs and the like, when not null
          }
        }
      }
    } else if (key == "id" || key == "model") {
      bool& seen = key == "id" ? seen_id : seen_model;
      std::string_view& into = key == "id" ? id : model;
      if (seen) return false;
      seen = true;
      // (A non-string id or model reads as "", as on the DOM path.)
      od::json_type t;
      if (v.type().get(t)) return false;
      if (t == od::json_type::string) {
        if (v.get_string().get(into)) return false;
      } else if (!skip_scalar(v)) {
        return false;
      }
    } else if (key == "usage") {
      if (seen_usage) return false;
      seen_usage = true;
      if (!is_null(v)) {
        if (!usage_of_value(v, usage)) return false;
        has_usage = true;
      }
    } else if (key == "error") {
      if (!is_null(v)) return false;
    } else if (!skip_scalar(v)) {
      return false;
    }
  }
  if (!at_end(doc)) return false;  // trailing bytes
  // The pass is sure: act as on_chunk would.
  if (!started_) {
    id_ = std::string(id);
    model_ = std::string(model);
    start(out);
  }
  if (!content.empty()) text_delta(content, out);
  if (!finish.empty()) finish_reason_ = std::string(finish);
  if (has_usage) usage_ = usage;
  ++fast_chunks_;
  // A chunk whose only effect (from now on: the stream has started) is its text is the shape
  // the next ones are likely to repeat.
  if (finish.empty() && !content.empty()) {
    skeleton_.remember(data, padded_, content_token);
  } else {
    skeleton_.forget();
  }
  return true;
}

void ChunkDecoder::text_delta(std::string_view text, std::vector<Event>& out) {
  if (!(open_ && kind_ == BlockKind::text)) {
    close(out);
    open(BlockKind::text, out);
  }
  emit_delta(DeltaKind::text, text, out);
}

void ChunkDecoder::on_chunk(const json::object& chunk, std::vector<Event>& out) {
  if (const json::object* err = obj(chunk, "error")) {
    int status = 502;
    std::string code;
    if (const json::value* c = field(*err, "code")) {
      if (std::optional<int64_t> n = integer(*err, "code"); n && *n >= 400 && *n <= 599) {
        status = static_cast<int>(*n);
      }
      code = c->is_string() ? std::string(c->get_string()) : to_text(*c);
    }
    code += " ";
    code += str(*err, "type");
    std::string message(str(*err, "message"));
    if (message.empty()) message = "upstream reported an error mid-stream";
    std::string type = error_type_for(status, code, message);
    error(status, std::move(type), std::move(message), out);
    return;
  }
  if (!started_) {
    id_ = std::string(str(chunk, "id"));
    model_ = std::string(str(chunk, "model"));
    start(out);
  }
  if (const json::array* choices = arr(chunk, "choices")) {
    for (const json::value& cv : *choices) {
      const json::object* choice = cv.if_object();
      if (!choice || integer(*choice, "index").value_or(0) != 0) continue;
      if (const json::object* delta = obj(*choice, "delta")) on_delta(*delta, out);
      const std::string_view finish = str(*choice, "finish_reason");
      if (!finish.empty()) finish_reason_ = std::string(finish);
    }
  }
  if (const json::object* u = obj(chunk, "usage")) usage_ = usage_from(*u);
}

void ChunkDecoder::on_delta(const json::object& delta, std::vector<Event>& out) {
  // Thinking text goes to an open, unsigned thinking block; after a signature a new one starts.
  auto thinking = [this, &out](std::string_view text) {
    if (!(open_ && kind_ == BlockKind::thinking && !signed_)) {
      close(out);
      open(BlockKind::thinking, out);
    }
    emit_delta(DeltaKind::thinking, text, out);
  };
  if (const json::array* tb = arr(delta, "thinking_blocks"); tb && !tb->empty()) {
    // LiteLLM repeats the text in reasoning_content: thinking_blocks alone is read.
    for (const json::value& ev : *tb) {
      const json::object* e = ev.if_object();
      if (!e) continue;
      if (str(*e, "type") == "redacted_thinking") {
        close(out);
        open(BlockKind::redacted_thinking, out);
        out.back().text = std::string(str(*e, "data"));  // canonical: the data is on block_start
        continue;
      }
      if (const std::string_view t = str(*e, "thinking"); !t.empty()) thinking(t);
      if (const std::string_view sig = str(*e, "signature"); !sig.empty()) {
        if (!(open_ && kind_ == BlockKind::thinking && !signed_)) {
          close(out);
          open(BlockKind::thinking, out);
        }
        emit_delta(DeltaKind::signature, sig, out);
        signed_ = true;
      }
    }
  } else {
    std::string_view reasoning = str(delta, "reasoning_content");
    if (reasoning.empty()) reasoning = str(delta, "reasoning");
    if (!reasoning.empty()) thinking(reasoning);
  }
  for (const char* key : {"content", "refusal"}) {
    const std::string_view text = str(delta, key);
    if (text.empty()) continue;
    if (std::string_view(key) == "refusal") refusal_ = true;
    text_delta(text, out);
  }
  if (const json::array* calls = arr(delta, "tool_calls")) {
    for (const json::value& cv : *calls) {
      if (const json::object* tc = cv.if_object()) on_tool_call(*tc, out);
    }
  }
}

void ChunkDecoder::on_tool_call(const json::object& tc, std::vector<Event>& out) {
  const std::string_view id = str(tc, "id");
  int64_t index = 0;
  if (std::optional<int64_t> i = integer(tc, "index")) {
    index = *i;
  } else if (!id.empty()) {
    index = max_tool_index_ + 1;  // servers that omit index: a new id is a new call
  } else {
    index = tool_index_ >= 0 ? tool_index_ : 0;
  }
  std::string args;
  const json::object* fn = obj(tc, "function");
  if (fn) {
    if (const json::value* a = field(*fn, "arguments")) {
      args = a->is_string() ? std::string(a->get_string()) : to_text(*a);
    }
  }
  if (open_ && kind_ == BlockKind::tool_use && index == tool_index_) {
    if (!args.empty()) emit_delta(DeltaKind::input_json, std::move(args), out);
    return;
  }
  if (tools_seen_.contains(index)) {
    ++dropped_;  // its block is closed: the canonical stream cannot go back to it
    return;
  }
  close(out);
  tools_seen_.insert(index);
  if (index > max_tool_index_) max_tool_index_ = index;
  std::string tool_id = id.empty() ? "call_" + std::to_string(index) : std::string(id);
  open(BlockKind::tool_use, out, std::move(tool_id),
       fn ? std::string(str(*fn, "name")) : std::string());
  tool_index_ = index;
  if (!args.empty()) emit_delta(DeltaKind::input_json, std::move(args), out);
}

void ChunkDecoder::start(std::vector<Event>& out) {
  if (started_) return;
  started_ = true;
  Event e;
  e.kind = EventKind::message_start;
  e.id = id_;
  e.model = model_;
  out.push_back(std::move(e));
}

void ChunkDecoder::open(BlockKind kind, std::vector<Event>& out, std::string tool_id,
                        std::string tool_name) {
  canonical::emit_block_start(out, next_index_, kind, std::move(tool_id), std::move(tool_name));
  open_ = true;
  kind_ = kind;
  signed_ = false;
}

void ChunkDecoder::close(std::vector<Event>& out) {
  if (!open_) return;
  canonical::emit_block_stop(out, next_index_++);
  open_ = false;
  tool_index_ = -1;
}

void ChunkDecoder::emit_delta(DeltaKind kind, std::string_view text, std::vector<Event>& out) {
  canonical::emit_delta(out, next_index_, kind, text);
}

void ChunkDecoder::end(std::vector<Event>& out) {
  start(out);
  close(out);
  canonical::emit_message_end(
      out, refusal_ ? StopReason::refusal : stop_from_finish(finish_reason_), {}, usage_);
  done_ = true;
}

void ChunkDecoder::error(int status, std::string type, std::string message,
                         std::vector<Event>& out) {
  if (done_) return;
  Event e;
  e.kind = EventKind::error;
  e.status = status;
  e.error_type = std::move(type);
  e.text = std::move(message);
  out.push_back(std::move(e));
  done_ = true;
}

}  // namespace sluice::canonical::openai
