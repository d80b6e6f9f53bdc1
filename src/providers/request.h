// The fields of an OpenAI-style request body the gateway needs (model, stream flags, max_tokens),
// found in one on-demand pass without building a DOM, plus the position of the model token so a
// route can rewrite it by splicing instead of re-serialising the body. The same pass validates
// the body against OpenAI's schema for the fields the gateway relies on or that are required.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace sluice::providers {

enum class Operation {
  chat,
  completions,
  embeddings,
  count_tokens,  // Anthropic /v1/messages/count_tokens, Gemini :countTokens (translated only)
};

std::string_view operation_path(Operation op);  // "/chat/completions", ...

struct ParsedRequest {
  Operation op = Operation::chat;
  std::string_view body;   // the client's body (padded)
  std::string model;       // unescaped
  size_t model_begin = 0;  // [begin, end): the raw JSON string token of "model" in body
  size_t model_end = 0;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // max_tokens / max_completion_tokens, the larger when both are given (0 = not given or 0).
  // Validated to [0, kMaxTokensLimit]; the route's context limit is applied by the caller.
  int64_t max_tokens = 0;
  int64_t n = 1;  // choices asked for, [1, kMaxChoices]
};

/// Bounds parse_request enforces (OpenAI's published limits where it has one).
inline constexpr size_t kMaxModelBytes = 256;           // review §2.5
inline constexpr int64_t kMaxTokensLimit = 2147483647;  // 2^31-1
inline constexpr int64_t kMaxChoices = 128;             // `n`
inline constexpr size_t kMaxEmbeddingInputs = 2048;     // OpenAI's cap per request

/// Parses and validates `body`, which must be followed by at least 64 readable bytes (simdjson
/// padding). Every error is bad_request (400) naming the param and, where OpenAI has one, with
/// OpenAI's `code` (code_override): not JSON, not an object, trailing content; model missing,
/// not a string, empty or over kMaxModelBytes; duplicate model/stream/stream_options keys;
/// stream not a boolean; stream_options not an object, or given without stream: true;
/// max_tokens/max_completion_tokens/n not an integer or out of range; temperature/top_p not a
/// number or out of range; chat: messages missing, not a non-empty array of objects each with a
/// role in {system, user, assistant, tool, function, developer}; completions: prompt missing or
/// not a string / array of strings / array of integers / array of integer arrays; embeddings:
/// input the same shape, non-empty, at most kMaxEmbeddingInputs items. null is accepted as
/// "absent" for the optional fields (and for prompt, which OpenAI's schema makes nullable).
Result<void> parse_request(Operation op, std::string_view body, ParsedRequest& out);

/// Full validation of the whole document (parse_request only checks what it reads). Used where
/// the gateway itself answers (demo), since no upstream will reject a malformed body for it.
Result<void> validate_json(std::string_view body);

/// The text a demo answer is built from: the last user message (chat), the prompt
/// (completions). Empty when absent. `body` padded as above.
std::string extract_prompt(Operation op, std::string_view body);

/// Embedding inputs (string or array of strings; token arrays count as one input each).
/// `encoding_format` is set to "float" unless the body says otherwise.
struct EmbeddingInputs {
  std::vector<std::string> inputs;
  std::string encoding_format = "float";
};
Result<EmbeddingInputs> extract_embedding_inputs(std::string_view body);

}  // namespace sluice::providers
