// OpenAI response/chunk JSON builders (hand-written for speed; every string is escaped).
#include "providers/openai_format.h"

#include <cctype>
#include <cmath>
#include <cstring>

#include "common/error.h"

namespace sluice::providers {

namespace {

void append_str(std::string& out, std::string_view s) {
  out += '"';
  append_json_escaped(out, s);
  out += '"';
}

void append_head(std::string& out, const CompletionShape& shape, bool chunk) {
  out += R"({"id":)";
  append_str(out, shape.id);
  out += R"(,"object":")";
  if (shape.op == Operation::chat) {
    out += chunk ? "chat.completion.chunk" : "chat.completion";
  } else {
    out += "text_completion";
  }
  out += R"(","created":)";
  out += std::to_string(shape.created);
  out += R"(,"model":)";
  append_str(out, shape.model);
}

void append_usage(std::string& out, Usage u) {
  out += R"("usage":{"prompt_tokens":)";
  out += std::to_string(u.prompt_tokens);
  out += R"(,"completion_tokens":)";
  out += std::to_string(u.completion_tokens);
  out += R"(,"total_tokens":)";
  out += std::to_string(u.prompt_tokens + u.completion_tokens);
  out += '}';
}

}  // namespace

int64_t estimate_tokens(std::string_view text) {
  int64_t n = static_cast<int64_t>((text.size() + 3) / 4);
  return n < 1 ? 1 : n;
}

std::string unary_completion(const CompletionShape& shape, std::string_view text, Usage usage) {
  std::string out;
  out.reserve(256 + text.size());
  append_head(out, shape, false);
  if (shape.op == Operation::chat) {
    out += R"(,"choices":[{"index":0,"message":{"role":"assistant","content":)";
    append_str(out, text);
    out += R"(},"logprobs":null,"finish_reason":"stop"}],)";
  } else {
    out += R"(,"choices":[{"index":0,"text":)";
    append_str(out, text);
    out += R"(,"logprobs":null,"finish_reason":"stop"}],)";
  }
  append_usage(out, usage);
  out += '}';
  return out;
}

std::string chunk_event(const CompletionShape& shape, std::string_view delta_text,
                        bool role_chunk, std::string_view finish_reason) {
  std::string out;
  out.reserve(192 + delta_text.size());
  out += "data: ";
  append_head(out, shape, true);
  out += R"(,"choices":[{"index":0,)";
  if (shape.op == Operation::chat) {
    if (role_chunk) {
      out += R"("delta":{"role":"assistant","content":""})";
    } else if (!finish_reason.empty()) {
      out += R"("delta":{})";
    } else {
      out += R"("delta":{"content":)";
      append_str(out, delta_text);
      out += '}';
    }
  } else {
    out += R"("text":)";
    append_str(out, delta_text);
  }
  out += R"(,"logprobs":null,"finish_reason":)";
  if (finish_reason.empty()) {
    out += "null";
  } else {
    append_str(out, finish_reason);
  }
  out += "}]}\n\n";
  return out;
}

std::string usage_event(const CompletionShape& shape, Usage usage) {
  std::string out;
  out += "data: ";
  append_head(out, shape, true);
  out += R"(,"choices":[],)";
  append_usage(out, usage);
  out += "}\n\n";
  return out;
}

namespace {

uint64_t fnv1a(std::string_view s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

void append_base64(std::string& out, const unsigned char* data, size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == n) {
    uint32_t v = data[i] << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == n) {
    uint32_t v = (data[i] << 16) | (data[i + 1] << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
}

}  // namespace

std::string embeddings_response(std::string_view model, const std::vector<std::string>& inputs,
                                bool base64, int dimensions, bool trigrams) {
  std::string out = R"({"object":"list","data":[)";
  int64_t prompt_tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    prompt_tokens += estimate_tokens(inputs[i]);
    std::vector<float> vec(dimensions);
    double norm = 0;
    if (trigrams) {
      // Character trigrams of the lower-cased text hashed into the dimensions: texts that
      // share spellings point the same way (a stand-in for a model's semantics in tests).
      std::string t = " ";
      for (char c : inputs[i]) t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      t += ' ';
      for (size_t k = 0; k + 3 <= t.size(); ++k) {
        vec[fnv1a(std::string_view(t).substr(k, 3), 7) % static_cast<uint64_t>(dimensions)] += 1;
      }
      for (float x : vec) norm += x * x;
    } else {
      for (int d = 0; d < dimensions; ++d) {
        uint64_t h = fnv1a(inputs[i], static_cast<uint64_t>(d) * 0x9E3779B97F4A7C15ull);
        vec[d] = static_cast<float>((h % 20001) / 10000.0 - 1.0);
        norm += vec[d] * vec[d];
      }
    }
    norm = std::sqrt(norm);
    for (auto& x : vec) x = norm > 0 ? static_cast<float>(x / norm) : 0.0f;
    if (i) out += ',';
    out += R"({"object":"embedding","index":)";
    out += std::to_string(i);
    out += R"(,"embedding":)";
    if (base64) {
      out += '"';
      append_base64(out, reinterpret_cast<const unsigned char*>(vec.data()),
                    vec.size() * sizeof(float));
      out += '"';
    } else {
      out += '[';
      char num[32];
      for (int d = 0; d < dimensions; ++d) {
        if (d) out += ',';
        int len = snprintf(num, sizeof num, "%.6f", vec[d]);
        out.append(num, len);
      }
      out += ']';
    }
    out += '}';
  }
  out += R"(],"model":)";
  append_str(out, model);
  out += R"(,"usage":{"prompt_tokens":)";
  out += std::to_string(prompt_tokens);
  out += R"(,"total_tokens":)";
  out += std::to_string(prompt_tokens);
  out += "}}";
  return out;
}

}  // namespace sluice::providers
