// Endpoints answered from the config alone, without an upstream: the model list, one model, and
// token counts (an estimate, marked as one).
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

asio::awaitable<void> serve_count_tokens(const routing::Router& router, http::Request& request,
                                         http::Responder& responder, canonical::Protocol protocol,
                                         std::string_view model) {
  auto parsed = canonical::parse_json(request.body);
  // (Errors are named before the co_await: GCC 12 may destroy a temporary in a co_await
  // expression twice, see docs/architecture.md "Pitfalls".)
  if (!parsed || !parsed->is_object()) {
    Error error = parsed ? canonical::invalid("The body must be a JSON object") : parsed.error();
    co_await responder.send_error(error);
    co_return;
  }
  const auto& o = parsed->as_object();
  std::string name(model.empty() ? canonical::str(o, "model") : model);
  if (name.empty()) {
    const Error error = canonical::invalid("model: Field required", "model");
    co_await responder.send_error(error);
    co_return;
  }
  if (router.match(name) == nullptr) {
    const Error error = make_error(
        Errc::model_not_found,
        "The model '" + name + "' does not exist or is not routed by this gateway.", "model");
    co_await responder.send_error(error);
    co_return;
  }
  // An estimate (~4 bytes per token of the text in the request), marked as one: no upstream
  // count is asked for yet.
  int64_t tokens = 0;
  for (std::string_view key : {"system", "messages", "tools", "contents", "systemInstruction"}) {
    if (const auto* v = canonical::field(o, key)) tokens = sat_add(tokens, estimate_input_tokens(*v));
  }
  responder.add_header("x-sluice-token-count", "estimate");
  std::string body = protocol == canonical::Protocol::gemini
                         ? "{\"totalTokens\":" + std::to_string(tokens) + "}"
                         : "{\"input_tokens\":" + std::to_string(tokens) + "}";
  co_await responder.send(200, "application/json", body);
}

}  // namespace sluice::api
