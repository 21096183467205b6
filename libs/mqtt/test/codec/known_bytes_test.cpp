// Exact wire bytes, written by hand from the spec, for a few packets of each version: the
// encoder must produce them and the decoder must read them back.
#include "codec_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

using KnownBytes = edgekit::testing::PureTest;

template <class T>
void expect_encodes_to(const T& p, Version v, Bytes expected) {
  Guarded g;
  Bytes got = encode_guarded(p, v, g);
  EXPECT_TRUE(same_bytes(got, expected));
}

TEST_F(KnownBytes, Connect311) {
  constexpr auto wire = B(0x10, 0x15, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xC2, 0x00, 0x3C,
                          0x00, 0x03, 'a', 'b', 'c', 0x00, 0x01, 'u', 0x00, 0x01, 'p');
  Connect c;
  c.version = Version::V311;
  c.client_id = "abc";
  c.username = "u";
  c.password = as_bytes("p");
  expect_encodes_to(c, Version::V311, wire);
  auto d = decode_connect(wire);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->version, Version::V311);
  EXPECT_EQ(d->client_id, "abc");
  EXPECT_EQ(d->username, "u");
  EXPECT_EQ(as_string(*d->password), "p");
  EXPECT_TRUE(d->clean_start);
  EXPECT_EQ(d->keep_alive, 60);
}

TEST_F(KnownBytes, Connect5WithProperties) {
  constexpr auto wire =
      B(0x10, 0x18, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x1E, 0x08, 0x11, 0x00,
        0x00, 0x00, 0x0A, 0x21, 0x00, 0x05, 0x00, 0x03, 'a', 'b', 'c');
  Connect c;
  c.client_id = "abc";
  c.keep_alive = 30;
  c.properties.set_session_expiry_interval(10);
  c.properties.set_receive_maximum(5);
  expect_encodes_to(c, Version::V5, wire);
  auto d = decode_connect(wire);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->version, Version::V5);
  EXPECT_EQ(d->properties.session_expiry_interval(), 10u);
  EXPECT_EQ(d->properties.receive_maximum(), 5);
}

TEST_F(KnownBytes, Publish311QoS1) {
  constexpr auto wire = B(0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i');
  Publish p;
  p.topic = "a/b";
  p.payload = as_bytes("hi");
  p.qos = QoS::AtLeastOnce;
  p.packet_id = 10;
  expect_encodes_to(p, Version::V311, wire);
}

TEST_F(KnownBytes, Publish5RetainWithTopicAlias) {
  constexpr auto wire = B(0x31, 0x08, 0x00, 0x01, 'a', 0x03, 0x23, 0x00, 0x01, 'x');
  Publish p;
  p.topic = "a";
  p.payload = as_bytes("x");
  p.retain = true;
  p.properties.set_topic_alias(1);
  expect_encodes_to(p, Version::V5, wire);
  auto d = decode_publish(wire, Version::V5);
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->retain);
  EXPECT_EQ(d->properties.topic_alias(), 1);
  EXPECT_EQ(as_string(d->payload), "x");
}

TEST_F(KnownBytes, Subscribe5WithOptionsAndIdentifier) {
  // Options 0x2D: QoS 1, No Local, Retain As Published, Retain Handling 2. Subscription
  // Identifier 300 = varint AC 02.
  constexpr auto wire = B(0x82, 0x0C, 0x00, 0x01, 0x03, 0x0B, 0xAC, 0x02, 0x00, 0x03, 'a', '/',
                          '#', 0x2D);
  const Subscription subs[] = {
      {"a/#", {QoS::AtLeastOnce, true, true, RetainHandling::DoNotSend}}};
  const std::uint32_t ids[] = {300};
  Subscribe s;
  s.packet_id = 1;
  s.subscriptions = subs;
  s.properties.subscription_identifiers = ids;
  expect_encodes_to(s, Version::V5, wire);
  auto d = decode_subscribe(wire, Version::V5);
  ASSERT_TRUE(d.has_value());
  ASSERT_EQ(d->properties.subscription_identifiers.size(), 1u);
  EXPECT_EQ(*d->properties.subscription_identifiers.begin(), 300u);
  EXPECT_TRUE((*d->subscriptions.begin()).options == subs[0].options);
}

TEST_F(KnownBytes, Subscribe311) {
  constexpr auto wire = B(0x82, 0x06, 0x00, 0x02, 0x00, 0x01, 'x', 0x02);
  const Subscription subs[] = {{"x", {QoS::ExactlyOnce}}};
  Subscribe s;
  s.packet_id = 2;
  s.subscriptions = subs;
  expect_encodes_to(s, Version::V311, wire);
}

