// The Device Shadow client against a real Mosquitto and a scripted shadow service on AWS's
// topics and documents (an agent in the test): get / update / clear / delete, named and classic
// shadows, rejections (404, 409) with their code and message, timeouts, a late reply that must
// not be taken for the next request, and deltas out of order and twice — over both drivers.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <edgekit/doc/json.hpp>
#include <edgekit/reqres/channel.hpp>
#include <edgekit/shadow/bindings.hpp>
#include <edgekit/shadow/client.hpp>
#include <edgekit/testing/blocking_device.hpp>
#include <edgekit/testing/channel_device.hpp>
#include <edgekit/testing/mosquitto.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace edgekit::shadow::test {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kThing = "lamp-1";

// What the service does with the next requests, in order (then Answer).
//   Answer: as AWS would; Drop: nothing; Late: the answer, published `late_by` later.
enum class Script { Answer, Drop, Late };

// The scripted service: one document per (thing, shadow) with whole-section replacement (enough
// for the client's tests; fleetd has the real merge), AWS's replies and rejections.
class FakeShadowService {
 public:
  explicit FakeShadowService(std::uint16_t port) : device_(port, "fake-shadow-service", config()) {}
  ~FakeShadowService() {
    device_.agent.stop();
    for (std::thread& t : late_) t.join();
  }
  bool start() {
    if (!device_.start()) return false;
    for (const char* filter :
         {"$aws/things/+/shadow/get", "$aws/things/+/shadow/update", "$aws/things/+/shadow/delete",
          "$aws/things/+/shadow/name/+/get", "$aws/things/+/shadow/name/+/update",
          "$aws/things/+/shadow/name/+/delete"}) {
      auto r = device_.agent.subscribe_and_wait(filter, {.qos = mqtt::QoS::AtLeastOnce},
                                                agent::MessageHandler{&on_request, this}, 5s);
      if (!r || !r->ok()) return false;
    }
    return true;
  }
  void script(std::vector<Script> steps) {
    std::lock_guard lock(mutex_);
    script_.assign(steps.begin(), steps.end());
  }
  std::chrono::milliseconds late_by{400};

  /// Publishes a delta of `version` for `shadow` (empty: classic) as AWS does.
  void publish_delta(std::string_view shadow, std::uint64_t version, std::string_view state) {
    publish(topic_of(shadow, Operation::Update, TopicKind::Delta),
            R"({"state":)" + std::string(state) + R"(,"metadata":{},"version":)" +
                std::to_string(version) + R"(,"timestamp":1800000000})");
  }
  void publish_raw(std::string_view shadow, Operation op, TopicKind kind, std::string payload) {
    publish(topic_of(shadow, op, kind), std::move(payload));
  }
  int requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  struct Document {
    bool exists = false;
    std::uint64_t version = 0;
    std::string desired = "null", reported = "null";
  };

