// The response cache's in-process tier (src/cache/memory_cache.h): bounds, LRU, expiry,
// invalidation, and many threads at once (run under ThreadSanitizer by `make test`).
#include "cache/memory_cache.h"

#include <gtest/gtest.h>

#include <thread>

namespace sluice::cache {
namespace {

Stored value(std::string v, int64_t expires = 0, std::string owner = "o", std::string route = "r") {
  Stored s;
  s.value = std::make_shared<const std::string>(std::move(v));
  s.stored_ms = 1;
  s.expires_ms = expires;
  s.owner = std::move(owner);
  s.route = std::move(route);
  return s;
}

TEST(MemoryCache, GetPutReplaceAndExpire) {
  MemoryCache c(1 << 20, 4);
  EXPECT_FALSE(c.get("a", 0));
  c.put("a", value("one"));
  ASSERT_TRUE(c.get("a", 0));
  EXPECT_EQ(*c.get("a", 0)->value, "one");
  c.put("a", value("two", 100));
  EXPECT_EQ(*c.get("a", 99)->value, "two");
  EXPECT_FALSE(c.get("a", 100));  // expired: gone
  EXPECT_EQ(c.stats().entries, 0u);
}

TEST(MemoryCache, BoundedInBytesLeastRecentlyUsedFirstOut) {
  MemoryCache c(4 * (1000 + 200), 1);  // about four 1000-byte entries
  for (int i = 0; i < 4; ++i) c.put("k" + std::to_string(i), value(std::string(1000, 'x')));
  ASSERT_TRUE(c.get("k0", 0));  // k0 is now the most recently used
  c.put("k4", value(std::string(1000, 'y')));
  EXPECT_TRUE(c.get("k0", 0));
  EXPECT_FALSE(c.get("k1", 0));  // the least recently used went
  EXPECT_TRUE(c.get("k4", 0));
  const MemoryStats s = c.stats();
  EXPECT_LE(s.bytes, size_t{4 * 1200});
  EXPECT_GE(s.evictions, 1u);
  // An entry bigger than the bound is not kept (and evicts nothing).
  const size_t before = c.stats().entries;
  c.put("huge", value(std::string(10'000, 'z')));
  EXPECT_FALSE(c.get("huge", 0));
  EXPECT_EQ(c.stats().entries, before);
}

TEST(MemoryCache, InvalidateByKeyOwnerRoute) {
  MemoryCache c(1 << 20, 4);
  c.put("a", value("1", 0, "t:x", "r1"));
  c.put("b", value("2", 0, "t:y", "r1"));
  c.put("c", value("3", 0, "t:x", "r2"));
  EXPECT_TRUE(c.erase("a"));
  EXPECT_FALSE(c.erase("a"));
  EXPECT_EQ(c.erase_if([](const Stored& s) { return s.route == "r1"; }), 1u);
  EXPECT_EQ(c.erase_if([](const Stored& s) { return s.owner == "t:x"; }), 1u);
  EXPECT_EQ(c.stats().entries, 0u);
  EXPECT_EQ(c.stats().bytes, 0u);
}

TEST(MemoryCache, ManyThreadsAtOnce) {
  MemoryCache c(64 * 1024, 8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c, t] {
      for (int i = 0; i < 5000; ++i) {
        const std::string k = "k" + std::to_string((i * 7 + t) % 300);
        if (i % 3 == 0) {
          c.put(k, value(std::string(100 + i % 50, 'v'), i % 5 == 0 ? 1 : 0));
        } else if (auto hit = c.get(k, 2)) {
          EXPECT_GE(hit->value->size(), 100u);
        }
        if (i % 1000 == 0) c.erase_if([](const Stored& s) { return s.value->size() > 140; });
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(c.stats().bytes, size_t{64 * 1024});
}

}  // namespace
}  // namespace sluice::cache
