// The Responses API codec (frontends/responses): requests and items into the canonical model,
// answers into output items and Response objects, canonical events into the Responses stream.
#include <gtest/gtest.h>

#include "canonical/events.h"
#include "frontends/responses/responses.h"

namespace sluice::canonical::responses {
namespace {

json::object parse_obj(std::string_view text) { return parse_json(text).value().as_object(); }

// The SSE events of `out`: (event name, data object).
std::vector<std::pair<std::string, json::object>> sse(const std::string& out) {
  std::vector<std::pair<std::string, json::object>> events;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t end = out.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "unterminated event";
    if (end == std::string::npos) break;
    std::string_view ev(out.data() + pos, end - pos);
    pos = end + 2;
    EXPECT_TRUE(ev.starts_with("event: ")) << ev;
    size_t nl = ev.find('\n');
    std::string name(ev.substr(7, nl - 7));
    std::string_view data = ev.substr(nl + 1);
    EXPECT_TRUE(data.starts_with("data: ")) << ev;
    events.emplace_back(name, parse_obj(data.substr(6)));
  }
  return events;
}

TEST(ResponsesCodec, StringInputIsOneUserMessage) {
  auto d = decode_request(R"({"model":"m","input":"hello","instructions":"be brief"})");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->request.model, "m");
  ASSERT_EQ(d->input.size(), 1u);
  const json::object& item = d->input[0].as_object();
  EXPECT_EQ(item.at("type"), "message");
  EXPECT_EQ(item.at("role"), "user");
  EXPECT_TRUE(std::string(item.at("id").as_string()).starts_with("msg_"));
  EXPECT_EQ(item.at("content").as_array()[0].as_object().at("type"), "input_text");
  EXPECT_TRUE(d->store);
  ASSERT_EQ(d->request.system.size(), 1u);
  EXPECT_EQ(d->request.system[0].text, "be brief");
  EXPECT_TRUE(d->request.messages.empty());  // the caller appends history, then input
  append_items(d->input, d->request);
  ASSERT_EQ(d->request.messages.size(), 1u);
  EXPECT_EQ(d->request.messages[0].content[0].text, "hello");
}

TEST(ResponsesCodec, OptionsReachTheCanonicalRequest) {
  auto d = decode_request(R"({"model":"m","input":"x","max_output_tokens":50,"temperature":0.2,
    "top_p":0.9,"parallel_tool_calls":false,"user":"u1","reasoning":{"effort":"low"},
    "stream":true,"store":false,"previous_response_id":"resp_1","metadata":{"k":"v"},
    "tools":[{"type":"function","name":"get_weather","description":"d",
              "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}],
    "tool_choice":{"type":"function","name":"get_weather"}})");
  ASSERT_TRUE(d) << d.error().message;
  const Request& r = d->request;
  EXPECT_EQ(r.max_tokens, 50);
  EXPECT_EQ(r.temperature, 0.2);
  EXPECT_EQ(r.top_p, 0.9);
  EXPECT_EQ(r.parallel_tool_calls, false);
  EXPECT_EQ(r.user, "u1");
  EXPECT_EQ(r.reasoning_effort, "low");
  EXPECT_TRUE(r.stream);
  EXPECT_FALSE(d->store);
  EXPECT_EQ(d->previous_response_id, "resp_1");
  ASSERT_EQ(r.tools.size(), 1u);
  EXPECT_EQ(r.tools[0].name, "get_weather");
  EXPECT_NE(r.tools[0].parameters.find("city"), std::string::npos);
  EXPECT_EQ(r.tool_choice.kind, ToolChoiceKind::named);
  EXPECT_EQ(r.tool_choice.name, "get_weather");
  EXPECT_EQ(d->echo.at("metadata").as_object().at("k"), "v");
  EXPECT_EQ(d->echo.at("tools").as_array()[0].as_object().at("strict"), true);
}

TEST(ResponsesCodec, ItemsBecomeMessagesWithToolCallsAndResults) {
  auto d = decode_request(R"({"model":"m","input":[
    {"role":"developer","content":"rules"},
    {"role":"user","content":[{"type":"input_text","text":"weather?"},
                              {"type":"input_image","image_url":"data:image/png;base64,AAAA"}]},
    {"type":"message","role":"assistant","content":[{"type":"output_text","text":"checking"}]},
    {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
    {"type":"function_call","call_id":"call_2","name":"get_time","arguments":"{}"},
    {"type":"reasoning","id":"rs_1","summary":[]},
    {"type":"function_call_output","call_id":"call_1","output":"sunny"},
    {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"noon"}]},
    {"role":"user","content":"thanks"}]})");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->input.size(), 8u);  // the reasoning item is dropped
  Request& r = d->request;
  append_items(d->input, r);
  ASSERT_EQ(r.system.size(), 1u);
  EXPECT_EQ(r.system[0].text, "rules");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, Role::user);
  ASSERT_EQ(r.messages[0].content.size(), 2u);
  EXPECT_EQ(r.messages[0].content[1].kind, BlockKind::image);
  EXPECT_EQ(r.messages[0].content[1].image_media_type, "image/png");
  EXPECT_EQ(r.messages[1].role, Role::assistant);
  ASSERT_EQ(r.messages[1].content.size(), 3u);  // text + two calls
  EXPECT_EQ(r.messages[1].content[1].kind, BlockKind::tool_use);
  EXPECT_EQ(r.messages[1].content[1].tool_id, "call_1");
  EXPECT_EQ(r.messages[1].content[1].tool_input, "{\"city\":\"Paris\"}");
  EXPECT_EQ(r.messages[2].role, Role::user);
  ASSERT_EQ(r.messages[2].content.size(), 2u);  // both outputs in one user turn
  EXPECT_EQ(r.messages[2].content[0].kind, BlockKind::tool_result);
  EXPECT_EQ(r.messages[2].content[0].tool_name, "get_weather");  // looked up from the call
  EXPECT_EQ(r.messages[2].content[1].content[0].text, "noon");
  EXPECT_EQ(r.messages[3].content[0].text, "thanks");
}

