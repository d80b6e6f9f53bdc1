// Unit tests for the SSE relay's fast path (http/parse/sse_scan.h) and the stream observer
// (providers/usage_report.h): the fast count must equal SseParser's, comments and [DONE] are
// not content, "usage":null stays on the fast path, and the relay buffer scans only new bytes.
#include "http/parse/sse_scan.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/parse/sse_parser.h"
#include "providers/usage_report.h"

namespace sluice::http {
namespace {

// SseParser's count of content events (not [DONE]) in a mid-stream chunk.
size_t parser_count(std::string_view chunk) {
  SseParser p;
  size_t n = 0;
  auto sink = [&n](const SseEvent& ev) {
    if (ev.data != "[DONE]") ++n;
  };
  p.feed("\n", sink);  // settle the BOM check: a blank line changes nothing
  p.feed(chunk, sink);
  return n;
}

TEST(SseScan, CountsContentEventsLikeTheParser) {
  const std::vector<std::string_view> chunks = {
      "data: {\"a\":1}\n\n",
      "data: {\"a\":1}\n\ndata: {\"a\":2}\n\n",
      ": ping\n\n",                                   // a comment is not an event
      ": ping\n\ndata: x\n\n: ping\n\n",
      "data: [DONE]\n\n",                             // not content
      "data: x\n\ndata: [DONE]\n\n",
      "data:[DONE]\n\n",                              // no space: still [DONE]
      "data:  [DONE]\n\n",                            // two spaces: content " [DONE]"
      "data: [DONE]\ndata: more\n\n",                 // two data lines: content
      "event: ping\n\n",                              // event-only blocks are dispatched
      "id: 7\n\n",
      "retry: 100\n\n",
      "retry: 1x\n\n",                                // not a field
      std::string_view("id: a\0b\n\n", 9),            // an id with NUL is ignored
      "foo: bar\n\n",                                 // unknown field
      "data\n\n",                                     // a field without a colon
      "\n\n\n\n",
      "data: a\r\n\r\ndata: b\r\n\r\n",               // CRLF
      "data: a\r\rdata: b\r\r",                       // CR
      "data: a\n\r\n: c\r\rdata: [DONE]\r\n\n",       // mixed
      "data: a\n\ndata: b",                           // an unfinished line is not counted
  };
  for (std::string_view c : chunks) {
    EXPECT_EQ(count_sse_events(c), parser_count(c)) << testing::PrintToString(std::string(c));
  }
  EXPECT_EQ(count_sse_events(": ping\n\n"), 0u);
  EXPECT_EQ(count_sse_events("data: x\n\ndata: [DONE]\n\n"), 1u);
  EXPECT_EQ(count_sse_events("data: a\r\n\r\ndata: b\r\n\r\n"), 2u);
}

// Lines are found through a bitmask per 16/32-byte block: events of every length, so that
// line ends fall at every position of a block, and every prefix of such a chunk, count as
// SseParser counts them.
TEST(SseScan, CountsLongChunksLikeTheParser) {
  std::string chunk;
  for (int i = 0; i < 60; ++i) {
    if (i % 7 == 3) chunk += ": keep-alive\n\n";
    if (i % 11 == 5) chunk += "event: ping\n";
    chunk += "data: {\"i\":" + std::to_string(i) + ",\"t\":\"" + std::string(i % 37, 'x') + "\"}\n\n";
  }
  chunk += "data: [DONE]\n\n";
  EXPECT_EQ(count_sse_events(chunk), parser_count(chunk));
  EXPECT_EQ(count_sse_events(chunk), 60u);
  for (size_t cut = 0; cut <= chunk.size(); ++cut) {
    const std::string_view prefix(chunk.data(), cut);
    ASSERT_EQ(count_sse_events(prefix), parser_count(prefix)) << cut;
  }
}

TEST(SseScan, UsageNullStaysOnTheFastPath) {
  EXPECT_FALSE(sse_may_carry_usage("data: {\"choices\":[],\"usage\":null}\n\n"));
  EXPECT_FALSE(sse_may_carry_usage("data: {\"usage\" : null}\n\ndata: {\"usage\":null}\n\n"));
  EXPECT_FALSE(sse_may_carry_usage("data: {\"x\":1}\n\n"));
  EXPECT_TRUE(sse_may_carry_usage("data: {\"usage\":{\"prompt_tokens\":1}}\n\n"));
  EXPECT_TRUE(sse_may_carry_usage("data: {\"usage\":null}\n\ndata: {\"usage\": {}}\n\n"));
  EXPECT_TRUE(sse_may_carry_usage("data: {\"usage\"\ndata: :{}}\n\n"));  // odd: parse it
}

// The key is searched 16 positions at a time: it is found at every offset of a long chunk,
// among decoys that share its probe bytes ('u' one after a start, 'g' four after), and a
// `"usage":null` before it is skipped.
TEST(SseScan, FindsTheUsageKeyAtEveryOffset) {
  const std::string decoy = "\"uxxg\" \"usagX\" \"usag";  // 'u'/'g' pairs, no key
  for (size_t at = 0; at < 80; ++at) {
    std::string chunk;
    while (chunk.size() < at) chunk += decoy;
    chunk.resize(at);
    const std::string key = "\"usage\":{\"prompt_tokens\":1}";
    EXPECT_EQ(first_usage_candidate(chunk + key + decoy), at) << at;
    EXPECT_EQ(first_usage_candidate(chunk + "\"usage\": null," + key), at + 14) << at;
    EXPECT_EQ(first_usage_candidate(chunk + "\"usage\":null"), std::string_view::npos) << at;
    EXPECT_EQ(first_usage_candidate(chunk + decoy + decoy), std::string_view::npos) << at;
    // Cut anywhere inside the key: no match (a whole key is needed).
    for (size_t cut = 1; cut < 7; ++cut) {
      EXPECT_EQ(first_usage_candidate(chunk + key.substr(0, cut)), std::string_view::npos);
    }
  }
}

TEST(SseScan, BoundariesAreBlankLinesAndNeverSplitACrlf) {
  EXPECT_EQ(last_event_boundary("data: a\n\ndata: b\n"), 9u);
  EXPECT_EQ(last_event_boundary("data: a\r\n\r\n"), 11u);
  EXPECT_EQ(last_event_boundary("data: a\n\rx"), 9u);     // LF CR
  EXPECT_EQ(last_event_boundary("data: a\r\r"), 0u);      // a CR at the end: LF may follow
  EXPECT_EQ(last_event_boundary("data: a\r\r\n"), 10u);   // CR CRLF
  EXPECT_EQ(last_event_boundary("data: a\r\n"), 0u);      // one terminator
  EXPECT_EQ(first_event_boundary("a\n\nb\n\n"), 3u);
  EXPECT_EQ(first_event_boundary("a\n\nb\n\n", 4), 6u);
  EXPECT_TRUE(ends_at_event_boundary("data: a\n\n"));
  EXPECT_FALSE(ends_at_event_boundary("data: a\r\r"));
  // `from` limits the search to positions at or after it.
  EXPECT_EQ(last_event_boundary("a\n\nbbbb", 4), 0u);
}

TEST(SseEventBuffer, ReleasesWholeEventsAndForwardsReadsWithoutACopy) {
  SseEventBuffer buf(1024);
  const std::string whole = "data: a\n\ndata: b\n\n";
  std::string_view r = buf.push(whole);
  EXPECT_EQ(r.data(), whole.data());  // the read itself
  EXPECT_EQ(r, whole);

  EXPECT_EQ(buf.push("data: c"), "");
  EXPECT_EQ(buf.push("\n"), "");
  EXPECT_EQ(buf.push("\ndata: d\n"), "data: c\n\n");
  EXPECT_EQ(buf.pending(), "data: d\n");
  EXPECT_EQ(buf.push("\ndata: e\r"), "data: d\n\n");
  EXPECT_EQ(buf.push("\r"), "");  // undecided: the next byte may be LF
  EXPECT_EQ(buf.push("\n"), "data: e\r\r\n");
  EXPECT_TRUE(buf.pending().empty());
  // A blank line right after the last boundary is found through the kept context.
  EXPECT_EQ(buf.push("\n"), "\n");
  EXPECT_EQ(buf.push("x\n"), "");
  EXPECT_FALSE(buf.too_large());
}

TEST(SseEventBuffer, AnEventLargerThanTheBoundIsAnError) {
  SseEventBuffer small(16);
  EXPECT_EQ(small.push("data: 0123456789"), "");  // 16 bytes: at the bound
  EXPECT_FALSE(small.too_large());
  EXPECT_EQ(small.push("\n\n"), "");               // this event is 18 bytes
  EXPECT_TRUE(small.too_large());

  SseEventBuffer fits(18);
  EXPECT_EQ(fits.push("data: 0123456789"), "");
  EXPECT_EQ(fits.push("\n\n"), "data: 0123456789\n\n");
  EXPECT_FALSE(fits.too_large());
}

TEST(SseEventBuffer, ScansOnlyNewBytes) {
  // A hostile upstream that never ends its event: each push must not rescan what is pending.
  // 64 KiB in 1-byte reads would take ~2^31 comparisons if every push rescanned.
  SseEventBuffer buf(1 << 20);
  for (int i = 0; i < 64 * 1024; ++i) ASSERT_EQ(buf.push("x"), "");
  EXPECT_EQ(buf.push("\n\n").size(), 64u * 1024 + 2);
}

}  // namespace
}  // namespace sluice::http

