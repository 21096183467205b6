// The sans-I/O connection engine driven directly, in simulated time: the test is the driver. It
// moves bytes between the engine and a scripted broker (over a MemoryTransport), chooses how much
// of the output a "socket" takes, and steps the clock, so slow sockets, full queues, timers and
// fatal errors are checked exactly, with no sleeps.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "edgekit/mqtt/codec.hpp"
#include "edgekit/mqtt/connection.hpp"
#include "edgekit/testing/manual_clock.hpp"
#include "edgekit/testing/memory_transport.hpp"
#include "edgekit/testing/scripted_broker.hpp"
#include "../support/test_packets.hpp"

namespace edgekit::mqtt::test {
namespace {

using namespace std::chrono_literals;
using testing::ByteVector;

/// A copy of an event that outlives the engine's views.
struct Seen {
  EventType type{};
  std::uint16_t packet_id = 0;
  Errc error = Errc::Ok;
  ReasonCode reason_code = ReasonCode::Success;
  std::string topic;
  std::string payload;
  bool dup = false;
  bool session_present = false;
};

class ConnectionTest : public ::testing::TestWithParam<Version> {
 protected:
  ConnectionTest()
      : version(GetParam()),
        broker(net, version),
        session(SessionStorage{out_records, in_qos2, in_alias.storage(), out_alias.storage(),
                               client_id_chars}),
        conn(session, rx, tx) {}

  ConnectOptions options(bool clean = true) const {
    ConnectOptions o;
    o.version = version;
    o.client_id = "dev-1";
    o.clean_start = clean;
    o.keep_alive_seconds = 10;
    if (version == Version::V5 && !clean) o.properties.set_session_expiry_interval(3600);
    return o;
  }

  Instant now() const { return clock.now(); }

  /// The "socket" takes at most `max` bytes of the output; returns how many it took.
  std::size_t write(std::size_t max = SIZE_MAX) {
    std::size_t total = 0;
    while (!conn.output_empty() && total < max) {
      std::array<Bytes, 8> parts{};
      const std::size_t n = conn.output(parts);
      ByteVector flat;
      for (std::size_t i = 0; i < n; ++i) flat.insert(flat.end(), parts[i].begin(), parts[i].end());
      const std::size_t take = std::min(flat.size(), max - total);
      const auto r = net.send(Bytes(flat.data(), take));
      EXPECT_EQ(r.status, transport::IoStatus::Ok);
      conn.on_written(r.bytes, now());
      total += r.bytes;
    }
    return total;
  }

  /// Moves what the broker sent into the engine.
  void read() {
    for (;;) {
      const auto buf = conn.read_buffer();
      if (buf.empty()) return;
      const auto r = net.recv(buf);
      if (r.status != transport::IoStatus::Ok || r.bytes == 0) return;
      conn.on_read(r.bytes, now());
    }
  }

  std::vector<Seen> poll_all() {
    std::vector<Seen> out;
    while (auto e = conn.poll_event(now())) {
      Seen s;
      s.type = e->type;
      s.packet_id = e->packet_id;
      s.error = e->error;
      s.reason_code = e->reason_code;
      s.session_present = e->session_present;
      if (e->message != nullptr) {
        s.topic = std::string(e->message->topic);
        s.payload = std::string(as_string(e->message->payload));
        s.dup = e->message->dup;
      }
      out.push_back(s);
    }
    return out;
  }

  void connect_ok(bool clean = true, ConnAck connack = {}) {
    broker.expect(PacketType::Connect).reply_with(connack);
    ASSERT_TRUE(conn.connect(options(clean), now(), 5s).has_value());
    EXPECT_EQ(conn.state(), ConnectionState::Connecting);
    write();
    read();
    const auto events = poll_all();
    ASSERT_FALSE(events.empty());
    ASSERT_EQ(events[0].type, EventType::Connected);
    ASSERT_TRUE(conn.connected());
  }

