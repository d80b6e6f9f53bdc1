// The Anthropic Messages API codec, unary side: client requests, answers and errors
// (frontends/anthropic) and upstream requests, answers and errors (providers/anthropic).
// Streams are in anthropic_stream_test.cc.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "canonical/codec.h"
#include "canonical/json.h"

namespace sluice::canonical {
namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(SLUICE_TESTDATA) + "/anthropic/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json::value parse(std::string_view text) {
  auto v = parse_json(text);
  EXPECT_TRUE(v.ok()) << text;
  return v.ok() ? *v : json::value{};
}

Request decode_ok(std::string_view body) {
  auto r = anthropic::decode_request(body, {});
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Request{};
}

Error decode_err(std::string_view body) {
  auto r = anthropic::decode_request(body, {});
  EXPECT_FALSE(r.ok()) << body;
  return r.ok() ? Error{} : r.error();
}

Block text_block(std::string text) {
  Block b;
  b.text = std::move(text);
  return b;
}

// ---- client side: decode_request ------------------------------------------------------------

TEST(AnthropicCodecRequest, DecodesEveryFieldOfAFullRequest) {
  const Request r = decode_ok(fixture("request_full.json"));
  EXPECT_EQ(r.model, "claude-sonnet-4-5");
  EXPECT_EQ(r.max_tokens, 2048);
  ASSERT_EQ(r.system.size(), 2u);
  EXPECT_EQ(r.system[0].text, "You are a weather assistant.");
  EXPECT_EQ(r.system[1].text, "Answer briefly.");
  ASSERT_EQ(r.messages.size(), 3u);

  const Message& u0 = r.messages[0];
  EXPECT_EQ(u0.role, Role::user);
  ASSERT_EQ(u0.content.size(), 3u);
  EXPECT_EQ(u0.content[1].kind, BlockKind::image);
  EXPECT_EQ(u0.content[1].image_media_type, "image/png");
  EXPECT_EQ(u0.content[1].image_data, "iVBORw0KGgo=");
  EXPECT_EQ(u0.content[2].kind, BlockKind::image);
  EXPECT_EQ(u0.content[2].image_url, "https://example.com/cat.jpg");

  const Message& a = r.messages[1];
  EXPECT_EQ(a.role, Role::assistant);
  ASSERT_EQ(a.content.size(), 5u);
  EXPECT_EQ(a.content[0].kind, BlockKind::thinking);
  EXPECT_EQ(a.content[0].text, "I should call the tool.");
  EXPECT_EQ(a.content[0].signature, "EqQBCgIYAhIMsig==");
  EXPECT_EQ(a.content[1].kind, BlockKind::redacted_thinking);
  EXPECT_EQ(a.content[1].data.substr(0, 10), "EmwKAhgBEg");
  EXPECT_EQ(a.content[3].kind, BlockKind::tool_use);
  EXPECT_EQ(a.content[3].tool_id, "toolu_01A");
  EXPECT_EQ(a.content[3].tool_name, "get_weather");
  EXPECT_EQ(a.content[3].tool_input, R"({"location":"Paris"})");
  EXPECT_EQ(a.content[4].tool_input, "{}");

  const Message& u1 = r.messages[2];
  ASSERT_EQ(u1.content.size(), 3u);
  EXPECT_EQ(u1.content[0].kind, BlockKind::tool_result);
  EXPECT_EQ(u1.content[0].tool_id, "toolu_01A");
  EXPECT_EQ(u1.content[0].tool_name, "get_weather");  // looked up from the tool_use
  ASSERT_EQ(u1.content[0].content.size(), 1u);
  EXPECT_EQ(u1.content[0].content[0].text, "18 C, sunny");
  EXPECT_FALSE(u1.content[0].is_error);
  EXPECT_EQ(u1.content[1].tool_name, "get_time");
  EXPECT_TRUE(u1.content[1].is_error);
  EXPECT_EQ(u1.content[1].content[0].text, "clock unavailable");
  EXPECT_EQ(u1.content[2].text, "Thanks!");

  ASSERT_EQ(r.tools.size(), 2u);  // the server tool (web_search) is dropped
  EXPECT_EQ(r.tools[0].name, "get_weather");
  EXPECT_EQ(r.tools[0].description, "Current weather");
  EXPECT_EQ(parse(r.tools[0].parameters).as_object().at("required").as_array().size(), 1u);
  EXPECT_EQ(r.tools[1].description, "");
  EXPECT_EQ(r.tool_choice.kind, ToolChoiceKind::auto_);
  EXPECT_EQ(r.parallel_tool_calls, false);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n\nHuman:", "END"}));
  EXPECT_EQ(r.temperature, 1.0);
  EXPECT_EQ(r.top_p, 0.9);
  EXPECT_EQ(r.top_k, 40);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.thinking_budget, 1024);
  EXPECT_EQ(r.user, "user-1234");
}

