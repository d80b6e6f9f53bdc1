// Telemetry: series registration, per-request recording and the access-log line.
#include "api/telemetry.h"

#include <fmt/format.h>

#include <charconv>
#include <ctime>

#include "api/gateway.h"
#include "common/error.h"

namespace sluice::api {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kRequests = "sluice_requests_total";
constexpr const char* kRequestsHelp =
    "Requests answered, by API route, model (configured route), target, status class and "
    "outcome.";
constexpr const char* kDuration = "sluice_request_duration_seconds";
constexpr const char* kDurationHelp =
    "Time from the first byte of the request to the end of the answer (streams included).";

const char* const kStatusClass[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

int status_index(int status) {
  int i = status / 100;
  return i >= 1 && i <= 5 ? i : 0;
}

Outcome classify(const http::Responder& responder, const Trace& trace) {
  if (responder.client_gone()) return Outcome::cancelled;
  if (trace.stream_error) return Outcome::stream_error;
  int status = responder.status();
  if (status == 0) return Outcome::cancelled;
  if (status < 400) return Outcome::success;
  std::string_view kind = responder.error_kind();
  if (kind == "rate_limit_exceeded" || kind == "insufficient_quota") return Outcome::rate_limited;
  if (status == 401 || status == 403) return Outcome::denied;
  if (status < 500) return Outcome::client_error;
  return Outcome::upstream_error;
}

int64_t ns_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

// "2026-11-24T12:00:00.123Z", the seconds part formatted once per second per thread.
void append_timestamp(std::string& out) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  thread_local int64_t cached_second = -1;
  thread_local char cached[24];
  int64_t second = ms / 1000;
  if (second != cached_second) {
    std::time_t t = static_cast<std::time_t>(second);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_second = second;
  }
  int frac = static_cast<int>(ms % 1000);
  out += cached;
  char tail[5] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                  static_cast<char>('0' + frac % 10), 'Z'};
  out.append(tail, 5);
}

void append_int(std::string& out, std::string_view name, int64_t value) {
  out += ",\"";
  out += name;
  out += "\":";
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, end);
}

// Nanoseconds as milliseconds with three decimals ("12.345"), without floating point.
void append_millis(std::string& out, std::string_view name, int64_t ns) {
  int64_t us = std::max<int64_t>(0, ns) / 1000;
  append_int(out, name, us / 1000);
  char frac[4] = {'.', static_cast<char>('0' + us % 1000 / 100),
                  static_cast<char>('0' + us % 100 / 10), static_cast<char>('0' + us % 10)};
  out.append(frac, 4);
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":\"";
  append_json_escaped(out, value);
  out += '"';
}

}  // namespace

std::string_view endpoint_label(Endpoint e) {
  switch (e) {
    case Endpoint::chat: return "/v1/chat/completions";
    case Endpoint::completions: return "/v1/completions";
    case Endpoint::embeddings: return "/v1/embeddings";
    case Endpoint::models: return "/v1/models";
    case Endpoint::messages: return "/v1/messages";
    case Endpoint::count_tokens: return "/v1/messages/count_tokens";
    case Endpoint::gemini_generate: return "/v1beta/models:generateContent";
    case Endpoint::responses: return "/v1/responses";
    case Endpoint::conversations: return "/v1/conversations";
    case Endpoint::files: return "/v1/files";
    case Endpoint::sessions: return "/v1/sessions";
    case Endpoint::admin: return "/admin";
    case Endpoint::health: return "/healthz";
    case Endpoint::metrics: return "/metrics";
    case Endpoint::debug: return "/debug";
    default: return "other";
  }
}

std::string_view outcome_label(Outcome o) {
  switch (o) {
    case Outcome::success: return "success";
    case Outcome::client_error: return "client_error";
    case Outcome::denied: return "denied";
    case Outcome::rate_limited: return "rate_limited";
    case Outcome::upstream_error: return "error";
    case Outcome::stream_error: return "stream_error";
    case Outcome::cancelled: return "cancelled";
    default: return "other";
  }
}

