// fleetd's process and its broker link, against a real Mosquitto.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "broker_link.hpp"
#include "edgekit/testing/child_process.hpp"
#include "edgekit/testing/mosquitto.hpp"
#include "store/db.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// ---- the broker link ----------------------------------------------------------------------

class BrokerLinkTest : public testing::MosquittoFixture {
 protected:
  // Runs the loop until `done` or `limit`.
  template <class F>
  bool run_until(F&& done, std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) {
      io.run_for(10ms);
      if (io.stopped()) io.restart();
    }
    return done();
  }
  asio::io_context io;
  std::ostringstream log_text;
  Logger log{log_text, LogFormat::Text, LogLevel::Debug};
};

TEST_F(BrokerLinkTest, RoutesMessagesAndResubscribesAfterABrokerRestart) {
  BrokerLinkOptions o;
  o.port = broker().port();
  o.reconnect = backoff::Policy{Duration{50}, Duration{200}};
  BrokerLink link(io, o, log);
  std::vector<std::string> a, b;
  link.subscribe("fleet/a/+", mqtt::QoS::AtLeastOnce,
                 [&](const Message& m) { a.emplace_back(m.topic); });
  link.subscribe("fleet/b/#", mqtt::QoS::AtMostOnce,
                 [&](const Message& m) { b.emplace_back(m.topic); });
  link.start();
  ASSERT_TRUE(run_until([&] { return link.up(); }, 5s)) << log_text.str();

  auto send = [&](std::string_view topic) {
    std::string payload = "x";
    auto r = link.publish(topic, mqtt::as_bytes(payload), mqtt::QoS::AtLeastOnce);
    ASSERT_TRUE(r) << mqtt::to_string(r.error());
  };
  send("fleet/a/1");
  send("fleet/b/2/3");
  send("fleet/c/4");  // nobody's: logged as unrouted
  ASSERT_TRUE(run_until([&] { return a.size() == 1 && b.size() == 1; }, 5s)) << log_text.str();
  EXPECT_EQ(a[0], "fleet/a/1");
  EXPECT_EQ(b[0], "fleet/b/2/3");

  ASSERT_TRUE(broker().restart()) << broker().error();
  // Down, then up again by itself: reconnected and both filters subscribed again.
  ASSERT_TRUE(run_until([&] { return link.connects() == 2 && link.up(); }, 10s)) << log_text.str();
  send("fleet/a/5");
  send("fleet/b/6");
  ASSERT_TRUE(run_until([&] { return a.size() == 2 && b.size() == 2; }, 5s)) << log_text.str();
  EXPECT_NE(log_text.str().find("broker.link_down"), std::string::npos);
  EXPECT_NE(log_text.str().find("broker.reconnect_scheduled"), std::string::npos);

  bool closed = false;
  link.shutdown([&] { closed = true; });
  ASSERT_TRUE(run_until([&] { return closed; }, 5s));
  EXPECT_FALSE(link.up());
}

// A burst of replies far beyond the broker's Receive Maximum (Mosquitto's max_inflight_messages,
// 20) and the engine's send queue: none refused, none lost, in order (found by
// scripts/bench-provisioning, where 64 devices in flight lost their CreateCertificateFromCsr
// replies with "receive maximum exceeded").
TEST_F(BrokerLinkTest, ABurstBeyondTheReceiveMaximumIsQueuedAndDeliveredInOrder) {
  BrokerLinkOptions o;
  o.port = broker().port();
  BrokerLink link(io, o, log);
  std::vector<std::string> got;
  link.subscribe("burst/#", mqtt::QoS::AtLeastOnce,
                 [&](const Message& m) { got.emplace_back(mqtt::as_string(m.payload)); });
  link.start();
  ASSERT_TRUE(run_until([&] { return link.up(); }, 5s)) << log_text.str();
  constexpr int kBurst = 500;
  for (int i = 0; i < kBurst; ++i) {
    std::string payload = std::to_string(i);
    const std::array<mqtt::UserProperty, 1> marker{mqtt::UserProperty{"k", payload}};
    auto r = link.publish("burst/" + std::to_string(i % 7), mqtt::as_bytes(payload),
                          mqtt::QoS::AtLeastOnce, marker);
    ASSERT_TRUE(r) << i << ": " << mqtt::to_string(r.error());
  }
  ASSERT_TRUE(run_until([&] { return got.size() == kBurst; }, 20s))
      << got.size() << " of " << kBurst << "\n" << log_text.str();
  for (int i = 0; i < kBurst; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], std::to_string(i));
  EXPECT_EQ(log_text.str().find("queued_publish_failed"), std::string::npos);
}

