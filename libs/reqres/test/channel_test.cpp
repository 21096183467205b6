// The request/response channels against a real Mosquitto and a scripted responder (an agent on
// the same broker): the matching reply is taken, every other message goes to the unsolicited
// handler, timeouts are bounded, a late reply is never taken for the next request, and both
// drivers (blocking client, agent) behave alike.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <edgekit/reqres/channel.hpp>
#include <edgekit/testing/blocking_device.hpp>
#include <edgekit/testing/channel_device.hpp>
#include <edgekit/testing/mosquitto.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace edgekit::reqres::test {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kRequestTopic = "svc/request";
constexpr std::string_view kAccepted = "svc/reply/accepted";
constexpr std::string_view kRejected = "svc/reply/rejected";
constexpr std::array<std::string_view, 1> kFilters{"svc/reply/+"};

std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
std::string_view text(std::span<const std::uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// The scripted service. A request's payload is "<token> <action>"; the reply's payload is the
// token (or, for "big", the token and 1100 more bytes). Actions:
//   accept / reject: answer on accepted / rejected;
//   silent: no answer;
//   noise: first a message with another token on accepted, then the answer;
//   late: the answer 400 ms later (from a thread of its own);
//   big: an accepted answer of 1.1 KB (the device's buffer holds 1 KB).
class Responder {
 public:
  explicit Responder(std::uint16_t port) : device_(port, "responder", config()) {}
  ~Responder() {
    device_.agent.stop();
    for (std::thread& t : late_) t.join();
  }
  bool start() {
    if (!device_.start()) return false;
    auto r = device_.agent.subscribe_and_wait(kRequestTopic, {.qos = mqtt::QoS::AtLeastOnce},
                                              agent::MessageHandler{&on_request, this}, 5s);
    return r && r->ok();
  }
  void publish(std::string_view topic, std::string_view payload) {
    mqtt::Publish p;
    p.topic = topic;
    p.payload = mqtt::Bytes(reinterpret_cast<const std::byte*>(payload.data()), payload.size());
    p.qos = mqtt::QoS::AtLeastOnce;
    (void)device_.agent.publish(p);
  }

 private:
  static agent::Config config() {
    agent::Config c;
    c.slot_size = 4096;  // the "big" reply
    return c;
  }
  static void on_request(void* ctx, const mqtt::Publish& m) {
    auto* self = static_cast<Responder*>(ctx);
    const std::string payload(mqtt::as_string(m.payload));
    const auto space = payload.find(' ');
    const std::string token = payload.substr(0, space);
    const std::string action = space == std::string::npos ? "" : payload.substr(space + 1);
    if (action == "accept") self->publish(kAccepted, token);
    if (action == "reject") self->publish(kRejected, token);
    if (action == "noise") {
      self->publish(kAccepted, "someone-else");
      self->publish(kAccepted, token);
    }
    if (action == "big") self->publish(kAccepted, token + std::string(1100, 'x'));
    if (action == "late") {
      self->late_.emplace_back([self, token] {
        std::this_thread::sleep_for(400ms);
        self->publish(kAccepted, token);
      });
    }
  }

  testing::AgentDevice device_;
  std::vector<std::thread> late_;  // only the agent thread adds to it
};

// Accepts a reply whose payload starts with the token: 1 on accepted, 2 on rejected.
struct TokenMatcher {
  std::string token;
  static std::uint8_t match(void* ctx, const Message& m) {
    auto* self = static_cast<TokenMatcher*>(ctx);
    if (!text(m.payload).starts_with(self->token)) return 0;
    if (m.topic == kAccepted) return 1;
    if (m.topic == kRejected) return 2;
    return 0;
  }
  Matcher matcher() { return Matcher{&match, this}; }
};

// What the unsolicited handler saw (it runs on the agent thread for AgentChannel).
struct Unsolicited {
  std::mutex mutex;
  std::vector<std::string> payloads;
  static void on(void* ctx, const Message& m) {
    auto* self = static_cast<Unsolicited*>(ctx);
    std::lock_guard lock(self->mutex);
    self->payloads.emplace_back(text(m.payload));
  }
  std::vector<std::string> seen() {
    std::lock_guard lock(mutex);
    return payloads;
  }
  MessageHandler handler() { return MessageHandler{&on, this}; }
};

using testing::Driver;

class ChannelTest : public edgekit::testing::MosquittoFixture,
                    public ::testing::WithParamInterface<Driver> {
 protected:
  void SetUp() override {
    MosquittoFixture::SetUp();
    if (HasFatalFailure()) return;
    responder_ = std::make_unique<Responder>(broker().port());
    ASSERT_TRUE(responder_->start());
    ASSERT_TRUE(device_.connect(GetParam(), broker().port(), "device"));
    channel_ = device_.channel.get();
    channel_->set_message_handler(unsolicited_.handler());
    ASSERT_TRUE(channel_->subscribe(kFilters, 5s));
  }
  void TearDown() override {
    device_.reset();
    responder_.reset();
    MosquittoFixture::TearDown();
  }

  Result<Reply, Errc> ask(std::string_view token, std::string_view action,
                          Duration timeout = 5s) {
    matcher_.token = token;
    request_ = std::string(token) + " " + std::string(action);
    return channel_->request(kRequestTopic, bytes(request_), matcher_.matcher(), reply_, timeout);
  }
  // Waits (bounded) until the unsolicited handler saw `payload`.
  bool await_unsolicited(std::string_view payload) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      for (const std::string& p : unsolicited_.seen()) {
        if (p == payload) return true;
      }
      if (!channel_->poll(200ms)) return false;
    }
    return false;
  }

  std::unique_ptr<Responder> responder_;
  testing::ChannelDevice device_;
  Channel* channel_ = nullptr;
  Unsolicited unsolicited_;
  TokenMatcher matcher_;
  std::string request_;
  std::array<std::uint8_t, 1024> reply_{};
};

