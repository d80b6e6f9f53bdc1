// sluice-mock handler: routes OpenAI, Anthropic and Gemini requests to their formats
// (mock/formats.h), with per-request latency, token pacing and faults.
#include "mock/mock_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <chrono>
#include <ctime>
#include <vector>

#include "mock/formats.h"
#include "providers/openai_format.h"
#include "providers/request.h"

namespace sluice::mock {

namespace asio = boost::asio;
using providers::Operation;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

int header_int(const http::Request& req, std::string_view name, int fallback) {
  std::string_view v = req.header(name);
  if (v.empty()) return fallback;
  int out = fallback;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc() ? out : fallback;
}

// Sleeps on the request's timer; false if the peer left meanwhile (the timer was cancelled).
asio::awaitable<bool> sleep_ms(asio::steady_timer& timer, const http::Responder& resp, int ms) {
  if (resp.client_gone()) co_return false;
  if (ms <= 0) co_return true;
  timer.expires_after(std::chrono::milliseconds(ms));
  co_await timer.async_wait(use_nothrow);
  co_return !resp.client_gone();
}

struct Fault {
  enum Kind { none, drop, stall, malformed, truncate, reset } kind = none;
  int after = 0;
};

Fault parse_fault(std::string_view v) {
  Fault f;
  auto with_count = [&](std::string_view prefix, Fault::Kind k) {
    if (v.starts_with(prefix)) {
      f.kind = k;
      std::string_view n = v.substr(prefix.size());
      std::from_chars(n.data(), n.data() + n.size(), f.after);
      return true;
    }
    return false;
  };
  if (with_count("drop-after:", Fault::drop) || with_count("stall-after:", Fault::stall)) return f;
  if (v == "malformed") f.kind = Fault::malformed;
  if (v == "truncate") f.kind = Fault::truncate;
  if (v == "reset") f.kind = Fault::reset;
  if (v == "drop") f.kind = Fault::drop;
  if (v == "stall") f.kind = Fault::stall;
  return f;
}

void record_last(MockStats& stats, const http::Request& req) {
  std::string j = R"({"method":")";
  append_json_escaped(j, req.method());
  j += R"(","path":")";
  append_json_escaped(j, req.head->target);
  j += R"(","headers":{)";
  for (size_t i = 0; i < req.head->header_count; ++i) {
    if (i) j += ',';
    std::string name(req.head->headers[i].name);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    j += '"';
    append_json_escaped(j, name);
    j += R"(":")";
    append_json_escaped(j, req.head->headers[i].value);
    j += '"';
  }
  j += R"(},"body":")";
  append_json_escaped(j, req.body);
  j += "\"}";
  std::lock_guard lock(stats.last_mutex);
  stats.last = std::move(j);
}

std::string stats_json(const MockStats& s) {
  return R"({"requests":)" + std::to_string(s.requests.load()) +
         R"(,"streams_started":)" + std::to_string(s.streams_started.load()) +
         R"(,"streams_completed":)" + std::to_string(s.streams_completed.load()) +
         R"(,"cancelled":)" + std::to_string(s.cancelled.load()) + R"(,"active":)" +
         std::to_string(s.active.load()) + "}";
}

struct ActiveGuard {
  explicit ActiveGuard(MockStats& s) : s_(s) { s_.active++; }
  ~ActiveGuard() { s_.active--; }
  MockStats& s_;
};

enum class Api { openai, anthropic, gemini };
enum class Kind { chat, completions, embeddings, messages, count_tokens, generate, stream_generate };

struct Route {
  Api api = Api::openai;
  Kind kind = Kind::chat;
  std::string model;  // Gemini: from the path
  bool sse = false;   // Gemini streamGenerateContent?alt=sse
};

// Gemini: /v1beta/models/{model}:{method} (also /v1/models/...).
bool gemini_route(std::string_view path, std::string_view query, Route& r) {
  std::string_view rest;
  if (path.starts_with("/v1beta/models/")) {
    rest = path.substr(15);
  } else if (path.starts_with("/v1/models/")) {
    rest = path.substr(11);
  } else {
    return false;
  }
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view method = rest.substr(colon + 1);
  if (method == "generateContent") {
    r.kind = Kind::generate;
  } else if (method == "streamGenerateContent") {
    r.kind = Kind::stream_generate;
  } else if (method == "countTokens") {
    r.kind = Kind::count_tokens;
  } else {
    return false;
  }
  r.api = Api::gemini;
  r.model = std::string(rest.substr(0, colon));
  r.sse = query == "alt=sse" || query.starts_with("alt=sse&") || query.find("&alt=sse") !=
                                                                     std::string_view::npos;
  return true;
}

