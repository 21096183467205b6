// The agent against a real Mosquitto: commands from many threads, routing, re-entrancy, queue
// bounds, offline policies, permanent failures, session loss, batching.
#include "edgekit/agent/agent.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent_test_support.hpp"
#include "edgekit/mqtt/file_store.hpp"
#include "edgekit/testing/fault_proxy.hpp"
#include "edgekit/testing/mosquitto.hpp"
#include "edgekit/transport/tcp.hpp"

namespace edgekit::agent::test {
namespace {

using mqtt::QoS;
using mqtt::ReasonCode;
using mqtt::Version;

using AgentTest = AgentBrokerTest;

TEST_P(AgentTest, PublishesAllQoSToItselfAndReportsBrokerReasonCodes) {
  TcpTransportFactory factory("127.0.0.1", broker().port());
  const auto o = options("agent-self");
  StatusLog log;
  Inbox inbox;
  Agent agent(Config{}, o, factory, clock_);
  agent.set_status_handler(log.handler());
  ASSERT_TRUE(agent.start());
  auto sub = agent.subscribe_and_wait("self/#", {QoS::ExactlyOnce}, inbox.handler(), 5s);
  ASSERT_TRUE(sub) << to_string(sub.error().code);
  EXPECT_EQ(sub->reason_code, ReasonCode::GrantedQoS2);
  for (QoS q : {QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce}) {
    auto r = agent.publish_and_wait(message("self/x", "hello", q), 5s);
    ASSERT_TRUE(r) << to_string(r.error().code);
    EXPECT_TRUE(r->ok());
    EXPECT_EQ(r->packet_id == 0, q == QoS::AtMostOnce);
  }
  ASSERT_TRUE(inbox.wait_for(3));
  auto got = inbox.snapshot();
  EXPECT_EQ(got[0].payload, "hello");
  EXPECT_EQ(got[2].qos, QoS::ExactlyOnce);
  EXPECT_EQ(log.count_reason(StatusReason::SessionStarted), 1u);
  EXPECT_EQ(agent.state(), ConnectionState::Connected);
  auto d = agent.disconnect_and_wait(5s);
  ASSERT_TRUE(d);
  EXPECT_EQ(agent.state(), ConnectionState::Closed);
}

TEST_P(AgentTest, RouterGivesEachHandlerOnlyItsOwnTraffic) {
  TcpTransportFactory factory("127.0.0.1", broker().port());
  const auto o = options("agent-router");
  Inbox plus, hash, dollar, shared, exact;
  Agent agent(Config{}, o, factory, clock_);
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(agent.subscribe_and_wait("r/+/temp", {QoS::AtLeastOnce}, plus.handler(), 5s));
  ASSERT_TRUE(agent.subscribe_and_wait("q/#", {QoS::AtLeastOnce}, hash.handler(), 5s));
  ASSERT_TRUE(agent.subscribe_and_wait("$app/#", {QoS::AtLeastOnce}, dollar.handler(), 5s));
  ASSERT_TRUE(agent.subscribe_and_wait("$share/g1/s/+", {QoS::AtLeastOnce}, shared.handler(), 5s));
  ASSERT_TRUE(agent.subscribe_and_wait("x/y", {QoS::AtLeastOnce}, exact.handler(), 5s));
  for (auto t : {"r/1/temp", "r/2/temp", "r/1/hum", "q", "q/a/b", "$app/z", "s/1", "x/y", "x/z"}) {
    ASSERT_TRUE(agent.publish_and_wait(message(t, t, QoS::AtLeastOnce), 5s));
  }
  ASSERT_TRUE(exact.wait_for(1));
  std::this_thread::sleep_for(200ms);
  auto topics = [](Inbox& in) {
    std::vector<std::string> v;
    for (auto& m : in.snapshot()) v.push_back(m.topic);
    return v;
  };
  EXPECT_EQ(topics(plus), (std::vector<std::string>{"r/1/temp", "r/2/temp"}));
  EXPECT_EQ(topics(hash), (std::vector<std::string>{"q", "q/a/b"}));
  EXPECT_EQ(topics(dollar), (std::vector<std::string>{"$app/z"}));
  EXPECT_EQ(topics(shared), (std::vector<std::string>{"s/1"}));
  EXPECT_EQ(topics(exact), (std::vector<std::string>{"x/y"}));
  // Unsubscribed: no more traffic for that handler.
  auto u = agent.unsubscribe_and_wait("x/y", 5s);
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->ok());
  ASSERT_TRUE(agent.publish_and_wait(message("x/y", "late", QoS::AtLeastOnce), 5s));
  ASSERT_TRUE(agent.publish_and_wait(message("q/after", "q", QoS::AtLeastOnce), 5s));
  ASSERT_TRUE(hash.wait_for(3));
  EXPECT_EQ(exact.size(), 1u);
  auto nu = agent.unsubscribe_and_wait("never/subscribed", 5s);
  ASSERT_TRUE(nu);
  EXPECT_EQ(nu->error, Errc::NotSubscribed);
}

// A handler that publishes and subscribes through the agent (re-entrantly), and whose waiting
// calls are refused instead of deadlocking.
struct Echo {
  Agent* agent = nullptr;
  Inbox* replies = nullptr;
  std::atomic<int> would_deadlock{0};
  std::atomic<int> wait_refused{0};
  std::atomic<int> subscribed{0};
  static void on(void* ctx, const mqtt::Publish& p) {
    auto* self = static_cast<Echo*>(ctx);
    std::string reply = "re:" + std::string(mqtt::as_string(p.payload));
    (void)!self->agent->publish(message("echo/out", reply, QoS::AtLeastOnce));
    auto w = self->agent->publish_and_wait(message("echo/out", "x"), 1s);
    if (!w && w.error().code == Errc::WouldDeadlock) ++self->would_deadlock;
    // Waiting for room on the thread that makes room is refused too.
    auto pw = self->agent->publish(message("echo/out", "y"), {}, PublishWait{Duration{1000}});
    if (!pw && pw.error().code == Errc::WouldDeadlock) ++self->wait_refused;
    if (self->subscribed.exchange(1) == 0) {
      (void)!self->agent->subscribe("echo/out", {QoS::AtLeastOnce}, self->replies->handler());
    }
  }
};

TEST_P(AgentTest, HandlersMayCallTheAgentReentrantly) {
  TcpTransportFactory factory("127.0.0.1", broker().port());
  const auto o = options("agent-reentrant");
  Inbox replies;
  Echo echo;
  Agent agent(Config{}, o, factory, clock_);
  ASSERT_TRUE(agent.start());
  echo.agent = &agent;
  echo.replies = &replies;
  ASSERT_TRUE(agent.subscribe_and_wait("echo/in", {QoS::AtLeastOnce}, {&Echo::on, &echo}, 5s));
  ASSERT_TRUE(agent.publish_and_wait(message("echo/in", "1", QoS::AtLeastOnce), 5s));
  ASSERT_TRUE(wait_until([&] { return echo.subscribed.load() == 1; }));
  std::this_thread::sleep_for(200ms);  // the re-entrant SUBSCRIBE is carried out
  ASSERT_TRUE(agent.publish_and_wait(message("echo/in", "2", QoS::AtLeastOnce), 5s));
  ASSERT_TRUE(replies.wait_for(1));
  EXPECT_EQ(replies.snapshot()[0].payload, "re:2");
  EXPECT_EQ(echo.would_deadlock.load(), 2);
  EXPECT_EQ(echo.wait_refused.load(), 2);
}

TEST_P(AgentTest, ManyThreadsShareOneConnectionAndBatchWrites) {
  TcpTransportFactory factory("127.0.0.1", broker().port());
  const auto o = options("agent-threads");
  Config c;
  c.command_slots = 256;
  Inbox inbox;
  Completions done;
  Agent agent(c, o, factory, clock_);
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(agent.subscribe_and_wait("mt/#", {QoS::AtLeastOnce}, inbox.handler(), 5s));
  constexpr int kThreads = 8, kEach = 250;
  std::atomic<int> full{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string topic = "mt/" + std::to_string(t);
      for (int i = 0; i < kEach; ++i) {
        const std::string payload = std::to_string(i);
        const QoS q = (i % 2) == 0 ? QoS::AtMostOnce : QoS::AtLeastOnce;
        for (;;) {
          auto r = agent.publish(message(topic, payload, q), done.handler());
          if (r) break;
          ASSERT_EQ(r.error().code, Errc::QueueFull);
          ++full;
          std::this_thread::sleep_for(1ms);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(done.wait_for(kThreads * kEach, 20s));
  for (auto& oc : done.snapshot()) EXPECT_TRUE(oc.ok()) << to_string(oc.error);
  ASSERT_TRUE(inbox.wait_for(kThreads * kEach / 2, 20s));  // every QoS 1 at least
  const Stats s = agent.stats();
  std::printf("[   INFO   ] %d publishes: %llu writes, %llu reads, %llu batches, %d QueueFull\n",
              kThreads * kEach, static_cast<unsigned long long>(s.writes),
              static_cast<unsigned long long>(s.reads), static_cast<unsigned long long>(s.batches),
              full.load());
  EXPECT_LT(s.writes, s.published);  // fewer system calls than messages
}

TEST_P(AgentTest, FullPoolIsAnErrorNotABlock) {
  testing::FaultProxy proxy(broker().port());
  ASSERT_TRUE(proxy.start());
  TcpTransportFactory factory("127.0.0.1", proxy.port());
  const auto o = options("agent-full");
  Config c;
  c.command_slots = 8;
  c.offline_queue_limit = 8;
  Agent agent(c, o, factory, clock_);
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(wait_until([&] { return agent.state() == ConnectionState::Connected; }));
  proxy.stall();
  int ok = 0;
  Errc last = Errc::Ok;
  for (int i = 0; i < 20; ++i) {
    auto r = agent.publish(message("full/t", "x", QoS::AtLeastOnce));
    if (r) ++ok;
    else last = r.error().code;
  }
  EXPECT_EQ(ok, 8);
  EXPECT_EQ(last, Errc::QueueFull);
  proxy.pass();
}

// PublishWait: instead of a sleep-and-retry loop in the caller, `publish` waits for the
// connection and for a free slot, up to its timeout.
TEST_P(AgentTest, PublishCanWaitUntilConnectedAndForAFreeSlot) {
  testing::FaultProxy proxy(broker().port());
  ASSERT_TRUE(proxy.start());
  proxy.refuse(true);  // the broker seems down: the agent keeps trying
  TcpTransportFactory factory("127.0.0.1", proxy.port());
  Config c;
  c.command_slots = 2;
  c.reconnect_backoff = {Duration{20}, Duration{50}};
  Completions done;
  Agent agent(c, options("agent-wait"), factory, clock_);
  ASSERT_TRUE(agent.start());
  const PublishWait until_connected{Duration{100}, true};
  auto r = agent.publish(message("w/t", "a", QoS::AtLeastOnce), done.handler(), until_connected);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Timeout);  // not connected in time: nothing queued
  // The broker comes back while the caller waits: the message is queued once connected.
  std::thread opener([&] {
    std::this_thread::sleep_for(100ms);
    proxy.refuse(false);
  });
  r = agent.publish(message("w/t", "b", QoS::AtLeastOnce), done.handler(),
                    PublishWait{Duration{5000}, true});
  opener.join();
  ASSERT_TRUE(r) << to_string(r.error().code);
  EXPECT_EQ(agent.state(), ConnectionState::Connected);
  ASSERT_TRUE(done.wait_for(1));
  // Both slots held by QoS 1 publishes whose PUBACKs are held back: a plain publish fails at
  // once, a waiting one gets the slot the first PUBACK frees.
  proxy.stall_to_client();
  ASSERT_TRUE(agent.publish(message("w/t", "c", QoS::AtLeastOnce), done.handler()));
  ASSERT_TRUE(agent.publish(message("w/t", "d", QoS::AtLeastOnce), done.handler()));
  auto full = agent.publish(message("w/t", "e", QoS::AtLeastOnce), done.handler());
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, Errc::QueueFull);
  auto timed_out = agent.publish(message("w/t", "e", QoS::AtLeastOnce), done.handler(),
                                 PublishWait{Duration{50}});
  ASSERT_FALSE(timed_out);
  EXPECT_EQ(timed_out.error().code, Errc::Timeout);
  std::thread passer([&] {
    std::this_thread::sleep_for(100ms);
    proxy.pass();
  });
  r = agent.publish(message("w/t", "e", QoS::AtLeastOnce), done.handler(),
                    PublishWait{Duration{5000}});
  passer.join();
  ASSERT_TRUE(r) << to_string(r.error().code);
  ASSERT_TRUE(done.wait_for(4));
  for (auto& oc : done.snapshot()) EXPECT_TRUE(oc.ok()) << to_string(oc.error);
}

TEST_P(AgentTest, OfflineQueueRejectsNewOrDropsOldestQoS0ByPolicy) {
  testing::FaultProxy proxy(broker().port());
  ASSERT_TRUE(proxy.start());
  TcpTransportFactory factory("127.0.0.1", proxy.port());
  for (OfflinePolicy policy : {OfflinePolicy::RejectNew, OfflinePolicy::DropOldestQoS0}) {
    const auto o = options(policy == OfflinePolicy::RejectNew ? "agent-off-r" : "agent-off-d");
    Config c;
    c.offline_queue_limit = 3;
    c.offline_policy = policy;
    c.reconnect_backoff = {Duration{50}, Duration{100}};
    StatusLog log;
    Completions done;
    Agent agent(c, o, factory, clock_);
    agent.set_status_handler(log.handler());
    ASSERT_TRUE(agent.start());
    ASSERT_TRUE(wait_until([&] { return agent.state() == ConnectionState::Connected; }));
    proxy.refuse(true);
    proxy.cut();
    ASSERT_TRUE(wait_until([&] { return agent.state() != ConnectionState::Connected; }));
    ASSERT_TRUE(agent.publish(message("off/t", "q0-a"), done.handler()));
    ASSERT_TRUE(agent.publish(message("off/t", "q1-b", QoS::AtLeastOnce), done.handler()));
    ASSERT_TRUE(agent.publish(message("off/t", "q0-c"), done.handler()));
    auto fourth = agent.publish(message("off/t", "q1-d", QoS::AtLeastOnce), done.handler());
    if (policy == OfflinePolicy::RejectNew) {
      ASSERT_FALSE(fourth);
      EXPECT_EQ(fourth.error().code, Errc::OfflineQueueFull);
    } else {
      ASSERT_TRUE(fourth);  // q0-a was dropped to make room
      ASSERT_TRUE(done.wait_for(1));
      EXPECT_EQ(done.snapshot()[0].error, Errc::Dropped);
    }
    proxy.refuse(false);
    const std::size_t expect = policy == OfflinePolicy::RejectNew ? 3 : 4;
    ASSERT_TRUE(done.wait_for(expect, 10s));
    std::size_t good = 0;
    for (auto& oc : done.snapshot()) good += oc.ok() ? 1 : 0;
    EXPECT_EQ(good, 3u);
    EXPECT_GE(log.count_reason(StatusReason::ConnectionLost), 1u);
    agent.stop();
  }
}

TEST_P(AgentTest, BrokerThatLostTheSessionGetsEverySubscriptionAgain) {
  TcpTransportFactory factory("127.0.0.1", broker().port());
  auto o = options("agent-resub");
  if (GetParam() == Version::V5) o.properties.set_session_expiry_interval(600);
  o.clean_start = false;
  Config c;
  c.reconnect_backoff = {Duration{50}, Duration{200}};
  StatusLog log;
  Inbox a, b;
  Agent agent(c, o, factory, clock_);
  agent.set_status_handler(log.handler());
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(agent.subscribe_and_wait("ra/#", {QoS::AtLeastOnce}, a.handler(), 5s));
  ASSERT_TRUE(agent.subscribe_and_wait("rb/+", {QoS::ExactlyOnce}, b.handler(), 5s));
  ASSERT_TRUE(broker().restart());  // no persistence: the session is gone
  ASSERT_TRUE(wait_until([&] { return log.count_reason(StatusReason::SessionLost) == 1; }, 10s));
  Status lost{};
  for (auto& s : log.snapshot()) {
    if (s.reason == StatusReason::SessionLost) lost = s;
  }
  EXPECT_EQ(lost.resubscribed, 2u);
  ASSERT_TRUE(agent.publish_and_wait(message("ra/1", "a", QoS::AtLeastOnce), 5s));
  ASSERT_TRUE(agent.publish_and_wait(message("rb/1", "b", QoS::ExactlyOnce), 5s));
  EXPECT_TRUE(a.wait_for(1));
  EXPECT_TRUE(b.wait_for(1));
}

// PUBREL with a success reason and no properties: 0x62 0x02 id id (both versions). Cut right
// after it, the broker has the PUBREL (Mosquitto releases the QoS 2 message to subscribers
// then) and the client never sees PUBCOMP.
bool is_pubrel(transport::ConstBuffer b) {
  return b.size() >= 4 && b[0] == std::byte{0x62} && b[1] == std::byte{0x02};
}

struct CountPublishes final : mqtt::SessionStoreVisitor {
  std::size_t publishes = 0;
  mqtt::Result<void> on_meta(const mqtt::SessionMeta&) noexcept override { return {}; }
  mqtt::Result<void> on_publish(const mqtt::StoredPublish&) noexcept override {
    ++publishes;
    return {};
  }
  mqtt::Result<void> on_incoming_qos2(std::uint16_t) noexcept override { return {}; }
};

std::size_t stored_publishes(const std::filesystem::path& dir) {
  std::vector<std::byte> buf(1 << 16);
  mqtt::FileSessionStore store(buf);
  if (!store.open(dir.string())) return 999;
  CountPublishes v;
  if (!store.load(v)) return 998;
  return v.publishes;
}

// QoS 2, PUBREC received and PUBREL sent, then the broker loses the session before PUBCOMP
// arrives. Mosquitto has already released the message to the subscriber. With the default policy
// the publish completes DeliveryUncertain and is not sent again (the subscriber has it once);
// with Republish it is sent again (at least once: the subscriber gets it twice).
// `restart`: the device process ends (persisted session, no completion any more) before the
// broker loses the session; the restarted agent finds the record in its store and applies the
// same policy to it.
void lose_session_after_pubrec(edgekit::testing::Mosquitto& broker, Version v,
                               UncertainQoS2Policy policy, bool restart = false) {
  SteadyClock clock;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("edgekit-uq-" + std::to_string(::getpid()) + "-" +
                    std::to_string(static_cast<int>(v)) + "-" +
                    std::to_string(static_cast<int>(policy)));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "session");
  std::filesystem::create_directories(dir / "outbox");
  struct Stores {
    std::vector<std::byte> sb = std::vector<std::byte>(1 << 16);
    std::vector<std::byte> ob = std::vector<std::byte>(1 << 16);
    mqtt::FileSessionStore session{sb};
    mqtt::FileSessionStore outbox{ob};
  };
  auto open_stores = [&](Stores& st) {
    return st.session.open((dir / "session").string()) && st.outbox.open((dir / "outbox").string());
  };
  Stores first;
  ASSERT_TRUE(open_stores(first));
  const Persistence persistence =
      restart ? Persistence{&first.session, &first.outbox} : Persistence{};
  // The subscriber: its own agent, straight to the broker.
  TcpTransportFactory sub_factory("127.0.0.1", broker.port());
  mqtt::ConnectOptions so;
  so.version = v;
  so.client_id = "agent-uq-sub";
  so.keep_alive_seconds = 30;
  so.clean_start = false;
  if (v == Version::V5) so.properties.set_session_expiry_interval(600);
  Config c;
  c.reconnect_backoff = {Duration{50}, Duration{200}};
  StatusLog sub_log;
  Inbox inbox;
  Agent sub(c, so, sub_factory, clock);
  sub.set_status_handler(sub_log.handler());
  ASSERT_TRUE(sub.start());
  ASSERT_TRUE(sub.subscribe_and_wait("uq/#", {QoS::ExactlyOnce}, inbox.handler(), 5s));

  CutAfterWrite factory(broker.port(), &is_pubrel, true);
  mqtt::ConnectOptions po = so;
  po.client_id = "agent-uq-pub";
  c.uncertain_qos2 = policy;
  StatusLog log;
  Completions done;
  // Declared before the agent, so they outlive it also when an assertion returns early.
  Stores second;
  TcpTransportFactory direct("127.0.0.1", broker.port());
  auto pub = std::make_unique<Agent>(c, po, factory, clock, persistence);
  pub->set_status_handler(log.handler());
  ASSERT_TRUE(pub->start());
  ASSERT_TRUE(wait_until([&] { return pub->state() == ConnectionState::Connected; }));
  factory.arm();
  ASSERT_TRUE(pub->publish(message("uq/1", "once", QoS::ExactlyOnce), done.handler()));
  ASSERT_TRUE(inbox.wait_for(1)) << "Mosquitto released the message on PUBREL";
  ASSERT_TRUE(wait_until([&] { return factory.cuts() > 0; }));
  ASSERT_TRUE(wait_until([&] { return pub->state() == ConnectionState::Disconnected; }));
  EXPECT_TRUE(done.snapshot().empty());  // PUBCOMP never arrived

  if (restart) {
    pub->stop();  // the process ends: no DISCONNECT, the stores keep the session
    pub.reset();
    EXPECT_EQ(stored_publishes(dir / "session"), 1u);  // awaiting PUBCOMP
  }
  ASSERT_TRUE(broker.restart());  // no persistence: both sessions are gone
  // The subscriber subscribes again first, so a resent copy would reach it.
  ASSERT_TRUE(wait_until([&] { return sub_log.count_reason(StatusReason::SessionLost) == 1; }, 10s));
  if (restart) {
    ASSERT_TRUE(open_stores(second));
    pub = std::make_unique<Agent>(c, po, direct, clock, Persistence{&second.session, &second.outbox});
    pub->set_status_handler(log.handler());
    ASSERT_TRUE(pub->start());
  } else {
    factory.open();
  }
  ASSERT_TRUE(wait_until([&] { return log.count_reason(StatusReason::SessionLost) == 1; }, 10s));
  Status lost{};
  for (auto& s : log.snapshot()) {
    if (s.reason == StatusReason::SessionLost) lost = s;
  }
  if (restart) {
    // Nobody waits for a restored record: the status and the stats say what happened.
    EXPECT_EQ(lost.uncertain + lost.requeued, 1u);
    if (policy == UncertainQoS2Policy::ReportUncertain) {
      EXPECT_EQ(lost.uncertain, 1u);
      EXPECT_EQ(pub->stats().uncertain, 1u);
      ASSERT_TRUE(pub->publish_and_wait(message("uq/2", "marker", QoS::ExactlyOnce), 5s));
      ASSERT_TRUE(inbox.wait_for(2));
      const auto got = inbox.snapshot();
      ASSERT_EQ(got.size(), 2u);
      EXPECT_EQ(got[1].payload, "marker");  // "once" was not delivered a second time
    } else {
      EXPECT_EQ(lost.requeued, 1u);
      ASSERT_TRUE(inbox.wait_for(2)) << "Republish sends the restored record again";
      EXPECT_EQ(inbox.snapshot()[1].payload, "once");
      // Its PUBCOMP arrives before the marker's (one connection, in order): then it is settled.
      ASSERT_TRUE(pub->publish_and_wait(message("uq/2", "marker", QoS::ExactlyOnce), 5s));
    }
    pub->stop();
    pub.reset();
    // Settled either way: nothing is left to come back after a further restart.
    EXPECT_EQ(stored_publishes(dir / "session"), 0u);
    EXPECT_EQ(stored_publishes(dir / "outbox"), 0u);
    std::filesystem::remove_all(dir);
    return;
  }
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(done.wait_for(1));
  const Outcome o = done.snapshot()[0];
  if (policy == UncertainQoS2Policy::ReportUncertain) {
    EXPECT_EQ(o.error, Errc::DeliveryUncertain) << to_string(o.error);
    EXPECT_FALSE(o.ok());
    EXPECT_EQ(lost.uncertain, 1u);
    EXPECT_EQ(lost.requeued, 0u);
    EXPECT_EQ(pub->stats().uncertain, 1u);
    EXPECT_EQ(pub->stats().requeued, 0u);
    // A round trip through the broker after the reconnect: nothing else was sent before it.
    ASSERT_TRUE(pub->publish_and_wait(message("uq/2", "marker", QoS::ExactlyOnce), 5s));
    ASSERT_TRUE(inbox.wait_for(2));
    const auto got = inbox.snapshot();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].payload, "once");
    EXPECT_EQ(got[1].payload, "marker");  // "once" was not delivered a second time
  } else {
    EXPECT_EQ(o.error, Errc::Ok) << to_string(o.error);
    EXPECT_TRUE(o.ok());
    EXPECT_EQ(lost.uncertain, 0u);
    EXPECT_EQ(lost.requeued, 1u);
    EXPECT_EQ(pub->stats().uncertain, 0u);
    ASSERT_TRUE(inbox.wait_for(2)) << "Republish sends it again";
    const auto got = inbox.snapshot();
    EXPECT_EQ(got[0].payload, "once");
    EXPECT_EQ(got[1].payload, "once");
  }
}