  Version version;
  testing::ManualClock clock;
  testing::MemoryTransport net;
  testing::ScriptedBroker broker;
  std::array<OutgoingRecord, 32> out_records{};
  std::array<std::uint16_t, 8> in_qos2{};
  TopicAliasArena<4, 64> in_alias{};
  TopicAliasArena<4, 64> out_alias{};
  std::array<char, 64> client_id_chars{};
  Session session;
  std::array<std::byte, 512> rx{};
  std::array<std::byte, 256> tx{};
  Connection conn;
};

INSTANTIATE_TEST_SUITE_P(BothVersions, ConnectionTest, ::testing::Values(Version::V311, Version::V5),
                         [](const ::testing::TestParamInfo<Version>& p) { return p.param == Version::V5 ? "V5" : "V311"; });

TEST_P(ConnectionTest, ConnAckGivesConnectedAndNothingElse) {
  connect_ok();
  EXPECT_TRUE(conn.output_empty());
  EXPECT_FALSE(conn.notices_pending());
  EXPECT_TRUE(broker.verify());
}

TEST_P(ConnectionTest, NoConnAckByTheDeadlineIsConnectFailedWithTimeout) {
  broker.expect(PacketType::Connect);
  ASSERT_TRUE(conn.connect(options(), now(), 5s).has_value());
  write();
  ASSERT_TRUE(conn.next_deadline().has_value());
  EXPECT_EQ(*conn.next_deadline(), now() + 5s);
  clock.advance(4999ms);
  conn.on_timer(now());
  EXPECT_TRUE(poll_all().empty());
  clock.advance(1ms);
  conn.on_timer(now());
  const auto events = poll_all();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::ConnectFailed);
  EXPECT_EQ(events[0].error, Errc::Timeout);
  EXPECT_EQ(conn.state(), ConnectionState::Closed);
  EXPECT_FALSE(conn.next_deadline().has_value());
}

TEST_P(ConnectionTest, RefusalIsConnectFailedWithTheServersReason) {
  ConnAck refused;
  refused.reason_code =
      version == Version::V5 ? ReasonCode::NotAuthorized : ReasonCode::NotAuthorized;
  broker.expect(PacketType::Connect).reply_with(refused);
  ASSERT_TRUE(conn.connect(options(), now(), 5s).has_value());
  write();
  read();
  const auto events = poll_all();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::ConnectFailed);
  EXPECT_EQ(events[0].error, Errc::ConnectionRefused);
  EXPECT_EQ(events[0].reason_code, ReasonCode::NotAuthorized);
  EXPECT_TRUE(conn.output_empty());  // nothing is said to a server that refused
}

TEST_P(ConnectionTest, ASocketThatTakesNothingFillsTheQueueButNeverFailsTheConnection) {
  connect_ok();
  std::vector<std::string> topics;
  for (int i = 0; i < 40; ++i) topics.push_back("t/" + std::to_string(i));
  std::size_t queued = 0;
  Errc last = Errc::Ok;
  for (const auto& t : topics) {
    auto id = conn.publish(make_publish(t, "payload", QoS::AtLeastOnce), now());
    if (!id) {
      last = id.error();
      break;
    }
    ++queued;
  }
  EXPECT_EQ(last, Errc::SendQueueFull);
  EXPECT_EQ(queued, Connection::kSendQueuePackets);
  // Refused means refused: nothing recorded for the publish that did not fit.
  EXPECT_EQ(session.publishes_in_flight(), queued);
  EXPECT_TRUE(conn.connected());
  // Much later, the socket drains one byte at a time: every packet arrives whole, in order.
  clock.advance(60s);
  for (std::size_t i = 0; i < queued; ++i) {
    broker.expect(make_publish(topics[i], "payload", QoS::AtLeastOnce,
                               static_cast<std::uint16_t>(i + 1)));
  }
  while (!conn.output_empty()) write(1);
  EXPECT_TRUE(broker.verify());
  EXPECT_EQ(broker.mismatches(), 0u);
  // And there is room again.
  broker.expect(PacketType::Publish);
  EXPECT_TRUE(conn.publish(make_publish("again", "x", QoS::AtLeastOnce), now()).has_value());
  write();
  EXPECT_TRUE(broker.verify());
}

TEST_P(ConnectionTest, TheCallerSizesTheSendQueue) {
  // A queue of the caller's slots: as many packets wait as it has slots, no more, no heap.
  std::array<Connection::SendSlot, 3> slots;
  conn = Connection(session, rx, tx, slots);
  connect_ok();
  std::size_t queued = 0;
  Errc last = Errc::Ok;
  for (int i = 0; i < 10; ++i) {
    auto id = conn.publish(make_publish("t/" + std::to_string(i), "p", QoS::AtMostOnce), now());
    if (!id) {
      last = id.error();
      break;
    }
    ++queued;
  }
  EXPECT_EQ(last, Errc::SendQueueFull);
  EXPECT_EQ(queued, slots.size());
  for (std::size_t i = 0; i < queued; ++i) broker.expect(PacketType::Publish);
  write();
  EXPECT_TRUE(broker.verify());
  // A larger one than the default lets more wait for one write.
  std::array<Connection::SendSlot, 40> many;
  Connection big(session, rx, tx, many);
  EXPECT_EQ(big.state(), ConnectionState::Idle);
}

