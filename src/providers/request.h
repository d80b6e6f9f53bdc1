// The fields of an OpenAI-style request body the gateway needs (model, stream flags), found in
// one on-demand pass without building a DOM, plus the position of the model token so a route
// can rewrite it by splicing instead of re-serialising the body.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace sluice::providers {

enum class Operation { chat, completions, embeddings };

std::string_view operation_path(Operation op);  // "/chat/completions", ...

struct ParsedRequest {
  Operation op = Operation::chat;
  std::string_view body;   // the client's body (padded)
  std::string model;       // unescaped
  size_t model_begin = 0;  // [begin, end): the raw JSON string token of "model" in body
  size_t model_end = 0;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int64_t max_tokens = 0;      // max_tokens / max_completion_tokens (0 = not given)
};

/// Parses `body`, which must be followed by at least 64 readable bytes (simdjson padding).
/// Errors (all bad_request, naming the param): not JSON, not an object, trailing content,
/// missing/empty/non-string model, non-boolean stream.
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
