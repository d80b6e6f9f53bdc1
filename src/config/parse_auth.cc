// The `auth` section: static API keys (by environment variable or SHA-256) and JWT validation.
#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include "config/sections.h"
#include "config/yaml_read.h"

namespace sluice::config::detail {
namespace {

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw ConfigError("SHA-256 is unavailable (OpenSSL EVP_Digest failed)");
  }
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// An RFC 3339 timestamp in UTC ("2026-12-31T00:00:00Z", "...+00:00", optional fraction, which
// is dropped) → Unix seconds.
int64_t read_timestamp(const YAML::Node& node, std::string_view path) {
  constexpr std::string_view kExpected =
      R"(expected an RFC 3339 UTC timestamp like "2026-12-31T00:00:00Z")";
  if (!node.IsScalar()) fail(path, fmt::format("{}, got {}", kExpected, describe(node)));
  const std::string& text = node.Scalar();
  const auto bad = [&]() { fail(path, fmt::format("{}, got {}", kExpected, quote_value(text))); };
  const auto digits = [&](size_t pos, size_t count) -> int64_t {
    if (pos + count > text.size()) bad();
    int64_t value = 0;
    for (size_t i = pos; i < pos + count; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(text[i]))) bad();
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  const auto expect = [&](size_t pos, std::string_view chars) {
    if (pos >= text.size() || chars.find(text[pos]) == std::string_view::npos) bad();
  };
  const int64_t year = digits(0, 4);
  expect(4, "-");
  const int64_t month = digits(5, 2);
  expect(7, "-");
  const int64_t day = digits(8, 2);
  expect(10, "Tt");
  const int64_t hour = digits(11, 2);
  expect(13, ":");
  const int64_t minute = digits(14, 2);
  expect(16, ":");
  const int64_t second = digits(17, 2);
  size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const size_t start = pos;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) ++pos;
    if (pos == start) bad();
  }
  const std::string_view zone = std::string_view(text).substr(std::min(pos, text.size()));
  if (zone != "Z" && zone != "z" && zone != "+00:00") {
    if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
      fail(path, fmt::format("must be in UTC (Z or +00:00), got {}", quote_value(text)));
    }
    bad();
  }
  static constexpr int kDaysInMonth[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  const bool valid_day = month >= 1 && month <= 12 && day >= 1 &&
                         day <= kDaysInMonth[month - 1] + (month == 2 && leap ? 1 : 0);
  if (!valid_day || hour > 23 || minute > 59 || second > 60) {
    fail(path, fmt::format("invalid date or time {}", quote_value(text)));
  }
  const int64_t unix_seconds =
      days_from_civil(year, month, day) * 86'400 + hour * 3'600 + minute * 60 + second;
  if (unix_seconds <= 0) fail(path, "must be after 1970-01-01T00:00:00Z");
  return unix_seconds;
}

bool is_hex64(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c));
         });
}

