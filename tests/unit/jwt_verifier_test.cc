// Unit tests for JwtVerifier: HS256 / RS256 / ES256 from a secret, a PEM file and a JWKS file,
// alg "none" and algorithm-confusion attacks, signatures, time and audience claims, malformed
// input, JWKS reloading and looks_like_jwt(). Tokens are signed with libjwt using the keys in
// tests/testdata/jwt (generated once with the openssl CLI; see README.md there).
#include "governance/jwt_verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sluice::governance {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace fs = std::filesystem;

constexpr int64_t kNow = 1'700'000'000;  // 2023-11-14T22:13:20Z
constexpr std::string_view kSecret = "correct horse battery staple, 32+";

std::string testdata(std::string_view name) {
  return std::string(SLUICE_SOURCE_DIR) + "/tests/testdata/jwt/" + std::string(name);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

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

// Signs `claims_json` with libjwt. `key` is the HMAC secret or a private key PEM.
std::string sign(jwt_alg_t alg, std::string_view key, const std::string& claims_json,
                 const std::map<std::string, std::string>& headers = {}) {
  jwt_t* jwt = nullptr;
  EXPECT_EQ(jwt_new(&jwt), 0);
  EXPECT_EQ(jwt_add_grants_json(jwt, claims_json.c_str()), 0) << claims_json;
  for (const auto& [name, value] : headers) {
    EXPECT_EQ(jwt_add_header(jwt, name.c_str(), value.c_str()), 0);
  }
  EXPECT_EQ(jwt_set_alg(jwt, alg, reinterpret_cast<const unsigned char*>(key.data()),
                        static_cast<int>(key.size())),
            0);
  char* encoded = jwt_encode_str(jwt);
  EXPECT_NE(encoded, nullptr);
  std::string token = encoded != nullptr ? encoded : "";
  free(encoded);
  jwt_free(jwt);
  return token;
}

// A hand-built HS256 token with an arbitrary header (libjwt always writes its own typ / alg).
std::string hs256_raw(std::string_view header_json, std::string_view claims_json,
                      std::string_view secret = kSecret) {
  const std::string input = b64url(header_json) + "." + b64url(claims_json);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + b64url(std::string_view(reinterpret_cast<const char*>(mac), len));
}

std::string claims(int64_t exp = kNow + 3600, std::string_view extra = "") {
  std::string json = R"({"sub":"user-1","tenant":"acme","exp":)" + std::to_string(exp);
  if (!extra.empty()) json += "," + std::string(extra);
  return json + "}";
}

config::JwtConfig hs_config() {
  config::JwtConfig c;
  c.enabled = true;
  c.algorithms = {"HS256"};
  c.secret = std::string(kSecret);
  return c;
}

config::JwtConfig pem_config(std::string_view alg, std::string_view pem) {
  config::JwtConfig c;
  c.enabled = true;
  c.algorithms = {std::string(alg)};
  c.public_key_file = testdata(pem);
  return c;
}

config::JwtConfig jwks_config(std::string path = testdata("jwks.json")) {
  config::JwtConfig c;
  c.enabled = true;
  c.algorithms = {"RS256", "ES256"};
  c.jwks_file = std::move(path);
  return c;
}

// The error message of a failed verification ("" if it succeeded: tests then fail loudly).
std::string rejection(const JwtVerifier& v, std::string_view token, int64_t now = kNow) {
  auto r = v.verify(token, now);
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, Errc::unauthorized);
  EXPECT_EQ(http_status(r.error()), 401);
  return r.error().message;
}

class JwtKeys : public ::testing::Test {
 protected:
  std::string rsa_private_ = read_file(testdata("rsa_private.pem"));
  std::string rsa_public_ = read_file(testdata("rsa_public.pem"));
  std::string rsa2_private_ = read_file(testdata("rsa2_private.pem"));
  std::string ec_private_ = read_file(testdata("ec_private.pem"));
};

// ---- valid tokens ---------------------------------------------------------------------------

TEST(JwtVerifier, AcceptsAValidHs256TokenAndExtractsTheIdentity) {
  JwtVerifier v(hs_config());
  auto r = v.verify(sign(JWT_ALG_HS256, kSecret, claims()), kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->subject, "user-1");
  EXPECT_EQ(r->tenant, "acme");
  EXPECT_EQ(r->expires_unix, kNow + 3600);
}

