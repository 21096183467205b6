// reqres::Channel over an event-loop connection, for fibers. See loop_channel.hpp.
#include "loop_channel.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace edgekit::sim {
namespace {

using reqres::Errc;

Instant now() {
  return mqtt_asio::Driver::now();
}

bool valid_filters(std::span<const std::string_view> filters) {
  if (filters.empty() || filters.size() > reqres::kMaxFilters) return false;
  return std::all_of(filters.begin(), filters.end(), [](std::string_view f) {
    return !f.empty() && f.size() <= reqres::kMaxFilterLength;
  });
}

reqres::Message message_of(const mqtt::Publish& p) {
  return reqres::Message{
      p.topic, {reinterpret_cast<const std::uint8_t*>(p.payload.data()), p.payload.size()}};
}

}  // namespace

LoopChannel::LoopChannel(Fibers& fibers, mqtt_asio::Connection& connection) noexcept
    : fibers_(&fibers), connection_(&connection) {}

Errc LoopChannel::begin(Waiting what) noexcept {
  Fiber* f = Fibers::current();
  // Outside a fiber of our scheduler (an Asio handler, the message handler called from the
  // connection's events) there is nothing to suspend: waiting would block the whole loop.
  if (f == nullptr || Fibers::current_scheduler() != fibers_) return Errc::WouldDeadlock;
  if (waiting_ != Waiting::None || in_handler_) return Errc::Busy;
  waiting_ = what;
  outcome_ = Outcome::Pending;
  waiter_ = f;
  error_ = Errc::Ok;
  return Errc::Ok;
}

void LoopChannel::end() noexcept {
  waiting_ = Waiting::None;
  waiter_ = nullptr;
  outcome_ = Outcome::Pending;
}

void LoopChannel::decide(Outcome o) noexcept {
  if (outcome_ != Outcome::Pending) return;
  outcome_ = o;
  (void)fibers_->wake(waiter_);
}

LoopChannel::Outcome LoopChannel::wait_until(std::optional<Instant> deadline) noexcept {
  while (outcome_ == Outcome::Pending) {
    const Wake w = fibers_->wait(deadline);
    if (w == Wake::Stopping) {
      // The simulator shuts down: the call ends as if the connection had gone.
      outcome_ = Outcome::Closed;
      break;
    }
    if (w == Wake::TimedOut) break;
  }
  return outcome_;
}

void LoopChannel::closed() noexcept {
  switch (waiting_) {
    case Waiting::Subscribe:
    case Waiting::Unsubscribe:
    case Waiting::Request:
    case Waiting::Poll:
      decide(Outcome::Closed);
      break;
    default:
      break;  // Connect and Close wait for on_closed itself
  }
}

void LoopChannel::on_event(const mqtt::Event& e) noexcept {
  switch (e.type) {
    case mqtt::EventType::MessageReceived: {
      if (e.message == nullptr) return;
      const reqres::Message m = message_of(*e.message);
      if (waiting_ == Waiting::Request && outcome_ == Outcome::Pending) {
        if (const std::uint8_t tag = matcher_.function(matcher_.context, m); tag != 0) {
          const bool fits = m.payload.size() <= reply_.size();
          if (fits && !m.payload.empty())
            std::memcpy(reply_.data(), m.payload.data(), m.payload.size());
          if (matcher_.wipe_reply) reqres::wipe_in_place(m.payload);
          if (fits) {
            result_ = reqres::Reply{tag, m.payload.size()};
            decide(Outcome::Done);
          } else {
            error_ = Errc::ReplyTooLarge;
            decide(Outcome::Failed);
          }
          return;
        }
      }
      if (handler_.function != nullptr) {
        in_handler_ = true;
        handler_.function(handler_.context, m);
        in_handler_ = false;
      }
      ++unsolicited_;
      if (waiting_ == Waiting::Poll) decide(Outcome::Done);
      return;
    }
    case mqtt::EventType::SubscribeCompleted:
    case mqtt::EventType::UnsubscribeCompleted: {
      const Waiting w =
          e.type == mqtt::EventType::SubscribeCompleted ? Waiting::Subscribe : Waiting::Unsubscribe;
      if (waiting_ != w || e.packet_id != packet_id_) return;
      if (e.error != mqtt::Errc::Ok) {
        decide(Outcome::Closed);
        return;
      }
      const bool refused = std::any_of(e.reason_codes.begin(), e.reason_codes.end(),
                                       [](mqtt::ReasonCode rc) { return mqtt::is_error(rc); });
      decide(refused ? Outcome::Failed : Outcome::Done);
      return;
    }
    case mqtt::EventType::Connected:
      if (waiting_ == Waiting::Connect) decide(Outcome::Done);
      return;
    case mqtt::EventType::ConnectFailed:
      connect_error_ = e.error;  // the connect's outcome comes with on_closed
      return;
    case mqtt::EventType::ConnectionClosed:
    case mqtt::EventType::ServerDisconnected:
      closed();
      return;
    default:
      return;
  }
}

void LoopChannel::on_closed(std::error_code) noexcept {
  switch (waiting_) {
    case Waiting::Connect:
      if (connect_error_ == mqtt::Errc::Ok) connect_error_ = mqtt::Errc::TransportError;
      decide(Outcome::Failed);
      break;
    case Waiting::Close:
      decide(Outcome::Done);
      break;
    default:
      closed();
      break;
  }
}

