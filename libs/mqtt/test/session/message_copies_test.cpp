// The session's own copies of QoS 1/2 messages (SessionStorage::message_copies): the caller's
// buffers are free again when begin_publish returns.
#include <cstring>

#include "session_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

class SessionMessageCopies : public SessionTest {
 protected:
  SessionMessageCopies() {
    storage_with_copies = buf.storage();
    storage_with_copies.message_copies = copies;  // 8 records: 32 bytes each
  }
  SessionStorage storage_with_copies;
  std::array<std::byte, 8 * 32> copies{};
};

TEST_F(SessionMessageCopies, AReusedBufferCannotCorruptTheResend) {
  Session s(storage_with_copies);
  connect_session(s, Version::V5, false, {});
  char topic[16] = "dev/1/temp";
  char payload[16] = "21.5";
  Publish p;
  p.topic = std::string_view(topic, std::strlen(topic));
  p.payload = as_bytes(std::string_view(payload, std::strlen(payload)));
  p.qos = QoS::AtLeastOnce;
  ASSERT_TRUE(s.begin_publish(p));
  // What is sent now points at the copy, not at the caller's buffers.
  EXPECT_NE(static_cast<const void*>(p.topic.data()), static_cast<const void*>(topic));
  EXPECT_NE(static_cast<const void*>(p.payload.data()), static_cast<const void*>(payload));
  // The application reuses its buffers for the next reading.
  std::memcpy(topic, "dev/1/hum!", 10);
  std::memcpy(payload, "99.9", 4);
  s.on_connection_lost();
  ConnAck present;
  present.session_present = true;
  Connect c;
  c.version = Version::V5;
  c.client_id = "device-1";
  c.clean_start = false;
  c.properties.set_session_expiry_interval(3600);
  ASSERT_TRUE(s.prepare_connect(c));
  ASSERT_TRUE(s.on_connack(present));
  auto resend = s.next_resend();
  ASSERT_TRUE(resend.has_value());
  EXPECT_EQ(resend->publish.topic, "dev/1/temp");
  EXPECT_EQ(as_string(resend->publish.payload), "21.5");
  EXPECT_TRUE(resend->publish.dup);
}

TEST_F(SessionMessageCopies, AMessageLargerThanItsSlotIsRefusedAndNothingRecorded) {
  Session s(storage_with_copies);
  connect_session(s, Version::V311, true, {});
  std::array<char, 40> payload{};  // topic + payload > 32
  payload.fill('x');
  Publish p;
  p.topic = "t";
  p.payload = as_bytes(std::string_view(payload.data(), payload.size()));
  p.qos = QoS::AtLeastOnce;
  auto r = s.begin_publish(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::BufferTooSmall);
  EXPECT_EQ(s.records_in_use(), 0u);
  // QoS 0 is never copied (nothing to resend): any size goes.
  p.qos = QoS::AtMostOnce;
  EXPECT_TRUE(s.begin_publish(p));
}

TEST_F(SessionMessageCopies, EachRecordHasItsOwnSlot) {
  Session s(storage_with_copies);
  connect_session(s, Version::V5, true, {});
  std::array<std::string_view, 3> seen{};
  for (int i = 0; i < 3; ++i) {
    char payload[4] = {static_cast<char>('a' + i), 0, 0, 0};
    Publish p;
    p.topic = "t";
    p.payload = as_bytes(std::string_view(payload, 1));
    p.qos = QoS::ExactlyOnce;
    ASSERT_TRUE(s.begin_publish(p));
    seen[static_cast<std::size_t>(i)] = as_string(p.payload);
  }
  EXPECT_EQ(seen[0], "a");
  EXPECT_EQ(seen[1], "b");
  EXPECT_EQ(seen[2], "c");
}

}  // namespace
}  // namespace edgekit::mqtt::test
