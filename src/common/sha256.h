// SHA-256 as lower-case hex (OpenSSL EVP), for API key hashes and response cache keys.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

/// Lower-case hex SHA-256 of `data`. Throws std::runtime_error if OpenSSL fails.
std::string sha256_hex(std::string_view data);

}  // namespace sluice
