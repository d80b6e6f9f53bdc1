// Access log: one JSON line per request, written by a background thread. Each worker thread
// copies its lines into its own single-producer byte ring (no allocation, no lock, no I/O);
// the writer drains every ring every 2 ms in large writes. When a ring is full (the disk or
// pipe cannot keep up) the line is dropped and counted.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"

namespace sluice::observe {

class AccessLog {
 public:
  /// Opens the destination ("stdout", "stderr" or a file, appended) and starts the writer.
  /// Throws std::runtime_error naming the file when it cannot be opened.
  explicit AccessLog(const config::AccessLogConfig& config);
  ~AccessLog();  // writes what is queued, then stops
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  const config::AccessLogConfig& config() const { return config_; }

  /// Whether this request's line is kept: always for errors, else with probability `sample`.
  bool sampled(bool error) const;

  /// Queues one line (without the newline). Never blocks; drops when the ring is full.
  void write(std::string_view line);

  /// Waits until every line queued so far is written (tests, shutdown).
  void flush();

  uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  uint64_t dropped() const;

 private:
  struct Ring;
  Ring* ring_for_this_thread();
  void run();
  size_t drain();

  config::AccessLogConfig config_;
  uint64_t id_;  // distinguishes instances in the per-thread ring cache
  FILE* out_ = nullptr;
  bool owns_out_ = false;
  mutable std::mutex rings_mu_;
  std::vector<std::unique_ptr<Ring>> rings_;
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> flush_requests_{0};
  std::atomic<uint64_t> flushes_done_{0};
  std::atomic<bool> stop_{false};
  std::thread writer_;
};

}  // namespace sluice::observe
