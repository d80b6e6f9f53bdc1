// libFuzzer target for the on-demand request body readers: parse_request (every operation),
// extract_prompt and extract_embedding_inputs. Checks that a parsed model token lies inside the
// body, is a quoted JSON string, that validated fields are within their bounds, that errors carry
// one of OpenAI's codes, and that a successful parse is stable and error-free.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"
#include "providers/request.h"

namespace {

using sluice::Errc;
using sluice::providers::Operation;
using sluice::providers::ParsedRequest;

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

constexpr size_t kPadding = 64;  // simdjson::SIMDJSON_PADDING

void check_parse(Operation op, std::string_view body) {
  ParsedRequest r;
  const sluice::Result<void> res = sluice::providers::parse_request(op, body, r);
  if (!res.ok()) {
    const sluice::Error& e = res.error();
    CHECK(e.code == Errc::bad_request);
    CHECK(!e.message.empty());
    // param names a top-level field, maybe with an index path ("messages[3].role").
    CHECK(e.param.empty() || (e.param.front() >= 'a' && e.param.front() <= 'z'));
    const std::string_view code = e.code_override;
    CHECK(code.empty() || code == "missing_required_parameter" || code == "invalid_type" ||
          code == "invalid_value" || code == "empty_array" || code == "array_above_max_length" ||
          code == "string_above_max_length" || code == "integer_below_min_value" ||
          code == "integer_above_max_value" || code == "decimal_below_min_value" ||
          code == "decimal_above_max_value");
    CHECK(sluice::to_response(e).status == 400);
    return;
  }
  CHECK(r.model.size() <= sluice::providers::kMaxModelBytes);
  CHECK(r.max_tokens >= 0 && r.max_tokens <= sluice::providers::kMaxTokensLimit);
  CHECK(r.n >= 1 && r.n <= sluice::providers::kMaxChoices);
  CHECK(!r.include_usage || r.stream);
  CHECK(r.op == op);
  CHECK(r.body.data() == body.data() && r.body.size() == body.size());
  CHECK(r.model_begin <= r.model_end);
  CHECK(r.model_end <= body.size());
  const std::string_view token = body.substr(r.model_begin, r.model_end - r.model_begin);
  CHECK(token.size() >= 2);
  CHECK(token.front() == '"');
  CHECK(token.back() == '"');
  CHECK(!r.model.empty());
  // The unescaped model is never longer than its escaped token's contents.
  CHECK(r.model.size() <= token.size() - 2);

  // Parsing again gives the same answer (the thread-local parser keeps no state across calls).
  ParsedRequest again;
  CHECK(sluice::providers::parse_request(op, body, again).ok());
  CHECK(again.model == r.model && again.model_begin == r.model_begin &&
        again.model_end == r.model_end && again.stream == r.stream &&
        again.include_usage == r.include_usage && again.max_tokens == r.max_tokens &&
        again.n == r.n);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The body followed by exactly kPadding readable bytes, in its own heap block so ASan reports
  // any read past the padding. The padding is not zeroed on purpose: nothing may depend on it.
  std::unique_ptr<char[]> buf(new char[size + kPadding]);
  if (size != 0) std::memcpy(buf.get(), data, size);
  std::memset(buf.get() + size, size % 2 ? '}' : ' ', kPadding);
  const std::string_view body(buf.get(), size);

  check_parse(Operation::chat, body);
  check_parse(Operation::completions, body);
  check_parse(Operation::embeddings, body);

  (void)sluice::providers::extract_prompt(Operation::chat, body);
  (void)sluice::providers::extract_prompt(Operation::completions, body);
  (void)sluice::providers::extract_prompt(Operation::embeddings, body);

  auto inputs = sluice::providers::extract_embedding_inputs(body);
  if (inputs.ok()) {
    CHECK(!inputs->inputs.empty());
    CHECK(inputs->encoding_format == "float" || inputs->encoding_format == "base64");
  } else {
    CHECK(inputs.error().code == Errc::bad_request);
    CHECK(!inputs.error().message.empty());
  }
  return 0;
}
