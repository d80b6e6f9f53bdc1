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
  if (!first_ && !http::sse_may_carry_usage(ready)) return http::count_sse_events(ready);
  first_ = false;
  size_t events = 0;
  parser_.feed(ready, [&events, &usage](const http::SseEvent& ev) {
    if (ev.data.find(kUsageKey) != std::string_view::npos) {
      if (auto u = parse_usage(ev.data)) usage = u;
    }
    if (ev.data != "[DONE]") ++events;
  });
  return events;
}

}  // namespace sluice::providers
