// The OpenAI Chat Completions codec, client side: decode_request, encode_response, the chunk
// encoder and encode_error. The upstream side is in openai_codec_upstream_test.cc.
#include "openai_codec_test_util.h"

namespace sluice::canonical {
namespace {

using namespace openai_test;

// ---- client side: decode_request ------------------------------------------------------------

TEST(OpenaiCodecRequest, TextSystemMultiTurnAndSampling) {
  Request r = decode_ok(R"({
    "model": "gpt-4o",
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
      {"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "Bonjour"},
      {"role": "user", "content": [{"type": "text", "text": "And "}, {"type": "text", "text": "you?"}]}
    ],
    "max_tokens": 100, "max_completion_tokens": 300, "temperature": 0.5, "top_p": 0.9,
    "top_k": 40, "stop": "END", "stream": true, "stream_options": {"include_usage": true},
    "reasoning_effort": "low", "user": "u-1", "parallel_tool_calls": false, "n": 1
  })");
  EXPECT_EQ(r.model, "gpt-4o");
  ASSERT_EQ(r.system.size(), 2u);
  EXPECT_EQ(r.system[0].text, "Be brief.");
  EXPECT_EQ(r.system[1].text, "Answer in French.");
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].role, Role::user);
  EXPECT_EQ(r.messages[0].content[0].text, "Hi");
  EXPECT_EQ(r.messages[1].role, Role::assistant);
  EXPECT_EQ(r.messages[1].content[0].text, "Bonjour");
  ASSERT_EQ(r.messages[2].content.size(), 2u);
  EXPECT_EQ(r.messages[2].content[1].text, "you?");
  EXPECT_EQ(r.max_tokens, 300);
  EXPECT_EQ(r.temperature, 0.5);
  EXPECT_EQ(r.top_p, 0.9);
  EXPECT_EQ(r.top_k, 40);
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.reasoning_effort, "low");
  EXPECT_EQ(r.user, "u-1");
  EXPECT_EQ(r.parallel_tool_calls, false);
}

TEST(OpenaiCodecRequest, SystemMessageLaterInTheConversationMovesToSystem) {
  Request r = decode_ok(R"({"model":"m","messages":[{"role":"user","content":"a"},
    {"role":"system","content":"late rule"},{"role":"user","content":"b"}],
    "stop":["x","y"]})");
  ASSERT_EQ(r.system.size(), 1u);
  EXPECT_EQ(r.system[0].text, "late rule");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"x", "y"}));
  EXPECT_FALSE(r.max_tokens.has_value());
  EXPECT_FALSE(r.stream);
}

TEST(OpenaiCodecRequest, ImagesBase64AndUrl) {
  Request r = decode_ok(R"({"model":"m","messages":[{"role":"user","content":[
    {"type":"text","text":"What is this?"},
    {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}},
    {"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}}]}]})");
  ASSERT_EQ(r.messages.size(), 1u);
  const auto& c = r.messages[0].content;
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[1].kind, BlockKind::image);
  EXPECT_EQ(c[1].image_media_type, "image/png");
  EXPECT_EQ(c[1].image_data, "iVBORw0KGgo=");
  EXPECT_EQ(c[1].image_url, "");
  EXPECT_EQ(c[2].kind, BlockKind::image);
  EXPECT_EQ(c[2].image_url, "https://example.com/cat.jpg");
  EXPECT_EQ(c[2].image_data, "");
}

