// Shared helpers for the OpenAI codec tests (openai_codec_test.cc: client side,
// openai_codec_upstream_test.cc: upstream side).
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "canonical/codec.h"
#include "canonical/json.h"
#include "providers/openai/stream_decoder.h"

namespace sluice::canonical::openai_test {

inline std::string fixture(const std::string& name) {
  std::ifstream f(std::string(SLUICE_TESTDATA) + "/openai/" + name, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline json::object parse_obj(std::string_view text) {
  auto v = parse_json(text);
  EXPECT_TRUE(v.ok()) << text;
  if (!v.ok() || !v->is_object()) return {};
  return v->as_object();
}

inline const char* kind_name(BlockKind k) {
  switch (k) {
    case BlockKind::text: return "text";
    case BlockKind::image: return "image";
    case BlockKind::tool_use: return "tool_use";
    case BlockKind::tool_result: return "tool_result";
    case BlockKind::thinking: return "thinking";
    case BlockKind::redacted_thinking: return "redacted";
  }
  return "?";
}

inline const char* delta_name(DeltaKind k) {
  switch (k) {
    case DeltaKind::text: return "text";
    case DeltaKind::input_json: return "json";
    case DeltaKind::thinking: return "thinking";
    case DeltaKind::signature: return "sig";
  }
  return "?";
}

// One line per event, everything a test may compare.
inline std::string show(const Event& e) {
  switch (e.kind) {
    case EventKind::message_start: return "start " + e.id + " " + e.model;
    case EventKind::block_start:
      return "block_start " + std::to_string(e.index) + " " + kind_name(e.block) +
             (e.block == BlockKind::tool_use ? " " + e.tool_id + " " + e.tool_name : "") +
             (e.block == BlockKind::redacted_thinking ? " " + e.text : "");
    case EventKind::block_delta:
      return "delta " + std::to_string(e.index) + " " + delta_name(e.delta) + " " + e.text;
    case EventKind::block_stop: return "block_stop " + std::to_string(e.index);
    case EventKind::message_delta:
      return "message_delta " + std::to_string(static_cast<int>(e.stop_reason)) + " in=" +
             std::to_string(e.usage.input) + " cr=" + std::to_string(e.usage.cache_read) +
             " out=" + std::to_string(e.usage.output) + " rs=" +
             std::to_string(e.usage.reasoning) + (e.usage.reported ? " reported" : "");
    case EventKind::message_stop: return "stop";
    case EventKind::error:
      return "error " + std::to_string(e.status) + " " + e.error_type + " " + e.text;
  }
  return "?";
}

// Feeds `body` to `dec` whole (piece 0) or in pieces of `piece` bytes, then finishes it.
inline void feed_in_pieces(StreamDecoder& dec, std::string_view body, size_t piece,
                           std::vector<Event>& events) {
  if (piece == 0) {
    dec.feed(body, events);
  } else {
    for (size_t i = 0; i < body.size(); i += piece) dec.feed(body.substr(i, piece), events);
  }
  dec.finish(events);
}

inline std::vector<std::string> decode_stream(std::string_view body, size_t piece = 0,
                                       size_t* dropped = nullptr) {
  auto dec = std::make_unique<openai::ChunkDecoder>();
  std::vector<Event> events;
  feed_in_pieces(*dec, body, piece, events);
  if (dropped) *dropped = dec->dropped_deltas();
  std::vector<std::string> out;
  for (const Event& e : events) out.push_back(show(e));
  return out;
}

// The `data:` payloads of an SSE body.
inline std::vector<std::string> data_lines(const std::string& sse) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = sse.find("data: ", pos)) != std::string::npos) {
    const size_t end = sse.find("\n\n", pos);
    out.push_back(sse.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

inline Request decode_ok(std::string_view body) {
  Result<Request> r = openai::decode_request(body, {});
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message) << "\n" << body;
  return r.ok() ? r.value() : Request{};
}

inline Block thinking(std::string text, std::string sig) {
  Block b;
  b.kind = BlockKind::thinking;
  b.text = std::move(text);
  b.signature = std::move(sig);
  return b;
}

inline Block redacted(std::string data) {
  Block b;
  b.kind = BlockKind::redacted_thinking;
  b.data = std::move(data);
  return b;
}

inline Block text(std::string t) {
  Block b;
  b.text = std::move(t);
  return b;
}

inline Block tool_use(std::string id, std::string name, std::string input) {
  Block b;
  b.kind = BlockKind::tool_use;
  b.tool_id = std::move(id);
  b.tool_name = std::move(name);
  b.tool_input = std::move(input);
  return b;
}

inline Event ev(EventKind k) {
  Event e;
  e.kind = k;
  return e;
}

// A redacted_thinking block's start, its opaque data as the text (canonical.h).
inline Event redacted_start(int i, std::string data) {
  Event e = ev(EventKind::block_start);
  e.index = i;
  e.block = BlockKind::redacted_thinking;
  e.text = std::move(data);
  return e;
}

inline Event bstart(int i, BlockKind k, std::string id = {}, std::string name = {}) {
  Event e = ev(EventKind::block_start);
  e.index = i;
  e.block = k;
  e.tool_id = std::move(id);
  e.tool_name = std::move(name);
  return e;
}

inline Event bdelta(int i, DeltaKind k, std::string t) {
  Event e = ev(EventKind::block_delta);
  e.index = i;
  e.delta = k;
  e.text = std::move(t);
  return e;
}

inline Event bstop(int i) {
  Event e = ev(EventKind::block_stop);
  e.index = i;
  return e;
}

// A canonical stream using every block kind an OpenAI client can receive.
inline std::vector<Event> rich_stream() {
  Event start = ev(EventKind::message_start);
  start.id = "chatcmpl-rich";
  start.model = "gw-model";
  Event md = ev(EventKind::message_delta);
  md.stop_reason = StopReason::tool_use;
  md.usage = {.input = 3, .output = 9, .cache_read = 4, .reasoning = 2, .reported = true};
  return {start,
          bstart(0, BlockKind::thinking), bdelta(0, DeltaKind::thinking, "Hmm, "),
          bdelta(0, DeltaKind::thinking, "two cities."), bdelta(0, DeltaKind::signature, "sig0"),
          bstop(0),
          redacted_start(1, "REDACTED"),
          bstop(1),
          bstart(2, BlockKind::text), bdelta(2, DeltaKind::text, "Checking."), bstop(2),
          bstart(3, BlockKind::tool_use, "call_a", "get_weather"),
          bdelta(3, DeltaKind::input_json, "{\"city\":"), bdelta(3, DeltaKind::input_json, "\"Paris\"}"),
          bstop(3),
          bstart(4, BlockKind::tool_use, "call_b", "get_time"),
          bdelta(4, DeltaKind::input_json, "{}"), bstop(4),
          md, ev(EventKind::message_stop)};
}

inline Request full_request() {
  Request r;
  r.model = "gpt-4o";
  r.system = {text("Rule one."), text("Rule two.")};
  Message u1;
  u1.content = {text("Look:"), Block{}};
  u1.content[1].kind = BlockKind::image;
  u1.content[1].image_media_type = "image/jpeg";
  u1.content[1].image_data = "/9j/4AAQ";
  Block url_img;
  url_img.kind = BlockKind::image;
  url_img.image_url = "https://example.com/a.png";
  u1.content.push_back(url_img);
  Message a1;
  a1.role = Role::assistant;
  a1.content = {thinking("private", "sig"), text("Calling."),
                tool_use("call_1", "get_weather", R"({"city":"Paris"})"),
                tool_use("call_2", "get_weather", R"({"city":"Oslo"})")};
  Message u2;
  Block r1;
  r1.kind = BlockKind::tool_result;
  r1.tool_id = "call_1";
  r1.tool_name = "get_weather";
  r1.content = {text("18C")};
  Block r2 = r1;
  r2.tool_id = "call_2";
  r2.content = {text("3C"), text("windy")};
  u2.content = {r1, r2, text("Summarise.")};
  r.messages = {u1, a1, u2};
  Tool t;
  t.name = "get_weather";
  t.description = "Weather";
  t.parameters = R"({"type":"object","properties":{"city":{"type":"string"}}})";
  r.tools = {t};
  r.tool_choice = {ToolChoiceKind::named, "get_weather"};
  r.parallel_tool_calls = true;
  r.max_tokens = 512;
  r.temperature = 0.25;
  r.top_p = 0.5;
  r.top_k = 20;
  r.stop = {"END"};
  r.stream = true;
  r.include_usage = true;
  r.reasoning_effort = "high";
  r.user = "u-9";
  return r;
}

inline std::string answer(std::string_view message, std::string_view finish,
                   std::string_view usage = "") {
  return std::string(R"({"id":"x","model":"m","choices":[{"index":0,"message":)") +
         std::string(message) + R"(,"finish_reason":)" + std::string(finish) + "}]" +
         (usage.empty() ? "" : ",\"usage\":" + std::string(usage)) + "}";
}

}  // namespace sluice::canonical::openai_test
