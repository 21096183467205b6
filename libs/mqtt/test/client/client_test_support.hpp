#pragma once
// Fixture of the client tests: a Client over a MemoryTransport (wrapped to record the buffers of
// every writev), a ScriptedBroker, a ManualClock, a Session on static storage, and a handler that
// copies every event.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "edgekit/mqtt/client.hpp"
#include "edgekit/mqtt/codec.hpp"
#include "edgekit/mqtt/session.hpp"
#include "edgekit/testing/manual_clock.hpp"
#include "edgekit/testing/memory_transport.hpp"
#include "edgekit/testing/scripted_broker.hpp"
#include "../support/test_packets.hpp"

namespace edgekit::mqtt::test {

using namespace std::chrono_literals;
using testing::ByteVector;

/// Forwards to a MemoryTransport and records, per send and writev, where each buffer pointed.
class SpyTransport final : public transport::Transport {
 public:
  explicit SpyTransport(testing::MemoryTransport& inner) : inner_(inner) {}
  transport::IoResult send(transport::ConstBuffer data) noexcept override {
    sends.push_back(data);
    return inner_.send(data);
  }
  transport::IoResult recv(std::span<std::byte> buffer) noexcept override {
    return inner_.recv(buffer);
  }
  transport::IoResult writev(std::span<const transport::ConstBuffer> buffers) noexcept override {
    std::vector<transport::ConstBuffer> call(buffers.begin(), buffers.end());
    writevs.push_back(std::move(call));
    return inner_.writev(buffers);
  }
  transport::WaitStatus wait(transport::Interest i, std::uint32_t ms) noexcept override {
    return inner_.wait(i, ms);
  }
  void close() noexcept override { inner_.close(); }
  std::vector<std::vector<transport::ConstBuffer>> writevs;
  std::vector<transport::ConstBuffer> sends;  // where each send's buffer pointed

 private:
  testing::MemoryTransport& inner_;
};

/// A copy of an event, so that tests can look at it after the handler returned.
struct SeenEvent {
  EventType type{};
  std::uint16_t packet_id = 0;
  ReasonCode reason_code = ReasonCode::Success;
  Errc error = Errc::Ok;
  std::string topic;
  std::string payload;
  QoS qos = QoS::AtMostOnce;
  bool dup = false;
  bool retain = false;
  std::string reason_string;
  bool pubrec_received = false;
  std::vector<ReasonCode> reason_codes;  ///< Subscribe/UnsubscribeCompleted
  bool has_properties = false;
};

inline Bytes bytes_of(std::string_view s) {
  return as_bytes(s);
}


class ClientTestBase {
 public:
  explicit ClientTestBase(Version v, std::size_t rx_size = 1024)
      : version(v),
        broker(net, v),
        session(SessionStorage{out_records, in_qos2, in_alias.storage(), out_alias.storage(),
                               client_id_chars}),
        rx(rx_size),
        client(spy, clock, session, std::span<std::byte>(rx), tx, EventHandler(&on_event, this)) {
    net.attach_clock(&clock);
  }
  virtual ~ClientTestBase() = default;

  static void on_event(void* ctx, Client& c, const Event& e) {
    auto* self = static_cast<ClientTestBase*>(ctx);
    SeenEvent s;
    s.type = e.type;
    s.packet_id = e.packet_id;
    s.reason_code = e.reason_code;
    s.error = e.error;
    if (e.message != nullptr) {
      s.topic = std::string(e.message->topic);
      s.pubrec_received = e.pubrec_received;
      s.payload = std::string(as_string(e.message->payload));
      s.qos = e.message->qos;
      s.dup = e.message->dup;
      s.retain = e.message->retain;
    }
    s.reason_codes.assign(e.reason_codes.begin(), e.reason_codes.end());
    s.has_properties = e.properties != nullptr;
    if (e.properties != nullptr && e.properties->reason_string()) {
      s.reason_string = std::string(*e.properties->reason_string());
    }
    self->events.push_back(s);
    if (self->on_event_hook) self->on_event_hook(c, e);
  }

  ConnectOptions options(bool clean = true) const {
    ConnectOptions o;
    o.version = version;
    o.client_id = "dev-1";
    o.clean_start = clean;
    o.keep_alive_seconds = 60;
    if (version == Version::V5 && !clean) o.properties.set_session_expiry_interval(3600);
    return o;
  }

  /// Connects with a scripted CONNACK; asserts success.
  void connect_ok(ConnAck connack = {}, std::optional<ConnectOptions> opts = std::nullopt) {
    broker.expect(PacketType::Connect).reply_with(connack);
    auto r = client.connect(opts ? *opts : options(), 5s);
    ASSERT_TRUE(r.has_value()) << to_string(r.error());
    ASSERT_TRUE(client.connected());
  }

  /// The packets the client wrote since the last call, decoded descriptions.
  std::vector<Packet> sent_packets() {
    std::vector<Packet> out;
    for (std::size_t i = seen_frames_; i < broker.received().size(); ++i) {
      frames_keep_.push_back(broker.received()[i]);
    }
    for (std::size_t i = seen_frames_; i < frames_keep_.size(); ++i) {
      auto p = decode(frames_keep_[i], version);
      EXPECT_TRUE(p.has_value());
      if (p) out.push_back(*p);
    }
    seen_frames_ = frames_keep_.size();
    return out;
  }

  std::size_t count(EventType t) const {
    std::size_t n = 0;
    for (const auto& e : events) n += e.type == t ? 1 : 0;
    return n;
  }

  Version version;
  testing::ManualClock clock;
  testing::MemoryTransport net;
  SpyTransport spy{net};
  testing::ScriptedBroker broker;
  std::array<OutgoingRecord, 8> out_records{};
  std::array<std::uint16_t, 8> in_qos2{};
  TopicAliasArena<4, 64> in_alias{};
  TopicAliasArena<4, 64> out_alias{};
  std::array<char, 64> client_id_chars{};
  Session session;
  std::vector<std::byte> rx;
  std::array<std::byte, 512> tx{};
  Client client;
  std::vector<SeenEvent> events;
  std::function<void(Client&, const Event&)> on_event_hook;

 private:
  std::size_t seen_frames_ = 0;
  std::vector<ByteVector> frames_keep_;
};

}  // namespace edgekit::mqtt::test
