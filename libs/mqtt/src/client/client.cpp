// The blocking client: a thin wait loop over the sans-I/O `Connection`. The connection rules
// (CONNACK first, acks, resends, keep-alive, fatal errors) live in the connection; this file
// queues commands, waits on the transport until the event a call waits for has come out of the
// connection (one loop, `run_until`, for every call), and hands every other event to the
// application's handler.
#include <algorithm>

#include "client_internal.hpp"

namespace edgekit::mqtt {

/// A command for the connection (see `queue_command`): which call, and its arguments.
struct Client::Command {
  enum class Op : std::uint8_t { Publish, Subscribe, Unsubscribe, Ping, Disconnect };
  Op op = Op::Publish;
  const Publish* message = nullptr;
  std::span<const Subscription> subscriptions{};
  std::span<const std::string_view> filters{};
  const Properties* properties = nullptr;
  ReasonCode reason = ReasonCode::Success;
  std::uint16_t id = 0;     // out: the packet id the connection assigned
  std::uint64_t mark = 0;   // out: queued_total() right before the command was queued

  // The commands of subscribe / unsubscribe (and their _async forms).
  static Command subscribe(std::span<const Subscription> list, const Properties& p) noexcept {
    Command c;
    c.op = Op::Subscribe;
    c.subscriptions = list;
    c.properties = &p;
    return c;
  }
  static Command unsubscribe(std::span<const std::string_view> list,
                             const Properties& p) noexcept {
    Command c;
    c.op = Op::Unsubscribe;
    c.filters = list;
    c.properties = &p;
    return c;
  }
};

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

Result<void> Client::set_transport(transport::Transport& transport) noexcept {
  if (in_handler_) return fail(Errc::CalledFromHandler);
  if (conn_.open()) return fail(Errc::AlreadyConnected);
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
  Waiter* const w = waiter_;
  if (w != nullptr && w->type == e.type && w->packet_id == e.packet_id) {
    if (e.type == EventType::SubscribeCompleted || e.type == EventType::UnsubscribeCompleted) {
      // A blocking subscribe / unsubscribe returns its outcome itself; its loss is the call's
      // error (the connection's), not an event.
      if (e.error != Errc::Ok) return;
      // One reason code per filter, in order [MQTT-3.9.3-1] [MQTT-3.11.3-1]. Only a 3.1.1
      // UNSUBACK has none (the codec refuses other empty lists): `request` filled in Success.
      if (!e.reason_codes.empty() && e.reason_codes.size() != w->reason_codes.size()) {
        conn_.close(Errc::ProtocolError, ReasonCode::ProtocolError, clock_->now());
        return;
      }
      std::copy(e.reason_codes.begin(), e.reason_codes.end(), w->reason_codes.begin());
    }
    w->connack = e.connack;
    w->reason = e.reason_code;
    w->done = true;
    // Every publish completion is an event, awaited or not.
    if (e.type != EventType::PublishCompleted) return;
  }
  // Connected, ConnectFailed and PingResponse belong to the blocking calls (connect and ping
  // return them), never to the handler.
  if (e.type >= EventType::Connected) return;
  emit(e);
}

Instant Client::deadline_in(Duration timeout) const noexcept {
  return deadline_after(clock_->now(), timeout);
}

void Client::report_notices() noexcept {
  // Notices only: a packet behind the CONNACK stays unhandled (connect returns views into the
  // CONNACK), and this path stays off the packet handler's stack.
  while (auto e = conn_.poll_notice()) deliver(*e);
}

// The one wait loop: polls every event (a batch's acks, queued by the polls, leave together in
// one write), ends when the awaited event came (or, for process_loop, a packet was handled), and
// otherwise runs the timers and waits for the transport until `deadline` (then Timeout, with
// the connection left as it is).
Result<void> Client::run_until(Waiter& w, Instant deadline) noexcept {
  waiter_ = &w;
  Result<void> out{};
  bool expired = false;  // the deadline passed: one more round for what is due, then Timeout
  for (;;) {
    // The clock is read three times a round: before the polls, after the writes (which may
    // have waited) and after the wait for input.
    Instant now = clock_->now();
    // connect returns the CONNACK: what follows it stays in the buffer for the next call, so
    // that the CONNACK's views stay intact.
    const bool hold = w.done && w.type == EventType::Connected;
    if (!hold) {
      if (auto e = conn_.poll_event(now)) {
        deliver(*e);
        continue;
      }
    }
    if (w.type == Waiter::kAnyPacket && conn_.packets_received() != w.packets) w.done = true;
    if (!conn_.open()) {
      // Ended by an error (reported now) or by the handler's disconnect (finished already).
      const Errc error = finish();
      if (conn_.error() != Errc::Ok || !w.done) out = fail(error);
      break;
    }
    // A complete packet the polls left waits for room for its ack: write, then poll again.
    const bool waiting = !hold && !conn_.output_empty() && conn_.packet_pending();
    if (auto r = flush_or_close(deadline); !r) {
      out = r;
      break;
    }
    if (waiting) continue;
    if (w.done) break;
    // Keep-alive work: a PINGREQ due (written next round), or a PINGRESP overdue (a close).
    now = clock_->now();
    conn_.on_timer(now);
    if (!conn_.open() || !conn_.output_empty()) continue;
    if (expired) {
      // process_loop: nothing to read until the deadline is success. connect and ping: the
      // missing reply ends the connection (reported by the next round). Otherwise Timeout.
      if (w.type == Waiter::kAnyPacket) break;
      if (w.timeout_error == Errc::Ok) {
        out = fail(Errc::Timeout);
        break;
      }
      conn_.close(w.timeout_error, std::nullopt, now);
      continue;
    }
    const Instant wake = std::min(deadline, conn_.next_deadline().value_or(deadline));
    const auto ready =
        transport_->wait(transport::Interest::Read, detail::milliseconds_until(now, wake));
    Errc lost = Errc::Ok;
    std::size_t got = 0;
    if (ready == transport::WaitStatus::Error) {
      lost = Errc::TransportError;
    } else if (ready == transport::WaitStatus::Ready) {
      ++recv_calls_;
      const auto r = transport_->recv(conn_.read_buffer());
      if (r.status == transport::IoStatus::Ok) {
        got = r.bytes;
      } else if (r.status != transport::IoStatus::WouldBlock) {
        // (WouldBlock: the readiness was stale, or a TLS record is incomplete.)
        lost = r.status == transport::IoStatus::Closed ? Errc::TransportClosed
                                                       : Errc::TransportError;
      }
    }
    now = clock_->now();
    if (lost != Errc::Ok) {
      conn_.on_transport_closed(lost, now);
      continue;
    }
    conn_.on_read(got, now);
    if (got > 0 && conn_.packet_pending()) continue;
    expired = now >= deadline;
  }
  waiter_ = nullptr;
  return out;
}

Result<void> Client::queue_command(Command& c, Instant deadline) noexcept {
  for (;;) {
    const Instant now = clock_->now();
    c.mark = conn_.queued_total();
    Result<std::uint16_t> r = std::uint16_t{0};
    Result<void> v{};
    switch (c.op) {
      case Command::Op::Publish:
        r = conn_.publish(*c.message, now);
        break;
      case Command::Op::Subscribe:
      case Command::Op::Unsubscribe:
        r = conn_.request(c.subscriptions, c.filters, now, *c.properties);
        break;
      case Command::Op::Ping:
        v = conn_.ping(now);
        break;
      case Command::Op::Disconnect:
        v = conn_.disconnect(c.reason, *c.properties, now);
        break;
    }
    if (!v) r = fail(v.error());
    if (r) {
      c.id = *r;
      return {};
    }
    // The send queue is full (acks of a batch still queued): write, then try again.
    if (r.error() != Errc::SendQueueFull) return fail(r.error());
    EDGEKIT_TRY(flush_or_close(deadline));
  }
}

// --- Public operations ---------------------------------------------------------------------------

Result<ConnAck> Client::connect(const ConnectOptions& options, Duration timeout) noexcept {
  if (in_handler_) return fail(Errc::CalledFromHandler);
  if (conn_.open()) return fail(Errc::AlreadyConnected);
  if (transport_ == nullptr) return fail(Errc::InvalidArgument);
  const Instant start = clock_->now();
  const Instant deadline = deadline_after(start, timeout);
  // Errors here leave the transport as it was.
  EDGEKIT_TRY(conn_.connect(options, start, timeout));
  transport_open_ = true;
  Waiter w;
  w.type = EventType::Connected;
  w.timeout_error = Errc::Timeout;  // no CONNACK in time ends the attempt
  EDGEKIT_TRY(run_until(w, deadline));
  // session_present = 0: what the session held is gone on the server; tell the application.
  report_notices();
  // session_present = 1: the resends the connection queued behind the CONNACK.
  EDGEKIT_TRY(flush_or_close(deadline));
  EDGEKIT_TRY(check_usable(false));
  return *w.connack;
}

// publish()'s queued path. A size build keeps it inside publish() (one function, as before the
// split); a speed build keeps it out of line, so that the direct QoS 0 write, which runs for
// nearly every message of a device publisher, saves and restores fewer registers and sets up no
// frame for the queued path's locals.
#if defined(__OPTIMIZE_SIZE__)
#define EDGEKIT_MQTT_QUEUED_PATH [[gnu::always_inline]] inline
#else
#define EDGEKIT_MQTT_QUEUED_PATH [[gnu::noinline]]
#endif

EDGEKIT_MQTT_QUEUED_PATH Result<std::uint16_t> Client::publish_queued(const Publish& message,
                                                                      Duration timeout,
                                                                      std::uint64_t mark,
                                                                      bool queued) noexcept {
  std::uint16_t id = 0;
  // One clock read for the rest: the same instant queues the message and counts it written
  // (it only restarts the keep-alive interval, and flush reads the clock again after a wait).
  const Instant now = clock_->now();
  const Instant deadline = deadline_after(now, timeout);
  // The usual case: the queue has room. Only a full queue takes the write-and-retry path.
  if (queued) {
    // Queued already: the rest of a direct write.
  } else if (auto r = conn_.publish(message, now)) {
    id = *r;
  } else {
    if (r.error() != Errc::SendQueueFull) return fail(r.error());
    Command c;
    c.message = &message;
    EDGEKIT_TRY(queue_command(c, deadline));
    id = c.id;
    mark = c.mark;
  }
  if (auto r = flush(deadline, now); !r) {
    if (r.error() != Errc::Timeout) return fail(r.error());
    // A QoS 0 publish of which nothing was written is simply not sent. A recorded publish, or
    // one that may have set up a topic alias, must reach the server or end the connection:
    // otherwise session and server would disagree.
    const bool must_send = message.qos != QoS::AtMostOnce ||
                           conn_.session().server_topic_alias_maximum() > 0;
    if (!must_send && conn_.unqueue_last(mark)) return fail(Errc::Timeout);
    return fail(end(Errc::Timeout));
  }
  return id;
}
#undef EDGEKIT_MQTT_QUEUED_PATH

Result<std::uint16_t> Client::publish(const Publish& message, Duration timeout) noexcept {
  if (!conn_.connected()) return fail(Errc::NotConnected);
  const std::uint64_t mark = conn_.queued_total();
#if !defined(__OPTIMIZE_SIZE__)
  // A device publisher's usual case, QoS 0 with nothing queued: the packet leaves in one write
  // straight after encoding, past the send queue (no slot filled, walked and cleared); a small
  // payload is copied behind the header, so that this is one plain send. What a short write
  // leaves is queued and flushed by publish_queued. Speed builds only: a build optimised for
  // size keeps the one write path through the queue (the same bytes, the same errors, less code).
  if (message.qos == QoS::AtMostOnce && conn_.output_empty()) {
    const auto packet = conn_.direct_publish(message);
    if (!packet) return fail(packet.error());
    if (!packet->head.empty()) {
      transport::IoResult r;
      if (packet->payload.empty()) {
        r = transport_->send(packet->head);
      } else {
        const transport::ConstBuffer parts[2] = {packet->head, packet->payload};
        r = transport_->writev(parts);
      }
      if (r.status != transport::IoStatus::Ok && r.status != transport::IoStatus::WouldBlock) {
        return fail(lost(r.status));
      }
      // The time only restarts the keep-alive interval here, for which the cheap reading
      // will do: it is at most a tick early, which brings the next PINGREQ that much forward
      // (Clock::now_coarse). A precise read was ~5 % of this whole path's CPU.
      conn_.on_direct_written(*packet, r.bytes, clock_->now_coarse());
      if (conn_.output_empty()) return std::uint16_t{0};
      return publish_queued(message, timeout, mark, true);
    }
  }
#endif
  return publish_queued(message, timeout, mark, false);
}

Result<ReasonCode> Client::publish_and_wait(const Publish& message, Duration timeout) noexcept {
  if (in_handler_) return fail(Errc::CalledFromHandler);
  const Instant deadline = deadline_in(timeout);
  const auto id = publish(message, timeout);
  if (!id) return fail(id.error());
  if (message.qos == QoS::AtMostOnce) return ReasonCode::Success;
  Waiter w;
  w.type = EventType::PublishCompleted;
  w.packet_id = *id;
  EDGEKIT_TRY(run_until(w, deadline));
  return w.reason;
}

// SUBSCRIBE or UNSUBSCRIBE as `c` says (the callers fill in the command: fewer arguments to
// pass through the stack), blocking when `codes` is given (then the ack's codes go there), else
// returning once the packet is written.
Result<void> Client::request(Command& c, std::span<ReasonCode>* codes, Duration timeout,
                             std::uint16_t& id) noexcept {
  EDGEKIT_TRY(check_usable(codes != nullptr));
  Waiter w;
  w.type = c.op == Command::Op::Subscribe ? EventType::SubscribeCompleted
                                          : EventType::UnsubscribeCompleted;
  if (codes != nullptr) {
    const std::size_t count = c.subscriptions.size() + c.filters.size();  // one is empty
    if (count == 0 || codes->size() < count) return fail(Errc::InvalidArgument);
    w.reason_codes = codes->first(count);
    // A 3.1.1 UNSUBACK carries no reason codes: success for every filter (an ack with codes
    // overwrites these).
    std::fill(w.reason_codes.begin(), w.reason_codes.end(), ReasonCode::Success);
  }
  const Instant deadline = deadline_in(timeout);
  EDGEKIT_TRY(queue_command(c, deadline));
  id = w.packet_id = c.id;
  // A blocking call waits from here: should the send end the connection, the request's loss is
  // that call's error, not an event. Recorded: the packet must reach the server or end the
  // connection (a timeout is fatal).
  if (codes != nullptr) waiter_ = &w;
  auto r = flush_or_close(deadline);
  if (r && codes != nullptr) r = run_until(w, deadline);
  waiter_ = nullptr;
  return r;
}

Result<void> Client::subscribe(std::span<const Subscription> subscriptions,
                               std::span<ReasonCode> reason_codes, Duration timeout,
                               const Properties& properties) noexcept {
  Command c = Command::subscribe(subscriptions, properties);
  std::uint16_t id = 0;
  return request(c, &reason_codes, timeout, id);
}

Result<void> Client::unsubscribe(std::span<const std::string_view> filters,
                                 std::span<ReasonCode> reason_codes, Duration timeout,
                                 const Properties& properties) noexcept {
  Command c = Command::unsubscribe(filters, properties);
  std::uint16_t id = 0;
  return request(c, &reason_codes, timeout, id);
}

Result<std::uint16_t> Client::subscribe_async(std::span<const Subscription> subscriptions,
                                              Duration timeout,
                                              const Properties& properties) noexcept {
  Command c = Command::subscribe(subscriptions, properties);
  std::uint16_t id = 0;
  EDGEKIT_TRY(request(c, nullptr, timeout, id));
  return id;
}

Result<std::uint16_t> Client::unsubscribe_async(std::span<const std::string_view> filters,
                                                Duration timeout,
                                                const Properties& properties) noexcept {
  Command c = Command::unsubscribe(filters, properties);
  std::uint16_t id = 0;
  EDGEKIT_TRY(request(c, nullptr, timeout, id));
  return id;
}

Result<void> Client::ping(Duration timeout) noexcept {
  EDGEKIT_TRY(check_usable(true));
  const Instant deadline = deadline_in(timeout);
  Command c;
  c.op = Command::Op::Ping;
  EDGEKIT_TRY(queue_command(c, deadline));
  EDGEKIT_TRY(flush_or_close(deadline));
  Waiter w;
  w.type = EventType::PingResponse;
  // No PINGRESP in time: the link is dead, as after a keep-alive timeout.
  w.timeout_error = Errc::KeepAliveTimeout;
  return run_until(w, deadline);
}

Result<void> Client::disconnect(ReasonCode reason, const Properties& properties,
                                Duration timeout) noexcept {
  EDGEKIT_TRY(check_usable(false));
  const Instant deadline = deadline_in(timeout);
  Command c;
  c.op = Command::Op::Disconnect;
  c.properties = &properties;
  c.reason = reason;
  EDGEKIT_TRY(queue_command(c, deadline));
  auto r = flush(deadline, clock_->now());
  // The transport is closed and the losses reported (nested, when called from the handler).
  (void)finish();
  return r;
}

Result<void> Client::process_loop(Duration timeout) noexcept {
  EDGEKIT_TRY(check_usable(true));
  Waiter w;
  w.packets = conn_.packets_received();
  // Nothing to read until the deadline is success (run_until); a fatal Timeout (a write that
  // could not finish) has closed the connection.
  return run_until(w, deadline_in(timeout));
}

}  // namespace edgekit::mqtt
