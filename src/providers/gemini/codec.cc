// Gemini generateContent, upstream side (generativelanguage.googleapis.com/v1beta, camelCase):
// encode a request, decode a unary answer, an alt=sse stream and error bodies.
//
// Lossy (what Gemini cannot carry from the canonical model):
// - thinking blocks with text and no signature: dropped (Gemini takes back only signed thoughts).
// - redacted_thinking blocks: dropped.
// - signatures from another vendor (Anthropic) are sent as thoughtSignature and may be rejected.
// - images inside tool results: dropped (functionResponse carries the text only).
// - parallel_tool_calls, user: not sent (no Gemini field).
// - reasoning_effort other than low/medium/high: not sent.
// - tool_choice named is sent as ANY + allowedFunctionNames (the model may still pick it only).
// - Answers: finishReason MALFORMED_FUNCTION_CALL / OTHER / unknown read as end_turn; the
//   stop sequence that matched is never known (STOP → end_turn).
// - Answers: inlineData (generated images), executableCode, codeExecutionResult parts and
//   groundingMetadata / safetyRatings / citationMetadata: dropped.
// - Generated tool ids ("call_<n>") restart at 0 in every answer.
#include <algorithm>
#include <unordered_map>

#include "canonical/codec.h"
#include "canonical/events.h"
#include "canonical/json.h"
#include "canonical/ondemand.h"
#include "canonical/skeleton.h"
#include "canonical/tables.h"
#include "http/parse/sse_parser.h"
#include "providers/gemini/parts.h"