TEST(ConnectOptionsVersion, BothVersionsBuiltInMeansNoDefault) {
  if (EDGEKIT_MQTT_ENABLE_V5 == 0 || EDGEKIT_MQTT_ENABLE_V311 == 0) GTEST_SKIP();
  std::array<OutgoingRecord, 2> records{};
  std::array<std::byte, 256> rx{};
  std::array<std::byte, 256> tx{};
  Session session(SessionStorage{records, {}, {}, {}, {}});
  Connection conn(session, rx, tx);
  ConnectOptions o;  // version forgotten
  o.client_id = "dev-1";
  const auto r = conn.connect(o, Instant{}, 5s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::ProtocolVersionNotChosen);
  // Nothing sent, nothing changed.
  EXPECT_TRUE(conn.output_empty());
  EXPECT_EQ(conn.state(), ConnectionState::Idle);
  o.version = Version::V311;
  EXPECT_TRUE(conn.connect(o, Instant{}, 5s).has_value());
}

TEST_P(ConnectionTest, PayloadsAreQueuedAsViewsNotCopies) {
  connect_ok();
  const std::string payload(300, 'p');
  ASSERT_TRUE(conn.publish(make_publish("a/b", payload, QoS::AtMostOnce), now()).has_value());
  std::array<Bytes, 4> parts{};
  ASSERT_EQ(conn.output(parts), 2u);
  EXPECT_EQ(parts[1].data(), reinterpret_cast<const std::byte*>(payload.data()));
  EXPECT_EQ(parts[1].size(), payload.size());
  EXPECT_GE(parts[0].data(), tx.data());
  EXPECT_LT(parts[0].data(), tx.data() + tx.size());
}

TEST_P(ConnectionTest, AnIncomingPacketWaitsForRoomForItsAck) {
  connect_ok();
  for (std::size_t i = 0; i < Connection::kSendQueuePackets; ++i) {
    ASSERT_TRUE(conn.publish(make_publish("out", "x", QoS::AtMostOnce), now()).has_value());
  }
  broker.send(make_publish("in", "hello", QoS::AtLeastOnce, 7));
  read();
  // No room for the PUBACK: the message stays in the receive buffer, unacknowledged.
  EXPECT_TRUE(poll_all().empty());
  EXPECT_TRUE(conn.packet_pending());
  for (std::size_t i = 0; i < Connection::kSendQueuePackets; ++i) broker.expect(PacketType::Publish);
  write();
  auto e = conn.poll_event(now());
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->type, EventType::MessageReceived);
  EXPECT_EQ(as_string(e->message->payload), "hello");
  // The ack is queued only at the next poll, after the application has seen the message.
  EXPECT_TRUE(conn.output_empty());
  EXPECT_FALSE(conn.poll_event(now()).has_value());
  PubAck ack;
  ack.packet_id = 7;
  broker.expect(ack);
  write();
  EXPECT_TRUE(broker.verify());
}

TEST_P(ConnectionTest, AHeldAckLeavesWhenTheApplicationSendsIt) {
  connect_ok();
  broker.send(make_publish("in", "a", QoS::AtLeastOnce, 7));
  broker.send(make_publish("in", "b", QoS::AtMostOnce));
  broker.send(make_publish("in", "c", QoS::AtLeastOnce, 8));
  read();
  auto e = conn.poll_event(now());
  ASSERT_TRUE(e.has_value());
  ASSERT_EQ(e->type, EventType::MessageReceived);
  EXPECT_EQ(conn.hold_ack(), 7);
  EXPECT_EQ(conn.hold_ack(), 0) << "one ack, held once";
  e = conn.poll_event(now());
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(conn.hold_ack(), 0) << "QoS 0 has no ack";
  e = conn.poll_event(now());
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(conn.hold_ack(), 8);
  EXPECT_FALSE(conn.poll_event(now()).has_value());
  // Nothing acknowledged until the application says so, then in its order.
  EXPECT_TRUE(conn.output_empty());
  ASSERT_TRUE(conn.ack(7).has_value());
  ASSERT_TRUE(conn.ack(8).has_value());
  PubAck a7, a8;
  a7.packet_id = 7;
  a8.packet_id = 8;
  broker.expect(a7);
  broker.expect(a8);
  write();
  EXPECT_TRUE(broker.verify());
  // After the connection ends, a held ack is void.
  ASSERT_TRUE(conn.disconnect(ReasonCode::Success, {}, now()).has_value());
  EXPECT_EQ(conn.ack(9).error(), Errc::NotConnected);
}

