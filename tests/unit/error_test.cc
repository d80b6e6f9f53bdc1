// Unit tests for the single Error → HTTP response mapping: status, OpenAI error type and code for
// every Errc, the shape of the JSON body, upstream pass-through, Retry-After rounding, and JSON
// string escaping.
#include "common/error.h"
#include "api/proxy_util.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {
namespace {

using namespace std::chrono_literals;

// The four fields of an OpenAI error body; a null param/code reads as "<null>".
struct ParsedBody {
  std::string message;
  std::string type;
  std::string param;
  std::string code;
};

constexpr std::string_view kNull = "<null>";

// Parses `body` with the simdjson DOM and checks it is exactly {"error":{message,type,param,code}}
// with string message/type and string-or-null param/code.
::testing::AssertionResult parse_error_body(const std::string& body, ParsedBody& out) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto ec = parser.parse(body).get(doc)) {
    return ::testing::AssertionFailure() << "not JSON (" << simdjson::error_message(ec)
                                         << "): " << body;
  }
  simdjson::dom::object root;
  if (doc.get_object().get(root)) return ::testing::AssertionFailure() << "not an object";
  if (root.size() != 1) return ::testing::AssertionFailure() << "extra top-level keys: " << body;
  simdjson::dom::object err;
  if (root["error"].get_object().get(err)) {
    return ::testing::AssertionFailure() << "no error object: " << body;
  }
  if (err.size() != 4) return ::testing::AssertionFailure() << "error has != 4 keys: " << body;
  std::string_view s;
  if (err["message"].get_string().get(s)) {
    return ::testing::AssertionFailure() << "error.message missing or not a string";
  }
  out.message = std::string(s);
  if (err["type"].get_string().get(s)) {
    return ::testing::AssertionFailure() << "error.type missing or not a string";
  }
  out.type = std::string(s);
  for (auto [key, dest] : {std::pair<const char*, std::string*>{"param", &out.param},
                           std::pair<const char*, std::string*>{"code", &out.code}}) {
    simdjson::dom::element v;
    if (err[key].get(v)) return ::testing::AssertionFailure() << "error." << key << " missing";
    if (v.is_null()) {
      *dest = std::string(kNull);
    } else if (v.get_string().get(s) == simdjson::SUCCESS) {
      *dest = std::string(s);
    } else {
      return ::testing::AssertionFailure() << "error." << key << " neither string nor null";
    }
  }
  return ::testing::AssertionSuccess();
}

std::string escaped(std::string_view s) {
  std::string out;
  append_json_escaped(out, s);
  return out;
}

// ---- Every Errc --------------------------------------------------------------------------------

struct Expected {
  Errc code;
  int status;
  const char* type;
  const char* error_code;  // "" → null
};

const std::vector<Expected> kAllCodes = {
    {Errc::bad_request, 400, "invalid_request_error", ""},
    {Errc::unauthorized, 401, "authentication_error", "invalid_api_key"},
    {Errc::forbidden, 403, "permission_error", "forbidden"},
    {Errc::not_found, 404, "invalid_request_error", "not_found"},
    {Errc::model_not_found, 404, "invalid_request_error", "model_not_found"},
    {Errc::method_not_allowed, 405, "invalid_request_error", "method_not_allowed"},
    {Errc::payload_too_large, 413, "invalid_request_error", "request_too_large"},
    {Errc::headers_too_large, 431, "invalid_request_error", "request_header_fields_too_large"},
    {Errc::request_timeout, 408, "invalid_request_error", "request_timeout"},
    {Errc::rate_limited, 429, "rate_limit_error", "rate_limit_exceeded"},
    {Errc::quota_exceeded, 429, "insufficient_quota", "insufficient_quota"},
    {Errc::upstream_connect, 502, "upstream_error", "upstream_unreachable"},
    {Errc::upstream_timeout, 504, "upstream_error", "upstream_timeout"},
    {Errc::upstream_status, 502, "upstream_error", "upstream_error"},  // upstream_status = 0
    {Errc::upstream_protocol, 502, "upstream_error", "upstream_protocol_error"},
    {Errc::unavailable, 503, "service_unavailable", "service_unavailable"},
    {Errc::internal, 500, "server_error", "internal_error"},
};

