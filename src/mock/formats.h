// sluice-mock's wire formats: the scenario a request asks for (x-mock-* headers) and, per API
// (OpenAI, Anthropic, Gemini), hand-written builders for its unary body, its stream events and
// its error bodies. Deliberately independent of src/canonical, src/frontends and the provider
// codecs: the mock is the reference those are tested against, so it must not share their code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/server.h"

namespace sluice::mock {

/// Why the answer stopped (x-mock-stop, or tool when tool calls are asked for).
enum class Stop { end, max_tokens, stop_sequence, refusal, tool };

/// What the answer contains, from the request's x-mock-* headers.
struct Scenario {
  int tokens = 16;            // x-mock-tokens: words of the default text, output tokens
  int tool_calls = 0;         // x-mock-tool-calls
  bool text_first = false;    // x-mock-text-first: text before the tool calls
  bool thinking = false;      // x-mock-thinking
  Stop stop = Stop::end;      // x-mock-stop (tool when tool calls and no x-mock-stop)
  int64_t cache_read = 0;     // x-mock-cache-read
  int64_t cache_creation = 0; // x-mock-cache-creation
  int error_after = -1;       // x-mock-error-after (-1 = none)
  bool timestamps = false;    // x-mock-timestamps: each word is its send time (see kStampMark)
  std::string text;           // the answer's text (words, or the echoed request/headers)
  std::vector<std::string> pieces;  // `text` as stream deltas (their concatenation may end
                                    // with a space the unary text lacks: "w1 w2 " vs "w1 w2")

  bool has_text() const { return tool_calls == 0 || text_first; }
  int64_t thinking_tokens() const;
  int64_t output_tokens() const;  // tokens + thinking tokens
};

Scenario parse_scenario(const http::Request& req, int default_tokens);

/// With x-mock-timestamps: 1 every default word is this placeholder, which the stream writer
/// replaces with the wall-clock time (CLOCK_REALTIME, nanoseconds, 20 digits zero-padded) at
/// which the event is handed to the socket: a client subtracts it from its receive time to
/// measure how long an event spends between the upstream and itself (bench/stream_client.c).
inline constexpr std::string_view kStampMark = "@@@@@@@@@@@@@@@@@@@@";

/// Everything a format needs to write one answer.
struct Answer {
  Scenario sc;
  std::string model;
  std::string id;
  int64_t created = 0;        // unix seconds
  int64_t prompt_tokens = 1;  // the uncached prompt (request body bytes / 4, at least 1)
  bool include_usage = false; // OpenAI stream_options.include_usage
  bool completions = false;   // OpenAI /completions rather than /chat/completions
};

/// One piece of a stream. `delta` events carry content (text, thinking, tool call, signature):
/// they are the ones ttft/itl pace and that drop-after / stall-after / x-mock-error-after count.
/// `finish` marks the event that carries the stop reason: a mid-stream error always comes
/// before it.
struct Event {
  std::string bytes;
  bool delta = false;
  bool finish = false;
};
using Events = std::vector<Event>;

// The fixed thinking content, tool calls and signature every format uses.
inline constexpr std::string_view kThinkingPieces[] = {"Let me think ", "about it."};
inline constexpr std::string_view kThinkingText = "Let me think about it.";
inline constexpr int64_t kThinkingTokens = 5;
inline constexpr std::string_view kSignature = "sig-mock-1";
std::string tool_name(int i);               // tool_<i>
std::string tool_args(int i);               // {"city":"Paris","n":<i>}
std::vector<std::string> split3(std::string_view s);  // three non-empty pieces (s >= 3 bytes)

/// Appends `s` as a quoted, escaped JSON string.
void append_str(std::string& out, std::string_view s);
std::string sse_data(std::string_view json);                          // data: J\n\n
std::string sse_event(std::string_view name, std::string_view json);  // event: N\ndata: J\n\n

/// Estimated tokens of a text: ~4 bytes per token, at least 1.
int64_t estimate_tokens(size_t bytes);

namespace openai {
std::string unary(const Answer& a);
Events stream(const Answer& a);
std::string error_body(int status, std::string_view message);
std::string stream_error();
}  // namespace openai

namespace anthropic {
struct Request {
  std::string model;
  bool stream = false;
};
/// Checks a /v1/messages (or count_tokens when `count`) body; the error message on failure.
bool parse_request(std::string_view body, bool count, Request& out, std::string& error);
std::string unary(const Answer& a);
Events stream(const Answer& a);
std::string count_tokens(std::string_view body);  // {"input_tokens":N}
std::string error_body(int status, std::string_view message);
std::string stream_error();
}  // namespace anthropic

namespace gemini {
/// Checks a generateContent (or countTokens when `count`) body.
bool parse_request(std::string_view body, bool count, std::string& error);
std::string unary(const Answer& a);
Events stream(const Answer& a);        // SSE `data:` chunks
std::string json_array(const Events& events);  // the same chunks as one JSON array (no alt=sse)
std::string count_tokens(std::string_view body);  // {"totalTokens":N}
std::string error_body(int status, std::string_view message);
std::string stream_error();
}  // namespace gemini

}  // namespace sluice::mock