TEST_P(ConnectionTest, DisconnectRightAfterAMessageLeavesItUnacknowledged) {
  connect_ok();
  broker.send(make_publish("in", "m", QoS::AtLeastOnce, 3));
  read();
  auto e = conn.poll_event(now());
  ASSERT_TRUE(e.has_value());
  ASSERT_EQ(e->type, EventType::MessageReceived);
  ASSERT_TRUE(conn.disconnect(ReasonCode::Success, {}, now()).has_value());
  EXPECT_EQ(conn.state(), ConnectionState::Closed);
  broker.expect(PacketType::Disconnect);  // and no PUBACK before it
  write();
  EXPECT_TRUE(broker.verify());
  EXPECT_EQ(broker.mismatches(), 0u);
}

TEST_P(ConnectionTest, KeepAliveRunsInSimulatedTime) {
  connect_ok();
  ASSERT_EQ(*conn.next_deadline(), now() + 10s);
  clock.advance(10s);
  conn.on_timer(now());
  broker.expect(PacketType::PingReq);
  write();
  EXPECT_TRUE(broker.verify());
  // No PINGRESP: the ping timeout (1.5 × keep-alive) ends the connection.
  ASSERT_TRUE(conn.next_deadline().has_value());
  clock.advance(*conn.next_deadline() - now());
  conn.on_timer(now());
  const auto events = poll_all();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::ConnectionClosed);
  EXPECT_EQ(events[0].error, Errc::KeepAliveTimeout);
}

TEST_P(ConnectionTest, TheFirstPingIsDueAKeepAliveAfterConnectNotAtOnce) {
  // Connected long after the clock's origin (and after an earlier connection's last packet):
  // the keep-alive counts from CONNECT.
  clock.advance(1000s);
  connect_ok();
  ASSERT_TRUE(conn.next_deadline().has_value());
  EXPECT_EQ(*conn.next_deadline(), now() + 10s);
  conn.on_timer(now());
  EXPECT_TRUE(conn.output_empty());
}

TEST_P(ConnectionTest, PingRespIsAnEventAndRearmsTheKeepAlive) {
  connect_ok();
  broker.expect(PacketType::PingReq).reply_with(PingResp{});
  ASSERT_TRUE(conn.ping(now()).has_value());
  write();
  read();
  const auto events = poll_all();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::PingResponse);
  EXPECT_EQ(*conn.next_deadline(), now() + 10s);
}

TEST_P(ConnectionTest, APacketPartlyWrittenIsFinishedBeforeTheFatalDisconnect) {
  connect_ok();
  const std::string payload(100, 'z');
  ASSERT_TRUE(conn.publish(make_publish("half", payload, QoS::AtMostOnce), now()).has_value());
  ASSERT_TRUE(conn.publish(make_publish("never", "n", QoS::AtMostOnce), now()).has_value());
  write(20);  // part of the first publish is on the wire
  // A malformed packet from the server (reserved flags on PUBACK).
  const std::array<std::byte, 4> bad{std::byte{0x41}, std::byte{0x02}, std::byte{0x00},
                                     std::byte{0x01}};
  broker.send_bytes(bad);
  read();
  const auto events = poll_all();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::ConnectionClosed);
  EXPECT_EQ(events[0].error, Errc::ReservedFlagsSet);
  EXPECT_EQ(conn.state(), ConnectionState::Closed);
  // The rest of the first publish goes out (the stream stays whole), the second never does;
  // MQTT 5 then says why (DISCONNECT 0x81), 3.1.1 just closes.
  broker.expect(make_publish("half", payload, QoS::AtMostOnce));
  if (version == Version::V5) {
    Disconnect d;
    d.reason_code = ReasonCode::MalformedPacket;
    broker.expect(d);
  }
  write();
  EXPECT_TRUE(broker.verify());
  EXPECT_EQ(broker.mismatches(), 0u);
}

TEST_P(ConnectionTest, AQoS0PublishNotYetWrittenCanBeTakenBack) {
  connect_ok();
  ASSERT_TRUE(conn.publish(make_publish("keep", "k", QoS::AtMostOnce), now()).has_value());
  const auto mark = conn.queued_total();
  ASSERT_TRUE(conn.publish(make_publish("drop", "d", QoS::AtMostOnce), now()).has_value());
  EXPECT_FALSE(conn.unqueue_last(mark - 1));  // not where that packet began
  EXPECT_TRUE(conn.unqueue_last(mark));
  EXPECT_EQ(conn.queued_total(), mark);
  broker.expect(make_publish("keep", "k", QoS::AtMostOnce));
  write();
  EXPECT_TRUE(broker.verify());
  // Once a byte of it is out, it cannot be taken back.
  const auto mark2 = conn.queued_total();
  ASSERT_TRUE(conn.publish(make_publish("late", "l", QoS::AtMostOnce), now()).has_value());
  write(1);
  EXPECT_FALSE(conn.unqueue_last(mark2));
}

