// Small helpers over Boost.JSON shared by the codecs: parse with a 400-shaped error, typed
// field access that tolerates absence and null, and serialisation.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace sluice::canonical {

namespace json = boost::json;

/// Parses `body` (a whole JSON document). Errors: bad_request "not valid JSON" (client
/// bodies) — providers turn that into upstream_protocol themselves. With `storage` (an arena,
/// see ChunkArena), the values live in it and must not outlive it.
Result<json::value> parse_json(std::string_view body, json::storage_ptr storage = {});

/// The member `key` of `o` if present and not null.
const json::value* field(const json::object& o, std::string_view key);
/// String member, "" when absent, null or not a string.
std::string_view str(const json::object& o, std::string_view key);
/// Object / array members, nullptr when absent or of another type.
const json::object* obj(const json::object& o, std::string_view key);
const json::array* arr(const json::object& o, std::string_view key);
/// Integer member (an integral double is accepted), nullopt when absent or not a number.
std::optional<int64_t> integer(const json::object& o, std::string_view key);
std::optional<double> number(const json::object& o, std::string_view key);
std::optional<bool> boolean(const json::object& o, std::string_view key);

/// Minified JSON text of `v`.
std::string to_text(const json::value& v);
/// (Objects and arrays directly: through the value overload they would be copied into a
/// temporary value first, the whole tree.)
std::string to_text(const json::object& o);
std::string to_text(const json::array& a);
/// Parses JSON text that the gateway itself produced or already validated (tool arguments,
/// schemas); on a parse failure yields the text as a JSON string (never throws).
json::value from_text(std::string_view text);

/// Stack memory for parsing one document read once and dropped (a stream chunk, a client's
/// request decoded into the canonical model): its values are allocated from it (from the heap
/// only past 8 KiB, in growing blocks), and all freed at once when it dies. Values parsed into
/// it must not outlive the arena.
class ChunkArena {
 public:
  ChunkArena() : resource_(buffer_, sizeof buffer_) {}
  ChunkArena(const ChunkArena&) = delete;
  ChunkArena& operator=(const ChunkArena&) = delete;
  json::storage_ptr storage() { return json::storage_ptr(&resource_); }

 private:
  alignas(16) unsigned char buffer_[8192];
  json::monotonic_resource resource_;
};

/// A 400 naming `param`.
Error invalid(std::string message, std::string param = {});

}  // namespace sluice::canonical
