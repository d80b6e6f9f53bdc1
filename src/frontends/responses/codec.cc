// The Responses API codec: see responses.h.
#include <openssl/rand.h>

#include <array>
#include <unordered_map>

#include "frontends/responses/responses.h"

namespace sluice::canonical::responses {

namespace {

Error field_error(std::string param, std::string message) {
  return invalid(std::move(message), std::move(param));
}

std::string at(std::string_view base, size_t i) {
  return std::string(base) + "[" + std::to_string(i) + "]";
}

// A data: URL → inline image; http(s) → by reference.
Result<Block> image_block(std::string_view url, const std::string& param) {
  Block b;
  b.kind = BlockKind::image;
  if (url.starts_with("data:")) {
    size_t semi = url.find(";base64,");
    if (semi == std::string_view::npos || semi <= 5) {
      return field_error(param, "Image data URLs must have the form data:<media type>;base64,<data>.");
    }
    b.image_media_type = std::string(url.substr(5, semi - 5));
    b.image_data = std::string(url.substr(semi + 8));
    return b;
  }
  if (url.starts_with("http://") || url.starts_with("https://")) {
    b.image_url = std::string(url);
    return b;
  }
  return field_error(param, "Image URLs must be http(s) URLs or data URLs.");
}

// A message's content (string or parts) in normal form.
Result<json::array> normalize_content(const json::value& content, bool assistant,
                                      const std::string& param) {
  json::array out;
  const char* text_type = assistant ? "output_text" : "input_text";
  auto text_part = [&](std::string_view text) {
    json::object p;
    p["type"] = text_type;
    p["text"] = text;
    if (assistant) p["annotations"] = json::array();
    out.push_back(std::move(p));
  };
  if (content.is_string()) {
    text_part(content.as_string());
    return out;
  }
  if (!content.is_array()) return field_error(param, "content must be a string or an array of parts.");
  const json::array& parts = content.as_array();
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string p = at(param, i);
    if (!parts[i].is_object()) return field_error(p, "A content part must be an object.");
    const json::object& part = parts[i].as_object();
    std::string_view type = str(part, "type");
    if (type == "input_text" || type == "output_text" || type == "text") {
      const json::value* t = field(part, "text");
      if (t == nullptr || !t->is_string()) return field_error(p + ".text", "text must be a string.");
      text_part(t->as_string());
    } else if (type == "refusal") {
      text_part(str(part, "refusal"));
    } else if (type == "input_image") {
      std::string_view url = str(part, "image_url");
      if (url.empty()) {
        return field_error(p + ".image_url",
                           "input_image needs an image_url (file_id inputs are not supported by "
                           "this gateway).");
      }
      auto checked = image_block(url, p + ".image_url");
      if (!checked) return std::move(checked.error());
      json::object img;
      img["type"] = "input_image";
      img["image_url"] = url;
      if (const json::value* d = field(part, "detail")) img["detail"] = *d;
      out.push_back(std::move(img));
    } else {
      return field_error(p + ".type", "Content parts of type '" + std::string(type) +
                                          "' are not supported by this gateway (supported: "
                                          "input_text, output_text, input_image).");
    }
  }
  return out;
}

std::string text_of_output(const json::value& output) {
  if (output.is_string()) return std::string(output.as_string());
  std::string text;
  if (output.is_array()) {
    for (const json::value& p : output.as_array()) {
      if (p.is_object()) text += str(p.as_object(), "text");
    }
  }
  return text;
}

json::object usage_object(const Usage& u) {
  json::object o;
  o["input_tokens"] = u.prompt_total();
  o["input_tokens_details"] = json::object{{"cached_tokens", u.cache_read}};
  o["output_tokens"] = u.output;
  o["output_tokens_details"] = json::object{{"reasoning_tokens", u.reasoning}};
  o["total_tokens"] = sat_add(u.prompt_total(), u.output);
  return o;
}

}  // namespace

std::string new_id(std::string_view prefix) {
  std::array<unsigned char, 24> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    // OpenSSL's generator failing is not survivable for ids that must not collide.
    std::abort();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(prefix);
  id += '_';
  for (unsigned char b : bytes) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  return id;
}

