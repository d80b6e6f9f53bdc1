// Unit tests for the HTTP/1.x request and response head parsers (framing, smuggling defences,
// incremental input, pipelining).
#include "http/parse/http_head.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::http {
namespace {

ParseStatus parse_req(std::string_view s, RequestHead& h) { return parse_request_head(s, h); }

// Expects `s` to be rejected with `status`.
void expect_request_error(std::string_view s, int status = 400) {
  RequestHead h;
  EXPECT_EQ(parse_request_head(s, h), ParseStatus::error) << s;
  EXPECT_NE(h.error, nullptr) << s;
  EXPECT_EQ(h.error_status, status) << s;
}

void expect_response_error(std::string_view s) {
  ResponseHead h;
  EXPECT_EQ(parse_response_head(s, h), ParseStatus::error) << s;
  EXPECT_NE(h.error, nullptr) << s;
}

TEST(RequestHead, ParsesASimpleGet) {
  const std::string s =
      "GET /v1/models?limit=5&x=1 HTTP/1.1\r\nHost: a.example\r\n"
      "Accept:  */*  \r\n\r\n";
  RequestHead h;
  ASSERT_EQ(parse_req(s, h), ParseStatus::complete);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/v1/models?limit=5&x=1");
  EXPECT_EQ(h.path, "/v1/models");
  EXPECT_EQ(h.query, "limit=5&x=1");
  EXPECT_EQ(h.version_minor, 1);
  ASSERT_EQ(h.header_count, 2u);
  EXPECT_EQ(h.headers[0].name, "Host");
  EXPECT_EQ(h.headers[0].value, "a.example");
  EXPECT_EQ(h.headers[1].value, "*/*");
  EXPECT_EQ(h.head_size, s.size());
  EXPECT_EQ(h.framing, BodyFraming::none);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.expect_continue);
  EXPECT_EQ(h.error, nullptr);
}

TEST(RequestHead, SplitsPathAndQueryOnFirstQuestionMark) {
  RequestHead h;
  ASSERT_EQ(parse_req("GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n", h), ParseStatus::complete);
  EXPECT_EQ(h.path, "/a");
  EXPECT_EQ(h.query, "b?c");
  ASSERT_EQ(parse_req("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", h), ParseStatus::complete);
  EXPECT_EQ(h.path, "/a");
  EXPECT_EQ(h.query, "");
}

TEST(RequestHead, RejectsBareLfLineEndings) {
  expect_request_error("POST /x HTTP/1.1\nContent-Length: 3\nHost: h\n\nabc");
  expect_request_error("POST /x HTTP/1.1\r\nContent-Length: 3\nHost: h\r\n\r\nabc");
  expect_request_error("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\nabc");
  expect_request_error("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  // Detected as soon as the line arrives, before the rest of the head.
  expect_request_error("GET / HTTP/1.1\r\nHost: h\nX: ");
}

TEST(RequestHead, IgnoresEmptyLinesBeforeTheRequestLine) {
  const std::string s = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
  RequestHead h;
  ASSERT_EQ(parse_req(s, h), ParseStatus::complete);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.head_size, s.size());
}

TEST(RequestHead, LooksUpHeadersCaseInsensitively) {
  RequestHead h;
  ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost: h\r\nX-Api-KEY: k1\r\nx-api-key: k2\r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_EQ(h.header("X-API-KEY"), "k1");
  EXPECT_EQ(h.header("missing"), "");
  EXPECT_EQ(h.headers[1].name, "X-Api-KEY");  // case preserved
}

TEST(RequestHead, TrimsValuesAndKeepsEmptyOnes) {
  RequestHead h;
  ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost: h\r\nA:\t x y \t\r\nB:\r\nC:   \r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_EQ(h.header("a"), "x y");
  EXPECT_EQ(h.header("b"), "");
  EXPECT_EQ(h.header("c"), "");
  EXPECT_EQ(h.header_count, 4u);
}

TEST(RequestHead, IsIncompleteUntilTheBlankLineArrives) {
  const std::string s =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n";
  for (size_t n = 0; n < s.size(); ++n) {
    RequestHead h;
    EXPECT_EQ(parse_req(std::string_view(s.data(), n), h), ParseStatus::incomplete) << n;
  }
  RequestHead h;
  EXPECT_EQ(parse_req(s, h), ParseStatus::complete);
}

