#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "canonical/codec.h"
#include "canonical/json.h"

namespace sluice::canonical {
namespace {

std::string fixture(const std::string& name) {
  std::ifstream f(std::string(SLUICE_TESTDATA) + "/gemini/" + name, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_FALSE(ss.str().empty()) << name;
  return ss.str();
}

json::value J(std::string_view text) { return json::parse(text); }

Request decode_ok(std::string_view body, std::string model = "gemini-2.5-flash",
                  bool stream = false) {
  auto r = gemini::decode_request(body, {model, stream});
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message + " @ " + r.error().param);
  return r.ok() ? r.value() : Request{};
}

std::string decode_err(std::string_view body) {
  auto r = gemini::decode_request(body, {"m", false});
  EXPECT_FALSE(r.ok()) << body;
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, Errc::bad_request);
  return r.error().param;
}

std::string describe(const Event& e) {
  std::ostringstream o;
  o << static_cast<int>(e.kind) << "|" << e.index << "|";
  switch (e.kind) {
    case EventKind::message_start: o << "start " << e.id << " " << e.model; break;
    case EventKind::block_start:
      o << "bstart " << static_cast<int>(e.block) << " " << e.tool_id << " " << e.tool_name;
      break;
    case EventKind::block_delta: o << "delta " << static_cast<int>(e.delta) << " " << e.text; break;
    case EventKind::block_stop: o << "bstop"; break;
    case EventKind::message_delta:
      o << "mdelta " << static_cast<int>(e.stop_reason) << " in=" << e.usage.input
        << " out=" << e.usage.output << " cr=" << e.usage.cache_read
        << " rs=" << e.usage.reasoning;
      break;
    case EventKind::message_stop: o << "mstop"; break;
    case EventKind::error: o << "error " << e.status << " " << e.error_type << " " << e.text; break;
  }
  return o.str();
}

std::vector<std::string> run_decoder(std::string_view body, size_t piece) {
  auto d = gemini::stream_decoder();
  std::vector<Event> events;
  if (piece == 0) {
    d->feed(body, events);
  } else {
    for (size_t i = 0; i < body.size(); i += piece) d->feed(body.substr(i, piece), events);
  }
  d->finish(events);
  std::vector<std::string> out;
  for (const Event& e : events) out.push_back(describe(e));
  return out;
}

std::vector<Event> decode_events(std::string_view body) {
  auto d = gemini::stream_decoder();
  std::vector<Event> events;
  d->feed(body, events);
  d->finish(events);
  return events;
}

// The JSON objects of each `data:` line of an alt=sse body.
std::vector<json::value> sse_chunks(std::string_view sse) {
  std::vector<json::value> out;
  size_t pos = 0;
  while ((pos = sse.find("data: ", pos)) != std::string_view::npos) {
    size_t end = sse.find("\n\n", pos);
    out.push_back(J(sse.substr(pos + 6, end - pos - 6)));
    pos = end;
  }
  return out;
}

Block text_block(std::string t) {
  Block b;
  b.text = std::move(t);
  return b;
}

Event ev_of(EventKind k, int index = 0) {
  Event e;
  e.kind = k;
  e.index = index;
  return e;
}
Event start_of(int index, BlockKind b) {
  Event e = ev_of(EventKind::block_start, index);
  e.block = b;
  return e;
}
Event delta_of(int index, DeltaKind d, std::string text) {
  Event e = ev_of(EventKind::block_delta, index);
  e.delta = d;
  e.text = std::move(text);
  return e;
}

// ---- client side: decode_request ----------------------------------------------------------

TEST(GeminiCodecRequest, DecodesTheFullFixture) {
  Request r = decode_ok(fixture("request_full.json"), "models/gemini-2.5-flash", true);
  EXPECT_EQ(r.model, "gemini-2.5-flash");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  ASSERT_EQ(r.system.size(), 2u);
  EXPECT_EQ(r.system[1].text, "Be brief.");
  ASSERT_EQ(r.messages.size(), 4u);

  const auto& u0 = r.messages[0].content;
  EXPECT_EQ(r.messages[0].role, Role::user);
  ASSERT_EQ(u0.size(), 3u);
  EXPECT_EQ(u0[1].kind, BlockKind::image);
  EXPECT_EQ(u0[1].image_media_type, "image/png");
  EXPECT_EQ(u0[1].image_data, "iVBORw0KGgo=");
  EXPECT_EQ(u0[2].image_url, "https://example.com/sky.jpg");
  EXPECT_EQ(u0[2].image_media_type, "image/jpeg");

  const auto& a1 = r.messages[1].content;
  EXPECT_EQ(r.messages[1].role, Role::assistant);
  ASSERT_EQ(a1.size(), 4u);
  EXPECT_EQ(a1[0].kind, BlockKind::thinking);
  EXPECT_EQ(a1[0].text, "Thinking about cities");
  EXPECT_EQ(a1[0].signature, "c2lnLXRob3VnaHQ=");
  EXPECT_EQ(a1[1].kind, BlockKind::thinking);  // the functionCall's signature, just before it
  EXPECT_EQ(a1[1].text, "");
  EXPECT_EQ(a1[1].signature, "c2lnLWNhbGw=");
  EXPECT_EQ(a1[2].kind, BlockKind::tool_use);
  EXPECT_EQ(a1[2].tool_id, "call_0");
  EXPECT_EQ(a1[2].tool_name, "get_weather");
  EXPECT_EQ(a1[2].tool_input, R"({"location":"Paris"})");
  EXPECT_EQ(a1[3].tool_id, "fc-london");

  const auto& u2 = r.messages[2].content;
  ASSERT_EQ(u2.size(), 2u);
  EXPECT_EQ(u2[0].kind, BlockKind::tool_result);
  EXPECT_EQ(u2[0].tool_id, "call_0");  // the oldest unanswered call of that name
  EXPECT_EQ(u2[0].tool_name, "get_weather");
  ASSERT_EQ(u2[0].content.size(), 1u);
  EXPECT_EQ(u2[0].content[0].text, R"({"temperature":21,"sky":"clear"})");
  EXPECT_FALSE(u2[0].is_error);
  EXPECT_EQ(u2[1].tool_id, "fc-london");
  EXPECT_TRUE(u2[1].is_error);
  EXPECT_EQ(u2[1].content[0].text, "station offline");
  EXPECT_EQ(r.messages[3].role, Role::user);  // role absent → user

  ASSERT_EQ(r.tools.size(), 1u);  // googleSearch dropped
  EXPECT_EQ(r.tools[0].name, "get_weather");
  EXPECT_EQ(r.tools[0].description, "Current weather");
  EXPECT_EQ(J(r.tools[0].parameters),
            J(R"({"type":"object","properties":{"location":{"type":"string"}},
                  "required":["location"]})"));
  EXPECT_EQ(r.tool_choice.kind, ToolChoiceKind::named);
  EXPECT_EQ(r.tool_choice.name, "get_weather");
  EXPECT_EQ(r.max_tokens, 2048);
  EXPECT_EQ(r.temperature, 0.5);
  EXPECT_EQ(r.top_p, 0.9);
  EXPECT_EQ(r.top_k, 40);
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(r.thinking_budget, 1024);
}

TEST(GeminiCodecRequest, FunctionCallingModes) {
  auto mode = [](std::string_view cfg) {
    std::string body = R"({"contents":[{"parts":[{"text":"hi"}]}],)";
    body += R"("toolConfig":{"functionCallingConfig":)";
    body += cfg;
    body += "}}";
    return decode_ok(body).tool_choice;
  };
  EXPECT_EQ(mode(R"({"mode":"AUTO"})").kind, ToolChoiceKind::auto_);
  EXPECT_EQ(mode(R"({"mode":"VALIDATED"})").kind, ToolChoiceKind::auto_);
  EXPECT_EQ(mode(R"({"mode":"NONE"})").kind, ToolChoiceKind::none);
  EXPECT_EQ(mode(R"({"mode":"ANY"})").kind, ToolChoiceKind::required);
  EXPECT_EQ(mode(R"({"mode":"ANY","allowedFunctionNames":["a","b"]})").kind,
            ToolChoiceKind::required);
  EXPECT_EQ(mode(R"({"mode":"ANY","allowedFunctionNames":["a"]})").name, "a");
  EXPECT_EQ(decode_err(R"({"contents":[{"parts":[{"text":"x"}]}],
                           "toolConfig":{"functionCallingConfig":{"mode":"SOMETIMES"}}})"),
            "toolConfig.functionCallingConfig.mode");
}

