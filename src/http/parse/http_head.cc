// HTTP/1.x request and response head parsers: one pass over the lines (memchr for LF), each line
// validated as it is split, views into the caller's buffer, no allocation, no exceptions.
#include "http/parse/http_head.h"

#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sluice::http {
namespace {

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// field-content octets (RFC 9110 §5.5): VCHAR, obs-text, SP and HTAB; no other controls or DEL.
inline bool is_field_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x20 ? u != 0x7f : u == '\t';
}

// The first octet of [p, end) that is not field-content (a control other than HTAB, or DEL),
// or `end`. Sixteen octets at a time where SSE2 is there (every x86-64): a header value is
// most of a head's bytes, and one octet per step cost a few instructions each.
inline const char* find_non_field_char(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i k1f = _mm_set1_epi8(0x1f);
  const __m128i ktab = _mm_set1_epi8('\t');
  const __m128i kdel = _mm_set1_epi8(0x7f);
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i bad = _mm_cmpeq_epi8(_mm_max_epu8(v, k1f), k1f);  // v <= 0x1f (unsigned)
    bad = _mm_andnot_si128(_mm_cmpeq_epi8(v, ktab), bad);      // HTAB is allowed
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, kdel));
    if (const int mask = _mm_movemask_epi8(bad); mask != 0) return p + __builtin_ctz(mask);
    p += 16;
  }
#endif
  while (p < end && is_field_char(*p)) ++p;
  return p;
}

// request-target octets: visible, no whitespace, no controls (obs-text tolerated).
inline bool is_target_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u != 0x7f;
}

std::string_view trim(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && is_ws(s[b])) ++b;
  while (e > b && is_ws(s[e - 1])) --e;
  return std::string_view(s.data() + b, e - b);
}

bool all_token_chars(std::string_view s) {
  for (char c : s) {
    if (!is_token_char(c)) return false;
  }
  return true;
}

// Splits the next line off [p, end). Returns false if its LF has not arrived. `line` excludes
// the CR LF (or bare LF); `next` points just past the LF; `bare_lf` tells which it was.
inline bool next_line(const char* p, const char* end, std::string_view& line, const char*& next,
                      bool& bare_lf) {
  if (p >= end) return false;
  const void* lf = std::memchr(p, '\n', static_cast<size_t>(end - p));
  if (lf == nullptr) return false;
  const char* e = static_cast<const char*>(lf);
  next = e + 1;
  bare_lf = !(e > p && e[-1] == '\r');
  if (!bare_lf) --e;
  line = std::string_view(p, static_cast<size_t>(e - p));
  return true;
}

// Calls `fn(element)` for each trimmed, non-empty element of a comma-separated list; stops
// early (returning false) when `fn` does.
template <typename Fn>
bool for_each_element(std::string_view list, Fn&& fn) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view elem =
        trim(comma == std::string_view::npos ? list : std::string_view(list.data(), comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (!elem.empty() && !fn(elem)) return false;
  }
  return true;
}

// What the framing-relevant header fields said, accumulated while the lines are parsed.
struct FieldInfo {
  HeaderSlots* slots = nullptr;
  Header* headers = nullptr;  // slots->data()
  size_t capacity = 0;        // slots->capacity()
  size_t count = 0;
  uint64_t content_length = 0;
  bool has_content_length = false;
  bool has_transfer_encoding = false;
  size_t te_codings = 0;  // non-empty transfer-coding elements across all TE fields
  bool chunked_seen = false;
  bool chunked_last = false;  // the final coding seen so far is `chunked`
  bool other_coding = false;  // any coding other than `chunked`
  bool connection_close = false;
  bool connection_keep_alive = false;
  bool expect_continue = false;
  bool strict_lf = false;  // requests: a bare LF line ending is an error
  size_t host_count = 0;
  const char* error = nullptr;
  int error_status = 400;
};

ParseStatus fail(FieldInfo& info, const char* why, int status = 400) {
  info.error = why;
  info.error_status = status;
  return ParseStatus::error;
}

ParseStatus parse_content_length(std::string_view value, FieldInfo& info) {
  if (value.empty()) return fail(info, "invalid Content-Length");
  uint64_t v = 0;
  for (char c : value) {
    if (!is_digit(c)) return fail(info, "invalid Content-Length");
    const auto d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) {
      return fail(info, "Content-Length overflow");
    }
    v = v * 10 + d;
  }
  if (info.has_content_length && v != info.content_length) {
    return fail(info, "conflicting Content-Length");
  }
  info.has_content_length = true;
  info.content_length = v;
  return ParseStatus::complete;
}