TEST_P(ConnectionTest, AQoS0PublishIsRefusedAsTheSessionWouldRefuseIt) {
  // The QoS 0 path encodes the caller's message without handing a copy to the session: the
  // session's rules for it still hold, and nothing is queued when one refuses it.
  ConnAck ca;
  if (version == Version::V5) {
    ca.properties.set_retain_available(false);
    ca.properties.set_maximum_packet_size(64);
  }
  connect_ok(true, ca);
  if (version == Version::V5) {
    Publish retained = make_publish("a", "x", QoS::AtMostOnce);
    retained.retain = true;
    EXPECT_EQ(conn.publish(retained, now()).error(), Errc::RetainNotSupported);
    EXPECT_EQ(conn.publish(make_publish("a", std::string(100, 'x'), QoS::AtMostOnce), now())
                  .error(),
              Errc::PacketTooLarge);
    Publish aliased = make_publish("a", "x", QoS::AtMostOnce);
    aliased.properties.set_topic_alias(1);  // the session manages aliases
    EXPECT_EQ(conn.publish(aliased, now()).error(), Errc::InvalidArgument);
  }
  EXPECT_EQ(conn.publish(make_publish("a/#", "x", QoS::AtMostOnce), now()).error(),
            Errc::WildcardInTopicName);
  EXPECT_TRUE(conn.output_empty());
  // The caller's DUP flag is ignored: a QoS 0 PUBLISH never carries it [MQTT-3.3.1-2].
  Publish dup = make_publish("a", "x", QoS::AtMostOnce);
  dup.dup = true;
  ASSERT_TRUE(conn.publish(dup, now()).has_value());
  broker.expect(make_publish("a", "x", QoS::AtMostOnce));
  write();
  EXPECT_TRUE(broker.verify());
}

// --- direct QoS 0 writes (a driver's fast path past the send queue) ------------------------------

/// The "socket" takes the first `max` bytes of a direct packet; returns how many it took.
std::size_t write_direct(testing::MemoryTransport& net, const Connection::DirectPacket& p,
                         std::size_t max = SIZE_MAX) {
  ByteVector flat(p.head.begin(), p.head.end());
  flat.insert(flat.end(), p.payload.begin(), p.payload.end());
  const auto r = net.send(Bytes(flat.data(), std::min(flat.size(), max)));
  EXPECT_EQ(r.status, transport::IoStatus::Ok);
  return r.bytes;
}

TEST_P(ConnectionTest, ADirectQoS0PublishIsOneBufferCountedAsWrittenWithoutTheQueue) {
  connect_ok();
  clock.advance(3s);
  const std::string payload(64, 'd');
  const auto queued = conn.queued_total();
  const auto written = conn.written_total();
  const auto p = conn.direct_publish(make_publish("direct/t", payload, QoS::AtMostOnce));
  ASSERT_TRUE(p.has_value()) << to_string(p.error());
  // A small payload is copied behind the header: one buffer in the send buffer.
  EXPECT_TRUE(p->payload.empty());
  EXPECT_EQ(p->head.size(),
            *encoded_size(make_publish("direct/t", payload, QoS::AtMostOnce), version));
  EXPECT_GE(p->head.data(), tx.data());
  EXPECT_LE(p->head.data() + p->head.size(), tx.data() + tx.size());
  EXPECT_TRUE(conn.output_empty());  // nothing queued
  broker.expect(make_publish("direct/t", payload, QoS::AtMostOnce));
  const std::size_t n = write_direct(net, *p);
  conn.on_direct_written(*p, n, now());
  EXPECT_TRUE(conn.output_empty());
  EXPECT_EQ(conn.queued_total(), queued + n);
  EXPECT_EQ(conn.written_total(), written + n);
  // A packet written restarts the keep-alive interval, as through the queue.
  ASSERT_TRUE(conn.next_deadline().has_value());
  EXPECT_EQ(*conn.next_deadline(), now() + 10s);
  EXPECT_TRUE(broker.verify());
  EXPECT_EQ(broker.mismatches(), 0u);
}

TEST_P(ConnectionTest, ADirectQoS0PublishWithALargePayloadLeavesItInTheCallersMemory) {
  connect_ok();
  const std::string payload(Connection::kDirectCopyMax + 1, 'L');
  const auto p = conn.direct_publish(make_publish("big", payload, QoS::AtMostOnce));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->payload.data(), reinterpret_cast<const std::byte*>(payload.data()));
  EXPECT_EQ(p->payload.size(), payload.size());
  broker.expect(make_publish("big", payload, QoS::AtMostOnce));
  conn.on_direct_written(*p, write_direct(net, *p), now());
  EXPECT_TRUE(conn.output_empty());
  EXPECT_TRUE(broker.verify());
}

