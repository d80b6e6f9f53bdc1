// run_gateway(): config → Router, TLS context, per-worker upstream pools, Gateway handler.
#include "app/app.h"

#include <spdlog/spdlog.h>

#include "api/gateway.h"
#include "api/governance.h"
#include "app/workers.h"
#include "routing/router.h"
#include "store/redis_client.h"
#include "upstream/client.h"

namespace sluice::app {

int run_gateway(std::shared_ptr<const config::Config> config) {
  const config::ServerConfig& sc = config->server;
  RunOptions options;
  options.host = sc.listen_host;
  options.port = sc.listen_port;
  options.threads = sc.threads;
  options.limits.max_header_bytes = sc.max_header_bytes;
  options.limits.max_body_bytes = sc.max_body_bytes;
  options.limits.header_timeout = sc.header_timeout;
  options.limits.body_timeout = sc.body_timeout;
  options.limits.idle_timeout = sc.idle_timeout;
  options.limits.max_connections = sc.max_connections;
  options.drain_timeout = sc.drain_timeout;
  options.banner = "sluice";

  auto router = std::make_shared<const routing::Router>(config);
  auto tls = upstream::make_tls_context(config->upstream.ca_file);
  upstream::PoolLimits pool_limits;
  pool_limits.max_idle_per_host = config->upstream.max_idle_per_host;
  pool_limits.idle_timeout = config->upstream.idle_timeout;
  pool_limits.max_connections_per_host = config->upstream.max_connections_per_host;
  pool_limits.dns_ttl = config->upstream.dns_ttl;

  http::ServerShared shared;
  auto governance = std::make_shared<api::Governance>(*config);
  auto gateway = std::make_shared<api::Gateway>(router, &shared.draining, governance);
  for (const auto& route : config->routes) {
    spdlog::info("route {} → {} target(s)", route.model, route.targets.size());
  }
  bool health_started = false;
  return serve(options,
               [&](Worker& worker) -> http::Handler {
                 // Per-worker state: the upstream pool and, with the Redis backend, a Redis
                 // connection and limiter (pipelined, on this worker's loop).
                 struct State {
                   std::unique_ptr<upstream::Pool> pool;
                   std::unique_ptr<store::RedisClient> redis_client;
                   std::unique_ptr<governance::RedisRateLimiter> redis;
                   api::WorkerContext context;
                 };
                 auto state = std::make_shared<State>();
                 state->pool = std::make_unique<upstream::Pool>(worker.io, pool_limits, tls);
                 state->context.pool = state->pool.get();
                 if (governance->uses_redis()) {
                   const auto& rl = config->rate_limits;
                   state->redis_client = std::make_unique<store::RedisClient>(
                       worker.io.get_executor(), rl.redis_host, rl.redis_port, rl.redis_timeout);
                   state->redis =
                       std::make_unique<governance::RedisRateLimiter>(*state->redis_client);
                   state->context.redis = state->redis.get();
                 }
                 worker.state = state;
                 upstream::Pool* raw = state->pool.get();
                 api::WorkerContext* ctx = &state->context;
                 if (!health_started) {
                   // Health checks run on the first worker only: one prober per target.
                   health_started = true;
                   gateway->start_health_checks(worker.io, *raw);
                 }
                 return [gateway, ctx](http::Request& req, http::Responder& resp) {
                   return gateway->handle(req, resp, *ctx);
                 };
               },
               shared);
}

}  // namespace sluice::app
