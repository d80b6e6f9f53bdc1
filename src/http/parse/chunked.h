// Incremental decoder for HTTP/1.1 chunked transfer coding (RFC 9112 §7.1): feeds arbitrary
// slices of the wire and yields the payload bytes in place. Chunk extensions and trailers are
// validated, capped and dropped; every framing line must end in CRLF (a bare LF is an error:
// lenient framing is how "funky chunks" request smuggling works).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::http {

class ChunkedDecoder {
 public:
  /// Most bytes of chunk extensions on one size line (after the size digits).
  static constexpr size_t kMaxExtensionBytes = 1024;
  /// Most bytes of the whole trailer section (field lines and their CRLFs).
  static constexpr size_t kMaxTrailerBytes = 8 * 1024;

  enum class State {
    size,           // chunk-size digits
    ext_bws,        // optional whitespace before ';' (or CR once an extension ended)
    ext_name,       // after ';': optional whitespace, then the extension name
    ext_name_rest,  // inside the name
    ext_name_bws,   // whitespace after a name: '=' or ';' may follow
    ext_value,      // after '=': optional whitespace, then a token or quoted-string
    ext_token,      // inside a token value
    ext_quoted,     // inside a quoted-string value
    ext_escape,     // after a backslash in a quoted-string
    ext_after,      // after a closing quote: ';', whitespace or CR
    size_lf,        // CR seen at the end of the size line
    data, data_cr, data_lf,
    trailer,        // start of a trailer field line, or of the final CRLF
    trailer_name, trailer_value, trailer_lf, trailer_line_lf,
    done, error
  };

  /// Decodes `in` in place: payload bytes are compacted to the front of `in`'s storage and
  /// the number of payload bytes written is returned in `payload_size`. Returns the number of
  /// input bytes consumed (less than in.size() only when the message ends inside `in`; the rest
  /// belongs to the next message). After an error, state() == State::error and error() says why.
  size_t decode(char* in, size_t in_size, size_t& payload_size);

  bool done() const { return state_ == State::done; }
  bool failed() const { return state_ == State::error; }
  const char* error() const { return error_; }
  State state() const { return state_; }
  void reset() { *this = ChunkedDecoder{}; }

 private:
  State state_ = State::size;
  uint64_t remaining_ = 0;   // bytes left in the current chunk
  int size_digits_ = 0;
  size_t ext_bytes_ = 0;     // extension bytes on the current size line
  size_t trailer_bytes_ = 0;
  const char* error_ = nullptr;
};

}  // namespace sluice::http
