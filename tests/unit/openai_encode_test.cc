// Unit tests for the OpenAI-compatible upstream request encoder: request line (plain and Azure
// style), Host, Content-Length, credentials, which client headers are forwarded, target headers,
// and the model-token splice that rewrites the model without re-serialising the body.
#include "providers/openai.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "http/parse/http_head.h"
#include "providers/request.h"

namespace sluice::providers {
namespace {

using http::ParseStatus;
using http::RequestHead;

// Everything one encode needs, kept alive together (heads and parsed requests hold views).
struct Fixture {
  std::string raw_head;
  std::unique_ptr<RequestHead> client = std::make_unique<RequestHead>();
  std::unique_ptr<char[]> body_buf;  // body + 64 bytes of padding
  ParsedRequest parsed;
  EncodedRequest encoded;
  std::unique_ptr<RequestHead> upstream = std::make_unique<RequestHead>();
};

config::TargetConfig plain_target(std::string host = "api.example.com", uint16_t port = 443,
                                  bool tls = true, std::string base_path = "/v1") {
  config::TargetConfig t;
  t.provider = config::ProviderKind::openai;
  t.tls = tls;
  t.host = std::move(host);
  t.port = port;
  t.base_path = std::move(base_path);
  return t;
}

config::TargetConfig azure_target() {
  config::TargetConfig t = plain_target("res.openai.azure.com", 443, true, "");
  t.api_style = config::ApiStyle::azure;
  t.api_version = "2024-02-01";
  return t;
}

// Parses a client request (head lines without the request line / final CRLF) and body, encodes
// it for `target`, and parses the encoded head back. Fails the test on any parse error.
void encode(Fixture& f, const config::TargetConfig& target, std::string_view client_headers,
            std::string_view body = R"({"model":"gpt-4o","messages":[{"role":"user"}]})",
            Operation op = Operation::chat, std::string_view request_id = "req-123") {
  f.raw_head = "POST /v1/chat/completions HTTP/1.1\r\n";
  // HTTP/1.1 requires one Host; the client's is replaced by the target's anyway.
  if (client_headers.find("Host:") == std::string_view::npos) f.raw_head += "Host: gw\r\n";
  f.raw_head += client_headers;
  f.raw_head += "\r\n";
  ASSERT_EQ(http::parse_request_head(f.raw_head, *f.client), ParseStatus::complete)
      << (f.client->error ? f.client->error : "") << "\n" << f.raw_head;
  f.body_buf.reset(new char[body.size() + 64]);
  std::memcpy(f.body_buf.get(), body.data(), body.size());
  std::memset(f.body_buf.get() + body.size(), ' ', 64);
  ASSERT_TRUE(parse_request(op, std::string_view(f.body_buf.get(), body.size()), f.parsed));
  encode_openai_request(f.parsed, target, *f.client, request_id, f.encoded);
  ASSERT_EQ(http::parse_request_head(f.encoded.head, *f.upstream), ParseStatus::complete)
      << (f.upstream->error ? f.upstream->error : "") << "\n" << f.encoded.head;
  ASSERT_EQ(f.upstream->head_size, f.encoded.head.size()) << f.encoded.head;
}

// All values of the headers named `name` (case-insensitive) in the encoded head.
std::vector<std::string> values(const Fixture& f, std::string_view name) {
  std::vector<std::string> out;
  for (size_t i = 0; i < f.upstream->header_count; ++i) {
    if (http::iequals(f.upstream->headers[i].name, name)) {
      out.emplace_back(f.upstream->headers[i].value);
    }
  }
  return out;
}

std::string body_of(const EncodedRequest& e) {
  return std::string(e.body_prefix) + e.model_token + std::string(e.body_suffix);
}

// ---- Request line ------------------------------------------------------------------------------

TEST(OpenaiEncode, JoinsBasePathAndOperationPath) {
  Fixture f;
  encode(f, plain_target(), "Host: gw\r\n");
  EXPECT_EQ(f.upstream->method, "POST");
  EXPECT_EQ(f.upstream->target, "/v1/chat/completions");
  EXPECT_EQ(f.upstream->version_minor, 1);
  EXPECT_EQ(f.encoded.head.rfind("POST /v1/chat/completions HTTP/1.1\r\n", 0), 0u);
}

TEST(OpenaiEncode, UsesEachOperationsPath) {
  Fixture f;
  encode(f, plain_target("h", 443, true, "/openai/v1"), "",
         R"({"model":"m","prompt":"x"})", Operation::completions);
  EXPECT_EQ(f.upstream->target, "/openai/v1/completions");
  Fixture g;
  encode(g, plain_target("h", 443, true, ""), "", R"({"model":"m","input":"x"})",
         Operation::embeddings);
  EXPECT_EQ(g.upstream->target, "/embeddings");
}

TEST(OpenaiEncode, BuildsAzureDeploymentPathFromTheTargetModel) {
  config::TargetConfig t = azure_target();
  t.model = "my-deployment";
  Fixture f;
  encode(f, t, "");
  EXPECT_EQ(f.upstream->target,
            "/openai/deployments/my-deployment/chat/completions?api-version=2024-02-01");
  EXPECT_EQ(f.upstream->path, "/openai/deployments/my-deployment/chat/completions");
  EXPECT_EQ(f.upstream->query, "api-version=2024-02-01");
}

TEST(OpenaiEncode, BuildsAzureDeploymentPathFromTheClientModelWhenTheTargetHasNone) {
  config::TargetConfig t = azure_target();
  t.base_path = "/prefix";
  Fixture f;
  encode(f, t, "", R"({"model":"gpt-4o","input":"x"})", Operation::embeddings);
  EXPECT_EQ(f.upstream->target,
            "/prefix/openai/deployments/gpt-4o/embeddings?api-version=2024-02-01");
}

// BUG (reported, not fixed): with an Azure target without `model` behind a glob route, the
// client's model name goes into the request line unescaped, so "\r\n" in it (sent as the JSON
// escape \r\n) splits the upstream request. Enable once the deployment name is validated or
// percent-encoded.
TEST(OpenaiEncode, AzureClientModelCannotInjectIntoTheRequestLine) {
  Fixture f;
  encode(f, azure_target(), "",
         R"({"model":"gpt-4 HTTP/1.1\r\nX-Injected: 1\r\nHost: evil\r\n\r\nGET /x",)"
         R"("messages":[{"role":"user"}]})");
  EXPECT_TRUE(values(f, "x-injected").empty()) << f.encoded.head;
  EXPECT_EQ(f.encoded.head.find("\r\n\r\n"), f.encoded.head.size() - 4) << f.encoded.head;
}

// ---- Host --------------------------------------------------------------------------------------

TEST(OpenaiEncode, SendsHostWithoutPortWhenItIsTheSchemeDefault) {
  Fixture https;
  encode(https, plain_target("api.example.com", 443, true), "Host: gateway.local:8080\r\n");
  EXPECT_EQ(values(https, "host"), std::vector<std::string>{"api.example.com"});
  Fixture http;
  encode(http, plain_target("api.example.com", 80, false), "");
  EXPECT_EQ(values(http, "host"), std::vector<std::string>{"api.example.com"});
}

TEST(OpenaiEncode, SendsHostWithPortWhenItIsNotTheSchemeDefault) {
  Fixture a;
  encode(a, plain_target("localhost", 8000, false), "");
  EXPECT_EQ(values(a, "host"), std::vector<std::string>{"localhost:8000"});
  Fixture b;
  encode(b, plain_target("api.example.com", 80, true), "");  // https on port 80
  EXPECT_EQ(values(b, "host"), std::vector<std::string>{"api.example.com:80"});
  Fixture c;
  encode(c, plain_target("api.example.com", 443, false), "");  // http on port 443
  EXPECT_EQ(values(c, "host"), std::vector<std::string>{"api.example.com:443"});
}

TEST(OpenaiEncode, BracketsIpv6HostLiterals) {
  Fixture f;
  encode(f, plain_target("::1", 8080, false), "");
  EXPECT_EQ(values(f, "host"), std::vector<std::string>{"[::1]:8080"});
  Fixture g;
  encode(g, plain_target("2001:db8::1", 443, true), "");
  EXPECT_EQ(values(g, "host"), std::vector<std::string>{"[2001:db8::1]"});
}

TEST(OpenaiEncode, TakesHostPortAndPathFromAParsedConfig) {
  auto cfg = config::parse_config(
      "routes:\n"
      "  - model: m\n"
      "    targets:\n"
      "      - provider: openai\n"
      "        base_url: http://127.0.0.1:11434/v1/\n");
  Fixture f;
  encode(f, cfg->routes[0].targets[0], "", R"({"model":"m","messages":[{"role":"user"}]})");
  EXPECT_EQ(f.upstream->target, "/v1/chat/completions");
  EXPECT_EQ(values(f, "host"), std::vector<std::string>{"127.0.0.1:11434"});
  EXPECT_TRUE(values(f, "authorization").empty());
}

// ---- Credentials -------------------------------------------------------------------------------

TEST(OpenaiEncode, SendsBearerAuthorizationWhenTheTargetHasAKey) {
  config::TargetConfig t = plain_target();
  t.api_key = "sk-target";
  Fixture f;
  encode(f, t, "Authorization: Bearer sk-client\r\n");
  EXPECT_EQ(values(f, "authorization"), std::vector<std::string>{"Bearer sk-target"});
  EXPECT_TRUE(values(f, "api-key").empty());
}

TEST(OpenaiEncode, SendsNoAuthorizationWhenTheTargetHasNoKey) {
  Fixture f;
  encode(f, plain_target(), "Authorization: Bearer sk-client\r\nx-api-key: k\r\napi-key: k\r\n");
  EXPECT_TRUE(values(f, "authorization").empty());
  EXPECT_TRUE(values(f, "x-api-key").empty());
  EXPECT_TRUE(values(f, "api-key").empty());
  EXPECT_EQ(f.encoded.head.find("sk-client"), std::string::npos);
}

TEST(OpenaiEncode, SendsAzureApiKeyHeaderInsteadOfAuthorization) {
  config::TargetConfig t = azure_target();
  t.model = "dep";
  t.api_key = "azure-key";
  Fixture f;
  encode(f, t, "api-key: client-key\r\nAuthorization: Bearer sk-client\r\n");
  EXPECT_EQ(values(f, "api-key"), std::vector<std::string>{"azure-key"});
  EXPECT_TRUE(values(f, "authorization").empty());
}

// ---- Forwarded headers -------------------------------------------------------------------------

TEST(OpenaiEncode, DropsCredentialsHopByHopFramingAndGatewayHeaders) {
  Fixture f;
  encode(f, plain_target(),
         "Host: gateway.local\r\n"
         "Authorization: Bearer sk-client\r\n"
         "X-Api-Key: k1\r\n"
         "api-key: k2\r\n"
         "Cookie: session=1\r\n"
         "Content-Length: 33\r\n"
         "Connection: keep-alive, X-Hop-Custom\r\n"
         "Keep-Alive: timeout=5\r\n"
         "X-Hop-Custom: drop me\r\n"
         "Accept-Encoding: gzip, br\r\n"
         "TE: trailers\r\n"
         "Upgrade: h2c\r\n"
         "Proxy-Authorization: Basic x\r\n"
         "Expect: 100-continue\r\n"
         "x-sluice-debug: 1\r\n"
         "X-SLUICE-Route: other\r\n");
  for (std::string_view name :
       {"authorization", "x-api-key", "api-key", "cookie", "connection", "keep-alive",
        "x-hop-custom", "accept-encoding", "te", "upgrade", "proxy-authorization", "expect",
        "x-sluice-debug", "x-sluice-route"}) {
    EXPECT_TRUE(values(f, name).empty()) << name << "\n" << f.encoded.head;
  }
  EXPECT_EQ(values(f, "host"), std::vector<std::string>{"api.example.com"});
  EXPECT_EQ(values(f, "content-length").size(), 1u);
}

TEST(OpenaiEncode, DropsTransferEncoding) {
  Fixture f;
  encode(f, plain_target(), "Transfer-Encoding: chunked\r\n");
  EXPECT_TRUE(values(f, "transfer-encoding").empty());
  EXPECT_EQ(values(f, "content-length").size(), 1u);
}

TEST(OpenaiEncode, ForwardsOnlyAllowedClientHeadersVerbatim) {
  Fixture f;
  encode(f, plain_target(),
         "User-Agent: OpenAI/Python 1.40.0\r\n"
         "x-mock-tokens: 12\r\n"
         "OpenAI-Organization: org-1\r\n"
         "Content-Type: application/json; charset=utf-8\r\n"
         "Accept: text/event-stream\r\n"
         "X-Stainless-Lang: python\r\n");
  EXPECT_EQ(values(f, "user-agent"), std::vector<std::string>{"OpenAI/Python 1.40.0"});
  EXPECT_EQ(values(f, "content-type"),
            std::vector<std::string>{"application/json; charset=utf-8"});
  EXPECT_EQ(values(f, "accept"), std::vector<std::string>{"text/event-stream"});
  // Not on the allowlist and not listed by the target: they stay at the gateway.
  EXPECT_TRUE(values(f, "x-mock-tokens").empty()) << f.encoded.head;
  EXPECT_TRUE(values(f, "openai-organization").empty()) << f.encoded.head;
  EXPECT_TRUE(values(f, "x-stainless-lang").empty()) << f.encoded.head;
}

TEST(OpenaiEncode, ForwardsWhatTheTargetLists) {
  config::TargetConfig t = plain_target();
  t.forward_headers = {"x-mock-*", "openai-organization"};
  Fixture f;
  encode(f, t, "x-mock-tokens: 12\r\nOpenAI-Organization: org-1\r\nOpenAI-Project: p\r\n");
  EXPECT_EQ(values(f, "x-mock-tokens"), std::vector<std::string>{"12"});
  EXPECT_NE(f.encoded.head.find("\r\nOpenAI-Organization: org-1\r\n"), std::string::npos);
  EXPECT_TRUE(values(f, "openai-project").empty());
}

TEST(OpenaiEncode, AddsJsonContentTypeWhenTheClientSentNone) {
  Fixture f;
  encode(f, plain_target(), "");
  EXPECT_EQ(values(f, "content-type"), std::vector<std::string>{"application/json"});
}

TEST(OpenaiEncode, ReplacesTheClientRequestIdWithTheResolvedOne) {
  Fixture f;
  encode(f, plain_target(), "X-Request-Id: client-id\r\n",
         R"({"model":"m","messages":[{"role":"user"}]})", Operation::chat, "resolved-id");
  EXPECT_EQ(values(f, "x-request-id"), std::vector<std::string>{"resolved-id"});
  Fixture g;
  encode(g, plain_target(), "", R"({"model":"m","messages":[{"role":"user"}]})", Operation::chat,
         "generated");
  EXPECT_EQ(values(g, "x-request-id"), std::vector<std::string>{"generated"});
}

TEST(OpenaiEncode, AddsTargetHeaders) {
  config::TargetConfig t = plain_target();
  t.headers = {{"OpenAI-Project", "proj-1"}, {"X-Extra", "yes"}};
  Fixture f;
  encode(f, t, "");
  EXPECT_EQ(values(f, "openai-project"), std::vector<std::string>{"proj-1"});
  EXPECT_EQ(values(f, "x-extra"), std::vector<std::string>{"yes"});
}

TEST(OpenaiEncode, LetsTargetHeadersWinOverClientHeadersOfTheSameName) {
  config::TargetConfig t = plain_target();
  t.headers = {{"OpenAI-Organization", "org-target"}};
  t.forward_headers = {"openai-organization"};
  Fixture same_case;
  encode(same_case, t, "OpenAI-Organization: org-client\r\n");
  EXPECT_EQ(values(same_case, "openai-organization"), std::vector<std::string>{"org-target"});
  Fixture other_case;  // header names are case-insensitive
  encode(other_case, t, "openai-organization: org-client\r\n");
  EXPECT_EQ(values(other_case, "openai-organization"), std::vector<std::string>{"org-target"});
}

TEST(OpenaiEncode, SendsOneContentTypeWhenTheTargetSetsIt) {
  config::TargetConfig t = plain_target();
  t.headers = {{"Content-Type", "application/json; charset=utf-8"}};
  Fixture without;
  encode(without, t, "");
  EXPECT_EQ(values(without, "content-type"),
            std::vector<std::string>{"application/json; charset=utf-8"});
  Fixture with;
  encode(with, t, "content-type: text/plain\r\n");
  EXPECT_EQ(values(with, "content-type"),
            std::vector<std::string>{"application/json; charset=utf-8"});
}

TEST(OpenaiEncode, EndsTheHeadWithOneBlankLine) {
  Fixture f;
  encode(f, plain_target(), "User-Agent: x\r\n");
  ASSERT_GE(f.encoded.head.size(), 4u);
  EXPECT_EQ(f.encoded.head.substr(f.encoded.head.size() - 4), "\r\n\r\n");
  EXPECT_EQ(f.encoded.head.find("\r\n\r\n"), f.encoded.head.size() - 4);
}

// ---- Body and Content-Length -------------------------------------------------------------------

TEST(OpenaiEncode, ForwardsTheBodyUnchangedWithoutARewrite) {
  const std::string body =
      R"({"messages":[{"role":"user","content":"hi"}], "model" : "gpt\u002d4o" ,"n":1})";
  Fixture f;
  encode(f, plain_target(), "", body);
  EXPECT_EQ(f.encoded.model_token, R"("gpt\u002d4o")");
  EXPECT_EQ(body_of(f.encoded), body);
  EXPECT_EQ(f.encoded.body_size(), body.size());
  EXPECT_EQ(f.upstream->content_length, body.size());
  EXPECT_EQ(f.upstream->framing, http::BodyFraming::content_length);
}

TEST(OpenaiEncode, SplicesTheEscapedTargetModelInPlaceOfTheClientModel) {
  const std::string body = R"({"messages":[{"role":"user"}], "model" :  "alias"  ,"stream":true})";
  config::TargetConfig t = plain_target();
  t.model = "vendor/\"quoted\"\\model";
  Fixture f;
  encode(f, t, "", body);
  EXPECT_EQ(f.encoded.model_token, R"("vendor/\"quoted\"\\model")");
  const std::string expected =
      R"({"messages":[{"role":"user"}], "model" :  "vendor/\"quoted\"\\model"  ,"stream":true})";
  EXPECT_EQ(body_of(f.encoded), expected);
  EXPECT_EQ(f.encoded.body_size(), expected.size());
  EXPECT_EQ(f.upstream->content_length, expected.size());
  EXPECT_EQ(values(f, "content-length"), std::vector<std::string>{std::to_string(expected.size())});

