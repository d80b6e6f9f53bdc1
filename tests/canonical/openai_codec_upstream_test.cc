// The OpenAI Chat Completions codec, upstream side: encode_request, decode_response, the chunk
// decoder and decode_error, with hand-written fixtures under tests/testdata/openai/.
#include "openai_codec_test_util.h"

namespace sluice::canonical {
namespace {

using namespace openai_test;

// ---- upstream side: encode_request ----------------------------------------------------------

TEST(OpenaiCodecUpstreamRequest, EncodesEveryField) {
  json::object o = parse_obj(openai::encode_request(full_request(), "upstream-model"));
  EXPECT_EQ(o["model"], "upstream-model");
  const json::array& m = o["messages"].as_array();
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(json::serialize(m[0]), R"({"role":"system","content":"Rule one.\n\nRule two."})");
  EXPECT_EQ(json::serialize(m[1]),
            R"({"role":"user","content":[{"type":"text","text":"Look:"},)"
            R"({"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ"}},)"
            R"({"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]})");
  // Thinking is not sent; content and both calls are.
  EXPECT_EQ(json::serialize(m[2]),
            R"({"role":"assistant","content":"Calling.","tool_calls":[)"
            R"({"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},)"
            R"({"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]})");
  EXPECT_EQ(json::serialize(m[3]), R"({"role":"tool","tool_call_id":"call_1","content":"18C"})");
  EXPECT_EQ(json::serialize(m[4]),
            R"({"role":"tool","tool_call_id":"call_2","content":"3C\nwindy"})");
  EXPECT_EQ(json::serialize(m[5]), R"({"role":"user","content":"Summarise."})");
  EXPECT_EQ(json::serialize(o["tools"]),
            R"([{"type":"function","function":{"name":"get_weather","description":"Weather",)"
            R"("parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])");
  EXPECT_EQ(json::serialize(o["tool_choice"]),
            R"({"type":"function","function":{"name":"get_weather"}})");
  EXPECT_EQ(o["parallel_tool_calls"], true);
  EXPECT_EQ(o["max_tokens"], 512);
  EXPECT_EQ(o["temperature"].as_double(), 0.25);
  EXPECT_EQ(o["top_p"].as_double(), 0.5);
  EXPECT_EQ(o["top_k"], 20);
  EXPECT_EQ(json::serialize(o["stop"]), R"(["END"])");
  EXPECT_EQ(o["reasoning_effort"], "high");
  EXPECT_EQ(o["user"], "u-9");
  EXPECT_EQ(o["stream"], true);
  EXPECT_EQ(json::serialize(o["stream_options"]), R"({"include_usage":true})");
}

TEST(OpenaiCodecUpstreamRequest, ToolOnlyAssistantImagesInResultsAndNoToolsNoChoice) {
  Request r;
  r.model = "m";
  Message a;
  a.role = Role::assistant;
  a.content = {tool_use("c", "shot", "{}")};
  Message u;
  Block res;
  res.kind = BlockKind::tool_result;
  res.tool_id = "c";
  res.is_error = true;
  Block img;
  img.kind = BlockKind::image;
  img.image_url = "https://x/y.png";
  res.content = {text("here"), img};
  u.content = {res};
  r.messages = {a, u};
  r.tool_choice.kind = ToolChoiceKind::required;  // without tools: not sent
  r.parallel_tool_calls = false;
  json::object o = parse_obj(openai::encode_request(r, "m"));
  const json::array& m = o["messages"].as_array();
  ASSERT_EQ(m.size(), 2u);
  EXPECT_TRUE(m[0].at("content").is_null());
  EXPECT_EQ(m[1].at("content"), "here\n[image omitted]");
  EXPECT_FALSE(o.contains("tool_choice"));
  EXPECT_FALSE(o.contains("parallel_tool_calls"));
  EXPECT_FALSE(o.contains("stream"));
  EXPECT_FALSE(o.contains("stream_options"));
  EXPECT_FALSE(o.contains("max_tokens"));
}