TEST_P(AgentTest, QoS2AcceptedThenLostIsReportedUncertainNotResent) {
  lose_session_after_pubrec(broker(), GetParam(), UncertainQoS2Policy::ReportUncertain);
}

TEST_P(AgentTest, QoS2AcceptedThenLostIsResentWithRepublishPolicy) {
  lose_session_after_pubrec(broker(), GetParam(), UncertainQoS2Policy::Republish);
}

TEST_P(AgentTest, QoS2AcceptedThenLostAcrossARestartIsReportedUncertainNotResent) {
  lose_session_after_pubrec(broker(), GetParam(), UncertainQoS2Policy::ReportUncertain, true);
}

TEST_P(AgentTest, QoS2AcceptedThenLostAcrossARestartIsResentWithRepublishPolicy) {
  lose_session_after_pubrec(broker(), GetParam(), UncertainQoS2Policy::Republish, true);
}

INSTANTIATE_TEST_SUITE_P(Versions, AgentTest, ::testing::Values(Version::V5, Version::V311),
                         [](const auto& param_info) {
                           return param_info.param == Version::V5 ? std::string("V5")
                                                            : std::string("V311");
                         });

// --- Permanent failures: one clear report, no endless silent retry ------------------------------

class AgentFailureTest : public edgekit::testing::MosquittoFixture {
 protected:
  edgekit::testing::MosquittoOptions broker_options() const override {
    edgekit::testing::MosquittoOptions o;
    o.allow_anonymous = false;
    o.users.push_back({"device", "right"});
    o.extra_lines.push_back("clientid_prefixes dev-");
    return o;
  }
  // Runs an agent for a while and returns its status reports.
  std::vector<Status> run(const mqtt::ConnectOptions& o, std::uint16_t port) {
    TcpTransportFactory factory("127.0.0.1", port, edgekit::Duration{1000});
    Config c;
    c.reconnect_backoff = {Duration{20}, Duration{50}};
    StatusLog log;
    Agent agent(c, o, factory, clock_);
    agent.set_status_handler(log.handler());
    EXPECT_TRUE(agent.start());
    EXPECT_TRUE(wait_until([&] { return agent.state() == ConnectionState::Failed; }, 5s));
    // That nothing is retried afterwards is checked in simulated time (AgentCoreTest: no
    // deadline is left after a permanent failure), not by sleeping here.
    auto r = agent.publish(message("t", "x", QoS::AtLeastOnce));
    EXPECT_FALSE(r);
    if (!r) {
      EXPECT_EQ(r.error().code, Errc::PermanentFailure);
    }
    agent.stop();
    auto all = log.snapshot();
    all.pop_back();  // Stopped
    return all;
  }
  static std::size_t failed_reports(const std::vector<Status>& all) {
    std::size_t n = 0;
    for (auto& s : all) n += s.state == ConnectionState::Failed ? 1 : 0;
    return n;
  }
  SteadyClock clock_;
};

