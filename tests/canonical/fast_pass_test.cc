// The stream decoders' on-demand passes for their common events (OpenAI text chunks, Anthropic
// content_block_delta, Gemini text chunks) against their DOM paths: every recorded stream, and events that
// sit on the edge of what a pass takes, decode to exactly the same events either way — and the
// pass does take the common ones.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "openai_codec_test_util.h"

namespace sluice::canonical {
namespace {

using namespace openai_test;

struct Decoded {
  std::vector<std::string> events;
  size_t fast = 0;
  size_t skeleton = 0;  // of `fast`: read unparsed, as the last event with another text
};

std::unique_ptr<StreamDecoder> make_decoder(Protocol p, bool fast) {
  switch (p) {
    case Protocol::anthropic:
      return fast ? anthropic::stream_decoder() : anthropic::stream_decoder_without_fast_pass();
    case Protocol::gemini:
      return fast ? gemini::stream_decoder() : gemini::stream_decoder_without_fast_pass();
    case Protocol::openai: break;
  }
  return std::make_unique<openai::ChunkDecoder>(fast);
}

// `body` fed whole (piece 0) or in pieces of `piece` bytes.
Decoded decode(Protocol p, std::string_view body, bool fast, size_t piece = 0) {
  auto dec = make_decoder(p, fast);
  std::vector<Event> events;
  feed_in_pieces(*dec, body, piece, events);
  Decoded d;
  for (const Event& e : events) d.events.push_back(show(e));
  d.fast = dec->fast_events();
  d.skeleton = dec->skeleton_events();
  return d;
}

std::string read(const std::filesystem::path& f) {
  std::ifstream in(f, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every recorded stream of `p` (tests/testdata/conformance/<p>/ and tests/testdata/<p>/), whole
// and split: the same events with and without the pass, and the pass taken somewhere.
void expect_recorded_streams_agree(Protocol p) {
  const std::filesystem::path root(SLUICE_TESTDATA);
  const std::string name(protocol_name(p));
  size_t streams = 0, fast = 0;
  for (const auto& dir : {root / "conformance" / name, root / name}) {
    if (!std::filesystem::exists(dir)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() != ".sse") continue;
      const std::string body = read(entry.path());
      SCOPED_TRACE(entry.path().string());
      const Decoded dom = decode(p, body, false);
      EXPECT_EQ(dom.fast, 0u);
      for (size_t piece : {0, 1, 7}) {
        const Decoded on_demand = decode(p, body, true, piece);
        EXPECT_EQ(on_demand.events, dom.events);
        fast += on_demand.fast;
      }
      ++streams;
    }
  }
  EXPECT_GE(streams, 9u);
  EXPECT_GT(fast, 0u);  // the pass is taken, not silently bypassed
}

// One stream with an edge event in it: the same events both ways, and the pass took
// `fast_events` of its events.
void expect_edge_case(Protocol p, const std::string& body, size_t fast_events) {
  const Decoded dom = decode(p, body, false);
  const Decoded on_demand = decode(p, body, true);
  EXPECT_EQ(on_demand.events, dom.events);
  EXPECT_EQ(on_demand.fast, fast_events);
}

TEST(OpenaiFastChunk, RecordedStreamsDecodeTheSameBothWays) {
  expect_recorded_streams_agree(Protocol::openai);
}

std::string data(std::string_view json) { return "data: " + std::string(json) + "\n\n"; }

// Each case: one chunk after a common first one, then a finish and [DONE]; whether the pass
// should take it.
TEST(OpenaiFastChunk, EdgeChunksDecodeTheSameAndOnlyCommonOnesTakeThePass) {
  const std::string first =
      data(R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})");
  const std::string last =
      data(R"({"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})") +
      "data: [DONE]\n\n";
  struct Case {
    const char* chunk;
    bool fast;
    bool fails = false;  // the chunk ends the stream with an error: the last one is not read
  };
  const Case cases[] = {
      {R"({"id":"c1","choices":[{"index":0,"delta":{"content":"plain"},"finish_reason":null}]})", true},
      {R"({"id":"c1","choices":[{"index":0,"delta":{"content":"esc \"q\" \\ \n \u00e9 \ud83d\ude00"}}]})", true},
      {R"({"choices":[{"index":0,"delta":{"content":null,"tool_calls":null,"refusal":null}}],"usage":null})", true},
      {R"({"choices":[{"index":0,"delta":{"content":"x"},"logprobs":null}],"system_fingerprint":"fp","service_tier":"default"})", true},
      {R"({"choices":[]})", true},
      {R"({"choices":[{"index":1,"delta":{"content":"other choice"}}]})", false},
      {R"({"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]})", false},
      {R"({"choices":[{"index":0,"delta":{"content":"x"}}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}})", true},
      // The usage chunk of include_usage streams, and usage objects of every shape.
      {R"({"id":"c1","choices":[],"usage":{"prompt_tokens":28,"completion_tokens":5,"total_tokens":33}})", true},
      {R"({"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":6,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":2,"accepted_prediction_tokens":0}}})", true},
      {R"({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":7}}})", true},
      {R"({"choices":[],"usage":{"prompt_tokens":-3,"completion_tokens":-1,"prompt_tokens_details":null,"completion_tokens_details":null}})", true},
      {R"({"choices":[],"usage":{}})", true},
      {R"({"choices":[],"usage":{"prompt_tokens":3.0,"completion_tokens":1}})", false},
      {R"({"choices":[],"usage":{"prompt_tokens":"3","completion_tokens":1}})", false},
      {R"({"choices":[],"usage":{"prompt_tokens":null,"completion_tokens":1}})", false},
      {R"({"choices":[],"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":1}})", false},
      {R"({"choices":[],"usage":{"prompt_tokens":3,"prompt_tokens":4}})", false},
      {R"({"choices":[],"usage":{"prompt_tokens":3},"usage":{"prompt_tokens":4}})", false},
      {R"({"choices":[],"usage":{"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":1,"cached_tokens":2}}})", false},
      {R"({"choices":[],"usage":{"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":1,"by_modality":{"text":1}}}})", false},
      {R"({"choices":[],"usage":{"prompt_tokens":3,"prompt_tokens_details":[1]}})", false},
      {R"({"choices":[],"usage":{"prompt_tokens":3,"extra":{"a":1}}})", false},
      {R"({"choices":[],"usage":[3]})", false},
      {R"({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1x}})", false, true},
      {R"({"choices":[{"index":0,"delta":{"reasoning_content":"think"}}]})", false},
      {R"({"choices":[{"index":0,"delta":{"refusal":"no"}}]})", false},
      {R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t","function":{"name":"f","arguments":"{}"}}]}}]})", false},
      {R"({"choices":[{"index":0,"delta":{"content":"a","content":"b"}}]})", false},
      {R"({"choices":[{"index":0,"delta":{"content":5}}]})", false},
      {R"({"choices":[{"index":0.0,"delta":{"content":"float index"}}]})", false},
      {R"({"choices":[{"index":0,"delta":{"content":"x"},"logprobs":{"content":[]}}]})", false},
      {R"({"error":{"message":"boom","code":500}})", false, true},
      {R"({"choices":[{"index":0,"delta":{"content":"x"}}]} trailing)", false, true},
      {R"({"choices":[{"index":0,"delta":{"content":"x"}}],"created":12x})", false, true},
      {R"({"choices":{"index":0}})", false},
      // Escaped keys: the pass reads them unescaped, as the DOM way does.
      {R"({"choices":[{"index":0,"delta":{"content":"x"},"fin\u0069sh_reason":"length"}]})", true},
      {R"({"choices":[{"index":0,"delta":{"cont\u0065nt":"x"}}]})", true},
      {R"({"choices":[],"us\u0061ge":{"prompt_tokens":3,"completion_tokens":1}})", true},
      {R"([1,2])", false, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.chunk);
    const std::string body = first + data(c.chunk) + last;
    // The first and the last chunk are common ones; the case's own chunk is or is not.
    expect_edge_case(Protocol::openai, body, (c.fast ? 1u : 0u) + (c.fails ? 1u : 2u));
    if (c.fails) {
      EXPECT_EQ(decode(Protocol::openai, body, false).events.back().substr(0, 5), "error");
    }
  }
}

