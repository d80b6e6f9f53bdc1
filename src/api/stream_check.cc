#include "api/stream_check.h"

#include <spdlog/spdlog.h>

#include "observe/metrics.h"

namespace sluice::api {

namespace {

constexpr std::string_view kFamily = "sluice_stream_invariant_violations_total";
constexpr std::string_view kHelp =
    "Translated streams sent to clients that broke a rule of their protocol's stream shape "
    "(metrics.validate_streams), by format and rule.";

observe::Cell violation_cell(canonical::Protocol format, std::string_view rule) {
  std::string labels = "format=\"";
  labels += canonical::protocol_name(format);
  labels += "\",rule=\"";
  labels += rule;
  labels += '"';
  return observe::Registry::instance().counter(kFamily, kHelp, labels);
}

}  // namespace

void register_stream_check_metrics() {
  for (auto format : {canonical::Protocol::openai, canonical::Protocol::anthropic,
                      canonical::Protocol::gemini}) {
    for (std::string_view rule : canonical::StreamValidator::rules(format)) {
      violation_cell(format, rule);
    }
  }
}

StreamCheck::StreamCheck(bool enabled, canonical::Protocol format, std::string_view request_id)
    : format_(format), request_id_(request_id) {
  if (enabled) validator_ = canonical::StreamValidator::make(format);
}

StreamCheck::~StreamCheck() {
  if (!validator_ || !fed_) return;
  validator_->finish();
  if (validator_->ok()) return;
  for (const std::string& rule : validator_->violations()) {
    observe::add(violation_cell(format_, rule));  // rare: the registry lookup is fine here
  }
  spdlog::warn("request {}: the translated {} stream broke {} rule(s): {}", request_id_,
               canonical::protocol_name(format_), validator_->violations().size(),
               validator_->details().front());
}

}  // namespace sluice::api
