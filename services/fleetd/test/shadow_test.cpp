// fleetd's Device Shadow service end to end: edgekit's MQTT client as devices over mutual TLS, a
// real Mosquitto with edgekit's plugin deciding every publish and subscribe, the real fleetd.
// Replies are awaited message by message (each wait bounded by kTimeout). Group commit and the
// broker link's backpressure (docs/benchmarks.md, Device Shadow) are checked at the end.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "edgekit/json/json.hpp"
#include "edgekit/shadow/documents.hpp"
#include "edgekit/testing/child_process.hpp"
#include "secured_broker.hpp"

namespace edgekit::fleetd::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string prefix(const std::string& thing, const std::string& shadow = "") {
  return "$aws/things/" + thing + "/shadow" + (shadow.empty() ? "" : "/name/" + shadow);
}

class Shadows : public SecuredBroker {
 protected:
  void SetUp() override {
    SecuredBroker::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(fleetd_logged("broker.subscribed", 1, 10s)) << "fleetd never subscribed";
    // t1 and t4 hold no policy of their own: the default thing policy decides for them.
    ASSERT_TRUE(device(t1_, "t1", "t1"));
    ASSERT_EQ(t1_.subscribe("$aws/things/t1/shadow/#"), ReasonCode::GrantedQoS1);
  }

  /// Waits for the next message on `topic` (earlier ones on other topics stay) and returns its
  /// payload as JSON; a test failure and null after kTimeout.
  json await(Peer& p, const std::string& topic) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeout.count());
    for (;;) {
      for (auto it = p.received.begin(); it != p.received.end(); ++it) {
        if (it->topic != topic) continue;
        json doc = json::parse(it->payload, nullptr, false);
        p.received.erase(it);
        EXPECT_TRUE(doc.is_object()) << topic << ": " << it->payload;
        return doc;
      }
      if (std::chrono::steady_clock::now() >= end || !p.client().connected()) break;
      p.pump(20ms);
    }
    ADD_FAILURE() << "no message on " << topic;
    return json();
  }

  /// Sends a request (QoS 1; the broker must accept it) and returns the reply on
  /// `<P>/<op>/<outcome>`.
  json request(Peer& p, const std::string& p_topic, const std::string& op,
               const std::string& payload, const std::string& outcome = "accepted") {
    EXPECT_EQ(p.publish(p_topic + "/" + op, payload), ReasonCode::Success) << p_topic << "/" << op;
    return await(p, p_topic + "/" + op + "/" + outcome);
  }

  Peer t1_;
};

TEST_F(Shadows, GetUpdateDeleteOfTheClassicShadow) {
  const std::string p = prefix("t1");
  json missing = request(t1_, p, "get", "", "rejected");
  EXPECT_EQ(missing["code"], 404);
  EXPECT_EQ(missing["message"], "No shadow exists with name: 't1'");

  json accepted = request(t1_, p, "update",
                          R"({"state":{"reported":{"temp":21,"on":true}},"clientToken":"u1"})");
  EXPECT_EQ(accepted["version"], 1);
  EXPECT_EQ(accepted["clientToken"], "u1");
  EXPECT_EQ(accepted["state"], json::parse(R"({"reported":{"temp":21,"on":true}})"));
  EXPECT_TRUE(accepted["metadata"]["reported"]["temp"].contains("timestamp"));
  json docs = await(t1_, p + "/update/documents");
  EXPECT_FALSE(docs.contains("previous"));
  EXPECT_EQ(docs["current"]["version"], 1);

  json got = request(t1_, p, "get", R"({"clientToken":"g1"})");
  EXPECT_EQ(got["state"], json::parse(R"({"reported":{"temp":21,"on":true}})"));
  EXPECT_EQ(got["version"], 1);
  EXPECT_EQ(got["clientToken"], "g1");
  // The device library's reader takes fleetd's document as AWS's.
  const std::string raw = got.dump();
  auto read = edgekit::shadow::read_accepted(raw);
  ASSERT_TRUE(read);
  EXPECT_EQ(read.value().version, 1u);

  json deleted = request(t1_, p, "delete", R"({"clientToken":"d1"})");
  EXPECT_EQ(deleted["version"], 1);
  EXPECT_EQ(deleted["clientToken"], "d1");
  EXPECT_EQ(request(t1_, p, "get", "", "rejected")["code"], 404);
  EXPECT_EQ(request(t1_, p, "delete", "", "rejected")["code"], 404);
  // Created again, it continues the old numbering.
  EXPECT_EQ(request(t1_, p, "update", R"({"state":{"reported":{"temp":22}}})")["version"], 2);
}

