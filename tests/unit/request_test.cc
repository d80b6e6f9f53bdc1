// Unit tests for the on-demand request body readers: parse_request (model, stream flags, the
// model token's exact position, every bad_request case), extract_prompt and
// extract_embedding_inputs. The schema validation parse_request does is in
// request_validation_test.cc.
#include "providers/request.h"
#include "padded_body.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace sluice::providers {
namespace {

using test::Padded;

// parse_request on a padded copy of `body`. `padded` keeps the buffer alive for out.body.
Result<void> parse(std::string_view body, ParsedRequest& out, std::unique_ptr<Padded>& padded,
                   Operation op = Operation::chat) {
  padded = std::make_unique<Padded>(body);
  return parse_request(op, padded->view(), out);
}

// The raw model token of a parsed request.
std::string_view token_of(const ParsedRequest& r) {
  EXPECT_LE(r.model_begin, r.model_end);
  EXPECT_LE(r.model_end, r.body.size());
  return r.body.substr(r.model_begin, r.model_end - r.model_begin);
}

// Expects `body` to be rejected as bad_request naming `param` ("" = none).
void expect_rejected(std::string_view body, std::string_view param = "") {
  ParsedRequest r;
  std::unique_ptr<Padded> p;
  const Result<void> res = parse(body, r, p);
  ASSERT_FALSE(res.ok()) << body;
  EXPECT_EQ(res.error().code, Errc::bad_request) << body;
  EXPECT_EQ(res.error().param, param) << body;
  EXPECT_FALSE(res.error().message.empty()) << body;
  EXPECT_EQ(to_response(res.error()).status, 400) << body;
}

std::string prompt_of(std::string_view body, Operation op = Operation::chat) {
  Padded p(body);
  return extract_prompt(op, p.view());
}

Result<EmbeddingInputs> embedding_inputs_of(std::string_view body) {
  Padded p(body);
  return extract_embedding_inputs(p.view());
}

// ---- operation_path ----------------------------------------------------------------------------

TEST(OperationPath, NamesEachOperationsApiPath) {
  EXPECT_EQ(operation_path(Operation::chat), "/chat/completions");
  EXPECT_EQ(operation_path(Operation::completions), "/completions");
  EXPECT_EQ(operation_path(Operation::embeddings), "/embeddings");
}

// ---- parse_request: fields ---------------------------------------------------------------------

TEST(ParseRequest, ExtractsModelAndDefaultsStreamFlagsToFalse) {
  const std::string body =
      R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.2})";
  ParsedRequest r;
  std::unique_ptr<Padded> p;
  ASSERT_TRUE(parse(body, r, p));
  EXPECT_EQ(r.op, Operation::chat);
  EXPECT_EQ(r.model, "gpt-4o");
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.include_usage);
  EXPECT_EQ(r.body.data(), p->view().data());
  EXPECT_EQ(r.body.size(), body.size());
}

TEST(ParseRequest, RecordsTheOperationItWasGiven) {
  ParsedRequest r;
  std::unique_ptr<Padded> p;
  ASSERT_TRUE(parse(R"({"model":"e","input":"x"})", r, p, Operation::embeddings));
  EXPECT_EQ(r.op, Operation::embeddings);
  ASSERT_TRUE(parse(R"({"model":"c","prompt":"x"})", r, p, Operation::completions));
  EXPECT_EQ(r.op, Operation::completions);
}

TEST(ParseRequest, ReadsStreamAndIncludeUsage) {
  ParsedRequest r;
  std::unique_ptr<Padded> p;
  ASSERT_TRUE(parse(R"({"stream_options":{"include_usage":true},"model":"m","stream":true,)"
                    R"("messages":[{"role":"user","content":"hi"}]})",
                    r, p));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  ASSERT_TRUE(parse(R"({"model":"m","stream":true,"stream_options":{"include_usage":false},)"
                    R"("messages":[{"role":"user","content":"hi"}]})",
                    r, p));
  EXPECT_TRUE(r.stream);
  EXPECT_FALSE(r.include_usage);
  ASSERT_TRUE(parse(R"({"model":"m","stream":false,"messages":[{"role":"user"}]})", r, p));
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.include_usage);
}