  static agent::Config config() {
    agent::Config c;
    c.slot_size = 4096;  // the default filter length holds a named shadow's reply filters
    return c;
  }
  static std::string topic_of(std::string_view shadow, Operation op, TopicKind kind) {
    std::array<char, kMaxTopicLength> buf{};
    return std::string(*topic(kThing, shadow, op, kind, buf));
  }
  void publish(std::string topic_text, std::string payload) {
    mqtt::Publish p;
    p.topic = topic_text;
    p.payload = mqtt::Bytes(reinterpret_cast<const std::byte*>(payload.data()), payload.size());
    p.qos = mqtt::QoS::AtLeastOnce;
    (void)device_.agent.publish(p);
  }
  // Publishes now, or later from a thread of its own (the service goes on meanwhile).
  void reply(bool late, std::string topic_text, std::string payload) {
    if (!late) return publish(std::move(topic_text), std::move(payload));
    late_.emplace_back([this, topic_text, payload, delay = late_by] {
      std::this_thread::sleep_for(delay);
      publish(topic_text, payload);
    });
  }
  static std::string token_member(const doc::json::Value& root) {
    auto t = root.find("clientToken");
    if (!t || !t->is_string()) return "";
    return R"(,"clientToken":)" + std::string(t->text());
  }
  std::string reject(int code, std::string_view message, const std::string& token) {
    return R"({"code":)" + std::to_string(code) + R"(,"message":")" + std::string(message) +
           R"(","timestamp":1800000000)" + token + "}";
  }

  static void on_request(void* ctx, const mqtt::Publish& m) {
    static_cast<FakeShadowService*>(ctx)->handle(m);
  }
  void handle(const mqtt::Publish& m) {
    auto t = match_topic(m.topic);
    if (!t) return;
    Script step = Script::Answer;
    {
      std::lock_guard lock(mutex_);
      ++requests_;
      if (!script_.empty()) {
        step = script_.front();
        script_.pop_front();
      }
    }
    if (step == Script::Drop) return;
    const bool late = step == Script::Late;
    const std::string payload(mqtt::as_string(m.payload));
    auto root = doc::json::parse(payload);
    if (!root) return;
    const std::string token = token_member(*root);
    Document& d = documents_[std::string(t->shadow)];
    const auto accepted = topic_of(t->shadow, t->op, TopicKind::Accepted);
    const auto rejected = topic_of(t->shadow, t->op, TopicKind::Rejected);
    const std::string not_found =
        "No shadow exists with name: '" + std::string(t->shadow.empty() ? t->thing : t->shadow) +
        "'";
    switch (t->op) {
      case Operation::Get:
        if (!d.exists) return reply(late, rejected, reject(404, not_found, token));
        return reply(late, accepted,
                     R"({"state":{"desired":)" + d.desired + R"(,"reported":)" + d.reported +
                         R"(},"metadata":{},"version":)" + std::to_string(d.version) +
                         R"(,"timestamp":1800000000)" + token + "}");
      case Operation::Delete:
        if (!d.exists) return reply(late, rejected, reject(404, not_found, token));
        d.exists = false;
        d.desired = d.reported = "null";
        return reply(late, accepted,
                     R"({"version":)" + std::to_string(d.version) +
                         R"(,"timestamp":1800000000)" + token + "}");
      case Operation::Update: {
        auto version = root->find("version");
        if (version && version->as_uint64() && *version->as_uint64() != d.version) {
          return reply(late, rejected, reject(409, "Version conflict", token));
        }
        auto state = root->find("state");
        if (!state) return reply(late, rejected, reject(400, "Missing required node: state", token));
        if (state->is_null()) {
          d.desired = d.reported = "null";
        } else {
          if (auto s = state->find("desired")) d.desired = std::string(s->text());
          if (auto s = state->find("reported")) d.reported = std::string(s->text());
        }
        d.exists = true;
        ++d.version;
        reply(late, accepted,
              R"({"state":)" + std::string(state->text()) + R"(,"metadata":{},"version":)" +
                  std::to_string(d.version) + R"(,"timestamp":1800000000)" + token + "}");
        if (!state->is_null() && state->find("desired") && d.desired != "null") {
          publish_delta(t->shadow, d.version, d.desired);
        }
        return;
      }
    }
  }

  testing::AgentDevice device_;
  std::mutex mutex_;
  std::deque<Script> script_;
  int requests_ = 0;
  std::map<std::string, Document> documents_;  // the agent thread's
  std::vector<std::thread> late_;               // the agent thread's
};

// What the application saw: the deltas' versions and states, the persisted order.
struct App {
  std::mutex mutex;
  std::vector<std::pair<std::uint64_t, std::string>> deltas;
  std::optional<DeltaOrder> persisted;
  int persists = 0;

  static void on_delta(void* ctx, const Delta& d) {
    auto* a = static_cast<App*>(ctx);
    std::lock_guard lock(a->mutex);
    a->deltas.emplace_back(d.version, std::string(d.state.text()));
  }
  static void on_version(void* ctx, const DeltaOrder& order) {
    auto* a = static_cast<App*>(ctx);
    std::lock_guard lock(a->mutex);
    a->persisted = order;
    ++a->persists;
  }
  std::vector<std::uint64_t> versions() {
    std::lock_guard lock(mutex);
    std::vector<std::uint64_t> v;
    for (const auto& d : deltas) v.push_back(d.first);
    return v;
  }
};

// Configurations and requests without designated initialisers (GCC warns about the members
// left out, and warnings are errors).
ClientConfig config(std::string_view thing = kThing, std::string_view shadow = {}) {
  ClientConfig c;
  c.thing = thing;
  c.shadow = shadow;
  return c;
}
UpdateRequest reported(std::string_view json, std::optional<std::uint64_t> version = {}) {
  UpdateRequest r;
  r.reported = json;
  r.version = version;
  return r;
}
UpdateRequest desired(std::string_view json) {
  UpdateRequest r;
  r.desired = json;
  return r;
}