TEST(GeminiCodecRequest, FunctionResponseShapes) {
  Request r = decode_ok(R"({"contents":[{"role":"user","parts":[
      {"functionResponse":{"name":"a","response":{"result":"plain"}}},
      {"functionResponse":{"name":"b","response":{"output":"out"}}},
      {"functionResponse":{"name":"c","response":{"result":{"nested":true}}}}]}]})");
  const auto& c = r.messages[0].content;
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].tool_id, "a");  // no id, no earlier call: the name
  EXPECT_EQ(c[0].content[0].text, "plain");
  EXPECT_EQ(c[1].content[0].text, "out");
  EXPECT_EQ(c[2].content[0].text, R"({"result":{"nested":true}})");

  // Parallel calls of one name without ids: id-less responses answer them in order.
  r = decode_ok(R"({"contents":[
      {"role":"model","parts":[{"functionCall":{"name":"f","args":{"i":1}}},
                               {"functionCall":{"name":"f","args":{"i":2}}}]},
      {"role":"user","parts":[{"functionResponse":{"name":"f","response":{"r":1}}},
                              {"functionResponse":{"name":"f","response":{"r":2}}},
                              {"functionResponse":{"name":"f","response":{"r":3}}}]}]})");
  const auto& res = r.messages[1].content;
  EXPECT_EQ(r.messages[0].content[1].tool_id, "call_1");
  EXPECT_EQ(res[0].tool_id, "call_0");
  EXPECT_EQ(res[1].tool_id, "call_1");
  EXPECT_EQ(res[2].tool_id, "call_1");  // none left unanswered: the latest call of that name
}

