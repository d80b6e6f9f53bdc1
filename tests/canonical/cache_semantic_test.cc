// The semantic cache tier's pure parts (src/cache/semantic.h): which requests are single-turn
// questions, that only the user's text may differ between two requests that match, and the
// lexical guards that refuse near misses.
#include "cache/semantic.h"

#include <gtest/gtest.h>

namespace sluice::cache {
namespace {

std::optional<Question> question(Api api, std::string_view body) {
  auto q = semantic_question(api, body);
  EXPECT_TRUE(q) << body;
  return q ? *q : std::nullopt;
}

TEST(SemanticQuestion, ChatSingleTurnWithInstructions) {
  auto q = question(Api::chat, R"({"model":"m","messages":[{"role":"system","content":"be brief"},
      {"role":"developer","content":[{"type":"text","text":"no lists"}]},
      {"role":"user","content":[{"type":"text","text":"What is"},{"type":"text","text":"HNSW?"}]}]})");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->text, "What is\nHNSW?");
  EXPECT_EQ(q->rest.find("HNSW"), std::string::npos);  // the text is out of the rest
  EXPECT_NE(q->rest.find("be brief"), std::string::npos);
}

TEST(SemanticQuestion, OnlyTheTextMayDiffer) {
  auto a = question(Api::chat, R"({"model":"m","messages":[{"role":"user","content":"What is HNSW?"}],"temperature":0.2})");
  auto b = question(Api::chat, R"({"temperature":0.2,"messages":[{"content":[{"type":"text","text":"what's hnsw"}],"role":"user"}],"model":"m","stream":true,"user":"u1"})");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->rest, b->rest);  // key order, stream, user, string vs part: the same rest
  EXPECT_NE(a->text, b->text);
  for (const char* other : {
           R"({"model":"m","messages":[{"role":"user","content":"What is HNSW?"}],"temperature":0.3})",
           R"({"model":"n","messages":[{"role":"user","content":"What is HNSW?"}],"temperature":0.2})",
           R"({"model":"m","messages":[{"role":"system","content":"x"},{"role":"user","content":"What is HNSW?"}],"temperature":0.2})",
           R"({"model":"m","messages":[{"role":"user","content":"What is HNSW?"}],"temperature":0.2,"response_format":{"type":"json_object"}})",
           R"({"model":"m","messages":[{"role":"user","content":"What is HNSW?"}],"temperature":0.2,"seed":7})"}) {
    auto o = question(Api::chat, other);
    ASSERT_TRUE(o) << other;
    EXPECT_NE(o->rest, a->rest) << other;
  }
}

TEST(SemanticQuestion, IneligibleRequests) {
  for (const char* body : {
           // multi-turn
           R"({"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]})",
           R"({"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":"c"}]})",
           // tools
           R"({"model":"m","messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"f"}}]})",
           R"({"model":"m","messages":[{"role":"user","content":"a"}],"functions":[{"name":"f"}]})",
           // non-text content, audio out
           R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x/y.png"}}]}]})",
           R"({"model":"m","messages":[{"role":"user","content":"a"}],"modalities":["text","audio"]})",
           // a tool result, no user message, empty text
           R"({"model":"m","messages":[{"role":"tool","content":"a","tool_call_id":"x"}]})",
           R"({"model":"m","messages":[{"role":"system","content":"a"}]})",
           R"({"model":"m","messages":[{"role":"user","content":"  "}]})",
           R"({"model":"m"})"}) {
    auto q = semantic_question(Api::chat, body);
    ASSERT_TRUE(q) << body;
    EXPECT_FALSE(q->has_value()) << body;
  }
  EXPECT_FALSE(semantic_question(Api::chat, "[1]"));  // not an object: an error
}