using testing::Driver;

class ShadowClientTest : public edgekit::testing::MosquittoFixture,
                         public ::testing::WithParamInterface<Driver> {
 protected:
  void SetUp() override {
    MosquittoFixture::SetUp();
    if (HasFatalFailure()) return;
    service_ = std::make_unique<FakeShadowService>(broker().port());
    ASSERT_TRUE(service_->start());
    agent::Config c;  // the default filter length holds a named shadow's reply filters
    ASSERT_TRUE(device_.connect(GetParam(), broker().port(), "lamp-1", c));
    channel_ = device_.channel.get();
  }
  void TearDown() override {
    client_.reset();
    device_.reset();
    service_.reset();
    MosquittoFixture::TearDown();
  }

  Client& make_client(const ClientConfig& c = config()) {
    client_ = std::make_unique<Client>(*channel_, c, request_, reply_);
    client_->set_delta_handler(DeltaHandler{&App::on_delta, &app_});
    client_->set_version_handler(VersionHandler{&App::on_version, &app_});
    EXPECT_TRUE(client_->start(5s));
    return *client_;
  }

  // Lets unsolicited messages arrive until `n` deltas were decided (applied or dropped), bounded.
  bool await_deltas(std::uint64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      const ClientStats s = client_->stats();
      if (s.deltas_applied + s.deltas_stale + s.deltas_duplicate >= n) return true;
      if (!client_->poll(100ms)) return false;
    }
    return false;
  }

  std::unique_ptr<FakeShadowService> service_;
  testing::ChannelDevice device_;
  reqres::Channel* channel_ = nullptr;
  std::unique_ptr<Client> client_;
  App app_;
  std::array<char, 1024> request_{};
  std::array<char, 2048> reply_{};
};

TEST_P(ShadowClientTest, GetBeforeTheFirstUpdateIsShadowNotFoundWithCodeAndMessage) {
  Client& c = make_client();
  auto r = c.get(5s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errc, Errc::ShadowNotFound);
  EXPECT_EQ(r.error().rejection.code, 404);
  EXPECT_TRUE(r.error().rejection.message.equals("No shadow exists with name: 'lamp-1'"));
  EXPECT_TRUE(r.error().rejection.client_token.equals(c.last_token()));
}

TEST_P(ShadowClientTest, UpdateThenGetReadTheDocumentAndVersions) {
  Client& c = make_client();
  auto up = c.update(
      [](UpdateWriter& u) {
        u.reported().begin_object().member("power", true).member("level", 3).end_object();
      },
      {}, 5s);
  ASSERT_TRUE(up) << to_string(up.error().errc);
  EXPECT_EQ(up->version, 1u);
  EXPECT_TRUE(up->client_token.equals(c.last_token()));
  ASSERT_TRUE(up->reported);
  EXPECT_EQ(*up->reported->find("level")->as_int64(), 3);

  auto got = c.get(5s);
  ASSERT_TRUE(got) << to_string(got.error().errc);
  EXPECT_EQ(got->version, 1u);
  EXPECT_EQ(*got->reported->find("power")->as_bool(), true);
  c.document_applied(got->version);
  EXPECT_EQ(c.order().last_applied(), 1u);
  std::lock_guard lock(app_.mutex);
  ASSERT_TRUE(app_.persisted);
  EXPECT_EQ(app_.persisted->last_applied(), 1u);
}

TEST_P(ShadowClientTest, EachRequestHasItsOwnTokenWithinAwsLimit) {
  ClientConfig cfg = config();
  cfg.token_prefix = "dev";
  cfg.token_seed = 41;
  Client& c = make_client(cfg);
  ASSERT_TRUE(c.update(reported(R"({"a":1})"), 5s));
  EXPECT_EQ(c.last_token(), "dev-41");
  ASSERT_TRUE(c.get(5s));
  EXPECT_EQ(c.last_token(), "dev-42");
}