TEST_P(ConnectionTest, WhatAShortDirectWriteLeftIsQueuedAndFollowsInOrder) {
  connect_ok();
  const std::string big(Connection::kDirectCopyMax + 40, 'b');
  broker.expect(make_publish("short/1", big, QoS::AtMostOnce));
  const std::string mid(40, 's');
  broker.expect(make_publish("short/2", mid, QoS::AtMostOnce));
  broker.expect(make_publish("short/3", "x", QoS::AtMostOnce));
  const auto queued = conn.queued_total();
  // Part of the header only, part of the payload, nothing at all (WouldBlock).
  for (const std::size_t take : {std::size_t{3}, std::size_t{20}, std::size_t{0}}) {
    SCOPED_TRACE(take);
    const char* topic = take == 3 ? "short/1" : take == 20 ? "short/2" : "short/3";
    const std::string_view body = take == 3    ? std::string_view(big)
                                  : take == 20 ? std::string_view(mid)
                                               : std::string_view("x");
    const auto p = conn.direct_publish(make_publish(topic, body, QoS::AtMostOnce));
    ASSERT_TRUE(p.has_value());
    ASSERT_FALSE(p->head.empty());
    const std::size_t n = take == 0 ? 0 : write_direct(net, *p, take);
    conn.on_direct_written(*p, n, now());
    EXPECT_FALSE(conn.output_empty());
    EXPECT_EQ(conn.output_size(), p->head.size() + p->payload.size() - n);
    // The rest is queued: the direct path is closed until it is written.
    const auto again = conn.direct_publish(make_publish("never", "x", QoS::AtMostOnce));
    ASSERT_TRUE(again.has_value());
    EXPECT_TRUE(again->head.empty());
    write();
  }
  EXPECT_EQ(conn.queued_total(), conn.written_total());
  EXPECT_GT(conn.queued_total(), queued);
  EXPECT_TRUE(broker.verify());
  EXPECT_EQ(broker.mismatches(), 0u);
}

TEST_P(ConnectionTest, TheDirectPathAppliesOnlyToAPlainQoS0PublishWithNothingQueued) {
  // Not connected.
  EXPECT_EQ(conn.direct_publish(make_publish("a", "x", QoS::AtMostOnce)).error(),
            Errc::NotConnected);
  connect_ok();
  EXPECT_TRUE(conn.direct_publish(make_publish("a", "x", QoS::AtLeastOnce))->head.empty());
  Publish dup = make_publish("a", "x", QoS::AtMostOnce);
  dup.dup = true;
  EXPECT_TRUE(conn.direct_publish(dup)->head.empty());
  // Something queued: the message must not overtake it.
  ASSERT_TRUE(conn.publish(make_publish("first", "1", QoS::AtMostOnce), now()).has_value());
  EXPECT_TRUE(conn.direct_publish(make_publish("a", "x", QoS::AtMostOnce))->head.empty());
  broker.expect(make_publish("first", "1", QoS::AtMostOnce));
  write();
  // A header larger than the send buffer: the general path says why.
  EXPECT_TRUE(
      conn.direct_publish(make_publish(std::string(tx.size(), 't'), "x", QoS::AtMostOnce))
          ->head.empty());
  // The rules of publish hold, and nothing is counted when one refuses the message.
  const auto queued = conn.queued_total();
  EXPECT_EQ(conn.direct_publish(make_publish("a/+", "x", QoS::AtMostOnce)).error(),
            Errc::WildcardInTopicName);
  EXPECT_EQ(conn.queued_total(), queued);
  EXPECT_TRUE(conn.output_empty());
  EXPECT_TRUE(broker.verify());
}

TEST_P(ConnectionTest, ADirectQoS0PublishIsRefusedAsTheSessionWouldRefuseIt) {
  if (version != Version::V5) GTEST_SKIP() << "Retain Available and Maximum Packet Size are MQTT 5";
  ConnAck ca;
  ca.properties.set_retain_available(false);
  ca.properties.set_maximum_packet_size(64);
  connect_ok(true, ca);
  Publish retained = make_publish("a", "x", QoS::AtMostOnce);
  retained.retain = true;
  EXPECT_EQ(conn.direct_publish(retained).error(), Errc::RetainNotSupported);
  EXPECT_EQ(conn.direct_publish(make_publish("a", std::string(100, 'x'), QoS::AtMostOnce)).error(),
            Errc::PacketTooLarge);
  Publish aliased = make_publish("a", "x", QoS::AtMostOnce);
  aliased.properties.set_topic_alias(1);
  EXPECT_EQ(conn.direct_publish(aliased).error(), Errc::InvalidArgument);
  EXPECT_TRUE(conn.output_empty());
}