Result<json::array> normalize_items(const json::array& items, std::string_view param) {
  json::array out;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string p = at(param, i);
    if (!items[i].is_object()) return field_error(p, "An input item must be an object.");
    const json::object& item = items[i].as_object();
    std::string_view type = str(item, "type");
    if (type.empty() || type == "message") {
      std::string_view role = str(item, "role");
      if (role != "user" && role != "assistant" && role != "system" && role != "developer") {
        return field_error(p + ".role",
                           "role must be one of user, assistant, system, developer.");
      }
      const json::value* content = field(item, "content");
      if (content == nullptr) return field_error(p + ".content", "content is required.");
      auto parts = normalize_content(*content, role == "assistant", p + ".content");
      if (!parts) return std::move(parts.error());
      json::object m;
      m["type"] = "message";
      m["id"] = new_id("msg");
      m["status"] = "completed";
      m["role"] = role;
      m["content"] = std::move(parts.value());
      out.push_back(std::move(m));
    } else if (type == "function_call") {
      std::string_view call_id = str(item, "call_id"), name = str(item, "name");
      if (call_id.empty()) return field_error(p + ".call_id", "call_id is required.");
      if (name.empty()) return field_error(p + ".name", "name is required.");
      const json::value* args = field(item, "arguments");
      if (args != nullptr && !args->is_string()) {
        return field_error(p + ".arguments", "arguments must be a string of JSON.");
      }
      json::object f;
      f["type"] = "function_call";
      f["id"] = new_id("fc");
      f["status"] = "completed";
      f["call_id"] = call_id;
      f["name"] = name;
      f["arguments"] = args != nullptr ? args->as_string() : json::string("{}");
      out.push_back(std::move(f));
    } else if (type == "function_call_output") {
      std::string_view call_id = str(item, "call_id");
      if (call_id.empty()) return field_error(p + ".call_id", "call_id is required.");
      const json::value* output = field(item, "output");
      if (output == nullptr || (!output->is_string() && !output->is_array())) {
        return field_error(p + ".output", "output must be a string or an array of parts.");
      }
      json::object f;
      f["type"] = "function_call_output";
      f["id"] = new_id("fco");
      f["status"] = "completed";
      f["call_id"] = call_id;
      f["output"] = text_of_output(*output);
      out.push_back(std::move(f));
    } else if (type == "reasoning") {
      continue;  // no upstream could replay another model's reasoning
    } else if (type == "item_reference") {
      return field_error(p + ".type",
                         "item_reference inputs are not supported by this gateway; continue with "
                         "previous_response_id or a conversation instead.");
    } else {
      return field_error(p + ".type", "Input items of type '" + std::string(type) +
                                          "' are not supported by this gateway (supported: "
                                          "message, function_call, function_call_output).");
    }
  }
  return out;
}

