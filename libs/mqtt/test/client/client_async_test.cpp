// subscribe_async / unsubscribe_async: the packet id comes back at once, the SUBACK / UNSUBACK
// (or the request's loss with its connection) arrives as an event; and the blocking calls keep
// their behaviour next to them. Scripted broker, simulated time, both protocol versions.
#include <algorithm>

#include "client_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

class ClientAsyncTest : public ::testing::TestWithParam<Version>, public ClientTestBase {
 public:
  ClientAsyncTest() : ClientTestBase(GetParam()) {}

  std::vector<SeenEvent> of_type(EventType t) const {
    std::vector<SeenEvent> out;
    for (const auto& e : events) {
      if (e.type == t) out.push_back(e);
    }
    return out;
  }
};

std::string version_name(const ::testing::TestParamInfo<Version>& p) {
  return p.param == Version::V5 ? "V5" : "V311";
}

INSTANTIATE_TEST_SUITE_P(BothVersions, ClientAsyncTest,
                         ::testing::Values(Version::V311, Version::V5), version_name);

SubAck suback_for(const Packet& p, std::span<const ReasonCode> codes) {
  SubAck a;
  a.packet_id = std::get<Subscribe>(p).packet_id;
  a.reason_codes = codes;
  return a;
}

TEST_P(ClientAsyncTest, SubscribeAsyncReturnsTheIdAndReportsTheSubAckAsAnEvent) {
  connect_ok();
  static const std::array<ReasonCode, 2> codes{ReasonCode::GrantedQoS1,
                                               ReasonCode::UnspecifiedError};
  std::uint16_t seen_id = 0;
  broker.expect(PacketType::Subscribe).reply_with([&](const Packet& p) {
    seen_id = std::get<Subscribe>(p).packet_id;
    SubAck a = suback_for(p, codes);
    if (version == Version::V5) a.properties.set_reason_string("one refused");
    // A retained message right behind the SUBACK, in the same read.
    return std::vector<Packet>{a, make_publish("s/1", "retained", QoS::AtMostOnce)};
  });
  std::array<Subscription, 2> subs{};
  subs[0].filter = "s/+";
  subs[0].options.qos = QoS::AtLeastOnce;
  subs[1].filter = "forbidden/#";
  auto id = client.subscribe_async(subs, 1s);
  ASSERT_TRUE(id.has_value()) << to_string(id.error());
  EXPECT_NE(*id, 0);
  EXPECT_EQ(*id, seen_id);
  // Nothing is read by the call itself.
  EXPECT_EQ(count(EventType::SubscribeCompleted), 0u);
  ASSERT_TRUE(client.process_loop(1s).has_value());
  const auto done = of_type(EventType::SubscribeCompleted);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].packet_id, *id);
  EXPECT_EQ(done[0].error, Errc::Ok);
  EXPECT_EQ(done[0].reason_code, ReasonCode::UnspecifiedError);  // the first failing one
  EXPECT_EQ(done[0].reason_codes, std::vector<ReasonCode>(codes.begin(), codes.end()));
  EXPECT_TRUE(done[0].has_properties);
  EXPECT_EQ(done[0].reason_string, version == Version::V5 ? "one refused" : "");
  EXPECT_EQ(count(EventType::MessageReceived), 1u);
  // The session's record is free again.
  EXPECT_EQ(session.records_in_use(), 0u);
}

TEST_P(ClientAsyncTest, UnsubscribeAsyncReportsTheUnsubAckCodes) {
  connect_ok();
  broker.expect(PacketType::Unsubscribe).reply_with([&](const Packet& p) {
    UnsubAck a;
    a.packet_id = std::get<Unsubscribe>(p).packet_id;
    static const std::array<ReasonCode, 2> codes{ReasonCode::Success,
                                                 ReasonCode::NoSubscriptionExisted};
    if (version == Version::V5) a.reason_codes = codes;
    return std::vector<Packet>{a};
  });
  std::array<std::string_view, 2> filters{"a/#", "b"};
  auto id = client.unsubscribe_async(filters, 1s);
  ASSERT_TRUE(id.has_value()) << to_string(id.error());
  ASSERT_TRUE(client.process_loop(1s).has_value());
  const auto done = of_type(EventType::UnsubscribeCompleted);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].packet_id, *id);
  EXPECT_EQ(done[0].error, Errc::Ok);
  if (version == Version::V5) {
    EXPECT_EQ(done[0].reason_codes,
              (std::vector<ReasonCode>{ReasonCode::Success, ReasonCode::NoSubscriptionExisted}));
  } else {
    // A 3.1.1 UNSUBACK carries no codes.
    EXPECT_TRUE(done[0].reason_codes.empty());
    EXPECT_EQ(done[0].reason_code, ReasonCode::Success);
  }
  EXPECT_EQ(count(EventType::SubscribeCompleted), 0u);
}

