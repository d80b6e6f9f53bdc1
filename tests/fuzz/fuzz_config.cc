// libFuzzer target for the YAML configuration loader: any input must either load or throw
// ConfigError (a message naming the YAML path); never crash, hang or throw anything else. A
// config is what an operator edits by hand and what a hot reload reads while serving.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto config = sluice::config::parse_config(text);
    if (!config) abort();
  } catch (const sluice::config::ConfigError& e) {
    if (e.what()[0] == '\0') abort();  // an error must say something
  }
  return 0;
}
