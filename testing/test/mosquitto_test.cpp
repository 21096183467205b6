// The Mosquitto fixture against the real broker: hand-encoded MQTT 3.1.1 CONNECT bytes, so this
// test depends on nothing but the TCP transport.
#include "edgekit/testing/mosquitto.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "edgekit/transport/tcp.hpp"

namespace edgekit::testing {
namespace {

using transport::IoStatus;
using transport::TcpTransport;

std::vector<std::byte> raw(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}

// MQTT 3.1.1 CONNECT, clean session, keep-alive 60, client id "c1".
std::vector<std::byte> connect_packet() {
  return raw(
      {0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x02, 'c', '1'});
}

// The same with user name "u" and password `pw` (flags: user name, password, clean session).
std::vector<std::byte> connect_packet_with_login(const std::string& pw) {
  std::vector<std::byte> body =
      raw({0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xC2, 0x00, 0x3c, 0x00, 0x02, 'c', '1', 0x00, 0x01,
           'u', 0x00, static_cast<int>(pw.size())});
  for (char c : pw) body.push_back(static_cast<std::byte>(c));
  std::vector<std::byte> out = raw({0x10, static_cast<int>(body.size())});
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// Connects, sends `connect`, returns the 4 CONNACK bytes (empty on failure).
std::vector<std::byte> connack_for(const Mosquitto& broker, const std::vector<std::byte>& connect) {
  auto t = TcpTransport::connect(broker.host(), broker.port(), edgekit::Duration{2000});
  EXPECT_TRUE(t.has_value());
  if (!t) return {};
  auto s = t->send(connect);
  EXPECT_EQ(s.bytes, connect.size());
  std::vector<std::byte> got;
  std::array<std::byte, 16> buf{};
  for (int i = 0; i < 50 && got.size() < 4; ++i) {
    auto r = t->recv(buf);
    if (r.status == IoStatus::Ok) {
      got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r.bytes));
    } else if (r.status == IoStatus::WouldBlock) {
      (void)t->wait(transport::Interest::Read, 100);
    } else {
      break;
    }
  }
  return got;
}

bool process_exists(pid_t pid) {
  return pid > 0 && ::kill(pid, 0) == 0;
}

class MosquittoFixtureTest : public MosquittoFixture {};

TEST_F(MosquittoFixtureTest, AnswersARawConnectWithConnack) {
  EXPECT_NE(broker().port(), 0);
  EXPECT_EQ(connack_for(broker(), connect_packet()), raw({0x20, 0x02, 0x00, 0x00}));
  EXPECT_NE(broker().log().find("New client connected"), std::string::npos) << broker().log();
}

TEST(MosquittoProcess, RestartsOnTheSamePortAndKillLeavesNoProcess) {
  Mosquitto broker;
  ASSERT_TRUE(broker.start()) << broker.error() << "\n" << broker.log();
  const std::uint16_t port = broker.port();
  const pid_t first = broker.pid();
  ASSERT_TRUE(broker.restart()) << broker.error() << "\n" << broker.log();
  EXPECT_EQ(broker.port(), port);
  EXPECT_NE(broker.pid(), first);
  EXPECT_FALSE(process_exists(first));
  EXPECT_EQ(connack_for(broker, connect_packet()), raw({0x20, 0x02, 0x00, 0x00}));

  const pid_t second = broker.pid();
  broker.kill();
  EXPECT_FALSE(broker.running());
  EXPECT_FALSE(process_exists(second));
  auto refused = TcpTransport::connect("127.0.0.1", port, edgekit::Duration{1000});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, transport::TcpErrc::ConnectionRefused);
  // And it comes back after a crash.
  ASSERT_TRUE(broker.restart()) << broker.error();
  EXPECT_EQ(connack_for(broker, connect_packet()), raw({0x20, 0x02, 0x00, 0x00}));
}

TEST(MosquittoProcess, DestructorStopsTheBrokerAndRemovesItsDirectory) {
  pid_t pid = -1;
  std::string dir;
  {
    Mosquitto broker;
    ASSERT_TRUE(broker.start()) << broker.error();
    pid = broker.pid();
    dir = broker.directory();
    EXPECT_TRUE(process_exists(pid));
    EXPECT_TRUE(std::filesystem::exists(dir));
  }
  EXPECT_FALSE(process_exists(pid));
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(MosquittoProcess, PasswordFileRejectsWrongPasswordAndAcceptsRightOne) {
  MosquittoOptions o;
  o.allow_anonymous = false;
  o.users.push_back({"u", "secret"});
  Mosquitto broker(o);
  ASSERT_TRUE(broker.start()) << broker.error() << "\n" << broker.log();
  EXPECT_EQ(connack_for(broker, connect_packet_with_login("secret")),
            raw({0x20, 0x02, 0x00, 0x00}));
  auto bad = connack_for(broker, connect_packet_with_login("wrong"));
  ASSERT_EQ(bad.size(), 4u) << broker.log();
  // 3.1.1 return code 4 (bad user name or password) or 5 (not authorized).
  EXPECT_TRUE(bad[3] == std::byte{4} || bad[3] == std::byte{5}) << static_cast<int>(bad[3]);
  auto anonymous = connack_for(broker, connect_packet());
  ASSERT_EQ(anonymous.size(), 4u);
  EXPECT_NE(anonymous[3], std::byte{0});
}

TEST(MosquittoProcess, PersistenceAndExtraLinesReachTheConfig) {
  MosquittoOptions o;
  o.persistence = true;
  o.extra_lines.push_back("max_keepalive 30");
  Mosquitto broker(o);
  ASSERT_TRUE(broker.start()) << broker.error() << "\n" << broker.log();
  std::ifstream in(broker.config_path());
  std::string config((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(config.find("persistence true"), std::string::npos);
  EXPECT_NE(config.find("max_keepalive 30"), std::string::npos);
  broker.stop();  // SIGTERM: mosquitto writes its persistence file on the way out
  EXPECT_TRUE(std::filesystem::exists(broker.directory() + "/data/mosquitto.db")) << broker.log();
}

TEST(MosquittoProcess, FindsTheBinary) {
  EXPECT_FALSE(Mosquitto::find_binary().empty());
}

}  // namespace
}  // namespace edgekit::testing
