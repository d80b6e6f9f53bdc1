// The stage chain: stages run in table order until one does not proceed; on_finish runs once,
// in reverse order, for exactly the stages whose on_request ran (the refusing one included),
// and sees the request's outcome; RequestContext::settle() reaches it.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <string>
#include <vector>

#include "api/request_context.h"
#include "api/stage.h"

namespace sluice::api {
namespace {

namespace asio = boost::asio;

enum class Act { proceed, refuse, answer };

class Recorder final : public Stage {
 public:
  Recorder(std::vector<std::string>* log, std::string name, Act act = Act::proceed)
      : log_(log), name_(std::move(name)), act_(act) {}
  asio::awaitable<Verdict> on_request(RequestContext&) const override {
    log_->push_back("request " + name_);
    if (act_ == Act::refuse) co_return Verdict::refuse(make_error(Errc::forbidden, name_));
    if (act_ == Act::answer) co_return Verdict::answered();
    co_return Verdict::proceed();
  }
  void on_finish(RequestContext&, const DispatchOutcome& o) const override {
    std::string usage = o.usage ? std::to_string(o.usage->input) + "+" +
                                      std::to_string(o.usage->output)
                                : "none";
    log_->push_back("finish " + name_ + " " + (o.succeeded ? "ok" : "failed") + " " +
                    std::string(o.model) + " " + usage + " " + std::to_string(o.stream_events));
  }

 private:
  std::vector<std::string>* log_;
  std::string name_;
  Act act_;
};

Verdict run(StageChain& chain, RequestContext& ctx) {
  asio::io_context io;
  auto future = asio::co_spawn(io, chain.run(ctx), asio::use_future);
  io.run();
  return future.get();
}

TEST(StageChain, RunsInOrderAndFinishesOnceInReverse) {
  std::vector<std::string> log;
  Stages stages;
  stages.push_back(std::make_unique<Recorder>(&log, "a"));
  stages.push_back(std::make_unique<Recorder>(&log, "b"));
  stages.push_back(std::make_unique<Recorder>(&log, "c"));
  StageChain chain(stages);
  RequestContext ctx;
  ctx.parsed.model = "gpt-x";
  ctx.stages = &chain;
  Verdict v = run(chain, ctx);
  EXPECT_TRUE(v.proceeds());
  EXPECT_EQ(v.error(), nullptr);
  ctx.succeeded = true;
  ctx.usage = UsageTokens{7, 0, 3};
  ctx.stream_events = 5;
  ctx.settle();  // the dispatcher's call before a unary answer
  ctx.succeeded = false;
  ctx.settle();  // and at the end of the request: no second on_finish
  chain.finish(ctx);
  EXPECT_EQ(log, (std::vector<std::string>{"request a", "request b", "request c",
                                           "finish c ok gpt-x 7+3 5", "finish b ok gpt-x 7+3 5",
                                           "finish a ok gpt-x 7+3 5"}));
}

TEST(StageChain, RefusalStopsTheChainAndFinishesOnlyTheStagesThatRan) {
  std::vector<std::string> log;
  Stages stages;
  stages.push_back(std::make_unique<Recorder>(&log, "a"));
  stages.push_back(std::make_unique<Recorder>(&log, "b", Act::refuse));
  stages.push_back(std::make_unique<Recorder>(&log, "c"));
  StageChain chain(stages);
  RequestContext ctx;
  ctx.parsed.model = "gpt-x";
  ctx.served_model = "fallback-y";  // on_finish reports the model that answered
  Verdict v = run(chain, ctx);
  EXPECT_FALSE(v.proceeds());
  ASSERT_NE(v.error(), nullptr);
  EXPECT_EQ(v.error()->code, Errc::forbidden);
  EXPECT_EQ(v.error()->message, "b");
  chain.finish(ctx);
  EXPECT_EQ(log, (std::vector<std::string>{"request a", "request b",
                                           "finish b failed fallback-y none 0",
                                           "finish a failed fallback-y none 0"}));
}

TEST(StageChain, AnsweredStopsTheChainWithoutAnError) {
  std::vector<std::string> log;
  Stages stages;
  stages.push_back(std::make_unique<Recorder>(&log, "a", Act::answer));
  stages.push_back(std::make_unique<Recorder>(&log, "b"));
  StageChain chain(stages);
  RequestContext ctx;
  Verdict v = run(chain, ctx);
  EXPECT_FALSE(v.proceeds());
  EXPECT_EQ(v.error(), nullptr);
  EXPECT_EQ(log, (std::vector<std::string>{"request a"}));
}

// A stage that keeps to generations (the default applies_to): token counting skips it, and it
// gets no on_finish either; a stage that decides access runs for every operation.
class AccessRecorder final : public Stage {
 public:
  explicit AccessRecorder(std::vector<std::string>* log) : log_(log) {}
  bool applies_to(providers::Operation) const override { return true; }
  asio::awaitable<Verdict> on_request(RequestContext&) const override {
    log_->push_back("request access");
    co_return Verdict::proceed();
  }
  void on_finish(RequestContext&, const DispatchOutcome&) const override {
    log_->push_back("finish access");
  }

 private:
  std::vector<std::string>* log_;
};

TEST(StageChain, TokenCountingRunsOnlyTheStagesThatApplyToIt) {
  std::vector<std::string> log;
  Stages stages;
  stages.push_back(std::make_unique<AccessRecorder>(&log));
  stages.push_back(std::make_unique<Recorder>(&log, "limits"));
  {
    StageChain chain(stages);
    RequestContext ctx;
    ctx.parsed.op = providers::Operation::count_tokens;
    EXPECT_TRUE(run(chain, ctx).proceeds());
    chain.finish(ctx);
  }
  EXPECT_EQ(log, (std::vector<std::string>{"request access", "finish access"}));
  log.clear();
  StageChain chain(stages);
  RequestContext ctx;
  ctx.parsed.op = providers::Operation::chat;
  EXPECT_TRUE(run(chain, ctx).proceeds());
  chain.finish(ctx);
  EXPECT_EQ(log.size(), 4u);
  EXPECT_EQ(log[1], "request limits");
}

TEST(StageChain, SettleWithoutStagesDoesNothing) {
  RequestContext ctx;
  ctx.settle();  // a request answered before the stages (unknown model): no chain yet
  Stages none;
  StageChain chain(none);
  Verdict v = run(chain, ctx);
  EXPECT_TRUE(v.proceeds());
}

}  // namespace
}  // namespace sluice::api
