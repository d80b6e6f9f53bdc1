// Unit tests for SseParser: WHATWG field rules, every line-ending style, events split at every
// byte, real provider stream samples, and the max_event_bytes bound.
#include "http/parse/sse_parser.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::http {
namespace {

struct Ev {
  std::string event;
  std::string data;
  std::string id;
  int retry_ms = -1;
  bool operator==(const Ev&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Ev& e) {
  return os << "{event=" << e.event << " data=" << e.data << " id=" << e.id
            << " retry=" << e.retry_ms << "}";
}

class Collector {
 public:
  SseParser::Sink sink() {
    return [this](const SseEvent& e) {
      events.push_back({std::string(e.event), std::string(e.data), std::string(e.id), e.retry_ms});
    };
  }
  std::vector<Ev> events;
};

std::vector<Ev> parse_whole(std::string_view s) {
  SseParser p;
  Collector c;
  p.feed(s, c.sink());
  return c.events;
}

std::vector<Ev> parse_split(std::string_view s, const std::vector<size_t>& cuts,
                            SseParser* parser = nullptr) {
  SseParser local;
  SseParser& p = parser != nullptr ? *parser : local;
  Collector c;
  const auto sink = c.sink();
  size_t begin = 0;
  for (size_t cut : cuts) {
    p.feed(s.substr(begin, cut - begin), sink);
    begin = cut;
  }
  p.feed(s.substr(begin), sink);
  return c.events;
}

std::vector<Ev> parse_bytewise(std::string_view s) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < s.size(); ++i) cuts.push_back(i);
  return parse_split(s, cuts);
}

// Checks that every one- and two-cut split of `s` yields `expected`.
void expect_split_invariant(std::string_view s, const std::vector<Ev>& expected) {
  EXPECT_EQ(parse_whole(s), expected);
  EXPECT_EQ(parse_bytewise(s), expected);
  for (size_t a = 0; a <= s.size(); ++a) {
    for (size_t b = a; b <= s.size(); ++b) {
      ASSERT_EQ(parse_split(s, {a, b}), expected) << "cuts " << a << "," << b;
    }
  }
}

TEST(SseParser, DispatchesASimpleEvent) {
  EXPECT_EQ(parse_whole("data: hello\n\n"), (std::vector<Ev>{{"", "hello", "", -1}}));
}

TEST(SseParser, JoinsMultiLineData) {
  EXPECT_EQ(parse_whole("data: a\ndata:b\ndata\ndata:  c\n\n"),
            (std::vector<Ev>{{"", "a\nb\n\n c", "", -1}}));
}

TEST(SseParser, RemovesOnlyOneLeadingSpace) {
  EXPECT_EQ(parse_whole("data:  two\n\ndata:none\n\n"),
            (std::vector<Ev>{{"", " two", "", -1}, {"", "none", "", -1}}));
}

TEST(SseParser, TreatsALineWithoutColonAsAFieldWithEmptyValue) {
  EXPECT_EQ(parse_whole("data\n\n"), (std::vector<Ev>{{"", "", "", -1}}));
  EXPECT_EQ(parse_whole("event\ndata: x\n\n"), (std::vector<Ev>{{"", "x", "", -1}}));
}

TEST(SseParser, KeepsColonsInsideTheValue) {
  EXPECT_EQ(parse_whole("data: {\"a\":\"b:c\"}\n\n"),
            (std::vector<Ev>{{"", "{\"a\":\"b:c\"}", "", -1}}));
}

TEST(SseParser, IgnoresComments) {
  EXPECT_EQ(parse_whole(": keep-alive\n\n:\n\ndata: x\n: inside\n\n"),
            (std::vector<Ev>{{"", "x", "", -1}}));
}

TEST(SseParser, DoesNotDispatchBlankLinesWithoutFields) {
  SseParser p;
  Collector c;
  p.feed("\n\n\r\n\r\r", c.sink());
  EXPECT_TRUE(c.events.empty());
  EXPECT_EQ(p.pending_bytes(), 0u);
}

TEST(SseParser, IgnoresUnknownFields) {
  EXPECT_EQ(parse_whole("foo: bar\n\n"), std::vector<Ev>{});
  EXPECT_EQ(parse_whole("Data: x\n\n"), std::vector<Ev>{});  // field names are case-sensitive
  EXPECT_EQ(parse_whole("foo: bar\ndata: y\n\n"), (std::vector<Ev>{{"", "y", "", -1}}));
}

