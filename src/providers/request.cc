// On-demand extraction and validation of request fields with simdjson (one pass, no DOM).
#include "providers/request.h"

#include <simdjson.h>

#include <algorithm>
#include <string>
#include <vector>

#include "providers/request_checks.h"

namespace sluice::providers {

namespace od = simdjson::ondemand;
using checks::check_decimal;
using checks::check_messages;
using checks::check_text_or_tokens;
using checks::duplicate;
using checks::invalid;
using checks::json_error;
using checks::missing;
using checks::read_int;
using checks::read_stream_options;
using checks::trim_right;

std::string_view operation_path(Operation op) {
  switch (op) {
    case Operation::chat: return "/chat/completions";
    case Operation::completions: return "/completions";
    case Operation::embeddings: return "/embeddings";
    case Operation::count_tokens: return "/messages/count_tokens";
  }
  return "/chat/completions";
}

namespace {

od::parser& thread_parser() {
  thread_local od::parser parser;
  return parser;
}

}  // namespace

Result<void> parse_request(Operation op, std::string_view body, ParsedRequest& out) {
  out = ParsedRequest{};
  out.op = op;
  out.body = body;
  if (body.empty()) {
    return make_error(Errc::bad_request,
                      "The request body is empty. The OpenAI API expects a JSON object.");
  }
  simdjson::padded_string_view input(body.data(), body.size(), body.size() + simdjson::SIMDJSON_PADDING);
  od::document doc;
  auto ec = thread_parser().iterate(input).get(doc);
  if (ec) return json_error(ec);
  od::object obj;
  ec = doc.get_object().get(obj);
  if (ec) {
    if (ec == simdjson::INCORRECT_TYPE) {
      return make_error(Errc::bad_request, "The request body must be a JSON object.");
    }
    return json_error(ec);
  }
  // Keys seen once already. A repeated model/stream/stream_options is rejected: this parser
  // would take the last one and an upstream may take the first (review §1.12).
  bool have_model = false, have_stream = false, have_stream_options = false;
  bool have_input = false;  // messages / prompt / input, per operation
  bool stream_options = false;
  for (auto field : obj) {
    std::string_view key;
    ec = field.unescaped_key().get(key);
    if (ec) return json_error(ec);
    od::value v;
    ec = field.value().get(v);
    if (ec) return json_error(ec);
    if (key == "model") {
      if (have_model) return duplicate(key);
      std::string_view raw = trim_right(v.raw_json_token());
      std::string_view name;
      ec = v.get_string().get(name);
      if (ec) {
        if (ec == simdjson::INCORRECT_TYPE) {
          Error e = make_error(Errc::bad_request, "'model' must be a string.", "model");
          e.code_override = "invalid_type";
          return e;
        }
        return json_error(ec);
      }
      if (name.size() > kMaxModelBytes) {
        return invalid("string_above_max_length",
                       "Invalid 'model': string too long. Expected a string with maximum length " +
                           std::to_string(kMaxModelBytes) + ", but got a string with length " +
                           std::to_string(name.size()) + " instead.",
                       "model");
      }
      out.model.assign(name);
      out.model_begin = static_cast<size_t>(raw.data() - body.data());
      out.model_end = out.model_begin + raw.size();
      have_model = true;
    } else if (op == Operation::chat && key == "messages") {
      if (auto r = check_messages(v); !r) return r;
      have_input = true;
    } else if (op == Operation::completions && key == "prompt") {
      if (auto r = check_text_or_tokens(v, "prompt", false); !r) return r;
      have_input = true;
    } else if (op == Operation::embeddings && key == "input") {
      if (auto r = check_text_or_tokens(v, "input", true); !r) return r;
      have_input = true;
    } else if (key == "stream") {
      if (have_stream) return duplicate(key);
      have_stream = true;
      od::json_type t;
      if (v.type().get(t)) return json_error(simdjson::TAPE_ERROR);
      if (t == od::json_type::null) continue;
      bool b = false;
      ec = v.get_bool().get(b);
      if (ec) {
        if (ec == simdjson::INCORRECT_TYPE) {
          Error e = make_error(Errc::bad_request, "'stream' must be a boolean.", "stream");
          e.code_override = "invalid_type";
          return e;
        }
        return json_error(ec);
      }
      out.stream = b;
    } else if (key == "max_tokens" || key == "max_completion_tokens") {
      int64_t n = 0;
      bool present = false;
      if (auto r = read_int(v, key, 0, kMaxTokensLimit, n, present); !r) return r;
      if (present) out.max_tokens = std::max(out.max_tokens, n);
    } else if (key == "n") {
      bool present = false;
      if (auto r = read_int(v, key, 1, kMaxChoices, out.n, present); !r) return r;
    } else if (key == "temperature") {
      if (auto r = check_decimal(v, key, 2.0, "2"); !r) return r;
    } else if (key == "top_p") {
      if (auto r = check_decimal(v, key, 1.0, "1"); !r) return r;
    } else if (key == "stream_options") {
      if (have_stream_options) return duplicate(key);
      have_stream_options = true;
      if (auto r = read_stream_options(v, stream_options, out.include_usage); !r) return r;
    }
    // Other fields are skipped unread; the iteration still checks the document's structure.
  }
  // After the object, current_location() must report the end of the input.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    return make_error(Errc::bad_request,
                      "We could not parse the JSON body of your request (trailing content after "
                      "the JSON object).");
  }
  if (!have_model) {
    return make_error(Errc::bad_request, "you must provide a model parameter", "model");
  }
  if (out.model.empty()) {
    return make_error(Errc::bad_request, "'model' must not be empty.", "model");
  }
  if (!have_input) {
    return missing(op == Operation::chat          ? "messages"
                   : op == Operation::completions ? "prompt"
                                                  : "input");
  }
  if (stream_options && !out.stream) {
    return make_error(Errc::bad_request,
                      "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                      "stream_options");
  }
  return {};
}