TEST(OpenaiFastChunk, TheFirstChunkCarriesIdAndModelEitherWay) {
  const std::string body =
      data(R"({"id":"chatcmpl-1","model":"gpt-x","choices":[{"index":0,"delta":{"content":"hi"}}]})") +
      data(R"({"id":"chatcmpl-1","model":"gpt-x","choices":[{"index":0,"delta":{},"finish_reason":"length"}]})") +
      "data: [DONE]\n\n";
  const Decoded d = decode(Protocol::openai, body, true);
  EXPECT_EQ(d.fast, 2u);
  EXPECT_EQ(d.events, (std::vector<std::string>{"start chatcmpl-1 gpt-x", "block_start 0 text",
                                                "delta 0 text hi", "block_stop 0",
                                                "message_delta 2 in=0 cr=0 out=0 rs=0", "stop"}));
}

// ---- Anthropic ------------------------------------------------------------------------------

TEST(AnthropicFastDelta, RecordedStreamsDecodeTheSameBothWays) {
  expect_recorded_streams_agree(Protocol::anthropic);
}

std::string sse(std::string_view event, std::string_view json) {
  return "event: " + std::string(event) + "\ndata: " + std::string(json) + "\n\n";
}

TEST(AnthropicFastDelta, EdgeDeltasDecodeTheSameAndOnlyCommonOnesTakeThePass) {
  const std::string head =
      sse("message_start", R"({"type":"message_start","message":{"id":"msg_1","model":"c","usage":{"input_tokens":5,"output_tokens":1}}})") +
      sse("content_block_start", R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})");
  const std::string tail =
      sse("content_block_stop", R"({"type":"content_block_stop","index":0})") +
      sse("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":3}})") +
      sse("message_stop", R"({"type":"message_stop"})");
  struct Case {
    const char* data;
    bool fast;
    bool ends = false;  // the event ends the stream (message_stop, an error): no tail read
  };
  const Case cases[] = {
      {R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}})", true},
      {R"({"index":0,"delta":{"text":"esc \"q\" \u00e9 \ud83d\ude00","type":"text_delta"},"type":"content_block_delta"})", true},
      {R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"other block"}})", true},
      {R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta"}})", true},
      {R"({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}})", true},
      {R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","partial_json":"wrong key"}})", true},
      {R"({"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{}}})", false},
      {R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":5}})", false},
      {R"({"type":"content_block_delta","index":0.0,"delta":{"type":"text_delta","text":"float"}})", false},
      {R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a","text":"b"}})", false},
      {R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"},"extra":{"n":1}})", false},
      {R"({"type":"ping"})", true},  // (recognised by its bytes)
      {R"({"type":"ping", "x":1})", false},
      {R"({"type":"content_block_stop","index":0})", true},
      {R"({"type":"content_block_stop","index":1})", true},
      {R"({"type":"content_block_stop","index":00})", false, true},
      {R"({"type":"content_block_stop","index":-1})", false},
      {R"({"type":"content_block_stop","index":1234567890})", false},
      {R"({"type":"content_block_stop","index":0 })", false},
      {R"({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})", true},
      {R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":"x"}})", false},
      {R"({"type":"content_block_start","index":1,"content_block":{"type":"thinking","thinking":""}})", false},
      {R"({"type":"content_block_start","index":01,"content_block":{"type":"text","text":""}})", false, true},
      {R"({"type":"message_stop"})", true, true},
      {R"({"type": "message_stop"})", false, true},
      // Escaped keys: the pass reads them unescaped, as the DOM way does.
      {R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","te\u0078t":"x"}})", true},
      {R"({"index":0,"delta":{"type":"text_delta","text":"no type"}})", false},
      {R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}} trailing)", false, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.data);
    // The head's content_block_start and the tail's content_block_stop and message_stop are
    // recognised by their bytes (unless the case's event ended the stream: then the tail is
    // not read).
    expect_edge_case(Protocol::anthropic, head + sse("content_block_delta", c.data) + tail,
                     1u + (c.fast ? 1u : 0u) + (c.ends ? 0u : 2u));
  }
}

