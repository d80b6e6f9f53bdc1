// SSE event-stream interpretation: split into lines (CR, LF or CRLF, even across feeds), then
// apply the WHATWG field rules, with two deliberate deviations documented at dispatch().
#include "http/parse/sse_parser.h"

#include <climits>
#include <cstring>

namespace sluice::http {
namespace {

constexpr char kBom[] = "\xEF\xBB\xBF";

// First CR or LF in [p, p + n), or nullptr.
const char* find_eol(const char* p, size_t n) {
  if (n == 0) return nullptr;
  const char* lf = static_cast<const char*>(std::memchr(p, '\n', n));
  const size_t span = lf != nullptr ? static_cast<size_t>(lf - p) : n;
  const char* cr = span == 0 ? nullptr : static_cast<const char*>(std::memchr(p, '\r', span));
  return cr != nullptr ? cr : lf;
}

}  // namespace

void SseParser::feed(std::string_view bytes, const Sink& sink) {
  // A UTF-8 BOM is stripped once, at the very start of the stream, even if split across feeds.
  // Its partial prefix waits in line_; if it turns out not to be a BOM it is ordinary content.
  while (!bom_checked_ && !bytes.empty()) {
    if (bytes[0] != kBom[line_.size()]) {
      bom_checked_ = true;
      break;
    }
    line_.push_back(bytes[0]);
    bytes.remove_prefix(1);
    if (line_.size() == 3) {
      line_.clear();
      bom_checked_ = true;
    }
  }

  const char* const p = bytes.data();
  const size_t n = bytes.size();
  size_t i = 0;
  if (saw_cr_ && n > 0) {
    saw_cr_ = false;
    if (p[0] == '\n') i = 1;  // second half of a CRLF split across feeds
  }
  while (i < n) {
    const char* eol = find_eol(p + i, n - i);
    if (eol == nullptr) {
      // Partial line: buffer it, bounded. While skipping, one byte just marks "not blank".
      const size_t rest = n - i;
      if (skipping_) {
        if (line_.empty()) line_.push_back('x');
      } else if (line_.size() + rest + data_.size() + event_.size() > max_event_bytes_) {
        drop_oversized_event();
        line_.assign(1, 'x');
      } else {
        line_.append(p + i, rest);
      }
      return;
    }
    const size_t j = static_cast<size_t>(eol - p);
    if (line_.empty()) {
      const std::string_view line(p + i, j - i);
      // The common events, whole in this read: an optional `event:` line, one `data:` line,
      // then the blank line, LF endings. Dispatched from the read's own bytes (nothing copied,
      // no field parsing): what process_line + dispatch would do with them, bounds included.
      if (!has_fields_ && !skipping_ && *eol == '\n') {
        if (const size_t next = dispatch_whole(p, n, i, j, sink); next != 0) {
          i = next;
          continue;
        }
      }
      process_line(line, sink);
    } else {
      if (!skipping_) line_.append(p + i, j - i);
      process_line(line_, sink);
      line_.clear();
    }
    i = j + 1;
    if (*eol == '\r') {
      if (i < n) {
        if (p[i] == '\n') ++i;
      } else {
        saw_cr_ = true;
      }
    }
  }
}

namespace {

// The value of field `name` on `line` ("name:" then one optional space), when the line is that
// field.
bool field_value(std::string_view line, std::string_view name, std::string_view& value) {
  if (line.size() <= name.size() || line[name.size()] != ':' || !line.starts_with(name)) {
    return false;
  }
  value = line.substr(name.size() + 1);
  if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  return true;
}

}  // namespace

size_t SseParser::dispatch_whole(const char* p, size_t n, size_t i, size_t j, const Sink& sink) {
  // [i, j) is a line ended by the LF at j.
  std::string_view line(p + i, j - i);
  SseEvent ev;
  if (field_value(line, "event", ev.event)) {
    if (line.size() > max_event_bytes_) return 0;
    // The data line must follow, whole, ended by LF LF.
    const size_t d = j + 1;
    const char* eol = find_eol(p + d, n - d);
    if (eol == nullptr || *eol != '\n') return 0;
    j = static_cast<size_t>(eol - p);
    line = std::string_view(p + d, j - d);
    if (line.size() + ev.event.size() > max_event_bytes_) return 0;
  } else if (line.size() > max_event_bytes_) {
    return 0;
  }
  if (j + 1 >= n || p[j + 1] != '\n' || !field_value(line, "data", ev.data)) return 0;
  if (sink) sink(ev);
  return j + 2;
}

void SseParser::drop_oversized_event() {
  overflowed_ = true;
  skipping_ = true;
  data_.clear();
  event_.clear();
  id_.clear();
  retry_ms_ = -1;
  has_fields_ = false;
}

void SseParser::process_line(std::string_view line, const Sink& sink) {
  if (skipping_) {
    if (line.empty()) skipping_ = false;  // the oversized event ends here, undispatched
    return;
  }
  if (line.empty()) {
    if (has_fields_) dispatch(sink);
    return;
  }
  // The bound covers the whole line, however it was split across feeds, so the outcome does
  // not depend on read boundaries.
  if (line.size() + data_.size() + event_.size() > max_event_bytes_) {
    drop_oversized_event();
    return;
  }
  if (line[0] == ':') return;  // comment

  std::string_view field = line;
  std::string_view value;
  if (const size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }

  if (field == "data") {
    if (data_.size() + value.size() + 1 + event_.size() > max_event_bytes_) {
      drop_oversized_event();
      return;
    }
    data_.append(value);
    data_.push_back('\n');
    has_fields_ = true;
  } else if (field == "event") {
    event_.assign(value);
    has_fields_ = true;
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) {
      id_.assign(value);
      has_fields_ = true;
    }
  } else if (field == "retry") {
    if (value.empty()) return;
    long long ms = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return;
      if (ms < INT_MAX) ms = ms * 10 + (c - '0');
    }
    retry_ms_ = ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
    has_fields_ = true;
  }
  // Any other field name is ignored, as the spec requires.
}

// Deviations from WHATWG, both deliberate:
//  * An event is dispatched whenever any field (data, event, id or retry) was seen since the
//    last blank line, even with an empty data buffer, so a gateway can observe `event:`-only
//    blocks. The spec would drop those.
//  * `id` (and `retry`) belong to one event: they are reset after each dispatch rather than
//    persisting as the stream's last-event-ID. Callers that need Last-Event-ID keep their own.
void SseParser::dispatch(const Sink& sink) {
  if (!data_.empty() && data_.back() == '\n') data_.pop_back();
  if (sink) {
    SseEvent ev;
    ev.event = event_;
    ev.data = data_;
    ev.id = id_;
    ev.retry_ms = retry_ms_;
    sink(ev);
  }
  data_.clear();
  event_.clear();
  id_.clear();
  retry_ms_ = -1;
  has_fields_ = false;
}

}  // namespace sluice::http
