// libFuzzer target for the multipart/form-data reader (http/parse/multipart.h): the input's first
// line is a Content-Type, the rest a body. Checks: no crash, every part's data lies inside the
// body, a part always has a name, never more parts than allowed.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http/parse/multipart.h"

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  const std::string_view type = in.substr(0, nl);
  const std::string_view body = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  auto boundary = sluice::http::form_boundary(type);
  if (boundary) CHECK(!boundary->empty() && boundary->size() <= 70);
  const std::string_view b = boundary ? std::string_view(*boundary) : std::string_view("xyz");
  auto parts = sluice::http::parse_form(body, b, 4);
  if (!parts) return 0;
  CHECK(parts->size() <= 4);
  for (const auto& p : *parts) {
    CHECK(!p.name.empty());
    CHECK(p.data.data() >= body.data() && p.data.data() + p.data.size() <= body.data() + body.size());
  }
  return 0;
}
