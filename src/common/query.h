// URL query strings: the name=value pairs of `a=1&b=2` and %XX / '+' decoding of a value.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

/// Calls f(name, raw value) for each `name=value` pair (pairs without '=' have an empty value).
template <class F>
void for_each_query_param(std::string_view query, F&& f) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    f(pair.substr(0, eq), eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
  }
}

/// A query value with %XX escapes and '+' decoded (an invalid escape stays as it is).
/// `plus_is_space` false: '+' stays (RFC 5987 values, which are not form-encoded).
inline std::string percent_decode(std::string_view value, bool plus_is_space = true) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '+' && plus_is_space) {
      out += ' ';
    } else if (value[i] == '%' && i + 2 < value.size() && hex(value[i + 1]) >= 0 &&
               hex(value[i + 2]) >= 0) {
      out += static_cast<char>(hex(value[i + 1]) * 16 + hex(value[i + 2]));
      i += 2;
    } else {
      out += value[i];
    }
  }
  return out;
}

}  // namespace sluice