TEST_F(BrokerLinkTest, PublishWhileDownIsNotConnected) {
  BrokerLinkOptions o;
  o.port = broker().port();
  BrokerLink link(io, o, log);
  std::string payload = "x";
  auto r = link.publish("t", mqtt::as_bytes(payload), mqtt::QoS::AtLeastOnce);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), mqtt::Errc::NotConnected);
}

// ---- group commit over the link ----------------------------------------------------------

// fleetd's link with a real SQLite store in batches (batch_in), and "devices" on a second
// link: a request stores a thing named by its payload and is answered on reply/<name>.
// - a burst: every reply arrives, and every reply means the thing is stored;
// - a request whose batch cannot commit (a real COMMIT failure: SQLite's deferred foreign keys)
//   gets no reply at all, although its handler published one, and nothing of it is stored;
// - a batch rolled back for a Busy failure is handled again message by message: one reply per
//   request, the one made before the rerun dropped.
TEST_F(BrokerLinkTest, RepliesWaitForTheBatchCommitAndAreDroppedWhenItFails) {
  const fs::path dir =
      fs::temp_directory_path() / ("edgekit-groupcommit-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto db = open_sqlite({(dir / "fleetd.db").string()});
  ASSERT_TRUE(db) << db.error().message;
  auto opened = Store::open(std::move(db.value()));
  ASSERT_TRUE(opened) << opened.error().message;
  Store& store = *opened.value();

  BrokerLinkOptions o;
  o.port = broker().port();
  BrokerLink link(io, o, log);
  batch_in(link, store);
  int busy_left = 0;  // requests named busy-* fail Busy while this is above 0
  std::map<std::string, int> runs;
  link.subscribe("req/+", mqtt::QoS::AtLeastOnce, [&](const Message& m) {
    const std::string name(mqtt::as_string(m.payload));
    ++runs[name];
    auto r = store.transact([&](Tx& tx) -> Res<void> {
      if (auto t = tx.create_thing({name, "", {}, 0, 0}); !t) return fail(t.error());
      if (name == "poison") {
        // Checked only at COMMIT: the batch's commit fails.
        if (auto d = tx.db().exec("PRAGMA defer_foreign_keys = ON"); !d) return fail(d.error());
        auto bad = tx.db().exec(
            "INSERT INTO thing_principals (thing_name, certificate_id) VALUES ('nobody', 'none')");
        if (!bad) return fail(bad.error());
      }
      if (name.rfind("busy", 0) == 0 && busy_left > 0) {
        --busy_left;
        return fail(Errc::Busy, "injected: lost to a concurrent writer");
      }
      return {};
    });
    const std::string reply = r ? "stored" : r.error().message;
    EXPECT_TRUE(link.publish("reply/" + name, mqtt::as_bytes(reply), mqtt::QoS::AtLeastOnce));
  });

  BrokerLinkOptions d = o;
  d.client_id = "devices";
  BrokerLink devices(io, d, log);
  std::vector<std::pair<std::string, std::string>> replies;  // name, payload
  devices.subscribe("reply/+", mqtt::QoS::AtLeastOnce, [&](const Message& m) {
    replies.emplace_back(std::string(m.topic.substr(6)), std::string(mqtt::as_string(m.payload)));
  });
  link.start();
  devices.start();
  ASSERT_TRUE(run_until([&] { return link.up() && devices.up(); }, 5s)) << log_text.str();
  auto request = [&](const std::string& name) {
    ASSERT_TRUE(devices.publish("req/" + name, mqtt::as_bytes(name), mqtt::QoS::AtLeastOnce));
  };
  auto replies_to = [&](const std::string& name) {
    std::vector<std::string> out;
    for (const auto& [n, payload] : replies) {
      if (n == name) out.push_back(payload);
    }
    return out;
  };
  auto stored = [&](const std::string& name) {
    return static_cast<bool>(store.transact([&](Tx& tx) { return tx.get_thing(name); }));
  };

  constexpr int kBurst = 40;
  for (int i = 0; i < kBurst; ++i) request("burst-" + std::to_string(i));
  ASSERT_TRUE(run_until([&] { return replies.size() == kBurst; }, 10s))
      << replies.size() << "\n" << log_text.str();
  for (const auto& [name, payload] : replies) {
    EXPECT_EQ(payload, "stored") << name;
    EXPECT_TRUE(stored(name)) << name << " was answered but is not stored";
  }
  EXPECT_GT(link.peak_batch(), 1u) << "the burst never shared a batch";
  EXPECT_LT(link.batches(), static_cast<std::uint64_t>(kBurst));

  request("poison");
  ASSERT_TRUE(run_until([&] { return log_text.str().find("broker.batch_lost") != std::string::npos; },
                        5s))
      << log_text.str();
  request("after-poison");
  ASSERT_TRUE(run_until([&] { return !replies_to("after-poison").empty(); }, 5s)) << log_text.str();
  // Replies leave in order: had the poisoned one been published, it would have come first.
  EXPECT_TRUE(replies_to("poison").empty()) << "a reply went out for a batch that did not commit";
  EXPECT_EQ(runs["poison"], 1);
  EXPECT_FALSE(stored("poison"));
  EXPECT_TRUE(stored("after-poison"));

  busy_left = 1;
  request("busy-1");
  request("busy-2");
  ASSERT_TRUE(run_until([&] { return !replies_to("busy-2").empty(); }, 5s)) << log_text.str();
  run_until([] { return false; }, 200ms);  // a duplicate reply would have arrived by now
  EXPECT_EQ(replies_to("busy-1"), std::vector<std::string>{"stored"});
  EXPECT_EQ(replies_to("busy-2"), std::vector<std::string>{"stored"});
  EXPECT_EQ(runs["busy-1"], 2) << "the Busy batch was not handled again";
  EXPECT_TRUE(stored("busy-1"));
  EXPECT_TRUE(stored("busy-2"));
  EXPECT_NE(log_text.str().find("broker.batch_rerun"), std::string::npos);

  bool closed = false;
  int closing = 2;
  link.shutdown([&] { closed = --closing == 0; });
  devices.shutdown([&] { closed = --closing == 0; });
  ASSERT_TRUE(run_until([&] { return closed; }, 5s));
  opened.value().reset();
  fs::remove_all(dir);
}

// ---- the fleetd binary --------------------------------------------------------------------

struct Outcome {
  int exit_code = -1;
  std::string output;
};

class FleetdProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgekit-fleetd-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (pid_ > 0) testing::stop_child(pid_, SIGKILL, 1s);
    fs::remove_all(dir_);
  }

  void spawn(std::vector<std::string> args) {
    args.insert(args.begin(), FLEETD_BINARY);
    out_path_ = (dir_ / "out.txt").string();
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      if (!testing::die_with_parent(parent)) ::_exit(126);  // a crashed test takes fleetd along
      FILE* f = std::fopen(out_path_.c_str(), "w");
      if (f) {
        ::dup2(fileno(f), STDOUT_FILENO);
        ::dup2(fileno(f), STDERR_FILENO);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }

  // Waits for the process to exit by itself (up to `limit`, then SIGKILL and a failure).
  Outcome wait(std::chrono::milliseconds limit = 10s) {
    Outcome r;
    auto end = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (std::chrono::steady_clock::now() < end) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        r.output = testing::read_text_file(out_path_);
        return r;
      }
      std::this_thread::sleep_for(10ms);
    }
    testing::stop_child(pid_, SIGKILL, 1s);
    ADD_FAILURE() << "fleetd did not exit within " << limit.count() << " ms; output:\n"
                  << testing::read_text_file(out_path_);
    r.output = testing::read_text_file(out_path_);
    return r;
  }

  Outcome run(std::vector<std::string> args) {
    spawn(std::move(args));
    return wait();
  }

  bool output_has(std::string_view needle, std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (testing::read_text_file(out_path_).find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  std::string state() const { return (dir_ / "state").string(); }

  fs::path dir_;
  std::string out_path_;
  pid_t pid_ = -1;
};

TEST_F(FleetdProcess, HelpExplainsEveryOption) {
  Outcome r = run({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* opt : {"--config", "--state-dir", "--store", "--postgres", "--broker-host",
                          "--broker-port", "--broker-client-id", "--broker-username", "--broker-keep-alive",
                          "--reconnect-base-ms", "--reconnect-cap-ms", "--hooks-host",
                          "--hooks-port", "--hooks-token-file", "--admin-host", "--admin-port",
                          "--admin-token-file", "--admin-tls-cert", "--admin-tls-key",
                          "--log-format", "--log-level"}) {
    EXPECT_NE(r.output.find(opt), std::string::npos) << opt << "\n" << r.output;
  }
}

TEST_F(FleetdProcess, RefusesABadConfigurationClearly) {
  {
    std::ofstream f(dir_ / "bad.conf");
    f << "state-dir = " << state() << "\nbroker-prot = 1883\n";
  }
  Outcome r = run({"--config", (dir_ / "bad.conf").string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("broker-prot"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(state())) << "nothing may be touched on a bad configuration";

  Outcome missing = run({"--broker-port", "1883"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.output.find("--state-dir"), std::string::npos) << missing.output;

  Outcome port = run({"--state-dir", state(), "--broker-port", "70000"});
  EXPECT_EQ(port.exit_code, 2);

  Outcome pg = run({"--state-dir", state(), "--store", "postgres"});
  EXPECT_EQ(pg.exit_code, 2);
  EXPECT_NE(pg.output.find("--postgres"), std::string::npos) << pg.output;
}

TEST_F(FleetdProcess, RefusesALockedStore) {
  fs::create_directories(state());
  auto held = open_sqlite({state() + "/fleetd.db"});
  ASSERT_TRUE(held) << held.error().message;
  Outcome r = run({"--state-dir", state(), "--broker-port", "1"});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("in use by another process"), std::string::npos) << r.output;
}

TEST_F(FleetdProcess, RefusesACorruptStore) {
  fs::create_directories(state());
  {
    std::ofstream f(state() + "/fleetd.db");
    for (int i = 0; i < 300; ++i) f << "garbage, not SQLite ";
  }
  Outcome r = run({"--state-dir", state(), "--broker-port", "1"});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("store corrupt"), std::string::npos) << r.output;
}

TEST_F(FleetdProcess, RefusesAnUnreachablePostgres) {
  Outcome r = run({"--state-dir", state(), "--store", "postgres", "--postgres",
               "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2"});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("cannot connect to PostgreSQL"), std::string::npos) << r.output;
}

TEST_F(FleetdProcess, StopsCleanlyOnSigtermWithOrWithoutABroker) {
  testing::Mosquitto broker;
  ASSERT_TRUE(broker.start()) << broker.error();
  spawn({"--state-dir", state(), "--broker-port", std::to_string(broker.port()), "--hooks-port",
         "0", "--admin-port", "0"});
  ASSERT_TRUE(output_has("\"event\":\"broker.connected\"", 10s))
      << testing::read_text_file(out_path_);
  ::kill(pid_, SIGTERM);
  Outcome r = wait(5s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"event\":\"fleetd.stopped\""), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(state() + "/fleetd.db"));
  EXPECT_NE(broker.log().find("fleetd"), std::string::npos);

  // No broker at all: fleetd keeps trying (with backoff) and still stops at once on SIGTERM.
  broker.stop();
  spawn({"--state-dir", state(), "--broker-port", std::to_string(broker.port()),
         "--hooks-port", "0", "--admin-port", "0", "--log-format", "text"});
  ASSERT_TRUE(output_has("broker.connect_failed", 10s)) << testing::read_text_file(out_path_);
  ::kill(pid_, SIGTERM);
  Outcome r2 = wait(5s);
  EXPECT_EQ(r2.exit_code, 0) << r2.output;
}

TEST_F(FleetdProcess, KeepsTheAdminTokenApartFromTheHooksToken) {
  testing::Mosquitto broker;
  ASSERT_TRUE(broker.start()) << broker.error();
  spawn({"--state-dir", state(), "--broker-port", std::to_string(broker.port()), "--hooks-port",
         "0", "--admin-port", "0", "--log-format", "text"});
  ASSERT_TRUE(output_has("admin.listening", 10s)) << testing::read_text_file(out_path_);
  const std::string admin = state() + "/admin.token";
  EXPECT_EQ(fs::status(admin).permissions() & (fs::perms::group_all | fs::perms::others_all),
            fs::perms::none);
  EXPECT_NE(testing::read_text_file(admin), testing::read_text_file(state() + "/hooks.token"));
  EXPECT_FALSE(testing::read_text_file(state() + "/admin.port").empty());
  ::kill(pid_, SIGTERM);
  EXPECT_EQ(wait(5s).exit_code, 0);

  // One secret for both would let the broker, which holds the hooks token, write the registry.
  spawn({"--state-dir", state(), "--broker-port", std::to_string(broker.port()), "--hooks-port",
         "0", "--admin-port", "0", "--admin-token-file", state() + "/hooks.token"});
  Outcome r = wait(5s);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("the admin token is the hooks token"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace edgekit::fleetd
