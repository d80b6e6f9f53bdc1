// run_gateway(): config → Router, TLS context, per-worker upstream pools, Gateway handler; and
// hot reload: a new config is validated and built beside the old one, then every worker swaps
// to it between requests (requests in flight finish on the config they started with).
#include "app/app.h"

#include "api/protocols.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <fstream>
#include <mutex>

#include "api/gateway.h"
#include "api/governance.h"
#include "app/logging.h"
#include "app/workers.h"
#include "observe/access_log.h"
#include "observe/metrics.h"
#include "routing/router.h"
#include "store/redis_client.h"
#include "store/state_service.h"
#include "upstream/client.h"

namespace sluice::app {

namespace {

/// What one worker owns: its upstream pool, its Redis client (rate_limits.backend: redis) and
/// its handle on the current Gateway (replaced on its own thread at a reload).
struct WorkerState {
  std::unique_ptr<upstream::Pool> pool;
  std::unique_ptr<store::RedisClient> redis_client;
  std::unique_ptr<governance::RedisRateLimiter> redis;
  std::string redis_endpoint;  // host:port the client was made for
  std::vector<std::unique_ptr<governance::RedisRateLimiter>> retired_redis;
  std::vector<std::unique_ptr<store::RedisClient>> retired_clients;
  api::WorkerContext context;
  // Per worker, so taking a reference per request touches no cache line other workers write.
  std::shared_ptr<std::shared_ptr<api::Gateway>> current;
};

/// The state store `state:` asks for (SQLite: throws when the file cannot be opened).
std::shared_ptr<store::StateService> make_state(const config::Config& config) {
  const config::StateConfig& s = config.state;
  std::unique_ptr<store::StateStore> st;
  switch (s.backend) {
    case config::StateConfig::Backend::memory:
      st = store::make_memory_store(store::StoreLimits{s.max_entries, s.max_bytes});
      break;
    case config::StateConfig::Backend::sqlite: st = store::make_sqlite_store(s.path); break;
    case config::StateConfig::Backend::redis:
      st = store::make_redis_store(config.rate_limits.redis_host, config.rate_limits.redis_port,
                                   config.rate_limits.redis_timeout);
      break;
  }
  spdlog::info("state store: {}{}", st->backend(),
               s.backend == config::StateConfig::Backend::sqlite ? " at " + s.path : "");
  return std::make_shared<store::StateService>(std::move(st), s.sweep_interval);
}

struct FileStamp {
  bool ok = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  timespec mtime{};
  bool operator==(const FileStamp& o) const {
    return ok == o.ok && dev == o.dev && ino == o.ino && size == o.size &&
           mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec;
  }
};

FileStamp stamp_of(const std::string& path) {
  FileStamp s;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return s;  // follows symlinks (Kubernetes ConfigMaps)
  s.ok = true;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime = st.st_mtim;
  return s;
}

bool same_access_log(const config::AccessLogConfig& a, const config::AccessLogConfig& b) {
  return a.enabled == b.enabled && a.path == b.path && a.sample == b.sample &&
         a.include_bodies == b.include_bodies && a.queue == b.queue;
}

uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

class App {
 public:
  App(std::shared_ptr<const config::Config> config, const RunFlags& flags)
      : flags_(flags), config_(std::move(config)) {
    apply_logging(*config_);
    auto& r = observe::Registry::instance();
    reload_ok_ = r.counter("sluice_config_reloads_total",
                           "Configuration reloads attempted (SIGHUP or file change).",
                           observe::label("result", "success"));
    reload_failed_ = r.counter("sluice_config_reloads_total",
                               "Configuration reloads attempted (SIGHUP or file change).",
                               observe::label("result", "failure"));
    started_unix_ = std::chrono::duration<double>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    last_reload_unix_ = started_unix_;
    governance_config_ = config_;
    governance_ = std::make_shared<api::Governance>(config_);
    state_config_ = config_;
    state_ = make_state(*config_);
    if (config_->access_log.enabled) {
      access_log_ = std::make_shared<observe::AccessLog>(config_->access_log);
    }
    cache_ = std::make_shared<api::ResponseCache>(*config_);
    gateway_ = build_gateway(config_, governance_, access_log_, state_, cache_);
    stamp_ = stamp_of(config_->source_path);
    register_process_collector();
  }

