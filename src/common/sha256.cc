// SHA-256 as lower-case hex: see sha256.h.
#include "common/sha256.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace sluice {

std::string sha256_hex(std::string_view data) {
  // Runs on every authenticated request: keep one fetched digest and one context per thread
  // (EVP_Digest would fetch the algorithm and allocate a context each time).
  struct Hasher {
    Hasher() : md(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx(EVP_MD_CTX_new()) {}
    ~Hasher() {
      EVP_MD_CTX_free(ctx);
      EVP_MD_free(md);
    }
    EVP_MD* md;
    EVP_MD_CTX* ctx;
  };
  thread_local Hasher hasher;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (hasher.md == nullptr || hasher.ctx == nullptr ||
      EVP_DigestInit_ex(hasher.ctx, hasher.md, nullptr) != 1 ||
      EVP_DigestUpdate(hasher.ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(hasher.ctx, digest, &len) != 1) {
    throw std::runtime_error("SHA-256 failed (OpenSSL EVP)");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

}  // namespace sluice
