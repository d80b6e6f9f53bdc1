// libFuzzer target for the response cache's canonical request form (cache/key.h) and entry
// reader (cache/entry.h): any input is read as a body of each API and as a stored entry.
// Checks: no crash; the canonical form is a fixed point (its own canonical form); an entry
// that decodes encodes and decodes to the same encoding.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cache/entry.h"
#include "cache/key.h"

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::cache;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  for (Api api : {Api::chat, Api::messages, Api::responses, Api::gemini}) {
    auto once = canonical_form(api, in);
    if (!once) continue;
    auto twice = canonical_form(api, *once);
    CHECK(twice && *twice == *once);
    CHECK(key_of(Scope{"o", "r", "u", "e"}, *once).size() == 64);
  }
  if (auto e = decode_entry(in)) {
    const std::string enc = encode_entry(*e);
    auto again = decode_entry(enc);
    CHECK(again && encode_entry(*again) == enc);
  }
  return 0;
}