  int run() {
    const config::ServerConfig& sc = config_->server;
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
    options.limits.max_buffered_body_bytes = sc.max_buffered_body_bytes;
    options.limits.render_error = &api::render_error;  // each API's errors in its own shape
    options.drain_timeout = sc.drain_timeout;
    options.banner = "sluice";
    options.tick = std::chrono::milliseconds(250);
    options.on_reload = [this] { reload("SIGHUP"); };
    options.on_tick = [this] { tick(); };
    if (config_->admin.listen_enabled) {
      // The operations endpoints get their own listener on the first worker: low traffic, and
      // the same Gateway (the current one after reloads) as that worker's API requests.
      ExtraListener admin;
      admin.host = config_->admin.listen_host;
      admin.port = config_->admin.listen_port;
      admin.banner = "sluice admin";
      admin.limits = options.limits;
      admin.factory = [](Worker& worker) -> http::Handler {
        auto* raw = static_cast<WorkerState*>(worker.state.get());
        return [raw](http::Request& req, http::Responder& resp) {
          std::shared_ptr<void> keep = raw->current;
          api::Gateway& gateway = **raw->current;
          return gateway.handle(req, resp, raw->context, std::move(keep), api::Listener::admin);
        };
      };
      options.extra = std::move(admin);
    }
    // Authentication on the request head (before the body is read), on the same per-worker
    // current Gateway the handler uses.
    options.head_check = [](Worker& worker) -> http::HeadCheck {
      WorkerState* raw = static_cast<WorkerState*>(worker.state.get());
      return [raw](http::Request& req) { return (*raw->current)->check_head(req); };
    };

    tls_ = upstream::make_tls_context(config_->upstream.ca_file);
    pool_limits_.max_idle_per_host = config_->upstream.max_idle_per_host;
    pool_limits_.idle_timeout = config_->upstream.idle_timeout;
    pool_limits_.max_connections_per_host = config_->upstream.max_connections_per_host;
    pool_limits_.dns_ttl = config_->upstream.dns_ttl;
    for (const auto& route : config_->routes) {
      spdlog::info("route {} → {} target(s)", route.model, route.targets.size());
    }
    return serve(
        options,
        [this](Worker& worker) -> http::Handler {
          auto state = std::make_shared<WorkerState>();
          state->pool = std::make_unique<upstream::Pool>(worker.io, pool_limits_, tls_);
          state->context.pool = state->pool.get();
          ensure_redis(*state, worker, *config_);
          state->current = std::make_shared<std::shared_ptr<api::Gateway>>(gateway_);
          worker.state = state;
          if (workers_.empty()) {
            // Health checks run on the first worker only: one prober per target.
            gateway_->start_health_checks(worker.io, *state->pool);
          }
          workers_.push_back({&worker, state});
          WorkerState* raw = state.get();
          return [raw](http::Request& req, http::Responder& resp) {
            // The request keeps the Gateway it started on alive until it ends.
            std::shared_ptr<void> keep = raw->current;
            api::Gateway& gateway = **raw->current;
            return gateway.handle(req, resp, raw->context, std::move(keep));
          };
        },
        shared_);
  }

 private:
  std::shared_ptr<api::Gateway> build_gateway(const std::shared_ptr<const config::Config>& config,
                                              std::shared_ptr<api::Governance> governance,
                                              std::shared_ptr<observe::AccessLog> access_log,
                                              std::shared_ptr<store::StateService> state,
                                              std::shared_ptr<api::ResponseCache> cache) {
    auto router = std::make_shared<const routing::Router>(config);
    auto gateway = std::make_shared<api::Gateway>(router, &shared_.draining, std::move(governance),
                                                  std::move(access_log), std::move(state),
                                                  std::move(cache));
    gateway->register_collectors();
    return gateway;
  }

