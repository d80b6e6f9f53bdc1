// The production check of translated streams (metrics.validate_streams): the bytes a client
// receives go through its protocol's StreamValidator; broken rules are counted in
// sluice_stream_invariant_violations_total{format,rule} and logged once per stream.
#pragma once

#include <memory>
#include <string_view>

#include "canonical/stream_validator.h"

namespace sluice::api {

/// Registers every {format,rule} series at 0 (so dashboards see the metric before a
/// violation). Idempotent.
void register_stream_check_metrics();

/// One stream's check: fed what the client is sent; judged when it goes out of scope (the
/// stream ended, whichever way; a stream that never began is not judged), unless abandon()ed (the client left: a cut stream is not a
/// broken one).
class StreamCheck {
 public:
  /// Off (every call a no-op) unless `enabled`. `request_id` must outlive the check.
  StreamCheck(bool enabled, canonical::Protocol format, std::string_view request_id);
  ~StreamCheck();
  StreamCheck(const StreamCheck&) = delete;
  StreamCheck& operator=(const StreamCheck&) = delete;
  void feed(std::string_view bytes) {
    if (!validator_) return;
    fed_ = true;
    validator_->feed(bytes);
  }
  void abandon() { validator_.reset(); }

 private:
  canonical::Protocol format_;
  std::string_view request_id_;
  std::unique_ptr<canonical::StreamValidator> validator_;
  bool fed_ = false;  // nothing sent: nothing to judge
};

}  // namespace sluice::api
