// AccessLog: per-thread SPSC rings drained by one writer thread.
#include "observe/access_log.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <stdexcept>

namespace sluice::observe {

namespace {
std::atomic<uint64_t> g_next_id{1};
}  // namespace

// Single producer (one worker thread), single consumer (the writer).
struct AccessLog::Ring {
  explicit Ring(size_t capacity) : slots(capacity) {}
  std::vector<std::string> slots;
  alignas(64) std::atomic<uint64_t> head{0};  // next slot the producer fills
  alignas(64) std::atomic<uint64_t> tail{0};  // next slot the consumer reads
  alignas(64) std::atomic<uint64_t> dropped{0};
};

AccessLog::AccessLog(const config::AccessLogConfig& config)
    : config_(config), id_(g_next_id.fetch_add(1)) {
  if (config_.path == "stdout") {
    out_ = stdout;
  } else if (config_.path == "stderr") {
    out_ = stderr;
  } else {
    out_ = std::fopen(config_.path.c_str(), "a");
    if (out_ == nullptr) {
      throw std::runtime_error("cannot open access log " + config_.path + ": " +
                               std::strerror(errno));
    }
    owns_out_ = true;
    std::setvbuf(out_, nullptr, _IOFBF, 1 << 16);
  }
  writer_ = std::thread([this] { run(); });
}

AccessLog::~AccessLog() {
  stop_.store(true);
  writer_.join();
  drain();
  std::fflush(out_);
  if (owns_out_) std::fclose(out_);
}

bool AccessLog::sampled(bool error) const {
  if (error || config_.sample >= 1.0) return true;
  if (config_.sample <= 0.0) return false;
  thread_local std::minstd_rand rng{std::random_device{}()};
  return static_cast<double>(rng() - rng.min()) / static_cast<double>(rng.max() - rng.min()) <
         config_.sample;
}

AccessLog::Ring* AccessLog::ring_for_this_thread() {
  // A few (log id → ring) entries: old and new logs live side by side across a reload.
  thread_local std::vector<std::pair<uint64_t, Ring*>> cache;
  for (const auto& [id, ring] : cache) {
    if (id == id_) return ring;
  }
  auto ring = std::make_unique<Ring>(config_.queue);
  Ring* raw = ring.get();
  {
    std::lock_guard lock(rings_mu_);
    rings_.push_back(std::move(ring));
  }
  if (cache.size() >= 8) cache.erase(cache.begin());  // ids are never reused: stale entries
  cache.emplace_back(id_, raw);
  return raw;
}

void AccessLog::write(std::string line) {
  Ring* r = ring_for_this_thread();
  uint64_t head = r->head.load(std::memory_order_relaxed);
  uint64_t tail = r->tail.load(std::memory_order_acquire);
  if (head - tail >= r->slots.size()) {
    r->dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  r->slots[head % r->slots.size()] = std::move(line);
  r->head.store(head + 1, std::memory_order_release);
}

size_t AccessLog::drain() {
  std::vector<Ring*> rings;
  {
    std::lock_guard lock(rings_mu_);
    rings.reserve(rings_.size());
    for (auto& r : rings_) rings.push_back(r.get());
  }
  size_t n = 0;
  for (Ring* r : rings) {
    uint64_t tail = r->tail.load(std::memory_order_relaxed);
    uint64_t head = r->head.load(std::memory_order_acquire);
    for (; tail != head; ++tail) {
      std::string& line = r->slots[tail % r->slots.size()];
      line += '\n';
      std::fwrite(line.data(), 1, line.size(), out_);
      std::string().swap(line);
      ++n;
    }
    r->tail.store(tail, std::memory_order_release);
  }
  if (n > 0) {
    std::fflush(out_);
    written_.fetch_add(n, std::memory_order_relaxed);
  }
  return n;
}

void AccessLog::run() {
  while (!stop_.load(std::memory_order_relaxed)) {
    uint64_t asked = flush_requests_.load(std::memory_order_acquire);
    size_t n = drain();
    flushes_done_.store(asked, std::memory_order_release);
    // Idle: look again in 5 ms (a worker never wakes the writer: that would be a syscall).
    if (n == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void AccessLog::flush() {
  uint64_t ticket = flush_requests_.fetch_add(1) + 1;
  while (flushes_done_.load(std::memory_order_acquire) < ticket &&
         !stop_.load(std::memory_order_relaxed)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

uint64_t AccessLog::dropped() const {
  std::lock_guard lock(const_cast<std::mutex&>(rings_mu_));
  uint64_t total = 0;
  for (const auto& r : rings_) total += r->dropped.load(std::memory_order_relaxed);
  return total;
}

}  // namespace sluice::observe