TEST(AnthropicCodecRequest, StringContentAndStringSystemAreTextBlocks) {
  const Request r = decode_ok(
      R"({"model":"m","max_tokens":10,"system":"Be terse.","messages":[
          {"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},
          {"role":"user","content":"Bye"}]})");
  ASSERT_EQ(r.system.size(), 1u);
  EXPECT_EQ(r.system[0].text, "Be terse.");
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[1].role, Role::assistant);
  EXPECT_EQ(r.messages[1].content[0].text, "Hello");
  EXPECT_EQ(r.messages[2].content[0].text, "Bye");
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.tool_choice.kind, ToolChoiceKind::unset);
  EXPECT_FALSE(r.parallel_tool_calls.has_value());
}

TEST(AnthropicCodecRequest, ToolChoiceKinds) {
  auto choice = [](std::string tc) {
    return decode_ok(R"({"model":"m","max_tokens":5,"messages":[],"tool_choice":)" + tc + "}")
        .tool_choice;
  };
  EXPECT_EQ(choice(R"({"type":"auto"})").kind, ToolChoiceKind::auto_);
  EXPECT_EQ(choice(R"({"type":"any"})").kind, ToolChoiceKind::required);
  EXPECT_EQ(choice(R"({"type":"none"})").kind, ToolChoiceKind::none);
  const ToolChoice named = choice(R"({"type":"tool","name":"get_weather"})");
  EXPECT_EQ(named.kind, ToolChoiceKind::named);
  EXPECT_EQ(named.name, "get_weather");
  EXPECT_EQ(
      decode_err(R"({"model":"m","max_tokens":5,"messages":[],"tool_choice":{"type":"tool"}})")
          .param,
      "tool_choice.name");
  EXPECT_EQ(
      decode_err(R"({"model":"m","max_tokens":5,"messages":[],"tool_choice":{"type":"x"}})").param,
      "tool_choice.type");
}

TEST(AnthropicCodecRequest, MissingOrIllTypedRequiredFieldsName400Params) {
  Error e = decode_err(R"({"model":"m","messages":[]})");
  EXPECT_EQ(e.code, Errc::bad_request);
  EXPECT_EQ(e.message, "max_tokens: Field required");
  EXPECT_EQ(e.param, "max_tokens");
  EXPECT_EQ(decode_err(R"({"max_tokens":1,"messages":[]})").param, "model");
  EXPECT_EQ(decode_err(R"({"model":"m","max_tokens":"x","messages":[]})").param, "max_tokens");
  EXPECT_EQ(decode_err(R"({"model":"m","max_tokens":0,"messages":[]})").param, "max_tokens");
  EXPECT_EQ(decode_err(R"({"model":"m","max_tokens":1})").param, "messages");
  EXPECT_EQ(decode_err(R"({"model":"m","max_tokens":1,"messages":{}})").param, "messages");
  EXPECT_EQ(
      decode_err(R"({"model":"m","max_tokens":1,"messages":[{"role":"system","content":"x"}]})")
          .param,
      "messages[0].role");
  EXPECT_EQ(decode_err(R"({"model":"m","max_tokens":1,"messages":[{"role":"user"}]})").param,
            "messages[0].content");
  EXPECT_EQ(
      decode_err(R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":5}]})").param,
      "messages[0].content");
  EXPECT_EQ(decode_err(R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":[
                {"type":"text","text":"a"},{"type":"text"}]}]})")
                .param,
            "messages[0].content[1].text");
  EXPECT_EQ(decode_err(R"({"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":[
                {"type":"tool_use","id":"t","name":"f","input":"[1]"}]}]})")
                .param,
            "messages[0].content[0].input");
  EXPECT_EQ(
      decode_err(R"({"model":"m","max_tokens":1,"messages":[],"tools":[{"name":"f"}]})").param,
      "tools[0].input_schema");
  EXPECT_EQ(
      decode_err(R"({"model":"m","max_tokens":1,"messages":[],"system":[{"type":"image"}]})").param,
      "system[0].type");
  EXPECT_EQ(decode_err(R"({"model":"m","max_tokens":1,"messages":[],"stop_sequences":[1]})").param,
            "stop_sequences[0]");
  EXPECT_EQ(decode_err(R"({"model":"m","max_tokens":1,"messages":[],"temperature":"hot"})").param,
            "temperature");
}

