// App: the only place that knows concrete types. Wires config → router → gateway handler on
// every worker (each with its own upstream pool) and runs until a shutdown signal.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"

namespace sluice::app {

/// Runs the gateway until SIGTERM/SIGINT, then drains. Returns the process exit code.
int run_gateway(std::shared_ptr<const config::Config> config);

}  // namespace sluice::app