mqtt::Result<void> LoopChannel::connect(const mqtt_asio::Endpoint& endpoint,
                                        const mqtt::ConnectOptions& options,
                                        Duration timeout) noexcept {
  if (begin(Waiting::Connect) != Errc::Ok) return fail(mqtt::Errc::InvalidArgument);
  connect_error_ = mqtt::Errc::Ok;
  if (auto r = connection_->start(endpoint, options, timeout); !r) {
    end();
    return r;
  }
  // The engine decides within `timeout` (Connected, or ConnectFailed then on_closed): no
  // deadline of our own, so that a failed connect returns with the connection idle again.
  const Outcome o = wait_until(std::nullopt);
  end();
  if (o == Outcome::Done) return {};
  if (o == Outcome::Closed) return fail(mqtt::Errc::NotConnected);  // shutdown
  return fail(connect_error_);
}

void LoopChannel::close(Duration timeout) noexcept {
  if (!connection_->active()) return;
  if (begin(Waiting::Close) != Errc::Ok) return;
  if (!connection_->engine().connected() || !connection_->disconnect()) connection_->stop();
  if (wait_until(deadline_after(now(), timeout)) == Outcome::Pending) {
    connection_->stop();
    (void)wait_until(std::nullopt);
  }
  end();
}

void LoopChannel::set_message_handler(reqres::MessageHandler handler) noexcept {
  handler_ = handler;
}

edgekit::Result<void, Errc> LoopChannel::subscribe(std::span<const std::string_view> filters,
                                          Duration timeout) noexcept {
  if (!valid_filters(filters)) return fail(Errc::InvalidArgument);
  if (const Errc e = begin(Waiting::Subscribe); e != Errc::Ok) return fail(e);
  struct End {
    LoopChannel& c;
    ~End() { c.end(); }
  } end_guard{*this};
  if (!connection_->engine().connected()) return fail(Errc::NotConnected);
  std::array<mqtt::Subscription, reqres::kMaxFilters> subs{};
  for (std::size_t i = 0; i < filters.size(); ++i) {
    subs[i] = mqtt::Subscription{filters[i], mqtt::SubscribeOptions{.qos = mqtt::QoS::AtLeastOnce}};
  }
  auto id = connection_->subscribe(std::span(subs.data(), filters.size()));
  if (!id) {
    return fail(connection_->engine().connected() ? Errc::SubscribeFailed : Errc::NotConnected);
  }
  packet_id_ = *id;
  switch (wait_until(deadline_after(now(), timeout))) {
    case Outcome::Done:
      return {};
    case Outcome::Closed:
      return fail(Errc::NotConnected);
    default:
      return fail(Errc::SubscribeFailed);  // refused, or no SUBACK in time
  }
}

void LoopChannel::unsubscribe(std::span<const std::string_view> filters,
                              Duration timeout) noexcept {
  if (!valid_filters(filters) || !connection_->engine().connected()) return;
  if (begin(Waiting::Unsubscribe) != Errc::Ok) return;
  // Best effort, as documented: a filter left subscribed only brings unsolicited messages.
  if (auto id = connection_->unsubscribe(filters); id) {
    packet_id_ = *id;
    (void)wait_until(deadline_after(now(), timeout));
  }
  end();
}

edgekit::Result<reqres::Reply, Errc> LoopChannel::request(std::string_view topic,
                                                 std::span<const std::uint8_t> payload,
                                                 reqres::Matcher matcher,
                                                 std::span<std::uint8_t> reply,
                                                 Duration timeout) noexcept {
  if (matcher.function == nullptr) return fail(Errc::InvalidArgument);
  if (const Errc e = begin(Waiting::Request); e != Errc::Ok) return fail(e);
  struct End {
    LoopChannel& c;
    ~End() {
      c.matcher_ = {};
      c.reply_ = {};
      c.end();
    }
  } end_guard{*this};
  if (!connection_->engine().connected()) return fail(Errc::NotConnected);
  const Instant deadline = deadline_after(now(), timeout);
  matcher_ = matcher;
  reply_ = reply;
  mqtt::Publish message;
  message.topic = topic;
  message.payload = mqtt::Bytes(reinterpret_cast<const std::byte*>(payload.data()), payload.size());
  message.qos = mqtt::QoS::AtMostOnce;  // see the file comment
  if (!connection_->publish(message)) {
    return fail(connection_->engine().connected() ? Errc::PublishFailed : Errc::NotConnected);
  }
  const Outcome o = wait_until(deadline);
  // A QoS 0 payload is a view until written: one still queued now (a socket full for the whole
  // wait) would outlive the caller's buffer. The reply's arrival proves the request left.
  if (o != Outcome::Done && connection_->engine().open() && !connection_->engine().output_empty()) {
    connection_->stop();
  }
  switch (o) {
    case Outcome::Done:
      return result_;
    case Outcome::Failed:
      return fail(error_);
    case Outcome::Closed:
      return fail(Errc::NotConnected);
    case Outcome::Pending:
      break;
  }
  return fail(Errc::Timeout);
}

edgekit::Result<void, Errc> LoopChannel::poll(Duration timeout) noexcept {
  if (const Errc e = begin(Waiting::Poll); e != Errc::Ok) return fail(e);
  if (!connection_->engine().connected()) {
    end();
    return fail(Errc::NotConnected);
  }
  const Outcome o = wait_until(deadline_after(now(), timeout));
  end();
  if (o == Outcome::Closed) return fail(Errc::NotConnected);
  return {};
}

}  // namespace edgekit::sim
