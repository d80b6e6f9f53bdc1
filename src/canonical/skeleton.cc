#include "canonical/skeleton.h"

#include <simdjson.h>

namespace sluice::canonical {

void Skeleton::remember(std::string_view data, std::string_view parsed, std::string_view token) {
  forget();
  if (token.data() < parsed.data()) return;
  const auto open = static_cast<size_t>(token.data() - parsed.data());
  if (open >= data.size() || data[open] != '"') return;
  const size_t close = data.find_first_of("\\\"", open + 1);
  if (close == std::string_view::npos || data[close] != '"') return;
  prefix_.assign(data.substr(0, open + 1));
  suffix_.assign(data.substr(close));
  armed_ = true;
}

std::optional<std::string_view> Skeleton::match(std::string_view data) const {
  if (!armed_ || data.size() < prefix_.size() + suffix_.size()) return std::nullopt;
  if (!data.starts_with(prefix_) || !data.ends_with(suffix_)) return std::nullopt;
  const std::string_view text =
      data.substr(prefix_.size(), data.size() - prefix_.size() - suffix_.size());
  bool ascii = true;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\' || c < 0x20) return std::nullopt;
    ascii = ascii && c < 0x80;
  }
  if (!ascii && !simdjson::validate_utf8(text.data(), text.size())) return std::nullopt;
  return text;
}

}  // namespace sluice::canonical