RequestSeries::RequestSeries(std::string_view model, std::string_view target)
    : labels_(observe::labels({observe::label("model", model), observe::label("target", target)})) {}

observe::Cell RequestSeries::get(Endpoint e, int status, Outcome o) {
  int si = status_index(status);
  size_t i = (static_cast<size_t>(e) * 6 + static_cast<size_t>(si)) * kOutcomes +
             static_cast<size_t>(o);
  observe::Cell c = cells_[i].load(std::memory_order_relaxed);
  if (c != 0) return c;
  std::string labels = observe::labels({observe::label("route", endpoint_label(e)), labels_,
                                        observe::label("status", kStatusClass[si]),
                                        observe::label("outcome", outcome_label(o))});
  c = observe::Registry::instance().counter(kRequests, kRequestsHelp, labels);
  cells_[i].store(c, std::memory_order_relaxed);
  return c;
}

RouteMetrics::RouteMetrics(std::string_view model) : no_target(model, "") {
  auto& r = observe::Registry::instance();
  std::string m = observe::label("model", model);
  for (size_t e = 0; e < duration.size(); ++e) {
    duration[e] = r.histogram(
        kDuration, kDurationHelp,
        observe::labels({observe::label("route", endpoint_label(static_cast<Endpoint>(e))), m}),
        observe::kLatencyBucketsUs, 1e6);
  }
  ttft = r.histogram("sluice_time_to_first_token_seconds",
                     "Streams: time from the first byte of the request to the first event "
                     "relayed to the client.",
                     m, observe::kLatencyBucketsUs, 1e6);
  itl = r.histogram("sluice_inter_token_latency_seconds",
                    "Streams: time between consecutive events relayed to the client.", m,
                    observe::kItlBucketsUs, 1e6);
  const char* tokens_help = "Tokens as the upstream reported them, by model and direction.";
  input_tokens = r.counter("sluice_tokens_total", tokens_help,
                           observe::labels({m, observe::label("direction", "input")}));
  output_tokens = r.counter("sluice_tokens_total", tokens_help,
                            observe::labels({m, observe::label("direction", "output")}));
  cached_tokens = r.counter("sluice_tokens_total", tokens_help,
                            observe::labels({m, observe::label("direction", "cached_input")}));
}

Telemetry::Telemetry(const config::Config& config, std::shared_ptr<observe::AccessLog> access_log)
    : metrics_on_(config.metrics.enabled), access_log_(std::move(access_log)), unrouted_("", "") {
  if (!metrics_on_) return;
  auto& r = observe::Registry::instance();
  active_requests = r.gauge("sluice_active_requests", "Requests being served right now.");
  open_streams = r.gauge("sluice_open_streams", "SSE streams being relayed right now.");
  const char* rejections_help = "Requests refused by a rate limit or a spent budget.";
  rate_rejections_ = r.counter("sluice_rate_limit_rejections_total", rejections_help,
                               observe::label("reason", "rate_limit_exceeded"));
  quota_rejections_ = r.counter("sluice_rate_limit_rejections_total", rejections_help,
                                observe::label("reason", "insufficient_quota"));
  for (size_t e = 0; e < kEndpoints; ++e) {
    std::string route = observe::label("route", endpoint_label(static_cast<Endpoint>(e)));
    overhead_[e] = r.histogram(
        "sluice_overhead_microseconds",
        "Gateway overhead per request: total time minus the time spent waiting on upstreams "
        "(and on retry backoff and concurrency queues).",
        route, observe::kOverheadBucketsUs, 1.0);
    if (e >= 3) {
      duration_unrouted_[e] = r.histogram(kDuration, kDurationHelp,
                                          observe::labels({route, observe::label("model", "")}),
                                          observe::kLatencyBucketsUs, 1e6);
    }
  }
}