  void ensure_redis(WorkerState& state, Worker& worker, const config::Config& config) {
    if (config.rate_limits.backend != config::RateLimitConfig::Backend::redis) return;
    const auto& rl = config.rate_limits;
    std::string endpoint = rl.redis_host + ":" + std::to_string(rl.redis_port);
    if (state.redis && state.redis_endpoint == endpoint) return;
    // A Redis client in use by requests in flight cannot be destroyed here: keep it alive
    // until the worker's state goes (a reload that moves Redis is rare).
    if (state.redis) {
      state.retired_redis.push_back(std::move(state.redis));
      state.retired_clients.push_back(std::move(state.redis_client));
    }
    state.redis_client = std::make_unique<store::RedisClient>(
        worker.io.get_executor(), rl.redis_host, rl.redis_port, rl.redis_timeout);
    state.redis = std::make_unique<governance::RedisRateLimiter>(*state.redis_client);
    state.redis_endpoint = endpoint;
    state.context.redis = state.redis.get();
  }

  void tick() {
    // Old gateways are destroyed here, on the main thread, once no request holds them
    // (a Governance joins its background thread when it goes: never on a worker).
    std::erase_if(graveyard_, [](const std::shared_ptr<api::Gateway>& g) {
      return g.use_count() == 1;
    });
    // Likewise old Governances: a detached token reconciliation may hold one after its
    // Gateway is gone; it must still be destroyed here (it joins threads), never on a worker.
    std::erase_if(governance_graveyard_, [](const std::shared_ptr<api::Governance>& g) {
      return g.use_count() == 1;
    });
    if (!config_->reload.watch || config_->source_path.empty()) return;
    auto now = std::chrono::steady_clock::now();
    if (now < next_watch_) return;
    next_watch_ = now + config_->reload.interval;
    FileStamp s = stamp_of(config_->source_path);
    if (s == stamp_) return;
    stamp_ = s;
    if (!s.ok) {
      spdlog::warn("config file {} is gone; keeping the running configuration",
                   config_->source_path);
      return;
    }
    reload("file change");
  }

