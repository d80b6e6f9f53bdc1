// Requests the gateway makes to itself: a session's fact extraction, summary or embedding
// (later a batch line). They go through the whole pipeline — routing, translation, retries,
// the caller's limits, budgets and usage — as an HTTP request would, but with no socket: the
// answer is captured (http::Captured) instead of written.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "api/governance.h"

namespace sluice::api {

struct WorkerContext;

struct LocalAnswer {
  int status = 0;    // 0: the call could not be made (the gateway is gone)
  std::string body;  // in OpenAI's shape (an error body when status ≥ 400)
};

class LocalCaller {
 public:
  virtual ~LocalCaller() = default;
  /// POSTs `body` (JSON) to `path` ("/v1/chat/completions", "/v1/embeddings") as `who`, on the
  /// calling worker. `purpose` names the call in logs (x-sluice-internal).
  virtual boost::asio::awaitable<LocalAnswer> call(const std::string& path, const std::string& body,
                                                   const Identity& who, WorkerContext& worker,
                                                   const std::string& purpose) = 0;
  /// Keeps the caller (and what it owns) alive while background work runs; null when it is
  /// already going away.
  virtual std::shared_ptr<void> hold() = 0;
};

}  // namespace sluice::api
