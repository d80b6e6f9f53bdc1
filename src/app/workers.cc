// serve(): thread-per-core workers, blocked signals + sigwait on the main thread, drain.
#include "app/workers.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <stdexcept>
#include <thread>

namespace sluice::app {

namespace {
// Main-thread callbacks must never take the process down: log and carry on.
void run_guarded(const char* what, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    spdlog::error("{} failed: {}", what, e.what());
  }
}
}  // namespace

sigset_t block_control_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return signals;
}

int serve(const RunOptions& options, const HandlerFactory& factory,
          http::ServerShared& shared) {
  sigset_t signals = block_control_signals();

  int threads = options.threads > 0 ? options.threads
                                    : static_cast<int>(std::thread::hardware_concurrency());
  if (threads < 1) threads = 1;
  std::vector<std::unique_ptr<Worker>> workers;
  uint16_t port = options.port;
  for (int i = 0; i < threads; ++i) {
    auto w = std::make_unique<Worker>();
    http::Handler handler = factory(*w);
    http::HeadCheck head_check = options.head_check ? options.head_check(*w) : http::HeadCheck{};
    w->server = std::make_unique<http::Server>(w->io, options.limits, std::move(handler), shared,
                                               std::move(head_check));
    w->server->listen(options.host, port);
    port = w->server->bound_port();  // the others join the same port
    workers.push_back(std::move(w));
  }
  // The extra listener: on the first worker only, with its own connection accounting (a
  // public listener at max_connections must not lock the operator out). Bound before the
  // banner, so a taken address fails the start instead of printing "listening".
  std::unique_ptr<http::Server> extra;
  auto extra_shared = std::make_unique<http::ServerShared>();
  if (options.extra) {
    Worker& first = *workers.front();
    extra = std::make_unique<http::Server>(first.io, options.extra->limits,
                                           options.extra->factory(first), *extra_shared);
    try {
      extra->listen(options.extra->host, options.extra->port, /*reuse_port=*/false);
    } catch (const std::exception& e) {
      throw std::runtime_error(options.extra->banner + ": cannot listen on " +
                               options.extra->host + ":" +
                               std::to_string(options.extra->port) + ": " + e.what());
    }
  }
  auto announce = [](const std::string& banner, const std::string& host, unsigned bound) {
    bool v6 = host.find(':') != std::string::npos;
    std::printf("%s listening on http://%s%s%s:%u\n", banner.c_str(), v6 ? "[" : "",
                host.c_str(), v6 ? "]" : "", bound);
  };
  announce(options.banner + ":", options.host, port);
  if (extra) announce(options.extra->banner, options.extra->host, extra->bound_port());
  std::fflush(stdout);

  std::vector<std::thread> pool;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards;
  for (auto& w : workers) {
    guards.emplace_back(w->io.get_executor());
    pool.emplace_back([&io = w->io] {
      for (;;) {
        try {
          io.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("worker loop error: {}", e.what());
        }
      }
    });
  }

  for (;;) {
    timespec wait{};
    wait.tv_sec = options.tick.count() / 1000;
    wait.tv_nsec = (options.tick.count() % 1000) * 1'000'000;
    int sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig < 0) {  // timeout (EAGAIN) or EINTR
      if (options.on_tick) run_guarded("tick", options.on_tick);
      continue;
    }
    if (sig == SIGHUP) {
      if (options.on_reload) {
        run_guarded("reload", options.on_reload);
      } else {
        spdlog::info("SIGHUP received; nothing to reload");
      }
      continue;
    }
    spdlog::info("signal {} received: draining (deadline {} ms)", sig,
                 options.drain_timeout.count());
    break;
  }
  shared.draining.store(true);
  extra_shared->draining.store(true);
  for (auto& w : workers) {
    boost::asio::post(w->io, [&w] { w->server->begin_drain(); });
  }
  if (extra) boost::asio::post(workers.front()->io, [&extra] { extra->begin_drain(); });
  auto open = [&] {
    return shared.open_connections.load() + extra_shared->open_connections.load();
  };
  auto deadline = std::chrono::steady_clock::now() + options.drain_timeout;
  while (open() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  size_t left = open();
  if (left > 0) spdlog::warn("drain deadline passed; closing {} connections", left);
  for (auto& w : workers) w->io.stop();
  for (auto& t : pool) t.join();
  guards.clear();
  // The workers are left to process exit on purpose: destroying an io_context with suspended
  // connection coroutines (past the drain deadline) would run their frames' destructors
  // against already-destroyed servers. Callers exit right after serve() returns.
  for (auto& w : workers) (void)w.release();
  (void)extra.release();
  (void)extra_shared.release();
  return 0;
}

}  // namespace sluice::app