TEST(OpenaiCodecRequest, ToolDefinitionsAndEveryToolChoice) {
  const std::string tools = R"("tools":[{"type":"function","function":{"name":"get_weather",
    "description":"Weather now","parameters":{"type":"object","properties":{"city":{"type":"string"}},
    "required":["city"]}}},{"type":"function","function":{"name":"ping"}}])";
  Request r = decode_ok(R"({"model":"m","messages":[{"role":"user","content":"x"}],)" + tools +
                        "}");
  ASSERT_EQ(r.tools.size(), 2u);
  EXPECT_EQ(r.tools[0].name, "get_weather");
  EXPECT_EQ(r.tools[0].description, "Weather now");
  EXPECT_EQ(r.tools[0].parameters,
            R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})");
  EXPECT_EQ(r.tools[1].parameters, Tool{}.parameters);  // missing → the default schema
  EXPECT_EQ(r.tool_choice.kind, ToolChoiceKind::unset);
  struct Case {
    const char* choice;
    ToolChoiceKind kind;
    const char* name;
  };
  for (const Case& c : {Case{R"("auto")", ToolChoiceKind::auto_, ""},
                        Case{R"("none")", ToolChoiceKind::none, ""},
                        Case{R"("required")", ToolChoiceKind::required, ""},
                        Case{R"({"type":"function","function":{"name":"ping"}})",
                             ToolChoiceKind::named, "ping"}}) {
    Request q = decode_ok(R"({"model":"m","messages":[{"role":"user","content":"x"}],)" + tools +
                          R"(,"tool_choice":)" + c.choice + "}");
    EXPECT_EQ(q.tool_choice.kind, c.kind) << c.choice;
    EXPECT_EQ(q.tool_choice.name, c.name);
  }
}

TEST(OpenaiCodecRequest, ParallelToolCallsAndToolResultsInOneUserMessage) {
  Request r = decode_ok(R"({"model":"m","messages":[
    {"role":"user","content":"Weather in Paris and Tokyo?"},
    {"role":"assistant","content":null,"tool_calls":[
      {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
      {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Tokyo\"}"}}]},
    {"role":"tool","tool_call_id":"call_1","content":"18C"},
    {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"25C"}]},
    {"role":"user","content":"Thanks"}]})");
  ASSERT_EQ(r.messages.size(), 4u);
  const Message& a = r.messages[1];
  EXPECT_EQ(a.role, Role::assistant);
  ASSERT_EQ(a.content.size(), 2u);
  EXPECT_EQ(a.content[0].kind, BlockKind::tool_use);
  EXPECT_EQ(a.content[0].tool_id, "call_1");
  EXPECT_EQ(a.content[0].tool_name, "get_weather");
  EXPECT_EQ(a.content[1].tool_input, R"({"city": "Tokyo"})");  // as received, not re-serialised
  const Message& t = r.messages[2];
  EXPECT_EQ(t.role, Role::user);
  ASSERT_EQ(t.content.size(), 2u);
  EXPECT_EQ(t.content[0].kind, BlockKind::tool_result);
  EXPECT_EQ(t.content[0].tool_id, "call_1");
  EXPECT_EQ(t.content[0].tool_name, "get_weather");
  ASSERT_EQ(t.content[0].content.size(), 1u);
  EXPECT_EQ(t.content[0].content[0].text, "18C");
  EXPECT_EQ(t.content[1].tool_id, "call_2");
  EXPECT_EQ(t.content[1].content[0].text, "25C");
  EXPECT_EQ(r.messages[3].content[0].text, "Thanks");
}

TEST(OpenaiCodecRequest, LegacyFunctionCallAndFunctionRole) {
  Request r = decode_ok(R"({"model":"m","messages":[{"role":"user","content":"x"},
    {"role":"assistant","content":null,"function_call":{"name":"lookup","arguments":"{}"}},
    {"role":"function","name":"lookup","content":"found"}],
    "functions":[{"name":"lookup","parameters":{"type":"object"}}],"function_call":"auto"})");
  ASSERT_EQ(r.messages.size(), 3u);
  const Block& call = r.messages[1].content.at(0);
  EXPECT_EQ(call.kind, BlockKind::tool_use);
  const Block& res = r.messages[2].content.at(0);
  EXPECT_EQ(res.kind, BlockKind::tool_result);
  EXPECT_EQ(res.tool_id, call.tool_id);
  EXPECT_EQ(res.tool_name, "lookup");
  ASSERT_EQ(r.tools.size(), 1u);
  EXPECT_EQ(r.tool_choice.kind, ToolChoiceKind::auto_);
}

