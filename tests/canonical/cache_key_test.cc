// Response cache keys (src/cache/key.h) and entries (src/cache/entry.h): golden cases of what
// is the same question and what is not, and entries that survive a round trip.
#include <gtest/gtest.h>

#include "cache/entry.h"
#include "cache/key.h"

namespace sluice::cache {
namespace {

std::string form(Api api, std::string_view body) {
  auto f = canonical_form(api, body);
  EXPECT_TRUE(f) << body;
  return f ? *f : std::string();
}

const char* kBase =
    R"({"model":"m","messages":[{"role":"user","content":"Hi there"}],"temperature":0.2,"seed":7})";

TEST(CacheKey, KeyOrderWhitespaceAndNonSemanticFieldsAreTheSameQuestion) {
  const std::string base = form(Api::chat, kBase);
  for (const char* same : {
           R"({"seed":7,"temperature":0.2,"messages":[{"content":"Hi there","role":"user"}],"model":"m"})",
           " {\n \"model\" : \"m\", \"messages\":[{\"role\":\"user\",\"content\":\"Hi there\"}],\n"
           " \"temperature\":0.2, \"seed\":7.0 } ",
           R"({"model":"m","messages":[{"role":"user","content":"Hi there"}],"temperature":0.2,"seed":7,"user":"u1","metadata":{"a":"b"},"stream":true,"stream_options":{"include_usage":true},"store":true,"service_tier":"auto"})",
           R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"Hi there"}]}],"temperature":0.2,"seed":7})",
           R"({"model":"m","messages":[{"role":"user","content":"Hi there"}],"temperature":0.2,"seed":7,"top_p":1,"n":1,"presence_penalty":0,"frequency_penalty":0.0,"logprobs":false,"stop":null,"tools":[]})",
       }) {
    EXPECT_EQ(form(Api::chat, same), base) << same;
  }
  // max_tokens and max_completion_tokens are one field; temperature 1 is the default.
  EXPECT_EQ(form(Api::chat, R"({"model":"m","messages":[],"max_tokens":10})"),
            form(Api::chat, R"({"model":"m","messages":[],"max_completion_tokens":10})"));
  EXPECT_EQ(form(Api::chat, R"({"model":"m","messages":[],"temperature":1})"),
            form(Api::chat, R"({"model":"m","messages":[]})"));
  EXPECT_EQ(form(Api::chat, R"({"model":"m","messages":[],"tool_choice":"none"})"),
            form(Api::chat, R"({"model":"m","messages":[]})"));
}

TEST(CacheKey, AnySemanticChangeIsAnotherQuestion) {
  const std::string base = form(Api::chat, kBase);
  for (const char* other : {
           R"({"model":"m","messages":[{"role":"user","content":"Hi there!"}],"temperature":0.2,"seed":7})",
           R"({"model":"m","messages":[{"role":"user","content":"Hi  there"}],"temperature":0.2,"seed":7})",
           R"({"model":"m","messages":[{"role":"system","content":"Hi there"}],"temperature":0.2,"seed":7})",
           R"({"model":"m2","messages":[{"role":"user","content":"Hi there"}],"temperature":0.2,"seed":7})",
           R"({"model":"m","messages":[{"role":"user","content":"Hi there"}],"temperature":0.3,"seed":7})",
           R"({"model":"m","messages":[{"role":"user","content":"Hi there"}],"temperature":0.2,"seed":8})",
           R"({"model":"m","messages":[{"role":"user","content":"Hi there"}],"temperature":0.2})",
           R"({"model":"m","messages":[{"role":"user","content":"Hi there"}],"temperature":0.2,"seed":7,"max_tokens":5})",
           R"({"model":"m","messages":[{"role":"user","content":"Hi there"}],"temperature":0.2,"seed":7,"response_format":{"type":"json_object"}})",
           R"({"model":"m","messages":[{"role":"user","content":"Hi there"}],"temperature":0.2,"seed":7,"tools":[{"type":"function","function":{"name":"f"}}]})",
           R"({"model":"m","messages":[{"role":"user","content":"Hi there"}],"temperature":0.2,"seed":7,"n":2})",
           R"({"model":"m","messages":[{"role":"user","content":"Hi there"}],"temperature":0.2,"seed":7,"stop":["x"]})",
       }) {
    EXPECT_NE(form(Api::chat, other), base) << other;
  }
  // tool_choice "auto" is the default only with tools.
  EXPECT_EQ(form(Api::chat, R"({"model":"m","tools":[{"t":1}],"tool_choice":"auto"})"),
            form(Api::chat, R"({"model":"m","tools":[{"t":1}]})"));
  EXPECT_NE(form(Api::chat, R"({"model":"m","tools":[{"t":1}],"tool_choice":"required"})"),
            form(Api::chat, R"({"model":"m","tools":[{"t":1}]})"));
}

TEST(CacheKey, AnthropicAndResponsesDefaults) {
  EXPECT_EQ(form(Api::messages, R"({"model":"c","max_tokens":5,"system":"Be brief","messages":[{"role":"user","content":"x"}],"temperature":1,"metadata":{"user_id":"u"}})"),
            form(Api::messages, R"({"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"system":[{"type":"text","text":"Be brief"}],"max_tokens":5,"model":"c","stream":true})"));
  EXPECT_NE(form(Api::messages, R"({"model":"c","max_tokens":5,"messages":[{"role":"user","content":"x"}]})"),
            form(Api::messages, R"({"model":"c","max_tokens":6,"messages":[{"role":"user","content":"x"}]})"));
  EXPECT_EQ(form(Api::responses, R"({"model":"r","input":"hi","store":false,"temperature":1})"),
            form(Api::responses, R"({"input":"hi","model":"r"})"));
  EXPECT_NE(form(Api::responses, R"({"model":"r","input":"hi","instructions":"x"})"),
            form(Api::responses, R"({"model":"r","input":"hi"})"));
}

