// Chunked transfer-coding decoder: a byte-at-a-time state machine for the framing lines and a
// bulk memmove for chunk data, compacting the payload to the front of the caller's buffer.
#include "http/parse/chunked.h"
#include "http/parse/http_head.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace sluice::http {
namespace {

inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}


// field-content / qdtext / quoted-pair octets: VCHAR, obs-text, SP and HTAB.
inline bool is_field_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x20 ? u != 0x7f : u == '\t';
}

}  // namespace

size_t ChunkedDecoder::decode(char* in, size_t in_size, size_t& payload_size) {
  size_t r = 0;  // read position
  size_t w = 0;  // write position (payload), always <= r
  auto fail = [this](const char* why) {
    state_ = State::error;
    error_ = why;
  };
  // The CR ending a size line (after the digits or an extension).
  auto size_line_cr = [this] { state_ = State::size_lf; };

  while (r < in_size && state_ != State::done && state_ != State::error) {
    if (state_ == State::data) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in_size - r));
      if (w != r) std::memmove(in + w, in + r, n);
      w += n;
      r += n;
      remaining_ -= n;
      if (remaining_ == 0) state_ = State::data_cr;
      continue;
    }
    const char c = in[r];
    // Extension bytes are counted on the whole size line after the digits.
    if (state_ >= State::ext_bws && state_ <= State::ext_after &&
        ++ext_bytes_ > kMaxExtensionBytes) {
      fail("chunk extensions too long");
      break;
    }
    if (state_ >= State::trailer && state_ <= State::trailer_line_lf &&
        ++trailer_bytes_ > kMaxTrailerBytes) {
      fail("chunk trailers too long");
      break;
    }
    switch (state_) {
      case State::size: {
        const int d = hex_value(c);
        if (d >= 0) {
          if (size_digits_ == 16) {
            fail("chunk size too long");
          } else {
            remaining_ = (remaining_ << 4) | static_cast<uint64_t>(d);
            ++size_digits_;
          }
        } else if (size_digits_ == 0) {
          fail("empty or invalid chunk size");
        } else if (c == ';') {
          state_ = State::ext_name;
        } else if (is_ws(c)) {
          state_ = State::ext_bws;  // BWS is only allowed before a ';'
        } else if (c == '\r') {
          size_line_cr();
        } else if (c == '\n') {
          fail("bare LF in chunk size line");
        } else {
          fail("invalid chunk size");
        }
        break;
      }
      case State::ext_bws:
        if (c == ';') {
          state_ = State::ext_name;
        } else if (!is_ws(c)) {
          fail("invalid chunk extension");
        }
        break;
      case State::ext_name_bws:
        if (c == '=') {
          state_ = State::ext_value;
        } else if (c == ';') {
          state_ = State::ext_name;
        } else if (!is_ws(c)) {
          fail("invalid chunk extension");
        }
        break;
      case State::ext_name:
        if (is_token_char(c)) {
          state_ = State::ext_name_rest;
        } else if (!is_ws(c)) {
          fail("invalid chunk extension");
        }
        break;
      case State::ext_name_rest:
      case State::ext_token:
        if (is_token_char(c)) {
          // still inside the name or the token value
        } else if (c == '=' && state_ == State::ext_name_rest) {
          state_ = State::ext_value;
        } else if (c == ';') {
          state_ = State::ext_name;
        } else if (c == '\r') {
          size_line_cr();
        } else if (is_ws(c)) {
          state_ = state_ == State::ext_name_rest ? State::ext_name_bws : State::ext_bws;
        } else if (c == '\n') {
          fail("bare LF in chunk size line");
        } else {
          fail("invalid chunk extension");
        }
        break;
      case State::ext_value:
        if (c == '"') {
          state_ = State::ext_quoted;
        } else if (is_token_char(c)) {
          state_ = State::ext_token;
        } else if (!is_ws(c)) {
          fail("invalid chunk extension value");
        }
        break;
      case State::ext_quoted:
        if (c == '"') {
          state_ = State::ext_after;
        } else if (c == '\\') {
          state_ = State::ext_escape;
        } else if (!is_field_char(c)) {
          fail("invalid chunk extension value");
        }
        break;
      case State::ext_escape:
        if (is_field_char(c)) {
          state_ = State::ext_quoted;
        } else {
          fail("invalid chunk extension value");
        }
        break;
      case State::ext_after:
        if (c == ';') {
          state_ = State::ext_name;
        } else if (is_ws(c)) {
          state_ = State::ext_bws;
        } else if (c == '\r') {
          size_line_cr();
        } else {
          fail(c == '\n' ? "bare LF in chunk size line" : "invalid chunk extension value");
        }
        break;
      case State::size_lf:
        if (c == '\n') {
          size_digits_ = 0;
          ext_bytes_ = 0;
          state_ = remaining_ == 0 ? State::trailer : State::data;
        } else {
          fail("bad chunk size line ending");
        }
        break;
      case State::data_cr:
        if (c == '\r') {
          state_ = State::data_lf;
        } else {
          fail("bad chunk terminator");
        }
        break;
      case State::data_lf:
        if (c == '\n') {
          state_ = State::size;
        } else {
          fail("bad chunk terminator");
        }
        break;
      case State::trailer:  // start of a trailer field line, or of the final CRLF
        if (c == '\r') {
          state_ = State::trailer_lf;
        } else if (is_token_char(c)) {
          state_ = State::trailer_name;
        } else {
          fail("invalid trailer field");
        }
        break;
      case State::trailer_lf:
        if (c == '\n') {
          state_ = State::done;
        } else {
          fail("bad trailer line ending");
        }
        break;
      case State::trailer_name:
        if (c == ':') {
          state_ = State::trailer_value;
        } else if (!is_token_char(c)) {
          fail("invalid trailer field");
        }
        break;
      case State::trailer_value:
        if (c == '\r') {
          state_ = State::trailer_line_lf;
        } else if (!is_field_char(c)) {
          fail(c == '\n' ? "bare LF in trailer" : "invalid trailer field");
        }
        break;
      case State::trailer_line_lf:
        if (c == '\n') {
          state_ = State::trailer;
        } else {
          fail("bad trailer line ending");
        }
        break;
      case State::data:
      case State::done:
      case State::error:
        break;
    }
    if (state_ == State::error) break;  // `r` stays on the offending byte
    ++r;
  }
  payload_size = w;
  return r;
}

}  // namespace sluice::http