TEST_F(Shadows, NamedShadowDeltaAndDocuments) {
  const std::string p = prefix("t1", "config");
  json missing = request(t1_, p, "get", "", "rejected");
  EXPECT_EQ(missing["message"], "No shadow exists with name: 'config'");

  request(t1_, p, "update", R"({"state":{"reported":{"mode":"off","level":1}}})");
  (void)await(t1_, p + "/update/documents");
  // An operator's wish: the delta carries every differing desired key.
  json accepted = request(t1_, p, "update",
                          R"({"state":{"desired":{"mode":"eco","level":1.0}},"clientToken":"w"})");
  EXPECT_EQ(accepted["version"], 2);
  json delta = await(t1_, p + "/update/delta");
  EXPECT_EQ(delta["state"], json::parse(R"({"mode":"eco"})"));  // 1 == 1.0
  EXPECT_EQ(delta["version"], 2);
  EXPECT_EQ(delta["clientToken"], "w");
  const std::string raw = delta.dump();
  auto read = edgekit::shadow::read_delta(raw);
  ASSERT_TRUE(read);
  EXPECT_EQ(read.value().version, 2u);
  json docs = await(t1_, p + "/update/documents");
  EXPECT_EQ(docs["previous"]["version"], 1);
  EXPECT_EQ(docs["current"]["state"]["desired"]["mode"], "eco");

  // The device catches up: no delta then, and desired stays.
  request(t1_, p, "update", R"({"state":{"reported":{"mode":"eco"}}})");
  (void)await(t1_, p + "/update/documents");
  json got = request(t1_, p, "get", "");
  EXPECT_FALSE(got["state"].contains("delta"));
  EXPECT_EQ(got["state"]["desired"]["mode"], "eco");
  t1_.pump(100ms);
  for (const auto& m : t1_.received) EXPECT_NE(m.topic, p + "/update/delta");
  // The classic shadow is another document.
  EXPECT_EQ(request(t1_, prefix("t1"), "get", "", "rejected")["code"], 404);
}

TEST_F(Shadows, VersionConflictOversizedAndTooDeep) {
  const std::string p = prefix("t1");
  request(t1_, p, "update", R"({"state":{"reported":{"a":1}}})");
  json conflict =
      request(t1_, p, "update", R"({"state":{"reported":{"a":2}},"version":5,"clientToken":"v"})",
              "rejected");
  EXPECT_EQ(conflict["code"], 409);
  EXPECT_EQ(conflict["message"], "Version conflict");
  EXPECT_EQ(conflict["clientToken"], "v");
  EXPECT_EQ(request(t1_, p, "update", R"({"state":{"reported":{"a":2}},"version":1})")["version"],
            2);

  json big =
      request(t1_, p, "update",
              R"({"state":{"reported":{"blob":")" + std::string(9000, 'x') + "\"}}}", "rejected");
  EXPECT_EQ(big["code"], 413);
  EXPECT_EQ(big["message"], "The payload exceeds the maximum size allowed");
  json deep =
      request(t1_, p, "update",
              R"({"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}})", "rejected");
  EXPECT_EQ(deep["code"], 400);
  EXPECT_EQ(deep["message"], "JSON contains too many levels of nesting; maximum is 6");
  json bad = request(t1_, p, "update", "{not json", "rejected");
  EXPECT_EQ(bad["message"], "Invalid JSON");
  EXPECT_EQ(request(t1_, p, "get", "")["version"], 2);  // nothing of those was stored
}

