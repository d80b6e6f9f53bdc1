// Helpers for the decoders' on-demand passes (simdjson): the common stream events are read in
// one pass without a DOM, and anything the pass is not sure of goes the DOM way. On-demand
// parsing checks only what it reads, so a pass reads every scalar it skips: what it accepts is
// valid JSON, as on the DOM path.
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>

namespace sluice::canonical::ondemand {

namespace od = simdjson::ondemand;

/// The thread's on-demand parser (its buffers are reused across documents).
inline od::parser& thread_parser() {
  thread_local od::parser parser;
  return parser;
}

/// `data` copied into `buffer` with simdjson's padding after it, as a padded view.
inline simdjson::padded_string_view padded(std::string_view data, std::string& buffer) {
  buffer.assign(data);
  buffer.resize(data.size() + simdjson::SIMDJSON_PADDING);
  return simdjson::padded_string_view(buffer.data(), data.size(), buffer.size());
}

/// Reads a scalar the pass does not use; false for objects, arrays and anything invalid.
inline bool skip_scalar(od::value v) {
  od::json_type t;
  if (v.type().get(t)) return false;
  switch (t) {
    case od::json_type::string: {
      std::string_view s;
      return !v.get_string().get(s);
    }
    case od::json_type::number: {
      od::number n;
      return !v.get_number().get(n);
    }
    case od::json_type::boolean: {
      bool b;
      return !v.get_bool().get(b);
    }
    case od::json_type::null: {
      bool null = false;
      return !v.is_null().get(null) && null;
    }
    default: return false;
  }
}

/// Reads any value the pass does not use, nested ones included (to a bounded depth), so that
/// it is checked as valid JSON; false when it is not, or nests deeper than `depth`.
inline bool skip_value(od::value v, int depth = 8) {
  od::json_type t;
  if (v.type().get(t)) return false;
  if (t == od::json_type::array) {
    od::array a;
    if (depth == 0 || v.get_array().get(a)) return false;
    for (auto e : a) {
      od::value ev;
      if (e.get(ev) || !skip_value(ev, depth - 1)) return false;
    }
    return true;
  }
  if (t == od::json_type::object) {
    od::object o;
    if (depth == 0 || v.get_object().get(o)) return false;
    for (auto f : o) {
      std::string_view key;
      od::value fv;
      if (f.unescaped_key().get(key) || f.value().get(fv) || !skip_value(fv, depth - 1)) {
        return false;
      }
    }
    return true;
  }
  return skip_scalar(v);
}

/// True when `v` is null.
inline bool is_null(od::value v) {
  bool null = false;
  return !v.is_null().get(null) && null;
}

/// A string or null ("" for null); false for anything else.
inline bool string_or_null(od::value v, std::string_view& out) {
  if (is_null(v)) {
    out = {};
    return true;
  }
  return !v.get_string().get(out);
}

/// The document ended after its value (no trailing bytes).
inline bool at_end(od::document& doc) {
  return doc.current_location().error() == simdjson::OUT_OF_BOUNDS;
}

}  // namespace sluice::canonical::ondemand