TEST_F(JwtKeys, AcceptsAValidRs256TokenVerifiedWithThePemFile) {
  JwtVerifier v(pem_config("RS256", "rsa_public.pem"));
  auto r = v.verify(sign(JWT_ALG_RS256, rsa_private_, claims()), kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->subject, "user-1");
}

TEST_F(JwtKeys, AcceptsAValidEs256TokenVerifiedWithThePemFile) {
  JwtVerifier v(pem_config("ES256", "ec_public.pem"));
  auto r = v.verify(sign(JWT_ALG_ES256, ec_private_, claims()), kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tenant, "acme");
}

TEST_F(JwtKeys, AcceptsRs256AndEs256TokensWhoseKidIsInTheJwks) {
  JwtVerifier v(jwks_config());
  auto rs = v.verify(sign(JWT_ALG_RS256, rsa_private_, claims(), {{"kid", "rsa-1"}}), kNow);
  ASSERT_TRUE(rs.ok()) << rs.error().message;
  auto es = v.verify(sign(JWT_ALG_ES256, ec_private_, claims(), {{"kid", "ec-1"}}), kNow);
  ASSERT_TRUE(es.ok()) << es.error().message;
}

TEST_F(JwtKeys, UsesTheOnlyJwksKeyOfTheRightTypeWhenTheTokenHasNoKid) {
  JwtVerifier v(jwks_config());
  EXPECT_TRUE(v.verify(sign(JWT_ALG_RS256, rsa_private_, claims()), kNow).ok());
  EXPECT_TRUE(v.verify(sign(JWT_ALG_ES256, ec_private_, claims()), kNow).ok());
}

TEST_F(JwtKeys, RejectsAKidThatIsNotInTheJwks) {
  JwtVerifier v(jwks_config());
  EXPECT_THAT(rejection(v, sign(JWT_ALG_RS256, rsa_private_, claims(), {{"kid", "nope"}})),
              HasSubstr("key id \"nope\" is not known"));
}

TEST_F(JwtKeys, RejectsATokenSignedByAnotherKeyUnderAKnownKid) {
  JwtVerifier v(jwks_config());
  EXPECT_EQ(rejection(v, sign(JWT_ALG_RS256, rsa2_private_, claims(), {{"kid", "rsa-1"}})),
            "JWT signature is invalid");
}

// ---- alg "none" and algorithm confusion ------------------------------------------------------

TEST(JwtVerifier, RejectsAHandCraftedAlgNoneToken) {
  JwtVerifier v(hs_config());
  const std::string payload = b64url(claims());
  EXPECT_EQ(rejection(v, "eyJhbGciOiJub25lIn0." + payload + "."),
            "JWT algorithm 'none' is not allowed");
}

TEST(JwtVerifier, RejectsAlgNoneInAnyCaseAndWithASignature) {
  JwtVerifier v(hs_config());
  const std::string payload = b64url(claims());
  EXPECT_EQ(rejection(v, "eyJhbGciOiJub25lIn0." + payload + ".c2lnbmF0dXJl"),
            "JWT algorithm 'none' is not allowed");
  EXPECT_EQ(rejection(v, b64url(R"({"alg":"NoNe","typ":"JWT"})") + "." + payload + "."),
            "JWT algorithm 'none' is not allowed");
}

TEST(JwtVerifier, RejectsAnAlgorithmThatIsNotConfigured) {
  JwtVerifier v(hs_config());
  EXPECT_EQ(rejection(v, hs256_raw(R"({"alg":"HS512"})", claims())),
            "JWT algorithm HS512 is not allowed (allowed: HS256)");
  // JWS algorithm names are case-sensitive, unlike libjwt's own lookup.
  EXPECT_THAT(rejection(v, hs256_raw(R"({"alg":"hs256"})", claims())),
              HasSubstr("algorithm hs256 is not allowed"));
}

TEST_F(JwtKeys, RejectsHs256SignedWithTheRsaPublicKeyWhenOnlyRs256IsAllowed) {
  JwtVerifier v(pem_config("RS256", "rsa_public.pem"));
  const std::string forged = sign(JWT_ALG_HS256, rsa_public_, claims());
  EXPECT_EQ(rejection(v, forged), "JWT algorithm HS256 is not allowed (allowed: RS256)");
}