TEST(AnthropicCodecRequest, UnsupportedBlockTypesAre400sNamingTheBlock) {
  Error e = decode_err(R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":[
      {"type":"text","text":"read this"},
      {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBER"}}
      ]}]})");
  EXPECT_EQ(e.param, "messages[0].content[1].type");
  EXPECT_NE(e.message.find("document"), std::string::npos);
  e = decode_err(R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":[
      {"type":"image","source":{"type":"file","file_id":"file_1"}}]}]})");
  EXPECT_EQ(e.param, "messages[0].content[0].source.type");
  e = decode_err(R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":[
      {"type":"tool_result","tool_use_id":"t","content":[{"type":"document"}]}]}]})");
  EXPECT_EQ(e.param, "messages[0].content[0].content[0].type");
}

TEST(AnthropicCodecRequest, MalformedBodiesAreClear400s) {
  for (std::string_view body : {"", "{", "[]", "null", "\"x\"", R"({"model":)",
                                R"({"model":"m","max_tokens":1,"messages":[1]})",
                                R"({"model":"m","max_tokens":1,"messages":[],"tools":[7]})"}) {
    auto r = anthropic::decode_request(body, {});
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().code, Errc::bad_request);
    EXPECT_FALSE(r.error().message.empty());
  }
}

// ---- client side: encode_response / encode_error ----------------------------------------------

TEST(AnthropicCodecResponse, EncodesEveryBlockKindStopAndUsage) {
  Response r;
  r.id = "msg_1";
  r.model = "claude-x";
  Block thinking;
  thinking.kind = BlockKind::thinking;
  thinking.text = "hmm";
  thinking.signature = "sig";
  Block redacted;
  redacted.kind = BlockKind::redacted_thinking;
  redacted.data = "opaque";
  Block tool;
  tool.kind = BlockKind::tool_use;
  tool.tool_id = "toolu_1";
  tool.tool_name = "f";
  tool.tool_input = R"({"a":1})";
  Block raw = tool;
  raw.tool_input = "not json";
  r.content = {thinking, redacted, text_block("Hi"), tool, raw};
  r.stop_reason = StopReason::stop_sequence;
  r.stop_sequence = "END";
  r.usage = {.input = 10, .output = 20, .cache_read = 30, .cache_creation = 40};
  const json::value v = parse(anthropic::encode_response(r, {}));
  const json::value want = parse(R"({"id":"msg_1","type":"message","role":"assistant",
      "model":"claude-x","content":[
        {"type":"thinking","thinking":"hmm","signature":"sig"},
        {"type":"redacted_thinking","data":"opaque"},
        {"type":"text","text":"Hi"},
        {"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}},
        {"type":"tool_use","id":"toolu_1","name":"f","input":{"_raw_arguments":"not json"}}],
      "stop_reason":"stop_sequence","stop_sequence":"END",
      "usage":{"input_tokens":10,"output_tokens":20,"cache_creation_input_tokens":40,
               "cache_read_input_tokens":30}})");
  EXPECT_EQ(v, want) << v;
}