TEST(GeminiCodecRequest, ValidationErrorsNameTheParam) {
  EXPECT_EQ(decode_err("{"), "");
  EXPECT_EQ(decode_err("[]"), "");
  EXPECT_EQ(decode_err("{}"), "contents");
  EXPECT_EQ(decode_err(R"({"contents":[]})"), "contents");
  EXPECT_EQ(decode_err(R"({"contents":[{"role":"system","parts":[]}]})"), "contents[0].role");
  EXPECT_EQ(decode_err(R"({"contents":[{"role":"user"}]})"), "contents[0].parts");
  EXPECT_EQ(decode_err(R"({"contents":[{"parts":["x"]}]})"), "contents[0].parts[0]");
  EXPECT_EQ(decode_err(R"({"contents":[{"parts":[{"text":3}]}]})"), "contents[0].parts[0].text");
  EXPECT_EQ(decode_err(R"({"contents":[{"parts":[{"bogus":1}]}]})"), "contents[0].parts[0]");
  EXPECT_EQ(decode_err(R"({"contents":[{"parts":[{"text":"a"},{"functionCall":{"args":{}}}]}]})"),
            "contents[0].parts[1].functionCall.name");
  EXPECT_EQ(decode_err(R"({"contents":[{"parts":[{"functionCall":{"name":"f","args":[1]}}]}]})"),
            "contents[0].parts[0].functionCall.args");
  EXPECT_EQ(decode_err(R"({"contents":[{"parts":[{"inlineData":{"mimeType":"image/png"}}]}]})"),
            "contents[0].parts[0].inlineData.data");
  EXPECT_EQ(decode_err(R"({"contents":[{"parts":[{"text":"a"}]}],
                           "generationConfig":{"candidateCount":2}})"),
            "generationConfig.candidateCount");
  EXPECT_EQ(decode_err(R"({"contents":[{"parts":[{"text":"a"}]}],
                           "generationConfig":{"temperature":"hot"}})"),
            "generationConfig.temperature");
  EXPECT_EQ(decode_err(R"({"contents":[{"parts":[{"text":"a"}]}],
                           "tools":[{"functionDeclarations":[{"description":"x"}]}]})"),
            "tools[0].functionDeclarations[0].name");
  EXPECT_EQ(decode_err(R"({"contents":[{"parts":[{"text":"a"}]}],
                           "systemInstruction":{"parts":[{"inlineData":{}}]}})"),
            "systemInstruction.parts[0]");
  auto no_model = gemini::decode_request(R"({"contents":[{"parts":[{"text":"a"}]}]})", {});
  ASSERT_FALSE(no_model.ok());
  EXPECT_EQ(no_model.error().param, "model");
}

// ---- client side: encode_response, stream encoder, errors ----------------------------------

TEST(GeminiCodecResponse, EncodesPartsUsageAndIds) {
  Response r;
  r.id = "resp-1";
  r.model = "my-alias";
  Block th;
  th.kind = BlockKind::thinking;
  th.text = "hmm";
  th.signature = "sigA";
  r.content.push_back(th);
  r.content.push_back(text_block("Hello"));
  Block red;
  red.kind = BlockKind::redacted_thinking;
  red.data = "opaque";
  r.content.push_back(red);
  Block sig;
  sig.kind = BlockKind::thinking;
  sig.signature = "sigB";
  r.content.push_back(sig);
  Block call;
  call.kind = BlockKind::tool_use;
  call.tool_id = "t1";
  call.tool_name = "f";
  call.tool_input = R"({"x":1})";
  r.content.push_back(call);
  call.tool_id = "";
  call.tool_input = "not json";
  r.content.push_back(call);
  r.stop_reason = StopReason::tool_use;
  r.usage.input = 10;
  r.usage.output = 50;
  r.usage.cache_read = 5;
  r.usage.cache_creation = 2;
  r.usage.reasoning = 30;

  json::value v = J(gemini::encode_response(r, Request{}));
  EXPECT_EQ(v, J(R"({"candidates":[{"content":{"role":"model","parts":[
      {"text":"hmm","thought":true,"thoughtSignature":"sigA"},
      {"text":"Hello"},
      {"functionCall":{"id":"t1","name":"f","args":{"x":1}},"thoughtSignature":"sigB"},
      {"functionCall":{"name":"f","args":{"_raw_arguments":"not json"}}}]},
      "finishReason":"STOP","index":0}],
      "usageMetadata":{"promptTokenCount":17,"candidatesTokenCount":20,"totalTokenCount":67,
                       "cachedContentTokenCount":5,"thoughtsTokenCount":30},
      "modelVersion":"my-alias","responseId":"resp-1"})"));
}

TEST(GeminiCodecResponse, EveryStopReasonAndGeneratedId) {
  const std::pair<StopReason, std::string_view> cases[] = {
      {StopReason::end_turn, "STOP"},       {StopReason::max_tokens, "MAX_TOKENS"},
      {StopReason::stop_sequence, "STOP"},  {StopReason::tool_use, "STOP"},
      {StopReason::refusal, "SAFETY"},      {StopReason::pause_turn, "STOP"},
      {StopReason::error, "OTHER"},         {StopReason::unset, "STOP"}};
  for (auto [reason, want] : cases) {
    Response r;
    r.stop_reason = reason;
    r.content.push_back(text_block("x"));
    Request req;
    req.model = "m";
    json::value v = J(gemini::encode_response(r, req));
    EXPECT_EQ(v.at("candidates").at(0).at("finishReason").as_string(), want);
    EXPECT_FALSE(v.at("responseId").as_string().empty());
    EXPECT_EQ(v.at("modelVersion").as_string(), "m");
  }
}

