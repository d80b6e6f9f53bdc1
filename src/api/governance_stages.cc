// Governance stages: see governance_stages.h.
#include "api/governance_stages.h"

#include <boost/asio/this_coro.hpp>

#include "common/saturating.h"

namespace sluice::api {

namespace asio = boost::asio;

asio::awaitable<Verdict> AuthorizeModelStage::on_request(RequestContext& ctx) const {
  if (auto allowed = governance_->authorize_model(*ctx.who, ctx.parsed.model); !allowed) {
    co_return Verdict::refuse(std::move(allowed.error()));
  }
  ctx.model_access = this;
  co_return Verdict::proceed();
}

bool AuthorizeModelStage::allows(const RequestContext& ctx, std::string_view model) const {
  return governance_->authorize_model(*ctx.who, model).ok();
}

asio::awaitable<Verdict> BudgetStage::on_request(RequestContext& ctx) const {
  if (auto budget = governance_->check_budget(*ctx.who); !budget) {
    co_return Verdict::refuse(std::move(budget.error()));
  }
  co_return Verdict::proceed();
}

asio::awaitable<Verdict> AdmitStage::on_request(RequestContext& ctx) const {
  int64_t estimate =
      estimate_request_tokens(ctx.request->body.size(), ctx.parsed.max_tokens, ctx.parsed.n);
  governance::RedisRateLimiter* redis = ctx.worker->redis;
  auto admitted =
      co_await governance_->admit(*ctx.who, ctx.parsed.model, estimate, *ctx.responder, redis);
  if (!admitted) co_return Verdict::refuse(std::move(admitted.error()));
  // From here the reservation is settled on every path (refunded if no answer comes).
  // (The executor is fetched first: no temporaries across a co_await.)
  auto executor = co_await asio::this_coro::executor;
  ctx.reservation =
      Reservation(governance_, std::move(admitted.value()), redis, std::move(executor));
  co_return Verdict::proceed();
}

void AdmitStage::on_finish(RequestContext& ctx, const DispatchOutcome& outcome) const {
  // Real usage replaces the estimate; a request that never got an answer costs nothing; an
  // answer without a usage report keeps its reservation (the conservative choice).
  if (!ctx.reservation.active()) return;
  std::optional<int64_t> actual;
  if (!outcome.succeeded || outcome.cache_hit) {  // a cache hit cost the upstream nothing
    actual = 0;
  } else if (outcome.usage) {  // estimates do not replace a reservation
    actual = sat_add(outcome.usage->input, outcome.usage->output);
  }
  ctx.reservation.settle(actual);
}

asio::awaitable<Verdict> UsageStage::on_request(RequestContext&) const {
  co_return Verdict::proceed();
}

void UsageStage::on_finish(RequestContext& ctx, const DispatchOutcome& outcome) const {
  if (!outcome.succeeded || !governance_->accounts_usage()) return;
  // Usage and cost, also for streams cut short: without a usage report the prompt is
  // estimated from the body and the answer from the events relayed (~1 token each).
  UsageTokens tokens = outcome.usage.value_or(
      UsageTokens{static_cast<int64_t>(ctx.request->body.size() / 4) + 1, 0,
                  std::max<int64_t>(0, outcome.stream_events - 2)});
  const Identity& who = *ctx.who;
  governance_->usage().record(who.key_id, who.tenant, outcome.model, tokens,
                              governance_->cost(outcome.model, tokens) * outcome.cost_factor);
}

}  // namespace sluice::api
