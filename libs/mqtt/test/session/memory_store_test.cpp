// Persistence through MemorySessionStore: save, reboot (new Session over the same arena),
// restore, resume; corruption detected.
#include <algorithm>

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
    ASSERT_TRUE(s.begin_publish(pa));
    a = pa.packet_id;
    Publish pb = pa;
    pb.topic = "t/b";
    pb.qos = QoS::ExactlyOnce;
    pb.payload = as_bytes("payload-B");
    ASSERT_TRUE(s.begin_publish(pb));
    b = pb.packet_id;
    Publish pc = pb;
    pc.topic = "t/c";
    ASSERT_TRUE(s.begin_publish(pc));
    c = pc.packet_id;
    PubRec rec;
    rec.packet_id = b;
    ASSERT_TRUE(s.on_pubrec(rec));
    PubComp comp;  // nothing more for c
    rec.packet_id = c;
    ASSERT_TRUE(s.on_pubrec(rec));
    comp.packet_id = c;
    ASSERT_TRUE(s.on_pubcomp(comp));  // c is complete: removed from the store
    Publish in;
    in.topic = "in";
    in.qos = QoS::ExactlyOnce;
    in.packet_id = 300;
    auto r = s.on_publish(in);
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
  conn.properties.set_session_expiry_interval(3600);
  ASSERT_TRUE(s.prepare_connect(conn));
  EXPECT_EQ(conn.client_id, "device-1");
  ConnAck ca;
  ca.session_present = true;
  auto out = s.on_connack(ca);
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
  auto d = s.on_publish(dup);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->deliver);

  // New publishes do not reuse restored ids.
  Publish fresh;
  fresh.topic = "t/new";
  fresh.qos = QoS::AtLeastOnce;
  ASSERT_TRUE(s.begin_publish(fresh));
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
  ASSERT_TRUE(s.begin_publish(p));
  EXPECT_EQ(store.publish_count(), 1u);
  s.on_connection_lost();
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
    ASSERT_TRUE(s.begin_publish(p1));
    a = p1.packet_id;
    Publish p2;
    p2.topic = "t/b";
    p2.qos = QoS::ExactlyOnce;
    ASSERT_TRUE(s.begin_publish(p2));
    b = p2.packet_id;
    PubRec rec;
    rec.packet_id = b;
    ASSERT_TRUE(s.on_pubrec(rec));
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
      ASSERT_TRUE(s.begin_publish(p));
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
  EXPECT_EQ(store.set_aside_count(), 1u);  // and kept (its bytes may still be recovered)
}

// Records the reports of Session::restore (no heap: these tests run under the allocation guard).
struct Unrestorable final : RestoreObserver {
  std::array<UnrestorableRecord, 4> records{};
  std::size_t count = 0;
  void on_unrestorable(const UnrestorableRecord& r) noexcept override {
    if (count == records.size()) return;
    records[count] = r;
    records[count++].name = {};  // valid during the call only
  }
};

Publish stored_publish(std::uint16_t id, std::string_view topic) {
  Publish p;
  p.topic = topic;
  p.payload = as_bytes("m");
  p.qos = QoS::AtLeastOnce;
  p.packet_id = id;
  return p;
}

// Issue 11: a restore into fewer records than stored failed, and a caller that went on anyway
// connected and published under the stored packet ids, replacing the stored messages.
TEST_F(SessionPersistence, FailedRestoreRefusesToConnectAndLeavesTheStoreAsItWas) {
  {
    MemorySessionStore store(sb.arena, 256, sb.ids);
    for (std::uint16_t id = 1; id <= 5; ++id) {
      ASSERT_TRUE(store.save_publish(id, stored_publish(id, "t"), Version::V5));
    }
  }
  const auto before = sb.arena;
  MemorySessionStore store(sb.arena, 256, sb.ids, /*adopt_existing=*/true);
  std::array<OutgoingRecord, 2> two{};
  std::array<char, 32> id{};
  Session small(SessionStorage{two, {}, {}, {}, id}, &store);
  auto r = small.restore();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::SessionStateFull);
  EXPECT_EQ(small.records_in_use(), 0u);
  Connect c;
  c.client_id = "d";
  auto connect = small.prepare_connect(c);
  ASSERT_FALSE(connect) << "connecting would let new publishes replace the stored ones";
  EXPECT_EQ(connect.error(), Errc::SessionStateFull);
  EXPECT_EQ(sb.arena, before);

  SessionBuffers room;
  Session s(room.storage(), &store);
  auto restored = s.restore();
  ASSERT_TRUE(restored);
  EXPECT_EQ(restored->publishes, 5u);
}

// Issue 11: a record with a valid checksum but content that is no publish failed the whole
// restore (every other record was dropped with it).
TEST_F(SessionPersistence, PublishWithBadContentIsSetAsideReportedAndKept) {
  {
    MemorySessionStore store(sb.arena, 256, sb.ids);
    ASSERT_TRUE(store.save_publish(1, stored_publish(7, "t/bad"), Version::V5));
    ASSERT_TRUE(store.save_publish(2, stored_publish(8, "t/good"), Version::V5));
  }
  // Slot 1 holds packet id 7: its packet type becomes 0 (reserved), and the CRC is made valid.
  std::byte* slot = sb.arena.data() + 256;
  constexpr std::size_t kHead = MemorySessionStore::kSlotHeaderSize;
  slot[kHead] = std::byte{0x02};
  std::uint32_t len = 0;
  for (int i = 0; i < 4; ++i) len |= std::to_integer<std::uint32_t>(slot[12 + i]) << (8 * i);
  const std::uint32_t crc = crc32(Bytes(slot + kHead, len), crc32(Bytes(slot, 16)));
  for (int i = 0; i < 4; ++i) slot[16 + i] = std::byte((crc >> (8 * i)) & 0xFF);
  std::array<std::byte, 256> damaged{};
  std::copy(slot, slot + 256, damaged.begin());

  MemorySessionStore store(sb.arena, 256, sb.ids, /*adopt_existing=*/true);
  SessionBuffers b;
  Session s(b.storage(), &store);
  Unrestorable seen;
  auto restored = s.restore(&seen);
  ASSERT_TRUE(restored) << to_string(restored.error());
  EXPECT_EQ(restored->publishes, 1u);
  EXPECT_EQ(restored->publishes_set_aside, 1u);
  ASSERT_EQ(seen.count, 1u);
  EXPECT_EQ(seen.records[0].kind, StoredRecordKind::Publish);
  EXPECT_EQ(seen.records[0].packet_id, 7);
  EXPECT_TRUE(is_malformed(seen.records[0].cause)) << to_string(seen.records[0].cause);
  EXPECT_EQ(store.set_aside_count(), 1u);

  // A new publish under the same packet id, and a discarded session, leave it as it was.
  ASSERT_TRUE(store.save_publish(3, stored_publish(7, "t/new"), Version::V5));
  ASSERT_TRUE(store.clear_session());
  EXPECT_EQ(slot[0], std::byte{0xE5});  // marked: kind 3, "kept aside"
  EXPECT_EQ(slot[1], std::byte{3});
  EXPECT_TRUE(std::equal(slot + 2, slot + 256, damaged.begin() + 2));
  EXPECT_EQ(store.set_aside_count(), 1u);
  store.discard_set_aside();  // the application decided
  EXPECT_EQ(store.set_aside_count(), 0u);
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
  auto r = s.begin_publish(p);
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
