// JWT verification: splits and decodes the token itself (strict base64url, JSON via simdjson),
// rejects alg "none" and algorithm confusion BEFORE any cryptography, picks the one key the
// header's alg may be verified with (HS256: the configured secret only; RS256 / ES256: an RSA or
// EC P-256 public key from the PEM file or the JWKS), lets libjwt check the signature, then
// checks the registered claims. Every failure is Errc::unauthorized with a clear message.
#include "governance/jwt_verifier.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>
#include <strings.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

namespace sluice::governance {
namespace {

// Longest token accepted. libjwt decodes each segment into a stack buffer (alloca) as long as
// the segment, so an unbounded token could overflow the stack; real JWTs are a few KiB.
constexpr size_t kMaxTokenBytes = 16 * 1024;
constexpr size_t kMaxJwksBytes = 1024 * 1024;
constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 16384;

// The algorithms this verifier implements (the config may allow a subset).
constexpr std::array<std::string_view, 3> kSupportedAlgorithms = {"HS256", "RS256", "ES256"};

enum class KeyType { rsa, ec_p256 };

std::string_view key_type_alg(KeyType type) { return type == KeyType::rsa ? "RS256" : "ES256"; }

Error unauthorized(std::string message) {
  return make_error(Errc::unauthorized, std::move(message));
}

Error malformed(std::string_view detail) {
  return unauthorized(fmt::format("JWT is malformed: {}", detail));
}

// A token-supplied value echoed in a message: printable ASCII only, cut short.
std::string shown(std::string_view value) {
  constexpr size_t kMaxShown = 40;
  std::string out;
  for (size_t i = 0; i < value.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (value.size() > kMaxShown) out += "...";
  return out;
}

// ---- base64url ----------------------------------------------------------------------------

int b64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

bool is_b64url_char(char c) { return b64url_value(c) >= 0; }

// Strict unpadded base64url (RFC 7515 §2): alphabet only, no '=', no impossible length, and
// the unused low bits of the last character zero (so each byte string has one encoding).
bool b64url_decode(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 == 1) return false;
  out.reserve(in.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = b64url_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return (acc & ((1u << bits) - 1)) == 0;
}

// ---- time ---------------------------------------------------------------------------------

int64_t sat_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return r;
}

// Unix seconds → "YYYY-MM-DDTHH:MM:SSZ" (proleptic Gregorian, any int64, no libc limits).
std::string iso_time(int64_t unix_seconds) {
  int64_t days = unix_seconds / 86400;
  int64_t secs = unix_seconds % 86400;
  if (secs < 0) {
    secs += 86400;
    days -= 1;
  }
  // H. Hinnant's civil_from_days.
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", year, month, day, secs / 3600,
                     secs / 60 % 60, secs % 60);
}

// A NumericDate claim as whole seconds: `round_up` for nbf (a fractional nbf is not reached
// until the next whole second), down for exp. Clamped to int64. nullopt if not a number.
std::optional<int64_t> numeric_date(const simdjson::dom::element& v, bool round_up) {
  constexpr auto kMax = std::numeric_limits<int64_t>::max();
  constexpr auto kMin = std::numeric_limits<int64_t>::min();
  switch (v.type()) {
    case simdjson::dom::element_type::INT64:
      return v.get_int64().value_unsafe();
    case simdjson::dom::element_type::UINT64: {
      const uint64_t u = v.get_uint64().value_unsafe();
      return u > static_cast<uint64_t>(kMax) ? kMax : static_cast<int64_t>(u);
    }
    case simdjson::dom::element_type::DOUBLE: {
      double d = v.get_double().value_unsafe();
      if (std::isnan(d)) return std::nullopt;
      d = round_up ? std::ceil(d) : std::floor(d);
      if (d >= 9.2e18) return kMax;
      if (d <= -9.2e18) return kMin;
      return static_cast<int64_t>(d);
    }
    default:
      return std::nullopt;
  }
}

// ---- JSON ---------------------------------------------------------------------------------

// Parses `json` as an object whose keys are all distinct. Duplicate keys are refused because
// parsers disagree about them: simdjson reads the first "alg", jansson (inside libjwt) the last.
bool parse_object(simdjson::dom::parser& parser, const std::string& json,
                  simdjson::dom::object& out) {
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size(), true).get(root)) return false;
  if (root.get_object().get(out)) return false;
  std::set<std::string_view> seen;
  for (auto field : out) {
    if (!seen.insert(field.key).second) return false;
  }
  return true;
}

