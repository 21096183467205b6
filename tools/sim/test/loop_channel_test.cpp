// sim::LoopChannel against a real Mosquitto: devices in fibers on one io_context thread, and a
// responder device (its message handler answers "req/<name>" on "rep/<name>" unless the
// payload starts with "drop"). Replies matched and copied, other messages to the handler,
// timeouts honoured, NotConnected as soon as the connection closes, wipe_reply, Busy and
// WouldDeadlock, poll, and shutdown in the middle of a request.
#include "loop_channel.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <edgekit/testing/mosquitto.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgekit::sim {
namespace {

using namespace std::chrono_literals;
using reqres::Errc;

using TestDevice = Device<1024, 2>;

std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
std::string text(const reqres::Message& m) {
  return {reinterpret_cast<const char*>(m.payload.data()), m.payload.size()};
}

// Accepts payloads that start with "ok" (tag 1) or "no" (tag 2).
std::uint8_t ok_or_no(void*, const reqres::Message& m) {
  const std::string t = text(m);
  if (t.starts_with("ok")) return 1;
  if (t.starts_with("no")) return 2;
  return 0;
}

class LoopChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(broker_.start()) << broker_.error();
    endpoint_ = std::make_unique<mqtt_asio::Endpoint>(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), broker_.port()));
    // The responder: echoes "req/<name>" to "rep/<name>" as "ok:<payload>", first sending a
    // message that is not the reply ("other"), so that matching is exercised every time.
    fibers_.spawn([this] {
      ASSERT_TRUE(connect(responder_, "responder"));
      responder_.channel().set_message_handler({&LoopChannelTest::respond, this});
      const std::string_view f[] = {"req/+"};
      ASSERT_TRUE(responder_.channel().subscribe(f, Duration{5000}));
      responder_ready_ = true;
      while (fibers_.wait() != Wake::Stopping) {
      }
      responder_.channel().close(Duration{1000});
    });
    ASSERT_TRUE(run_until([this] { return responder_ready_; }, 10s));
  }
  void TearDown() override {
    fibers_.shutdown();
    io_.restart();
    io_.run_for(200ms);  // the connections' closes
  }

  static void respond(void* self, const reqres::Message& m) {
    auto* t = static_cast<LoopChannelTest*>(self);
    const std::string payload = text(m);
    if (payload.starts_with("drop")) return;
    const std::string topic = "rep/" + std::string(m.topic.substr(4));
    t->replies_.push_back("other");
    t->replies_.push_back((payload.starts_with("reject") ? "no:" : "ok:") + payload);
    for (std::size_t i = t->replies_.size() - 2; i < t->replies_.size(); ++i) {
      mqtt::Publish p;
      p.topic = topic;  // copied into the send buffer at once (QoS 0)
      p.payload = mqtt::as_bytes(t->replies_[i]);
      EXPECT_TRUE(t->responder_.connection().publish(p));
    }
  }

  bool connect(TestDevice& d, const std::string& id) {
    mqtt::ConnectOptions o;
    o.version = mqtt::Version::V5;
    o.client_id = id;
    auto r = d.channel().connect(*endpoint_, o, Duration{5000});
    EXPECT_TRUE(r) << id << ": " << (r ? "" : mqtt::to_string(r.error()));
    return static_cast<bool>(r);
  }

  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= end) return false;
      io_.restart();
      io_.run_for(10ms);
    }
    return true;
  }

  testing::Mosquitto broker_;
  asio::io_context io_;
  mqtt_asio::Driver driver_{io_};
  Fibers fibers_{io_};
  std::unique_ptr<mqtt_asio::Endpoint> endpoint_;
  TestDevice responder_{fibers_, driver_};
  std::deque<std::string> replies_;  // kept until the test ends: QoS 0 payload views
  bool responder_ready_ = false;
};