ApiKeyConfig parse_api_key(const YAML::Node& node, const std::string& path, bool auth_enabled) {
  if (!node.IsMap()) fail(path, fmt::format("expected a map, got {}", describe(node)));
  const Section s(node, path, "auth.keys[]");
  // Checked before anything else, and the value is never echoed.
  if (s.find("key") != nullptr) {
    fail(s.path("key"), "inline secrets are not allowed; use key_env or key_sha256");
  }
  ApiKeyConfig key;
  const auto* name = s.find("name");
  if (name == nullptr) fail(s.path("name"), "required");
  key.name = read_label(*name, s.path("name"));

  const auto* key_env = s.find("key_env");
  const auto* key_sha256 = s.find("key_sha256");
  if (key_env == nullptr && key_sha256 == nullptr) {
    fail(path, "key_env or key_sha256 is required");
  }
  if (key_env != nullptr && key_sha256 != nullptr) {
    fail(s.path("key_sha256"), "cannot be used together with key_env (set exactly one)");
  }
  if (key_env != nullptr) {
    key.key_env = read_env_name(*key_env, s.path("key_env"));
    // A disabled gateway never checks keys, so it does not need their secrets either.
    if (auth_enabled) {
      const std::optional<std::string> secret = secret_env_value(key.key_env, s.path("key_env"));
      if (!secret) {
        fail(s.path("key_env"), fmt::format("environment variable {} is not set", key.key_env));
      }
      key.key_sha256 = sha256_hex(*secret);
    }
  } else {
    const std::string hash = read_string(*key_sha256, s.path("key_sha256"));
    // Not echoed: the secret itself may have been pasted here by mistake.
    if (!is_hex64(hash)) {
      fail(s.path("key_sha256"),
           "must be the SHA-256 of the key as 64 hexadecimal characters (put the key itself in "
           "an environment variable and use key_env)");
    }
    key.key_sha256 = lower(hash);
  }

  if (const auto* n = s.find("tenant")) {
    key.tenant = read_label(*n, s.path("tenant"));
    if (key.tenant == "*") {
      fail(s.path("tenant"), "\"*\" is reserved (rate_limits.per_tenant uses it for each tenant)");
    }
  }
  if (const auto* n = s.find("models")) {
    const std::string models_path = s.path("models");
    if (!n->IsNull()) {
      if (!n->IsSequence()) {
        fail(models_path, fmt::format("expected a sequence, got {}", describe(*n)));
      }
      for (size_t j = 0; j < n->size(); ++j) {
        const std::string entry_path = index_path(models_path, j);
        std::string model = read_label((*n)[j], entry_path);
        const auto first = std::find(key.models.begin(), key.models.end(), model);
        if (first != key.models.end()) {
          fail(entry_path, fmt::format("duplicate model {} (first at {})", quote_value(model),
                                       index_path(models_path, first - key.models.begin())));
        }
        key.models.push_back(std::move(model));
      }
    }
  }
  if (const auto* n = s.find("limits")) {
    key.limits = parse_limits(*n, s.path("limits"), "auth.keys[].limits");
  }
  if (const auto* n = s.find("budget")) {
    key.budget = parse_budget(*n, s.path("budget"), "auth.keys[].budget");
  }
  if (const auto* n = s.find("expires")) key.expires_unix = read_timestamp(*n, s.path("expires"));
  return key;
}

void parse_jwt(const YAML::Node& node, const std::string& path, bool auth_enabled,
               const std::string& base_dir, JwtConfig& jwt) {
  const Section s(node, path, "auth.jwt");
  if (s.find("secret") != nullptr) {
    fail(s.path("secret"), "inline secrets are not allowed; use secret_env");
  }
  if (const auto* n = s.find("enabled")) jwt.enabled = read_bool(*n, s.path("enabled"));

  const auto* algorithms = s.find("algorithms");
  if (algorithms != nullptr && !algorithms->IsNull()) {
    const std::string algorithms_path = s.path("algorithms");
    if (!algorithms->IsSequence()) {
      fail(algorithms_path, fmt::format("expected a sequence, got {}", describe(*algorithms)));
    }
    for (size_t j = 0; j < algorithms->size(); ++j) {
      const std::string entry_path = index_path(algorithms_path, j);
      std::string algorithm = read_string((*algorithms)[j], entry_path);
      if (algorithm != "HS256" && algorithm != "RS256" && algorithm != "ES256") {
        fail(entry_path, fmt::format("unknown algorithm {} (expected HS256, RS256, ES256)",
                                     quote_value(algorithm)));
      }
      const auto first = std::find(jwt.algorithms.begin(), jwt.algorithms.end(), algorithm);
      if (first != jwt.algorithms.end()) {
        fail(entry_path,
             fmt::format("duplicate algorithm {} (first at {})", quote_value(algorithm),
                         index_path(algorithms_path, first - jwt.algorithms.begin())));
      }
      jwt.algorithms.push_back(std::move(algorithm));
    }
  }
  const auto uses = [&](std::string_view algorithm) {
    return std::find(jwt.algorithms.begin(), jwt.algorithms.end(), algorithm) !=
           jwt.algorithms.end();
  };

  if (const auto* n = s.find("secret_env")) {
    jwt.secret_env = read_env_name(*n, s.path("secret_env"));
  }
  if (const auto* n = s.find("public_key_file")) {
    const std::string file = read_string(*n, s.path("public_key_file"));
    if (!file.empty()) {
      jwt.public_key_file = resolve_path(file, base_dir);
      check_readable_file(jwt.public_key_file, s.path("public_key_file"));
    }
  }
  if (const auto* n = s.find("jwks_file")) {
    const std::string file = read_string(*n, s.path("jwks_file"));
    if (!file.empty()) {
      jwt.jwks_file = resolve_path(file, base_dir);
      check_readable_file(jwt.jwks_file, s.path("jwks_file"));
    }
  }
  if (const auto* n = s.find("issuer")) jwt.issuer = read_string(*n, s.path("issuer"));
  if (const auto* n = s.find("audience")) jwt.audience = read_string(*n, s.path("audience"));
  if (const auto* n = s.find("clock_skew_ms")) {
    jwt.clock_skew = read_millis_or_zero(*n, s.path("clock_skew_ms"));
  }
  if (const auto* n = s.find("tenant_claim")) {
    jwt.tenant_claim = read_label(*n, s.path("tenant_claim"));
  }

  if (!jwt.enabled) return;
  if (jwt.algorithms.empty()) fail(s.path("algorithms"), "required when jwt is enabled");
  if (uses("HS256")) {
    if (jwt.secret_env.empty()) fail(s.path("secret_env"), "required when HS256 is allowed");
    if (auth_enabled) {
      const std::optional<std::string> secret =
          secret_env_value(jwt.secret_env, s.path("secret_env"));
      if (!secret) {
        fail(s.path("secret_env"),
             fmt::format("environment variable {} is not set", jwt.secret_env));
      }
      jwt.secret = *secret;
    }
  }
  if ((uses("RS256") || uses("ES256")) && jwt.public_key_file.empty() && jwt.jwks_file.empty()) {
    fail(s.path("public_key_file"),
         fmt::format("public_key_file or jwks_file is required when {} is allowed",
                     uses("RS256") ? "RS256" : "ES256"));
  }
}

}  // namespace

