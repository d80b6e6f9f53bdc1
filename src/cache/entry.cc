// Cache entries: see entry.h.
#include "cache/entry.h"

#include "canonical/json.h"

namespace sluice::cache {

namespace json = canonical::json;
using canonical::Block;
using canonical::BlockKind;
using canonical::StopReason;

namespace {

constexpr int kVersion = 1;

json::object block_json(const Block& b) {
  json::object o{{"k", static_cast<int64_t>(b.kind)}};
  auto put = [&](const char* name, const std::string& v) {
    if (!v.empty()) o[name] = v;
  };
  put("text", b.text);
  put("sig", b.signature);
  put("data", b.data);
  put("mt", b.image_media_type);
  put("img", b.image_data);
  put("url", b.image_url);
  put("tid", b.tool_id);
  put("tname", b.tool_name);
  if (b.kind == BlockKind::tool_use) o["tin"] = b.tool_input;
  if (!b.content.empty()) {
    json::array c;
    for (const Block& x : b.content) c.push_back(block_json(x));
    o["content"] = std::move(c);
  }
  if (b.is_error) o["err"] = true;
  return o;
}

Result<Block> block_of(const json::value& v, int depth = 0) {
  if (!v.is_object() || depth > 2) return make_error(Errc::internal, "A cache entry's block is damaged.");
  const json::object& o = v.as_object();
  Block b;
  const auto kind = canonical::integer(o, "k");
  if (!kind || *kind < 0 || *kind > static_cast<int64_t>(BlockKind::redacted_thinking)) {
    return make_error(Errc::internal, "A cache entry's block kind is unknown.");
  }
  b.kind = static_cast<BlockKind>(*kind);
  b.text = std::string(canonical::str(o, "text"));
  b.signature = std::string(canonical::str(o, "sig"));
  b.data = std::string(canonical::str(o, "data"));
  b.image_media_type = std::string(canonical::str(o, "mt"));
  b.image_data = std::string(canonical::str(o, "img"));
  b.image_url = std::string(canonical::str(o, "url"));
  b.tool_id = std::string(canonical::str(o, "tid"));
  b.tool_name = std::string(canonical::str(o, "tname"));
  if (o.contains("tin")) b.tool_input = std::string(canonical::str(o, "tin"));
  if (const json::array* c = canonical::arr(o, "content")) {
    for (const json::value& x : *c) {
      auto inner = block_of(x, depth + 1);
      if (!inner) return inner;
      b.content.push_back(std::move(*inner));
    }
  }
  b.is_error = canonical::boolean(o, "err").value_or(false);
  return b;
}

}  // namespace

std::string encode_entry(const Entry& e) {
  const canonical::Response& r = e.answer;
  json::array blocks;
  for (const Block& b : r.content) blocks.push_back(block_json(b));
  const canonical::Usage& u = r.usage;
  json::object o{{"v", kVersion},
                 {"id", r.id},
                 {"model", r.model},
                 {"served_by", e.model},
                 {"stop", static_cast<int64_t>(r.stop_reason)},
                 {"stop_sequence", r.stop_sequence},
                 {"usage", json::object{{"input", u.input},
                                        {"output", u.output},
                                        {"cache_read", u.cache_read},
                                        {"cache_creation", u.cache_creation},
                                        {"reasoning", u.reasoning},
                                        {"reported", u.reported}}},
                 {"blocks", std::move(blocks)},
                 {"stored_ms", e.stored_ms},
                 {"duration_ms", e.duration_ms}};
  return canonical::to_text(o);
}

Result<Entry> decode_entry(std::string_view text) {
  auto parsed = canonical::parse_json(text);
  if (!parsed || !parsed->is_object()) return make_error(Errc::internal, "A cache entry is damaged.");
  const json::object& o = parsed->as_object();
  if (canonical::integer(o, "v").value_or(0) != kVersion) {
    return make_error(Errc::internal, "A cache entry has another version.");
  }
  Entry e;
  canonical::Response& r = e.answer;
  r.id = std::string(canonical::str(o, "id"));
  r.model = std::string(canonical::str(o, "model"));
  e.model = std::string(canonical::str(o, "served_by"));
  const auto stop = canonical::integer(o, "stop").value_or(0);
  if (stop < 0 || stop > static_cast<int64_t>(StopReason::error)) {
    return make_error(Errc::internal, "A cache entry's stop reason is unknown.");
  }
  r.stop_reason = static_cast<StopReason>(stop);
  r.stop_sequence = std::string(canonical::str(o, "stop_sequence"));
  if (const json::object* u = canonical::obj(o, "usage")) {
    r.usage.input = canonical::integer(*u, "input").value_or(0);
    r.usage.output = canonical::integer(*u, "output").value_or(0);
    r.usage.cache_read = canonical::integer(*u, "cache_read").value_or(0);
    r.usage.cache_creation = canonical::integer(*u, "cache_creation").value_or(0);
    r.usage.reasoning = canonical::integer(*u, "reasoning").value_or(0);
    r.usage.reported = canonical::boolean(*u, "reported").value_or(false);
  }
  const json::array* blocks = canonical::arr(o, "blocks");
  if (blocks == nullptr) return make_error(Errc::internal, "A cache entry has no blocks.");
  for (const json::value& v : *blocks) {
    auto b = block_of(v);
    if (!b) return std::move(b.error());
    r.content.push_back(std::move(*b));
  }
  e.stored_ms = canonical::integer(o, "stored_ms").value_or(0);
  e.duration_ms = canonical::integer(o, "duration_ms").value_or(0);
  return e;
}

bool storable(const canonical::Response& r, bool tool_calls) {
  switch (r.stop_reason) {
    case StopReason::end_turn:
    case StopReason::max_tokens:
    case StopReason::stop_sequence:
      break;
    case StopReason::tool_use:
      if (!tool_calls) return false;
      break;
    default:  // unset (never finished), refusal, pause_turn, error
      return false;
  }
  for (const Block& b : r.content) {
    if (b.kind == BlockKind::tool_use && !tool_calls) return false;
  }
  return true;
}

}  // namespace sluice::cache
