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
