// libFuzzer target for the HTTP head parsers and ChunkedDecoder: checks bounds invariants, that
// a parsed head does not depend on bytes after it, and that chunked decoding is split-invariant.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "http/parse/chunked.h"
#include "http/parse/http_head.h"

namespace {

using sluice::http::BodyFraming;
using sluice::http::ChunkedDecoder;
using sluice::http::Header;
using sluice::http::kMaxHeaders;
using sluice::http::ParseStatus;
using sluice::http::RequestHead;
using sluice::http::ResponseHead;

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

// `v` lies inside [b, b + n) (an empty view may point anywhere).
bool inside(std::string_view v, const char* b, size_t n) {
  return v.empty() || (v.data() >= b && v.data() + v.size() <= b + n);
}

bool is_ws(char c) { return c == ' ' || c == '\t'; }

void check_headers(const Header* headers, size_t count, const char* b, size_t n) {
  CHECK(count <= kMaxHeaders);
  for (size_t i = 0; i < count; ++i) {
    const Header& h = headers[i];
    CHECK(!h.name.empty());
    CHECK(inside(h.name, b, n));
    CHECK(inside(h.value, b, n));
    CHECK(h.name.find_first_of(": \t\r\n") == std::string_view::npos);
    CHECK(h.value.find_first_of("\r\n") == std::string_view::npos);
    if (!h.value.empty()) CHECK(!is_ws(h.value.front()) && !is_ws(h.value.back()));
  }
}

// Copies a prefix into an exact-size heap block so ASan sees any over-read.
std::unique_ptr<char[]> copy_prefix(const uint8_t* data, size_t n) {
  std::unique_ptr<char[]> p(new char[n == 0 ? 1 : n]);
  if (n != 0) memcpy(p.get(), data, n);
  return p;
}

void check_request(const uint8_t* data, size_t size) {
  const char* b = reinterpret_cast<const char*>(data);
  auto h = std::make_unique<RequestHead>();
  const ParseStatus st = sluice::http::parse_request_head(std::string_view(b, size), *h);
  if (st == ParseStatus::error) {
    CHECK(h->error != nullptr);
    CHECK(h->error_status == 400 || h->error_status == 431 || h->error_status == 501 ||
          h->error_status == 505);
    return;
  }
  if (st == ParseStatus::incomplete) return;
  const size_t n = h->head_size;
  CHECK(n > 0 && n <= size);
  CHECK(b[n - 1] == '\n');
  CHECK(h->error == nullptr);
  CHECK(!h->method.empty() && inside(h->method, b, n));
  CHECK(!h->target.empty() && inside(h->target, b, n));
  CHECK(inside(h->path, b, n) || h->path == "/");
  CHECK(inside(h->query, b, n));
  CHECK(h->version_minor == 0 || h->version_minor == 1);
  check_headers(h->headers.data(), h->header_count, b, n);
  if (h->framing != BodyFraming::content_length) CHECK(h->content_length == 0);

  // The result depends only on the head's own bytes.
  auto exact = copy_prefix(data, n);
  auto h2 = std::make_unique<RequestHead>();
  CHECK(sluice::http::parse_request_head(std::string_view(exact.get(), n), *h2) ==
        ParseStatus::complete);
  CHECK(h2->head_size == n && h2->header_count == h->header_count && h2->framing == h->framing &&
        h2->content_length == h->content_length && h2->keep_alive == h->keep_alive &&
        h2->expect_continue == h->expect_continue && h2->method == h->method &&
        h2->target == h->target && h2->path == h->path && h2->query == h->query);
  auto shorter = copy_prefix(data, n - 1);
  CHECK(sluice::http::parse_request_head(std::string_view(shorter.get(), n - 1), *h2) ==
        ParseStatus::incomplete);
}

// Decodes `body` whole and split at `cut`; both must agree byte for byte.
void check_chunked(const char* body, size_t size, size_t cut) {
  std::string whole(body, size);
  ChunkedDecoder d1;
  size_t payload1 = 0;
  const size_t used1 = d1.decode(whole.data(), whole.size(), payload1);
  CHECK(used1 <= size && payload1 <= used1);
  CHECK(!d1.done() || used1 > 0);
  CHECK(d1.done() || d1.failed() || used1 == size);
  CHECK(d1.failed() == (d1.error() != nullptr));

  cut = size == 0 ? 0 : cut % (size + 1);
  std::string first(body, cut);
  std::string second(body + cut, size - cut);
  ChunkedDecoder d2;
  size_t pa = 0;
  size_t pb = 0;
  const size_t ua = d2.decode(first.data(), first.size(), pa);
  CHECK(ua <= cut && pa <= ua);
  size_t ub = 0;
  if (!d2.done() && !d2.failed()) {
    CHECK(ua == cut);
    ub = d2.decode(second.data(), second.size(), pb);
    CHECK(ub <= second.size() && pb <= ub);
  }
  CHECK(ua + ub == used1);
  CHECK(pa + pb == payload1);
  CHECK(memcmp(whole.data(), first.data(), pa) == 0);
  CHECK(memcmp(whole.data() + pa, second.data(), pb) == 0);
  CHECK(d1.state() == d2.state());
}

void check_response(const uint8_t* data, size_t size, bool head) {
  const char* b = reinterpret_cast<const char*>(data);
  auto h = std::make_unique<ResponseHead>();
  const ParseStatus st = sluice::http::parse_response_head(std::string_view(b, size), *h, head);
  if (st == ParseStatus::error) {
    CHECK(h->error != nullptr);
    return;
  }
  if (st == ParseStatus::incomplete) return;
  const size_t n = h->head_size;
  CHECK(n > 0 && n <= size);
  CHECK(b[n - 1] == '\n');
  CHECK(h->status >= 100 && h->status <= 999);
  CHECK(inside(h->reason, b, n));
  check_headers(h->headers.data(), h->header_count, b, n);
  if (head) CHECK(h->framing == BodyFraming::none);
  if (h->framing == BodyFraming::until_close) CHECK(!h->keep_alive);

  auto exact = copy_prefix(data, n);
  auto h2 = std::make_unique<ResponseHead>();
  CHECK(sluice::http::parse_response_head(std::string_view(exact.get(), n), *h2, head) ==
        ParseStatus::complete);
  CHECK(h2->head_size == n && h2->status == h->status && h2->framing == h->framing &&
        h2->keep_alive == h->keep_alive && h2->header_count == h->header_count);
  auto shorter = copy_prefix(data, n - 1);
  CHECK(sluice::http::parse_response_head(std::string_view(shorter.get(), n - 1), *h2, head) ==
        ParseStatus::incomplete);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* b = reinterpret_cast<const char*>(data);
  // The split point for the chunked decoder comes from the last byte(s) of the input.
  const size_t cut = size >= 2 ? data[size - 1] * 131u + data[size - 2] : 0;

  check_request(data, size);
  check_response(data, size, size > 0 && (data[size - 1] & 1));

  auto req = std::make_unique<RequestHead>();
  if (sluice::http::parse_request_head(std::string_view(b, size), *req) == ParseStatus::complete &&
      req->framing == BodyFraming::chunked) {
    check_chunked(b + req->head_size, size - req->head_size, cut);
  }
  auto resp = std::make_unique<ResponseHead>();
  if (sluice::http::parse_response_head(std::string_view(b, size), *resp) ==
          ParseStatus::complete &&
      resp->framing == BodyFraming::chunked) {
    check_chunked(b + resp->head_size, size - resp->head_size, cut);
  }
  // Also the bare decoder, so the fuzzer reaches its states without first building a head.
  check_chunked(b, size, cut);
  return 0;
}