TEST_F(KnownBytes, ConnAck) {
  ConnAck a;
  a.reason_code = ReasonCode::NotAuthorized;
  expect_encodes_to(a, Version::V311, B(0x20, 0x02, 0x00, 0x05));  // return code 5
  EXPECT_EQ(decode_connack(B(0x20, 0x02, 0x00, 0x05), Version::V311)->reason_code,
            ReasonCode::NotAuthorized);
  a.reason_code = ReasonCode::Success;
  a.session_present = true;
  expect_encodes_to(a, Version::V5, B(0x20, 0x03, 0x01, 0x00, 0x00));
  a.session_present = false;
  a.properties.set_maximum_qos(QoS::AtLeastOnce);
  expect_encodes_to(a, Version::V5, B(0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x01));
}

TEST_F(KnownBytes, V311ConnAckReturnCodesMapOntoReasonCodes) {
  const ReasonCode expected[] = {ReasonCode::Success,
                                 ReasonCode::UnsupportedProtocolVersion,
                                 ReasonCode::ClientIdentifierNotValid,
                                 ReasonCode::ServerUnavailable,
                                 ReasonCode::BadUserNameOrPassword,
                                 ReasonCode::NotAuthorized};
  for (int code = 0; code <= 5; ++code) {
    const auto wire = B(0x20, 0x02, 0x00, code);
    auto d = decode_connack(wire, Version::V311);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->reason_code, expected[code]);
  }
}

TEST_F(KnownBytes, AcksShortestForms) {
  PubAck a;
  a.packet_id = 5;
  expect_encodes_to(a, Version::V5, B(0x40, 0x02, 0x00, 0x05));
  a.reason_code = ReasonCode::NoMatchingSubscribers;
  expect_encodes_to(a, Version::V5, B(0x40, 0x03, 0x00, 0x05, 0x10));
  a.properties.set_reason_string("r");
  expect_encodes_to(a, Version::V5, B(0x40, 0x08, 0x00, 0x05, 0x10, 0x04, 0x1F, 0x00, 0x01, 'r'));
  PubRel rel;
  rel.packet_id = 5;
  expect_encodes_to(rel, Version::V311, B(0x62, 0x02, 0x00, 0x05));
  // Decoding the short forms: remaining length 2 means Success and no properties.
  auto d = decode_puback(B(0x40, 0x02, 0x00, 0x05), Version::V5);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->reason_code, ReasonCode::Success);
  d = decode_puback(B(0x40, 0x03, 0x00, 0x05, 0x10), Version::V5);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->reason_code, ReasonCode::NoMatchingSubscribers);
  auto x = decode_disconnect(B(0xE0, 0x00), Version::V5);
  ASSERT_TRUE(x.has_value());
  EXPECT_EQ(x->reason_code, ReasonCode::Success);
  auto au = decode_auth(B(0xF0, 0x00), Version::V5);
  ASSERT_TRUE(au.has_value());
  EXPECT_EQ(au->reason_code, ReasonCode::Success);
}

TEST_F(KnownBytes, RepeatedUserPropertiesAndSubscriptionIdentifiersAreKeptInOrder) {
  // PUBACK with User Property k=v then k=w.
  constexpr auto ack = B(0x40, 0x12, 0x00, 0x01, 0x00, 0x0E, 0x26, 0x00, 0x01, 'k', 0x00, 0x01,
                         'v', 0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'w');
  auto d = decode_puback(ack, Version::V5);
  ASSERT_TRUE(d.has_value()) << to_string(d.error());
  ASSERT_EQ(d->properties.user_properties.size(), 2u);
  auto it = d->properties.user_properties.begin();
  EXPECT_TRUE((*it == UserProperty{"k", "v"}));
  ++it;
  EXPECT_TRUE((*it == UserProperty{"k", "w"}));
  // PUBLISH may carry several Subscription Identifiers (one per matching subscription).
  constexpr auto pub = B(0x30, 0x08, 0x00, 0x01, 'a', 0x04, 0x0B, 0x01, 0x0B, 0x02);
  auto p = decode_publish(pub, Version::V5);
  ASSERT_TRUE(p.has_value()) << to_string(p.error());
  std::uint32_t ids[2] = {};
  std::size_t n = 0;
  for (std::uint32_t id : p->properties.subscription_identifiers) ids[n++ % 2] = id;
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(ids[0], 1u);
  EXPECT_EQ(ids[1], 2u);
}

}  // namespace
}  // namespace edgekit::mqtt::test
