// Endpoints answered from the config alone, without an upstream: the model list and one model;
// and the token-count estimate for upstreams that cannot count.
#include "api/model_endpoints.h"

#include "canonical/json.h"
#include "common/saturating.h"

namespace sluice::api {

namespace asio = boost::asio;

namespace {

/// Rough input token count of a request body: ~4 bytes per token of every string in it.
int64_t estimate_input_tokens(const canonical::json::value& v) {
  int64_t n = 0;
  if (v.is_string()) return static_cast<int64_t>(v.get_string().size() / 4) + 1;
  if (v.is_object()) {
    for (const auto& kv : v.get_object()) n = sat_add(n, estimate_input_tokens(kv.value()));
  } else if (v.is_array()) {
    for (const auto& e : v.get_array()) n = sat_add(n, estimate_input_tokens(e));
  }
  return n;
}

}  // namespace

asio::awaitable<void> serve_model_list(const routing::Router& router, http::Responder& responder) {
  std::string body = R"({"object":"list","data":[)";
  bool first = true;
  for (const auto& id : router.model_ids()) {
    if (!first) body += ',';
    first = false;
    body += R"({"id":")";
    append_json_escaped(body, id);
    body += R"(","object":"model","created":0,"owned_by":"sluice"})";
  }
  body += "]}";
  co_await responder.send(200, "application/json", body);
}

asio::awaitable<void> serve_model(const routing::Router& router, std::string_view id,
                                  http::Responder& responder) {
  if (id.empty() || router.match(id) == nullptr) {
    {
      const Error error = make_error(
        Errc::model_not_found, "The model '" + std::string(id) + "' does not exist.", "model");
      co_await responder.send_error(error);
    }
    co_return;
  }
  std::string body = R"({"id":")";
  append_json_escaped(body, id);
  body += R"(","object":"model","created":0,"owned_by":"sluice"})";
  co_await responder.send(200, "application/json", body);
}

int64_t estimate_count_tokens(std::string_view body) {
  auto parsed = canonical::parse_json(body);
  if (!parsed || !parsed->is_object()) return 0;
  const canonical::json::object* o = &parsed->as_object();
  if (const auto* inner = canonical::obj(*o, "generateContentRequest")) o = inner;
  int64_t tokens = 0;
  for (std::string_view key : {"system", "messages", "tools", "contents", "systemInstruction"}) {
    if (const auto* v = canonical::field(*o, key)) tokens = sat_add(tokens, estimate_input_tokens(*v));
  }
  return tokens;
}

}  // namespace sluice::api
