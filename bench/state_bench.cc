// State store and session-memory micro-benchmarks (run by bench/state.sh, which starts a
// redis-server for the Redis rows). Each row: the p50 / p99 / max of N timed calls, in µs.
//   chain100   resolve a 100-response previous_response_id chain (StateStore::chain + parse)
//   turns1000  read a session's newest 1000 turns (StateStore::range)
//   search     score K memories against a query (sessions::score_memories, BM25 + recency
//              + weight over every memory of a session, as /memories/search and
//              x-sluice-session do)
// Usage: sluice-state-bench [--redis-port P] [--sqlite PATH] [--runs N] [--memories K]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "canonical/json.h"
#include "sessions/context.h"
#include "store/state_store.h"

using namespace sluice;
using Clock = std::chrono::steady_clock;

namespace {

struct Stats {
  double p50, p99, max;
};

Stats stats(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))]; };
  return {at(0.50), at(0.99), us.back()};
}

void row(const char* name, const char* backend, const Stats& s) {
  std::printf("%-10s %-7s p50 %9.1f us   p99 %9.1f us   max %9.1f us\n", name, backend, s.p50,
              s.p99, s.max);
}

// A stored response record of realistic size (~1.5 KiB: input item + output item + object).
std::string record_text(int i) {
  std::string text(600, 'a' + i % 26);
  return R"({"owner":"","response":{"id":"resp_)" + std::to_string(i) +
         R"(","object":"response","status":"completed","output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":")" +
         text + R"("}]}]},"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":")" +
         text + R"("}]}]})";
}

void bench_store(store::StateStore& st, const char* backend, int runs) {
  // 100-link chains, one per run (no cache effects from re-reading one chain only).
  std::vector<double> chain_us, turns_us;
  for (int r = 0; r < runs; ++r) {
    std::string prev;
    const std::string base = "bench:" + std::to_string(r) + ":";
    for (int i = 0; i < 100; ++i) {
      std::string key = base + std::to_string(i);
      (void)st.put(key, record_text(i), prev, std::chrono::milliseconds(0));
      prev = key;
    }
    auto t0 = Clock::now();
    auto chain = st.chain(prev, 1000);
    size_t items = 0;
    for (const std::string& rec : *chain) {
      auto v = canonical::from_text(rec);
      items += v.is_object() ? 1 : 0;
    }
    chain_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (items != 100) std::fprintf(stderr, "chain: %zu records\n", items);
  }
  row("chain100", backend, stats(chain_us));
  std::vector<store::ListItem> turns;
  for (int i = 0; i < 1000; ++i) turns.push_back({"turn_" + std::to_string(i), record_text(i)});
  (void)st.append("bench:turns", turns, std::chrono::milliseconds(0));
  for (int r = 0; r < runs; ++r) {
    auto t0 = Clock::now();
    auto page = st.range("bench:turns", "", 1000, true);
    turns_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!page || page->items.size() != 1000) std::fprintf(stderr, "turns: short page\n");
  }
  row("turns1000", backend, stats(turns_us));
}

void bench_search(size_t count, int runs) {
  std::mt19937 rng(7);
  const char* words[] = {"paris", "lyon", "cat", "dog", "job", "engineer", "teacher", "music",
                         "guitar", "piano", "sister", "brother", "birthday", "march", "coffee",
                         "tea", "running", "hiking", "book", "novel", "moved", "married"};
  std::vector<sessions::MemoryDoc> docs;
  for (size_t i = 0; i < count; ++i) {
    std::string text;
    for (int w = 0; w < 12; ++w) text += std::string(words[rng() % 22]) + " ";
    docs.push_back({"k" + std::to_string(i), text, 0.5, 1'700'000'000'000});
  }
  std::vector<double> us;
  for (int r = 0; r < runs; ++r) {
    auto t0 = Clock::now();
    auto top = sessions::score_memories(docs, "where did my sister move", 8, 1'700'000'000'000, {});
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (top.empty()) std::fprintf(stderr, "search: nothing\n");
  }
  char name[32];
  std::snprintf(name, sizeof name, "search%zuk", count / 1000);
  row(name, "memory", stats(us));
  // The same search on the session's cached index (what /memories/search and x-sluice-session
  // do while no memory was written since the last read).
  auto t0 = Clock::now();
  sessions::MemoryIndex index(docs);
  const double build_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  us.clear();
  for (int r = 0; r < runs; ++r) {
    auto t1 = Clock::now();
    auto top = index.search("where did my sister move", 8, 1'700'000'000'000, {});
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t1).count());
    if (top.empty()) std::fprintf(stderr, "index: nothing\n");
  }
  std::snprintf(name, sizeof name, "index%zuk", count / 1000);
  row(name, "memory", stats(us));
  std::printf("%-10s %-7s %.1f us to build\n", name, "memory", build_us);
}

}  // namespace

int main(int argc, char** argv) {
  int redis_port = 0, runs = 200;
  size_t memories = 100'000;
  std::string sqlite_path = "/tmp/sluice-state-bench.db";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--redis-port")) redis_port = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--sqlite")) sqlite_path = argv[i + 1];
    if (!std::strcmp(argv[i], "--runs")) runs = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--memories")) memories = static_cast<size_t>(std::atol(argv[i + 1]));
  }
  auto mem = store::make_memory_store(store::StoreLimits{});
  bench_store(*mem, "memory", runs);
  std::remove(sqlite_path.c_str());
  auto sql = store::make_sqlite_store(sqlite_path);
  bench_store(*sql, "sqlite", runs);
  sql.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((sqlite_path + suffix).c_str());
  if (redis_port > 0) {
    auto redis = store::make_redis_store("127.0.0.1", static_cast<uint16_t>(redis_port),
                                         std::chrono::milliseconds(2000));
    bench_store(*redis, "redis", runs);
  }
  bench_search(1000, runs);
  bench_search(memories, std::max(10, runs / 10));
  return 0;
}