TEST_P(ChannelTest, TakesTheAcceptedReplyCopiedIntoTheCallersBuffer) {
  auto r = ask("tok-1", "accept");
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(r->tag, 1);
  EXPECT_EQ(text(std::span(reply_.data(), r->size)), "tok-1");
}

TEST_P(ChannelTest, TakesTheRejectedReplyWithItsTag) {
  auto r = ask("tok-2", "reject");
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(r->tag, 2);
  EXPECT_EQ(text(std::span(reply_.data(), r->size)), "tok-2");
}

TEST_P(ChannelTest, HandsAnotherClientsReplyToTheUnsolicitedHandler) {
  auto r = ask("tok-3", "noise");
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(text(std::span(reply_.data(), r->size)), "tok-3");
  EXPECT_TRUE(await_unsolicited("someone-else"));
}

TEST_P(ChannelTest, TimesOutWithinItsBoundWhenNobodyAnswers) {
  const auto start = std::chrono::steady_clock::now();
  auto r = ask("tok-4", "silent", 300ms);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::Timeout);
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 2s);
}

TEST_P(ChannelTest, ALateReplyIsNeverTakenForTheNextRequest) {
  auto first = ask("tok-5", "late", 100ms);
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error(), Errc::Timeout);
  // The next request is still waiting when the late reply to the first arrives (400 ms after
  // the first request): it must skip it and take its own.
  auto second = ask("tok-6", "late", 5s);
  ASSERT_TRUE(second) << to_string(second.error());
  EXPECT_EQ(text(std::span(reply_.data(), second->size)), "tok-6");
  EXPECT_TRUE(await_unsolicited("tok-5"));
}

TEST_P(ChannelTest, AReplyLargerThanTheBufferIsReplyTooLarge) {
  auto r = ask("tok-7", "big");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::ReplyTooLarge);
  // The channel is free again.
  auto next = ask("tok-8", "accept");
  ASSERT_TRUE(next) << to_string(next.error());
}

// `wipe_reply`: the matching reply is zeroed where the driver received it (the client's or the
// agent's receive buffer, which the matcher sees), once copied into the caller's buffer — and
// also when it did not fit. The receive buffer outlives the request (it is the driver's), and
// the channel's wipe happens before `request` returns, so reading it afterwards is defined.
struct RecordingMatcher {
  TokenMatcher inner;
  std::span<const std::uint8_t> received;  // where the driver held the reply
  static std::uint8_t match(void* ctx, const Message& m) {
    auto* self = static_cast<RecordingMatcher*>(ctx);
    const std::uint8_t tag = TokenMatcher::match(&self->inner, m);
    if (tag != 0) self->received = m.payload;
    return tag;
  }
  Matcher matcher() { return Matcher{&match, this, /*wipe_reply=*/true}; }
};

bool all_zero(std::span<const std::uint8_t> b) {
  return std::all_of(b.begin(), b.end(), [](std::uint8_t c) { return c == 0; });
}

TEST_P(ChannelTest, WipeReplyZeroesTheReplyWhereTheDriverReceivedIt) {
  RecordingMatcher m{TokenMatcher{"secret-1"}, {}};
  request_ = "secret-1 accept";
  auto r = channel_->request(kRequestTopic, bytes(request_), m.matcher(), reply_, 5s);
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(text(std::span(reply_.data(), r->size)), "secret-1");
  ASSERT_EQ(m.received.size(), r->size);
  EXPECT_TRUE(all_zero(m.received));

  RecordingMatcher big{TokenMatcher{"secret-2"}, {}};
  request_ = "secret-2 big";
  auto too_large = channel_->request(kRequestTopic, bytes(request_), big.matcher(), reply_, 5s);
  ASSERT_FALSE(too_large);
  EXPECT_EQ(too_large.error(), Errc::ReplyTooLarge);
  ASSERT_GT(big.received.size(), reply_.size());
  EXPECT_TRUE(all_zero(big.received));
}

