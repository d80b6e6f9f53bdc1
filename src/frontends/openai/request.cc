// OpenAI Chat Completions (client side): a /v1/chat/completions body → canonical Request.
//
// Lossy (what the canonical model cannot carry from an OpenAI request):
// - a system/developer message after the first non-system message moves to Request.system
//   (its position in the conversation is lost); developer and system are not told apart.
// - n > 1 is refused (400): one choice only.
// - response_format, logprobs, top_logprobs, logit_bias, seed, presence/frequency_penalty,
//   service_tier, store, metadata, modalities, audio, prediction, web_search_options: ignored.
// - image_url.detail is dropped; input_audio and file content parts are refused (400).
// - message `name` fields (participant names) are dropped.
// - assistant `audio` is dropped; a refusal becomes plain text.
// - legacy function_call on an assistant message gets a generated tool id ("call_legacy_<n>")
//   so that a later role "function" message can point at it.
#include <map>
#include <string>

#include "canonical/codec.h"
#include "canonical/json.h"

namespace sluice::canonical::openai {
namespace {

Error missing(const std::string& param) {
  Error e = invalid("Missing required parameter: '" + param + "'.", param);
  e.code_override = "missing_required_parameter";
  return e;
}

Error bad_type(const std::string& param, std::string_view expected) {
  Error e = invalid("Invalid type for '" + param + "': expected " + std::string(expected) + ".",
                    param);
  e.code_override = "invalid_type";
  return e;
}

Error bad_value(const std::string& param, std::string message) {
  Error e = invalid(std::move(message), param);
  e.code_override = "invalid_value";
  return e;
}

std::string at(const std::string& base, size_t i) { return base + "[" + std::to_string(i) + "]"; }

Block text_block(std::string_view text) {
  Block b;
  b.kind = BlockKind::text;
  b.text = std::string(text);
  return b;
}

// An image_url part's url: `data:<media>;base64,<data>` → inline, http(s) → by reference.
Result<Block> image_block(const json::object& part, const std::string& param) {
  std::string_view url;
  if (const json::object* iu = obj(part, "image_url")) {
    url = str(*iu, "url");
  } else {
    url = str(part, "image_url");  // some clients send the URL as a bare string
  }
  if (url.empty()) return missing(param + ".image_url.url");
  Block b;
  b.kind = BlockKind::image;
  if (url.starts_with("data:")) {
    const size_t marker = url.find(";base64,");
    if (marker == std::string_view::npos) {
      return bad_value(param + ".image_url.url",
                       "Image data URLs must have the form data:<media type>;base64,<data>.");
    }
    b.image_media_type = std::string(url.substr(5, marker - 5));
    b.image_data = std::string(url.substr(marker + 8));
  } else if (url.starts_with("http://") || url.starts_with("https://")) {
    b.image_url = std::string(url);
  } else {
    return bad_value(param + ".image_url.url", "Image URLs must be http(s) URLs or data URLs.");
  }
  return b;
}

// Which content parts a message may hold besides text.
enum class Parts { text, text_or_refusal, text_or_image };

// Message content: a string or an array of content parts ({type:text,text}, plus refusal or
// image_url parts where `allowed` says so). Appends the blocks.
Result<void> content_parts(const json::value& v, const std::string& param, Parts allowed,
                           std::vector<Block>& out) {
  if (v.is_string()) {
    out.push_back(text_block(v.get_string()));
    return {};
  }
  if (!v.is_array()) return bad_type(param, "a string or an array of content parts");
  const json::array& parts = v.get_array();
  for (size_t j = 0; j < parts.size(); ++j) {
    const std::string p = at(param, j);
    const json::object* part = parts[j].if_object();
    if (!part) return bad_type(p, "an object");
    const std::string_view type = str(*part, "type");
    if (type == "text") {
      const json::value* t = field(*part, "text");
      if (!t || !t->is_string()) return missing(p + ".text");
      out.push_back(text_block(t->get_string()));
    } else if (type == "refusal" && allowed == Parts::text_or_refusal) {
      out.push_back(text_block(str(*part, "refusal")));
    } else if (type == "image_url" && allowed == Parts::text_or_image) {
      Result<Block> b = image_block(*part, p);
      if (!b) return b.error();
      out.push_back(std::move(b.value()));
    } else if (allowed == Parts::text_or_image) {
      return bad_value(p + ".type", "Unsupported content part type '" + std::string(type) +
                                        "': this gateway translates text and image_url parts.");
    } else {
      return bad_value(p + ".type", "Unsupported content part type '" + std::string(type) +
                                        "' here: expected 'text'.");
    }
  }
  return {};
}

// A tool result's text as its content blocks (tool messages carry text only).
Result<Block> tool_result(const json::object& m, const std::string& param, std::string tool_id,
                          std::string tool_name) {
  Block b;
  b.kind = BlockKind::tool_result;
  b.tool_id = std::move(tool_id);
  b.tool_name = std::move(tool_name);
  if (const json::value* c = field(m, "content")) {
    Result<void> r = content_parts(*c, param + ".content", Parts::text, b.content);
    if (!r) return r.error();
  }
  return b;
}

struct Decoder {
  Request req;
  std::map<std::string, std::string, std::less<>> tool_names;  // tool_call id → function name
  std::map<std::string, std::string, std::less<>> legacy_ids;  // function name → generated id
  int legacy_count = 0;
  bool last_was_tool = false;      // the last canonical message holds tool results only