TEST_F(JwtKeys, RejectsHs256SignedWithTheRsaPublicKeyWhenHs256HasAnotherSecret) {
  auto c = pem_config("RS256", "rsa_public.pem");
  c.algorithms = {"RS256", "HS256"};
  c.secret = std::string(kSecret);
  JwtVerifier v(c);
  EXPECT_EQ(rejection(v, sign(JWT_ALG_HS256, rsa_public_, claims())), "JWT signature is invalid");
  // The same verifier still accepts what it should.
  EXPECT_TRUE(v.verify(sign(JWT_ALG_RS256, rsa_private_, claims()), kNow).ok());
  EXPECT_TRUE(v.verify(sign(JWT_ALG_HS256, kSecret, claims()), kNow).ok());
}

TEST_F(JwtKeys, NeverVerifiesHs256WithPublicKeyBytesEvenWithoutASecret) {
  auto c = pem_config("RS256", "rsa_public.pem");
  c.algorithms = {"RS256", "HS256"};
  JwtVerifier v(c);
  EXPECT_EQ(rejection(v, sign(JWT_ALG_HS256, rsa_public_, claims())), "no HS256 secret configured");
}

TEST_F(JwtKeys, RejectsHs256WhoseKidNamesAnRsaKeyInTheJwks) {
  auto c = jwks_config();
  c.algorithms = {"RS256", "HS256"};
  c.secret = std::string(kSecret);
  JwtVerifier v(c);
  const std::string jwks_rsa_pem = rsa_public_;
  EXPECT_EQ(rejection(v, sign(JWT_ALG_HS256, jwks_rsa_pem, claims(), {{"kid", "rsa-1"}})),
            "JWT algorithm HS256 does not match the key (RS256 expected)");
}

TEST_F(JwtKeys, RejectsAnAlgorithmThatDoesNotMatchTheKeyType) {
  auto rsa_pem = pem_config("RS256", "rsa_public.pem");
  rsa_pem.algorithms = {"RS256", "ES256"};
  JwtVerifier by_pem(rsa_pem);
  EXPECT_EQ(rejection(by_pem, sign(JWT_ALG_ES256, ec_private_, claims())),
            "JWT algorithm ES256 does not match the key (RS256 expected)");

  JwtVerifier by_jwks(jwks_config());
  EXPECT_EQ(rejection(by_jwks, sign(JWT_ALG_ES256, ec_private_, claims(), {{"kid", "rsa-1"}})),
            "JWT algorithm ES256 does not match the key (RS256 expected)");
  EXPECT_EQ(rejection(by_jwks, sign(JWT_ALG_RS256, rsa_private_, claims(), {{"kid", "ec-1"}})),
            "JWT algorithm RS256 does not match the key (ES256 expected)");
}

TEST(JwtVerifier, RejectsAHeaderWithTwoAlgMembers) {
  // simdjson would read the first alg and jansson (inside libjwt) the last.
  JwtVerifier v(hs_config());
  EXPECT_THAT(rejection(v, hs256_raw(R"({"alg":"HS256","alg":"none"})", claims())),
              StartsWith("JWT is malformed"));
}

TEST(JwtVerifier, RejectsCriticalHeaderParametersAndForeignTypes) {
  JwtVerifier v(hs_config());
  EXPECT_THAT(rejection(v, hs256_raw(R"({"alg":"HS256","crit":["exp"]})", claims())),
              HasSubstr("crit"));
  EXPECT_THAT(rejection(v, hs256_raw(R"({"alg":"HS256","typ":"at+jwt"})", claims())),
              HasSubstr("type at+jwt is not supported"));
  EXPECT_TRUE(v.verify(hs256_raw(R"({"alg":"HS256","typ":"jwt"})", claims()), kNow).ok());
}

// ---- signatures -----------------------------------------------------------------------------

