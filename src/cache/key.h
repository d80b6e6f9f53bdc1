// Response cache keys (docs/cache.md): the canonical form of a request body — what makes two
// requests the same question — and the SHA-256 key over it and its scope. Pure (no I/O).
//
// Canonical form: the body's JSON with object keys sorted at every depth, integral numbers
// written as integers (1.0 → 1), fields that do not change the answer dropped (user, metadata,
// stream, stream_options, store, service_tier, prompt_cache_key, safety_identifier; null
// values), defaults written out of existence (a field equal to its API default is dropped, so
// `temperature: 1` and no temperature are the same question), synonyms merged (max_tokens →
// max_completion_tokens in chat), and a message content given as a string made the one-text-part
// array it stands for. Text is never touched: whitespace inside a message is part of the question.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace sluice::cache {

/// The API a body was written for (which defaults and synonyms apply).
enum class Api { chat, messages, responses, gemini };

/// The canonical form of `body` (a JSON object) for `api`. Errors: not a JSON object.
Result<std::string> canonical_form(Api api, std::string_view body);

/// Where an entry may be served: never across owners, routes, upstream models or endpoints.
struct Scope {
  std::string owner;     // the tenant, or the key with Cache-Control: private ("" = anonymous)
  std::string route;     // the route's model pattern
  std::string upstream;  // the upstream models the route sends to, sorted, comma-joined
  std::string endpoint;  // the API path
};

/// Lower-case hex SHA-256 over the scope and the canonical form (fields length-prefixed, so no
/// two different inputs share their bytes).
std::string key_of(const Scope& scope, std::string_view canonical);

}  // namespace sluice::cache