  // The reassembled body parses to the target model with everything else intact.
  std::string again = body_of(f.encoded);
  again.reserve(again.size() + 64);
  ParsedRequest r;
  ASSERT_TRUE(parse_request(Operation::chat, std::string_view(again.data(), again.size()), r));
  EXPECT_EQ(r.model, t.model);
  EXPECT_TRUE(r.stream);
}

TEST(OpenaiEncode, BodyPiecesPointIntoTheClientBody) {
  Fixture f;
  config::TargetConfig t = plain_target();
  t.model = "x";
  encode(f, t, "", R"({"model":"gpt-4o","messages":[{"role":"user"}]})");
  EXPECT_EQ(f.encoded.body_prefix.data(), f.body_buf.get());
  EXPECT_EQ(f.encoded.body_prefix, R"({"model":)");
  EXPECT_EQ(f.encoded.body_suffix, R"(,"messages":[{"role":"user"}]})");
}

TEST(OpenaiEncode, ClearsAPreviousHeadWhenReused) {
  Fixture f;
  encode(f, plain_target(), "User-Agent: first\r\n");
  const std::string first = f.encoded.head;
  encode_openai_request(f.parsed, plain_target(), *f.client, "req-123", f.encoded);
  EXPECT_EQ(f.encoded.head, first);
}

