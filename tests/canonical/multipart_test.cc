// multipart/form-data (src/http/parse/multipart.h): what the official SDKs send for a file upload,
// quoting, RFC 5987 filenames, and malformed bodies refused with a clear error.
#include "http/parse/multipart.h"

#include <gtest/gtest.h>

namespace sluice::http {
namespace {

TEST(Multipart, Boundary) {
  EXPECT_EQ(*form_boundary("multipart/form-data; boundary=----abc123"), "----abc123");
  EXPECT_EQ(*form_boundary("Multipart/Form-Data;boundary=\"a b;c\""), "a b;c");
  EXPECT_FALSE(form_boundary("application/json"));
  EXPECT_FALSE(form_boundary("multipart/form-data"));
  EXPECT_FALSE(form_boundary("multipart/form-data; boundary="));
  EXPECT_FALSE(form_boundary("multipart/form-data; boundary=" + std::string(71, 'x')));
  EXPECT_NE(form_boundary("text/plain").error().message.find("multipart/form-data"), std::string::npos);
}

TEST(Multipart, AnSdkUpload) {
  // As the openai Node SDK (undici FormData) writes it.
  const std::string body =
      "------formdata-undici-0123\r\n"
      "Content-Disposition: form-data; name=\"purpose\"\r\n\r\n"
      "batch\r\n"
      "------formdata-undici-0123\r\n"
      "Content-Disposition: form-data; name=\"file\"; filename=\"input.jsonl\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\n"
      "{\"custom_id\":\"a\"}\r\n{\"custom_id\":\"b\"}\n"
      "\r\n------formdata-undici-0123--\r\n";
  auto parts = parse_form(body, "----formdata-undici-0123");
  ASSERT_TRUE(parts) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].name, "purpose");
  EXPECT_EQ((*parts)[0].data, "batch");
  EXPECT_FALSE((*parts)[0].has_filename);
  EXPECT_EQ((*parts)[1].name, "file");
  EXPECT_TRUE((*parts)[1].has_filename);
  EXPECT_EQ((*parts)[1].filename, "input.jsonl");
  EXPECT_EQ((*parts)[1].content_type, "application/octet-stream");
  EXPECT_EQ((*parts)[1].data, "{\"custom_id\":\"a\"}\r\n{\"custom_id\":\"b\"}\n");  // bytes kept as sent
}

TEST(Multipart, PreambleQuotingAndExtendedFilenames) {
  const std::string body =
      "ignored preamble\r\n--b\r\n"
      "content-disposition: form-data; name=\"a\\\"b\"; filename=\"x.txt\"; filename*=UTF-8''na%C3%AFve.txt\r\n\r\n"
      "--b is not a delimiter here\r\n--b--\r\nepilogue";
  auto parts = parse_form(body, "b");
  ASSERT_TRUE(parts) << parts.error().message;
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].name, "a\"b");
  EXPECT_EQ((*parts)[0].filename, "na\xC3\xAFve.txt");
  EXPECT_EQ((*parts)[0].data, "--b is not a delimiter here");
}

TEST(Multipart, MalformedBodiesAreRefused) {
  for (const char* body : {
           "",                                                        // nothing
           "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",  // unterminated
           "--b\r\nContent-Disposition: form-data; name=\"a\"\r\nno blank line",
           "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--",      // no disposition
           "--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--b--",
           "--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--",  // no name
           "--bX\r\n",                                                 // junk after the delimiter
       }) {
    auto parts = parse_form(body, "b");
    EXPECT_FALSE(parts) << body;
    if (!parts) {
      EXPECT_EQ(parts.error().code, Errc::bad_request);
    }
  }
  std::string many;
  for (int i = 0; i < 5; ++i) many += "--b\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\nx\r\n";
  many += "--b--";
  EXPECT_TRUE(parse_form(many, "b", 5));
  auto refused = parse_form(many, "b", 4);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("more than 4 parts"), std::string::npos);
}

}  // namespace
}  // namespace sluice::http
