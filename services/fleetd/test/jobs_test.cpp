// fleetd's Jobs service end to end (aws-iot-protocols.md 2): a real Mosquitto with edgekit's
// plugin, the fleetd binary, devices over mutual TLS speaking the Jobs MQTT API with edgekit's
// own MQTT client, jobs created and canceled through the admin API. Replies are private to the
// requester (it need not subscribe; a device allowed to read the same topics does not get them),
// notify and notify-next go to every subscriber.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <map>
#include <functional>
#include <string>
#include <thread>

#include "edgekit/json/json.hpp"
#include "secured_broker.hpp"

namespace edgekit::fleetd::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class JobsTest : public SecuredBroker {
 protected:
  // Pumps `p` until a message after the first `from` received satisfies `match`; its index, or
  // -1 after 5 s.
  static int await(Peer& p, std::size_t from,
                   const std::function<bool(const Peer::Message&)>& match) {
    const auto end = std::chrono::steady_clock::now() + 5s;
    for (;;) {
      for (std::size_t i = from; i < p.received.size(); ++i) {
        if (match(p.received[i])) return static_cast<int>(i);
      }
      if (std::chrono::steady_clock::now() >= end || !p.client().connected()) return -1;
      p.pump(20ms, p.received.size() + 1);
    }
  }

  // Publishes a request and waits for its reply on `<topic>/accepted` or `/rejected`.
  struct Reply {
    bool accepted = false;
    json doc;
  };
  static Reply request(Peer& p, const std::string& topic, const std::string& payload) {
    const std::size_t from = p.received.size();
    EXPECT_EQ(p.publish(topic, payload), ReasonCode::Success) << topic;
    const int i = await(p, from, [&](const Peer::Message& m) {
      return m.topic == topic + "/accepted" || m.topic == topic + "/rejected";
    });
    if (i < 0) {
      ADD_FAILURE() << "no reply to " << topic;
      return {};
    }
    const auto& m = p.received[static_cast<std::size_t>(i)];
    return {m.topic == topic + "/accepted", json::parse(m.payload, nullptr, false)};
  }

