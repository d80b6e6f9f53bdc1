// Gemini Part <-> canonical Block, usage and finishReason mapping, shared by the client side
// (frontends/gemini) and the upstream side (providers/gemini): both read and write the same
// Content/Part shapes (v1beta REST, camelCase).
#pragma once

#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "canonical/canonical.h"
#include "canonical/json.h"
#include "common/error.h"

namespace sluice::canonical::gemini {

/// State carried across the parts of one request or answer.
struct PartReader {
  int next_call = 0;  // functionCall without id → "call_<n>", deterministic per document
  std::unordered_map<std::string, std::string> last_call_id;  // function name → latest id
  // function name → ids of calls not answered yet, oldest first: id-less functionResponses
  // answer parallel calls of one name in order.
  std::unordered_map<std::string, std::deque<std::string>> unanswered;
  bool any_call = false;
  // Answers: drop {"text":""} parts (Gemini pads its last chunk with one); requests keep them.
  bool drop_empty_text = false;

  std::string next_id() { return "call_" + std::to_string(next_call++); }
};

/// Appends the blocks for one Part to `out` (a thoughtSignature on a non-thought part becomes
/// an empty thinking block with that signature just before). Errors: 400 naming `path`.
Result<void> read_part(const json::value& part, const std::string& path, PartReader& r,
                       std::vector<Block>& out);

/// Builds parts from blocks. A thinking block with empty text and a signature is held and its
/// signature put on the next part (or on an empty text part at the end).
class PartWriter {
 public:
  /// `tool_names`: tool_use id → name, to name functionResponses whose block has no tool_name.
  explicit PartWriter(const std::unordered_map<std::string, std::string>* tool_names = nullptr)
      : tool_names_(tool_names) {}
  void add(const Block& b);
  /// Adds a ready part, attaching a held signature.
  void add_part(json::object part);
  /// The parts so far, with a held signature flushed onto an empty text part.
  json::array take();
  bool empty() const { return parts_.empty() && pending_signature_.empty(); }
  /// Upstream requests: thinking text without a signature is dropped (Gemini takes back only
  /// signed thoughts); answers to clients keep it as a thought part.
  bool drop_unsigned_thoughts = false;

 private:
  const std::unordered_map<std::string, std::string>* tool_names_;
  json::array parts_;
  std::string pending_signature_;
};

/// {"id"?, "name", "args"} — args the parsed tool_input object, else {"_raw_arguments": text}.
json::object function_call(std::string_view id, std::string_view name, std::string_view input);
json::value args_object(std::string_view tool_input);

/// usageMetadata from canonical Usage and back.
json::object usage_metadata(const Usage& u);
Usage read_usage(const json::object& usage_metadata);

/// finishReason → StopReason (any functionCall in the answer turns STOP into tool_use).
StopReason read_finish(std::string_view reason, bool any_call);

/// Gemini error body {"error":{"code","message","status"}}.
std::string error_json(int status, std::string_view message);

}  // namespace sluice::canonical::gemini
