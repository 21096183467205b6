// Persistence through MemorySessionStore: save, reboot (new Session over the same arena),
// restore, resume; corruption detected.
#include "session_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

struct StoreBuffers {
  alignas(8) std::array<std::byte, 8 * 256> arena{};
  std::array<std::uint16_t, 8> ids{};
};

class SessionPersistence : public SessionTest {
 protected:
  StoreBuffers sb;
};

TEST_F(SessionPersistence, PublishesAndQoS2StateSurviveAReboot) {
  std::uint16_t a = 0, b = 0, c = 0;
  {
    MemorySessionStore store(sb.arena, 256, sb.ids);
    SessionBuffers b1;
    Session s(b1.storage(), &store);
    connect_session(s, Version::V5, false, ConnAck{});
    Publish pa;
    pa.topic = "t/a";
    pa.payload = as_bytes("payload-A");
    pa.qos = QoS::AtLeastOnce;
    ASSERT_TRUE(s.begin_publish(pa, now));
    a = pa.packet_id;
    Publish pb = pa;
    pb.topic = "t/b";
    pb.qos = QoS::ExactlyOnce;
    pb.payload = as_bytes("payload-B");
    ASSERT_TRUE(s.begin_publish(pb, now));
    b = pb.packet_id;
    Publish pc = pb;
    pc.topic = "t/c";
    ASSERT_TRUE(s.begin_publish(pc, now));
    c = pc.packet_id;
    PubRec rec;
    rec.packet_id = b;
    ASSERT_TRUE(s.on_pubrec(rec, now));
    PubComp comp;  // nothing more for c
    rec.packet_id = c;
    ASSERT_TRUE(s.on_pubrec(rec, now));
    comp.packet_id = c;
    ASSERT_TRUE(s.on_pubcomp(comp, now));  // c is complete: removed from the store
    Publish in;
    in.topic = "in";
    in.qos = QoS::ExactlyOnce;
    in.packet_id = 300;
    auto r = s.on_publish(in, now);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->deliver);
    EXPECT_EQ(store.publish_count(), 2u);
    EXPECT_EQ(store.incoming_qos2_count(), 1u);
  }  // "reboot": the session is gone, the arena (retained RAM) is not

  MemorySessionStore store(sb.arena, 256, sb.ids, /*adopt_existing=*/true);
  SessionBuffers b2;
  Session s(b2.storage(), &store);
  auto restored = s.restore();
  ASSERT_TRUE(restored) << to_string(restored.error());
  EXPECT_TRUE(restored->meta);
  EXPECT_EQ(restored->publishes, 2u);
  EXPECT_EQ(restored->incoming_qos2, 1u);
  EXPECT_EQ(restored->corrupt, 0u);
  EXPECT_EQ(s.client_id(), "device-1");
  EXPECT_EQ(s.session_expiry_interval(), 3600u);

  Connect conn;
  conn.client_id = "";  // taken from the restored session
  conn.clean_start = false;
  conn.properties.session_expiry_interval = 3600;
  ASSERT_TRUE(s.prepare_connect(conn, now));
  EXPECT_EQ(conn.client_id, "device-1");
  ConnAck ca;
  ca.session_present = true;
  auto out = s.on_connack(ca, now);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->resend_count, 2u);

  auto r1 = s.next_resend();
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->type, PacketType::Publish);
  EXPECT_EQ(r1->publish.packet_id, a);
  EXPECT_TRUE(r1->publish.dup);
  EXPECT_EQ(r1->publish.topic, "t/a");
  EXPECT_EQ(as_string(r1->publish.payload), "payload-A");
  auto r2 = s.next_resend();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->type, PacketType::PubRel);
  EXPECT_EQ(r2->pubrel.packet_id, b);
  EXPECT_FALSE(s.next_resend());

  // The inbound QoS 2 message is not delivered again after the reboot.
  Publish dup;
  dup.topic = "in";
  dup.qos = QoS::ExactlyOnce;
  dup.packet_id = 300;
  dup.dup = true;
  auto d = s.on_publish(dup, now);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->deliver);

  // New publishes do not reuse restored ids.
  Publish fresh;
  fresh.topic = "t/new";
  fresh.qos = QoS::AtLeastOnce;
  ASSERT_TRUE(s.begin_publish(fresh, now));
  EXPECT_NE(fresh.packet_id, a);
  EXPECT_NE(fresh.packet_id, b);
}

TEST_F(SessionPersistence, SessionNotPresentClearsTheStore) {
  MemorySessionStore store(sb.arena, 256, sb.ids);
  SessionBuffers b1;
  Session s(b1.storage(), &store);
  connect_session(s, Version::V311, false, ConnAck{});
  Publish p;
  p.topic = "t";
  p.qos = QoS::AtLeastOnce;
  ASSERT_TRUE(s.begin_publish(p, now));
  EXPECT_EQ(store.publish_count(), 1u);
  s.on_connection_lost(now);
  auto out = connect_session(s, Version::V311, false, ConnAck{});
  EXPECT_EQ(out.lost_count, 1u);
  EXPECT_EQ(store.publish_count(), 0u);
}