namespace sluice::canonical::gemini {

namespace {

constexpr std::string_view kNotGemini =
    "Upstream answered 200 with a body that is not a Gemini GenerateContentResponse";

Error protocol_error(std::string detail) {
  std::string msg(kNotGemini);
  if (!detail.empty()) msg += ": " + detail;
  return make_error(Errc::upstream_protocol, std::move(msg));
}

const char* role_name(Role r) { return r == Role::assistant ? "model" : "user"; }

// Gemini rejects an OBJECT schema with empty properties; such a tool takes no parameters.
bool empty_object_schema(const json::value& v) {
  const json::object* o = v.if_object();
  if (!o) return false;
  for (const auto& kv : *o) {
    if (kv.key() == "type") continue;
    if (kv.key() == "properties" && kv.value().is_object() && kv.value().get_object().empty()) {
      continue;
    }
    return false;
  }
  return true;
}

std::string encode(const Request& req) {
  json::object body;

  // tool_use id → name, for tool results that do not carry the name (OpenAI, Anthropic).
  std::unordered_map<std::string, std::string> tool_names;
  for (const Message& m : req.messages) {
    for (const Block& b : m.content) {
      if (b.kind == BlockKind::tool_use) tool_names[b.tool_id] = b.tool_name;
    }
  }

  json::array contents;
  for (size_t i = 0; i < req.messages.size();) {
    // Consecutive messages of the same role become one Content.
    const Role role = req.messages[i].role;
    PartWriter writer(&tool_names);
    writer.drop_unsigned_thoughts = true;
    for (; i < req.messages.size() && req.messages[i].role == role; ++i) {
      for (const Block& b : req.messages[i].content) writer.add(b);
    }
    json::array parts = writer.take();
    if (parts.empty()) continue;  // e.g. only unsigned thoughts: Gemini rejects empty parts
    json::object c;
    c["role"] = role_name(role);
    c["parts"] = std::move(parts);
    contents.push_back(std::move(c));
  }
  body["contents"] = std::move(contents);

  if (!req.system.empty()) {
    json::array parts;
    for (const Block& b : req.system) {
      if (b.kind == BlockKind::text) parts.push_back(json::object{{"text", b.text}});
    }
    if (!parts.empty()) body["systemInstruction"] = json::object{{"parts", std::move(parts)}};
  }

  if (!req.tools.empty()) {
    json::array decls;
    for (const Tool& t : req.tools) {
      json::object d;
      d["name"] = t.name;
      if (!t.description.empty()) d["description"] = t.description;
      json::value params = from_text(t.parameters);
      if (params.is_object() && !empty_object_schema(params)) d["parameters"] = std::move(params);
      decls.push_back(std::move(d));
    }
    body["tools"] = json::array{json::object{{"functionDeclarations", std::move(decls)}}};
  }

  if (req.tool_choice.kind != ToolChoiceKind::unset) {
    json::object fc;
    switch (req.tool_choice.kind) {
      case ToolChoiceKind::auto_: fc["mode"] = "AUTO"; break;
      case ToolChoiceKind::none: fc["mode"] = "NONE"; break;
      case ToolChoiceKind::required: fc["mode"] = "ANY"; break;
      case ToolChoiceKind::named:
        fc["mode"] = "ANY";
        fc["allowedFunctionNames"] = json::array{json::string(req.tool_choice.name)};
        break;
      case ToolChoiceKind::unset: break;
    }
    body["toolConfig"] = json::object{{"functionCallingConfig", std::move(fc)}};
  }

  json::object gen;
  if (req.max_tokens) gen["maxOutputTokens"] = *req.max_tokens;
  if (req.temperature) gen["temperature"] = *req.temperature;
  if (req.top_p) gen["topP"] = *req.top_p;
  if (req.top_k) gen["topK"] = *req.top_k;
  if (!req.stop.empty()) {
    json::array stops;
    for (const std::string& s : req.stop) stops.emplace_back(s);
    gen["stopSequences"] = std::move(stops);
  }
  std::optional<int64_t> budget = req.thinking_budget;
  if (!budget) {
    if (req.reasoning_effort == "low") budget = 1024;
    if (req.reasoning_effort == "medium") budget = 4096;
    if (req.reasoning_effort == "high") budget = 16384;
  }
  if (budget) {
    json::object th;
    th["thinkingBudget"] = *budget;
    if (*budget != 0) th["includeThoughts"] = true;  // 0 turns thinking off
    gen["thinkingConfig"] = std::move(th);
  }
  if (!gen.empty()) body["generationConfig"] = std::move(gen);
  return to_text(body);
}

// The canonical error type for a Gemini status string, else for the HTTP status.
std::string error_type(int status, std::string_view gstatus, std::string_view message) {
  std::string lower;
  for (char c : message) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("exceeds the maximum number of tokens") != std::string::npos ||
      lower.find("too long") != std::string::npos) {
    return "context_length_exceeded";
  }
  if (gstatus == "INVALID_ARGUMENT" || gstatus == "FAILED_PRECONDITION" ||
      gstatus == "OUT_OF_RANGE") {
    return "invalid_request_error";
  }
  if (gstatus == "UNAUTHENTICATED") return "authentication_error";
  if (gstatus == "PERMISSION_DENIED") return "permission_error";
  if (gstatus == "NOT_FOUND") return "not_found_error";
  if (gstatus == "RESOURCE_EXHAUSTED") return "rate_limit_error";
  if (gstatus == "UNAVAILABLE") return "overloaded_error";
  if (gstatus == "INTERNAL" || gstatus == "DEADLINE_EXCEEDED" || gstatus == "UNKNOWN") {
    return "api_error";
  }
  std::string_view t = error_row(status).anthropic_type;
  return t == "timeout_error" ? "api_error" : std::string(t);
}

// The error object of a Gemini error body ({"error":{...}} or [{"error":{...}}]).
const json::object* error_object(const json::value& v) {
  const json::value* e = &v;
  if (const json::array* a = v.if_array(); a && !a->empty()) e = &(*a)[0];
  const json::object* o = e->if_object();
  return o ? obj(*o, "error") : nullptr;
}

Result<Response> decode(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return protocol_error("invalid JSON (" + ec.message() + ")");
  const json::object* root = v.if_object();
  if (!root) return protocol_error("not an object");

  Response r;
  r.id = std::string(str(*root, "responseId"));
  r.model = std::string(str(*root, "modelVersion"));
  if (const json::object* um = obj(*root, "usageMetadata")) r.usage = read_usage(*um);

  const json::array* cands = arr(*root, "candidates");
  if (!cands || cands->empty()) {
    const json::object* fb = obj(*root, "promptFeedback");
    if (fb && !str(*fb, "blockReason").empty()) {
      r.stop_reason = StopReason::refusal;  // the prompt itself was blocked
      return r;
    }
    return protocol_error("no candidates");
  }
  const json::object* cand = (*cands)[0].if_object();
  if (!cand) return protocol_error("candidates[0] is not an object");
  PartReader reader;
  reader.drop_empty_text = true;
  if (const json::object* content = obj(*cand, "content")) {
    if (const json::array* parts = arr(*content, "parts")) {
      for (size_t i = 0; i < parts->size(); ++i) {
        auto ok = read_part((*parts)[i], "candidates[0].content.parts[" + std::to_string(i) + "]",
                            reader, r.content);
        if (!ok) return protocol_error(ok.error().message + " (" + ok.error().param + ")");
      }
    }
  }
  r.stop_reason = read_finish(str(*cand, "finishReason"), reader.any_call);
  return r;
}

class Decoder final : public StreamDecoder {
 public:
  explicit Decoder(bool fast) : fast_(fast) {}
  size_t fast_events() const override { return fast_events_; }
  size_t skeleton_events() const override { return skeleton_events_; }
  void feed(std::string_view bytes, std::vector<Event>& out) override {
    if (done_) return;
    sse_.feed(bytes, [&](const http::SseEvent& ev) { on_sse(ev, out); });
    if (sse_.overflowed() && !done_) error(502, "api_error", "upstream SSE event too large", out);
  }

