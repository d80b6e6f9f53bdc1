// multipart/form-data: see multipart.h.
#include "http/parse/multipart.h"

#include <algorithm>
#include <cctype>

#include "common/query.h"

namespace sluice::http {

namespace {

constexpr size_t kMaxHeaderBlock = 8192;

Error bad(std::string message) { return make_error(Errc::bad_request, std::move(message)); }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits `a=b; c="d;e"` into (name, value) pairs, values unquoted (backslash escapes kept
// literal after the backslash). The first element (the type or disposition) has no '='.
std::vector<std::pair<std::string, std::string>> parameters(std::string_view s) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t eq = i;
    while (eq < s.size() && s[eq] != '=' && s[eq] != ';') ++eq;
    std::string name = lower(trim(s.substr(i, eq - i)));
    std::string value;
    i = eq;
    if (i < s.size() && s[i] == '=') {
      ++i;
      while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
      if (i < s.size() && s[i] == '"') {
        ++i;
        while (i < s.size() && s[i] != '"') {
          if (s[i] == '\\' && i + 1 < s.size()) ++i;
          value += s[i++];
        }
        if (i < s.size()) ++i;  // the closing quote
        while (i < s.size() && s[i] != ';') ++i;
      } else {
        const size_t end = std::min(s.find(';', i), s.size());
        value = std::string(trim(s.substr(i, end - i)));
        i = end;
      }
    }
    if (i < s.size() && s[i] == ';') ++i;
    if (!name.empty()) out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

// RFC 5987 ext-value (filename*=UTF-8''na%C3%AFve.jsonl): the percent-decoded value.
std::string ext_value(std::string_view v) {
  const size_t q = v.find("''");
  if (q != std::string_view::npos) v.remove_prefix(q + 2);
  return percent_decode(v, false);
}

Result<void> read_headers(std::string_view block, FormPart& part) {
  bool disposition = false;
  while (!block.empty()) {
    const size_t eol = block.find("\r\n");
    std::string_view line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view() : block.substr(eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return bad("A multipart part has a malformed header line.");
    const std::string name = lower(trim(line.substr(0, colon)));
    const std::string_view value = trim(line.substr(colon + 1));
    if (name == "content-disposition") {
      auto params = parameters(value);
      if (params.empty() || params[0].first != "form-data" || !params[0].second.empty()) {
        return bad("A multipart part's Content-Disposition must be form-data.");
      }
      disposition = true;
      bool extended = false;
      for (size_t i = 1; i < params.size(); ++i) {
        const auto& [k, v] = params[i];
        if (k == "name") {
          part.name = v;
        } else if (k == "filename" && !extended) {
          part.filename = v;
          part.has_filename = true;
        } else if (k == "filename*") {
          part.filename = ext_value(v);
          part.has_filename = extended = true;
        }
      }
    } else if (name == "content-type") {
      part.content_type = std::string(value);
    }
  }
  if (!disposition) return bad("A multipart part has no Content-Disposition header.");
  if (part.name.empty()) return bad("A multipart part has no name.");
  return {};
}

}  // namespace

Result<std::string> form_boundary(std::string_view content_type) {
  auto params = parameters(content_type);
  if (params.empty() || params[0].first != "multipart/form-data" || !params[0].second.empty()) {
    return bad("The request must be multipart/form-data (Content-Type: multipart/form-data; "
               "boundary=...).");
  }
  for (size_t i = 1; i < params.size(); ++i) {
    if (params[i].first != "boundary") continue;
    const std::string& b = params[i].second;
    if (b.empty() || b.size() > 70) return bad("The multipart boundary must be 1 to 70 characters.");
    return b;
  }
  return bad("The multipart/form-data Content-Type has no boundary.");
}

Result<std::vector<FormPart>> parse_form(std::string_view body, std::string_view boundary,
                                         size_t max_parts) {
  const std::string delimiter = "--" + std::string(boundary);
  const std::string inner = "\r\n" + delimiter;
  // The first delimiter: at the start, or after a preamble ending in CRLF.
  size_t at;
  if (body.substr(0, delimiter.size()) == delimiter) {
    at = delimiter.size();
  } else {
    const size_t found = body.find(inner);
    if (found == std::string_view::npos) return bad("The multipart body has no opening boundary.");
    at = found + inner.size();
  }
  std::vector<FormPart> parts;
  for (;;) {
    // After a delimiter: "--" closes the body; else transport padding and CRLF open a part.
    if (body.substr(at, 2) == "--") return parts;
    while (at < body.size() && (body[at] == ' ' || body[at] == '\t')) ++at;
    if (body.substr(at, 2) != "\r\n") return bad("The multipart body is malformed after a boundary.");
    at += 2;
    if (parts.size() == max_parts) {
      return bad("The multipart body has more than " + std::to_string(max_parts) + " parts.");
    }
    // An empty header block is allowed (then the part has no name: refused below).
    size_t headers_end;
    if (body.substr(at, 2) == "\r\n") {
      headers_end = at;
    } else {
      headers_end = body.find("\r\n\r\n", at);
      if (headers_end == std::string_view::npos || headers_end - at > kMaxHeaderBlock) {
        return bad("A multipart part's headers do not end (or exceed 8 KiB).");
      }
    }
    FormPart part;
    if (auto h = read_headers(body.substr(at, headers_end - at), part); !h) return std::move(h.error());
    const size_t data_start = headers_end + (headers_end == at ? 2 : 4);
    const size_t data_end = body.find(inner, data_start);
    if (data_end == std::string_view::npos) {
      return bad("The multipart body ends before its closing boundary.");
    }
    part.data = body.substr(data_start, data_end - data_start);
    parts.push_back(std::move(part));
    at = data_end + inner.size();
  }
}

}  // namespace sluice::http