TEST(ResponsesCodec, RefusesWhatItCannotServeNamingTheField) {
  struct Case {
    const char* body;
    const char* param;
  } cases[] = {
      {R"({"input":"x"})", "model"},
      {R"({"model":"m"})", "input"},
      {R"({"model":"m","input":5})", "input"},
      {R"({"model":"m","input":[{"role":"robot","content":"x"}]})", "input[0].role"},
      {R"({"model":"m","input":[{"type":"item_reference","id":"msg_1"}]})", "input[0].type"},
      {R"({"model":"m","input":[{"type":"web_search_call"}]})", "input[0].type"},
      {R"({"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]})",
       "input[0].content[0].type"},
      {R"({"model":"m","input":"x","tools":[{"type":"web_search"}]})", "tools[0].type"},
      {R"({"model":"m","input":"x","previous_response_id":"r","conversation":"c"})", "conversation"},
      {R"({"model":"m","input":"x","max_output_tokens":0})", "max_output_tokens"},
      {R"({"model":"m","input":"x","text":{"format":{"type":"json_schema"}}})", "text.format.type"},
      {R"({"model":"m","input":"x","background":true})", "background"},
      {R"({"model":"m","input":"x","tool_choice":"sometimes"})", "tool_choice"},
      {R"({"model":"m","input":[{"type":"function_call_output","output":"x"}]})", "input[0].call_id"},
  };
  for (const Case& c : cases) {
    auto d = decode_request(c.body);
    ASSERT_FALSE(d) << c.body;
    EXPECT_EQ(d.error().code, Errc::bad_request) << c.body;
    EXPECT_EQ(d.error().param, c.param) << c.body << ": " << d.error().message;
  }
  EXPECT_FALSE(decode_request("{not json"));
}

TEST(ResponsesCodec, OutputItemsAndTheResponseObject) {
  Response r;
  r.content.push_back(Block{});
  r.content.back().text = "Hi ";
  r.content.push_back(Block{});
  r.content.back().text = "there";
  Block call;
  call.kind = BlockKind::tool_use;
  call.tool_id = "call_9";
  call.tool_name = "f";
  call.tool_input = R"({"a":1})";
  r.content.push_back(call);
  Block thinking;
  thinking.kind = BlockKind::thinking;
  thinking.text = "hmm";
  r.content.push_back(thinking);
  r.stop_reason = StopReason::max_tokens;
  r.usage.input = 10;
  r.usage.cache_read = 5;
  r.usage.output = 7;
  json::array out = output_items(r);
  ASSERT_EQ(out.size(), 2u);  // one message (two parts), one call, no thinking
  EXPECT_EQ(out[0].as_object().at("content").as_array().size(), 2u);
  EXPECT_EQ(out[1].as_object().at("call_id"), "call_9");
  auto [status, reason] = status_of(r.stop_reason);
  Meta m;
  m.id = "resp_x";
  m.model = "gpt";
  m.conversation = "conv_1";
  json::object echo{{"instructions", "be brief"}};
  m.echo = &echo;
  json::object o = response_object(m, status, reason, out, &r.usage);
  EXPECT_EQ(o.at("status"), "incomplete");
  EXPECT_EQ(o.at("incomplete_details").as_object().at("reason"), "max_output_tokens");
  EXPECT_EQ(o.at("instructions"), "be brief");
  EXPECT_EQ(o.at("conversation").as_object().at("id"), "conv_1");
  EXPECT_TRUE(o.at("previous_response_id").is_null());
  const json::object& u = o.at("usage").as_object();
  EXPECT_EQ(u.at("input_tokens"), 15);
  EXPECT_EQ(u.at("input_tokens_details").as_object().at("cached_tokens"), 5);
  EXPECT_EQ(u.at("total_tokens"), 22);
}

