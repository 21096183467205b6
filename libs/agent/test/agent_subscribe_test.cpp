// The agent's SUBSCRIBE / UNSUBSCRIBE do not block its thread: publishes of other threads go out
// while a SUBACK is outstanding; a subscribe whose link drops before the SUBACK is made on the
// next connection; the resubscriptions after a lost session do not block either, and the
// connect's status report is sent even when the link drops during them. Against a real
// Mosquitto, with a fault proxy (or a cutting transport) between the agent and the broker.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "agent_test_support.hpp"
#include "edgekit/agent/agent.hpp"
#include "edgekit/testing/fault_proxy.hpp"
#include "edgekit/testing/mosquitto.hpp"

namespace edgekit::agent::test {
namespace {

using mqtt::QoS;
using mqtt::ReasonCode;
using mqtt::Version;

class AgentSubscribeTest : public AgentBrokerTest {
 protected:
  static Config quick_reconnect() {
    Config c;
    c.reconnect_backoff = {Duration{50}, Duration{200}};
    return c;
  }
};

// The SUBACK is held back by the proxy (server → client stalled) while another thread publishes
// at QoS 0 (complete once written): every publish completes and reaches a second client while
// the SUBSCRIBE is still unanswered; the subscribe completes once the SUBACK is let through.
// Before the agent used subscribe_async, its thread sat in Client::subscribe until the SUBACK
// (or operation_timeout, 10 s) and these publishes timed out.
TEST_P(AgentSubscribeTest, PublishesOfOtherThreadsCompleteWhileASubAckIsOutstanding) {
  edgekit::testing::FaultProxy proxy(broker().port());
  ASSERT_TRUE(proxy.start());
  TcpTransportFactory factory("127.0.0.1", proxy.port());
  const auto o = options("agent-nb");
  // Handler targets are declared before the agents: they must outlive the agent threads.
  Inbox observed;
  Inbox held_inbox;
  Completions subscribed;
  Agent agent(quick_reconnect(), o, factory, clock_);
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(wait_until([&] { return agent.state() == ConnectionState::Connected; }));

  // The observer sees the publishes arrive at the broker.
  TcpTransportFactory direct("127.0.0.1", broker().port());
  const auto oo = options("agent-nb-observer");
  Agent observer(Config{}, oo, direct, clock_);
  ASSERT_TRUE(observer.start());
  ASSERT_TRUE(observer.subscribe_and_wait("nb/#", {QoS::AtMostOnce}, observed.handler(), 5s));

  proxy.stall_to_client();
  ASSERT_TRUE(
      agent.subscribe("held/#", {QoS::AtLeastOnce}, held_inbox.handler(), subscribed.handler()));
  constexpr int kPublishes = 5;
  std::atomic<int> completed{0};
  std::thread publisher([&] {
    for (int k = 0; k < kPublishes; ++k) {
      auto r = agent.publish_and_wait(message("nb/x", std::to_string(k)), 2s);
      if (r && r->ok()) ++completed;
    }
  });
  publisher.join();
  EXPECT_EQ(completed.load(), kPublishes);
  EXPECT_TRUE(observed.wait_for(kPublishes));
  // The SUBACK is still held back: the subscribe has not completed.
  EXPECT_TRUE(subscribed.snapshot().empty());

  proxy.pass();
  ASSERT_TRUE(subscribed.wait_for(1));
  EXPECT_EQ(subscribed.snapshot()[0].error, Errc::Ok);
  EXPECT_EQ(subscribed.snapshot()[0].reason_code, ReasonCode::GrantedQoS1);
  // The route is active: a message on the filter reaches its handler.
  ASSERT_TRUE(agent.publish_and_wait(message("held/1", "h", QoS::AtLeastOnce), 5s));
  EXPECT_TRUE(held_inbox.wait_for(1));
  proxy.stop();
}

// A second command on a filter whose request is outstanding waits for that ack (subscribe, then
// unsubscribe of the same filter, queued while the SUBACK is held back), and so, to keep the
// queue's order, do the commands behind it; all complete, in order, once the acks arrive.
TEST_P(AgentSubscribeTest, CommandsOnTheSameFilterWaitForTheOutstandingAck) {
  edgekit::testing::FaultProxy proxy(broker().port());
  ASSERT_TRUE(proxy.start());
  TcpTransportFactory factory("127.0.0.1", proxy.port());
  const auto o = options("agent-samefilter");
  Inbox inbox;
  Completions done;
  Agent agent(quick_reconnect(), o, factory, clock_);
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(wait_until([&] { return agent.state() == ConnectionState::Connected; }));
  proxy.stall_to_client();
  ASSERT_TRUE(agent.subscribe("same/#", {QoS::AtLeastOnce}, inbox.handler(), done.handler()));
  ASSERT_TRUE(agent.unsubscribe("same/#", done.handler()));
  ASSERT_TRUE(agent.subscribe("other/#", {QoS::AtLeastOnce}, inbox.handler(), done.handler()));
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(done.snapshot().empty());
  proxy.pass();
  ASSERT_TRUE(done.wait_for(3));
  const auto all = done.snapshot();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].reason_code, ReasonCode::GrantedQoS1);  // subscribe same/#
  EXPECT_EQ(all[1].reason_code, ReasonCode::Success);      // unsubscribe same/#
  EXPECT_EQ(all[2].reason_code, ReasonCode::GrantedQoS1);  // subscribe other/#
  for (const auto& x : all) EXPECT_TRUE(x.ok()) << to_string(x.error);
  ASSERT_TRUE(agent.publish_and_wait(message("same/1", "gone", QoS::AtLeastOnce), 5s));
  ASSERT_TRUE(agent.publish_and_wait(message("other/1", "here", QoS::AtLeastOnce), 5s));
  ASSERT_TRUE(inbox.wait_for(1));
  std::this_thread::sleep_for(200ms);
  const auto got = inbox.snapshot();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic, "other/1");
  proxy.stop();
}