  void finish(std::vector<Event>& out) override {
    if (done_) return;
    if (!saw_finish_) {
      error(502, "api_error", "upstream stream ended early", out);
      return;
    }
    close_block(out);
    emit_message_end(out, read_finish(finish_reason_, any_call_), {}, usage_);
    done_ = true;
  }

 private:
  void on_sse(const http::SseEvent& ev, std::vector<Event>& out) {
    if (done_) return;
    try {
      on_data(ev.data, out);
    } catch (const std::exception& e) {
      error(502, "api_error", std::string("upstream stream could not be read: ") + e.what(), out);
    }
  }

  void on_data(std::string_view data, std::vector<Event>& out) {
    if (data.empty()) return;
    if (fast_) {
      // The chunk before with another text: what fast_chunk would do with it, unparsed.
      if (const std::optional<std::string_view> text = skeleton_.match(data)) {
        if (skeleton_usage_.reported) usage_ = skeleton_usage_;
        if (!text->empty()) {
          if (!open_ || open_kind_ != BlockKind::text) open(BlockKind::text, out);
          delta(DeltaKind::text, *text, out);
        }
        ++fast_events_;
        ++skeleton_events_;
        return;
      }
      if (fast_chunk(data, out)) return;
    }
    boost::system::error_code ec;
    ChunkArena arena;
    json::value v = json::parse(data, ec, arena.storage());
    if (ec) {
      error(502, "api_error", "upstream sent a stream chunk that is not valid JSON", out);
      return;
    }
    if (const json::object* e = error_object(v)) {
      int code = static_cast<int>(integer(*e, "code").value_or(500));
      if (code < 400 || code > 599) code = 500;
      std::string msg(str(*e, "message"));
      if (msg.empty()) msg = "upstream stream error";
      error(code, error_type(code, str(*e, "status"), msg), msg, out);
      return;
    }
    const json::object* root = v.if_object();
    if (!root) {
      error(502, "api_error", "upstream sent a stream chunk that is not an object", out);
      return;
    }
    if (const json::object* um = obj(*root, "usageMetadata")) usage_ = read_usage(*um);
    if (!started_) {
      started_ = true;
      Event s;
      s.kind = EventKind::message_start;
      s.id = std::string(str(*root, "responseId"));
      s.model = std::string(str(*root, "modelVersion"));
      s.usage = usage_;
      out.push_back(std::move(s));
    }
    const json::array* cands = arr(*root, "candidates");
    if (!cands || cands->empty()) {
      const json::object* fb = obj(*root, "promptFeedback");
      if (fb && !str(*fb, "blockReason").empty()) {
        saw_finish_ = true;
        finish_reason_ = "SAFETY";
      }
      return;
    }
    const json::object* cand = (*cands)[0].if_object();
    if (!cand) return;
    if (const json::object* content = obj(*cand, "content")) {
      if (const json::array* parts = arr(*content, "parts")) {
        for (const json::value& p : *parts) {
          if (const json::object* po = p.if_object()) on_part(*po, out);
        }
      }
    }
    if (std::string_view fr = str(*cand, "finishReason"); !fr.empty()) {
      saw_finish_ = true;
      finish_reason_ = std::string(fr);
    }
  }

