// The semantic tier's pure parts (docs/cache.md): which requests may be answered by a similar
// earlier one, what must be identical between the two, and the lexical guards that keep a near
// miss ("what is 12 × 13" / "what is 12 × 14") from ever being served. No I/O.
//
// A request is eligible when it is single-turn: any number of system/developer instructions and
// exactly one user message, all plain text (no images, audio, files), and no tools. Its question
// is then split in two: the user's text (compared by embedding similarity) and everything else
// — the instructions, the model, every sampling parameter — in its exact canonical form (key.h)
// with the text taken out. Two requests can only ever match when that rest is byte-identical.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cache/key.h"
#include "common/error.h"

namespace sluice::cache {

struct Question {
  std::string rest;  // the canonical form with the user's text replaced by a fixed marker
  std::string text;  // the user's text (its text parts joined by "\n")
};

/// The question of `body` when it is eligible for the semantic tier; nullopt when it is not
/// (multi-turn, tools, non-text content, ...). Errors: not a JSON object.
Result<std::optional<Question>> semantic_question(Api api, std::string_view body);

/// Why two texts must not share an answer even when their embeddings are close, or nullptr when
/// the guards let them: different numbers (digits or number words), a negation in one and not
/// the other, a name (a capitalised word inside a sentence, a quoted span, an identifier with
/// digits, dots or underscores) of one missing from the other, or different words from the
/// list of opposites (before/after, largest/smallest, ...).
const char* guard_refuses(std::string_view a, std::string_view b);

}  // namespace sluice::cache
