// Live profiling for operators (admin token): GET /debug/pprof/profile takes a gperftools CPU
// profile over N seconds without blocking a worker; GET /debug/pprof/heap returns tcmalloc's
// sampled in-use heap. Both are files `pprof` (google-pprof) reads. See docs/operations.md.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>
#include <string_view>

#include "common/error.h"
#include "http/server.h"

namespace sluice::observe {

/// Bounds of ?seconds= for a CPU profile.
inline constexpr int kDefaultProfileSeconds = 30;
inline constexpr int kMaxProfileSeconds = 300;

/// Produces the in-use heap sample in pprof's legacy text format ("heap profile: ..." then
/// MAPPED_LIBRARIES). Runs on a worker thread; must not suspend.
using HeapSampleSource = std::string (*)();

/// Installs what /debug/pprof/heap serves. Called once by main() before the workers start, only
/// when the binary links tcmalloc; without a source the endpoint answers 501.
void set_heap_sample_source(HeapSampleSource source);

/// Serves GET /debug/pprof/{profile,heap}; anything else under /debug/pprof/ is 404. The caller
/// has checked the admin token and the method. `profile` suspends for the requested seconds on
/// a timer (ended early if the client leaves); one CPU profile runs at a time process-wide, a
/// second request meanwhile gets 409 `profile_in_progress`.
boost::asio::awaitable<void> serve_pprof(http::Request& request, http::Responder& responder);

/// The `seconds` parameter of a query string: absent → kDefaultProfileSeconds; an integer
/// outside 1..kMaxProfileSeconds or not an integer → bad_request naming the parameter.
Result<int> parse_profile_seconds(std::string_view query);

}  // namespace sluice::observe