// ---- is_forwarded_header -----------------------------------------------------------------------

TEST(ForwardedHeaders, DropsHopByHopFramingAndCredentialsInAnyCase) {
  const std::vector<std::string> everything{"*"};
  for (std::string_view name :
       {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding",
        "Upgrade", "Proxy-Authorization", "Proxy-Authenticate", "HOST", "Content-Length",
        "authorization", "X-API-KEY", "Api-Key", "cookie", "Expect", "HTTP2-Settings"}) {
    EXPECT_FALSE(is_forwarded_header(name, "")) << name;
    // Not even a target that forwards "*" passes credentials or framing upstream.
    EXPECT_FALSE(is_forwarded_header(name, "", everything)) << name;
  }
}

TEST(ForwardedHeaders, ForwardsOnlyWhatTheProviderNeedsByDefault) {
  for (std::string_view name :
       {"Content-Type", "accept", "User-Agent", "Idempotency-Key", "OpenAI-Beta"}) {
    EXPECT_TRUE(is_forwarded_header(name, "")) << name;
  }
  // Review §2.3: the client must not pick the billed organisation/project, nor spoof
  // forwarding headers or drive internal tooling through the gateway's key.
  for (std::string_view name :
       {"OpenAI-Organization", "OpenAI-Project", "Forwarded", "X-Forwarded-For",
        "X-Forwarded-Host", "traceparent", "x-mock-script", "x-sluice-anything", "cookie2",
        "Accept-Encoding"}) {
    EXPECT_FALSE(is_forwarded_header(name, "")) << name;
  }
}

