// Upstream answer validation with simdjson's DOM parser (validates the whole document).
#include "providers/response_check.h"

#include <simdjson.h>

#include <cstring>

namespace sluice::providers {

std::optional<std::string> check_unary_answer(Operation op, std::string_view body) {
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
  return std::nullopt;
}

}  // namespace sluice::providers