std::optional<std::string_view> string_field(const simdjson::dom::object& obj,
                                             std::string_view key) {
  std::string_view s;
  if (obj.at_key(key).get_string().get(s)) return std::nullopt;
  return s;
}

// ---- keys ---------------------------------------------------------------------------------

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// Classifies a public key: RSA (with a sane size) or EC on P-256; anything else is an error.
std::optional<KeyType> classify(EVP_PKEY* pkey, std::string& problem) {
  if (EVP_PKEY_is_a(pkey, "RSA")) {
    const int bits = EVP_PKEY_get_bits(pkey);
    if (bits < kMinRsaBits || bits > kMaxRsaBits) {
      problem = fmt::format("RSA key has {} bits (must be {}..{})", bits, kMinRsaBits, kMaxRsaBits);
      return std::nullopt;
    }
    return KeyType::rsa;
  }
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &len) != 1 ||
        OBJ_txt2nid(group) != NID_X9_62_prime256v1) {
      problem = "EC key is not on curve P-256";
      return std::nullopt;
    }
    return KeyType::ec_p256;
  }
  problem = "key is neither RSA nor EC P-256";
  return std::nullopt;
}

// Re-encodes a public key as a PEM "PUBLIC KEY" block, the form libjwt reads.
std::optional<std::string> to_pem(EVP_PKEY* pkey) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return std::nullopt;
  std::optional<std::string> pem;
  if (PEM_write_bio_PUBKEY(bio, pkey) == 1) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    if (n > 0 && data != nullptr) pem.emplace(data, static_cast<size_t>(n));
  }
  BIO_free(bio);
  return pem;
}

// Checks the public key's consistency (EC point on the curve, RSA modulus / exponent).
bool public_key_ok(EVP_PKEY* pkey) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
  if (ctx == nullptr) return false;
  const bool ok = EVP_PKEY_public_check(ctx) == 1;
  EVP_PKEY_CTX_free(ctx);
  return ok;
}

// Builds a public key from OSSL_PARAMs (EVP_PKEY_fromdata).
PkeyPtr pkey_from_params(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* pkey = nullptr;
  if (params != nullptr && ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1) {
    if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) pkey = nullptr;
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return PkeyPtr(pkey);
}

PkeyPtr rsa_from_jwk(const std::string& n, const std::string& e) {
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                           static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()),
                           static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  PkeyPtr pkey;
  if (bn_n != nullptr && bn_e != nullptr && bld != nullptr &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1) {
    pkey = pkey_from_params("RSA", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  return pkey;
}

PkeyPtr ec_p256_from_jwk(const std::string& x, const std::string& y) {
  std::string point = "\x04";
  point += x;
  point += y;
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  PkeyPtr pkey;
  if (bld != nullptr &&
      OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) ==
          1) {
    pkey = pkey_from_params("EC", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  return pkey;
}

// A JWK member: base64url, tolerating the '=' padding some publishers add.
bool jwk_bytes(const simdjson::dom::object& jwk, std::string_view name, std::string& out) {
  auto s = string_field(jwk, name);
  if (!s) return false;
  std::string_view v = *s;
  while (!v.empty() && v.back() == '=') v.remove_suffix(1);
  return !v.empty() && b64url_decode(v, out);
}

std::string read_file(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read it: {}", std::strerror(errno)));
  std::string data;
  char buf[8192];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > max_bytes) {
      throw std::runtime_error(fmt::format("larger than {} bytes", max_bytes));
    }
  }
  if (in.bad()) throw std::runtime_error("cannot read it");
  return data;
}

// Modification time in nanoseconds, or -1 if the file cannot be stat'ed.
int64_t file_mtime_ns(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// Serializes JWKS reloads (rare and cheap) so two threads never install keys out of order.
std::mutex g_reload_mu;

// A usable verification key.
struct PublicKey {
  std::string kid;
  KeyType type = KeyType::rsa;
  std::string alg;  // the JWK's own "alg", "" if it has none
  std::string pem;  // SubjectPublicKeyInfo PEM handed to libjwt
};

// The decoded header fields the verifier uses.
struct Header {
  std::string alg;
  std::string kid;
  bool has_kid = false;
};

// Parses a JWKS document. Unsupported key types / curves and "use":"enc" keys are skipped; a
// supported key that is broken makes the whole document an error (thrown as runtime_error).
std::vector<PublicKey> parse_jwks(const std::string& text);

}  // namespace