TEST(OpenaiCodecRequest, ReasoningCarriersAndRefusal) {
  Request r = decode_ok(R"({"model":"m","messages":[{"role":"user","content":"x"},
    {"role":"assistant","content":"A","reasoning_content":"plain thoughts"},
    {"role":"user","content":"y"},
    {"role":"assistant","content":"B","reasoning_content":"ignored",
     "thinking_blocks":[{"type":"thinking","thinking":"signed thoughts","signature":"sig=="},
                        {"type":"redacted_thinking","data":"EmwKAhgB"}]},
    {"role":"user","content":"z"},
    {"role":"assistant","content":null,"refusal":"I can't help with that."}]})");
  ASSERT_EQ(r.messages.size(), 6u);
  const auto& a1 = r.messages[1].content;
  ASSERT_EQ(a1.size(), 2u);
  EXPECT_EQ(a1[0].kind, BlockKind::thinking);
  EXPECT_EQ(a1[0].text, "plain thoughts");
  EXPECT_EQ(a1[0].signature, "");
  EXPECT_EQ(a1[1].text, "A");
  const auto& a2 = r.messages[3].content;
  ASSERT_EQ(a2.size(), 3u);
  EXPECT_EQ(a2[0].kind, BlockKind::thinking);
  EXPECT_EQ(a2[0].text, "signed thoughts");
  EXPECT_EQ(a2[0].signature, "sig==");
  EXPECT_EQ(a2[1].kind, BlockKind::redacted_thinking);
  EXPECT_EQ(a2[1].data, "EmwKAhgB");
  EXPECT_EQ(a2[2].text, "B");
  ASSERT_EQ(r.messages[5].content.size(), 1u);
  EXPECT_EQ(r.messages[5].content[0].text, "I can't help with that.");
}

TEST(OpenaiCodecRequest, BadShapesName400sWithTheParam) {
  struct Case {
    const char* body;
    const char* param;
  };
  const Case cases[] = {
      {R"({"messages":[{"role":"user","content":"x"}]})", "model"},
      {R"({"model":5,"messages":[{"role":"user","content":"x"}]})", "model"},
      {R"({"model":"m"})", "messages"},
      {R"({"model":"m","messages":{}})", "messages"},
      {R"({"model":"m","messages":[]})", "messages"},
      {R"({"model":"m","messages":[5]})", "messages[0]"},
      {R"({"model":"m","messages":[{"content":"x"}]})", "messages[0].role"},
      {R"({"model":"m","messages":[{"role":"wizard","content":"x"}]})", "messages[0].role"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"},{"role":"user","content":"y"},
          {"role":"user","content":7}]})", "messages[2].content"},
      {R"({"model":"m","messages":[{"role":"user"}]})", "messages[0].content"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]})",
       "messages[0].content[0].type"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]})",
       "messages[0].content[0].text"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url",
          "image_url":{"url":"ftp://x"}}]}]})", "messages[0].content[0].image_url.url"},
      {R"({"model":"m","messages":[{"role":"tool","content":"x"}]})",
       "messages[0].tool_call_id"},
      {R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function"}]}]})",
       "messages[0].tool_calls[0].function"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})",
       "tools[0].function"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search"}]})",
       "tools[0].type"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"})",
       "tool_choice"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"many"})",
       "max_tokens"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0})",
       "max_tokens"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"})",
       "temperature"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":[1]})", "stop[0]"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":3})", "n"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"})", "stream"},
  };
  for (const Case& c : cases) {
    Result<Request> r = openai::decode_request(c.body, {});
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.error().code, Errc::bad_request) << c.body;
    EXPECT_EQ(r.error().param, c.param) << c.body << "\n" << r.error().message;
  }
  for (const char* body : {"", "{", "[1,2]", "\"text\"", "null", "{\"model\":\"m\",\"messages\":[{"}) {
    Result<Request> r = openai::decode_request(body, {});
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().code, Errc::bad_request);
  }
}

// ---- client side: encode_response, encode_error ----------------------------------------------

