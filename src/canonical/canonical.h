// The protocol-neutral model every translated request and answer passes through. Frontends
// decode a client protocol into a Request and encode Responses / Events back; providers encode
// a Request for one upstream protocol and decode its answers and streams into Responses /
// Events. The same-protocol fast path (OpenAI in, OpenAI-compatible out) never builds these.
//
// The model follows Anthropic's content blocks (the richest of the three formats): a message
// is a role plus ordered blocks; tool calls and tool results are blocks, so OpenAI's `tool`
// role messages and Gemini's functionResponse parts become tool_result blocks in a user turn.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/saturating.h"

namespace sluice::canonical {

enum class Protocol { openai, anthropic, gemini };
std::string_view protocol_name(Protocol p);  // "openai", "anthropic", "gemini"

enum class BlockKind {
  text,
  image,              // image_media_type + image_data (base64) or image_url
  tool_use,           // tool_id, tool_name, tool_input (JSON object text)
  tool_result,        // tool_id, tool_name (when known), content (text/image blocks), is_error
  thinking,           // text, signature (opaque; must survive a round trip)
  redacted_thinking,  // data (opaque)
};

struct Block {
  BlockKind kind = BlockKind::text;
  std::string text;              // text / thinking
  std::string signature;         // thinking: Anthropic signature / Gemini thoughtSignature
  std::string data;              // redacted_thinking payload
  std::string image_media_type;  // "image/png", ...
  std::string image_data;        // base64, no data: prefix
  std::string image_url;         // http(s) URL (when the image is referenced, not inline)
  std::string tool_id;           // tool_use id / tool_result's tool_use_id
  std::string tool_name;
  // tool_use: the arguments as JSON text, as received (normally an object). Encoders that need
  // an object and get anything else send {"_raw_arguments": "<the text>"} (documented lossy).
  std::string tool_input = "{}";
  std::vector<Block> content;    // tool_result: text and image blocks
  bool is_error = false;         // tool_result
};

enum class Role { user, assistant };

struct Message {
  Role role = Role::user;
  std::vector<Block> content;
};

struct Tool {
  std::string name;
  std::string description;
  std::string parameters = R"({"type":"object","properties":{}})";  // JSON Schema, as text
};

enum class ToolChoiceKind { unset, auto_, none, required, named };
struct ToolChoice {
  ToolChoiceKind kind = ToolChoiceKind::unset;
  std::string name;  // named
};

struct Request {
  std::string model;               // as the client named it
  std::vector<Block> system;       // text blocks (OpenAI system/developer, Gemini systemInstruction)
  std::vector<Message> messages;   // alternating where the protocol needs it (encoders merge)
  std::vector<Tool> tools;
  ToolChoice tool_choice;
  std::optional<bool> parallel_tool_calls;
  std::optional<int64_t> max_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::vector<std::string> stop;   // stop sequences
  bool stream = false;
  bool include_usage = false;      // OpenAI stream_options.include_usage (others: always)
  std::optional<int64_t> thinking_budget;  // Anthropic thinking.budget_tokens / Gemini thinkingBudget
  std::string reasoning_effort;    // OpenAI reasoning_effort ("" = unset)
  std::string user;                // OpenAI user / Anthropic metadata.user_id
};

enum class StopReason {
  unset,
  end_turn,       // openai stop, gemini STOP
  max_tokens,     // openai length, gemini MAX_TOKENS
  stop_sequence,  // openai stop, gemini STOP (with the sequence, when known)
  tool_use,       // openai tool_calls, gemini STOP with functionCall parts
  refusal,        // openai content_filter, gemini SAFETY/RECITATION/BLOCKLIST/..., anthropic refusal
  pause_turn,     // anthropic pause_turn
  error,          // the upstream ended with an error
};

/// Token counts. `input` excludes cached tokens (Anthropic's convention):
/// OpenAI prompt_tokens == input + cache_read + cache_creation.
struct Usage {
  int64_t input = 0;
  int64_t output = 0;
  int64_t cache_read = 0;
  int64_t cache_creation = 0;
  int64_t reasoning = 0;  // part of output (OpenAI completion_tokens_details.reasoning_tokens)
  bool reported = false;  // the upstream said so (else: none, or an estimate)
  int64_t prompt_total() const { return sat_add(sat_add(input, cache_read), cache_creation); }
};

struct Response {
  std::string id;
  std::string model;
  std::vector<Block> content;  // assistant blocks in order
  StopReason stop_reason = StopReason::unset;
  std::string stop_sequence;   // which sequence stopped it, when known
  Usage usage;
};

/// A streamed answer as a sequence of events (Anthropic's stream shape):
///   message_start, then for each block: block_start, block_delta*, block_stop, with indices
///   0, 1, 2, ... and blocks never interleaved (a decoder closes the open block before it opens
///   the next one; an OpenAI delta for a tool call already closed is dropped and listed as lossy),
///   then message_delta (stop reason, usage), message_stop. An error event may come anywhere
///   and is the last.
/// A thinking block's signature arrives as a `signature` delta; a redacted_thinking block's
/// data is the text of its block_start (it has no deltas). Gemini's thoughtSignature on
/// a text or functionCall part is carried as a thinking block with empty text and that
/// signature, placed just before the block it belongs to.
enum class EventKind { message_start, block_start, block_delta, block_stop, message_delta,
                       message_stop, error };
enum class DeltaKind { text, input_json, thinking, signature };

struct Event {
  EventKind kind = EventKind::message_start;
  int index = 0;                  // block events: the block's index in the message
  BlockKind block = BlockKind::text;  // block_start
  DeltaKind delta = DeltaKind::text;  // block_delta
  std::string text;               // delta text / partial JSON / signature; error message;
                                  // block_start of redacted_thinking: its opaque data
  std::string tool_id, tool_name; // block_start of tool_use
  std::string id, model;          // message_start
  StopReason stop_reason = StopReason::unset;  // message_delta
  std::string stop_sequence;
  Usage usage;                    // message_start (input known) / message_delta (final)
  int status = 0;                 // error: the HTTP status it stands for (e.g. 529, 500)
  std::string error_type;         // error: canonical type ("overloaded_error", "api_error", ...)
};

}  // namespace sluice::canonical
