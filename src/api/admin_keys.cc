// Admin API for virtual keys: POST /admin/keys (create; the secret is shown once),
// GET /admin/keys (list, no secrets), DELETE /admin/keys/{id} (revoke). Admin-token protected.
// Key writes happen on the calling worker: admin calls are rare and take milliseconds (one SQLite
// write, or with auth.keys_backend: redis one Redis round trip bounded by redis.timeout_ms; an
// unreachable Redis is a 503).
#include <simdjson.h>

#include "api/admin_api.h"

namespace sluice::api {

namespace asio = boost::asio;

namespace {

void append_record(std::string& out, const governance::KeyRecord& k) {
  out += R"({"id":")";
  append_json_escaped(out, k.id);
  out += R"(","name":")";
  append_json_escaped(out, k.name);
  out += R"(","tenant":")";
  append_json_escaped(out, k.tenant);
  out += R"(","key_prefix":")";
  append_json_escaped(out, k.key_prefix);
  out += R"(","models":[)";
  for (size_t i = 0; i < k.models.size(); ++i) {
    if (i) out += ',';
    out += '"';
    append_json_escaped(out, k.models[i]);
    out += '"';
  }
  out += R"(],"limits":{"requests_per_minute":)" + std::to_string(k.limits.requests_per_minute) +
         R"(,"tokens_per_minute":)" + std::to_string(k.limits.tokens_per_minute) +
         R"(,"tokens_per_day":)" + std::to_string(k.limits.tokens_per_day) + "}";
  char usd[32];
  snprintf(usd, sizeof usd, "%.6f", k.budget.usd);
  out += R"(,"budget":{"usd":)";
  out += usd;
  out += R"(,"period":")";
  out += k.budget.period == config::Budget::Period::day ? "day" : "month";
  out += "\"}";
  out += R"(,"expires_unix":)" + std::to_string(k.expires_unix);
  out += R"(,"created_unix":)" + std::to_string(k.created_unix);
  out += R"(,"revoked":)";
  out += k.revoked ? "true" : "false";
  out += R"(,"from_config":)";
  out += k.from_config ? "true" : "false";
  out += '}';
}

Result<governance::KeyRecord> parse_key_request(std::string_view body) {
  namespace dom = simdjson::dom;
  thread_local dom::parser parser;
  dom::element root;
  if (parser.parse(body.data(), body.size(), false).get(root)) {
    return make_error(Errc::bad_request, "The body must be a JSON object.");
  }
  dom::object obj;
  if (root.get_object().get(obj)) {
    return make_error(Errc::bad_request, "The body must be a JSON object.");
  }
  governance::KeyRecord k;
  for (auto [key, value] : obj) {
    if (key == "name" || key == "tenant") {
      std::string_view s;
      if (value.get_string().get(s)) {
        return make_error(Errc::bad_request, "'" + std::string(key) + "' must be a string.",
                          std::string(key));
      }
      (key == "name" ? k.name : k.tenant).assign(s);
    } else if (key == "models") {
      dom::array arr;
      if (value.get_array().get(arr)) {
        return make_error(Errc::bad_request, "'models' must be an array of model globs.",
                          "models");
      }
      for (auto m : arr) {
        std::string_view s;
        if (m.get_string().get(s) || s.empty()) {
          return make_error(Errc::bad_request, "'models' entries must be non-empty strings.",
                            "models");
        }
        k.models.emplace_back(s);
      }
    } else if (key == "limits") {
      dom::object lim;
      if (value.get_object().get(lim)) {
        return make_error(Errc::bad_request, "'limits' must be an object.", "limits");
      }
      for (auto [lk, lv] : lim) {
        int64_t n = 0;
        if (lv.get_int64().get(n) || n < 0) {
          return make_error(Errc::bad_request,
                            "'limits." + std::string(lk) + "' must be an integer >= 0.", "limits");
        }
        if (lk == "requests_per_minute") {
          k.limits.requests_per_minute = n;
        } else if (lk == "tokens_per_minute") {
          k.limits.tokens_per_minute = n;
        } else if (lk == "tokens_per_day") {
          k.limits.tokens_per_day = n;
        } else {
          return make_error(Errc::bad_request, "Unknown limit '" + std::string(lk) + "'.",
                            "limits");
        }
      }
    } else if (key == "budget") {
      dom::object b;
      if (value.get_object().get(b)) {
        return make_error(Errc::bad_request, "'budget' must be an object {usd, period}.",
                          "budget");
      }
      for (auto [bk, bv] : b) {
        if (bk == "usd") {
          double usd = 0;
          if (bv.get_double().get(usd) || usd < 0) {
            return make_error(Errc::bad_request, "'budget.usd' must be a number >= 0.", "budget");
          }
          k.budget.usd = usd;
        } else if (bk == "period") {
          std::string_view p;
          if (bv.get_string().get(p) || (p != "day" && p != "month")) {
            return make_error(Errc::bad_request, "'budget.period' must be \"day\" or \"month\".",
                              "budget");
          }
          k.budget.period = p == "day" ? config::Budget::Period::day
                                       : config::Budget::Period::month;
        } else {
          return make_error(Errc::bad_request, "Unknown budget field '" + std::string(bk) + "'.",
                            "budget");
        }
      }
    } else if (key == "expires_unix") {
      int64_t n = 0;
      if (value.get_int64().get(n) || n < 0) {
        return make_error(Errc::bad_request, "'expires_unix' must be a unix time in seconds.",
                          "expires_unix");
      }
      k.expires_unix = n;
    } else {
      return make_error(Errc::bad_request, "Unknown field '" + std::string(key) + "'.",
                        std::string(key));
    }
  }
  if (k.name.empty()) return make_error(Errc::bad_request, "'name' is required.", "name");
  return k;
}

}  // namespace

