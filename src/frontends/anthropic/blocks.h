// Anthropic Messages API content blocks <-> canonical Blocks, shared by the client side
// (frontends/anthropic) and the upstream side (providers/anthropic): both directions speak the
// same block shapes. Pure functions; nothing here throws out (Boost calls are guarded by callers).
#pragma once

#include <string>
#include <string_view>

#include "canonical/canonical.h"
#include "canonical/json.h"
#include "canonical/json_writer.h"
#include "common/error.h"

namespace sluice::canonical::anthropic {

/// Writes one canonical block as an Anthropic content block (text, image, tool_use,
/// tool_result, thinking, redacted_thinking). tool_use input is sent as an object: non-object
/// arguments become {"_raw_arguments": "<text>"}.
void write_block(const Block& b, JsonWriter& w);

/// Writes the tool_use `input` object for canonical argument text.
void write_tool_input(std::string_view text, JsonWriter& w);

/// Parses one content block. `where` names it in errors ("messages[0].content[1]"); errors are
/// 400s (invalid()) naming the offending param. Unknown block types are an error too, with
/// param "<where>.type"; callers that must tolerate them (upstream answers) check the type first.
Result<Block> block_from_json(const json::value& v, const std::string& where);

/// True for the block types block_from_json understands.
bool known_block_type(std::string_view type);

/// Anthropic stop_reason → canonical (unknown values → end_turn).
StopReason stop_from_wire(std::string_view s);

/// A fresh id in Anthropic's shape: prefix + 22 base62 characters ("msg_01...", "toolu_01...").
std::string new_id(std::string_view prefix);

/// True when `type` is an Anthropic error type (error.type in error bodies and stream errors).
bool known_error_type(std::string_view type);

}  // namespace sluice::canonical::anthropic