  void reload(const char* why) {
    const std::string path = config_->source_path;
    spdlog::info("reloading {} ({})", path, why);
    stamp_ = stamp_of(path);
    std::shared_ptr<const config::Config> next;
    std::shared_ptr<api::Gateway> gateway;
    std::shared_ptr<api::Governance> governance = governance_;
    std::shared_ptr<const config::Config> governance_config = governance_config_;
    std::shared_ptr<observe::AccessLog> access_log = access_log_;
    std::shared_ptr<store::StateService> state = state_;
    std::shared_ptr<const config::Config> state_config = state_config_;
    std::shared_ptr<api::ResponseCache> cache = cache_;
    try {
      next = config::load_config(path);
      if (next->governance_fingerprint != governance_config_->governance_fingerprint) {
        // Keys, limits, prices or budgets changed: a new Governance (local rate-limit state
        // starts over; Redis-backed limits carry on). The usage ledger is handed over when it
        // keeps usage in the same place, so spend (budgets) carries on too, including what
        // requests still in flight on the old Governance record.
        std::shared_ptr<api::UsageLedger> ledger;
        if (api::same_usage_storage(*governance_config_, *next)) ledger = governance_->usage_ledger();
        governance = std::make_shared<api::Governance>(next, std::move(ledger));
        governance_config = next;
      }
      if (!same_access_log(next->access_log, config_->access_log)) {
        access_log.reset();
        if (next->access_log.enabled) {
          access_log = std::make_shared<observe::AccessLog>(next->access_log);
        }
      }
      if (next->state_fingerprint != state_config_->state_fingerprint) {
        // A new store (a SQLite file that cannot be opened rejects the reload). With the
        // memory backend what the old one held is gone once no request uses it.
        spdlog::warn("state (or redis) changed in {}: opening a new state store", path);
        state = make_state(*next);
        state_config = next;
      }
      if (next->cache_fingerprint != config_->cache_fingerprint) {
        spdlog::warn("cache (or redis) changed in {}: a new, empty response cache", path);
        cache = std::make_shared<api::ResponseCache>(*next);
      }
      gateway = build_gateway(next, governance, access_log, state, cache);
    } catch (const std::exception& e) {
      observe::add(reload_failed_);
      last_reload_ok_ = false;
      spdlog::error("configuration reload rejected, still serving the previous one: {}",
                    e.what());
      // The failed gateway (if any) registered no collector; restore ours.
      gateway_->register_collectors();
      return;
    }
    if (next->server_fingerprint != config_->server_fingerprint) {
      spdlog::warn("server settings (listen address, threads, limits) changed in {}: they take "
                   "effect at the next restart", path);
    }
    const auto& oa = config_->admin;
    const auto& na = next->admin;
    if (oa.listen_enabled != na.listen_enabled || oa.listen_host != na.listen_host ||
        oa.listen_port != na.listen_port) {
      spdlog::warn("admin.listen changed in {}: the admin listener moves at the next restart; "
                   "admin.on_public_listener and the admin token apply now", path);
    }
    const auto& ou = config_->upstream;
    const auto& nu = next->upstream;
    if (ou.max_idle_per_host != nu.max_idle_per_host || ou.idle_timeout != nu.idle_timeout ||
        ou.max_connections_per_host != nu.max_connections_per_host || ou.dns_ttl != nu.dns_ttl ||
        ou.ca_file != nu.ca_file) {
      spdlog::warn("upstream pool settings (max_idle_per_host, idle_timeout_ms, "
                   "max_connections_per_host, dns_ttl_ms, ca_file) changed in {}: they take "
                   "effect at the next restart; timeouts apply now", path);
    }
    apply_logging(*next);
    // Swap on every worker, on its own thread, between requests.
    for (auto& [worker, state] : workers_) {
      boost::asio::post(worker->io, [this, worker = worker, state = state, gateway, next,
                                     first = worker == workers_.front().first] {
        ensure_redis(*state, *worker, *next);
        state->current = std::make_shared<std::shared_ptr<api::Gateway>>(gateway);
        if (first) gateway->start_health_checks(worker->io, *state->pool);
      });
    }
    gateway_->retire();
    graveyard_.push_back(std::move(gateway_));
    if (governance != governance_) governance_graveyard_.push_back(governance_);
    gateway_ = std::move(gateway);
    config_ = std::move(next);
    governance_ = std::move(governance);
    governance_config_ = std::move(governance_config);
    state_ = std::move(state);
    state_config_ = std::move(state_config);
    cache_ = std::move(cache);
    access_log_ = std::move(access_log);
    publish_weak();
    observe::add(reload_ok_);
    last_reload_ok_ = true;
    last_reload_unix_ =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    size_t targets = 0;
    for (const auto& r : config_->routes) targets += r.targets.size();
    spdlog::info("configuration reloaded: {} routes, {} targets", config_->routes.size(),
                 targets);
  }

  void apply_logging(const config::Config& config) {
    configure_logging(flags_.log_level.empty() ? config.logging.level : flags_.log_level,
                      config.logging.json);
  }

