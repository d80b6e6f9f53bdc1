// Proxy helpers: error events, upstream error mapping.
#include "api/proxy_util.h"

#include "routing/resilience.h"

namespace sluice::api {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string stream_error_event(std::string_view message, std::string_view code) {
  return "\ndata: " + openai_error_body(message, "upstream_error", "", code) + "\n\n";
}

bool looks_like_openai_error(std::string_view body) {
  size_t i = body.find_first_not_of(" \t\r\n");
  if (i == std::string_view::npos || body[i] != '{') return false;
  size_t k = body.find("\"error\"");
  return k != std::string_view::npos && k < 64;
}

std::optional<std::chrono::milliseconds> upstream_retry_after(const http::ResponseHead& head) {
  std::optional<std::chrono::milliseconds> best;
  auto take = [&best](std::optional<std::chrono::milliseconds> v) {
    if (v && (!best || *v > *best)) best = v;
  };
  std::string_view ra = head.header("retry-after");
  if (!ra.empty()) take(routing::parse_retry_after(ra, unix_now()));
  std::string_view rr = head.header("x-ratelimit-reset-requests");
  std::string_view rt = head.header("x-ratelimit-reset-tokens");
  // Only meaningful when the matching budget is exhausted; a 429 says one of them is.
  if (head.status == 429) {
    if (!rr.empty() && head.header("x-ratelimit-remaining-requests") == "0") {
      take(routing::parse_reset_duration(rr));
    }
    if (!rt.empty() && head.header("x-ratelimit-remaining-tokens") == "0") {
      take(routing::parse_reset_duration(rt));
    }
  }
  return best;
}

Error upstream_status_error(int status, std::string_view body, std::string_view content_type,
                            std::optional<std::chrono::milliseconds> retry_after,
                            const std::string& label, bool expose) {
  Error e;
  e.code = Errc::upstream_status;
  e.upstream_status = status;
  e.retry_after = retry_after;
  if (status == 401 || status == 403 || status == 407) {
    // The gateway's own credentials were refused. Passing this on would tell the client its key
    // is invalid, and the upstream's body can echo fragments of the gateway's key: a 502 with
    // a message of our own (to_response maps these statuses to 502).
    e.message = "The upstream " + label + " refused the gateway's credentials (HTTP " +
                std::to_string(status) +
                "). This is a gateway configuration problem, not a problem with your request "
                "or your API key.";
    e.retryable = true;  // another target or a fallback may hold working credentials
    return e;
  }
  // 4xx bodies describe the client's own mistake; 5xx bodies are the upstream's internals.
  bool quote = status < 500 || expose;
  std::string snippet(quote ? body.substr(0, 300) : std::string_view{});
  e.message = "Upstream " + label + " returned HTTP " + std::to_string(status) +
              (snippet.empty() ? std::string() : ": " + snippet);
  if (status < 500 && content_type.find("json") != std::string_view::npos &&
      looks_like_openai_error(body)) {
    e.upstream_body.assign(body);
  }
  e.retryable = status == 429 || status == 408 || status == 409 || status >= 500;
  return e;
}

bool is_context_length_error(int status, std::string_view body) {
  if (status != 400 && status != 413 && status != 422) return false;
  return body.find("context_length_exceeded") != std::string_view::npos ||
         body.find("maximum context length") != std::string_view::npos;
}

}  // namespace sluice::api