void Telemetry::on_stream_events(Trace& trace, size_t n) const {
  if (!metrics_on_ || trace.route == nullptr || n == 0) return;
  auto now = Clock::now();
  const observe::Histogram& itl = trace.route->metrics.itl;
  if (trace.last_event != Clock::time_point{}) {
    observe::observe(itl, static_cast<uint64_t>(ns_between(trace.last_event, now) / 1000));
  }
  observe::observe_n(itl, 0, n - 1);  // the rest of the chunk: no gap between them
  if (trace.first_event == Clock::time_point{}) trace.first_event = now;
  trace.last_event = now;
}

void Telemetry::finish(const http::Request& request, const http::Responder& responder,
                       const Trace& trace) {
  if (!active()) return;
  auto now = Clock::now();
  const http::Timing& t = *request.timing;
  Clock::time_point start = t.received != Clock::time_point{} ? t.received : t.handler;
  int64_t total_ns = ns_between(start, now);
  int64_t overhead_ns = std::max<int64_t>(0, total_ns - t.upstream_ns);
  Outcome outcome = classify(responder, trace);
  size_t ep = static_cast<size_t>(trace.endpoint);
  if (metrics_on_) {
    if (outcome == Outcome::rate_limited) {
      observe::add(responder.error_kind() == "insufficient_quota" ? quota_rejections_
                                                                  : rate_rejections_);
    }
    RequestSeries& series = trace.target ? trace.target->metrics
                            : trace.route ? trace.route->metrics.no_target
                                          : unrouted_;
    observe::add(series.get(trace.endpoint, responder.status(), outcome));
    observe::observe(overhead_[ep], static_cast<uint64_t>(overhead_ns / 1000));
    if (trace.route != nullptr && ep < 3) {
      RouteMetrics& rm = trace.route->metrics;
      observe::observe(rm.duration[ep], static_cast<uint64_t>(total_ns / 1000));
      if (trace.first_event != Clock::time_point{}) {
        observe::observe(rm.ttft, static_cast<uint64_t>(ns_between(start, trace.first_event) / 1000));
      }
      if (trace.usage) {
        observe::add(rm.input_tokens, static_cast<uint64_t>(std::max<int64_t>(0, trace.usage->input)));
        observe::add(rm.output_tokens, static_cast<uint64_t>(std::max<int64_t>(0, trace.usage->output)));
        observe::add(rm.cached_tokens, static_cast<uint64_t>(std::max<int64_t>(0, trace.usage->cached)));
      }
    } else if (ep >= 3) {
      observe::observe(duration_unrouted_[ep], static_cast<uint64_t>(total_ns / 1000));
    }
  }
  if (!access_log_ || !access_log_->sampled(outcome != Outcome::success)) return;

  thread_local std::string line;  // reused: no allocation per request
  line.clear();
  line += "{\"ts\":\"";
  append_timestamp(line);
  line += '"';
  append_field(line, "request_id", request.request_id);
  append_field(line, "method", request.method());
  append_field(line, "path", request.path());
  append_int(line, "status", responder.status());
  append_field(line, "outcome", outcome_label(outcome));
  if (!trace.model.empty()) append_field(line, "model", trace.model);
  if (trace.route) append_field(line, "route", trace.route->route->model);
  if (trace.target) append_field(line, "target", trace.target->state.config.name);
  if (trace.who && !trace.who->anonymous) {
    append_field(line, "key", trace.who->key_id);
    if (!trace.who->tenant.empty()) append_field(line, "tenant", trace.who->tenant);
  }
  append_int(line, "attempts", trace.attempts);
  line += trace.stream ? ",\"stream\":true" : ",\"stream\":false";
  if (!trace.cache.empty()) append_field(line, "cache", trace.cache);
  if (trace.usage) {
    append_int(line, "input_tokens", trace.usage->input);
    append_int(line, "output_tokens", trace.usage->output);
    append_int(line, "cached_tokens", trace.usage->cached);
  }
  append_millis(line, "duration_ms", total_ns);
  append_millis(line, "upstream_ms", t.upstream_ns);
  append_int(line, "overhead_us", overhead_ns / 1000);
  if (trace.first_event != Clock::time_point{}) {
    append_millis(line, "ttft_ms", ns_between(start, trace.first_event));
  }
  if (!responder.error_kind().empty()) append_field(line, "error", responder.error_kind());
  if (access_log_->config().include_bodies && !request.body.empty()) {
    append_field(line, "body", request.body.substr(0, 32 * 1024));  // bounded
  }
  line += '}';
  access_log_->write(line);
}

}  // namespace sluice::api

