#include "canonical/codec.h"

namespace sluice::canonical {

std::string_view protocol_name(Protocol p) {
  switch (p) {
    case Protocol::openai: return "openai";
    case Protocol::anthropic: return "anthropic";
    case Protocol::gemini: return "gemini";
  }
  return "openai";
}

#define SLUICE_DISPATCH(call)              \
  switch (p) {                             \
    case Protocol::anthropic: return anthropic::call; \
    case Protocol::gemini: return gemini::call;       \
    case Protocol::openai: break;          \
  }                                        \
  return openai::call;

Result<Request> decode_request(Protocol p, std::string_view body, const FrontendContext& ctx) {
  SLUICE_DISPATCH(decode_request(body, ctx))
}
std::string encode_response(Protocol p, const Response& r, const Request& req) {
  SLUICE_DISPATCH(encode_response(r, req))
}
std::unique_ptr<StreamEncoder> stream_encoder(Protocol p, const Request& req) {
  SLUICE_DISPATCH(stream_encoder(req))
}
ErrorBody encode_error(Protocol p, int status, std::string_view message) {
  SLUICE_DISPATCH(encode_error(status, message))
}
std::string encode_request(Protocol p, const Request& req, std::string_view upstream_model) {
  SLUICE_DISPATCH(encode_request(req, upstream_model))
}
Result<Response> decode_response(Protocol p, std::string_view body) {
  SLUICE_DISPATCH(decode_response(body))
}
std::unique_ptr<StreamDecoder> stream_decoder(Protocol p) { SLUICE_DISPATCH(stream_decoder()) }
UpstreamError decode_error(Protocol p, int status, std::string_view body) {
  SLUICE_DISPATCH(decode_error(status, body))
}
#undef SLUICE_DISPATCH

std::string upstream_path(Protocol p, std::string_view upstream_model, bool stream) {
  switch (p) {
    case Protocol::anthropic: return "/v1/messages";
    case Protocol::gemini: {
      std::string path = "/models/";
      path += upstream_model;
      path += stream ? ":streamGenerateContent?alt=sse" : ":generateContent";
      return path;
    }
    case Protocol::openai: break;
  }
  return "/chat/completions";
}

}  // namespace sluice::canonical