  Result<void> assistant(const json::object& m, const std::string& p) {
    Message msg;
    msg.role = Role::assistant;
    // Reasoning first: thinking_blocks (signatures survive) win over reasoning_content.
    if (const json::array* tb = arr(m, "thinking_blocks")) {
      for (size_t j = 0; j < tb->size(); ++j) {
        const std::string q = at(p + ".thinking_blocks", j);
        const json::object* o = (*tb)[j].if_object();
        if (!o) return bad_type(q, "an object");
        Block b;
        const std::string_view type = str(*o, "type");
        if (type == "thinking") {
          b.kind = BlockKind::thinking;
          b.text = std::string(str(*o, "thinking"));
          b.signature = std::string(str(*o, "signature"));
        } else if (type == "redacted_thinking") {
          b.kind = BlockKind::redacted_thinking;
          b.data = std::string(str(*o, "data"));
        } else {
          return bad_value(q + ".type", "Expected 'thinking' or 'redacted_thinking'.");
        }
        msg.content.push_back(std::move(b));
      }
    } else if (const json::value* rc = field(m, "reasoning_content")) {
      if (!rc->is_string()) return bad_type(p + ".reasoning_content", "a string");
      Block b;
      b.kind = BlockKind::thinking;
      b.text = std::string(rc->get_string());
      msg.content.push_back(std::move(b));
    }
    if (const json::value* c = field(m, "content")) {
      Result<void> r = content_parts(*c, p + ".content", Parts::text_or_refusal, msg.content);
      if (!r) return r;
    }
    if (const json::value* rf = field(m, "refusal")) {
      if (!rf->is_string()) return bad_type(p + ".refusal", "a string");
      msg.content.push_back(text_block(rf->get_string()));
    }
    if (const json::value* tcv = field(m, "tool_calls")) {
      const json::array* tcs = tcv->if_array();
      if (!tcs) return bad_type(p + ".tool_calls", "an array");
      for (size_t j = 0; j < tcs->size(); ++j) {
        const std::string q = at(p + ".tool_calls", j);
        const json::object* tc = (*tcs)[j].if_object();
        if (!tc) return bad_type(q, "an object");
        const json::object* fn = obj(*tc, "function");
        if (!fn) return missing(q + ".function");
        const std::string_view id = str(*tc, "id");
        if (id.empty()) return missing(q + ".id");
        const std::string_view name = str(*fn, "name");
        if (name.empty()) return missing(q + ".function.name");
        Block b;
        b.kind = BlockKind::tool_use;
        b.tool_id = std::string(id);
        b.tool_name = std::string(name);
        const json::value* args = field(*fn, "arguments");
        if (args && args->is_string()) {
          b.tool_input = std::string(args->get_string());
        } else if (args) {
          b.tool_input = to_text(*args);  // lenient: an object instead of its text
        }
        tool_names[b.tool_id] = b.tool_name;
        msg.content.push_back(std::move(b));
      }
    }
    if (const json::object* fc = obj(m, "function_call")) {  // legacy single call
      Block b;
      b.kind = BlockKind::tool_use;
      b.tool_name = std::string(str(*fc, "name"));
      if (b.tool_name.empty()) return missing(p + ".function_call.name");
      b.tool_id = "call_legacy_" + std::to_string(legacy_count++);
      if (const json::value* args = field(*fc, "arguments")) {
        b.tool_input = args->is_string() ? std::string(args->get_string()) : to_text(*args);
      }
      legacy_ids[b.tool_name] = b.tool_id;
      tool_names[b.tool_id] = b.tool_name;
      msg.content.push_back(std::move(b));
    }
    req.messages.push_back(std::move(msg));
    last_was_tool = false;
    return {};
  }

  void add_tool_result(Block b) {
    if (!last_was_tool) {
      Message msg;
      msg.role = Role::user;
      req.messages.push_back(std::move(msg));
      last_was_tool = true;
    }
    req.messages.back().content.push_back(std::move(b));
  }

