// Unit tests for ChunkedDecoder: framing rules, extensions, trailers, and identical results for
// every way of splitting the input.
#include "http/parse/chunked.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::http {
namespace {

struct Result {
  std::string payload;
  size_t consumed = 0;
  bool done = false;
  bool failed = false;
};

// Decodes `wire` cut into pieces at `cuts` (ascending offsets), each piece in its own buffer.
Result decode_split(std::string_view wire, const std::vector<size_t>& cuts) {
  ChunkedDecoder d;
  Result r;
  size_t begin = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : wire.size();
    std::vector<char> piece(wire.begin() + begin, wire.begin() + end);
    size_t payload = 0;
    const size_t used = d.decode(piece.data(), piece.size(), payload);
    EXPECT_LE(used, piece.size());
    EXPECT_LE(payload, used);
    r.payload.append(piece.data(), payload);
    r.consumed += used;
    if (d.done() || d.failed()) break;
    begin = end;
  }
  r.done = d.done();
  r.failed = d.failed();
  return r;
}

Result decode_all(std::string_view wire) { return decode_split(wire, {}); }

Result decode_bytewise(std::string_view wire) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < wire.size(); ++i) cuts.push_back(i);
  return decode_split(wire, cuts);
}

void expect_fails(std::string_view wire) {
  EXPECT_TRUE(decode_all(wire).failed) << wire;
  EXPECT_TRUE(decode_bytewise(wire).failed) << wire;
}

TEST(ChunkedDecoder, DecodesChunksInPlace) {
  std::string wire = "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
  ChunkedDecoder d;
  size_t payload = 0;
  EXPECT_EQ(d.decode(wire.data(), wire.size(), payload), wire.size());
  EXPECT_EQ(std::string_view(wire.data(), payload), "hello, world");
  EXPECT_TRUE(d.done());
  EXPECT_FALSE(d.failed());
  EXPECT_EQ(d.error(), nullptr);
}

TEST(ChunkedDecoder, GivesTheSameResultForEveryByteSplit) {
  const std::string wire =
      "4;a=b\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX: y\r\n\r\n";
  const Result whole = decode_all(wire);
  ASSERT_TRUE(whole.done);
  EXPECT_EQ(whole.payload, "Wikipedia in\r\n\r\nchunks.");
  EXPECT_EQ(whole.consumed, wire.size());
  const Result bytewise = decode_bytewise(wire);
  EXPECT_EQ(bytewise.payload, whole.payload);
  EXPECT_EQ(bytewise.consumed, whole.consumed);
  EXPECT_TRUE(bytewise.done);
  for (size_t a = 0; a <= wire.size(); ++a) {
    for (size_t b = a; b <= wire.size(); ++b) {
      const Result r = decode_split(wire, {a, b});
      ASSERT_TRUE(r.done) << a << "," << b;
      ASSERT_EQ(r.payload, whole.payload) << a << "," << b;
      ASSERT_EQ(r.consumed, wire.size()) << a << "," << b;
    }
  }
}

TEST(ChunkedDecoder, GivesTheSameResultForRandomSplits) {
  std::mt19937 rng(42);
  std::string wire;
  std::string expected;
  for (int i = 0; i < 50; ++i) {
    const size_t n = rng() % 300 + 1;
    std::string chunk;
    for (size_t k = 0; k < n; ++k) chunk.push_back(static_cast<char>(rng()));
    char size[32];
    snprintf(size, sizeof size, i % 2 ? "%zx" : "%zX", n);
    wire += size;
    wire += i % 3 == 0 ? ";ext=\"q\"\r\n" : "\r\n";
    wire += chunk;
    wire += "\r\n";
    expected += chunk;
  }
  wire += "0\r\n\r\n";
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<size_t> cuts;
    for (size_t pos = 0; pos < wire.size(); pos += rng() % 64) cuts.push_back(pos);
    const Result r = decode_split(wire, cuts);
    ASSERT_TRUE(r.done);
    ASSERT_EQ(r.payload, expected);
    ASSERT_EQ(r.consumed, wire.size());
  }
}

TEST(ChunkedDecoder, StopsAtTheEndOfTheMessageLeavingPipelinedBytes) {
  const std::string msg = "3\r\nabc\r\n0\r\n\r\n";
  const std::string original = msg + "GET / HTTP/1.1\r\n\r\n";
  std::string wire = original;  // decoded in place below
  ChunkedDecoder d;
  size_t payload = 0;
  EXPECT_EQ(d.decode(wire.data(), wire.size(), payload), msg.size());
  EXPECT_EQ(payload, 3u);
  EXPECT_TRUE(d.done());
  EXPECT_EQ(std::string_view(wire).substr(msg.size()), "GET / HTTP/1.1\r\n\r\n");
  const Result split = decode_bytewise(original);
  EXPECT_EQ(split.consumed, msg.size());
  EXPECT_EQ(split.payload, "abc");
}