// After a reboot the restored QoS 2 record awaiting PUBCOMP keeps what it knew: when the broker
// then says the session is gone, the loss still reports that the broker had accepted it.
TEST_F(SessionPersistence, RestoredQoS2AfterPubRecIsReportedAcceptedWhenLost) {
  std::uint16_t a = 0;
  std::uint16_t b = 0;
  {
    MemorySessionStore store(sb.arena, 256, sb.ids);
    SessionBuffers b1;
    Session s(b1.storage(), &store);
    connect_session(s, Version::V311, false, ConnAck{});
    Publish p1;
    p1.topic = "t/a";
    p1.qos = QoS::ExactlyOnce;
    ASSERT_TRUE(s.begin_publish(p1, now));
    a = p1.packet_id;
    Publish p2;
    p2.topic = "t/b";
    p2.qos = QoS::ExactlyOnce;
    ASSERT_TRUE(s.begin_publish(p2, now));
    b = p2.packet_id;
    PubRec rec;
    rec.packet_id = b;
    ASSERT_TRUE(s.on_pubrec(rec, now));
  }
  MemorySessionStore store(sb.arena, 256, sb.ids, /*adopt_existing=*/true);
  SessionBuffers b2;
  Session s(b2.storage(), &store);
  auto restored = s.restore();
  ASSERT_TRUE(restored);
  EXPECT_EQ(restored->publishes, 2u);
  auto out = connect_session(s, Version::V311, false, ConnAck{});  // session_present = 0
  EXPECT_EQ(out.lost_count, 2u);
  auto l1 = s.next_lost();
  ASSERT_TRUE(l1);
  EXPECT_EQ(l1->packet_id, a);
  EXPECT_FALSE(l1->pubrec_received);
  auto l2 = s.next_lost();
  ASSERT_TRUE(l2);
  EXPECT_EQ(l2->packet_id, b);
  EXPECT_TRUE(l2->pubrec_received);
  EXPECT_EQ(l2->publish.topic, "t/b");
  EXPECT_FALSE(s.next_lost());
}

TEST_F(SessionPersistence, CorruptSlotIsReportedNotLoaded) {
  {
    MemorySessionStore store(sb.arena, 256, sb.ids);
    SessionBuffers b1;
    Session s(b1.storage(), &store);
    connect_session(s, Version::V5, false, ConnAck{});
    for (const char* t : {"t/1", "t/2"}) {
      Publish p;
      p.topic = t;
      p.payload = as_bytes("data");
      p.qos = QoS::AtLeastOnce;
      ASSERT_TRUE(s.begin_publish(p, now));
    }
  }
  // Flip one payload byte of the first publish slot (slot 1; slot 0 is the meta).
  sb.arena[256 + MemorySessionStore::kSlotHeaderSize + 8] ^= std::byte{0x01};
  MemorySessionStore store(sb.arena, 256, sb.ids, true);
  SessionBuffers b2;
  Session s(b2.storage(), &store);
  auto restored = s.restore();
  ASSERT_TRUE(restored);
  EXPECT_EQ(restored->corrupt, 1u);
  EXPECT_EQ(restored->publishes, 1u);
  EXPECT_EQ(b2.records[0].publish.topic, "t/2");
  EXPECT_EQ(store.publish_count(), 1u);  // the corrupt slot was set aside
}

TEST_F(SessionPersistence, PublishTooLargeForASlotIsRefusedAndNotRecorded) {
  MemorySessionStore store(sb.arena, 64, sb.ids);
  SessionBuffers b1;
  Session s(b1.storage(), &store);
  connect_session(s, Version::V5, false, ConnAck{});
  Publish p;
  p.topic = "t";
  static constexpr char kData[100] = {};
  p.payload = as_bytes(std::string_view(kData, sizeof kData));
  p.qos = QoS::AtLeastOnce;
  auto r = s.begin_publish(p, now);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::BufferTooSmall);
  EXPECT_EQ(s.records_in_use(), 0u);
}

TEST_F(SessionPersistence, RestoreWithoutStoreIsRefused) {
  auto r = session.restore();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::InvalidArgument);
}

using StoreCrc = edgekit::testing::PureTest;
TEST_F(StoreCrc, MatchesTheIeeeCheckValue) {
  EXPECT_EQ(crc32(as_bytes("123456789")), 0xCBF43926u);
  EXPECT_EQ(crc32(as_bytes("56789"), crc32(as_bytes("1234"))), 0xCBF43926u);
  EXPECT_EQ(crc32({}), 0u);
}

}  // namespace
}  // namespace edgekit::mqtt::test
