// App: the only place that knows concrete types. Wires config → router → gateway handler on
// every worker (each with its own upstream pool) and runs until a shutdown signal.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"

namespace sluice::app {

/// Command-line settings that override the config file.
struct RunFlags {
  std::string log_level;  // empty: logging.level from the config
};

/// Runs the gateway until SIGTERM/SIGINT, then drains. SIGHUP or a change of the config file
/// reloads it (validated first; an invalid file is logged and the old config keeps serving).
/// Returns the process exit code.
int run_gateway(std::shared_ptr<const config::Config> config, const RunFlags& flags = {});

}  // namespace sluice::app