struct JwtVerifier::Keys {
  std::optional<PublicKey> pem_file;  // public_key_file
  std::vector<PublicKey> jwks;        // jwks_file, in file order
};

namespace {

std::vector<PublicKey> parse_jwks(const std::string& text) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(text).get(root)) {
    throw std::runtime_error(fmt::format("not valid JSON ({})", simdjson::error_message(err)));
  }
  simdjson::dom::array keys;
  if (root["keys"].get_array().get(keys)) {
    throw std::runtime_error("expected an object with a \"keys\" array");
  }
  std::vector<PublicKey> out;
  size_t index = 0;
  for (auto element : keys) {
    const std::string where = fmt::format("keys[{}]", index++);
    simdjson::dom::object jwk;
    if (element.get_object().get(jwk)) throw std::runtime_error(where + ": not an object");
    const auto kty = string_field(jwk, "kty");
    if (!kty) throw std::runtime_error(where + ": missing \"kty\"");
    if (auto use = string_field(jwk, "use"); use && *use != "sig") continue;
    PublicKey key;
    if (auto kid = string_field(jwk, "kid")) key.kid = std::string(*kid);
    if (auto alg = string_field(jwk, "alg")) key.alg = std::string(*alg);
    PkeyPtr pkey;
    if (*kty == "RSA") {
      std::string n, e;
      if (!jwk_bytes(jwk, "n", n)) throw std::runtime_error(where + ".n: missing or not base64url");
      if (!jwk_bytes(jwk, "e", e)) throw std::runtime_error(where + ".e: missing or not base64url");
      pkey = rsa_from_jwk(n, e);
      key.type = KeyType::rsa;
    } else if (*kty == "EC") {
      const auto crv = string_field(jwk, "crv");
      if (!crv) throw std::runtime_error(where + ": missing \"crv\"");
      if (*crv != "P-256") continue;  // other curves: not usable for ES256
      std::string x, y;
      if (!jwk_bytes(jwk, "x", x) || x.size() != 32) {
        throw std::runtime_error(where + ".x: missing or not a 32-byte base64url value");
      }
      if (!jwk_bytes(jwk, "y", y) || y.size() != 32) {
        throw std::runtime_error(where + ".y: missing or not a 32-byte base64url value");
      }
      pkey = ec_p256_from_jwk(x, y);
      key.type = KeyType::ec_p256;
    } else {
      continue;  // "oct", "OKP", ...: not used by this verifier
    }
    if (!pkey || !public_key_ok(pkey.get())) {
      throw std::runtime_error(where + ": not a valid public key");
    }
    std::string problem;
    const auto type = classify(pkey.get(), problem);
    if (!type || *type != key.type) throw std::runtime_error(where + ": " + problem);
    auto pem = to_pem(pkey.get());
    if (!pem) throw std::runtime_error(where + ": cannot encode the key");
    key.pem = std::move(*pem);
    out.push_back(std::move(key));
  }
  return out;
}

}  // namespace

JwtVerifier::JwtVerifier(const config::JwtConfig& config) : config_(config) {
  for (const auto& alg : config_.algorithms) {
    if (std::find(kSupportedAlgorithms.begin(), kSupportedAlgorithms.end(), alg) ==
        kSupportedAlgorithms.end()) {
      throw config::ConfigError(fmt::format(
          "auth.jwt.algorithms: unsupported algorithm \"{}\" (supported: HS256, RS256, ES256)",
          shown(alg)));
    }
  }
  auto keys = std::make_shared<Keys>();
  if (!config_.public_key_file.empty()) {
    const std::string& path = config_.public_key_file;
    std::string pem;
    try {
      pem = read_file(path, kMaxJwksBytes);
    } catch (const std::exception& e) {
      throw config::ConfigError(fmt::format("auth.jwt.public_key_file: {}: {}", path, e.what()));
    }
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    PkeyPtr pkey(bio != nullptr ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr);
    BIO_free(bio);
    if (!pkey) {
      throw config::ConfigError(fmt::format(
          "auth.jwt.public_key_file: {}: not a PEM public key (-----BEGIN PUBLIC KEY-----)", path));
    }
    std::string problem;
    const auto type = classify(pkey.get(), problem);
    if (!type) {
      throw config::ConfigError(fmt::format("auth.jwt.public_key_file: {}: {}", path, problem));
    }
    auto normalized = to_pem(pkey.get());
    if (!normalized) {
      throw config::ConfigError(
          fmt::format("auth.jwt.public_key_file: {}: cannot encode the key", path));
    }
    keys->pem_file = PublicKey{"", *type, "", std::move(*normalized)};
  }
  if (!config_.jwks_file.empty()) {
    const std::string& path = config_.jwks_file;
    jwks_mtime_ = file_mtime_ns(path);  // before reading: a write after this is seen later
    try {
      keys->jwks = parse_jwks(read_file(path, kMaxJwksBytes));
    } catch (const std::exception& e) {
      throw config::ConfigError(fmt::format("auth.jwt.jwks_file: {}: {}", path, e.what()));
    }
  }
  keys_ = std::move(keys);
}

