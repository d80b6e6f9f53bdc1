// The state store contract: every backend (memory, SQLite, a real redis-server) passes the same
// suite. Expiry runs on a fake clock where the backend reads ours (memory, SQLite); Redis
// expires by its own clock, so its expiry test waits for a short real TTL.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <thread>

#include "redis_server_support.h"
#include "store/state_service.h"
#include "store/state_store.h"

namespace sluice::store {
namespace {

using namespace std::chrono_literals;

inline int files_made_ = 0;

struct FakeClock {
  std::atomic<int64_t> now{1'700'000'000'000};
  NowMs fn() {
    return [this] { return now.load(); };
  }
};

class StateStoreContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string& backend = GetParam();
    if (backend == "memory") {
      store_ = make_memory_store(StoreLimits{}, clock_.fn());
    } else if (backend == "sqlite") {
      path_ = std::filesystem::temp_directory_path() /
              ("sluice-state-test-" + std::to_string(::getpid()) + "-" +
               std::to_string(++files_made_) + ".db");
      std::filesystem::remove(path_);
      store_ = make_sqlite_store(path_.string(), clock_.fn());
    } else {
      ASSERT_TRUE(test::RedisServer::installed()) << "install redis-server";
      ASSERT_TRUE(redis_.start());
      store_ = make_redis_store("127.0.0.1", redis_.port(), 1000ms);
    }
  }
  void TearDown() override {
    store_.reset();
    if (!path_.empty()) {
      for (const char* suffix : {"", "-wal", "-shm"}) {
        std::filesystem::remove(path_.string() + suffix);
      }
    }
  }
  bool fake_clock() const { return GetParam() != "redis"; }
  // Lets `ttl` pass: on the fake clock at once, on Redis by waiting (polled by the caller).
  void pass(std::chrono::milliseconds ttl) {
    if (fake_clock()) clock_.now += ttl.count() + 1;
  }
  template <class Pred>
  bool eventually(Pred pred) {
    for (int i = 0; i < 400; ++i) {
      if (pred()) return true;
      if (fake_clock()) return false;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  std::vector<ListItem> items(std::initializer_list<const char*> ids) {
    std::vector<ListItem> out;
    for (const char* id : ids) out.push_back({id, std::string("value of ") + id});
    return out;
  }
  std::vector<std::string> ids_of(const ListPage& page) {
    std::vector<std::string> out;
    for (const ListItem& i : page.items) out.push_back(i.id);
    return out;
  }

  FakeClock clock_;
  std::filesystem::path path_;
  test::RedisServer redis_;
  std::unique_ptr<StateStore> store_;
};

TEST_P(StateStoreContract, RecordsPutGetReplaceErase) {
  EXPECT_EQ(store_->backend(), GetParam());
  auto missing = store_->get("nope");
  ASSERT_TRUE(missing) << missing.error().message;
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(store_->put("a", "one", "", 0ms));
  EXPECT_EQ(store_->get("a").value(), std::optional<std::string>("one"));
  ASSERT_TRUE(store_->put("a", std::string("two\0bytes", 9), "", 0ms));
  EXPECT_EQ(store_->get("a").value(), std::optional<std::string>(std::string("two\0bytes", 9)));
  EXPECT_TRUE(store_->erase("a").value());
  EXPECT_FALSE(store_->erase("a").value());
  EXPECT_FALSE(store_->get("a").value().has_value());
}

TEST_P(StateStoreContract, TouchRestartsTheTtlButNeverRevivesADeletedRecord) {
  const auto ttl = fake_clock() ? 10'000ms : 400ms;
  ASSERT_TRUE(store_->put("t", "v", "", ttl));
  EXPECT_FALSE(store_->touch("missing", ttl).value());
  EXPECT_TRUE(store_->touch("t", 0ms).value());
  if (fake_clock()) clock_.now += ttl.count() / 2;
  EXPECT_TRUE(store_->touch("t", ttl).value());
  if (fake_clock()) clock_.now += ttl.count() / 2 + 1;
  EXPECT_EQ(store_->get("t").value(), std::optional<std::string>("v"));  // the touch extended it
  ASSERT_TRUE(store_->erase("t"));
  EXPECT_FALSE(store_->touch("t", ttl).value());
  EXPECT_FALSE(store_->get("t").value().has_value());
}

TEST_P(StateStoreContract, AtomicallySerialisesReadModifyWrite) {
  ASSERT_TRUE(store_->put("counter", "0", "", 0ms));
  constexpr int kThreads = 6, kEach = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        auto r = store_->atomically("counter", [](StateStore& s) -> Result<void> {
          auto v = s.get("counter");
          if (!v) return std::move(v.error());
          const int n = std::stoi(v->value_or("0"));
          return s.put("counter", std::to_string(n + 1), "", std::chrono::milliseconds(0));
        });
        if (!r) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store_->get("counter").value(), std::optional<std::string>(std::to_string(kThreads * kEach)));
}

TEST_P(StateStoreContract, ChainWalksLinksNewestFirst) {
  ASSERT_TRUE(store_->put("r1", "first", "", 0ms));
  ASSERT_TRUE(store_->put("r2", "second", "r1", 0ms));
  ASSERT_TRUE(store_->put("r3", "third", "r2", 0ms));
  EXPECT_EQ(store_->chain("r3", 10).value(),
            (std::vector<std::string>{"third", "second", "first"}));
  EXPECT_EQ(store_->chain("r3", 2).value(), (std::vector<std::string>{"third", "second"}));
  EXPECT_TRUE(store_->chain("missing", 10).value().empty());
  ASSERT_TRUE(store_->erase("r2"));
  EXPECT_EQ(store_->chain("r3", 10).value(), (std::vector<std::string>{"third"}));
}

TEST_P(StateStoreContract, HundredLinkChainResolvesInOneCall) {
  std::string prev;
  for (int i = 0; i < 100; ++i) {
    std::string key = "c" + std::to_string(i);
    ASSERT_TRUE(store_->put(key, "turn " + std::to_string(i), prev, 0ms));
    prev = key;
  }
  auto chain = store_->chain(prev, 1000);
  ASSERT_TRUE(chain);
  ASSERT_EQ(chain->size(), 100u);
  EXPECT_EQ(chain->front(), "turn 99");
  EXPECT_EQ(chain->back(), "turn 0");
}

TEST_P(StateStoreContract, ListsAppendAndPageBothWays) {
  EXPECT_EQ(store_->size("L").value(), 0u);
  EXPECT_TRUE(store_->range("L", "", 10, false).value().items.empty());
  ASSERT_TRUE(store_->append("L", items({"a", "b", "c"}), 0ms));
  ASSERT_TRUE(store_->append("L", items({"d", "e"}), 0ms));
  EXPECT_EQ(store_->size("L").value(), 5u);
  auto all = store_->range("L", "", 10, false).value();
  EXPECT_EQ(ids_of(all), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_FALSE(all.has_more);
  EXPECT_EQ(all.items[2].value, "value of c");
  auto first = store_->range("L", "", 2, false).value();
  EXPECT_EQ(ids_of(first), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(first.has_more);
  auto next = store_->range("L", "b", 2, false).value();
  EXPECT_EQ(ids_of(next), (std::vector<std::string>{"c", "d"}));
  EXPECT_TRUE(next.has_more);
  auto last = store_->range("L", "d", 2, false).value();
  EXPECT_EQ(ids_of(last), (std::vector<std::string>{"e"}));
  EXPECT_FALSE(last.has_more);
  auto desc = store_->range("L", "", 3, true).value();
  EXPECT_EQ(ids_of(desc), (std::vector<std::string>{"e", "d", "c"}));
  EXPECT_TRUE(desc.has_more);
  auto desc_after = store_->range("L", "c", 5, true).value();
  EXPECT_EQ(ids_of(desc_after), (std::vector<std::string>{"b", "a"}));
  EXPECT_FALSE(desc_after.has_more);
  auto unknown = store_->range("L", "zz", 5, false);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::not_found);
}

TEST_P(StateStoreContract, ItemsCarryTheirPositionAndCanBeReplacedInPlace) {
  ASSERT_TRUE(store_->append("L", items({"a", "b"}), 0ms));
  ASSERT_TRUE(store_->erase_item("L", "a"));
  ASSERT_TRUE(store_->append("L", items({"c"}), 0ms));
  auto page = store_->range("L", "", 10, false).value();
  ASSERT_EQ(page.items.size(), 2u);
  EXPECT_EQ(page.items[0].seq, 2);  // b
  EXPECT_EQ(page.items[1].seq, 3);  // c: positions are never reused
  EXPECT_TRUE(store_->replace_item("L", "b", "new b").value());
  EXPECT_FALSE(store_->replace_item("L", "zz", "x").value());
  EXPECT_FALSE(store_->replace_item("none", "b", "x").value());
  page = store_->range("L", "", 10, false).value();
  EXPECT_EQ(page.items[0].id, "b");
  EXPECT_EQ(page.items[0].value, "new b");
  EXPECT_EQ(page.items[0].seq, 2);
}

TEST_P(StateStoreContract, DuplicateIdsAreRefusedWholeBatch) {
  ASSERT_TRUE(store_->append("L", items({"a"}), 0ms));
  auto dup = store_->append("L", items({"b", "a"}), 0ms);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, Errc::bad_request);
  auto dup_in_batch = store_->append("L", items({"c", "c"}), 0ms);
  ASSERT_FALSE(dup_in_batch);
  EXPECT_EQ(dup_in_batch.error().code, Errc::bad_request);
  EXPECT_EQ(ids_of(store_->range("L", "", 10, false).value()), (std::vector<std::string>{"a"}));
}

TEST_P(StateStoreContract, ItemsGetEraseAndWholeListErase) {
  ASSERT_TRUE(store_->append("L", items({"a", "b", "c"}), 0ms));
  EXPECT_EQ(store_->item("L", "b").value(), std::optional<std::string>("value of b"));
  EXPECT_FALSE(store_->item("L", "x").value().has_value());
  EXPECT_FALSE(store_->item("other", "b").value().has_value());
  EXPECT_TRUE(store_->erase_item("L", "b").value());
  EXPECT_FALSE(store_->erase_item("L", "b").value());
  EXPECT_EQ(ids_of(store_->range("L", "", 10, false).value()),
            (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(store_->size("L").value(), 2u);
  // Appends after a deletion keep the order (no reuse of positions).
  ASSERT_TRUE(store_->append("L", items({"d"}), 0ms));
  EXPECT_EQ(ids_of(store_->range("L", "a", 10, false).value()),
            (std::vector<std::string>{"c", "d"}));
  ASSERT_TRUE(store_->erase_list("L"));
  EXPECT_EQ(store_->size("L").value(), 0u);
  EXPECT_FALSE(store_->item("L", "a").value().has_value());
  // A list erased and written again starts empty.
  ASSERT_TRUE(store_->append("L", items({"a"}), 0ms));
  EXPECT_EQ(ids_of(store_->range("L", "", 10, false).value()), (std::vector<std::string>{"a"}));
}

TEST_P(StateStoreContract, RecordsAndListsExpire) {
  const auto ttl = fake_clock() ? 60'000ms : 150ms;
  ASSERT_TRUE(store_->put("short", "x", "", ttl));
  ASSERT_TRUE(store_->put("long", "y", "", 0ms));
  ASSERT_TRUE(store_->append("SL", items({"a"}), ttl));
  ASSERT_TRUE(store_->append("LL", items({"a"}), 0ms));
  EXPECT_TRUE(store_->get("short").value().has_value());
  pass(ttl);
  EXPECT_TRUE(eventually([&] { return !store_->get("short").value().has_value(); }));
  EXPECT_TRUE(eventually([&] { return store_->size("SL").value() == 0; }));
  EXPECT_FALSE(store_->item("SL", "a").value().has_value());
  EXPECT_TRUE(store_->get("long").value().has_value());
  EXPECT_EQ(store_->size("LL").value(), 1u);
  // Expired means gone for every call, and the sweeper frees it.
  EXPECT_TRUE(store_->chain("short", 5).value().empty());
  store_->sweep();
  EXPECT_FALSE(store_->get("short").value().has_value());
  // An expired list written again starts empty.
  ASSERT_TRUE(store_->append("SL", items({"b"}), 0ms));
  EXPECT_EQ(ids_of(store_->range("SL", "", 10, false).value()), (std::vector<std::string>{"b"}));
}

TEST_P(StateStoreContract, SweepFreesExpiredEntriesOnFakeClock) {
  if (!fake_clock()) GTEST_SKIP() << "Redis expires keys itself";
  ASSERT_TRUE(store_->put("a", "x", "", 1000ms));
  ASSERT_TRUE(store_->append("L", items({"a", "b"}), 1000ms));
  EXPECT_EQ(store_->sweep(), 0u);
  pass(1000ms);
  EXPECT_EQ(store_->sweep(), 4u);  // the record, the list and its two items
  EXPECT_EQ(store_->sweep(), 0u);
}

TEST_P(StateStoreContract, AppendWithTtlExtendsTheList) {
  const auto ttl = fake_clock() ? 10'000ms : 400ms;
  ASSERT_TRUE(store_->append("L", items({"a"}), ttl));
  if (fake_clock()) clock_.now += ttl.count() / 2;
  ASSERT_TRUE(store_->append("L", items({"b"}), ttl));
  if (fake_clock()) clock_.now += ttl.count() / 2 + 1;
  EXPECT_EQ(store_->size("L").value(), 2u);  // the second append restarted the TTL
}

TEST_P(StateStoreContract, ConcurrentAppendsKeepEveryItemInOrder) {
  constexpr int kThreads = 8, kEach = 50;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!store_->append("shared", {ListItem{id, "v"}}, 0ms)) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto page = store_->range("shared", "", 10'000, false).value();
  ASSERT_EQ(page.items.size(), size_t{kThreads * kEach});
  // Each thread's items appear in the order it appended them.
  std::vector<int> next(kThreads, 0);
  int64_t last_seq = 0;
  for (const ListItem& item : page.items) {
    EXPECT_GT(item.seq, last_seq) << item.id;  // positions unique and in order
    last_seq = item.seq;
    int t = std::stoi(item.id.substr(1, item.id.find('-') - 1));
    int i = std::stoi(item.id.substr(item.id.find('-') + 1));
    EXPECT_EQ(i, next[t]) << item.id;
    next[t] = i + 1;
  }
}

TEST_P(StateStoreContract, ServiceRunsCallsOffTheWorkerAndResumesOnIt) {
  // The io_context outlives the service: the service's threads are joined (its destructor)
  // before the context they post completions to is destroyed.
  asio::io_context io;
  StateService service(std::move(store_), 1h);
  std::thread::id worker;
  std::thread::id resumed;
  std::optional<std::string> got;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        worker = std::this_thread::get_id();
        auto put = co_await service.run(
            [](StateStore& s) { return s.put("k", "v", "", std::chrono::milliseconds(0)); });
        EXPECT_TRUE(put);
        auto r = co_await service.run([](StateStore& s) { return s.get("k"); });
        resumed = std::this_thread::get_id();
        if (r) got = *r;
      },
      asio::detached);
  io.run();
  EXPECT_EQ(got, std::optional<std::string>("v"));
  EXPECT_EQ(resumed, worker);
}

INSTANTIATE_TEST_SUITE_P(Backends, StateStoreContract,
                         ::testing::Values("memory", "sqlite", "redis"),
                         [](const auto& info) { return info.param; });

// ---- backend-specific -------------------------------------------------------------------------

TEST(MemoryStateStore, StaysWithinItsBoundsEvictingLeastRecentlyUsed) {
  auto store = make_memory_store(StoreLimits{160, size_t{1} << 30});  // 10 entries per shard
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(store->put("k" + std::to_string(i), "v", "", 0ms));
  }
  size_t live = 0;
  for (int i = 0; i < 2000; ++i) live += store->get("k" + std::to_string(i)).value() ? 1 : 0;
  EXPECT_LE(live, 160u);
  EXPECT_GE(live, 100u);
  // The newest write is always kept.
  EXPECT_TRUE(store->get("k1999").value().has_value());
}

