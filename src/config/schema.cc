// schema(): the table of schema.h, with each section's keys split into a list.
#include "config/schema.h"

#include <utility>

namespace sluice::config {

const std::vector<SchemaSection>& schema() {
  static const std::vector<SchemaSection> sections = [] {
    std::vector<SchemaSection> out;
    for (const schema_detail::Entry& entry : schema_detail::kEntries) {
      SchemaSection section{entry.path, {}};
      size_t start = 0;
      while (start < entry.keys.size()) {
        size_t end = entry.keys.find(' ', start);
        if (end == std::string_view::npos) end = entry.keys.size();
        section.keys.push_back(entry.keys.substr(start, end - start));
        start = end + 1;
      }
      out.push_back(std::move(section));
    }
    return out;
  }();
  return sections;
}

}  // namespace sluice::config
