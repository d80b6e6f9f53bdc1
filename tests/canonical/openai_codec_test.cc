// The OpenAI Chat Completions codec: client side (decode_request, encode_response, the chunk
// encoder, encode_error) and upstream side (encode_request, decode_response, the chunk decoder,
// decode_error), with hand-written fixtures under tests/testdata/openai/.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "canonical/codec.h"
#include "canonical/json.h"
#include "providers/openai/stream_decoder.h"

namespace sluice::canonical {
namespace {

std::string fixture(const std::string& name) {
  std::ifstream f(std::string(SLUICE_TESTDATA) + "/openai/" + name, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

json::object parse_obj(std::string_view text) {
  auto v = parse_json(text);
  EXPECT_TRUE(v.ok()) << text;
  if (!v.ok() || !v->is_object()) return {};
  return v->as_object();
}

const char* kind_name(BlockKind k) {
  switch (k) {
    case BlockKind::text: return "text";
    case BlockKind::image: return "image";
    case BlockKind::tool_use: return "tool_use";
    case BlockKind::tool_result: return "tool_result";
    case BlockKind::thinking: return "thinking";
    case BlockKind::redacted_thinking: return "redacted";
  }
  return "?";
}

const char* delta_name(DeltaKind k) {
  switch (k) {
    case DeltaKind::text: return "text";
    case DeltaKind::input_json: return "json";
    case DeltaKind::thinking: return "thinking";
    case DeltaKind::signature: return "sig";
  }
  return "?";
}

// One line per event, everything a test may compare.
std::string show(const Event& e) {
  switch (e.kind) {
    case EventKind::message_start: return "start " + e.id + " " + e.model;
    case EventKind::block_start:
      return "block_start " + std::to_string(e.index) + " " + kind_name(e.block) +
             (e.block == BlockKind::tool_use ? " " + e.tool_id + " " + e.tool_name : "");
    case EventKind::block_delta:
      return "delta " + std::to_string(e.index) + " " + delta_name(e.delta) + " " + e.text;
    case EventKind::block_stop: return "block_stop " + std::to_string(e.index);
    case EventKind::message_delta:
      return "message_delta " + std::to_string(static_cast<int>(e.stop_reason)) + " in=" +
             std::to_string(e.usage.input) + " cr=" + std::to_string(e.usage.cache_read) +
             " out=" + std::to_string(e.usage.output) + " rs=" +
             std::to_string(e.usage.reasoning) + (e.usage.reported ? " reported" : "");
    case EventKind::message_stop: return "stop";
    case EventKind::error:
      return "error " + std::to_string(e.status) + " " + e.error_type + " " + e.text;
  }
  return "?";
}

std::vector<std::string> decode_stream(std::string_view body, size_t piece = 0,
                                       size_t* dropped = nullptr) {
  auto dec = std::make_unique<openai::ChunkDecoder>();
  std::vector<Event> events;
  if (piece == 0) {
    dec->feed(body, events);
  } else {
    for (size_t i = 0; i < body.size(); i += piece) dec->feed(body.substr(i, piece), events);
  }
  dec->finish(events);
  if (dropped) *dropped = dec->dropped_deltas();
  std::vector<std::string> out;
  for (const Event& e : events) out.push_back(show(e));
  return out;
}

// The `data:` payloads of an SSE body.
std::vector<std::string> data_lines(const std::string& sse) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = sse.find("data: ", pos)) != std::string::npos) {
    const size_t end = sse.find("\n\n", pos);
    out.push_back(sse.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

Request decode_ok(std::string_view body) {
  Result<Request> r = openai::decode_request(body, {});
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message) << "\n" << body;
  return r.ok() ? r.value() : Request{};
}

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

Block thinking(std::string text, std::string sig) {
  Block b;
  b.kind = BlockKind::thinking;
  b.text = std::move(text);
  b.signature = std::move(sig);
  return b;
}
Block redacted(std::string data) {
  Block b;
  b.kind = BlockKind::redacted_thinking;
  b.data = std::move(data);
  return b;
}
Block text(std::string t) {
  Block b;
  b.text = std::move(t);
  return b;
}
Block tool_use(std::string id, std::string name, std::string input) {
  Block b;
  b.kind = BlockKind::tool_use;
  b.tool_id = std::move(id);
  b.tool_name = std::move(name);
  b.tool_input = std::move(input);
  return b;
}

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

Event ev(EventKind k) {
  Event e;
  e.kind = k;
  return e;
}
Event bstart(int i, BlockKind k, std::string id = {}, std::string name = {}) {
  Event e = ev(EventKind::block_start);
  e.index = i;
  e.block = k;
  e.tool_id = std::move(id);
  e.tool_name = std::move(name);
  return e;
}
Event bdelta(int i, DeltaKind k, std::string t) {
  Event e = ev(EventKind::block_delta);
  e.index = i;
  e.delta = k;
  e.text = std::move(t);
  return e;
}
Event bstop(int i) {
  Event e = ev(EventKind::block_stop);
  e.index = i;
  return e;
}

// A canonical stream using every block kind an OpenAI client can receive.
std::vector<Event> rich_stream() {
  Event start = ev(EventKind::message_start);
  start.id = "chatcmpl-rich";
  start.model = "gw-model";
  Event md = ev(EventKind::message_delta);
  md.stop_reason = StopReason::tool_use;
  md.usage = {.input = 3, .output = 9, .cache_read = 4, .reasoning = 2, .reported = true};
  return {start,
          bstart(0, BlockKind::thinking), bdelta(0, DeltaKind::thinking, "Hmm, "),
          bdelta(0, DeltaKind::thinking, "two cities."), bdelta(0, DeltaKind::signature, "sig0"),
          bstop(0),
          bstart(1, BlockKind::redacted_thinking), bdelta(1, DeltaKind::signature, "REDACTED"),
          bstop(1),
          bstart(2, BlockKind::text), bdelta(2, DeltaKind::text, "Checking."), bstop(2),
          bstart(3, BlockKind::tool_use, "call_a", "get_weather"),
          bdelta(3, DeltaKind::input_json, "{\"city\":"), bdelta(3, DeltaKind::input_json, "\"Paris\"}"),
          bstop(3),
          bstart(4, BlockKind::tool_use, "call_b", "get_time"),
          bdelta(4, DeltaKind::input_json, "{}"), bstop(4),
          md, ev(EventKind::message_stop)};
}

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

// ---- upstream side: encode_request ----------------------------------------------------------

Request full_request() {
  Request r;
  r.model = "gpt-4o";
  r.system = {text("Rule one."), text("Rule two.")};
  Message u1;
  u1.content = {text("Look:"), Block{}};
  u1.content[1].kind = BlockKind::image;
  u1.content[1].image_media_type = "image/jpeg";
  u1.content[1].image_data = "/9j/4AAQ";
  Block url_img;
  url_img.kind = BlockKind::image;
  url_img.image_url = "https://example.com/a.png";
  u1.content.push_back(url_img);
  Message a1;
  a1.role = Role::assistant;
  a1.content = {thinking("private", "sig"), text("Calling."),
                tool_use("call_1", "get_weather", R"({"city":"Paris"})"),
                tool_use("call_2", "get_weather", R"({"city":"Oslo"})")};
  Message u2;
  Block r1;
  r1.kind = BlockKind::tool_result;
  r1.tool_id = "call_1";
  r1.tool_name = "get_weather";
  r1.content = {text("18C")};
  Block r2 = r1;
  r2.tool_id = "call_2";
  r2.content = {text("3C"), text("windy")};
  u2.content = {r1, r2, text("Summarise.")};
  r.messages = {u1, a1, u2};
  Tool t;
  t.name = "get_weather";
  t.description = "Weather";
  t.parameters = R"({"type":"object","properties":{"city":{"type":"string"}}})";
  r.tools = {t};
  r.tool_choice = {ToolChoiceKind::named, "get_weather"};
  r.parallel_tool_calls = true;
  r.max_tokens = 512;
  r.temperature = 0.25;
  r.top_p = 0.5;
  r.top_k = 20;
  r.stop = {"END"};
  r.stream = true;
  r.include_usage = true;
  r.reasoning_effort = "high";
  r.user = "u-9";
  return r;
}

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

std::string answer(std::string_view message, std::string_view finish,
                   std::string_view usage = "") {
  return std::string(R"({"id":"x","model":"m","choices":[{"index":0,"message":)") +
         std::string(message) + R"(,"finish_reason":)" + std::string(finish) + "}]" +
         (usage.empty() ? "" : ",\"usage\":" + std::string(usage)) + "}";
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
