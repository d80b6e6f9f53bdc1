// observe::Registry: per-thread shards sum correctly, histograms render cumulative buckets in the
// exported unit, labels are escaped, registration is idempotent; AccessLog: lines from many
// threads all arrive, a full ring drops (and counts) instead of blocking.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "observe/access_log.h"
#include "observe/metrics.h"

namespace sluice::observe {
namespace {

std::string line_of(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return line;
  }
  return {};
}

TEST(MetricsTest, CountersSumAcrossThreads) {
  auto& r = Registry::instance();
  Cell c = r.counter("test_sum_total", "A test counter.", label("case", "threads"));
  ASSERT_NE(c, 0u);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([c] {
      for (int i = 0; i < 100000; ++i) add(c);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(r.value(c), 400000u);
  EXPECT_EQ(line_of(r.render(), "test_sum_total{"), "test_sum_total{case=\"threads\"} 400000");
}

TEST(MetricsTest, ShardsRecordedFromFourThreadsWhileScraping) {
  // Run under ThreadSanitizer by `make test`: recording into per-thread shards while another
  // thread renders and sums them, and a thread's shard outliving the thread.
  auto& r = Registry::instance();
  Cell c = r.counter("test_scrape_total", "Recorded while scraped.");
  Histogram h = r.histogram("test_scrape_us", "Recorded while scraped.", "", kLatencyBucketsUs, 1e6);
  std::atomic<int> running{4};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        add(c);
        observe(h, static_cast<uint64_t>(t * 1000 + i % 1000));
      }
      running.fetch_sub(1);
    });
  }
  uint64_t last = 0;
  size_t scrapes = 0;
  while (running.load() > 0 || scrapes == 0) {
    const uint64_t now = r.value(c);
    EXPECT_GE(now, last);  // a counter never goes backwards, even mid-update
    last = now;
    EXPECT_FALSE(r.render().empty());
    ++scrapes;
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(r.value(c), 80000u);
  EXPECT_NE(r.render().find("test_scrape_us_count 80000"), std::string::npos);
}

TEST(MetricsTest, RegistrationIsIdempotentAndTypesAreChecked) {
  auto& r = Registry::instance();
  Cell a = r.counter("test_idem_total", "h", label("x", "1"));
  Cell b = r.counter("test_idem_total", "h", label("x", "1"));
  Cell c = r.counter("test_idem_total", "h", label("x", "2"));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(r.gauge("test_idem_total", "h", label("x", "3")), 0u);  // wrong type: sink
}

TEST(MetricsTest, GaugesGoDownAcrossThreads) {
  auto& r = Registry::instance();
  Cell g = r.gauge("test_gauge_active", "A gauge.");
  {
    GaugeHold a(g);
    GaugeHold b(g);
    EXPECT_EQ(static_cast<int64_t>(r.value(g)), 2);
    std::thread([g] { sub(g); }).join();  // released on another thread
    EXPECT_EQ(static_cast<int64_t>(r.value(g)), 1);
    std::thread([g] { add(g); }).join();
  }
  EXPECT_EQ(static_cast<int64_t>(r.value(g)), 0);
  add(g, 0);
  sub(g);
  EXPECT_NE(line_of(r.render(), "test_gauge_active ").find(" -1"), std::string::npos);
  add(g);
}

