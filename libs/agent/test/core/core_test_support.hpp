#pragma once
// What the tests of the stepped agent core share: a factory that makes one in-memory connection per
// attempt with its own scripted broker, a recorder of statuses and outcomes, a broker that answers
// everything, and the fixture that steps a core in simulated time.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "edgekit/agent/core.hpp"
#include "edgekit/mqtt/codec.hpp"
#include "edgekit/testing/manual_clock.hpp"
#include "edgekit/testing/memory_transport.hpp"
#include "edgekit/testing/scripted_broker.hpp"

namespace edgekit::agent::test {
using namespace std::chrono_literals;
using mqtt::PacketType;
using mqtt::QoS;
using mqtt::ReasonCode;
using testing::ScriptedBroker;

// Makes one in-memory connection per attempt, each with its own scripted broker; `script` writes
// the conversation of attempt n (0-based). Failing attempts are scripted with `fail_next`.
class ScriptedFactory final : public TransportFactory {
 public:
  struct Link {
    explicit Link(mqtt::Version v) : broker(net, v) {}
    testing::MemoryTransport net;
    ScriptedBroker broker;  // unscripted when `raw` is set: the test answers on `net` itself
  };
  explicit ScriptedFactory(mqtt::Version v) : version_(v) {}

  edgekit::Result<TransportConnection, TransportFailure> connect() noexcept override {
    ++attempts;
    if (failures_left > 0) {
      --failures_left;
      TransportFailure f;
      f.detail = "scripted failure";
      return fail(f);
    }
    links.push_back(std::make_unique<Link>(version_));
    Link& l = *links.back();
    if (script) script(links.size() - 1, l.broker);
    if (raw) raw(l.net);
    return TransportConnection{&l.net, -1};
  }
  Link& last() { return *links.back(); }

  std::function<void(std::size_t attempt, ScriptedBroker& broker)> script;
  /// Instead of a script: the test answers on the transport itself (replaces the broker's hook).
  std::function<void(testing::MemoryTransport& net)> raw;
  int failures_left = 0;
  int attempts = 0;
  std::vector<std::unique_ptr<Link>> links;

 private:
  mqtt::Version version_;
};

struct Recorder {
  std::vector<Status> statuses;
  std::vector<Outcome> outcomes;
  std::vector<std::string> messages;
  // Status::record is valid during the call only: kept as a copy, beside the status.
  std::vector<std::string> records;
  static void on_status(void* c, const Status& s) {
    static_cast<Recorder*>(c)->statuses.push_back(s);
    static_cast<Recorder*>(c)->statuses.back().record = {};
    static_cast<Recorder*>(c)->records.emplace_back(s.record);
  }
  static void on_done(void* c, const Outcome& o) {
    static_cast<Recorder*>(c)->outcomes.push_back(o);
  }
  static void on_message(void* c, const mqtt::Publish& p) {
    static_cast<Recorder*>(c)->messages.emplace_back(mqtt::as_string(p.payload));
  }
  StatusHandler status() { return {&on_status, this}; }
  CompletionHandler done() { return {&on_done, this}; }
  MessageHandler handler() { return {&on_message, this}; }
  std::size_t count(StatusReason r) const {
    std::size_t n = 0;
    for (const auto& s : statuses) n += s.reason == r ? 1 : 0;
    return n;
  }
  const Status* last(StatusReason r) const {
    for (auto it = statuses.rbegin(); it != statuses.rend(); ++it) {
      if (it->reason == r) return &*it;
    }
    return nullptr;
  }
};

inline mqtt::Publish message(std::string_view topic, std::string_view payload, QoS qos) {
  mqtt::Publish p;
  p.topic = topic;
  p.payload = mqtt::as_bytes(payload);
  p.qos = qos;
  return p;
}

// A PUBLISH of `payload` (any id, any topic).
inline std::function<bool(const mqtt::Packet&)> publish_of(std::string payload) {
  return [payload](const mqtt::Packet& p) {
    const auto* m = std::get_if<mqtt::Publish>(&p);
    return m != nullptr && mqtt::as_string(m->payload) == payload;
  };
}

inline mqtt::PubAck puback_of(const mqtt::Packet& p) {
  mqtt::PubAck a;
  a.packet_id = std::get<mqtt::Publish>(p).packet_id;
  return a;
}

// Acknowledges a QoS 1 PUBLISH.
inline ScriptedBroker::Responder puback() {
  return [](const mqtt::Packet& p) -> std::vector<mqtt::Packet> { return {puback_of(p)}; };
}

inline const ReasonCode kGrantedQoS1[] = {ReasonCode::GrantedQoS1};
inline ScriptedBroker::Responder suback() {
  return [](const mqtt::Packet& p) -> std::vector<mqtt::Packet> {
    mqtt::SubAck a;
    a.packet_id = std::get<mqtt::Subscribe>(p).packet_id;
    a.reason_codes = kGrantedQoS1;
    return {a};
  };
}

// Names the instances of a test parameterised by the protocol version: V5, V311.
inline std::string version_name(const ::testing::TestParamInfo<mqtt::Version>& info) {
  return info.param == mqtt::Version::V5 ? "V5" : "V311";
}

inline mqtt::ConnAck connack(bool session_present = false) {
  mqtt::ConnAck a;
  a.session_present = session_present;
  return a;
}

class AgentCoreTest : public ::testing::TestWithParam<mqtt::Version> {
 protected:
  AgentCoreTest() : factory(GetParam()) {
    options.version = GetParam();
    options.client_id = "core-1";
    options.keep_alive_seconds = 0;  // no PINGREQ in the scripts unless a test wants one
    options.clean_start = false;
    if (GetParam() == mqtt::Version::V5) options.properties.set_session_expiry_interval(3600);
    config.reconnect_backoff = {Duration{100}, Duration{1600}};
    config.operation_timeout = Duration{2000};
    config.connect_timeout = Duration{3000};
  }

