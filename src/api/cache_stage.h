// The response cache stage (docs/cache.md): answers a repeated question from the cache
// (api/response_cache.h), and on a miss tees the answer into it. Exact match on a canonical form
// of the request (cache/key.h); on routes that ask for it, a single-turn question also matches
// a similar earlier one (cache/semantic.h: its embedding close enough, and the lexical guards
// satisfied). Identical misses in flight at once make one upstream call: the first leads, the
// others wait for its answer (bounded) and replay it. Entries are canonical answers, so one
// stored answer serves every client protocol, unary or streamed (burst, or paced with
// x-sluice-cache-replay: paced).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "api/local_call.h"
#include "api/response_cache.h"
#include "api/stage.h"
#include "cache/key.h"

namespace sluice::api {

namespace asio = boost::asio;

struct SemanticProbe;  // cache_stage.cc

class CacheStage final : public Stage {
 public:
  /// `caller` makes the embedding calls of the semantic tier.
  CacheStage(std::shared_ptr<ResponseCache> cache, bool validate_streams, LocalCaller& caller)
      : cache_(std::move(cache)), validate_streams_(validate_streams), caller_(caller) {}
  bool applies_to(providers::Operation op) const override {
    return op == providers::Operation::chat;
  }
  asio::awaitable<Verdict> on_request(RequestContext& ctx) const override;

 private:
  /// Answers from `stored` (its decoded entry when it has one, else its bytes).
  asio::awaitable<void> serve(RequestContext& ctx, const cache::Stored& stored,
                              const char* tier) const;
  struct Similar {
    ResponseCache::Found found;
    float similarity = 0;
  };
  /// Starts embedding the request's question when it is eligible for the semantic tier (null
  /// when it is not).
  std::shared_ptr<SemanticProbe> start_probe(const asio::any_io_executor& ex,
                                                    RequestContext& ctx, cache::Api api,
                                                    const cache::Scope& scope) const;
  /// Waits (at most `timeout`) for the question's embedding, then looks for a similar question
  /// whose answer is still cached (and young enough) and that the guards allow.
  asio::awaitable<std::optional<Similar>> find_similar(
      SemanticProbe& probe, double threshold, std::chrono::milliseconds timeout,
      int64_t now, const std::function<bool(const cache::Stored&)>& young) const;
  std::shared_ptr<ResponseCache> cache_;
  bool validate_streams_;
  LocalCaller& caller_;
};


}  // namespace sluice::api
