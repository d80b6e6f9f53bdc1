// Governance as stages (pipeline.stages names them, in the order they run): the caller's
// model permission, their budget, their rate limits (which reserve tokens), and the usage
// record. Authentication stays on the request head (Gateway::check_head), before the body.
#pragma once

#include <memory>

#include "api/governance.h"
#include "api/request_context.h"
#include "api/stage.h"

namespace sluice::api {

/// 403 when the caller's key may not use the requested model. Also answers the dispatcher's
/// question for fallbacks and larger-context routes (ModelAccess): a route the caller may not
/// use is skipped.
class AuthorizeModelStage final : public Stage, public ModelAccess {
 public:
  explicit AuthorizeModelStage(std::shared_ptr<Governance> governance)
      : governance_(std::move(governance)) {}
  bool applies_to(providers::Operation) const override { return true; }
  boost::asio::awaitable<Verdict> on_request(RequestContext& ctx) const override;
  bool allows(const RequestContext& ctx, std::string_view model) const override;

 private:
  std::shared_ptr<Governance> governance_;
};

/// 429 insufficient_quota when the caller's key or tenant budget is spent. Runs before
/// AdmitStage: a request it refuses must not reserve (and drain) shared token buckets.
class BudgetStage final : public Stage {
 public:
  explicit BudgetStage(std::shared_ptr<Governance> governance)
      : governance_(std::move(governance)) {}
  boost::asio::awaitable<Verdict> on_request(RequestContext& ctx) const override;

 private:
  std::shared_ptr<Governance> governance_;
};

/// Request and token rate limits (429 with Retry-After; x-ratelimit-* headers either way). An
/// admitted request holds a token reservation (ctx.reservation, RAII: refunded if the request
/// ends without on_finish); on_finish replaces it by the real usage.
class AdmitStage final : public Stage {
 public:
  explicit AdmitStage(std::shared_ptr<Governance> governance)
      : governance_(std::move(governance)) {}
  boost::asio::awaitable<Verdict> on_request(RequestContext& ctx) const override;
  void on_finish(RequestContext& ctx, const DispatchOutcome& outcome) const override;

 private:
  std::shared_ptr<Governance> governance_;
};

/// Records what an answered request used and cost (the spend BudgetStage reads), under the
/// model that answered. Last in the table, so its on_finish runs first.
class UsageStage final : public Stage {
 public:
  explicit UsageStage(std::shared_ptr<Governance> governance)
      : governance_(std::move(governance)) {}
  boost::asio::awaitable<Verdict> on_request(RequestContext& ctx) const override;
  void on_finish(RequestContext& ctx, const DispatchOutcome& outcome) const override;

 private:
  std::shared_ptr<Governance> governance_;
};

}  // namespace sluice::api