  // The common chunk in one on-demand pass: {"candidates":[{"content":{"parts":[{"text":..}],
  // "role":..},"finishReason"?,...}],"usageMetadata"?:{...},"modelVersion","responseId"} whose
  // parts are plain text. Anything else (thoughts, signatures, calls, prompt feedback, errors,
  // several candidates, a key twice, a count that is not an integer) goes the DOM way; nothing
  // is emitted before the pass is sure. Same rules as on_data.
  bool fast_chunk(std::string_view data, std::vector<Event>& out) {
    using namespace ondemand;
    od::document doc;
    if (thread_parser().iterate(padded(data, padded_)).get(doc)) return false;
    od::object root;
    if (doc.get_object().get(root)) return false;
    std::string_view id, model, finish;
    std::string_view text_token;  // the last text part's raw JSON, for the skeleton
    texts_.clear();
    bool seen_candidates = false, seen_usage = false, seen_id = false, seen_model = false;
    Usage usage;
    for (auto field : root) {
      std::string_view key;
      od::value v;
      if (field.unescaped_key().get(key) || field.value().get(v)) return false;
      if (key == "candidates") {
        od::array cands;
        if (seen_candidates || v.get_array().get(cands)) return false;
        seen_candidates = true;
        size_t n = 0;
        for (auto cv : cands) {
          od::object cand;
          if (++n > 1 || cv.get_object().get(cand)) return false;
          bool seen_content = false, seen_finish = false;
          for (auto cf : cand) {
            std::string_view ck;
            od::value cvv;
            if (cf.unescaped_key().get(ck) || cf.value().get(cvv)) return false;
            if (ck == "content") {
              od::object content;
              if (seen_content || cvv.get_object().get(content)) return false;
              seen_content = true;
              bool seen_parts = false;
              for (auto pf : content) {
                std::string_view pk;
                od::value pv;
                if (pf.unescaped_key().get(pk) || pf.value().get(pv)) return false;
                if (pk == "parts") {
                  od::array parts;
                  if (seen_parts || pv.get_array().get(parts)) return false;
                  seen_parts = true;
                  for (auto part : parts) {
                    od::object po;
                    if (part.get_object().get(po)) return false;
                    size_t keys = 0;
                    for (auto tf : po) {
                      std::string_view tk, text;
                      od::value tv;
                      if (tf.unescaped_key().get(tk) || tf.value().get(tv)) return false;
                      if (++keys > 1 || tk != "text") return false;
                      text_token = tv.raw_json_token();
                      if (tv.get_string().get(text)) return false;
                      texts_.push_back(text);
                    }
                    if (keys == 0) return false;
                  }
                } else if (!skip_value(pv)) {
                  return false;
                }
              }
            } else if (ck == "finishReason") {
              if (seen_finish || !string_or_null(cvv, finish)) return false;
              seen_finish = true;
            } else if (!skip_value(cvv)) {
              return false;
            }
          }
        }
        if (n == 0) return false;
      } else if (key == "usageMetadata") {
        od::object um;
        if (seen_usage || v.get_object().get(um)) return false;
        seen_usage = true;
        int64_t prompt = 0, tool_prompt = 0, cached = 0, thoughts = 0, candidates = 0;
        for (auto uf : um) {
          std::string_view uk;
          od::value uv;
          if (uf.unescaped_key().get(uk) || uf.value().get(uv)) return false;
          int64_t* into = uk == "promptTokenCount"          ? &prompt
                          : uk == "toolUsePromptTokenCount" ? &tool_prompt
                          : uk == "cachedContentTokenCount" ? &cached
                          : uk == "thoughtsTokenCount"      ? &thoughts
                          : uk == "candidatesTokenCount"    ? &candidates
                                                            : nullptr;
          if (into == nullptr) {
            if (!skip_value(uv)) return false;
          } else if (uv.get_int64().get(*into)) {
            return false;
          }
        }
        // As read_usage: negative counts read as 0.
        auto floor0 = [](int64_t x) { return std::max<int64_t>(x, 0); };
        const int64_t total_prompt = sat_add(floor0(prompt), floor0(tool_prompt));
        usage.cache_read = floor0(cached);
        usage.input = std::max<int64_t>(sat_sub(total_prompt, usage.cache_read), 0);
        usage.reasoning = floor0(thoughts);
        usage.output = sat_add(floor0(candidates), usage.reasoning);
        usage.reported = true;
      } else if (key == "responseId" || key == "modelVersion") {
        bool& seen = key == "responseId" ? seen_id : seen_model;
        std::string_view& into = key == "responseId" ? id : model;
        od::json_type t;
        if (seen || v.type().get(t)) return false;
        seen = true;
        if (t == od::json_type::string) {
          if (v.get_string().get(into)) return false;
        } else if (!skip_value(v)) {
          return false;
        }
      } else if (key == "error" || key == "promptFeedback") {
        return false;
      } else if (!skip_value(v)) {
        return false;
      }
    }
    if (!at_end(doc) || !seen_candidates) return false;
    // The pass is sure: act as on_data would.
    if (seen_usage) usage_ = usage;
    if (!started_) {
      started_ = true;
      Event& s = out.emplace_back();
      s.kind = EventKind::message_start;
      s.id = std::string(id);
      s.model = std::string(model);
      s.usage = usage_;
    }
    for (std::string_view text : texts_) {
      if (text.empty()) continue;
      if (!open_ || open_kind_ != BlockKind::text) open(BlockKind::text, out);
      delta(DeltaKind::text, text, out);
    }
    if (!finish.empty()) {
      saw_finish_ = true;
      finish_reason_ = std::string(finish);
    }
    ++fast_events_;
    // One text part and no finish: the shape the next chunks are likely to repeat (with the
    // same usage, which the skeleton's bytes include).
    if (finish.empty() && texts_.size() == 1 && !texts_[0].empty()) {
      skeleton_.remember(data, padded_, text_token);
      skeleton_usage_ = seen_usage ? usage : Usage{};
    } else {
      skeleton_.forget();
    }
    return true;
  }