TEST(OpenaiCodecUpstreamRequest, RoundTripKeepsWhatOpenaiCarries) {
  const Request want = full_request();
  Request got = decode_ok(openai::encode_request(want, want.model));
  EXPECT_EQ(got.model, want.model);
  ASSERT_EQ(got.system.size(), 1u);  // joined into one system message
  EXPECT_EQ(got.system[0].text, "Rule one.\n\nRule two.");
  ASSERT_EQ(got.messages.size(), 4u);  // tool results and the user text split
  const auto& u1 = got.messages[0].content;
  ASSERT_EQ(u1.size(), 3u);
  EXPECT_EQ(u1[1].image_media_type, "image/jpeg");
  EXPECT_EQ(u1[1].image_data, "/9j/4AAQ");
  EXPECT_EQ(u1[2].image_url, "https://example.com/a.png");
  const auto& a1 = got.messages[1].content;
  ASSERT_EQ(a1.size(), 3u);  // thinking dropped
  EXPECT_EQ(a1[0].text, "Calling.");
  EXPECT_EQ(a1[2].tool_id, "call_2");
  EXPECT_EQ(a1[2].tool_input, R"({"city":"Oslo"})");
  const auto& res = got.messages[2].content;
  ASSERT_EQ(res.size(), 2u);
  EXPECT_EQ(res[0].tool_id, "call_1");
  EXPECT_EQ(res[0].tool_name, "get_weather");
  EXPECT_EQ(res[1].content.at(0).text, "3C\nwindy");
  EXPECT_EQ(got.messages[3].content.at(0).text, "Summarise.");
  ASSERT_EQ(got.tools.size(), 1u);
  EXPECT_EQ(got.tools[0].name, want.tools[0].name);
  EXPECT_EQ(got.tools[0].description, want.tools[0].description);
  EXPECT_EQ(got.tools[0].parameters, want.tools[0].parameters);
  EXPECT_EQ(got.tool_choice.kind, want.tool_choice.kind);
  EXPECT_EQ(got.tool_choice.name, want.tool_choice.name);
  EXPECT_EQ(got.parallel_tool_calls, want.parallel_tool_calls);
  EXPECT_EQ(got.max_tokens, want.max_tokens);
  EXPECT_EQ(got.temperature, want.temperature);
  EXPECT_EQ(got.top_p, want.top_p);
  EXPECT_EQ(got.top_k, want.top_k);
  EXPECT_EQ(got.stop, want.stop);
  EXPECT_EQ(got.stream, want.stream);
  EXPECT_TRUE(got.include_usage);
  EXPECT_EQ(got.reasoning_effort, want.reasoning_effort);
  EXPECT_EQ(got.user, want.user);
}

// ---- upstream side: decode_response, decode_error ------------------------------------------

