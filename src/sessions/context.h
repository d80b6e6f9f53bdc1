// Session memory on the request path, pure (no I/O): scoring memories against a query, and
// packing a model's context from the system prompt, the chosen memories and the newest turns.
//
// Scoring: score = alpha·relevance + beta·recency + gamma·weight, where relevance is BM25
// (k1 1.2, b 0.75) over the memory's key and text, divided by the best BM25 among the memories
// scored (so it lies in [0, 1]); recency = 0.5^(age / half_life) of its last access; weight is
// the memory's own, in [0, 1].
//
// Packing (budget = context window − max_tokens − margin): the system prompt, the tools and the
// new messages always go; then memories in score order while they fit their sub-budget; then
// whole turns, newest first, while they fit. A turn is never split, and a turn whose first
// message answers a tool call of a turn left out is left out too, so a tool call never travels
// without its result or a result without its call. A result in the request itself whose call
// is in a turn left out brings that call along (as one assistant message), even over budget.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "canonical/canonical.h"

namespace sluice::sessions {

struct ScoreParams {
  double alpha = 1.0;              // relevance
  double beta = 0.2;               // recency
  double gamma = 0.3;              // weight
  double half_life_s = 7 * 86400;  // recency halves every week
  // With a query vector (an embeddings route is configured), relevance is
  // (1 − vector_weight)·BM25/best + vector_weight·max(0, cosine); a memory without a vector
  // (or of another dimension) has cosine 0.
  std::vector<float> query_vector;
  double vector_weight = 0.5;
};

struct MemoryDoc {
  std::string key;
  std::string text;
  double weight = 0.5;
  int64_t last_access_ms = 0;
  std::vector<float> embedding;  // empty: none
};

struct Scored {
  size_t index = 0;  // into the docs
  double score = 0, relevance = 0, bm25 = 0, recency = 0, weight = 0, similarity = 0;
};

/// Cosine similarity of two vectors of one dimension (0 when they differ or either is zero).
double cosine(const std::vector<float>& a, const std::vector<float>& b);

/// The `k` best documents for `query`, best first (ties: the later document first).
std::vector<Scored> score_memories(const std::vector<MemoryDoc>& docs, std::string_view query,
                                   size_t k, int64_t now_ms, const ScoreParams& params);

/// Lower-cased word tokens (ASCII letters and digits; bytes ≥ 0x80 count as letters), English
/// plural, -ing and -ed endings and a final e stripped ("lives", "lived", "living" → "liv").
std::vector<std::string> tokenize(std::string_view text);

/// The words of `text` (ASCII letters and digits lower-cased, bytes ≥ 0x80 kept) joined by
/// `sep`: "Home City!" → "home_city" with '_'. Not stemmed.
std::string join_words(std::string_view text, char sep);

/// Estimated tokens of messages / blocks (about 4 bytes a token; tool arguments and results
/// included; an image counts 765).
int64_t estimate_tokens(const std::vector<canonical::Message>& messages);
int64_t estimate_tokens(const std::vector<canonical::Block>& blocks);

/// An inverted index over one session's memories, built once and searched many times: the same
/// ranking as score_memories, but a query costs its terms' postings plus one pass for recency
/// and weight instead of tokenizing every memory. Immutable once built.
class MemoryIndex {
 public:
  /// `expires_at_ms[i]` > 0: docs[i] is left out of results from then on (0 = never).
  MemoryIndex(std::vector<MemoryDoc> docs, std::vector<int64_t> expires_at_ms = {});

  /// As score_memories(docs, query, k, now_ms, params), skipping expired documents.
  std::vector<Scored> search(std::string_view query, size_t k, int64_t now_ms,
                             const ScoreParams& params) const;

  size_t size() const { return docs_.size(); }
  const MemoryDoc& doc(size_t i) const { return docs_[i]; }

 private:
  std::vector<MemoryDoc> docs_;
  std::vector<int64_t> expires_;
  std::vector<uint32_t> len_;
  double avg_len_ = 1;
  // term → (doc, term frequency), docs ascending.
  std::unordered_map<std::string, std::vector<std::pair<uint32_t, uint32_t>>> postings_;
};

/// A summary of the stored turns numbered [from, to), made from those turns themselves.
struct SummaryDoc {
  int64_t from = 0, to = 0;
  std::string text;
};

struct PackInput {
  int64_t budget = 0;                     // tokens for everything sent
  int64_t memory_budget = 0;              // of which memories and summaries may take at most this
  std::vector<std::string> memory_lines;  // in score order ("key: text")
  // Stored turns, oldest first, each the messages it holds, and their turn numbers (empty:
  // 0, 1, 2, ...).
  std::vector<std::vector<canonical::Message>> turns;
  std::vector<int64_t> turn_numbers;
  // Summaries, oldest first. Those of turns all left out go in (newest first, in what the
  // memories left of their sub-budget, which is set aside before turns are packed); one that
  // overlaps a kept turn never does.
  std::vector<SummaryDoc> summaries;
};

struct PackResult {
  int64_t context_tokens = 0;  // the estimate of what is sent
  size_t turns_used = 0;
  size_t turns_evicted = 0;
  size_t memories_used = 0;
  size_t summaries_used = 0;
  int64_t first_kept_turn = 0;  // number of the oldest turn kept (one past the newest if none)
};

/// Rewrites `req` (its system and messages are the new request's) into the packed request: the
/// memories and the summaries as system blocks after the request's own, the turns kept before
/// its messages.
PackResult pack(canonical::Request& req, PackInput input);

}  // namespace sluice::sessions
