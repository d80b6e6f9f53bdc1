// The per-field schema checks of parse_request and their OpenAI-worded errors (see
// request_checks.h). Messages and codes follow what OpenAI's API answers, e.g.
// "Invalid type for 'max_tokens': expected an integer, but got a string instead." (invalid_type).
// Error text is only built on the error path: nothing here allocates for a valid body.
#include "providers/request_checks.h"

#include "providers/request.h"

namespace sluice::providers::checks {

Error json_error(simdjson::error_code ec) {
  return make_error(Errc::bad_request,
                    std::string("We could not parse the JSON body of your request (") +
                        simdjson::error_message(ec) +
                        "). The OpenAI API expects a JSON payload.");
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' ||
                        s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

Error invalid(std::string_view code, std::string message, std::string param) {
  Error e = make_error(Errc::bad_request, std::move(message), std::move(param));
  e.code_override = code;
  return e;
}

Error missing(std::string param) {
  std::string message = "Missing required parameter: '" + param + "'.";
  return invalid("missing_required_parameter", std::move(message), std::move(param));
}

Error duplicate(std::string_view key) {
  return make_error(Errc::bad_request,
                    "Duplicate parameter '" + std::string(key) +
                        "': the request body may name it only once.",
                    std::string(key));
}

namespace {

// What a value is, in OpenAI's words ("a string", "an integer", "a decimal", ...).
std::string_view type_phrase(od::value& v, od::json_type t) {
  switch (t) {
    case od::json_type::array: return "an array";
    case od::json_type::object: return "an object";
    case od::json_type::string: return "a string";
    case od::json_type::boolean: return "a boolean";
    case od::json_type::null: return "null";
    case od::json_type::number: {
      od::number_type nt;
      if (v.get_number_type().get(nt) == simdjson::SUCCESS &&
          nt == od::number_type::floating_point_number) {
        return "a decimal";
      }
      return "an integer";
    }
  }
  return "a value";
}

Error wrong_type(std::string param, std::string_view expected, od::value& v, od::json_type t) {
  std::string message = "Invalid type for '" + param + "': expected " + std::string(expected) +
                        ", but got " + std::string(type_phrase(v, t)) + " instead.";
  return invalid("invalid_type", std::move(message), std::move(param));
}

// A number's own text for a message, when short (a 1 MB run of digits is not echoed).
std::string echo_number(od::value& v) {
  std::string_view raw = trim_right(v.raw_json_token());
  return raw.size() <= 32 ? " but got " + std::string(raw) + " instead." : "";
}

Error out_of_range(std::string_view code, std::string param, std::string_view what,
                   std::string_view bound, od::value& v) {
  std::string message = "Invalid '" + param + "': " + std::string(what) + ". Expected a value " +
                        std::string(bound) + ".";
  std::string got = echo_number(v);
  if (!got.empty()) {
    message.pop_back();
    message += "," + got;
  }
  return invalid(code, std::move(message), std::move(param));
}

constexpr std::string_view kRoles[] = {"system", "user", "assistant", "tool", "function",
                                       "developer"};

Result<void> check_role(od::value& v, size_t index) {
  auto param = [&] { return "messages[" + std::to_string(index) + "].role"; };
  std::string_view role;
  if (auto ec = v.get_string().get(role)) {
    od::json_type t;
    if (ec != simdjson::INCORRECT_TYPE || v.type().get(t)) return json_error(ec);
    return wrong_type(param(), "a string", v, t);
  }
  for (std::string_view r : kRoles) {
    if (role == r) return {};
  }
  std::string message =
      role.size() <= 64 ? "Invalid value: '" + std::string(role) + "'."
                        : "Invalid value for '" + param() + "'.";
  message += " Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and "
             "'developer'.";
  return invalid("invalid_value", std::move(message), param());
}

// Whether a raw (still escaped) JSON key decodes to "role", without copying it: the raw bytes
// are compared, and a \uXXXX escape is decoded in place ("rol\u0065" is a role to any JSON
// parser upstream). Any other escape decodes to a character that is not in "role". Reads at most
// 6 bytes past the closing quote of a malformed key, inside the body's padding.
bool is_role_key(const char* p) {
  static constexpr std::string_view kRole = "role";
  size_t i = 0;
  while (*p != '"') {
    if (i == kRole.size()) return false;
    unsigned c = static_cast<unsigned char>(*p);
    if (c == '\\') {
      if (p[1] != 'u') return false;
      c = 0;
      for (int k = 2; k < 6; ++k) {
        char h = p[k];
        unsigned d = h >= '0' && h <= '9'   ? unsigned(h - '0')
                     : h >= 'a' && h <= 'f' ? unsigned(h - 'a' + 10)
                     : h >= 'A' && h <= 'F' ? unsigned(h - 'A' + 10)
                                            : 16u;
        if (d == 16) return false;
        c = c * 16 + d;
      }
      p += 6;
    } else {
      ++p;
    }
    if (c != static_cast<unsigned char>(kRole[i++])) return false;
  }
  return i == kRole.size();
}

bool is_integer(od::value& v, od::json_type t) {
  od::number_type nt;
  return t == od::json_type::number && v.get_number_type().get(nt) == simdjson::SUCCESS &&
         nt != od::number_type::floating_point_number;
}

}  // namespace

// Fast paths first: one typed read for the common valid value; the type is only looked at again
// to word an error (a failed typed read leaves an on-demand value readable).

Result<void> read_int(od::value& v, std::string_view name, int64_t min, int64_t max,
                      int64_t& value, bool& present) {
  present = false;
  int64_t n = 0;
  if (v.get_int64().get(n) == simdjson::SUCCESS && n >= min && n <= max) {
    value = n;
    present = true;
    return {};
  }
  od::json_type t;
  if (auto ec = v.type().get(t)) return json_error(ec);
  if (t == od::json_type::null) return {};
  if (t != od::json_type::number) return wrong_type(std::string(name), "an integer", v, t);
  od::number_type nt{};
  if (auto ec = v.get_number_type().get(nt)) return json_error(ec);
  if (nt == od::number_type::floating_point_number) {
    return wrong_type(std::string(name), "an integer", v, t);
  }
  // Below min, above max, >= 2^63 (unsigned_integer) or < INT64_MIN (does not fit an int64).
  bool below = false;
  if (nt == od::number_type::signed_integer) {
    if (v.get_int64().get(n) == simdjson::SUCCESS) {
      below = n < min;
    } else if (trim_right(v.raw_json_token()).starts_with('-')) {
      below = true;
    } else {
      return json_error(simdjson::NUMBER_ERROR);
    }
  }
  if (below) {
    return out_of_range("integer_below_min_value", std::string(name),
                        "integer below minimum value", ">= " + std::to_string(min), v);
  }
  return out_of_range("integer_above_max_value", std::string(name),
                      "integer above maximum value", "<= " + std::to_string(max), v);
}

Result<void> check_decimal(od::value& v, std::string_view name, double max,
                           std::string_view max_text) {
  double d = 0;
  if (v.get_double().get(d) == simdjson::SUCCESS && d >= 0 && d <= max) return {};
  od::json_type t;
  if (auto ec = v.type().get(t)) return json_error(ec);
  if (t == od::json_type::null) return {};
  if (t != od::json_type::number) return wrong_type(std::string(name), "a number", v, t);
  if (v.get_double().get(d) != simdjson::SUCCESS) {  // 1e999 does not fit a double
    d = trim_right(v.raw_json_token()).starts_with('-') ? -1 : max + 1;
  }
  if (d > max) {
    return out_of_range("decimal_above_max_value", std::string(name),
                        "decimal above maximum value", "<= " + std::string(max_text), v);
  }
  return out_of_range("decimal_below_min_value", std::string(name),
                      "decimal below minimum value", ">= 0", v);
}

Result<void> check_messages(od::value& v) {
  od::array arr;
  if (auto ec = v.get_array().get(arr)) {
    od::json_type t;
    if (ec != simdjson::INCORRECT_TYPE || v.type().get(t)) return json_error(ec);
    return wrong_type("messages", "an array", v, t);
  }
  size_t index = 0;
  for (auto item : arr) {
    od::value m;
    if (auto ec = item.get(m)) return json_error(ec);
    od::object obj;
    if (auto ec = m.get_object().get(obj)) {
      od::json_type t;
      if (ec != simdjson::INCORRECT_TYPE || m.type().get(t)) return json_error(ec);
      return wrong_type("messages[" + std::to_string(index) + "]", "an object", m, t);
    }
    bool have_role = false;
    for (auto field : obj) {
      od::raw_json_string key;
      if (auto ec = field.key().get(key)) return json_error(ec);
      if (!is_role_key(key.raw())) continue;
      od::value rv;
      if (auto ec = field.value().get(rv)) return json_error(ec);
      if (auto r = check_role(rv, index); !r) return r;
      have_role = true;
    }
    if (!have_role) return missing("messages[" + std::to_string(index) + "].role");
    ++index;
  }
  if (index == 0) {
    return invalid("empty_array",
                   "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                   "but got an empty array instead.",
                   "messages");
  }
  return {};
}

// completions `prompt` / embeddings `input`: a string, or an array of strings, of integers or of
// integer arrays (the first item decides which; every other must match). Embedding inputs must
// not be empty and count at most kMaxEmbeddingInputs.
Result<void> check_text_or_tokens(od::value& v, std::string_view name, bool embeddings) {
  od::json_type t;
  if (auto ec = v.type().get(t)) return json_error(ec);
  if (t == od::json_type::string || (t == od::json_type::null && !embeddings)) return {};
  if (t != od::json_type::array) {
    return wrong_type(std::string(name), "a string or an array", v, t);
  }
  od::array arr;
  if (auto ec = v.get_array().get(arr)) return json_error(ec);
  enum class Kind { unknown, text, token, tokens } kind = Kind::unknown;
  size_t index = 0;
  for (auto item : arr) {
    od::value e;
    if (auto ec = item.get(e)) return json_error(ec);
    ++index;
    if (embeddings && index > kMaxEmbeddingInputs) continue;  // only counted, for the message
    od::json_type et;
    if (auto ec = e.type().get(et)) return json_error(ec);
    Kind k = et == od::json_type::string ? Kind::text
             : et == od::json_type::array ? Kind::tokens
             : is_integer(e, et)          ? Kind::token
                                          : Kind::unknown;
    if (kind == Kind::unknown) kind = k;
    auto item_param = [&] { return std::string(name) + "[" + std::to_string(index - 1) + "]"; };
    if (k == Kind::unknown || k != kind) {
      std::string_view expected = kind == Kind::text    ? "a string"
                                  : kind == Kind::token ? "an integer"
                                  : kind == Kind::tokens ? "an array of integers"
                                                         : "a string, an integer or an array";
      return wrong_type(item_param(), expected, e, et);
    }
    if (k == Kind::tokens) {
      od::array tokens;
      if (auto ec = e.get_array().get(tokens)) return json_error(ec);
      size_t j = 0;
      for (auto token : tokens) {
        od::value tv;
        if (auto ec = token.get(tv)) return json_error(ec);
        od::json_type tt;
        if (auto ec = tv.type().get(tt)) return json_error(ec);
        if (!is_integer(tv, tt)) {
          return wrong_type(item_param() + "[" + std::to_string(j) + "]", "an integer", tv, tt);
        }
        ++j;
      }
    }
  }
  if (embeddings && index == 0) {
    return invalid("empty_array",
                   "Invalid 'input': empty array. Expected an array with minimum length 1, but "
                   "got an empty array instead.",
                   "input");
  }
  if (embeddings && index > kMaxEmbeddingInputs) {
    return invalid("array_above_max_length",
                   "Invalid 'input': array too long. Expected an array with maximum length " +
                       std::to_string(kMaxEmbeddingInputs) + ", but got an array with length " +
                       std::to_string(index) + " instead.",
                   "input");
  }
  return {};
}

// stream_options: an object (include_usage a boolean or null) or null. Sets `present` when it is
// an object.
Result<void> read_stream_options(od::value& v, bool& present, bool& include_usage) {
  od::json_type t;
  if (auto ec = v.type().get(t)) return json_error(ec);
  if (t == od::json_type::null) return {};
  if (t != od::json_type::object) return wrong_type("stream_options", "an object", v, t);
  present = true;
  od::object obj;
  if (auto ec = v.get_object().get(obj)) return json_error(ec);
  for (auto opt : obj) {
    std::string_view key;
    if (auto ec = opt.unescaped_key().get(key)) return json_error(ec);
    if (key != "include_usage") continue;
    od::value iv;
    if (auto ec = opt.value().get(iv)) return json_error(ec);
    od::json_type it;
    if (auto ec = iv.type().get(it)) return json_error(ec);
    if (it == od::json_type::null) continue;
    if (it != od::json_type::boolean) {
      return wrong_type("stream_options.include_usage", "a boolean", iv, it);
    }
    bool b = false;
    if (auto ec = iv.get_bool().get(b)) return json_error(ec);
    include_usage = b;
  }
  return {};
}

}  // namespace sluice::providers::checks
