// The x-mock-* scenario of a request and the small JSON/SSE helpers the three formats share.
#include <algorithm>
#include <cctype>
#include <charconv>

#include "common/error.h"
#include "mock/formats.h"

namespace sluice::mock {

namespace {

int64_t header_i64(const http::Request& req, std::string_view name, int64_t fallback) {
  std::string_view v = req.header(name);
  if (v.empty()) return fallback;
  int64_t out = fallback;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc() ? out : fallback;
}

// Splits `text` into deltas of at most `max` bytes, never inside a UTF-8 sequence (a delta
// must be valid UTF-8 on its own to be escaped into JSON).
std::vector<std::string> utf8_pieces(std::string_view text, size_t max) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = std::min(text.size(), pos + max);
    while (end < text.size() && end > pos + 1 &&
           (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
      --end;
    }
    out.emplace_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

}  // namespace

int64_t Scenario::thinking_tokens() const { return thinking ? kThinkingTokens : 0; }

int64_t Scenario::output_tokens() const { return tokens + thinking_tokens(); }

Scenario parse_scenario(const http::Request& req, int default_tokens) {
  Scenario sc;
  sc.tokens = static_cast<int>(std::max<int64_t>(0, header_i64(req, "x-mock-tokens", default_tokens)));
  sc.tool_calls = static_cast<int>(std::clamp<int64_t>(header_i64(req, "x-mock-tool-calls", 0), 0, 64));
  sc.text_first = req.header("x-mock-text-first") == "1";
  sc.thinking = req.header("x-mock-thinking") == "1";
  sc.cache_read = std::max<int64_t>(0, header_i64(req, "x-mock-cache-read", 0));
  sc.cache_creation = std::max<int64_t>(0, header_i64(req, "x-mock-cache-creation", 0));
  sc.error_after = static_cast<int>(std::max<int64_t>(-1, header_i64(req, "x-mock-error-after", -1)));
  sc.timestamps = req.header("x-mock-timestamps") == "1";
  if (sc.tool_calls > 0) sc.stop = Stop::tool;
  std::string_view stop = req.header("x-mock-stop");
  if (stop == "end") sc.stop = Stop::end;
  if (stop == "max_tokens") sc.stop = Stop::max_tokens;
  if (stop == "stop_sequence") sc.stop = Stop::stop_sequence;
  if (stop == "refusal") sc.stop = Stop::refusal;

  if (std::string_view reply = req.header("x-mock-reply"); !reply.empty()) {
    sc.text = std::string(reply);  // the answer's text, as given
    sc.pieces = utf8_pieces(sc.text, 256);
  } else if (req.header("x-mock-echo-request") == "1") {
    sc.text = std::string(req.body);
    sc.pieces = utf8_pieces(sc.text, 256);
  } else if (req.header("x-mock-echo-headers") == "1") {
    for (size_t i = 0; i < req.head->header_count; ++i) {
      if (i) sc.text += '\n';
      for (char c : req.head->headers[i].name) {
        sc.text += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      sc.text += ": ";
      sc.text += req.head->headers[i].value;
    }
    sc.pieces = utf8_pieces(sc.text, 256);
  } else {
    // "w1 w2 ... wN" unary; streamed as "w1 ", "w2 ", ... (the mock's historical shape).
    for (int i = 1; i <= sc.tokens; ++i) {
      if (i > 1) sc.text += ' ';
      std::string piece = sc.timestamps ? std::string(kStampMark) : "w" + std::to_string(i);
      sc.text += piece;
      piece += ' ';
      sc.pieces.push_back(std::move(piece));
    }
  }
  return sc;
}

std::string tool_name(int i) { return "tool_" + std::to_string(i); }

std::string tool_args(int i) { return R"({"city":"Paris","n":)" + std::to_string(i) + "}"; }

std::vector<std::string> split3(std::string_view s) {
  size_t a = s.size() / 3, b = 2 * s.size() / 3;
  return {std::string(s.substr(0, a)), std::string(s.substr(a, b - a)), std::string(s.substr(b))};
}

void append_str(std::string& out, std::string_view s) {
  out += '"';
  append_json_escaped(out, s);
  out += '"';
}

std::string sse_data(std::string_view json) {
  std::string out;
  out.reserve(json.size() + 8);
  out += "data: ";
  out += json;
  out += "\n\n";
  return out;
}

std::string sse_event(std::string_view name, std::string_view json) {
  std::string out;
  out.reserve(json.size() + name.size() + 16);
  out += "event: ";
  out += name;
  out += "\ndata: ";
  out += json;
  out += "\n\n";
  return out;
}

int64_t estimate_tokens(size_t bytes) {
  return std::max<int64_t>(1, static_cast<int64_t>((bytes + 3) / 4));
}

}  // namespace sluice::mock
