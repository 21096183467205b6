#pragma once
// Devices that connect with an identity of their own (Endpoint::identity) and prove the broker
// saw it: shared by the driver's identity tests and the simulator's. The broker takes the
// certificate's CN as the user name and an ACL lets each user touch only ids/<its CN>.

#include <edgekit/mqtt_asio/connection.hpp>
#include <edgekit/testing/mosquitto.hpp>
#include <edgekit/tls/tls.hpp>

#include <array>
#include <fstream>
#include <string>

#include "evloop_test_support.hpp"

namespace edgekit::mqtt_asio::test {

// A CA-only context: what every device shares.
inline tls::Config shared_config(const TestPki& pki) {
  tls::Config c;
  c.ca_file = pki.ca.cert_file();
  return c;
}

// Mosquitto with the TLS listener of TestPki and an ACL: each user (= the certificate's CN)
// may read and write ids/<its CN> only.
inline testing::MosquittoOptions identity_broker(const TestPki& pki, const std::string& dir) {
  const std::string acl = dir + "/acl";
  std::ofstream(acl) << "pattern readwrite ids/%u\n";
  testing::MosquittoOptions o;
  o.max_connections = -1;
  o.tls = pki.listener();
  o.extra_lines = {"acl_file " + acl, "connection_messages false"};
  o.start_timeout = std::chrono::milliseconds(10000);
  return o;
}

// One device: its identity, session, buffers and connection. It subscribes to its own topic,
// publishes at QoS 1 once to it and once to its neighbour's, and is done when its own message
// came back acknowledged and the other was refused (PUBACK 0x87, MQTT 5). A message that was not
// its own arriving on its topic fails it (a neighbour whose publish got through).
class IdDevice final : public Handler {
 public:
  IdDevice(Driver& driver, std::string cn, std::string neighbour, tls::ClientIdentity identity)
      : cn_(std::move(cn)),
        own_("ids/" + cn_),
        neighbour_("ids/" + neighbour),
        identity_(std::move(identity)),
        session_(state_.storage()),
        conn_(driver, session_, state_.rx, state_.tx, *this) {}

  void start(const tls::TlsContext& context, std::uint16_t port) {
    mqtt::ConnectOptions o;
    o.version = mqtt::Version::V5;
    o.client_id = cn_;
    o.keep_alive_seconds = 120;
    const Endpoint ep{{asio::ip::make_address_v4("127.0.0.1"), port}, &context, "localhost",
                      &identity_};
    if (!conn_.start(ep, o, Duration{60000})) fail("start");
  }

  void on_event(Connection& c, const mqtt::Event& e) override {
    switch (e.type) {
      case mqtt::EventType::Connected: {
        const std::array<mqtt::Subscription, 1> own{
            mqtt::Subscription{own_, mqtt::SubscribeOptions{mqtt::QoS::AtLeastOnce}}};
        if (!c.subscribe(own)) fail("subscribe");
        break;
      }
      case mqtt::EventType::SubscribeCompleted: {
        if (e.error != mqtt::Errc::Ok || e.reason_code != mqtt::ReasonCode::Success) {
          return fail("own topic refused");
        }
        mqtt::Publish p;
        p.topic = own_;
        p.payload = mqtt::as_bytes(cn_);
        p.qos = mqtt::QoS::AtLeastOnce;
        auto mine = c.publish(p);
        p.topic = neighbour_;
        auto theirs = c.publish(p);
        if (!mine || !theirs) return fail("publish");
        own_publish_ = *mine;
        break;
      }
      case mqtt::EventType::PublishCompleted:
        if (e.packet_id == own_publish_) {
          acked_ = e.reason_code == mqtt::ReasonCode::Success;
          if (!acked_) fail("own publish refused");
        } else {
          neighbour_refused_ = e.reason_code == mqtt::ReasonCode::NotAuthorized;
          if (!neighbour_refused_) fail("publish to the neighbour's topic not refused");
        }
        break;
      case mqtt::EventType::MessageReceived:
        echoed_ = e.message->topic == own_ && mqtt::as_string(e.message->payload) == cn_;
        if (!echoed_) fail("a foreign message");
        break;
      default:
        fail(std::string("event ") + std::to_string(static_cast<int>(e.type)) + " " +
             mqtt::to_string(e.error));
        break;
    }
  }
  void on_closed(Connection&, std::error_code ec) override {
    closed_ = true;
    close_error_ = ec;
  }
  void fail(const std::string& why) {
    if (failure_.empty()) failure_ = cn_ + ": " + why;
  }
  [[nodiscard]] bool done() const { return echoed_ && acked_ && neighbour_refused_; }

  std::string cn_, own_, neighbour_;
  tls::ClientIdentity identity_;
  DeviceState<4, 256> state_;
  mqtt::Session session_;
  Connection conn_;
  std::uint16_t own_publish_ = 0;
  bool neighbour_refused_ = false, acked_ = false, echoed_ = false, closed_ = false;
  std::error_code close_error_;
  std::string failure_;
};

}  // namespace edgekit::mqtt_asio::test
