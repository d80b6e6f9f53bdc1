// libFuzzer target for JwtVerifier::verify() and looks_like_jwt(). Two verifiers: HS256 only,
// and HS256 + RS256 + ES256 with a JWKS (the public test keys). Raw inputs reach the splitter,
// base64url and header checks; structured inputs ("header JSON \n payload JSON", HS256-signed
// here with the known secret) get past the signature to the claim checks. Checks that every
// error is 401, that verify() is deterministic, and that a non-JWT shape is "malformed".
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"
#include "config/config.h"
#include "governance/jwt_verifier.h"

namespace {

using sluice::Errc;
using sluice::governance::JwtVerifier;
using sluice::governance::looks_like_jwt;

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

constexpr int64_t kNow = 1'700'000'000;
constexpr std::string_view kSecret = "fuzz-secret-0123456789abcdef";

// tests/testdata/jwt/jwks.json (public keys only).
constexpr std::string_view kJwks =
    R"({"keys":[{"kty":"RSA","kid":"rsa-1","use":"sig","alg":"RS256","n":"shZ06klpE7ZDEWNM7EZhj)"
    R"(roD6X1FNlIjm3ClVAwqlB_y73NRpvtD-NC6yFz8i1Fg6N3IZ7crM13CcxMiGZ5dDe8yywCTE97ryiG4LMb8Miu-N)"
    R"(5sLrpZAzz4oaua4W0TbF1-J_RddnOobPMi5D9Tib9irp0B2OtDpiBdFOsOn-wcmGUdewbK9lDbmHYY86hd3DGwiN)"
    R"(w6LNgLR-kF1zhaSgIXyppiE4lmI5KOyTNst7xr-VPxqB2RcgSKJLYYRageLamBu3_HkCHj2zH8345sXMAf2aOgsG)"
    R"(ivOuzZIQlu2p8ifQt7RYJTlWbnXe2AGQV7nqAmCaqk3FvSBDNxmmARgYQ","e":"AQAB"},{"kty":"EC","kid")"
    R"(:"ec-1","use":"sig","crv":"P-256","x":"P-tWxMU5Y_SKx06tehpTlJhHp0eFh1AWQTy5aiR6JOk","y":)"
    R"("2yobRySekJsQNUxDuIaM_g7F5i01hHuYvWsEFMx1ZRw"}]})";

std::unique_ptr<JwtVerifier> g_hs;
std::unique_ptr<JwtVerifier> g_all;

std::string b64url(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : data) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

std::string hs256(std::string_view header, std::string_view payload) {
  const std::string input = b64url(header) + "." + b64url(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + b64url(std::string_view(reinterpret_cast<const char*>(mac), len));
}

void check(const JwtVerifier& v, std::string_view token) {
  const bool shape = looks_like_jwt(token);
  auto r = v.verify(token, kNow);
  if (r.ok()) {
    CHECK(shape);
    CHECK(r.value().expires_unix >= kNow - 60);
  } else {
    CHECK(r.error().code == Errc::unauthorized);
    CHECK(!r.error().message.empty());
    if (!shape) CHECK(r.error().message.starts_with("JWT is malformed"));
  }
  auto again = v.verify(token, kNow);
  CHECK(again.ok() == r.ok());
  if (!r.ok()) CHECK(again.error().message == r.error().message);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char path[] = "/tmp/fuzz_jwt_jwks_XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) abort();
  CHECK(write(fd, kJwks.data(), kJwks.size()) == static_cast<ssize_t>(kJwks.size()));
  close(fd);

  sluice::config::JwtConfig hs;
  hs.enabled = true;
  hs.algorithms = {"HS256"};
  hs.secret = std::string(kSecret);
  hs.issuer = "https://idp.example";
  hs.audience = "sluice";
  g_hs = std::make_unique<JwtVerifier>(hs);

  sluice::config::JwtConfig all;
  all.enabled = true;
  all.algorithms = {"HS256", "RS256", "ES256"};
  all.secret = std::string(kSecret);
  all.jwks_file = path;
  g_all = std::make_unique<JwtVerifier>(all);
  unlink(path);  // keys are loaded; reload_if_changed() is not called here
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    // Structured: "<header json>\n<payload json>", validly signed with the HS256 secret.
    const size_t nl = input.find('\n');
    const std::string_view header = input.substr(0, nl);
    const std::string_view payload = nl == std::string_view::npos ? "" : input.substr(nl + 1);
    const std::string token = hs256(header, payload);
    check(*g_hs, token);
    check(*g_all, token);
  } else {
    check(*g_hs, input);
    check(*g_all, input);
  }
  return 0;
}