JwtVerifier::~JwtVerifier() = default;

void JwtVerifier::reload_if_changed() {
  if (config_.jwks_file.empty()) return;
  std::lock_guard reload_lock(g_reload_mu);
  const std::string& path = config_.jwks_file;
  const int64_t mtime = file_mtime_ns(path);
  {
    std::lock_guard lock(mu_);
    if (mtime == jwks_mtime_) return;
    jwks_mtime_ = mtime;  // warn once per change, not on every poll
  }
  if (mtime < 0) {
    spdlog::warn("JWKS {} cannot be found; keeping the previous keys", path);
    return;
  }
  std::vector<PublicKey> jwks;
  try {
    jwks = parse_jwks(read_file(path, kMaxJwksBytes));
  } catch (const std::exception& e) {
    spdlog::warn("JWKS {} is broken ({}); keeping the previous keys", path, e.what());
    return;
  }
  std::shared_ptr<const Keys> old;
  {
    std::lock_guard lock(mu_);
    old = keys_;
  }
  auto next = std::make_shared<Keys>();
  next->pem_file = old->pem_file;
  next->jwks = std::move(jwks);
  spdlog::info("JWKS {} reloaded ({} keys)", path, next->jwks.size());
  std::lock_guard lock(mu_);
  keys_ = std::move(next);
}