asio::awaitable<void> AdminApi::keys(http::Request& request, http::Responder& responder) {
  if (!co_await allowed(request, responder)) co_return;
  if (!governance_) {
    {
      const Error error = make_error(Errc::unavailable, "Key management is not set up.");
      co_await responder.send_error(error);
    }
    co_return;
  }
  governance::KeyStore& keys = governance_->keys();
  std::string_view path = request.path();
  std::string_view method = request.method();
  if (path == "/admin/keys" && method == "GET") {
    std::string body = R"({"object":"list","data":[)";
    bool first = true;
    for (const auto& k : keys.list()) {
      if (!first) body += ',';
      first = false;
      append_record(body, k);
    }
    body += "]}";
    co_await responder.send(200, "application/json", body);
    co_return;
  }
  if (path == "/admin/keys" && method == "POST") {
    auto fields = parse_key_request(request.body);
    if (!fields) {
      co_await responder.send_error(fields.error());
      co_return;
    }
    auto created = keys.create(*fields);
    if (!created) {
      co_await responder.send_error(created.error());
      co_return;
    }
    std::string body;
    append_record(body, created->first);
    body.pop_back();  // add the secret to the object: shown once, never stored
    body += R"(,"key":")";
    append_json_escaped(body, created->second);
    body += "\"}";
    co_await responder.send(201, "application/json", body);
    co_return;
  }
  if (path.starts_with("/admin/keys/") && method == "DELETE") {
    std::string_view id = path.substr(12);
    auto revoked = keys.revoke(id);
    if (!revoked) {
      co_await responder.send_error(revoked.error());
      co_return;
    }
    std::string body = R"({"id":")";
    append_json_escaped(body, id);
    body += R"(","revoked":true})";
    co_await responder.send(200, "application/json", body);
    co_return;
  }
  ErrorResponse r = to_response(make_error(
      Errc::method_not_allowed, "Use GET or POST on /admin/keys and DELETE on /admin/keys/{id}."));
  co_await responder.send(r.status, "application/json", r.body,
                          path == "/admin/keys" ? "Allow: GET, POST\r\n" : "Allow: DELETE\r\n");
}

}  // namespace sluice::api
