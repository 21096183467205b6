// Session resume against a real Mosquitto: QoS 1/2 publishes left unacknowledged by a broken
// connection (or a device reboot, with the file store) are resent, every message arrives, and no
// QoS 2 message arrives twice.
#include <signal.h>
#include <sys/socket.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "broker_client.hpp"
#include "edgekit/mqtt/file_store.hpp"
#include "edgekit/testing/mosquitto.hpp"

namespace edgekit::mqtt::integration {
namespace {

using edgekit::testing::MosquittoFixture;

/// Resets the TCP connection (RST, no FIN): the broker may lose what it had not read yet.
void abort_connection(transport::TcpTransport& tcp) {
  linger l{1, 0};
  ::setsockopt(tcp.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  tcp.close();
}

struct Outbox {
  std::vector<std::string> topics;
  std::vector<std::string> payloads;
  std::vector<QoS> qos;
  void add(QoS q, int i) {
    topics.push_back(q == QoS::AtLeastOnce ? "it/resume/q1" : "it/resume/q2");
    payloads.push_back(std::string(q == QoS::AtLeastOnce ? "q1-" : "q2-") + std::to_string(i));
    qos.push_back(q);
  }
  Publish message(std::size_t i) const {
    Publish m;
    m.topic = topics[i];
    m.payload = as_bytes(payloads[i]);
    m.qos = qos[i];
    return m;
  }
};

/// Checks the subscriber's view: every message at least once, QoS 2 exactly once, and per-QoS
/// order of first arrival kept. Returns the number of QoS 1 duplicates seen.
std::size_t check_delivery(const Outbox& out, const std::vector<Received>& got) {
  std::map<std::string, int> seen;
  for (const auto& r : got) ++seen[r.payload];
  std::size_t dup1 = 0;
  for (std::size_t i = 0; i < out.payloads.size(); ++i) {
    const int n = seen[out.payloads[i]];
    EXPECT_GE(n, 1) << out.payloads[i] << " never arrived";
    if (out.qos[i] == QoS::ExactlyOnce) {
      EXPECT_EQ(n, 1) << out.payloads[i] << " arrived " << n << " times";
    }
    if (out.qos[i] == QoS::AtLeastOnce && n > 1) dup1 += static_cast<std::size_t>(n - 1);
  }
  return dup1;
}

class SessionResume : public MosquittoFixture, public ::testing::WithParamInterface<Version> {};

TEST_P(SessionResume, UnackedPublishesAreResentAndQoS2NeverArrivesTwice) {
  const Version v = GetParam();
  BrokerClient sub(broker().port()), pub(broker().port());
  ASSERT_TRUE(sub.connect(v, "resume-sub"));
  ASSERT_EQ(sub.subscribe("it/resume/#", QoS::ExactlyOnce), ReasonCode::GrantedQoS2);
  auto first = pub.connect(v, "resume-pub", /*clean=*/false, /*expiry=*/300);
  ASSERT_TRUE(first);

  Outbox out;
  for (int i = 0; i < 20; ++i) {
    out.add(QoS::AtLeastOnce, i);
    out.add(QoS::ExactlyOnce, i);
  }
  // Half go through normally; then the broker freezes and the other 20 stay unacknowledged
  // (20 is Mosquitto's Receive Maximum, which an MQTT 5 client must respect).
  constexpr std::size_t kAcked = 20;
  for (std::size_t i = 0; i < kAcked; ++i) {
    ASSERT_TRUE(pub.client().publish_and_wait(out.message(i), Duration{5000}));
  }
  ASSERT_EQ(::kill(broker().pid(), SIGSTOP), 0);
  for (std::size_t i = kAcked; i < out.payloads.size(); ++i) {
    auto r = pub.client().publish(out.message(i), Duration{2000});
    ASSERT_TRUE(r) << to_string(r.error());
  }
  EXPECT_EQ(pub.session().publishes_in_flight(), out.payloads.size() - kAcked);
  if (v == Version::V5) {
    // Flow control: one more would exceed the server's Receive Maximum [MQTT-4.9.0-2].
    EXPECT_EQ(pub.session().server_receive_maximum(), 20);
    Publish extra;
    extra.topic = "it/resume/extra";
    extra.payload = as_bytes("x");
    extra.qos = QoS::AtLeastOnce;
    auto r = pub.client().publish(extra, Duration{1000});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), Errc::ReceiveMaximumExceeded);
  }
  abort_connection(pub.tcp());
  EXPECT_FALSE(pub.client().process_loop(Duration{100}));  // the client notices the loss
  ASSERT_EQ(::kill(broker().pid(), SIGCONT), 0);

