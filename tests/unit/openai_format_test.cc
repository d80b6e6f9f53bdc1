// Unit tests for the OpenAI response builders shared by the demo provider and sluice-mock:
// unary completions, SSE chunks, the usage chunk, embeddings (float and base64) and the token
// estimate. Every body is parsed back with the simdjson DOM.
#include "providers/openai_format.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "providers/demo.h"

namespace sluice::providers {
namespace {

using simdjson::dom::element;

// Parses JSON into `out` (the parser must outlive the element).
::testing::AssertionResult parse_json(simdjson::dom::parser& parser, std::string_view json,
                                      element& out) {
  if (auto ec = parser.parse(json.data(), json.size()).get(out)) {
    return ::testing::AssertionFailure() << simdjson::error_message(ec) << ": " << json;
  }
  return ::testing::AssertionSuccess();
}

// The JSON inside one `data: {...}\n\n` SSE event.
::testing::AssertionResult event_json(std::string_view event, std::string_view& json) {
  if (event.substr(0, 6) != "data: ") {
    return ::testing::AssertionFailure() << "does not start with 'data: ': " << event;
  }
  if (event.size() < 8 || event.substr(event.size() - 2) != "\n\n") {
    return ::testing::AssertionFailure() << "does not end with a blank line: " << event;
  }
  json = event.substr(6, event.size() - 8);
  if (json.find('\n') != std::string_view::npos) {
    return ::testing::AssertionFailure() << "newline inside the data line: " << event;
  }
  return ::testing::AssertionSuccess();
}

std::string str(element e, std::string_view key) {
  std::string_view s;
  EXPECT_EQ(e[key].get_string().get(s), simdjson::SUCCESS) << key;
  return std::string(s);
}

int64_t num(element e, std::string_view key) {
  int64_t n = 0;
  EXPECT_EQ(e[key].get_int64().get(n), simdjson::SUCCESS) << key;
  return n;
}

bool is_null(element e, std::string_view key) {
  element v;
  return e[key].get(v) == simdjson::SUCCESS && v.is_null();
}

void expect_usage(element doc, int64_t prompt, int64_t completion) {
  element u;
  ASSERT_EQ(doc["usage"].get(u), simdjson::SUCCESS);
  EXPECT_EQ(num(u, "prompt_tokens"), prompt);
  EXPECT_EQ(num(u, "completion_tokens"), completion);
  EXPECT_EQ(num(u, "total_tokens"), prompt + completion);
}

element first_choice(element doc) {
  simdjson::dom::array choices;
  EXPECT_EQ(doc["choices"].get_array().get(choices), simdjson::SUCCESS);
  EXPECT_EQ(choices.size(), 1u);
  element c;
  EXPECT_EQ(choices.at(0).get(c), simdjson::SUCCESS);
  return c;
}

// Decodes standard base64 (with padding); returns false on a bad character or length.
bool base64_decode(std::string_view in, std::vector<unsigned char>& out) {
  if (in.size() % 4 != 0) return false;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = in[i + j];
      if (c == '=' && i + 4 == in.size() && j >= 2) {
        ++pad;
        v <<= 6;
        continue;
      }
      if (pad) return false;
      int x = value(c);
      if (x < 0) return false;
      v = (v << 6) | static_cast<uint32_t>(x);
    }
    out.push_back(static_cast<unsigned char>(v >> 16));
    if (pad < 2) out.push_back(static_cast<unsigned char>(v >> 8));
    if (pad < 1) out.push_back(static_cast<unsigned char>(v));
  }
  return true;
}

const CompletionShape kChat{Operation::chat, "chatcmpl-1", "gpt-4o", 1700000000};
const CompletionShape kText{Operation::completions, "cmpl-1", "davinci", 1700000001};

// ---- unary_completion --------------------------------------------------------------------------

TEST(OpenaiFormat, BuildsAValidChatCompletion) {
  const std::string body = unary_completion(kChat, "Hello \"there\"\n✓", {12, 3});
  simdjson::dom::parser p;
  element doc;
  ASSERT_TRUE(parse_json(p, body, doc));
  EXPECT_EQ(str(doc, "id"), "chatcmpl-1");
  EXPECT_EQ(str(doc, "object"), "chat.completion");
  EXPECT_EQ(num(doc, "created"), 1700000000);
  EXPECT_EQ(str(doc, "model"), "gpt-4o");
  element c = first_choice(doc);
  EXPECT_EQ(num(c, "index"), 0);
  EXPECT_EQ(str(c, "finish_reason"), "stop");
  EXPECT_TRUE(is_null(c, "logprobs"));
  element msg;
  ASSERT_EQ(c["message"].get(msg), simdjson::SUCCESS);
  EXPECT_EQ(str(msg, "role"), "assistant");
  EXPECT_EQ(str(msg, "content"), "Hello \"there\"\n✓");
  expect_usage(doc, 12, 3);
}

