// Incremental, zero-copy HTTP/1.1 head parsers for requests (from clients) and responses (from
// upstreams). Pure functions over a byte buffer: no allocation, no I/O; fuzzed in tests/fuzz.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
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

/// Room for kMaxHeaders headers, left uninitialised: only the first `header_count` slots of a
/// head are ever written or read. (A head is built per client connection and per upstream
/// call; zeroing 3.2 KiB each time cost more than parsing a head, and touched memory a held
/// stream then kept.)
class HeaderSlots {
 public:
  HeaderSlots() noexcept {}  // NOLINT: deliberately no initialisation
  HeaderSlots(const HeaderSlots& o) noexcept { *this = o; }
  HeaderSlots& operator=(const HeaderSlots& o) noexcept {
    if (this != &o) {
      std::memcpy(static_cast<void*>(slots_), static_cast<const void*>(o.slots_), sizeof slots_);
    }
    return *this;
  }
  ~HeaderSlots() {}
  Header& operator[](size_t i) noexcept { return slots_[i]; }
  const Header& operator[](size_t i) const noexcept { return slots_[i]; }
  Header* data() noexcept { return slots_; }
  const Header* data() const noexcept { return slots_; }
  static constexpr size_t size() noexcept { return kMaxHeaders; }

 private:
  union {
    Header slots_[kMaxHeaders];
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
