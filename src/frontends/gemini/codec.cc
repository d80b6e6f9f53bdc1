// Gemini generateContent, client side (v1beta REST, camelCase): decode a request, encode a
// unary answer, an alt=sse stream and errors.
//
// Lossy (what this side cannot carry through the canonical model):
// - generationConfig fields besides maxOutputTokens, temperature, topP, topK, stopSequences,
//   thinkingConfig.thinkingBudget (responseSchema/responseMimeType, seed, penalties, ...): dropped.
// - thinkingConfig.includeThoughts: dropped (thoughts are forwarded when the upstream sends them).
// - thinkingBudget -1 (dynamic): dropped; 0 is kept as thinking_budget 0 (thinking off).
// - candidateCount > 1: rejected (400).
// - googleSearch / codeExecution / urlContext tools and executableCode / codeExecutionResult
//   parts: dropped.
// - safetySettings, cachedContent, labels: dropped.
// - inlineData / fileData of any mimeType are carried as image blocks (other protocols may
//   reject non-image media).
// - allowedFunctionNames with ANY and more than one name: becomes required (any tool).
// - functionResponse.response other than {"result"|"output"|"error": string}: forwarded as
//   its minified JSON text.
// - Answers: redacted_thinking blocks dropped; tool calls stream as whole functionCall parts
//   (Gemini's format has no partial arguments), so a call reaches the client at its block_stop.
// - Answers: stop_sequence, pause_turn and error stop reasons all read as STOP/OTHER.
#include <cmath>
#include <random>

#include "canonical/codec.h"
#include "canonical/json.h"
#include "canonical/tables.h"
#include "providers/gemini/parts.h"

namespace sluice::canonical::gemini {

namespace {

std::string idx(std::string_view base, size_t i) {
  return std::string(base) + "[" + std::to_string(i) + "]";
}

std::string random_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  uint64_t x = rng();
  for (int i = 0; i < 16; ++i, x >>= 4) id += kHex[x & 15];
  return id;
}

// Gemini schemas spell types in upper case ("OBJECT"); JSON Schema wants lower case.
void lower_types(json::value& v) {
  if (json::object* o = v.if_object()) {
    for (auto& kv : *o) {
      if (kv.key() == "type" && kv.value().is_string()) {
        json::string& s = kv.value().get_string();
        for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      } else {
        lower_types(kv.value());
      }
    }
  } else if (json::array* a = v.if_array()) {
    for (auto& e : *a) lower_types(e);
  }
}

Result<void> read_tools(const json::object& body, Request& req) {
  const json::value* tv = field(body, "tools");
  if (!tv) return {};
  if (!tv->is_array()) return invalid("'tools' must be an array.", "tools");
  const json::array& tools = tv->get_array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string path = idx("tools", i);
    const json::object* t = tools[i].if_object();
    if (!t) return invalid("Each tool must be an object.", path);
    const json::value* fv = field(*t, "functionDeclarations");
    if (!fv) continue;  // googleSearch, codeExecution, ...: no canonical form (lossy)
    if (!fv->is_array()) {
      return invalid("'functionDeclarations' must be an array.", path + ".functionDeclarations");
    }
    const json::array& decls = fv->get_array();
    for (size_t j = 0; j < decls.size(); ++j) {
      const std::string dpath = idx(path + ".functionDeclarations", j);
      const json::object* d = decls[j].if_object();
      if (!d) return invalid("Each function declaration must be an object.", dpath);
      if (str(*d, "name").empty()) {
        return invalid("A function declaration needs a non-empty 'name'.", dpath + ".name");
      }
      Tool tool;
      tool.name = std::string(str(*d, "name"));
      tool.description = std::string(str(*d, "description"));
      const json::value* params = field(*d, "parametersJsonSchema");
      const char* pname = ".parametersJsonSchema";
      if (!params) {
        params = field(*d, "parameters");
        pname = ".parameters";
      }
      if (params) {
        if (!params->is_object()) {
          return invalid("The parameters must be an object.", dpath + pname);
        }
        json::value schema = *params;
        lower_types(schema);
        tool.parameters = to_text(schema);
      }
      req.tools.push_back(std::move(tool));
    }
  }
  return {};
}