TEST(OpenaiCodecUpstreamResponse, FixtureWithToolCallsAndCachedUsage) {
  Result<Response> r = openai::decode_response(fixture("unary_tool_calls.json"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->id, "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG");
  EXPECT_EQ(r->model, "gpt-4o-2024-08-06");
  ASSERT_EQ(r->content.size(), 3u);
  EXPECT_EQ(r->content[0].kind, BlockKind::text);
  EXPECT_EQ(r->content[0].text, "Let me check both cities.");
  EXPECT_EQ(r->content[1].kind, BlockKind::tool_use);
  EXPECT_EQ(r->content[1].tool_id, "call_abc123");
  EXPECT_EQ(r->content[1].tool_name, "get_weather");
  EXPECT_EQ(r->content[1].tool_input, R"({"location":"Paris, France"})");
  EXPECT_EQ(r->content[2].tool_input, "{\"location\":\"Bogot\xC3\xA1, Colombia\"}");
  EXPECT_EQ(r->stop_reason, StopReason::tool_use);
  EXPECT_EQ(r->usage.input, 86);
  EXPECT_EQ(r->usage.cache_read, 1920);
  EXPECT_EQ(r->usage.output, 300);
  EXPECT_EQ(r->usage.prompt_total(), 2006);
  EXPECT_TRUE(r->usage.reported);
}

TEST(OpenaiCodecUpstreamResponse, EveryFinishReason) {
  const std::pair<const char*, StopReason> cases[] = {
      {R"("stop")", StopReason::end_turn},          {R"("length")", StopReason::max_tokens},
      {R"("tool_calls")", StopReason::tool_use},    {R"("function_call")", StopReason::tool_use},
      {R"("content_filter")", StopReason::refusal}, {"null", StopReason::end_turn},
      {R"("eos")", StopReason::end_turn}};
  for (const auto& [finish, want] : cases) {
    Result<Response> r = openai::decode_response(answer(R"({"content":"x"})", finish));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->stop_reason, want) << finish;
    EXPECT_FALSE(r->usage.reported);
  }
  Result<Response> r = openai::decode_response(
      answer(R"({"content":null,"refusal":"No."})", R"("stop")"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stop_reason, StopReason::refusal);
  EXPECT_EQ(r->content.at(0).text, "No.");
}

TEST(OpenaiCodecUpstreamResponse, ReasoningCarriersComeFirst) {
  Result<Response> r = openai::decode_response(
      answer(R"({"content":"42","reasoning_content":"think"})", R"("stop")"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->content.size(), 2u);
  EXPECT_EQ(r->content[0].kind, BlockKind::thinking);
  EXPECT_EQ(r->content[0].text, "think");
  r = openai::decode_response(answer(R"({"content":"42","reasoning":"vllm"})", R"("stop")"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->content.at(0).text, "vllm");
  r = openai::decode_response(answer(
      R"({"content":"42","reasoning_content":"dup","thinking_blocks":[{"type":"thinking","thinking":"t","signature":"s"}]})",
      R"("stop")"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->content.size(), 2u);
  EXPECT_EQ(r->content[0].text, "t");
  EXPECT_EQ(r->content[0].signature, "s");
}

TEST(OpenaiCodecUpstreamResponse, ThinkingWithSignatureRoundTripsThroughAClient) {
  Response want;
  want.id = "msg_x";
  want.model = "m";
  want.content = {thinking("deep", "SIG=="), redacted("R3D"), text("answer"),
                  tool_use("t1", "f", R"({"a":1})")};
  want.stop_reason = StopReason::tool_use;
  want.usage = {.input = 1, .output = 2, .cache_read = 3, .reasoning = 1, .reported = true};
  Result<Response> got = openai::decode_response(openai::encode_response(want, Request{}));
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->content.size(), want.content.size());
  for (size_t i = 0; i < want.content.size(); ++i) {
    EXPECT_EQ(got->content[i].kind, want.content[i].kind) << i;
    EXPECT_EQ(got->content[i].text, want.content[i].text) << i;
    EXPECT_EQ(got->content[i].signature, want.content[i].signature) << i;
    EXPECT_EQ(got->content[i].data, want.content[i].data) << i;
    EXPECT_EQ(got->content[i].tool_input, want.content[i].tool_input) << i;
  }
  EXPECT_EQ(got->stop_reason, want.stop_reason);
  EXPECT_EQ(got->usage.input, 1);
  EXPECT_EQ(got->usage.cache_read, 3);
  EXPECT_EQ(got->usage.reasoning, 1);
}

TEST(OpenaiCodecUpstreamResponse, UsageNeverNegativeOrWrapped) {
  Result<Response> r = openai::decode_response(answer(R"({"content":"x"})", R"("stop")",
      R"({"prompt_tokens":10,"completion_tokens":-5,"prompt_tokens_details":{"cached_tokens":50}})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->usage.input, 0);
  EXPECT_EQ(r->usage.cache_read, 10);
  EXPECT_EQ(r->usage.output, 0);
  r = openai::decode_response(answer(R"({"content":"x"})", R"("stop")",
      R"({"prompt_tokens":18446744073709551615,"completion_tokens":1e300})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->usage.input, INT64_MAX);
  EXPECT_GE(r->usage.output, 0);
}

TEST(OpenaiCodecUpstreamResponse, MalformedBodiesAreProtocolErrors) {
  for (const char* body : {"", "not json", "[]", "{}", R"({"choices":[]})",
                           R"({"choices":[5]})", R"({"choices":[{"message":"x"}]})",
                           R"({"choices":[{"message":{"tool_calls":[{"id":"c"}]}}]})"}) {
    Result<Response> r = openai::decode_response(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().code, Errc::upstream_protocol) << body;
  }
}

TEST(OpenaiCodecUpstreamError, TypesFromBodyOrStatus) {
  UpstreamError e = openai::decode_error(
      400, R"({"error":{"message":"This model's maximum context length is 8192 tokens.",
               "type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}})");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.type, "context_length_exceeded");
  EXPECT_EQ(e.message, "This model's maximum context length is 8192 tokens.");
  e = openai::decode_error(400, R"({"error":{"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","code":400}})");
  EXPECT_EQ(e.type, "context_length_exceeded");
  e = openai::decode_error(429, R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})");
  EXPECT_EQ(e.type, "rate_limit_error");
  EXPECT_EQ(e.message, "Rate limit reached");
  e = openai::decode_error(401, R"({"error":{"message":"bad key","code":"invalid_api_key"}})");
  EXPECT_EQ(e.type, "authentication_error");
  e = openai::decode_error(503, "<html>Service Unavailable</html>");
  EXPECT_EQ(e.type, "overloaded_error");
  EXPECT_EQ(e.message, "<html>Service Unavailable</html>");
  e = openai::decode_error(500, "");
  EXPECT_EQ(e.type, "api_error");
  EXPECT_FALSE(e.message.empty());
  e = openai::decode_error(422, R"({"detail":"field required"})");
  EXPECT_EQ(e.type, "invalid_request_error");
  EXPECT_EQ(e.message, "field required");
}

// ---- upstream side: the chunk decoder --------------------------------------------------------

TEST(OpenaiCodecStreamDecoder, ParallelToolCallsFixtureAnySplit) {
  const std::string body = fixture("stream_parallel_tools.sse");
  const std::vector<std::string> whole = decode_stream(body);
  EXPECT_EQ(decode_stream(body, 1), whole);
  EXPECT_EQ(decode_stream(body, 7), whole);
  const std::vector<std::string> want = {
      "start chatcmpl-BpTools gpt-4o-2024-08-06",
      "block_start 0 tool_use call_paris get_weather",
      "delta 0 json {\"lo",
      "delta 0 json cation\": \"Pa",
      "delta 0 json ris\"}",
      "block_stop 0",
      "block_start 1 tool_use call_tokyo get_weather",
      "delta 1 json {\"location\"",
      "delta 1 json : \"Tokyo\"}",
      "block_stop 1",
      "message_delta 4 in=316 cr=1024 out=52 rs=0 reported",
      "stop",
  };
  EXPECT_EQ(whole, want);
}

TEST(OpenaiCodecStreamDecoder, ReasoningFixtureThinkingThenText) {
  const std::string body = fixture("stream_reasoning.sse");
  const std::vector<std::string> whole = decode_stream(body);
  EXPECT_EQ(decode_stream(body, 1), whole);
  const std::vector<std::string> want = {
      "start chatcmpl-r1think deepseek-reasoner",
      "block_start 0 thinking",
      "delta 0 thinking The user asks 9.11 vs 9.9.",
      "delta 0 thinking  0.90 > 0.11.",
      "block_stop 0",
      "block_start 1 text",
      "delta 1 text 9.9 is",
      "delta 1 text  larger.",
      "block_stop 1",
      "message_delta 2 in=17 cr=0 out=40 rs=30 reported",
      "stop",
  };
  EXPECT_EQ(whole, want);
}

TEST(OpenaiCodecStreamDecoder, EncoderOutputDecodesToTheSameEvents) {
  Request req;
  req.model = "m";
  req.stream = true;
  req.include_usage = true;
  auto enc = openai::stream_encoder(req);
  std::string sse;
  const std::vector<Event> events = rich_stream();
  for (const Event& e : events) enc->on_event(e, sse);
  enc->finish(sse);
  std::vector<std::string> want;
  for (const Event& e : events) want.push_back(show(e));
  // The client-side view folds cache_read into prompt_tokens; decoding splits it back.
  EXPECT_EQ(decode_stream(sse), want);
  EXPECT_EQ(decode_stream(sse, 1), want);
}

TEST(OpenaiCodecStreamDecoder, LiteLlmThinkingBlocksAreNotDuplicated) {
  const std::string body =
      "data: {\"id\":\"c\",\"model\":\"claude\",\"choices\":[{\"index\":0,\"delta\":{"
      "\"reasoning_content\":\"abc\",\"thinking_blocks\":[{\"type\":\"thinking\","
      "\"thinking\":\"abc\"}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"thinking_blocks\":[{\"type\":\"thinking\","
      "\"thinking\":\"\",\"signature\":\"S1\"}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"second\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\n"
      "data: [DONE]\n\n";
  const std::vector<std::string> want = {
      "start c claude",        "block_start 0 thinking", "delta 0 thinking abc",
      "delta 0 sig S1",        "block_stop 0",           "block_start 1 thinking",
      "delta 1 thinking second", "block_stop 1",         "block_start 2 text",
      "delta 2 text hi",       "block_stop 2",           "message_delta 1 in=0 cr=0 out=0 rs=0",
      "stop"};
  EXPECT_EQ(decode_stream(body), want);
  EXPECT_EQ(decode_stream(body, 1), want);
}

TEST(OpenaiCodecStreamDecoder, ErrorChunkMidStream) {
  const std::string head =
      "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n";
  std::vector<std::string> got = decode_stream(
      head + "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\","
             "\"param\":null,\"code\":null}}\n\ndata: [DONE]\n\n");
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[1], "block_start 0 text");
  EXPECT_EQ(got.back(), "error 502 api_error The server had an error");
  got = decode_stream(head + "data: {\"error\":{\"message\":\"slow\",\"code\":429}}\n\n");
  EXPECT_EQ(got.back(), "error 429 rate_limit_error slow");
  got = decode_stream(head + "data: {\"error\":{\"message\":\"maximum context length exceeded\","
                             "\"code\":400}}\n\n");
  EXPECT_EQ(got.back(), "error 400 context_length_exceeded maximum context length exceeded");
}

TEST(OpenaiCodecStreamDecoder, EofWithoutDone) {
  const std::string chunk =
      "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n";
  std::vector<std::string> got = decode_stream(chunk);
  EXPECT_EQ(got.back(), "error 502 api_error upstream stream ended early");
  EXPECT_EQ(got.size(), 4u);
  got = decode_stream(chunk + "data: {\"choices\":[{\"index\":0,\"delta\":{},"
                              "\"finish_reason\":\"length\"}]}\n\n");
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[3], "block_stop 0");
  EXPECT_EQ(got[4], "message_delta 2 in=0 cr=0 out=0 rs=0");
  EXPECT_EQ(got[5], "stop");
  // A last [DONE] without its blank line still ends the stream.
  got = decode_stream(chunk + "data: [DONE]");
  EXPECT_EQ(got.back(), "stop");
  got = decode_stream("");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "error 502 api_error upstream stream ended early");
}

TEST(OpenaiCodecStreamDecoder, MalformedChunksNeverCrash) {
  for (const char* body :
       {"data: {not json\n\n", "data: [1,2]\n\n", "data: \"str\"\n\ndata: [DONE]\n\n"}) {
    std::vector<std::string> got = decode_stream(body);
    ASSERT_EQ(got.size(), 1u) << body;
    EXPECT_EQ(got[0], "error 502 api_error upstream sent a malformed stream chunk");
  }
  // Odd but valid shapes are tolerated.
  std::vector<std::string> got = decode_stream(
      "data: {\"choices\":5,\"usage\":7}\n\n"
      "data: {\"choices\":[{\"delta\":{\"tool_calls\":[5,{\"index\":\"x\"},{\"index\":-1}]}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":7,\"tool_calls\":{}}}]}\n\n: comment\n\n"
      "data: [DONE]\n\n");
  EXPECT_EQ(got.back(), "stop");
}

TEST(OpenaiCodecStreamDecoder, InterleavedToolDeltasAreDroppedAndCounted) {
  const std::string body =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\","
      "\"function\":{\"name\":\"f\",\"arguments\":\"{\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"b\","
      "\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
      "\"function\":{\"arguments\":\"}\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
      "data: [DONE]\n\n";
  size_t dropped = 0;
  std::vector<std::string> got = decode_stream(body, 0, &dropped);
  EXPECT_EQ(dropped, 1u);
  const std::vector<std::string> want = {
      "start  ",           "block_start 0 tool_use a f", "delta 0 json {",
      "block_stop 0",      "block_start 1 tool_use b g", "delta 1 json {}",
      "block_stop 1",      "message_delta 4 in=0 cr=0 out=0 rs=0",
      "stop"};
  EXPECT_EQ(got, want);
}

TEST(OpenaiCodecStreamDecoder, RefusalDeltaEndsAsRefusal) {
  std::vector<std::string> got = decode_stream(
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"No.\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      "data: [DONE]\n\n");
  ASSERT_GE(got.size(), 3u);
  EXPECT_EQ(got[2], "delta 0 text No.");
  EXPECT_EQ(got[got.size() - 2], "message_delta 5 in=0 cr=0 out=0 rs=0");
}

}  // namespace
}  // namespace sluice::canonical