void append_items(const json::array& items, Request& req) {
  std::unordered_map<std::string, std::string> names;  // call_id → function name
  // A message item is a message of its own; a function call joins the assistant message
  // before it, a call's output joins the user message of the outputs before it.
  auto message_for = [&](Role role, bool join) -> Message& {
    if (!join || req.messages.empty() || req.messages.back().role != role) {
      req.messages.push_back(Message{role, {}});
    }
    return req.messages.back();
  };
  auto only_results = [&] {
    for (const Block& b : req.messages.back().content) {
      if (b.kind != BlockKind::tool_result) return false;
    }
    return true;
  };
  for (const json::value& v : items) {
    if (!v.is_object()) continue;
    const json::object& item = v.as_object();
    std::string_view type = str(item, "type");
    if (type == "message") {
      std::string_view role = str(item, "role");
      std::vector<Block> blocks;
      if (const json::array* content = arr(item, "content")) {
        for (const json::value& pv : *content) {
          if (!pv.is_object()) continue;
          const json::object& part = pv.as_object();
          if (str(part, "type") == "input_image") {
            auto img = image_block(str(part, "image_url"), "content");
            if (img) blocks.push_back(std::move(img.value()));
          } else {
            Block b;
            b.text = std::string(str(part, "text"));
            blocks.push_back(std::move(b));
          }
        }
      }
      if (role == "system" || role == "developer") {
        for (Block& b : blocks) {
          if (b.kind == BlockKind::text) req.system.push_back(std::move(b));
        }
        continue;
      }
      Message& m = message_for(role == "assistant" ? Role::assistant : Role::user, false);
      for (Block& b : blocks) m.content.push_back(std::move(b));
    } else if (type == "function_call") {
      Block b;
      b.kind = BlockKind::tool_use;
      b.tool_id = std::string(str(item, "call_id"));
      b.tool_name = std::string(str(item, "name"));
      b.tool_input = std::string(str(item, "arguments"));
      if (b.tool_input.empty()) b.tool_input = "{}";
      names[b.tool_id] = b.tool_name;
      message_for(Role::assistant, true).content.push_back(std::move(b));
    } else if (type == "function_call_output") {
      Block b;
      b.kind = BlockKind::tool_result;
      b.tool_id = std::string(str(item, "call_id"));
      if (auto it = names.find(b.tool_id); it != names.end()) b.tool_name = it->second;
      Block text;
      text.text = std::string(str(item, "output"));
      b.content.push_back(std::move(text));
      const bool join = !req.messages.empty() && only_results();
      message_for(Role::user, join).content.push_back(std::move(b));
    }
  }
}

json::array items_of(const std::vector<Message>& messages) {
  json::array out;
  for (const Message& m : messages) {
    const bool assistant = m.role == Role::assistant;
    json::array parts;
    auto flush = [&] {
      if (parts.empty()) return;
      out.push_back(json::object{{"type", "message"}, {"id", new_id("msg")}, {"status", "completed"},
                                 {"role", assistant ? "assistant" : "user"},
                                 {"content", std::move(parts)}});
      parts = json::array();
    };
    for (const Block& b : m.content) {
      switch (b.kind) {
        case BlockKind::text: {
          json::object p{{"type", assistant ? "output_text" : "input_text"}, {"text", b.text}};
          if (assistant) p["annotations"] = json::array();
          parts.push_back(std::move(p));
          break;
        }
        case BlockKind::image: {
          std::string url = !b.image_url.empty()
                                ? b.image_url
                                : "data:" + b.image_media_type + ";base64," + b.image_data;
          parts.push_back(json::object{{"type", "input_image"}, {"image_url", url}});
          break;
        }
        case BlockKind::tool_use:
          flush();
          out.push_back(json::object{{"type", "function_call"}, {"id", new_id("fc")},
                                     {"status", "completed"}, {"call_id", b.tool_id},
                                     {"name", b.tool_name}, {"arguments", b.tool_input}});
          break;
        case BlockKind::tool_result: {
          flush();
          std::string text;
          for (const Block& c : b.content) text += c.text;
          out.push_back(json::object{{"type", "function_call_output"}, {"id", new_id("fco")},
                                     {"status", "completed"}, {"call_id", b.tool_id},
                                     {"output", text}});
          break;
        }
        default: break;
      }
    }
    flush();
  }
  return out;
}

Result<json::object> check_metadata(const json::value* md) {
  if (md == nullptr || md->is_null()) return json::object();
  if (!md->is_object()) return field_error("metadata", "metadata must be an object of strings.");
  if (md->as_object().size() > 16) return field_error("metadata", "metadata has at most 16 keys.");
  for (const auto& kv : md->as_object()) {
    if (!kv.value().is_string() || kv.key().size() > 64 || kv.value().as_string().size() > 512) {
      return field_error("metadata", "metadata values must be strings (keys up to 64 "
                                     "characters, values up to 512).");
    }
  }
  return md->as_object();
}

Result<json::object> parse_object_body(std::string_view body, bool allow_empty) {
  if (body.empty() && allow_empty) return json::object();
  auto v = parse_json(body);
  if (!v) return std::move(v.error());
  if (!v->is_object()) return invalid("The request body must be a JSON object.");
  return std::move(v->as_object());
}