// Several requests and a QoS 1 publish outstanding at once; the broker answers out of order: each
// ack reaches the event of its own id.
TEST_P(ClientAsyncTest, OutstandingRequestsAreMatchedByPacketId) {
  connect_ok();
  std::vector<Packet> held;
  broker.expect(PacketType::Subscribe).reply_with([&](const Packet& p) {
    static const std::array<ReasonCode, 1> c{ReasonCode::Success};
    held.push_back(suback_for(p, c));
    return std::vector<Packet>{};
  });
  broker.expect(PacketType::Unsubscribe).reply_with([&](const Packet& p) {
    UnsubAck a;
    a.packet_id = std::get<Unsubscribe>(p).packet_id;
    static const std::array<ReasonCode, 1> c{ReasonCode::Success};
    if (version == Version::V5) a.reason_codes = c;
    held.push_back(a);
    return std::vector<Packet>{};
  });
  broker.expect(PacketType::Subscribe).reply_with([&](const Packet& p) {
    static const std::array<ReasonCode, 1> c{ReasonCode::GrantedQoS2};
    held.push_back(suback_for(p, c));
    return std::vector<Packet>{};
  });
  broker.expect(PacketType::Publish).reply_with([&](const Packet& p) {
    // Everything answered now, newest first.
    std::vector<Packet> out{ack<PubAck>(std::get<Publish>(p).packet_id)};
    for (auto it = held.rbegin(); it != held.rend(); ++it) out.push_back(*it);
    return out;
  });
  std::array<Subscription, 1> s1{};
  s1[0].filter = "one";
  std::array<Subscription, 1> s2{};
  s2[0].filter = "two";
  s2[0].options.qos = QoS::ExactlyOnce;
  std::array<std::string_view, 1> u1{"old"};
  const auto a = client.subscribe_async(s1, 1s);
  const auto b = client.unsubscribe_async(u1, 1s);
  const auto c = client.subscribe_async(s2, 1s);
  ASSERT_TRUE(a && b && c);
  EXPECT_TRUE(*a != *b && *b != *c && *a != *c);
  const auto p = client.publish(make_publish("t", "x", QoS::AtLeastOnce), 1s);
  ASSERT_TRUE(p.has_value());
  ASSERT_TRUE(client.process_loop(1s).has_value());
  const auto subs = of_type(EventType::SubscribeCompleted);
  ASSERT_EQ(subs.size(), 2u);
  EXPECT_EQ(subs[0].packet_id, *c);  // answered first
  EXPECT_EQ(subs[0].reason_codes, std::vector<ReasonCode>{ReasonCode::GrantedQoS2});
  EXPECT_EQ(subs[1].packet_id, *a);
  EXPECT_EQ(subs[1].reason_codes, std::vector<ReasonCode>{ReasonCode::Success});
  const auto unsubs = of_type(EventType::UnsubscribeCompleted);
  ASSERT_EQ(unsubs.size(), 1u);
  EXPECT_EQ(unsubs[0].packet_id, *b);
  EXPECT_EQ(count(EventType::PublishCompleted), 1u);
  EXPECT_EQ(session.records_in_use(), 0u);
}