Result<void> read_tool_config(const json::object& body, Request& req) {
  const json::object* tc = obj(body, "toolConfig");
  if (!tc) return {};
  const json::object* fc = obj(*tc, "functionCallingConfig");
  if (!fc) return {};
  const std::string_view mode = str(*fc, "mode");
  const json::array* allowed = arr(*fc, "allowedFunctionNames");
  if (mode == "AUTO" || mode == "VALIDATED") {
    req.tool_choice.kind = ToolChoiceKind::auto_;
  } else if (mode == "NONE") {
    req.tool_choice.kind = ToolChoiceKind::none;
  } else if (mode == "ANY") {
    req.tool_choice.kind = ToolChoiceKind::required;
    if (allowed && allowed->size() == 1 && (*allowed)[0].is_string()) {
      req.tool_choice.kind = ToolChoiceKind::named;
      req.tool_choice.name = std::string((*allowed)[0].get_string());
    }
  } else if (!mode.empty() && mode != "MODE_UNSPECIFIED") {
    return invalid("Unknown function calling mode '" + std::string(mode) +
                       "' (expected AUTO, ANY, NONE or VALIDATED).",
                   "toolConfig.functionCallingConfig.mode");
  }
  return {};
}

Result<void> read_generation_config(const json::object& body, Request& req) {
  const json::value* gv = field(body, "generationConfig");
  if (!gv) return {};
  if (!gv->is_object()) return invalid("'generationConfig' must be an object.", "generationConfig");
  const json::object& g = gv->get_object();
  auto check_number = [&](std::string_view key) -> Result<void> {
    if (field(g, key) && !(number(g, key) && std::isfinite(*number(g, key)))) {
      return invalid("'" + std::string(key) + "' must be a (finite) number.",
                     "generationConfig." + std::string(key));
    }
    return {};
  };
  auto check_int = [&](std::string_view key) -> Result<void> {
    if (field(g, key) && !integer(g, key)) {
      return invalid("'" + std::string(key) + "' must be an integer.",
                     "generationConfig." + std::string(key));
    }
    return {};
  };
  for (std::string_view k : {"maxOutputTokens", "topK", "candidateCount"}) {
    if (auto ok = check_int(k); !ok) return ok;
  }
  for (std::string_view k : {"temperature", "topP"}) {
    if (auto ok = check_number(k); !ok) return ok;
  }
  if (integer(g, "candidateCount").value_or(1) > 1) {
    return invalid("Only one candidate is supported (candidateCount must be 1).",
                   "generationConfig.candidateCount");
  }
  req.max_tokens = integer(g, "maxOutputTokens");
  req.temperature = number(g, "temperature");
  req.top_p = number(g, "topP");
  req.top_k = integer(g, "topK");
  if (const json::value* sv = field(g, "stopSequences")) {
    if (!sv->is_array()) {
      return invalid("'stopSequences' must be an array of strings.",
                     "generationConfig.stopSequences");
    }
    for (const json::value& s : sv->get_array()) {
      if (!s.is_string()) {
        return invalid("'stopSequences' must be an array of strings.",
                       "generationConfig.stopSequences");
      }
      req.stop.emplace_back(s.get_string());
    }
  }
  if (const json::object* th = obj(g, "thinkingConfig")) {
    if (field(*th, "thinkingBudget") && !integer(*th, "thinkingBudget")) {
      return invalid("'thinkingBudget' must be an integer.",
                     "generationConfig.thinkingConfig.thinkingBudget");
    }
    std::optional<int64_t> budget = integer(*th, "thinkingBudget");
    if (budget && *budget >= 0) req.thinking_budget = budget;  // -1 = dynamic: unset (lossy)
    // thinkingLevel (Gemini 3) maps onto the OpenAI-style effort.
    std::string_view level = str(*th, "thinkingLevel");
    if (level == "low" || level == "LOW") req.reasoning_effort = "low";
    if (level == "high" || level == "HIGH") req.reasoning_effort = "high";
  }
  return {};
}