Result<Decoded> decode_request(std::string_view body) {
  auto parsed = parse_json(body);
  if (!parsed) return std::move(parsed.error());
  if (!parsed->is_object()) return invalid("The request body must be a JSON object.");
  const json::object& o = parsed->as_object();
  Decoded d;
  Request& req = d.request;
  const json::value* model = field(o, "model");
  if (model == nullptr) return field_error("model", "model: Field required");
  if (!model->is_string()) return field_error("model", "model must be a string.");
  req.model = std::string(model->as_string());
  if (req.model.empty()) return field_error("model", "model must not be empty.");

  auto string_field = [&](std::string_view key, std::string& out) -> Result<void> {
    const json::value* v = field(o, key);
    if (v == nullptr) return {};
    if (!v->is_string()) return field_error(std::string(key), std::string(key) + " must be a string.");
    out = std::string(v->as_string());
    return {};
  };
  if (auto r = string_field("previous_response_id", d.previous_response_id); !r) return std::move(r.error());
  if (const json::value* c = field(o, "conversation")) {
    if (c->is_string()) {
      d.conversation = std::string(c->as_string());
    } else if (c->is_object() && !str(c->as_object(), "id").empty()) {
      d.conversation = std::string(str(c->as_object(), "id"));
    } else {
      return field_error("conversation", "conversation must be a conversation id or {\"id\": ...}.");
    }
  }
  if (!d.previous_response_id.empty() && !d.conversation.empty()) {
    return field_error("conversation",
                       "previous_response_id and conversation cannot be used together.");
  }
  if (const json::value* v = field(o, "background"); v != nullptr && v->is_bool() && v->as_bool()) {
    return field_error("background", "Background responses are not supported by this gateway.");
  }
  if (auto b = boolean(o, "store")) d.store = *b;
  if (auto b = boolean(o, "stream")) req.stream = *b;
  req.include_usage = true;

  // instructions: the system prompt of this request only (not carried along a chain, as OpenAI).
  if (const json::value* ins = field(o, "instructions")) {
    if (!ins->is_string()) return field_error("instructions", "instructions must be a string.");
    if (!ins->as_string().empty()) {
      Block b;
      b.text = std::string(ins->as_string());
      req.system.push_back(std::move(b));
    }
    d.echo["instructions"] = *ins;
  }

  // input
  const json::value* input = field(o, "input");
  if (input == nullptr) return field_error("input", "input: Field required");
  if (input->is_string()) {
    json::array one;
    one.push_back(json::object{{"role", "user"}, {"content", input->as_string()}});
    auto items = normalize_items(one, "input");
    if (!items) return std::move(items.error());
    d.input = std::move(items.value());
  } else if (input->is_array()) {
    auto items = normalize_items(input->as_array(), "input");
    if (!items) return std::move(items.error());
    d.input = std::move(items.value());
  } else {
    return field_error("input", "input must be a string or an array of input items.");
  }

  // tools and tool_choice
  if (const json::value* tv = field(o, "tools")) {
    if (!tv->is_array()) return field_error("tools", "tools must be an array.");
    const json::array& tools = tv->as_array();
    json::array echo_tools;
    for (size_t i = 0; i < tools.size(); ++i) {
      const std::string p = at("tools", i);
      if (!tools[i].is_object()) return field_error(p, "A tool must be an object.");
      const json::object& t = tools[i].as_object();
      std::string_view type = str(t, "type");
      if (type != "function") {
        return field_error(p + ".type", "Tools of type '" + std::string(type) +
                                            "' are not supported by this gateway (only "
                                            "function tools).");
      }
      Tool tool;
      tool.name = std::string(str(t, "name"));
      if (tool.name.empty()) return field_error(p + ".name", "name is required.");
      tool.description = std::string(str(t, "description"));
      if (const json::object* params = obj(t, "parameters")) tool.parameters = to_text(*params);
      req.tools.push_back(std::move(tool));
      json::object e;
      e["type"] = "function";
      e["name"] = str(t, "name");
      e["description"] = t.contains("description") ? t.at("description") : json::value(nullptr);
      e["parameters"] = t.contains("parameters") ? t.at("parameters") : json::value(nullptr);
      e["strict"] = t.contains("strict") ? t.at("strict") : json::value(true);
      echo_tools.push_back(std::move(e));
    }
    d.echo["tools"] = std::move(echo_tools);
  }
  if (const json::value* tc = field(o, "tool_choice")) {
    if (tc->is_string()) {
      std::string_view c = tc->as_string();
      if (c == "auto") req.tool_choice.kind = ToolChoiceKind::auto_;
      else if (c == "none") req.tool_choice.kind = ToolChoiceKind::none;
      else if (c == "required") req.tool_choice.kind = ToolChoiceKind::required;
      else return field_error("tool_choice", "tool_choice must be auto, none, required or a function.");
    } else if (tc->is_object() && str(tc->as_object(), "type") == "function" &&
               !str(tc->as_object(), "name").empty()) {
      req.tool_choice.kind = ToolChoiceKind::named;
      req.tool_choice.name = std::string(str(tc->as_object(), "name"));
    } else {
      return field_error("tool_choice",
                         "tool_choice must be auto, none, required or {\"type\": \"function\", "
                         "\"name\": ...}.");
    }
    d.echo["tool_choice"] = *tc;
  }

  // sampling and limits
  if (const json::value* v = field(o, "max_output_tokens")) {
    auto n = integer(o, "max_output_tokens");
    if (!n || *n < 1) return field_error("max_output_tokens", "max_output_tokens must be a positive integer.");
    req.max_tokens = *n;
    d.echo["max_output_tokens"] = *v;
  }
  for (std::string_view key : {"temperature", "top_p"}) {
    if (const json::value* v = field(o, key)) {
      auto x = number(o, key);
      if (!x) return field_error(std::string(key), std::string(key) + " must be a number.");
      (key == "temperature" ? req.temperature : req.top_p) = *x;
      d.echo[key] = *v;
    }
  }
  if (auto b = boolean(o, "parallel_tool_calls")) {
    req.parallel_tool_calls = *b;
    d.echo["parallel_tool_calls"] = *b;
  }
  if (auto r = string_field("user", req.user); !r) return std::move(r.error());
  if (!req.user.empty()) d.echo["user"] = req.user;
  if (const json::object* reasoning = obj(o, "reasoning")) {
    req.reasoning_effort = std::string(str(*reasoning, "effort"));
    d.echo["reasoning"] = *reasoning;
  }
  if (const json::object* text = obj(o, "text")) {
    if (const json::object* format = obj(*text, "format")) {
      std::string_view ft = str(*format, "type");
      if (!ft.empty() && ft != "text") {
        return field_error("text.format.type",
                           "Structured output formats ('" + std::string(ft) +
                               "') are not supported by this gateway's Responses API yet; use "
                               "text.");
      }
    }
    d.echo["text"] = *text;
  }
  if (const json::value* md = field(o, "metadata")) {
    auto checked = check_metadata(md);
    if (!checked) return std::move(checked.error());
    d.echo["metadata"] = std::move(*checked);
  }
  if (const json::value* tr = field(o, "truncation")) d.echo["truncation"] = *tr;
  return d;
}