void parse_auth(const YAML::Node& node, const std::string& base_dir, AuthConfig& auth) {
  const Section s(node, "auth", "auth");
  if (const auto* n = s.find("enabled")) auth.enabled = read_bool(*n, s.path("enabled"));
  if (const auto* n = s.find("keys_backend")) {
    std::string backend = read_string(*n, s.path("keys_backend"));
    if (backend == "sqlite") {
      auth.keys_backend = AuthConfig::KeysBackend::sqlite;
    } else if (backend == "redis") {
      auth.keys_backend = AuthConfig::KeysBackend::redis;
    } else {
      fail(s.path("keys_backend"),
           fmt::format("unknown backend {} (expected sqlite, redis)", quote_value(backend)));
    }
  }
  if (const auto* n = s.find("keys_db")) {
    const std::string file = read_string(*n, s.path("keys_db"));
    if (has_control_chars(file)) fail(s.path("keys_db"), "contains control characters");
    if (!file.empty()) auth.keys_db = resolve_path(file, base_dir);
    if (!file.empty() && auth.keys_backend == AuthConfig::KeysBackend::redis) {
      fail(s.path("keys_db"), "not used with keys_backend: redis (created keys live in Redis)");
    }
  }
  if (const auto* n = s.find("keys")) {
    const std::string keys_path = s.path("keys");
    if (!n->IsNull()) {
      if (!n->IsSequence()) {
        fail(keys_path, fmt::format("expected a sequence, got {}", describe(*n)));
      }
      for (size_t i = 0; i < n->size(); ++i) {
        const std::string path = index_path(keys_path, i);
        ApiKeyConfig key = parse_api_key((*n)[i], path, auth.enabled);
        for (size_t k = 0; k < auth.keys.size(); ++k) {
          const ApiKeyConfig& other = auth.keys[k];
          if (other.name == key.name) {
            fail(child_path(path, "name"),
                 fmt::format("duplicate key name {}", quote_value(key.name)));
          }
          // Two names for one secret would make authentication ambiguous.
          if (!key.key_sha256.empty() && other.key_sha256 == key.key_sha256) {
            fail(child_path(path, key.key_env.empty() ? "key_sha256" : "key_env"),
                 fmt::format("same secret as {}", index_path(keys_path, k)));
          }
        }
        auth.keys.push_back(std::move(key));
      }
    }
  }
  if (const auto* n = s.find("jwt")) {
    parse_jwt(*n, s.path("jwt"), auth.enabled, base_dir, auth.jwt);
  }
}
}  // namespace sluice::config::detail
