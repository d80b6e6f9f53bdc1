// The OpenAI Chat Completions stream decoder (chat.completion.chunk SSE → canonical events),
// declared here so tests can read its dropped_deltas() count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "canonical/codec.h"
#include "canonical/json.h"
#include "canonical/skeleton.h"
#include "http/parse/sse_parser.h"

namespace sluice::canonical::openai {

/// Canonical error type for an upstream error: "context_length_exceeded" when the code or
/// message says so, else from the status.
std::string error_type_for(int status, std::string_view code, std::string_view message);
/// A chat.completion `usage` object → canonical Usage (input excludes cached tokens).
Usage usage_from(const json::object& usage);
/// The same from its four counts (prompt_tokens, prompt_tokens_details.cached_tokens,
/// completion_tokens, completion_tokens_details.reasoning_tokens); negative counts read as 0.
Usage usage_of(int64_t prompt, int64_t cached, int64_t completion, int64_t reasoning);
/// finish_reason → canonical stop reason (missing or unknown → end_turn).
StopReason stop_from_finish(std::string_view finish_reason);

class ChunkDecoder final : public StreamDecoder {
 public:
  /// `fast`: the common chunk (text content, finish_reason, no usage, tools or reasoning) is
  /// read in one on-demand pass (simdjson) instead of a DOM; every other chunk, and any chunk the
  /// pass is not sure of, goes the DOM way. Off only to compare the two (tests, fuzzer).
  explicit ChunkDecoder(bool fast = true) : fast_(fast) {}
  void feed(std::string_view bytes, std::vector<Event>& out) override;
  void finish(std::vector<Event>& out) override;

  /// Tool-argument deltas for a tool call whose block was already closed (the canonical stream
  /// never interleaves blocks, so they cannot be forwarded).
  size_t dropped_deltas() const { return dropped_; }
  /// Chunks the on-demand pass handled (the rest went the DOM way).
  size_t fast_chunks() const { return fast_chunks_; }
  size_t fast_events() const override { return fast_chunks_; }
  size_t skeleton_events() const override { return skeleton_chunks_; }

 private:
  void on_data(std::string_view data, std::vector<Event>& out);
  // The on-demand pass: true when it handled the chunk (nothing emitted otherwise).
  bool fast_chunk(std::string_view data, std::vector<Event>& out);
  void text_delta(std::string_view text, std::vector<Event>& out);
  void on_chunk(const json::object& chunk, std::vector<Event>& out);
  void on_delta(const json::object& delta, std::vector<Event>& out);
  void on_tool_call(const json::object& tc, std::vector<Event>& out);
  void start(std::vector<Event>& out);
  void open(BlockKind kind, std::vector<Event>& out, std::string tool_id = {},
            std::string tool_name = {});
  void close(std::vector<Event>& out);
  void emit_delta(DeltaKind kind, std::string_view text, std::vector<Event>& out);
  void end(std::vector<Event>& out);
  void error(int status, std::string type, std::string message, std::vector<Event>& out);

  const bool fast_;
  std::string padded_;  // the chunk with simdjson's padding after it
  Skeleton skeleton_;   // the last text-only chunk fast_chunk accepted, but for its text
  http::SseParser sse_;
  bool started_ = false;
  bool done_ = false;       // [DONE], EOF or an error: nothing more is emitted
  bool open_ = false;       // a block is open
  BlockKind kind_ = BlockKind::text;
  bool signed_ = false;     // the open thinking block already has its signature
  int next_index_ = 0;      // canonical index of the next block
  int64_t tool_index_ = -1;     // OpenAI tool_calls index of the open tool_use block
  int64_t max_tool_index_ = -1; // highest tool index opened so far
  std::set<int64_t> tools_seen_;
  std::string finish_reason_;
  bool refusal_ = false;
  Usage usage_;
  size_t dropped_ = 0;
  size_t fast_chunks_ = 0;
  size_t skeleton_chunks_ = 0;
  std::string id_, model_;
};

}  // namespace sluice::canonical::openai
