// JsonWriter: compact JSON written straight into a string, for the bodies the gateway sends on
// every request (a tree per request cost as much as the rest of the translation). The output is
// byte for byte what serialising the same Boost.JSON tree gives: keys in the order written,
// strings escaped by append_json_escaped, doubles in Boost.JSON's own notation.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "canonical/json.h"
#include "common/error.h"

namespace sluice::canonical {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }
  /// A member's key; its value is written next. Keys are the writer's own names (plain ASCII,
  /// nothing to escape): written as they are.
  JsonWriter& key(std::string_view k) {
    separate();
    out_ += '"';
    out_ += k;
    out_ += "\":";
    first_ = true;  // the value takes no comma
    return *this;
  }
  JsonWriter& string(std::string_view s) {
    separate();
    quoted(s);
    return *this;
  }
  JsonWriter& integer(int64_t v) {
    separate();
    out_ += std::to_string(v);
    return *this;
  }
  JsonWriter& number(double v) {  // rare fields: Boost.JSON's notation, as the tree had it
    separate();
    out_ += json::serialize(json::value(v));
    return *this;
  }
  JsonWriter& boolean(bool v) {
    separate();
    out_ += v ? "true" : "false";
    return *this;
  }
  JsonWriter& null() {
    separate();
    out_ += "null";
    return *this;
  }
  /// A value already in JSON form (the caller guarantees it is one whole valid value).
  JsonWriter& raw(std::string_view json_text) {
    separate();
    out_ += json_text;
    return *this;
  }
  /// Shorthands for a member.
  JsonWriter& member(std::string_view k, std::string_view v) { return key(k).string(v); }
  JsonWriter& member(std::string_view k, const char* v) { return key(k).string(v); }
  JsonWriter& member(std::string_view k, int64_t v) { return key(k).integer(v); }
  JsonWriter& member(std::string_view k, bool v) { return key(k).boolean(v); }

 private:
  JsonWriter& open(char c) {
    separate();
    out_ += c;
    first_ = true;
    return *this;
  }
  JsonWriter& close(char c) {
    out_ += c;
    first_ = false;
    return *this;
  }
  void separate() {
    if (!first_) out_ += ',';
    first_ = false;
  }
  void quoted(std::string_view s) {
    out_ += '"';
    append_json_escaped(out_, s);
    out_ += '"';
  }

  std::string& out_;
  bool first_ = true;
};

}  // namespace sluice::canonical
