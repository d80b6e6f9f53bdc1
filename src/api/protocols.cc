#include "api/protocols.h"

#include "canonical/codec.h"

namespace sluice::api {

GeminiTarget gemini_target(std::string_view path) {
  std::string_view rest;
  if (path.starts_with("/v1beta/models/")) {
    rest = path.substr(15);
  } else if (path.starts_with("/v1/models/")) {
    rest = path.substr(11);
  } else {
    return {};
  }
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || rest.find('/') != std::string_view::npos) {
    return {};
  }
  return {rest.substr(0, colon), rest.substr(colon + 1)};
}

canonical::Protocol client_protocol(std::string_view path) {
  if (path == "/v1/messages" || path.starts_with("/v1/messages/")) {
    return canonical::Protocol::anthropic;
  }
  if (path.starts_with("/v1beta/") || !gemini_target(path).model.empty()) {
    return canonical::Protocol::gemini;
  }
  return canonical::Protocol::openai;
}

ErrorResponse render_error(const Error& error, std::string_view path) {
  ErrorResponse r = to_response(error);
  canonical::Protocol p = client_protocol(path);
  if (p != canonical::Protocol::openai) {
    r.body = canonical::encode_error(p, r.status, error.message).body;
  }
  return r;
}

canonical::Protocol protocol_of(config::ProviderKind provider) {
  switch (provider) {
    case config::ProviderKind::anthropic: return canonical::Protocol::anthropic;
    case config::ProviderKind::gemini: return canonical::Protocol::gemini;
    default: return canonical::Protocol::openai;
  }
}

}  // namespace sluice::api
