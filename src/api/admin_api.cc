// The operations API: the admin token check, /admin/usage, /admin/upstreams, /admin/cache and the metrics
// scrape (/admin/keys: admin_keys.cc). Served on admin.listen (or on the public listener with
// admin.on_public_listener: true); the gateway's endpoint table routes here.
#include "api/admin_api.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <chrono>
#include <cstdio>

#include "canonical/json.h"
#include "common/query.h"
#include "observe/metrics.h"

namespace sluice::api {

namespace asio = boost::asio;

namespace {

// The admin token must leak neither its bytes nor its length through response timing: compare
// fixed-size digests of both sides in constant time (the time depends only on the length of
// what the client sent, which it knows).
bool token_equals(std::string_view given, std::string_view expected) {
  unsigned char a[SHA256_DIGEST_LENGTH];
  unsigned char b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

}  // namespace

asio::awaitable<bool> AdminApi::allowed(http::Request& request, http::Responder& responder) {
  const std::string& token = router_->config().admin_token;
  if (token.empty()) {
    {
      const Error error = make_error(
        Errc::not_found, "The admin API is disabled: set admin.token_env in the config and "
                         "export that variable.");
      co_await responder.send_error(error);
    }
    co_return false;
  }
  std::string_view auth = request.header("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (!auth.starts_with(kBearer) || !token_equals(auth.substr(kBearer.size()), token)) {
    const Error error =
        make_error(Errc::unauthorized, "A valid admin token is required (Authorization: Bearer).");
    co_await responder.send_error(error);
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> AdminApi::usage(http::Request& request, http::Responder& responder) {
  if (!co_await allowed(request, responder)) co_return;
  if (!governance_) {
    {
      const Error error = make_error(Errc::unavailable, "Usage is not recorded.");
      co_await responder.send_error(error);
    }
    co_return;
  }
  // ?key=<id or name>&from=YYYY-MM-DD&to=YYYY-MM-DD (all optional)
  std::string key, from, to;
  for_each_query_param(request.head->query, [&](std::string_view name, std::string_view value) {
    if (name == "key") key.assign(value);
    if (name == "from") from.assign(value);
    if (name == "to") to.assign(value);
  });
  if (!key.empty()) {
    for (const auto& k : governance_->keys().list()) {
      if (k.name == key) key = k.id;
    }
  }
  std::string body = governance_->usage().query_json(key, from, to);
  co_await responder.send(200, "application/json", body);
}

asio::awaitable<void> AdminApi::cache(http::Request& request, http::Responder& responder,
                                      ResponseCache* cache) {
  if (!co_await allowed(request, responder)) co_return;
  const std::string_view method = request.method();
  if (method != "GET" && method != "HEAD" && method != "DELETE") {
    co_await responder.send(405, "application/json",
                            R"({"error":{"message":"Use GET or DELETE on /admin/cache.","type":"invalid_request_error","param":null,"code":null}})",
                            "Allow: GET, DELETE\r\n");
    co_return;
  }
  if (cache == nullptr) {
    const Error e = make_error(Errc::not_found, "No route has a response cache (routes[].cache).");
    co_await responder.send_error(e);
    co_return;
  }
  if (method != "DELETE") {
    const std::string body = canonical::to_text(cache->stats());
    co_await responder.send(200, "application/json", body);
    co_return;
  }
  std::string key, route, owner;
  bool all = false;
  for_each_query_param(request.head->query, [&](std::string_view name, std::string_view value) {
    const std::string v = percent_decode(value);
    if (name == "key") key = v;
    if (name == "model") route = v;
    if (name == "tenant") owner = "t:" + v;
    if (name == "api_key") owner = "k:" + v;
    if (name == "all") all = v == "1" || v == "true";
  });
  if (key.empty() && route.empty() && owner.empty() && !all) {
    const Error e = make_error(Errc::bad_request,
                               "Say what to invalidate: ?key=, ?model=, ?tenant=, ?api_key= or ?all=1.");
    co_await responder.send_error(e);
    co_return;
  }
  const size_t n = co_await cache->invalidate(key, route, owner, all);
  const std::string body = canonical::to_text(canonical::json::object{{"invalidated", static_cast<uint64_t>(n)}});
  co_await responder.send(200, "application/json", body);
}

asio::awaitable<void> AdminApi::upstreams(http::Request& request, http::Responder& responder) {
  if (!co_await allowed(request, responder)) co_return;
  auto now = std::chrono::steady_clock::now();
  std::string body = R"({"routes":[)";
  bool first_route = true;
  for (const auto& rr : dispatcher_.routes()) {
    if (!first_route) body += ',';
    first_route = false;
    body += R"({"model":")";
    append_json_escaped(body, rr->route->model);
    body += R"(","targets":[)";
    bool first = true;
    for (const auto& t : rr->targets) {
      const routing::TargetState& st = t->state;
      if (!first) body += ',';
      first = false;
      body += R"({"name":")";
      append_json_escaped(body, st.config.name);
      body += R"(","base_url":")";
      append_json_escaped(body, st.config.base_url);
      body += R"(","breaker":")";
      body += routing::to_string(st.breaker.state(now));
      body += R"(","breaker_transitions":)" + std::to_string(st.breaker.transitions());
      body += R"(,"healthy":)";
      body += st.healthy.load() ? "true" : "false";
      body += R"(,"in_flight":)" + std::to_string(st.in_flight.load());
      body += R"(,"queued":)" + std::to_string(t->limiter.queued());
      char ratio[32];
      snprintf(ratio, sizeof ratio, "%.4f", st.breaker.failure_ratio(now));
      body += R"(,"error_ratio":)";
      body += ratio;
      body += R"(,"ewma_ttfb_ms":)";
      char ttfb[32];
      snprintf(ttfb, sizeof ttfb, "%.3f", st.ewma_ttfb_us.load() / 1000.0);
      body += ttfb;
      body += R"(,"retries":)" + std::to_string(st.retries.load());
      body += R"(,"attempts":{)";
      for (size_t k = 0; k < st.outcomes.size(); ++k) {
        if (k) body += ',';
        body += '"';
        body += routing::to_string(static_cast<routing::AttemptOutcome>(k));
        body += R"(":)" + std::to_string(st.outcomes[k].load());
      }
      body += "}}";
    }
    body += "]}";
  }
  body += "]}";
  co_await responder.send(200, "application/json", body);
}

asio::awaitable<void> AdminApi::metrics(http::Request& request, http::Responder& responder) {
  if (router_->config().metrics.require_admin_token && !co_await allowed(request, responder)) {
    co_return;
  }
  std::string body = observe::Registry::instance().render();
  co_await responder.send(200, "text/plain; version=0.0.4; charset=utf-8", body);
}

}  // namespace sluice::api
