// sluice: flags → load config → run. Nothing else lives here.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "app/app.h"
#include "config/config.h"
#ifdef SLUICE_TCMALLOC
#include "observe/tcmalloc/heap_sample.h"
#endif

int main(int argc, char** argv) {
#ifdef SLUICE_TCMALLOC
  // Before anything else allocates much, so the heap profile covers start-up state too.
  sluice::observe::install_tcmalloc_heap_sampling();
#endif
  CLI::App cli{"Sluice — a fast LLM API gateway (OpenAI-compatible)"};
  std::string config_path = "config/sluice.yaml";
  bool check_only = false;
  bool version = false;
  std::string log_level;  // empty: logging.level from the config
  cli.add_option("-c,--config", config_path, "YAML configuration file")->capture_default_str();
  cli.add_flag("--check-config", check_only, "Validate the configuration and exit");
  cli.add_flag("-v,--version", version, "Print the version and exit");
  cli.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error (overrides logging.level in the config)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  CLI11_PARSE(cli, argc, argv);

  if (version) {
    std::printf("sluice %s\n", SLUICE_VERSION);
    return 0;
  }
  // Logs go to stderr: stdout carries only the "listening on" line scripts wait for.
  spdlog::set_default_logger(spdlog::stderr_color_mt("sluice"));
  if (!log_level.empty()) spdlog::set_level(spdlog::level::from_str(log_level));
  std::shared_ptr<const sluice::config::Config> config;
  try {
    config = sluice::config::load_config(config_path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice: invalid configuration: %s\n", e.what());
    return 2;
  }
  if (check_only) {
    std::printf("sluice: %s is valid (%zu active routes)\n", config_path.c_str(),
                config->routes.size());
    return 0;
  }
  int rc = 0;
  try {
    sluice::app::RunFlags flags;
    flags.log_level = log_level;
    rc = sluice::app::run_gateway(config, flags);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice: %s\n", e.what());
    rc = 1;
  }
  spdlog::shutdown();
  std::fflush(stdout);
  std::fflush(stderr);
  // Workers are stopped and joined; skip destructors of half-finished connection coroutines.
  _exit(rc);
}
