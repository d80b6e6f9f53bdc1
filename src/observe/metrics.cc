// Registry, shards and the Prometheus text exposition.
#include "observe/metrics.h"

#include <spdlog/spdlog.h>
#include <sys/mman.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

namespace sluice::observe {

namespace {
// Cells per shard. Mapped lazily (untouched pages cost no memory): 1 MiB of address space per
// thread, enough for ~130k counters or ~6k labelled histograms.
constexpr size_t kCells = 1u << 17;
}  // namespace

namespace detail {

struct Shard {
  std::atomic<uint64_t>* cells = nullptr;
};

constinit thread_local Shard* tls_shard = nullptr;

namespace {
std::mutex g_shards_mu;
std::vector<Shard*>& shards() {
  static auto* list = new std::vector<Shard*>();  // never destroyed: threads may outlive main
  return *list;
}
}  // namespace

Shard* make_shard() {
  auto* shard = new Shard();
  void* mem = mmap(nullptr, kCells * sizeof(std::atomic<uint64_t>), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) throw std::bad_alloc();
  shard->cells = static_cast<std::atomic<uint64_t>*>(mem);  // zero pages: every cell is 0
  {
    std::lock_guard lock(g_shards_mu);
    shards().push_back(shard);
  }
  tls_shard = shard;
  return shard;
}

std::atomic<uint64_t>* cells(Shard* shard) { return shard->cells; }

uint64_t sum(Cell c) {
  std::lock_guard lock(g_shards_mu);
  uint64_t total = 0;
  for (Shard* s : shards()) total += s->cells[c].load(std::memory_order_relaxed);
  return total;
}

// Sums `n` consecutive cells from `base` into `out` (one pass over the shards).
void sum_range(Cell base, size_t n, std::vector<uint64_t>& out) {
  out.assign(n, 0);
  std::lock_guard lock(g_shards_mu);
  for (Shard* s : shards()) {
    for (size_t i = 0; i < n; ++i) out[i] += s->cells[base + i].load(std::memory_order_relaxed);
  }
}

}  // namespace detail

const std::vector<uint64_t> kLatencyBucketsUs = {
    500,       1'000,     2'500,      5'000,      10'000,     25'000,     50'000,
    100'000,   250'000,   500'000,    1'000'000,  2'500'000,  5'000'000,  10'000'000,
    30'000'000, 60'000'000, 120'000'000};
const std::vector<uint64_t> kOverheadBucketsUs = {10,    25,    50,     100,    250,   500,
                                                  1'000, 2'500, 5'000, 10'000, 100'000};
const std::vector<uint64_t> kItlBucketsUs = {1'000,   2'500,   5'000,     10'000,   25'000,
                                             50'000,  100'000, 250'000,   500'000,  1'000'000,
                                             2'500'000, 10'000'000};

struct Registry::Family {
  std::string name;
  std::string help;
  Type type;
  std::vector<uint64_t> bounds;
  double divisor = 1.0;
  std::vector<Series*> series;
};

struct Registry::Series {
  Family* family;
  std::string labels;
  Cell base;
};

Registry::Registry() = default;

Registry& Registry::instance() {
  static auto* registry = new Registry();  // never destroyed (worker threads may outlive main)
  return *registry;
}

Cell Registry::add_series(std::string_view family, std::string_view help, Type type,
                          std::string_view labels, std::span<const uint64_t> bounds,
                          double divisor, const std::vector<uint64_t>** bounds_out) {
  std::lock_guard lock(mu_);
  Family* fam = nullptr;
  for (Family* f : families_) {
    if (f->name == family) {
      fam = f;
      break;
    }
  }
  if (fam == nullptr) {
    fam = new Family{std::string(family), std::string(help), type,
                     std::vector<uint64_t>(bounds.begin(), bounds.end()), divisor, {}};
    families_.push_back(fam);
  }
  if (bounds_out) *bounds_out = &fam->bounds;
  if (fam->type != type) {
    spdlog::error("metric {} registered with two types; ignoring the second", family);
    return 0;
  }
  for (Series* s : fam->series) {
    if (s->labels == labels) return s->base;
  }
  size_t width = type == Type::histogram ? fam->bounds.size() + 2 : 1;
  if (next_cell_ + width > kCells) {
    static bool warned = false;
    if (!warned) spdlog::error("metrics registry full: series {}{{{}}} not recorded", family, labels);
    warned = true;
    return 0;
  }
  auto* s = new Series{fam, std::string(labels), next_cell_};
  next_cell_ += static_cast<Cell>(width);
  fam->series.push_back(s);
  series_.push_back(s);
  return s->base;
}

Cell Registry::counter(std::string_view family, std::string_view help, std::string_view labels) {
  return add_series(family, help, Type::counter, labels, {}, 1.0, nullptr);
}

Cell Registry::gauge(std::string_view family, std::string_view help, std::string_view labels) {
  return add_series(family, help, Type::gauge, labels, {}, 1.0, nullptr);
}

Histogram Registry::histogram(std::string_view family, std::string_view help,
                              std::string_view labels, std::span<const uint64_t> bounds,
                              double divisor) {
  Histogram h;
  h.base = add_series(family, help, Type::histogram, labels, bounds, divisor, &h.bounds);
  if (h.base == 0) h.bounds = nullptr;
  return h;
}

void Registry::set_collector(const std::string& name, std::function<void(std::string&)> fn) {
  std::lock_guard lock(mu_);
  for (auto& [n, f] : collectors_) {
    if (n == name) {
      f = std::move(fn);
      return;
    }
  }
  collectors_.emplace_back(name, std::move(fn));
}

uint64_t Registry::value(Cell c) const { return c == 0 ? 0 : detail::sum(c); }

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[32];
  int n;
  if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) {
    n = std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  } else {
    n = std::snprintf(buf, sizeof buf, "%.17g", v);
    // Prefer the shortest form that round-trips.
    for (int prec = 6; prec < 17; ++prec) {
      char shorter[32];
      int m = std::snprintf(shorter, sizeof shorter, "%.*g", prec, v);
      if (std::strtod(shorter, nullptr) == v) {
        std::memcpy(buf, shorter, static_cast<size_t>(m) + 1);
        n = m;
        break;
      }
    }
  }
  out.append(buf, static_cast<size_t>(n));
}

