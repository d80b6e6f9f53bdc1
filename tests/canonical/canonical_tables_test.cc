#include <gtest/gtest.h>

#include "canonical/json.h"
#include "canonical/tables.h"

namespace sluice::canonical {
namespace {

TEST(CanonicalTables, EveryStopReasonHasARow) {
  for (StopReason r : {StopReason::end_turn, StopReason::max_tokens, StopReason::stop_sequence,
                       StopReason::tool_use, StopReason::refusal, StopReason::pause_turn,
                       StopReason::error}) {
    EXPECT_EQ(stop_row(r).reason, r);
  }
}

TEST(CanonicalTables, ErrorRowsDefaultByClass) {
  EXPECT_EQ(error_row(422).anthropic_type, "invalid_request_error");
  EXPECT_EQ(error_row(502).anthropic_type, "api_error");
  EXPECT_EQ(error_row(529).anthropic_type, "overloaded_error");
  EXPECT_EQ(error_row(429).gemini_status, "RESOURCE_EXHAUSTED");
}

TEST(CanonicalJson, FieldAccessToleratesNullAndWrongTypes) {
  auto v = parse_json(R"({"a":null,"b":"x","c":3.0,"d":3.5,"e":18446744073709551615})");
  ASSERT_TRUE(v);
  const json::object& o = v->as_object();
  EXPECT_EQ(field(o, "a"), nullptr);
  EXPECT_EQ(str(o, "b"), "x");
  EXPECT_EQ(str(o, "c"), "");
  EXPECT_EQ(integer(o, "c"), 3);
  EXPECT_FALSE(integer(o, "d").has_value());
  EXPECT_EQ(integer(o, "e"), INT64_MAX);
  EXPECT_FALSE(parse_json("{").ok());
}

}  // namespace
}  // namespace sluice::canonical

#include "canonical/events.h"

namespace sluice::canonical {
namespace {

TEST(CanonicalEvents, AResponseBecomesTheStreamThatWouldHaveCarriedIt) {
  Response r;
  r.id = "msg_1";
  r.model = "m";
  Block think;
  think.kind = BlockKind::thinking;
  think.text = "hmm";
  think.signature = "sig";
  Block redacted;
  redacted.kind = BlockKind::redacted_thinking;
  redacted.data = "opaque";
  Block text;
  text.text = "hi";
  Block call;
  call.kind = BlockKind::tool_use;
  call.tool_id = "t1";
  call.tool_name = "f";
  call.tool_input = R"({"a":1})";
  r.content = {think, redacted, text, call};
  r.stop_reason = StopReason::tool_use;
  r.usage.input = 3;
  r.usage.output = 7;
  const std::vector<Event> ev = events_of(r);
  ASSERT_EQ(ev.size(), 15u);
  EXPECT_EQ(ev[0].kind, EventKind::message_start);
  EXPECT_EQ(ev[0].usage.output, 0);  // the output is known only at the end
  EXPECT_EQ(ev[3].delta, DeltaKind::signature);
  EXPECT_EQ(ev[5].block, BlockKind::redacted_thinking);
  EXPECT_EQ(ev[5].text, "opaque");
  EXPECT_EQ(ev[10].tool_name, "f");
  EXPECT_EQ(ev[11].text, R"({"a":1})");
  EXPECT_EQ(ev[13].kind, EventKind::message_delta);
  EXPECT_EQ(ev[13].stop_reason, StopReason::tool_use);
  EXPECT_EQ(ev[13].usage.output, 7);
  EXPECT_EQ(ev[14].kind, EventKind::message_stop);
}

}  // namespace
}  // namespace sluice::canonical