TEST(AnthropicCodecResponse, GeneratesIdsAndWritesNullStopSequence) {
  Response r;
  Block tool;
  tool.kind = BlockKind::tool_use;
  tool.tool_name = "f";
  r.content = {tool};
  r.stop_reason = StopReason::tool_use;
  const json::object o = parse(anthropic::encode_response(r, {})).as_object();
  EXPECT_EQ(o.at("id").as_string().subview().substr(0, 6), "msg_01");
  EXPECT_EQ(o.at("id").as_string().size(), 28u);
  EXPECT_TRUE(o.at("stop_sequence").is_null());
  EXPECT_EQ(o.at("stop_reason"), "tool_use");
  const json::object& block = o.at("content").as_array()[0].as_object();
  EXPECT_EQ(block.at("id").as_string().subview().substr(0, 8), "toolu_01");
  EXPECT_EQ(block.at("input"), json::object{});
}

TEST(AnthropicCodecResponse, EveryStopReasonHasItsAnthropicName) {
  const std::pair<StopReason, std::string_view> cases[] = {
      {StopReason::unset, "end_turn"},        {StopReason::end_turn, "end_turn"},
      {StopReason::max_tokens, "max_tokens"}, {StopReason::stop_sequence, "stop_sequence"},
      {StopReason::tool_use, "tool_use"},     {StopReason::refusal, "refusal"},
      {StopReason::pause_turn, "pause_turn"}, {StopReason::error, "end_turn"}};
  for (const auto& [reason, name] : cases) {
    Response r;
    r.stop_reason = reason;
    EXPECT_EQ(parse(anthropic::encode_response(r, {})).as_object().at("stop_reason"),
              json::value(json::string(name)));
  }
}

TEST(AnthropicCodecResponse, ErrorBodiesUseAnthropicTypes) {
  const ErrorBody e = anthropic::encode_error(529, "Overloaded");
  EXPECT_EQ(e.status, 529);
  EXPECT_EQ(parse(e.body), parse(R"({"type":"error","error":{"type":"overloaded_error",
                                      "message":"Overloaded"}})"));
  EXPECT_EQ(parse(anthropic::encode_error(400, "bad").body)
                .as_object()
                .at("error")
                .as_object()
                .at("type"),
            "invalid_request_error");
  EXPECT_EQ(parse(anthropic::encode_error(413, "big").body)
                .as_object()
                .at("error")
                .as_object()
                .at("type"),
            "request_too_large");
  EXPECT_EQ(
      parse(anthropic::encode_error(502, "x").body).as_object().at("error").as_object().at("type"),
      "api_error");
}

// ---- upstream side: encode_request ---------------------------------------------------------

