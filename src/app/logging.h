// Operational logs: spdlog to stderr, as text or one JSON object per line, level from the
// config (logging.level) unless --log-level overrides it. Access logs are separate
// (observe/access_log.h).
#pragma once

#include <string>

namespace sluice::app {

/// Sets the default logger's level and format. Safe to call again on reload.
void configure_logging(const std::string& level, bool json);

}  // namespace sluice::app