TEST_F(LoopChannelTest, RequestTakesTheMatchingReplyAndHandsOthersToTheHandler) {
  TestDevice d(fibers_, driver_);
  std::vector<std::string> unsolicited;
  reqres::MessageHandler h{[](void* c, const reqres::Message& m) {
                             static_cast<std::vector<std::string>*>(c)->push_back(text(m));
                           },
                           &unsolicited};
  std::array<std::uint8_t, 64> reply{};
  std::optional<Result<reqres::Reply, Errc>> ok, rejected;
  bool done = false;
  fibers_.spawn([&] {
    if (!connect(d, "d1")) return;
    d.channel().set_message_handler(h);
    const std::string_view f[] = {"rep/d1"};
    ASSERT_TRUE(d.channel().subscribe(f, Duration{5000}));
    ok.emplace(
        d.channel().request("req/d1", bytes("hello"), {&ok_or_no, nullptr}, reply, Duration{5000}));
    rejected.emplace(d.channel().request("req/d1", bytes("reject"), {&ok_or_no, nullptr}, reply,
                                         Duration{5000}));
    d.channel().close(Duration{1000});
    done = true;
  });
  ASSERT_TRUE(run_until([&] { return done; }, 20s));
  ASSERT_TRUE(ok && rejected);
  ASSERT_TRUE(*ok) << reqres::to_string(ok->error());
  EXPECT_EQ((*ok)->tag, 1);
  ASSERT_TRUE(*rejected) << reqres::to_string(rejected->error());
  EXPECT_EQ((*rejected)->tag, 2);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(reply.data()), (*rejected)->size),
            "no:reject");
  EXPECT_EQ(unsolicited, (std::vector<std::string>{"other", "other"}));
  EXPECT_FALSE(d.connection().active());
}

TEST_F(LoopChannelTest, ATimeoutIsHonouredAndALateReplyIsNotTakenByTheNextRequest) {
  TestDevice d(fibers_, driver_);
  std::array<std::uint8_t, 64> reply{};
  std::optional<Result<reqres::Reply, Errc>> dropped;
  Instant started{}, ended{};
  bool done = false;
  fibers_.spawn([&] {
    if (!connect(d, "d2")) return;
    const std::string_view f[] = {"rep/d2"};
    ASSERT_TRUE(d.channel().subscribe(f, Duration{5000}));
    started = mqtt_asio::Driver::now();
    dropped.emplace(
        d.channel().request("req/d2", bytes("drop"), {&ok_or_no, nullptr}, reply, Duration{300}));
    ended = mqtt_asio::Driver::now();
    d.channel().close(Duration{1000});
    done = true;
  });
  ASSERT_TRUE(run_until([&] { return done; }, 20s));
  ASSERT_TRUE(dropped && !*dropped);
  EXPECT_EQ(dropped->error(), Errc::Timeout);
  EXPECT_GE(ended - started, Duration{300});
  EXPECT_LT(ended - started, Duration{3000});
}

TEST_F(LoopChannelTest, AWaitingRequestGetsNotConnectedAsSoonAsTheConnectionCloses) {
  TestDevice d(fibers_, driver_);
  std::array<std::uint8_t, 64> reply{};
  std::optional<Result<reqres::Reply, Errc>> r;
  std::optional<Result<void, Errc>> after;
  Instant started{}, ended{};
  bool done = false;
  fibers_.spawn([&] {
    if (!connect(d, "d3")) return;
    const std::string_view f[] = {"rep/d3"};
    ASSERT_TRUE(d.channel().subscribe(f, Duration{5000}));
    started = mqtt_asio::Driver::now();
    r.emplace(
        d.channel().request("req/d3", bytes("drop"), {&ok_or_no, nullptr}, reply, Duration{20000}));
    ended = mqtt_asio::Driver::now();
    after.emplace(d.channel().poll(Duration{1000}));
    done = true;
  });
  asio::steady_timer cut(io_);
  cut.expires_after(300ms);
  cut.async_wait([&](std::error_code) { d.connection().stop(); });
  ASSERT_TRUE(run_until([&] { return done; }, 20s));
  ASSERT_TRUE(r && !*r);
  EXPECT_EQ(r->error(), Errc::NotConnected);
  EXPECT_LT(ended - started, Duration{5000}) << "woken by the close, not by the 20 s timeout";
  ASSERT_TRUE(after && !*after);
  EXPECT_EQ(after->error(), Errc::NotConnected);
  ASSERT_TRUE(run_until([&] { return !d.connection().active(); }, 5s));
}

