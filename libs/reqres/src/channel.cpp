// The two Channel implementations: over the blocking client and over the agent.
#include "edgekit/reqres/channel.hpp"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <edgekit/agent/agent.hpp>
#include <edgekit/mqtt/client.hpp>
#include <mutex>

namespace edgekit::reqres {
namespace {

Message message_of(const mqtt::Publish& p) {
  return Message{p.topic, {reinterpret_cast<const std::uint8_t*>(p.payload.data()),
                           p.payload.size()}};
}

// Copies `payload` into `out` when it fits, then wipes it in place if `wipe` (whether it fit or
// not: a secret too large for the caller must not stay behind either). Returns the size, or
// ReplyTooLarge.
Result<std::size_t, Errc> copy_reply(std::span<const std::uint8_t> payload,
                                     std::span<std::uint8_t> out, bool wipe) noexcept {
  const bool fits = payload.size() <= out.size();
  if (fits && !payload.empty()) std::memcpy(out.data(), payload.data(), payload.size());
  if (wipe) wipe_in_place(payload);
  if (!fits) return fail(Errc::ReplyTooLarge);
  return payload.size();
}

bool valid_filters(std::span<const std::string_view> filters) {
  if (filters.empty() || filters.size() > kMaxFilters) return false;
  return std::all_of(filters.begin(), filters.end(), [](std::string_view f) {
    return !f.empty() && f.size() <= kMaxFilterLength;
  });
}

}  // namespace

void wipe(std::span<std::uint8_t> bytes) noexcept {
  // Stores through a volatile pointer are observable behaviour: the compiler keeps every one,
  // where it may drop a memset of memory that is not read again.
  volatile std::uint8_t* p = bytes.data();
  for (std::size_t i = 0; i < bytes.size(); ++i) p[i] = 0;
}

void wipe_in_place(std::span<const std::uint8_t> payload) noexcept {
  // The payload views the driver's receive buffer, which is writable memory: the const is the
  // view's, not the buffer's.
  wipe(std::span<std::uint8_t>(const_cast<std::uint8_t*>(payload.data()), payload.size()));
}

const char* to_string(Errc e) noexcept {
  switch (e) {
    case Errc::Ok:
      return "Ok";
    case Errc::NotConnected:
      return "NotConnected";
    case Errc::SubscribeFailed:
      return "SubscribeFailed";
    case Errc::PublishFailed:
      return "PublishFailed";
    case Errc::Timeout:
      return "Timeout";
    case Errc::ReplyTooLarge:
      return "ReplyTooLarge";
    case Errc::Busy:
      return "Busy";
    case Errc::InvalidArgument:
      return "InvalidArgument";
    case Errc::WouldDeadlock:
      return "WouldDeadlock";
  }
  return "unknown";
}

// ---- ClientChannel ------------------------------------------------------------------------------

struct ClientChannel::Pending {
  Matcher matcher;
  std::span<std::uint8_t> reply;
  bool done = false;
  Errc error = Errc::Ok;
  Reply result;
};

void ClientChannel::on_event(void* context, mqtt::Client&, const mqtt::Event& event) noexcept {
  auto* self = static_cast<ClientChannel*>(context);
  if (event.type != mqtt::EventType::MessageReceived || event.message == nullptr) return;
  const Message m = message_of(*event.message);
  Pending* p = self->pending_;
  if (p != nullptr && !p->done) {
    if (const std::uint8_t tag = p->matcher.function(p->matcher.context, m); tag != 0) {
      p->done = true;
      auto copied = copy_reply(m.payload, p->reply, p->matcher.wipe_reply);
      if (copied) {
        p->result = Reply{tag, *copied};
      } else {
        p->error = copied.error();
      }
      return;
    }
  }
  if (self->handler_.function != nullptr) self->handler_.function(self->handler_.context, m);
}

ClientChannel::ClientChannel(mqtt::Client& client, const Clock& clock) noexcept
    : client_(&client), clock_(&clock) {
  client_->set_event_handler(mqtt::EventHandler(&ClientChannel::on_event, this));
}

ClientChannel::~ClientChannel() {
  client_->set_event_handler({});
}

void ClientChannel::set_message_handler(MessageHandler handler) noexcept {
  handler_ = handler;
}

Result<void, Errc> ClientChannel::subscribe(std::span<const std::string_view> filters,
                                            Duration timeout) noexcept {
  if (!valid_filters(filters)) return fail(Errc::InvalidArgument);
  if (in_call_) return fail(Errc::Busy);
  if (!client_->connected()) return fail(Errc::NotConnected);
  const mqtt::SubscribeOptions qos1{.qos = mqtt::QoS::AtLeastOnce};
  std::array<mqtt::Subscription, kMaxFilters> subs{};
  std::array<mqtt::ReasonCode, kMaxFilters> codes{};
  for (std::size_t i = 0; i < filters.size(); ++i) subs[i] = mqtt::Subscription{filters[i], qos1};
  in_call_ = true;
  auto r = client_->subscribe(std::span(subs.data(), filters.size()),
                              std::span(codes.data(), filters.size()), timeout);
  in_call_ = false;
  if (!r) return fail(client_->connected() ? Errc::SubscribeFailed : Errc::NotConnected);
  for (std::size_t i = 0; i < filters.size(); ++i) {
    if (mqtt::is_error(codes[i])) return fail(Errc::SubscribeFailed);
  }
  return {};
}

void ClientChannel::unsubscribe(std::span<const std::string_view> filters,
                                Duration timeout) noexcept {
  if (!valid_filters(filters) || in_call_ || !client_->connected()) return;
  std::array<mqtt::ReasonCode, kMaxFilters> codes{};
  in_call_ = true;
  // Best effort, as documented: a filter left subscribed only brings messages that no request
  // matches (the message handler's, or dropped), and the connection is the caller's to close.
  (void)client_->unsubscribe(filters, std::span(codes.data(), filters.size()), timeout);
  in_call_ = false;
}

Result<Reply, Errc> ClientChannel::request(std::string_view topic,
                                           std::span<const std::uint8_t> payload,
                                           Matcher matcher, std::span<std::uint8_t> reply,
                                           Duration timeout) noexcept {
  if (matcher.function == nullptr) return fail(Errc::InvalidArgument);
  if (pending_ != nullptr || in_call_) return fail(Errc::Busy);
  if (!client_->connected()) return fail(Errc::NotConnected);
  Pending p{matcher, reply, false, Errc::Ok, Reply{}};
  pending_ = &p;
  in_call_ = true;
  struct Clear {
    ClientChannel& c;
    ~Clear() {
      c.pending_ = nullptr;
      c.in_call_ = false;
    }
  } clear{*this};
  const Instant deadline = deadline_after(clock_->now(), timeout);
  mqtt::Publish message;
  message.topic = topic;
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

Result<void, Errc> ClientChannel::poll(Duration timeout) noexcept {
  if (in_call_) return fail(Errc::Busy);
  if (!client_->connected()) return fail(Errc::NotConnected);
  in_call_ = true;
  auto r = client_->process_loop(timeout);
  in_call_ = false;
  if (!r) return fail(Errc::NotConnected);
  return {};
}

// ---- AgentChannel -------------------------------------------------------------------------------

namespace {
// Set while one of this file's agent handlers runs: a waiting call from there (e.g. an update
// from a delta handler) would wait for the very thread it blocks.
thread_local bool t_in_agent_handler = false;

struct HandlerScope {
  HandlerScope() noexcept { t_in_agent_handler = true; }
  ~HandlerScope() { t_in_agent_handler = false; }
};
}  // namespace

// Every field below `mutex` is read and written under it (callers' threads and the agent thread
// both touch them); `agent` and `key` are set once, before any handler can run.
struct AgentChannel::Shared {
  agent::Agent* agent = nullptr;
  std::array<char, 40> key_buffer{};
  std::string_view key;  // the expectation key: unique per channel (its address)
  std::mutex mutex;
  std::condition_variable cv;
  MessageHandler handler;
  bool in_flight = false;  // a request waits
  bool done = false;       // its expectation ended
  Matcher matcher;
  std::uint8_t tag = 0;  // what the matcher said of the message being delivered
  std::span<std::uint8_t> reply;
  Errc error = Errc::Ok;
  Reply result;
  std::uint64_t unsolicited = 0;  // messages handed to `handler` so far (for poll)
  int dispatching = 0;            // calls of `handler` in progress (set_message_handler waits)
  // The filters whose agent handler points at this object (for the destructor).
  std::array<std::array<char, kMaxFilterLength>, kMaxFilters> filters{};
  std::array<std::size_t, kMaxFilters> filter_sizes{};

  [[nodiscard]] std::string_view filter(std::size_t i) const {
    return {filters[i].data(), filter_sizes[i]};
  }
  void remember(std::string_view f) {
    std::size_t free_slot = kMaxFilters;
    for (std::size_t i = 0; i < kMaxFilters; ++i) {
      if (filter_sizes[i] != 0 && filter(i) == f) return;
      if (filter_sizes[i] == 0 && free_slot == kMaxFilters) free_slot = i;
    }
    if (free_slot == kMaxFilters) return;  // cannot happen: subscribe checks the room first
    std::memcpy(filters[free_slot].data(), f.data(), f.size());
    filter_sizes[free_slot] = f.size();
  }
  void forget(std::string_view f) {
    for (std::size_t i = 0; i < kMaxFilters; ++i) {
      if (filter_sizes[i] != 0 && filter(i) == f) filter_sizes[i] = 0;
    }
  }
  [[nodiscard]] bool room_for(std::span<const std::string_view> fs) const {
    std::size_t missing = 0, used = 0;
    for (std::size_t i = 0; i < kMaxFilters; ++i) used += filter_sizes[i] != 0 ? 1 : 0;
    for (std::string_view f : fs) {
      bool known = false;
      for (std::size_t i = 0; i < kMaxFilters; ++i) {
        known = known || (filter_sizes[i] != 0 && filter(i) == f);
      }
      missing += known ? 0 : 1;
    }
    return used + missing <= kMaxFilters;
  }
};

namespace {

void on_agent_message(void* context, const mqtt::Publish& publish) {
  HandlerScope scope;
  auto* s = static_cast<AgentChannel::Shared*>(context);
  const Message m = message_of(publish);
  bool take = false;
  MessageHandler handler;
  {
    std::lock_guard lock(s->mutex);
    if (s->in_flight && !s->done) {
      s->tag = s->matcher.function(s->matcher.context, m);
      take = s->tag != 0;
    }
    handler = s->handler;
    ++s->dispatching;  // until the handler returns, set_message_handler waits for it
  }
  // The expectation takes it on this thread, through on_agent_response.
  const bool taken = take && s->agent->deliver_response(s->key, publish);
  if (!taken && handler.function != nullptr) handler.function(handler.context, m);
  std::lock_guard lock(s->mutex);
  --s->dispatching;
  if (!taken) ++s->unsolicited;
  s->cv.notify_all();
}

void on_agent_response(void* context, const agent::Outcome& outcome,
                       const mqtt::Publish* response) {
  auto* s = static_cast<AgentChannel::Shared*>(context);
  std::lock_guard lock(s->mutex);
  if (response == nullptr) {
    s->error = outcome.error == agent::Errc::Timeout ? Errc::Timeout : Errc::NotConnected;
  } else {
    auto copied = copy_reply(message_of(*response).payload, s->reply, s->matcher.wipe_reply);
    if (copied) {
      s->result = Reply{s->tag, *copied};
    } else {
      s->error = copied.error();
    }
  }
  s->done = true;
  s->cv.notify_all();
}

Errc error_of(const agent::Error& e) {
  switch (e.code) {
    case agent::Errc::WouldDeadlock:
      return Errc::WouldDeadlock;
    case agent::Errc::NotStarted:
    case agent::Errc::Stopped:
    case agent::Errc::PermanentFailure:
      return Errc::NotConnected;
    default:
      return Errc::PublishFailed;
  }
}

}  // namespace

AgentChannel::AgentChannel(agent::Agent& agent) noexcept : agent_(&agent), shared_(new Shared) {
  shared_->agent = &agent;
  const int n = std::snprintf(shared_->key_buffer.data(), shared_->key_buffer.size(),
                              "edgekit-reqres-%p", static_cast<void*>(shared_));
  shared_->key = std::string_view(shared_->key_buffer.data(), static_cast<std::size_t>(n));
}

AgentChannel::~AgentChannel() {
  // The subscriptions' handlers point at shared_: they must be gone before it is. Should an
  // unsubscription not be confirmed (a running agent that lost its link), shared_ is left
  // allocated on purpose — about 2 KB — rather than freed under a live handler.
  bool all_gone = true;
  for (std::size_t i = 0; i < kMaxFilters; ++i) {
    if (shared_->filter_sizes[i] == 0) continue;
    auto r = agent_->unsubscribe_and_wait(shared_->filter(i), Duration{5000});
    const bool gone = (r && (r->ok() || r->error == agent::Errc::NotSubscribed)) ||
                      (!r && (r.error().code == agent::Errc::Stopped ||
                              r.error().code == agent::Errc::NotStarted));
    all_gone = all_gone && gone;
  }
  if (all_gone) delete shared_;
}

void AgentChannel::set_message_handler(MessageHandler handler) noexcept {
  std::unique_lock lock(shared_->mutex);
  shared_->handler = handler;
  // A call of the previous handler may be running on the agent thread: wait for it, so that
  // its object may go once this returns (not from inside a handler: that call is our caller).
  if (!t_in_agent_handler) shared_->cv.wait(lock, [this] { return shared_->dispatching == 0; });
}

Result<void, Errc> AgentChannel::subscribe(std::span<const std::string_view> filters,
                                           Duration timeout) noexcept {
  if (!valid_filters(filters)) return fail(Errc::InvalidArgument);
  if (t_in_agent_handler) return fail(Errc::WouldDeadlock);
  {
    std::lock_guard lock(shared_->mutex);
    if (!shared_->room_for(filters)) return fail(Errc::InvalidArgument);
  }
  const mqtt::SubscribeOptions qos1{.qos = mqtt::QoS::AtLeastOnce};
  for (std::string_view filter : filters) {
    auto r = agent_->subscribe_and_wait(filter, qos1,
                                        agent::MessageHandler{&on_agent_message, shared_}, timeout);
    if (!r) {
      if (r.error().code == agent::Errc::Timeout) return fail(Errc::SubscribeFailed);
      if (r.error().code == agent::Errc::InvalidArgument ||
          r.error().code == agent::Errc::Rejected) {
        return fail(Errc::InvalidArgument);
      }
      return fail(error_of(r.error()) == Errc::PublishFailed ? Errc::SubscribeFailed
                                                             : error_of(r.error()));
    }
    if (!r->ok()) return fail(Errc::SubscribeFailed);
    std::lock_guard lock(shared_->mutex);
    shared_->remember(filter);
  }
  return {};
}

void AgentChannel::unsubscribe(std::span<const std::string_view> filters,
                               Duration timeout) noexcept {
  if (t_in_agent_handler) return;
  for (std::string_view filter : filters) {
    auto r = agent_->unsubscribe_and_wait(filter, timeout);
    if (!r || !(r->ok() || r->error == agent::Errc::NotSubscribed)) {
      continue;  // still subscribed: the destructor tries again
    }
    std::lock_guard lock(shared_->mutex);
    shared_->forget(filter);
  }
}

Result<Reply, Errc> AgentChannel::request(std::string_view topic,
                                          std::span<const std::uint8_t> payload, Matcher matcher,
                                          std::span<std::uint8_t> reply,
                                          Duration timeout) noexcept {
  if (matcher.function == nullptr) return fail(Errc::InvalidArgument);
  if (t_in_agent_handler) return fail(Errc::WouldDeadlock);
  {
    std::lock_guard lock(shared_->mutex);
    if (shared_->in_flight) return fail(Errc::Busy);
    shared_->in_flight = true;
    shared_->done = false;
    shared_->error = Errc::Ok;
    shared_->matcher = matcher;
    shared_->reply = reply;
  }
  auto end = [this] {
    std::lock_guard lock(shared_->mutex);
    shared_->in_flight = false;
    shared_->reply = {};
    shared_->matcher = {};
  };
  // The expectation first, then the request: a reply can never beat its expectation.
  auto expected = agent_->expect_response(shared_->key, timeout,
                                          agent::ResponseHandler{&on_agent_response, shared_});
  if (!expected) {
    end();
    return fail(error_of(expected.error()));
  }
  mqtt::Publish message;
  message.topic = topic;
  message.payload = mqtt::Bytes(reinterpret_cast<const std::byte*>(payload.data()), payload.size());
  message.qos = mqtt::QoS::AtLeastOnce;  // the agent copies it: nothing points at our buffer
  auto published = agent_->publish(message);
  // The agent calls the response handler exactly once (response, Timeout or Stopped): wait for
  // it even when the publish failed, since it writes into `reply`.
  std::unique_lock lock(shared_->mutex);
  shared_->cv.wait(lock, [this] { return shared_->done; });
  shared_->in_flight = false;
  shared_->reply = {};
  shared_->matcher = {};
  if (!published) return fail(error_of(published.error()));
  if (shared_->error != Errc::Ok) return fail(shared_->error);
  return shared_->result;
}

Result<void, Errc> AgentChannel::poll(Duration timeout) noexcept {
  if (t_in_agent_handler) return fail(Errc::WouldDeadlock);
  std::unique_lock lock(shared_->mutex);
  if (shared_->in_flight) return fail(Errc::Busy);
  const std::uint64_t seen = shared_->unsolicited;
  shared_->cv.wait_for(lock, timeout, [&] { return shared_->unsolicited != seen; });
  return {};
}

}  // namespace edgekit::reqres
