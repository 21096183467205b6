// What a new user meets holding a Client in a class: a client made before its transport, and a
// client moved after construction.
#include <optional>
#include <vector>

#include "client_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

struct Device {
  // One member, no std::optional: the transport comes when the link is made.
  Device(const Clock& clock, Session& session, std::span<std::byte> rx, std::span<std::byte> tx)
      : client(clock, session, rx, tx) {}
  Client client;
};

class ClientApiTest : public ClientTestBase, public ::testing::TestWithParam<Version> {
 public:
  ClientApiTest() : ClientTestBase(GetParam()) {}
};

INSTANTIATE_TEST_SUITE_P(BothVersions, ClientApiTest, ::testing::Values(Version::V311, Version::V5),
                         [](const ::testing::TestParamInfo<Version>& p) {
                           return p.param == Version::V5 ? "V5" : "V311";
                         });

TEST_P(ClientApiTest, AClientMadeWithoutATransportConnectsOnceItHasOne) {
  std::vector<std::byte> rx2(512), tx2(512);
  Session other(SessionStorage{out_records, in_qos2, in_alias.storage(), out_alias.storage(),
                               client_id_chars});
  Device d(clock, other, rx2, tx2);
  auto r = d.client.connect(options(), 1s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::InvalidArgument);
  EXPECT_EQ(net.stats().write_calls(), 0u);
  ASSERT_TRUE(d.client.set_transport(spy).has_value());
  broker.expect(PacketType::Connect).reply_with(ConnAck{});
  ASSERT_TRUE(d.client.connect(options(), 1s).has_value());
  EXPECT_TRUE(d.client.connected());
}

TEST_P(ClientApiTest, AConnectedClientMovesWithItsStateAndItsHandlerSeesTheNewObject) {
  connect_ok();
  broker.expect(make_publish("m", "1", QoS::AtLeastOnce, 1)).reply_with(ack<PubAck>(1));
  ASSERT_TRUE(client.publish(make_publish("m", "1", QoS::AtLeastOnce), 1s).has_value());
  std::vector<Client> holders;
  holders.push_back(std::move(client));
  Client& moved = holders.front();
  EXPECT_TRUE(moved.connected());
  const Client* seen = nullptr;
  on_event_hook = [&](Client& c, const Event&) { seen = &c; };
  ASSERT_TRUE(moved.process_loop(1s).has_value());
  EXPECT_EQ(count(EventType::PublishCompleted), 1u);
  EXPECT_EQ(seen, &moved);
  EXPECT_TRUE(broker.verify());
}

}  // namespace
}  // namespace edgekit::mqtt::test