bool find_route(const http::Request& req, Route& r) {
  std::string_view path = req.path();
  if (gemini_route(path, req.head->query, r)) return true;
  if (path == "/v1/messages") {
    r.api = Api::anthropic;
    r.kind = Kind::messages;
  } else if (path == "/v1/messages/count_tokens") {
    r.api = Api::anthropic;
    r.kind = Kind::count_tokens;
  } else if (path.ends_with("/chat/completions")) {
    r.kind = Kind::chat;
  } else if (path.ends_with("/completions")) {
    r.kind = Kind::completions;
  } else if (path.ends_with("/embeddings")) {
    r.kind = Kind::embeddings;
  } else {
    return false;
  }
  return true;
}

std::string error_body(Api api, int status, std::string_view message) {
  switch (api) {
    case Api::anthropic: return anthropic::error_body(status, message);
    case Api::gemini: return gemini::error_body(status, message);
    case Api::openai: break;
  }
  return openai::error_body(status, message);
}

class MockHandler {
 public:
  MockHandler(const MockOptions& o, MockStats& s) : opt_(o), stats_(s) {}

  asio::awaitable<void> operator()(http::Request& req, http::Responder& resp) {
    std::string_view path = req.path();
    if (path == "/mock/stats") {
      co_await resp.send(200, "application/json", stats_json(stats_));
      co_return;
    }
    if (path == "/mock/last") {
      std::string last;
      {
        std::lock_guard lock(stats_.last_mutex);
        last = stats_.last.empty() ? "{}" : stats_.last;
      }
      co_await resp.send(200, "application/json", last);
      co_return;
    }
    if (path == "/mock/reset") {
      stats_.requests = 0;
      stats_.streams_started = 0;
      stats_.streams_completed = 0;
      stats_.cancelled = 0;
      {
        std::lock_guard lock(stats_.last_mutex);
        stats_.script_counters.clear();
      }
      co_await resp.send(200, "application/json", R"({"reset":true})");
      co_return;
    }
    if (path == "/v1/models" || path == "/models") {
      co_await resp.send(200, "application/json",
                         R"({"object":"list","data":[{"id":"mock-model","object":"model",)"
                         R"("created":0,"owned_by":"sluice-mock"}]})");
      co_return;
    }
    Route route;
    if (!find_route(req, route)) {
      {
        const Error error = make_error(Errc::not_found, "mock: unknown path");
        co_await resp.send_error(error);
      }
      co_return;
    }
    stats_.requests++;
    record_last(stats_, req);
    ActiveGuard active(stats_);
    int latency = header_int(req, "x-mock-latency-ms", opt_.latency_ms);
    Fault fault = parse_fault(req.header("x-mock-fault"));
    int status = header_int(req, "x-mock-status", 200);
    // x-mock-script: "500,500,200" with x-mock-script-id: the n-th request carrying that id
    // gets the n-th step (the last step repeats). A step is a status or a fault keyword.
    std::string_view script = req.header("x-mock-script");
    if (!script.empty()) {
      std::string step = next_script_step(req.header("x-mock-script-id"), script);
      int code = 0;
      auto [p, ec] = std::from_chars(step.data(), step.data() + step.size(), code);
      if (ec == std::errc() && p == step.data() + step.size()) {
        status = code;
        fault = Fault{};
      } else {
        fault = parse_fault(step);
        status = 200;
      }
    }
    // The fast path (no timer, no client watch) is only for answers with no waiting at all.
    bool simple = latency <= 0 && fault.kind == Fault::none && status == 200 &&
                  header_int(req, "x-mock-ttft-ms", opt_.ttft_ms) <= 0 &&
                  header_int(req, "x-mock-itl-ms", opt_.itl_ms) <= 0;
    if (simple) {
      co_await answer(route, req, resp, nullptr);
      co_return;
    }
    asio::steady_timer timer(co_await asio::this_coro::executor);
    resp.watch_client([&timer] { timer.cancel(); });
    if (co_await sleep_ms(timer, resp, latency)) {
      if (fault.kind == Fault::reset) {
        resp.abort(true);
      } else if (status != 200) {
        std::string body = error_body(route.api, status, "mock error " + std::to_string(status));
        std::string extra;
        std::string_view ra = req.header("x-mock-retry-after");
        if (!ra.empty()) extra = "Retry-After: " + std::string(ra) + "\r\n";
        co_await resp.send(status, "application/json", body, extra);
      } else {
        co_await answer(route, req, resp, &timer, fault);
      }
    }
    co_await resp.stop_watching();
    bool gone = resp.client_gone();
    if (gone) stats_.cancelled++;
  }