std::pair<std::string_view, std::string_view> status_of(StopReason reason) {
  switch (reason) {
    case StopReason::max_tokens: return {"incomplete", "max_output_tokens"};
    case StopReason::refusal: return {"incomplete", "content_filter"};
    case StopReason::error: return {"failed", ""};
    default: return {"completed", ""};
  }
}

json::array output_items(const Response& r) {
  json::array out;
  json::object* message = nullptr;  // consecutive text blocks share one message item
  for (const Block& b : r.content) {
    if (b.kind == BlockKind::text) {
      if (message == nullptr) {
        json::object m;
        m["type"] = "message";
        m["id"] = new_id("msg");
        m["status"] = "completed";
        m["role"] = "assistant";
        m["content"] = json::array();
        out.push_back(std::move(m));
        message = &out.back().as_object();
      }
      message->at("content").as_array().push_back(json::object{
          {"type", "output_text"}, {"text", b.text}, {"annotations", json::array()}});
    } else if (b.kind == BlockKind::tool_use) {
      message = nullptr;
      json::object f;
      f["type"] = "function_call";
      f["id"] = new_id("fc");
      f["status"] = "completed";
      f["call_id"] = b.tool_id;
      f["name"] = b.tool_name;
      f["arguments"] = b.tool_input;
      out.push_back(std::move(f));
    }
  }
  return out;
}

