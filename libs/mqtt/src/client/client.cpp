// The blocking client: a thin wait loop over the sans-I/O `Connection`. The connection rules
// (CONNACK first, acks, resends, keep-alive, fatal errors) live in the connection; this file
// waits on the transport, moves bytes and time in and out, and turns events into the results of
// the blocking calls or handler calls.
#include <algorithm>

#include "client_internal.hpp"

namespace edgekit::mqtt {

Client::Client(transport::Transport& transport, const Clock& clock, Session& session,
               MutableBytes receive_buffer, MutableBytes send_buffer, EventHandler handler) noexcept
    : transport_(&transport),
      clock_(&clock),
      conn_(session, receive_buffer, send_buffer),
      handler_(handler) {}

Client::Client(const Clock& clock, Session& session, MutableBytes receive_buffer,
               MutableBytes send_buffer, EventHandler handler) noexcept
    : transport_(nullptr),
      clock_(&clock),
      conn_(session, receive_buffer, send_buffer),
      handler_(handler) {}

bool Client::connected_or_connecting() const noexcept {
  return conn_.state() == ConnectionState::Connecting ||
         conn_.state() == ConnectionState::Connected;
}

Result<void> Client::set_transport(transport::Transport& transport) noexcept {
  if (in_handler_) return fail(Errc::CalledFromHandler);
  if (connected_or_connecting()) return fail(Errc::AlreadyConnected);
  transport_ = &transport;
  return {};
}

Result<void> Client::check_usable(bool blocking) const noexcept {
  if (blocking && in_handler_) return fail(Errc::CalledFromHandler);
  if (!conn_.connected()) return fail(Errc::NotConnected);
  return {};
}

void Client::emit(const Event& event) noexcept {
  // The handler may make calls that report events themselves (e.g. disconnect → MessageLost):
  // those arrive nested, never dropped.
  const bool was = in_handler_;
  in_handler_ = true;
  handler_(*this, event);
  in_handler_ = was;
}

void Client::deliver(const Event& e) noexcept {
  Waiter* w = waiter_;
  // Ids are unique among pending publishes and requests, and never 0: an id match is the
  // blocking call in progress (publish_and_wait, subscribe, unsubscribe).
  const bool awaited = w != nullptr && w->packet_id != 0 && w->packet_id == e.packet_id;
  switch (e.type) {
    case EventType::Connected:
      if (w != nullptr && w->kind == Waiter::Kind::ConnAck) {
        w->connack = e.connack;
        w->done = true;
      }
      return;
    case EventType::ConnectFailed:  // the connect call returns it
      return;
    case EventType::PingResponse:
      if (w != nullptr && w->kind == Waiter::Kind::PingResp) w->done = true;
      return;
    case EventType::PublishCompleted:
      if (awaited) {
        w->reason = e.reason_code;
        w->done = true;
      }
      break;  // every publish completion is an event, awaited or not
    case EventType::SubscribeCompleted:
    case EventType::UnsubscribeCompleted:
      if (!awaited) break;
      // A blocking subscribe / unsubscribe returns its outcome itself; its loss is the call's
      // error (the connection's), not an event.
      if (e.error != Errc::Ok) return;
      // One reason code per filter, in order [MQTT-3.9.3-1] [MQTT-3.11.3-1]. Only a 3.1.1
      // UNSUBACK has none (the codec refuses other empty lists): `request` filled in Success.
      if (!e.reason_codes.empty() && e.reason_codes.size() != w->expected_codes) {
        conn_.close(Errc::ProtocolError, ReasonCode::ProtocolError, clock_->now());
        return;
      }
      std::copy(e.reason_codes.begin(), e.reason_codes.end(), w->reason_codes.begin());
      w->done = true;
      return;
    default:
      break;
  }
  emit(e);
}

Result<void> Client::pump(Instant deadline) noexcept {
  for (;;) {
    // connect() stops right after the CONNACK: what follows is handled by the next call, so
    // that the CONNACK it returns still points at intact bytes.
    if (waiter_ != nullptr && waiter_->kind == Waiter::Kind::ConnAck && waiter_->done) break;
    if (auto e = conn_.poll_event(clock_->now())) {
      deliver(*e);
      continue;
    }
    // Nothing more now, unless a packet waits for room in the send queue: write, go on.
    if (!connected_or_connecting() || conn_.output_empty() || !conn_.packet_pending()) break;
    EDGEKIT_TRY(flush_or_close(deadline));
  }
  if (!connected_or_connecting()) {
    // Ended by an error (reported now) or by the handler's disconnect (already finished).
    if (transport_open_ || conn_.notices_pending()) (void)finish();
    if (conn_.error() != Errc::Ok) return fail(conn_.error());
    return {};
  }
  // The acks owed for the whole batch go out together: one write, not one per packet.
  return flush_or_close(deadline);
}

Result<void> Client::run_until(Waiter& waiter, Instant deadline) noexcept {
  waiter_ = &waiter;
  Result<void> out{};
  while (!waiter.done) {
    if (!connected_or_connecting()) {
      out = fail(conn_.error() != Errc::Ok ? conn_.error() : Errc::NotConnected);
      break;
    }
    if (conn_.packet_pending() || conn_.notices_pending()) {
      if (auto r = pump(deadline); !r) {
        out = r;
        break;
      }
      continue;
    }
    auto got = read_once(deadline);
    if (!got) {
      out = fail(got.error());
      break;
    }
    if (*got) continue;
    if (clock_->now() >= deadline) {
      out = fail(Errc::Timeout);
      break;
    }
  }
  waiter_ = nullptr;
  return out;
}

template <class Queue>
Result<std::uint16_t> Client::queue_command(Queue queue, Instant deadline) noexcept {
  for (;;) {
    auto r = queue(clock_->now());
    // The send queue is full (acks of a batch still queued): write, then try again.
    if (r || r.error() != Errc::SendQueueFull) return r;
    EDGEKIT_TRY(flush_or_close(deadline));
  }
}

// --- Public operations ---------------------------------------------------------------------------

Result<ConnAck> Client::connect(const ConnectOptions& options, Duration timeout) noexcept {
  if (in_handler_) return fail(Errc::CalledFromHandler);
  if (connected_or_connecting()) return fail(Errc::AlreadyConnected);
  if (transport_ == nullptr) return fail(Errc::InvalidArgument);
  const Instant start = clock_->now();
  const Instant deadline = detail::deadline_after(start, timeout);
  // Errors here leave the transport as it was.
  EDGEKIT_TRY(conn_.connect(options, start, timeout));
  transport_open_ = true;
  EDGEKIT_TRY(flush_or_close(deadline));

  Waiter w;
  w.kind = Waiter::Kind::ConnAck;
  if (auto r = run_until(w, deadline); !r) {
    if (r.error() == Errc::Timeout) {
      conn_.close(Errc::Timeout, std::nullopt, clock_->now());
      return fail(finish());
    }
    return fail(r.error());
  }
  // session_present = 0: what the session held is gone on the server; tell the application.
  while (conn_.notices_pending()) {
    if (auto e = conn_.poll_event(clock_->now())) deliver(*e);
  }
  // session_present = 1: the resends the connection queued behind the CONNACK.
  EDGEKIT_TRY(flush_or_close(deadline));
  if (!conn_.connected()) return fail(conn_.error() != Errc::Ok ? conn_.error() : Errc::NotConnected);
  return *w.connack;
}

Result<std::uint16_t> Client::publish(const Publish& message, Duration timeout) noexcept {
  EDGEKIT_TRY(check_usable(false));
  const Instant deadline = detail::deadline_after(clock_->now(), timeout);
  std::uint64_t mark = 0;
  const auto id = queue_command(
      [&](Instant now) {
        mark = conn_.queued_total();
        return conn_.publish(message, now);
      },
      deadline);
  if (!id) return fail(id.error());
  if (auto r = flush(deadline); !r) {
    if (r.error() != Errc::Timeout) return fail(r.error());
    // A QoS 0 publish of which nothing was written is simply not sent. A recorded publish, or
    // one that may have set up a topic alias, must reach the server or end the connection:
    // otherwise session and server would disagree.
    const bool must_send = message.qos != QoS::AtMostOnce ||
                           conn_.session().server_topic_alias_maximum() > 0;
    if (!must_send && conn_.unqueue_last(mark)) return fail(Errc::Timeout);
    conn_.close(Errc::Timeout, std::nullopt, clock_->now());
    return fail(finish());
  }
  return *id;
}

Result<ReasonCode> Client::publish_and_wait(const Publish& message, Duration timeout) noexcept {
  if (in_handler_) return fail(Errc::CalledFromHandler);
  const Instant deadline = detail::deadline_after(clock_->now(), timeout);
  const auto id = publish(message, timeout);
  if (!id) return fail(id.error());
  if (message.qos == QoS::AtMostOnce) return ReasonCode::Success;
  Waiter w;
  w.kind = Waiter::Kind::PublishDone;
  w.packet_id = *id;
  EDGEKIT_TRY(run_until(w, deadline));
  return w.reason;
}

Result<std::uint16_t> Client::subscribe_async(std::span<const Subscription> subscriptions,
                                              Duration timeout,
                                              const Properties& properties) noexcept {
  EDGEKIT_TRY(check_usable(false));
  const Instant deadline = detail::deadline_after(clock_->now(), timeout);
  const auto id = queue_command(
      [&](Instant now) { return conn_.subscribe(subscriptions, now, properties); }, deadline);
  if (!id) return fail(id.error());
  // Recorded: it must reach the server or end the connection (a timeout is fatal).
  EDGEKIT_TRY(flush_or_close(deadline));
  return *id;
}

Result<std::uint16_t> Client::unsubscribe_async(std::span<const std::string_view> filters,
                                                Duration timeout,
                                                const Properties& properties) noexcept {
  EDGEKIT_TRY(check_usable(false));
  const Instant deadline = detail::deadline_after(clock_->now(), timeout);
  const auto id = queue_command(
      [&](Instant now) { return conn_.unsubscribe(filters, now, properties); }, deadline);
  if (!id) return fail(id.error());
  EDGEKIT_TRY(flush_or_close(deadline));
  return *id;
}

// The blocking calls: send, then run the loop until the matching ack fills the reason codes.
Result<void> Client::await_request(Waiter& w, Result<std::uint16_t> id, Instant deadline) noexcept {
  if (!id) return fail(id.error());
  // A blocking call waits from here: should the send end the connection, the request's loss is
  // that call's error, not an event.
  w.packet_id = *id;
  waiter_ = &w;
  if (auto r = flush_or_close(deadline); !r) {
    waiter_ = nullptr;
    return r;
  }
  return run_until(w, deadline);
}

Result<void> Client::subscribe(std::span<const Subscription> subscriptions,
                               std::span<ReasonCode> reason_codes, Duration timeout,
                               const Properties& properties) noexcept {
  EDGEKIT_TRY(check_usable(true));
  if (subscriptions.empty() || reason_codes.size() < subscriptions.size()) {
    return fail(Errc::InvalidArgument);
  }
  const Instant deadline = detail::deadline_after(clock_->now(), timeout);
  Waiter w;
  w.kind = Waiter::Kind::SubAck;
  w.reason_codes = reason_codes;
  w.expected_codes = subscriptions.size();
  return await_request(
      w,
      queue_command(
          [&](Instant now) { return conn_.subscribe(subscriptions, now, properties); }, deadline),
      deadline);
}

Result<void> Client::unsubscribe(std::span<const std::string_view> filters,
                                 std::span<ReasonCode> reason_codes, Duration timeout,
                                 const Properties& properties) noexcept {
  EDGEKIT_TRY(check_usable(true));
  if (filters.empty() || reason_codes.size() < filters.size()) return fail(Errc::InvalidArgument);
  const Instant deadline = detail::deadline_after(clock_->now(), timeout);
  Waiter w;
  w.kind = Waiter::Kind::UnsubAck;
  w.reason_codes = reason_codes;
  w.expected_codes = filters.size();
  // A 3.1.1 UNSUBACK carries no reason codes: success for every filter (an MQTT 5 one
  // overwrites these).
  std::fill_n(reason_codes.begin(), filters.size(), ReasonCode::Success);
  return await_request(
      w,
      queue_command([&](Instant now) { return conn_.unsubscribe(filters, now, properties); },
                    deadline),
      deadline);
}

Result<void> Client::ping(Duration timeout) noexcept {
  EDGEKIT_TRY(check_usable(true));
  const Instant deadline = detail::deadline_after(clock_->now(), timeout);
  const auto queued = queue_command(
      [&](Instant now) -> Result<std::uint16_t> {
        EDGEKIT_TRY(conn_.ping(now));
        return std::uint16_t{0};
      },
      deadline);
  if (!queued) return fail(queued.error());
  EDGEKIT_TRY(flush_or_close(deadline));
  Waiter w;
  w.kind = Waiter::Kind::PingResp;
  auto r = run_until(w, deadline);
  if (!r && r.error() == Errc::Timeout) {
    // No PINGRESP in time: the link is dead, as after a keep-alive timeout.
    conn_.close(Errc::KeepAliveTimeout, std::nullopt, clock_->now());
    return fail(finish());
  }
  return r;
}

Result<void> Client::disconnect(ReasonCode reason, const Properties& properties,
                                Duration timeout) noexcept {
  if (!conn_.connected()) return fail(Errc::NotConnected);
  const Instant deadline = detail::deadline_after(clock_->now(), timeout);
  const auto queued = queue_command(
      [&](Instant now) -> Result<std::uint16_t> {
        EDGEKIT_TRY(conn_.disconnect(reason, properties, now));
        return std::uint16_t{0};
      },
      deadline);
  if (!queued) return fail(queued.error());
  auto r = flush(deadline);
  // The transport is closed and the losses reported (nested, when called from the handler).
  (void)finish();
  return r;
}

Result<void> Client::process_loop(Duration timeout) noexcept {
  EDGEKIT_TRY(check_usable(true));
  const Instant deadline = detail::deadline_after(clock_->now(), timeout);
  for (;;) {
    // Packets left behind by connect() (they came with the CONNACK) need no read.
    if (conn_.packet_pending() || conn_.notices_pending()) {
      const auto before = conn_.packets_received();
      EDGEKIT_TRY(pump(deadline));
      if (conn_.packets_received() != before) return {};
    }
    if (!conn_.connected()) {
      return fail(conn_.error() != Errc::Ok ? conn_.error() : Errc::NotConnected);
    }
    const auto got = read_once(deadline);
    if (!got) return fail(got.error());
    if (*got) {
      const auto before = conn_.packets_received();
      EDGEKIT_TRY(pump(deadline));
      if (conn_.packets_received() != before) return {};
      // Only part of a packet so far: keep reading until the deadline.
    }
    if (!conn_.connected()) {
      return fail(conn_.error() != Errc::Ok ? conn_.error() : Errc::NotConnected);
    }
    if (clock_->now() >= deadline) return {};
  }
}

}  // namespace edgekit::mqtt
