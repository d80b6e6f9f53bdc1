// Sluice configuration: plain structs filled from YAML by load_config(). Read-only once built;
// the whole Config is swapped atomically on reload, so nothing here is ever mutated in place.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::config {

using Millis = std::chrono::milliseconds;

/// Thrown by load_config()/parse_config() only (startup and reload, never the data plane).
/// what() is "<yaml.path>: <problem>", e.g. "routes[2].targets[0].weight: must be > 0".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ServerConfig {
  std::string listen_host = "127.0.0.1";    // from `listen: host:port`
  uint16_t listen_port = 8080;              // 0 = ephemeral (the bound port is logged)
  int threads = 0;                          // 0 = auto (hardware concurrency)
  size_t max_header_bytes = 64 * 1024;      // → 431
  size_t max_body_bytes = 16 * 1024 * 1024; // → 413
  Millis header_timeout{10'000};            // whole request head must arrive within this
  Millis body_timeout{60'000};              // whole request body must arrive within this
  Millis idle_timeout{60'000};              // keep-alive connection with no request
  size_t max_connections = 20'000;          // beyond: accepted and closed at once
  size_t max_buffered_body_bytes = 256ull * 1024 * 1024;  // all connections' body buffers → 503
  Millis drain_timeout{15'000};             // graceful shutdown deadline
};

struct Timeouts {
  Millis connect{5'000};
  Millis first_byte{60'000};    // request sent → response head received
  Millis stream_idle{60'000};   // between two body reads (stream events)
  Millis total{600'000};        // whole exchange
};

struct UpstreamConfig {
  size_t max_idle_per_host = 64;            // per worker thread
  Millis idle_timeout{60'000};              // pooled connection unused this long is closed
  size_t max_connections_per_host = 1024;   // per worker thread
  Millis dns_ttl{30'000};
  Timeouts timeouts;                        // defaults for every target
  std::string ca_file;                      // extra CA bundle (PEM); empty = system store
};

/// The upstream protocol of a target. openai: any OpenAI-compatible server (the same-protocol
/// fast path for OpenAI clients); anthropic: the Messages API; gemini: generateContent; demo: the
/// built-in model (no upstream).
enum class ProviderKind { openai, anthropic, gemini, demo };

/// True for the providers reached over HTTP (every one but demo).
inline bool is_http_provider(ProviderKind k) { return k != ProviderKind::demo; }

/// How failed attempts are retried within one route (issue: resilience).
enum class Jitter { none, full, equal, decorrelated };
struct RetryPolicy {
  int max_attempts = 2;               // attempts on this route, first included (1 = no retry)
  Millis backoff_base{100};           // wait before retry n: min(cap, base * 2^(n-1)), jittered
  Millis backoff_cap{2'000};
  Jitter jitter = Jitter::full;
  Millis deadline{0};                 // whole request, every attempt and wait; 0 = the first
                                      // target's timeouts.total
  bool retry_on_timeout = false;      // retry a timeout that happened after the request was sent
  double budget_ratio = 0.2;          // retries may add at most this share of a target's
  Millis budget_window{10'000};       //   requests over the window...
  int budget_min_retries = 3;         //   ...but this many per window are always allowed
};

/// Per-target circuit breaker over a rolling window.
struct BreakerConfig {
  bool enabled = true;
  double failure_ratio = 0.5;         // open when failures/requests in the window exceed this
  int min_requests = 10;              //   and the window has at least this many requests
  Millis window{10'000};
  Millis cooldown{5'000};             // open → half-open after this
  int half_open_probes = 1;           // requests admitted while half-open
};

/// Per-target concurrency limit: a semaphore with a bounded wait queue.
struct ConcurrencyConfig {
  int max_in_flight = 0;              // 0 = unlimited
  int max_queue = 0;                  // waiters beyond max_in_flight; 0 = fail fast
  Millis queue_timeout{1'000};
};

/// Optional active health checks per target (GET base_url + path).
struct HealthCheckConfig {
  bool enabled = false;
  std::string path = "/models";
  Millis interval{10'000};
  Millis timeout{2'000};
  int healthy_threshold = 2;
  int unhealthy_threshold = 3;
};

enum class BalancerKind { weighted_round_robin, least_in_flight, latency };
enum class ApiStyle { openai, azure };

struct TargetConfig {
  ProviderKind provider = ProviderKind::openai;
  std::string base_url;       // e.g. https://api.openai.com/v1 (required for openai)
  std::string model;          // upstream model name; empty = the client's model unchanged
  std::string api_key_env;    // name of the environment variable holding the key; may be empty
  std::string api_key;        // resolved from api_key_env at load time (never from YAML)
  ApiStyle api_style = ApiStyle::openai;
  std::string api_version;    // azure: api-version query parameter
  uint32_t weight = 1;        // > 0
  Timeouts timeouts;          // upstream.timeouts overlaid with the target's own
  std::map<std::string, std::string> headers;  // extra headers sent upstream
  // Client headers passed upstream besides the ones the provider needs (names or globs,
  // lower-case). Everything else a client sends stays at the gateway.
  std::vector<std::string> forward_headers;
  BreakerConfig breaker;
  ConcurrencyConfig concurrency;
  HealthCheckConfig health;
  std::string name;           // for metrics/admin: "<route model>#<index>" unless set
  // Parsed from base_url:
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string base_path;      // path prefix without trailing slash, e.g. "/v1"
};

/// How a session-augmented request is packed and what the gateway does after its turn, per
/// route (`routes[].sessions`, defaults from `state.sessions`).
struct SessionTuning {
  int memories_k = 8;                       // memories considered for a request
  double memory_share = 0.2;                // of the context budget memories and summaries may take
  int64_t margin_tokens = 256;              // left free besides max_tokens
  double alpha = 1.0, beta = 0.2, gamma = 0.3;  // score = α·relevance + β·recency + γ·weight
  double half_life_s = 7 * 86'400;          // recency halves every half_life_s
  std::string extract_model;                // facts extracted after each turn by this model ("" = off)
  std::string summary_model;                // evicted turns summarized by this model ("" = off)
  int summary_min_turns = 4;                // evicted, unsummarized turns that start a summary
  int summary_max_turns = 32;               // turns one summary covers at most
};

/// A route's response cache (`routes[].cache`, docs/cache.md).
struct RouteCacheConfig {
  bool enabled = false;
  enum class Mode { all, on_request } mode = Mode::all;  // on_request: x-sluice-cache: on
  int64_t ttl_s = 3600;            // how long an answer is served
  bool tool_calls = false;         // store answers that call tools
  double hit_cost = 0;             // share of the normal cost a hit is charged
  Millis flight_wait{30'000};      // identical misses wait this long for the first one's answer
  // The semantic tier (single-turn questions answered by a similar earlier one).
  struct Semantic {
    bool enabled = false;
    std::string embeddings_model;  // a routed embeddings model (required when enabled)
    double threshold = 0.95;       // cosine similarity; a request may raise it, never lower it
    Millis timeout{1'000};         // an embedding slower than this is a miss
  } semantic;
};

struct RouteConfig {
  std::string model;          // exact name or glob (`*`, `?`), e.g. "gpt-4o*"
  bool is_glob = false;
  std::vector<TargetConfig> targets;  // at least one
  std::string description;
  RetryPolicy retry;
  BalancerKind balancer = BalancerKind::weighted_round_robin;
  std::vector<std::string> fallbacks;  // model names tried in order when this route fails
  std::string context_fallback;       // model for context-length errors (larger context)
  bool fail_fast = false;             // true: never queue for a concurrency slot
  int64_t context_window = 0;         // tokens; max_tokens above it → 400 (0 = only 2^31-1)
  // max_tokens sent to an upstream that requires one (anthropic) when the client gave none.
  int64_t default_max_tokens = 4096;
  SessionTuning sessions;             // state.sessions' with this route's overrides
  RouteCacheConfig cache;
};

/// The response cache's tiers (top-level `cache`, docs/cache.md).
struct CacheConfig {
  size_t l1_max_bytes = size_t{256} << 20;  // in-process tier
  size_t max_entry_bytes = size_t{1} << 20; // an answer bigger than this is not stored
  bool l2_redis = false;                    // second tier in the top-level `redis` server
  size_t semantic_max_entries = 10'000;     // questions in each semantic index (per embeddings model)
  bool flight_lock = false;                 // single flight across instances (a lock per key in L2)
};

/// Request and token rate limits; 0 = no limit for that dimension.
struct RateLimits {
  int64_t requests_per_minute = 0;
  int64_t tokens_per_minute = 0;
  int64_t tokens_per_day = 0;
  bool any() const { return requests_per_minute || tokens_per_minute || tokens_per_day; }
};

/// Spending cap over a calendar period (UTC). usd == 0: no budget.
struct Budget {
  double usd = 0;
  enum class Period { day, month } period = Period::month;
  bool any() const { return usd > 0; }
};

/// Price of a model (first matching glob wins), in USD per million tokens.
struct Price {
  std::string model;
  double input_per_million = 0;
  double cached_input_per_million = 0;  // prompt_tokens_details.cached_tokens
  double output_per_million = 0;
};

/// A virtual API key declared in config. The secret is never in YAML: either an environment
/// variable holding the key, or its SHA-256 (hex) precomputed with `sluice hash-key`.
struct ApiKeyConfig {
  std::string name;                   // unique
  std::string key_sha256;             // lower-case hex; from key_env (hashed at load) or given
  std::string key_env;
  std::string tenant;                 // "" = the key's own name
  std::vector<std::string> models;    // allowed model globs; empty = all
  RateLimits limits;
  Budget budget;                      // the key's own; none = budgets.per_key
  int64_t expires_unix = 0;           // 0 = never; from `expires: 2026-12-31T00:00:00Z`
};

struct JwtConfig {
  bool enabled = false;
  std::vector<std::string> algorithms;  // subset of HS256, RS256, ES256 (required if enabled)
  std::string secret;                 // HS256, resolved from secret_env
  std::string secret_env;
  std::string public_key_file;        // PEM (RS256 / ES256)
  std::string jwks_file;              // JWKS JSON (RSA / EC keys, `kid` matched), reloaded on change
  std::string issuer;                 // required `iss` if set
  std::string audience;               // required in `aud` if set
  Millis clock_skew{60'000};
  std::string tenant_claim = "tenant";
};

struct AuthConfig {
  bool enabled = false;               // false: every request is anonymous (the embedded default)
  std::string keys_db;                // SQLite file for keys created through /admin/keys ("" = none)
  enum class KeysBackend { sqlite, redis };
  KeysBackend keys_backend = KeysBackend::sqlite;  // redis: created keys shared through Redis
  std::vector<ApiKeyConfig> keys;
  JwtConfig jwt;
};

struct RateLimitConfig {
  enum class Backend { memory, redis };
  Backend backend = Backend::memory;  // redis: exact limits shared by every instance
  // The Redis connection of every Redis feature (limits, keys, budgets): from `redis.url` /
  // `redis.timeout_ms`, or the older spelling `rate_limits.redis.url` / `timeout_ms`.
  std::string redis_host = "127.0.0.1";
  uint16_t redis_port = 6379;
  Millis redis_timeout{250};
  bool fail_open = true;              // Redis unreachable: admit (true) or reject with 503
  RateLimits per_key;                                 // default for every key without its own
  std::map<std::string, RateLimits> per_tenant;       // tenant name → limits ("*" = each tenant)
  std::vector<std::pair<std::string, RateLimits>> per_model;  // model glob → limits, in order
};

/// `pipeline`: the stages every routed request passes through, in order (their on_finish runs
/// in reverse). The names the gateway knows (api/gateway.cc builds them).
inline constexpr std::string_view kStageNames[] = {"authorize_model", "budget", "rate_limit",
                                                   "usage", "cache"};
struct PipelineConfig {
  std::vector<std::string> stages{"authorize_model", "budget", "rate_limit", "usage", "cache"};
};

struct MetricsConfig {
  bool enabled = true;                // GET <path> in the Prometheus text format
  std::string path = "/metrics";
  bool require_admin_token = false;   // scrapes must send the admin token
  bool server_timing = false;         // server-timing header on every API response (opt-in:
                                      // it tells clients the gateway's phase times)
  // Check every translated stream sent to a client against its protocol's shape rules and
  // count violations in sluice_stream_invariant_violations_total{format,rule}.
  bool validate_streams = false;
};

/// The operations listener: /metrics, /admin/*, /debug/pprof/* (and /healthz, /readyz).
struct AdminConfig {
  bool listen_enabled = true;               // false: `listen: off` (or empty), no admin listener
  std::string listen_host = "127.0.0.1";    // from `listen: host:port`
  uint16_t listen_port = 9090;              // 0 = ephemeral (printed on stdout)
  bool on_public_listener = false;          // also serve the operations paths on server.listen
};

struct AccessLogConfig {
  bool enabled = false;
  std::string path = "stdout";        // "stdout", "stderr" or a file (appended)
  double sample = 1.0;                // fraction of successful requests logged; errors always
  bool include_bodies = false;        // log request bodies (prompts): off unless asked for
  size_t queue = 8192;                // lines buffered per worker thread; when full, new ones are dropped
};

struct LoggingConfig {
  std::string level = "info";         // trace, debug, info, warn, error, critical, off
  bool json = false;                  // format: text | json
};

struct ReloadConfig {
  bool watch = true;                  // reload when the config file changes (polled)
  Millis interval{1000};              // how often the file is checked
};

/// `state`: what the gateway remembers between requests (stored Responses, conversations).
struct StateConfig {
  enum class Backend { memory, sqlite, redis };
  Backend backend = Backend::memory;
  std::string path;                          // sqlite: the file (relative to the config file)
  size_t max_entries = 1'000'000;            // memory: records + list items
  size_t max_bytes = size_t{512} << 20;      // memory: bytes of keys and values
  Millis sweep_interval{1000};               // how often expired state is removed
  int64_t responses_ttl_s = 30 * 86'400;     // stored responses (OpenAI keeps them 30 days)
  int64_t conversations_ttl_s = 0;           // conversations and their items (0 = no expiry)
  int max_chain = 1000;                      // previous_response_id links replayed at most
  size_t files_max_bytes = size_t{512} << 20;  // one uploaded file (/v1/files)
  int64_t files_ttl_s = 0;                   // files expire after this (0 = kept until deleted)
  struct Sessions {
    int64_t idle_ttl_s = 86'400;             // default of a session's idle_ttl (0 = none)
    int64_t max_ttl_s = 0;                   // default of a session's max_ttl (0 = none)
    int64_t default_context_window = 128'000;  // for routes without context_window
    SessionTuning tuning;                    // defaults of every route's `sessions`
    // Vector similarity: memories and queries embedded by this routed embeddings model
    // ("" = BM25 only); relevance = (1 − vector_weight)·BM25 + vector_weight·cosine.
    std::string embeddings_model;
    double vector_weight = 0.5;
    int background_jobs = 32;                // extraction/summary/embedding calls in flight
  } sessions;
};

struct Config {
  ServerConfig server;
  UpstreamConfig upstream;
  std::vector<RouteConfig> routes;  // active routes only (see `when_env`), in file order
  std::string admin_token;          // from admin.token_env; empty = admin endpoints disabled
  AdminConfig admin;
  AuthConfig auth;
  RateLimitConfig rate_limits;
  std::vector<Price> prices;
  Budget budget_per_key;                       // budgets.per_key
  std::map<std::string, Budget> budget_per_tenant;  // budgets.per_tenant ("*" = each tenant)
  std::string usage_db;                        // usage.db: SQLite file ("" = in memory only)
  bool budget_spend_in_redis = false;          // budgets.backend: redis (spend shared, ~1 s lag)
  PipelineConfig pipeline;
  MetricsConfig metrics;
  bool expose_upstream_errors = false;         // errors.expose_upstream: origins and bodies in 5xx
  AccessLogConfig access_log;
  LoggingConfig logging;
  ReloadConfig reload;
  StateConfig state;
  CacheConfig cache;
  // What a reload cannot apply in place: the YAML of server (listen address, threads, limits)
  // and of everything governance builds state from (auth, admin, rate_limits, prices, budgets,
  // usage). Compared between the old and the new config on reload.
  std::string server_fingerprint;
  std::string governance_fingerprint;
  std::string state_fingerprint;    // state + redis: a new store only when these change
  std::string cache_fingerprint;  // the `cache` and `redis` sections: a new response cache when it changes
  std::string source_path;          // file it came from (empty when parsed from a string)
};

/// Reads and validates a YAML file. Throws ConfigError with a YAML path on any problem,
/// including unknown keys and unreadable files.
std::shared_ptr<const Config> load_config(const std::string& path);

/// Same, from YAML text (tests).
std::shared_ptr<const Config> parse_config(const std::string& yaml_text);

/// Glob match with `*` (any run) and `?` (one char); case-sensitive.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace sluice::config