namespace {

void append_series_name(std::string& out, std::string_view name, std::string_view suffix,
                        std::string_view labels, std::string_view extra = {}) {
  out += name;
  out += suffix;
  if (!labels.empty() || !extra.empty()) {
    out += '{';
    out += labels;
    if (!labels.empty() && !extra.empty()) out += ',';
    out += extra;
    out += '}';
  }
  out += ' ';
}

}  // namespace

std::string Registry::render() const {
  std::string out;
  out.reserve(16 * 1024);
  std::vector<std::pair<std::string, std::function<void(std::string&)>>> collectors;
  std::vector<Family*> families;
  {
    std::lock_guard lock(mu_);
    families = families_;
    collectors = collectors_;
  }
  std::vector<uint64_t> values;
  for (const Family* f : families) {
    std::vector<Series*> series;
    {
      std::lock_guard lock(mu_);
      series = f->series;
    }
    if (series.empty()) continue;
    out += "# HELP ";
    out += f->name;
    out += ' ';
    out += f->help;
    out += "\n# TYPE ";
    out += f->name;
    out += f->type == Type::counter ? " counter\n"
           : f->type == Type::gauge ? " gauge\n"
                                    : " histogram\n";
    for (const Series* s : series) {
      if (f->type != Type::histogram) {
        append_series_name(out, f->name, "", s->labels);
        uint64_t v = detail::sum(s->base);
        if (f->type == Type::gauge) {
          out += std::to_string(static_cast<int64_t>(v));
        } else {
          out += std::to_string(v);
        }
        out += '\n';
        continue;
      }
      size_t nb = f->bounds.size();
      detail::sum_range(s->base, nb + 2, values);
      uint64_t cumulative = 0;
      for (size_t i = 0; i <= nb; ++i) {
        cumulative += values[i];
        std::string le = "le=\"";
        if (i < nb) {
          append_number(le, static_cast<double>(f->bounds[i]) / f->divisor);
        } else {
          le += "+Inf";
        }
        le += '"';
        append_series_name(out, f->name, "_bucket", s->labels, le);
        out += std::to_string(cumulative);
        out += '\n';
      }
      append_series_name(out, f->name, "_sum", s->labels);
      append_number(out, static_cast<double>(values[nb + 1]) / f->divisor);
      out += '\n';
      append_series_name(out, f->name, "_count", s->labels);
      out += std::to_string(cumulative);
      out += '\n';
    }
  }
  for (const auto& [name, fn] : collectors) fn(out);
  return out;
}

std::string label(std::string_view name, std::string_view value) {
  std::string out(name);
  out += "=\"";
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string labels(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += ',';
    out += p;
  }
  return out;
}

}  // namespace sluice::observe
