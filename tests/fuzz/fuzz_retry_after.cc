// libFuzzer target for the retry hint parsers and backoff: Retry-After must give nullopt or a
// wait in [0, 1 day]; reset durations must never be negative; backoff must stay in [0, cap].
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "routing/resilience.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sluice::routing::Millis;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  constexpr int64_t kNow = 1445412480;  // Wed, 21 Oct 2015 07:28:00 GMT
  if (auto wait = sluice::routing::parse_retry_after(text, kNow)) {
    if (wait->count() < 0 || wait->count() > 86'400'000) abort();
  }
  if (auto reset = sluice::routing::parse_reset_duration(text)) {
    if (reset->count() < 0) abort();
  }
  // Backoff over fuzzed parameters: 4 bytes each for base, cap, retry and previous, 1 for jitter.
  if (size >= 17) {
    int32_t v[4];
    std::memcpy(v, data, sizeof(v));
    sluice::config::RetryPolicy p;
    p.backoff_base = Millis(v[0]);
    p.backoff_cap = Millis(v[1]);
    p.jitter = static_cast<sluice::config::Jitter>(data[16] % 4);
    for (double r : {0.0, 0.5, 0.999999}) {
      Millis d = sluice::routing::backoff_delay(p, v[2], Millis(v[3]), r);
      if (d.count() < 0 || d.count() > std::max<int64_t>(0, v[1])) abort();
    }
  }
  return 0;
}