TEST_P(ConnectionTest, AnAckWithAReasonCodeWaitsForRoomForAllFiveBytes) {
  connect_ok();
  // Fill the send buffer to exactly 4 bytes short of full with two QoS 0 publishes without
  // payload (their headers are all send-buffer bytes).
  const auto size_of = [&](std::size_t topic) {
    return *encoded_size(make_publish(std::string(topic, 't'), "", QoS::AtMostOnce), version);
  };
  const std::size_t first = size_of(120);
  std::size_t topic = 1;
  while (first + size_of(topic) < tx.size() - 4) ++topic;
  ASSERT_EQ(first + size_of(topic), tx.size() - 4);
  ASSERT_TRUE(conn.publish(make_publish(std::string(120, 't'), "", QoS::AtMostOnce), now()));
  ASSERT_TRUE(conn.publish(make_publish(std::string(topic, 't'), "", QoS::AtMostOnce), now()));
  ASSERT_EQ(conn.output_size(), tx.size() - 4);
  // A PUBREL for an id we never received: answered with PUBCOMP, which in MQTT 5 carries
  // 0x92 Packet Identifier not found (5 bytes). It waits for room; the connection stays.
  PubRel rel;
  rel.packet_id = 9;
  broker.send(rel);
  read();
  EXPECT_TRUE(poll_all().empty());
  EXPECT_TRUE(conn.connected());
  PubComp comp;
  comp.packet_id = 9;
  if (version == Version::V5) comp.reason_code = ReasonCode::PacketIdentifierNotFound;
  broker.expect(PacketType::Publish);
  broker.expect(PacketType::Publish);
  broker.expect(comp);
  write();
  EXPECT_TRUE(poll_all().empty());  // handled quietly, its ack queued
  write();
  EXPECT_TRUE(conn.connected());
  EXPECT_TRUE(broker.verify());
}

TEST_P(ConnectionTest, ResendsWaitForRoomAndKeepTheirOrder) {
  connect_ok(false);
  constexpr std::size_t kCount = 24;  // more than the send queue holds
  std::vector<std::string> topics;
  for (std::size_t i = 0; i < kCount; ++i) topics.push_back("r/" + std::to_string(i));
  for (std::size_t i = 0; i < kCount; ++i) {
    broker.expect(PacketType::Publish);
    ASSERT_TRUE(conn.publish(make_publish(topics[i], "v", QoS::AtLeastOnce), now()).has_value())
        << i;
    write();
  }
  EXPECT_TRUE(broker.verify());
  conn.on_transport_closed(Errc::TransportClosed, now());
  auto events = poll_all();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::ConnectionClosed);
  EXPECT_EQ(events[0].error, Errc::TransportClosed);

  // Resume: every record is resent with DUP, in order, as the socket takes them.
  ConnAck present;
  present.session_present = true;
  broker.expect(PacketType::Connect).reply_with(present);
  ASSERT_TRUE(conn.connect(options(false), now(), 5s).has_value());
  write();
  read();
  events = poll_all();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::Connected);
  EXPECT_TRUE(events[0].session_present);
  for (std::size_t i = 0; i < kCount; ++i) {
    Publish p = make_publish(topics[i], "v", QoS::AtLeastOnce, static_cast<std::uint16_t>(i + 1));
    p.dup = true;
    broker.expect(p);
  }
  while (!conn.output_empty()) write(5);
  EXPECT_TRUE(broker.verify());
  EXPECT_EQ(broker.mismatches(), 0u);
}

TEST_P(ConnectionTest, ALostLinkReportsPendingRequestsAndDropsTheOutput) {
  connect_ok();
  const Subscription sub{"s/#", {QoS::AtLeastOnce}};
  auto id = conn.subscribe(std::span<const Subscription>(&sub, 1), now());
  ASSERT_TRUE(id.has_value());
  conn.on_transport_closed(Errc::TransportError, now());
  EXPECT_TRUE(conn.output_empty());
  const auto events = poll_all();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, EventType::ConnectionClosed);
  EXPECT_EQ(events[0].error, Errc::TransportError);
  EXPECT_EQ(events[1].type, EventType::SubscribeCompleted);
  EXPECT_EQ(events[1].packet_id, *id);
  EXPECT_EQ(events[1].error, Errc::NotConnected);
  // Poisoned: commands need a new connect.
  EXPECT_EQ(conn.publish(make_publish("x", "y", QoS::AtMostOnce), now()).error(),
            Errc::NotConnected);
}