TEST_F(AgentFailureTest, WrongPasswordIsReportedOnceAndNotRetried) {
  for (Version v : {Version::V5, Version::V311}) {
    mqtt::ConnectOptions o;
    o.version = v;
    o.client_id = "dev-1";
    o.username = "device";
    o.password = mqtt::as_bytes("wrong");
    auto all = run(o, broker().port());
    ASSERT_EQ(failed_reports(all), 1u);
    EXPECT_EQ(all.back().state, ConnectionState::Failed);
    EXPECT_EQ(all.back().reason, StatusReason::Refused);
    EXPECT_TRUE(all.back().permanent);
    EXPECT_TRUE(all.back().broker_reason == ReasonCode::BadUserNameOrPassword ||
                all.back().broker_reason == ReasonCode::NotAuthorized)
        << mqtt::to_string(all.back().broker_reason);
    std::size_t attempts = 0;
    for (auto& s : all) attempts += s.reason == StatusReason::Connecting ? 1 : 0;
    EXPECT_EQ(attempts, 1u);
  }
}

TEST_F(AgentFailureTest, RejectedClientIdIsReportedOnceAndNotRetried) {
  for (Version v : {Version::V5, Version::V311}) {
    mqtt::ConnectOptions o;
    o.version = v;
    o.client_id = "not-allowed";  // lacks the dev- prefix the broker requires
    o.username = "device";
    o.password = mqtt::as_bytes("right");
    auto all = run(o, broker().port());
    ASSERT_EQ(failed_reports(all), 1u);
    EXPECT_EQ(all.back().reason, StatusReason::Refused);
    EXPECT_TRUE(mqtt::is_error(all.back().broker_reason));
    std::printf("[   INFO   ] rejected client id (%s): %s\n", v == Version::V5 ? "5" : "3.1.1",
                mqtt::to_string(all.back().broker_reason));
  }
}

TEST_F(AgentFailureTest, UnreachablePortIsReportedOnceAfterBoundedAttempts) {
  // A port nobody listens on: bind one, note it, close it.
  std::uint16_t dead = 0;
  {
    auto l = transport::TcpListener::bind("127.0.0.1", 0);
    ASSERT_TRUE(l);
    dead = l->port();
  }
  mqtt::ConnectOptions o;
  o.client_id = "dev-2";
  auto all = run(o, dead);
  ASSERT_EQ(failed_reports(all), 1u);
  EXPECT_EQ(all.back().reason, StatusReason::Unreachable);
  EXPECT_EQ(all.back().error, mqtt::Errc::ConnectFailed);
  std::size_t attempts = 0;
  for (auto& s : all) attempts += s.reason == StatusReason::Connecting ? 1 : 0;
  EXPECT_EQ(attempts, Config{}.initial_connect_attempts);
}

}  // namespace
}  // namespace edgekit::agent::test
