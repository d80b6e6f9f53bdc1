// The Anthropic Messages API codec, streaming: the upstream SSE decoder (providers/anthropic)
// and the client SSE encoder (frontends/anthropic).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "canonical/codec.h"
#include "canonical/json.h"

namespace sluice::canonical {
namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(SLUICE_TESTDATA) + "/anthropic/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One line per event, with every field that matters for its kind.
std::string describe(const Event& e) {
  static constexpr const char* kBlocks[] = {"text",        "image",    "tool_use",
                                            "tool_result", "thinking", "redacted_thinking"};
  static constexpr const char* kDeltas[] = {"text", "input_json", "thinking", "signature"};
  const auto u = [](const Usage& x) {
    return " usage=" + std::to_string(x.input) + "/" + std::to_string(x.output) + "/" +
           std::to_string(x.cache_read) + "/" + std::to_string(x.cache_creation) +
           (x.reported ? "r" : "");
  };
  switch (e.kind) {
    case EventKind::message_start:
      return "message_start " + e.id + " " + e.model + u(e.usage);
    case EventKind::block_start:
      return "block_start " + std::to_string(e.index) + " " + kBlocks[int(e.block)] + " " +
             e.tool_id + " " + e.tool_name + " " + e.text;
    case EventKind::block_delta:
      return "delta " + std::to_string(e.index) + " " + kDeltas[int(e.delta)] + " " + e.text;
    case EventKind::block_stop:
      return "block_stop " + std::to_string(e.index);
    case EventKind::message_delta:
      return "message_delta " + std::to_string(int(e.stop_reason)) + " " + e.stop_sequence +
             u(e.usage);
    case EventKind::message_stop:
      return "message_stop";
    case EventKind::error:
      return "error " + std::to_string(e.status) + " " + e.error_type + " " + e.text;
  }
  return "?";
}

std::vector<std::string> describe(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const Event& e : events) out.push_back(describe(e));
  return out;
}

// Decodes `body` fed in pieces of `piece` bytes (0 = all at once), then finish().
std::vector<Event> decode(std::string_view body, size_t piece = 0) {
  auto d = anthropic::stream_decoder();
  std::vector<Event> out;
  if (piece == 0) {
    d->feed(body, out);
  } else {
    for (size_t i = 0; i < body.size(); i += piece) {
      const std::string part(body.substr(i, piece));  // own buffer: no reads past a piece
      d->feed(part, out);
    }
  }
  d->finish(out);
  return out;
}

const std::string kTools = std::to_string(int(StopReason::tool_use));

TEST(AnthropicCodecStreamDecoder, DecodesThinkingTextAndTwoToolCalls) {
  const std::vector<std::string> want = {
      "message_start msg_01Tz6xq8Vh2Lq9nXbH3fG5Yk claude-sonnet-4-5-20250929 "
      "usage=412/1/1536/0r",
      "block_start 0 thinking   ",
      "delta 0 thinking I need the weather ",
      "delta 0 thinking in Paris and London.",
      "delta 0 signature EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
      "block_stop 0",
      "block_start 1 text   ",
      "delta 1 text Checking both ",
      "delta 1 text cities.",
      "block_stop 1",
      "block_start 2 tool_use toolu_01T1x1fJ34qAmk2tNTrN7Up6 get_weather ",
      "delta 2 input_json {\"location\": \"Pa",
      "delta 2 input_json ris, France\"}",
      "block_stop 2",
      "block_start 3 tool_use toolu_01QsFv8xMzpU3sPGeTgJ2yRt get_weather ",
      "delta 3 input_json {\"locat",
      "delta 3 input_json ion\": \"London, UK\"",
      "delta 3 input_json }",
      "block_stop 3",
      "message_delta " + kTools + "  usage=412/187/1536/0r",
      "message_stop"};
  EXPECT_EQ(describe(decode(fixture("stream_thinking_text_tools.sse"))), want);
}

TEST(AnthropicCodecStreamDecoder, AnySplitGivesTheSameEvents) {
  for (const char* name : {"stream_thinking_text_tools.sse", "stream_overloaded_error.sse"}) {
    const std::string body = fixture(name);
    const auto whole = describe(decode(body));
    EXPECT_EQ(describe(decode(body, 1)), whole) << name;
    EXPECT_EQ(describe(decode(body, 7)), whole) << name;
  }
}

TEST(AnthropicCodecStreamDecoder, ForwardsEachArgumentPieceAtOnce) {
  const std::string body = fixture("stream_thinking_text_tools.sse");
  const std::string piece = R"("partial_json":"{\"location\": \"Pa"}})";
  const size_t end = body.find(piece) + piece.size() + 2;  // through the blank line
  auto d = anthropic::stream_decoder();
  std::vector<Event> out;
  d->feed(std::string_view(body).substr(0, end), out);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(describe(out.back()), "delta 2 input_json {\"location\": \"Pa");
}

