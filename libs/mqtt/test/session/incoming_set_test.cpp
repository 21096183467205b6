// Inbound QoS 2 with `SessionStorage::incoming_qos2_set` (the host option): it can never fill,
// it still delivers each message once, and it survives a restore. Without it (fixed records)
// the 5th unreleased message here is SessionStateFull (V311IncomingQoS2OverflowIsSessionStateFull).
#include "session_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

class SessionIncomingSet : public SessionTest {
 protected:
  SessionStorage set_storage() {
    SessionStorage s = buf.storage();
    s.incoming_qos2 = {};
    s.incoming_qos2_set = &set;
    return s;
  }
  IncomingQoS2Set set;
};

Publish qos2(std::uint16_t id, bool dup = false) {
  return Publish{.topic = "in/t",
                 .payload = as_bytes("m"),
                 .qos = QoS::ExactlyOnce,
                 .dup = dup,
                 .packet_id = id,
                 .properties = {}};
}

TEST_F(SessionIncomingSet, EveryPacketIdCanAwaitPubRelAtOnceAndEachIsDeliveredOnce) {
  Session s{set_storage()};
  connect_session(s, Version::V311, true, {});
  for (std::uint32_t id = 1; id <= 65535; ++id) {
    Publish p = qos2(static_cast<std::uint16_t>(id));
    auto r = s.on_publish(p);
    ASSERT_TRUE(r) << "id " << id << ": " << to_string(r.error());
    ASSERT_TRUE(r->deliver) << id;
    ASSERT_EQ(r->reply->type, PacketType::PubRec);
  }
  // Resends of unreleased ones (DUP = 1) are acknowledged, not delivered again [MQTT-4.3.3-9].
  for (std::uint16_t id : {1, 4242, 65535}) {
    Publish p = qos2(id, true);
    auto r = s.on_publish(p);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->deliver) << id;
    EXPECT_EQ(r->reply->type, PacketType::PubRec);
  }
  // PUBREL releases each; a second PUBREL for the same id is unknown (plain PUBCOMP in 3.1.1).
  for (std::uint32_t id = 1; id <= 65535; ++id) {
    auto r = s.on_pubrel(PubRel{static_cast<std::uint16_t>(id), ReasonCode::Success, {}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->reply->type, PacketType::PubComp);
  }
  for (std::uint64_t w : set.words) ASSERT_EQ(w, 0U);
  // Released: the same id is a new message again.
  Publish again = qos2(4242);
  auto r = s.on_publish(again);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->deliver);
}

TEST_F(SessionIncomingSet, AHeldIdArrivingWithoutDupIsANewMessage) {
  Session s{set_storage()};
  connect_session(s, Version::V311, true, {});
  Publish first = qos2(9);
  ASSERT_TRUE(s.on_publish(first)->deliver);
  // The server reused id 9 without DUP: it is no resend [MQTT-3.3.1-1], so the server has
  // finished or forgotten the first flow. Suppressing it would lose a message silently.
  Publish reused = qos2(9, false);
  auto r = s.on_publish(reused);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->deliver);
  EXPECT_EQ(r->reply->type, PacketType::PubRec);
}

TEST_F(SessionIncomingSet, V5AnnouncesTheRequestedReceiveMaximumUpTo65535) {
  Session s{set_storage()};
  Connect c;
  c.version = Version::V5;
  c.client_id = "device-1";
  ASSERT_TRUE(s.prepare_connect(c));
  EXPECT_EQ(c.properties.receive_maximum(), std::optional<std::uint16_t>(65535));
}

TEST_F(SessionIncomingSet, ASessionStartsEmptyAndEndsEmpty) {
  set.words.fill(~std::uint64_t{0});  // whatever the memory held before
  Session s{set_storage()};
  for (std::uint64_t w : set.words) ASSERT_EQ(w, 0U);
  connect_session(s, Version::V311, false, {});
  Publish p = qos2(3);
  ASSERT_TRUE(s.on_publish(p));
  s.on_connection_lost();
  // The server lost the session: its ids are forgotten too.
  connect_session(s, Version::V311, false, ConnAck{});
  for (std::uint64_t w : set.words) ASSERT_EQ(w, 0U);
}

TEST_F(SessionIncomingSet, RestoresStoredIdsIntoTheSet) {
  std::array<std::byte, 4096> arena{};
  std::array<std::uint16_t, 4> ids{};
  MemorySessionStore store(arena, 512, ids);
  {
    Session s{set_storage(), &store};
    connect_session(s, Version::V311, false, {});
    for (std::uint16_t id : {11, 12}) {
      Publish p = qos2(id);
      ASSERT_TRUE(s.on_publish(p));
    }
  }
  IncomingQoS2Set after;
  SessionStorage st = buf.storage();
  st.incoming_qos2 = {};
  st.incoming_qos2_set = &after;
  Session restored{st, &store};
  auto sum = restored.restore();
  ASSERT_TRUE(sum) << to_string(sum.error());
  EXPECT_EQ(sum->incoming_qos2, 2U);
  ConnAck present;
  present.session_present = true;
  connect_session(restored, Version::V311, false, present);
  Publish dup = qos2(12, true);
  auto r = restored.on_publish(dup);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->deliver) << "delivered twice across a reboot";
  auto rel = restored.on_pubrel(PubRel{11, ReasonCode::Success, {}});
  ASSERT_TRUE(rel);
  EXPECT_EQ(store.incoming_qos2_count(), 1U);
}

}  // namespace
}  // namespace edgekit::mqtt::test
