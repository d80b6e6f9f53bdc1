// Incremental decoder for HTTP/1.1 chunked transfer coding (RFC 9112 §7.1): feeds arbitrary
// slices of the wire and yields the payload bytes in place. Chunk extensions and trailers are
// parsed and dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::http {

class ChunkedDecoder {
 public:
  enum class State { size, size_ext, size_lf, data, data_cr, data_lf, trailer, trailer_lf,
                     trailer_line, trailer_line_lf, done, error };

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
  const char* error_ = nullptr;
};

}  // namespace sluice::http
