// The semantic tier's nearest-neighbour index (src/cache/semantic_index.h): cosine search
// within a bucket, expiry, the entry bound, replacement, a new dimension starting over, the
// background rebuild that recovers deleted slots, and many threads at once (run under
// ThreadSanitizer by `make test`).
#include "cache/semantic_index.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>
#include <thread>

namespace sluice::cache {
namespace {

std::vector<float> random_vector(std::mt19937& rng, size_t dims = 32) {
  std::normal_distribution<float> d;
  std::vector<float> v(dims);
  for (float& x : v) x = d(rng);
  return v;
}

// `v` moved a little: cosine similarity about 1 - eps²/2.
std::vector<float> near(const std::vector<float>& v, std::mt19937& rng, float eps) {
  std::vector<float> n = random_vector(rng, v.size());
  normalise(n);
  std::vector<float> u = v;
  normalise(u);
  for (size_t i = 0; i < u.size(); ++i) u[i] += eps * n[i];
  return u;
}

SemanticIndex::Item item(std::string key, std::string bucket = "b", int64_t expires = 1'000'000) {
  SemanticIndex::Item it;
  it.key = std::move(key);
  it.bucket = std::move(bucket);
  it.text = "text of " + it.key;
  it.owner = "o";
  it.route = "r";
  it.expires_ms = expires;
  return it;
}

TEST(SemanticIndex, FindsTheClosestInItsBucketAboveTheThreshold) {
  std::mt19937 rng(1);
  SemanticIndex index(100);
  std::vector<std::vector<float>> vs;
  for (int i = 0; i < 50; ++i) {
    vs.push_back(random_vector(rng));
    index.add(vs.back(), item("k" + std::to_string(i)), 0);
  }
  EXPECT_EQ(index.size(), 50u);
  EXPECT_EQ(index.dimensions(), 32u);
  auto m = index.search("b", near(vs[7], rng, 0.05f), 0.95f, 4, 0);
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m[0].key, "k7");
  EXPECT_EQ(m[0].text, "text of k7");
  EXPECT_GT(m[0].similarity, 0.99f);
  // Scaling does not matter (cosine); another bucket never matches; a far vector is below.
  std::vector<float> scaled = vs[7];
  for (float& x : scaled) x *= 10;
  EXPECT_EQ(index.search("b", scaled, 0.999f, 4, 0).at(0).key, "k7");
  EXPECT_TRUE(index.search("other", vs[7], 0.5f, 4, 0).empty());
  EXPECT_TRUE(index.search("b", random_vector(rng), 0.95f, 4, 0).empty());
  EXPECT_TRUE(index.search("b", std::vector<float>(16, 1.0f), 0.1f, 4, 0).empty());  // wrong dims
}

TEST(SemanticIndex, ManyBucketsWithTheSameQuestionDoNotCrowdEachOtherOut) {
  // 200 scopes asked the same question: each scope still finds its own entry.
  std::mt19937 rng(7);
  SemanticIndex index(1000);
  const auto v = random_vector(rng);
  for (int i = 0; i < 200; ++i) index.add(near(v, rng, 0.01f), item("k" + std::to_string(i), "b" + std::to_string(i)), 0);
  for (int i : {0, 57, 199}) {
    auto m = index.search("b" + std::to_string(i), v, 0.95f, 4, 0);
    ASSERT_EQ(m.size(), 1u) << i;
    EXPECT_EQ(m[0].key, "k" + std::to_string(i));
  }
}

TEST(SemanticIndex, ExpiresReplacesAndErases) {
  std::mt19937 rng(2);
  SemanticIndex index(100);
  auto v = random_vector(rng);
  index.add(v, item("a", "b", 100), 0);
  EXPECT_EQ(index.search("b", v, 0.9f, 4, 99).size(), 1u);
  EXPECT_TRUE(index.search("b", v, 0.9f, 4, 100).empty());  // expired
  index.add(v, item("a", "b", 500), 0);                     // the same key again: replaced
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.search("b", v, 0.9f, 4, 200).size(), 1u);
  index.add(random_vector(rng), item("c"), 0);
  EXPECT_EQ(index.erase_if([](const SemanticIndex::Item& it) { return it.key == "a"; }), 1u);
  EXPECT_TRUE(index.search("b", v, 0.99f, 4, 0).empty());
  EXPECT_EQ(index.size(), 1u);
}

