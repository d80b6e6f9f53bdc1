// libFuzzer target for the Gemini codec: the input is fed to decode_request, decode_response,
// decode_error and the stream decoder (whole and in splits picked by the first byte). Checks:
// no crash; errors are of the right kind; a decoded request / answer re-encodes into one that
// decodes again; the stream's events do not depend on the split and keep the canonical shape
// (block indices 0,1,2,... never interleaved, an error is the last event).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "canonical/codec.h"

namespace {

namespace c = sluice::canonical;

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

std::vector<c::Event> run(std::string_view body, uint8_t seed, bool fast = true) {
  auto d = fast ? c::gemini::stream_decoder() : c::gemini::stream_decoder_without_fast_pass();
  std::vector<c::Event> out;
  if (seed == 0) {
    d->feed(body, out);
  } else {
    uint32_t x = seed * 2654435761u + 1;
    size_t pos = 0;
    while (pos < body.size()) {
      x = x * 1103515245u + 12345u;
      size_t n = (x >> 16) % (seed % 16 + 2);  // 0 = an empty feed; never only zeros
      if (n > body.size() - pos) n = body.size() - pos;
      const std::string piece(body.substr(pos, n));  // exact-size buffer for ASan
      d->feed(piece, out);
      pos += n;
    }
  }
  d->finish(out);
  return out;
}

bool same(const c::Event& a, const c::Event& b) {
  return a.kind == b.kind && a.index == b.index && a.block == b.block && a.delta == b.delta &&
         a.text == b.text && a.tool_id == b.tool_id && a.tool_name == b.tool_name &&
         a.id == b.id && a.model == b.model && a.stop_reason == b.stop_reason &&
         a.status == b.status && a.error_type == b.error_type &&
         a.usage.input == b.usage.input && a.usage.output == b.usage.output &&
         a.usage.cache_read == b.usage.cache_read && a.usage.reasoning == b.usage.reasoning &&
         a.usage.reported == b.usage.reported && a.stop_sequence == b.stop_sequence;
}

void check_shape(const std::vector<c::Event>& events) {
  CHECK(!events.empty());  // finish() always ends with message_stop or an error
  int next_index = 0;
  bool open = false;
  for (size_t i = 0; i < events.size(); ++i) {
    const c::Event& e = events[i];
    CHECK(e.usage.input >= 0 && e.usage.output >= 0 && e.usage.cache_read >= 0);
    switch (e.kind) {
      case c::EventKind::block_start:
        CHECK(!open && e.index == next_index);
        open = true;
        break;
      case c::EventKind::block_delta:
        CHECK(open && e.index == next_index);
        break;
      case c::EventKind::block_stop:
        CHECK(open && e.index == next_index);
        open = false;
        ++next_index;
        break;
      case c::EventKind::message_delta:
        CHECK(!open);
        break;
      case c::EventKind::error:
        CHECK(i + 1 == events.size());
        CHECK(e.status >= 400 && e.status <= 599);
        break;
      default:
        break;
    }
  }
  const c::EventKind last = events.back().kind;
  CHECK(last == c::EventKind::message_stop || last == c::EventKind::error);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t seed = data[0];
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);

  auto req = c::gemini::decode_request(body, {"models/m", (seed & 1) != 0});
  if (req.ok()) {
    CHECK(req->model == "m");
    CHECK(!req->messages.empty());
    const std::string up = c::gemini::encode_request(*req, "m");
    // Decodes again, unless nothing was left to send (e.g. only unsigned thoughts).
    auto again = c::gemini::decode_request(up, {"m", false});
    CHECK(again.ok() || again.error().param == "contents");
  } else {
    CHECK(req.error().code == sluice::Errc::bad_request);
    CHECK(!req.error().message.empty());
  }

  auto resp = c::gemini::decode_response(body);
  if (resp.ok()) {
    const std::string again = c::gemini::encode_response(*resp, c::Request{});
    CHECK(c::gemini::decode_response(again).ok());
  } else {
    CHECK(resp.error().code == sluice::Errc::upstream_protocol);
  }

  const c::UpstreamError err = c::gemini::decode_error(400 + seed % 200, body);
  CHECK(!err.type.empty() && !err.message.empty());

  const std::vector<c::Event> whole = run(body, 0);
  const std::vector<c::Event> split = run(body, seed);
  CHECK(whole.size() == split.size());
  for (size_t i = 0; i < whole.size(); ++i) CHECK(same(whole[i], split[i]));
  check_shape(whole);
  // The on-demand pass for plain text chunks says exactly what the DOM path says.
  const std::vector<c::Event> dom = run(body, seed, false);
  CHECK(dom.size() == whole.size());
  for (size_t i = 0; i < whole.size(); ++i) CHECK(same(whole[i], dom[i]));

  // The events re-encode as Gemini SSE without trouble.
  c::Request r;
  r.model = "m";
  auto enc = c::gemini::stream_encoder(r);
  std::string sse;
  for (const c::Event& e : whole) enc->on_event(e, sse);
  enc->finish(sse);
  return 0;
}