TEST(OpenaiCodecResponse, EncodesTextToolCallsThinkingAndUsage) {
  Response r;
  r.id = "msg_01";
  r.model = "my-model";
  r.content = {thinking("Let me think.", "sigA"), redacted("opaque"), text("Hello "),
               text("there"), tool_use("toolu_1", "get_weather", R"({"city":"Paris"})")};
  r.stop_reason = StopReason::tool_use;
  r.usage = {.input = 10, .output = 20, .cache_read = 100, .cache_creation = 5, .reasoning = 7,
             .reported = true};
  json::object o = parse_obj(openai::encode_response(r, Request{}));
  EXPECT_EQ(o["id"], "msg_01");
  EXPECT_EQ(o["object"], "chat.completion");
  EXPECT_EQ(o["model"], "my-model");
  EXPECT_TRUE(o["created"].is_int64());
  const json::object& choice = o["choices"].as_array().at(0).as_object();
  EXPECT_EQ(choice.at("finish_reason"), "tool_calls");
  EXPECT_TRUE(choice.at("logprobs").is_null());
  const json::object& msg = choice.at("message").as_object();
  EXPECT_EQ(msg.at("role"), "assistant");
  EXPECT_EQ(msg.at("content"), "Hello there");
  EXPECT_EQ(msg.at("reasoning_content"), "Let me think.");
  EXPECT_EQ(json::serialize(msg.at("thinking_blocks")),
            R"([{"type":"thinking","thinking":"Let me think.","signature":"sigA"},)"
            R"({"type":"redacted_thinking","data":"opaque"}])");
  EXPECT_EQ(json::serialize(msg.at("tool_calls")),
            R"([{"id":"toolu_1","type":"function","function":{"name":"get_weather",)"
            R"("arguments":"{\"city\":\"Paris\"}"}}])");
  const json::object& u = o["usage"].as_object();
  EXPECT_EQ(u.at("prompt_tokens"), 115);
  EXPECT_EQ(u.at("completion_tokens"), 20);
  EXPECT_EQ(u.at("total_tokens"), 135);
  EXPECT_EQ(u.at("prompt_tokens_details").at("cached_tokens"), 100);
  EXPECT_EQ(u.at("completion_tokens_details").at("reasoning_tokens"), 7);
}

TEST(OpenaiCodecResponse, NullContentWithOnlyToolCallsAndGeneratedId) {
  Response r;
  r.content = {tool_use("c1", "f", "{}")};
  Request req;
  req.model = "client-name";
  json::object o = parse_obj(openai::encode_response(r, req));
  EXPECT_TRUE(std::string(o["id"].as_string()).starts_with("chatcmpl-"));
  EXPECT_EQ(o["model"], "client-name");
  const json::object& msg = o["choices"].at(0).at("message").as_object();
  EXPECT_TRUE(msg.at("content").is_null());
  EXPECT_FALSE(msg.contains("reasoning_content"));
  EXPECT_FALSE(msg.contains("thinking_blocks"));
  EXPECT_EQ(o["usage"].at("total_tokens"), 0);  // always present
}

TEST(OpenaiCodecResponse, EveryStopReasonMapsToAFinishReason) {
  const std::pair<StopReason, const char*> cases[] = {
      {StopReason::unset, "stop"},          {StopReason::end_turn, "stop"},
      {StopReason::max_tokens, "length"},   {StopReason::stop_sequence, "stop"},
      {StopReason::tool_use, "tool_calls"}, {StopReason::refusal, "content_filter"},
      {StopReason::pause_turn, "stop"},     {StopReason::error, "stop"}};
  for (const auto& [reason, finish] : cases) {
    Response r;
    r.content = {text("x")};
    r.stop_reason = reason;
    json::object o = parse_obj(openai::encode_response(r, Request{}));
    EXPECT_EQ(o["choices"].at(0).at("finish_reason"), finish);
  }
}