TEST(GeminiCodecResponse, UsageNeverNegative) {
  Response r;
  r.usage.output = 5;
  r.usage.reasoning = 9;  // inconsistent upstream numbers
  json::value v = J(gemini::encode_response(r, Request{}));
  EXPECT_EQ(v.at("usageMetadata").at("candidatesTokenCount").as_int64(), 0);
}

TEST(GeminiCodecStream, EncodesEventsAsGenerateContentChunks) {
  Request req;
  req.model = "alias";
  auto enc = gemini::stream_encoder(req);
  std::string out;
  auto ev = [&](Event e) { enc->on_event(e, out); };
  Event e;
  e.kind = EventKind::message_start;
  e.id = "r1";
  e.usage.input = 7;
  ev(e);
  e = start_of(0, BlockKind::thinking);
  ev(e);
  ev(delta_of(0, DeltaKind::thinking, "think"));
  ev(delta_of(0, DeltaKind::signature, "S1"));
  ev(ev_of(EventKind::block_stop, 0));
  ev(start_of(1, BlockKind::text));
  ev(delta_of(1, DeltaKind::text, "Hi"));
  ev(ev_of(EventKind::block_stop, 1));
  ev(start_of(2, BlockKind::thinking));
  ev(delta_of(2, DeltaKind::signature, "S2"));
  ev(ev_of(EventKind::block_stop, 2));
  e = start_of(3, BlockKind::tool_use);
  e.tool_id = "c1";
  e.tool_name = "f";
  ev(e);
  const std::string before_args = out;
  ev(delta_of(3, DeltaKind::input_json, "{\"a\""));
  ev(delta_of(3, DeltaKind::input_json, ":1}"));
  EXPECT_EQ(out, before_args);  // whole calls only
  ev(ev_of(EventKind::block_stop, 3));
  e = ev_of(EventKind::message_delta);
  e.stop_reason = StopReason::tool_use;
  e.usage.output = 12;
  e.usage.reasoning = 4;
  ev(e);
  ev(ev_of(EventKind::message_stop));
  enc->finish(out);

  EXPECT_EQ(out.substr(0, 6), "data: ");
  EXPECT_EQ(out.substr(out.size() - 2), "\n\n");
  auto chunks = sse_chunks(out);
  ASSERT_EQ(chunks.size(), 5u);
  auto part = [&](size_t i) {
    return chunks[i].at("candidates").at(0).at("content").at("parts").at(0);
  };
  EXPECT_EQ(part(0), J(R"({"text":"think","thought":true})"));
  EXPECT_EQ(part(1), J(R"({"text":"","thought":true,"thoughtSignature":"S1"})"));
  EXPECT_EQ(part(2), J(R"({"text":"Hi"})"));
  EXPECT_EQ(part(3), J(R"({"functionCall":{"id":"c1","name":"f","args":{"a":1}},
                          "thoughtSignature":"S2"})"));
  EXPECT_EQ(part(4), J(R"({"text":""})"));
  EXPECT_EQ(chunks[4].at("candidates").at(0).at("finishReason").as_string(), "STOP");
  EXPECT_EQ(chunks[4].at("usageMetadata"),
            J(R"({"promptTokenCount":7,"candidatesTokenCount":8,"totalTokenCount":19,
                  "thoughtsTokenCount":4})"));
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(chunks[i].at("modelVersion").as_string(), "alias");
    EXPECT_EQ(chunks[i].at("responseId").as_string(), "r1");
  }
  std::string failed;
  enc->fail(503, "busy", failed);
  EXPECT_EQ(failed,
            "data: {\"error\":{\"code\":503,\"message\":\"busy\",\"status\":\"UNAVAILABLE\"}}\n\n");
}

TEST(GeminiCodecStream, ErrorEventAndEncodeError) {
  auto enc = gemini::stream_encoder(Request{});
  std::string out;
  Event e = ev_of(EventKind::error);
  e.text = "slow down";
  e.status = 429;
  enc->on_event(e, out);
  EXPECT_EQ(sse_chunks(out).at(0),
            J(R"({"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}})"));
  ErrorBody b = gemini::encode_error(400, "bad \"thing\"");
  EXPECT_EQ(b.status, 400);
  EXPECT_EQ(J(b.body), J(R"({"error":{"code":400,"message":"bad \"thing\"",
                                      "status":"INVALID_ARGUMENT"}})"));
}

// ---- upstream side: encode_request ----------------------------------------------------------

