// The codecs between the canonical model and each wire protocol. Per protocol P:
//   frontends/P  — the client side: decode a request, encode a unary answer, a stream, errors.
//   providers/P  — the upstream side: encode a request, decode a unary answer, a stream, errors.
// Every function is pure (no I/O, no clocks except where a field needs a timestamp), so the
// whole matrix (3 ingress × 3 egress) is testable in-process. The dispatch functions at the
// bottom pick the protocol; the gateway calls only those.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "canonical/canonical.h"
#include "common/error.h"

namespace sluice::canonical {

/// Turns canonical stream events into one client protocol's SSE bytes.
class StreamEncoder {
 public:
  virtual ~StreamEncoder() = default;
  /// Appends the bytes for `e` (possibly none: some events have no counterpart) to `out`.
  virtual void on_event(const Event& e, std::string& out) = 0;
  /// The stream ends without an error (after message_stop): trailer such as `data: [DONE]`.
  virtual void finish(std::string& out) = 0;
  /// The stream fails after it began: this protocol's error event (then the stream ends).
  virtual void fail(int status, std::string_view message, std::string& out) = 0;
};

/// Turns one upstream protocol's stream bytes (the HTTP body, any split) into canonical
/// events, forwarded as soon as they are complete (tool arguments are never held back).
class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;
  virtual void feed(std::string_view bytes, std::vector<Event>& out) = 0;
  /// The body ended. A stream that ended without its terminal event yields an error event
  /// (status 502, "upstream stream ended early") unless one was already emitted.
  virtual void finish(std::vector<Event>& out) = 0;
  /// Events read by the decoder's on-demand pass (the rest went the DOM way); 0 for decoders
  /// without one. For tests: the pass must be taken, and agree with the DOM path.
  virtual size_t fast_events() const { return 0; }
  /// Of those, the events that repeated the last one's shape and were read without parsing
  /// (canonical/skeleton.h).
  virtual size_t skeleton_events() const { return 0; }
};

/// What the client asked for besides the body (Gemini puts model and stream in the URL).
struct FrontendContext {
  std::string model;   // Gemini: from /v1beta/models/{model}:...; others ignore it
  bool stream = false; // Gemini: streamGenerateContent; others read `stream` from the body
  bool count = false;  // a token-count request: Anthropic's max_tokens is not required
};

/// An error body in one protocol's shape.
struct ErrorBody {
  int status = 500;
  std::string body;  // JSON
};

/// Maps an upstream error answer to the gateway's Error (code upstream_status with the
/// upstream's status and message); the caller decides retry / context-length handling.
struct UpstreamError {
  int status = 0;
  std::string type;     // canonical: invalid_request_error, authentication_error, permission_error,
                        // not_found_error, request_too_large, rate_limit_error, api_error,
                        // overloaded_error, context_length_exceeded
  std::string message;  // the upstream's message, or a generic one when it sent none
};

// ---- per protocol (implemented in frontends/<p>/ and providers/<p>/) ----------------------
#define SLUICE_CODEC_DECLS                                                                    \
  Result<Request> decode_request(std::string_view body, const FrontendContext& ctx);          \
  std::string encode_response(const Response& r, const Request& req);                         \
  std::unique_ptr<StreamEncoder> stream_encoder(const Request& req);                          \
  ErrorBody encode_error(int status, std::string_view message);                               \
  std::string encode_request(const Request& req, std::string_view upstream_model);            \
  Result<Response> decode_response(std::string_view body);                                    \
  std::unique_ptr<StreamDecoder> stream_decoder();                                            \
  UpstreamError decode_error(int status, std::string_view body);

namespace openai { SLUICE_CODEC_DECLS }
namespace anthropic {
SLUICE_CODEC_DECLS
/// The stream decoder with its on-demand pass off: every event the DOM way (tests, fuzzer).
std::unique_ptr<StreamDecoder> stream_decoder_without_fast_pass();
}
namespace gemini {
SLUICE_CODEC_DECLS
std::unique_ptr<StreamDecoder> stream_decoder_without_fast_pass();  // as anthropic's
}
#undef SLUICE_CODEC_DECLS

// ---- dispatch ---------------------------------------------------------------------------------
Result<Request> decode_request(Protocol p, std::string_view body, const FrontendContext& ctx);
std::string encode_response(Protocol p, const Response& r, const Request& req);
std::unique_ptr<StreamEncoder> stream_encoder(Protocol p, const Request& req);
ErrorBody encode_error(Protocol p, int status, std::string_view message);
std::string encode_request(Protocol p, const Request& req, std::string_view upstream_model);
Result<Response> decode_response(Protocol p, std::string_view body);
std::unique_ptr<StreamDecoder> stream_decoder(Protocol p);
UpstreamError decode_error(Protocol p, int status, std::string_view body);

/// The upstream path for a request (after the target's base URL); `upstream_model` must already
/// be percent-encoded as a path segment:
///   openai "/chat/completions"; anthropic "/v1/messages";
///   gemini "/models/{model}:generateContent" or ":streamGenerateContent?alt=sse".
std::string upstream_path(Protocol p, std::string_view upstream_model, bool stream);

// ---- token counting (count.cc) ---------------------------------------------------------------
// Anthropic POST /v1/messages/count_tokens {model, messages, system, tools, ...} → {"input_tokens":N};
// Gemini POST /models/{m}:countTokens {"contents":[...]} or {"generateContentRequest":{...}} →
// {"totalTokens":N}. OpenAI has no counting endpoint.

/// Whether upstreams of protocol `p` can count tokens.
bool counts_tokens(Protocol p);
/// A client's count request (Anthropic or Gemini) as a canonical request.
Result<Request> decode_count_request(Protocol p, std::string_view body, const FrontendContext& ctx);
/// The count request for an upstream of protocol `p` (counts_tokens(p) must hold).
std::string encode_count_request(Protocol p, const Request& req, std::string_view upstream_model);
/// The upstream path of a count request (after the target's base URL), as upstream_path.
std::string count_path(Protocol p, std::string_view upstream_model);
/// The input token count in an upstream's count answer; upstream_protocol when there is none.
Result<int64_t> decode_count(Protocol p, std::string_view body);
/// A count answer in a client's protocol.
std::string encode_count(Protocol p, int64_t tokens);

}  // namespace sluice::canonical
