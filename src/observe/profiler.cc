// /debug/pprof endpoints: CPU profiles through gperftools' libprofiler (SIGPROF sampling of the
// whole process into a temporary file) and heap samples from whatever main() installed.
#include "observe/profiler.h"

#include <gperftools/profiler.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace sluice::observe {

namespace asio = boost::asio;

namespace {

// libprofiler has one collector per process: this flag makes a second request fail fast
// instead of silently getting a false from ProfilerStart after waiting its whole duration.
std::atomic<bool> g_cpu_profiling{false};
std::atomic<HeapSampleSource> g_heap_source{nullptr};

std::string temp_profile_path() {
  const char* dir = std::getenv("TMPDIR");
  std::string path = (dir != nullptr && *dir != '\0') ? dir : "/tmp";
  path += "/sluice-cpu-XXXXXX.prof";
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return std::move(out).str();
}

asio::awaitable<void> send_json_error(http::Responder& responder, int status,
                                      std::string_view message, std::string_view type,
                                      std::string_view code) {
  std::string body = openai_error_body(message, type, "", code);
  co_await responder.send(status, "application/json", body);
}

asio::awaitable<void> serve_cpu_profile(http::Request& request, http::Responder& responder) {
  Result<int> seconds = parse_profile_seconds(request.head->query);
  if (!seconds) {
    co_await responder.send_error(seconds.error());
    co_return;
  }
  bool idle = false;
  if (!g_cpu_profiling.compare_exchange_strong(idle, true)) {
    co_await send_json_error(responder, 409,
                             "A CPU profile is already being taken; only one runs at a time. "
                             "Retry when it has finished.",
                             "invalid_request_error", "profile_in_progress");
    co_return;
  }
  struct Release {
    ~Release() { g_cpu_profiling.store(false); }
  } release;

  // mkstemps reserves a unique name; ProfilerStart reopens (truncates) it.
  std::string path = temp_profile_path();
  int fd = mkstemps(path.data(), 5);
  if (fd < 0) {
    const Error error =
        make_error(Errc::internal, "Could not create a temporary file for the CPU profile.");
    co_await responder.send_error(error);
    co_return;
  }
  ::close(fd);
  struct Unlink {
    const std::string& path;
    ~Unlink() { ::unlink(path.c_str()); }
  } unlink_after{path};

  ProfilerOptions options{};
  if (!ProfilerStartWithOptions(path.c_str(), &options)) {
    // Already running outside this endpoint (CPUPROFILE set at start-up) or the file failed.
    co_await send_json_error(responder, 409,
                             "The CPU profiler could not start: it is already running (is "
                             "CPUPROFILE set in the environment?).",
                             "invalid_request_error", "profile_in_progress");
    co_return;
  }
  spdlog::info("pprof: CPU profile for {} s started", seconds.value());
  // Wait on a timer so the worker keeps serving; a client that leaves ends the profile early.
  asio::steady_timer timer(co_await asio::this_coro::executor,
                           std::chrono::seconds(seconds.value()));
  responder.watch_client([&timer] { timer.cancel(); });
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  ProfilerStop();
  co_await responder.stop_watching();
  if (responder.client_gone()) {
    spdlog::info("pprof: client left; CPU profile discarded");
    co_return;
  }
  std::string profile = read_file(path);
  if (profile.empty()) {
    {
      const Error error = make_error(Errc::internal, "The CPU profile came out empty.");
      co_await responder.send_error(error);
    }
    co_return;
  }
  co_await responder.send(200, "application/octet-stream", profile,
                          "Content-Disposition: attachment; filename=\"cpu.prof\"\r\n");
}

asio::awaitable<void> serve_heap_profile(http::Responder& responder) {
  HeapSampleSource source = g_heap_source.load();
  if (source == nullptr) {
    co_await send_json_error(responder, 501,
                             "Heap profiles need tcmalloc, and this binary was built with another "
                             "allocator; rebuild with -DSLUICE_ALLOCATOR=tcmalloc.",
                             "server_error", "not_implemented");
    co_return;
  }
  std::string sample = source();
  co_await responder.send(200, "application/octet-stream", sample,
                          "Content-Disposition: attachment; filename=\"heap.prof\"\r\n");
}

}  // namespace

void set_heap_sample_source(HeapSampleSource source) { g_heap_source.store(source); }

Result<int> parse_profile_seconds(std::string_view query) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) != "seconds") continue;
    std::string_view value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    int seconds = 0;
    auto [end, err] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (value.empty() || err != std::errc{} || end != value.data() + value.size() || seconds < 1 ||
        seconds > kMaxProfileSeconds) {
      return make_error(Errc::bad_request,
                        "seconds must be an integer from 1 to " +
                            std::to_string(kMaxProfileSeconds) + ".",
                        "seconds");
    }
    return seconds;
  }
  return kDefaultProfileSeconds;
}

asio::awaitable<void> serve_pprof(http::Request& request, http::Responder& responder) {
  std::string_view path = request.path();
  if (path == "/debug/pprof/profile") co_return co_await serve_cpu_profile(request, responder);
  if (path == "/debug/pprof/heap") co_return co_await serve_heap_profile(responder);
  std::string message = "Unknown profile " + std::string(path) +
                        "; available: /debug/pprof/profile?seconds=N, /debug/pprof/heap.";
  {
    const Error error = make_error(Errc::not_found, message);
    co_await responder.send_error(error);
  }
}

}  // namespace sluice::observe