Request sample_request() {
  Request r;
  r.model = "client-name";
  r.system.push_back(text_block("Be brief."));
  Message u;
  u.content.push_back(text_block("Look"));
  Block img;
  img.kind = BlockKind::image;
  img.image_media_type = "image/png";
  img.image_data = "AAAA";
  u.content.push_back(img);
  Block url;
  url.kind = BlockKind::image;
  url.image_url = "https://x.test/a.webp?size=2";
  u.content.push_back(url);
  r.messages.push_back(u);
  Message a;
  a.role = Role::assistant;
  Block th;
  th.kind = BlockKind::thinking;
  th.text = "unsigned thought";
  a.content.push_back(th);
  Block sig;
  sig.kind = BlockKind::thinking;
  sig.signature = "SIG";
  a.content.push_back(sig);
  Block call;
  call.kind = BlockKind::tool_use;
  call.tool_id = "toolu_1";
  call.tool_name = "lookup";
  call.tool_input = R"({"q":"a"})";
  a.content.push_back(call);
  call.tool_id = "toolu_2";
  call.tool_input = R"({"q":"b"})";
  a.content.push_back(call);
  r.messages.push_back(a);
  Message t1;
  Block res;
  res.kind = BlockKind::tool_result;
  res.tool_id = "toolu_1";
  res.content.push_back(text_block(R"({"hits":3})"));
  t1.content.push_back(res);
  r.messages.push_back(t1);
  Message t2;  // a second user message (OpenAI sends one tool message per result)
  res.tool_id = "toolu_2";
  res.is_error = true;
  res.content = {text_block("timeout")};
  t2.content.push_back(res);
  r.messages.push_back(t2);
  Tool tool;
  tool.name = "lookup";
  tool.description = "Search";
  tool.parameters = R"({"type":"object","properties":{"q":{"type":"string"}}})";
  r.tools.push_back(tool);
  tool.name = "noargs";
  tool.parameters = R"({"type":"object","properties":{}})";
  r.tools.push_back(tool);
  r.tool_choice = {ToolChoiceKind::named, "lookup"};
  r.max_tokens = 100;
  r.temperature = 0.25;
  r.top_p = 0.5;
  r.top_k = 3;
  r.stop = {"X"};
  r.thinking_budget = 2048;
  return r;
}

TEST(GeminiCodecUpstream, EncodesRequest) {
  json::value v = J(gemini::encode_request(sample_request(), "gemini-2.5-pro"));
  EXPECT_EQ(v, J(R"({
    "contents":[
      {"role":"user","parts":[{"text":"Look"},
        {"inlineData":{"mimeType":"image/png","data":"AAAA"}},
        {"fileData":{"mimeType":"image/webp","fileUri":"https://x.test/a.webp?size=2"}}]},
      {"role":"model","parts":[
        {"functionCall":{"id":"toolu_1","name":"lookup","args":{"q":"a"}},"thoughtSignature":"SIG"},
        {"functionCall":{"id":"toolu_2","name":"lookup","args":{"q":"b"}}}]},
      {"role":"user","parts":[
        {"functionResponse":{"id":"toolu_1","name":"lookup","response":{"hits":3}}},
        {"functionResponse":{"id":"toolu_2","name":"lookup","response":{"error":"timeout"}}}]}],
    "systemInstruction":{"parts":[{"text":"Be brief."}]},
    "tools":[{"functionDeclarations":[
      {"name":"lookup","description":"Search",
       "parameters":{"type":"object","properties":{"q":{"type":"string"}}}},
      {"name":"noargs","description":"Search"}]}],
    "toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["lookup"]}},
    "generationConfig":{"maxOutputTokens":100,"temperature":0.25,"topP":0.5,"topK":3,
      "stopSequences":["X"],"thinkingConfig":{"thinkingBudget":2048,"includeThoughts":true}}})"));
}

TEST(GeminiCodecUpstream, ToolChoiceEffortAndResultShapes) {
  auto gen = [](Request r) { return J(gemini::encode_request(r, "m")); };
  Request r;
  r.messages.push_back({Role::user, {text_block("hi")}});
  r.tool_choice.kind = ToolChoiceKind::auto_;
  EXPECT_EQ(gen(r).at("toolConfig"), J(R"({"functionCallingConfig":{"mode":"AUTO"}})"));
  r.tool_choice.kind = ToolChoiceKind::none;
  EXPECT_EQ(gen(r).at("toolConfig"), J(R"({"functionCallingConfig":{"mode":"NONE"}})"));
  r.tool_choice.kind = ToolChoiceKind::required;
  EXPECT_EQ(gen(r).at("toolConfig"), J(R"({"functionCallingConfig":{"mode":"ANY"}})"));
  r.tool_choice.kind = ToolChoiceKind::unset;
  EXPECT_FALSE(gen(r).as_object().contains("toolConfig"));
  EXPECT_FALSE(gen(r).as_object().contains("generationConfig"));
  EXPECT_FALSE(gen(r).as_object().contains("model"));
  r.reasoning_effort = "medium";
  EXPECT_EQ(gen(r).at("generationConfig").at("thinkingConfig").at("thinkingBudget"), 4096);
  r.reasoning_effort = "high";
  EXPECT_EQ(gen(r).at("generationConfig").at("thinkingConfig").at("thinkingBudget"), 16384);
  r.reasoning_effort = "low";
  EXPECT_EQ(gen(r).at("generationConfig").at("thinkingConfig").at("thinkingBudget"), 1024);

  Block res;
  res.kind = BlockKind::tool_result;
  res.tool_id = "orphan";
  res.content = {text_block("sunny")};
  Block url;
  url.kind = BlockKind::image;
  url.image_url = "https://x.test/photo";
  r.messages.push_back({Role::user, {res, url}});
  json::value v = gen(r);
  // The two user messages merge into one Content.
  ASSERT_EQ(v.at("contents").as_array().size(), 1u);
  EXPECT_EQ(v.at("contents").at(0).at("parts").at(1),
            J(R"({"functionResponse":{"id":"orphan","name":"orphan",
                  "response":{"result":"sunny"}}})"));
  EXPECT_EQ(v.at("contents").at(0).at("parts").at(2).at("fileData").at("mimeType"),
            "image/jpeg");
}