Result<Request> decode(std::string_view body, const FrontendContext& ctx) {
  ChunkArena arena;  // the tree dies here: the Request holds copies
  auto parsed = parse_json(body, arena.storage());
  if (!parsed) return parsed.error();
  const json::object* root = parsed->if_object();
  if (!root) return invalid("The request body must be a JSON object.");

  Request req;
  std::string_view model = ctx.model;
  if (model.starts_with("models/")) model.remove_prefix(7);
  if (model.empty()) return invalid("The model is missing from the URL.", "model");
  req.model = std::string(model);
  req.stream = ctx.stream;
  req.include_usage = true;

  // systemInstruction: a Content (role ignored); a bare string is accepted too.
  if (const json::value* sv = field(*root, "systemInstruction")) {
    if (sv->is_string()) {
      Block b;
      b.text = std::string(sv->get_string());
      req.system.push_back(std::move(b));
    } else if (const json::object* so = sv->if_object()) {
      const json::array* parts = arr(*so, "parts");
      if (!parts) return invalid("'parts' must be an array.", "systemInstruction.parts");
      for (size_t i = 0; i < parts->size(); ++i) {
        const json::object* p = (*parts)[i].if_object();
        if (!p || !field(*p, "text") || !field(*p, "text")->is_string()) {
          return invalid("System instruction parts must be text parts.",
                         idx("systemInstruction.parts", i));
        }
        Block b;
        b.text = std::string(str(*p, "text"));
        req.system.push_back(std::move(b));
      }
    } else {
      return invalid("'systemInstruction' must be a Content object.", "systemInstruction");
    }
  }

  const json::value* cv = field(*root, "contents");
  if (!cv || !cv->is_array() || cv->get_array().empty()) {
    return invalid("'contents' is required and must be a non-empty array.", "contents");
  }
  const json::array& contents = cv->get_array();
  PartReader reader;
  for (size_t i = 0; i < contents.size(); ++i) {
    const std::string path = idx("contents", i);
    const json::object* c = contents[i].if_object();
    if (!c) return invalid("Each content must be an object.", path);
    Message m;
    const json::value* rv = field(*c, "role");
    if (rv && !rv->is_string()) return invalid("'role' must be a string.", path + ".role");
    const std::string_view role = str(*c, "role");
    if (role.empty() || role == "user" || role == "function" || role == "tool") {
      m.role = Role::user;
    } else if (role == "model") {
      m.role = Role::assistant;
    } else {
      return invalid("Unknown role '" + std::string(role) + "' (expected user or model).",
                     path + ".role");
    }
    const json::value* pv = field(*c, "parts");
    if (!pv || !pv->is_array()) return invalid("'parts' must be an array.", path + ".parts");
    const json::array& parts = pv->get_array();
    for (size_t j = 0; j < parts.size(); ++j) {
      if (auto ok = read_part(parts[j], idx(path + ".parts", j), reader, m.content); !ok) {
        return ok.error();
      }
    }
    req.messages.push_back(std::move(m));
  }

  if (auto ok = read_tools(*root, req); !ok) return ok.error();
  if (auto ok = read_tool_config(*root, req); !ok) return ok.error();
  if (auto ok = read_generation_config(*root, req); !ok) return ok.error();
  return req;
}

// One GenerateContentResponse with a single candidate.
// Empty parts: no content at all (as Gemini answers a blocked candidate).
json::object chunk(json::array parts, std::string_view finish) {
  json::object cand;
  if (!parts.empty()) {
    json::object content;
    content["role"] = "model";
    content["parts"] = std::move(parts);
    cand["content"] = std::move(content);
  }
  if (!finish.empty()) cand["finishReason"] = finish;
  cand["index"] = 0;
  json::object o;
  o["candidates"] = json::array{std::move(cand)};
  return o;
}

void finish_chunk(json::object& o, const std::string& model, const std::string& id) {
  o["modelVersion"] = model;
  o["responseId"] = id;
}

class Encoder final : public StreamEncoder {
 public:
  explicit Encoder(const Request& req) : model_(req.model) {}

  void on_event(const Event& e, std::string& out) override {
    switch (e.kind) {
      case EventKind::message_start:
        id_ = e.id.empty() ? random_id() : e.id;
        if (!e.model.empty() && model_.empty()) model_ = e.model;
        suffix_.clear();  // rendered again with this id and model
        usage_ = e.usage;
        break;
      case EventKind::block_start:
        kind_ = e.block;
        block_has_text_ = false;
        tool_id_ = e.tool_id;
        tool_name_ = e.tool_name;
        tool_input_.clear();
        break;
      case EventKind::block_delta:
        delta(e, out);
        break;
      case EventKind::block_stop:
        if (kind_ == BlockKind::tool_use) {
          // Gemini sends whole calls: the accumulated arguments go out at the block's end.
          json::object part;
          part["functionCall"] = function_call(tool_id_, tool_name_, tool_input_);
          emit_part(std::move(part), out);
        }
        kind_ = BlockKind::text;
        break;
      case EventKind::message_delta: {
        merge_usage(e.usage);
        json::object part;
        part["text"] = "";
        json::array parts;
        if (!pending_signature_.empty()) {
          part["thoughtSignature"] = pending_signature_;
          pending_signature_.clear();
        }
        parts.push_back(std::move(part));
        json::object o = chunk(std::move(parts), stop_row(e.stop_reason).gemini);
        o["usageMetadata"] = usage_metadata(usage_);
        write(std::move(o), out);
        break;
      }
      case EventKind::message_stop:
        break;
      case EventKind::error:
        fail(e.status ? e.status : 500, e.text, out);
        break;
    }
  }

