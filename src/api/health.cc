// Active health checks: GET <base_url><path> every interval; consecutive failures mark a
// target unhealthy (balancers skip it), consecutive successes bring it back.
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "api/gateway.h"

namespace sluice::api {

namespace {

asio::awaitable<void> check_loop(std::shared_ptr<Gateway> gateway, TargetRuntime& target,
                                 upstream::Pool& pool) {
  const config::TargetConfig& cfg = target.state.config;
  const config::HealthCheckConfig& hc = cfg.health;
  config::Timeouts timeouts;
  timeouts.connect = hc.timeout;
  timeouts.first_byte = hc.timeout;
  timeouts.stream_idle = hc.timeout;
  timeouts.total = hc.timeout;
  std::string head = "GET " + cfg.base_path + hc.path + " HTTP/1.1\r\nHost: " + cfg.host;
  if ((cfg.tls && cfg.port != 443) || (!cfg.tls && cfg.port != 80)) {
    head += ":" + std::to_string(cfg.port);
  }
  head += "\r\nUser-Agent: sluice-health-check\r\n";
  if (!cfg.api_key.empty()) {
    head += cfg.api_style == config::ApiStyle::azure ? "api-key: " : "Authorization: Bearer ";
    head += cfg.api_key + "\r\n";
  }
  head += "\r\n";
  int successes = 0, failures = 0;
  asio::steady_timer timer(pool.io());
  for (;;) {
    timer.expires_after(hc.interval);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || gateway->retired()) co_return;
    bool ok = false;
    std::string why;
    {
      upstream::Call call(pool, target.origin, timeouts);
      std::array<asio::const_buffer, 1> wire{asio::buffer(head)};
      auto started = co_await call.start(wire);
      if (!started) {
        why = started.error().message;
      } else {
        auto body = co_await call.read_all(1024 * 1024);
        ok = body.ok() && call.status() >= 200 && call.status() < 300;
        if (!ok) why = "HTTP " + std::to_string(call.status());
        if (body) call.finish();
      }
    }
    bool healthy = target.state.healthy.load();
    if (ok) {
      failures = 0;
      if (!healthy && ++successes >= hc.healthy_threshold) {
        target.state.healthy.store(true);
        spdlog::info("health check: {} is healthy again", cfg.name);
      }
    } else {
      successes = 0;
      if (healthy && ++failures >= hc.unhealthy_threshold) {
        target.state.healthy.store(false);
        spdlog::warn("health check: {} marked unhealthy ({})", cfg.name, why);
      }
    }
  }
}

}  // namespace

void Gateway::start_health_checks(asio::io_context& io, upstream::Pool& pool) {
  for (const auto& rr : dispatcher_.routes()) {
    for (auto& t : rr->targets) {
      if (t->state.config.health.enabled &&
          config::is_http_provider(t->state.config.provider)) {
        asio::co_spawn(io, check_loop(shared_from_this(), *t, pool), asio::detached);
      }
    }
  }
}

}  // namespace sluice::api
