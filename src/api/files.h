// The OpenAI Files API on top of the state store (store/state_store.h), for the Batch API's
// input and output files (and any client that keeps files with its gateway):
//   POST   /v1/files                 multipart/form-data: purpose, file (and optionally
//                                    expires_after[anchor]=created_at, expires_after[seconds])
//   GET    /v1/files                 ?purpose=&limit=&order=&after=
//   GET    /v1/files/{id}            the file object
//   GET    /v1/files/{id}/content    its bytes
//   DELETE /v1/files/{id}
// Store layout: record "file:<id>" = {"owner","file"}; record "file-data:<id>" = the bytes;
// list "files:<owner>" = the owner's file objects (for listing). Files are scoped to their owner
// (tenant, else key; "" without auth): another owner's ids answer 404 as unknown ones do. With
// the Redis state backend every instance sees every file.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "canonical/json.h"
#include "common/error.h"
#include "config/config.h"
#include "http/server.h"
#include "store/state_service.h"

namespace sluice::api {

namespace asio = boost::asio;

class FilesApi {
 public:
  FilesApi(std::shared_ptr<store::StateService> state, const config::StateConfig& config);

  /// Every /v1/files path (`api_path` without "/v1").
  asio::awaitable<void> serve(http::Request& request, http::Responder& responder,
                              std::string_view api_path, const std::string& owner);

  /// Stores `data` as a new file of `owner`; its file object. (`ttl` 0: the configured one.)
  asio::awaitable<Result<canonical::json::object>> create(const std::string& owner,
                                                          const std::string& filename,
                                                          const std::string& purpose,
                                                          const std::string& data,
                                                          std::chrono::seconds ttl);
  /// A file's bytes when it exists and belongs to `owner`; else not_found.
  asio::awaitable<Result<std::string>> content(const std::string& id, const std::string& owner);

 private:
  asio::awaitable<void> upload(http::Request& request, http::Responder& responder,
                               const std::string& owner);
  asio::awaitable<void> list(http::Request& request, http::Responder& responder,
                             const std::string& owner);
  /// The file object of `id` when it belongs to `owner`; else not_found ("No such File object").
  asio::awaitable<Result<canonical::json::object>> load(const std::string& id,
                                                         const std::string& owner);

  std::shared_ptr<store::StateService> state_;
  size_t max_bytes_;
  std::chrono::seconds ttl_;  // 0: files do not expire unless the upload asks
};

}  // namespace sluice::api
