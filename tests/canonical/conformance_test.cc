// The conformance matrix: every ingress protocol I (the client) x egress protocol P (the
// upstream) x scenario, through the real codecs and the golden fixtures of
// tests/testdata/conformance (generate.py).
//   Responses: decode P's answer (unary, or the stream fed in 7-byte pieces), encode it for I,
//   run I's stream validator, decode I's bytes back and compare with <S>.expect.json.
//   Requests:  decode I's request, encode it for P, decode that as P and compare with
//   requests/<S>.expect.json.
// What a protocol cannot carry is not expected to survive (thinking through OpenAI, the
// stop_sequence reason outside Anthropic, cache-creation tokens outside Anthropic: then only
// the prompt total is compared). At the end the matrix is printed as a Markdown table and
// written to $SLUICE_MATRIX_OUT (default <source>/build/conformance-matrix.md) when every cell ran.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "canonical/codec.h"
#include "canonical/json.h"
#include "canonical/stream_validator.h"

namespace sluice::canonical {
namespace {

constexpr Protocol kProtocols[] = {Protocol::openai, Protocol::anthropic, Protocol::gemini};
const std::vector<std::string> kResponseScenarios{
    "text",           "parallel_tools_streamed", "text_then_tool",
    "thinking_signature", "max_tokens_stop",     "stop_sequence",
    "content_filter", "error_mid_stream",        "usage_cache"};
const std::vector<std::string> kRequestScenarios{"system_prompt", "tool_result_turn",
                                                 "image_input", "multi_turn",
                                                 "tools_and_choice"};
constexpr size_t kPiece = 7;
constexpr const char* kUpstreamModel = "upstream-model";
constexpr const char* kClientModel = "client-model";

std::string name(Protocol p) {
  return p == Protocol::openai ? "openai" : p == Protocol::anthropic ? "anthropic" : "gemini";
}

std::string read_file(const std::string& rel) {
  std::ifstream in(std::string(SLUICE_TESTDATA) + "/conformance/" + rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `text` is JSON exactly as Boost.JSON serialises it: bodies written directly (JsonWriter) must
// not differ by a byte from the trees they replaced.
void expect_compact_json(const std::string& text) {
  boost::system::error_code ec;
  const json::value parsed = json::parse(text, ec);
  ASSERT_FALSE(ec) << "not JSON: " << text;
  EXPECT_EQ(json::serialize(parsed), text);
}

json::value read_json(const std::string& rel) {
  auto v = parse_json(read_file(rel));
  return v ? *v : json::value();
}

// ---- the matrix -------------------------------------------------------------------------------

struct Matrix {
  // row (scenario) -> column ("openai→anthropic") -> failed modes ("" when all passed)
  std::map<std::string, std::map<std::string, std::vector<std::string>>> cells;
  size_t recorded = 0;

  void record(const std::string& row, Protocol in, Protocol out, const std::string& mode,
              bool failed) {
    auto& cell = cells[row][name(in) + "→" + name(out)];
    if (failed) cell.push_back(mode);
    ++recorded;
  }
};
Matrix& matrix() {
  static Matrix m;
  return m;
}
// Cells that run: responses in both modes except the unary error_mid_stream, plus requests.
constexpr size_t kCells = 9 * (9 * 2 - 1) + 9 * 5;

std::string render_matrix() {
  std::vector<std::string> columns;
  for (Protocol in : kProtocols) {
    for (Protocol out : kProtocols) columns.push_back(name(in) + "→" + name(out));
  }
  std::string md = "| scenario |";
  for (const auto& c : columns) md += " " + c + " |";
  md += "\n|---|";
  for (size_t i = 0; i < columns.size(); ++i) md += "---|";
  md += "\n";
  auto row = [&](const std::string& label, const std::string& key) {
    md += "| " + label + " |";
    const auto& cells = matrix().cells[key];
    for (const auto& c : columns) {
      auto it = cells.find(c);
      if (it == cells.end()) {
        md += " — |";
      } else if (it->second.empty()) {
        md += " pass |";
      } else {
        std::string modes;
        for (const auto& m : it->second) modes += (modes.empty() ? "" : ", ") + m;
        md += " FAIL (" + modes + ") |";
      }
    }
    md += "\n";
  };
  for (const auto& s : kResponseScenarios) row(s, s);
  for (const auto& s : kRequestScenarios) row("request: " + s, "request:" + s);
  return md;
}

class MatrixPrinter : public ::testing::Environment {
 public:
  void TearDown() override {
    const Matrix& m = matrix();
    if (m.recorded == 0) return;
    if (m.recorded < kCells) {
      std::cout << "[conformance] " << m.recorded << " of " << kCells
                << " cells ran (filtered): matrix not written\n";
      return;
    }
    const std::string md = render_matrix();
    std::cout << "\n## Conformance matrix (ingress→egress)\n\n" << md << "\n";
    const char* env = std::getenv("SLUICE_MATRIX_OUT");
    const std::string path =
        env != nullptr && *env != '\0' ? env : std::string(SLUICE_TESTDATA) +
                                                   "/../../build/conformance-matrix.md";
    std::ofstream out(path);
    if (out) {
      out << "# Conformance matrix (ingress→egress)\n\n" << md;
      std::cout << "[conformance] matrix written to " << path << "\n";
    } else {
      std::cout << "[conformance] could not write " << path << "\n";
    }
  }
};
[[maybe_unused]] ::testing::Environment* const kPrinter =
    ::testing::AddGlobalTestEnvironment(new MatrixPrinter);

// ---- what a decoded answer says ----------------------------------------------------------------

struct Observed {
  std::string text;
  std::string thinking;
  std::vector<std::string> signatures;  // non-empty ones, in order
  std::vector<std::pair<std::string, std::string>> tools;  // name, arguments text
  StopReason stop = StopReason::unset;
  std::string stop_sequence;
  Usage usage;
  bool errored = false;
};

Observed observe(const Response& r) {
  Observed o;
  for (const Block& b : r.content) {
    if (b.kind == BlockKind::text) o.text += b.text;
    if (b.kind == BlockKind::thinking) {
      o.thinking += b.text;
      if (!b.signature.empty()) o.signatures.push_back(b.signature);
    }
    if (b.kind == BlockKind::tool_use) o.tools.emplace_back(b.tool_name, b.tool_input);
  }
  o.stop = r.stop_reason;
  o.stop_sequence = r.stop_sequence;
  o.usage = r.usage;
  return o;
}

Observed observe(const std::vector<Event>& events) {
  Observed o;
  std::map<int, BlockKind> kinds;
  std::map<int, size_t> tool_of;  // block index -> o.tools position
  for (const Event& e : events) {
    switch (e.kind) {
      case EventKind::block_start:
        kinds[e.index] = e.block;
        if (e.block == BlockKind::tool_use) {
          tool_of[e.index] = o.tools.size();
          o.tools.emplace_back(e.tool_name, "");
        }
        break;
      case EventKind::block_delta:
        if (e.delta == DeltaKind::text && kinds[e.index] == BlockKind::text) o.text += e.text;
        if (e.delta == DeltaKind::thinking) o.thinking += e.text;
        if (e.delta == DeltaKind::signature && !e.text.empty()) o.signatures.push_back(e.text);
        if (e.delta == DeltaKind::input_json && tool_of.count(e.index)) {
          o.tools[tool_of[e.index]].second += e.text;
        }
        break;
      case EventKind::message_delta:
        o.stop = e.stop_reason;
        o.stop_sequence = e.stop_sequence;
        o.usage = e.usage;
        break;
      case EventKind::error:
        o.errored = true;
        o.stop = StopReason::error;
        break;
      default:
        break;
    }
  }
  return o;
}

StopReason stop_from(std::string_view s) {
  for (const auto& row : {std::pair{"end_turn", StopReason::end_turn},
                          std::pair{"max_tokens", StopReason::max_tokens},
                          std::pair{"stop_sequence", StopReason::stop_sequence},
                          std::pair{"tool_use", StopReason::tool_use},
                          std::pair{"refusal", StopReason::refusal},
                          std::pair{"error", StopReason::error}}) {
    if (s == row.first) return row.second;
  }
  return StopReason::unset;
}

bool carries_thinking(Protocol p) { return p != Protocol::openai; }

// Compares what came back through I (after P) with the scenario's expectations.
void expect_matches(const Observed& o, const json::object& exp, Protocol in, Protocol out) {
  EXPECT_EQ(o.text, str(exp, "text"));

  const json::array* calls = arr(exp, "tool_calls");
  ASSERT_NE(calls, nullptr);
  EXPECT_EQ(o.tools.size(), calls->size());
  for (size_t i = 0; i < std::min(o.tools.size(), calls->size()); ++i) {
    const json::object& c = (*calls)[i].as_object();
    EXPECT_EQ(o.tools[i].first, str(c, "name")) << "tool " << i;
    auto args = parse_json(o.tools[i].second);
    ASSERT_TRUE(args.ok()) << "tool " << i << " arguments not JSON: " << o.tools[i].second;
    EXPECT_EQ(*args, *field(c, "arguments")) << "tool " << i << ": " << o.tools[i].second;
  }

  const json::object* thinking = obj(exp, "thinking");
  if (thinking != nullptr && carries_thinking(in) && carries_thinking(out)) {
    EXPECT_EQ(o.thinking, str(*thinking, "text"));
    EXPECT_EQ(o.signatures, std::vector<std::string>{std::string(str(*thinking, "signature"))});
  } else if (thinking == nullptr) {
    EXPECT_EQ(o.thinking, "");
  }

  // OpenAI and Gemini say "stop" / STOP for a stop sequence: it comes back as end_turn.
  StopReason want = stop_from(str(exp, "stop_reason"));
  const bool both_anthropic = in == Protocol::anthropic && out == Protocol::anthropic;
  if (want == StopReason::stop_sequence && !both_anthropic) want = StopReason::end_turn;
  EXPECT_EQ(static_cast<int>(o.stop), static_cast<int>(want))
      << "stop reason, expected " << str(exp, "stop_reason");
  if (want == StopReason::stop_sequence) {
    EXPECT_EQ(o.stop_sequence, str(exp, "stop_sequence"));
  }

  const json::object* u = obj(exp, "usage");
  if (u == nullptr) return;
  EXPECT_TRUE(o.usage.reported) << "usage not reported";
  EXPECT_EQ(o.usage.output, integer(*u, "output").value_or(-1)) << "output tokens";
  EXPECT_EQ(o.usage.cache_read, integer(*u, "cache_read").value_or(-1)) << "cache_read";
  const int64_t input = integer(*u, "input").value_or(-1);
  const int64_t creation = integer(*u, "cache_creation").value_or(-1);
  if (both_anthropic) {
    EXPECT_EQ(o.usage.input, input) << "input tokens";
    EXPECT_EQ(o.usage.cache_creation, creation) << "cache_creation";
  } else {
    // Cache creation is folded into the uncached input outside Anthropic; the prompt total holds.
    EXPECT_EQ(sat_add(o.usage.input, o.usage.cache_creation), sat_add(input, creation))
        << "input + cache_creation (input " << o.usage.input << ")";
  }
}

// ---- response cells ---------------------------------------------------------------------------

using ResponseParam = std::tuple<Protocol, Protocol, std::string, bool>;  // in, out, scenario, stream

class ConformanceResponse : public ::testing::TestWithParam<ResponseParam> {
 protected:
  void TearDown() override {
    if (IsSkipped()) return;
    const auto& [in, out, scenario, stream] = GetParam();
    matrix().record(scenario, in, out, stream ? "stream" : "unary", HasFailure());
  }
};

Request client_request(bool stream, const std::string& scenario) {
  Request req;
  req.model = kClientModel;
  req.stream = stream;
  req.include_usage = true;
  req.messages.push_back(Message{Role::user, {Block{}}});
  req.messages.back().content.back().text = "Hi";
  if (scenario == "stop_sequence") req.stop = {"5"};
  return req;
}

std::vector<Event> decode_stream(Protocol p, std::string_view body) {
  std::vector<Event> events;
  auto dec = stream_decoder(p);
  for (size_t i = 0; i < body.size(); i += kPiece) dec->feed(body.substr(i, kPiece), events);
  dec->finish(events);
  return events;
}

std::vector<std::string> validate(Protocol p, std::string_view body, std::string* details) {
  auto v = StreamValidator::make(p);
  for (size_t i = 0; i < body.size(); i += kPiece) v->feed(body.substr(i, kPiece));
  v->finish();
  for (const auto& d : v->details()) *details += "  " + d + "\n";
  return v->violations();
}

TEST_P(ConformanceResponse, RoundTrip) {
  const auto& [in, out, scenario, stream] = GetParam();
  const json::value expv = read_json(scenario + ".expect.json");
  ASSERT_TRUE(expv.is_object()) << "missing " << scenario << ".expect.json";
  const json::object& exp = expv.as_object();
  if (!stream && boolean(exp, "stream_only").value_or(false)) GTEST_SKIP() << "stream only";
  const Request req = client_request(stream, scenario);

  if (!stream) {
    const std::string upstream = read_file(name(out) + "/" + scenario + ".json");
    ASSERT_FALSE(upstream.empty());
    auto r = decode_response(out, upstream);
    ASSERT_TRUE(r.ok()) << "decode " << name(out) << ": " << r.error().message;
    const std::string client = encode_response(in, *r, req);
    expect_compact_json(client);
    auto back = decode_response(in, client);
    ASSERT_TRUE(back.ok()) << "decode " << name(in) << ": " << back.error().message << "\n"
                           << client;
    SCOPED_TRACE(client);
    expect_matches(observe(*back), exp, in, out);
    return;
  }

  const std::string upstream = read_file(name(out) + "/" + scenario + ".sse");
  ASSERT_FALSE(upstream.empty());
  const std::vector<Event> events = decode_stream(out, upstream);
  // An upstream error reaches the encoder as an error event (the gateway forwards events) and,
  // in a second pass, through fail() (the gateway's own failure path): both must be valid.
  const bool has_error = std::any_of(events.begin(), events.end(),
                                     [](const Event& e) { return e.kind == EventKind::error; });
  for (const bool via_fail : has_error ? std::vector<bool>{false, true} : std::vector<bool>{false}) {
    SCOPED_TRACE(via_fail ? "error via fail()" : "error via on_event");
    auto enc = stream_encoder(in, req);
    std::string client;
    bool ended = false;
    for (const Event& e : events) {
      if (e.kind == EventKind::error) {
        if (via_fail) enc->fail(e.status != 0 ? e.status : 502, e.text, client);
        else enc->on_event(e, client);
        ended = true;
        break;
      }
      enc->on_event(e, client);
    }
    if (!ended) enc->finish(client);
    SCOPED_TRACE(client);

    std::string details;
    EXPECT_EQ(validate(in, client, &details), std::vector<std::string>{}) << details;
    expect_matches(observe(decode_stream(in, client)), exp, in, out);
  }
}

std::string response_name(const ::testing::TestParamInfo<ResponseParam>& info) {
  const auto& [in, out, scenario, stream] = info.param;
  return name(in) + "_to_" + name(out) + "_" + scenario + (stream ? "_stream" : "_unary");
}

INSTANTIATE_TEST_SUITE_P(Conformance, ConformanceResponse,
                         ::testing::Combine(::testing::ValuesIn(kProtocols),
                                            ::testing::ValuesIn(kProtocols),
                                            ::testing::ValuesIn(kResponseScenarios),
                                            ::testing::Bool()),
                         response_name);

// ---- request cells ----------------------------------------------------------------------------

using RequestParam = std::tuple<Protocol, Protocol, std::string>;  // in, out, scenario

class ConformanceRequest : public ::testing::TestWithParam<RequestParam> {
 protected:
  void TearDown() override {
    const auto& [in, out, scenario] = GetParam();
    matrix().record("request:" + scenario, in, out, "request", HasFailure());
  }
};

std::string joined_text(const std::vector<Block>& blocks) {
  std::string s;
  for (const Block& b : blocks) {
    if (b.kind == BlockKind::text) s += (s.empty() ? "" : "\n") + b.text;
  }
  return s;
}

// JSON text compares as a value (whitespace and key order aside); other text as is.
json::value as_value(std::string_view text) {
  auto v = parse_json(text);
  return v ? *v : json::value(json::string(text));
}

void expect_block(const Block& b, const json::object& want, const std::string& where) {
  const std::string_view type = str(want, "type");
  if (type == "text") {
    EXPECT_EQ(static_cast<int>(b.kind), static_cast<int>(BlockKind::text)) << where;
    EXPECT_EQ(b.text, str(want, "text")) << where;
  } else if (type == "image") {
    EXPECT_EQ(static_cast<int>(b.kind), static_cast<int>(BlockKind::image)) << where;
    EXPECT_EQ(b.image_media_type, str(want, "media_type")) << where;
    EXPECT_EQ(b.image_data, str(want, "data")) << where;
  } else if (type == "tool_use") {
    EXPECT_EQ(static_cast<int>(b.kind), static_cast<int>(BlockKind::tool_use)) << where;
    EXPECT_EQ(b.tool_name, str(want, "name")) << where;
    EXPECT_EQ(as_value(b.tool_input), *field(want, "input")) << where << ": " << b.tool_input;
  } else if (type == "tool_result") {
    EXPECT_EQ(static_cast<int>(b.kind), static_cast<int>(BlockKind::tool_result)) << where;
    const std::string content = joined_text(b.content);
    EXPECT_EQ(as_value(content), *field(want, "content")) << where << ": " << content;
    EXPECT_EQ(b.is_error, boolean(want, "is_error").value_or(false)) << where;
  } else {
    ADD_FAILURE() << "unknown block type in expectation: " << type;
  }
}

void expect_request(const Request& r, const json::object& exp) {
  EXPECT_EQ(joined_text(r.system), str(exp, "system"));

  const json::array& messages = *arr(exp, "messages");
  ASSERT_EQ(r.messages.size(), messages.size());
  std::vector<std::string> tool_ids;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json::object& m = messages[i].as_object();
    const Message& got = r.messages[i];
    EXPECT_EQ(got.role == Role::user ? "user" : "assistant", str(m, "role")) << "message " << i;
    const json::array& blocks = *arr(m, "blocks");
    ASSERT_EQ(got.content.size(), blocks.size()) << "message " << i;
    for (size_t j = 0; j < blocks.size(); ++j) {
      const Block& b = got.content[j];
      expect_block(b, blocks[j].as_object(),
                   "message " + std::to_string(i) + " block " + std::to_string(j));
      // Each result answers a call made before it, by id (OpenAI needs the pairing).
      if (b.kind == BlockKind::tool_use) {
        EXPECT_FALSE(b.tool_id.empty()) << "tool_use without id";
        tool_ids.push_back(b.tool_id);
      }
      if (b.kind == BlockKind::tool_result) {
        EXPECT_NE(std::find(tool_ids.begin(), tool_ids.end(), b.tool_id), tool_ids.end())
            << "tool_result for unknown id '" << b.tool_id << "'";
      }
    }
  }

  const json::array& tools = *arr(exp, "tools");
  ASSERT_EQ(r.tools.size(), tools.size());
  for (size_t i = 0; i < tools.size(); ++i) {
    EXPECT_EQ(r.tools[i].name, tools[i].as_string()) << "tool " << i;
    EXPECT_TRUE(parse_json(r.tools[i].parameters).ok()) << r.tools[i].parameters;
  }

  const json::object* choice = obj(exp, "tool_choice");
  if (choice == nullptr) {
    EXPECT_EQ(static_cast<int>(r.tool_choice.kind), static_cast<int>(ToolChoiceKind::unset));
  } else {
    const std::string_view kind = str(*choice, "kind");
    const ToolChoiceKind want = kind == "auto"       ? ToolChoiceKind::auto_
                                : kind == "none"     ? ToolChoiceKind::none
                                : kind == "required" ? ToolChoiceKind::required
                                                     : ToolChoiceKind::named;
    EXPECT_EQ(static_cast<int>(r.tool_choice.kind), static_cast<int>(want)) << "tool_choice";
    if (want == ToolChoiceKind::named) {
      EXPECT_EQ(r.tool_choice.name, str(*choice, "name"));
    }
  }

  if (const json::object* params = obj(exp, "params")) {
    EXPECT_EQ(r.max_tokens, integer(*params, "max_tokens"));
    EXPECT_EQ(r.temperature, number(*params, "temperature"));
    std::vector<std::string> stop;
    for (const auto& s : *arr(*params, "stop")) stop.emplace_back(s.as_string());
    EXPECT_EQ(r.stop, stop);
  }
}

TEST_P(ConformanceRequest, RoundTrip) {
  const auto& [in, out, scenario] = GetParam();
  const json::value expv = read_json("requests/" + scenario + ".expect.json");
  ASSERT_TRUE(expv.is_object()) << "missing requests/" << scenario << ".expect.json";
  const std::string body = read_file("requests/" + name(in) + "/" + scenario + ".json");
  ASSERT_FALSE(body.empty());

  FrontendContext client_ctx;
  client_ctx.model = kClientModel;  // Gemini takes the model from the URL
  auto req = decode_request(in, body, client_ctx);
  ASSERT_TRUE(req.ok()) << "decode " << name(in) << ": " << req.error().message;
  {
    SCOPED_TRACE("as decoded from " + name(in));
    expect_request(*req, expv.as_object());
  }

  const std::string upstream = encode_request(out, *req, kUpstreamModel);
  SCOPED_TRACE(upstream);
  expect_compact_json(upstream);
  FrontendContext upstream_ctx;
  upstream_ctx.model = kUpstreamModel;
  upstream_ctx.stream = req->stream;
  auto again = decode_request(out, upstream, upstream_ctx);
  ASSERT_TRUE(again.ok()) << "decode " << name(out) << ": " << again.error().message;
  SCOPED_TRACE("after " + name(in) + " -> " + name(out));
  expect_request(*again, expv.as_object());
}

std::string request_name(const ::testing::TestParamInfo<RequestParam>& info) {
  const auto& [in, out, scenario] = info.param;
  return name(in) + "_to_" + name(out) + "_" + scenario;
}

INSTANTIATE_TEST_SUITE_P(Conformance, ConformanceRequest,
                         ::testing::Combine(::testing::ValuesIn(kProtocols),
                                            ::testing::ValuesIn(kProtocols),
                                            ::testing::ValuesIn(kRequestScenarios)),
                         request_name);

}  // namespace
}  // namespace sluice::canonical