TEST(SemanticQuestion, OtherApis) {
  auto m = question(Api::messages, R"({"model":"m","system":"s","max_tokens":9,"messages":[{"role":"user","content":[{"type":"text","text":"hi there"}]}]})");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->text, "hi there");
  EXPECT_FALSE(question(Api::messages, R"({"model":"m","system":[{"type":"image"}],"messages":[{"role":"user","content":"x"}]})"));
  auto r = question(Api::responses, R"({"model":"m","input":"hello","instructions":"short"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->text, "hello");
  auto r2 = question(Api::responses, R"({"model":"m","input":[{"role":"developer","content":"d"},{"type":"message","role":"user","content":[{"type":"input_text","text":"hello"}]}]})");
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->text, "hello");
  EXPECT_FALSE(question(Api::responses, R"({"model":"m","input":[{"type":"function_call_output","call_id":"c","output":"x"}]})"));
  auto g = question(Api::gemini, R"({"contents":[{"role":"user","parts":[{"text":"a"},{"text":"b"}]}]})");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->text, "a\nb");
  EXPECT_FALSE(question(Api::gemini, R"({"contents":[{"role":"user","parts":[{"inlineData":{"data":"x"}}]}]})"));
  EXPECT_FALSE(question(Api::gemini, R"({"contents":[{"role":"user","parts":[{"text":"a"}]},{"role":"model","parts":[{"text":"b"}]}]})"));
}

TEST(SemanticGuards, ParaphrasesPass) {
  for (auto [a, b] : std::initializer_list<std::pair<const char*, const char*>>{
           {"What is the capital of France?", "what's the capital of france"},
           {"How do I reverse a list in Python?", "how do i reverse a list in python please"},
           {"Explain the CAP theorem", "Explain the CAP theorem."},
           {"Convert 5 km to miles", "convert 5 km into miles"},
           {"I don't understand recursion", "I do not understand recursion"},
           {"What is the colour of the sky?", "what is the color of the sky"},
           {"How do I sort lists in Python?", "How can I sort a list in Python quickly?"}}) {
    EXPECT_EQ(guard_refuses(a, b), nullptr) << a << " | " << b;
  }
}

TEST(SemanticGuards, NearMissesRefused) {
  struct Case {
    const char *a, *b, *why;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"What is 12 times 13?", "What is 12 times 14?", "numbers"},
           {"What is 1,000 divided by 8?", "What is 1000 divided by 9?", "numbers"},
           {"Name two French kings", "Name three French kings", "numbers"},
           {"Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?", "negation"},
           {"Why does my code work?", "Why doesn't my code work?", "negation"},
           {"What is the capital of Australia?", "What is the capital of Austria?", "names"},
           {"How do I install numpy_v2?", "How do I install numpy_v3?", "names"},
           {"What does \"sudo rm\" do?", "What does \"sudo ls\" do?", "names"},
           {"Sort the list in ascending order", "Sort the list in descending order", "opposites"},
           {"Should I buy Tesla stock?", "Should I sell Tesla stock?", "opposites"},
           {"What happened before the war?", "What happened after the war?", "opposites"},
           {"How do I parse JSON in python?", "How do I parse JSON in julia?", "words"},
           {"Python: how do I read a file?", "Julia: how do I read a file?", "words"},
           {"Is it safe to mix bleach and vinegar?", "Is it unsafe to mix bleach and vinegar?", "words"},
           {"Why does my function run asynchronously?", "Why does my function run synchronously?", "words"},
           {"How do I convert a PDF file to a Word document?", "How do I convert a Word document to a PDF file?", "order"},
           {"convert kilometers to miles", "convert miles to kilometers", "order"},
           {"How many kilometers are in 5 miles?", "How many miles are in 5 kilometers?", "order"},
           {"How does the cache interact with the queue?", "How does the queue interact with the cache?", "order"},
           {"convert a PDF to a Word doc", "convert a Word doc to PDF format", "order"}}) {
    const char* why = guard_refuses(c.a, c.b);
    ASSERT_NE(why, nullptr) << c.a << " | " << c.b;
    EXPECT_STREQ(why, c.why) << c.a << " | " << c.b;
    EXPECT_NE(guard_refuses(c.b, c.a), nullptr);  // both ways round
  }
}

}  // namespace
}  // namespace sluice::cache
