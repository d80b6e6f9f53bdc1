// Anthropic content blocks <-> canonical Blocks (see blocks.h).
#include "frontends/anthropic/blocks.h"

#include <array>
#include <random>

#include "canonical/tables.h"

namespace sluice::canonical::anthropic {
namespace {

void write_image(const Block& b, JsonWriter& w) {
  w.begin_object().member("type", "image").key("source").begin_object();
  if (!b.image_url.empty() && b.image_data.empty()) {
    w.member("type", "url").member("url", b.image_url);
  } else {
    w.member("type", "base64").member("media_type", b.image_media_type);
    w.member("data", b.image_data);
  }
  w.end_object().end_object();
}

Result<Block> image_from_json(const json::object& o, const std::string& where) {
  const json::object* source = obj(o, "source");
  if (!source) return invalid(where + ".source: Field required", where + ".source");
  Block b;
  b.kind = BlockKind::image;
  const std::string_view type = str(*source, "type");
  if (type == "base64") {
    const json::value* media = field(*source, "media_type");
    const json::value* data = field(*source, "data");
    if (!media || !media->is_string()) {
      return invalid(where + ".source.media_type: Field required", where + ".source.media_type");
    }
    if (!data || !data->is_string()) {
      return invalid(where + ".source.data: Field required", where + ".source.data");
    }
    b.image_media_type = std::string(str(*source, "media_type"));
    b.image_data = std::string(str(*source, "data"));
    return b;
  }
  if (type == "url") {
    const std::string_view url = str(*source, "url");
    if (url.empty()) return invalid(where + ".source.url: Field required", where + ".source.url");
    b.image_url = std::string(url);
    return b;
  }
  return invalid(where + ".source.type: unsupported image source type '" + std::string(type) +
                     "' (supported: base64, url)",
                 where + ".source.type");
}

// A required string member: error naming it when absent or not a string.
Result<std::string> required_string(const json::object& o, std::string_view key,
                                    const std::string& where) {
  const json::value* v = field(o, key);
  const std::string param = where + "." + std::string(key);
  if (!v) return invalid(param + ": Field required", param);
  if (!v->is_string()) return invalid(param + ": Input should be a valid string", param);
  return std::string(v->get_string());
}

Result<Block> tool_result_from_json(const json::object& o, const std::string& where) {
  Block b;
  b.kind = BlockKind::tool_result;
  auto id = required_string(o, "tool_use_id", where);
  if (!id) return id.error();
  b.tool_id = std::move(*id);
  b.is_error = boolean(o, "is_error").value_or(false);
  const json::value* content = field(o, "content");
  if (!content) return b;
  if (content->is_string()) {
    Block t;
    t.text = std::string(content->get_string());
    b.content.push_back(std::move(t));
    return b;
  }
  const json::array* parts = content->if_array();
  if (!parts) {
    return invalid(where + ".content: Input should be a valid string or list of blocks",
                   where + ".content");
  }
  for (size_t k = 0; k < parts->size(); ++k) {
    const std::string inner = where + ".content[" + std::to_string(k) + "]";
    const json::object* p = (*parts)[k].if_object();
    const std::string_view type = p ? str(*p, "type") : std::string_view{};
    if (type != "text" && type != "image") {
      return invalid(inner + ".type: unsupported tool_result content type '" + std::string(type) +
                         "' (supported: text, image)",
                     inner + ".type");
    }
    auto part = block_from_json((*parts)[k], inner);
    if (!part) return part.error();
    b.content.push_back(std::move(*part));
  }
  return b;
}

}  // namespace

void write_tool_input(std::string_view text, JsonWriter& w) {
  const json::value v = from_text(text);
  if (v.is_object()) {
    w.raw(to_text(v));
  } else {
    w.begin_object().member("_raw_arguments", text).end_object();
  }
}

void write_block(const Block& b, JsonWriter& w) {
  if (b.kind == BlockKind::image) {
    write_image(b, w);
    return;
  }
  w.begin_object();
  switch (b.kind) {
    case BlockKind::text: w.member("type", "text").member("text", b.text); break;
    case BlockKind::image: break;
    case BlockKind::tool_use:
      w.member("type", "tool_use").member("id", b.tool_id).member("name", b.tool_name);
      write_tool_input(b.tool_input, w.key("input"));
      break;
    case BlockKind::tool_result: {
      w.member("type", "tool_result").member("tool_use_id", b.tool_id);
      bool only_text = true;
      for (const Block& c : b.content) only_text = only_text && c.kind == BlockKind::text;
      if (only_text && b.content.size() == 1) {
        w.member("content", b.content.front().text);
      } else if (!b.content.empty()) {
        w.key("content").begin_array();
        for (const Block& c : b.content) {
          // Only text and images can sit in a tool_result; anything else is sent as its text.
          if (c.kind == BlockKind::image) {
            write_image(c, w);
          } else {
            w.begin_object().member("type", "text").member("text", c.text).end_object();
          }
        }
        w.end_array();
      }
      if (b.is_error) w.member("is_error", true);
      break;
    }
    case BlockKind::thinking:
      w.member("type", "thinking").member("thinking", b.text).member("signature", b.signature);
      break;
    case BlockKind::redacted_thinking:
      w.member("type", "redacted_thinking").member("data", b.data);
      break;
  }
  w.end_object();
}

bool known_block_type(std::string_view type) {
  static constexpr std::array<std::string_view, 6> kTypes{
      "text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking"};
  for (std::string_view t : kTypes) {
    if (t == type) return true;
  }
  return false;
}

Result<Block> block_from_json(const json::value& v, const std::string& where) {
  const json::object* o = v.if_object();
  if (!o) return invalid(where + ": Input should be a valid content block object", where);
  const json::value* type_v = field(*o, "type");
  if (!type_v || !type_v->is_string()) {
    return invalid(where + ".type: Field required", where + ".type");
  }
  const std::string_view type = str(*o, "type");
  Block b;
  if (type == "text") {
    auto text = required_string(*o, "text", where);
    if (!text) return text.error();
    b.text = std::move(*text);
    return b;
  }
  if (type == "image") return image_from_json(*o, where);
  if (type == "tool_use") {
    b.kind = BlockKind::tool_use;
    auto id = required_string(*o, "id", where);
    if (!id) return id.error();
    auto name = required_string(*o, "name", where);
    if (!name) return name.error();
    b.tool_id = std::move(*id);
    b.tool_name = std::move(*name);
    const json::value* input = field(*o, "input");
    if (!input) return invalid(where + ".input: Field required", where + ".input");
    if (!input->is_object()) {
      return invalid(where + ".input: Input should be a valid dictionary", where + ".input");
    }
    b.tool_input = to_text(*input);
    return b;
  }
  if (type == "tool_result") return tool_result_from_json(*o, where);
  if (type == "thinking") {
    b.kind = BlockKind::thinking;
    auto thinking = required_string(*o, "thinking", where);
    if (!thinking) return thinking.error();
    b.text = std::move(*thinking);
    b.signature = std::string(str(*o, "signature"));
    return b;
  }
  if (type == "redacted_thinking") {
    b.kind = BlockKind::redacted_thinking;
    auto data = required_string(*o, "data", where);
    if (!data) return data.error();
    b.data = std::move(*data);
    return b;
  }
  return invalid(where + ".type: unsupported content block type '" + std::string(type) +
                     "' (supported: text, image, tool_use, tool_result, thinking, "
                     "redacted_thinking)",
                 where + ".type");
}

StopReason stop_from_wire(std::string_view s) {
  for (const StopRow& row : kStopReasons) {
    // end_turn is listed twice (error → end_turn); the first row is the one meant.
    if (row.anthropic == s) return row.reason;
  }
  return StopReason::end_turn;
}

std::string new_id(std::string_view prefix) {
  static constexpr std::string_view kAlphabet =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id(prefix);
  id += "01";
  for (int i = 0; i < 22; ++i) id += kAlphabet[rng() % kAlphabet.size()];
  return id;
}

bool known_error_type(std::string_view type) {
  static constexpr std::array<std::string_view, 10> kTypes{
      "invalid_request_error", "authentication_error", "billing_error",    "permission_error",
      "not_found_error",       "request_too_large",    "rate_limit_error", "api_error",
      "timeout_error",         "overloaded_error"};
  for (std::string_view t : kTypes) {
    if (t == type) return true;
  }
  return false;
}

}  // namespace sluice::canonical::anthropic
