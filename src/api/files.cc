// The Files API: see files.h.
#include "api/files.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "api/responses_util.h"
#include "common/query.h"
#include "frontends/responses/responses.h"
#include "http/parse/multipart.h"

namespace sluice::api {

namespace json = canonical::json;
namespace rs = canonical::responses;

namespace {

constexpr std::array<std::string_view, 6> kPurposes = {"assistants", "batch", "fine-tune",
                                                       "vision",     "user_data", "evals"};

std::string data_key(const std::string& id) { return "file-data:" + id; }
std::string record_key(const std::string& id) { return "file:" + id; }
std::string list_key(const std::string& owner) { return "files:" + owner; }

Error bad_param(std::string message, std::string param) {
  return make_error(Errc::bad_request, std::move(message), std::move(param));
}

Error no_such_file(const std::string& id) {
  return make_error(Errc::not_found, "No such File object: " + id, "id");
}

// expires_after[seconds]: OpenAI's bounds (one hour to thirty days).
Result<std::chrono::seconds> expiry_of(const std::vector<http::FormPart>& parts) {
  std::string_view anchor, seconds;
  for (const http::FormPart& p : parts) {
    if (p.name == "expires_after[anchor]") anchor = p.data;
    if (p.name == "expires_after[seconds]") seconds = p.data;
  }
  if (anchor.empty() && seconds.empty()) return std::chrono::seconds(0);
  if (anchor != "created_at") {
    return bad_param("expires_after[anchor] must be 'created_at'.", "expires_after[anchor]");
  }
  int64_t n = 0;
  auto [end, ec] = std::from_chars(seconds.data(), seconds.data() + seconds.size(), n);
  if (ec != std::errc() || end != seconds.data() + seconds.size() || n < 3600 || n > 2'592'000) {
    return bad_param("expires_after[seconds] must be an integer between 3600 and 2592000.",
                     "expires_after[seconds]");
  }
  return std::chrono::seconds(n);
}

}  // namespace

FilesApi::FilesApi(std::shared_ptr<store::StateService> state, const config::StateConfig& config)
    : state_(std::move(state)),
      max_bytes_(config.files_max_bytes),
      ttl_(std::chrono::seconds(config.files_ttl_s)) {}

asio::awaitable<void> FilesApi::serve(http::Request& request, http::Responder& responder,
                                      std::string_view api_path, const std::string& owner) {
  const std::string_view method = request.method();
  std::string_view rest = api_path.substr(std::string_view("/files").size());
  if (rest.empty()) {
    if (method == "POST") co_return co_await upload(request, responder, owner);
    if (method == "GET" || method == "HEAD") co_return co_await list(request, responder, owner);
    co_return co_await send_method_not_allowed(responder, request, "GET, POST");
  }
  if (rest.front() != '/') co_return co_await send_unknown_url(responder, request);
  rest.remove_prefix(1);
  const std::string id(rest.substr(0, rest.find('/')));
  const std::string_view sub = rest.substr(id.size());
  if (id.empty() || (!sub.empty() && sub != "/content")) {
    co_return co_await send_unknown_url(responder, request);
  }
  const bool get = method == "GET" || method == "HEAD";
  if (!get && !(sub.empty() && method == "DELETE")) {
    co_return co_await send_method_not_allowed(responder, request, sub.empty() ? "GET, DELETE" : "GET");
  }
  auto file = co_await load(id, owner);
  if (!file) co_return co_await send_error_value(responder, file.error());
  if (sub == "/content") {
    auto bytes = co_await content(id, owner);
    if (!bytes) co_return co_await send_error_value(responder, bytes.error());
    co_await responder.send(200, "application/octet-stream", *bytes);
    co_return;
  }
  if (get) {
    const std::string out = canonical::to_text(*file);
    co_await responder.send(200, "application/json", out);
    co_return;
  }
  // DELETE: the listing first (a file that is listed is always readable), then the bytes.
  const std::string list = list_key(owner), record = record_key(id), data = data_key(id);
  const auto erase = [&](store::StateStore& s) -> Result<void> {
    if (auto e = s.erase_item(list, id); !e) return std::move(e.error());
    if (auto e = s.erase(record); !e) return std::move(e.error());
    if (auto e = s.erase(data); !e) return std::move(e.error());
    return {};
  };
  auto erased = co_await state_->run(erase);
  if (!erased) co_return co_await send_error_value(responder, erased.error());
  const std::string out =
      canonical::to_text(json::object{{"id", id}, {"object", "file"}, {"deleted", true}});
  co_await responder.send(200, "application/json", out);
}

asio::awaitable<void> FilesApi::upload(http::Request& request, http::Responder& responder,
                                       const std::string& owner) {
  auto boundary = http::form_boundary(request.header("content-type"));
  if (!boundary) co_return co_await send_error_value(responder, boundary.error());
  auto parts = http::parse_form(request.body, *boundary);
  if (!parts) co_return co_await send_error_value(responder, parts.error());
  const http::FormPart* file = nullptr;
  std::string purpose;
  bool has_purpose = false;
  for (const http::FormPart& p : *parts) {
    if (p.name == "file") file = &p;
    if (p.name == "purpose") {
      purpose = std::string(p.data);
      has_purpose = true;
    }
  }
  if (!has_purpose) {
    co_return co_await send_error_value(responder, bad_param("Missing required parameter: 'purpose'.", "purpose"));
  }
  if (std::find(kPurposes.begin(), kPurposes.end(), purpose) == kPurposes.end()) {
    co_return co_await send_error_value(
        responder, bad_param("'" + purpose + "' is not one of ['assistants', 'batch', 'fine-tune', "
                             "'vision', 'user_data', 'evals'] - 'purpose'",
                             "purpose"));
  }
  if (file == nullptr || !file->has_filename) {
    co_return co_await send_error_value(
        responder, bad_param("Missing required parameter: 'file' (a file part with a filename).", "file"));
  }
  if (file->data.size() > max_bytes_) {
    Error e = bad_param("The file is " + std::to_string(file->data.size()) + " bytes; at most " +
                            std::to_string(max_bytes_) + " are accepted (state.files_max_bytes).",
                        "file");
    e.code = Errc::payload_too_large;
    co_return co_await send_error_value(responder, e);
  }
  if (file->data.empty()) {
    co_return co_await send_error_value(responder, bad_param("The file is empty.", "file"));
  }
  auto ttl = expiry_of(*parts);
  if (!ttl) co_return co_await send_error_value(responder, ttl.error());
  const std::string name = file->filename.empty() ? "upload" : file->filename;
  const std::string data(file->data);
  const std::chrono::seconds expiry = *ttl;
  auto made = co_await create(owner, name, purpose, data, expiry);
  if (!made) co_return co_await send_error_value(responder, made.error());
  const std::string out = canonical::to_text(*made);
  co_await responder.send(200, "application/json", out);
}

asio::awaitable<Result<json::object>> FilesApi::create(const std::string& owner,
                                                       const std::string& filename,
                                                       const std::string& purpose,
                                                       const std::string& data,
                                                       std::chrono::seconds ttl) {
  if (ttl.count() == 0) ttl = ttl_;
  const std::string id = rs::new_id("file");
  const int64_t now_s = store::system_now_ms() / 1000;
  json::object file{{"id", id},
                    {"object", "file"},
                    {"bytes", static_cast<int64_t>(data.size())},
                    {"created_at", now_s},
                    {"expires_at", ttl.count() > 0 ? json::value(now_s + ttl.count()) : json::value(nullptr)},
                    {"filename", filename},
                    {"purpose", purpose},
                    {"status", "processed"},
                    {"status_details", nullptr}};
  const std::string record = canonical::to_text(json::object{{"owner", owner}, {"file", file}});
  const std::string listed = canonical::to_text(file);
  const std::string list = list_key(owner), rkey = record_key(id), dkey = data_key(id);
  const std::chrono::milliseconds life = ttl;
  const auto put = [&](store::StateStore& s) -> Result<void> {
    // The bytes first, the listing last: a listed file is always readable.
    if (auto p = s.put(dkey, data, "", life); !p) return p;
    if (auto p = s.put(rkey, record, "", life); !p) {
      (void)s.erase(dkey);
      return p;
    }
    // The owner's list never expires as a whole (its files may each live differently): an
    // expired file's item is dropped when the list is next read.
    if (auto a = s.append(list, {store::ListItem{id, listed}}, std::chrono::milliseconds(0)); !a) {
      (void)s.erase(rkey);
      (void)s.erase(dkey);
      return std::move(a.error());
    }
    return {};
  };
  auto stored = co_await state_->run(put);
  count_state_write("file", stored.ok());
  if (!stored) co_return std::move(stored.error());
  co_return file;
}

asio::awaitable<Result<json::object>> FilesApi::load(const std::string& id, const std::string& owner) {
  const std::string key = record_key(id);
  const auto get = [&](store::StateStore& s) { return s.get(key); };
  auto got = co_await state_->run(get);
  if (!got) co_return std::move(got.error());
  if (!got->has_value()) co_return no_such_file(id);
  auto record = parse_record(**got);
  if (!record || str_of(*record, "owner") != owner) co_return no_such_file(id);
  const json::value* file = record->if_contains("file");
  if (file == nullptr || !file->is_object()) co_return no_such_file(id);
  co_return file->as_object();
}

asio::awaitable<Result<std::string>> FilesApi::content(const std::string& id, const std::string& owner) {
  auto file = co_await load(id, owner);
  if (!file) co_return std::move(file.error());
  const std::string key = data_key(id);
  const auto get = [&](store::StateStore& s) { return s.get(key); };
  auto got = co_await state_->run(get);
  if (!got) co_return std::move(got.error());
  if (!got->has_value()) co_return no_such_file(id);
  co_return std::move(**got);
}

asio::awaitable<void> FilesApi::list(http::Request& request, http::Responder& responder,
                                     const std::string& owner) {
  auto query = parse_list_query(request.head->query);
  if (!query) co_return co_await send_error_value(responder, query.error());
  std::string purpose;
  for_each_query_param(request.head->query, [&](std::string_view name, std::string_view value) {
    if (name == "purpose") purpose = percent_decode(value);
  });
  const std::string key = list_key(owner);
  const auto all = [&](store::StateStore& s) { return s.range(key, "", 1'000'000, false); };
  auto items = co_await state_->run(all);
  if (!items) co_return co_await send_error_value(responder, items.error());
  const int64_t now_s = store::system_now_ms() / 1000;
  std::vector<store::ListItem> kept;
  std::vector<std::string> expired;
  for (store::ListItem& item : items->items) {
    auto f = parse_record(item.value);
    if (f) {
      const json::value* at = f->if_contains("expires_at");
      if (at != nullptr && at->is_int64() && at->as_int64() <= now_s) {
        expired.push_back(item.id);  // its bytes and record are gone (or about to be)
        continue;
      }
    }
    if (!purpose.empty() && (!f || str_of(*f, "purpose") != purpose)) continue;
    kept.push_back(std::move(item));
  }
  if (!expired.empty()) {
    const auto prune = [&](store::StateStore& s) -> Result<void> {
      for (const std::string& id : expired) (void)s.erase_item(key, id);
      return {};
    };
    (void)co_await state_->run(prune);
  }
  auto page = page_of(kept, *query);
  if (!page) co_return co_await send_error_value(responder, page.error());
  const std::string out = list_body(*page);
  co_await responder.send(200, "application/json", out);
}

}  // namespace sluice::api