TEST(OpenaiCodecResponse, ErrorBodies) {
  ErrorBody e = openai::encode_error(429, "slow down");
  EXPECT_EQ(e.status, 429);
  json::object o = parse_obj(e.body);
  EXPECT_EQ(o["error"].at("message"), "slow down");
  EXPECT_EQ(o["error"].at("type"), "rate_limit_error");
  EXPECT_TRUE(o["error"].at("param").is_null());
  EXPECT_TRUE(o["error"].at("code").is_null());
  EXPECT_EQ(parse_obj(openai::encode_error(503, "x").body)["error"].at("type"),
            "service_unavailable");
  EXPECT_EQ(parse_obj(openai::encode_error(400, "bad \"quote\"").body)["error"].at("message"),
            "bad \"quote\"");
}

// ---- client side: the chunk encoder ---------------------------------------------------------

TEST(OpenaiCodecStreamEncoder, ChunksForEveryBlockKindThenUsageAndDone) {
  Request req;
  req.model = "client-model";
  req.stream = true;
  req.include_usage = true;
  auto enc = openai::stream_encoder(req);
  std::string sse;
  for (const Event& e : rich_stream()) enc->on_event(e, sse);
  enc->finish(sse);
  EXPECT_TRUE(sse.ends_with("data: [DONE]\n\n"));
  std::vector<std::string> lines = data_lines(sse);
  ASSERT_EQ(lines.size(), 14u) << sse;
  EXPECT_EQ(lines.back(), "[DONE]");
  std::vector<std::string> deltas;
  for (size_t i = 0; i + 2 < lines.size(); ++i) {
    json::object o = parse_obj(lines[i]);
    EXPECT_EQ(o["id"], "chatcmpl-rich");
    EXPECT_EQ(o["object"], "chat.completion.chunk");
    EXPECT_EQ(o["model"], "gw-model");
    deltas.push_back(json::serialize(o["choices"].at(0).at("delta")));
    if (i + 3 < lines.size()) {
      EXPECT_TRUE(o["choices"].at(0).at("finish_reason").is_null());
    }
  }
  const std::vector<std::string> want = {
      R"({"role":"assistant","content":""})",
      R"({"reasoning_content":"Hmm, "})",
      R"({"reasoning_content":"two cities."})",
      R"({"thinking_blocks":[{"type":"thinking","thinking":"","signature":"sig0"}]})",
      R"({"thinking_blocks":[{"type":"redacted_thinking","data":"REDACTED"}]})",
      R"({"content":"Checking."})",
      R"({"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]})",
      R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]})",
      R"({"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]})",
      R"({"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":""}}]})",
      R"({"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]})",
      R"({})",
  };
  EXPECT_EQ(deltas, want);
  json::object fin = parse_obj(lines[11]);
  EXPECT_EQ(fin["choices"].at(0).at("finish_reason"), "tool_calls");
  json::object u = parse_obj(lines[lines.size() - 2]);
  EXPECT_TRUE(u["choices"].as_array().empty());
  EXPECT_EQ(u["usage"].at("prompt_tokens"), 7);
  EXPECT_EQ(u["usage"].at("completion_tokens"), 9);
  EXPECT_EQ(u["usage"].at("prompt_tokens_details").at("cached_tokens"), 4);
  EXPECT_EQ(u["usage"].at("completion_tokens_details").at("reasoning_tokens"), 2);
}

TEST(OpenaiCodecStreamEncoder, NoUsageChunkUnlessAskedAndFailEndsWithoutDone) {
  Request req;
  req.model = "m";
  req.stream = true;
  auto enc = openai::stream_encoder(req);
  std::string sse;
  for (const Event& e : rich_stream()) enc->on_event(e, sse);
  EXPECT_EQ(sse.find("\"usage\""), std::string::npos);
  auto enc2 = openai::stream_encoder(req);
  std::string out;
  enc2->on_event(rich_stream()[0], out);
  enc2->fail(529, "overloaded", out);
  enc2->finish(out);
  std::vector<std::string> lines = data_lines(out);
  ASSERT_EQ(lines.size(), 2u);
  json::object err = parse_obj(lines[1]);
  EXPECT_EQ(err["error"].at("message"), "overloaded");
  EXPECT_EQ(err["error"].at("type"), "service_unavailable");
  EXPECT_EQ(out.find("[DONE]"), std::string::npos);
}

}  // namespace
}  // namespace sluice::canonical