// ---- Gemini ---------------------------------------------------------------------------------

TEST(GeminiFastChunk, RecordedStreamsDecodeTheSameBothWays) {
  expect_recorded_streams_agree(Protocol::gemini);
}

TEST(GeminiFastChunk, EdgeChunksDecodeTheSameAndOnlyCommonOnesTakeThePass) {
  const std::string first = data(R"({"candidates":[{"content":{"parts":[{"text":"a"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":7,"totalTokenCount":7,"promptTokensDetails":[{"modality":"TEXT","tokenCount":7}]},"modelVersion":"g","responseId":"r1"})");
  const std::string last = data(R"({"candidates":[{"content":{"parts":[{"text":"z"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":3,"totalTokenCount":10}})");
  struct Case {
    const char* chunk;
    bool fast;
    bool fails = false;
  };
  const Case cases[] = {
      {R"({"candidates":[{"content":{"parts":[{"text":"plain"}],"role":"model"}}]})", true},
      {R"({"candidates":[{"content":{"parts":[{"text":"one "},{"text":""},{"text":"two"}]}}]})", true},
      {R"({"candidates":[{"content":{"parts":[{"text":"\u00e9 \"q\""}]},"safetyRatings":[{"category":"X","probability":"LOW"}]}],"usageMetadata":{"promptTokenCount":7,"cachedContentTokenCount":2,"thoughtsTokenCount":1,"candidatesTokenCount":-4}})", true},
      {R"({"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":null}],"modelVersion":5})", true},
      {R"({"candidates":[{"content":{"parts":[{"text":"t","thought":true}]}}]})", false},
      {R"({"candidates":[{"content":{"parts":[{"text":"s","thoughtSignature":"sig"}]}}]})", false},
      {R"({"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{}}}]}}]})", false},
      {R"({"candidates":[{"content":{"parts":[{"text":5}]}}]})", false},
      {R"({"candidates":[{"content":{"parts":[{}]}}]})", false},
      {R"({"candidates":[{"content":{"parts":[{"text":"a"}]}},{"content":{"parts":[{"text":"b"}]}}]})", false},
      {R"({"candidates":[]})", false},
      {R"({"promptFeedback":{"blockReason":"SAFETY"}})", false},
      {R"({"candidates":[{"content":{"parts":[{"text":"x"}]}}],"usageMetadata":{"promptTokenCount":7.0}})", false},
      {R"({"candidates":[{"content":{"parts":[{"text":"x"}]}}],"usageMetadata":{"promptTokenCount":"7"}})", false},
      {R"({"candidates":[{"content":{"parts":[{"text":"x"}]}}],"extra":[1,{"a":tru}]})", false, true},
      // Escaped keys: the pass reads them unescaped, as the DOM way does.
      {R"({"candidates":[{"content":{"parts":[{"text":"x"}]},"finish\u0052eason":"MAX_TOKENS"}]})", true},
      {R"({"candidates":[{"content":{"parts":[{"te\u0078t":"x"}]}}]})", true},
      {R"({"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}})", false, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.chunk);
    expect_edge_case(Protocol::gemini, first + data(c.chunk) + last,
                     (c.fast ? 1u : 0u) + (c.fails ? 1u : 2u));
  }
}

