#include "api/stream_check.h"

#include <gtest/gtest.h>

#include "observe/metrics.h"

namespace sluice::api {
namespace {

uint64_t count(std::string_view format, std::string_view rule) {
  std::string labels = "format=\"" + std::string(format) + "\",rule=\"" + std::string(rule) + "\"";
  auto cell = observe::Registry::instance().counter("sluice_stream_invariant_violations_total",
                                                     "", labels);
  return observe::Registry::instance().value(cell);
}

TEST(StreamCheck, CountsTheRulesABrokenStreamBreaks) {
  register_stream_check_metrics();
  const uint64_t before = count("anthropic", "anthropic.message_stop_missing");
  {
    StreamCheck check(true, canonical::Protocol::anthropic, "req-1");
    check.feed("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\","
               "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"x\",\"content\":[],"
               "\"usage\":{\"input_tokens\":1,\"output_tokens\":0}}}\n\n");
  }  // ends without message_delta / message_stop
  EXPECT_EQ(count("anthropic", "anthropic.message_stop_missing"), before + 1);
}

TEST(StreamCheck, AbandonedAndUnstartedStreamsAreNotJudged) {
  register_stream_check_metrics();
  const uint64_t before = count("openai", "openai.done_missing");
  {
    StreamCheck cut(true, canonical::Protocol::openai, "req-2");
    cut.feed("data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n");
    cut.abandon();  // the client left
  }
  { StreamCheck never(true, canonical::Protocol::openai, "req-3"); }
  { StreamCheck off(false, canonical::Protocol::openai, "req-4"); off.feed("garbage\n\n"); }
  EXPECT_EQ(count("openai", "openai.done_missing"), before);
}

}  // namespace
}  // namespace sluice::api
