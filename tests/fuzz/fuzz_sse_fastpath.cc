// Differential libFuzzer target for the SSE relay's fast path (http/parse/sse_scan.h and
// providers::SseStreamObserver) against the full SseParser. The stream is split into reads
// at input-chosen points and pushed through SseEventBuffer exactly as the relay does; the
// chunks it releases go through the observer (counting, usage only where it may appear).
// Checked: the relayed bytes are the stream; the event count and the last usage equal
// SseParser's over the same bytes, overall and per chunk; a chunk the fast path calls
// usage-free has no usage; the oversized-event verdict equals an independent one (some event,
// measured between blank lines, longer than the bound). Two leading bytes pick the reads and
// the bound.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/parse/sse_parser.h"
#include "http/parse/sse_scan.h"
#include "providers/usage_report.h"

namespace {

using sluice::http::SseEvent;
using sluice::http::SseParser;
using sluice::providers::UsageTokens;

struct Reference {
  size_t events = 0;
  std::optional<UsageTokens> usage;
  bool overflowed = false;
};

// What the relay used to do with every event: the full parser, parse_usage on events that
// mention usage, [DONE] not counted.
Reference parse_all(std::string_view bytes, size_t max_event_bytes, bool prime) {
  SseParser p;
  p.set_max_event_bytes(max_event_bytes);
  Reference r;
  const SseParser::Sink sink = [&r](const SseEvent& ev) {
    if (ev.data.find("\"usage\"") != std::string_view::npos) {
      if (auto u = sluice::providers::parse_usage(ev.data)) r.usage = u;
    }
    if (ev.data != "[DONE]") ++r.events;
  };
  // A chunk from the middle of a stream: settle the BOM check with a line that changes nothing.
  if (prime) p.feed("\n", sink);
  p.feed(bytes, sink);
  r.overflowed = p.overflowed();
  return r;
}

// Independent of sse_scan: split into lines (CR, LF, CRLF) and measure the spans between
// blank lines (an empty line that is not the stream's first line ends an event, its
// terminator included). The longest span, or the unterminated tail, is the largest event.
size_t largest_event(std::string_view s) {
  size_t start = 0, largest = 0, line_start = 0;
  bool first_line = true;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '\n' && s[i] != '\r') {
      ++i;
      continue;
    }
    const bool empty = i == line_start;
    i += (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ? 2 : 1;
    if (empty && !first_line) {
      largest = std::max(largest, i - start);
      start = i;
    }
    first_line = false;
    line_start = i;
  }
  return std::max(largest, s.size() - start);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t split_seed = data[0];
  const uint8_t bound = data[1];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  // Odd bound byte: a small bound, to reach the oversized-event path.
  const size_t max_event_bytes = (bound & 1) ? 8 + bound / 2 : 1 << 20;
  // The relay's reads are far smaller than its bound (16 KiB vs 8 MiB); keep that true here.
  const size_t max_read = std::min<size_t>(max_event_bytes, split_seed % 64 + 1);

  sluice::http::SseEventBuffer buffer(max_event_bytes);
  sluice::providers::SseStreamObserver observer(max_event_bytes);
  std::optional<UsageTokens> usage;
  size_t events = 0;
  std::string relayed;
  bool first_chunk = true;
  uint32_t x = split_seed * 2654435761u + 1;
  for (size_t pos = 0; pos < stream.size();) {
    x = x * 1103515245u + 12345u;
    const size_t n =
        split_seed == 0 ? 1 : std::min(stream.size() - pos, (x >> 16) % max_read + 1);
    // Each read in its own exact-size buffer so ASan catches reads past it.
    const std::string read(stream.substr(pos, n));
    pos += n;
    const std::string_view ready = buffer.push(read);
    if (buffer.too_large()) {
      if (!ready.empty()) abort();
      break;
    }
    if (ready.empty()) continue;
    if (!first_chunk) {
      // Per chunk: the fast count is the parser's count; "no usage" is never wrong.
      const Reference chunk = parse_all(ready, max_event_bytes, true);
      if (sluice::http::count_sse_events(ready) != chunk.events) abort();
      if (chunk.usage && !sluice::http::sse_may_carry_usage(ready)) abort();
    }
    first_chunk = false;
    events += observer.observe(ready, usage);
    relayed.append(ready);
  }

  // A clean end: the relay observes and forwards the tail (a last event may end in a CR
  // that no LF followed).
  if (!buffer.too_large() && !buffer.pending().empty()) {
    if (!first_chunk) {
      const Reference chunk = parse_all(buffer.pending(), max_event_bytes, true);
      if (sluice::http::count_sse_events(buffer.pending()) != chunk.events) abort();
    }
    events += observer.observe(buffer.pending(), usage);
    relayed.append(buffer.pending());
  }

  const bool too_large = largest_event(stream) > max_event_bytes;
  if (buffer.too_large() != too_large) abort();
  if (!too_large && relayed != stream) abort();
  if (!stream.starts_with(relayed)) abort();

  // Over everything relayed: the same events and usage as the full parser, which (with the
  // relay's bound) never had to drop an event.
  const Reference whole = parse_all(relayed, max_event_bytes, false);
  if (whole.overflowed) abort();
  if (whole.events != events) abort();
  if (whole.usage != usage) abort();
  return 0;
}
