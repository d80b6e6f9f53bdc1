// sessions/extract.h: the prompts of the work after a turn and the readers of their answers.
#include "sessions/extract.h"

#include <gtest/gtest.h>

#include "canonical/json.h"

namespace sluice::sessions {
namespace {

namespace json = canonical::json;

TEST(SessionExtract, FactsFromPlainFencedAndProseAnswers) {
  const char* plain = R"({"facts":[{"key":"Home City","text":"Lives in Paris","weight":0.8}]})";
  auto f = parse_facts(plain);
  ASSERT_TRUE(f);
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].key, "home_city");
  EXPECT_EQ((*f)[0].text, "Lives in Paris");
  EXPECT_DOUBLE_EQ((*f)[0].weight, 0.8);

  auto fenced = parse_facts("Here you go:\n```json\n{\"facts\": [{\"key\": \"pet\", \"text\": "
                            "\"Has a dog\"}]}\n```\nAnything else?");
  ASSERT_TRUE(fenced);
  ASSERT_EQ(fenced->size(), 1u);
  EXPECT_EQ((*fenced)[0].key, "pet");
  EXPECT_DOUBLE_EQ((*fenced)[0].weight, 0.5);  // default

  auto none = parse_facts(R"({"facts": []})");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(SessionExtract, BadEntriesAreSkippedAndBadAnswersRefused) {
  auto f = parse_facts(R"({"facts":[{"key":"","text":"x"},{"key":"k"},{"text":"no key"},
                        "str", {"key":"!!!","text":"punctuation only key"},
                        {"key":"w","text":"clamped","weight":7},
                        {"key":"n","text":"negative","weight":-1}]})");
  ASSERT_TRUE(f);
  ASSERT_EQ(f->size(), 2u);
  EXPECT_DOUBLE_EQ((*f)[0].weight, 1.0);
  EXPECT_DOUBLE_EQ((*f)[1].weight, 0.0);
  EXPECT_FALSE(parse_facts("I cannot help with that."));
  EXPECT_FALSE(parse_facts(R"({"memories": []})"));
  EXPECT_FALSE(parse_facts(R"({"facts": "none"})"));
  EXPECT_FALSE(parse_facts("{ not json }"));
  EXPECT_FALSE(parse_facts(""));
}

TEST(SessionExtract, FactsAreBounded) {
  std::string many = R"({"facts":[)";
  for (int i = 0; i < 50; ++i) {
    if (i) many += ',';
    many += R"({"key":"k)" + std::to_string(i) + R"(","text":")" + std::string(5000, 'x') + "\"}";
  }
  many += "]}";
  auto f = parse_facts(many, 20);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->size(), 20u);
  EXPECT_EQ((*f)[0].text.size(), 1000u);
  auto long_key = parse_facts(R"({"facts":[{"key":")" + std::string(300, 'a') + R"(","text":"t"}]})");
  ASSERT_TRUE(long_key);
  EXPECT_EQ((*long_key)[0].key.size(), 64u);
}

TEST(SessionExtract, TranscriptNamesRolesToolsAndIsCutOnACharacter) {
  std::vector<canonical::Message> msgs(2);
  msgs[0].role = canonical::Role::user;
  canonical::Block t;
  t.kind = canonical::BlockKind::text;
  t.text = "Where is the café?";
  msgs[0].content.push_back(t);
  msgs[1].role = canonical::Role::assistant;
  canonical::Block call;
  call.kind = canonical::BlockKind::tool_use;
  call.tool_name = "find";
  call.tool_input = R"({"q":"café"})";
  msgs[1].content.push_back(call);
  const std::string all = transcript(msgs, 10'000);
  EXPECT_EQ(all, "user: Where is the café?\nassistant called find({\"q\":\"café\"})");
  // Cut inside "é" (2 bytes at offsets 22-23): the cut goes before it.
  const std::string cut = transcript(msgs, 23);
  EXPECT_EQ(cut, "user: Where is the caf");
}

TEST(SessionExtract, RequestsAreChatBodiesForTheModel) {
  auto body = canonical::parse_json(extraction_request("helper", "user: hi", {"home_city", "pet"}));
  ASSERT_TRUE(body);
  const json::object& o = body->as_object();
  EXPECT_EQ(canonical::str(o, "model"), "helper");
  const json::array& m = o.at("messages").as_array();
  ASSERT_EQ(m.size(), 2u);
  const std::string user(m[1].as_object().at("content").as_string());
  EXPECT_NE(user.find("home_city, pet"), std::string::npos);
  EXPECT_NE(user.find("user: hi"), std::string::npos);
  EXPECT_FALSE(o.at("stream").as_bool());
  auto sum = canonical::parse_json(summary_request("s", "user: a"));
  ASSERT_TRUE(sum);
  EXPECT_EQ(canonical::str(sum->as_object(), "model"), "s");
  auto emb = canonical::parse_json(embeddings_request("e", "text"));
  ASSERT_TRUE(emb);
  EXPECT_EQ(canonical::str(emb->as_object(), "input"), "text");
}

TEST(SessionExtract, AnswerReaders) {
  auto text = completion_text(R"({"choices":[{"message":{"role":"assistant","content":"hi"}}]})");
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, "hi");
  EXPECT_FALSE(completion_text(R"({"choices":[]})"));
  EXPECT_FALSE(completion_text("nope"));
  auto vec = embedding_of(R"({"data":[{"embedding":[0.5,-1,2]}]})");
  ASSERT_TRUE(vec);
  EXPECT_EQ(*vec, (std::vector<float>{0.5f, -1.0f, 2.0f}));
  EXPECT_FALSE(embedding_of(R"({"data":[{"embedding":"AAAA"}]})"));
  EXPECT_FALSE(embedding_of(R"({"data":[{"embedding":[1,"x"]}]})"));
  EXPECT_FALSE(embedding_of(R"({"data":[{"embedding":[1e999]}]})"));
  EXPECT_FALSE(embedding_of(R"({"data":[]})"));
}

}  // namespace
}  // namespace sluice::sessions
