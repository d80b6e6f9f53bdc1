// Stages: what runs around the dispatch of an API request, in the configured order
// (pipeline.stages, built in Gateway's constructor). Each may answer the request early; each that ran gets on_finish once,
// in reverse order, to reconcile what it started (ARCHITECTURE.md §4). What a stage acquires for
// the request lives in the RequestContext as an RAII member, so it is released on every path,
// on_finish or not (an exception, a coroutine destroyed at shutdown).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "api/usage.h"
#include "common/error.h"
#include "providers/request.h"

namespace sluice::api {

struct RequestContext;

/// A stage's decision on a request.
class Verdict {
 public:
  /// Go on with the next stage (and then the dispatch).
  static Verdict proceed() { return Verdict(); }
  /// Answer with `error` now: later stages and the dispatch do not run.
  static Verdict refuse(Error error) {
    Verdict v;
    v.error_ = std::move(error);
    return v;
  }
  /// The stage wrote a whole answer itself: nothing else runs.
  static Verdict answered() {
    Verdict v;
    v.answered_ = true;
    return v;
  }
  bool proceeds() const { return !error_ && !answered_; }
  /// The error to answer with (refuse()), else null.
  const Error* error() const { return error_ ? &*error_ : nullptr; }

 private:
  std::optional<Error> error_;
  bool answered_ = false;
};

/// What the request came to, as on_finish sees it.
struct DispatchOutcome {
  bool succeeded = false;            // an answer reached (or is being written to) the client
  std::optional<UsageTokens> usage;  // as the upstream reported it
  int64_t stream_events = 0;         // content events relayed (an estimate when no usage)
  std::string_view model;            // the model that answered: a fallback's when one did
  bool cache_hit = false;            // served by the response cache (no upstream call)
  double cost_factor = 1;            // share of the normal cost to charge
};

/// One stage instance serves every request of every worker (a Gateway's lifetime): per-request
/// state belongs in the RequestContext.
class Stage {
 public:
  virtual ~Stage() = default;
  /// Whether the stage runs for requests of `op` (a stage that does not run gets no on_finish
  /// either). Token counting spends nothing: only stages that decide access run for it.
  virtual bool applies_to(providers::Operation op) const {
    return op != providers::Operation::count_tokens;
  }
  /// Runs before the dispatch, on the request's worker.
  virtual boost::asio::awaitable<Verdict> on_request(RequestContext& ctx) const = 0;
  /// Runs once for every stage whose on_request ran, in reverse order: before a unary answer
  /// is written, else when the request ends.
  virtual void on_finish(RequestContext& ctx, const DispatchOutcome& outcome) const {
    (void)ctx;
    (void)outcome;
  }
};

using Stages = std::vector<std::unique_ptr<const Stage>>;

/// One request's pass through the stages: which ran, and whether they were finished.
class StageChain {
 public:
  explicit StageChain(const Stages& stages) : stages_(stages) {}
  StageChain(const StageChain&) = delete;
  StageChain& operator=(const StageChain&) = delete;

  /// on_request of each stage in order, until one does not proceed; its verdict.
  boost::asio::awaitable<Verdict> run(RequestContext& ctx);
  /// on_finish of every stage that ran, in reverse order; later calls do nothing.
  void finish(RequestContext& ctx);

 private:
  const Stages& stages_;
  std::vector<const Stage*> entered_;  // in the order they ran
  bool finished_ = false;
};

}  // namespace sluice::api