TEST(ErrorMapping, GivesEveryErrcItsStatusTypeAndCode) {
  for (const Expected& x : kAllCodes) {
    SCOPED_TRACE(x.type + std::string(" / ") + x.error_code);
    const Error e = make_error(x.code, "something went wrong");
    const ErrorResponse r = to_response(e);
    EXPECT_EQ(r.status, x.status);
    EXPECT_EQ(http_status(e), x.status);
    EXPECT_EQ(r.retry_after_seconds, 0);
    ParsedBody b;
    ASSERT_TRUE(parse_error_body(r.body, b));
    EXPECT_EQ(b.message, "something went wrong");
    EXPECT_EQ(b.type, x.type);
    EXPECT_EQ(b.code, *x.error_code ? std::string_view(x.error_code) : kNull);
    EXPECT_EQ(b.param, kNull);
  }
}

TEST(ErrorMapping, CoversEveryEnumerator) {
  // Guards the table above: a new Errc must be added to it (internal is the last enumerator).
  EXPECT_EQ(kAllCodes.size(), static_cast<size_t>(Errc::internal) + 1);
  for (size_t i = 0; i < kAllCodes.size(); ++i) {
    EXPECT_EQ(static_cast<size_t>(kAllCodes[i].code), i);
  }
}

TEST(ErrorMapping, WritesParamAsStringWhenSetAndNullWhenEmpty) {
  ParsedBody b;
  ASSERT_TRUE(parse_error_body(to_response(make_error(Errc::bad_request, "m", "model")).body, b));
  EXPECT_EQ(b.param, "model");
  ASSERT_TRUE(parse_error_body(to_response(make_error(Errc::bad_request, "m")).body, b));
  EXPECT_EQ(b.param, kNull);
  EXPECT_NE(to_response(make_error(Errc::bad_request, "m")).body.find(R"("param":null)"),
            std::string::npos);
}

TEST(ErrorMapping, KeepsAnEmptyMessageAsAnEmptyString) {
  ParsedBody b;
  ASSERT_TRUE(parse_error_body(to_response(make_error(Errc::internal, "")).body, b));
  EXPECT_EQ(b.message, "");
}

TEST(ErrorMapping, EscapesMessageAndParamSoTheBodyStaysValidJson) {
  const std::string message = "bad \"quote\" \\ back\nslash\x01 and ünïcödé ✓";
  const std::string param = "messages[0].\"content\"";
  ParsedBody b;
  ASSERT_TRUE(parse_error_body(to_response(make_error(Errc::bad_request, message, param)).body, b));
  EXPECT_EQ(b.message, message);
  EXPECT_EQ(b.param, param);
}

TEST(ErrorMapping, OpenaiErrorBodyWritesNullForEmptyParamAndCode) {
  EXPECT_EQ(openai_error_body("m", "t", "", ""),
            R"({"error":{"message":"m","type":"t","param":null,"code":null}})");
  EXPECT_EQ(openai_error_body("m", "t", "p", "c"),
            R"({"error":{"message":"m","type":"t","param":"p","code":"c"}})");
}

// ---- Upstream errors ---------------------------------------------------------------------------

Error upstream_error(int status, std::string body) {
  Error e = make_error(Errc::upstream_status, "The upstream answered " + std::to_string(status));
  e.upstream_status = status;
  e.upstream_body = std::move(body);
  return e;
}

TEST(ErrorMapping, PassesUpstream4xxBodyThroughUnchanged) {
  const std::string upstream =
      R"({"error":{"message":"Incorrect API key provided","type":"invalid_request_error",)"
      R"("param":null,"code":"invalid_api_key"}})";
  for (int status : {400, 404, 422, 429, 499}) {
    SCOPED_TRACE(status);
    const ErrorResponse r = to_response(upstream_error(status, upstream));
    EXPECT_EQ(r.status, status);
    EXPECT_EQ(r.body, upstream);
    EXPECT_EQ(http_status(upstream_error(status, upstream)), status);
  }
}

