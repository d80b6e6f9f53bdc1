// The mapping tables shared by the codecs and by docs/translation.md (generated from them by
// `sluice --print-translation-table`, checked by a unit test).
#pragma once

#include <array>
#include <string_view>

#include "canonical/canonical.h"

namespace sluice::canonical {

struct StopRow {
  StopReason reason;
  std::string_view openai;     // finish_reason
  std::string_view anthropic;  // stop_reason
  std::string_view gemini;     // finishReason
};

/// Canonical stop reason → each protocol's value (the encode direction). Decoders map every
/// value they know (Gemini has many safety reasons) onto these.
inline constexpr std::array<StopRow, 7> kStopReasons{{
    {StopReason::end_turn, "stop", "end_turn", "STOP"},
    {StopReason::max_tokens, "length", "max_tokens", "MAX_TOKENS"},
    {StopReason::stop_sequence, "stop", "stop_sequence", "STOP"},
    {StopReason::tool_use, "tool_calls", "tool_use", "STOP"},
    {StopReason::refusal, "content_filter", "refusal", "SAFETY"},
    {StopReason::pause_turn, "stop", "pause_turn", "STOP"},
    {StopReason::error, "stop", "end_turn", "OTHER"},
}};

inline const StopRow& stop_row(StopReason r) {
  for (const auto& row : kStopReasons) {
    if (row.reason == r) return row;
  }
  return kStopReasons[0];  // unset → as end_turn
}

/// Gemini finishReason values that mean the answer was filtered (→ StopReason::refusal).
inline constexpr std::array<std::string_view, 7> kGeminiFilterReasons{
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "LANGUAGE"};

struct ErrorTypeRow {
  int status;
  std::string_view openai_type;     // error.type
  std::string_view anthropic_type;  // error.type
  std::string_view gemini_status;   // error.status
};

/// HTTP status → each protocol's error type (first matching row; the last row is the default).
inline constexpr std::array<ErrorTypeRow, 11> kErrorTypes{{
    {400, "invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"},
    {401, "authentication_error", "authentication_error", "UNAUTHENTICATED"},
    {403, "permission_error", "permission_error", "PERMISSION_DENIED"},
    {404, "not_found_error", "not_found_error", "NOT_FOUND"},
    {408, "timeout_error", "timeout_error", "DEADLINE_EXCEEDED"},
    {413, "invalid_request_error", "request_too_large", "INVALID_ARGUMENT"},
    {429, "rate_limit_error", "rate_limit_error", "RESOURCE_EXHAUSTED"},
    {503, "service_unavailable", "overloaded_error", "UNAVAILABLE"},
    {504, "timeout_error", "timeout_error", "DEADLINE_EXCEEDED"},
    {529, "service_unavailable", "overloaded_error", "UNAVAILABLE"},
    {500, "api_error", "api_error", "INTERNAL"},
}};

inline const ErrorTypeRow& error_row(int status) {
  for (const auto& row : kErrorTypes) {
    if (row.status == status) return row;
  }
  if (status >= 400 && status < 500) return kErrorTypes[0];
  return kErrorTypes.back();
}

}  // namespace sluice::canonical
