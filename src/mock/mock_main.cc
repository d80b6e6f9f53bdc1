// sluice-mock entry point: flags → serve the mock handler on N workers.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "app/workers.h"
#include "mock/mock_server.h"

int main(int argc, char** argv) {
  CLI::App cli{"sluice-mock — OpenAI-compatible fake upstream for tests and benchmarks"};
  std::string listen = "127.0.0.1:0";
  int threads = 1;
  sluice::mock::MockOptions options;
  cli.add_option("--listen", listen, "host:port (port 0 = ephemeral)")->capture_default_str();
  cli.add_option("--threads", threads, "worker threads")->capture_default_str();
  cli.add_option("--latency-ms", options.latency_ms, "delay before the response head");
  cli.add_option("--ttft-ms", options.ttft_ms, "delay before the first token");
  cli.add_option("--itl-ms", options.itl_ms, "delay between tokens");
  cli.add_option("--tokens", options.tokens, "tokens per answer")->capture_default_str();
  CLI11_PARSE(cli, argc, argv);

  spdlog::set_default_logger(spdlog::stderr_color_mt("sluice-mock"));
  sluice::app::RunOptions run;
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "sluice-mock: --listen expects host:port\n");
    return 2;
  }
  run.host = listen.substr(0, colon);
  if (run.host.size() > 2 && run.host.front() == '[') run.host = run.host.substr(1, run.host.size() - 2);
  run.port = static_cast<uint16_t>(std::stoi(listen.substr(colon + 1)));
  run.threads = threads;
  run.limits.max_connections = 100'000;
  run.limits.idle_timeout = std::chrono::minutes(10);
  run.drain_timeout = std::chrono::milliseconds(1000);
  run.banner = "sluice-mock";
  sluice::http::ServerShared shared;
  sluice::mock::MockStats stats;
  int rc = 0;
  try {
    rc = sluice::app::serve(
        run, [&](sluice::app::Worker&) { return sluice::mock::make_mock_handler(options, stats); },
        shared);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice-mock: %s\n", e.what());
    rc = 1;
  }
  std::fflush(stdout);
  _exit(rc);
}