  json create_job(const json& body) {
    auto r = admin("POST", "/admin/v1/jobs", body.dump());
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, 201) << r->body;
    return json::parse(r->body, nullptr, false);
  }

  json describe_job(const std::string& id) {
    auto r = admin_get("/admin/v1/jobs/" + id);
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    return r ? json::parse(r->body, nullptr, false) : json();
  }

  // A device `name` (client id = thing name).
  void connect(Peer& p, const char* name) {
    auto c = device(p, name, name);
    ASSERT_TRUE(c) << mqtt::to_string(c.error());
  }

  // t2 with a policy that lets it read everything of t1's jobs: an eavesdropper the broker would
  // otherwise serve.
  void make_spy(Peer& spy) {
    auto p = admin("POST", "/admin/v1/policies", json{{"policyName", "spy"}, {"policyDocument", R"({"Statement":[
        {"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
        {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/$aws/things/t1/*"},
        {"Effect":"Allow","Action":"iot:Receive","Resource":"arn:aws:iot:*:*:topic/$aws/things/t1/*"}]})"}}.dump());
    ASSERT_TRUE(p && p->status == 201) << (p ? p->body : "no answer");
    auto a = admin("PUT", "/admin/v1/policies/spy/certificates/" + ids_["t2"]);
    ASSERT_TRUE(a && a->status == 204) << (a ? a->body : "no answer");
    auto c = device(spy, "t2", "t2");
    ASSERT_TRUE(c) << mqtt::to_string(c.error());
    EXPECT_EQ(spy.subscribe("$aws/things/t1/jobs/#"), ReasonCode::GrantedQoS1);
  }
};

TEST_F(JobsTest, ExecutionRunsFromQueuedToSucceededWithPrivateRepliesAndEvents) {
  Peer spy;
  make_spy(spy);
  const auto created = create_job({{"jobId", "blink-1"},
                                   {"document", {{"operation", "blink"}, {"times", 3}}},
                                   {"targets", {{"things", {"t1"}}}}});
  EXPECT_EQ(created["status"], "IN_PROGRESS");
  // The spy (reading t1's topics) sees the events of the new execution.
  ASSERT_GE(await(spy, 0, [](const auto& m) {
              auto d = json::parse(m.payload, nullptr, false);
              return m.topic == "$aws/things/t1/jobs/notify-next" &&
                     d["execution"]["jobId"] == "blink-1" &&
                     d["execution"]["jobDocument"]["operation"] == "blink";
            }),
            0);
  ASSERT_GE(await(spy, 0, [](const auto& m) {
              auto d = json::parse(m.payload, nullptr, false);
              return m.topic == "$aws/things/t1/jobs/notify" &&
                     d["jobs"]["QUEUED"][0]["jobId"] == "blink-1";
            }),
            0);

  // t1 subscribes to nothing, as AWS's embedded Jobs demo does for its replies.
  Peer t1;
  connect(t1, "t1");
  auto pending = request(t1, "$aws/things/t1/jobs/get", R"({"clientToken":"g1"})");
  ASSERT_TRUE(pending.accepted) << pending.doc;
  EXPECT_EQ(pending.doc["clientToken"], "g1");
  ASSERT_EQ(pending.doc["queuedJobs"].size(), 1u);
  EXPECT_EQ(pending.doc["queuedJobs"][0]["jobId"], "blink-1");
  EXPECT_EQ(pending.doc["queuedJobs"][0]["versionNumber"], 1);
  EXPECT_EQ(pending.doc["queuedJobs"][0]["executionNumber"], 1);
  EXPECT_TRUE(pending.doc["inProgressJobs"].empty());
  EXPECT_TRUE(pending.doc["timestamp"].is_number_integer());

  auto next = request(t1, "$aws/things/t1/jobs/$next/get", "");
  ASSERT_TRUE(next.accepted) << next.doc;
  EXPECT_EQ(next.doc["execution"]["status"], "QUEUED");
  EXPECT_EQ(next.doc["execution"]["jobDocument"]["times"], 3) << "includeJobDocument defaults to true";

  auto started = request(t1, "$aws/things/t1/jobs/start-next",
                         R"({"clientToken":"s1","statusDetails":{"step":"download"},"stepTimeoutInMinutes":5})");
  ASSERT_TRUE(started.accepted) << started.doc;
  EXPECT_EQ(started.doc["clientToken"], "s1");
  const json& e = started.doc["execution"];
  EXPECT_EQ(e["jobId"], "blink-1");
  EXPECT_EQ(e["thingName"], "t1");
  EXPECT_EQ(e["status"], "IN_PROGRESS");
  EXPECT_EQ(e["versionNumber"], 2);
  EXPECT_EQ(e["statusDetails"]["step"], "download");
  EXPECT_TRUE(e["startedAt"].is_number_integer());
  EXPECT_EQ(e["jobDocument"]["operation"], "blink");

  // The embedded library's string expectedVersion; the state asked for comes back.
  auto progress = request(t1, "$aws/things/t1/jobs/blink-1/update",
                          R"({"status":"IN_PROGRESS","expectedVersion":"2","statusDetails":{"step":"flash"},"includeJobExecutionState":true,"clientToken":"u1"})");
  ASSERT_TRUE(progress.accepted) << progress.doc;
  EXPECT_EQ(progress.doc["executionState"]["versionNumber"], 3);
  EXPECT_EQ(progress.doc["executionState"]["statusDetails"]["step"], "flash");
  EXPECT_FALSE(progress.doc.contains("jobDocument"));

  auto done = request(t1, "$aws/things/t1/jobs/blink-1/update",
                      R"({"status":"SUCCEEDED","expectedVersion":3,"includeJobDocument":true,"clientToken":"u2"})");
  ASSERT_TRUE(done.accepted) << done.doc;
  EXPECT_EQ(done.doc["clientToken"], "u2");
  EXPECT_EQ(done.doc["jobDocument"]["operation"], "blink");
  EXPECT_FALSE(done.doc.contains("executionState"));

  // Terminal: a further update is an invalid transition (with the state), a describe is refused.
  auto again = request(t1, "$aws/things/t1/jobs/blink-1/update",
                       R"({"status":"IN_PROGRESS","clientToken":"u3"})");
  ASSERT_FALSE(again.accepted);
  EXPECT_EQ(again.doc["code"], "InvalidStateTransition");
  EXPECT_EQ(again.doc["clientToken"], "u3");
  EXPECT_EQ(again.doc["executionState"]["status"], "SUCCEEDED");
  EXPECT_EQ(again.doc["executionState"]["versionNumber"], 4);
  auto described = request(t1, "$aws/things/t1/jobs/blink-1/get", R"({"clientToken":"d1"})");
  ASSERT_FALSE(described.accepted);
  EXPECT_EQ(described.doc["code"], "TerminalStateReached");
  EXPECT_EQ(described.doc["clientToken"], "d1");

  // The queue emptied: notify-next with a timestamp only, notify with no jobs.
  ASSERT_GE(await(spy, 0, [](const auto& m) {
              auto d = json::parse(m.payload, nullptr, false);
              return m.topic == "$aws/things/t1/jobs/notify-next" && !d.contains("execution") &&
                     d.contains("timestamp");
            }),
            0);
  ASSERT_GE(await(spy, 0, [](const auto& m) {
              auto d = json::parse(m.payload, nullptr, false);
              return m.topic == "$aws/things/t1/jobs/notify" && d["jobs"] == json::object();
            }),
            0);
  // Not one of t1's replies reached the spy, though it reads every topic of t1's jobs.
  spy.pump(300ms);
  // (It does see t1's requests and the events: those are ordinary publishes its policy allows.)
  std::size_t events = 0;
  for (const auto& m : spy.received) {
    const bool reply = m.topic.ends_with("/accepted") || m.topic.ends_with("/rejected");
    EXPECT_FALSE(reply) << "the spy got " << m.topic;
    events += m.topic.ends_with("/notify") || m.topic.ends_with("/notify-next");
  }
  EXPECT_GE(events, 4u);
  // Every reply reached t1 exactly once.
  EXPECT_EQ(t1.received.size(), 7u);

  const auto job = describe_job("blink-1");
  EXPECT_EQ(job["status"], "COMPLETED");
  EXPECT_EQ(job["jobProcessDetails"]["numberOfSucceededThings"], 1);
  EXPECT_EQ(job["jobProcessDetails"]["numberOfQueuedThings"], 0);
}

TEST_F(JobsTest, RejectsBadRequestsWithAwsCodesAndEchoesTheClientToken) {
  create_job({{"jobId", "j1"}, {"document", {{"op", "x"}}}, {"targets", {{"things", {"t1"}}}}});
  Peer t1;
  connect(t1, "t1");
  const std::string update = "$aws/things/t1/jobs/j1/update";

  auto r = request(t1, update, "{not json");
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.doc["code"], "InvalidJson");

  r = request(t1, update, R"({"clientToken":"a"})");
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.doc["code"], "InvalidRequest");
  EXPECT_EQ(r.doc["clientToken"], "a");
  EXPECT_NE(r.doc["message"].get<std::string>().find("Value null at 'status'"), std::string::npos);

  r = request(t1, update, R"({"status":"TIMED_OUT","clientToken":"b"})");
  EXPECT_EQ(r.doc["code"], "InvalidRequest");
  EXPECT_EQ(r.doc["clientToken"], "b");

  r = request(t1, update, R"({"status":"IN_PROGRESS","expectedVersion":7,"clientToken":"c"})");
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.doc["code"], "VersionMismatch");
  EXPECT_EQ(r.doc["clientToken"], "c");
  EXPECT_EQ(r.doc["executionState"]["status"], "QUEUED");
  EXPECT_EQ(r.doc["executionState"]["versionNumber"], 1);

  r = request(t1, "$aws/things/t1/jobs/nosuchjob/update", R"({"status":"SUCCEEDED","clientToken":"d"})");
  EXPECT_EQ(r.doc["code"], "ResourceNotFound");
  EXPECT_EQ(r.doc["clientToken"], "d");

  r = request(t1, "$aws/things/t1/jobs/nosuchjob/get", R"({"clientToken":"e"})");
  EXPECT_EQ(r.doc["code"], "ResourceNotFound");

  // `$next` is only for describe; a job id outside AWS's characters.
  r = request(t1, "$aws/things/t1/jobs/$next/update", R"({"status":"SUCCEEDED","clientToken":"f"})");
  EXPECT_EQ(r.doc["code"], "InvalidTopic");
  EXPECT_EQ(r.doc["clientToken"], "f");
  r = request(t1, "$aws/things/t1/jobs/a.b/get", "");
  EXPECT_EQ(r.doc["code"], "InvalidTopic");

  r = request(t1, update, R"({"status":"IN_PROGRESS","statusDetails":{"k":1}})");
  EXPECT_EQ(r.doc["code"], "InvalidRequest");
  r = request(t1, update, R"({"clientToken":")" + std::string(65, 'x') + R"(","status":"FAILED"})");
  EXPECT_EQ(r.doc["code"], "InvalidRequest");

  // QUEUED -> REJECTED is allowed (never started); the execution is untouched by all the above.
  r = request(t1, update, R"({"status":"REJECTED","expectedVersion":1})");
  EXPECT_TRUE(r.accepted) << r.doc;
}

// Each thing's requests are rate-limited (20 at once, 10 per second): a flood is answered with
// RequestThrottled, each rejection echoing its clientToken, and the thing is served again after a
// pause. Another thing is not affected.
TEST_F(JobsTest, AFloodOfRequestsIsThrottledPerThing) {
  Peer t1;
  connect(t1, "t1");
  const std::string topic = "$aws/things/t1/jobs/get";
  for (int i = 0; i < 60; ++i) {
    ASSERT_EQ(t1.publish(topic, json{{"clientToken", "f" + std::to_string(i)}}.dump()),
              ReasonCode::Success);
  }
  // Every request gets exactly one reply, accepted or throttled: replies counted per clientToken.
  // Each message is read once, as it comes: re-reading all of them on every arrival (as this
  // test once did) costs O(n^2) JSON parses per message, which under the sanitizers and a busy
  // machine outlasted the 5 s wait and looked like two lost replies.
  std::map<std::string, int> replies;
  int accepted = 0, throttled = 0, other = 0;
  std::size_t counted = 0;
  auto count_new = [&] {
    for (; counted < t1.received.size(); ++counted) {
      const auto& m = t1.received[counted];
      auto d = json::parse(m.payload, nullptr, false);
      if (!d.is_object() || !d.contains("clientToken")) continue;
      if (m.topic == topic + "/accepted") {
        ++accepted;
      } else if (m.topic == topic + "/rejected" && d["code"] == "RequestThrottled") {
        ++throttled;
      } else {
        ++other;
      }
      ++replies[d["clientToken"].get<std::string>()];
    }
  };
  const auto end = std::chrono::steady_clock::now() + 5s;
  for (count_new(); replies.size() < 60 && std::chrono::steady_clock::now() < end &&
                    t1.client().connected();
       count_new()) {
    t1.pump(20ms, t1.received.size() + 1);
  }
  t1.pump(100ms);  // a duplicate would come right behind the last reply
  count_new();
  for (int i = 0; i < 60; ++i) {
    const std::string token = "f" + std::to_string(i);
    EXPECT_EQ(replies[token], 1) << token;
  }
  EXPECT_EQ(replies.size(), 60u);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(accepted + throttled, 60) << accepted << " accepted, " << throttled << " throttled";
  EXPECT_GE(accepted, 20);
  EXPECT_GE(throttled, 1);
  Peer t4;
  connect(t4, "t4");
  EXPECT_TRUE(request(t4, "$aws/things/t4/jobs/get", "{}").accepted);
  std::this_thread::sleep_for(1s);  // the bucket refills with time, nothing else to wait for
  EXPECT_TRUE(request(t1, topic, "{}").accepted);
}

TEST_F(JobsTest, ADeviceCannotTouchAnotherThingsExecutions) {
  create_job({{"jobId", "j1"}, {"document", {{"op", "x"}}}, {"targets", {{"things", {"t1"}}}}});
  Peer t4;
  connect(t4, "t4");
  // The broker refuses t4 on t1's topics (t4's policy is the default thing policy).
  EXPECT_EQ(t4.publish("$aws/things/t1/jobs/j1/update", R"({"status":"SUCCEEDED"})"),
            ReasonCode::NotAuthorized);
  EXPECT_EQ(t4.publish("$aws/things/t1/jobs/start-next", "{}"), ReasonCode::NotAuthorized);
  EXPECT_EQ(t4.subscribe("$aws/things/t1/jobs/notify-next"), ReasonCode::NotAuthorized);
  // Its own topics name its own executions only: there are none.
  auto r = request(t4, "$aws/things/t4/jobs/j1/update", R"({"status":"SUCCEEDED"})");
  EXPECT_EQ(r.doc["code"], "ResourceNotFound");
  // t1's execution is still QUEUED at version 1.
  Peer t1;
  connect(t1, "t1");
  auto d = request(t1, "$aws/things/t1/jobs/j1/get", "");
  ASSERT_TRUE(d.accepted) << d.doc;
  EXPECT_EQ(d.doc["execution"]["status"], "QUEUED");
  EXPECT_EQ(d.doc["execution"]["versionNumber"], 1);
}

TEST_F(JobsTest, CancelLeavesRunningExecutionsUnlessForced) {
  create_job({{"jobId", "soft"}, {"document", {{"op", "x"}}}, {"targets", {{"things", {"t1", "t4"}}}}});
  Peer t1;
  connect(t1, "t1");
  ASSERT_TRUE(request(t1, "$aws/things/t1/jobs/start-next", "{}").accepted);
  auto c = admin("POST", "/admin/v1/jobs/soft/cancel", R"({"reasonCode":"operator"})");
  ASSERT_TRUE(c && c->status == 200) << (c ? c->body : "no answer");
  auto job = describe_job("soft");
  EXPECT_EQ(job["status"], "CANCELED");
  EXPECT_EQ(job["jobProcessDetails"]["numberOfCanceledThings"], 1) << "t4's queued one";
  EXPECT_EQ(job["jobProcessDetails"]["numberOfInProgressThings"], 1) << "t1's may finish";
  EXPECT_TRUE(request(t1, "$aws/things/t1/jobs/soft/update", R"({"status":"SUCCEEDED"})").accepted);
  // Canceling a canceled job again without force changes nothing.
  auto again = admin("POST", "/admin/v1/jobs/soft/cancel", "{}");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 409);

  create_job({{"jobId", "hard"}, {"document", {{"op", "y"}}}, {"targets", {{"things", {"t1"}}}}});
  ASSERT_TRUE(t1.subscribe("$aws/things/t1/jobs/notify-next") == ReasonCode::GrantedQoS1);
  ASSERT_TRUE(request(t1, "$aws/things/t1/jobs/start-next", "{}").accepted);
  const std::size_t from = t1.received.size();
  auto f = admin("POST", "/admin/v1/jobs/hard/cancel", R"({"force":true})");
  ASSERT_TRUE(f && f->status == 200) << (f ? f->body : "no answer");
  // The device learns it from notify-next (its job is no longer next) and its update fails.
  ASSERT_GE(await(t1, from, [](const auto& m) {
              return m.topic == "$aws/things/t1/jobs/notify-next" &&
                     !json::parse(m.payload, nullptr, false).contains("execution");
            }),
            0);
  auto r = request(t1, "$aws/things/t1/jobs/hard/update", R"({"status":"SUCCEEDED"})");
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.doc["code"], "InvalidStateTransition");
  EXPECT_EQ(r.doc["executionState"]["status"], "CANCELED");
  EXPECT_EQ(describe_job("hard")["forceCanceled"], true);
}

// A device that reboots mid-job finds its execution where it left it: start-next hands back the
// IN_PROGRESS one (not the next queued job) with its statusDetails, and it can finish it.
TEST_F(JobsTest, ADeviceRebootedMidJobResumesItsExecution) {
  create_job({{"jobId", "first"}, {"document", {{"op", "a"}}}, {"targets", {{"things", {"t1"}}}}});
  create_job({{"jobId", "second"}, {"document", {{"op", "b"}}}, {"targets", {{"things", {"t1"}}}}});
  {
    Peer before;
    connect(before, "t1");
    auto s = request(before, "$aws/things/t1/jobs/start-next", R"({"statusDetails":{"step":"flash"}})");
    ASSERT_TRUE(s.accepted) << s.doc;
    ASSERT_EQ(s.doc["execution"]["jobId"], "first");
  }  // the device goes away without a word
  Peer after;
  connect(after, "t1");
  auto s = request(after, "$aws/things/t1/jobs/start-next", "{}");
  ASSERT_TRUE(s.accepted) << s.doc;
  EXPECT_EQ(s.doc["execution"]["jobId"], "first");
  EXPECT_EQ(s.doc["execution"]["status"], "IN_PROGRESS");
  EXPECT_EQ(s.doc["execution"]["versionNumber"], 2) << "nothing changed it meanwhile";
  EXPECT_EQ(s.doc["execution"]["statusDetails"]["step"], "flash");
  ASSERT_TRUE(request(after, "$aws/things/t1/jobs/first/update",
                      R"({"status":"SUCCEEDED","expectedVersion":2})").accepted);
  auto next = request(after, "$aws/things/t1/jobs/$next/get", "");
  EXPECT_EQ(next.doc["execution"]["jobId"], "second");
}

TEST_F(JobsTest, ContinuousJobReachesAThingThatJoinsItsGroupLaterAndLeavesWithIt) {
  ASSERT_EQ(admin("POST", "/admin/v1/thing-groups", R"({"groupName":"fleet"})")->status, 201);
  ASSERT_EQ(admin("PUT", "/admin/v1/thing-groups/fleet/things/t1")->status, 204);
  create_job({{"jobId", "cont"},
              {"document", {{"op", "x"}}},
              {"targets", {{"thingGroups", {"fleet"}}}},
              {"targetSelection", "CONTINUOUS"}});
  create_job({{"jobId", "snap"},
              {"document", {{"op", "y"}}},
              {"targets", {{"thingGroups", {"fleet"}}}}});
  Peer t4;
  connect(t4, "t4");
  ASSERT_EQ(t4.subscribe("$aws/things/t4/jobs/notify-next"), ReasonCode::GrantedQoS1);
  auto none = request(t4, "$aws/things/t4/jobs/get", "");
  EXPECT_TRUE(none.doc["queuedJobs"].empty());
  ASSERT_EQ(admin("PUT", "/admin/v1/thing-groups/fleet/things/t4")->status, 204);
  ASSERT_GE(await(t4, 0, [](const auto& m) {
              auto d = json::parse(m.payload, nullptr, false);
              return m.topic == "$aws/things/t4/jobs/notify-next" && d["execution"]["jobId"] == "cont";
            }),
            0);
  auto pending = request(t4, "$aws/things/t4/jobs/get", "");
  ASSERT_EQ(pending.doc["queuedJobs"].size(), 1u) << "the snapshot job is not the late joiner's";
  EXPECT_EQ(pending.doc["queuedJobs"][0]["jobId"], "cont");
  EXPECT_EQ(describe_job("cont")["jobProcessDetails"]["numberOfQueuedThings"], 2);

  // Leaving the group removes its pending execution of the continuous job (REMOVED, and
  // notify-next says the queue is empty); the snapshot job was never t4's.
  const std::size_t from = t4.received.size();
  ASSERT_EQ(admin("DELETE", "/admin/v1/thing-groups/fleet/things/t4")->status, 204);
  ASSERT_GE(await(t4, from, [](const auto& m) {
              return m.topic == "$aws/things/t4/jobs/notify-next" &&
                     !json::parse(m.payload, nullptr, false).contains("execution");
            }),
            0);
  EXPECT_EQ(describe_job("cont")["jobProcessDetails"]["numberOfRemovedThings"], 1);
  auto gone = request(t4, "$aws/things/t4/jobs/cont/update", R"({"status":"IN_PROGRESS"})");
  EXPECT_EQ(gone.doc["code"], "InvalidStateTransition");
  EXPECT_EQ(gone.doc["executionState"]["status"], "REMOVED");
}

// The timers and the rollout, with a Jobs minute of 2 s so that they fire within the test.
class JobsTimersTest : public JobsTest {
 protected:
  JobsTimersTest() { fleetd_flags_ = {"--jobs-minute-seconds", std::to_string(kMinute)}; }
  static constexpr int kMinute = 2;

  json executions(const std::string& id) {
    auto r = admin_get("/admin/v1/jobs/" + id + "/executions?limit=1000");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    return r ? json::parse(r->body, nullptr, false)["items"] : json::array();
  }
};

TEST_F(JobsTimersTest, InProgressAndStepTimersTimeOutAndRetriesFollowTheRetryConfig) {
  Peer t1;
  connect(t1, "t1");
  ASSERT_EQ(t1.subscribe("$aws/things/t1/jobs/notify-next"), ReasonCode::GrantedQoS1);
  create_job({{"jobId", "slow"},
              {"document", {{"op", "x"}}},
              {"targets", {{"things", {"t1"}}}},
              {"timeoutConfig", {{"inProgressTimeoutInMinutes", 1}}},
              {"jobExecutionsRetryConfig",
               {{"criteriaList", {{{"failureType", "TIMED_OUT"}, {"numberOfRetries", 1}}}}}}});
  // Attempt 1 runs into the in-progress timer (one Jobs minute); a retry is queued.
  auto started = request(t1, "$aws/things/t1/jobs/start-next", "{}");
  ASSERT_TRUE(started.accepted) << started.doc;
  const auto begun = std::chrono::steady_clock::now();
  const int retried = await(t1, 0, [](const auto& m) {
    auto d = json::parse(m.payload, nullptr, false);
    return m.topic.ends_with("/notify-next") && d["execution"]["executionNumber"] == 2;
  });
  ASSERT_GE(retried, 0) << "no retry after the timeout";
  const auto waited = std::chrono::steady_clock::now() - begun;
  EXPECT_GE(waited, std::chrono::seconds(kMinute - 1));
  EXPECT_EQ(json::parse(t1.received[static_cast<std::size_t>(retried)].payload)["execution"]["status"],
            "QUEUED");
  // The late update of attempt 1 is refused: it timed out.
  auto late = request(t1, "$aws/things/t1/jobs/slow/update",
                      R"({"status":"SUCCEEDED","executionNumber":1})");
  EXPECT_EQ(late.doc["code"], "ResourceNotFound") << late.doc;

  // Attempt 2 runs into its step timer; its retries are used up, so the job completes.
  auto again = request(t1, "$aws/things/t1/jobs/start-next", R"({"stepTimeoutInMinutes":1})");
  ASSERT_TRUE(again.accepted) << again.doc;
  EXPECT_EQ(again.doc["execution"]["executionNumber"], 2);
  const std::size_t from = t1.received.size();
  ASSERT_GE(await(t1, from, [](const auto& m) {
              return m.topic.ends_with("/notify-next") &&
                     !json::parse(m.payload, nullptr, false).contains("execution");
            }),
            0);
  auto done = request(t1, "$aws/things/t1/jobs/slow/update", R"({"status":"SUCCEEDED"})");
  EXPECT_EQ(done.doc["code"], "InvalidStateTransition");
  EXPECT_EQ(done.doc["executionState"]["status"], "TIMED_OUT");
  const auto job = describe_job("slow");
  EXPECT_EQ(job["status"], "COMPLETED");
  EXPECT_EQ(job["jobProcessDetails"]["numberOfTimedOutThings"], 1);
}

TEST_F(JobsTimersTest, AbortCriteriaCancelTheJob) {
  create_job({{"jobId", "risky"},
              {"document", {{"op", "x"}}},
              {"targets", {{"things", {"t1", "t4"}}}},
              {"abortConfig",
               {{"criteriaList",
                 {{{"failureType", "FAILED"}, {"action", "CANCEL"}, {"thresholdPercentage", 50},
                   {"minNumberOfExecutedThings", 1}}}}}}});
  Peer t1;
  connect(t1, "t1");
  ASSERT_TRUE(request(t1, "$aws/things/t1/jobs/start-next", "{}").accepted);
  ASSERT_TRUE(request(t1, "$aws/things/t1/jobs/risky/update", R"({"status":"FAILED"})").accepted);
  const auto job = describe_job("risky");
  EXPECT_EQ(job["status"], "CANCELED");
  EXPECT_EQ(job["reasonCode"], "ABORTED");
  EXPECT_EQ(job["jobProcessDetails"]["numberOfFailedThings"], 1);
  EXPECT_EQ(job["jobProcessDetails"]["numberOfCanceledThings"], 1) << "t4's queued execution";
}

TEST_F(JobsTimersTest, RolloutHoldsItsRateAcrossAFleetdKill) {
  // 10 things in a group; 4 per Jobs minute (2 per second at most).
  ASSERT_EQ(admin("POST", "/admin/v1/thing-groups", R"({"groupName":"many"})")->status, 201);
  constexpr int kThings = 10;
  for (int i = 0; i < kThings; ++i) {
    const std::string name = "r" + std::to_string(i);
    ASSERT_EQ(admin("POST", "/admin/v1/things", json{{"thingName", name}}.dump())->status, 201);
    ASSERT_EQ(admin("PUT", "/admin/v1/thing-groups/many/things/" + name)->status, 204);
  }
  constexpr int kRate = 4;
  create_job({{"jobId", "wave"},
              {"document", {{"op", "x"}}},
              {"targets", {{"thingGroups", {"many"}}}},
              {"jobExecutionsRolloutConfig", {{"maximumPerMinute", kRate}}}});
  // Kill fleetd once the rollout is under way, then start it again on the same store.
  const auto end = std::chrono::steady_clock::now() + 5s;
  while (executions("wave").size() < 3 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_GE(executions("wave").size(), 3u);
  ASSERT_EQ(::kill(fleetd_, SIGKILL), 0);
  ::waitpid(fleetd_, nullptr, 0);
  fleetd_ = -1;
  start_fleetd();
  json all;
  const auto until = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < until) {
    all = executions("wave");
    if (all.size() == kThings) break;
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kThings)) << all;
  // Each thing exactly once, each first attempt; never more than the rate in one Jobs minute.
  std::map<std::int64_t, int> per_second;
  for (const auto& e : all) {
    EXPECT_EQ(e["executionNumber"], 1);
    ++per_second[e["queuedAt"].get<std::int64_t>()];
  }
  for (const auto& [second, n] : per_second) {
    int in_minute = 0;
    for (int k = 0; k < kMinute; ++k) {
      auto it = per_second.find(second + k);
      if (it != per_second.end()) in_minute += it->second;
    }
    EXPECT_LE(in_minute, kRate) << "at " << second;
  }
  const std::int64_t span = per_second.rbegin()->first - per_second.begin()->first;
  // 10 things at 4 per 2 s take at least 4 s (first second included).
  EXPECT_GE(span, (kThings / kRate) * kMinute) << all;
  EXPECT_EQ(describe_job("wave")["jobProcessDetails"]["numberOfQueuedThings"], kThings);
}

// Beyond AWS: rollout groups. t1 | t2, t3 | t4: the second group starts when t1 succeeded; one
// failure in it reaches its error threshold and pauses the rollout, even though its success
// threshold is met too; an admin's resume lets the third start.
TEST_F(JobsTest, RolloutGroupsGateOnSuccessAndPauseOnErrors) {
  create_job({{"jobId", "staged"},
              {"document", {{"op", "x"}}},
              {"targets", {{"things", {"t1", "t2", "t3", "t4"}}}},
              {"rolloutGroups",
               {{{"count", 1}, {"successThreshold", 100}},
                {{"count", 2}, {"successThreshold", 50}, {"errorThreshold", 50}},
                {{"count", 1}}}}});
  auto queued_things = [&] {
    auto r = admin_get("/admin/v1/jobs/staged/executions");
    std::vector<std::string> out;
    if (!r) return out;
    const json page = json::parse(r->body, nullptr, false);
    for (const auto& e : page["items"]) out.push_back(e["thingName"]);
    return out;
  };
  EXPECT_EQ(queued_things(), std::vector<std::string>{"t1"});
  auto run = [&](const char* thing, const char* status) {
    Peer p;
    connect(p, thing);
    const std::string prefix = std::string("$aws/things/") + thing + "/jobs/";
    auto s = request(p, prefix + "start-next", "{}");
    ASSERT_TRUE(s.accepted && s.doc["execution"]["jobId"] == "staged") << thing << s.doc;
    ASSERT_TRUE(request(p, prefix + "staged/update", json{{"status", status}}.dump()).accepted);
  };
  Peer t2;
  connect(t2, "t2");
  ASSERT_EQ(t2.subscribe("$aws/things/t2/jobs/notify-next"), ReasonCode::GrantedQoS1);
  run("t1", "SUCCEEDED");
  // The next tick opens the second group: t2 is told.
  ASSERT_GE(await(t2, 0, [](const auto& m) {
              return json::parse(m.payload, nullptr, false)["execution"]["jobId"] == "staged";
            }),
            0);
  EXPECT_EQ(queued_things(), (std::vector<std::string>{"t1", "t2", "t3"}));
  run("t2", "FAILED");
  EXPECT_EQ(describe_job("staged")["paused"], true);
  run("t3", "SUCCEEDED");
  // Paused: t4 gets nothing, however long it waits (three ticks here).
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(queued_things(), (std::vector<std::string>{"t1", "t2", "t3"}));
  auto resumed = admin("POST", "/admin/v1/jobs/staged/resume");
  ASSERT_TRUE(resumed && resumed->status == 200) << (resumed ? resumed->body : "no answer");
  EXPECT_EQ(json::parse(resumed->body)["paused"], false);
  EXPECT_EQ(queued_things(), (std::vector<std::string>{"t1", "t2", "t3", "t4"}));
  // An admin's pause, and no pausing a finished job.
  EXPECT_EQ(json::parse(admin("POST", "/admin/v1/jobs/staged/pause")->body)["paused"], true);
  run("t4", "SUCCEEDED");
  EXPECT_EQ(describe_job("staged")["status"], "COMPLETED");
  EXPECT_EQ(admin("POST", "/admin/v1/jobs/staged/resume")->status, 409);
}

}  // namespace
}  // namespace edgekit::fleetd::test
