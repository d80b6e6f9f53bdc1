// parse_profile_seconds: the only pure piece of the /debug/pprof endpoints.
#include "observe/profiler.h"

#include <gtest/gtest.h>

namespace sluice::observe {
namespace {

TEST(ProfileSeconds, DefaultsToThirtyWhenAbsent) {
  EXPECT_EQ(parse_profile_seconds("").value(), kDefaultProfileSeconds);
  EXPECT_EQ(parse_profile_seconds("debug=1&x").value(), kDefaultProfileSeconds);
}

TEST(ProfileSeconds, AcceptsTheBoundsAndAnythingBetween) {
  EXPECT_EQ(parse_profile_seconds("seconds=1").value(), 1);
  EXPECT_EQ(parse_profile_seconds("a=b&seconds=15").value(), 15);
  EXPECT_EQ(parse_profile_seconds("seconds=300").value(), kMaxProfileSeconds);
}

TEST(ProfileSeconds, RejectsOutOfRangeAndNonIntegersNamingTheParameter) {
  for (const char* query : {"seconds=0", "seconds=301", "seconds=-1", "seconds=abc", "seconds=1.5",
                            "seconds=", "seconds", "seconds=10s", "seconds=99999999999"}) {
    Result<int> r = parse_profile_seconds(query);
    ASSERT_FALSE(r.ok()) << query;
    EXPECT_EQ(r.error().code, Errc::bad_request) << query;
    EXPECT_EQ(r.error().param, "seconds") << query;
  }
}

}  // namespace
}  // namespace sluice::observe
