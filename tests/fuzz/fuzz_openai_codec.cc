// libFuzzer target for the OpenAI Chat Completions codec: the input is fed to decode_request
// (and, when it decodes, back through encode_request / decode_request and the client-side
// encoders), to decode_response, decode_error and the stream decoder, whole and in random
// splits. Checks: no crash; the stream decoder's events do not depend on the split nor on
// whether common chunks take the on-demand pass or the DOM path; the event
// sequence keeps the canonical shape (message_start first, block indices 0,1,2,... never
// interleaved, an error event is the last, exactly one terminal event).
//
// Input: [split seed][body bytes].
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "canonical/codec.h"
#include "providers/openai/stream_decoder.h"

namespace {

namespace oc = sluice::canonical::openai;
using sluice::canonical::Event;
using sluice::canonical::EventKind;

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

std::string show(const Event& e) {
  std::string s = std::to_string(static_cast<int>(e.kind)) + "|" + std::to_string(e.index) + "|" +
                  std::to_string(static_cast<int>(e.block)) + "|" +
                  std::to_string(static_cast<int>(e.delta)) + "|" + e.text + "|" + e.tool_id +
                  "|" + e.tool_name + "|" + e.id + "|" + e.model + "|" +
                  std::to_string(static_cast<int>(e.stop_reason)) + "|" +
                  std::to_string(e.usage.input) + "|" + std::to_string(e.usage.output) + "|" +
                  std::to_string(e.usage.cache_read) + "|" + std::to_string(e.status);
  return s;
}

std::vector<std::string> run(std::string_view body, uint8_t seed, bool fast = true) {
  oc::ChunkDecoder dec(fast);
  std::vector<Event> events;
  if (seed == 0) {
    dec.feed(body, events);
  } else {
    uint32_t x = seed * 2654435761u + 1;
    size_t pos = 0;
    while (pos < body.size()) {
      x = x * 1103515245u + 12345u;
      const size_t n = (x >> 16) % (seed % 16 + 2);  // 0 = an empty feed; never only zeros
      // Each piece in its own exact-size buffer so ASan catches reads past a feed.
      const std::string piece(body.substr(pos, n));
      dec.feed(piece, events);
      pos += n;
    }
  }
  dec.finish(events);
  // Shape: message_start first (unless the stream failed at once), indices in order, one end.
  int open = -1, next = 0, ends = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    if (e.kind == EventKind::error) {
      CHECK(i + 1 == events.size());
      ++ends;
    } else if (i == 0) {
      CHECK(e.kind == EventKind::message_start);
    }
    if (e.kind == EventKind::block_start) {
      CHECK(open == -1 && e.index == next);
      open = e.index;
    } else if (e.kind == EventKind::block_delta) {
      CHECK(open == e.index);
    } else if (e.kind == EventKind::block_stop) {
      CHECK(open == e.index);
      open = -1;
      ++next;
    } else if (e.kind == EventKind::message_stop) {
      CHECK(open == -1 && i + 1 == events.size());
      ++ends;
    }
  }
  CHECK(ends == 1);
  std::vector<std::string> out;
  for (const Event& e : events) out.push_back(show(e));
  // The client-side encoder accepts whatever the decoder produced.
  sluice::canonical::Request req;
  req.stream = true;
  req.include_usage = true;
  auto enc = oc::stream_encoder(req);
  std::string sse;
  for (const Event& e : events) enc->on_event(e, sse);
  enc->finish(sse);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t seed = data[0];
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);

  sluice::Result<sluice::canonical::Request> req = oc::decode_request(body, {});
  if (req) {
    const std::string up = oc::encode_request(*req, req->model);
    // What we send upstream is always a request we would accept ourselves.
    sluice::Result<sluice::canonical::Request> again = oc::decode_request(up, {});
    CHECK(again.ok());
    CHECK(again->model == req->model);
    CHECK(again->tools.size() == req->tools.size());
  } else {
    CHECK(req.error().code == sluice::Errc::bad_request);
  }

  sluice::Result<sluice::canonical::Response> resp = oc::decode_response(body);
  if (resp) {
    CHECK(resp->usage.input >= 0 && resp->usage.output >= 0 && resp->usage.cache_read >= 0);
    sluice::canonical::Request none;
    const std::string client = oc::encode_response(*resp, none);
    CHECK(oc::decode_response(client).ok());
  } else {
    CHECK(resp.error().code == sluice::Errc::upstream_protocol);
  }

  const sluice::canonical::UpstreamError err = oc::decode_error(500, body);
  CHECK(!err.type.empty() && !err.message.empty());

  const std::vector<std::string> whole = run(body, 0);
  if (seed != 0) CHECK(run(body, seed) == whole);
  // The on-demand pass for common chunks says exactly what the DOM path says.
  CHECK(run(body, seed, false) == whole);
  return 0;
}
