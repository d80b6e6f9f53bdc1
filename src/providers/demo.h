// The built-in `demo` provider: answers any prompt offline with a deterministic text, so the
// embedded default config is useful with no network and no keys.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice::providers {

/// The demo's answer to `prompt` (same prompt → same answer). To the gateway's session
/// extraction prompt (sessions/extract.h) it answers the facts a few English patterns find in
/// the user's lines ("my name is", "I live in", "my X is Y", "I like", ...), as JSON.
std::string demo_answer(std::string_view prompt);

/// Splits text into stream pieces: each word with its trailing space.
std::vector<std::string_view> split_words(std::string_view text);

}  // namespace sluice::providers