namespace sluice::providers {
namespace {

TEST(SseStreamObserver, CountsLikeTheParserAndKeepsTheLastUsage) {
  SseStreamObserver obs(1 << 20);
  std::optional<UsageTokens> usage;
  EXPECT_EQ(obs.observe(": ping\n\n", usage), 0u);  // no event: no telemetry stamp
  EXPECT_EQ(obs.observe("data: {\"usage\":null}\n\ndata: {\"usage\":null}\n\n", usage), 2u);
  EXPECT_FALSE(usage);
  EXPECT_EQ(obs.observe("data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n"
                        "data: [DONE]\n\n",
                        usage),
            1u);
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->input, 3);
  EXPECT_EQ(usage->output, 4);
}

TEST(SseStreamObserver, AWholeStreamInOneChunkCountsEveryEventAndFindsTheUsage) {
  // The relay's common case with a fast upstream: the first read holds the whole stream.
  std::string stream;
  for (int i = 0; i < 20; ++i) {
    stream += "data: {\"choices\":[{\"delta\":{\"content\":\"w\"}}],\"usage\":null}\n\n";
  }
  stream += ": keep-alive\n\n";
  stream += "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":20}}\n\n";
  stream += "data: [DONE]\n\n";
  SseStreamObserver obs(1 << 20);
  std::optional<UsageTokens> usage;
  EXPECT_EQ(obs.observe(stream, usage), 21u);
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->input, 9);
  EXPECT_EQ(usage->output, 20);
}