TEST_F(Shadows, AcceptsARequestEndingInNul) {
  // AWS's C shadow demo publishes the document with its terminating NUL byte.
  std::string payload = R"({"state":{"reported":{"powerOn":1}},"clientToken":"c-demo"})";
  payload.push_back('\0');
  json accepted = request(t1_, prefix("t1"), "update", payload);
  EXPECT_EQ(accepted["clientToken"], "c-demo");
  EXPECT_EQ(accepted["state"]["reported"]["powerOn"], 1);
}

TEST_F(Shadows, ThrottlesRequestsPerThing) {
  // A burst well over AWS's 20 requests per second for one thing, sent without waiting.
  const std::string p = prefix("t1");
  constexpr int kBurst = 40;
  for (int i = 0; i < kBurst; ++i) {
    mqtt::Publish m;
    const std::string topic = p + "/get";
    const std::string body = R"({"clientToken":"b)" + std::to_string(i) + "\"}";
    m.topic = topic;
    m.payload = mqtt::as_bytes(body);
    m.qos = mqtt::QoS::AtMostOnce;
    ASSERT_TRUE(t1_.client().publish(m, kTimeout));
  }
  int answered = 0, throttled = 0;
  for (int i = 0; i < kBurst; ++i) {
    json r = await(t1_, p + "/get/rejected");
    if (r.is_null()) break;
    if (r["code"] == 404) ++answered;
    if (r["code"] == 429) {
      ++throttled;
      EXPECT_EQ(r["message"], "Too many requests");
      EXPECT_TRUE(r["clientToken"].is_string());
    }
  }
  EXPECT_EQ(answered + throttled, kBurst);
  EXPECT_GE(answered, 20);
  EXPECT_GE(throttled, 1) << "the whole burst was answered";
  // Another thing has its own allowance.
  Peer t4;
  ASSERT_TRUE(device(t4, "t4", "t4"));
  ASSERT_EQ(t4.subscribe("$aws/things/t4/shadow/get/+"), ReasonCode::GrantedQoS1);
  EXPECT_EQ(request(t4, prefix("t4"), "get", "", "rejected")["code"], 404);
}

TEST_F(Shadows, SurviveAFleetdRestart) {
  const std::string p = prefix("t1", "persisted");
  request(t1_, p, "update", R"({"state":{"desired":{"x":[1,2]},"reported":{"x":[1]}}})");
  json before = request(t1_, p, "get", "");
  testing::stop_child(fleetd_, SIGTERM, 5s);
  fleetd_ = -1;
  const std::size_t subscribed = fleetd_log_count("broker.subscribed");
  ASSERT_NO_FATAL_FAILURE(start_fleetd());
  ASSERT_TRUE(fleetd_logged("broker.subscribed", subscribed + 1, 10s));
  json after = request(t1_, p, "get", "");
  EXPECT_EQ(after["state"], before["state"]);
  EXPECT_EQ(after["metadata"], before["metadata"]);
  EXPECT_EQ(after["version"], 1);
  EXPECT_EQ(request(t1_, p, "update", R"({"state":{"reported":{"x":[1,2]}}})")["version"], 2);
}