  // Makes the core (after the test changed `config`) and starts it.
  AgentCore& make() {
    core = std::make_unique<AgentCore>(config, options, factory);
    core->set_status_handler(rec.status());
    EXPECT_TRUE(core->start());
    return *core;
  }

  Instant now() const { return clock.now(); }
  void step() { core->step(now()); }
  // Moves the clock to `t` and steps.
  void step_at(Instant t) {
    clock.set(t);
    step();
  }
  // Steps at every deadline up to and including `t` (as a driver would), then at `t`.
  void run_until(Instant t) {
    for (int guard = 0; guard < 10'000; ++guard) {
      step();
      const auto due = core->next_deadline();
      if (!due || *due > t) break;
      clock.set(*due);
    }
    clock.set(t);
    step();
  }

  // The first connection: CONNECT answered with CONNACK at once.
  void connect_first() {
    step();
    ASSERT_EQ(core->state(), ConnectionState::Connected);
    ASSERT_EQ(rec.count(StatusReason::SessionStarted), 1u);
  }

  testing::ManualClock clock{Instant{Duration{1'000'000}}};
  ScriptedFactory factory;
  mqtt::ConnectOptions options;
  Config config;
  Recorder rec;
  std::unique_ptr<AgentCore> core;
};

// A broker that answers everything (CONNACK with the session kept, PUBACK, PUBREC / PUBCOMP,
// SUBACK, PINGRESP) and records the payloads it got, for the simulations (link cuts in
// agent_core_test, store faults in agent_persistence_test). It sits on the transport's outbound
// hook (a ScriptedBroker wants every packet scripted). Its answers wait until `release` (the test
// lets them through at random moments; a cut loses those still held).
struct AnsweringBroker {
  mqtt::Version version = mqtt::Version::V5;
  std::vector<std::string> got;
  std::vector<std::byte> pending;
  std::vector<std::byte> held;
  testing::MemoryTransport* link = nullptr;
  bool lose_session = false;  // the next CONNACK says the session is gone
  bool answer_subscribe = true;  // SUBACK (QoS 1 granted) to a SUBSCRIBE of one filter
  void release() {
    if (link != nullptr && !held.empty()) link->push_inbound(held);
    held.clear();
  }
  void attach(testing::MemoryTransport& net) {
    pending.clear();
    held.clear();
    link = &net;
    net.on_outbound([this](std::span<const std::byte> bytes) {
      pending.insert(pending.end(), bytes.begin(), bytes.end());
      for (;;) {
        auto f = mqtt::read_frame(mqtt::Bytes(pending.data(), pending.size()));
        if (!f || !f->complete) return;
        const std::size_t n = f->header.packet_size();
        auto d = mqtt::decode(mqtt::Bytes(pending.data(), n), version);
        if (d) {
          for (const auto& reply : answer(*d)) {
            const auto out = testing::encode_packet(reply, version);
            held.insert(held.end(), out.begin(), out.end());
          }
        }
        pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(n));
      }
    });
  }
  std::vector<mqtt::Packet> answer(const mqtt::Packet& p) {
    if (std::holds_alternative<mqtt::Connect>(p)) {
      const bool present = !lose_session;
      lose_session = false;
      return {connack(present)};
    }
    if (std::holds_alternative<mqtt::PingReq>(p)) return {mqtt::PingResp{}};
    if (const auto* m = std::get_if<mqtt::Publish>(&p)) {
      got.emplace_back(mqtt::as_string(m->payload));
      if (m->qos == QoS::AtLeastOnce) return {puback_of(p)};
      if (m->qos == QoS::ExactlyOnce) {
        mqtt::PubRec r;
        r.packet_id = m->packet_id;
        return {r};
      }
      return {};
    }
    if (const auto* sub = std::get_if<mqtt::Subscribe>(&p)) {
      if (!answer_subscribe) return {};
      mqtt::SubAck a;
      a.packet_id = sub->packet_id;
      a.reason_codes = kGrantedQoS1;
      return {a};
    }
    if (const auto* r = std::get_if<mqtt::PubRel>(&p)) {
      mqtt::PubComp c;
      c.packet_id = r->packet_id;
      return {c};
    }
    return {};
  }
};

}  // namespace edgekit::agent::test