Result<void> validate_json(std::string_view body) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  auto ec = parser.parse(body.data(), body.size(), false).get(root);
  if (ec) return json_error(ec);
  return {};
}

namespace {

// Text of a chat `content`: a string, or the concatenated text parts of an array.
std::string content_text(od::value content) {
  std::string out;
  od::json_type t;
  if (content.type().get(t)) return out;
  if (t == od::json_type::string) {
    std::string_view s;
    if (!content.get_string().get(s)) out.assign(s);
    return out;
  }
  if (t == od::json_type::array) {
    for (auto part : content.get_array()) {
      od::object po;
      if (part.get_object().get(po)) continue;
      for (auto f : po) {
        std::string_view k;
        if (f.unescaped_key().get(k)) break;
        if (k == "text") {
          std::string_view s;
          if (!f.value().get_string().get(s)) {
            if (!out.empty()) out += ' ';
            out.append(s);
          }
        }
      }
    }
  }
  return out;
}

}  // namespace

std::string extract_prompt(Operation op, std::string_view body) {
  simdjson::padded_string_view input(body.data(), body.size(), body.size() + simdjson::SIMDJSON_PADDING);
  od::document doc;
  if (thread_parser().iterate(input).get(doc)) return {};
  od::object obj;
  if (doc.get_object().get(obj)) return {};
  std::string last;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return last;
    if (op == Operation::chat && key == "messages") {
      od::array arr;
      if (field.value().get_array().get(arr)) return last;
      for (auto msg : arr) {
        od::object m;
        if (msg.get_object().get(m)) continue;
        std::string role, text;
        for (auto mf : m) {
          std::string_view mk;
          if (mf.unescaped_key().get(mk)) break;
          if (mk == "role") {
            std::string_view r;
            if (!mf.value().get_string().get(r)) role.assign(r);
          } else if (mk == "content") {
            od::value cv;
            if (!mf.value().get(cv)) text = content_text(cv);
          }
        }
        if (role == "user") last = std::move(text);
      }
    } else if (op == Operation::completions && key == "prompt") {
      od::value pv;
      if (field.value().get(pv)) return last;
      od::json_type t;
      if (pv.type().get(t)) return last;
      if (t == od::json_type::string) {
        std::string_view s;
        if (!pv.get_string().get(s)) last.assign(s);
      } else if (t == od::json_type::array) {
        for (auto p : pv.get_array()) {
          std::string_view s;
          if (!p.get_string().get(s)) {
            last.assign(s);
            break;
          }
        }
      }
    }
  }
  return last;
}

Result<EmbeddingInputs> extract_embedding_inputs(std::string_view body) {
  EmbeddingInputs out;
  simdjson::padded_string_view input(body.data(), body.size(), body.size() + simdjson::SIMDJSON_PADDING);
  od::document doc;
  auto ec = thread_parser().iterate(input).get(doc);
  if (ec) return json_error(ec);
  od::object obj;
  if ((ec = doc.get_object().get(obj))) return json_error(ec);
  bool have_input = false;
  for (auto field : obj) {
    std::string_view key;
    if ((ec = field.unescaped_key().get(key))) return json_error(ec);
    if (key == "input") {
      od::value v;
      if ((ec = field.value().get(v))) return json_error(ec);
      od::json_type t;
      if ((ec = v.type().get(t))) return json_error(ec);
      have_input = true;
      if (t == od::json_type::string) {
        std::string_view s;
        if ((ec = v.get_string().get(s))) return json_error(ec);
        out.inputs.emplace_back(s);
      } else if (t == od::json_type::array) {
        for (auto item : v.get_array()) {
          if (out.inputs.size() == kMaxEmbeddingInputs) {  // parse_request already said so
            return make_error(Errc::bad_request, "Too many embedding inputs (at most 2048).",
                              "input");
          }
          od::json_type it;
          if ((ec = item.type().get(it))) return json_error(ec);
          if (it == od::json_type::string) {
            std::string_view s;
            if ((ec = item.get_string().get(s))) return json_error(ec);
            out.inputs.emplace_back(s);
          } else {
            std::string_view raw = trim_right(item.raw_json_token());
            out.inputs.emplace_back(raw);
          }
        }
      } else {
        return make_error(Errc::bad_request, "'input' must be a string or an array.", "input");
      }
    } else if (key == "encoding_format") {
      std::string_view s;
      if (field.value().get_string().get(s) == simdjson::SUCCESS) {
        if (s != "float" && s != "base64") {
          return make_error(Errc::bad_request,
                            "'encoding_format' must be \"float\" or \"base64\".",
                            "encoding_format");
        }
        out.encoding_format.assign(s);
      }
    }
  }
  if (!have_input || out.inputs.empty()) {
    return make_error(Errc::bad_request, "'input' is required and must not be empty.", "input");
  }
  return out;
}

}  // namespace sluice::providers
