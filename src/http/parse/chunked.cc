// Chunked transfer-coding decoder: a byte-at-a-time state machine for the framing lines and a
// bulk memmove for chunk data, compacting the payload to the front of the caller's buffer.
#include "http/parse/chunked.h"

#include <algorithm>
#include <cstring>

namespace sluice::http {
namespace {

inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Octets allowed in a chunk extension: anything but controls other than HTAB (CR/LF end it).
inline bool is_ext_char(char c) {
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
  // A size line has ended: a zero size starts the trailer section, anything else chunk data.
  auto end_size_line = [this] {
    size_digits_ = 0;
    state_ = remaining_ == 0 ? State::trailer : State::data;
  };

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
          state_ = State::size_ext;
        } else if (c == '\r') {
          state_ = State::size_lf;
        } else if (c == '\n') {
          end_size_line();
        } else {
          fail("invalid chunk size");
        }
        break;
      }
      case State::size_ext:
        if (c == '\r') {
          state_ = State::size_lf;
        } else if (c == '\n') {
          end_size_line();
        } else if (!is_ext_char(c)) {
          fail("invalid chunk extension");
        }
        break;
      case State::size_lf:
        if (c == '\n') {
          end_size_line();
        } else {
          fail("bad chunk size line ending");
        }
        break;
      case State::data_cr:
        if (c == '\r') {
          state_ = State::data_lf;
        } else if (c == '\n') {
          state_ = State::size;
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
      case State::trailer:  // start of a trailer line, or of the final blank line
        if (c == '\r') {
          state_ = State::trailer_lf;
        } else if (c == '\n') {
          state_ = State::done;
        } else {
          state_ = State::trailer_line;
        }
        break;
      case State::trailer_lf:
        if (c == '\n') {
          state_ = State::done;
        } else {
          fail("bad trailer line ending");
        }
        break;
      case State::trailer_line:
        if (c == '\r') {
          state_ = State::trailer_line_lf;
        } else if (c == '\n') {
          state_ = State::trailer;
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
