// Unit tests for the schema validation parse_request does in its single on-demand pass: required
// fields per operation (messages / prompt / input), their shapes, the bounded numeric fields,
// model length, duplicate keys (also when written with escapes), null as "absent", and the
// OpenAI-shaped errors (400, param, code, wording) each rule produces.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"
#include "providers/request.h"
#include "padded_body.h"

namespace sluice::providers {
namespace {

using test::Padded;

constexpr std::string_view kMsgs = R"("messages":[{"role":"user","content":"hi"}])";

// {"model":"m", <kMsgs>, <fields>} — a valid chat body plus `fields` (may be empty).
std::string chat(std::string_view fields = "") {
  std::string b = R"({"model":"m",)";
  b += kMsgs;
  if (!fields.empty()) {
    b += ',';
    b += fields;
  }
  b += '}';
  return b;
}

struct Outcome {
  bool ok = false;
  ParsedRequest parsed;
  Error error;
  std::string body;  // to_response(error).body
  int status = 0;
};

Outcome run(std::string_view body, Operation op = Operation::chat) {
  Padded p(body);
  Outcome o;
  auto r = parse_request(op, p.view(), o.parsed);
  o.parsed.body = {};  // points into p
  o.ok = r.ok();
  if (!o.ok) {
    o.error = r.error();
    ErrorResponse resp = to_response(o.error);
    o.status = resp.status;
    o.body = resp.body;
  }
  return o;
}

void expect_ok(std::string_view body, Operation op = Operation::chat) {
  Outcome o = run(body, op);
  EXPECT_TRUE(o.ok) << body << " → " << o.body;
}

// Expects a 400 naming `param` with OpenAI code `code` ("" = null) and, if given, a message
// containing `text`.
void expect_invalid(std::string_view body, std::string_view param, std::string_view code,
                    std::string_view text = "", Operation op = Operation::chat) {
  Outcome o = run(body, op);
  ASSERT_FALSE(o.ok) << body;
  EXPECT_EQ(o.error.code, Errc::bad_request) << body;
  EXPECT_EQ(o.status, 400) << body;
  EXPECT_EQ(o.error.param, param) << body << " → " << o.body;
  EXPECT_EQ(o.error.code_override, code) << body << " → " << o.body;
  EXPECT_EQ(error_kind(o.error), code.empty() ? std::string_view("invalid_request") : code);
  const std::string code_json =
      code.empty() ? "\"code\":null" : "\"code\":\"" + std::string(code) + "\"";
  EXPECT_NE(o.body.find(code_json), std::string::npos) << o.body;
  const std::string param_json =
      param.empty() ? "\"param\":null" : "\"param\":\"" + std::string(param) + "\"";
  EXPECT_NE(o.body.find(param_json), std::string::npos) << o.body;
  if (!text.empty()) {
    EXPECT_NE(o.error.message.find(text), std::string::npos) << o.error.message;
  }
}

// ---- chat: messages ----------------------------------------------------------------------------

TEST(ValidateChat, RequiresMessages) {
  // The issue's reproduction: {"model":"demo"} answered 200.
  expect_invalid(R"({"model":"demo"})", "messages", "missing_required_parameter",
                 "Missing required parameter: 'messages'.");
  expect_invalid(R"({"model":"m","prompt":"hi","input":"x"})", "messages",
                 "missing_required_parameter");
  expect_invalid(R"({"model":"m","meta":{"messages":[{"role":"user"}]}})", "messages",
                 "missing_required_parameter");
}

TEST(ValidateChat, RejectsMessagesThatAreNotAnArray) {
  expect_invalid(R"({"model":"m","messages":"hi"})", "messages", "invalid_type",
                 "Invalid type for 'messages': expected an array, but got a string instead.");
  expect_invalid(R"({"model":"m","messages":null})", "messages", "invalid_type", "got null");
  expect_invalid(R"({"model":"m","messages":{"role":"user"}})", "messages", "invalid_type",
                 "got an object");
  expect_invalid(R"({"model":"m","messages":3})", "messages", "invalid_type", "got an integer");
  expect_invalid(R"({"model":"m","messages":3.5})", "messages", "invalid_type", "got a decimal");
}

TEST(ValidateChat, RejectsAnEmptyMessagesArray) {
  expect_invalid(R"({"model":"m","messages":[]})", "messages", "empty_array",
                 "Invalid 'messages': empty array. Expected an array with minimum length 1");
  expect_invalid(R"({"model":"m","messages":[ ]})", "messages", "empty_array");
}

TEST(ValidateChat, RejectsMessagesThatAreNotObjects) {
  expect_invalid(R"({"model":"m","messages":["hi"]})", "messages[0]", "invalid_type",
                 "Invalid type for 'messages[0]': expected an object, but got a string instead.");
  expect_invalid(R"({"model":"m","messages":[{"role":"user"},null]})", "messages[1]",
                 "invalid_type");
  expect_invalid(R"({"model":"m","messages":[{"role":"user"},[{"role":"user"}]]})",
                 "messages[1]", "invalid_type");
}

TEST(ValidateChat, RequiresARoleInEachMessage) {
  expect_invalid(R"({"model":"m","messages":[{"content":"hi"}]})", "messages[0].role",
                 "missing_required_parameter",
                 "Missing required parameter: 'messages[0].role'.");
  expect_invalid(R"({"model":"m","messages":[{"role":"user"},{"content":{"role":"user"}}]})",
                 "messages[1].role", "missing_required_parameter");
  expect_invalid(R"({"model":"m","messages":[{}]})", "messages[0].role",
                 "missing_required_parameter");
}

TEST(ValidateChat, RejectsARoleThatIsNotAString) {
  expect_invalid(R"({"model":"m","messages":[{"role":null}]})", "messages[0].role",
                 "invalid_type", "expected a string, but got null instead.");
  expect_invalid(R"({"model":"m","messages":[{"role":["user"]}]})", "messages[0].role",
                 "invalid_type");
}

TEST(ValidateChat, RejectsAnUnknownRole) {
  expect_invalid(R"({"model":"m","messages":[{"role":"user"},{"role":"bot","content":"x"}]})",
                 "messages[1].role", "invalid_value",
                 "Invalid value: 'bot'. Supported values are: 'system', 'assistant', 'user', "
                 "'function', 'tool', and 'developer'.");
  expect_invalid(R"({"model":"m","messages":[{"role":"User"}]})", "messages[0].role",
                 "invalid_value");
  expect_invalid(R"({"model":"m","messages":[{"role":""}]})", "messages[0].role",
                 "invalid_value");
  // A long role is not echoed back.
  Outcome o = run(R"({"model":"m","messages":[{"role":")" + std::string(500, 'x') + "\"}]}");
  ASSERT_FALSE(o.ok);
  EXPECT_LT(o.body.size(), 400u) << o.body;
  EXPECT_EQ(o.error.param, "messages[0].role");
}

TEST(ValidateChat, AcceptsEveryRoleAndAnyContent) {
  for (std::string_view role : {"system", "user", "assistant", "tool", "function", "developer"}) {
    SCOPED_TRACE(role);
    expect_ok(R"({"model":"m","messages":[{"role":")" + std::string(role) + R"("}]})");
  }
  expect_ok(R"({"model":"m","messages":[{"role":"user","content":null},)"
            R"({"role":"assistant","content":[{"type":"text","text":"a"}],"tool_calls":[]},)"
            R"({"content":"after","role":"tool","tool_call_id":"x"}]})");
  // content is not checked deeply: any type passes the gateway (the upstream judges it).
  expect_ok(R"({"model":"m","messages":[{"role":"user","content":5}]})");
}

TEST(ValidateChat, ReadsEscapedRoleKeysAndValues) {
  // "rol\u0065" is "role" and "\u0075ser" is "user" to any JSON parser upstream.
  expect_ok(R"({"model":"m","messages":[{"rol\u0065":"\u0075ser"}]})");
  expect_invalid(R"({"model":"m","messages":[{"rol\u0065":"b\u006ft"}]})", "messages[0].role",
                 "invalid_value", "'bot'");
  expect_ok(R"({"model":"m","m\u0065ssages":[{"role":"user"}]})");
  expect_ok(R"({"model":"m","messages":[{"\u0072\u006F\u006c\u0065":"user"}]})");  // any case
  // Keys that only look like role are not one.
  for (std::string_view key : {R"(rol)", R"(roles)", R"(Role)", R"(rol\u0065s)", R"(\\u0065)",
                               R"(rol\n)", R"(\u0000role)", R"(rol\u00e9)",
                               R"(rol\u0065\u0065)"}) {
    SCOPED_TRACE(key);
    expect_invalid(R"({"model":"m","messages":[{")" + std::string(key) + R"(":"user"}]})",
                   "messages[0].role", "missing_required_parameter");
  }
}

TEST(ValidateChat, ReportsBrokenJsonInsideMessagesAsAParseError) {
  expect_invalid(R"({"model":"m","messages":[{"role":"user",}]})", "", "");
  expect_invalid(R"({"model":"m","messages":[{"role":"us)" "\xff" R"(er"}]})", "", "");
}

// ---- completions: prompt ---------------------------------------------------------------------

TEST(ValidateCompletions, RequiresAPrompt) {
  expect_invalid(R"({"model":"m"})", "prompt", "missing_required_parameter",
                 "Missing required parameter: 'prompt'.", Operation::completions);
  expect_invalid(chat(), "prompt", "missing_required_parameter", "", Operation::completions);
}

TEST(ValidateCompletions, AcceptsEveryPromptShapeOpenAIDocuments) {
  for (std::string_view prompt : {R"("text")", R"("")", R"(["a","b"])", R"([1,2,3])",
                                  R"([[1,2],[3]])", R"([])", R"(null)", R"([[]])"}) {
    SCOPED_TRACE(prompt);
    expect_ok(R"({"model":"m","prompt":)" + std::string(prompt) + "}", Operation::completions);
  }
}

TEST(ValidateCompletions, RejectsOtherPromptShapes) {
  auto body = [](std::string_view prompt) {
    return R"({"model":"m","prompt":)" + std::string(prompt) + "}";
  };
  const Operation c = Operation::completions;
  expect_invalid(body("5"), "prompt", "invalid_type",
                 "expected a string or an array, but got an integer instead.", c);
  expect_invalid(body("{}"), "prompt", "invalid_type", "", c);
  expect_invalid(body("true"), "prompt", "invalid_type", "", c);
  expect_invalid(body(R"(["a",1])"), "prompt[1]", "invalid_type", "expected a string", c);
  expect_invalid(body(R"([1,"a"])"), "prompt[1]", "invalid_type", "expected an integer", c);
  expect_invalid(body(R"([1,2.5])"), "prompt[1]", "invalid_type", "got a decimal", c);
  expect_invalid(body(R"([null])"), "prompt[0]", "invalid_type", "", c);
  expect_invalid(body(R"([[1],2])"), "prompt[1]", "invalid_type", "an array of integers", c);
  expect_invalid(body(R"([[1,"x"]])"), "prompt[0][1]", "invalid_type", "expected an integer", c);
  expect_invalid(body(R"([[1],[2,[3]]])"), "prompt[1][1]", "invalid_type", "", c);
}

// ---- embeddings: input -----------------------------------------------------------------------

TEST(ValidateEmbeddings, RequiresANonEmptyInput) {
  const Operation e = Operation::embeddings;
  expect_invalid(R"({"model":"m"})", "input", "missing_required_parameter",
                 "Missing required parameter: 'input'.", e);
  expect_invalid(R"({"model":"m","input":[]})", "input", "empty_array", "", e);
  expect_invalid(R"({"model":"m","input":null})", "input", "invalid_type", "got null", e);
  expect_invalid(R"({"model":"m","input":{"text":"x"}})", "input", "invalid_type", "", e);
  expect_invalid(R"({"model":"m","input":["a",["b"]]})", "input[1]", "invalid_type", "", e);
}

TEST(ValidateEmbeddings, AcceptsStringsAndTokenArrays) {
  for (std::string_view input : {R"("x")", R"(["a","b"])", R"([1,2])", R"([[1,2],[3,4]])"}) {
    SCOPED_TRACE(input);
    expect_ok(R"({"model":"m","input":)" + std::string(input) + "}", Operation::embeddings);
  }
}

std::string inputs(size_t count) {
  std::string b = R"({"model":"m","input":[)";
  for (size_t i = 0; i < count; ++i) b += i ? R"(,"")" : R"("")";
  return b + "]}";
}

TEST(ValidateEmbeddings, AcceptsAtMost2048Inputs) {
  // Review §2.8: 16 MiB of ["",...] made the demo build a ~700 MB answer.
  expect_ok(inputs(kMaxEmbeddingInputs), Operation::embeddings);
  expect_invalid(inputs(kMaxEmbeddingInputs + 1), "input", "array_above_max_length",
                 "Expected an array with maximum length 2048, but got an array with length 2049",
                 Operation::embeddings);
  expect_invalid(inputs(100000), "input", "array_above_max_length", "length 100000",
                 Operation::embeddings);
}

TEST(ValidateEmbeddings, ExtractEmbeddingInputsStopsAtTheCapToo) {
  Padded ok(inputs(kMaxEmbeddingInputs));
  auto r = extract_embedding_inputs(ok.view());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->inputs.size(), kMaxEmbeddingInputs);
  Padded over(inputs(kMaxEmbeddingInputs + 1));
  auto o = extract_embedding_inputs(over.view());
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.error().param, "input");
}

