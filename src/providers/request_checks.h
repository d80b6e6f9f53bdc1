// Internal to request.cc: the per-field schema checks parse_request runs on simdjson on-demand
// values in its single pass, and the OpenAI-worded errors they produce. Each check reads only
// what it must (a message's role, a token array's item types) and lets the iteration skip the
// rest. Nothing here allocates for a valid value.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"

namespace sluice::providers::checks {

namespace od = simdjson::ondemand;

/// 400 for a body simdjson could not parse (no param, null code).
Error json_error(simdjson::error_code ec);

/// `s` without trailing JSON whitespace.
std::string_view trim_right(std::string_view s);

/// A bad_request with OpenAI's `code` (a string literal).
Error invalid(std::string_view code, std::string message, std::string param);

/// "Missing required parameter: '<param>'." (missing_required_parameter).
Error missing(std::string param);

/// A repeated top-level key (null code: OpenAI has none for this).
Error duplicate(std::string_view key);

/// An integer in [min, max], or null (present = false). invalid_type for any other type,
/// integer_below_min_value / integer_above_max_value outside the range.
Result<void> read_int(od::value& v, std::string_view name, int64_t min, int64_t max,
                      int64_t& value, bool& present);

/// A number (integer or decimal) in [0, max], or null. `max_text` is max as written in messages.
Result<void> check_decimal(od::value& v, std::string_view name, double max,
                           std::string_view max_text);

/// chat `messages`: a non-empty array of objects, each with a role in {system, user, assistant,
/// tool, function, developer}. `content` and other members are skipped unread.
Result<void> check_messages(od::value& v);

/// completions `prompt` (embeddings = false; null accepted) or embeddings `input` (non-empty, at
/// most kMaxEmbeddingInputs items): a string, or an array of strings, of integers or of integer
/// arrays; the first item decides which, every other must match.
Result<void> check_text_or_tokens(od::value& v, std::string_view name, bool embeddings);

/// stream_options: an object whose include_usage is a boolean or null, or null. `present` is set
/// when it is an object.
Result<void> read_stream_options(od::value& v, bool& present, bool& include_usage);

}  // namespace sluice::providers::checks