TEST(SseParser, SetsEventTypeAndKeepsTheLastOne) {
  EXPECT_EQ(parse_whole("event: a\nevent: b\ndata: x\n\n"), (std::vector<Ev>{{"b", "x", "", -1}}));
}

TEST(SseParser, ParsesAnthropicStyleEvents) {
  const std::string s =
      "event: message_start\ndata: {\"type\":\"message_start\"}\n\n"
      "event: ping\ndata: {\"type\": \"ping\"}\n\n"
      "event: content_block_delta\n"
      "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  const std::vector<Ev> expected = {
      {"message_start", "{\"type\":\"message_start\"}", "", -1},
      {"ping", "{\"type\": \"ping\"}", "", -1},
      {"content_block_delta", "{\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}", "",
       -1},
      {"message_stop", "{\"type\":\"message_stop\"}", "", -1},
  };
  EXPECT_EQ(parse_whole(s), expected);
  EXPECT_EQ(parse_bytewise(s), expected);
}

TEST(SseParser, ParsesAnOpenAiChatStream) {
  const std::string chunk1 =
      R"({"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,)"
      R"("model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},)"
      R"("logprobs":null,"finish_reason":null}]})";
  const std::string chunk2 =
      R"({"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,)"
      R"("model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hello"},)"
      R"("logprobs":null,"finish_reason":null}]})";
  const std::string chunk3 =
      R"({"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,)"
      R"("model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,)"
      R"("finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1}})";
  const std::string s =
      "data: " + chunk1 + "\n\ndata: " + chunk2 + "\n\ndata: " + chunk3 + "\n\ndata: [DONE]\n\n";
  const std::vector<Ev> expected = {
      {"", chunk1, "", -1}, {"", chunk2, "", -1}, {"", chunk3, "", -1}, {"", "[DONE]", "", -1}};
  EXPECT_EQ(parse_whole(s), expected);
  EXPECT_EQ(parse_bytewise(s), expected);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<size_t> cuts;
    for (size_t pos = 0; pos < s.size(); pos += rng() % 40 + 1) cuts.push_back(pos);
    ASSERT_EQ(parse_split(s, cuts), expected);
  }
}

TEST(SseParser, GivesTheSameEventsForEverySplit) {
  expect_split_invariant("event: x\r\ndata: y\r\n\r\n: c\rdata:z\rid: 7\r\r\xEF\xBB\xBFx\n\n",
                         {{"x", "y", "", -1}, {"", "z", "7", -1}});
  expect_split_invariant(
      "\xEF\xBB\xBF"
      "data: a\r\n\r\ndata: b\n\n",
      {{"", "a", "", -1}, {"", "b", "", -1}});
}

TEST(SseParser, AcceptsCrLfCrAndLfLineEndings) {
  const std::vector<Ev> expected = {{"e", "a\nb", "", -1}};
  EXPECT_EQ(parse_whole("event: e\ndata: a\ndata: b\n\n"), expected);
  EXPECT_EQ(parse_whole("event: e\r\ndata: a\r\ndata: b\r\n\r\n"), expected);
  EXPECT_EQ(parse_whole("event: e\rdata: a\rdata: b\r\r"), expected);
  EXPECT_EQ(parse_whole("event: e\rdata: a\r\ndata: b\n\r"), expected);
}

TEST(SseParser, TreatsCrLfSplitAcrossFeedsAsOneLineEnding) {
  SseParser p;
  Collector c;
  p.feed("data: a\r", c.sink());
  EXPECT_TRUE(c.events.empty());
  p.feed("\n", c.sink());  // completes the CRLF; must not count as a blank line
  EXPECT_TRUE(c.events.empty());
  p.feed("\r", c.sink());
  ASSERT_EQ(c.events.size(), 1u);
  p.feed("\n", c.sink());
  p.feed("data: b\r", c.sink());
  p.feed("", c.sink());  // an empty feed does not break the CRLF pair
  p.feed("\n\r\n", c.sink());
  EXPECT_EQ(c.events, (std::vector<Ev>{{"", "a", "", -1}, {"", "b", "", -1}}));
}

TEST(SseParser, StripsALeadingBomOnce) {
  EXPECT_EQ(parse_whole("\xEF\xBB\xBF"
                        "data: a\n\n"),
            (std::vector<Ev>{{"", "a", "", -1}}));
  // A second BOM is part of the first line, making the field name unknown.
  EXPECT_EQ(parse_whole("\xEF\xBB\xBF\xEF\xBB\xBF"
                        "data: a\n\n"),
            std::vector<Ev>{});
  // A BOM later in the stream is content.
  EXPECT_EQ(parse_whole("data: \xEF\xBB\xBFx\n\n"),
            (std::vector<Ev>{{"", "\xEF\xBB\xBFx", "", -1}}));
}