TEST(OpenaiFormat, BuildsAValidTextCompletion) {
  const std::string body = unary_completion(kText, "once upon", {1, 2});
  simdjson::dom::parser p;
  element doc;
  ASSERT_TRUE(parse_json(p, body, doc));
  EXPECT_EQ(str(doc, "object"), "text_completion");
  EXPECT_EQ(str(doc, "id"), "cmpl-1");
  element c = first_choice(doc);
  EXPECT_EQ(str(c, "text"), "once upon");
  EXPECT_EQ(str(c, "finish_reason"), "stop");
  expect_usage(doc, 1, 2);
}

TEST(OpenaiFormat, EscapesIdAndModel) {
  const CompletionShape odd{Operation::chat, "id\"\\", "model\x01\"", 0};
  simdjson::dom::parser p;
  element doc;
  ASSERT_TRUE(parse_json(p, unary_completion(odd, "", {}), doc));
  EXPECT_EQ(str(doc, "id"), "id\"\\");
  EXPECT_EQ(str(doc, "model"), "model\x01\"");
  EXPECT_EQ(str(first_choice(doc)["message"].value(), "content"), "");
}

// ---- chunk_event / usage_event -----------------------------------------------------------------

TEST(OpenaiFormat, BuildsAChatRoleChunk) {
  const std::string ev = chunk_event(kChat, "ignored", true);
  std::string_view json;
  ASSERT_TRUE(event_json(ev, json));
  simdjson::dom::parser p;
  element doc;
  ASSERT_TRUE(parse_json(p, json, doc));
  EXPECT_EQ(str(doc, "object"), "chat.completion.chunk");
  element c = first_choice(doc);
  EXPECT_TRUE(is_null(c, "finish_reason"));
  element delta;
  ASSERT_EQ(c["delta"].get(delta), simdjson::SUCCESS);
  EXPECT_EQ(str(delta, "role"), "assistant");
  EXPECT_EQ(str(delta, "content"), "");
}

TEST(OpenaiFormat, BuildsAChatContentChunk) {
  const std::string ev = chunk_event(kChat, "line\n\n\"two\" ");
  std::string_view json;
  ASSERT_TRUE(event_json(ev, json));
  simdjson::dom::parser p;
  element doc;
  ASSERT_TRUE(parse_json(p, json, doc));
  EXPECT_EQ(str(doc, "id"), "chatcmpl-1");
  EXPECT_EQ(str(doc, "model"), "gpt-4o");
  element c = first_choice(doc);
  EXPECT_TRUE(is_null(c, "finish_reason"));
  EXPECT_TRUE(is_null(c, "logprobs"));
  element delta;
  ASSERT_EQ(c["delta"].get(delta), simdjson::SUCCESS);
  EXPECT_EQ(str(delta, "content"), "line\n\n\"two\" ");
  element role;
  EXPECT_NE(delta["role"].get(role), simdjson::SUCCESS);
}

TEST(OpenaiFormat, BuildsAChatFinishChunkWithAnEmptyDelta) {
  const std::string ev = chunk_event(kChat, "", false, "stop");
  std::string_view json;
  ASSERT_TRUE(event_json(ev, json));
  simdjson::dom::parser p;
  element doc;
  ASSERT_TRUE(parse_json(p, json, doc));
  element c = first_choice(doc);
  EXPECT_EQ(str(c, "finish_reason"), "stop");
  simdjson::dom::object delta;
  ASSERT_EQ(c["delta"].get_object().get(delta), simdjson::SUCCESS);
  EXPECT_EQ(delta.size(), 0u);
}

TEST(OpenaiFormat, BuildsTextCompletionChunks) {
  std::string_view json;
  simdjson::dom::parser p;
  element doc;
  const std::string ev = chunk_event(kText, "word ");
  ASSERT_TRUE(event_json(ev, json));
  ASSERT_TRUE(parse_json(p, json, doc));
  EXPECT_EQ(str(doc, "object"), "text_completion");
  EXPECT_EQ(str(first_choice(doc), "text"), "word ");
  const std::string fin = chunk_event(kText, "", false, "length");
  ASSERT_TRUE(event_json(fin, json));
  ASSERT_TRUE(parse_json(p, json, doc));
  EXPECT_EQ(str(first_choice(doc), "finish_reason"), "length");
}