TEST_P(ShadowClientTest, AWrongVersionIsVersionConflict409) {
  Client& c = make_client();
  ASSERT_TRUE(c.update(reported(R"({"a":1})"), 5s));
  auto r = c.update(reported(R"({"a":2})", 7), 5s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errc, Errc::VersionConflict);
  EXPECT_EQ(r.error().rejection.code, 409);
  EXPECT_TRUE(r.error().rejection.message.equals("Version conflict"));
  // With the current version it goes through.
  auto ok = c.update(reported(R"({"a":2})", 1), 5s);
  ASSERT_TRUE(ok) << to_string(ok.error().errc);
  EXPECT_EQ(ok->version, 2u);
}

TEST_P(ShadowClientTest, NoReplyIsATimeoutWithinItsBound) {
  Client& c = make_client();
  service_->script({Script::Drop});
  const auto start = std::chrono::steady_clock::now();
  auto r = c.get(300ms);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errc, Errc::Timeout);
  EXPECT_TRUE(is_retryable(r.error().errc));
  EXPECT_LT(took, 2s);
}

TEST_P(ShadowClientTest, ALateReplyIsNotTakenForTheNextRequest) {
  Client& c = make_client();
  ASSERT_TRUE(c.update(reported(R"({"a":1})"), 5s));
  // The first get's reply comes 400 ms late, while the second get (whose own reply comes 400 ms
  // after it was asked) waits.
  service_->script({Script::Late, Script::Late});
  auto first = c.get(100ms);
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().errc, Errc::Timeout);
  const std::string first_token(c.last_token());
  auto second = c.get(5s);
  ASSERT_TRUE(second) << to_string(second.error().errc);
  EXPECT_TRUE(second->client_token.equals(c.last_token()));
  EXPECT_FALSE(second->client_token.equals(first_token));
  EXPECT_GE(c.stats().ignored, 1u);  // the late reply to the first
}

TEST_P(ShadowClientTest, DeltasAreAppliedOnceInVersionOrder) {
  Client& c = make_client();
  service_->publish_delta("", 5, R"({"level":5})");
  service_->publish_delta("", 3, R"({"level":3})");  // stale
  service_->publish_delta("", 5, R"({"level":5})");  // a redelivery
  service_->publish_delta("", 7, R"({"level":7})");
  ASSERT_TRUE(await_deltas(4));
  EXPECT_EQ(app_.versions(), (std::vector<std::uint64_t>{5, 7}));
  const ClientStats s = c.stats();
  EXPECT_EQ(s.deltas_applied, 2u);
  EXPECT_EQ(s.deltas_stale, 1u);
  EXPECT_EQ(s.deltas_duplicate, 1u);
  std::lock_guard lock(app_.mutex);
  ASSERT_TRUE(app_.persisted);
  EXPECT_EQ(app_.persisted->last_applied(), 7u);
  EXPECT_EQ(app_.deltas.back().second, R"({"level":7})");
}

// The channel outlives the client: once the client is gone, a delta on its still-subscribed
// filters must reach nothing (before ~Client gave the handler back, the agent thread called into
// the freed client: ASan's use-after-free).
TEST_P(ShadowClientTest, DeltasAfterTheClientIsDestroyedReachNoOne) {
  make_client();
  service_->publish_delta("", 1, R"({"level":1})");
  ASSERT_TRUE(await_deltas(1));
  client_.reset();
  for (std::uint64_t v = 2; v < 6; ++v) service_->publish_delta("", v, R"({"level":2})");
  // Let them arrive (poll returns once one was handed on, or at its bound; either is fine).
  for (int i = 0; i < 4; ++i) (void)channel_->poll(200ms);
  EXPECT_EQ(app_.versions(), (std::vector<std::uint64_t>{1}));
}

TEST_P(ShadowClientTest, ResumesWithThePersistedVersionAfterAReboot) {
  ClientConfig cfg = config();
  cfg.order = DeltaOrder(7);
  Client& c = make_client(cfg);
  service_->publish_delta("", 6, R"({"level":6})");
  service_->publish_delta("", 8, R"({"level":8})");
  ASSERT_TRUE(await_deltas(2));
  EXPECT_EQ(app_.versions(), (std::vector<std::uint64_t>{8}));
  EXPECT_EQ(c.stats().deltas_stale, 1u);
}

TEST_P(ShadowClientTest, ADesiredUpdateProducesADeltaThatIsApplied) {
  Client& c = make_client();
  auto up = c.update(desired(R"({"power":false})"), 5s);
  ASSERT_TRUE(up) << to_string(up.error().errc);
  ASSERT_TRUE(await_deltas(1));
  EXPECT_EQ(app_.versions(), (std::vector<std::uint64_t>{up->version}));
}