TEST_F(JwtKeys, RejectsATokenWhosePayloadWasTampered) {
  JwtVerifier hs(hs_config());
  JwtVerifier rs(pem_config("RS256", "rsa_public.pem"));
  JwtVerifier es(pem_config("ES256", "ec_public.pem"));
  const std::string evil = b64url(R"({"sub":"admin","tenant":"acme","exp":1800000000})");
  for (auto [verifier, token] : {std::pair{&hs, sign(JWT_ALG_HS256, kSecret, claims())},
                                 std::pair{&rs, sign(JWT_ALG_RS256, rsa_private_, claims())},
                                 std::pair{&es, sign(JWT_ALG_ES256, ec_private_, claims())}}) {
    ASSERT_TRUE(verifier->verify(token, kNow).ok());
    const size_t dot1 = token.find('.');
    const size_t dot2 = token.find('.', dot1 + 1);
    const std::string tampered = token.substr(0, dot1 + 1) + evil + token.substr(dot2);
    EXPECT_EQ(rejection(*verifier, tampered), "JWT signature is invalid");
    EXPECT_EQ(rejection(*verifier, token.substr(0, dot2 + 1)), "JWT signature is invalid");
  }
}

TEST(JwtVerifier, RejectsAnHs256TokenSignedWithAnotherSecret) {
  JwtVerifier v(hs_config());
  EXPECT_EQ(rejection(v, sign(JWT_ALG_HS256, "another secret", claims())),
            "JWT signature is invalid");
}

// ---- time claims ----------------------------------------------------------------------------

TEST(JwtVerifier, RejectsAnExpiredTokenNamingTheExpiryTime) {
  JwtVerifier v(hs_config());
  EXPECT_EQ(rejection(v, sign(JWT_ALG_HS256, kSecret, claims(kNow - 3600)), kNow),
            "JWT expired at 2023-11-14T21:13:20Z");
}

TEST(JwtVerifier, ToleratesClockSkewOnExpiry) {
  auto c = hs_config();
  c.clock_skew = std::chrono::seconds(60);
  JwtVerifier v(c);
  const std::string token = sign(JWT_ALG_HS256, kSecret, claims(kNow));
  EXPECT_TRUE(v.verify(token, kNow).ok());
  EXPECT_TRUE(v.verify(token, kNow + 60).ok());
  EXPECT_THAT(rejection(v, token, kNow + 61), StartsWith("JWT expired at"));

  c.clock_skew = std::chrono::milliseconds(0);
  JwtVerifier strict(c);
  EXPECT_TRUE(strict.verify(token, kNow).ok());
  EXPECT_THAT(rejection(strict, token, kNow + 1), StartsWith("JWT expired at"));
}

TEST(JwtVerifier, RequiresANumericExp) {
  JwtVerifier v(hs_config());
  EXPECT_EQ(rejection(v, hs256_raw(R"({"alg":"HS256"})", R"({"sub":"x"})")),
            "JWT has no exp claim");
  EXPECT_EQ(rejection(v, hs256_raw(R"({"alg":"HS256"})", R"({"exp":"1800000000"})")),
            "JWT exp claim is not a number");
  EXPECT_TRUE(v.verify(hs256_raw(R"({"alg":"HS256"})", R"({"exp":1.8e9})"), kNow).ok());
}

TEST(JwtVerifier, RejectsATokenThatIsNotValidYetBeyondTheSkew) {
  auto c = hs_config();
  c.clock_skew = std::chrono::seconds(30);
  JwtVerifier v(c);
  EXPECT_THAT(rejection(v, sign(JWT_ALG_HS256, kSecret,
                                claims(kNow + 3600, "\"nbf\":" + std::to_string(kNow + 31)))),
              StartsWith("JWT is not valid yet"));
  EXPECT_TRUE(v.verify(sign(JWT_ALG_HS256, kSecret,
                            claims(kNow + 3600, "\"nbf\":" + std::to_string(kNow + 30))),
                       kNow)
                  .ok());
  EXPECT_EQ(rejection(v, hs256_raw(R"({"alg":"HS256"})", claims(kNow + 10, R"("nbf":null)"))),
            "JWT nbf claim is not a number");
}