TEST(ValidateEmbeddings, OnlyTheOperationsOwnFieldIsRequired) {
  expect_ok(R"({"model":"m","input":"x","messages":"not checked for embeddings"})",
            Operation::embeddings);
  expect_ok(R"({"model":"m","prompt":"x","messages":5,"input":{}})", Operation::completions);
  expect_ok(chat(R"("prompt":5,"input":{})"));
}

// ---- max_tokens / max_completion_tokens --------------------------------------------------------

TEST(ValidateMaxTokens, ExposesTheLargerOfBothFields) {
  Outcome o = run(chat(R"("max_tokens":100,"max_completion_tokens":300)"));
  ASSERT_TRUE(o.ok) << o.body;
  EXPECT_EQ(o.parsed.max_tokens, 300);
  o = run(chat(R"("max_completion_tokens":2147483647)"));
  ASSERT_TRUE(o.ok) << o.body;
  EXPECT_EQ(o.parsed.max_tokens, kMaxTokensLimit);
  o = run(chat(R"("max_tokens":0)"));
  ASSERT_TRUE(o.ok) << o.body;
  EXPECT_EQ(o.parsed.max_tokens, 0);
  o = run(chat(R"("max_tokens":null,"max_completion_tokens":null)"));
  ASSERT_TRUE(o.ok) << o.body;
  EXPECT_EQ(o.parsed.max_tokens, 0);
}