TEST_F(LoopChannelTest, WipeReplyLeavesNoCopyInTheReceiveBuffer) {
  TestDevice d(fibers_, driver_);
  std::array<std::uint8_t, 64> reply{};
  const std::string secret = "secret-4d1b9f0c";
  auto found = [&] {
    const auto* p = reinterpret_cast<const char*>(&d);
    return std::string_view(p, sizeof d).find("ok:" + secret) != std::string_view::npos;
  };
  bool kept = false, wiped = true, done = false;
  fibers_.spawn([&] {
    if (!connect(d, "d4")) return;
    const std::string_view f[] = {"rep/d4"};
    ASSERT_TRUE(d.channel().subscribe(f, Duration{5000}));
    ASSERT_TRUE(
        d.channel().request("req/d4", bytes(secret), {&ok_or_no, nullptr}, reply, Duration{5000}));
    kept = found();  // without wipe_reply the receive buffer still holds it
    ASSERT_TRUE(d.channel().request("req/d4", bytes(secret), {&ok_or_no, nullptr, true}, reply,
                                    Duration{5000}));
    wiped = !found();
    d.channel().close(Duration{1000});
    done = true;
  });
  ASSERT_TRUE(run_until([&] { return done; }, 20s));
  EXPECT_TRUE(kept);
  EXPECT_TRUE(wiped);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(reply.data()), 3 + secret.size()),
            "ok:" + secret);
}

TEST_F(LoopChannelTest, BusyWouldDeadlockPollAndShutdown) {
  TestDevice d(fibers_, driver_);
  std::array<std::uint8_t, 64> reply{};
  std::optional<Result<reqres::Reply, Errc>> first, second;
  std::optional<Result<void, Errc>> polled, idle_poll;
  std::vector<std::string> unsolicited;
  bool subscribed = false, second_done = false;
  // Outside a fiber nothing can wait.
  EXPECT_EQ(d.channel().poll(Duration{10}).error(), Errc::WouldDeadlock);
  fibers_.spawn([&] {
    if (!connect(d, "d5")) return;
    d.channel().set_message_handler({[](void* c, const reqres::Message& m) {
                                       static_cast<std::vector<std::string>*>(c)->push_back(
                                           text(m));
                                     },
                                     &unsolicited});
    const std::string_view f[] = {"rep/d5", "note/d5"};
    ASSERT_TRUE(d.channel().subscribe(f, Duration{5000}));
    idle_poll.emplace(d.channel().poll(Duration{100}));  // nothing arrives: Ok after the timeout
    subscribed = true;
    polled.emplace(d.channel().poll(Duration{10000}));  // ends with the "note" below
    // Waits until shutdown, which ends it with NotConnected.
    first.emplace(
        d.channel().request("req/d5", bytes("drop"), {&ok_or_no, nullptr}, reply, Duration{60000}));
  });
  ASSERT_TRUE(run_until([&] { return subscribed; }, 20s));
  fibers_.spawn([&] {
    mqtt::Publish p;
    p.topic = "note/d5";
    p.payload = mqtt::as_bytes(std::string_view("note"));
    EXPECT_TRUE(responder_.connection().publish(p));
    while (!polled) (void)fibers_.sleep_for(Duration{10});
    (void)fibers_.sleep_for(Duration{100});  // the first request waits now
    second.emplace(
        d.channel().request("req/d5", bytes("x"), {&ok_or_no, nullptr}, reply, Duration{10}));
    second_done = true;
  });
  ASSERT_TRUE(run_until([&] { return second_done; }, 20s));
  EXPECT_TRUE(idle_poll && *idle_poll);
  EXPECT_TRUE(polled && *polled);
  EXPECT_EQ(unsolicited, (std::vector<std::string>{"note"}));
  ASSERT_TRUE(second && !*second);
  EXPECT_EQ(second->error(), Errc::Busy);
  fibers_.shutdown();
  ASSERT_TRUE(first && !*first);
  EXPECT_EQ(first->error(), Errc::NotConnected);
  d.connection().stop();
  ASSERT_TRUE(run_until([&] { return !d.connection().active(); }, 5s));
}

// The per-device figures of docs/simulator.md (printed, for the record).
TEST(SimSizes, PerDevice) {
  std::printf(
      "sizeof: LoopChannel %zu, mqtt_asio::Connection %zu, mqtt::Session %zu, "
      "Device<1024,2> %zu, Device<2048,2> %zu; fiber control block %zu\n",
      sizeof(LoopChannel), sizeof(mqtt_asio::Connection), sizeof(mqtt::Session),
      sizeof(Device<1024, 2>), sizeof(Device<2048, 2>), Fibers::control_block_size());
}

}  // namespace
}  // namespace edgekit::sim
