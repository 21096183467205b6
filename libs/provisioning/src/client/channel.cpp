// The two Channel implementations: over the blocking client and over the agent.
#include "edgekit/provisioning/channel.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstring>
#include <edgekit/agent/agent.hpp>
#include <edgekit/mqtt/client.hpp>
#include <mutex>
#include <string>
#include <vector>

namespace edgekit::provisioning {
namespace {

std::span<const std::uint8_t> bytes_of(mqtt::Bytes b) {
  return {reinterpret_cast<const std::uint8_t*>(b.data()), b.size()};
}

// The reply kind of `topic` among `topics`; Request when it is neither.
TopicKind kind_of(std::string_view topic, const ReplyTopics& topics) {
  if (topic == topics.accepted) return TopicKind::Accepted;
  if (topic == topics.rejected) return TopicKind::Rejected;
  return TopicKind::Request;
}

// Any provisioning reply topic: what is wiped even when nobody waits for it.
bool is_any_reply(std::string_view topic) {
  auto m = match_topic(topic);
  return m && m->kind != TopicKind::Request;
}

void wipe_in_place(std::span<const std::uint8_t> payload) {
  // The payload views the driver's receive buffer, which is writable memory: the const is the
  // view's, not the buffer's.
  wipe(std::span<std::uint8_t>(const_cast<std::uint8_t*>(payload.data()), payload.size()));
}

}  // namespace

void wipe(std::span<std::uint8_t> bytes) noexcept {
  if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
}

void wipe(std::span<char> bytes) noexcept {
  if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
}

Result<std::size_t, Errc> take_and_wipe(std::span<const std::uint8_t> payload,
                                        std::span<std::uint8_t> out) noexcept {
  const bool fits = payload.size() <= out.size();
  if (fits && !payload.empty()) std::memcpy(out.data(), payload.data(), payload.size());
  wipe_in_place(payload);
  if (!fits) return fail(Errc::ReplyTooLarge);
  return payload.size();
}

// ---- ClientChannel ------------------------------------------------------------------------------

struct ClientChannel::Pending {
  ReplyTopics topics;
  std::span<std::uint8_t> reply;
  bool done = false;
  Errc error = Errc::Ok;
  Reply result;
};

namespace {
void on_client_event(void* context, mqtt::Client&, const mqtt::Event& event) {
  auto* self = static_cast<ClientChannel::Pending**>(context);
  if (event.type != mqtt::EventType::MessageReceived || event.message == nullptr) return;
  const mqtt::Publish& m = *event.message;
  ClientChannel::Pending* p = *self;
  const TopicKind kind = p != nullptr ? kind_of(m.topic, p->topics) : TopicKind::Request;
  if (p == nullptr || p->done || kind == TopicKind::Request) {
    // Nobody waits for it (a late or duplicate reply): it may still hold a key.
    if (is_any_reply(m.topic)) wipe_in_place(bytes_of(m.payload));
    return;
  }
  auto taken = take_and_wipe(bytes_of(m.payload), p->reply);
  p->done = true;
  if (!taken) {
    p->error = taken.error();
    return;
  }
  p->result = Reply{kind, *taken};
}
}  // namespace

ClientChannel::ClientChannel(mqtt::Client& client, const Clock& clock) noexcept
    : client_(&client), clock_(&clock) {
  client_->set_event_handler(mqtt::EventHandler(
      [](void* ctx, mqtt::Client& c, const mqtt::Event& e) { on_client_event(ctx, c, e); },
      &pending_));
}

ClientChannel::~ClientChannel() {
  client_->set_event_handler({});
}

Result<void, Errc> ClientChannel::subscribe(ReplyTopics topics, Duration timeout) {
  if (!client_->connected()) return fail(Errc::NotConnected);
  const mqtt::SubscribeOptions qos1{.qos = mqtt::QoS::AtLeastOnce};
  const std::array<mqtt::Subscription, 2> subs{mqtt::Subscription{topics.accepted, qos1},
                                               mqtt::Subscription{topics.rejected, qos1}};
  std::array<mqtt::ReasonCode, 2> codes{};
  auto r = client_->subscribe(subs, codes, timeout);
  if (!r) return fail(client_->connected() ? Errc::SubscribeFailed : Errc::NotConnected);
  for (mqtt::ReasonCode c : codes) {
    if (mqtt::is_error(c)) return fail(Errc::SubscribeFailed);
  }
  return {};
}

void ClientChannel::unsubscribe(ReplyTopics topics, Duration timeout) {
  if (!client_->connected()) return;
  const std::array<std::string_view, 2> filters{topics.accepted, topics.rejected};
  std::array<mqtt::ReasonCode, 2> codes{};
  (void)client_->unsubscribe(filters, codes, timeout);
}

Result<Reply, Errc> ClientChannel::request(std::string_view request_topic,
                                           std::span<const std::uint8_t> payload,
                                           ReplyTopics topics, std::span<std::uint8_t> reply,
                                           Duration timeout) {
  if (pending_ != nullptr) return fail(Errc::Busy);
  if (!client_->connected()) return fail(Errc::NotConnected);
  Pending p{topics, reply, false, Errc::Ok, Reply{}};
  pending_ = &p;
  struct Clear {
    Pending*& slot;
    ~Clear() { slot = nullptr; }
  } clear{pending_};
  const Instant deadline = clock_->now() + timeout;
  mqtt::Publish message;
  message.topic = request_topic;
  message.payload = mqtt::Bytes(reinterpret_cast<const std::byte*>(payload.data()), payload.size());
  message.qos = mqtt::QoS::AtMostOnce;  // see the class comment
  if (!client_->publish(message, timeout)) {
    return fail(client_->connected() ? Errc::PublishFailed : Errc::NotConnected);
  }
  while (!p.done) {
    const Instant now = clock_->now();
    if (now >= deadline) return fail(Errc::Timeout);
    if (!client_->process_loop(deadline - now)) return fail(Errc::NotConnected);
  }
  if (p.error != Errc::Ok) return fail(p.error);
  return p.result;
}

// ---- AgentChannel -------------------------------------------------------------------------------

namespace {
constexpr std::string_view kCorrelation = "edgekit-provisioning";
}  // namespace

// Every field below `mutex` is read and written under it (the caller's thread and the agent
// thread both touch them); `agent` is set once before any handler can run.
struct AgentChannel::Shared {
  agent::Agent* agent = nullptr;
  std::mutex mutex;
  std::condition_variable cv;
  bool in_flight = false;   // a request waits (the caller's thread)
  bool done = false;        // its expectation ended (agent thread)
  std::string correlation;  // the request topic: the agent's expectation key
  std::string accepted, rejected;
  std::span<std::uint8_t> reply;
  Errc error = Errc::Ok;
  Reply result;
  std::vector<std::string> subscribed;  // filters whose handler points at this object
};

namespace {

void on_agent_message(void* context, const mqtt::Publish& message) {
  auto* s = static_cast<AgentChannel::Shared*>(context);
  std::string correlation;
  {
    std::lock_guard lock(s->mutex);
    if (s->in_flight && !s->done) correlation = s->correlation;
  }
  // The expectation takes it (on this thread, through on_agent_response); if none is
  // registered any more (timed out, answered), the reply is wiped and dropped.
  if (correlation.empty() || !s->agent->deliver_response(correlation, message)) {
    wipe_in_place(bytes_of(message.payload));
  }
}

void on_agent_response(void* context, const agent::Outcome& outcome,
                       const mqtt::Publish* response) {
  auto* s = static_cast<AgentChannel::Shared*>(context);
  std::lock_guard lock(s->mutex);
  if (response == nullptr) {
    s->error = outcome.error == agent::Errc::Timeout ? Errc::Timeout : Errc::NotConnected;
  } else {
    const TopicKind kind = kind_of(response->topic, ReplyTopics{s->accepted, s->rejected});
    auto taken = take_and_wipe(bytes_of(response->payload), s->reply);
    if (!taken) {
      s->error = taken.error();
    } else if (kind == TopicKind::Request) {
      s->error = Errc::TopicMismatch;  // cannot happen: only our handlers deliver
    } else {
      s->result = Reply{kind, *taken};
    }
  }
  s->done = true;
  s->cv.notify_all();
}

}  // namespace

AgentChannel::AgentChannel(agent::Agent& agent) noexcept : agent_(&agent), shared_(new Shared) {
  shared_->agent = &agent;
}

AgentChannel::~AgentChannel() {
  // The subscriptions' handlers point at shared_: they must be gone before it is. Should an
  // unsubscription not be confirmed (a running agent that lost its link), shared_ is left
  // allocated on purpose — a few hundred bytes — rather than freed under a live handler.
  bool all_gone = true;
  for (const std::string& filter : shared_->subscribed) {
    auto r = agent_->unsubscribe_and_wait(filter, Duration{5000});
    const bool gone = (r && r->ok()) || (!r && (r.error().code == agent::Errc::Stopped ||
                                                r.error().code == agent::Errc::NotStarted));
    all_gone = all_gone && gone;
  }
  if (all_gone) delete shared_;
}

Result<void, Errc> AgentChannel::subscribe(ReplyTopics topics, Duration timeout) {
  const mqtt::SubscribeOptions qos1{.qos = mqtt::QoS::AtLeastOnce};
  for (std::string_view filter : {topics.accepted, topics.rejected}) {
    auto r = agent_->subscribe_and_wait(filter, qos1,
                                        agent::MessageHandler{&on_agent_message, shared_}, timeout);
    if (!r) {
      return fail(r.error().code == agent::Errc::Timeout ? Errc::SubscribeFailed
                                                         : Errc::NotConnected);
    }
    if (!r->ok()) return fail(Errc::SubscribeFailed);
    std::lock_guard lock(shared_->mutex);
    if (std::find(shared_->subscribed.begin(), shared_->subscribed.end(), filter) ==
        shared_->subscribed.end()) {
      shared_->subscribed.emplace_back(filter);
    }
  }
  return {};
}

void AgentChannel::unsubscribe(ReplyTopics topics, Duration timeout) {
  for (std::string_view filter : {topics.accepted, topics.rejected}) {
    auto r = agent_->unsubscribe_and_wait(filter, timeout);
    if (!r || !r->ok()) continue;  // still subscribed: the destructor tries again
    std::lock_guard lock(shared_->mutex);
    std::erase(shared_->subscribed, std::string(filter));
  }
}

Result<Reply, Errc> AgentChannel::request(std::string_view request_topic,
                                          std::span<const std::uint8_t> payload, ReplyTopics topics,
                                          std::span<std::uint8_t> reply, Duration timeout) {
  {
    std::lock_guard lock(shared_->mutex);
    if (shared_->in_flight) return fail(Errc::Busy);
    shared_->in_flight = true;
    shared_->done = false;
    shared_->error = Errc::Ok;
    // One request in flight per channel, and one channel per agent: a fixed key is enough (and
    // fits Config::max_correlation_length, which a RegisterThing topic may not).
    shared_->correlation.assign(kCorrelation);
    shared_->accepted.assign(topics.accepted);
    shared_->rejected.assign(topics.rejected);
    shared_->reply = reply;
  }
  auto end = [this](Errc e) {
    std::lock_guard lock(shared_->mutex);
    shared_->in_flight = false;
    shared_->reply = {};
    return e;
  };
  // The expectation first, then the request: a reply can never beat its expectation.
  auto expected = agent_->expect_response(kCorrelation, timeout,
                                          agent::ResponseHandler{&on_agent_response, shared_});
  if (!expected) return fail(end(Errc::NotConnected));
  mqtt::Publish message;
  message.topic = request_topic;
  message.payload = mqtt::Bytes(reinterpret_cast<const std::byte*>(payload.data()), payload.size());
  message.qos = mqtt::QoS::AtLeastOnce;  // the agent copies it: nothing points at our buffer
  const bool published = static_cast<bool>(agent_->publish(message));
  // The agent calls the response handler exactly once (response, Timeout or Stopped): wait for
  // it even when the publish failed, since it writes into `reply`.
  std::unique_lock lock(shared_->mutex);
  shared_->cv.wait(lock, [this] { return shared_->done; });
  shared_->in_flight = false;
  shared_->reply = {};
  if (shared_->error != Errc::Ok) {
    return fail(!published && shared_->error == Errc::Timeout ? Errc::PublishFailed
                                                              : shared_->error);
  }
  return shared_->result;
}

}  // namespace edgekit::provisioning