TEST(AnthropicCodecUpstreamRequest, MergesSameRoleTurnsWithToolResultsFirst) {
  Request r;
  r.model = "alias";
  r.system = {text_block("sys")};
  Message u1{Role::user, {text_block("Weather?")}};
  Block call;
  call.kind = BlockKind::tool_use;
  call.tool_id = "call_1";
  call.tool_name = "get_weather";
  call.tool_input = R"({"city":"Paris"})";
  Block unsigned_thought;
  unsigned_thought.kind = BlockKind::thinking;
  unsigned_thought.text = "no signature";
  Message a1{Role::assistant, {unsigned_thought, text_block("Calling."), call}};
  Block result;
  result.kind = BlockKind::tool_result;
  result.tool_id = "call_1";
  result.content = {text_block("sunny")};
  // OpenAI-shaped history: a user text, then the tool's answer as its own user turn.
  Message u2{Role::user, {text_block("Also, hurry.")}};
  Message u3{Role::user, {result}};
  r.messages = {u1, a1, u2, u3};
  const json::value v = parse(anthropic::encode_request(r, "claude-up"));
  const json::value want = parse(R"({"model":"claude-up","max_tokens":4096,"system":"sys",
      "messages":[
        {"role":"user","content":[{"type":"text","text":"Weather?"}]},
        {"role":"assistant","content":[{"type":"text","text":"Calling."},
          {"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}}]},
        {"role":"user","content":[
          {"type":"tool_result","tool_use_id":"call_1","content":"sunny"},
          {"type":"text","text":"Also, hurry."}]}]})");
  EXPECT_EQ(v, want) << v;
}

TEST(AnthropicCodecUpstreamRequest, EncodesToolsChoicesSamplingThinkingAndUser) {
  Request r;
  r.max_tokens = 100;
  r.system = {text_block("a"), text_block("b")};
  r.messages = {Message{Role::user, {text_block("x")}}};
  r.tools = {Tool{"f", "does f", R"({"type":"object","properties":{"q":{"type":"string"}}})"},
             Tool{"g", "", "not a schema"}};
  r.tool_choice = {ToolChoiceKind::named, "f"};
  r.parallel_tool_calls = false;
  r.stop = {"END"};
  r.temperature = 0.5;
  r.top_p = 0.25;
  r.top_k = 7;
  r.stream = true;
  r.thinking_budget = 2000;
  r.user = "u-1";
  const json::value v = parse(anthropic::encode_request(r, "up"));
  const json::value want = parse(R"({"model":"up","max_tokens":100,
      "system":[{"type":"text","text":"a"},{"type":"text","text":"b"}],
      "messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
      "tools":[{"name":"f","description":"does f",
                "input_schema":{"type":"object","properties":{"q":{"type":"string"}}}},
               {"name":"g","input_schema":{"type":"object"}}],
      "tool_choice":{"type":"tool","name":"f","disable_parallel_tool_use":true},
      "stop_sequences":["END"],"temperature":0.5,"top_p":0.25,"top_k":7,"stream":true,
      "thinking":{"type":"enabled","budget_tokens":2000},"metadata":{"user_id":"u-1"}})");
  EXPECT_EQ(v, want) << v;
}

TEST(AnthropicCodecUpstreamRequest, ToolChoiceMapping) {
  auto tool_choice = [](ToolChoiceKind kind, std::optional<bool> parallel) {
    Request r;
    r.tools = {Tool{"f", "", R"({"type":"object"})"}};
    r.tool_choice = {kind, "f"};
    r.parallel_tool_calls = parallel;
    const json::object o = parse(anthropic::encode_request(r, "m")).as_object();
    const json::value* tc = o.if_contains("tool_choice");
    return tc ? *tc : json::value{};
  };
  EXPECT_TRUE(tool_choice(ToolChoiceKind::unset, std::nullopt).is_null());
  EXPECT_TRUE(tool_choice(ToolChoiceKind::unset, true).is_null());
  EXPECT_EQ(tool_choice(ToolChoiceKind::unset, false),
            parse(R"({"type":"auto","disable_parallel_tool_use":true})"));
  EXPECT_EQ(tool_choice(ToolChoiceKind::auto_, std::nullopt), parse(R"({"type":"auto"})"));
  EXPECT_EQ(tool_choice(ToolChoiceKind::required, std::nullopt), parse(R"({"type":"any"})"));
  EXPECT_EQ(tool_choice(ToolChoiceKind::required, false),
            parse(R"({"type":"any","disable_parallel_tool_use":true})"));
  EXPECT_EQ(tool_choice(ToolChoiceKind::named, std::nullopt),
            parse(R"({"type":"tool","name":"f"})"));
  EXPECT_EQ(tool_choice(ToolChoiceKind::none, false), parse(R"({"type":"none"})"));
  // No tools: Anthropic rejects a tool_choice alone.
  Request bare;
  bare.tool_choice.kind = ToolChoiceKind::required;
  EXPECT_FALSE(parse(anthropic::encode_request(bare, "m")).as_object().contains("tool_choice"));
}

TEST(AnthropicCodecUpstreamRequest, ReasoningEffortBecomesAThinkingBudget) {
  auto encode = [](std::string effort, std::optional<int64_t> budget,
                   std::optional<int64_t> max_tokens) {
    Request r;
    r.reasoning_effort = std::move(effort);
    r.thinking_budget = budget;
    r.max_tokens = max_tokens;
    return parse(anthropic::encode_request(r, "m")).as_object();
  };
  auto budget_of = [](const json::object& o) -> int64_t {
    const json::value* t = o.if_contains("thinking");
    return t ? t->as_object().at("budget_tokens").as_int64() : -1;
  };
  EXPECT_EQ(budget_of(encode("low", std::nullopt, 50000)), 1024);
  EXPECT_EQ(budget_of(encode("medium", std::nullopt, 50000)), 4096);
  EXPECT_EQ(budget_of(encode("high", std::nullopt, 50000)), 16384);
  EXPECT_EQ(budget_of(encode("", std::nullopt, 50000)), -1);
  EXPECT_EQ(budget_of(encode("high", 3000, 50000)), 3000);  // an explicit budget wins
  EXPECT_EQ(budget_of(encode("", 100, 50000)), 1024);       // Anthropic's minimum
  EXPECT_EQ(budget_of(encode("", 0, 50000)), -1);           // Gemini's "off"
  // No max_tokens: 4096, raised past the budget so the request is valid.
  EXPECT_EQ(encode("", std::nullopt, std::nullopt).at("max_tokens"), 4096);
  EXPECT_EQ(encode("high", std::nullopt, std::nullopt).at("max_tokens"), 16384 + 4096);
  EXPECT_EQ(encode("high", std::nullopt, 1000).at("max_tokens"), 1000);  // the client's choice
}

TEST(AnthropicCodecUpstreamRequest, ImagesToolResultsAndRawArguments) {
  Block png;
  png.kind = BlockKind::image;
  png.image_media_type = "image/png";
  png.image_data = "AAAA";
  Block url;
  url.kind = BlockKind::image;
  url.image_url = "https://x/y.jpg";
  Block call;
  call.kind = BlockKind::tool_use;
  call.tool_id = "t1";
  call.tool_name = "f";
  call.tool_input = "[1,2]";
  Block result;
  result.kind = BlockKind::tool_result;
  result.tool_id = "t1";
  result.is_error = true;
  result.content = {text_block("see"), png};
  Request r;
  r.messages = {Message{Role::user, {png, url}}, Message{Role::assistant, {call}},
                Message{Role::user, {result}}};
  const json::array m =
      parse(anthropic::encode_request(r, "m")).as_object().at("messages").as_array();
  EXPECT_EQ(m[0].as_object().at("content"), parse(R"([
      {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}},
      {"type":"image","source":{"type":"url","url":"https://x/y.jpg"}}])"));
  EXPECT_EQ(m[1].as_object().at("content").as_array()[0].as_object().at("input"),
            parse(R"({"_raw_arguments":"[1,2]"})"));
  EXPECT_EQ(m[2].as_object().at("content"), parse(R"([{"type":"tool_result","tool_use_id":"t1",
      "content":[{"type":"text","text":"see"},
                 {"type":"image","source":{"type":"base64","media_type":"image/png",
                                           "data":"AAAA"}}],
      "is_error":true}])"));
}

