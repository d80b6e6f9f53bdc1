// One data-plane error type and the single mapping from an error to an HTTP status and an
// OpenAI-shaped error body. Every error response the gateway writes goes through to_response().
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace sluice {

enum class Errc {
  bad_request,        // 400 invalid_request_error
  unauthorized,       // 401
  forbidden,          // 403
  not_found,          // 404 (unknown path)
  model_not_found,    // 404 code model_not_found
  method_not_allowed, // 405
  payload_too_large,  // 413
  headers_too_large,  // 431
  request_timeout,    // 408
  rate_limited,       // 429
  quota_exceeded,     // 429 insufficient_quota (budget spent)
  upstream_connect,   // 502: could not reach the upstream
  upstream_timeout,   // 504
  upstream_status,    // upstream answered with an error status (4xx passed through, 5xx → 502)
  upstream_protocol,  // 502: upstream spoke broken HTTP / JSON / SSE
  unavailable,        // 503: draining, limits
  internal,           // 500
};

struct Error {
  Errc code = Errc::internal;
  std::string message;
  std::string param;             // the request field at fault, if any
  int upstream_status = 0;       // for upstream_status: what the upstream answered
  std::string upstream_body;     // for upstream_status: the upstream's own body, when safe to pass
  bool retryable = false;
  std::optional<std::chrono::milliseconds> retry_after;
  // OpenAI `code` to report instead of the Errc's default (e.g. "missing_required_parameter",
  // "invalid_type" for a bad_request). Empty = the default. Must point to static storage (a
  // string literal): error_kind() hands it out as a view that outlives the Error.
  std::string_view code_override;
};

inline Error make_error(Errc code, std::string message, std::string param = {}) {
  Error e;
  e.code = code;
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

/// Result<T>: a value or an Error. Small on purpose; the data plane never throws.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }
  Error& error() { return std::get<1>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}
  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  Error& error() { return *error_; }
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

/// What a client receives for an error: status, body (OpenAI error shape) and, for 429/503,
/// a Retry-After value in seconds (0 = none).
struct ErrorResponse {
  int status = 500;
  std::string body;
  int retry_after_seconds = 0;
};

/// The one place that maps an Error to its HTTP status and body.
ErrorResponse to_response(const Error& error);

/// Status code only (for logs and tests).
int http_status(const Error& error);

/// The error's OpenAI `code` ("rate_limit_exceeded", "upstream_timeout", ...; its code_override
/// when set; "invalid_request" for plain 400s), for logs and metrics. Static storage.
std::string_view error_kind(const Error& error);

/// Appends `s` to `out` as the inside of a JSON string (no quotes), escaping as RFC 8259 asks.
void append_json_escaped(std::string& out, std::string_view s);

/// Builds {"error":{"message":...,"type":...,"param":...,"code":...}}; empty param/code → null.
std::string openai_error_body(std::string_view message, std::string_view type,
                              std::string_view param, std::string_view code);

}  // namespace sluice
