// Metrics: a process-wide registry of Prometheus series whose values live in per-thread shards.
// Registration (a mutex) happens once per series and its handle is cached by the caller;
// recording on the hot path is a relaxed load + store into the calling thread's own shard: no
// lock, no cache line shared between threads. A scrape sums every shard.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::observe {

/// Index of a series' first cell in every shard. 0 is a sink that is never rendered (used when
/// the registry is full, or by handles that were never registered).
using Cell = uint32_t;

struct Histogram {
  Cell base = 0;                          // buckets..., +Inf, sum
  const std::vector<uint64_t>* bounds = nullptr;  // upper bounds in recorded units
};

namespace detail {
struct Shard;
Shard* make_shard();
// constinit: no dynamic initialisation, so no TLS wrapper call per access (and none that
// UBSan, with GCC 12, sees as a load through a null pointer).
extern thread_local constinit Shard* tls_shard;
std::atomic<uint64_t>* cells(Shard* shard);

inline std::atomic<uint64_t>& cell(Cell c) {
  Shard* s = tls_shard;
  if (s == nullptr) s = make_shard();
  return cells(s)[c];
}
}  // namespace detail

/// Adds `n` to a counter (or a gauge; gauges wrap through two's complement, so inc/dec pairs
/// on different threads still sum to the right value).
inline void add(Cell c, uint64_t n = 1) {
  auto& v = detail::cell(c);
  v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline void sub(Cell c, uint64_t n = 1) { add(c, static_cast<uint64_t>(0) - n); }

/// Records one sample (in the histogram's recorded unit, e.g. microseconds or tokens).
/// Records `count` observations of `value` at once (the sum saturates).
inline void observe_n(const Histogram& h, uint64_t value, uint64_t count) {
  if (h.bounds == nullptr || count == 0) return;
  size_t i = 0;
  const auto& b = *h.bounds;
  while (i < b.size() && value > b[i]) ++i;
  add(h.base + static_cast<Cell>(i), count);
  uint64_t sum = 0;
  if (__builtin_mul_overflow(value, count, &sum)) sum = UINT64_MAX;
  add(h.base + static_cast<Cell>(b.size() + 1), sum);
}

inline void observe(const Histogram& h, uint64_t value) { observe_n(h, value, 1); }

/// Holds a gauge up by one for its lifetime (so cancellation can never leave it drifted).
class GaugeHold {
 public:
  GaugeHold() = default;
  explicit GaugeHold(Cell c) : cell_(c) { add(c); }
  GaugeHold(const GaugeHold&) = delete;
  GaugeHold& operator=(const GaugeHold&) = delete;
  ~GaugeHold() { release(); }
  void hold(Cell c) {
    release();
    cell_ = c;
    add(c);
  }
  void release() {
    if (cell_ != 0) sub(cell_);
    cell_ = 0;
  }

 private:
  Cell cell_ = 0;
};

enum class Type { counter, gauge, histogram };

class Registry {
 public:
  static Registry& instance();

  /// Finds or creates a series. `labels` is rendered Prometheus label text without braces
  /// (`a="x",b="y"`; build it with label()). Thread-safe; cache the handle.
  Cell counter(std::string_view family, std::string_view help, std::string_view labels = {});
  Cell gauge(std::string_view family, std::string_view help, std::string_view labels = {});
  /// `bounds` in recorded units; exported values are recorded / `divisor` (1e6 for
  /// microseconds exported as seconds).
  Histogram histogram(std::string_view family, std::string_view help, std::string_view labels,
                      std::span<const uint64_t> bounds, double divisor = 1.0);

  /// A collector appends whole families computed at scrape time (e.g. per-target breaker
  /// state). Replaces an earlier collector of the same name.
  void set_collector(const std::string& name, std::function<void(std::string&)> fn);

  /// The Prometheus text exposition (format 0.0.4) of every series and collector.
  std::string render() const;

  /// Current value of one series summed over shards (tests, admin views).
  uint64_t value(Cell c) const;

 private:
  Registry();
  struct Family;
  struct Series;
  Cell add_series(std::string_view family, std::string_view help, Type type,
                  std::string_view labels, std::span<const uint64_t> bounds, double divisor,
                  const std::vector<uint64_t>** bounds_out);
  mutable std::mutex mu_;
  std::vector<Family*> families_;
  std::vector<Series*> series_;
  std::vector<std::pair<std::string, std::function<void(std::string&)>>> collectors_;
  Cell next_cell_ = 1;
};

/// `name="value"` with the value escaped for the exposition format.
std::string label(std::string_view name, std::string_view value);
/// Joins rendered labels with commas, skipping empty ones.
std::string labels(std::initializer_list<std::string> parts);

/// Appends a formatted number (integers exactly, others with up to 17 significant digits).
void append_number(std::string& out, double v);

/// Standard bucket sets (recorded units).
extern const std::vector<uint64_t> kLatencyBucketsUs;   // 0.5 ms .. 120 s
extern const std::vector<uint64_t> kOverheadBucketsUs;  // 10 µs .. 100 ms
extern const std::vector<uint64_t> kItlBucketsUs;       // 1 ms .. 10 s

}  // namespace sluice::observe