// ---- Skeleton: an event that repeats the last one's shape, read without parsing ------------

// After a common event with text, each variant of it: the same events both ways, and the
// skeleton takes exactly the variants that differ only in a plain string (no escape, no
// control byte, valid UTF-8) and leaves the others to the pass or the DOM path.
struct Variant {
  std::string text;  // raw bytes put between the quotes of the remembered string
  bool skeleton;
};

const Variant kVariants[] = {
    {"plain text", true},
    {"", true},
    {"caf\xc3\xa9 \xf0\x9f\x98\x80 and DEL \x7f", true},  // valid UTF-8: taken as is
    {"esc \\\"q\\\"", false},  // an escape: its raw bytes are not its text
    {"tab\there", false},           // a raw control byte: not JSON (the DOM path says so)
    {"bad \xc3\x28 utf8", false},   // invalid UTF-8 (the DOM path refuses it)
    {"\xe2\x82", false},            // truncated UTF-8 sequence
    {"quote\" inside", false},     // an unescaped quote: not the same structure
};

// (Not data(): with a std::string argument, argument-dependent lookup picks std::data.)
std::string data_line(const std::string& json) { return "data: " + json + "\n\n"; }

void expect_skeleton_variants(Protocol p, const std::string& head, const std::string& tail,
                              const std::function<std::string(const std::string&)>& event) {
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(v.text);
    // Twice the remembered shape, then the variant: the second event is a skeleton hit.
    const std::string body = head + event("one") + event("two") + event(v.text) + tail;
    const Decoded dom = decode(p, body, false);
    for (size_t piece : {0, 3}) {
      const Decoded fast = decode(p, body, true, piece);
      EXPECT_EQ(fast.events, dom.events);
      EXPECT_EQ(fast.skeleton, v.skeleton ? 2u : 1u);
    }
  }
}