TEST(ValidateMaxTokens, RejectsNegativeValues) {
  for (std::string_view key : {"max_tokens", "max_completion_tokens"}) {
    SCOPED_TRACE(key);
    const std::string k(key);
    expect_invalid(chat("\"" + k + "\":-1"), k, "integer_below_min_value",
                   "Invalid '" + k + "': integer below minimum value. Expected a value >= 0, "
                   "but got -1 instead.");
    expect_invalid(chat("\"" + k + "\":-9223372036854775808"), k, "integer_below_min_value");
    expect_invalid(chat("\"" + k + "\":-99999999999999999999"), k, "integer_below_min_value");
  }
}

TEST(ValidateMaxTokens, RejectsValuesAbove2To31) {
  // Review §1.1: 9223372036854775800 wrapped the reservation and locked a model's bucket.
  for (std::string_view v : {"2147483648", "9223372036854775800", "9223372036854775807",
                             "9223372036854775808", "18446744073709551616",
                             "99999999999999999999999999999"}) {
    SCOPED_TRACE(v);
    expect_invalid(chat(R"("max_tokens":)" + std::string(v)), "max_tokens",
                   "integer_above_max_value", "Expected a value <= 2147483647");
    expect_invalid(chat(R"("max_completion_tokens":)" + std::string(v)),
                   "max_completion_tokens", "integer_above_max_value");
  }
  // A huge number is not echoed back in full.
  Outcome o = run(chat(R"("max_tokens":)" + std::string(5000, '9')));
  ASSERT_FALSE(o.ok);
  EXPECT_LT(o.body.size(), 400u);
}