TEST(ChunkedDecoder, ConsumesNothingOnceDone) {
  std::string wire = "0\r\n\r\n";
  ChunkedDecoder d;
  size_t payload = 0;
  EXPECT_EQ(d.decode(wire.data(), wire.size(), payload), wire.size());
  std::string more = "5\r\nhello\r\n";
  EXPECT_EQ(d.decode(more.data(), more.size(), payload), 0u);
  EXPECT_EQ(payload, 0u);
}

TEST(ChunkedDecoder, SkipsTrailers) {
  const Result r = decode_all("2\r\nhi\r\n0\r\nX-Usage: 12\r\nX-Other: a\r\n\r\nNEXT");
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.payload, "hi");
  EXPECT_EQ(r.consumed,
            std::string_view("2\r\nhi\r\n0\r\nX-Usage: 12\r\nX-Other: a\r\n\r\n").size());
}

TEST(ChunkedDecoder, RejectsBareLfAnywhereInTheFraming) {
  expect_fails("2\nhi\r\n0\r\n\r\n");             // size line
  expect_fails("2;x\nhi\r\n0\r\n\r\n");           // after an extension name
  expect_fails("2;x=y\nhi\r\n0\r\n\r\n");         // after an extension value
  expect_fails("2;x=\"y\"\nhi\r\n0\r\n\r\n");     // after a quoted value
  expect_fails("2\r\nhi\n0\r\n\r\n");             // data terminator
  expect_fails("2\r\nhi\r\n0\n\r\n");             // last-chunk line
  expect_fails("2\r\nhi\r\n0\r\nT: v\n\r\n");     // trailer line
  expect_fails("2\r\nhi\r\n0\r\n\n");             // final line
}

TEST(ChunkedDecoder, IgnoresChunkExtensions) {
  const Result r = decode_all("3;name=value;flag\r\nabc\r\n0;last\r\n\r\n");
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.payload, "abc");
}

TEST(ChunkedDecoder, AcceptsExtensionsWithWhitespaceAndQuotedStrings) {
  const std::string wire =
      "3 ; a = b ;q=\"x\\\"y; z\"\t;c\r\nabc\r\n1;e=\"\"\r\nd\r\n0\r\n\r\n";
  EXPECT_TRUE(decode_all(wire).done) << wire;
  EXPECT_EQ(decode_all(wire).payload, "abcd");
  EXPECT_EQ(decode_bytewise(wire).payload, "abcd");
}

TEST(ChunkedDecoder, RejectsMalformedExtensions) {
  expect_fails("3;\r\nabc\r\n0\r\n\r\n");         // empty name
  expect_fails("3;=v\r\nabc\r\n0\r\n\r\n");       // no name
  expect_fails("3;a=\r\nabc\r\n0\r\n\r\n");       // no value
  expect_fails("3;a@b\r\nabc\r\n0\r\n\r\n");      // not a token
  expect_fails("3;a=b=c\r\nabc\r\n0\r\n\r\n");
  expect_fails("3;a=\"x\"y\r\nabc\r\n0\r\n\r\n");   // text after the quoted string
  expect_fails("3;a=\"x\r\nabc\r\n0\r\n\r\n");     // unterminated quoted string
  expect_fails("3 \r\nabc\r\n0\r\n\r\n");         // whitespace without an extension
}

TEST(ChunkedDecoder, CapsExtensionBytesPerSizeLine) {
  const size_t cap = ChunkedDecoder::kMaxExtensionBytes;
  // "x=", the value and the CR after ";" count: exactly the cap; one byte more fails.
  const std::string at_cap = "1;x=" + std::string(cap - 3, 'v') + "\r\n";
  const std::string fits = at_cap + "a\r\n" + at_cap + "b\r\n0\r\n\r\n";
  EXPECT_TRUE(decode_all(fits).done);
  EXPECT_EQ(decode_bytewise(fits).payload, "ab");
  expect_fails("1;x=" + std::string(cap - 2, 'v') + "\r\na\r\n0\r\n\r\n");
  // An endless extension fails at the cap, without waiting for a line end.
  std::string endless = "1;x=" + std::string(10 * cap, 'v');
  ChunkedDecoder d;
  size_t payload = 0;
  EXPECT_EQ(d.decode(endless.data(), endless.size(), payload), 2 + cap);  // "1;" + cap bytes
  EXPECT_STREQ(d.error(), "chunk extensions too long");
}