json::object response_object(const Meta& meta, std::string_view status,
                             std::string_view incomplete_reason, json::array output,
                             const Usage* usage, std::string_view error_message) {
  static const json::object kNoEcho;
  const json::object& echo = meta.echo != nullptr ? *meta.echo : kNoEcho;
  auto echoed = [&](std::string_view key, json::value fallback) -> json::value {
    auto it = echo.find(key);
    return it != echo.end() ? it->value() : fallback;
  };
  json::object o;
  o["id"] = meta.id;
  o["object"] = "response";
  o["created_at"] = meta.created_at;
  o["status"] = status;
  o["background"] = false;
  if (!error_message.empty()) {
    o["error"] = json::object{{"code", "server_error"}, {"message", error_message}};
  } else {
    o["error"] = nullptr;
  }
  if (!incomplete_reason.empty()) {
    o["incomplete_details"] = json::object{{"reason", incomplete_reason}};
  } else {
    o["incomplete_details"] = nullptr;
  }
  o["instructions"] = echoed("instructions", nullptr);
  o["max_output_tokens"] = echoed("max_output_tokens", nullptr);
  o["max_tool_calls"] = nullptr;
  o["model"] = meta.model;
  o["output"] = std::move(output);
  o["parallel_tool_calls"] = echoed("parallel_tool_calls", true);
  if (meta.previous_response_id.empty()) {
    o["previous_response_id"] = nullptr;
  } else {
    o["previous_response_id"] = meta.previous_response_id;
  }
  if (meta.conversation.empty()) {
    o["conversation"] = nullptr;
  } else {
    o["conversation"] = json::object{{"id", meta.conversation}};
  }
  o["reasoning"] = echoed("reasoning", json::object{{"effort", nullptr}, {"summary", nullptr}});
  o["service_tier"] = "default";
  o["store"] = meta.store;
  o["temperature"] = echoed("temperature", 1.0);
  o["text"] = echoed("text", json::object{{"format", json::object{{"type", "text"}}}});
  o["tool_choice"] = echoed("tool_choice", "auto");
  o["tools"] = echoed("tools", json::array());
  o["top_p"] = echoed("top_p", 1.0);
  o["truncation"] = echoed("truncation", "disabled");
  if (usage != nullptr) {
    o["usage"] = usage_object(*usage);
  } else {
    o["usage"] = nullptr;
  }
  o["user"] = echoed("user", nullptr);
  o["metadata"] = echoed("metadata", json::object());
  return o;
}

// ---- stream ---------------------------------------------------------------------------------

void StreamEncoder::emit(std::string_view type, json::object data, std::string& out) {
  data["type"] = type;
  data["sequence_number"] = seq_++;
  out += "event: ";
  out += type;
  out += "\ndata: ";
  out += to_text(data);
  out += "\n\n";
}

void StreamEncoder::created(std::string& out) {
  json::object r = response_object(meta_, "in_progress", "", json::array(), nullptr);
  emit("response.created", json::object{{"response", r}}, out);
  emit("response.in_progress", json::object{{"response", std::move(r)}}, out);
}

void StreamEncoder::close_open(std::string& out) {
  if (open_index_ < 0) return;
  const int64_t index = static_cast<int64_t>(output_.size()) - 1;
  json::object& item = output_.back().as_object();
  const json::string item_id = item.at("id").as_string();
  if (open_is_text_) {
    json::object part{{"type", "output_text"}, {"text", text_}, {"annotations", json::array()}};
    emit("response.output_text.done",
         json::object{{"item_id", item_id}, {"output_index", index}, {"content_index", 0},
                      {"text", text_}, {"logprobs", json::array()}},
         out);
    emit("response.content_part.done",
         json::object{{"item_id", item_id}, {"output_index", index}, {"content_index", 0},
                      {"part", part}},
         out);
    item["content"] = json::array{std::move(part)};
  } else {
    emit("response.function_call_arguments.done",
         json::object{{"item_id", item_id}, {"output_index", index}, {"arguments", text_}}, out);
    item["arguments"] = text_;
  }
  item["status"] = "completed";
  emit("response.output_item.done", json::object{{"output_index", index}, {"item", item}}, out);
  open_index_ = -1;
  text_.clear();
}