TEST(AnthropicCodecUpstreamRequest, RoundTripKeepsEverythingTheProtocolCarries) {
  const std::string body = fixture("request_full.json");
  const Request first = decode_ok(body);
  const std::string encoded = anthropic::encode_request(first, "claude-sonnet-4-5");
  const Request second = decode_ok(encoded);
  EXPECT_EQ(to_text(parse(anthropic::encode_request(second, "claude-sonnet-4-5"))), encoded);
  EXPECT_EQ(second.model, first.model);
  EXPECT_EQ(second.max_tokens, first.max_tokens);
  ASSERT_EQ(second.system.size(), 2u);
  EXPECT_EQ(second.system[1].text, "Answer briefly.");
  ASSERT_EQ(second.messages.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(second.messages[i].content.size(), first.messages[i].content.size()) << i;
    EXPECT_EQ(second.messages[i].role, first.messages[i].role);
    for (size_t j = 0; j < first.messages[i].content.size(); ++j) {
      const Block& a = first.messages[i].content[j];
      const Block& b = second.messages[i].content[j];
      EXPECT_EQ(a.kind, b.kind);
      EXPECT_EQ(a.text, b.text);
      EXPECT_EQ(a.signature, b.signature);
      EXPECT_EQ(a.data, b.data);
      EXPECT_EQ(a.image_media_type, b.image_media_type);
      EXPECT_EQ(a.image_data, b.image_data);
      EXPECT_EQ(a.image_url, b.image_url);
      EXPECT_EQ(a.tool_id, b.tool_id);
      EXPECT_EQ(a.tool_name, b.tool_name);
      EXPECT_EQ(a.tool_input, b.tool_input);
      EXPECT_EQ(a.is_error, b.is_error);
      EXPECT_EQ(a.content.size(), b.content.size());
    }
  }
  EXPECT_EQ(second.tools.size(), 2u);
  EXPECT_EQ(second.tools[0].parameters, first.tools[0].parameters);
  EXPECT_EQ(second.tool_choice.kind, first.tool_choice.kind);
  EXPECT_EQ(second.parallel_tool_calls, first.parallel_tool_calls);
  EXPECT_EQ(second.stop, first.stop);
  EXPECT_EQ(second.temperature, first.temperature);
  EXPECT_EQ(second.top_p, first.top_p);
  EXPECT_EQ(second.top_k, first.top_k);
  EXPECT_EQ(second.stream, first.stream);
  EXPECT_EQ(second.thinking_budget, first.thinking_budget);
  EXPECT_EQ(second.user, first.user);
  // The thinking blocks go back to the upstream byte for byte (their signatures are checked).
  const json::value wire = parse(encoded);
  const json::array& assistant =
      wire.as_object().at("messages").as_array()[1].as_object().at("content").as_array();
  EXPECT_EQ(assistant[0], parse(R"({"type":"thinking","thinking":"I should call the tool.",
                                    "signature":"EqQBCgIYAhIMsig=="})"));
  EXPECT_EQ(assistant[1].as_object().at("type"), "redacted_thinking");
}