  void finish(std::string& /*out*/) override {}  // alt=sse has no trailer

  void fail(int status, std::string_view message, std::string& out) override {
    out += "data: ";
    out += error_json(status, message);
    out += "\n\n";
  }

 private:
  // The per-event hot path (text and thought deltas with no signature waiting): written
  // directly, byte-identical to write(chunk({part})).
  void text_part(std::string_view text, bool thought, std::string& out) {
    if (id_.empty()) id_ = random_id();
    if (suffix_.empty()) {  // the chunk's tail is the same for every part: rendered once
      suffix_ = "\"}]},\"index\":0}],\"modelVersion\":\"";
      append_json_escaped(suffix_, model_);
      suffix_ += "\",\"responseId\":\"";
      append_json_escaped(suffix_, id_);
      suffix_ += "\"}\n\n";
    }
    out += "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"";
    append_json_escaped(out, text);
    if (thought) out += "\",\"thought\":true";
    // (suffix_ starts with the text's closing quote, which a thought part already wrote.)
    out += std::string_view(suffix_).substr(thought ? 1 : 0);
  }

  void delta(const Event& e, std::string& out) {
    if ((e.delta == DeltaKind::text || e.delta == DeltaKind::thinking) && !e.text.empty() &&
        pending_signature_.empty()) {
      if (e.delta == DeltaKind::thinking) block_has_text_ = true;
      text_part(e.text, e.delta == DeltaKind::thinking, out);
      return;
    }
    json::object part;
    switch (e.delta) {
      case DeltaKind::text:
        if (e.text.empty()) return;
        part["text"] = e.text;
        break;
      case DeltaKind::thinking:
        if (e.text.empty()) return;
        block_has_text_ = true;
        part["text"] = e.text;
        part["thought"] = true;
        break;
      case DeltaKind::signature:
        if (e.text.empty()) return;
        if (!block_has_text_) {
          // A signature-only block belongs to the next part (Gemini's thoughtSignature).
          pending_signature_ = e.text;
          return;
        }
        part["text"] = "";
        part["thought"] = true;
        part["thoughtSignature"] = e.text;
        break;
      case DeltaKind::input_json:
        tool_input_ += e.text;
        return;
    }
    emit_part(std::move(part), out);
  }

  void emit_part(json::object part, std::string& out) {
    if (!pending_signature_.empty() && !part.contains("thoughtSignature")) {
      part["thoughtSignature"] = pending_signature_;
      pending_signature_.clear();
    }
    json::array parts;
    parts.push_back(std::move(part));
    write(chunk(std::move(parts), {}), out);
  }

  void write(json::object o, std::string& out) {
    if (id_.empty()) id_ = random_id();
    finish_chunk(o, model_, id_);
    out += "data: ";
    out += to_text(o);
    out += "\n\n";
  }

  // message_start carries the input side, message_delta the final counts: newer non-zero wins.
  void merge_usage(const Usage& u) {
    if (u.input) usage_.input = u.input;
    if (u.output) usage_.output = u.output;
    if (u.cache_read) usage_.cache_read = u.cache_read;
    if (u.cache_creation) usage_.cache_creation = u.cache_creation;
    if (u.reasoning) usage_.reasoning = u.reasoning;
  }

  std::string model_, id_;
  std::string suffix_;  // text_part's rendering of everything after the text (model_, id_ set)
  Usage usage_;
  BlockKind kind_ = BlockKind::text;
  bool block_has_text_ = false;
  std::string tool_id_, tool_name_, tool_input_;
  std::string pending_signature_;
};

}  // namespace

Result<Request> decode_request(std::string_view body, const FrontendContext& ctx) {
  try {
    return decode(body, ctx);
  } catch (const std::exception& e) {
    return invalid(std::string("The request could not be read: ") + e.what());
  }
}

std::string encode_response(const Response& r, const Request& req) {
  PartWriter writer;
  for (const Block& b : r.content) writer.add(b);
  json::array parts = writer.take();
  const std::string model = r.model.empty() ? req.model : r.model;
  const std::string id = r.id.empty() ? random_id() : r.id;
  json::object o = chunk(std::move(parts), stop_row(r.stop_reason).gemini);
  o["usageMetadata"] = usage_metadata(r.usage);
  finish_chunk(o, model, id);
  return to_text(o);
}

std::unique_ptr<StreamEncoder> stream_encoder(const Request& req) {
  return std::make_unique<Encoder>(req);
}

ErrorBody encode_error(int status, std::string_view message) {
  return {status, error_json(status, message)};
}

}  // namespace sluice::canonical::gemini