// Review §2.6: the gateway's own upstream credentials refused is the gateway's problem. A 401
// passed through would tell the SDK that the *client's* key is invalid, and OpenAI's body shows
// the last characters of the gateway's key.
TEST(ErrorMapping, UpstreamAuthFailuresBecome502WithoutTheUpstreamBody) {
  const std::string upstream =
      R"({"error":{"message":"Incorrect API key provided: sk-up***1234","type":"invalid_request_error",)"
      R"("param":null,"code":"invalid_api_key"}})";
  for (int status : {401, 403, 407}) {
    SCOPED_TRACE(status);
    Error e = api::upstream_status_error(status, upstream, "application/json", std::nullopt,
                                         "gpt-4o#0");
    const ErrorResponse r = to_response(e);
    EXPECT_EQ(r.status, 502);
    EXPECT_EQ(r.body.find("sk-up"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("upstream_auth_failed"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("gateway's credentials"), std::string::npos) << r.body;
    EXPECT_TRUE(e.retryable);
  }
}

TEST(ErrorMapping, Upstream5xxMessagesHideOriginAndBodyUnlessExposed) {
  Error hidden = api::upstream_status_error(503, "internal stack trace at 10.0.0.7", "text/plain",
                                            std::nullopt, "gpt-4o#0");
  EXPECT_EQ(hidden.message.find("10.0.0.7"), std::string::npos) << hidden.message;
  EXPECT_NE(hidden.message.find("gpt-4o#0"), std::string::npos) << hidden.message;
  Error shown = api::upstream_status_error(503, "internal stack trace at 10.0.0.7", "text/plain",
                                           std::nullopt, "http://10.0.0.7:8000", true);
  EXPECT_NE(shown.message.find("stack trace"), std::string::npos) << shown.message;
}

TEST(ErrorMapping, WrapsUpstream4xxWithoutBodyInOurShapeKeepingItsStatus) {
  const ErrorResponse r = to_response(upstream_error(429, ""));
  EXPECT_EQ(r.status, 429);
  ParsedBody b;
  ASSERT_TRUE(parse_error_body(r.body, b));
  EXPECT_EQ(b.type, "upstream_error");
  EXPECT_EQ(b.code, "upstream_error");
  EXPECT_EQ(b.message, "The upstream answered 429");
}

TEST(ErrorMapping, MapsUpstream5xxTo502WithOurShapeAndNeverItsBody) {
  for (int status : {500, 502, 503, 504, 599}) {
    SCOPED_TRACE(status);
    const ErrorResponse r = to_response(upstream_error(status, R"({"error":"secret stack"})"));
    EXPECT_EQ(r.status, 502);
    ParsedBody b;
    ASSERT_TRUE(parse_error_body(r.body, b));
    EXPECT_EQ(b.type, "upstream_error");
    EXPECT_EQ(b.code, "upstream_error");
    EXPECT_EQ(r.body.find("secret stack"), std::string::npos);
  }
}

TEST(ErrorMapping, MapsNonErrorUpstreamStatusesTo502) {
  for (int status : {0, 200, 302, 399, 600}) {
    SCOPED_TRACE(status);
    const ErrorResponse r = to_response(upstream_error(status, "body"));
    EXPECT_EQ(r.status, 502);
    EXPECT_NE(r.body, "body");
  }
}

TEST(ErrorMapping, IgnoresUpstreamBodyOnOtherCodes) {
  Error e = make_error(Errc::upstream_protocol, "garbled");
  e.upstream_status = 400;
  e.upstream_body = "raw";
  const ErrorResponse r = to_response(e);
  EXPECT_EQ(r.status, 502);
  ParsedBody b;
  ASSERT_TRUE(parse_error_body(r.body, b));
  EXPECT_EQ(b.code, "upstream_protocol_error");
}

// ---- code_override -----------------------------------------------------------------------------

TEST(ErrorMapping, ReportsTheCodeOverrideInTheBodyAndAsTheErrorKind) {
  Error e = make_error(Errc::bad_request, "Missing required parameter: 'messages'.", "messages");
  e.code_override = "missing_required_parameter";
  const ErrorResponse r = to_response(e);
  EXPECT_EQ(r.status, 400);
  ParsedBody b;
  ASSERT_TRUE(parse_error_body(r.body, b));
  EXPECT_EQ(b.type, "invalid_request_error");
  EXPECT_EQ(b.param, "messages");
  EXPECT_EQ(b.code, "missing_required_parameter");
  EXPECT_EQ(error_kind(e), "missing_required_parameter");
  EXPECT_EQ(http_status(e), 400);
}

TEST(ErrorMapping, OverridesOnlyTheCodeOfOtherErrcsToo) {
  Error e = make_error(Errc::rate_limited, "slow");
  e.code_override = "tokens";
  e.retry_after = std::chrono::milliseconds(1500);
  const ErrorResponse r = to_response(e);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.retry_after_seconds, 2);
  ParsedBody b;
  ASSERT_TRUE(parse_error_body(r.body, b));
  EXPECT_EQ(b.type, "rate_limit_error");
  EXPECT_EQ(b.code, "tokens");
  EXPECT_EQ(error_kind(e), "tokens");
}

TEST(ErrorMapping, WithoutAnOverrideEveryErrcKeepsItsDefaultKind) {
  for (const Expected& x : kAllCodes) {
    SCOPED_TRACE(x.type + std::string(" / ") + x.error_code);
    const Error e = make_error(x.code, "m");
    EXPECT_TRUE(e.code_override.empty());
    EXPECT_EQ(error_kind(e), *x.error_code ? std::string_view(x.error_code) : "invalid_request");
  }
}

TEST(ErrorMapping, PassesAnUpstream4xxBodyThroughEvenWithAnOverride) {
  Error e = make_error(Errc::upstream_status, "");
  e.upstream_status = 400;
  e.upstream_body = R"({"error":{"message":"theirs"}})";
  e.code_override = "invalid_value";
  EXPECT_EQ(to_response(e).body, e.upstream_body);
}

// ---- Retry-After -------------------------------------------------------------------------------

int retry_after_of(std::chrono::milliseconds ms, Errc code = Errc::rate_limited) {
  Error e = make_error(code, "slow down");
  e.retry_after = ms;
  return to_response(e).retry_after_seconds;
}

TEST(ErrorMapping, RoundsRetryAfterUpToWholeSeconds) {
  EXPECT_EQ(retry_after_of(1500ms), 2);
  EXPECT_EQ(retry_after_of(1000ms), 1);
  EXPECT_EQ(retry_after_of(1001ms), 2);
  EXPECT_EQ(retry_after_of(1ms), 1);
  EXPECT_EQ(retry_after_of(30'000ms), 30);
  EXPECT_EQ(retry_after_of(1500ms, Errc::unavailable), 2);
}

TEST(ErrorMapping, NeverSendsRetryAfterBelowOneSecondWhenOneIsSet) {
  // 0 ms (and nonsense negative values) still mean "retry later": Retry-After: 1, never 0.
  EXPECT_EQ(retry_after_of(0ms), 1);
  EXPECT_EQ(retry_after_of(-5000ms), 1);
}

TEST(ErrorMapping, SendsNoRetryAfterWhenNoneIsSet) {
  EXPECT_EQ(to_response(make_error(Errc::rate_limited, "m")).retry_after_seconds, 0);
  EXPECT_EQ(to_response(make_error(Errc::unavailable, "m")).retry_after_seconds, 0);
}

// ---- Result ------------------------------------------------------------------------------------

TEST(ErrorResult, HoldsEitherAValueOrAnError) {
  Result<int> ok = 7;
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 7);
  Result<int> bad = make_error(Errc::bad_request, "m", "p");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::bad_request);
  EXPECT_EQ(bad.error().param, "p");
  Result<void> vok;
  EXPECT_TRUE(vok);
  Result<void> vbad = make_error(Errc::internal, "x");
  ASSERT_FALSE(vbad);
  EXPECT_EQ(vbad.error().message, "x");
}

// ---- JSON escaping -----------------------------------------------------------------------------

TEST(JsonEscape, EscapesQuotesAndBackslashes) {
  EXPECT_EQ(escaped(R"(say "hi")"), R"(say \"hi\")");
  EXPECT_EQ(escaped(R"(C:\path\)"), R"(C:\\path\\)");
  EXPECT_EQ(escaped(R"(\")"), R"(\\\")");
}

TEST(JsonEscape, EscapesControlCharactersWithShortFormsWhereTheyExist) {
  EXPECT_EQ(escaped("\n\r\t\b\f"), R"(\n\r\t\b\f)");
  EXPECT_EQ(escaped("\x01"), R"(\u0001)");
  EXPECT_EQ(escaped("\x1f"), R"(\u001f)");
  EXPECT_EQ(escaped(std::string_view("\0", 1)), R"(\u0000)");
  EXPECT_EQ(escaped("a\x1b[0mb"), R"(a\u001b[0mb)");
}

TEST(JsonEscape, EscapesEveryControlCharacterSoSimdjsonReadsItBack) {
  std::string all;
  for (int c = 0; c < 0x20; ++c) all += static_cast<char>(c);
  const std::string json = "\"" + escaped(all) + "\"";
  simdjson::dom::parser parser;
  std::string_view back;
  ASSERT_EQ(parser.parse(json).get_string().get(back), simdjson::SUCCESS) << json;
  EXPECT_EQ(back, all);
}

TEST(JsonEscape, PassesUtf8AndPrintableAsciiThroughUnchanged) {
  const std::string s = "héllo wörld ✓ 😀 日本語 /<>&'~\x7f";
  EXPECT_EQ(escaped(s), s);
}

TEST(JsonEscape, AppendsToExistingContent) {
  std::string out = "prefix:";
  append_json_escaped(out, "\"");
  EXPECT_EQ(out, R"(prefix:\")");
  append_json_escaped(out, "");
  EXPECT_EQ(out, R"(prefix:\")");
}

}  // namespace
}  // namespace sluice
