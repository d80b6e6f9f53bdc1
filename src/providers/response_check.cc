// Upstream answer validation with simdjson's DOM parser (validates the whole document).
#include "providers/response_check.h"

#include <simdjson.h>

#include <cstring>

namespace sluice::providers {

namespace {

// A count as parse_usage() reads one: a non-negative integer (a decimal's integer part).
std::optional<int64_t> count(simdjson::dom::object o, const char* key) {
  simdjson::dom::element e;
  if (o[key].get(e)) return std::nullopt;
  int64_t i;
  if (!e.get_int64().get(i)) return i >= 0 ? std::optional<int64_t>(i) : std::nullopt;
  double d;
  if (!e.get_double().get(d) && d >= 0 && d < 9.2e18) return static_cast<int64_t>(d);
  return std::nullopt;
}

// OpenAI's usage object, by parse_usage()'s rules.
std::optional<UsageTokens> read_usage(simdjson::dom::object u) {
  UsageTokens t;
  auto prompt = count(u, "prompt_tokens");
  auto completion = count(u, "completion_tokens");
  if (!prompt && !completion) {
    auto total = count(u, "total_tokens");  // embeddings report only these
    if (!total) return std::nullopt;
    t.input = *total;
    return t;
  }
  t.input = prompt.value_or(0);
  t.output = completion.value_or(0);
  simdjson::dom::object details;
  if (!u["prompt_tokens_details"].get_object().get(details)) {
    if (auto cached = count(details, "cached_tokens")) t.cached = *cached;
  }
  return t;
}

}  // namespace

std::optional<std::string> check_unary_answer(Operation op, std::string_view body,
                                              std::optional<UsageTokens>* usage,
                                              bool* usage_read) {
  thread_local simdjson::dom::parser parser;
  thread_local std::string padded;
  // The body is a view into a connection buffer with no guaranteed padding: copy it.
  padded.resize(body.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(padded.data(), body.data(), body.size());
  simdjson::dom::element root;
  auto ec = parser.parse(padded.data(), body.size(), false).get(root);
  if (padded.capacity() > 4 * 1024 * 1024) {  // one huge answer must not pin memory forever
    std::string().swap(padded);
  }
  if (ec) {
    return std::string("a body that is not valid JSON (") + simdjson::error_message(ec) + ")";
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) return std::string("a JSON body that is not an object");
  const char* field = op == Operation::embeddings ? "data" : "choices";
  simdjson::dom::array arr;
  if (obj[field].get_array().get(arr)) {
    return std::string("a JSON body without a '") + field + "' array";
  }
  simdjson::dom::object u;
  if (usage != nullptr && usage_read != nullptr && !obj["usage"].get_object().get(u)) {
    *usage = read_usage(u);
    *usage_read = true;
  }
  return std::nullopt;
}

}  // namespace sluice::providers