TEST(ParseRequest, IgnoresStreamOptionsWithoutAnIncludeUsageFlag) {
  ParsedRequest r;
  std::unique_ptr<Padded> p;
  for (std::string_view body : {
           R"({"model":"m","stream":true,"stream_options":null,"messages":[{"role":"user"}]})",
           R"({"model":"m","stream":true,"stream_options":{"include_usage":null},)"
           R"("messages":[{"role":"user"}]})",
           R"({"model":"m","stream":true,"stream_options":{"other":{"include_usage":true}},)"
           R"("messages":[{"role":"user"}]})",
       }) {
    SCOPED_TRACE(body);
    ASSERT_TRUE(parse(body, r, p));
    EXPECT_TRUE(r.stream);
    EXPECT_FALSE(r.include_usage);
  }
}

TEST(ParseRequest, AcceptsNullStreamAsFalse) {
  ParsedRequest r;
  std::unique_ptr<Padded> p;
  ASSERT_TRUE(parse(R"({"model":"m","stream":null,"messages":[{"role":"user"}]})", r, p));
  EXPECT_FALSE(r.stream);
}

TEST(ParseRequest, SkipsDeeplyNestedAndUnusualFields) {
  const std::string body =
      R"({"x_n":[[[[[[[[[[[[{"a":[1,{"b":null}],"model":"decoy"}]]]]]]]]]]]],)"
      R"("messages":[{"content":{"model":"decoy2","stream":1},"role":"user","model":"no"}],)"
      R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object",)"
      R"("properties":{"model":{"type":"string"},"stream":{"type":"boolean"}}}}}],)"
      R"("logit_bias":{"50256":-100},"x":-1.5e300,"y":true,"z":null,"s":"\"model\":\"no\"",)"
      R"("emoji":"😀\ud83d\ude00","model":"real","meta":{"stream":"not-a-bool"}})";
  ParsedRequest r;
  std::unique_ptr<Padded> p;
  ASSERT_TRUE(parse(body, r, p));
  EXPECT_EQ(r.model, "real");
  EXPECT_EQ(token_of(r), R"("real")");
  EXPECT_FALSE(r.stream);
}

TEST(ParseRequest, AcceptsSurroundingWhitespace) {
  ParsedRequest r;
  std::unique_ptr<Padded> p;
  ASSERT_TRUE(
      parse(" \r\n\t{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]} \r\n\t", r, p));
  EXPECT_EQ(r.model, "m");
}

// ---- parse_request: the model token ------------------------------------------------------------

TEST(ParseRequest, PointsModelOffsetsAtTheExactQuotedToken) {
  const std::string body = R"({"messages":[{"role":"user"}],"model":"gpt-4o","stream":true})";
  ParsedRequest r;
  std::unique_ptr<Padded> p;
  ASSERT_TRUE(parse(body, r, p));
  EXPECT_EQ(body.substr(r.model_begin, r.model_end - r.model_begin), "\"gpt-4o\"");
  EXPECT_EQ(r.model_begin, body.find("\"gpt-4o\""));
}

TEST(ParseRequest, ExcludesWhitespaceAroundTheModelTokenFromItsOffsets) {
  const std::string body =
      "{ \"model\" : \t\r\n \"gpt-4o\" \t\r\n , \"stream\" : true, "
      "\"messages\": [{\"role\":\"user\"}] }";
  ParsedRequest r;
  std::unique_ptr<Padded> p;
  ASSERT_TRUE(parse(body, r, p));
  EXPECT_EQ(body.substr(r.model_begin, r.model_end - r.model_begin), "\"gpt-4o\"");
  EXPECT_TRUE(r.stream);
  // The same when the model is the last member, right before the closing brace.
  const std::string last = "{\"messages\":[{\"role\":\"user\"}],\"model\":\"gpt-4o\"   \n}";
  ASSERT_TRUE(parse(last, r, p));
  EXPECT_EQ(last.substr(r.model_begin, r.model_end - r.model_begin), "\"gpt-4o\"");
}

