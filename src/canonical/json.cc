#include "canonical/json.h"

namespace sluice::canonical {

Result<json::value> parse_json(std::string_view body, json::storage_ptr storage) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec, std::move(storage));
  if (ec) return invalid("The request body is not valid JSON: " + ec.message());
  return v;
}

const json::value* field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) return nullptr;
  return v;
}

std::string_view str(const json::object& o, std::string_view key) {
  const json::value* v = field(o, key);
  if (!v || !v->is_string()) return {};
  const json::string& s = v->get_string();
  return {s.data(), s.size()};
}

const json::object* obj(const json::object& o, std::string_view key) {
  const json::value* v = field(o, key);
  return v ? v->if_object() : nullptr;
}

const json::array* arr(const json::object& o, std::string_view key) {
  const json::value* v = field(o, key);
  return v ? v->if_array() : nullptr;
}

std::optional<int64_t> integer(const json::object& o, std::string_view key) {
  const json::value* v = field(o, key);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) {
    uint64_t u = v->get_uint64();
    return u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
  }
  if (v->is_double()) {
    double d = v->get_double();
    if (d != static_cast<double>(static_cast<int64_t>(d))) return std::nullopt;
    if (d >= 9.2e18) return INT64_MAX;
    if (d <= -9.2e18) return INT64_MIN;
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

std::optional<double> number(const json::object& o, std::string_view key) {
  const json::value* v = field(o, key);
  if (!v) return std::nullopt;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  return std::nullopt;
}

std::optional<bool> boolean(const json::object& o, std::string_view key) {
  const json::value* v = field(o, key);
  if (!v || !v->is_bool()) return std::nullopt;
  return v->get_bool();
}

std::string to_text(const json::value& v) { return json::serialize(v); }
std::string to_text(const json::object& o) { return json::serialize(o); }
std::string to_text(const json::array& a) { return json::serialize(a); }

json::value from_text(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return json::string(text);
  return v;
}

Error invalid(std::string message, std::string param) {
  Error e = make_error(Errc::bad_request, std::move(message));
  e.param = std::move(param);
  return e;
}

}  // namespace sluice::canonical