TEST_P(ShadowClientTest, AMalformedDeltaIsDroppedAndCounted) {
  Client& c = make_client();
  service_->publish_raw("", Operation::Update, TopicKind::Delta, R"({"state":1})");
  service_->publish_delta("", 2, R"({"x":1})");
  ASSERT_TRUE(await_deltas(1));
  EXPECT_EQ(c.stats().malformed, 1u);
  EXPECT_EQ(app_.versions(), (std::vector<std::uint64_t>{2}));
}

TEST_P(ShadowClientTest, ClearSendsStateNullAndDeleteResetsTheOrder) {
  Client& c = make_client();
  ASSERT_TRUE(c.update(desired(R"({"a":1})"), 5s));
  ASSERT_TRUE(await_deltas(1));
  auto cleared = c.clear(std::nullopt, 5s);
  ASSERT_TRUE(cleared) << to_string(cleared.error().errc);
  EXPECT_TRUE(cleared->state.is_null());
  EXPECT_EQ(cleared->version, 2u);

  auto deleted = c.remove(5s);
  ASSERT_TRUE(deleted) << to_string(deleted.error().errc);
  EXPECT_EQ(deleted->version, 2u);
  EXPECT_FALSE(c.order().has_applied());
  {
    std::lock_guard lock(app_.mutex);
    ASSERT_TRUE(app_.persisted);
    EXPECT_FALSE(app_.persisted->has_applied());
  }
  auto again = c.remove(5s);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().errc, Errc::ShadowNotFound);
}

TEST_P(ShadowClientTest, ANamedShadowIsSeparateFromTheClassicOne) {
  Client& c = make_client(config(kThing, "config"));
  auto up = c.update(reported(R"({"mode":"eco"})"), 5s);
  ASSERT_TRUE(up) << to_string(up.error().errc);
  EXPECT_EQ(up->version, 1u);
  // The classic shadow's delta is not this client's; the named one's is.
  service_->publish_delta("", 9, R"({"x":1})");
  service_->publish_delta("config", 4, R"({"mode":"max"})");
  ASSERT_TRUE(await_deltas(1));
  EXPECT_EQ(app_.versions(), (std::vector<std::uint64_t>{4}));
}

TEST_P(ShadowClientTest, ARejectionForAnotherTokenIsIgnored) {
  Client& c = make_client();
  ASSERT_TRUE(c.update(reported(R"({"a":1})"), 5s));
  // Another client's rejection on the same topic, just before our request's own reply.
  service_->publish_raw("", Operation::Get, TopicKind::Rejected,
                        R"({"code":500,"message":"Internal service failure","clientToken":"x"})");
  auto r = c.get(5s);
  ASSERT_TRUE(r) << to_string(r.error().errc);
}

TEST_P(ShadowClientTest, RefusesNamesOutsideTheLimits) {
  Client bad(*channel_, config("bad/name"), request_, reply_);
  EXPECT_EQ(bad.start(1s).error(), Errc::InvalidArgument);
  EXPECT_EQ(bad.get(1s).error().errc, Errc::InvalidArgument);
  ClientConfig quote = config();
  quote.token_prefix = "a\"b";
  Client bad_prefix(*channel_, quote, request_, reply_);
  EXPECT_EQ(bad_prefix.start(1s).error(), Errc::InvalidArgument);
  const std::string long_shadow(kMaxShadowNameLength + 1, 's');
  Client bad_shadow(*channel_, config(kThing, long_shadow), request_, reply_);
  EXPECT_EQ(bad_shadow.start(1s).error(), Errc::InvalidArgument);
}

