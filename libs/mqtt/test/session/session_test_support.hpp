#pragma once
// Helpers for the session tests: a session with static storage, connect helpers and simulated
// time. Everything lives in the fixture: the tests run under the allocation guard.
#include <array>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string_view>

#include <gtest/gtest.h>

#include "edgekit/mqtt/session.hpp"
#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::mqtt {
// gtest prints an Errc by name (not through std::error_code, whose category lives in the client
// library).
inline void PrintTo(Errc e, std::ostream* os) { *os << to_string(e); }
inline void PrintTo(ReasonCode rc, std::ostream* os) { *os << to_string(rc); }
}  // namespace edgekit::mqtt

namespace edgekit::mqtt::test {

inline Instant at_ms(std::int64_t ms) { return Instant{Duration{ms}}; }

/// Storage for one session: 8 records, 4 inbound QoS 2 ids, 4 aliases of 32 bytes each way.
struct SessionBuffers {
  std::array<OutgoingRecord, 8> records{};
  std::array<std::uint16_t, 4> incoming{};
  TopicAliasArena<4, 32> in_aliases;
  TopicAliasArena<4, 32> out_aliases;
  std::array<char, 64> client_id{};
  SessionStorage storage() {
    return SessionStorage{records, incoming, in_aliases.storage(), out_aliases.storage(), client_id};
  }
};

class SessionTest : public edgekit::testing::PureTest {
 protected:
  SessionBuffers buf;
  Session session{buf.storage()};
  Instant now = at_ms(1'000);

  /// CONNECT + CONNACK. `connack` lets a test set the server's properties.
  ConnAckOutcome connect(Version v = Version::V5, bool clean_start = true,
                         ConnAck connack = {}, std::uint16_t keep_alive = 60) {
    return connect_session(session, v, clean_start, connack, keep_alive);
  }
  ConnAckOutcome connect_session(Session& s, Version v, bool clean_start, ConnAck connack,
                                 std::uint16_t keep_alive = 60) {
    Connect c;
    c.version = v;
    c.client_id = "device-1";
    c.clean_start = clean_start;
    c.keep_alive = keep_alive;
    if (v == Version::V5 && !clean_start) c.properties.set_session_expiry_interval(3600);
    auto r = s.prepare_connect(c);
    EXPECT_TRUE(r.has_value()) << to_string(r.error());
    s.on_sent(now);
    auto a = s.on_connack(connack);
    EXPECT_TRUE(a.has_value()) << (a ? "" : to_string(a.error()));
    return a ? *a : ConnAckOutcome{};
  }

  /// Starts a publish; returns its packet id (0 on failure, with a test failure).
  std::uint16_t publish(std::string_view topic, QoS qos, std::string_view payload = "x") {
    Publish p;
    p.topic = topic;
    p.payload = as_bytes(payload);
    p.qos = qos;
    auto r = session.begin_publish(p);
    EXPECT_TRUE(r.has_value()) << to_string(r.error());
    return r ? p.packet_id : 0;
  }
};

}  // namespace edgekit::mqtt::test
