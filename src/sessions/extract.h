// What the gateway asks a model after a session's turn, and how it reads the answers, pure
// (no I/O): fact extraction (a configured model returns the turn's durable facts as JSON),
// rolling summaries of evicted turns (each made from the turns themselves, never from an
// earlier summary), and the embeddings calls of vector similarity. The calls themselves go
// through the gateway's own pipeline (api/session_jobs.cc).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "canonical/canonical.h"
#include "common/error.h"

namespace sluice::sessions {

struct Fact {
  std::string key;   // lower-case, words joined by '_', at most 64 bytes
  std::string text;  // at most 1000 bytes
  double weight = 0.5;
};

/// A transcript of messages for a prompt: "user: …", "assistant: …", tool calls and results
/// as one line each; at most `max_bytes` (the end is cut, on a UTF-8 boundary).
std::string transcript(const std::vector<canonical::Message>& messages, size_t max_bytes);

/// An OpenAI chat completions body asking `model` for the durable facts of `turn` (a
/// transcript); `known_keys` are the session's open memory keys, for the model to reuse when a
/// fact updates one.
std::string extraction_request(std::string_view model, std::string_view turn,
                               const std::vector<std::string>& known_keys);

/// The facts in a model's answer: the first JSON object in the text (a ```json fence or prose
/// around it is ignored) with a "facts" array of {key, text, weight?}. Entries without a key or
/// a text are skipped; at most `max_facts`. An error when the answer holds no such object.
Result<std::vector<Fact>> parse_facts(std::string_view answer, size_t max_facts = 20);

/// An OpenAI chat completions body asking `model` to summarize `turns` (a transcript).
std::string summary_request(std::string_view model, std::string_view turns);

/// An OpenAI embeddings body for one input.
std::string embeddings_request(std::string_view model, std::string_view input);

/// The assistant text of an OpenAI chat completion body.
Result<std::string> completion_text(std::string_view body);

/// The vector of an OpenAI embeddings body (data[0].embedding; at most 65,536 numbers).
Result<std::vector<float>> embedding_of(std::string_view body);

}  // namespace sluice::sessions