TEST_F(Shadows, RepliesAreOrdinaryPublishesThatAnAuthorizedWatcherSees) {
  // t4 gets a policy that lets it watch t1's shadow (and nothing else), as an AWS customer's
  // dashboard device would: shadow replies are not private (aws-iot-protocols.md 0).
  auto made = admin("POST", "/admin/v1/policies",
                    json{{"policyName", "watch-t1"}, {"policyDocument", R"({
      "Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
        {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/$aws/things/t1/shadow/*"},
        {"Effect":"Allow","Action":"iot:Receive","Resource":"arn:aws:iot:*:*:topic/$aws/things/t1/shadow/*"}]})"}}
                        .dump());
  ASSERT_TRUE(made && made->status == 201) << (made ? made->body : "no answer");
  auto attached = admin("PUT", "/admin/v1/policies/watch-t1/certificates/" + ids_["t4"]);
  ASSERT_TRUE(attached && attached->status == 204) << (attached ? attached->body : "no answer");
  Peer watcher;
  ASSERT_TRUE(device(watcher, "t4", "t4"));
  ASSERT_EQ(watcher.subscribe("$aws/things/t1/shadow/update/accepted"), ReasonCode::GrantedQoS1);
  request(t1_, prefix("t1"), "update", R"({"state":{"reported":{"seen":true}},"clientToken":"x"})");
  json seen = await(watcher, "$aws/things/t1/shadow/update/accepted");
  EXPECT_EQ(seen["clientToken"], "x");
  EXPECT_EQ(seen["state"]["reported"]["seen"], true);
}

TEST_F(Shadows, ADeviceCannotTouchAnotherThingsShadow) {
  // t4 owns a shadow; t1 (default thing policy) tries every way in.
  Peer t4;
  ASSERT_TRUE(device(t4, "t4", "t4"));
  ASSERT_EQ(t4.subscribe("$aws/things/t4/shadow/#"), ReasonCode::GrantedQoS1);
  request(t4, prefix("t4"), "update", R"({"state":{"reported":{"secret":42}}})");
  request(t4, prefix("t4", "cfg"), "update", R"({"state":{"reported":{"secret":43}}})");

  for (const std::string& p : {prefix("t4"), prefix("t4", "cfg")}) {
    for (const char* op : {"get", "update", "delete"}) {
      const std::string body =
          std::string(op) == "update" ? R"({"state":{"reported":{"secret":0}}})" : std::string();
      EXPECT_EQ(t1_.publish(p + "/" + op, body), ReasonCode::NotAuthorized) << p << "/" << op;
    }
    for (const std::string& filter : {p + "/get/accepted", p + "/update/+", p + "/#"}) {
      EXPECT_EQ(t1_.subscribe(filter), ReasonCode::NotAuthorized) << filter;
    }
  }
  EXPECT_EQ(t1_.subscribe("$aws/things/+/shadow/update/accepted"), ReasonCode::NotAuthorized);
  // Nothing reached t4's shadows, and nothing of theirs reached t1.
  EXPECT_EQ(request(t4, prefix("t4"), "get", "")["state"]["reported"]["secret"], 42);
  EXPECT_EQ(request(t4, prefix("t4", "cfg"), "get", "")["version"], 1);
  t1_.pump(100ms);
  for (const auto& m : t1_.received) EXPECT_EQ(m.topic.rfind("$aws/things/t1/", 0), 0u) << m.topic;
}

TEST_F(Shadows, AdminApiReadsUpdatesListsAndDeletesAsADeviceSeesIt) {
  const std::string p = prefix("t1", "cfg");
  auto up = admin("POST", "/admin/v1/things/t1/shadow?name=cfg",
                  R"({"state":{"desired":{"mode":"eco"}},"clientToken":"op"})");
  ASSERT_TRUE(up);
  ASSERT_EQ(up->status, 200) << up->body;
  EXPECT_EQ(json::parse(up->body)["version"], 1);
  // The device sees the operator's change as it would another client's.
  EXPECT_EQ(await(t1_, p + "/update/accepted")["clientToken"], "op");
  EXPECT_EQ(await(t1_, p + "/update/delta")["state"], json::parse(R"({"mode":"eco"})"));
  (void)await(t1_, p + "/update/documents");

  auto got = admin("GET", "/admin/v1/things/t1/shadow?name=cfg");
  ASSERT_TRUE(got);
  ASSERT_EQ(got->status, 200) << got->body;
  EXPECT_EQ(json::parse(got->body)["state"]["delta"], json::parse(R"({"mode":"eco"})"));
  auto conflict = admin("POST", "/admin/v1/things/t1/shadow?name=cfg",
                        R"({"state":{"desired":{"mode":"x"}},"version":9})");
  ASSERT_TRUE(conflict);
  EXPECT_EQ(conflict->status, 409);
  EXPECT_EQ(json::parse(conflict->body)["message"], "Version conflict");
  (void)await(t1_, p + "/update/rejected");

  auto list = admin("GET", "/admin/v1/things/t1/shadows");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200) << list->body;
  EXPECT_EQ(json::parse(list->body)["items"][0]["shadowName"], "cfg");
  EXPECT_EQ(json::parse(list->body)["classicShadow"], false);

  auto del = admin("DELETE", "/admin/v1/things/t1/shadow?name=cfg");
  ASSERT_TRUE(del);
  ASSERT_EQ(del->status, 200) << del->body;
  EXPECT_EQ(await(t1_, p + "/delete/accepted")["version"], 1);
  auto gone = admin("GET", "/admin/v1/things/t1/shadow?name=cfg");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404);
  EXPECT_EQ(json::parse(gone->body)["message"], "No shadow exists with name: 'cfg'");
  auto bad = admin("GET", "/admin/v1/things/t1/shadow?name=no%20spaces");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

TEST_F(Shadows, CommandLineGetsUpdatesListsAndDeletes) {
  const std::string cli =
      "EDGEKIT_FLEET_TOKEN_FILE=" + (dir_ / "state" / "admin.token").string() + " " + EDGEKIT_CLI +
      " fleet --url http://127.0.0.1:" + std::to_string(admin_port_) + " shadow ";
  auto up =
      testing::run_command(cli + R"(update t1 --name lamp --desired '{"on":true}' --version 0)");
  EXPECT_NE(up.code, 0) << "a version for a shadow that does not exist is refused: " << up.out;
  up = testing::run_command(
      cli + R"(update t1 --name lamp --desired '{"on":true}' --reported '{"on":false}')");
  ASSERT_EQ(up.code, 0) << up.out;
  EXPECT_EQ(await(t1_, prefix("t1", "lamp") + "/update/delta")["state"],
            json::parse(R"({"on":true})"));
  auto got = testing::run_command(cli + "get t1 --name lamp");
  ASSERT_EQ(got.code, 0) << got.out;
  const json doc = json::parse(got.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << got.out;
  EXPECT_EQ(doc["state"]["delta"], json::parse(R"({"on":true})"));
  auto list = testing::run_command(cli + "list t1");
  ASSERT_EQ(list.code, 0) << list.out;
  EXPECT_NE(list.out.find("lamp"), std::string::npos) << list.out;
  ASSERT_EQ(testing::run_command(cli + "delete t1 --name lamp").code, 0);
  auto gone = testing::run_command(cli + "get t1 --name lamp");
  EXPECT_NE(gone.code, 0);
  EXPECT_NE(gone.out.find("No shadow exists with name: 'lamp'"), std::string::npos) << gone.out;
}

// Writers publish QoS 1 requests without waiting for their PUBACKs (as far as the session's
// records and the broker's Receive Maximum allow), pumping when they must wait.
void publish_pipelined(Peer& p, const std::string& topic, const std::string& payload) {
  mqtt::Publish m;
  m.topic = topic;
  m.payload = mqtt::as_bytes(payload);
  m.qos = mqtt::QoS::AtLeastOnce;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeout.count());
  for (;;) {
    auto r = p.client().publish(m, kTimeout);
    if (r) return;
    const auto e = r.error();
    ASSERT_TRUE(e == mqtt::Errc::SessionStateFull || e == mqtt::Errc::NoPacketIdAvailable ||
                e == mqtt::Errc::ReceiveMaximumExceeded)
        << topic << ": " << mqtt::to_string(e);
    ASSERT_LT(std::chrono::steady_clock::now(), end) << "the broker never took " << topic;
    (void)p.client().process_loop(Duration{10});
  }
}

// The replies (accepted or rejected) `p` has received on topics ending in `kind`, by token.
std::map<std::string, json> replies(Peer& p, std::string_view kind) {
  std::map<std::string, json> out;
  for (const auto& m : p.received) {
    if (!m.topic.ends_with(kind)) continue;
    json doc = json::parse(m.payload, nullptr, false);
    if (doc.is_object() && doc.contains("clientToken")) out[doc["clientToken"]] = doc;
  }
  return out;
}

// Several clients update one shadow at once: fleetd decides them in batches (one transaction per
// turn of its loop), so each batch must still give every update its own version, in order, and
// say "accepted" only once the update is on disk: fleetd is SIGKILLed as soon as N accepted
// replies arrived, and after a restart all N are there.
TEST_F(Shadows, ConcurrentUpdatesGetConsecutiveVersionsAndAreStoredWhenAccepted) {
  constexpr int kWriters = 3, kEach = 6;  // 18: within the 20 requests per second of one thing
  std::vector<std::unique_ptr<Peer>> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.push_back(std::make_unique<Peer>());
    ASSERT_NO_FATAL_FAILURE(trusted(*writers.back(), "writer-" + std::to_string(w)));
  }
  Peer& watcher = *writers[0];
  for (const char* thing : {"race-1", "race-2"}) {
    const std::string p = prefix(thing, "race");
    ASSERT_EQ(watcher.subscribe(p + "/update/accepted"), ReasonCode::GrantedQoS1);
    ASSERT_EQ(watcher.subscribe(p + "/update/rejected"), ReasonCode::GrantedQoS1);
  }
  auto send_all = [&](const std::string& thing) {
    for (int i = 0; i < kEach; ++i) {
      for (int w = 0; w < kWriters; ++w) {
        const std::string key = "w" + std::to_string(w) + "i" + std::to_string(i);
        ASSERT_NO_FATAL_FAILURE(publish_pipelined(
            *writers[static_cast<std::size_t>(w)], prefix(thing, "race") + "/update",
            R"({"state":{"reported":{")" + key + R"(":1}},"clientToken":")" + key + "\"}"));
      }
    }
  };
  auto await_accepted = [&](std::size_t n) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeout.count());
    while (replies(watcher, "/update/accepted").size() < n &&
           std::chrono::steady_clock::now() < end) {
      for (auto& w : writers) (void)w->client().process_loop(Duration{5});
    }
    return replies(watcher, "/update/accepted");
  };

  // All answered: versions 1..18, one per update.
  ASSERT_NO_FATAL_FAILURE(send_all("race-1"));
  auto accepted = await_accepted(kWriters * kEach);
  ASSERT_EQ(accepted.size(), std::size_t{kWriters * kEach});
  std::set<std::int64_t> versions;
  for (const auto& [token, doc] : accepted) versions.insert(doc["version"].get<std::int64_t>());
  EXPECT_EQ(versions.size(), std::size_t{kWriters * kEach});
  EXPECT_EQ(*versions.begin(), 1);
  EXPECT_EQ(*versions.rbegin(), kWriters * kEach);
  EXPECT_TRUE(replies(watcher, "/update/rejected").empty());

  // Killed after the first 12 accepted replies: each of those updates survives.
  watcher.received.clear();
  ASSERT_NO_FATAL_FAILURE(send_all("race-2"));
  accepted = await_accepted(12);
  testing::stop_child(fleetd_, SIGKILL, 5s);
  ASSERT_GE(accepted.size(), 12u);
  const std::size_t subscribed = fleetd_log_count("broker.subscribed");
  ASSERT_NO_FATAL_FAILURE(start_fleetd());
  ASSERT_TRUE(fleetd_logged("broker.subscribed", subscribed + 1, 10s));
  auto got = admin("GET", "/admin/v1/things/race-2/shadow?name=race");
  ASSERT_TRUE(got);
  ASSERT_EQ(got->status, 200) << got->body;
  const json stored = json::parse(got->body);
  std::int64_t highest = 0;
  for (const auto& [token, doc] : accepted) {
    EXPECT_TRUE(stored["state"]["reported"].contains(token)) << token << " was accepted, not stored";
    highest = std::max(highest, doc["version"].get<std::int64_t>());
  }
  EXPECT_GE(stored["version"].get<std::int64_t>(), highest);
}

// A flood of requests while fleetd's replies can leave only one at a time (the broker's
// max_inflight_messages 1): the link must stop taking requests rather than queue their replies
// without bound, and still answer every one of them. Receive Maximum 1: the only window
// Mosquitto 2.0.11 keeps (with 4 it had 224 requests in flight to fleetd; broker_link.hpp).
class ShadowsUnderBackpressure : public Shadows {
 protected:
  static constexpr std::size_t kMaxQueued = 8, kReceiveMaximum = 1;
  ShadowsUnderBackpressure() {
    fleetd_flags_ = {"--broker-max-queued", std::to_string(kMaxQueued), "--broker-receive-maximum",
                     std::to_string(kReceiveMaximum)};
    broker_lines_ = {"max_inflight_messages 1"};
  }
};

TEST_F(ShadowsUnderBackpressure, TheReplyQueueStaysBoundedAndEveryRequestIsAnswered) {
  constexpr int kThings = 30, kEach = 10;  // 300 updates, 10 per thing (under its 20 per second)
  Peer flooder, watcher;
  ASSERT_NO_FATAL_FAILURE(trusted(flooder, "flooder"));
  ASSERT_NO_FATAL_FAILURE(trusted(watcher, "watcher"));
  ASSERT_EQ(watcher.subscribe("$aws/things/+/shadow/update/accepted"), ReasonCode::GrantedQoS1);
  ASSERT_EQ(watcher.subscribe("$aws/things/+/shadow/update/rejected"), ReasonCode::GrantedQoS1);
  for (int i = 0; i < kEach; ++i) {
    for (int t = 0; t < kThings; ++t) {
      const std::string token = "f" + std::to_string(t) + "-" + std::to_string(i);
      ASSERT_NO_FATAL_FAILURE(publish_pipelined(
          flooder, prefix("flood-" + std::to_string(t)) + "/update",
          R"({"state":{"reported":{"i":)" + std::to_string(i) + R"(}},"clientToken":")" + token +
              "\"}"));
      (void)watcher.client().process_loop(Duration{0});
    }
  }
  // Bounded (the 300 are answered one reply at a time: about 4 s under the sanitizers).
  const auto end = std::chrono::steady_clock::now() + 30s;
  auto answered = [&] {
    return replies(watcher, "/update/accepted").size() + replies(watcher, "/update/rejected").size();
  };
  while (answered() < std::size_t{kThings * kEach} && std::chrono::steady_clock::now() < end) {
    (void)watcher.client().process_loop(Duration{10});
    (void)flooder.client().process_loop(Duration{0});
  }
  EXPECT_EQ(replies(watcher, "/update/accepted").size(), std::size_t{kThings * kEach})
      << "rejected: " << replies(watcher, "/update/rejected").size();
  // The link held requests back at least once, and its queue never went beyond max_queued plus
  // the replies (at most 3 each) of the requests that can reach fleetd beyond it: the broker's
  // window, and the one acked just before the queue went over. Without backpressure it holds
  // nearly all 600 replies of the flood.
  const std::string log = testing::read_text_file(fleetd_log_);
  EXPECT_NE(log.find("broker.backpressure_on"), std::string::npos) << "never engaged";
  std::size_t at = 0, episodes = 0;
  while ((at = log.find("broker.backpressure_off", at)) != std::string::npos) {
    const std::size_t peak = log.find("peak_queued=", at);
    ASSERT_NE(peak, std::string::npos);
    EXPECT_LE(std::stoul(log.substr(peak + 12)), kMaxQueued + 3 * (kReceiveMaximum + 1))
        << log.substr(at, 120);
    ++episodes;
    ++at;
  }
  EXPECT_GE(episodes, 1u);
  EXPECT_EQ(log.find("broker.queued_publishes_dropped"), std::string::npos);
}

}  // namespace
}  // namespace edgekit::fleetd::test