TEST(SseParser, StripsABomSplitAcrossFeeds) {
  EXPECT_EQ(parse_split("\xEF\xBB\xBF"
                        "data: a\n\n",
                        {1, 2, 3}),
            (std::vector<Ev>{{"", "a", "", -1}}));
  // A partial BOM that does not complete is ordinary content of the first line.
  EXPECT_EQ(parse_split("\xEF\xBB"
                        "data: a\n\ndata: b\n\n",
                        {1, 2}),
            (std::vector<Ev>{{"", "b", "", -1}}));
}

TEST(SseParser, SetsIdUnlessItContainsNul) {
  EXPECT_EQ(parse_whole("id: 42\ndata: x\n\n"), (std::vector<Ev>{{"", "x", "42", -1}}));
  EXPECT_EQ(parse_whole(std::string("id: 4\0002\ndata: x\n\n", 17)),
            (std::vector<Ev>{{"", "x", "", -1}}));
}

TEST(SseParser, ResetsIdAfterEachEvent) {
  EXPECT_EQ(parse_whole("id: 1\ndata: a\n\ndata: b\n\n"),
            (std::vector<Ev>{{"", "a", "1", -1}, {"", "b", "", -1}}));
}

TEST(SseParser, SetsRetryOnlyForAllDigitValues) {
  EXPECT_EQ(parse_whole("retry: 3000\ndata: x\n\n"), (std::vector<Ev>{{"", "x", "", 3000}}));
  EXPECT_EQ(parse_whole("retry: 3s\ndata: x\n\n"), (std::vector<Ev>{{"", "x", "", -1}}));
  EXPECT_EQ(parse_whole("retry: -1\ndata: x\n\n"), (std::vector<Ev>{{"", "x", "", -1}}));
  EXPECT_EQ(parse_whole("retry:\ndata: x\n\n"), (std::vector<Ev>{{"", "x", "", -1}}));
  EXPECT_EQ(parse_whole("retry: 99999999999999999999\n\n"),
            (std::vector<Ev>{{"", "", "", 2147483647}}));
}

TEST(SseParser, DispatchesEventsWithAnyFieldEvenWithoutData) {
  // Deliberate deviation from WHATWG, which drops events with an empty data buffer.
  EXPECT_EQ(parse_whole("event: ping\n\n"), (std::vector<Ev>{{"ping", "", "", -1}}));
  EXPECT_EQ(parse_whole("id: 5\n\n"), (std::vector<Ev>{{"", "", "5", -1}}));
  EXPECT_EQ(parse_whole("retry: 10\n\n"), (std::vector<Ev>{{"", "", "", 10}}));
}

TEST(SseParser, KeepsEmptyDataLines) {
  EXPECT_EQ(parse_whole("data:\ndata:\n\n"), (std::vector<Ev>{{"", "\n", "", -1}}));
}

TEST(SseParser, DoesNotDispatchAnUnterminatedEvent) {
  SseParser p;
  Collector c;
  p.feed("data: partial\n", c.sink());
  EXPECT_TRUE(c.events.empty());
  EXPECT_GT(p.pending_bytes(), 0u);
  p.feed("\n", c.sink());
  EXPECT_EQ(c.events.size(), 1u);
  EXPECT_EQ(p.pending_bytes(), 0u);
}

TEST(SseParser, ResetsEventTypeAfterDispatch) {
  EXPECT_EQ(parse_whole("event: a\ndata: 1\n\ndata: 2\n\n"),
            (std::vector<Ev>{{"a", "1", "", -1}, {"", "2", "", -1}}));
}

TEST(SseParser, DropsOversizedEventsAndRecovers) {
  for (bool bytewise : {false, true}) {
    SseParser p;
    p.set_max_event_bytes(16);
    Collector c;
    const std::string s =
        "data: ok\n\ndata: 0123456789\ndata: 0123456789\nevent: big\n\ndata: after\n\n";
    if (bytewise) {
      for (char ch : s) p.feed(std::string_view(&ch, 1), c.sink());
    } else {
      p.feed(s, c.sink());
    }
    EXPECT_TRUE(p.overflowed());
    EXPECT_EQ(c.events, (std::vector<Ev>{{"", "ok", "", -1}, {"", "after", "", -1}}));
    EXPECT_EQ(p.pending_bytes(), 0u);
  }
}

