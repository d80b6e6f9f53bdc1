// libFuzzer target for the semantic cache's pure parts (cache/semantic.h): any input is read as
// a body of each API (the single-turn question) and, split at its first NUL byte, as two texts
// for the lexical guards. Checks: no crash; a question's rest is a canonical form (a fixed
// point) and the same body gives the same question; the guards never refuse a text against
// itself and answer the same both ways round.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cache/key.h"
#include "cache/semantic.h"

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::cache;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  for (Api api : {Api::chat, Api::messages, Api::responses, Api::gemini}) {
    auto q = semantic_question(api, in);
    if (!q || !q->has_value()) continue;
    const Question& question = **q;
    auto again = canonical_form(api, question.rest);
    CHECK(again && *again == question.rest);
    auto twice = semantic_question(api, in);
    CHECK(twice && twice->has_value() && (*twice)->rest == question.rest &&
          (*twice)->text == question.text);
  }
  const size_t nul = in.find('\0');
  const std::string_view a = in.substr(0, nul);
  const std::string_view b = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  CHECK(guard_refuses(a, a) == nullptr);
  CHECK((guard_refuses(a, b) == nullptr) == (guard_refuses(b, a) == nullptr));
  return 0;
}
