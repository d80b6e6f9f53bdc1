// AccessLog: per-thread SPSC rings drained by one writer thread.
#include "observe/access_log.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <stdexcept>

namespace sluice::observe {

namespace {
std::atomic<uint64_t> g_next_id{1};
}  // namespace

// Single producer (one worker thread), single consumer (the writer): a byte ring holding
// whole lines, each followed by '\n'. Positions only grow; index = position & mask.
struct AccessLog::Ring {
  explicit Ring(size_t capacity) : bytes(new char[capacity]), mask(capacity - 1) {}
  std::unique_ptr<char[]> bytes;
  size_t mask;
  alignas(64) std::atomic<uint64_t> head{0};  // producer: end of the last complete line
  alignas(64) std::atomic<uint64_t> tail{0};  // consumer: first byte not yet written
  alignas(64) std::atomic<uint64_t> dropped{0};
};

namespace {
// `queue` lines of ~256 bytes, rounded up to a power of two.
size_t ring_bytes(size_t lines) {
  size_t want = std::max<size_t>(lines, 16) * 256;
  size_t cap = 4096;
  while (cap < want) cap <<= 1;
  return cap;
}
}  // namespace

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
  auto ring = std::make_unique<Ring>(ring_bytes(config_.queue));
  Ring* raw = ring.get();
  {
    std::lock_guard lock(rings_mu_);
    rings_.push_back(std::move(ring));
  }
  if (cache.size() >= 8) cache.erase(cache.begin());  // ids are never reused: stale entries
  cache.emplace_back(id_, raw);
  return raw;
}

void AccessLog::write(std::string_view line) {
  Ring* r = ring_for_this_thread();
  const size_t capacity = r->mask + 1;
  const size_t need = line.size() + 1;
  uint64_t head = r->head.load(std::memory_order_relaxed);
  uint64_t tail = r->tail.load(std::memory_order_acquire);
  if (need > capacity - (head - tail)) {
    r->dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  size_t at = head & r->mask;
  size_t first = std::min(line.size(), capacity - at);
  std::memcpy(r->bytes.get() + at, line.data(), first);
  std::memcpy(r->bytes.get(), line.data() + first, line.size() - first);
  r->bytes[(head + line.size()) & r->mask] = '\n';
  r->head.store(head + need, std::memory_order_release);
}

size_t AccessLog::drain() {
  std::vector<Ring*> rings;
  {
    std::lock_guard lock(rings_mu_);
    rings.reserve(rings_.size());
    for (auto& r : rings_) rings.push_back(r.get());
  }
  size_t bytes = 0;
  uint64_t lines = 0;
  for (Ring* r : rings) {
    uint64_t tail = r->tail.load(std::memory_order_relaxed);
    uint64_t head = r->head.load(std::memory_order_acquire);
    if (head == tail) continue;
    const size_t capacity = r->mask + 1;
    size_t at = tail & r->mask;
    size_t n = head - tail;
    size_t first = std::min(n, capacity - at);
    const char* a = r->bytes.get() + at;
    const char* b = r->bytes.get();
    std::fwrite(a, 1, first, out_);
    lines += static_cast<uint64_t>(std::count(a, a + first, '\n'));
    if (n > first) {
      std::fwrite(b, 1, n - first, out_);
      lines += static_cast<uint64_t>(std::count(b, b + (n - first), '\n'));
    }
    r->tail.store(head, std::memory_order_release);
    bytes += n;
  }
  if (bytes > 0) {
    std::fflush(out_);
    written_.fetch_add(lines, std::memory_order_relaxed);
  }
  return bytes;
}

void AccessLog::run() {
  while (!stop_.load(std::memory_order_relaxed)) {
    uint64_t asked = flush_requests_.load(std::memory_order_acquire);
    drain();
    flushes_done_.store(asked, std::memory_order_release);
    // Workers never wake the writer (that would be a syscall each): it looks every 2 ms,
    // which batches a busy gateway's lines into a few large writes.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
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
  std::lock_guard lock(rings_mu_);
  uint64_t total = 0;
  for (const auto& r : rings_) total += r->dropped.load(std::memory_order_relaxed);
  return total;
}

}  // namespace sluice::observe
