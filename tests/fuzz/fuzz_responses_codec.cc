// libFuzzer target for the Responses API codec (frontends/responses): any input is fed to
// decode_request; a request that decodes has its input items appended to the canonical
// request, rendered as a Response object, re-normalized (stored items must decode again), and
// a canonical stream of its own messages' text is run through the stream encoder. Checks: no
// crash; normalized items normalize to the same shape; every encoded event is
// "event: <type>\ndata: <JSON object with that type and the next sequence_number>".
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "canonical/events.h"
#include "frontends/responses/responses.h"

namespace {

namespace rs = sluice::canonical::responses;
namespace json = sluice::canonical::json;
using namespace sluice::canonical;

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

void check_events(const std::string& out) {
  size_t pos = 0;
  int64_t seq = 0;
  while (pos < out.size()) {
    size_t end = out.find("\n\n", pos);
    CHECK(end != std::string::npos);
    std::string_view ev(out.data() + pos, end - pos);
    pos = end + 2;
    CHECK(ev.starts_with("event: "));
    size_t nl = ev.find('\n');
    CHECK(nl != std::string_view::npos);
    std::string_view type = ev.substr(7, nl - 7);
    std::string_view data = ev.substr(nl + 1);
    CHECK(data.starts_with("data: "));
    auto v = parse_json(data.substr(6));
    CHECK(v && v->is_object());
    CHECK(str(v->as_object(), "type") == type);
    CHECK(integer(v->as_object(), "sequence_number") == seq);
    ++seq;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto d = rs::decode_request(body);
  if (!d) return 0;
  rs::append_items(d->input, d->request);
  // Stored items decode again to the same number of items.
  auto again = rs::normalize_items(d->input, "input");
  CHECK(again && again->size() == d->input.size());

  Response r;
  for (const Message& m : d->request.messages) {
    for (const Block& b : m.content) {
      if (b.kind == BlockKind::text || b.kind == BlockKind::tool_use) r.content.push_back(b);
    }
  }
  r.stop_reason = r.content.size() % 2 == 0 ? StopReason::end_turn : StopReason::max_tokens;
  rs::Meta meta;
  meta.id = "resp_fuzz";
  meta.model = d->request.model;
  meta.echo = &d->echo;
  json::object obj = rs::response_object(meta, "completed", "", rs::output_items(r), &r.usage);
  CHECK(parse_json(to_text(obj)));

  rs::StreamEncoder enc(meta);
  std::string out;
  enc.created(out);
  for (const Event& e : events_of(r)) {
    if (e.kind == EventKind::message_stop) break;
    enc.on_event(e, out);
  }
  if (size % 3 == 0) {
    enc.failed("fuzz failure", out);
  } else {
    enc.completed(enc.final_object(), out);
  }
  check_events(out);
  return 0;
}