// ---- upstream side: decode_response / decode_error -----------------------------------------

TEST(AnthropicCodecUpstreamResponse, DecodesThinkingTextToolUseAndCacheUsage) {
  auto r = anthropic::decode_response(fixture("response_thinking_text_tool.json"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->id, "msg_01Aq9w938a90dw8q");
  EXPECT_EQ(r->model, "claude-sonnet-4-5-20250929");
  ASSERT_EQ(r->content.size(), 3u);
  EXPECT_EQ(r->content[0].kind, BlockKind::thinking);
  EXPECT_EQ(r->content[0].signature, "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds...");
  EXPECT_EQ(r->content[1].text, "Let me check the weather in Paris for you.");
  EXPECT_EQ(r->content[2].kind, BlockKind::tool_use);
  EXPECT_EQ(r->content[2].tool_input, R"({"location":"Paris, France","unit":"celsius"})");
  EXPECT_EQ(r->stop_reason, StopReason::tool_use);
  EXPECT_EQ(r->stop_sequence, "");
  EXPECT_TRUE(r->usage.reported);
  EXPECT_EQ(r->usage.input, 472);
  EXPECT_EQ(r->usage.output, 89);
  EXPECT_EQ(r->usage.cache_creation, 1024);
  EXPECT_EQ(r->usage.cache_read, 2048);
  EXPECT_EQ(r->usage.prompt_total(), 472 + 1024 + 2048);

  // Decoded and encoded again for an Anthropic client, the blocks are unchanged.
  const json::object again = parse(anthropic::encode_response(*r, {})).as_object();
  const json::object orig = parse(fixture("response_thinking_text_tool.json")).as_object();
  EXPECT_EQ(again.at("content"), orig.at("content"));
  EXPECT_EQ(again.at("id"), orig.at("id"));
  EXPECT_EQ(again.at("stop_reason"), orig.at("stop_reason"));
}

TEST(AnthropicCodecUpstreamResponse, EveryStopReason) {
  const std::pair<std::string_view, StopReason> cases[] = {
      {"end_turn", StopReason::end_turn},
      {"max_tokens", StopReason::max_tokens},
      {"stop_sequence", StopReason::stop_sequence},
      {"tool_use", StopReason::tool_use},
      {"refusal", StopReason::refusal},
      {"pause_turn", StopReason::pause_turn},
      {"model_context_window_exceeded", StopReason::end_turn}};
  for (const auto& [name, reason] : cases) {
    auto r = anthropic::decode_response(
        R"({"type":"message","id":"m","model":"c","content":[],"stop_reason":")" +
        std::string(name) + R"(","stop_sequence":"END"})");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->stop_reason, reason) << name;
    EXPECT_EQ(r->stop_sequence, "END");
    EXPECT_FALSE(r->usage.reported);
  }
}

