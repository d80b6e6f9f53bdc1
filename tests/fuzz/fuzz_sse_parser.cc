// libFuzzer target for SseParser: the events (and overflow/pending state) must not depend on
// how the stream is split into feeds. Two leading control bytes pick the splits and the bound.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/parse/sse_parser.h"

namespace {

struct Ev {
  std::string event;
  std::string data;
  std::string id;
  int retry_ms;
  bool operator==(const Ev&) const = default;
};

struct Run {
  std::vector<Ev> events;
  bool overflowed;
  size_t pending;
};

Run run(std::string_view stream, const std::vector<size_t>& cuts, size_t max_event_bytes) {
  sluice::http::SseParser p;
  p.set_max_event_bytes(max_event_bytes);
  std::vector<Ev> events;
  const sluice::http::SseParser::Sink sink = [&events](const sluice::http::SseEvent& e) {
    events.push_back({std::string(e.event), std::string(e.data), std::string(e.id), e.retry_ms});
  };
  size_t begin = 0;
  for (size_t cut : cuts) {
    // Each piece in its own exact-size buffer so ASan catches reads past a feed.
    const std::string piece(stream.substr(begin, cut - begin));
    p.feed(piece, sink);
    begin = cut;
  }
  const std::string last(stream.substr(begin));
  p.feed(last, sink);
  if (p.pending_bytes() > max_event_bytes + 3) abort();  // +3: an undecided BOM prefix
  return {std::move(events), p.overflowed(), p.pending_bytes()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t split_seed = data[0];
  const uint8_t bound = data[1];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  // Odd bound byte: a small max_event_bytes to exercise the overflow path.
  const size_t max_event_bytes = (bound & 1) ? bound / 2 : 4 * 1024 * 1024;

  const Run whole = run(stream, {}, max_event_bytes);

  std::vector<size_t> cuts;
  if (split_seed == 0) {
    for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);  // every byte separately
  } else {
    uint32_t x = split_seed * 2654435761u + 1;
    // Steps of 0..15 bytes (0 = an empty feed), capped so a run of zero steps terminates.
    for (size_t pos = 0; cuts.size() < 2 * stream.size() + 4;) {
      x = x * 1103515245u + 12345u;
      pos += (x >> 16) % (split_seed % 16 + 1);
      if (pos > stream.size()) break;
      cuts.push_back(pos);
    }
  }
  const Run split = run(stream, cuts, max_event_bytes);
  if (!(split.events == whole.events)) abort();
  if (split.overflowed != whole.overflowed) abort();
  if (split.pending != whole.pending) abort();
  return 0;
}