TEST(SemanticIndex, BoundedOldestFirstAndExpiredFirst) {
  std::mt19937 rng(3);
  SemanticIndex index(3);
  std::vector<std::vector<float>> vs;
  for (int i = 0; i < 5; ++i) {
    vs.push_back(random_vector(rng));
    index.add(vs.back(), item("k" + std::to_string(i)), 0);
  }
  EXPECT_EQ(index.size(), 3u);
  EXPECT_TRUE(index.search("b", vs[0], 0.99f, 1, 0).empty());
  EXPECT_TRUE(index.search("b", vs[1], 0.99f, 1, 0).empty());
  EXPECT_EQ(index.search("b", vs[4], 0.99f, 1, 0).at(0).key, "k4");
}

TEST(SemanticIndex, NewDimensionStartsOver) {
  std::mt19937 rng(4);
  SemanticIndex index(10);
  index.add(random_vector(rng, 32), item("a"), 0);
  index.add(random_vector(rng, 8), item("b"), 0);
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.dimensions(), 8u);
}

void wait_rebuilt(const SemanticIndex& index) {
  while (index.rebuilding()) std::this_thread::sleep_for(std::chrono::microseconds(100));
}

// The last `n` of `vs` are each found as their own closest entry.
size_t findable(const SemanticIndex& index, const std::vector<std::vector<float>>& vs, size_t n) {
  size_t found = 0;
  for (size_t i = vs.size() - n; i < vs.size(); ++i) {
    auto m = index.search("b", vs[i], 0.99f, 1, 0);
    found += !m.empty() && m[0].key == "k" + std::to_string(i);
  }
  return found;
}

TEST(SemanticIndex, RebuildKeepsEveryLiveEntryFindable) {
  // 40 entries kept, 80 slots: 2000 additions force many rebuilds.
  std::mt19937 rng(5);
  SemanticIndex index(40);
  std::vector<std::vector<float>> vs;
  for (int i = 0; i < 2000; ++i) {
    vs.push_back(random_vector(rng));
    index.add(vs.back(), item("k" + std::to_string(i)), 0);
    wait_rebuilt(index);
  }
  EXPECT_EQ(index.size(), 40u);
  EXPECT_EQ(findable(index, vs, 40), 40u);
}

TEST(SemanticIndex, AdditionsDuringARebuildSurviveIt) {
  std::mt19937 rng(6);
  SemanticIndex index(40);  // 80 slots: the 60th addition starts a rebuild
  std::vector<std::vector<float>> vs;
  for (int i = 0; i < 70; ++i) {
    vs.push_back(random_vector(rng));
    index.add(vs.back(), item("k" + std::to_string(i)), 0);  // 60..69 land during the rebuild
  }
  wait_rebuilt(index);
  EXPECT_EQ(index.size(), 40u);
  // Entries added while it ran (still in room) are in the new graph; removed ones are not.
  EXPECT_EQ(findable(index, vs, 40), 40u);
  EXPECT_TRUE(index.search("b", vs[0], 0.99f, 1, 0).empty());
}

TEST(SemanticIndex, ManyThreadsAtOnce) {
  SemanticIndex index(200);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&index, t] {
      std::mt19937 rng(100 + t);
      for (int i = 0; i < 500; ++i) {
        auto v = random_vector(rng);
        if (i % 3 == 0) {
          index.add(v, item("t" + std::to_string(t) + ":" + std::to_string(i), "b" + std::to_string(t % 2)), 0);
        } else if (i % 50 == 1) {
          index.erase_if([&](const SemanticIndex::Item& it) { return it.key.ends_with(":" + std::to_string(i - 1)); });
        } else {
          (void)index.search("b" + std::to_string(t % 2), v, 0.5f, 4, 0);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(index.size(), 200u);
}

}  // namespace
}  // namespace sluice::cache