void StreamEncoder::on_event(const Event& e, std::string& out) {
  switch (e.kind) {
    case EventKind::message_start:
      if (e.usage.reported) usage_ = e.usage;
      break;
    case EventKind::block_start: {
      close_open(out);
      skipping_ = e.block != BlockKind::text && e.block != BlockKind::tool_use;
      if (skipping_) break;
      open_index_ = e.index;
      open_is_text_ = e.block == BlockKind::text;
      const int64_t index = static_cast<int64_t>(output_.size());
      json::object item;
      if (open_is_text_) {
        item = json::object{{"id", new_id("msg")}, {"type", "message"}, {"status", "in_progress"},
                            {"role", "assistant"}, {"content", json::array()}};
      } else {
        item = json::object{{"id", new_id("fc")}, {"type", "function_call"},
                            {"status", "in_progress"}, {"arguments", ""},
                            {"call_id", e.tool_id}, {"name", e.tool_name}};
      }
      output_.push_back(item);
      emit("response.output_item.added", json::object{{"output_index", index}, {"item", item}},
           out);
      if (open_is_text_) {
        emit("response.content_part.added",
             json::object{{"item_id", item.at("id")}, {"output_index", index},
                          {"content_index", 0},
                          {"part", json::object{{"type", "output_text"}, {"text", ""},
                                                {"annotations", json::array()}}}},
             out);
      }
      break;
    }
    case EventKind::block_delta: {
      if (skipping_ || open_index_ != e.index) break;
      const int64_t index = static_cast<int64_t>(output_.size()) - 1;
      const json::value item_id = output_.back().as_object().at("id");
      if (open_is_text_ && e.delta == DeltaKind::text) {
        text_ += e.text;
        emit("response.output_text.delta",
             json::object{{"item_id", item_id}, {"output_index", index}, {"content_index", 0},
                          {"delta", e.text}, {"logprobs", json::array()}},
             out);
      } else if (!open_is_text_ && e.delta == DeltaKind::input_json) {
        text_ += e.text;
        emit("response.function_call_arguments.delta",
             json::object{{"item_id", item_id}, {"output_index", index}, {"delta", e.text}}, out);
      }
      break;
    }
    case EventKind::block_stop:
      if (!skipping_ && open_index_ == e.index) close_open(out);
      skipping_ = false;
      break;
    case EventKind::message_delta:
      close_open(out);
      stop_ = e.stop_reason;
      if (e.usage.reported) {
        Usage u = e.usage;
        if (u.input == 0 && u.cache_read == 0 && usage_.reported) {
          u.input = usage_.input;
          u.cache_read = usage_.cache_read;
          u.cache_creation = usage_.cache_creation;
        }
        usage_ = u;
      }
      break;
    default:
      break;
  }
}

json::object StreamEncoder::final_object() const {
  auto [status, reason] = status_of(stop_);
  // An item still open (a stream cut short) is left as the events made it.
  return response_object(meta_, status, reason, output_, &usage_);
}

void StreamEncoder::completed(const json::object& response, std::string& out) {
  std::string_view status = response.at("status").as_string();
  emit(status == "incomplete" ? "response.incomplete" : "response.completed",
       json::object{{"response", response}}, out);
}

void StreamEncoder::failed(std::string_view message, std::string& out) {
  close_open(out);
  json::object r = response_object(meta_, "failed", "", output_, usage_.reported ? &usage_ : nullptr,
                                    message);
  emit("response.failed", json::object{{"response", std::move(r)}}, out);
}

}  // namespace sluice::canonical::responses