  void register_process_collector() {
    observe::Registry::instance().set_collector("process", [this](std::string& out) {
      // Read on the scraping worker while the main thread may reload: only atomics and
      // values copied under the lock.
      std::lock_guard lock(scrape_mu_);
      out += "# HELP sluice_build_info Build information.\n# TYPE sluice_build_info gauge\n";
      out += "sluice_build_info{version=\"" SLUICE_VERSION "\"} 1\n";
      out += "# HELP sluice_open_connections Client connections open.\n"
             "# TYPE sluice_open_connections gauge\n";
      out += "sluice_open_connections " + std::to_string(shared_.open_connections.load()) + "\n";
      out += "# HELP sluice_config_last_reload_successful 1 if the last reload was applied.\n"
             "# TYPE sluice_config_last_reload_successful gauge\n";
      out += std::string("sluice_config_last_reload_successful ") +
             (last_reload_ok_.load() ? "1" : "0") + "\n";
      out += "# HELP sluice_config_last_reload_success_timestamp_seconds When the running "
             "configuration was loaded.\n"
             "# TYPE sluice_config_last_reload_success_timestamp_seconds gauge\n";
      out += "sluice_config_last_reload_success_timestamp_seconds ";
      observe::append_number(out, std::floor(last_reload_unix_.load()));
      out += "\n# HELP sluice_redis_errors_total Redis calls of the rate limiter that failed.\n"
             "# TYPE sluice_redis_errors_total counter\n";
      uint64_t redis_errors = 0;
      if (auto g = governance_weak_.lock()) redis_errors = g->redis_failures();
      out += "sluice_redis_errors_total " + std::to_string(redis_errors) + "\n";
      if (auto log = access_log_weak_.lock()) {
        out += "# HELP sluice_access_log_lines_total Access-log lines written or dropped "
               "(dropped: the destination could not keep up).\n"
               "# TYPE sluice_access_log_lines_total counter\n";
        out += "sluice_access_log_lines_total{result=\"written\"} " +
               std::to_string(log->written()) + "\n";
        out += "sluice_access_log_lines_total{result=\"dropped\"} " +
               std::to_string(log->dropped()) + "\n";
      }
      out += "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
             "# TYPE process_resident_memory_bytes gauge\n";
      out += "process_resident_memory_bytes " + std::to_string(resident_bytes()) + "\n";
      out += "# HELP process_start_time_seconds Start time of the process since the epoch.\n"
             "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds ";
      observe::append_number(out, std::floor(started_unix_));
      out += "\n";
    });
    publish_weak();
  }

  void publish_weak() {
    std::lock_guard lock(scrape_mu_);
    governance_weak_ = governance_;
    access_log_weak_ = access_log_;
  }

  RunFlags flags_;
  std::shared_ptr<const config::Config> config_;
  std::shared_ptr<api::Governance> governance_;
  std::shared_ptr<const config::Config> governance_config_;  // what governance_ was built from
  std::shared_ptr<store::StateService> state_;
  std::shared_ptr<api::ResponseCache> cache_;  // kept across reloads that leave `cache` alone
  std::shared_ptr<const config::Config> state_config_;       // what state_ was built from
  std::shared_ptr<observe::AccessLog> access_log_;
  std::shared_ptr<api::Gateway> gateway_;
  std::vector<std::shared_ptr<api::Gateway>> graveyard_;
  std::vector<std::shared_ptr<api::Governance>> governance_graveyard_;
  std::vector<std::pair<Worker*, std::shared_ptr<WorkerState>>> workers_;
  http::ServerShared shared_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  upstream::PoolLimits pool_limits_;
  FileStamp stamp_;
  std::chrono::steady_clock::time_point next_watch_{};
  observe::Cell reload_ok_ = 0, reload_failed_ = 0;
  std::atomic<bool> last_reload_ok_{true};
  std::atomic<double> last_reload_unix_{0};
  double started_unix_ = 0;
  std::mutex scrape_mu_;
  std::weak_ptr<api::Governance> governance_weak_;
  std::weak_ptr<observe::AccessLog> access_log_weak_;
};

}  // namespace

int run_gateway(std::shared_ptr<const config::Config> config, const RunFlags& flags) {
  // Before any thread exists (governance, access log): a SIGHUP must never reach a thread
  // that would take the default action (terminate).
  block_control_signals();
  App app(std::move(config), flags);
  return app.run();
}

}  // namespace sluice::app