TEST_P(ConnectionTest, QueuedTotalIsWrittenTotalPlusOutputAcrossDroppedOutput) {
  connect_ok();
  broker.expect(PacketType::Publish);
  ASSERT_TRUE(conn.publish(make_publish("a", "1", QoS::AtMostOnce), now()).has_value());
  write();
  ASSERT_TRUE(conn.publish(make_publish("b", "2", QoS::AtMostOnce), now()).has_value());
  EXPECT_EQ(conn.queued_total(), conn.written_total() + conn.output_size());
  EXPECT_GT(conn.output_size(), 0u);
  conn.on_transport_closed(Errc::TransportClosed, now());  // the rest is never written
  EXPECT_EQ(conn.queued_total(), conn.written_total());
  (void)poll_all();
  connect_ok();
  broker.expect(PacketType::Publish);
  ASSERT_TRUE(conn.publish(make_publish("c", "3", QoS::AtMostOnce), now()).has_value());
  const auto mark = conn.queued_total();
  write();
  EXPECT_GE(conn.written_total(), mark);  // a mark taken after the drop is reached
  EXPECT_EQ(conn.queued_total(), conn.written_total());
}

TEST_P(ConnectionTest, ReadingMoreThanTheBufferOfferedEndsTheConnectionNotTheBytes) {
  connect_ok();
  const auto free = conn.read_buffer().size();
  conn.on_read(free + 1, now());
  const auto events = poll_all();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::ConnectionClosed);
  EXPECT_EQ(events[0].error, Errc::InvalidArgument);
}

TEST_P(ConnectionTest, BytesFedInAnySizeGiveTheSameEvents) {
  connect_ok();
  ByteVector stream;
  for (std::uint16_t id = 1; id <= 5; ++id) {
    auto b = testing::encode_packet(
        make_publish("in/" + std::to_string(id), std::string(id * 10, 'x'), QoS::AtMostOnce),
        version);
    stream.insert(stream.end(), b.begin(), b.end());
  }
  std::vector<Seen> events;
  std::size_t fed = 0;
  while (fed < stream.size()) {
    // One byte at a time through the copying entry point.
    fed += conn.on_received(Bytes(stream.data() + fed, 1), now());
    auto more = poll_all();
    events.insert(events.end(), more.begin(), more.end());
  }
  ASSERT_EQ(events.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(events[i].type, EventType::MessageReceived);
    EXPECT_EQ(events[i].topic, "in/" + std::to_string(i + 1));
    EXPECT_EQ(events[i].payload.size(), (i + 1) * 10);
  }
}

TEST_P(ConnectionTest, ServerDisconnectIsOneEventNotTwo) {
  if (version != Version::V5) GTEST_SKIP() << "a server DISCONNECT is MQTT 5";
  connect_ok();
  Disconnect d;
  d.reason_code = ReasonCode::ServerShuttingDown;
  broker.send(d);
  read();
  const auto events = poll_all();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::ServerDisconnected);
  EXPECT_EQ(events[0].reason_code, ReasonCode::ServerShuttingDown);
  EXPECT_EQ(conn.error(), Errc::ServerDisconnected);
  EXPECT_TRUE(conn.output_empty());
}

}  // namespace
}  // namespace edgekit::mqtt::test

namespace edgekit::mqtt::test {
namespace {

TEST_P(ConnectionTest, WithMessageCopiesTheCallersBufferIsFreeWhenPublishReturns) {
  std::array<std::byte, 32 * 64> copies{};
  SessionStorage storage{out_records, in_qos2, in_alias.storage(), out_alias.storage(),
                         client_id_chars};
  storage.message_copies = copies;
  Session own(storage);
  std::array<std::byte, 512> own_rx{};
  std::array<std::byte, 256> own_tx{};
  Connection c(own, own_rx, own_tx);
  broker.expect(PacketType::Connect).reply_with(ConnAck{});
  ASSERT_TRUE(c.connect(options(), now(), 5s).has_value());
  auto flush = [&] {
    std::array<Bytes, 8> parts{};
    while (!c.output_empty()) {
      const std::size_t n = c.output(parts);
      const auto r = net.writev(std::span<const transport::ConstBuffer>(parts.data(), n));
      c.on_written(r.bytes, now());
    }
  };
  flush();
  const auto r = net.recv(c.read_buffer());
  c.on_read(r.bytes, now());
  ASSERT_EQ(c.poll_event(now())->type, EventType::Connected);
  std::string reading = "21.5";
  ASSERT_TRUE(c.publish(make_publish("temp", reading, QoS::AtLeastOnce), now()).has_value());
  reading = "99.9";  // the buffer is reused before the socket took the message
  broker.expect(make_publish("temp", "21.5", QoS::AtLeastOnce, 1));
  flush();
  EXPECT_TRUE(broker.verify());
  EXPECT_EQ(broker.mismatches(), 0u);
}

}  // namespace
}  // namespace edgekit::mqtt::test
