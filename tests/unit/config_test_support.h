// Helpers shared by the config loader tests: the repo root, a demo route, the ConfigError message
// of a parse or a load (error_of, load_error_of) and ScopedEnv to set or unset a variable.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "config/config.h"

namespace sluice::config::inline test {

#if defined(SLUICE_SOURCE_DIR)
inline const std::string kRepoRoot = SLUICE_SOURCE_DIR;
#elif defined(SLUICE_TESTDATA)
inline const std::string kRepoRoot = SLUICE_TESTDATA "/../..";
#else
inline const std::string kRepoRoot = ".";
#endif

inline constexpr const char* kDemoRoute =
    "routes:\n"
    "  - model: demo\n"
    "    targets:\n"
    "      - provider: demo\n";

// The ConfigError message `load` throws, or "" when it returns.
template <typename Load>
inline std::string config_error_of(Load&& load) {
  try {
    load();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// The ConfigError message parse_config throws for `yaml`, or "" when it parses.
inline std::string error_of(const std::string& yaml) {
  return config_error_of([&] { parse_config(yaml); });
}

// The ConfigError message load_config throws for the file at `path`, or "" when it loads.
inline std::string load_error_of(const std::string& path) {
  return config_error_of([&] { load_config(path); });
}

// Sets (or unsets, for nullopt) an environment variable for the scope, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value) {
      setenv(name_.c_str(), value->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace sluice::config::inline test