TEST(AnthropicCodecStreamDecoder, UpstreamErrorEventEndsTheStream) {
  const auto events = describe(decode(fixture("stream_overloaded_error.sse")));
  const std::vector<std::string> want = {
      "message_start msg_01Pq7sN2wXk4Ht8RcVb3mZaL claude-sonnet-4-5-20250929 usage=25/1/0/0r",
      "block_start 0 text   ", "delta 0 text Hello", "error 529 overloaded_error Overloaded"};
  EXPECT_EQ(events, want);  // finish() adds nothing after an error
  auto status_of = [](std::string type) {
    const auto ev = decode("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"" + type +
                           "\",\"message\":\"m\"}}\n\n");
    return ev.size() == 1 && ev[0].kind == EventKind::error ? ev[0].status : -1;
  };
  EXPECT_EQ(status_of("api_error"), 500);
  EXPECT_EQ(status_of("rate_limit_error"), 429);
  EXPECT_EQ(status_of("invalid_request_error"), 400);
  EXPECT_EQ(status_of("something_new"), 502);
}

TEST(AnthropicCodecStreamDecoder, EndWithoutMessageStopIsAnError) {
  std::string body = fixture("stream_thinking_text_tools.sse");
  body.resize(body.find("event: message_stop"));
  const auto events = decode(body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(describe(events.back()), "error 502 api_error upstream stream ended early");
  EXPECT_EQ(describe(decode("")),
            std::vector<std::string>{"error 502 api_error upstream stream ended early"});
}

TEST(AnthropicCodecStreamDecoder, MalformedEventsAreOneErrorNeverACrash) {
  for (std::string_view body :
       {"event: message_start\ndata: {not json\n\n", "data: [1,2]\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":\"x\","
        "\"delta\":7}\n\ndata: {\"type\":\"message_stop\"}\n\n",
        "data: {\"type\":\"content_block_start\",\"index\":0}\n\ndata: {\"type\":"
        "\"message_delta\",\"delta\":{\"stop_reason\":5},\"usage\":{\"output_tokens\":\"x\"}}\n\n"
        "data: \"str\"\n\ndata: {\"type\":\"message_stop\"}\n\n"}) {
    const auto events = decode(body, 1);
    int errors = 0;
    for (const Event& e : events) errors += e.kind == EventKind::error;
    bool stopped = !events.empty() && events.back().kind == EventKind::message_stop;
    EXPECT_TRUE(errors == 1 || stopped) << body;
    EXPECT_LE(errors, 1);
  }
  EXPECT_EQ(describe(decode("data: {oops}\n\n")),
            std::vector<std::string>{
                "error 502 api_error upstream sent a stream event that is not a JSON object"});
}

TEST(AnthropicCodecStreamDecoder, DropsServerToolBlocksAndRenumbers) {
  const std::string body =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\","
      "\"model\":\"c\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
      "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
      "\"server_tool_use\",\"id\":\"srvtoolu_1\",\"name\":\"web_search\",\"input\":{}}}\n\n"
      "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
      "\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n"
      "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
      "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":"
      "\"redacted_thinking\",\"data\":\"opaque\"}}\n\n"
      "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
      "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":"
      "\"text\",\"text\":\"\"}}\n\n"
      "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":"
      "\"citations_delta\",\"citation\":{}}}\n\n"
      "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":"
      "\"text_delta\",\"text\":\"hi\"}}\n\n"
      "data: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
      "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
      "\"stop_sequence\":null},\"usage\":{\"output_tokens\":9}}\n\n"
      "data: {\"type\":\"message_stop\"}\n\n";
  const std::vector<std::string> want = {
      "message_start m c usage=3/1/0/0r",
      "block_start 0 redacted_thinking   opaque",
      "block_stop 0",
      "block_start 1 text   ",
      "delta 1 text hi",
      "block_stop 1",
      "message_delta " + std::to_string(int(StopReason::end_turn)) + "  usage=3/9/0/0r",
      "message_stop"};
  EXPECT_EQ(describe(decode(body)), want);
}

// ---- client side: the encoder ----------------------------------------------------------------

Event ev(EventKind kind) {
  Event e;
  e.kind = kind;
  return e;
}

std::string encode(const std::vector<Event>& events, std::string model = "alias") {
  Request req;
  req.model = std::move(model);
  auto enc = anthropic::stream_encoder(req);
  std::string out;
  for (const Event& e : events) enc->on_event(e, out);
  enc->finish(out);
  return out;
}

TEST(AnthropicCodecStreamEncoder, WritesAnthropicsExactEventSequence) {
  Event start = ev(EventKind::message_start);
  start.id = "msg_1";
  start.model = "upstream-name";
  start.usage = {.input = 5, .output = 1, .cache_read = 2, .cache_creation = 3};
  Event block = ev(EventKind::block_start);
  Event delta = ev(EventKind::block_delta);
  delta.text = "Hi";
  Event end = ev(EventKind::message_delta);
  end.stop_reason = StopReason::max_tokens;
  end.usage = {.input = 5, .output = 7, .cache_read = 0, .cache_creation = 3};
  const std::string got =
      encode({start, block, delta, ev(EventKind::block_stop), end, ev(EventKind::message_stop)});
  const std::string want =
      "event: message_start\n"
      "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
      "\"role\":\"assistant\",\"model\":\"alias\",\"content\":[],\"stop_reason\":null,"
      "\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1,"
      "\"cache_creation_input_tokens\":3,\"cache_read_input_tokens\":2}}}\n\n"
      "event: content_block_start\n"
      "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
      "\"text\":\"\"}}\n\n"
      "event: content_block_delta\n"
      "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
      "\"text\":\"Hi\"}}\n\n"
      "event: content_block_stop\n"
      "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
      "event: message_delta\n"
      "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\","
      "\"stop_sequence\":null},\"usage\":{\"output_tokens\":7,\"input_tokens\":5,"
      "\"cache_creation_input_tokens\":3}}\n\n"
      "event: message_stop\n"
      "data: {\"type\":\"message_stop\"}\n\n";
  EXPECT_EQ(got, want);
}

TEST(AnthropicCodecStreamEncoder, DecodingItsOutputGivesTheSameEvents) {
  const std::vector<Event> events = decode(fixture("stream_thinking_text_tools.sse"));
  const std::string sse = encode(events, "claude-sonnet-4-5-20250929");
  EXPECT_EQ(describe(decode(sse)), describe(events));
  EXPECT_EQ(describe(decode(sse, 1)), describe(events));
  // Each argument piece stays its own input_json_delta.
  EXPECT_NE(
      sse.find(R"("delta":{"type":"input_json_delta","partial_json":"ion\": \"London, UK\""}})"),
      std::string::npos);
  EXPECT_NE(sse.find(R"("content_block":{"type":"thinking","thinking":"","signature":""})"),
            std::string::npos);
  EXPECT_NE(sse.find(R"("delta":{"type":"signature_delta","signature":"EqQB)"), std::string::npos);
}

