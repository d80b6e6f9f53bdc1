// What the response cache stores for one answer: the whole answer in canonical form (so it can
// be replayed in any client protocol, as JSON or as a stream), how long it took upstream (for
// paced replay), and what it is (for invalidation and the admin view). Pure (no I/O).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "canonical/canonical.h"
#include "common/error.h"

namespace sluice::cache {

struct Entry {
  canonical::Response answer;
  int64_t stored_ms = 0;    // when it was stored (Age)
  int64_t duration_ms = 0;  // how long the upstream took (paced replay spreads over it)
  std::string model;        // the model that answered
};

/// Serialized entry (JSON; every block field and usage figure kept).
std::string encode_entry(const Entry& e);
/// The entry `text` holds. Errors: not an entry of this version.
Result<Entry> decode_entry(std::string_view text);

/// Whether `r` may be stored: a complete, successful answer (a stop reason that is not an error,
/// a refusal or a pause), with a tool call only when `tool_calls` allows it.
bool storable(const canonical::Response& r, bool tool_calls);

}  // namespace sluice::cache
