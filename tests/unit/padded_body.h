// A copy of a request body followed by 64 readable bytes (simdjson's padding), as the server
// provides. The padding is filled with garbage so a parser that reads past the body is caught.
#pragma once

#include <cstring>
#include <memory>
#include <string_view>

namespace sluice::test {

class Padded {
 public:
  explicit Padded(std::string_view body) : size_(body.size()), data_(new char[body.size() + 64]) {
    if (!body.empty()) std::memcpy(data_.get(), body.data(), body.size());
    std::memset(data_.get() + body.size(), '}', 64);
  }
  std::string_view view() const { return {data_.get(), size_}; }

 private:
  size_t size_;
  std::unique_ptr<char[]> data_;
};

}  // namespace sluice::test