TEST(AnthropicCodecStreamEncoder, SuppliesMissingFramingAndDropsWhatItCannotCarry) {
  Event redacted = ev(EventKind::block_start);
  redacted.block = BlockKind::redacted_thinking;
  redacted.text = "opaque";
  Event image = ev(EventKind::block_start);
  image.index = 1;
  image.block = BlockKind::image;
  Event image_delta = ev(EventKind::block_delta);
  image_delta.index = 1;
  image_delta.text = "x";
  Event tool = ev(EventKind::block_start);
  tool.index = 2;
  tool.block = BlockKind::tool_use;
  tool.tool_name = "f";
  Event wrong = ev(EventKind::block_delta);  // a text delta on a tool_use block
  wrong.index = 2;
  wrong.text = "nope";
  // No message_start, no block stops, no message_delta.
  const std::vector<Event> decoded =
      decode(encode({redacted, image, image_delta, tool, wrong, ev(EventKind::message_stop)}));
  const std::vector<std::string> got = describe(decoded);
  ASSERT_EQ(got.size(), 7u);
  EXPECT_EQ(got[0].substr(0, 20), "message_start msg_01");
  EXPECT_EQ(got[1], "block_start 0 redacted_thinking   opaque");
  EXPECT_EQ(got[2], "block_stop 0");
  EXPECT_EQ(got[3].substr(0, 29), "block_start 1 tool_use toolu_");
  EXPECT_EQ(got[4], "block_stop 1");
  EXPECT_EQ(got[5],
            "message_delta " + std::to_string(int(StopReason::end_turn)) + "  usage=0/0/0/0r");
  EXPECT_EQ(got[6], "message_stop");
}

TEST(AnthropicCodecStreamEncoder, ErrorsAreAnthropicErrorEvents) {
  Event error = ev(EventKind::error);
  error.status = 529;
  error.error_type = "overloaded_error";
  error.text = "Overloaded";
  Event delta = ev(EventKind::block_delta);
  std::string out =
      encode({ev(EventKind::message_start), ev(EventKind::block_start), error, delta});
  const std::string tail =
      "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
      "\"message\":\"Overloaded\"}}\n\n";
  ASSERT_GE(out.size(), tail.size());
  EXPECT_EQ(out.substr(out.size() - tail.size()), tail);  // nothing after the error

  error.error_type = "context_length_exceeded";  // not an Anthropic type: from the status
  error.status = 400;
  out = encode({error});
  EXPECT_NE(out.find(R"("type":"invalid_request_error")"), std::string::npos);

  Request req;
  auto enc = anthropic::stream_encoder(req);
  out.clear();
  enc->on_event(ev(EventKind::message_start), out);
  out.clear();
  enc->fail(504, "upstream timed out", out);
  EXPECT_EQ(out,
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"timeout_error\","
            "\"message\":\"upstream timed out\"}}\n\n");
  out.clear();
  enc->fail(500, "again", out);
  EXPECT_EQ(out, "");  // one error ends the stream

  auto done = anthropic::stream_encoder(req);
  done->on_event(ev(EventKind::message_stop), out);
  out.clear();
  done->fail(500, "late", out);
  done->finish(out);
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace sluice::canonical