ParseStatus parse_transfer_encoding(std::string_view value, FieldInfo& info) {
  info.has_transfer_encoding = true;
  const char* why = nullptr;
  for_each_element(value, [&](std::string_view elem) {
    const size_t semi = elem.find(';');  // transfer parameters are accepted and ignored
    const std::string_view coding =
        semi == std::string_view::npos ? elem : trim(std::string_view(elem.data(), semi));
    if (coding.empty() || !all_token_chars(coding)) {
      why = "invalid Transfer-Encoding";
      return false;
    }
    ++info.te_codings;
    if (iequals(coding, "chunked")) {
      if (info.chunked_seen) {
        why = "chunked applied more than once";
        return false;
      }
      info.chunked_seen = true;
      info.chunked_last = true;
    } else {
      info.chunked_last = false;
      info.other_coding = true;
    }
    return true;
  });
  return why != nullptr ? fail(info, why) : ParseStatus::complete;
}

ParseStatus on_field(std::string_view name, std::string_view value, FieldInfo& info) {
  switch (to_lower(name[0])) {
    case 'c':
      if (iequals(name, "content-length")) return parse_content_length(value, info);
      if (iequals(name, "connection")) {
        if (has_token(value, "close")) info.connection_close = true;
        if (has_token(value, "keep-alive")) info.connection_keep_alive = true;
      }
      break;
    case 't':
      if (iequals(name, "transfer-encoding")) return parse_transfer_encoding(value, info);
      break;
    case 'e':
      if (iequals(name, "expect") && iequals(value, "100-continue")) info.expect_continue = true;
      break;
    case 'h':
      if (iequals(name, "host")) ++info.host_count;
      break;
    default:
      break;
  }
  return ParseStatus::complete;
}

// Parses header lines from `p` through the terminating blank line; `head_end` is set past it.
ParseStatus parse_fields(const char* p, const char* end, FieldInfo& info, const char*& head_end) {
  for (;;) {
    std::string_view line;
    const char* next = nullptr;
    bool bare_lf = false;
    if (!next_line(p, end, line, next, bare_lf)) return ParseStatus::incomplete;
    if (bare_lf && info.strict_lf) return fail(info, "bare LF in request head");
    p = next;
    if (line.empty()) {
      head_end = p;
      return ParseStatus::complete;
    }
    if (is_ws(line[0])) return fail(info, "obsolete line folding in header");
    size_t i = 0;
    while (i < line.size() && is_token_char(line[i])) ++i;
    if (i == line.size()) return fail(info, "header line without colon");
    if (line[i] != ':') {
      return fail(info, is_ws(line[i]) ? "whitespace before header colon"
                                       : "invalid character in header name");
    }
    if (i == 0) return fail(info, "empty header name");
    if (find_non_field_char(line.data() + i + 1, line.data() + line.size()) !=
        line.data() + line.size()) {
      return fail(info, "control character in header value");
    }
    if (info.count == info.capacity) {
      if (info.capacity >= kMaxHeaders) return fail(info, "too many headers", 431);
      info.headers = info.slots->grow();
      info.capacity = info.slots->capacity();
    }
    Header& h = info.headers[info.count++];
    h.name = std::string_view(line.data(), i);
    h.value = trim(std::string_view(line.data() + i + 1, line.size() - i - 1));
    if (const ParseStatus s = on_field(h.name, h.value, info); s != ParseStatus::complete) {
      return s;
    }
  }
}

// Parses "HTTP/1.<d>" at the start of `s`: 1 = ok (minor set), 0 = well-formed but not 1.0/1.1,
// -1 = not a version at all.
int parse_version(std::string_view s, int& minor) {
  if (s.size() < 8 || std::memcmp(s.data(), "HTTP/", 5) != 0 || !is_digit(s[5]) || s[6] != '.' ||
      !is_digit(s[7])) {
    return -1;
  }
  if (s[5] != '1' || (s[7] != '0' && s[7] != '1')) return 0;
  minor = s[7] - '0';
  return 1;
}

std::string_view header_lookup(const Header* headers, size_t count, std::string_view name) {
  for (size_t i = 0; i < count; ++i) {
    if (iequals(headers[i].name, name)) return headers[i].value;
  }
  return {};
}

