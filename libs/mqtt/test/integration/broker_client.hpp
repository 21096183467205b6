#pragma once
// A real client (TCP + Session + Client) for integration tests against a real Mosquitto: records
// every event, copying what it needs to keep, so tests can assert on them after the fact.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "edgekit/core/clock.hpp"
#include "edgekit/mqtt/client.hpp"
#include "edgekit/mqtt/session.hpp"
#include "edgekit/transport/tcp.hpp"

namespace edgekit::mqtt::integration {

struct Received {
  std::string topic;
  std::string payload;
  QoS qos = QoS::AtMostOnce;
  bool retain = false;
  bool dup = false;
  std::vector<std::pair<std::string, std::string>> user_properties;
  std::optional<std::string> content_type;
  std::optional<std::string> response_topic;
  std::optional<std::string> correlation_data;
  std::optional<std::uint32_t> message_expiry;
  std::optional<bool> payload_format_utf8;
  std::vector<std::uint32_t> subscription_ids;
};

class BrokerClient {
 public:
  explicit BrokerClient(std::uint16_t port, std::size_t rx_size = 64 * 1024,
                        SessionStore* store = nullptr)
      : port_(port), rx_(rx_size), tx_(64 * 1024) {
    SessionStorage storage;
    storage.outgoing = outgoing_;
    storage.incoming_qos2 = incoming_qos2_;
    storage.inbound_aliases = in_aliases_.storage();
    storage.outbound_aliases = out_aliases_.storage();
    storage.client_id = client_id_;
    session_ = std::make_unique<Session>(storage, store);
    client_ = std::make_unique<Client>(tcp_, clock_, *session_, rx_, tx_, EventHandler::bind(*this));
  }

  /// TCP connect + MQTT connect; returns the CONNACK or the error.
  Result<ConnAck> connect(ConnectOptions options) {
    auto tcp = transport::TcpTransport::connect("127.0.0.1", port_, edgekit::Duration{3000});
    if (!tcp) return fail(Errc::ConnectFailed);
    tcp_ = std::move(*tcp);
    return client_->connect(options, Duration{5000});
  }

  Result<ConnAck> connect(Version v, std::string_view id, bool clean = true, std::uint32_t expiry = 0) {
    ConnectOptions o;
    o.version = v;
    o.client_id = id;
    o.clean_start = clean;
    if (v == Version::V5 && expiry != 0) o.properties.set_session_expiry_interval(expiry);
    return connect(o);
  }

  /// Subscribes to one filter; returns the granted reason code.
  ReasonCode subscribe(std::string_view filter, QoS qos, const Properties& props = {}) {
    Subscription s{filter, SubscribeOptions{qos}};
    std::array<ReasonCode, 1> codes{};
    auto r = client_->subscribe({&s, 1}, codes, Duration{5000}, props);
    EXPECT_TRUE(r.has_value()) << "subscribe: " << (r ? "" : to_string(r.error()));
    return codes[0];
  }

  /// Runs the loop until `n` messages were received in total or `timeout` passes.
  bool wait_for_messages(std::size_t n, Duration timeout = Duration{5000}) {
    const Instant deadline = clock_.now() + timeout;
    while (received.size() < n && clock_.now() < deadline) {
      auto r = client_->process_loop(Duration{50});
      if (!r) {
        last_error = r.error();
        return false;
      }
    }
    return received.size() >= n;
  }

  /// Runs the loop for `d` (or until an error, which it returns).
  Result<void> run_for(Duration d) {
    const Instant deadline = clock_.now() + d;
    while (clock_.now() < deadline) {
      auto r = client_->process_loop(Duration{20});
      if (!r) return r;
    }
    return {};
  }

  void operator()(Client&, const Event& e) {
    events.push_back(e.type);
    if (e.type == EventType::PublishCompleted) completed.push_back({e.packet_id, e.reason_code});
    if (e.type == EventType::MessageLost) lost.push_back(e.packet_id);
    if (e.type == EventType::ConnectionClosed || e.type == EventType::ServerDisconnected) {
      closed_with = e.error;
    }
    if (e.type != EventType::MessageReceived) return;
    const Publish& m = *e.message;
    Received r;
    r.topic = std::string(m.topic);
    r.payload = std::string(as_string(m.payload));
    r.qos = m.qos;
    r.retain = m.retain;
    r.dup = m.dup;
    const Properties& p = m.properties;
    for (UserProperty up : p.user_properties) r.user_properties.emplace_back(up.key, up.value);
    if (p.content_type()) r.content_type = std::string(*p.content_type());
    if (p.response_topic()) r.response_topic = std::string(*p.response_topic());
    if (p.correlation_data()) r.correlation_data = std::string(as_string(*p.correlation_data()));
    r.message_expiry = p.message_expiry_interval();
    r.payload_format_utf8 = p.payload_format_utf8();
    for (std::uint32_t id : p.subscription_identifiers) r.subscription_ids.push_back(id);
    received.push_back(std::move(r));
  }

  Client& client() { return *client_; }
  Session& session() { return *session_; }
  transport::TcpTransport& tcp() { return tcp_; }
  const Clock& clock() const { return clock_; }

  std::vector<Received> received;
  std::vector<std::pair<std::uint16_t, ReasonCode>> completed;
  std::vector<std::uint16_t> lost;
  std::vector<EventType> events;
  Errc closed_with = Errc::Ok;
  Errc last_error = Errc::Ok;

 private:
  std::uint16_t port_;
  SteadyClock clock_;
  transport::TcpTransport tcp_;
  std::vector<std::byte> rx_;
  std::vector<std::byte> tx_;
  std::array<OutgoingRecord, 256> outgoing_{};
  std::array<std::uint16_t, 256> incoming_qos2_{};
  TopicAliasArena<16, 128> in_aliases_;
  TopicAliasArena<16, 128> out_aliases_;
  std::array<char, 128> client_id_{};
  std::unique_ptr<Session> session_;
  std::unique_ptr<Client> client_;
};

inline const char* name(Version v) { return v == Version::V5 ? "V5" : "V311"; }

}  // namespace edgekit::mqtt::integration