TEST(ValidateMaxTokens, RejectsNonIntegers) {
  expect_invalid(chat(R"("max_tokens":"100")"), "max_tokens", "invalid_type",
                 "Invalid type for 'max_tokens': expected an integer, but got a string instead.");
  expect_invalid(chat(R"("max_tokens":100.5)"), "max_tokens", "invalid_type", "got a decimal");
  expect_invalid(chat(R"("max_tokens":1e3)"), "max_tokens", "invalid_type", "got a decimal");
  expect_invalid(chat(R"("max_tokens":true)"), "max_tokens", "invalid_type", "got a boolean");
  expect_invalid(chat(R"("max_tokens":[1])"), "max_tokens", "invalid_type", "got an array");
  expect_invalid(chat(R"("max_completion_tokens":{})"), "max_completion_tokens",
                 "invalid_type", "got an object");
}

TEST(ValidateMaxTokens, ReadsAnEscapedKey) {
  expect_invalid(chat(R"("max_t\u006fkens":-5)"), "max_tokens", "integer_below_min_value");
  Outcome o = run(chat(R"("max_t\u006fkens":42)"));
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.parsed.max_tokens, 42);
}

// ---- n, temperature, top_p ---------------------------------------------------------------------

TEST(ValidateSampling, BoundsN) {
  Outcome o = run(chat(R"("n":128)"));
  ASSERT_TRUE(o.ok) << o.body;
  EXPECT_EQ(o.parsed.n, 128);
  expect_ok(chat(R"("n":null)"));
  expect_invalid(chat(R"("n":0)"), "n", "integer_below_min_value", "Expected a value >= 1");
  expect_invalid(chat(R"("n":-3)"), "n", "integer_below_min_value");
  expect_invalid(chat(R"("n":129)"), "n", "integer_above_max_value", "Expected a value <= 128");
  expect_invalid(chat(R"("n":9223372036854775808)"), "n", "integer_above_max_value");
  expect_invalid(chat(R"("n":-99999999999999999999)"), "n", "integer_below_min_value");
  expect_invalid(chat(R"("n":1.0)"), "n", "invalid_type", "got a decimal");
  expect_invalid(chat(R"("n":"2")"), "n", "invalid_type");
}

