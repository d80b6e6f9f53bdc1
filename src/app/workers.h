// Worker threads: one io_context + one Server per thread, all bound to the same address with
// SO_REUSEPORT; signal handling and graceful drain shared by sluice and sluice-mock.
#pragma once

#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/server.h"

namespace sluice::app {

struct Worker {
  // One thread per io_context and sockets touched only by it: no reactor locking needed.
  boost::asio::io_context io{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  std::unique_ptr<http::Server> server;
  std::shared_ptr<void> state;  // per-worker state the handler uses (e.g. the upstream pool)
};

/// Builds a handler for one worker; called once per worker on the main thread.
using HandlerFactory = std::function<http::Handler(Worker& worker)>;

/// A second, low-traffic listener (the operations endpoints) served by the first worker alone,
/// bound without SO_REUSEPORT: a second process on the same address fails to start instead of
/// silently sharing the port.
struct ExtraListener {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string banner = "sluice admin";  // printed as "<banner> listening on http://host:port"
  http::ServerLimits limits;
  HandlerFactory factory;  // called once, with the first worker, after its main handler
};

struct RunOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  int threads = 1;
  http::ServerLimits limits;
  std::chrono::milliseconds drain_timeout{15'000};
  std::string banner = "sluice";  // printed as "<banner>: listening on http://host:port"
  std::function<void()> on_reload;  // SIGHUP (main thread); none: logged and ignored
  std::function<void()> on_tick;    // every `tick` on the main thread (file watch, cleanup)
  /// Builds a worker's HeadCheck (after its handler, so worker.state is set); none: no check.
  std::function<http::HeadCheck(Worker& worker)> head_check;
  std::chrono::milliseconds tick{1000};
  std::optional<ExtraListener> extra;  // printed on the line after the main one
};

/// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and so in every thread it starts
/// afterwards: call it before starting any) and ignores SIGPIPE. The main thread takes them
/// in serve(). Returns the set.
sigset_t block_control_signals();

/// Binds (the extra listener too), prints the banner line (then the extra listener's), serves
/// until SIGTERM/SIGINT, drains (in-flight requests and streams finish, up to drain_timeout)
/// and returns 0. Throws on bind failure.
int serve(const RunOptions& options, const HandlerFactory& factory,
          http::ServerShared& shared);

}  // namespace sluice::app
