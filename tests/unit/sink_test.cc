// CollectingSink: the sink for consumers that want the answer, not the wire (a job's result, a
// cache entry). A whole answer is kept as it is; a stream is assembled, in whatever pieces it
// comes; a stream that failed, or ended without message_stop, leaves no result.
#include "api/sink.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace sluice::api {
namespace {

namespace asio = boost::asio;

canonical::Response answer() {
  canonical::Response r;
  r.id = "a1";
  canonical::Block text;
  text.text = "hello there";
  r.content.push_back(text);
  r.stop_reason = canonical::StopReason::end_turn;
  r.usage.input = 5;
  r.usage.output = 2;
  r.usage.reported = true;
  return r;
}

template <typename F>
void run(F f) {
  asio::io_context io;
  auto done = asio::co_spawn(io, f(), asio::use_future);
  io.run();
  done.get();
}

TEST(CollectingSink, KeepsAWholeAnswer) {
  CollectingSink sink;
  run([&]() -> asio::awaitable<void> { co_await sink.answer(answer()); });
  ASSERT_TRUE(sink.result());
  EXPECT_EQ(sink.result()->content[0].text, "hello there");
  EXPECT_FALSE(sink.gone());
}

TEST(CollectingSink, AssemblesAStreamFromItsPieces) {
  CollectingSink sink;
  const std::vector<canonical::Event> all = canonical::events_of(answer());
  bool taken = true;
  run([&]() -> asio::awaitable<void> {
    taken = co_await sink.begin_stream();
    for (const auto& e : all) {
      const std::vector<canonical::Event> one{e};
      const bool ok = co_await sink.events(one);
      taken = taken && ok;
    }
    co_await sink.end_stream();
  });
  EXPECT_TRUE(taken);
  ASSERT_TRUE(sink.result());
  EXPECT_EQ(sink.result()->content[0].text, "hello there");
  EXPECT_EQ(sink.result()->usage.output, 2);
  EXPECT_EQ(sink.error_status(), 0);
}

TEST(CollectingSink, AFailedStreamLeavesNoResult) {
  CollectingSink failed;
  std::vector<canonical::Event> head = canonical::events_of(answer());
  head.resize(3);  // message_start, block_start, one delta
  run([&]() -> asio::awaitable<void> {
    co_await failed.begin_stream();
    co_await failed.events(head);
    co_await failed.fail_stream(504, "upstream timed out");
    co_await failed.end_stream();
  });
  EXPECT_FALSE(failed.result());
  EXPECT_EQ(failed.error_status(), 504);
  EXPECT_EQ(failed.error_message(), "upstream timed out");

  CollectingSink cut;  // ended without message_stop: incomplete, no result either
  run([&]() -> asio::awaitable<void> {
    co_await cut.begin_stream();
    co_await cut.events(head);
    co_await cut.end_stream();
  });
  EXPECT_FALSE(cut.result());
}

}  // namespace
}  // namespace sluice::api
