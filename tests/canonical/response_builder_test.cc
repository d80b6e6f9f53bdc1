// ResponseBuilder (events → the whole answer, the inverse of events_of): a round trip through
// events_of gives the answer back, and for every recorded conformance scenario of every upstream
// protocol, the upstream's stream assembled by the builder says what the same scenario's unary
// answer says (text, thinking and signatures, tool calls, stop reason, usage).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "canonical/codec.h"
#include "canonical/events.h"
#include "canonical/json.h"

namespace sluice::canonical {
namespace {

// What an answer says, independent of how it was carried.
std::string summary(const Response& r) {
  std::string text, thinking, tools;
  for (const Block& b : r.content) {
    switch (b.kind) {
      case BlockKind::text: text += b.text; break;
      case BlockKind::thinking:
        thinking += b.text;
        if (!b.signature.empty()) thinking += "[sig:" + b.signature + "]";
        break;
      case BlockKind::redacted_thinking: thinking += "[redacted:" + b.data + "]"; break;
      case BlockKind::tool_use:
        tools += b.tool_name + to_text(from_text(b.tool_input)) + ";";
        break;
      default: break;
    }
  }
  return "text=" + text + "\nthinking=" + thinking + "\ntools=" + tools +
         "\nstop=" + std::to_string(static_cast<int>(r.stop_reason)) +
         "\nusage=" + std::to_string(r.usage.input) + "/" + std::to_string(r.usage.output) + "/" +
         std::to_string(r.usage.cache_read) + "/" + std::to_string(r.usage.cache_creation);
}

Response sample() {
  Response r;
  r.id = "msg_1";
  r.model = "m";
  Block think;
  think.kind = BlockKind::thinking;
  think.text = "hmm";
  think.signature = "sig";
  Block redacted;
  redacted.kind = BlockKind::redacted_thinking;
  redacted.data = "opaque";
  Block text;
  text.text = "hi";
  Block call;
  call.kind = BlockKind::tool_use;
  call.tool_id = "t1";
  call.tool_name = "f";
  call.tool_input = R"({"a":1})";
  Block empty_call;
  empty_call.kind = BlockKind::tool_use;
  empty_call.tool_id = "t2";
  empty_call.tool_name = "g";
  empty_call.tool_input = "{}";
  r.content = {think, redacted, text, call, empty_call};
  r.stop_reason = StopReason::tool_use;
  r.usage.input = 3;
  r.usage.output = 7;
  r.usage.cache_read = 11;
  r.usage.reported = true;
  return r;
}

TEST(ResponseBuilder, RoundTripsEventsOf) {
  const Response r = sample();
  ResponseBuilder b;
  b.add(events_of(r));
  ASSERT_TRUE(b.complete());
  EXPECT_FALSE(b.failed());
  Response got = b.take();
  EXPECT_EQ(got.id, "msg_1");
  EXPECT_EQ(got.model, "m");
  EXPECT_EQ(summary(got), summary(r));
  ASSERT_EQ(got.content.size(), 5u);
  EXPECT_EQ(got.content[3].tool_id, "t1");
  EXPECT_EQ(got.content[4].tool_input, "{}");  // no argument deltas: an empty object
}

TEST(ResponseBuilder, KeepsStartUsageWhenTheEndReportsOnlyOutput) {
  std::vector<Event> ev;
  Event start;
  start.kind = EventKind::message_start;
  start.usage.input = 40;
  start.usage.cache_read = 2;
  start.usage.reported = true;
  ev.push_back(start);
  emit_block_start(ev, 0, BlockKind::text);
  emit_delta(ev, 0, DeltaKind::text, "a");
  emit_delta(ev, 0, DeltaKind::text, "b");
  emit_block_stop(ev, 0);
  Usage end;
  end.output = 9;
  end.reported = true;
  emit_message_end(ev, StopReason::end_turn, "", end);
  ResponseBuilder b;
  b.add(ev);
  Response r = b.take();
  EXPECT_EQ(r.content[0].text, "ab");
  EXPECT_EQ(r.usage.input, 40);
  EXPECT_EQ(r.usage.cache_read, 2);
  EXPECT_EQ(r.usage.output, 9);
}

TEST(ResponseBuilder, AnErrorEndsTheAnswerIncomplete) {
  std::vector<Event> ev = events_of(sample());
  ev.resize(8);  // cut inside the text block
  Event err;
  err.kind = EventKind::error;
  err.status = 529;
  err.text = "Overloaded";
  ev.push_back(err);
  ev.push_back(events_of(sample()).back());  // nothing after an error counts
  ResponseBuilder b;
  b.add(ev);
  EXPECT_TRUE(b.failed());
  EXPECT_FALSE(b.complete());
  EXPECT_EQ(b.error_status(), 529);
  EXPECT_EQ(b.error_message(), "Overloaded");
}

TEST(ResponseBuilder, IgnoresBlockIndicesThatWouldAllocateWithoutBound) {
  ResponseBuilder b;
  std::vector<Event> ev;
  emit_block_start(ev, -1, BlockKind::text);
  emit_block_start(ev, 2000000000, BlockKind::text);
  emit_block_start(ev, 0, BlockKind::text);
  emit_delta(ev, 0, DeltaKind::text, "ok");
  b.add(ev);
  Response r = b.take();
  ASSERT_EQ(r.content.size(), 1u);
  EXPECT_EQ(r.content[0].text, "ok");
}

// Every conformance scenario recorded both ways: the stream, assembled, equals the unary answer.
TEST(ResponseBuilder, AssembledStreamsSayWhatUnaryAnswersSay) {
  const std::filesystem::path root = std::filesystem::path(SLUICE_TESTDATA) / "conformance";
  size_t compared = 0;
  for (Protocol p : {Protocol::openai, Protocol::anthropic, Protocol::gemini}) {
    const auto dir = root / std::string(protocol_name(p));
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() != ".sse") continue;
      auto unary_path = entry.path();
      unary_path.replace_extension(".json");
      if (!std::filesystem::exists(unary_path)) continue;
      auto read = [](const std::filesystem::path& f) {
        std::ifstream in(f, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
      };
      const std::string sse = read(entry.path());
      auto unary = decode_response(p, read(unary_path));
      ASSERT_TRUE(unary) << unary_path;
      auto decoder = stream_decoder(p);
      std::vector<Event> events;
      ResponseBuilder b;
      for (size_t i = 0; i < sse.size(); i += 5) {  // in small pieces, as reads arrive
        decoder->feed(std::string_view(sse).substr(i, 5), events);
        b.add(events);
        events.clear();
      }
      decoder->finish(events);
      b.add(events);
      SCOPED_TRACE(entry.path().string());
      ASSERT_TRUE(b.complete());
      EXPECT_EQ(summary(b.take()), summary(*unary));
      ++compared;
    }
  }
  EXPECT_GE(compared, 20u);  // every scenario of the three providers that has both recordings
}

}  // namespace
}  // namespace sluice::canonical