TEST(Skeleton, OpenaiChunksThatRepeatTheShapeAreReadUnparsed) {
  const std::string head = data(R"({"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})");
  const std::string tail = data(R"({"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})") +
                           "data: [DONE]\n\n";
  expect_skeleton_variants(Protocol::openai, head, tail, [](const std::string& text) {
    return data_line(R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":")" +
                text + R"("},"logprobs":null,"finish_reason":null}]})");
  });
}

TEST(Skeleton, AnthropicDeltasThatRepeatTheShapeAreReadUnparsed) {
  const std::string head =
      sse("message_start", R"({"type":"message_start","message":{"id":"msg_1","model":"c","usage":{"input_tokens":5,"output_tokens":1}}})") +
      sse("content_block_start", R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})");
  const std::string tail =
      sse("content_block_stop", R"({"type":"content_block_stop","index":0})") +
      sse("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}})") +
      sse("message_stop", R"({"type":"message_stop"})");
  expect_skeleton_variants(Protocol::anthropic, head, tail, [](const std::string& text) {
    return sse("content_block_delta",
               R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":")" +
                   text + R"("}})");
  });
}

TEST(Skeleton, GeminiChunksThatRepeatTheShapeAreReadUnparsed) {
  const std::string tail = data(R"({"candidates":[{"content":{"parts":[{"text":"z"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":3,"totalTokenCount":10}})");
  expect_skeleton_variants(Protocol::gemini, "", tail, [](const std::string& text) {
    return data_line(R"({"candidates":[{"content":{"parts":[{"text":")" + text +
                R"("}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":7,"totalTokenCount":7},"modelVersion":"g","responseId":"r1"})");
  });
}

// What the skeleton must not take: the remembered event with any other byte changed, or an
// event after one the pass did not remember (a finish, a second part, an escaped text).
TEST(Skeleton, AnyOtherChangeOrAnUnrememberedShapeGoesThePassOrTheDomWay) {
  const std::string start = data(R"({"id":"c1","choices":[{"index":0,"delta":{"content":"a"}}]})");
  const std::string tail = "data: [DONE]\n\n";
  const char* next[] = {
      R"({"id":"c2","choices":[{"index":0,"delta":{"content":"b"}}]})",               // other id
      R"({"id":"c1","choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}]})",
      R"({"id":"c1","choices":[{"index":0,"delta":{"content":"b"}}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})",
      R"({"id":"c1","choices":[{"index":0,"delta":{"content":"b"}}]}x)",              // trailing
  };
  for (const char* n : next) {
    SCOPED_TRACE(n);
    const std::string body = start + data(n) + tail;
    const Decoded dom = decode(Protocol::openai, body, false);
    const Decoded fast = decode(Protocol::openai, body, true);
    EXPECT_EQ(fast.events, dom.events);
    EXPECT_EQ(fast.skeleton, 0u);
  }
  // After an escaped text nothing is remembered: its raw bytes are not its text.
  const std::string escaped = data(R"({"id":"c1","choices":[{"index":0,"delta":{"content":"\"q\""}}]})");
  const std::string body = escaped + data(R"({"id":"c1","choices":[{"index":0,"delta":{"content":"b"}}]})") + tail;
  const Decoded fast = decode(Protocol::openai, body, true);
  EXPECT_EQ(fast.events, decode(Protocol::openai, body, false).events);
  EXPECT_EQ(fast.skeleton, 0u);
}

}  // namespace
}  // namespace sluice::canonical