// ---- upstream side: decode_response ------------------------------------------------------------

TEST(GeminiCodecUpstream, DecodesToolCallsSignatureAndCachedUsage) {
  auto r = gemini::decode_response(fixture("response_tools.json"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->id, "mAitaJ3oJ9-gqtsP0ZbB0Qg");
  EXPECT_EQ(r->model, "gemini-2.5-flash");
  ASSERT_EQ(r->content.size(), 4u);
  EXPECT_EQ(r->content[0].text, "I'll check the weather in both cities.");
  EXPECT_EQ(r->content[1].kind, BlockKind::thinking);
  EXPECT_EQ(r->content[1].text, "");
  EXPECT_EQ(r->content[1].signature, "CiQBVKhc7vB+Vp1yqB3Xwq0YxPcnAd5JQ2f0pZ8HlX0=");
  EXPECT_EQ(r->content[2].kind, BlockKind::tool_use);
  EXPECT_EQ(r->content[2].tool_id, "call_0");
  EXPECT_EQ(r->content[2].tool_input, R"({"location":"Paris","unit":"celsius"})");
  EXPECT_EQ(r->content[3].tool_id, "call_1");
  EXPECT_EQ(r->stop_reason, StopReason::tool_use);
  EXPECT_TRUE(r->usage.reported);
  EXPECT_EQ(r->usage.cache_read, 1024);
  EXPECT_EQ(r->usage.input, 176);
  EXPECT_EQ(r->usage.output, 233);
  EXPECT_EQ(r->usage.reasoning, 188);
  EXPECT_EQ(r->usage.prompt_total(), 1200);

  // decode → encode → decode keeps blocks (signature included), stop reason and usage.
  json::value wire = J(gemini::encode_response(*r, Request{}));
  EXPECT_EQ(wire.at("candidates").at(0).at("content").at("parts").at(1).at("thoughtSignature"),
            "CiQBVKhc7vB+Vp1yqB3Xwq0YxPcnAd5JQ2f0pZ8HlX0=");
  EXPECT_EQ(wire.at("usageMetadata"),
            J(R"({"promptTokenCount":1200,"candidatesTokenCount":45,"totalTokenCount":1433,
                  "cachedContentTokenCount":1024,"thoughtsTokenCount":188})"));
  auto again = gemini::decode_response(to_text(wire));
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->content.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(again->content[i].kind, r->content[i].kind);
    EXPECT_EQ(again->content[i].text, r->content[i].text);
    EXPECT_EQ(again->content[i].signature, r->content[i].signature);
    EXPECT_EQ(again->content[i].tool_id, r->content[i].tool_id);
    EXPECT_EQ(again->content[i].tool_input, r->content[i].tool_input);
  }
  EXPECT_EQ(again->stop_reason, r->stop_reason);
  EXPECT_EQ(again->usage.input, 176);
  EXPECT_EQ(again->usage.output, 233);
}

TEST(GeminiCodecUpstream, SafetyBlockedAnswers) {
  auto r = gemini::decode_response(fixture("response_safety.json"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->stop_reason, StopReason::refusal);
  EXPECT_TRUE(r->content.empty());
  EXPECT_EQ(r->usage.input, 14);
  EXPECT_EQ(r->usage.output, 0);

  auto blocked = gemini::decode_response(
      R"({"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},)"
      R"("usageMetadata":{"promptTokenCount":9}})");
  ASSERT_TRUE(blocked.ok());
  EXPECT_EQ(blocked->stop_reason, StopReason::refusal);
  EXPECT_EQ(blocked->usage.input, 9);
}

TEST(GeminiCodecUpstream, FinishReasons) {
  auto stop = [](std::string_view reason, std::string_view part = R"({"text":"x"})") {
    std::string body = R"({"candidates":[{"content":{"role":"model","parts":[)";
    body += part;
    body += R"(]},"finishReason":")";
    body += reason;
    body += "\"}]}";
    auto r = gemini::decode_response(body);
    EXPECT_TRUE(r.ok()) << body;
    return r.ok() ? r->stop_reason : StopReason::unset;
  };
  EXPECT_EQ(stop("STOP"), StopReason::end_turn);
  EXPECT_EQ(stop("STOP", R"({"functionCall":{"name":"f"}})"), StopReason::tool_use);
  EXPECT_EQ(stop("MAX_TOKENS"), StopReason::max_tokens);
  for (std::string_view f : {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
                             "IMAGE_SAFETY", "LANGUAGE"}) {
    EXPECT_EQ(stop(f), StopReason::refusal) << f;
  }
  EXPECT_EQ(stop("MALFORMED_FUNCTION_CALL"), StopReason::end_turn);
  EXPECT_EQ(stop("OTHER"), StopReason::end_turn);
}

