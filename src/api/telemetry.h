// Telemetry of the API surface: what each request did (a Trace filled on the way), turned into
// Prometheus series and one access-log line when it ends. Series handles are resolved once and
// cached in the route and target runtimes, so recording is a few per-thread stores.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "api/usage.h"
#include "config/config.h"
#include "http/server.h"
#include "observe/access_log.h"
#include "observe/metrics.h"

namespace sluice::api {

struct Identity;
struct RouteRuntime;
struct TargetRuntime;

enum class Endpoint : uint8_t {
  chat, completions, embeddings, models, messages, count_tokens, gemini_generate, responses,
  conversations, sessions, files, admin, health,
  metrics, debug, other, kCount
};
std::string_view endpoint_label(Endpoint e);

enum class Outcome : uint8_t {
  success,         // 2xx/3xx, whole answer delivered
  client_error,    // 4xx the client caused (bad request, unknown model, ...)
  denied,          // 401 / 403
  rate_limited,    // 429 from a rate limit or a budget
  upstream_error,  // 5xx / upstream failure after every attempt
  stream_error,    // a stream that began and then failed (ended by an error event)
  cancelled,       // the client left before the answer was complete
  kCount
};
std::string_view outcome_label(Outcome o);

inline constexpr size_t kEndpoints = static_cast<size_t>(Endpoint::kCount);
inline constexpr size_t kOutcomes = static_cast<size_t>(Outcome::kCount);

/// sluice_requests_total series for one (model, target) pair, registered on first use.
class RequestSeries {
 public:
  RequestSeries(std::string_view model, std::string_view target);
  observe::Cell get(Endpoint e, int status, Outcome o);

 private:
  std::string labels_;
  std::array<std::atomic<observe::Cell>, kEndpoints * 6 * kOutcomes> cells_{};
};

/// Series of one route (its model label), resolved when the route runtime is built.
struct RouteMetrics {
  explicit RouteMetrics(std::string_view model);
  RequestSeries no_target;  // answered before a target was picked (limits, auth, errors)
  std::array<observe::Histogram, 3> duration;  // chat, completions, embeddings
  observe::Histogram ttft;
  observe::Histogram itl;
  observe::Cell input_tokens, output_tokens, cached_tokens;
};

/// What one request did. Filled by the gateway and the proxy; recorded by Telemetry::finish.
struct Trace {
  Endpoint endpoint = Endpoint::other;
  RouteRuntime* route = nullptr;
  TargetRuntime* target = nullptr;  // the last one attempted
  const Identity* who = nullptr;
  std::string model;                // as requested; filled only for the access log
  int attempts = 0;
  bool stream = false;
  bool stream_error = false;        // a begun stream ended with an error event
  std::string_view cache;           // the response cache's verdict: hit, miss, bypass ("" = none)
  std::optional<UsageTokens> usage;
  std::chrono::steady_clock::time_point first_event{};  // first event relayed to the client
  std::chrono::steady_clock::time_point last_event{};
};

class Telemetry {
 public:
  /// `access_log` may be null (access logging off).
  Telemetry(const config::Config& config, std::shared_ptr<observe::AccessLog> access_log);

  bool metrics_on() const { return metrics_on_; }
  bool active() const { return metrics_on_ || access_log_ != nullptr; }
  bool logging() const { return access_log_ != nullptr; }

  /// Records the request's series and access-log line. Call once, when it is answered.
  void finish(const http::Request& request, const http::Responder& responder,
              const Trace& trace);

  /// One relayed stream event (inter-token latency; time to first token on the first).
  void on_stream_event(Trace& trace) const { on_stream_events(trace, 1); }
  /// `n` events relayed at once (one clock read; the ones after the first follow at 0).
  void on_stream_events(Trace& trace, size_t n) const;

  observe::Cell active_requests = 0;
  observe::Cell open_streams = 0;

 private:
  bool metrics_on_;
  std::shared_ptr<observe::AccessLog> access_log_;
  RequestSeries unrouted_;
  observe::Cell rate_rejections_ = 0;
  observe::Cell quota_rejections_ = 0;
  std::array<observe::Histogram, kEndpoints> overhead_{};
  std::array<observe::Histogram, kEndpoints> duration_unrouted_{};
};

}  // namespace sluice::api