Result<JwtIdentity> JwtVerifier::verify(std::string_view token, int64_t now_unix) const {
  // 1. Structure: three base64url segments; header and payload non-empty.
  if (token.empty()) return malformed("empty token");
  if (token.size() > kMaxTokenBytes) {
    return malformed(fmt::format("longer than {} bytes", kMaxTokenBytes));
  }
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return malformed("expected three dot-separated segments");
  }
  const std::string_view head_b64 = token.substr(0, dot1);
  const std::string_view body_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view sig_b64 = token.substr(dot2 + 1);
  if (head_b64.empty() || body_b64.empty()) return malformed("empty header or payload");
  std::string head_json, body_json, signature;
  if (!b64url_decode(head_b64, head_json)) return malformed("header is not base64url");
  if (!b64url_decode(body_b64, body_json)) return malformed("payload is not base64url");
  if (!b64url_decode(sig_b64, signature)) return malformed("signature is not base64url");

  // 2. Header: alg (and kid, typ, crit).
  thread_local simdjson::dom::parser parser;
  Header header;
  {
    simdjson::dom::object obj;
    if (!parse_object(parser, head_json, obj)) {
      return malformed("header is not a JSON object with distinct keys");
    }
    const auto alg = string_field(obj, "alg");
    if (!alg) return malformed("header has no \"alg\" string");
    header.alg = std::string(*alg);
    if (auto kid = string_field(obj, "kid")) {
      header.kid = std::string(*kid);
      header.has_kid = true;
    } else if (obj.at_key("kid").error() != simdjson::NO_SUCH_FIELD) {
      return malformed("header \"kid\" is not a string");
    }
    if (header.alg.size() == 4 && strncasecmp(header.alg.c_str(), "none", 4) == 0) {
      return unauthorized("JWT algorithm 'none' is not allowed");
    }
    if (std::find(config_.algorithms.begin(), config_.algorithms.end(), header.alg) ==
        config_.algorithms.end()) {
      return unauthorized(fmt::format("JWT algorithm {} is not allowed (allowed: {})",
                                      shown(header.alg), fmt::join(config_.algorithms, ", ")));
    }
    // libjwt refuses any typ but "JWT"; say so plainly instead of "signature is invalid".
    if (obj.at_key("typ").error() != simdjson::NO_SUCH_FIELD) {
      const auto typ = string_field(obj, "typ");
      if (!typ || typ->size() != 3 || strncasecmp(typ->data(), "JWT", 3) != 0) {
        return unauthorized(fmt::format("JWT type {} is not supported (only JWT)",
                                        typ ? shown(*typ) : std::string("(not a string)")));
      }
    }
    // RFC 7515 §4.1.11: extensions marked critical must be understood; none are.
    if (obj.at_key("crit").error() != simdjson::NO_SUCH_FIELD) {
      return unauthorized("JWT has critical header parameters (crit), which are not supported");
    }
  }

  // 3. The one key this alg may be verified with.
  std::shared_ptr<const Keys> keys;
  {
    std::lock_guard lock(mu_);
    keys = keys_;
  }
  std::string_view key;
  const jwt_alg_t expected_alg = jwt_str_alg(header.alg.c_str());
  if (header.alg == "HS256") {
    // Only ever the configured secret: never public key bytes (RS256 → HS256 confusion).
    if (header.has_kid) {
      for (const auto& k : keys->jwks) {
        if (k.kid == header.kid) {
          return unauthorized(fmt::format(
              "JWT algorithm HS256 does not match the key ({} expected)", key_type_alg(k.type)));
        }
      }
    }
    if (config_.secret.empty()) return unauthorized("no HS256 secret configured");
    key = config_.secret;
  } else {
    const KeyType want = header.alg == "RS256" ? KeyType::rsa : KeyType::ec_p256;
    const auto mismatch = [&](const PublicKey& k) {
      const std::string_view key_alg = k.alg.empty() ? key_type_alg(k.type) : k.alg;
      return unauthorized(fmt::format("JWT algorithm {} does not match the key ({} expected)",
                                      header.alg, key_alg));
    };
    const auto usable = [&](const PublicKey& k) {
      return k.type == want && (k.alg.empty() || k.alg == header.alg);
    };
    const PublicKey* chosen = nullptr;
    if (header.has_kid && !keys->jwks.empty()) {
      const PublicKey* same_kid = nullptr;
      for (const auto& k : keys->jwks) {
        if (k.kid != header.kid) continue;
        if (usable(k)) {
          chosen = &k;
          break;
        }
        if (same_kid == nullptr) same_kid = &k;
      }
      if (chosen == nullptr && same_kid != nullptr) return mismatch(*same_kid);
      if (chosen == nullptr && !keys->pem_file) {
        return unauthorized(fmt::format("JWT key id \"{}\" is not known", shown(header.kid)));
      }
    }
    if (chosen == nullptr && keys->pem_file) {
      if (!usable(*keys->pem_file)) return mismatch(*keys->pem_file);
      chosen = &*keys->pem_file;
    }
    if (chosen == nullptr) {
      size_t count = 0;
      const PublicKey* other_type = nullptr;
      for (const auto& k : keys->jwks) {
        if (usable(k)) {
          chosen = &k;
          ++count;
        } else if (other_type == nullptr) {
          other_type = &k;
        }
      }
      if (count > 1) {
        return unauthorized(
            fmt::format("JWT has no kid and the JWKS holds {} {} keys; a kid is required", count,
                        want == KeyType::rsa ? "RSA" : "EC P-256"));
      }
      if (count == 0 && other_type != nullptr) return mismatch(*other_type);
      if (count == 0) {
        return unauthorized(fmt::format("no {} public key configured", header.alg));
      }
    }
    key = chosen->pem;
  }

  // 4. Payload must be a JSON object (claims are read only after the signature checks out).
  simdjson::dom::object claims;
  if (!parse_object(parser, body_json, claims)) {
    return malformed("payload is not a JSON object with distinct keys");
  }

  // 5. Signature. For HS256, check the MAC in constant time first: libjwt compares with
  // strcmp, whose timing must never be observable on a forged signature.
  const std::string token_str(token);
  if (header.alg == "HS256") {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    const std::string_view signing_input = token.substr(0, dot2);
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(),
             mac, &mac_len) == nullptr ||
        signature.size() != mac_len || CRYPTO_memcmp(mac, signature.data(), mac_len) != 0) {
      return unauthorized("JWT signature is invalid");
    }
  }
  jwt_t* jwt = nullptr;
  const int rc =
      jwt_decode(&jwt, token_str.c_str(), reinterpret_cast<const unsigned char*>(key.data()),
                 static_cast<int>(key.size()));
  if (rc != 0 || jwt == nullptr) {
    if (jwt != nullptr) jwt_free(jwt);
    // An HS256 MAC was already found valid above: libjwt refused the content instead (its JSON
    // parser rejects e.g. integers beyond int64 or "\u0000" in strings).
    if (header.alg == "HS256") return malformed("libjwt cannot decode the header or payload");
    return unauthorized("JWT signature is invalid");
  }
  const jwt_alg_t verified_alg = jwt_get_alg(jwt);
  jwt_free(jwt);
  if (verified_alg != expected_alg) {
    return unauthorized(fmt::format("JWT algorithm {} does not match the verified algorithm {}",
                                    header.alg,
                                    jwt_alg_str(verified_alg) ? jwt_alg_str(verified_alg) : "?"));
  }

  // 6. Claims.
  const int64_t skew = std::max<int64_t>(0, config_.clock_skew.count() / 1000);
  JwtIdentity identity;
  simdjson::dom::element exp_value;
  if (claims.at_key("exp").get(exp_value)) return unauthorized("JWT has no exp claim");
  const auto exp = numeric_date(exp_value, /*round_up=*/false);
  if (!exp) return unauthorized("JWT exp claim is not a number");
  if (now_unix > sat_add(*exp, skew)) {
    return unauthorized(fmt::format("JWT expired at {}", iso_time(*exp)));
  }
  identity.expires_unix = *exp;
  simdjson::dom::element nbf_value;
  if (!claims.at_key("nbf").get(nbf_value)) {
    const auto nbf = numeric_date(nbf_value, /*round_up=*/true);
    if (!nbf) return unauthorized("JWT nbf claim is not a number");
    if (sat_add(now_unix, skew) < *nbf) {
      return unauthorized(fmt::format("JWT is not valid yet (nbf {})", iso_time(*nbf)));
    }
  }
  if (!config_.issuer.empty()) {
    const auto iss = string_field(claims, "iss");
    if (!iss) return unauthorized("JWT has no iss claim");
    if (*iss != config_.issuer) {
      return unauthorized(fmt::format("JWT issuer \"{}\" is not accepted", shown(*iss)));
    }
  }
  if (!config_.audience.empty()) {
    simdjson::dom::element aud;
    if (claims.at_key("aud").get(aud)) return unauthorized("JWT has no aud claim");
    bool found = false;
    std::string_view s;
    simdjson::dom::array list;
    if (!aud.get_string().get(s)) {
      found = s == config_.audience;
    } else if (!aud.get_array().get(list)) {
      for (auto item : list) {
        if (!item.get_string().get(s) && s == config_.audience) found = true;
      }
    } else {
      return unauthorized("JWT aud claim is neither a string nor an array");
    }
    if (!found) {
      return unauthorized(fmt::format("JWT audience does not include \"{}\"", config_.audience));
    }
  }
  simdjson::dom::element value;
  if (!claims.at_key("sub").get(value)) {
    std::string_view sub;
    if (value.get_string().get(sub)) return unauthorized("JWT sub claim is not a string");
    identity.subject = std::string(sub);
  }
  if (!config_.tenant_claim.empty() && !claims.at_key(config_.tenant_claim).get(value)) {
    std::string_view tenant;
    if (value.get_string().get(tenant)) {
      return unauthorized(fmt::format("JWT {} claim is not a string", shown(config_.tenant_claim)));
    }
    identity.tenant = std::string(tenant);
  }
  return identity;
}

bool looks_like_jwt(std::string_view s) {
  size_t dots = 0;
  size_t segment = 0;  // length of the current segment
  for (char c : s) {
    if (c == '.') {
      if (segment == 0 || ++dots > 2) return false;  // header and payload must be non-empty
      segment = 0;
    } else if (is_b64url_char(c)) {
      ++segment;
    } else {
      return false;
    }
  }
  return dots == 2;  // the signature may be empty (alg "none": rejected later, but a JWT)
}

}  // namespace sluice::governance
