#!/usr/bin/env python3
"""Writes the golden conformance fixtures (independent of the C++ codecs).

Response scenarios are described once, protocol-neutrally (SCENARIOS), then rendered as each
upstream would send them:
  <p>/<s>.json   unary body        (not for stream-only scenarios)
  <p>/<s>.sse    stream body
  <s>.expect.json                  what a decoder must recover
Request scenarios are written per ingress protocol by hand (REQUESTS), with
requests/<s>.expect.json.

Wire shapes follow the official references:
  OpenAI   Chat Completions object / chat.completion.chunk (stream_options.include_usage),
           a mid-stream failure as a lone `data: {"error": {...}}` line (no [DONE]).
  Anthropic Messages API and its streaming events (message_start, ping, content_block_*,
           message_delta, message_stop, error).
  Gemini   generateContent / streamGenerateContent?alt=sse (CRLF-framed `data:` lines, one
           GenerateContentResponse each; usageMetadata cumulative on every chunk).

Usage convention of the expectations (the canonical one): `input` excludes cached tokens,
`output` includes reasoning/thinking tokens. Run from anywhere: python3 generate.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CREATED = 1735689600
OPENAI_MODEL = "gpt-4o-2024-08-06"
ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"
GEMINI_MODEL = "gemini-2.5-flash"
# Opaque thinking signature (base64, valid for both Anthropic and Gemini fields).
SIGNATURE = "EqQBCkgIAxABGAIiQHNpZ25hdHVyZS1mb3ItY29uZm9ybWFuY2UtdGVzdHMtb25seQ=="


def tool(name, args, pieces):
    """A tool call: arguments as an object, and how the stream splits its JSON text."""
    text = json.dumps(args, separators=(",", ":"))
    assert "".join(pieces) == text, (pieces, text)
    return {"name": name, "args": args, "pieces": pieces}


def usage(inp, out, cache_read=0, cache_creation=0, reasoning=0):
    return {"input": inp, "output": out, "cache_read": cache_read,
            "cache_creation": cache_creation, "reasoning": reasoning}


# Each scenario: thinking (text pieces) + signature, text pieces, tools, stop, usage, error.
SCENARIOS = {
    "text": dict(text=["Hello", "! How can I ", "help you today?"], stop="end_turn",
                 usage=usage(12, 9)),
    "parallel_tools_streamed": dict(
        tools=[tool("get_weather", {"city": "Paris", "unit": "celsius"},
                    ['{"city":', '"Paris",', '"unit":"celsius"}']),
               tool("get_time", {"timezone": "Asia/Tokyo"},
                    ['{"timezone"', ':"Asia/', 'Tokyo"}'])],
        stop="tool_use", usage=usage(85, 41)),
    "text_then_tool": dict(
        text=["Let me check ", "the weather."],
        tools=[tool("get_weather", {"city": "Paris"}, ['{"ci', 'ty":"Par', 'is"}'])],
        stop="tool_use", usage=usage(64, 30)),
    "thinking_signature": dict(
        thinking=["The user asks 2+2. ", "That is 4."], signature=SIGNATURE,
        text=["2 + 2 = ", "4."], stop="end_turn", usage=usage(20, 57, reasoning=45)),
    "max_tokens_stop": dict(text=["Once upon a time, ", "there was a"], stop="max_tokens",
                            usage=usage(15, 8)),
    "stop_sequence": dict(text=["1, 2, 3, ", "4"], stop="stop_sequence", stop_sequence="5",
                          usage=usage(18, 7)),
    "content_filter": dict(text=["I can't help ", "with that."], stop="refusal",
                           usage=usage(22, 6)),
    "error_mid_stream": dict(text=["The first part ", "of the answer"], stop="error",
                             error={"status": 529, "message": "Overloaded"}, stream_only=True,
                             usage=usage(30, 5)),
    "usage_cache": dict(text=["Cached ", "context used."], stop="end_turn",
                        usage=usage(100, 50, cache_read=2000, cache_creation=300)),
}

OPENAI_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                 "tool_use": "tool_calls", "refusal": "content_filter"}
GEMINI_FINISH = {"end_turn": "STOP", "stop_sequence": "STOP", "max_tokens": "MAX_TOKENS",
                 "tool_use": "STOP", "refusal": "SAFETY"}


def compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def pretty(v):
    return json.dumps(v, indent=2, ensure_ascii=False) + "\n"


def text_of(s):
    return "".join(s.get("text", []))


def thinking_of(s):
    return "".join(s.get("thinking", []))


# ---- OpenAI -------------------------------------------------------------------------------------

def openai_usage(u):
    prompt = u["input"] + u["cache_read"] + u["cache_creation"]
    return {"prompt_tokens": prompt, "completion_tokens": u["output"],
            "total_tokens": prompt + u["output"],
            "prompt_tokens_details": {"cached_tokens": u["cache_read"], "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": u["reasoning"], "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}


def openai_call_id(name, i):
    return f"call_{name[:4]}{i}Xq7bK2"


def openai_unary(name, s):
    msg = {"role": "assistant", "content": text_of(s) or None, "refusal": None,
           "annotations": []}
    if s.get("tools"):
        msg["tool_calls"] = [{"id": openai_call_id(t["name"], i), "type": "function",
                              "function": {"name": t["name"], "arguments": compact(t["args"])}}
                             for i, t in enumerate(s["tools"])]
    return {"id": f"chatcmpl-{name}", "object": "chat.completion", "created": CREATED,
            "model": OPENAI_MODEL,
            "choices": [{"index": 0, "message": msg, "logprobs": None,
                         "finish_reason": OPENAI_FINISH[s["stop"]]}],
            "usage": openai_usage(s["usage"]), "service_tier": "default",
            "system_fingerprint": "fp_conform01"}


def openai_stream(name, s):
    def chunk(delta, finish=None):
        return {"id": f"chatcmpl-{name}", "object": "chat.completion.chunk", "created": CREATED,
                "model": OPENAI_MODEL, "service_tier": "default",
                "system_fingerprint": "fp_conform01",
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}], "usage": None}

    out = [chunk({"role": "assistant", "content": "", "refusal": None})]
    out += [chunk({"content": piece}) for piece in s.get("text", [])]
    if "error" in s:
        lines = [compact(c) for c in out]
        lines.append(compact({"error": {"message": s["error"]["message"], "type": "server_error",
                                        "param": None, "code": None}}))
        return "".join(f"data: {line}\n\n" for line in lines)
    for i, t in enumerate(s.get("tools", [])):
        out.append(chunk({"tool_calls": [{"index": i, "id": openai_call_id(t["name"], i),
                                          "type": "function",
                                          "function": {"name": t["name"], "arguments": ""}}]}))
        out += [chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]})
                for p in t["pieces"]]
    out.append(chunk({}, OPENAI_FINISH[s["stop"]]))
    last = chunk({})
    last["choices"] = []
    last["usage"] = openai_usage(s["usage"])
    out.append(last)
    return "".join(f"data: {compact(c)}\n\n" for c in out) + "data: [DONE]\n\n"


# ---- Anthropic ----------------------------------------------------------------------------------

def anthropic_tool_id(i):
    return f"toolu_01Conform{i}Abc"


def anthropic_usage(u):
    return {"input_tokens": u["input"], "cache_creation_input_tokens": u["cache_creation"],
            "cache_read_input_tokens": u["cache_read"], "output_tokens": u["output"],
            "service_tier": "standard"}


def anthropic_unary(name, s):
    content = []
    if s.get("thinking"):
        content.append({"type": "thinking", "thinking": thinking_of(s),
                        "signature": s["signature"]})
    if s.get("text"):
        content.append({"type": "text", "text": text_of(s)})
    for i, t in enumerate(s.get("tools", [])):
        content.append({"type": "tool_use", "id": anthropic_tool_id(i), "name": t["name"],
                        "input": t["args"]})
    return {"id": f"msg_01{name}", "type": "message", "role": "assistant",
            "model": ANTHROPIC_MODEL, "content": content, "stop_reason": s["stop"],
            "stop_sequence": s.get("stop_sequence"), "usage": anthropic_usage(s["usage"])}


def anthropic_stream(name, s):
    events = []

    def ev(data):
        events.append(f"event: {data['type']}\ndata: {compact(data)}\n\n")

    u = s["usage"]
    start_usage = anthropic_usage(u)
    start_usage["output_tokens"] = 1
    ev({"type": "message_start",
        "message": {"id": f"msg_01{name}", "type": "message", "role": "assistant",
                    "model": ANTHROPIC_MODEL, "content": [], "stop_reason": None,
                    "stop_sequence": None, "usage": start_usage}})
    ev({"type": "ping"})
    index = 0
    if s.get("thinking"):
        ev({"type": "content_block_start", "index": index,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
        for piece in s["thinking"]:
            ev({"type": "content_block_delta", "index": index,
                "delta": {"type": "thinking_delta", "thinking": piece}})
        ev({"type": "content_block_delta", "index": index,
            "delta": {"type": "signature_delta", "signature": s["signature"]}})
        ev({"type": "content_block_stop", "index": index})
        index += 1
    if s.get("text"):
        ev({"type": "content_block_start", "index": index,
            "content_block": {"type": "text", "text": ""}})
        for piece in s["text"]:
            ev({"type": "content_block_delta", "index": index,
                "delta": {"type": "text_delta", "text": piece}})
        if "error" in s:  # the failure arrives while the text block is still open
            ev({"type": "error",
                "error": {"type": "overloaded_error", "message": s["error"]["message"]}})
            return "".join(events)
        ev({"type": "content_block_stop", "index": index})
        index += 1
    for i, t in enumerate(s.get("tools", [])):
        ev({"type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": anthropic_tool_id(i), "name": t["name"],
                              "input": {}}})
        for piece in [""] + t["pieces"]:
            ev({"type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": piece}})
        ev({"type": "content_block_stop", "index": index})
        index += 1
    ev({"type": "message_delta",
        "delta": {"stop_reason": s["stop"], "stop_sequence": s.get("stop_sequence")},
        "usage": {"output_tokens": u["output"]}})
    ev({"type": "message_stop"})
    return "".join(events)


# ---- Gemini -------------------------------------------------------------------------------------

def gemini_usage(u, final=True):
    prompt = u["input"] + u["cache_read"] + u["cache_creation"]
    meta = {"promptTokenCount": prompt}
    if final:
        candidates = u["output"] - u["reasoning"]  # thoughts are counted apart
        meta["candidatesTokenCount"] = candidates
        meta["totalTokenCount"] = prompt + u["output"]
        if u["cache_read"]:
            meta["cachedContentTokenCount"] = u["cache_read"]
        if u["reasoning"]:
            meta["thoughtsTokenCount"] = u["reasoning"]
    else:
        meta["totalTokenCount"] = prompt
    meta["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    return meta


def gemini_parts(s, streamed):
    """Parts in order; per stream chunk when `streamed` (list of lists)."""
    chunks = []
    for piece in s.get("thinking", []):
        chunks.append([{"text": piece, "thought": True}])
    for piece in s.get("text", []):
        chunks.append([{"text": piece}])
    calls = [{"functionCall": {"name": t["name"], "args": t["args"]}}
             for t in s.get("tools", [])]
    if calls:
        chunks.append(calls)  # Gemini streams function calls whole, in one chunk
    if s.get("signature"):  # on the first part after the thoughts
        first = len(s.get("thinking", []))
        chunks[first][0]["thoughtSignature"] = s["signature"]
    if streamed:
        return chunks
    merged = []
    for c in chunks:
        for p in c:
            if merged and "text" in p and "text" in merged[-1] and \
                    p.get("thought") == merged[-1].get("thought") and "thoughtSignature" not in p:
                merged[-1]["text"] += p["text"]
            else:
                merged.append(dict(p))
    return merged


def gemini_candidate(parts, finish=None):
    c = {"content": {"parts": parts, "role": "model"}}
    if finish:
        c["finishReason"] = finish
        if finish == "SAFETY":
            c["safetyRatings"] = [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH",
                 "blocked": True},
                {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]
    c["index"] = 0
    return c


def gemini_unary(name, s):
    return {"candidates": [gemini_candidate(gemini_parts(s, False), GEMINI_FINISH[s["stop"]])],
            "usageMetadata": gemini_usage(s["usage"]), "modelVersion": GEMINI_MODEL,
            "responseId": f"resp-{name}"}


def gemini_stream(name, s):
    chunks = gemini_parts(s, True)
    out = []
    for i, parts in enumerate(chunks):
        last = i == len(chunks) - 1 and "error" not in s
        out.append({"candidates": [gemini_candidate(parts,
                                                    GEMINI_FINISH[s["stop"]] if last else None)],
                    "usageMetadata": gemini_usage(s["usage"], final=last),
                    "modelVersion": GEMINI_MODEL, "responseId": f"resp-{name}"})
    if "error" in s:
        out.append({"error": {"code": 503, "message": "The model is overloaded. Please try "
                              "again later.", "status": "UNAVAILABLE"}})
    return "".join(f"data: {compact(c)}\r\n\r\n" for c in out)


# ---- expectations -------------------------------------------------------------------------------

def expectation(s):
    e = {"text": text_of(s),
         "tool_calls": [{"name": t["name"], "arguments": t["args"]} for t in s.get("tools", [])],
         "thinking": ({"text": thinking_of(s), "signature": s["signature"]}
                      if s.get("thinking") else None),
         "stop_reason": s["stop"],
         "stop_sequence": s.get("stop_sequence"),
         "stream_only": bool(s.get("stream_only")),
         "usage": None}
    if "error" not in s:
        u = s["usage"]
        e["usage"] = {k: u[k] for k in ("input", "output", "cache_read", "cache_creation")}
    return e


# ---- request scenarios --------------------------------------------------------------------------

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}},
                  "required": ["city"]}
TIME_SCHEMA = {"type": "object", "properties": {"timezone": {"type": "string"}},
               "required": ["timezone"]}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
RESULT_PARIS = {"temp_c": 18}
RESULT_TOKYO = {"temp_c": 24}


def oa_tools(*names):
    table = {"get_weather": ("Current weather for a city", WEATHER_SCHEMA),
             "get_time": ("Current time in a timezone", TIME_SCHEMA)}
    return [{"type": "function", "function": {"name": n, "description": table[n][0],
                                              "parameters": table[n][1]}} for n in names]


def an_tools(*names):
    return [{"name": t["function"]["name"], "description": t["function"]["description"],
             "input_schema": t["function"]["parameters"]} for t in oa_tools(*names)]


def ge_tools(*names):
    return [{"functionDeclarations": [
        {"name": t["function"]["name"], "description": t["function"]["description"],
         "parameters": t["function"]["parameters"]} for t in oa_tools(*names)]}]


REQUESTS = {
    "system_prompt": {
        "openai": {"model": "gpt-4o", "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Hi there"}]},
        "anthropic": {"model": "claude-sonnet-4-5", "max_tokens": 1024,
                      "system": "You are a terse assistant.",
                      "messages": [{"role": "user", "content": "Hi there"}]},
        "gemini": {"systemInstruction": {"parts": [{"text": "You are a terse assistant."}]},
                   "contents": [{"role": "user", "parts": [{"text": "Hi there"}]}]},
        "expect": {"system": "You are a terse assistant.",
                   "messages": [{"role": "user",
                                 "blocks": [{"type": "text", "text": "Hi there"}]}],
                   "tools": [], "tool_choice": None},
    },
    "tool_result_turn": {
        "openai": {"model": "gpt-4o", "tools": oa_tools("get_weather"), "tool_choice": "auto",
                   "messages": [
                       {"role": "user", "content": "Weather in Paris and Tokyo?"},
                       {"role": "assistant", "content": "Checking both.", "tool_calls": [
                           {"id": "call_p1", "type": "function",
                            "function": {"name": "get_weather",
                                         "arguments": compact({"city": "Paris"})}},
                           {"id": "call_t2", "type": "function",
                            "function": {"name": "get_weather",
                                         "arguments": compact({"city": "Tokyo"})}}]},
                       {"role": "tool", "tool_call_id": "call_p1",
                        "content": compact(RESULT_PARIS)},
                       {"role": "tool", "tool_call_id": "call_t2",
                        "content": compact(RESULT_TOKYO)}]},
        "anthropic": {"model": "claude-sonnet-4-5", "max_tokens": 1024,
                      "tools": an_tools("get_weather"), "tool_choice": {"type": "auto"},
                      "messages": [
                          {"role": "user", "content": "Weather in Paris and Tokyo?"},
                          {"role": "assistant", "content": [
                              {"type": "text", "text": "Checking both."},
                              {"type": "tool_use", "id": "toolu_p1", "name": "get_weather",
                               "input": {"city": "Paris"}},
                              {"type": "tool_use", "id": "toolu_t2", "name": "get_weather",
                               "input": {"city": "Tokyo"}}]},
                          {"role": "user", "content": [
                              {"type": "tool_result", "tool_use_id": "toolu_p1",
                               "content": compact(RESULT_PARIS)},
                              {"type": "tool_result", "tool_use_id": "toolu_t2",
                               "content": [{"type": "text", "text": compact(RESULT_TOKYO)}]}]}]},
        "gemini": {"tools": ge_tools("get_weather"),
                   "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
                   "contents": [
                       {"role": "user", "parts": [{"text": "Weather in Paris and Tokyo?"}]},
                       {"role": "model", "parts": [
                           {"text": "Checking both."},
                           {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                           {"functionCall": {"name": "get_weather", "args": {"city": "Tokyo"}}}]},
                       {"role": "user", "parts": [
                           {"functionResponse": {"name": "get_weather", "response": RESULT_PARIS}},
                           {"functionResponse": {"name": "get_weather",
                                                 "response": RESULT_TOKYO}}]}]},
        "expect": {"system": "",
                   "messages": [
                       {"role": "user",
                        "blocks": [{"type": "text", "text": "Weather in Paris and Tokyo?"}]},
                       {"role": "assistant", "blocks": [
                           {"type": "text", "text": "Checking both."},
                           {"type": "tool_use", "name": "get_weather", "input": {"city": "Paris"}},
                           {"type": "tool_use", "name": "get_weather",
                            "input": {"city": "Tokyo"}}]},
                       {"role": "user", "blocks": [
                           {"type": "tool_result", "content": RESULT_PARIS, "is_error": False},
                           {"type": "tool_result", "content": RESULT_TOKYO, "is_error": False}]}],
                   "tools": ["get_weather"], "tool_choice": {"kind": "auto"}},
    },
    "image_input": {
        "openai": {"model": "gpt-4o", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]},
        "anthropic": {"model": "claude-sonnet-4-5", "max_tokens": 1024,
                      "messages": [{"role": "user", "content": [
                          {"type": "text", "text": "What is in this image?"},
                          {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                       "data": PNG}}]}]},
        "gemini": {"contents": [{"role": "user", "parts": [
            {"text": "What is in this image?"},
            {"inlineData": {"mimeType": "image/png", "data": PNG}}]}]},
        "expect": {"system": "",
                   "messages": [{"role": "user", "blocks": [
                       {"type": "text", "text": "What is in this image?"},
                       {"type": "image", "media_type": "image/png", "data": PNG}]}],
                   "tools": [], "tool_choice": None},
    },
    "multi_turn": {
        "openai": {"model": "gpt-4o", "max_tokens": 256, "temperature": 0.5, "stop": ["END"],
                   "messages": [
                       {"role": "user", "content": "Hi"},
                       {"role": "assistant", "content": "Hello! How can I help?"},
                       {"role": "user", "content": "Tell me a joke."}]},
        "anthropic": {"model": "claude-sonnet-4-5", "max_tokens": 256, "temperature": 0.5,
                      "stop_sequences": ["END"],
                      "messages": [
                          {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                          {"role": "assistant", "content": "Hello! How can I help?"},
                          {"role": "user", "content": "Tell me a joke."}]},
        "gemini": {"generationConfig": {"maxOutputTokens": 256, "temperature": 0.5,
                                        "stopSequences": ["END"]},
                   "contents": [
                       {"role": "user", "parts": [{"text": "Hi"}]},
                       {"role": "model", "parts": [{"text": "Hello! How can I help?"}]},
                       {"role": "user", "parts": [{"text": "Tell me a joke."}]}]},
        "expect": {"system": "",
                   "messages": [
                       {"role": "user", "blocks": [{"type": "text", "text": "Hi"}]},
                       {"role": "assistant",
                        "blocks": [{"type": "text", "text": "Hello! How can I help?"}]},
                       {"role": "user", "blocks": [{"type": "text", "text": "Tell me a joke."}]}],
                   "tools": [], "tool_choice": None,
                   "params": {"max_tokens": 256, "temperature": 0.5, "stop": ["END"]}},
    },
    "tools_and_choice": {
        "openai": {"model": "gpt-4o", "tools": oa_tools("get_weather", "get_time"),
                   "tool_choice": {"type": "function", "function": {"name": "get_time"}},
                   "messages": [{"role": "user", "content": "What time is it in Tokyo?"}]},
        "anthropic": {"model": "claude-sonnet-4-5", "max_tokens": 1024,
                      "tools": an_tools("get_weather", "get_time"),
                      "tool_choice": {"type": "tool", "name": "get_time"},
                      "messages": [{"role": "user", "content": "What time is it in Tokyo?"}]},
        "gemini": {"tools": ge_tools("get_weather", "get_time"),
                   "toolConfig": {"functionCallingConfig": {
                       "mode": "ANY", "allowedFunctionNames": ["get_time"]}},
                   "contents": [{"role": "user",
                                 "parts": [{"text": "What time is it in Tokyo?"}]}]},
        "expect": {"system": "",
                   "messages": [{"role": "user", "blocks": [
                       {"type": "text", "text": "What time is it in Tokyo?"}]}],
                   "tools": ["get_weather", "get_time"],
                   "tool_choice": {"kind": "named", "name": "get_time"}},
    },
}

RENDER = {"openai": (openai_unary, openai_stream), "anthropic": (anthropic_unary, anthropic_stream),
          "gemini": (gemini_unary, gemini_stream)}


def write(rel, text):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(text)


def main():
    for name, s in SCENARIOS.items():
        write(f"{name}.expect.json", pretty(expectation(s)))
        for proto, (unary, stream) in RENDER.items():
            if not s.get("stream_only"):
                write(f"{proto}/{name}.json", pretty(unary(name, s)))
            write(f"{proto}/{name}.sse", stream(name, s))
    for name, r in REQUESTS.items():
        write(f"requests/{name}.expect.json", pretty(r["expect"]))
        for proto in RENDER:
            write(f"requests/{proto}/{name}.json", pretty(r[proto]))


if __name__ == "__main__":
    main()
