// What the fuzzers found in the session (docs/fuzzing.md), kept as unit tests. The inputs are
// also kept under fuzz/regressions/<target>/ and replayed by scripts/fuzz.
#include "edgekit/mqtt/codec.hpp"
#include "session_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

using SessionFuzzFindings = SessionTest;

// fuzz_store: a restored MQTT 5 publish with properties was resent on a 3.1.1 session (the stored
// meta said 3.1.1) with its properties, a packet the codec refuses to encode. The same happens
// without any store when a session made under MQTT 5 is resumed over 3.1.1.
TEST_F(SessionFuzzFindings, ResumeOverV311DropsThePropertiesOfAPublishMadeUnderV5) {
  connect(Version::V5, /*clean_start=*/false);
  Publish p;
  p.topic = "t";
  p.payload = as_bytes("x");
  p.qos = QoS::AtLeastOnce;
  p.properties.set_message_expiry_interval(30);
  ASSERT_TRUE(session.begin_publish(p));
  session.on_connection_lost();

  ConnAck present;
  present.session_present = true;
  auto out = connect(Version::V311, /*clean_start=*/false, present);
  EXPECT_EQ(out.resend_count, 1u);
  auto r = session.next_resend();
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->type, PacketType::Publish);
  EXPECT_EQ(r->publish.packet_id, p.packet_id);
  EXPECT_FALSE(r->publish.properties.message_expiry_interval().has_value());
  std::array<std::byte, 64> wire{};
  auto n = encode(r->publish, Version::V311, wire);
  EXPECT_TRUE(n.has_value()) << to_string(n.error());
}

TEST_F(SessionFuzzFindings, RestoredV5PublishUnderV311MetaIsResentAsAValid311Packet) {
  alignas(8) std::array<std::byte, 4 * 128> arena{};
  std::array<std::uint16_t, 2> ids{};
  {
    MemorySessionStore store(arena, 128, ids);
    Publish p;
    p.topic = "a/b";
    p.payload = as_bytes("x");
    p.qos = QoS::ExactlyOnce;
    p.packet_id = 7;
    p.properties.set_content_type("text/plain");
    ASSERT_TRUE(store.save_publish(1, p, Version::V5));
    ASSERT_TRUE(store.save_meta(SessionMeta{Version::V311, "device-1", 0xFFFFFFFF}));
  }
  MemorySessionStore store(arena, 128, ids, /*adopt_existing=*/true);
  SessionBuffers b;
  Session s(b.storage(), &store);
  auto restored = s.restore();
  ASSERT_TRUE(restored.has_value()) << to_string(restored.error());
  EXPECT_EQ(restored->publishes, 1u);
  EXPECT_EQ(s.version(), Version::V311);
  ConnAck present;
  present.session_present = true;
  connect_session(s, Version::V311, /*clean_start=*/false, present);
  auto r = s.next_resend();
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->type, PacketType::Publish);
  EXPECT_TRUE(r->publish.dup);
  std::array<std::byte, 64> wire{};
  auto n = encode(r->publish, Version::V311, wire);
  EXPECT_TRUE(n.has_value()) << to_string(n.error());
}

}  // namespace
}  // namespace edgekit::mqtt::test