TEST_P(ChannelTest, PollDeliversUnsolicitedMessages) {
  responder_->publish(kAccepted, "notification-1");
  EXPECT_TRUE(await_unsolicited("notification-1"));
}

TEST_P(ChannelTest, RefusesBadArguments) {
  EXPECT_EQ(channel_->request(kRequestTopic, bytes("x"), Matcher{}, reply_, 1s).error(),
            Errc::InvalidArgument);
  EXPECT_EQ(channel_->subscribe({}, 1s).error(), Errc::InvalidArgument);
  const std::string too_long(kMaxFilterLength + 1, 'a');
  const std::array<std::string_view, 1> bad{too_long};
  EXPECT_EQ(channel_->subscribe(bad, 1s).error(), Errc::InvalidArgument);
  const std::array<std::string_view, kMaxFilters + 1> many{};
  EXPECT_EQ(channel_->subscribe(many, 1s).error(), Errc::InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Drivers, ChannelTest, testing::kBothDrivers, testing::driver_name);

// Agent only: a request from the unsolicited handler (the agent thread) would wait for the
// thread it blocks.
class AgentChannelTest : public edgekit::testing::MosquittoFixture {};

TEST_F(AgentChannelTest, ARequestFromTheHandlerIsWouldDeadlock) {
  Responder responder(broker().port());
  ASSERT_TRUE(responder.start());
  testing::AgentDevice device(broker().port(), "device");
  ASSERT_TRUE(device.start());
  AgentChannel channel(device.agent);
  struct Probe {
    AgentChannel* channel = nullptr;
    std::mutex mutex;
    std::condition_variable cv;
    bool called = false;
    Errc request = Errc::Ok, poll = Errc::Ok, subscribe = Errc::Ok;
  } probe;
  probe.channel = &channel;
  channel.set_message_handler(MessageHandler{
      [](void* ctx, const Message&) {
        auto* p = static_cast<Probe*>(ctx);
        std::array<std::uint8_t, 16> buf{};
        TokenMatcher m{"t"};
        auto r = p->channel->request(kRequestTopic, bytes("t accept"), m.matcher(), buf, 1s);
        auto q = p->channel->poll(1s);
        auto s = p->channel->subscribe(kFilters, 1s);
        std::lock_guard lock(p->mutex);
        p->request = r ? Errc::Ok : r.error();
        p->poll = q ? Errc::Ok : q.error();
        p->subscribe = s ? Errc::Ok : s.error();
        p->called = true;
        p->cv.notify_all();
      },
      &probe});
  ASSERT_TRUE(channel.subscribe(kFilters, 5s));
  responder.publish(kAccepted, "notification");
  std::unique_lock lock(probe.mutex);
  ASSERT_TRUE(probe.cv.wait_for(lock, 5s, [&] { return probe.called; }));
  EXPECT_EQ(probe.request, Errc::WouldDeadlock);
  EXPECT_EQ(probe.poll, Errc::WouldDeadlock);
  EXPECT_EQ(probe.subscribe, Errc::WouldDeadlock);
}

TEST_F(AgentChannelTest, ASecondConcurrentRequestIsBusy) {
  Responder responder(broker().port());
  ASSERT_TRUE(responder.start());
  testing::AgentDevice device(broker().port(), "device");
  ASSERT_TRUE(device.start());
  AgentChannel channel(device.agent);
  ASSERT_TRUE(channel.subscribe(kFilters, 5s));
  TokenMatcher slow{"slow"};
  std::array<std::uint8_t, 64> buf{};
  std::thread waiter(
      [&] { (void)channel.request(kRequestTopic, bytes("slow late"), slow.matcher(), buf, 5s); });
  // poll says Busy once the first request is in flight (a bounded wait on that state).
  bool in_flight = false;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!in_flight && std::chrono::steady_clock::now() < deadline) {
    auto p = channel.poll(1ms);
    in_flight = !p && p.error() == Errc::Busy;
  }
  ASSERT_TRUE(in_flight);
  TokenMatcher other{"other"};
  std::array<std::uint8_t, 64> buf2{};
  auto second = channel.request(kRequestTopic, bytes("other accept"), other.matcher(), buf2, 1s);
  waiter.join();
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), Errc::Busy);
}

}  // namespace
}  // namespace edgekit::reqres::test
