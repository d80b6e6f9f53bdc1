// The stream validators: a valid hand-written stream per format passes (whole and one byte at
// a time), and for every rule a stream broken in exactly that way records exactly that rule.
#include "canonical/stream_validator.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace sluice::canonical {
namespace {

// Local names: protocol_name() lives with the codec dispatch, which this test does not need.
std::string_view format(Protocol p) {
  return p == Protocol::openai ? "openai" : p == Protocol::anthropic ? "anthropic" : "gemini";
}

std::vector<std::string> run(Protocol p, std::string_view body, size_t piece) {
  auto v = StreamValidator::make(p);
  for (size_t i = 0; i < body.size(); i += piece) v->feed(body.substr(i, piece));
  v->finish();
  return v->violations();
}

std::string describe(Protocol p, std::string_view body) {
  auto v = StreamValidator::make(p);
  v->feed(body);
  v->finish();
  std::string s;
  for (const auto& d : v->details()) s += "  " + d + "\n";
  return s;
}

// ---- OpenAI -----------------------------------------------------------------------------------

std::string oa(std::string_view json) { return "data: " + std::string(json) + "\n\n"; }
std::string oa_chunk(std::string_view delta, std::string_view finish = "null",
                     std::string_view id = "chatcmpl-1") {
  return oa(R"({"id":")" + std::string(id) +
            R"(","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o",)"
            R"("choices":[{"index":0,"delta":)" +
            std::string(delta) + R"(,"logprobs":null,"finish_reason":)" + std::string(finish) +
            "}]}");
}
const std::string kOaUsage = oa(
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,)"
    R"("model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,)"
    R"("total_tokens":21}})");
const std::string kOaDone = "data: [DONE]\n\n";
const std::string kOaRole = oa_chunk(R"({"role":"assistant","content":""})");
const std::string kOaText = oa_chunk(R"({"content":"Hello"})");
const std::string kOaStop = oa_chunk("{}", "\"stop\"");
const std::string kOaToolsStop = oa_chunk("{}", "\"tool_calls\"");
std::string oa_tool(int index, bool first, std::string_view args) {
  std::string call = R"({"index":)" + std::to_string(index);
  if (first) {
    call += R"(,"id":"call_)" + std::to_string(index) +
            R"(","type":"function","function":{"name":"get_weather","arguments":")";
  } else {
    call += R"(,"function":{"arguments":")";
  }
  call += std::string(args) + "\"}}";
  return oa_chunk(R"({"tool_calls":[)" + call + "]}");
}
const std::string kOaTools = oa_tool(0, true, "") + oa_tool(0, false, R"({\"city\":)") +
                             oa_tool(1, true, "") + oa_tool(0, false, R"(\"Paris\"})") +
                             oa_tool(1, false, R"({\"city\":\"Rome\"})");

const std::string kOaValidText = kOaRole + kOaText + kOaStop + kOaUsage + kOaDone;
const std::string kOaValidTools = kOaRole + kOaText + kOaTools + kOaToolsStop + kOaUsage + kOaDone;

// ---- Anthropic --------------------------------------------------------------------------------

std::string an(std::string_view event, std::string_view json) {
  return "event: " + std::string(event) + "\ndata: " + std::string(json) + "\n\n";
}
const std::string kAnStart = an(
    "message_start",
    R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",)"
    R"("content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,)"
    R"("usage":{"input_tokens":25,"output_tokens":1}}})");
const std::string kAnPing = an("ping", R"({"type": "ping"})");
std::string an_start(int i, std::string_view block) {
  return an("content_block_start", R"({"type":"content_block_start","index":)" +
                                       std::to_string(i) + R"(,"content_block":)" +
                                       std::string(block) + "}");
}
std::string an_delta(int i, std::string_view delta) {
  return an("content_block_delta", R"({"type":"content_block_delta","index":)" +
                                       std::to_string(i) + R"(,"delta":)" + std::string(delta) +
                                       "}");
}
std::string an_stop(int i) {
  return an("content_block_stop",
            R"({"type":"content_block_stop","index":)" + std::to_string(i) + "}");
}
std::string an_message_delta(std::string_view stop_reason) {
  return an("message_delta", R"({"type":"message_delta","delta":{"stop_reason":")" +
                                 std::string(stop_reason) +
                                 R"(","stop_sequence":null},"usage":{"output_tokens":42}})");
}
const std::string kAnMessageStop = an("message_stop", R"({"type":"message_stop"})");
const std::string kAnError =
    an("error", R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
std::string an_text_block(int i) {
  return an_start(i, R"({"type":"text","text":""})") +
         an_delta(i, R"({"type":"text_delta","text":"Hello"})") + an_stop(i);
}
std::string an_thinking_block(int i) {
  return an_start(i, R"({"type":"thinking","thinking":"","signature":""})") +
         an_delta(i, R"({"type":"thinking_delta","thinking":"Let me think"})") +
         an_delta(i, R"({"type":"signature_delta","signature":"EqQBCgIYAhIM"})") + an_stop(i);
}
std::string an_tool_block(int i) {
  return an_start(i, R"({"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}})") +
         an_delta(i, R"({"type":"input_json_delta","partial_json":""})") +
         an_delta(i, R"({"type":"input_json_delta","partial_json":"{\"city\": \"Paris\"}"})") +
         an_stop(i);
}
const std::string kAnValid = kAnStart + kAnPing + an_thinking_block(0) + an_text_block(1) +
                             kAnPing + an_tool_block(2) + an_message_delta("tool_use") +
                             kAnMessageStop;