TEST(ParseRequest, UnescapesTheModelButKeepsTheRawTokenUnchanged) {
  const std::string body = R"({"model":"gpt\u002d4","messages":[{"role":"user"}]})";
  ParsedRequest r;
  std::unique_ptr<Padded> p;
  ASSERT_TRUE(parse(body, r, p));
  EXPECT_EQ(r.model, "gpt-4");
  EXPECT_EQ(body.substr(r.model_begin, r.model_end - r.model_begin), R"("gpt\u002d4")");

  const std::string quotes = R"({"model":"a\"b\\c\/d","messages":[{"role":"user"}]})";
  ASSERT_TRUE(parse(quotes, r, p));
  EXPECT_EQ(r.model, R"(a"b\c/d)");
  EXPECT_EQ(quotes.substr(r.model_begin, r.model_end - r.model_begin), R"("a\"b\\c\/d")");
}

TEST(ParseRequest, ReadsNonAsciiModelNames) {
  const std::string body = R"({"model":"modèle-✓","messages":[{"role":"user"}]})";
  ParsedRequest r;
  std::unique_ptr<Padded> p;
  ASSERT_TRUE(parse(body, r, p));
  EXPECT_EQ(r.model, "modèle-✓");
  EXPECT_EQ(token_of(r), R"("modèle-✓")");
}


TEST(ParseRequest, ResetsTheOutputBeforeParsing) {
  ParsedRequest r;
  std::unique_ptr<Padded> p;
  ASSERT_TRUE(parse(R"({"model":"m","stream":true,"stream_options":{"include_usage":true},)"
                    R"("max_tokens":7,"n":2,"messages":[{"role":"user"}]})",
                    r, p));
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_EQ(r.n, 2);
  ASSERT_TRUE(parse(R"({"model":"n","messages":[{"role":"user"}]})", r, p));
  EXPECT_EQ(r.model, "n");
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.include_usage);
  EXPECT_EQ(r.max_tokens, 0);
  EXPECT_EQ(r.n, 1);
}

// ---- parse_request: errors ---------------------------------------------------------------------

TEST(ParseRequest, RejectsAnEmptyBody) {
  expect_rejected("");
  expect_rejected("   \n");
}

TEST(ParseRequest, RejectsABodyThatIsNotJson) {
  expect_rejected("hello");
  expect_rejected("model=gpt-4o&stream=true");
  expect_rejected("{model:\"m\"}");
  expect_rejected("{\"model\":\"m\"");
  expect_rejected("{\"model\":\"m\",}");
  expect_rejected("{\"model\" \"m\"}");
  expect_rejected("{\"model\":\"bad\\q\"}");
  expect_rejected("{\"model\":\"m\xff\"}");  // invalid UTF-8
}

TEST(ParseRequest, RejectsJsonThatIsNotAnObject) {
  expect_rejected(R"([{"model":"m"}])");
  expect_rejected("5");
  expect_rejected(R"("model")");
  expect_rejected("null");
  expect_rejected("true");
}

TEST(ParseRequest, RejectsTrailingContentAfterTheObject) {
  expect_rejected(R"({"model":"m"} x)");
  expect_rejected(R"({"model":"m"}})");
  expect_rejected(R"({"model":"m"}{"model":"n"})");
  expect_rejected(R"({"model":"m"}[])");
  expect_rejected(R"({"model":"m"},)");
  expect_rejected(std::string_view("{\"model\":\"m\"}\0", 14));
}

TEST(ParseRequest, RejectsAMissingModel) {
  expect_rejected("{}", "model");
  expect_rejected(R"({"stream":true,"messages":[{"role":"user"}]})", "model");
  expect_rejected(R"({"meta":{"model":"nested-does-not-count"}})", "model");
}