// The connection ends before the SUBACK: the request is reported (never resent) with
// NotConnected, after the ConnectionClosed event.
TEST_P(ClientAsyncTest, RequestPendingWhenTheLinkDropsIsReportedLost) {
  connect_ok();
  broker.expect(PacketType::Subscribe);
  broker.expect(PacketType::Unsubscribe).then_close();
  std::array<Subscription, 1> s{};
  s[0].filter = "a";
  std::array<std::string_view, 1> u{"b"};
  const auto a = client.subscribe_async(s, 1s);
  const auto b = client.unsubscribe_async(u, 1s);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(client.process_loop(1s).error(), Errc::TransportClosed);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, EventType::ConnectionClosed);
  EXPECT_EQ(events[1].type, EventType::SubscribeCompleted);
  EXPECT_EQ(events[1].packet_id, *a);
  EXPECT_EQ(events[1].error, Errc::NotConnected);
  EXPECT_TRUE(events[1].reason_codes.empty());
  EXPECT_FALSE(events[1].has_properties);
  EXPECT_EQ(events[2].type, EventType::UnsubscribeCompleted);
  EXPECT_EQ(events[2].packet_id, *b);
  EXPECT_EQ(events[2].error, Errc::NotConnected);
  EXPECT_EQ(session.records_in_use(), 0u);
}

TEST_P(ClientAsyncTest, RequestPendingAtDisconnectIsReportedLost) {
  connect_ok();
  broker.expect(PacketType::Subscribe);
  broker.expect(PacketType::Disconnect);
  std::array<Subscription, 1> s{};
  s[0].filter = "a";
  const auto a = client.subscribe_async(s, 1s);
  ASSERT_TRUE(a);
  ASSERT_TRUE(client.disconnect().has_value());
  const auto done = of_type(EventType::SubscribeCompleted);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].packet_id, *a);
  EXPECT_EQ(done[0].error, Errc::NotConnected);
}

TEST_P(ClientAsyncTest, AsyncCallErrorsRecordNothing) {
  std::array<Subscription, 1> s{};
  s[0].filter = "a";
  std::array<std::string_view, 1> u{"a"};
  EXPECT_EQ(client.subscribe_async(s, 1s).error(), Errc::NotConnected);
  EXPECT_EQ(client.unsubscribe_async(u, 1s).error(), Errc::NotConnected);
  connect_ok();
  (void)sent_packets();  // the CONNECT
  EXPECT_EQ(client.subscribe_async({}, 1s).error(), Errc::InvalidArgument);
  EXPECT_EQ(client.unsubscribe_async({}, 1s).error(), Errc::InvalidArgument);
  s[0].filter = "bad/#/filter";
  EXPECT_EQ(client.subscribe_async(s, 1s).error(), Errc::InvalidTopicFilter);
  // Larger than the 512-byte send buffer.
  const std::string big(600, 'f');
  s[0].filter = big;
  EXPECT_EQ(client.subscribe_async(s, 1s).error(), Errc::BufferTooSmall);
  u[0] = big;
  EXPECT_EQ(client.unsubscribe_async(u, 1s).error(), Errc::BufferTooSmall);
  EXPECT_EQ(session.records_in_use(), 0u);
  EXPECT_TRUE(client.connected());
  EXPECT_TRUE(sent_packets().empty());
}

TEST_P(ClientAsyncTest, NoFreeRecordIsSessionStateFullAndRecordsNothing) {
  connect_ok();
  broker.expect(PacketType::Subscribe).times(out_records.size());
  std::array<Subscription, 1> s{};
  s[0].filter = "a";
  for (std::size_t k = 0; k < out_records.size(); ++k) ASSERT_TRUE(client.subscribe_async(s, 1s));
  EXPECT_EQ(client.subscribe_async(s, 1s).error(), Errc::SessionStateFull);
  EXPECT_EQ(session.records_in_use(), out_records.size());
}