const std::string kAnValidText =
    kAnStart + an_text_block(0) + an_message_delta("end_turn") + kAnMessageStop;

// ---- Gemini (CRLF line endings, as Google's servers send them) --------------------------------

std::string ge(std::string_view json) { return "data: " + std::string(json) + "\r\n\r\n"; }
std::string ge_chunk(std::string_view parts, std::string_view finish = "",
                     std::string_view usage = R"({"promptTokenCount":8,"candidatesTokenCount":3,)"
                                              R"("totalTokenCount":11})") {
  std::string c = R"({"candidates":[{"content":{"parts":)" + std::string(parts) +
                  R"(,"role":"model"})";
  if (!finish.empty()) c += R"(,"finishReason":")" + std::string(finish) + "\"";
  c += R"(,"index":0}],"usageMetadata":)" + std::string(usage) +
       R"(,"modelVersion":"gemini-2.5-flash"})";
  return ge(c);
}
const std::string kGeText1 = ge_chunk(R"([{"text":"Hel"}])");
const std::string kGeText2 = ge_chunk(R"([{"text":"lo"}])");
const std::string kGeCall = ge_chunk(
    R"([{"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"c2ln"}])",
    "STOP");
const std::string kGeFinal = ge_chunk(R"([{"text":"!"}])", "STOP");
const std::string kGeValid = kGeText1 + kGeText2 + kGeCall;
const std::string kGeError =
    ge(R"({"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}})");

TEST(StreamValidator, ValidStreamsPassWholeAndByteByByte) {
  const std::vector<std::pair<Protocol, std::string>> valid{
      {Protocol::openai, kOaValidText},    {Protocol::openai, kOaValidTools},
      {Protocol::anthropic, kAnValid},     {Protocol::anthropic, kAnValidText},
      {Protocol::gemini, kGeValid},        {Protocol::gemini, kGeText1 + kGeFinal},
      // Ending with an error is a complete ending for every format.
      {Protocol::openai, kOaRole + kOaText + oa(R"({"error":{"message":"upstream failed",)"
                                                R"("type":"api_error","code":null}})")},
      {Protocol::anthropic, kAnStart + an_start(0, R"({"type":"text","text":""})") + kAnError},
      {Protocol::gemini, kGeText1 + kGeError},
  };
  for (const auto& [p, body] : valid) {
    for (size_t piece : {body.size(), size_t{1}, size_t{7}}) {
      EXPECT_EQ(run(p, body, piece), std::vector<std::string>{})
          << format(p) << " piece " << piece << "\n"
          << describe(p, body) << body;
    }
  }
}

struct Broken {
  Protocol p;
  std::string rule;
  std::string body;
};