  void on_part(const json::object& p, std::vector<Event>& out) {
    const std::string_view sig = str(p, "thoughtSignature");
    const bool thought = boolean(p, "thought").value_or(false);
    const json::value* text = field(p, "text");
    if (thought) {
      if (!open_ || open_kind_ != BlockKind::thinking) open(BlockKind::thinking, out);
      if (text && text->is_string() && !text->get_string().empty()) {
        delta(DeltaKind::thinking, std::string(text->get_string()), out);
      }
      if (!sig.empty()) delta(DeltaKind::signature, std::string(sig), out);
      return;
    }
    const json::object* call = obj(p, "functionCall");
    if (!sig.empty() && (call || (text && text->is_string()))) {
      open(BlockKind::thinking, out);
      delta(DeltaKind::signature, std::string(sig), out);
      close_block(out);
    }
    if (text && text->is_string()) {
      if (text->get_string().empty()) return;
      if (!open_ || open_kind_ != BlockKind::text) open(BlockKind::text, out);
      delta(DeltaKind::text, std::string(text->get_string()), out);
      return;
    }
    if (call) {
      std::string id(str(*call, "id"));
      if (id.empty()) id = "call_" + std::to_string(next_call_++);
      const json::object* args = obj(*call, "args");
      open(BlockKind::tool_use, out, id, std::string(str(*call, "name")));
      delta(DeltaKind::input_json, args ? to_text(*args) : "{}", out);
      close_block(out);
      any_call_ = true;
    }
    // inlineData / executableCode / codeExecutionResult: no canonical stream form (lossy).
  }