TEST(OpenaiFormat, BuildsAUsageChunkWithNoChoices) {
  const std::string ev = usage_event(kChat, {7, 5});
  std::string_view json;
  ASSERT_TRUE(event_json(ev, json));
  simdjson::dom::parser p;
  element doc;
  ASSERT_TRUE(parse_json(p, json, doc));
  EXPECT_EQ(str(doc, "object"), "chat.completion.chunk");
  simdjson::dom::array choices;
  ASSERT_EQ(doc["choices"].get_array().get(choices), simdjson::SUCCESS);
  EXPECT_EQ(choices.size(), 0u);
  expect_usage(doc, 7, 5);
}

TEST(OpenaiFormat, StreamsTheDemoAnswerAsValidChunks) {
  const std::string answer = demo_answer("say \"hi\"\nplease");
  std::string joined;
  simdjson::dom::parser p;
  for (std::string_view w : split_words(answer)) {
    const std::string ev = chunk_event(kChat, w);
    std::string_view json;
    ASSERT_TRUE(event_json(ev, json));
    element doc;
    ASSERT_TRUE(parse_json(p, json, doc));
    joined += str(first_choice(doc)["delta"].value(), "content");
  }
  EXPECT_EQ(joined, answer);
  EXPECT_EQ(kDoneEvent, "data: [DONE]\n\n");
}

// ---- embeddings_response -----------------------------------------------------------------------

// The embedding vectors of an embeddings list, as floats (float format) or decoded base64.
std::vector<std::vector<float>> vectors_of(const std::string& body, bool base64) {
  std::vector<std::vector<float>> out;
  simdjson::dom::parser p;
  element doc;
  EXPECT_TRUE(parse_json(p, body, doc));
  simdjson::dom::array data;
  EXPECT_EQ(doc["data"].get_array().get(data), simdjson::SUCCESS);
  int64_t index = 0;
  for (element item : data) {
    EXPECT_EQ(str(item, "object"), "embedding");
    EXPECT_EQ(num(item, "index"), index++);
    std::vector<float> vec;
    if (base64) {
      std::string_view b64;
      EXPECT_EQ(item["embedding"].get_string().get(b64), simdjson::SUCCESS);
      std::vector<unsigned char> bytes;
      EXPECT_TRUE(base64_decode(b64, bytes)) << b64;
      EXPECT_EQ(bytes.size() % sizeof(float), 0u);
      vec.resize(bytes.size() / sizeof(float));
      std::memcpy(vec.data(), bytes.data(), vec.size() * sizeof(float));  // little-endian host
    } else {
      simdjson::dom::array arr;
      EXPECT_EQ(item["embedding"].get_array().get(arr), simdjson::SUCCESS);
      for (element x : arr) {
        double d = 0;
        EXPECT_EQ(x.get_double().get(d), simdjson::SUCCESS);
        vec.push_back(static_cast<float>(d));
      }
    }
    out.push_back(std::move(vec));
  }
  return out;
}

TEST(OpenaiFormat, BuildsAValidEmbeddingsList) {
  const std::vector<std::string> inputs = {"hello", "world \"quoted\"", ""};
  const std::string body = embeddings_response("text-embedding-3-small", inputs, false);
  simdjson::dom::parser p;
  element doc;
  ASSERT_TRUE(parse_json(p, body, doc));
  EXPECT_EQ(str(doc, "object"), "list");
  EXPECT_EQ(str(doc, "model"), "text-embedding-3-small");
  element usage;
  ASSERT_EQ(doc["usage"].get(usage), simdjson::SUCCESS);
  const int64_t expected_tokens =
      estimate_tokens(inputs[0]) + estimate_tokens(inputs[1]) + estimate_tokens(inputs[2]);
  EXPECT_EQ(num(usage, "prompt_tokens"), expected_tokens);
  EXPECT_EQ(num(usage, "total_tokens"), expected_tokens);
  const auto vecs = vectors_of(body, false);
  ASSERT_EQ(vecs.size(), 3u);
  for (const auto& v : vecs) {
    ASSERT_EQ(v.size(), 8u);
    double norm = 0;
    for (float x : v) norm += static_cast<double>(x) * x;
    EXPECT_NEAR(norm, 1.0, 1e-4);  // unit vectors (up to the 6 printed decimals)
  }
}

