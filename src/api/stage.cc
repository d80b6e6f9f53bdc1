// The stage chain: stages in configured order, their on_finish once in reverse (see stage.h).
#include "api/stage.h"

#include "api/request_context.h"

namespace sluice::api {

namespace asio = boost::asio;

asio::awaitable<Verdict> StageChain::run(RequestContext& ctx) {
  for (const auto& stage : stages_) {
    if (!stage->applies_to(ctx.parsed.op)) continue;
    entered_.push_back(stage.get());  // a stage that refuses still gets its on_finish
    Verdict verdict = co_await stage->on_request(ctx);
    if (!verdict.proceeds()) co_return verdict;
  }
  co_return Verdict::proceed();
}

void StageChain::finish(RequestContext& ctx) {
  if (finished_) return;
  finished_ = true;
  DispatchOutcome outcome;
  outcome.succeeded = ctx.succeeded;
  outcome.usage = ctx.usage;
  outcome.stream_events = ctx.stream_events;
  outcome.cache_hit = ctx.cache_hit;
  outcome.cost_factor = ctx.cost_factor;
  outcome.model = ctx.served_model.empty() ? std::string_view(ctx.parsed.model)
                                           : std::string_view(ctx.served_model);
  for (size_t i = entered_.size(); i-- > 0;) entered_[i]->on_finish(ctx, outcome);
}

}  // namespace sluice::api