 private:
  // `timer` is the request's cancellable sleeper (nullptr on the no-delay fast path).
  asio::awaitable<void> answer(const Route& route, http::Request& req, http::Responder& resp,
                               asio::steady_timer* timer, Fault fault = {}) {
    Answer a;
    bool stream = false;
    std::string error;
    switch (route.api) {
      case Api::openai: {
        Operation op = route.kind == Kind::chat          ? Operation::chat
                       : route.kind == Kind::completions ? Operation::completions
                                                         : Operation::embeddings;
        providers::ParsedRequest parsed;
        if (auto r = providers::parse_request(op, req.body, parsed); !r) {
          co_await resp.send_error(r.error());
          co_return;
        }
        if (fault.kind == Fault::malformed) break;
        if (op == Operation::embeddings) {
          auto inputs = providers::extract_embedding_inputs(req.body);
          if (!inputs) {
            co_await resp.send_error(inputs.error());
            co_return;
          }
          co_await resp.send(200, "application/json",
                             providers::embeddings_response(
                                 parsed.model, inputs->inputs, inputs->encoding_format == "base64",
                                 req.header("x-mock-embedding") == "trigrams" ? 256 : 8,
                                 req.header("x-mock-embedding") == "trigrams"));
          co_return;
        }
        a.model = parsed.model;
        a.completions = op == Operation::completions;
        a.id = (a.completions ? "cmpl-mock-" : "chatcmpl-mock-") + std::to_string(++counter_);
        a.include_usage = parsed.include_usage;
        stream = parsed.stream;
        break;
      }
      case Api::anthropic: {
        anthropic::Request parsed;
        if (!anthropic::parse_request(req.body, route.kind == Kind::count_tokens, parsed, error)) {
          co_await resp.send(400, "application/json", anthropic::error_body(400, error));
          co_return;
        }
        if (fault.kind == Fault::malformed) break;
        if (route.kind == Kind::count_tokens) {
          co_await resp.send(200, "application/json", anthropic::count_tokens(req.body));
          co_return;
        }
        a.model = parsed.model;
        a.id = "msg_mock_" + std::to_string(++counter_);
        stream = parsed.stream;
        break;
      }
      case Api::gemini: {
        if (!gemini::parse_request(req.body, route.kind == Kind::count_tokens, error)) {
          co_await resp.send(400, "application/json", gemini::error_body(400, error));
          co_return;
        }
        if (fault.kind == Fault::malformed) break;
        if (route.kind == Kind::count_tokens) {
          co_await resp.send(200, "application/json", gemini::count_tokens(req.body));
          co_return;
        }
        a.model = route.model;
        a.id = "mock-resp-" + std::to_string(++counter_);
        stream = route.kind == Kind::stream_generate && route.sse;
        break;
      }
    }
    if (fault.kind == Fault::malformed) {
      co_await resp.send(200, "application/json", R"({"id": "broken", "choices": [)");
      co_return;
    }
    a.sc = parse_scenario(req, opt_.tokens);
    a.created = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
    a.prompt_tokens = std::max<int64_t>(1, static_cast<int64_t>(req.body.size() / 4));
    int ttft = header_int(req, "x-mock-ttft-ms", opt_.ttft_ms);
    int itl = header_int(req, "x-mock-itl-ms", opt_.itl_ms);
    if (!stream) {
      if (fault.kind == Fault::drop) {
        resp.abort();
        co_return;
      }
      if (fault.kind == Fault::stall) {
        co_await sleep_ms(*timer, resp, 24 * 3600 * 1000);
        co_return;
      }
      if (ttft > 0 && (timer == nullptr || !co_await sleep_ms(*timer, resp, ttft))) co_return;
      std::string body;
      switch (route.api) {
        case Api::openai: body = openai::unary(a); break;
        case Api::anthropic: body = anthropic::unary(a); break;
        case Api::gemini:
          // streamGenerateContent without alt=sse: the chunks as one JSON array.
          body = route.kind == Kind::stream_generate ? gemini::json_array(gemini::stream(a))
                                                     : gemini::unary(a);
          break;
      }
      if (fault.kind == Fault::truncate) {
        // Declares the whole length, sends half, then closes: a truncated response.
        std::string wire = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" +
                           body.substr(0, body.size() / 2);
        co_await resp.write_raw(wire);
        resp.abort();
        co_return;
      }
      co_await resp.send(200, "application/json", body);
      co_return;
    }
    Events events;
    std::string stream_error;
    switch (route.api) {
      case Api::openai:
        events = openai::stream(a);
        stream_error = openai::stream_error();
        break;
      case Api::anthropic:
        events = anthropic::stream(a);
        stream_error = anthropic::stream_error();
        break;
      case Api::gemini:
        events = gemini::stream(a);
        stream_error = gemini::stream_error();
        break;
    }
    co_await run_stream(events, stream_error, a.sc.error_after, a.sc.timestamps, resp, timer, fault,
                        ttft, itl);
  }