TEST(ForwardedHeaders, TargetListForwardsNamesAndGlobsIgnoringCase) {
  const std::vector<std::string> list{"traceparent", "x-mock-*", "openai-organization"};
  EXPECT_TRUE(is_forwarded_header("TraceParent", "", list));
  EXPECT_TRUE(is_forwarded_header("X-Mock-Script", "", list));
  EXPECT_TRUE(is_forwarded_header("OpenAI-Organization", "", list));
  EXPECT_FALSE(is_forwarded_header("OpenAI-Project", "", list));
  EXPECT_FALSE(is_forwarded_header("x-mocks", "", list));
  EXPECT_FALSE(is_forwarded_header("X-Forwarded-For", "", list));
}

TEST(ForwardedHeaders, DropsHeadersNominatedByConnection) {
  const std::vector<std::string> list{"x-hop*"};
  EXPECT_FALSE(is_forwarded_header("X-Hop", "keep-alive, x-hop", list));
  EXPECT_FALSE(is_forwarded_header("x-hop", "X-Hop", list));
  EXPECT_TRUE(is_forwarded_header("x-hop2", "keep-alive, x-hop", list));
  EXPECT_FALSE(is_forwarded_header("User-Agent", "user-agent"));
}

}  // namespace
}  // namespace sluice::providers