TEST(ValidateSampling, BoundsTemperature) {
  for (std::string_view t : {"0", "0.0", "1", "2", "2.0", "1e-3", "null", "0.7"}) {
    SCOPED_TRACE(t);
    expect_ok(chat(R"("temperature":)" + std::string(t)));
  }
  expect_invalid(chat(R"("temperature":2.01)"), "temperature", "decimal_above_max_value",
                 "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
                 "but got 2.01 instead.");
  expect_invalid(chat(R"("temperature":3)"), "temperature", "decimal_above_max_value");
  expect_invalid(chat(R"("temperature":1e999)"), "temperature", "decimal_above_max_value");
  expect_invalid(chat(R"("temperature":-1e999)"), "temperature", "decimal_below_min_value");
  expect_invalid(chat(R"("temperature":-0.1)"), "temperature", "decimal_below_min_value",
                 "Expected a value >= 0");
  expect_invalid(chat(R"("temperature":"0.5")"), "temperature", "invalid_type",
                 "expected a number, but got a string instead.");
}

TEST(ValidateSampling, BoundsTopP) {
  expect_ok(chat(R"("top_p":0)"));
  expect_ok(chat(R"("top_p":1)"));
  expect_ok(chat(R"("top_p":0.95)"));
  expect_ok(chat(R"("top_p":null)"));
  expect_invalid(chat(R"("top_p":1.5)"), "top_p", "decimal_above_max_value", "<= 1");
  expect_invalid(chat(R"("top_p":-1)"), "top_p", "decimal_below_min_value");
  expect_invalid(chat(R"("top_p":[])"), "top_p", "invalid_type");
}

// ---- stream / stream_options ------------------------------------------------------------------

TEST(ValidateStream, GivesTheExistingStreamErrorOpenAIsCode) {
  expect_invalid(chat(R"("stream":"true")"), "stream", "invalid_type",
                 "'stream' must be a boolean.");
  expect_invalid(R"({"model":5})", "model", "invalid_type", "'model' must be a string.");
}

