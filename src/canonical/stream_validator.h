// Stream validators: one per wire format, reading the SSE bytes a client would read (any
// split) and recording which shape rules the stream breaks. They check what our encoders send
// (tests, and later a sampled production check feeding
// sluice_stream_invariant_violations_total{format,rule}), so every rule has a stable name
// `<format>.<rule>` listed in rules(format).
//
// A rule is recorded at most once per stream (the metric counts broken streams, not events);
// details() keeps a human-readable line per occurrence for test failure messages.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "canonical/canonical.h"
#include "http/parse/sse_parser.h"

namespace sluice::canonical {

class StreamValidator {
 public:
  static std::unique_ptr<StreamValidator> make(Protocol p);
  /// Every rule name a validator of `p` can record (stable: metric label values).
  static std::span<const std::string_view> rules(Protocol p);

  virtual ~StreamValidator() = default;
  /// The next bytes of the response body.
  void feed(std::string_view bytes);
  /// The body ended: checks the rules about what must have come (terminators, closings).
  void finish();

  /// Distinct rule names broken so far, in the order first seen.
  const std::vector<std::string>& violations() const { return violations_; }
  /// One line per occurrence: "<rule>: <what, at which event>".
  const std::vector<std::string>& details() const { return details_; }
  bool ok() const { return violations_.empty(); }

 protected:
  virtual void on_event(const http::SseEvent& e) = 0;
  virtual void on_finish() = 0;
  virtual std::string_view unterminated_rule() const = 0;
  /// Records `rule` (a name from this format's list) once; `detail` goes to details().
  void violate(std::string_view rule, std::string_view detail = {});
  /// Events seen so far (for details).
  int events() const { return events_; }

 private:
  http::SseParser parser_;
  std::vector<std::string> violations_;
  std::vector<std::string> details_;
  int events_ = 0;
  bool finished_ = false;
};

}  // namespace sluice::canonical