namespace sluice::api {

void Gateway::register_collectors() {
  std::weak_ptr<Gateway> weak = weak_from_this();
  observe::Registry::instance().set_collector("targets", [weak](std::string& out) {
    auto self = weak.lock();
    if (!self) return;
    auto now = std::chrono::steady_clock::now();
    // One family at a time, every target in it (the exposition format groups by family).
    auto family = [&](const char* name, const char* type, const char* help, auto&& each) {
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
      for (const auto& rr : self->routes()) {
        for (const auto& t : rr->targets) {
          std::string labels = observe::labels({observe::label("model", rr->route->model),
                                                observe::label("target", t->state.config.name)});
          each(labels, t->state);
        }
      }
    };
    family("sluice_upstream_attempts_total", "counter",
           "Upstream attempts by target and outcome (since the config was loaded).",
           [&](const std::string& labels, const routing::TargetState& st) {
             for (size_t o = 0; o < st.outcomes.size(); ++o) {
               out += fmt::format(
                   "sluice_upstream_attempts_total{{{},outcome=\"{}\"}} {}\n", labels,
                   routing::to_string(static_cast<routing::AttemptOutcome>(o)),
                   st.outcomes[o].load(std::memory_order_relaxed));
             }
           });
    family("sluice_upstream_retries_total", "counter", "Retries made against the target.",
           [&](const std::string& labels, const routing::TargetState& st) {
             out += fmt::format("sluice_upstream_retries_total{{{}}} {}\n", labels,
                                st.retries.load(std::memory_order_relaxed));
           });
    family("sluice_upstream_in_flight", "gauge", "Attempts in progress against the target.",
           [&](const std::string& labels, const routing::TargetState& st) {
             out += fmt::format("sluice_upstream_in_flight{{{}}} {}\n", labels,
                                st.in_flight.load(std::memory_order_relaxed));
           });
    family("sluice_upstream_healthy", "gauge",
           "1 while the target passes its active health checks (or has none).",
           [&](const std::string& labels, const routing::TargetState& st) {
             out += fmt::format("sluice_upstream_healthy{{{}}} {}\n", labels,
                                st.healthy.load(std::memory_order_relaxed) ? 1 : 0);
           });
    family("sluice_circuit_breaker_state", "gauge",
           "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
           [&](const std::string& labels, const routing::TargetState& st) {
             out += fmt::format("sluice_circuit_breaker_state{{{}}} {}\n", labels,
                                static_cast<int>(st.breaker.state(now)));
           });
    family("sluice_circuit_breaker_transitions_total", "counter",
           "Circuit breaker state changes.",
           [&](const std::string& labels, const routing::TargetState& st) {
             out += fmt::format("sluice_circuit_breaker_transitions_total{{{}}} {}\n", labels,
                                st.breaker.transitions());
           });
    family("sluice_upstream_ttfb_ewma_seconds", "gauge",
           "Moving average of the target's time to first byte (0 = no sample yet).",
           [&](const std::string& labels, const routing::TargetState& st) {
             std::string v;
             observe::append_number(
                 v, static_cast<double>(st.ewma_ttfb_us.load(std::memory_order_relaxed)) / 1e6);
             out += fmt::format("sluice_upstream_ttfb_ewma_seconds{{{}}} {}\n", labels, v);
           });
  });
}

}  // namespace sluice::api