TEST(GeminiCodecUpstream, MalformedAnswersAreProtocolErrors) {
  for (std::string_view body : {"", "{", "[]", "{}", R"({"candidates":[]})",
                                R"({"candidates":[3]})",
                                R"({"candidates":[{"content":{"parts":[{"functionCall":{}}]}}]})",
                                R"({"candidates":[{"content":{"parts":[7]}}]})"}) {
    auto r = gemini::decode_response(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().code, Errc::upstream_protocol);
    EXPECT_NE(r.error().message.find("not a Gemini"), std::string::npos);
  }
}

// ---- upstream side: stream decoder -------------------------------------------------------------

TEST(GeminiCodecUpstreamStream, DecodesTheFixtureInAnySplit) {
  const std::string body = fixture("stream_thinking_tools.sse");
  const auto whole = run_decoder(body, 0);
  EXPECT_EQ(run_decoder(body, 1), whole);
  EXPECT_EQ(run_decoder(body, 7), whole);
  const std::vector<std::string> want = {
      "0|0|start nQSuaL6KMMqWnvgPmuyJ0Q4 gemini-2.5-flash",
      "1|0|bstart 4  ",
      "2|0|delta 2 **Planning the lookup**\n\nThe user wants Paris weather.",
      "2|0|delta 2  I should call get_weather.",
      "3|0|bstop",
      "1|1|bstart 0  ",
      "2|1|delta 0 Let me look up",
      "2|1|delta 0  the weather in Paris.",
      "3|1|bstop",
      "1|2|bstart 4  ",
      "2|2|delta 3 CiwBVKhc7nS0yk5Vd3AC4fNw1Qp0Z8pXlY3bX2wB3sTq",
      "3|2|bstop",
      "1|3|bstart 2 call_0 get_weather",
      "2|3|delta 1 {\"location\":\"Paris\"}",
      "3|3|bstop",
      "4|0|mdelta 4 in=23 out=89 cr=8 rs=67",
      "5|0|mstop",
  };
  EXPECT_EQ(whole, want);
}

TEST(GeminiCodecUpstreamStream, ReEncodedStreamDecodesToTheSameEvents) {
  const std::vector<Event> first = decode_events(fixture("stream_thinking_tools.sse"));
  Request req;
  req.model = "gemini-2.5-flash";
  auto enc = gemini::stream_encoder(req);
  std::string sse;
  for (const Event& e : first) enc->on_event(e, sse);
  enc->finish(sse);
  const std::vector<Event> second = decode_events(sse);
  ASSERT_EQ(second.size(), first.size()) << sse;
  for (size_t i = 1; i < first.size(); ++i) {  // message_start usage differs (no early usage)
    EXPECT_EQ(describe(second[i]), describe(first[i]));
  }
  EXPECT_EQ(second[0].id, first[0].id);
}

TEST(GeminiCodecUpstreamStream, ErrorChunkEndsTheStream) {
  const std::string body =
      "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],"
      "\"role\":\"model\"}}]}\n\n"
      "data: {\"error\":{\"code\":429,\"message\":\"Resource has been exhausted\","
      "\"status\":\"RESOURCE_EXHAUSTED\"}}\n\n";
  const auto events = run_decoder(body, 1);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[2], "2|0|delta 0 Hel");
  EXPECT_EQ(events[3], "6|0|error 429 rate_limit_error Resource has been exhausted");
  EXPECT_EQ(run_decoder(body, 0), events);
}

TEST(GeminiCodecUpstreamStream, EofWithoutFinishReasonAndMalformedChunks) {
  auto events = run_decoder(
      "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}]}}]}\n\n", 0);
  EXPECT_EQ(events.back(), "6|0|error 502 api_error upstream stream ended early");
  EXPECT_EQ(run_decoder("", 0), std::vector<std::string>{
                                    "6|0|error 502 api_error upstream stream ended early"});
  events = run_decoder("data: {\"candidates\":[\n\ndata: {}\n\n", 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0],
            "6|0|error 502 api_error upstream sent a stream chunk that is not valid JSON");
  events = run_decoder("data: [1,2]\n\ndata: \"x\"\n\n", 0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_NE(events[0].find("error 502"), std::string::npos);
  // Ill-typed fields inside a chunk are skipped, not fatal.
  events = run_decoder(
      "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":5},{\"functionCall\":3}]},"
      "\"finishReason\":\"MAX_TOKENS\"}]}\n\n",
      0);
  EXPECT_EQ(events.back(), "5|0|mstop");
  EXPECT_EQ(events[events.size() - 2], "4|0|mdelta 2 in=0 out=0 cr=0 rs=0");
}

// ---- upstream side: errors ------------------------------------------------------------------

