// Skeleton: reads a stream event that repeats the last one's shape without parsing it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::canonical {

/// The bytes around one string value of the last event a fast pass accepted. Streams repeat one
/// event shape with only the text changing ({"id":"c1",...,"delta":{"content":"TEXT"},...}),
/// so the next event that is byte for byte the same but for that string's contents is read
/// without parsing it: it is the remembered event with another string. Sound because the
/// contents between the two remembered quotes are checked to be a plain JSON string body (no
/// quote, no backslash, no control byte, valid UTF-8): the document is then valid JSON of
/// exactly the remembered structure. Anything else (an escape, another field changed) misses,
/// and the caller parses the event as before (and may remember its shape).
///
/// Only for events whose meaning is their text alone, given the decoder's state: the caller
/// acts on a match exactly as its pass would act on the parsed event.
class Skeleton {
 public:
  /// Remembers `data` (an event the pass accepted) around `token`, the string value's raw JSON
  /// token (simdjson's raw_json_token(): it points into `parsed`, the padded copy of `data`
  /// that was parsed, and starts at the opening quote). Forgets instead when the string has
  /// escapes: then its raw bytes are not its text.
  void remember(std::string_view data, std::string_view parsed, std::string_view token);
  void forget() { armed_ = false; }

  /// The string's contents (its text, as it has no escapes) when `data` is the remembered event
  /// but for them; nullopt otherwise.
  std::optional<std::string_view> match(std::string_view data) const;

 private:
  std::string prefix_;  // up to and with the string's opening quote
  std::string suffix_;  // from its closing quote to the end
  bool armed_ = false;
};

}  // namespace sluice::canonical