  Result<void> message(const json::value& v, const std::string& p) {
    const json::object* m = v.if_object();
    if (!m) return bad_type(p, "an object");
    const json::value* rolev = field(*m, "role");
    if (!rolev) return missing(p + ".role");
    if (!rolev->is_string()) return bad_type(p + ".role", "a string");
    const std::string_view role = rolev->get_string();
    if (role == "system" || role == "developer") {
      const json::value* c = field(*m, "content");
      if (!c) return missing(p + ".content");
      return content_parts(*c, p + ".content", Parts::text, req.system);
    }
    if (role == "user") {
      const json::value* c = field(*m, "content");
      if (!c) return missing(p + ".content");
      Message msg;
      msg.role = Role::user;
      Result<void> r = content_parts(*c, p + ".content", Parts::text_or_image, msg.content);
      if (!r) return r;
      req.messages.push_back(std::move(msg));
      last_was_tool = false;
      return {};
    }
    if (role == "assistant") return assistant(*m, p);
    if (role == "tool") {
      const std::string_view id = str(*m, "tool_call_id");
      if (id.empty()) return missing(p + ".tool_call_id");
      auto it = tool_names.find(id);
      Result<Block> b =
          tool_result(*m, p, std::string(id), it == tool_names.end() ? "" : it->second);
      if (!b) return b.error();
      add_tool_result(std::move(b.value()));
      return {};
    }
    if (role == "function") {
      const std::string_view name = str(*m, "name");
      if (name.empty()) return missing(p + ".name");
      auto it = legacy_ids.find(name);
      Result<Block> b = tool_result(*m, p, it == legacy_ids.end() ? std::string(name) : it->second,
                                    std::string(name));
      if (!b) return b.error();
      add_tool_result(std::move(b.value()));
      return {};
    }
    return bad_value(p + ".role", "Invalid value: '" + std::string(role) +
                                      "'. Supported values are: 'system', 'developer', 'user', "
                                      "'assistant', 'tool' and 'function'.");
  }

  Result<void> tool(const json::object& fn, const std::string& p) {
    Tool t;
    const json::value* name = field(fn, "name");
    if (!name) return missing(p + ".name");
    if (!name->is_string() || name->get_string().empty()) return bad_type(p + ".name", "a string");
    t.name = std::string(name->get_string());
    t.description = std::string(str(fn, "description"));
    if (const json::value* params = field(fn, "parameters")) {
      if (!params->is_object()) return bad_type(p + ".parameters", "an object");
      t.parameters = to_text(*params);
    }
    req.tools.push_back(std::move(t));
    return {};
  }

  Result<void> tools(const json::object& body) {
    if (const json::value* tv = field(body, "tools")) {
      const json::array* ts = tv->if_array();
      if (!ts) return bad_type("tools", "an array");
      for (size_t i = 0; i < ts->size(); ++i) {
        const std::string p = at("tools", i);
        const json::object* t = (*ts)[i].if_object();
        if (!t) return bad_type(p, "an object");
        const std::string_view type = str(*t, "type");
        if (type != "function") {
          return bad_value(p + ".type", "Unsupported tool type '" + std::string(type) +
                                            "': only 'function' tools can be translated.");
        }
        const json::object* fn = obj(*t, "function");
        if (!fn) return missing(p + ".function");
        Result<void> r = tool(*fn, p + ".function");
        if (!r) return r;
      }
    }
    if (const json::value* fv = field(body, "functions")) {  // legacy
      const json::array* fs = fv->if_array();
      if (!fs) return bad_type("functions", "an array");
      for (size_t i = 0; i < fs->size(); ++i) {
        const json::object* f = (*fs)[i].if_object();
        if (!f) return bad_type(at("functions", i), "an object");
        Result<void> r = tool(*f, at("functions", i));
        if (!r) return r;
      }
    }
    for (const char* key : {"tool_choice", "function_call"}) {
      const json::value* cv = field(body, key);
      if (!cv) continue;
      const std::string k = key;
      if (cv->is_string()) {
        const std::string_view s = cv->get_string();
        if (s == "auto") {
          req.tool_choice.kind = ToolChoiceKind::auto_;
        } else if (s == "none") {
          req.tool_choice.kind = ToolChoiceKind::none;
        } else if (s == "required" && k == "tool_choice") {
          req.tool_choice.kind = ToolChoiceKind::required;
        } else {
          return bad_value(k, "Invalid value for '" + k + "': '" + std::string(s) + "'.");
        }
      } else if (const json::object* o = cv->if_object()) {
        const json::object* fn = k == "tool_choice" ? obj(*o, "function") : o;
        const std::string_view name = fn ? str(*fn, "name") : std::string_view{};
        if (name.empty()) return missing(k == "tool_choice" ? k + ".function.name" : k + ".name");
        req.tool_choice.kind = ToolChoiceKind::named;
        req.tool_choice.name = std::string(name);
      } else {
        return bad_type(k, "a string or an object");
      }
    }
    return {};
  }