TEST(ParseRequest, RejectsAModelThatIsNotAString) {
  expect_rejected(R"({"model":5})", "model");
  expect_rejected(R"({"model":null})", "model");
  expect_rejected(R"({"model":true})", "model");
  expect_rejected(R"({"model":["gpt-4o"]})", "model");
  expect_rejected(R"({"model":{"name":"gpt-4o"}})", "model");
}

TEST(ParseRequest, RejectsAnEmptyModel) {
  expect_rejected(R"({"model":""})", "model");
}

TEST(ParseRequest, RejectsAStreamThatIsNotABoolean) {
  expect_rejected(R"({"model":"m","stream":"true"})", "stream");
  expect_rejected(R"({"model":"m","stream":1})", "stream");
  expect_rejected(R"({"model":"m","stream":0})", "stream");
  expect_rejected(R"({"model":"m","stream":{}})", "stream");
  expect_rejected(R"({"model":"m","stream":[true]})", "stream");
}

TEST(ParseRequest, ReportsTheStreamErrorEvenWithoutAModel) {
  // Fields are checked in order, so a bad stream before the end beats the missing model.
  expect_rejected(R"({"stream":"yes"})", "stream");
}

TEST(ParseRequest, DoesNotReadThePaddingAfterTheBody) {
  // Padded fills its padding with '}' : a parser that looked past the end would see "{...}}}}".
  ParsedRequest r;
  std::unique_ptr<Padded> p;
  ASSERT_TRUE(parse(R"({"model":"m","messages":[{"role":"user"}]})", r, p));
  expect_rejected(R"({"model":"m","messages":[{"role":"user"}])");
}

// ---- extract_prompt ----------------------------------------------------------------------------

TEST(ExtractPrompt, ReturnsTheLastUserMessageOfAChat) {
  EXPECT_EQ(prompt_of(R"({"model":"m","messages":[
      {"role":"system","content":"be nice"},
      {"role":"user","content":"first"},
      {"role":"assistant","content":"answer"},
      {"role":"user","content":"second"},
      {"role":"assistant","content":"later"}]})"),
            "second");
}

TEST(ExtractPrompt, ReadsRoleAfterContent) {
  EXPECT_EQ(prompt_of(R"({"messages":[{"content":"hi there","role":"user"}]})"), "hi there");
}

TEST(ExtractPrompt, JoinsTheTextPartsOfArrayContentWithSpaces) {
  EXPECT_EQ(prompt_of(R"({"messages":[{"role":"user","content":[
      {"type":"text","text":"look at"},
      {"type":"image_url","image_url":{"url":"data:..."}},
      {"type":"text","text":"this"},
      "not-an-object",
      {"type":"text","text":5}]}]})"),
            "look at this");
}

TEST(ExtractPrompt, UnescapesTheMessage) {
  EXPECT_EQ(prompt_of(R"({"messages":[{"role":"user","content":"a\"b\n\u00e9"}]})"),
            "a\"b\né");
}

TEST(ExtractPrompt, ReturnsEmptyWhenThereIsNoUserMessage) {
  EXPECT_EQ(prompt_of(R"({"messages":[{"role":"system","content":"x"}]})"), "");
  EXPECT_EQ(prompt_of(R"({"messages":[]})"), "");
  EXPECT_EQ(prompt_of(R"({"model":"m"})"), "");
  EXPECT_EQ(prompt_of(R"({"messages":"hi"})"), "");
  EXPECT_EQ(prompt_of(R"({"messages":[{"role":"user","content":null}]})"), "");
  EXPECT_EQ(prompt_of(R"({"prompt":"completions only"})"), "");
}

TEST(ExtractPrompt, ReturnsEmptyForBodiesThatAreNotObjects) {
  EXPECT_EQ(prompt_of(""), "");
  EXPECT_EQ(prompt_of("not json"), "");
  EXPECT_EQ(prompt_of(R"(["hi"])"), "");
}

TEST(ExtractPrompt, ReadsACompletionsPromptString) {
  EXPECT_EQ(prompt_of(R"({"model":"m","prompt":"Once upon a time"})", Operation::completions),
            "Once upon a time");
}

