// On-demand extraction of request fields with simdjson (one pass, no DOM).
#include "providers/request.h"

#include <simdjson.h>

#include <algorithm>
#include <vector>

namespace sluice::providers {

namespace od = simdjson::ondemand;

std::string_view operation_path(Operation op) {
  switch (op) {
    case Operation::chat: return "/chat/completions";
    case Operation::completions: return "/completions";
    case Operation::embeddings: return "/embeddings";
  }
  return "/chat/completions";
}

namespace {

od::parser& thread_parser() {
  thread_local od::parser parser;
  return parser;
}

Error json_error(simdjson::error_code ec) {
  return make_error(Errc::bad_request,
                    std::string("We could not parse the JSON body of your request (") +
                        simdjson::error_message(ec) +
                        "). The OpenAI API expects a JSON payload.");
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' ||
                        s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
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
  bool have_model = false;
  for (auto field : obj) {
    std::string_view key;
    ec = field.unescaped_key().get(key);
    if (ec) return json_error(ec);
    od::value v;
    ec = field.value().get(v);
    if (ec) return json_error(ec);
    if (key == "model") {
      std::string_view raw = trim_right(v.raw_json_token());
      std::string_view name;
      ec = v.get_string().get(name);
      if (ec) {
        if (ec == simdjson::INCORRECT_TYPE) {
          return make_error(Errc::bad_request, "'model' must be a string.", "model");
        }
        return json_error(ec);
      }
      out.model.assign(name);
      out.model_begin = static_cast<size_t>(raw.data() - body.data());
      out.model_end = out.model_begin + raw.size();
      have_model = true;
    } else if (key == "stream") {
      od::json_type t;
      if (v.type().get(t)) return json_error(simdjson::TAPE_ERROR);
      if (t == od::json_type::null) continue;
      bool b = false;
      ec = v.get_bool().get(b);
      if (ec) {
        if (ec == simdjson::INCORRECT_TYPE) {
          return make_error(Errc::bad_request, "'stream' must be a boolean.", "stream");
        }
        return json_error(ec);
      }
      out.stream = b;
    } else if (key == "max_tokens" || key == "max_completion_tokens") {
      int64_t n = 0;
      if (v.get_int64().get(n) == simdjson::SUCCESS && n > 0) {
        out.max_tokens = std::max(out.max_tokens, n);
      }
    } else if (key == "stream_options") {
      od::json_type t;
      if (v.type().get(t)) return json_error(simdjson::TAPE_ERROR);
      if (t != od::json_type::object) continue;
      for (auto opt : v.get_object()) {
        std::string_view okey;
        if (opt.unescaped_key().get(okey)) return json_error(simdjson::TAPE_ERROR);
        if (okey == "include_usage") {
          bool b = false;
          if (opt.value().get_bool().get(b) == simdjson::SUCCESS) out.include_usage = b;
        }
      }
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
