// Token usage as upstreams report it: the `usage` object of a unary body or of an SSE event,
// and an observer of relayed SSE chunks that counts content events and keeps the last usage.
// Pure (no Asio, no SQLite) so the fuzzers can check the stream fast path against SseParser.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "http/parse/sse_parser.h"

namespace sluice::providers {

struct UsageTokens {
  int64_t input = 0;   // prompt tokens, cached ones included
  int64_t cached = 0;  // prompt_tokens_details.cached_tokens
  int64_t output = 0;  // completion tokens
  bool operator==(const UsageTokens&) const = default;
};

/// The last `"usage": {...}` object in `json` (OpenAI's field names); nullopt if there is
/// none (`"usage": null`, as OpenAI's include_usage sends in every chunk, is none).
std::optional<UsageTokens> parse_usage(std::string_view json);

/// Watches the SSE bytes a relay forwards, chunk by chunk. Each chunk must be whole events
/// (http::SseEventBuffer::push's result). The common chunk is only counted
/// (http::count_sse_events); the stream's first chunk (it may start with a BOM) and chunks that
/// may carry usage (http::sse_may_carry_usage) go through SseParser. Both count exactly the
/// events SseParser dispatches, minus `[DONE]`.
class SseStreamObserver {
 public:
  /// `max_event_bytes`: the relay's bound on one event, so the parser never drops one it relays.
  explicit SseStreamObserver(size_t max_event_bytes) { parser_.set_max_event_bytes(max_event_bytes); }

  /// Content events in `ready`; sets `usage` to the last usage object reported in it, if any.
  size_t observe(std::string_view ready, std::optional<UsageTokens>& usage);

 private:
  http::SseParser parser_;
  bool first_ = true;
};

}  // namespace sluice::providers