TEST(AnthropicCodecUpstreamResponse, SkipsServerToolBlocksKeepsRedactedThinking) {
  auto r = anthropic::decode_response(R"({"type":"message","id":"m","model":"c","content":[
      {"type":"redacted_thinking","data":"xyz"},
      {"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"q"}},
      {"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]},
      {"type":"text","text":"found","citations":[]}],"stop_reason":"end_turn",
      "usage":{"input_tokens":-5,"output_tokens":3}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->content.size(), 2u);
  EXPECT_EQ(r->content[0].kind, BlockKind::redacted_thinking);
  EXPECT_EQ(r->content[0].data, "xyz");
  EXPECT_EQ(r->content[1].text, "found");
  EXPECT_EQ(r->usage.input, 0);  // a negative count is not trusted
  EXPECT_EQ(r->usage.output, 3);
}

TEST(AnthropicCodecUpstreamResponse, NonMessageBodiesAreProtocolErrors) {
  for (std::string_view body :
       {"", "{", "[]", R"({"type":"message"})", R"({"id":"x","content":[]})",
        R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
        R"({"type":"message","content":[{"type":"text"}]})",
        R"({"type":"message","content":[7]})"}) {
    auto r = anthropic::decode_response(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().code, Errc::upstream_protocol);
    EXPECT_NE(r.error().message.find("not an Anthropic message"), std::string::npos);
  }
}

TEST(AnthropicCodecUpstreamError, ReadsTypeAndMessage) {
  UpstreamError e = anthropic::decode_error(
      529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},
              "request_id":"req_1"})");
  EXPECT_EQ(e.status, 529);
  EXPECT_EQ(e.type, "overloaded_error");
  EXPECT_EQ(e.message, "Overloaded");
  e = anthropic::decode_error(400, R"({"type":"error","error":{"type":"invalid_request_error",
      "message":"prompt is too long: 208310 tokens > 200000 maximum"}})");
  EXPECT_EQ(e.type, "context_length_exceeded");
  EXPECT_NE(e.message.find("208310"), std::string::npos);
  e = anthropic::decode_error(503, "<html>Service Unavailable</html>");
  EXPECT_EQ(e.type, "overloaded_error");
  EXPECT_FALSE(e.message.empty());
  e = anthropic::decode_error(429,
                              R"({"error":{"message":"slow down","type":"rate_limit_error"}})");
  EXPECT_EQ(e.type, "rate_limit_error");
  EXPECT_EQ(e.message, "slow down");
  e = anthropic::decode_error(401, R"({"type":"error","error":{"type":"weird","message":"no"}})");
  EXPECT_EQ(e.type, "authentication_error");
  e = anthropic::decode_error(500, R"({"type":"error","error":7})");
  EXPECT_EQ(e.type, "api_error");
}

}  // namespace
}  // namespace sluice::canonical