TEST(CacheKey, FormIsStableAndRefusesNonObjects) {
  const std::string once = form(Api::chat, kBase);
  EXPECT_EQ(form(Api::chat, once), once);  // idempotent
  EXPECT_FALSE(canonical_form(Api::chat, "[1,2]"));
  EXPECT_FALSE(canonical_form(Api::chat, "not json"));
  EXPECT_FALSE(canonical_form(Api::chat, ""));
  // Big integers and non-integral numbers are kept as they are.
  EXPECT_NE(form(Api::chat, R"({"seed":9007199254740993})"), form(Api::chat, R"({"seed":9007199254740992})"));
  EXPECT_NE(form(Api::chat, R"({"temperature":0.5})"), form(Api::chat, R"({"temperature":0.50001})"));
}

TEST(CacheKey, ScopeSeparatesOwnersRoutesModelsAndEndpoints) {
  const std::string c = form(Api::chat, kBase);
  Scope s{"t:acme", "gpt-*", "openai:gpt-4o", "chat"};
  const std::string k = key_of(s, c);
  EXPECT_EQ(k.size(), 64u);
  EXPECT_EQ(key_of(s, c), k);
  for (int field = 0; field < 4; ++field) {
    Scope o = s;
    std::string* f[] = {&o.owner, &o.route, &o.upstream, &o.endpoint};
    *f[field] += "x";
    EXPECT_NE(key_of(o, c), k) << field;
  }
  // Length prefixes: moving bytes between fields is never the same key.
  EXPECT_NE(key_of(Scope{"ab", "c", "", ""}, ""), key_of(Scope{"a", "bc", "", ""}, ""));
}

TEST(CacheEntry, RoundTripKeepsEveryBlockAndFigure) {
  Entry e;
  e.answer.id = "chatcmpl-1";
  e.answer.model = "m";
  e.answer.stop_reason = canonical::StopReason::stop_sequence;
  e.answer.stop_sequence = "END";
  e.answer.usage = {10, 20, 3, 4, 5, true};
  canonical::Block think;
  think.kind = canonical::BlockKind::thinking;
  think.text = "hmm";
  think.signature = "sig==";
  canonical::Block text;
  text.text = "héllo \"world\"\n";
  canonical::Block call;
  call.kind = canonical::BlockKind::tool_use;
  call.tool_id = "call_1";
  call.tool_name = "f";
  call.tool_input = R"({"a":1})";
  e.answer.content = {think, text, call};
  e.stored_ms = 1234;
  e.duration_ms = 56;
  e.model = "served";
  auto back = decode_entry(encode_entry(e));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->answer.id, "chatcmpl-1");
  EXPECT_EQ(back->answer.stop_reason, canonical::StopReason::stop_sequence);
  EXPECT_EQ(back->answer.stop_sequence, "END");
  EXPECT_EQ(back->answer.usage.input, 10);
  EXPECT_EQ(back->answer.usage.output, 20);
  EXPECT_EQ(back->answer.usage.cache_read, 3);
  EXPECT_EQ(back->answer.usage.cache_creation, 4);
  EXPECT_EQ(back->answer.usage.reasoning, 5);
  EXPECT_TRUE(back->answer.usage.reported);
  ASSERT_EQ(back->answer.content.size(), 3u);
  EXPECT_EQ(back->answer.content[0].signature, "sig==");
  EXPECT_EQ(back->answer.content[1].text, "héllo \"world\"\n");
  EXPECT_EQ(back->answer.content[2].tool_input, R"({"a":1})");
  EXPECT_EQ(back->stored_ms, 1234);
  EXPECT_EQ(back->duration_ms, 56);
  EXPECT_EQ(back->model, "served");
  EXPECT_FALSE(decode_entry("{}"));
  EXPECT_FALSE(decode_entry("garbage"));
  EXPECT_FALSE(decode_entry(R"({"v":1,"stop":99,"blocks":[]})"));
  EXPECT_FALSE(decode_entry(R"({"v":1,"stop":1,"blocks":[{"k":42}]})"));
}

TEST(CacheEntry, OnlyCompleteSuccessfulAnswersAreStorable) {
  canonical::Response r;
  r.content.resize(1);
  for (auto [stop, ok] : {std::pair{canonical::StopReason::end_turn, true},
                          {canonical::StopReason::max_tokens, true},
                          {canonical::StopReason::stop_sequence, true},
                          {canonical::StopReason::unset, false},
                          {canonical::StopReason::error, false},
                          {canonical::StopReason::refusal, false},
                          {canonical::StopReason::pause_turn, false},
                          {canonical::StopReason::tool_use, false}}) {
    r.stop_reason = stop;
    EXPECT_EQ(storable(r, false), ok) << static_cast<int>(stop);
  }
  r.stop_reason = canonical::StopReason::tool_use;
  EXPECT_TRUE(storable(r, true));
  r.stop_reason = canonical::StopReason::end_turn;
  r.content[0].kind = canonical::BlockKind::tool_use;
  EXPECT_FALSE(storable(r, false));
  EXPECT_TRUE(storable(r, true));
}

}  // namespace
}  // namespace sluice::cache