TEST(GeminiCodecUpstream, DecodesErrors) {
  UpstreamError e = gemini::decode_error(
      429, R"({"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}})");
  EXPECT_EQ(e.status, 429);
  EXPECT_EQ(e.type, "rate_limit_error");
  EXPECT_EQ(e.message, "Quota exceeded");
  e = gemini::decode_error(400, R"({"error":{"code":400,"message":"The input token count )"
                                R"((1200000) exceeds the maximum number of tokens allowed )"
                                R"((1048576).","status":"INVALID_ARGUMENT"}})");
  EXPECT_EQ(e.type, "context_length_exceeded");
  e = gemini::decode_error(403, R"([{"error":{"code":403,"message":"denied",)"
                                R"("status":"PERMISSION_DENIED"}}])");
  EXPECT_EQ(e.type, "permission_error");
  EXPECT_EQ(e.message, "denied");
  e = gemini::decode_error(503, "<html>oops</html>");
  EXPECT_EQ(e.type, "overloaded_error");
  EXPECT_FALSE(e.message.empty());
  EXPECT_EQ(gemini::decode_error(500, R"({"error":{"status":"INTERNAL"}})").type, "api_error");
  EXPECT_EQ(gemini::decode_error(404, "{}").type, "not_found_error");
}

// ---- round trip ---------------------------------------------------------------------------

TEST(GeminiCodecRoundTrip, DecodeOfEncodedRequestKeepsWhatGeminiCarries) {
  Request in = sample_request();
  // What Gemini cannot carry back: unsigned thoughts (dropped) and consecutive user turns
  // (merged). Take those out of the expectation.
  Request want = in;
  want.messages[1].content.erase(want.messages[1].content.begin());
  want.messages[2].content.push_back(want.messages[3].content[0]);
  want.messages.pop_back();
  for (Block& b : want.messages[2].content) b.tool_name = "lookup";

  Request out = decode_ok(gemini::encode_request(in, "upstream"), "client-name", false);
  ASSERT_EQ(out.messages.size(), want.messages.size());
  for (size_t i = 0; i < want.messages.size(); ++i) {
    EXPECT_EQ(out.messages[i].role, want.messages[i].role);
    ASSERT_EQ(out.messages[i].content.size(), want.messages[i].content.size()) << i;
    for (size_t j = 0; j < want.messages[i].content.size(); ++j) {
      const Block& a = out.messages[i].content[j];
      const Block& b = want.messages[i].content[j];
      EXPECT_EQ(a.kind, b.kind) << i << "." << j;
      EXPECT_EQ(a.text, b.text);
      EXPECT_EQ(a.signature, b.signature);
      EXPECT_EQ(a.image_data, b.image_data);
      EXPECT_EQ(a.image_url, b.image_url);
      EXPECT_EQ(a.tool_id, b.tool_id);
      EXPECT_EQ(a.tool_name, b.tool_name);
      EXPECT_EQ(a.tool_input, b.tool_input);
      EXPECT_EQ(a.is_error, b.is_error);
      ASSERT_EQ(a.content.size(), b.content.size());
      for (size_t k = 0; k < a.content.size(); ++k) EXPECT_EQ(a.content[k].text, b.content[k].text);
    }
  }
  EXPECT_EQ(out.messages[0].content[1].image_media_type, "image/png");
  EXPECT_EQ(out.messages[0].content[2].image_media_type, "image/webp");  // guessed
  ASSERT_EQ(out.system.size(), 1u);
  EXPECT_EQ(out.system[0].text, "Be brief.");
  ASSERT_EQ(out.tools.size(), 2u);
  EXPECT_EQ(out.tools[0].name, "lookup");
  EXPECT_EQ(out.tools[0].description, "Search");
  EXPECT_EQ(J(out.tools[0].parameters), J(in.tools[0].parameters));
  EXPECT_EQ(out.tool_choice.kind, ToolChoiceKind::named);
  EXPECT_EQ(out.tool_choice.name, "lookup");
  EXPECT_EQ(out.max_tokens, in.max_tokens);
  EXPECT_EQ(out.temperature, in.temperature);
  EXPECT_EQ(out.top_p, in.top_p);
  EXPECT_EQ(out.top_k, in.top_k);
  EXPECT_EQ(out.stop, in.stop);
  EXPECT_EQ(out.thinking_budget, in.thinking_budget);
}

TEST(GeminiCodecRoundTrip, GeminiRequestThroughTheGatewayKeepsSignatures) {
  // A Gemini client's history re-encoded for a Gemini upstream: every thoughtSignature
  // comes back on the part it was on.
  Request r = decode_ok(fixture("request_full.json"));
  json::value v = J(gemini::encode_request(r, "gemini-2.5-flash"));
  const json::value& model_parts = v.at("contents").at(1).at("parts");
  EXPECT_EQ(model_parts.at(0),
            J(R"({"text":"Thinking about cities","thought":true,
                  "thoughtSignature":"c2lnLXRob3VnaHQ="})"));
  EXPECT_EQ(model_parts.at(1).at("thoughtSignature"), "c2lnLWNhbGw=");
  EXPECT_EQ(model_parts.at(1).at("functionCall").at("name"), "get_weather");
  EXPECT_EQ(v.at("contents").at(2).at("parts").at(1),
            J(R"({"functionResponse":{"id":"fc-london","name":"get_weather",
                  "response":{"error":"station offline"}}})"));
  EXPECT_EQ(v.at("tools").at(0).at("functionDeclarations").at(0).at("parameters").at("type"),
            "object");
}

}  // namespace
}  // namespace sluice::canonical