// The link drops while the SUBACK is held back: the subscribe is not lost nor failed; it is sent
// again on the next connection and completes there.
TEST_P(AgentSubscribeTest, SubscribeWhoseLinkDropsBeforeTheSubAckIsMadeOnTheNextConnection) {
  edgekit::testing::FaultProxy proxy(broker().port());
  ASSERT_TRUE(proxy.start());
  TcpTransportFactory factory("127.0.0.1", proxy.port());
  const auto o = options("agent-subdrop");
  StatusLog log;
  Inbox inbox;
  Completions subscribed;
  Agent agent(quick_reconnect(), o, factory, clock_);
  agent.set_status_handler(log.handler());
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(wait_until([&] { return agent.state() == ConnectionState::Connected; }));
  proxy.stall_to_client();
  ASSERT_TRUE(agent.subscribe("drop/#", {QoS::AtLeastOnce}, inbox.handler(), subscribed.handler()));
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(subscribed.snapshot().empty());
  proxy.cut();
  proxy.pass();
  ASSERT_TRUE(subscribed.wait_for(1, 10s));
  EXPECT_EQ(subscribed.snapshot()[0].error, Errc::Ok);
  EXPECT_EQ(subscribed.snapshot()[0].reason_code, ReasonCode::GrantedQoS1);
  EXPECT_GE(log.count_reason(StatusReason::ConnectionLost), 1u);
  ASSERT_TRUE(agent.publish_and_wait(message("drop/1", "d", QoS::AtLeastOnce), 5s));
  EXPECT_TRUE(inbox.wait_for(1));
  proxy.stop();
}

// No SUBACK within operation_timeout: the subscribe completes Rejected/Timeout (as the blocking
// call did) and its handler is removed, while the connection stays up; the late SUBACK is ignored
// and the filter can be subscribed again. A DISCONNECT queued behind a subscribe waits for it.
TEST_P(AgentSubscribeTest, UnansweredSubscribeTimesOutWithoutStallingTheQueue) {
  edgekit::testing::FaultProxy proxy(broker().port());
  ASSERT_TRUE(proxy.start());
  TcpTransportFactory factory("127.0.0.1", proxy.port());
  const auto o = options("agent-subtimeout");
  Config c = quick_reconnect();
  c.operation_timeout = Duration{500};
  Inbox inbox;
  Completions done;
  Completions again;
  Agent agent(c, o, factory, clock_);
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(wait_until([&] { return agent.state() == ConnectionState::Connected; }));
  proxy.stall_to_client();
  ASSERT_TRUE(agent.subscribe("slow/#", {QoS::AtLeastOnce}, inbox.handler(), done.handler()));
  // Meanwhile a QoS 0 publish completes.
  auto p = agent.publish_and_wait(message("slow/x", "q0"), 2s);
  ASSERT_TRUE(p) << to_string(p.error().code);
  ASSERT_TRUE(done.wait_for(1, 3s));
  EXPECT_EQ(done.snapshot()[0].error, Errc::Rejected);
  EXPECT_EQ(done.snapshot()[0].mqtt, mqtt::Errc::Timeout);
  EXPECT_EQ(agent.state(), ConnectionState::Connected);
  proxy.pass();
  // The late SUBACK is ignored; the filter can be subscribed again, and a DISCONNECT queued
  // right behind that subscribe completes after it.
  ASSERT_TRUE(agent.subscribe("slow/#", {QoS::AtLeastOnce}, inbox.handler(), again.handler()));
  ASSERT_TRUE(agent.disconnect(again.handler()));
  ASSERT_TRUE(again.wait_for(2));
  const auto both = again.snapshot();
  EXPECT_EQ(both[0].reason_code, ReasonCode::GrantedQoS1);
  EXPECT_EQ(both[1].error, Errc::Ok);
  EXPECT_EQ(agent.state(), ConnectionState::Closed);
  proxy.stop();
}