std::vector<Broken> broken_streams() {
  const Protocol O = Protocol::openai, A = Protocol::anthropic, G = Protocol::gemini;
  return {
      // OpenAI
      {O, "openai.invalid_json", kOaRole + "data: {oops\n\n" + kOaText + kOaStop + kOaDone},
      {O, "openai.done_missing", kOaRole + kOaText + kOaStop + kOaUsage},
      {O, "openai.data_after_done", kOaValidText + kOaDone},
      {O, "openai.data_after_error",
       kOaRole + oa(R"({"error":{"message":"x","type":"api_error"}})") + kOaDone},
      {O, "openai.id_mismatch",
       kOaRole + oa_chunk(R"({"content":"Hello"})", "null", "chatcmpl-2") + kOaStop + kOaDone},
      {O, "openai.tool_index_order",
       kOaRole + oa_tool(0, true, "{}") + oa_tool(2, true, "{}") + kOaToolsStop + kOaDone},
      {O, "openai.tool_call_first_delta",
       kOaRole + oa_tool(0, false, "{}") + kOaToolsStop + kOaDone},
      {O, "openai.finish_reason_missing", kOaRole + kOaText + kOaDone},
      {O, "openai.finish_reason_repeated", kOaRole + kOaText + kOaStop + kOaStop + kOaDone},
      {O, "openai.finish_reason_mismatch", kOaRole + kOaTools + kOaStop + kOaDone},
      {O, "openai.finish_reason_mismatch", kOaRole + kOaText + kOaToolsStop + kOaDone},
      {O, "openai.usage_before_finish", kOaRole + kOaText + kOaUsage + kOaStop + kOaDone},
      {O, "openai.unterminated_event", kOaValidText + "data: [DO"},
      // Anthropic
      {A, "anthropic.invalid_json",
       kAnStart + "event: ping\ndata: {bad\n\n" + an_text_block(0) + an_message_delta("end_turn") +
           kAnMessageStop},
      {A, "anthropic.event_name_mismatch",
       kAnStart + an("pong", R"({"type":"ping"})") + an_text_block(0) +
           an_message_delta("end_turn") + kAnMessageStop},
      {A, "anthropic.message_start_not_first", kAnPing + kAnValidText},
      {A, "anthropic.message_start_repeated", kAnStart + kAnValidText},
      {A, "anthropic.block_index_order",
       kAnStart + an_text_block(1) + an_message_delta("end_turn") + kAnMessageStop},
      {A, "anthropic.block_not_closed",
       kAnStart + an_start(0, R"({"type":"text","text":""})") + an_text_block(1) +
           an_message_delta("end_turn") + kAnMessageStop},
      {A, "anthropic.block_not_closed",
       kAnStart + an_start(0, R"({"type":"text","text":""})") + an_message_delta("end_turn") +
           kAnMessageStop},
      {A, "anthropic.delta_wrong_block",
       kAnStart + an_start(0, R"({"type":"text","text":""})") +
           an_delta(1, R"({"type":"text_delta","text":"x"})") + an_stop(0) +
           an_message_delta("end_turn") + kAnMessageStop},
      {A, "anthropic.delta_type_mismatch",
       kAnStart + an_start(0, R"({"type":"tool_use","id":"t","name":"f","input":{}})") +
           an_delta(0, R"({"type":"text_delta","text":"x"})") + an_stop(0) +
           an_message_delta("tool_use") + kAnMessageStop},
      {A, "anthropic.block_stop_mismatch",
       kAnStart + an_text_block(0) + an_stop(0) + an_message_delta("end_turn") + kAnMessageStop},
      {A, "anthropic.block_after_message_delta",
       kAnStart + an_text_block(0) + an_message_delta("end_turn") + an_text_block(1) +
           kAnMessageStop},
      {A, "anthropic.message_delta_missing", kAnStart + an_text_block(0) + kAnMessageStop},
      {A, "anthropic.message_delta_repeated",
       kAnStart + an_text_block(0) + an_message_delta("end_turn") + an_message_delta("end_turn") +
           kAnMessageStop},
      {A, "anthropic.stop_reason_mismatch",
       kAnStart + an_tool_block(0) + an_message_delta("end_turn") + kAnMessageStop},
      {A, "anthropic.stop_reason_mismatch",
       kAnStart + an_text_block(0) + an_message_delta("tool_use") + kAnMessageStop},
      {A, "anthropic.message_stop_missing",
       kAnStart + an_text_block(0) + an_message_delta("end_turn")},
      {A, "anthropic.event_after_stop", kAnValidText + kAnPing},
      {A, "anthropic.event_after_error", kAnStart + an_text_block(0) + kAnError + kAnPing},
      {A, "anthropic.unterminated_event", kAnValidText + "event: ping\ndata: {\"type\":\"ping\"}\n"},
      // Gemini
      {G, "gemini.invalid_json", kGeText1 + ge("[1,2]") + kGeFinal},
      {G, "gemini.missing_candidates",
       kGeText1 + ge(R"({"usageMetadata":{"promptTokenCount":8}})") + kGeFinal},
      {G, "gemini.data_after_error", kGeText1 + kGeError + kGeFinal},
      {G, "gemini.finish_reason_missing", kGeText1 + kGeText2},
      {G, "gemini.finish_reason_repeated",
       kGeText1 + ge(R"({"candidates":[{"content":{"parts":[{"text":"a"}]},"finishReason":"STOP",)"
                     R"("index":0},{"content":{"parts":[{"text":"b"}]},"finishReason":"STOP",)"
                     R"("index":1}]})")},
      {G, "gemini.finish_reason_not_last", kGeText1 + kGeFinal + kGeText2},
      {G, "gemini.function_call_shape",
       kGeText1 + ge_chunk(R"([{"functionCall":{"name":"f","args":"{\"a\":1}"}}])", "STOP")},
      {G, "gemini.function_call_shape",
       kGeText1 + ge_chunk(R"([{"functionCall":{"args":{}}}])", "STOP")},
      {G, "gemini.usage_negative",
       kGeText1 + ge_chunk(R"([{"text":"x"}])", "STOP",
                           R"({"promptTokenCount":8,"candidatesTokenCount":-1})")},
      {G, "gemini.unterminated_event", kGeValid + "data: {"},
  };
}