TEST(ValidateStream, AllowsStreamOptionsOnlyWhenStreaming) {
  expect_ok(chat(R"("stream":true,"stream_options":{"include_usage":true})"));
  expect_ok(chat(R"("stream_options":{"include_usage":true},"stream":true)"));  // any order
  expect_ok(chat(R"("stream_options":null)"));
  expect_ok(chat(R"("stream":false,"stream_options":null)"));
  for (std::string_view fields : {R"("stream_options":{"include_usage":true})",
                                  R"("stream":false,"stream_options":{})",
                                  R"("stream":null,"stream_options":{"include_usage":false})"}) {
    SCOPED_TRACE(fields);
    // OpenAI answers exactly this, with a null code.
    expect_invalid(chat(fields), "stream_options", "",
                   "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
  }
}

TEST(ValidateStream, RejectsMalformedStreamOptions) {
  expect_invalid(chat(R"("stream":true,"stream_options":[true])"), "stream_options",
                 "invalid_type", "expected an object, but got an array instead.");
  expect_invalid(chat(R"("stream":true,"stream_options":true)"), "stream_options",
                 "invalid_type");
  expect_invalid(chat(R"("stream":true,"stream_options":{"include_usage":"yes"})"),
                 "stream_options.include_usage", "invalid_type", "expected a boolean");
}

// ---- model -------------------------------------------------------------------------------------

TEST(ValidateModel, AcceptsUpTo256Bytes) {
  const std::string m256(256, 'a');
  Outcome o = run(R"({"model":")" + m256 + R"(",)" + std::string(kMsgs) + "}");
  ASSERT_TRUE(o.ok) << o.body;
  EXPECT_EQ(o.parsed.model, m256);
  const std::string m257(257, 'a');
  expect_invalid(R"({"model":")" + m257 + R"(",)" + std::string(kMsgs) + "}", "model",
                 "string_above_max_length",
                 "Invalid 'model': string too long. Expected a string with maximum length 256, "
                 "but got a string with length 257 instead.");
}

TEST(ValidateModel, MeasuresTheUnescapedBytes) {
  // 128 × "é" is 256 bytes of UTF-8 (768 bytes of escapes): accepted. One more: rejected.
  std::string escaped;
  for (int i = 0; i < 128; ++i) escaped += "\\u00e9";
  expect_ok(R"({"model":")" + escaped + R"(",)" + std::string(kMsgs) + "}");
  expect_invalid(R"({"model":")" + escaped + R"(x",)" + std::string(kMsgs) + "}", "model",
                 "string_above_max_length", "length 257");
}

// ---- duplicate keys ----------------------------------------------------------------------------

TEST(ValidateDuplicates, RejectsARepeatedModel) {
  // Review §1.12: this parser took the last model, an upstream may take the first.
  expect_invalid(chat(R"("model":"other")"), "model", "", "Duplicate parameter 'model'");
  expect_invalid(chat(R"("model":"m")"), "model", "");  // even the same value
  expect_invalid(chat(R"("mod\u0065l":"other")"), "model", "");  // escaped spelling
  expect_invalid(chat(R"("\u006d\u006f\u0064\u0065\u006c":"other")"), "model", "");
  // A model-shaped key inside another object is not a duplicate.
  expect_ok(chat(R"("metadata":{"model":"x","stream":true})"));
}

TEST(ValidateDuplicates, RejectsARepeatedStreamOrStreamOptions) {
  expect_invalid(chat(R"("stream":true,"stream":false)"), "stream", "",
                 "Duplicate parameter 'stream'");
  expect_invalid(chat(R"("stream":null,"str\u0065am":true)"), "stream", "");
  expect_invalid(chat(R"("stream":true,"stream_options":{},"stream_options":{})"),
                 "stream_options", "");
}

TEST(ValidateDuplicates, ChecksEveryCopyOfOtherRepeatedFields) {
  // Not rejected as duplicates, but each copy is validated and max_tokens keeps the larger.
  Outcome o = run(chat(R"("max_tokens":5,"max_tokens":9)"));
  ASSERT_TRUE(o.ok) << o.body;
  EXPECT_EQ(o.parsed.max_tokens, 9);
  expect_invalid(chat(R"("max_tokens":5,"max_tokens":-1)"), "max_tokens",
                 "integer_below_min_value");
  expect_invalid(chat(R"("messages":[])"), "messages", "empty_array");
}

// ---- order and shape of errors -----------------------------------------------------------------

TEST(ValidateErrors, KeepTheExistingChecksFirst) {
  // Structure errors beat schema errors; a missing model beats a missing messages.
  expect_invalid(R"({"model":"m"} x)", "", "");
  expect_invalid(R"({})", "model", "", "you must provide a model parameter");
  expect_invalid(R"({"model":""})", "model", "", "'model' must not be empty.");
  // In-order field errors are reported as met.
  expect_invalid(R"({"max_tokens":-1,"messages":[]})", "max_tokens", "integer_below_min_value");
}

TEST(ValidateErrors, BodiesAreOpenAIShaped) {
  Outcome o = run(R"({"model":"m","messages":[{"role":"bot"}]})");
  ASSERT_FALSE(o.ok);
  EXPECT_EQ(o.body,
            R"({"error":{"message":"Invalid value: 'bot'. Supported values are: 'system', )"
            R"('assistant', 'user', 'function', 'tool', and 'developer'.",)"
            R"("type":"invalid_request_error","param":"messages[0].role",)"
            R"("code":"invalid_value"}})");
}

}  // namespace
}  // namespace sluice::providers
