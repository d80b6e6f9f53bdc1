// Usage objects in upstream answers, and the SSE relay's chunk observer.
#include "providers/usage_report.h"

#include <charconv>

#include "http/parse/sse_scan.h"

namespace sluice::providers {
namespace {

constexpr std::string_view kUsageKey = "\"usage\"";

bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::optional<int64_t> number_after(std::string_view json, size_t from, std::string_view field) {
  size_t k = json.find(field, from);
  if (k == std::string_view::npos) return std::nullopt;
  k = json.find(':', k + field.size());
  if (k == std::string_view::npos) return std::nullopt;
  ++k;
  while (k < json.size() && (json[k] == ' ' || json[k] == '\t' || json[k] == '\n')) ++k;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(json.data() + k, json.data() + json.size(), v);
  if (ec != std::errc() || v < 0) return std::nullopt;
  return v;
}

// Offset of the last `"usage"` key whose value is an object, or npos.
size_t last_usage_object(std::string_view json) {
  for (size_t at = json.rfind(kUsageKey); at != std::string_view::npos;
       at = at == 0 ? std::string_view::npos : json.rfind(kUsageKey, at - 1)) {
    size_t k = at + kUsageKey.size();
    while (k < json.size() && is_json_space(json[k])) ++k;
    if (k == json.size() || json[k] != ':') continue;
    ++k;
    while (k < json.size() && is_json_space(json[k])) ++k;
    if (k < json.size() && json[k] == '{') return at;
  }
  return std::string_view::npos;
}

}  // namespace

std::optional<UsageTokens> parse_usage(std::string_view json) {
  const size_t at = last_usage_object(json);
  if (at == std::string_view::npos) return std::nullopt;
  UsageTokens t;
  auto prompt = number_after(json, at, "\"prompt_tokens\"");
  auto completion = number_after(json, at, "\"completion_tokens\"");
  if (!prompt && !completion) {
    auto total = number_after(json, at, "\"total_tokens\"");  // embeddings report only these
    if (!total) return std::nullopt;
    t.input = *total;
    return t;
  }
  t.input = prompt.value_or(0);
  t.output = completion.value_or(0);
  if (auto cached = number_after(json, at, "\"cached_tokens\"")) t.cached = *cached;
  return t;
}

size_t SseStreamObserver::observe(std::string_view ready, std::optional<UsageTokens>& usage) {
  size_t events = 0;
  // A BOM can start only the stream's first chunk: that chunk is parsed whole when it might.
  const bool bom = first_ && !ready.empty() && static_cast<unsigned char>(ready[0]) == 0xEF;
  if (first_ && !bom) parser_.past_start();  // the parser may see only later events
  first_ = false;
  if (!bom) {
    // Whole events from a boundary: those before the first possible usage object are only
    // counted; the parser reads from the event that holds it (typically the last one).
    const size_t candidate = http::first_usage_candidate(ready);
    if (candidate == std::string_view::npos) return http::count_sse_events(ready);
    const size_t split = http::last_event_boundary(ready.substr(0, candidate));
    events = http::count_sse_events(ready.substr(0, split));
    ready.remove_prefix(split);
  }
  parser_.feed(ready, [&events, &usage](const http::SseEvent& ev) {
    if (ev.data.find(kUsageKey) != std::string_view::npos) {
      if (auto u = parse_usage(ev.data)) usage = u;
    }
    if (ev.data != "[DONE]") ++events;
  });
  return events;
}

}  // namespace sluice::providers