TEST(OpenaiFormat, DecodesBase64EmbeddingsToTheFloatValues) {
  const std::vector<std::string> inputs = {"hello", "a longer input with ✓ unicode", "x"};
  const auto floats = vectors_of(embeddings_response("e", inputs, false), false);
  const auto decoded = vectors_of(embeddings_response("e", inputs, true), true);
  ASSERT_EQ(floats.size(), inputs.size());
  ASSERT_EQ(decoded.size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_EQ(decoded[i].size(), 8u) << i;
    ASSERT_EQ(floats[i].size(), 8u) << i;
    for (size_t d = 0; d < 8; ++d) {
      EXPECT_NEAR(decoded[i][d], floats[i][d], 1e-6) << i << "," << d;
    }
  }
}

TEST(OpenaiFormat, EncodesBase64WithPaddingForOtherDimensions) {
  // 8 floats = 32 bytes (one '=' of padding), 1 float = 4 bytes (two '='), 3 = 12 bytes (none).
  for (int dims : {1, 3, 8, 17}) {
    SCOPED_TRACE(dims);
    const auto decoded = vectors_of(embeddings_response("e", {"in"}, true, dims), true);
    const auto floats = vectors_of(embeddings_response("e", {"in"}, false, dims), false);
    ASSERT_EQ(decoded.size(), 1u);
    ASSERT_EQ(decoded[0].size(), static_cast<size_t>(dims));
    for (int d = 0; d < dims; ++d) EXPECT_NEAR(decoded[0][d], floats[0][d], 1e-6);
  }
}

TEST(OpenaiFormat, GivesTheSameInputTheSameEmbedding) {
  const std::string a = embeddings_response("e", {"same", "other", "same"}, false);
  const auto v = vectors_of(a, false);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], v[2]);
  EXPECT_NE(v[0], v[1]);
  EXPECT_EQ(a, embeddings_response("e", {"same", "other", "same"}, false));
}

TEST(OpenaiFormat, BuildsAnEmptyEmbeddingsListForNoInputs) {
  const std::string body = embeddings_response("e", {}, false);
  simdjson::dom::parser p;
  element doc;
  ASSERT_TRUE(parse_json(p, body, doc));
  simdjson::dom::array data;
  ASSERT_EQ(doc["data"].get_array().get(data), simdjson::SUCCESS);
  EXPECT_EQ(data.size(), 0u);
}

// ---- estimate_tokens ---------------------------------------------------------------------------

TEST(EstimateTokens, CountsAboutFourBytesPerTokenAndAtLeastOne) {
  EXPECT_EQ(estimate_tokens(""), 1);
  EXPECT_EQ(estimate_tokens("a"), 1);
  EXPECT_EQ(estimate_tokens("abcd"), 1);
  EXPECT_EQ(estimate_tokens("abcde"), 2);
  EXPECT_EQ(estimate_tokens("abcdefgh"), 2);
  EXPECT_EQ(estimate_tokens("abcdefghi"), 3);
  EXPECT_EQ(estimate_tokens(std::string(4000, 'x')), 1000);
}

// ---- demo --------------------------------------------------------------------------------------

TEST(DemoProvider, AnswersDeterministicallyAndEchoesOneLine) {
  EXPECT_EQ(demo_answer("hi"), demo_answer("hi"));
  EXPECT_NE(demo_answer("hi").find("You said: \"hi\"."), std::string::npos);
  EXPECT_NE(demo_answer("").find("You sent no user message."), std::string::npos);
  const std::string long_answer = demo_answer(std::string(300, 'a') + "\n");
  EXPECT_NE(long_answer.find(std::string(200, 'a') + "...\""), std::string::npos);
  EXPECT_EQ(demo_answer("a\nb\tc").find('\n'), std::string::npos);
}

TEST(DemoProvider, SplitsWordsKeepingTheirTrailingSpace) {
  EXPECT_EQ(split_words("a bc  d"), (std::vector<std::string_view>{"a ", "bc ", " ", "d"}));
  EXPECT_TRUE(split_words("").empty());
  EXPECT_EQ(split_words("end "), (std::vector<std::string_view>{"end "}));
}

}  // namespace
}  // namespace sluice::providers