// SUBSCRIBE: fixed header 0x82 (both versions). Cut right after it, the broker gets it and the
// client never sees the SUBACK; the agent's batch starts with it after the CONNACK of a lost
// session (nothing else is owed then).
bool is_subscribe(transport::ConstBuffer b) { return b[0] == std::byte{0x82}; }

// The broker loses the session (restart without persistence); the agent reconnects and makes
// its two subscriptions again, and the link is cut right after those SUBSCRIBEs. The connect's
// report is still sent (SessionLost, none granted, both pending), before the ConnectionLost;
// the next connection makes them again (the broker resumes the session this time, but the agent
// never saw them granted) and reports them granted. Before, the report of the cut connect was
// never sent and the next connection, resumed, did not resubscribe.
TEST_P(AgentSubscribeTest, LinkDropDuringResubscriptionStillSendsTheConnectReport) {
  CutAfterWrite factory(broker().port(), &is_subscribe);
  auto o = options("agent-resubcut");
  if (GetParam() == Version::V5) o.properties.set_session_expiry_interval(600);
  o.clean_start = false;
  StatusLog log;
  Inbox a, b;
  Agent agent(quick_reconnect(), o, factory, clock_);
  agent.set_status_handler(log.handler());
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(agent.subscribe_and_wait("rca/#", {QoS::AtLeastOnce}, a.handler(), 5s));
  ASSERT_TRUE(agent.subscribe_and_wait("rcb/+", {QoS::AtLeastOnce}, b.handler(), 5s));
  factory.arm();
  ASSERT_TRUE(broker().restart());  // no persistence: the session is gone
  ASSERT_TRUE(wait_until([&] { return factory.cuts() == 1; }, 10s));
  // The next connection resubscribes and reports.
  ASSERT_TRUE(wait_until(
      [&] {
        for (auto& s : log.snapshot()) {
          if (s.state == ConnectionState::Connected && s.resubscribed == 2) return true;
        }
        return false;
      },
      10s));
  const auto all = log.snapshot();
  // Find the report of the cut connection: Connected, SessionLost, nothing granted, both
  // pending, and right after it the ConnectionLost.
  std::size_t cut_report = all.size();
  for (std::size_t k = 0; k < all.size(); ++k) {
    if (all[k].reason == StatusReason::SessionLost && all[k].resubscribe_pending == 2) {
      cut_report = k;
      break;
    }
  }
  ASSERT_LT(cut_report, all.size()) << "no report for the connection cut during resubscription";
  EXPECT_EQ(all[cut_report].state, ConnectionState::Connected);
  EXPECT_EQ(all[cut_report].resubscribed, 0u);
  ASSERT_LT(cut_report + 1, all.size());
  EXPECT_EQ(all[cut_report + 1].reason, StatusReason::ConnectionLost);
  EXPECT_EQ(all[cut_report + 1].state, ConnectionState::Disconnected);
  // The report of the connection after it: both granted, none pending.
  Status next{};
  for (std::size_t k = cut_report + 2; k < all.size(); ++k) {
    if (all[k].state == ConnectionState::Connected) {
      next = all[k];
      break;
    }
  }
  EXPECT_EQ(next.resubscribed, 2u);
  EXPECT_EQ(next.resubscribe_pending, 0u);
  ASSERT_TRUE(agent.publish_and_wait(message("rca/1", "a", QoS::AtLeastOnce), 5s));
  ASSERT_TRUE(agent.publish_and_wait(message("rcb/1", "b", QoS::AtLeastOnce), 5s));
  EXPECT_TRUE(a.wait_for(1));
  EXPECT_TRUE(b.wait_for(1));
}

INSTANTIATE_TEST_SUITE_P(Versions, AgentSubscribeTest,
                         ::testing::Values(Version::V5, Version::V311), [](const auto& param_info) {
                           return param_info.param == Version::V5 ? std::string("V5")
                                                                  : std::string("V311");
                         });

}  // namespace
}  // namespace edgekit::agent::test
