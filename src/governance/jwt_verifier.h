// JWT verification (HS256, RS256, ES256) with libjwt: keys from config, a PEM file or a JWKS
// file (reloaded when it changes). Rejects alg "none", algorithm confusion (the header's alg
// must be allowed AND match the key's type), bad signatures, expired / not-yet-valid tokens,
// wrong issuer or audience, and malformed input — each with a clear message, never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/error.h"
#include "config/config.h"

namespace sluice::governance {

struct JwtIdentity {
  std::string subject;  // `sub`
  std::string tenant;   // the configured tenant claim ("" if absent)
  int64_t expires_unix = 0;
};

class JwtVerifier {
 public:
  /// Loads keys (PEM file, JWKS file). Throws config::ConfigError naming the file on failure.
  explicit JwtVerifier(const config::JwtConfig& config);
  ~JwtVerifier();

  /// Verifies `token` at time `now_unix`. Errors are Errc::unauthorized with a message saying
  /// what is wrong (e.g. "JWT signature is invalid", "JWT expired at ...", "JWT algorithm
  /// 'none' is not allowed", "JWT algorithm HS256 does not match the key (RS256 expected)").
  /// Thread-safe.
  Result<JwtIdentity> verify(std::string_view token, int64_t now_unix) const;

  /// Re-reads the JWKS file if its modification time changed. Cheap when unchanged; call it
  /// periodically (e.g. every second) from any thread.
  void reload_if_changed();

 private:
  struct Keys;
  config::JwtConfig config_;
  mutable std::mutex mu_;
  std::shared_ptr<const Keys> keys_;
  int64_t jwks_mtime_ = 0;
};

/// True if `s` looks like a compact JWT (three base64url segments separated by dots).
bool looks_like_jwt(std::string_view s);

}  // namespace sluice::governance
