// Incremental, zero-copy HTTP/1.1 head parsers for requests (from clients) and responses (from
// upstreams). Pure functions over a byte buffer: no allocation, no I/O; fuzzed in tests/fuzz.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

namespace sluice::http {

namespace detail {
constexpr std::array<bool, 256> make_token_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
inline constexpr std::array<bool, 256> kTokenChar = make_token_table();
}  // namespace detail

/// RFC 9110 `tchar` (header names, methods, chunk-extension names).
inline bool is_token_char(char c) { return detail::kTokenChar[static_cast<unsigned char>(c)]; }
/// Optional whitespace: SP or HTAB.
inline bool is_ws(char c) { return c == ' ' || c == '\t'; }

struct Header {
  std::string_view name;   // as sent (case preserved)
  std::string_view value;  // leading/trailing spaces and tabs trimmed
};

inline constexpr size_t kMaxHeaders = 100;

/// Room for the headers of one head: kInline slots in place, left uninitialised (only the
/// first `header_count` are ever written or read), and all kMaxHeaders on the heap for the rare
/// head with more. A head is built per client connection and per upstream call, and a held
/// stream keeps both: zeroing 3.2 KiB each time cost more than parsing a head, and 100 slots in
/// place were 2.2 KiB of every connection and every upstream call that a typical head (10-30
/// fields) never uses.
class HeaderSlots {
 public:
  static constexpr size_t kInline = 32;

  HeaderSlots() noexcept {}  // NOLINT: deliberately no initialisation
  HeaderSlots(const HeaderSlots& o) { *this = o; }
  HeaderSlots(HeaderSlots&& o) noexcept : heap_(std::move(o.heap_)) {
    std::memcpy(static_cast<void*>(inline_), static_cast<const void*>(o.inline_), sizeof inline_);
  }
  HeaderSlots& operator=(const HeaderSlots& o) {
    if (this == &o) return *this;
    if (o.heap_) {
      if (!heap_) heap_ = std::make_unique<Header[]>(kMaxHeaders);
      std::copy(o.heap_.get(), o.heap_.get() + kMaxHeaders, heap_.get());
    } else {
      heap_.reset();
      std::memcpy(static_cast<void*>(inline_), static_cast<const void*>(o.inline_), sizeof inline_);
    }
    return *this;
  }
  HeaderSlots& operator=(HeaderSlots&& o) noexcept {
    if (this == &o) return *this;
    heap_ = std::move(o.heap_);
    std::memcpy(static_cast<void*>(inline_), static_cast<const void*>(o.inline_), sizeof inline_);
    return *this;
  }
  ~HeaderSlots() {}
  Header& operator[](size_t i) noexcept { return data()[i]; }
  const Header& operator[](size_t i) const noexcept { return data()[i]; }
  Header* data() noexcept { return heap_ ? heap_.get() : inline_; }
  const Header* data() const noexcept { return heap_ ? heap_.get() : inline_; }
  /// Slots available now: kInline, or kMaxHeaders once grown.
  size_t capacity() const noexcept { return heap_ ? kMaxHeaders : kInline; }
  /// Moves to kMaxHeaders heap slots, keeping the first kInline; returns the new slots. (A
  /// connection keeps them for its later requests: one that sent many fields will again.)
  Header* grow() {
    if (!heap_) {
      heap_ = std::make_unique<Header[]>(kMaxHeaders);
      std::memcpy(static_cast<void*>(heap_.get()), static_cast<const void*>(inline_), sizeof inline_);
    }
    return heap_.get();
  }

 private:
  std::unique_ptr<Header[]> heap_;
  union {
    Header inline_[kInline];
  };
};

/// ASCII case-insensitive equality (header names, tokens).
bool iequals(std::string_view a, std::string_view b);

/// Does a comma-separated header value contain `token` (case-insensitive), e.g.
/// Connection: keep-alive, Upgrade → has_token(v, "upgrade") is true.
bool has_token(std::string_view value, std::string_view token);

enum class ParseStatus {
  complete,    // head parsed; `head_size` bytes consumed
  incomplete,  // need more bytes (the caller enforces its own size limit)
  error,       // malformed; `error` says why
};

/// How the message body is framed, derived from the headers.
enum class BodyFraming { none, content_length, chunked, until_close };

struct RequestHead {
  std::string_view method;
  std::string_view target;   // as sent, e.g. "/v1/models?x=1"
  std::string_view path;     // target up to '?'
  std::string_view query;    // after '?', without it
  int version_minor = 1;     // HTTP/1.<minor>
  HeaderSlots headers;       // [0, header_count) are set
  size_t header_count = 0;
  size_t head_size = 0;      // bytes of request line + headers + CRLF CRLF
  BodyFraming framing = BodyFraming::none;
  uint64_t content_length = 0;
  bool keep_alive = true;        // HTTP/1.1 default, Connection: close / HTTP/1.0 rules applied
  bool expect_continue = false;  // Expect: 100-continue
  const char* error = nullptr;   // static string when status == error
  int error_status = 400;        // 400, 431 (too many headers), 501 (unsupported framing)

  /// First header named `name` (case-insensitive), or empty.
  std::string_view header(std::string_view name) const;
};

/// Parses a request head at the start of `data`. Strict on everything a request smuggler could
/// use: bare LF line endings, conflicting Content-Length, Content-Length with Transfer-Encoding,
/// obs-fold, spaces before the colon, non-token method, control characters, a missing (HTTP/1.1)
/// or repeated Host.
ParseStatus parse_request_head(std::string_view data, RequestHead& out);

/// The buffer a head was parsed from moved: its first `kept` bytes are now at `to` (they were at
/// `from`). Views into those bytes follow them; views into anything else become empty, so a
/// head is never left pointing at freed memory (an error rendered mid-body reads its path).
void rebase_request_head(RequestHead& head, const char* from, size_t kept, const char* to);

struct ResponseHead {
  int status = 0;
  int version_minor = 1;
  std::string_view reason;
  HeaderSlots headers;       // [0, header_count) are set
  size_t header_count = 0;
  size_t head_size = 0;
  BodyFraming framing = BodyFraming::until_close;
  uint64_t content_length = 0;
  bool keep_alive = true;
  const char* error = nullptr;

  std::string_view header(std::string_view name) const;
};

/// Parses a response head (bare LF line endings tolerated). `request_was_head` forces BodyFraming::none (as do 1xx/204/304).
ParseStatus parse_response_head(std::string_view data, ResponseHead& out,
                                bool request_was_head = false);

}  // namespace sluice::http
