// sluice-mock: an OpenAI-compatible fake upstream with latency and fault injection, for tests
// and benchmarks. Behaviour is documented in docs/mock.md.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>

#include "http/server.h"

namespace sluice::mock {

struct MockOptions {
  int latency_ms = 0;
  int ttft_ms = 0;
  int itl_ms = 0;
  int tokens = 16;
};

struct MockStats {
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> streams_started{0};
  std::atomic<int64_t> streams_completed{0};
  std::atomic<int64_t> cancelled{0};
  std::atomic<int64_t> active{0};
  std::mutex last_mutex;
  std::string last;  // JSON of the last /v1/* request
  std::unordered_map<std::string, size_t> script_counters;  // x-mock-script-id → requests
};

/// The request handler (one per worker; `stats` shared by all).
http::Handler make_mock_handler(const MockOptions& options, MockStats& stats);

}  // namespace sluice::mock