TEST(ChunkedDecoder, AcceptsSixteenHexDigits) {
  std::string wire = "000000000000000A\r\n0123456789\r\n0\r\n\r\n";
  EXPECT_EQ(decode_all(wire).payload, "0123456789");
  std::string huge = "FFFFFFFFFFFFFFFF\r\nabc";
  ChunkedDecoder d;
  size_t payload = 0;
  EXPECT_EQ(d.decode(huge.data(), huge.size(), payload), huge.size());
  EXPECT_EQ(payload, 3u);
  EXPECT_EQ(d.state(), ChunkedDecoder::State::data);
}

TEST(ChunkedDecoder, RejectsMoreThanSixteenHexDigits) {
  expect_fails("00000000000000001\r\nx\r\n0\r\n\r\n");
  expect_fails("10000000000000000\r\n");
}

TEST(ChunkedDecoder, RejectsEmptyOrInvalidSizes) {
  expect_fails("\r\n");
  expect_fails(";ext\r\n");
  expect_fails("g\r\n");
  expect_fails("-1\r\n");
  expect_fails("0x5\r\nhello\r\n");
  expect_fails("5 \r\nhello\r\n");
  expect_fails("5\rhello\r\n");
}

TEST(ChunkedDecoder, RejectsControlCharactersInExtensions) {
  expect_fails(std::string("1;a\0b\r\nx\r\n0\r\n\r\n", 15));
}

TEST(ChunkedDecoder, RejectsDataWithoutItsTerminator) {
  const std::string wire = "3\r\nabcd\r\n0\r\n\r\n";
  std::string buf = wire;
  ChunkedDecoder d;
  size_t payload = 0;
  EXPECT_EQ(d.decode(buf.data(), buf.size(), payload), 6u);  // stops on the offending byte
  EXPECT_EQ(payload, 3u);
  EXPECT_TRUE(d.failed());
  EXPECT_EQ(d.state(), ChunkedDecoder::State::error);
  EXPECT_STREQ(d.error(), "bad chunk terminator");
  EXPECT_TRUE(decode_bytewise(wire).failed);
  expect_fails("3\r\nabc\rx0\r\n\r\n");
}

TEST(ChunkedDecoder, RejectsBadTrailerLineEndings) {
  expect_fails("0\r\nX: y\rz\r\n\r\n");
  expect_fails("0\r\r\n");
}

TEST(ChunkedDecoder, RejectsMalformedTrailerFields) {
  expect_fails("0\r\n X: y\r\n\r\n");      // obs-fold / leading whitespace
  expect_fails("0\r\nX y\r\n\r\n");        // no colon
  expect_fails("0\r\nX : y\r\n\r\n");      // whitespace before the colon
  expect_fails("0\r\n: y\r\n\r\n");        // empty name
  expect_fails("0\r\nX: a\x01b\r\n\r\n");  // control character
  EXPECT_TRUE(decode_all("0\r\nX:\r\nY: a\tb \xc3\xa9\r\n\r\n").done);
}

TEST(ChunkedDecoder, CapsTheTrailerSection) {
  const size_t cap = ChunkedDecoder::kMaxTrailerBytes;
  // Field lines plus the final CRLF make up the trailer section.
  const std::string line = "X: " + std::string(cap - 7, 'v') + "\r\n";  // cap - 2 bytes
  EXPECT_TRUE(decode_all("0\r\n" + line + "\r\n").done);
  expect_fails("0\r\nX: " + std::string(cap - 6, 'v') + "\r\n\r\n");
  std::string many = "0\r\n";
  while (many.size() < 2 * cap) many += "A: b\r\n";
  expect_fails(many + "\r\n");
}

TEST(ChunkedDecoder, ConsumesNothingAfterFailing) {
  std::string wire = "zz";
  ChunkedDecoder d;
  size_t payload = 0;
  EXPECT_EQ(d.decode(wire.data(), wire.size(), payload), 0u);
  EXPECT_TRUE(d.failed());
  std::string more = "0\r\n\r\n";
  EXPECT_EQ(d.decode(more.data(), more.size(), payload), 0u);
  EXPECT_TRUE(d.failed());
}

TEST(ChunkedDecoder, StartsOverAfterReset) {
  std::string bad = "x";
  ChunkedDecoder d;
  size_t payload = 0;
  d.decode(bad.data(), bad.size(), payload);
  ASSERT_TRUE(d.failed());
  d.reset();
  std::string good = "1\r\na\r\n0\r\n\r\n";
  EXPECT_EQ(d.decode(good.data(), good.size(), payload), good.size());
  EXPECT_TRUE(d.done());
  EXPECT_EQ(payload, 1u);
}

TEST(ChunkedDecoder, HandlesEmptyInput) {
  ChunkedDecoder d;
  size_t payload = 7;
  EXPECT_EQ(d.decode(nullptr, 0, payload), 0u);
  EXPECT_EQ(payload, 0u);
  EXPECT_EQ(d.state(), ChunkedDecoder::State::size);
}

}  // namespace
}  // namespace sluice::http