TEST(SseStreamObserver, ABomIsStrippedOnlyAtTheStreamsStart) {
  const std::string bom = "\xEF\xBB\xBF";
  {
    SseStreamObserver obs(1 << 20);
    std::optional<UsageTokens> usage;
    EXPECT_EQ(obs.observe(bom + "data: {\"usage\":{\"prompt_tokens\":1}}\n\n", usage), 1u);
    ASSERT_TRUE(usage);
    EXPECT_EQ(usage->input, 1);
  }
  // Not at the start, the bytes of a BOM are part of a field name ("\xEF\xBB\xBFdata" is no
  // data field): that event is not counted, as SseParser would not dispatch it.
  SseStreamObserver obs(1 << 20);
  std::optional<UsageTokens> usage;
  EXPECT_EQ(obs.observe("data: a\n\n", usage), 1u);
  EXPECT_EQ(obs.observe(bom + "data: {\"usage\":{\"prompt_tokens\":2}}\n\n", usage), 0u);
  EXPECT_FALSE(usage);
}

TEST(ParseUsage, OnlyAnObjectIsUsage) {
  EXPECT_FALSE(parse_usage("{\"usage\":null,\"x\":{\"prompt_tokens\":5}}"));
  auto u = parse_usage("{\"usage\" :\n {\"prompt_tokens\":5,\"completion_tokens\":2,"
                       "\"prompt_tokens_details\":{\"cached_tokens\":1}}}");
  ASSERT_TRUE(u);
  EXPECT_EQ(*u, (UsageTokens{5, 1, 2}));
  auto e = parse_usage("{\"data\":[],\"usage\":{\"prompt_tokens\":0,\"total_tokens\":9}}");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->input, 0);
  EXPECT_EQ(parse_usage("{\"usage\":{\"total_tokens\":9}}")->input, 9);
  // The last usage object wins; a later "usage":null does not hide it.
  EXPECT_EQ(parse_usage("{\"usage\":{\"prompt_tokens\":1}} {\"usage\":{\"prompt_tokens\":2}}"
                        " {\"usage\":null}")
                ->input,
            2);
}

}  // namespace
}  // namespace sluice::providers