TEST(ResponsesCodec, StreamEventsInOrderWithSequenceNumbersAndOneId) {
  Response r;
  r.content.push_back(Block{});
  r.content.back().text = "Hello";
  Block call;
  call.kind = BlockKind::tool_use;
  call.tool_id = "call_1";
  call.tool_name = "f";
  call.tool_input = R"({"x":1})";
  r.content.push_back(call);
  r.stop_reason = StopReason::tool_use;
  r.usage.input = 3;
  r.usage.output = 4;
  r.usage.reported = true;
  Meta m;
  m.id = "resp_abc";
  m.model = "m";
  StreamEncoder enc(m);
  std::string out;
  enc.created(out);
  for (const Event& e : events_of(r)) {
    if (e.kind == EventKind::message_stop) break;
    enc.on_event(e, out);
  }
  json::object final_obj = enc.final_object();
  enc.completed(final_obj, out);
  auto events = sse(out);
  std::vector<std::string> names;
  for (size_t i = 0; i < events.size(); ++i) {
    names.push_back(events[i].first);
    EXPECT_EQ(std::string(events[i].second.at("type").as_string()), events[i].first);
    EXPECT_EQ(events[i].second.at("sequence_number"), static_cast<int64_t>(i));
    if (auto* resp = events[i].second.if_contains("response")) {
      EXPECT_EQ(resp->as_object().at("id"), "resp_abc");
    }
  }
  EXPECT_EQ(names, (std::vector<std::string>{
                       "response.created", "response.in_progress", "response.output_item.added",
                       "response.content_part.added", "response.output_text.delta",
                       "response.output_text.done", "response.content_part.done",
                       "response.output_item.done", "response.output_item.added",
                       "response.function_call_arguments.delta",
                       "response.function_call_arguments.done", "response.output_item.done",
                       "response.completed"}));
  const json::object& done = events.back().second.at("response").as_object();
  EXPECT_EQ(done.at("status"), "completed");
  const json::array& output = done.at("output").as_array();
  ASSERT_EQ(output.size(), 2u);
  EXPECT_EQ(output[0].as_object().at("content").as_array()[0].as_object().at("text"), "Hello");
  EXPECT_EQ(output[1].as_object().at("arguments"), R"({"x":1})");
  EXPECT_EQ(output[1].as_object().at("status"), "completed");
  EXPECT_EQ(done.at("usage").as_object().at("output_tokens"), 4);
  // The item ids of the added/done events match the final output's.
  EXPECT_EQ(events[2].second.at("item").as_object().at("id"), output[0].as_object().at("id"));
}

TEST(ResponsesCodec, StreamFailureIsResponseFailed) {
  Meta m;
  m.id = "resp_f";
  StreamEncoder enc(m);
  std::string out;
  enc.created(out);
  std::vector<Event> evs;
  emit_block_start(evs, 0, BlockKind::text);
  emit_delta(evs, 0, DeltaKind::text, "par");
  for (const Event& e : evs) enc.on_event(e, out);
  enc.failed("upstream broke", out);
  auto events = sse(out);
  ASSERT_GE(events.size(), 3u);
  const auto& last = events.back();
  EXPECT_EQ(last.first, "response.failed");
  const json::object& resp = last.second.at("response").as_object();
  EXPECT_EQ(resp.at("status"), "failed");
  EXPECT_EQ(resp.at("error").as_object().at("message"), "upstream broke");
  EXPECT_EQ(resp.at("id"), "resp_f");
}

TEST(ResponsesCodec, IdsAreFreshAndPrefixed) {
  std::string a = new_id("resp"), b = new_id("resp");
  EXPECT_NE(a, b);
  EXPECT_TRUE(a.starts_with("resp_"));
  EXPECT_EQ(a.size(), 5u + 48u);
}

}  // namespace
}  // namespace sluice::canonical::responses
