// multipart/form-data (RFC 7578, RFC 2046 §5.1): the body of a file upload (POST /v1/files).
// Pure and bounded: parts are views into the body (no copies), at most `max_parts` of them,
// each part's header block at most 8 KiB. Written here because no Debian package offers a
// small, non-allocating parser of this format for an in-memory body.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace sluice::http {

struct FormPart {
  std::string name;          // Content-Disposition name
  std::string filename;      // Content-Disposition filename (or filename*); "" when absent
  bool has_filename = false;
  std::string content_type;  // "" when absent
  std::string_view data;     // a view into the body
};

/// The boundary of a `multipart/form-data; boundary=...` Content-Type. Errors (bad_request):
/// another media type, no boundary, or one that RFC 2046 forbids (empty, over 70 characters).
Result<std::string> form_boundary(std::string_view content_type);

/// The parts of `body`. Errors (bad_request): no opening delimiter, a part without its blank
/// line or without a name, a body that ends before its closing delimiter, too many parts.
Result<std::vector<FormPart>> parse_form(std::string_view body, std::string_view boundary,
                                         size_t max_parts = 16);

}  // namespace sluice::http
