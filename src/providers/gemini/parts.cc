#include "providers/gemini/parts.h"

#include <algorithm>

#include "canonical/tables.h"
#include "common/saturating.h"

namespace sluice::canonical::gemini {

namespace {

Block signature_block(std::string_view sig) {
  Block b;
  b.kind = BlockKind::thinking;
  b.signature = std::string(sig);
  return b;
}

// Optional string member: absent/null is fine, another type is a 400.
Result<void> opt_string(const json::object& o, std::string_view key, const std::string& path) {
  const json::value* v = field(o, key);
  if (v && !v->is_string()) {
    return invalid("'" + std::string(key) + "' must be a string.", path + "." + std::string(key));
  }
  return {};
}

Result<void> need_string(const json::object& o, std::string_view key, const std::string& path) {
  const json::value* v = field(o, key);
  if (!v || !v->is_string()) {
    return invalid("'" + std::string(key) + "' is required and must be a string.",
                   path + "." + std::string(key));
  }
  return {};
}

// A member that must be an object when present.
Result<const json::object*> opt_object(const json::object& o, std::string_view key,
                                       const std::string& path) {
  const json::value* v = field(o, key);
  if (!v) return static_cast<const json::object*>(nullptr);
  if (!v->is_object()) {
    return invalid("'" + std::string(key) + "' must be an object.",
                   path + "." + std::string(key));
  }
  return &v->get_object();
}

std::string guess_mime(std::string_view url) {
  std::string_view path = url.substr(0, url.find_first_of("?#"));
  size_t dot = path.rfind('.');
  std::string ext;
  if (dot != std::string_view::npos) {
    for (char c : path.substr(dot + 1)) ext += static_cast<char>(std::tolower(c));
  }
  if (ext == "png") return "image/png";
  if (ext == "gif") return "image/gif";
  if (ext == "webp") return "image/webp";
  if (ext == "heic") return "image/heic";
  if (ext == "heif") return "image/heif";
  if (ext == "pdf") return "application/pdf";
  return "image/jpeg";
}

// A functionResponse.response → (text, is_error). {"result": s} / {"output": s} unwrap to s and
// {"error": s} to an error result, so encode_request's shapes come back unchanged.
void response_text(const json::object& resp, Block& b) {
  if (resp.size() == 1) {
    const auto& kv = *resp.begin();
    if (kv.value().is_string() && (kv.key() == "result" || kv.key() == "output" ||
                                   kv.key() == "error")) {
      Block t;
      t.text = std::string(kv.value().get_string());
      b.content.push_back(std::move(t));
      b.is_error = kv.key() == "error";
      return;
    }
  }
  Block t;
  t.text = to_text(resp);
  b.content.push_back(std::move(t));
}

}  // namespace

Result<void> read_part(const json::value& pv, const std::string& path, PartReader& r,
                       std::vector<Block>& out) {
  const json::object* p = pv.if_object();
  if (!p) return invalid("Each part must be an object.", path);
  if (auto ok = opt_string(*p, "thoughtSignature", path); !ok) return ok;
  const std::string_view sig = str(*p, "thoughtSignature");
  const bool thought = boolean(*p, "thought").value_or(false);

  if (const json::value* t = field(*p, "text")) {
    if (!t->is_string()) return invalid("'text' must be a string.", path + ".text");
    std::string_view text = t->get_string();
    if (thought) {
      Block b = signature_block(sig);
      b.text = std::string(text);
      out.push_back(std::move(b));
      return {};
    }
    if (!sig.empty()) out.push_back(signature_block(sig));
    if (text.empty() && r.drop_empty_text) return {};
    Block b;
    b.text = std::string(text);
    out.push_back(std::move(b));
    return {};
  }
  if (thought) {  // a thought part without text: only its signature matters
    if (!sig.empty()) out.push_back(signature_block(sig));
    return {};
  }

  auto inline_data = opt_object(*p, "inlineData", path);
  if (!inline_data) return inline_data.error();
  if (const json::object* d = *inline_data) {
    const std::string sub = path + ".inlineData";
    if (auto ok = need_string(*d, "mimeType", sub); !ok) return ok;
    if (auto ok = need_string(*d, "data", sub); !ok) return ok;
    if (!sig.empty()) out.push_back(signature_block(sig));
    Block b;
    b.kind = BlockKind::image;
    b.image_media_type = std::string(str(*d, "mimeType"));
    b.image_data = std::string(str(*d, "data"));
    out.push_back(std::move(b));
    return {};
  }

  auto file_data = opt_object(*p, "fileData", path);
  if (!file_data) return file_data.error();
  if (const json::object* d = *file_data) {
    const std::string sub = path + ".fileData";
    if (auto ok = opt_string(*d, "mimeType", sub); !ok) return ok;
    if (auto ok = need_string(*d, "fileUri", sub); !ok) return ok;
    if (!sig.empty()) out.push_back(signature_block(sig));
    Block b;
    b.kind = BlockKind::image;
    b.image_url = std::string(str(*d, "fileUri"));
    b.image_media_type = std::string(str(*d, "mimeType"));
    out.push_back(std::move(b));
    return {};
  }

  auto call = opt_object(*p, "functionCall", path);
  if (!call) return call.error();
  if (const json::object* c = *call) {
    const std::string sub = path + ".functionCall";
    if (auto ok = need_string(*c, "name", sub); !ok) return ok;
    if (auto ok = opt_string(*c, "id", sub); !ok) return ok;
    auto args = opt_object(*c, "args", sub);
    if (!args) return args.error();
    if (!sig.empty()) out.push_back(signature_block(sig));
    Block b;
    b.kind = BlockKind::tool_use;
    b.tool_name = std::string(str(*c, "name"));
    b.tool_id = str(*c, "id").empty() ? r.next_id() : std::string(str(*c, "id"));
    b.tool_input = *args ? to_text(**args) : "{}";
    r.last_call_id[b.tool_name] = b.tool_id;
    r.unanswered[b.tool_name].push_back(b.tool_id);
    r.any_call = true;
    out.push_back(std::move(b));
    return {};
  }

  auto fresp = opt_object(*p, "functionResponse", path);
  if (!fresp) return fresp.error();
  if (const json::object* f = *fresp) {
    const std::string sub = path + ".functionResponse";
    if (auto ok = need_string(*f, "name", sub); !ok) return ok;
    if (auto ok = opt_string(*f, "id", sub); !ok) return ok;
    auto resp = opt_object(*f, "response", sub);
    if (!resp) return resp.error();
    if (!sig.empty()) out.push_back(signature_block(sig));
    Block b;
    b.kind = BlockKind::tool_result;
    b.tool_name = std::string(str(*f, "name"));
    std::deque<std::string>& open_calls = r.unanswered[b.tool_name];
    if (!str(*f, "id").empty()) {
      b.tool_id = std::string(str(*f, "id"));
      std::erase(open_calls, b.tool_id);
    } else if (!open_calls.empty()) {
      b.tool_id = std::move(open_calls.front());
      open_calls.pop_front();
    } else if (auto it = r.last_call_id.find(b.tool_name); it != r.last_call_id.end()) {
      b.tool_id = it->second;
    } else {
      b.tool_id = b.tool_name;
    }
    if (*resp) {
      response_text(**resp, b);
    } else {
      Block t;
      t.text = "{}";
      b.content.push_back(std::move(t));
    }
    out.push_back(std::move(b));
    return {};
  }

  // Code execution parts and other server-side tool traces have no canonical form (lossy).
  if (field(*p, "executableCode") || field(*p, "codeExecutionResult") ||
      field(*p, "videoMetadata")) {
    if (!sig.empty()) out.push_back(signature_block(sig));
    return {};
  }
  if (!sig.empty()) {  // a part that only carries a signature
    out.push_back(signature_block(sig));
    return {};
  }
  return invalid("Unsupported part: expected text, inlineData, fileData, functionCall or "
                 "functionResponse.",
                 path);
}

// ---- writing -----------------------------------------------------------------------------

json::value args_object(std::string_view tool_input) {
  if (tool_input.empty()) return json::object();
  json::value v = from_text(tool_input);
  if (v.is_object()) return v;
  json::object o;
  o["_raw_arguments"] = tool_input;
  return o;
}

json::object function_call(std::string_view id, std::string_view name, std::string_view input) {
  json::object fc;
  if (!id.empty()) fc["id"] = id;
  fc["name"] = name;
  fc["args"] = args_object(input);
  return fc;
}

void PartWriter::add_part(json::object part) {
  if (!pending_signature_.empty()) {
    if (part.contains("thoughtSignature")) {
      // Two signatures in a row: the held one keeps its own carrier part.
      json::object carrier;
      carrier["text"] = "";
      carrier["thoughtSignature"] = pending_signature_;
      parts_.push_back(std::move(carrier));
    } else {
      part["thoughtSignature"] = pending_signature_;
    }
    pending_signature_.clear();
  }
  parts_.push_back(std::move(part));
}

void PartWriter::add(const Block& b) {
  json::object part;
  switch (b.kind) {
    case BlockKind::text:
      part["text"] = b.text;
      break;
    case BlockKind::thinking:
      if (b.text.empty()) {
        if (b.signature.empty()) return;
        if (!pending_signature_.empty()) add_part(json::object{{"text", ""}});
        pending_signature_ = b.signature;
        return;
      }
      if (drop_unsigned_thoughts && b.signature.empty()) return;
      part["text"] = b.text;
      part["thought"] = true;
      if (!b.signature.empty()) part["thoughtSignature"] = b.signature;
      break;
    case BlockKind::redacted_thinking:
      return;  // no Gemini counterpart (lossy)
    case BlockKind::image: {
      std::string_view url = b.image_url;
      if (b.image_data.empty() && url.starts_with("data:")) {
        // data:<mime>;base64,<data> — carried inline.
        size_t comma = url.find(',');
        size_t semi = url.find(';');
        json::object d;
        d["mimeType"] = url.substr(5, std::min(semi, comma) - 5);
        d["data"] = comma == std::string_view::npos ? std::string_view() : url.substr(comma + 1);
        part["inlineData"] = std::move(d);
      } else if (!b.image_data.empty()) {
        json::object d;
        d["mimeType"] = b.image_media_type.empty() ? "image/jpeg" : b.image_media_type;
        d["data"] = b.image_data;
        part["inlineData"] = std::move(d);
      } else {
        json::object d;
        d["mimeType"] = b.image_media_type.empty() ? guess_mime(url) : b.image_media_type;
        d["fileUri"] = url;
        part["fileData"] = std::move(d);
      }
      break;
    }
    case BlockKind::tool_use:
      part["functionCall"] = function_call(b.tool_id, b.tool_name, b.tool_input);
      break;
    case BlockKind::tool_result: {
      std::string text;
      for (const Block& c : b.content) {
        if (c.kind != BlockKind::text) continue;  // images in tool results: lossy
        if (!text.empty()) text += "\n";
        text += c.text;
      }
      json::object fr;
      if (!b.tool_id.empty()) fr["id"] = b.tool_id;
      std::string name = b.tool_name;
      if (name.empty() && tool_names_) {
        if (auto it = tool_names_->find(b.tool_id); it != tool_names_->end()) name = it->second;
      }
      fr["name"] = name.empty() ? b.tool_id : name;
      json::object resp;
      if (b.is_error) {
        resp["error"] = text;
      } else if (json::value v = from_text(text); v.is_object()) {
        resp = std::move(v.get_object());
      } else {
        resp["result"] = text;
      }
      fr["response"] = std::move(resp);
      part["functionResponse"] = std::move(fr);
      break;
    }
  }
  add_part(std::move(part));
}

json::array PartWriter::take() {
  if (!pending_signature_.empty()) {
    json::object carrier;
    carrier["text"] = "";
    carrier["thoughtSignature"] = pending_signature_;
    parts_.push_back(std::move(carrier));
    pending_signature_.clear();
  }
  return std::move(parts_);
}

// ---- usage and finish reasons ------------------------------------------------------------------

json::object usage_metadata(const Usage& u) {
  json::object m;
  const int64_t prompt = u.prompt_total();
  const int64_t output = std::max<int64_t>(u.output, 0);
  const int64_t reasoning = std::clamp<int64_t>(u.reasoning, 0, output);
  m["promptTokenCount"] = prompt;
  m["candidatesTokenCount"] = sat_sub(output, reasoning);
  m["totalTokenCount"] = sat_add(prompt, output);
  if (u.cache_read > 0) m["cachedContentTokenCount"] = u.cache_read;
  if (reasoning > 0) m["thoughtsTokenCount"] = reasoning;
  return m;
}

Usage read_usage(const json::object& um) {
  auto count = [&](std::string_view key) {
    return std::max<int64_t>(integer(um, key).value_or(0), 0);
  };
  Usage u;
  const int64_t prompt = sat_add(count("promptTokenCount"), count("toolUsePromptTokenCount"));
  u.cache_read = count("cachedContentTokenCount");
  u.input = std::max<int64_t>(sat_sub(prompt, u.cache_read), 0);
  u.reasoning = count("thoughtsTokenCount");
  u.output = sat_add(count("candidatesTokenCount"), u.reasoning);
  u.reported = true;
  return u;
}

StopReason read_finish(std::string_view reason, bool any_call) {
  if (reason == "MAX_TOKENS") return StopReason::max_tokens;
  for (std::string_view f : kGeminiFilterReasons) {
    if (reason == f) return StopReason::refusal;
  }
  // STOP, and (lossy) MALFORMED_FUNCTION_CALL, OTHER, unspecified and unknown reasons.
  return any_call ? StopReason::tool_use : StopReason::end_turn;
}

std::string error_json(int status, std::string_view message) {
  json::object e;
  e["code"] = status;
  e["message"] = message;
  e["status"] = error_row(status).gemini_status;
  json::object o;
  o["error"] = std::move(e);
  return to_text(o);
}

}  // namespace sluice::canonical::gemini