TEST(JwtVerifier, HandlesExtremeTimeValuesWithoutOverflow) {
  JwtVerifier v(hs_config());
  EXPECT_TRUE(
      v.verify(hs256_raw(R"({"alg":"HS256"})", R"({"exp":9223372036854775807})"), kNow).ok());
  // libjwt's JSON parser (jansson) refuses integers beyond int64, so the token fails there.
  EXPECT_THAT(rejection(v, hs256_raw(R"({"alg":"HS256"})", R"({"exp":18446744073709551615})")),
              StartsWith("JWT is malformed"));
  EXPECT_TRUE(v.verify(hs256_raw(R"({"alg":"HS256"})", R"({"exp":1e300})"), kNow).ok());
  EXPECT_THAT(rejection(v, hs256_raw(R"({"alg":"HS256"})", R"({"exp":-9223372036854775808})")),
              StartsWith("JWT expired at"));
  EXPECT_THAT(
      rejection(v, hs256_raw(R"({"alg":"HS256"})", R"({"exp":1e300,"nbf":9223372036854775807})")),
      StartsWith("JWT is not valid yet"));
}

// ---- issuer, audience, subject, tenant ------------------------------------------------------

TEST(JwtVerifier, RequiresTheConfiguredIssuer) {
  auto c = hs_config();
  c.issuer = "https://idp.example";
  JwtVerifier v(c);
  EXPECT_TRUE(
      v.verify(sign(JWT_ALG_HS256, kSecret, claims(kNow + 60, R"("iss":"https://idp.example")")),
               kNow)
          .ok());
  EXPECT_THAT(
      rejection(v, sign(JWT_ALG_HS256, kSecret, claims(kNow + 60, R"("iss":"https://evil")"))),
      HasSubstr("issuer \"https://evil\" is not accepted"));
  EXPECT_EQ(rejection(v, sign(JWT_ALG_HS256, kSecret, claims())), "JWT has no iss claim");
}

TEST(JwtVerifier, AcceptsAnAudienceStringOrArrayContainingTheConfiguredAudience) {
  auto c = hs_config();
  c.audience = "sluice";
  JwtVerifier v(c);
  EXPECT_TRUE(
      v.verify(sign(JWT_ALG_HS256, kSecret, claims(kNow + 60, R"("aud":"sluice")")), kNow).ok());
  EXPECT_TRUE(
      v.verify(sign(JWT_ALG_HS256, kSecret, claims(kNow + 60, R"("aud":["other","sluice"])")), kNow)
          .ok());
}

TEST(JwtVerifier, RejectsAnAudienceThatDoesNotContainTheConfiguredOne) {
  auto c = hs_config();
  c.audience = "sluice";
  JwtVerifier v(c);
  EXPECT_THAT(rejection(v, sign(JWT_ALG_HS256, kSecret, claims(kNow + 60, R"("aud":"other")"))),
              HasSubstr("audience does not include \"sluice\""));
  EXPECT_THAT(rejection(v, sign(JWT_ALG_HS256, kSecret, claims(kNow + 60, R"("aud":["a","b",1])"))),
              HasSubstr("audience does not include"));
  EXPECT_EQ(rejection(v, sign(JWT_ALG_HS256, kSecret, claims())), "JWT has no aud claim");
  EXPECT_THAT(rejection(v, sign(JWT_ALG_HS256, kSecret, claims(kNow + 60, R"("aud":7)"))),
              HasSubstr("neither a string nor an array"));
}

TEST(JwtVerifier, ReadsTheTenantFromTheConfiguredClaim) {
  auto c = hs_config();
  c.tenant_claim = "org";
  JwtVerifier v(c);
  auto r = v.verify(sign(JWT_ALG_HS256, kSecret, claims(kNow + 60, R"("org":"globex")")), kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tenant, "globex");

  auto absent = v.verify(sign(JWT_ALG_HS256, kSecret, claims()), kNow);
  ASSERT_TRUE(absent.ok());
  EXPECT_EQ(absent->tenant, "");
  EXPECT_THAT(rejection(v, sign(JWT_ALG_HS256, kSecret, claims(kNow + 60, R"("org":5)"))),
              HasSubstr("org claim is not a string"));
}

TEST(JwtVerifier, LeavesTheSubjectEmptyWhenThereIsNoSub) {
  JwtVerifier v(hs_config());
  auto r = v.verify(hs256_raw(R"({"alg":"HS256"})", R"({"exp":1800000000})"), kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->subject, "");
  EXPECT_EQ(r->tenant, "");
}

// ---- malformed input ------------------------------------------------------------------------

TEST(JwtVerifier, RejectsMalformedTokensWithoutCrashing) {
  JwtVerifier v(hs_config());
  const std::string good = sign(JWT_ALG_HS256, kSecret, claims());
  const std::string head = good.substr(0, good.find('.'));
  const std::string body = b64url(claims());
  const std::vector<std::string> bad = {
      "",
      ".",
      "..",
      head + "." + body,                                  // two segments
      head + "." + body + ".sig.extra",                   // four segments
      "." + body + ".sig",                                // empty header
      head + "..sig",                                     // empty payload
      "e$J." + body + ".sig",                             // not base64url
      head + "=." + body + ".sig",                        // padding
      "eyJhbGciOiJIUzI1NiJ9A." + body + ".x",             // impossible length / trailing bits
      b64url("hello") + "." + body + ".c2ln",             // header not JSON
      b64url("[1,2]") + "." + body + ".c2ln",             // header not an object
      b64url(R"({"typ":"JWT"})") + "." + body + ".c2ln",  // no alg
      b64url(R"({"alg":5})") + "." + body + ".c2ln",      // alg not a string
      hs256_raw(R"({"alg":"HS256"})", "not json"),        // payload not JSON
      std::string(20000, 'a'),                            // too long
      std::string("ey\0J.a.b", 8),                        // NUL byte
  };
  for (const auto& token : bad) {
    EXPECT_THAT(rejection(v, token), StartsWith("JWT is malformed")) << token;
  }
}

// ---- configuration --------------------------------------------------------------------------

TEST(JwtVerifier, ThrowsAConfigErrorNamingABrokenJwksFile) {
  const fs::path dir = fs::temp_directory_path() / ("jwt_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "broken.json").string();
  for (std::string_view text :
       {std::string_view("{not json"), std::string_view(R"({"nokeys":[]})"),
        std::string_view(R"({"keys":[{"kty":"RSA","n":"!!","e":"AQAB"}]})"),
        std::string_view(R"({"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]})")}) {
    write_file(path, text);
    try {
      JwtVerifier v(jwks_config(path));
      ADD_FAILURE() << "no exception for " << text;
    } catch (const config::ConfigError& e) {
      EXPECT_THAT(e.what(), HasSubstr(path));
    }
  }
  EXPECT_THROW(JwtVerifier(jwks_config((dir / "missing.json").string())), config::ConfigError);
  fs::remove_all(dir);
}

TEST(JwtVerifier, ThrowsAConfigErrorForAPemFileThatIsNotAPublicKey) {
  try {
    JwtVerifier v(pem_config("RS256", "rsa_private.pem"));
    ADD_FAILURE() << "a private key file was accepted";
  } catch (const config::ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("rsa_private.pem"));
  }
  EXPECT_THROW(JwtVerifier(pem_config("RS256", "jwks.json")), config::ConfigError);
}

TEST(JwtVerifier, ThrowsAConfigErrorForAnUnsupportedAlgorithm) {
  auto c = hs_config();
  c.algorithms = {"HS256", "PS256"};
  EXPECT_THROW(JwtVerifier{c}, config::ConfigError);
}

TEST(JwtVerifier, SkipsJwksKeysItCannotUse) {
  const fs::path dir = fs::temp_directory_path() / ("jwt_skip_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "jwks.json").string();
  write_file(path,
             R"({"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"OKP","crv":"Ed25519","x":"AA"},)"
             R"({"kty":"EC","crv":"P-384","x":"AA","y":"AA"},{"kty":"RSA","use":"enc"}]})");
  JwtVerifier v(jwks_config(path));
  EXPECT_EQ(rejection(v, hs256_raw(R"({"alg":"RS256"})", claims())),
            "no RS256 public key configured");
  fs::remove_all(dir);
}

// ---- JWKS reload ----------------------------------------------------------------------------

TEST_F(JwtKeys, ReloadsTheJwksWhenTheFileChangesAndKeepsOldKeysIfItBreaks) {
  const fs::path dir = fs::temp_directory_path() / ("jwt_reload_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path path = dir / "jwks.json";
  fs::copy_file(testdata("jwks.json"), path, fs::copy_options::overwrite_existing);
  JwtVerifier v(jwks_config(path.string()));

  const std::string old_key = sign(JWT_ALG_RS256, rsa_private_, claims(), {{"kid", "rsa-1"}});
  const std::string new_key = sign(JWT_ALG_RS256, rsa2_private_, claims(), {{"kid", "rsa-2"}});
  EXPECT_TRUE(v.verify(old_key, kNow).ok());
  EXPECT_THAT(rejection(v, new_key), HasSubstr("is not known"));

  v.reload_if_changed();  // unchanged: nothing happens
  EXPECT_TRUE(v.verify(old_key, kNow).ok());

  auto bump_mtime = [&, step = 0]() mutable {
    fs::last_write_time(path, fs::last_write_time(path) + std::chrono::seconds(10 + step++));
  };
  write_file(path.string(), read_file(testdata("jwks_rotated.json")));
  bump_mtime();
  v.reload_if_changed();
  EXPECT_TRUE(v.verify(new_key, kNow).ok());
  EXPECT_THAT(rejection(v, old_key), HasSubstr("is not known"));

  write_file(path.string(), "{\"keys\": [ broken");
  bump_mtime();
  v.reload_if_changed();  // logs a warning, keeps rsa-2
  EXPECT_TRUE(v.verify(new_key, kNow).ok());

  fs::remove(path);
  v.reload_if_changed();  // file gone: keeps rsa-2
  EXPECT_TRUE(v.verify(new_key, kNow).ok());

  fs::copy_file(testdata("jwks.json"), path);
  bump_mtime();
  v.reload_if_changed();
  EXPECT_TRUE(v.verify(old_key, kNow).ok());
  fs::remove_all(dir);
}

TEST_F(JwtKeys, VerifiesConcurrentlyWhileTheJwksIsReloaded) {
  const fs::path dir = fs::temp_directory_path() / ("jwt_conc_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path path = dir / "jwks.json";
  fs::copy_file(testdata("jwks.json"), path, fs::copy_options::overwrite_existing);
  JwtVerifier v(jwks_config(path.string()));
  const std::string token = sign(JWT_ALG_ES256, ec_private_, claims(), {{"kid", "ec-1"}});
  // Run under ThreadSanitizer by `make test`. Each thread counts its own verifications, so
  // the test fails if a thread never verified (instead of passing with nothing checked).
  constexpr int kThreads = 4;
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::array<std::atomic<int>, kThreads> verified{};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      while (!stop) {
        if (v.verify(token, kNow).ok()) {
          ++verified[i];
        } else {
          ++failures;
        }
      }
    });
  }
  // Waits (generously) until every thread has verified more than `floor[i]` times.
  auto all_passed = [&](const std::array<int, kThreads>& floor) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (int i = 0; i < kThreads; ++i) {
      while (verified[i] <= floor[i] && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
    }
  };
  all_passed({0, 0, 0, 0});  // every thread is verifying before the first reload
  for (int i = 0; i < 20; ++i) {
    fs::last_write_time(path, fs::last_write_time(path) + std::chrono::seconds(1));
    v.reload_if_changed();
  }
  std::array<int, kThreads> after_reloads{};
  for (int i = 0; i < kThreads; ++i) after_reloads[i] = verified[i];
  all_passed(after_reloads);  // and still verifying with the reloaded keys
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_GT(verified[i], after_reloads[i]) << "thread " << i << " stopped verifying";
    EXPECT_GT(after_reloads[i], 0) << "thread " << i << " never verified";
  }
  fs::remove_all(dir);
}

// ---- looks_like_jwt -------------------------------------------------------------------------

TEST(LooksLikeJwt, RecognizesCompactJwtsIncludingUnsignedOnes) {
  EXPECT_TRUE(looks_like_jwt(sign(JWT_ALG_HS256, kSecret, claims())));
  EXPECT_TRUE(looks_like_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."));
  EXPECT_TRUE(looks_like_jwt("a-b.c_d.e"));
}

TEST(LooksLikeJwt, RejectsApiKeysAndOtherShapes) {
  for (std::string_view s : {"", "sk-sluice-abc123", "a.b", "a.b.c.d", "a..c", ".b.c", "a.b.c ",
                             "a b.c.d", "a+b.c.d", "a.b.c=", "..", "a.b.c."}) {
    EXPECT_FALSE(looks_like_jwt(s)) << s;
  }
}

}  // namespace
}  // namespace sluice::governance