  void open(BlockKind k, std::vector<Event>& out, std::string id = {}, std::string name = {}) {
    close_block(out);
    emit_block_start(out, index_, k, std::move(id), std::move(name));
    open_ = true;
    open_kind_ = k;
  }

  void delta(DeltaKind k, std::string_view text, std::vector<Event>& out) {
    emit_delta(out, index_, k, text);
  }

  void close_block(std::vector<Event>& out) {
    if (!open_) return;
    emit_block_stop(out, index_++);
    open_ = false;
  }

  void error(int status, std::string type, std::string message, std::vector<Event>& out) {
    Event e;
    e.kind = EventKind::error;
    e.status = status;
    e.error_type = std::move(type);
    e.text = std::move(message);
    out.push_back(std::move(e));
    done_ = true;
  }

  const bool fast_;
  std::string padded_;                  // the chunk with simdjson's padding (fast_chunk)
  Skeleton skeleton_;                   // the last one-text chunk fast_chunk accepted, but for it
  Usage skeleton_usage_;                // that chunk's usage (reported = false: it had none)
  std::vector<std::string_view> texts_;  // fast_chunk's text parts (valid until the next parse)
  size_t fast_events_ = 0;
  size_t skeleton_events_ = 0;
  http::SseParser sse_;
  bool started_ = false, done_ = false, saw_finish_ = false, any_call_ = false;
  bool open_ = false;
  BlockKind open_kind_ = BlockKind::text;
  int index_ = 0;
  int next_call_ = 0;
  std::string finish_reason_;
  Usage usage_;
};

}  // namespace

std::string encode_request(const Request& req, std::string_view /*upstream_model*/) {
  // The model travels in the URL (upstream_path), never in the body.
  return encode(req);
}

Result<Response> decode_response(std::string_view body) {
  try {
    return decode(body);
  } catch (const std::exception& e) {
    return protocol_error(e.what());
  }
}

std::unique_ptr<StreamDecoder> stream_decoder() { return std::make_unique<Decoder>(true); }

std::unique_ptr<StreamDecoder> stream_decoder_without_fast_pass() {
  return std::make_unique<Decoder>(false);
}

UpstreamError decode_error(int status, std::string_view body) {
  UpstreamError u;
  u.status = status;
  std::string_view gstatus;
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (!ec) {
    if (const json::object* e = error_object(v)) {
      u.message = std::string(str(*e, "message"));
      gstatus = str(*e, "status");
    }
  }
  if (u.message.empty()) u.message = "The upstream answered with HTTP " + std::to_string(status);
  u.type = error_type(status, gstatus, u.message);
  return u;
}

}  // namespace sluice::canonical::gemini
