// libFuzzer target for the readers of the work after a session's turn (sessions/extract.h):
// any input is read as an extraction model's answer (parse_facts), a chat completion body
// (completion_text) and an embeddings body (embedding_of). Checks: no crash; every fact has a
// non-empty key of lower-case letters, digits, '_' and bytes ≥ 0x80 (at most 64 bytes), a
// non-empty text of at most 1000 bytes, a weight in [0, 1], and at most 20 facts; a vector
// has only finite numbers.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sessions/extract.h"

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto facts = sluice::sessions::parse_facts(in)) {
    CHECK(facts->size() <= 20);
    for (const auto& f : *facts) {
      CHECK(!f.key.empty() && f.key.size() <= 64);
      for (char c : f.key) {
        const unsigned char u = static_cast<unsigned char>(c);
        CHECK(u >= 0x80 || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u == '_');
      }
      CHECK(f.key.front() != '_' && f.key.back() != '_');
      CHECK(!f.text.empty() && f.text.size() <= 1000);
      CHECK(f.weight >= 0 && f.weight <= 1);
    }
  }
  (void)sluice::sessions::completion_text(in);
  if (auto vec = sluice::sessions::embedding_of(in)) {
    CHECK(!vec->empty());
    for (float x : *vec) CHECK(std::isfinite(x));
  }
  return 0;
}