  auto again = pub.connect(v, "resume-pub", /*clean=*/false, /*expiry=*/300);
  ASSERT_TRUE(again) << to_string(again.error());
  EXPECT_TRUE(again->session_present);
  const Instant deadline = pub.clock().now() + Duration{10000};
  while (pub.completed.size() < out.payloads.size() && pub.clock().now() < deadline) {
    ASSERT_TRUE(pub.client().process_loop(Duration{50}));
  }
  EXPECT_EQ(pub.completed.size(), out.payloads.size());
  EXPECT_EQ(pub.session().publishes_in_flight(), 0u);
  EXPECT_TRUE(pub.lost.empty());

  sub.wait_for_messages(out.payloads.size(), Duration{10000});
  (void)sub.run_for(Duration{300});  // catch late duplicates
  const std::size_t dup1 = check_delivery(out, sub.received);
  std::printf("[ resume %s ] %zu messages, %zu received, %zu QoS 1 duplicates\n", name(v),
              out.payloads.size(), sub.received.size(), dup1);
}

TEST_P(SessionResume, CleanStartReportsEveryUnackedPublishAsLost) {
  const Version v = GetParam();
  BrokerClient pub(broker().port());
  ASSERT_TRUE(pub.connect(v, "lost-pub", /*clean=*/false, 300));
  ASSERT_EQ(::kill(broker().pid(), SIGSTOP), 0);
  Outbox out;
  for (int i = 0; i < 3; ++i) out.add(QoS::AtLeastOnce, i);
  for (std::size_t i = 0; i < 3; ++i) ASSERT_TRUE(pub.client().publish(out.message(i), Duration{2000}));
  abort_connection(pub.tcp());
  EXPECT_FALSE(pub.client().process_loop(Duration{100}));
  ASSERT_EQ(::kill(broker().pid(), SIGCONT), 0);
  auto r = pub.connect(v, "lost-pub", /*clean=*/true);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->session_present);
  EXPECT_EQ(pub.lost.size(), 3u);  // never silently dropped
}

std::string param_name(const ::testing::TestParamInfo<Version>& p) { return name(p.param); }
INSTANTIATE_TEST_SUITE_P(Mosquitto, SessionResume, ::testing::Values(Version::V311, Version::V5), param_name);

class RebootResume : public MosquittoFixture {};

TEST_F(RebootResume, FileStoreCarriesUnackedPublishesAcrossADeviceRestart) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(broker().directory()) / "device-session";
  BrokerClient sub(broker().port());
  ASSERT_TRUE(sub.connect(Version::V5, "reboot-sub"));
  ASSERT_EQ(sub.subscribe("it/resume/#", QoS::ExactlyOnce), ReasonCode::GrantedQoS2);

  Outbox out;
  for (int i = 0; i < 10; ++i) {
    out.add(QoS::AtLeastOnce, i);
    out.add(QoS::ExactlyOnce, i);
  }
  {
    std::vector<std::byte> load(64 * 1024);
    FileSessionStore store(load);
    ASSERT_TRUE(store.open(dir.string()));
    BrokerClient device(broker().port(), 64 * 1024, &store);
    ASSERT_TRUE(device.connect(Version::V5, "reboot-pub", false, 3600));
    ASSERT_EQ(::kill(broker().pid(), SIGSTOP), 0);
    for (std::size_t i = 0; i < out.payloads.size(); ++i) {
      ASSERT_TRUE(device.client().publish(out.message(i), Duration{2000}));
    }
    abort_connection(device.tcp());
    // The device dies here: client, session and store go away with their memory.
  }
  ASSERT_EQ(::kill(broker().pid(), SIGCONT), 0);

  std::vector<std::byte> load(64 * 1024);
  FileSessionStore store(load);
  ASSERT_TRUE(store.open(dir.string()));
  BrokerClient device(broker().port(), 64 * 1024, &store);
  auto restored = device.session().restore();
  ASSERT_TRUE(restored) << to_string(restored.error());
  EXPECT_EQ(restored->publishes, out.payloads.size());
  auto c = device.connect(Version::V5, "", false, 3600);  // client id comes from the store
  ASSERT_TRUE(c) << to_string(c.error());
  EXPECT_TRUE(c->session_present);
  const Instant deadline = device.clock().now() + Duration{10000};
  while (device.completed.size() < out.payloads.size() && device.clock().now() < deadline) {
    ASSERT_TRUE(device.client().process_loop(Duration{50}));
  }
  EXPECT_EQ(device.completed.size(), out.payloads.size());
  sub.wait_for_messages(out.payloads.size(), Duration{10000});
  (void)sub.run_for(Duration{300});
  const std::size_t dup1 = check_delivery(out, sub.received);
  std::printf("[ reboot ] %zu messages, %zu received, %zu QoS 1 duplicates\n", out.payloads.size(),
              sub.received.size(), dup1);
}

}  // namespace
}  // namespace edgekit::mqtt::integration
