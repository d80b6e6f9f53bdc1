// Validation of an upstream's successful unary answer before it is relayed: a 2xx whose body
// is not JSON, or lacks what the operation's answer must carry, is an upstream protocol error
// (502, retried like any other failure that reached no client), not a 200 the client's SDK
// then fails to parse.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "providers/request.h"
#include "providers/usage_report.h"

namespace sluice::providers {

/// nullopt when `body` is a well-formed answer for `op`: a JSON object with a `choices` array
/// (chat, completions) or a `data` array (embeddings). Otherwise what is wrong, for the error
/// message ("a body that is not valid JSON (...)", "no 'choices' array"). Any body, no padding
/// needed (it is copied into a per-thread padded buffer).
/// With `usage`: when the answer is well formed and has a top-level `usage` object, its counts
/// are read from the parsed document (as parse_usage() reads them) into *usage and
/// *usage_read is set; otherwise the caller scans the body with parse_usage().
std::optional<std::string> check_unary_answer(Operation op, std::string_view body,
                                              std::optional<UsageTokens>* usage = nullptr,
                                              bool* usage_read = nullptr);

}  // namespace sluice::providers
