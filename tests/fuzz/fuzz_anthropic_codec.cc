// libFuzzer target for the Anthropic Messages API codec: the input is a client request body, an
// upstream answer body, an upstream error body and an upstream SSE stream at once. Checks that
// errors have the right codes, that a decoded request re-encodes to a body that decodes again,
// that the stream's events do not depend on how the bytes are split and keep the canonical
// shape, and that the stream encoder accepts whatever the decoder produced.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "canonical/codec.h"

namespace {

namespace canonical = sluice::canonical;
namespace anthropic = sluice::canonical::anthropic;
using sluice::Errc;

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

struct Ev {
  canonical::EventKind kind;
  int index;
  int block;
  int delta;
  std::string text, tool_id, tool_name, id, model, stop_sequence;
  int stop_reason;
  int64_t in, out, cache_read, cache_creation;
  int status;
  std::string error_type;
  bool operator==(const Ev&) const = default;
};

std::vector<Ev> flat(const std::vector<canonical::Event>& events) {
  std::vector<Ev> out;
  for (const canonical::Event& e : events) {
    out.push_back({e.kind, e.index, int(e.block), int(e.delta), e.text, e.tool_id, e.tool_name,
                   e.id, e.model, e.stop_sequence, int(e.stop_reason), e.usage.input,
                   e.usage.output, e.usage.cache_read, e.usage.cache_creation, e.status,
                   e.error_type});
  }
  return out;
}

std::vector<canonical::Event> decode_stream(std::string_view body, uint8_t seed,
                                           bool fast = true) {
  auto d = fast ? anthropic::stream_decoder() : anthropic::stream_decoder_without_fast_pass();
  std::vector<canonical::Event> out;
  if (seed == 0) {
    d->feed(body, out);
  } else {
    uint32_t x = seed * 2654435761u + 1;
    for (size_t pos = 0; pos < body.size();) {
      x = x * 1103515245u + 12345u;
      const size_t n = (x >> 16) % (seed % 16 + 2);  // 0 = an empty feed; never only zeros
      const std::string piece(body.substr(pos, n));  // own buffer: ASan sees over-reads
      d->feed(piece, out);
      pos += n;
    }
  }
  d->finish(out);
  return out;
}

// The canonical stream shape (canonical.h): one message_start first, blocks 0, 1, 2, ... never
// interleaved, message_delta then message_stop at the end, or an error as the last event.
void check_shape(const std::vector<canonical::Event>& events) {
  CHECK(!events.empty());  // finish() always ends the stream one way or the other
  int next = 0;
  bool open = false;
  for (size_t i = 0; i < events.size(); ++i) {
    const canonical::Event& e = events[i];
    const bool last = i + 1 == events.size();
    switch (e.kind) {
      case canonical::EventKind::message_start:
        CHECK(i == 0);
        break;
      case canonical::EventKind::block_start:
        CHECK(!open && e.index == next);
        open = true;
        break;
      case canonical::EventKind::block_delta:
        CHECK(open && e.index == next);
        break;
      case canonical::EventKind::block_stop:
        CHECK(open && e.index == next);
        open = false;
        ++next;
        break;
      case canonical::EventKind::message_delta:
        CHECK(!open && i + 2 == events.size());
        break;
      case canonical::EventKind::message_stop:
        CHECK(last);
        break;
      case canonical::EventKind::error:
        CHECK(last && e.status >= 400);
        break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t seed = data[0];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  auto req = anthropic::decode_request(body, {});
  if (!req.ok()) {
    CHECK(req.error().code == Errc::bad_request && !req.error().message.empty());
  } else {
    const std::string wire = anthropic::encode_request(*req, "m");
    auto again = anthropic::decode_request(wire, {});
    CHECK(again.ok());
    CHECK(anthropic::encode_request(*again, "m") == wire);
  }

  auto resp = anthropic::decode_response(body);
  if (!resp.ok()) {
    CHECK(resp.error().code == Errc::upstream_protocol);
  } else {
    CHECK(anthropic::decode_response(anthropic::encode_response(*resp, {})).ok());
  }

  const canonical::UpstreamError err = anthropic::decode_error(400 + seed, body);
  CHECK(!err.type.empty() && !err.message.empty());

  const std::vector<canonical::Event> whole = decode_stream(body, 0);
  check_shape(whole);
  const std::vector<canonical::Event> split = decode_stream(body, seed);
  CHECK(flat(split) == flat(whole));
  // The on-demand pass for text/argument deltas says exactly what the DOM path says.
  CHECK(flat(decode_stream(body, seed, false)) == flat(whole));

  // The client side re-encodes it; decoding that gives the same blocks back.
  canonical::Request client;
  client.model = "alias";
  auto enc = anthropic::stream_encoder(client);
  std::string sse;
  for (const canonical::Event& e : whole) enc->on_event(e, sse);
  enc->finish(sse);
  check_shape(decode_stream(sse, seed));
  return 0;
}