TEST(ExtractPrompt, ReadsTheFirstStringOfACompletionsPromptArray) {
  EXPECT_EQ(prompt_of(R"({"prompt":["one","two"]})", Operation::completions), "one");
  EXPECT_EQ(prompt_of(R"({"prompt":[[1,2,3],"text"]})", Operation::completions), "text");
  EXPECT_EQ(prompt_of(R"({"prompt":[1,2,3]})", Operation::completions), "");
  EXPECT_EQ(prompt_of(R"({"prompt":5})", Operation::completions), "");
}

TEST(ExtractPrompt, IgnoresMessagesForCompletions) {
  EXPECT_EQ(prompt_of(R"({"messages":[{"role":"user","content":"x"}]})", Operation::completions),
            "");
}

// ---- extract_embedding_inputs ------------------------------------------------------------------

TEST(EmbeddingInputs, ReadsASingleString) {
  auto r = embedding_inputs_of(R"({"model":"e","input":"hello \"world\""})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->inputs.size(), 1u);
  EXPECT_EQ(r->inputs[0], "hello \"world\"");
  EXPECT_EQ(r->encoding_format, "float");
}

TEST(EmbeddingInputs, ReadsAnArrayOfStrings) {
  auto r = embedding_inputs_of(R"({"input":["a","b",""],"model":"e"})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->inputs.size(), 3u);
  EXPECT_EQ(r->inputs[0], "a");
  EXPECT_EQ(r->inputs[1], "b");
  EXPECT_EQ(r->inputs[2], "");
}

TEST(EmbeddingInputs, CountsEachTokenArrayAsOneInputKeptAsRawJson) {
  auto r = embedding_inputs_of(R"({"input":[[1, 2, 3] , 42,"s"]})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->inputs.size(), 3u);
  EXPECT_EQ(r->inputs[1], "42");
  EXPECT_EQ(r->inputs[2], "s");
  // A nested array's raw token is only its opening bracket in simdjson's on-demand API; what
  // matters is that it counts as one input.
  EXPECT_FALSE(r->inputs[0].empty());
}

TEST(EmbeddingInputs, RejectsAnInputOfAnotherType) {
  for (std::string_view body : {R"({"input":5})", R"({"input":{"text":"x"}})",
                                R"({"input":null})", R"({"input":true})"}) {
    SCOPED_TRACE(body);
    auto r = embedding_inputs_of(body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::bad_request);
    EXPECT_EQ(r.error().param, "input");
  }
}

TEST(EmbeddingInputs, RejectsAMissingOrEmptyInput) {
  for (std::string_view body : {R"({"model":"e"})", R"({"input":[]})", "{}"}) {
    SCOPED_TRACE(body);
    auto r = embedding_inputs_of(body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().param, "input");
  }
}

TEST(EmbeddingInputs, RejectsBodiesThatAreNotJsonObjects) {
  for (std::string_view body : {"", "nope", R"(["a"])", R"({"input":"a")"}) {
    SCOPED_TRACE(body);
    auto r = embedding_inputs_of(body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::bad_request);
  }
}

TEST(EmbeddingInputs, ReadsFloatAndBase64EncodingFormats) {
  auto f = embedding_inputs_of(R"({"input":"x","encoding_format":"float"})");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->encoding_format, "float");
  auto b = embedding_inputs_of(R"({"encoding_format":"base64","input":"x"})");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->encoding_format, "base64");
}

TEST(EmbeddingInputs, RejectsAnUnknownEncodingFormat) {
  for (std::string_view body : {R"({"input":"x","encoding_format":"int8"})",
                                R"({"input":"x","encoding_format":""})",
                                R"({"input":"x","encoding_format":"FLOAT"})"}) {
    SCOPED_TRACE(body);
    auto r = embedding_inputs_of(body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::bad_request);
    EXPECT_EQ(r.error().param, "encoding_format");
  }
}

TEST(EmbeddingInputs, IgnoresANonStringEncodingFormat) {
  auto r = embedding_inputs_of(R"({"input":"x","encoding_format":null})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->encoding_format, "float");
}

}  // namespace
}  // namespace sluice::providers