  // Writes `events`: ttft before the first delta, itl before each next one (unpaced events are
  // batched into one write); drop/stall-after:N cut the stream before delta N+1; error_after
  // (>= 0) replaces delta N+1, or the stop-reason event if that comes first, with
  // `stream_error` and ends the stream.
  asio::awaitable<void> run_stream(const Events& events, const std::string& stream_error,
                                   int error_after, bool stamp, http::Responder& resp,
                                   asio::steady_timer* timer, Fault fault, int ttft, int itl) {
    stats_.streams_started++;
    // The head goes out at once, as from a model server that answers before its first token.
    if (!co_await resp.begin_stream(200, "text/event-stream", "Cache-Control: no-cache\r\n")) {
      co_return;
    }
    if (!co_await resp.flush_head()) co_return;
    std::string batch;
    int count = 0;
    for (const Event& e : events) {
      if (error_after >= 0 && (e.finish || (e.delta && count >= error_after))) {
        batch += stream_error;
        if (!co_await resp.write_chunk(batch)) co_return;
        co_await resp.end_stream(true);
        co_return;
      }
      if (e.delta) {
        ++count;
        if ((fault.kind == Fault::drop || fault.kind == Fault::stall) && count > fault.after) {
          if (!batch.empty() && !co_await resp.write_chunk(batch)) co_return;
          if (fault.kind == Fault::drop) {
            resp.abort();
            co_return;
          }
          co_await sleep_ms(*timer, resp, 24 * 3600 * 1000);
          co_return;
        }
        int delay = count == 1 ? ttft : itl;
        if (delay > 0) {
          if (!batch.empty()) {
            if (!co_await resp.write_chunk(batch)) co_return;
            batch.clear();
          }
          if (timer == nullptr || !co_await sleep_ms(*timer, resp, delay)) co_return;
        }
      }
      size_t at = batch.size();
      batch += e.bytes;
      if (stamp && e.delta) stamp_event(batch, at);
    }
    if (!co_await resp.write_chunk(batch)) co_return;
    if (co_await resp.end_stream()) stats_.streams_completed++;
  }

  // Replaces the first kStampMark at or after `from` with the current wall-clock time.
  static void stamp_event(std::string& batch, size_t from) {
    size_t pos = batch.find(kStampMark, from);
    if (pos == std::string::npos) return;
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
    for (size_t i = kStampMark.size(); i-- > 0; ns /= 10) batch[pos + i] = static_cast<char>('0' + ns % 10);
  }

  std::string next_script_step(std::string_view id, std::string_view script) {
    std::vector<std::string_view> steps;
    size_t pos = 0;
    while (pos <= script.size()) {
      size_t comma = script.find(',', pos);
      if (comma == std::string_view::npos) comma = script.size();
      std::string_view step = script.substr(pos, comma - pos);
      while (!step.empty() && step.front() == ' ') step.remove_prefix(1);
      while (!step.empty() && step.back() == ' ') step.remove_suffix(1);
      steps.push_back(step);
      pos = comma + 1;
    }
    size_t n;
    {
      std::lock_guard lock(stats_.last_mutex);
      n = stats_.script_counters[std::string(id)]++;
    }
    return std::string(steps[std::min(n, steps.size() - 1)]);
  }

  MockOptions opt_;
  MockStats& stats_;
  int64_t counter_ = 0;
};

}  // namespace

http::Handler make_mock_handler(const MockOptions& options, MockStats& stats) {
  auto handler = std::make_shared<MockHandler>(options, stats);
  return [handler](http::Request& req, http::Responder& resp) { return (*handler)(req, resp); };
}

}  // namespace sluice::mock