TEST(StreamValidator, EachBrokenStreamShowsExactlyItsRule) {
  for (const Broken& b : broken_streams()) {
    for (size_t piece : {b.body.size(), size_t{1}}) {
      EXPECT_EQ(run(b.p, b.body, piece), std::vector<std::string>{b.rule})
          << "piece " << piece << "\n"
          << describe(b.p, b.body) << b.body;
    }
  }
}

TEST(StreamValidator, EveryListedRuleHasABrokenStreamAndAFormatPrefix) {
  std::set<std::string> covered;
  for (const Broken& b : broken_streams()) covered.insert(b.rule);
  for (Protocol p : {Protocol::openai, Protocol::anthropic, Protocol::gemini}) {
    const std::string prefix = std::string(format(p)) + ".";
    std::set<std::string_view> seen;
    for (std::string_view rule : StreamValidator::rules(p)) {
      EXPECT_EQ(rule.substr(0, prefix.size()), prefix) << rule;
      EXPECT_TRUE(seen.insert(rule).second) << "duplicate " << rule;
      EXPECT_TRUE(covered.count(std::string(rule))) << "no broken stream for " << rule;
    }
  }
  for (const std::string& rule : covered) {
    const Protocol p = rule.starts_with("openai")      ? Protocol::openai
                       : rule.starts_with("anthropic") ? Protocol::anthropic
                                                       : Protocol::gemini;
    const auto rules = StreamValidator::rules(p);
    EXPECT_NE(std::find(rules.begin(), rules.end(), rule), rules.end()) << rule << " not listed";
  }
}

TEST(StreamValidator, ARuleIsRecordedOncePerStreamWithEveryOccurrenceInDetails) {
  auto v = StreamValidator::make(Protocol::openai);
  v->feed(kOaRole + "data: {x\n\ndata: {y\n\n" + kOaStop + kOaDone);
  v->finish();
  EXPECT_EQ(v->violations(), std::vector<std::string>{"openai.invalid_json"});
  EXPECT_EQ(v->details().size(), 2u);
}

TEST(StreamValidator, EmptyBodyIsIncompleteForEveryFormat) {
  EXPECT_EQ(run(Protocol::openai, "", 1),
            (std::vector<std::string>{"openai.done_missing", "openai.finish_reason_missing"}));
  EXPECT_EQ(run(Protocol::anthropic, "", 1),
            (std::vector<std::string>{"anthropic.message_start_not_first",
                                      "anthropic.message_delta_missing",
                                      "anthropic.message_stop_missing"}));
  EXPECT_EQ(run(Protocol::gemini, "", 1),
            std::vector<std::string>{"gemini.finish_reason_missing"});
}

// The golden upstream streams of the conformance matrix are themselves valid for their format
// (so a violation in the matrix points at a codec, not at a fixture).
TEST(StreamValidatorFixtures, EveryConformanceStreamIsValidForItsFormat) {
  namespace fs = std::filesystem;
  int checked = 0;
  for (Protocol p : {Protocol::openai, Protocol::anthropic, Protocol::gemini}) {
    const fs::path dir = fs::path(SLUICE_TESTDATA) / "conformance" / std::string(format(p));
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path().extension() != ".sse") continue;
      std::ifstream in(entry.path(), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string body = ss.str();
      for (size_t piece : {body.size(), size_t{7}}) {
        EXPECT_EQ(run(p, body, piece), std::vector<std::string>{})
            << entry.path() << "\n" << describe(p, body);
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 27);  // 9 scenarios x 3 formats
}

}  // namespace
}  // namespace sluice::canonical