  Result<void> sampling(const json::object& body) {
    std::optional<int64_t> max;
    for (const char* key : {"max_completion_tokens", "max_tokens"}) {
      if (!field(body, key)) continue;
      std::optional<int64_t> v = integer(body, key);
      if (!v) return bad_type(key, "an integer");
      if (*v < 1) return bad_value(key, std::string("'") + key + "' must be at least 1.");
      if (!max || *v > *max) max = v;
    }
    req.max_tokens = max;
    for (const char* key : {"temperature", "top_p"}) {
      if (!field(body, key)) continue;
      std::optional<double> v = number(body, key);
      if (!v) return bad_type(key, "a number");
      (std::string_view(key) == "temperature" ? req.temperature : req.top_p) = v;
    }
    if (field(body, "top_k")) {
      req.top_k = integer(body, "top_k");
      if (!req.top_k) return bad_type("top_k", "an integer");
    }
    if (const json::value* s = field(body, "stop")) {
      if (s->is_string()) {
        req.stop.emplace_back(s->get_string());
      } else if (const json::array* a = s->if_array()) {
        for (size_t i = 0; i < a->size(); ++i) {
          if (!(*a)[i].is_string()) return bad_type(at("stop", i), "a string");
          req.stop.emplace_back((*a)[i].get_string());
        }
      } else {
        return bad_type("stop", "a string or an array of strings");
      }
    }
    if (field(body, "n")) {
      std::optional<int64_t> n = integer(body, "n");
      if (!n) return bad_type("n", "an integer");
      if (*n != 1) return bad_value("n", "Only n = 1 is supported for this model's provider.");
    }
    return {};
  }

  Result<void> flags(const json::object& body) {
    if (field(body, "stream")) {
      std::optional<bool> s = boolean(body, "stream");
      if (!s) return bad_type("stream", "a boolean");
      req.stream = *s;
    }
    if (const json::object* so = obj(body, "stream_options")) {
      req.include_usage = boolean(*so, "include_usage").value_or(false);
    }
    if (field(body, "parallel_tool_calls")) {
      req.parallel_tool_calls = boolean(body, "parallel_tool_calls");
      if (!req.parallel_tool_calls) return bad_type("parallel_tool_calls", "a boolean");
    }
    if (const json::value* re = field(body, "reasoning_effort")) {
      if (!re->is_string()) return bad_type("reasoning_effort", "a string");
      req.reasoning_effort = std::string(re->get_string());
    }
    if (const json::value* u = field(body, "user")) {
      if (!u->is_string()) return bad_type("user", "a string");
      req.user = std::string(u->get_string());
    }
    return {};
  }

  Result<void> run(const json::object& body) {
    const json::value* model = field(body, "model");
    if (!model) return missing("model");
    if (!model->is_string() || model->get_string().empty()) return bad_type("model", "a string");
    req.model = std::string(model->get_string());
    const json::value* mv = field(body, "messages");
    if (!mv) return missing("messages");
    const json::array* msgs = mv->if_array();
    if (!msgs) return bad_type("messages", "an array");
    if (msgs->empty()) {
      return bad_value("messages", "Invalid 'messages': empty array. Expected an array with "
                                   "minimum length 1.");
    }
    for (size_t i = 0; i < msgs->size(); ++i) {
      Result<void> r = message((*msgs)[i], at("messages", i));
      if (!r) return r;
    }
    for (auto step : {&Decoder::tools, &Decoder::sampling, &Decoder::flags}) {
      Result<void> r = (this->*step)(body);
      if (!r) return r;
    }
    return {};
  }
};

}  // namespace

Result<Request> decode_request(std::string_view body, const FrontendContext& /*ctx*/) {
  try {
    ChunkArena arena;  // the tree dies here: the Request holds copies
    Result<json::value> v = parse_json(body, arena.storage());
    if (!v) return v.error();
    const json::object* o = v->if_object();
    if (!o) return invalid("The request body must be a JSON object.");
    Decoder d;
    Result<void> r = d.run(*o);
    if (!r) return r.error();
    return std::move(d.req);
  } catch (const std::exception& e) {
    return invalid(std::string("The request could not be read: ") + e.what());
  }
}

}  // namespace sluice::canonical::openai