TEST(MemoryStateStore, NeverEvictsAPinnedKey) {
  auto store = make_memory_store(StoreLimits{16, size_t{1} << 30});  // one entry per shard
  ASSERT_TRUE(store->put("keep", "v", "", 0ms));
  auto pin = store->pin("keep");
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(store->put("k" + std::to_string(i), "v", "", 0ms));
  EXPECT_TRUE(store->get("keep").value().has_value());
  pin.reset();
  for (int i = 500; i < 1000; ++i) ASSERT_TRUE(store->put("k" + std::to_string(i), "v", "", 0ms));
  EXPECT_FALSE(store->get("keep").value().has_value());
}

TEST(MemoryStateStore, BoundedByBytes) {
  auto store = make_memory_store(StoreLimits{1'000'000, 16 * 4096});  // 4 KiB per shard
  const std::string big(1000, 'x');
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(store->put("k" + std::to_string(i), big, "", 0ms));
  size_t live = 0;
  for (int i = 0; i < 1000; ++i) live += store->get("k" + std::to_string(i)).value() ? 1 : 0;
  EXPECT_LE(live, 16u * 4);
}

TEST(SqliteStateStore, SurvivesReopen) {
  auto path = std::filesystem::temp_directory_path() /
              ("sluice-state-reopen-" + std::to_string(::getpid()) + ".db");
  std::filesystem::remove(path);
  {
    auto store = make_sqlite_store(path.string());
    ASSERT_TRUE(store->put("r", "kept", "", 0ms));
    ASSERT_TRUE(store->append("L", {{"a", "1"}, {"b", "2"}}, 0ms));
  }
  {
    auto store = make_sqlite_store(path.string());
    EXPECT_EQ(store->get("r").value(), std::optional<std::string>("kept"));
    ASSERT_TRUE(store->append("L", {{"c", "3"}}, 0ms));
    auto page = store->range("L", "", 10, false).value();
    ASSERT_EQ(page.items.size(), 3u);
    EXPECT_EQ(page.items[2].id, "c");
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
}

TEST(SqliteStateStore, UnwritablePathThrowsWithThePath) {
  try {
    make_sqlite_store("/proc/no-such-dir/state.db");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/no-such-dir/state.db"), std::string::npos);
  }
}

TEST(RedisStateStore, TwoInstancesShareStateAndAnOutageIsAnError) {
  ASSERT_TRUE(test::RedisServer::installed()) << "install redis-server";
  test::RedisServer redis;
  ASSERT_TRUE(redis.start());
  auto a = make_redis_store("127.0.0.1", redis.port(), 500ms);
  auto b = make_redis_store("127.0.0.1", redis.port(), 500ms);
  ASSERT_TRUE(a->put("r", "from a", "", 0ms));
  ASSERT_TRUE(a->append("L", {{"x", "1"}}, 0ms));
  EXPECT_EQ(b->get("r").value(), std::optional<std::string>("from a"));
  EXPECT_EQ(b->size("L").value(), 1u);
  redis.stop();
  auto down = b->get("r");
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code, Errc::unavailable);
  EXPECT_NE(down.error().message.find(std::to_string(redis.port())), std::string::npos)
      << down.error().message;
}

}  // namespace
}  // namespace sluice::store