// Allowed inside the handler (nothing waits): a handler subscribes when a message arrives.
TEST_P(ClientAsyncTest, SubscribeAsyncIsAllowedInsideTheHandler) {
  connect_ok();
  std::optional<Result<std::uint16_t>> from_handler;
  on_event_hook = [&](Client& c, const Event& e) {
    if (e.type != EventType::MessageReceived || from_handler) return;
    static const std::array<Subscription, 1> s{Subscription{"more/#", {}}};
    from_handler = c.subscribe_async(s, 1s);
  };
  broker.expect(PacketType::Subscribe).reply_with([&](const Packet& p) {
    static const std::array<ReasonCode, 1> c{ReasonCode::Success};
    return std::vector<Packet>{suback_for(p, c)};
  });
  broker.send(make_publish("in", "x", QoS::AtMostOnce));
  ASSERT_TRUE(client.process_loop(1s).has_value());
  ASSERT_TRUE(from_handler.has_value());
  ASSERT_TRUE(from_handler->has_value()) << to_string(from_handler->error());
  ASSERT_TRUE(client.process_loop(1s).has_value());
  const auto done = of_type(EventType::SubscribeCompleted);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].packet_id, **from_handler);
}

// --- The blocking calls next to the async ones ---------------------------------------------------

// The awaited SUBACK fills the call's codes and is not an event; an async SUBACK arriving during
// the blocking call is.
TEST_P(ClientAsyncTest, BlockingSubscribeTakesItsOwnAckAndLeavesOthersAsEvents) {
  connect_ok();
  std::vector<Packet> held;
  broker.expect(PacketType::Subscribe).reply_with([&](const Packet& p) {
    static const std::array<ReasonCode, 1> c{ReasonCode::GrantedQoS1};
    held.push_back(suback_for(p, c));
    return std::vector<Packet>{};
  });
  broker.expect(PacketType::Subscribe).reply_with([&](const Packet& p) {
    static const std::array<ReasonCode, 1> c{ReasonCode::GrantedQoS2};
    held.push_back(suback_for(p, c));
    // The async one's SUBACK first, then the blocking call's.
    return std::vector<Packet>{held[0], held[1]};
  });
  std::array<Subscription, 1> s1{};
  s1[0].filter = "async";
  std::array<Subscription, 1> s2{};
  s2[0].filter = "blocking";
  const auto a = client.subscribe_async(s1, 1s);
  ASSERT_TRUE(a);
  std::array<ReasonCode, 1> codes{};
  ASSERT_TRUE(client.subscribe(s2, codes, 2s).has_value());
  EXPECT_EQ(codes[0], ReasonCode::GrantedQoS2);
  const auto done = of_type(EventType::SubscribeCompleted);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].packet_id, *a);
}

// As before: a blocking subscribe whose connection ends returns the error, and no event reports
// its request (only ConnectionClosed).
TEST_P(ClientAsyncTest, BlockingSubscribeLostWithTheLinkIsTheCallsErrorNotAnEvent) {
  connect_ok();
  broker.expect(PacketType::Subscribe).then_close();
  std::array<Subscription, 1> s{};
  s[0].filter = "a";
  std::array<ReasonCode, 1> codes{};
  EXPECT_EQ(client.subscribe(s, codes, 2s).error(), Errc::TransportClosed);
  EXPECT_EQ(count(EventType::SubscribeCompleted), 0u);
  EXPECT_EQ(count(EventType::ConnectionClosed), 1u);
  EXPECT_EQ(session.records_in_use(), 0u);
}

// A blocking subscribe that timed out: its late SUBACK is reported as an event (it used to be
// dropped silently).
TEST_P(ClientAsyncTest, LateSubAckOfATimedOutBlockingSubscribeIsAnEvent) {
  connect_ok();
  Packet sent{std::in_place_type<PingResp>};
  broker.expect(PacketType::Subscribe).reply_with([&](const Packet& p) {
    sent = p;
    return std::vector<Packet>{};
  });
  std::array<Subscription, 1> s{};
  s[0].filter = "slow";
  std::array<ReasonCode, 1> codes{};
  EXPECT_EQ(client.subscribe(s, codes, 1s).error(), Errc::Timeout);
  EXPECT_TRUE(client.connected());
  static const std::array<ReasonCode, 1> c{ReasonCode::Success};
  broker.send(suback_for(sent, c));
  ASSERT_TRUE(client.process_loop(1s).has_value());
  const auto done = of_type(EventType::SubscribeCompleted);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].packet_id, std::get<Subscribe>(sent).packet_id);
  EXPECT_EQ(done[0].reason_codes, std::vector<ReasonCode>{ReasonCode::Success});
}

}  // namespace
}  // namespace edgekit::mqtt::test