TEST(RequestHead, NeverReadsPastTheBuffer) {
  // Each prefix lives in its own exact-size heap allocation so ASan catches over-reads.
  const std::string s = "GET /a?b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  for (size_t n = 0; n <= s.size(); ++n) {
    std::unique_ptr<char[]> buf(new char[n]);
    std::copy(s.begin(), s.begin() + n, buf.get());
    RequestHead h;
    const ParseStatus st = parse_req(std::string_view(buf.get(), n), h);
    EXPECT_EQ(st, n == s.size() ? ParseStatus::complete : ParseStatus::incomplete);
  }
}

TEST(RequestHead, ReportsTheFirstRequestOfAPipeline) {
  const std::string first = "GET /one HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string second = "GET /two HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string both = first + second;
  RequestHead h;
  ASSERT_EQ(parse_req(both, h), ParseStatus::complete);
  EXPECT_EQ(h.path, "/one");
  EXPECT_EQ(h.head_size, first.size());
  ASSERT_EQ(parse_req(std::string_view(both).substr(h.head_size), h), ParseStatus::complete);
  EXPECT_EQ(h.path, "/two");
  EXPECT_EQ(h.head_size, second.size());
}

TEST(RequestHead, AcceptsAsteriskOnlyForOptions) {
  RequestHead h;
  ASSERT_EQ(parse_req("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", h), ParseStatus::complete);
  EXPECT_EQ(h.target, "*");
  EXPECT_EQ(h.path, "*");
  expect_request_error("GET * HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(RequestHead, AcceptsAbsoluteFormAndExtractsThePath) {
  RequestHead h;
  ASSERT_EQ(parse_req("GET http://api.example:8080/v1/models?a=b HTTP/1.1\r\nHost: h\r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_EQ(h.target, "http://api.example:8080/v1/models?a=b");
  EXPECT_EQ(h.path, "/v1/models");
  EXPECT_EQ(h.query, "a=b");
  ASSERT_EQ(parse_req("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n", h), ParseStatus::complete);
  EXPECT_EQ(h.path, "/");
  EXPECT_EQ(h.query, "");
  ASSERT_EQ(parse_req("GET http://h?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", h), ParseStatus::complete);
  EXPECT_EQ(h.path, "/");
  EXPECT_EQ(h.query, "q=1");
  expect_request_error("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(RequestHead, RejectsTargetsThatAreNotOriginAbsoluteOrAsterisk) {
  expect_request_error("GET v1/models HTTP/1.1\r\nHost: h\r\n\r\n");
  expect_request_error("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n");
  expect_request_error("GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(RequestHead, RejectsEmptyOrWhitespaceTargets) {
  expect_request_error("GET  HTTP/1.1\r\nHost: h\r\n\r\n");
  expect_request_error("GET   HTTP/1.1\r\nHost: h\r\n\r\n");
  expect_request_error("GET \t HTTP/1.1\r\nHost: h\r\n\r\n");
  expect_request_error("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n");
  expect_request_error("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(RequestHead, RejectsNonTokenMethods) {
  expect_request_error("G(T / HTTP/1.1\r\nHost: h\r\n\r\n");
  expect_request_error("GE\x7fT / HTTP/1.1\r\nHost: h\r\n\r\n");
  expect_request_error(" GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  expect_request_error("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n");
  expect_request_error("/ HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(RequestHead, RejectsMalformedRequestLines) {
  expect_request_error("GET /\r\n\r\n");
  expect_request_error("GET / HTTP/1.1 \r\n\r\n");
  expect_request_error("GET / http/1.1\r\n\r\n");
  expect_request_error("GET / HTTP/1.10\r\n\r\n");
  expect_request_error("GET / HTTP/11\r\n\r\n");
  expect_request_error("GET  / HTTP/1.1\r\nHost: h\r\n\r\n");
  expect_request_error("\r\rGET / HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(RequestHead, RejectsUnsupportedVersionsWith505) {
  expect_request_error("GET / HTTP/2.0\r\n\r\n", 505);
  expect_request_error("GET / HTTP/1.2\r\n\r\n", 505);
  expect_request_error("GET / HTTP/0.9\r\n\r\n", 505);
}

TEST(RequestHead, AcceptsHttp10) {
  RequestHead h;
  ASSERT_EQ(parse_req("GET / HTTP/1.0\r\n\r\n", h), ParseStatus::complete);  // Host optional
  EXPECT_EQ(h.version_minor, 0);
  EXPECT_FALSE(h.keep_alive);
}

TEST(RequestHead, RequiresExactlyOneHostInHttp11) {
  expect_request_error("GET / HTTP/1.1\r\n\r\n");
  expect_request_error("GET / HTTP/1.1\r\nX-Host: h\r\n\r\n");
  expect_request_error("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n");
  expect_request_error("GET http://a/ HTTP/1.1\r\n\r\n");
  expect_request_error("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n");
  RequestHead h;
  ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHOST:\r\n\r\n", h), ParseStatus::complete);
  EXPECT_EQ(h.header("host"), "");  // empty is allowed (RFC 9112 §3.2)
}

TEST(RequestHead, RejectsControlCharactersInHeaderValues) {
  expect_request_error("GET / HTTP/1.1\r\nHost: h\r\nA: x\x01y\r\n\r\n");
  expect_request_error(std::string("GET / HTTP/1.1\r\nHost: h\r\nA: x\0y\r\n\r\n", 35));
  expect_request_error("GET / HTTP/1.1\r\nHost: h\r\nA: x\ry\r\n\r\n");
  expect_request_error("GET / HTTP/1.1\r\nHost: h\r\nA: x\x7f\r\n\r\n");
  expect_request_error("GET / HTTP/1.1\r\nHost: h\r\nA: x\r\r\n\r\n");
  RequestHead h;
  ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost: h\r\nA: x\ty \xc3\xa9\r\n\r\n", h), ParseStatus::complete);
  EXPECT_EQ(h.header("a"), "x\ty \xc3\xa9");  // HTAB and obs-text are allowed
}

// The value check runs 16 octets at a time: a bad octet is found at every offset of a long
// value (inside a block and in the tail), and the octets that are allowed pass everywhere.
TEST(RequestHead, ChecksEveryOctetOfLongHeaderValues) {
  for (size_t len : {1, 15, 16, 17, 31, 32, 33, 47, 70}) {
    for (size_t at = 0; at < len; ++at) {
      for (char bad : {'\x00', '\x01', '\x1f', '\x7f', '\r', '\n'}) {
        std::string value(len, 'v');
        value[at] = bad;
        const std::string wire = "GET / HTTP/1.1\r\nHost: h\r\nX: " + value + "\r\n\r\n";
        RequestHead h;
        EXPECT_EQ(parse_req(wire, h), ParseStatus::error) << len << " " << at << " " << int(bad);
      }
      for (char good : {'\t', ' ', '~', '\x80', '\xff', '"'}) {
        std::string value(len, 'v');
        value[at] = good;
        const std::string wire = "GET / HTTP/1.1\r\nHost: h\r\nX: " + value + "v\r\n\r\n";
        RequestHead h;
        ASSERT_EQ(parse_req(wire, h), ParseStatus::complete) << len << " " << at << " " << int(good);
        std::string expect = value + "v";
        while (!expect.empty() && (expect.front() == ' ' || expect.front() == '\t')) expect.erase(0, 1);
        EXPECT_EQ(h.header("x"), expect);
      }
    }
  }
}

TEST(RequestHead, RejectsWhitespaceBetweenNameAndColon) {
  expect_request_error("GET / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\n");
  expect_request_error("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n");
}

TEST(RequestHead, RejectsBadHeaderNames) {
  expect_request_error("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n");
  expect_request_error("GET / HTTP/1.1\r\nHost: h\r\nNo colon here\r\n\r\n");
  expect_request_error("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n");
  expect_request_error("GET / HTTP/1.1\r\nHost: h\r\nA(b: v\r\n\r\n");
}

TEST(RequestHead, RejectsObsFold) {
  expect_request_error("GET / HTTP/1.1\r\nHost: h\r\nA: x\r\n y\r\n\r\n");
  expect_request_error("GET / HTTP/1.1\r\nHost: h\r\nA: x\r\n\ty\r\n\r\n");
  expect_request_error("GET / HTTP/1.1\r\n Host: h\r\n\r\n");
}

// A head with `n` header fields, Host included.
std::string many_headers(size_t n) {
  std::string s = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (size_t i = 1; i < n; ++i) s += "X-H" + std::to_string(i) + ": v\r\n";
  return s + "\r\n";
}

TEST(RequestHead, AcceptsExactlyMaxHeaders) {
  RequestHead h;
  ASSERT_EQ(parse_req(many_headers(kMaxHeaders), h), ParseStatus::complete);
  EXPECT_EQ(h.header_count, kMaxHeaders);
}

// Past HeaderSlots::kInline the slots move to the heap: every field keeps its value, a copy
// and a move keep them too, and a smaller head parsed into the same slots afterwards reads right.
TEST(RequestHead, KeepsEveryFieldPastTheInlineSlots) {
  for (size_t n : {HeaderSlots::kInline - 1, HeaderSlots::kInline, HeaderSlots::kInline + 1,
                   size_t{64}, kMaxHeaders}) {
    RequestHead h;
    const std::string wire = many_headers(n);
    ASSERT_EQ(parse_req(wire, h), ParseStatus::complete) << n;
    ASSERT_EQ(h.header_count, n);
    EXPECT_EQ(h.headers.capacity() > HeaderSlots::kInline, n > HeaderSlots::kInline) << n;
    EXPECT_EQ(h.header("host"), "h");
    for (size_t i = 1; i < n; ++i) {
      ASSERT_EQ(h.headers[i].name, "X-H" + std::to_string(i)) << n;
      ASSERT_EQ(h.headers[i].value, "v");
    }
    RequestHead copy = h;
    RequestHead moved = std::move(h);
    for (const RequestHead* c : {&copy, &moved}) {
      ASSERT_EQ(c->header_count, n);
      EXPECT_EQ(c->headers[n - 1].name, n == 1 ? "Host" : "X-H" + std::to_string(n - 1));
    }
    copy = moved;  // copy-assign over slots of the same kind
    EXPECT_EQ(copy.headers[n - 1].name, moved.headers[n - 1].name);
    const std::string small = many_headers(3);
    ASSERT_EQ(parse_req(small, copy), ParseStatus::complete);
    EXPECT_EQ(copy.header_count, 3u);
    EXPECT_EQ(copy.headers[2].name, "X-H2");
  }
}

TEST(ResponseHead, KeepsEveryFieldPastTheInlineSlots) {
  std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n";
  for (size_t i = 1; i < 70; ++i) wire += "X-R" + std::to_string(i) + ": " + std::to_string(i) + "\r\n";
  wire += "\r\n";
  ResponseHead h;
  ASSERT_EQ(parse_response_head(wire, h), ParseStatus::complete);
  ASSERT_EQ(h.header_count, 70u);
  EXPECT_EQ(h.header("x-r69"), "69");
  EXPECT_EQ(h.header("x-r1"), "1");
  EXPECT_EQ(h.content_length, 0u);
}

TEST(RequestHead, RejectsTooManyHeadersWith431) {
  expect_request_error(many_headers(kMaxHeaders + 1), 431);
}

TEST(RequestHead, UsesContentLengthFramingEvenForZero) {
  RequestHead h;
  ASSERT_EQ(parse_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", h), ParseStatus::complete);
  EXPECT_EQ(h.framing, BodyFraming::content_length);
  EXPECT_EQ(h.content_length, 0u);
  ASSERT_EQ(parse_req("POST / HTTP/1.1\r\nHost: h\r\ncontent-length: 18446744073709551615\r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_EQ(h.content_length, 18446744073709551615u);
}

TEST(RequestHead, AcceptsDuplicateEqualContentLengths) {
  RequestHead h;
  ASSERT_EQ(parse_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_EQ(h.content_length, 5u);
}

TEST(RequestHead, RejectsConflictingContentLengths) {
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n");
}

TEST(RequestHead, RejectsNonNumericContentLength) {
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n");
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n");
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n");
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n");
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n");
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n");
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n");
}

TEST(RequestHead, RejectsContentLengthOverflow) {
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n");
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n");
}

TEST(RequestHead, UsesChunkedFramingForTransferEncodingChunked) {
  RequestHead h;
  ASSERT_EQ(parse_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_EQ(h.framing, BodyFraming::chunked);
}

TEST(RequestHead, RejectsTransferEncodingWithContentLength) {
  expect_request_error(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n");
  expect_request_error(
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
}

TEST(RequestHead, RejectsChunkedThatIsNotTheFinalCoding) {
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
  expect_request_error(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n");
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n");
}

TEST(RequestHead, RejectsUnknownCodingsWith501) {
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 501);
}

TEST(RequestHead, RejectsEmptyOrMalformedTransferEncoding) {
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n");
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,\r\n\r\n");
  expect_request_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n");
}

TEST(RequestHead, ToleratesEmptyListElementsInTransferEncoding) {
  RequestHead h;
  ASSERT_EQ(parse_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked ,\r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_EQ(h.framing, BodyFraming::chunked);
}

TEST(RequestHead, ClosesHttp11OnlyOnConnectionClose) {
  RequestHead h;
  ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_FALSE(h.keep_alive);
  ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n", h), ParseStatus::complete);
  EXPECT_TRUE(h.keep_alive);
  ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", h), ParseStatus::complete);
  EXPECT_TRUE(h.keep_alive);
}

TEST(RequestHead, KeepsHttp10AliveOnlyOnConnectionKeepAlive) {
  RequestHead h;
  ASSERT_EQ(parse_req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_TRUE(h.keep_alive);
  ASSERT_EQ(parse_req("GET / HTTP/1.0\r\nConnection: foo\r\n\r\n", h), ParseStatus::complete);
  EXPECT_FALSE(h.keep_alive);
}

TEST(RequestHead, DetectsExpectContinueCaseInsensitively) {
  RequestHead h;
  ASSERT_EQ(parse_req("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_TRUE(h.expect_continue);
  ASSERT_EQ(parse_req("POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", h), ParseStatus::complete);
  EXPECT_FALSE(h.expect_continue);
}

TEST(RequestHead, ResetsOutputWhenReused) {
  RequestHead h;
  ASSERT_EQ(parse_req("POST / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", h),
            ParseStatus::complete);
  ASSERT_EQ(parse_req("GET /x HTTP/1.1\r\nHost: h\r\n\r\n", h), ParseStatus::complete);
  EXPECT_EQ(h.header_count, 1u);
  EXPECT_EQ(h.framing, BodyFraming::none);
  EXPECT_EQ(h.content_length, 0u);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.expect_continue);
}

TEST(HasToken, MatchesCommaSeparatedTokensCaseInsensitively) {
  EXPECT_TRUE(has_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(has_token(" close ", "close"));
  EXPECT_TRUE(has_token(",,close,", "close"));
  EXPECT_FALSE(has_token("closed", "close"));
  EXPECT_FALSE(has_token("", "close"));
}

TEST(Iequals, ComparesAsciiCaseInsensitively) {
  EXPECT_TRUE(iequals("Content-Length", "content-LENGTH"));
  EXPECT_FALSE(iequals("a", "ab"));
  EXPECT_FALSE(iequals("[", "{"));  // not folded: only letters are
}

// ----- Responses -----

TEST(ResponseHead, ParsesAStatusLineAndHeaders) {
  const std::string s =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string wire = s + "5\r\nhello";
  ResponseHead h;
  ASSERT_EQ(parse_response_head(wire, h), ParseStatus::complete);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.reason, "OK");
  EXPECT_EQ(h.header("content-type"), "text/event-stream");
  EXPECT_EQ(h.head_size, s.size());
  EXPECT_EQ(h.framing, BodyFraming::chunked);
  EXPECT_TRUE(h.keep_alive);
}

TEST(ResponseHead, AcceptsEmptyReasonWithOrWithoutTheSpace) {
  ResponseHead h;
  ASSERT_EQ(parse_response_head("HTTP/1.1 404 \r\n\r\n", h), ParseStatus::complete);
  EXPECT_EQ(h.status, 404);
  EXPECT_EQ(h.reason, "");
  ASSERT_EQ(parse_response_head("HTTP/1.1 404\r\n\r\n", h), ParseStatus::complete);
  EXPECT_EQ(h.status, 404);
  EXPECT_EQ(h.reason, "");
  ASSERT_EQ(parse_response_head("HTTP/1.1 429 Too Many Requests\n\n", h), ParseStatus::complete);
  EXPECT_EQ(h.reason, "Too Many Requests");
}

TEST(ResponseHead, RejectsMalformedStatusLines) {
  expect_response_error("HTTP/1.1 20 OK\r\n\r\n");
  expect_response_error("HTTP/1.1 2000 OK\r\n\r\n");
  expect_response_error("HTTP/1.1 099 OK\r\n\r\n");
  expect_response_error("HTTP/1.1  200 OK\r\n\r\n");
  expect_response_error("HTTP/1.1 2x0 OK\r\n\r\n");
  expect_response_error("HTTP/2.0 200 OK\r\n\r\n");
  expect_response_error("HTTP/1.1 200 O\x01K\r\n\r\n");
  expect_response_error("ICY 200 OK\r\n\r\n");
  expect_response_error("\r\n\r\n");
}

TEST(ResponseHead, AppliesTheSameHeaderRulesAsRequests) {
  expect_response_error("HTTP/1.1 200 OK\r\nA : b\r\n\r\n");
  expect_response_error("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n");
  expect_response_error("HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n");
  expect_response_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
  expect_response_error("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n");
  expect_response_error(
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
  expect_response_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n");
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (size_t i = 0; i <= kMaxHeaders; ++i) many += "X: y\r\n";
  expect_response_error(many + "\r\n");
}

TEST(ResponseHead, HasNoBodyFor1xx204304AndHead) {
  ResponseHead h;
  for (const char* s : {"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n",
                        "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
                        "HTTP/1.1 101 Switching\r\nTransfer-Encoding: chunked\r\n\r\n"}) {
    ASSERT_EQ(parse_response_head(s, h), ParseStatus::complete) << s;
    EXPECT_EQ(h.framing, BodyFraming::none) << s;
  }
  ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", h, true),
            ParseStatus::complete);
  EXPECT_EQ(h.framing, BodyFraming::none);
  EXPECT_TRUE(h.keep_alive);
}

TEST(ResponseHead, UsesContentLengthFraming) {
  ResponseHead h;
  ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_EQ(h.framing, BodyFraming::content_length);
  EXPECT_EQ(h.content_length, 0u);
}

TEST(ResponseHead, ReadsUntilCloseWithoutFramingHeaders) {
  ResponseHead h;
  ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\n\r\nbody...", h), ParseStatus::complete);
  EXPECT_EQ(h.framing, BodyFraming::until_close);
  EXPECT_FALSE(h.keep_alive);
}

TEST(ResponseHead, ReadsUntilCloseWhenChunkedIsNotLast) {
  ResponseHead h;
  ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_EQ(h.framing, BodyFraming::until_close);
  ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_EQ(h.framing, BodyFraming::until_close);
  ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_EQ(h.framing, BodyFraming::chunked);
}

TEST(ResponseHead, AppliesVersionAndConnectionRulesToKeepAlive) {
  ResponseHead h;
  ASSERT_EQ(
      parse_response_head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", h),
      ParseStatus::complete);
  EXPECT_FALSE(h.keep_alive);
  ASSERT_EQ(parse_response_head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_EQ(h.version_minor, 0);
  EXPECT_FALSE(h.keep_alive);
  ASSERT_EQ(parse_response_head(
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", h),
            ParseStatus::complete);
  EXPECT_TRUE(h.keep_alive);
}

TEST(ResponseHead, IsIncompleteUntilTheBlankLineArrives) {
  const std::string s = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
  for (size_t n = 0; n < s.size(); ++n) {
    ResponseHead h;
    EXPECT_EQ(parse_response_head(std::string_view(s.data(), n), h), ParseStatus::incomplete) << n;
  }
}

TEST(ResponseHead, ParsesAnInterimResponseFollowedByTheFinalOne) {
  const std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";
  const std::string s = interim + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  ResponseHead h;
  ASSERT_EQ(parse_response_head(s, h), ParseStatus::complete);
  EXPECT_EQ(h.status, 100);
  EXPECT_EQ(h.head_size, interim.size());
  ASSERT_EQ(parse_response_head(std::string_view(s).substr(h.head_size), h), ParseStatus::complete);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.content_length, 2u);
}

// The connection moves its buffer while a body arrives (and when it gives a large buffer back);
// an error answered mid-body renders the head's path, which must follow the bytes, not dangle.
TEST(RequestHead, RebaseFollowsTheBytesAndEmptiesViewsOutsideThem) {
  const std::string s = "POST /v1/chat?x=1 HTTP/1.1\r\nHost: h\r\nX-A: b\r\n\r\nbody";
  std::vector<char> from(s.begin(), s.end());
  RequestHead h;
  ASSERT_EQ(parse_request_head({from.data(), from.size()}, h), ParseStatus::complete);
  std::vector<char> to(from);
  std::fill(from.begin(), from.end(), 'z');  // the old bytes are gone
  rebase_request_head(h, from.data(), from.size(), to.data());
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.path, "/v1/chat");
  EXPECT_EQ(h.query, "x=1");
  EXPECT_EQ(h.target, "/v1/chat?x=1");
  EXPECT_EQ(h.header("x-a"), "b");
  EXPECT_EQ(h.path.data(), to.data() + 5);
  // Only the first 10 bytes kept (e.g. the buffer was emptied to linger): views past them are
  // emptied rather than left pointing at freed memory.
  rebase_request_head(h, to.data(), 10, from.data());
  EXPECT_EQ(h.method.data(), from.data());
  EXPECT_TRUE(h.path.empty());
  EXPECT_TRUE(h.header("host").empty());
}

}  // namespace
}  // namespace sluice::http