TEST(MetricsTest, HistogramRendersCumulativeBucketsInExportedUnits) {
  auto& r = Registry::instance();
  static const std::vector<uint64_t> bounds = {500, 1000, 2500};
  Histogram h = r.histogram("test_latency_seconds", "Latency.", label("m", "a"), bounds, 1e6);
  observe(h, 100);    // ≤ 0.0005
  observe(h, 500);    // ≤ 0.0005 (bounds are inclusive)
  observe(h, 900);    // ≤ 0.001
  observe(h, 10000);  // +Inf
  std::string text = r.render();
  EXPECT_EQ(line_of(text, "test_latency_seconds_bucket{m=\"a\",le=\"0.0005\"}"),
            "test_latency_seconds_bucket{m=\"a\",le=\"0.0005\"} 2");
  EXPECT_EQ(line_of(text, "test_latency_seconds_bucket{m=\"a\",le=\"0.001\"}"),
            "test_latency_seconds_bucket{m=\"a\",le=\"0.001\"} 3");
  EXPECT_EQ(line_of(text, "test_latency_seconds_bucket{m=\"a\",le=\"0.0025\"}"),
            "test_latency_seconds_bucket{m=\"a\",le=\"0.0025\"} 3");
  EXPECT_EQ(line_of(text, "test_latency_seconds_bucket{m=\"a\",le=\"+Inf\"}"),
            "test_latency_seconds_bucket{m=\"a\",le=\"+Inf\"} 4");
  EXPECT_EQ(line_of(text, "test_latency_seconds_sum{"), "test_latency_seconds_sum{m=\"a\"} 0.0115");
  EXPECT_EQ(line_of(text, "test_latency_seconds_count{"), "test_latency_seconds_count{m=\"a\"} 4");
  EXPECT_NE(text.find("# TYPE test_latency_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("# HELP test_latency_seconds Latency.\n"), std::string::npos);
}

TEST(MetricsTest, ObserveNRecordsManyObservationsAtOnce) {
  auto& r = Registry::instance();
  static const std::vector<uint64_t> bounds = {500, 1000};
  Histogram h = r.histogram("test_many_seconds", "Many.", label("m", "n"), bounds, 1e6);
  observe_n(h, 0, 21);    // 21 x 0 (≤ 0.0005)
  observe_n(h, 700, 3);   // 3 x 0.0007
  observe_n(h, 900, 0);   // nothing
  std::string text = r.render();
  EXPECT_EQ(line_of(text, "test_many_seconds_bucket{m=\"n\",le=\"0.0005\"}"),
            "test_many_seconds_bucket{m=\"n\",le=\"0.0005\"} 21");
  EXPECT_EQ(line_of(text, "test_many_seconds_bucket{m=\"n\",le=\"0.001\"}"),
            "test_many_seconds_bucket{m=\"n\",le=\"0.001\"} 24");
  EXPECT_EQ(line_of(text, "test_many_seconds_count{"), "test_many_seconds_count{m=\"n\"} 24");
  EXPECT_EQ(r.value(h.base + 3), 2100u);  // buckets 0..1, +Inf, then the sum cell
  Histogram big = r.histogram("test_many_big_seconds", "Big.", "", bounds, 1e6);
  observe_n(big, UINT64_MAX / 2, 3);  // the product saturates instead of wrapping
  EXPECT_EQ(r.value(big.base + 3), UINT64_MAX);
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  EXPECT_EQ(label("model", "a\"b\\c\nd"), "model=\"a\\\"b\\\\c\\nd\"");
  EXPECT_EQ(labels({label("a", "1"), "", label("b", "2")}), "a=\"1\",b=\"2\"");
}

TEST(MetricsTest, NumbersRoundTripShortest) {
  std::string s;
  append_number(s, 0.1);
  EXPECT_EQ(s, "0.1");
  s.clear();
  append_number(s, 120);
  EXPECT_EQ(s, "120");
  s.clear();
  append_number(s, 2.5e-5);
  EXPECT_EQ(std::stod(s), 2.5e-5);
}

TEST(MetricsTest, CollectorsAppendAndReplace) {
  auto& r = Registry::instance();
  r.set_collector("test", [](std::string& out) { out += "test_collected 1\n"; });
  r.set_collector("test", [](std::string& out) { out += "test_collected 2\n"; });
  std::string text = r.render();
  EXPECT_EQ(line_of(text, "test_collected"), "test_collected 2");
  EXPECT_EQ(text.find("test_collected 1"), std::string::npos);
  r.set_collector("test", [](std::string&) {});
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

TEST(AccessLogTest, LinesFromManyThreadsAllArrive) {
  auto path = std::filesystem::temp_directory_path() /
              ("sluice-access-" + std::to_string(::getpid()) + ".log");
  std::filesystem::remove(path);
  config::AccessLogConfig cfg;
  cfg.enabled = true;
  cfg.path = path.string();
  cfg.queue = 1 << 16;
  {
    AccessLog log(cfg);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&log, t] {
        for (int i = 0; i < 5000; ++i) log.write("{\"t\":" + std::to_string(t) + "}");
      });
    }
    for (auto& t : threads) t.join();
    log.flush();
    EXPECT_EQ(log.written(), 20000u);
    EXPECT_EQ(log.dropped(), 0u);
  }
  EXPECT_EQ(read_lines(path.string()).size(), 20000u);
  std::filesystem::remove(path);
}

TEST(AccessLogTest, FullRingDropsInsteadOfBlocking) {
  // The log goes to a FIFO that nobody reads yet: once the pipe is full the writer thread is
  // stuck in write(), so a 16-byte ring must fill and drop, whatever the host's speed.
  auto path = std::filesystem::temp_directory_path() /
              ("sluice-access-drop-" + std::to_string(::getpid()) + ".fifo");
  std::filesystem::remove(path);
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  const int reader = ::open(path.c_str(), O_RDONLY | O_NONBLOCK);  // so the writer can open
  ASSERT_GE(reader, 0);
  config::AccessLogConfig cfg;
  cfg.enabled = true;
  cfg.path = path.string();
  cfg.queue = 16;
  uint64_t written = 0, dropped = 0;
  size_t lines_read = 0;
  std::thread drain;
  {
    AccessLog log(cfg);
    // 200 KB of lines against a 64 KiB pipe and a 4 KiB stdio buffer.
    for (int i = 0; i < 100000; ++i) log.write("x");
    ::fcntl(reader, F_SETFL, 0);  // now read everything (blocking) until the log closes
    drain = std::thread([reader, &lines_read] {
      char buf[4096];
      for (ssize_t n; (n = ::read(reader, buf, sizeof buf)) > 0;) {
        lines_read += static_cast<size_t>(std::count(buf, buf + n, '\n'));
      }
    });
    log.flush();
    written = log.written();
    dropped = log.dropped();
  }
  drain.join();
  ::close(reader);
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(written + dropped, 100000u);
  EXPECT_EQ(lines_read, written);
  std::filesystem::remove(path);
}

TEST(AccessLogTest, SamplingKeepsErrors) {
  config::AccessLogConfig cfg;
  cfg.path = "stderr";
  cfg.sample = 0.0;
  AccessLog none(cfg);
  EXPECT_TRUE(none.sampled(true));
  EXPECT_FALSE(none.sampled(false));
  cfg.sample = 0.5;
  AccessLog half(cfg);
  int kept = 0;
  for (int i = 0; i < 10000; ++i) kept += half.sampled(false) ? 1 : 0;
  EXPECT_GT(kept, 4000);
  EXPECT_LT(kept, 6000);
}

TEST(AccessLogTest, UnwritableFileIsAClearError) {
  config::AccessLogConfig cfg;
  cfg.path = "/nonexistent-dir/access.log";
  try {
    AccessLog log(cfg);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/access.log"), std::string::npos);
  }
}

}  // namespace
}  // namespace sluice::observe