TEST(SseParser, BoundsABufferedPartialLine) {
  SseParser p;
  p.set_max_event_bytes(32);
  Collector c;
  const std::string long_piece(20, 'x');
  p.feed("data: ", c.sink());
  for (int i = 0; i < 100; ++i) {
    p.feed(long_piece, c.sink());
    ASSERT_LE(p.pending_bytes(), 32u);
  }
  EXPECT_TRUE(p.overflowed());
  p.feed("\n\ndata: next\n\n", c.sink());
  EXPECT_EQ(c.events, (std::vector<Ev>{{"", "next", "", -1}}));
}

TEST(SseParser, DoesNotOverflowAtExactlyTheLimit) {
  SseParser p;
  p.set_max_event_bytes(10);
  Collector c;
  p.feed("data:1234\n\n", c.sink());  // line is 9 bytes, data buffer 5
  EXPECT_FALSE(p.overflowed());
  EXPECT_EQ(c.events.size(), 1u);
}

// A one-line `data:` event whole in a read is dispatched straight from the read's bytes; fed
// byte by byte, every event goes the line-by-line way. Both must give the same events, for that
// shape next to every other one (fields before it, CR endings, comments, two data lines, the
// size bound).
TEST(SseParser, TheWholeOneLineEventGivesWhatTheLineByLineWayGives) {
  const std::string s =
      "data: a\n\ndata:b\n\ndata:  two spaces\n\nevent: e\ndata: after event\n\n"
      "data: 1\ndata: 2\n\n: comment\ndata: c\n\ndata: crlf\r\n\r\ndata: cr\r\r"
      "id: 7\ndata: with id\n\ndata\n\ndata:\n\ndatax: not data\n\n"
      "event:x\ndata:y\n\nevent: only\n\nevent: e\ndata: a\ndata: b\n\n"
      "event: e\r\ndata: crlf\n\neventx: 1\ndata: z\n\nevent: e\nid: 9\ndata: q\n\n"
      "event: a\nevent: b\ndata: two events\n\ndata: last\n\n";
  const std::vector<Ev> expected = {
      {"", "a", "", -1},         {"", "b", "", -1},        {"", " two spaces", "", -1},
      {"e", "after event", "", -1}, {"", "1\n2", "", -1},  {"", "c", "", -1},
      {"", "crlf", "", -1},      {"", "cr", "", -1},       {"", "with id", "7", -1},
      {"", "", "", -1},          {"", "", "", -1},         {"x", "y", "", -1},
      {"only", "", "", -1},      {"e", "a\nb", "", -1},    {"e", "crlf", "", -1},
      {"", "z", "", -1},         {"e", "q", "9", -1},      {"b", "two events", "", -1},
      {"", "last", "", -1}};
  EXPECT_EQ(parse_whole(s), expected);
  EXPECT_EQ(parse_bytewise(s), expected);
  // The bounds hold on both ways: a 12-byte line fits a 12-byte bound, not an 11-byte one;
  // an event's name counts with its data line (3 + 12 bytes).
  for (size_t bound : {11u, 12u}) {
    SseParser whole;
    whole.set_max_event_bytes(bound);
    Collector c;
    whole.feed("data: 123456\n\ndata: ok\n\n", c.sink());
    EXPECT_EQ(whole.overflowed(), bound == 11u);
    EXPECT_EQ(c.events.size(), bound == 11u ? 1u : 2u);
  }
  for (size_t bound : {14u, 15u}) {
    for (bool bytewise : {false, true}) {
      SseParser parser;
      parser.set_max_event_bytes(bound);
      Collector c;
      const std::string events = "event: abc\ndata: 123456\n\ndata: ok\n\n";
      if (bytewise) {
        for (char ch : events) parser.feed(std::string_view(&ch, 1), c.sink());
      } else {
        parser.feed(events, c.sink());
      }
      EXPECT_EQ(parser.overflowed(), bound == 14u) << bound << (bytewise ? " bytewise" : "");
      EXPECT_EQ(c.events.size(), bound == 14u ? 1u : 2u) << bound << (bytewise ? " bytewise" : "");
    }
  }
}

TEST(SseParser, CallsNothingWithAnEmptySink) {
  SseParser p;
  p.feed("data: x\n\n", SseParser::Sink());
  EXPECT_EQ(p.pending_bytes(), 0u);
}

}  // namespace
}  // namespace sluice::http
