// Tests for the operations listener keys of the YAML config loader: admin.listen (address, off,
// the clash with server.listen) and admin.on_public_listener.
#include <gtest/gtest.h>

#include <string>

#include "config/config.h"
#include "config_test_support.h"

namespace sluice::config {
namespace {

std::shared_ptr<const Config> with_admin(const std::string& admin) {
  return parse_config("admin: " + admin + "\n" + kDemoRoute);
}

TEST(ConfigAdminListen, DefaultsToLoopback9090OffThePublicListener) {
  const auto config = parse_config(kDemoRoute);
  EXPECT_TRUE(config->admin.listen_enabled);
  EXPECT_EQ(config->admin.listen_host, "127.0.0.1");
  EXPECT_EQ(config->admin.listen_port, 9090);
  EXPECT_FALSE(config->admin.on_public_listener);
}

TEST(ConfigAdminListen, ReadsHostAndPortLikeServerListen) {
  auto config = with_admin("{listen: \"0.0.0.0:9100\"}");
  EXPECT_TRUE(config->admin.listen_enabled);
  EXPECT_EQ(config->admin.listen_host, "0.0.0.0");
  EXPECT_EQ(config->admin.listen_port, 9100);
  config = with_admin("{listen: \"[::1]:0\"}");
  EXPECT_EQ(config->admin.listen_host, "::1");
  EXPECT_EQ(config->admin.listen_port, 0);
}

TEST(ConfigAdminListen, OffEmptyOrNullDisablesIt) {
  for (const char* value : {"off", "\"\"", "~", "\"off\""}) {
    SCOPED_TRACE(value);
    const auto config = with_admin(std::string("{listen: ") + value + "}");
    EXPECT_FALSE(config->admin.listen_enabled);
  }
}

TEST(ConfigAdminListen, RejectsWhatIsNotAnAddress) {
  EXPECT_EQ(error_of("admin: {listen: \"9090\"}\n" + std::string(kDemoRoute)),
            "admin.listen: expected host:port");
  EXPECT_EQ(error_of("admin: {listen: \"127.0.0.1:99999\"}\n" + std::string(kDemoRoute)),
            "admin.listen: port must be 0..65535");
  EXPECT_EQ(error_of("admin: {listen: [a]}\n" + std::string(kDemoRoute)),
            "admin.listen: expected a string, got a sequence");
}

TEST(ConfigAdminListen, MustDifferFromServerListen) {
  const std::string message = error_of(
      "server: {listen: \"127.0.0.1:9090\"}\n" + std::string(kDemoRoute));  // default admin
  EXPECT_EQ(message.rfind("admin.listen: must differ from server.listen", 0), 0u) << message;
  EXPECT_NE(error_of("server: {listen: \"127.0.0.1:8080\"}\n"
                     "admin: {listen: \"127.0.0.1:8080\"}\n" + std::string(kDemoRoute)),
            "");
  // Ephemeral ports never clash; a disabled listener neither.
  EXPECT_EQ(error_of("server: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\"}\n" +
                     std::string(kDemoRoute)),
            "");
  EXPECT_EQ(error_of("server: {listen: \"127.0.0.1:9090\"}\nadmin: {listen: off}\n" +
                     std::string(kDemoRoute)),
            "");
}

TEST(ConfigAdminListen, OnPublicListenerIsABoolean) {
  EXPECT_TRUE(with_admin("{on_public_listener: true}")->admin.on_public_listener);
  EXPECT_FALSE(with_admin("{on_public_listener: false}")->admin.on_public_listener);
  EXPECT_EQ(error_of("admin: {on_public_listener: yes}\n" + std::string(kDemoRoute)).rfind(
                "admin.on_public_listener: ", 0),
            0u);
}

}  // namespace
}  // namespace sluice::config
