// Builders for OpenAI-shaped response bodies and SSE chunks. Shared by the built-in demo
// provider and by sluice-mock, so both speak exactly the wire format the SDKs parse.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "providers/request.h"

namespace sluice::providers {

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

struct CompletionShape {
  Operation op = Operation::chat;  // chat or completions
  std::string_view id;             // "chatcmpl-..." / "cmpl-..."
  std::string_view model;
  int64_t created = 0;             // unix seconds
};

/// A whole non-streaming chat.completion / text_completion object.
std::string unary_completion(const CompletionShape& shape, std::string_view text, Usage usage);

/// One SSE event `data: {chunk}\n\n`. `role_chunk` produces the opening delta
/// {"role":"assistant","content":""}; `finish_reason` non-empty produces the closing chunk.
std::string chunk_event(const CompletionShape& shape, std::string_view delta_text,
                        bool role_chunk = false, std::string_view finish_reason = {});

/// The include_usage chunk (`"choices":[]` plus usage).
std::string usage_event(const CompletionShape& shape, Usage usage);

inline constexpr std::string_view kDoneEvent = "data: [DONE]\n\n";

/// An embeddings list: `dimensions` floats per input derived from a hash of the input text
/// (with `trigrams`, from its character trigrams, so similar spellings have a high cosine);
/// base64 encodes the little-endian float32 array as the OpenAI API does.
std::string embeddings_response(std::string_view model, const std::vector<std::string>& inputs,
                                bool base64, int dimensions = 8, bool trigrams = false);

/// Rough token count used where no tokenizer is available: ~4 bytes per token, at least 1.
int64_t estimate_tokens(std::string_view text);

}  // namespace sluice::providers