// Splits an absolute-form target ("http://host/p?q") into path and query. Returns false if it
// is not http(s) or has no authority.
bool split_absolute_form(std::string_view target, std::string_view& path, std::string_view& query) {
  size_t start = 0;
  if (target.size() >= 7 && iequals(target.substr(0, 7), "http://")) {
    start = 7;
  } else if (target.size() >= 8 && iequals(target.substr(0, 8), "https://")) {
    start = 8;
  } else {
    return false;
  }
  size_t slash = start;
  while (slash < target.size() && target[slash] != '/' && target[slash] != '?') ++slash;
  if (slash == start) return false;  // empty authority
  const size_t q = target.find('?', slash);
  const size_t path_end = q == std::string_view::npos ? target.size() : q;
  path = target.substr(slash, path_end - slash);
  if (path.empty()) path = "/";  // static storage: "http://h" and "http://h?x" mean "/"
  query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  return true;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

bool has_token(std::string_view value, std::string_view token) {
  bool found = false;
  for_each_element(value, [&](std::string_view elem) {
    found = iequals(elem, token);
    return !found;
  });
  return found;
}

std::string_view RequestHead::header(std::string_view name) const {
  return header_lookup(headers.data(), header_count, name);
}

std::string_view ResponseHead::header(std::string_view name) const {
  return header_lookup(headers.data(), header_count, name);
}

void rebase_request_head(RequestHead& head, const char* from, size_t kept, const char* to) {
  const auto addr = [](const char* p) { return reinterpret_cast<uintptr_t>(p); };
  auto move = [&](std::string_view& v) {
    if (v.empty()) return;
    // Compared as addresses: the views may point anywhere (or nowhere) relative to `from`.
    const uintptr_t begin = addr(v.data());
    if (begin >= addr(from) && begin + v.size() <= addr(from) + kept) {
      v = std::string_view(to + (begin - addr(from)), v.size());
    } else {
      v = {};
    }
  };
  move(head.method);
  move(head.target);
  move(head.path);
  move(head.query);
  for (size_t i = 0; i < head.header_count; ++i) {
    move(head.headers[i].name);
    move(head.headers[i].value);
  }
}

ParseStatus parse_request_head(std::string_view data, RequestHead& out) {
  out.method = out.target = out.path = out.query = {};
  out.version_minor = 1;
  out.header_count = 0;
  out.head_size = 0;
  out.framing = BodyFraming::none;
  out.content_length = 0;
  out.keep_alive = true;
  out.expect_continue = false;
  out.error = nullptr;
  out.error_status = 400;
  auto bad = [&out](const char* why, int status = 400) {
    out.error = why;
    out.error_status = status;
    return ParseStatus::error;
  };

  const char* p = data.data();
  const char* const end = p + data.size();
  // RFC 9112 §2.2: ignore empty lines before the request-line (stray CRLF after a body).
  while (p < end && (*p == '\r' || *p == '\n')) {
    if (*p == '\n') return bad("bare LF in request head");
    if (p + 1 == end) return ParseStatus::incomplete;
    if (p[1] != '\n') return bad("malformed request line");
    p += 2;
  }
  std::string_view line;
  const char* next = nullptr;
  bool bare_lf = false;
  if (!next_line(p, end, line, next, bare_lf)) return ParseStatus::incomplete;
  if (bare_lf) return bad("bare LF in request head");

  size_t i = 0;
  while (i < line.size() && is_token_char(line[i])) ++i;
  if (i == 0 || i == line.size() || line[i] != ' ') return bad("invalid method");
  out.method = line.substr(0, i);
  const size_t target_begin = i + 1;
  const size_t sp = line.find(' ', target_begin);
  if (sp == std::string_view::npos) return bad("malformed request line");
  if (sp == target_begin) return bad("empty request target");
  out.target = line.substr(target_begin, sp - target_begin);
  for (char c : out.target) {
    if (!is_target_char(c)) return bad("invalid character in request target");
  }
  const std::string_view version = line.substr(sp + 1);
  const int v = parse_version(version, out.version_minor);
  if (v < 0 || version.size() != 8) return bad("malformed HTTP version");
  if (v == 0) return bad("HTTP version not supported", 505);

  if (out.target[0] == '/') {
    const size_t q = out.target.find('?');
    out.path = out.target.substr(0, q);
    out.query = q == std::string_view::npos ? std::string_view() : out.target.substr(q + 1);
  } else if (out.target == "*") {
    if (out.method != "OPTIONS") return bad("asterisk target is only valid for OPTIONS");
    out.path = out.target;
  } else if (!split_absolute_form(out.target, out.path, out.query)) {
    return bad("invalid request target");
  }

  FieldInfo info;
  info.slots = &out.headers;
  info.headers = out.headers.data();
  info.capacity = out.headers.capacity();
  info.strict_lf = true;
  const char* head_end = nullptr;
  const ParseStatus s = parse_fields(next, end, info, head_end);
  out.header_count = info.count;
  if (s == ParseStatus::error) return bad(info.error, info.error_status);
  if (s == ParseStatus::incomplete) return s;

  if (info.has_transfer_encoding) {
    if (info.has_content_length) return bad("both Transfer-Encoding and Content-Length");
    if (info.te_codings == 0) return bad("invalid Transfer-Encoding");
    if (info.chunked_seen && !info.chunked_last) {
      return bad("chunked is not the final transfer coding");
    }
    if (info.other_coding) return bad("unsupported transfer coding", 501);
    out.framing = BodyFraming::chunked;
  } else if (info.has_content_length) {
    out.framing = BodyFraming::content_length;
    out.content_length = info.content_length;
  }
  if (out.version_minor == 0) {
    // Transfer-Encoding in an HTTP/1.0 message is suspect (RFC 9112 §6.1): never reuse.
    out.keep_alive =
        info.connection_keep_alive && !info.connection_close && !info.has_transfer_encoding;
  } else {
    out.keep_alive = !info.connection_close;
    out.expect_continue = info.expect_continue;  // ignored for HTTP/1.0 (RFC 9110 §10.1.1)
  }
  // RFC 9112 §3.2: exactly one Host in HTTP/1.1 (HTTP/1.0 clients may omit it, never repeat it).
  if (info.host_count > 1) return bad("more than one Host header");
  if (info.host_count == 0 && out.version_minor == 1) return bad("missing Host header");
  out.head_size = static_cast<size_t>(head_end - data.data());
  return ParseStatus::complete;
}

ParseStatus parse_response_head(std::string_view data, ResponseHead& out, bool request_was_head) {
  out.status = 0;
  out.version_minor = 1;
  out.reason = {};
  out.header_count = 0;
  out.head_size = 0;
  out.framing = BodyFraming::until_close;
  out.content_length = 0;
  out.keep_alive = true;
  out.error = nullptr;
  auto bad = [&out](const char* why) {
    out.error = why;
    return ParseStatus::error;
  };

  const char* const begin = data.data();
  const char* const end = begin + data.size();
  std::string_view line;
  const char* next = nullptr;
  bool bare_lf = false;  // responses from upstreams: a bare LF line ending is tolerated
  if (!next_line(begin, end, line, next, bare_lf)) return ParseStatus::incomplete;

  const int v = parse_version(line, out.version_minor);
  if (v < 0) return bad("malformed status line");
  if (v == 0) return bad("unsupported HTTP version");
  if (line.size() < 12 || line[8] != ' ' || line[9] < '1' || line[9] > '9' || !is_digit(line[10]) ||
      !is_digit(line[11])) {
    return bad("malformed status line");
  }
  out.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (line.size() > 12) {
    if (line[12] != ' ') return bad("malformed status line");
    out.reason = line.substr(13);
    for (char c : out.reason) {
      if (!is_field_char(c)) return bad("control character in reason phrase");
    }
  }

  FieldInfo info;
  info.slots = &out.headers;
  info.headers = out.headers.data();
  info.capacity = out.headers.capacity();
  const char* head_end = nullptr;
  const ParseStatus s = parse_fields(next, end, info, head_end);
  out.header_count = info.count;
  if (s == ParseStatus::error) return bad(info.error);
  if (s == ParseStatus::incomplete) return s;

  if (info.has_transfer_encoding) {
    if (info.has_content_length) return bad("both Transfer-Encoding and Content-Length");
    if (info.te_codings == 0) return bad("invalid Transfer-Encoding");
  }
  if (request_was_head || out.status < 200 || out.status == 204 || out.status == 304) {
    out.framing = BodyFraming::none;
  } else if (info.has_transfer_encoding) {
    // RFC 9112 §6.3: a response whose final coding is not chunked is read until close.
    out.framing = info.chunked_last ? BodyFraming::chunked : BodyFraming::until_close;
  } else if (info.has_content_length) {
    out.framing = BodyFraming::content_length;
    out.content_length = info.content_length;
  }
  if (out.version_minor == 0) {
    out.keep_alive = info.connection_keep_alive && !info.connection_close;
  } else {
    out.keep_alive = !info.connection_close;
  }
  if (out.framing == BodyFraming::until_close) out.keep_alive = false;
  out.head_size = static_cast<size_t>(head_end - begin);
  return ParseStatus::complete;
}

}  // namespace sluice::http