// docs/shadow.md's flow: a fleet client sets desired state; the device catches up with get,
// reports every field, then applies a delta and reports only what it changed.
TEST_P(ShadowClientTest, TheUserGuideExampleWorks) {
  struct Lamp {
    bool power = false;
    std::int32_t level = 0;
    char name[16] = "lamp";
  };
  struct Device {
    std::mutex mutex;  // the delta handler runs on the agent thread with the agent driver
    Lamp lamp;
    std::array<Binding, 3> table{bind("power", lamp.power), bind("led.level", lamp.level),
                                 bind("name", lamp.name)};
    FieldSet to_report = 0;
  } device;

  // The fleet side: its own connection and client.
  testing::AgentDevice fleet_mqtt(broker().port(), "fleet");
  ASSERT_TRUE(fleet_mqtt.start());
  reqres::AgentChannel fleet_channel(fleet_mqtt.agent);
  std::array<char, 512> fleet_request{};
  std::array<char, 2048> fleet_reply{};
  ClientConfig fleet_config = config();
  fleet_config.token_prefix = "fleet";
  Client fleet(fleet_channel, fleet_config, fleet_request, fleet_reply);
  ASSERT_TRUE(fleet.start(5s));
  ASSERT_TRUE(fleet.update(desired(R"({"power":true,"led":{"level":3}})"), 5s));

  Client& shadow = make_client();
  shadow.set_delta_handler(DeltaHandler{
      [](void* ctx, const Delta& d) {
        auto* dev = static_cast<Device*>(ctx);
        std::lock_guard lock(dev->mutex);
        if (auto changed = apply_state(d.state, dev->table)) dev->to_report |= *changed;
      },
      &device});
  auto doc = shadow.get(5s);
  ASSERT_TRUE(doc) << to_string(doc.error().errc);
  ASSERT_TRUE(doc->desired);
  {
    std::lock_guard lock(device.mutex);
    ASSERT_TRUE(apply_state(*doc->desired, device.table));
    device.to_report = 0;
  }
  shadow.document_applied(doc->version);
  auto up = shadow.update(
      [&](UpdateWriter& u) {
        std::lock_guard lock(device.mutex);
        EXPECT_TRUE(write_fields(u.reported(), device.table));
      },
      std::nullopt, 5s);
  ASSERT_TRUE(up) << to_string(up.error().errc);
  auto seen = fleet.get(5s);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->reported->text(), R"({"power":true,"led":{"level":3},"name":"lamp"})");

  // A new desired level: the device applies the delta and reports only the level.
  ASSERT_TRUE(fleet.update(desired(R"({"power":true,"led":{"level":5}})"), 5s));
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  FieldSet pending = 0;
  while (pending == 0 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(shadow.poll(100ms));
    std::lock_guard lock(device.mutex);
    pending = device.to_report;
  }
  ASSERT_EQ(pending, FieldSet{0b010});
  auto report = shadow.update(
      [&](UpdateWriter& u) {
        std::lock_guard lock(device.mutex);
        EXPECT_TRUE(write_fields(u.reported(), device.table, pending));
      },
      std::nullopt, 5s);
  ASSERT_TRUE(report) << to_string(report.error().errc);
  seen = fleet.get(5s);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->reported->text(), R"({"led":{"level":5}})");  // the fake replaces sections
}

INSTANTIATE_TEST_SUITE_P(Drivers, ShadowClientTest, testing::kBothDrivers, testing::driver_name);

// Agent only: the delta handler runs on the agent thread, where a request would deadlock.
class ShadowAgentTest : public edgekit::testing::MosquittoFixture {};

TEST_F(ShadowAgentTest, ARequestFromTheDeltaHandlerIsWouldDeadlock) {
  FakeShadowService service(broker().port());
  ASSERT_TRUE(service.start());
  testing::AgentDevice device(broker().port(), "lamp-1");
  ASSERT_TRUE(device.start());
  reqres::AgentChannel channel(device.agent);
  std::array<char, 512> request{};
  std::array<char, 1024> reply{};
  Client c(channel, config(), request, reply);
  struct Probe {
    Client* client = nullptr;
    std::mutex mutex;
    std::condition_variable cv;
    std::optional<Errc> result;
  } probe;
  probe.client = &c;
  c.set_delta_handler(DeltaHandler{
      [](void* ctx, const Delta&) {
        auto* p = static_cast<Probe*>(ctx);
        auto r = p->client->get(1s);
        std::lock_guard lock(p->mutex);
        p->result = r ? Errc::Ok : r.error().errc;
        p->cv.notify_all();
      },
      &probe});
  ASSERT_TRUE(c.start(5s));
  service.publish_delta("", 1, R"({"a":1})");
  std::unique_lock lock(probe.mutex);
  ASSERT_TRUE(probe.cv.wait_for(lock, 5s, [&] { return probe.result.has_value(); }));
  EXPECT_EQ(*probe.result, Errc::WouldDeadlock);
}

}  // namespace
}  // namespace edgekit::shadow::test
