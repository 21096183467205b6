// The blocking client: the public operations, packet handling and the fatal-error path. The
// protocol state lives in the Session; this file only moves packets between it, the transport
// and the application.
#include <algorithm>
#include <type_traits>

#include "client_internal.hpp"

namespace edgekit::mqtt {

namespace {

constexpr Instant kNever{Duration::max()};

const Properties* ack_properties(const Packet& p) noexcept {
  if (const auto* a = std::get_if<PubAck>(&p)) return &a->properties;
  if (const auto* a = std::get_if<PubRec>(&p)) return &a->properties;
  if (const auto* a = std::get_if<PubComp>(&p)) return &a->properties;
  return nullptr;
}

}  // namespace

std::optional<ReasonCode> detail::disconnect_reason_for(Errc error) noexcept {
  // A table scanned in order rather than a switch (code size).
  struct Row {
    Errc error;
    ReasonCode reason;
  };
  static constexpr Row kRows[] = {
      {Errc::PacketTooLarge, ReasonCode::PacketTooLarge},
      {Errc::IncomingPacketTooLarge, ReasonCode::PacketTooLarge},
      {Errc::TopicAliasInvalid, ReasonCode::TopicAliasInvalid},
      {Errc::ReceiveMaximumExceeded, ReasonCode::ReceiveMaximumExceeded},
      {Errc::ProtocolError, ReasonCode::ProtocolError},
      {Errc::UnknownPacketId, ReasonCode::ProtocolError},
      {Errc::ProtocolVersionDisabled, ReasonCode::ProtocolError},
      {Errc::QoS2Disabled, ReasonCode::ProtocolError},
      {Errc::SessionStateFull, ReasonCode::ProtocolError},
      {Errc::NotConnected, ReasonCode::ProtocolError},
      {Errc::PersistenceFailed, ReasonCode::ImplementationSpecificError},
  };
  for (const Row& row : kRows) {
    if (row.error == error) return row.reason;
  }
  // The first group of Errc is the codec's "malformed input" (MQTT 5 spec 4.13).
  if (static_cast<std::uint8_t>(error) > 0 && static_cast<std::uint8_t>(error) < 40) {
    return ReasonCode::MalformedPacket;
  }
  return std::nullopt;
}

Client::Client(transport::Transport& transport, const Clock& clock, Session& session,
               MutableBytes receive_buffer, MutableBytes send_buffer, EventHandler handler) noexcept
    : transport_(&transport),
      clock_(clock),
      session_(session),
      rx_(receive_buffer),
      tx_(send_buffer),
      handler_(handler) {}

Result<void> Client::set_transport(transport::Transport& transport) noexcept {
  if (in_handler_) return fail(Errc::CalledFromHandler);
  if (connected_or_connecting()) return fail(Errc::AlreadyConnected);
  transport_ = &transport;
  return {};
}

Result<void> Client::check_usable(bool blocking) const noexcept {
  if (blocking && in_handler_) return fail(Errc::CalledFromHandler);
  if (!connected_) return fail(Errc::NotConnected);
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

void Client::report_lost() noexcept {
  while (auto lost = session_.next_lost()) {
    Event e;
    e.packet_id = lost->packet_id;
    if (lost->kind == OperationKind::Publish) {
      e.type = EventType::MessageLost;
      e.message = &lost->publish;
      e.pubrec_received = lost->pubrec_received;
    } else {
      // A pending SUBSCRIBE / UNSUBSCRIBE (never resent): its asker hears the connection's
      // error, unless it is the blocking call in progress, which returns that error itself.
      if (waiter_ != nullptr && waiter_->packet_id == lost->packet_id) continue;
      e.type = static_cast<EventType>(static_cast<int>(EventType::SubscribeCompleted) +
                                      static_cast<int>(lost->kind) -
                                      static_cast<int>(OperationKind::Subscribe));
      e.error = Errc::NotConnected;
    }
    emit(e);
  }
}

Errc Client::fail_connection(Errc error, std::optional<ReasonCode> disconnect_reason) noexcept {
  if (!connected_or_connecting()) return fatal_ != Errc::Ok ? fatal_ : error;
  const bool was_connected = connected_;
  // Marked closed first: a failure of the best-effort DISCONNECT comes back here and stops at
  // the check above.
  connected_ = false;
  connecting_ = false;
  fatal_ = error;
  if (disconnect_reason && switches::is_v5(version_)) best_effort_disconnect(*disconnect_reason);
  transport_->close();
  tx_acks_ = 0;
  session_.on_connection_lost(clock_.now());
  if (was_connected && error != Errc::ServerDisconnected) {
    Event e;
    e.type = EventType::ConnectionClosed;
    e.error = error;
    emit(e);
  }
  report_lost();
  return error;
}

Instant Client::keep_alive_deadline() const noexcept {
  return session_.next_deadline().value_or(kNever);
}

Result<void> Client::keep_alive(Instant now, Instant deadline) noexcept {
  if (!connected_) return {};
  // on_timer does nothing before the session's next deadline.
  const auto action = session_.on_timer(now);
  // No PINGRESP in time: the link is dead; close it (spec 3.1.2.10).
  if (!action) return fail(fail_connection(action.error(), std::nullopt));
  if (*action == TimerAction::SendPingReq) return send_packet(PingReq{}, deadline, true);
  return {};
}

// --- Incoming packets ----------------------------------------------------------------------------

Result<void> Client::handle_packet(Bytes frame, Instant deadline) noexcept {
  // Starts as the empty alternative: decode_from_server constructs the one it decodes.
  Packet packet{std::in_place_type<PingResp>};
  if (auto decoded = decode_from_server(frame, version_, packet); !decoded) {
    return fail(fail_connection(decoded.error(), detail::disconnect_reason_for(decoded.error())));
  }
  const PacketType type = type_of(packet);
  const Instant now = clock_.now();

  // The first packet from the server must be CONNACK [MQTT-3.2.0-1].
  if (connecting_ && type != PacketType::ConnAck) {
    return fail(fail_connection(Errc::ProtocolError, ReasonCode::ProtocolError));
  }

  auto in = session_.on_packet(packet, now);
  if (!in) {
    if (type == PacketType::ConnAck && in.error() == Errc::ConnectionRefused) {
      // The server closes the connection after a refusal (spec 3.2.2.2); nothing to send.
      server_reason_ = std::get_if<ConnAck>(&packet)->reason_code;
      return fail(fail_connection(Errc::ConnectionRefused, std::nullopt));
    }
    return fail(fail_connection(in.error(), detail::disconnect_reason_for(in.error())));
  }

  if (in->connack) {
    connecting_ = false;
    connected_ = true;
    if (waiter_ != nullptr && waiter_->kind == Waiter::Kind::ConnAck) {
      waiter_->connack = *std::get_if<ConnAck>(&packet);
      waiter_->outcome = *in->connack;
      waiter_->done = true;
    }
    return {};
  }

  if (in->deliver) {
    Event e;
    e.type = EventType::MessageReceived;
    e.message = std::get_if<Publish>(&packet);
    if (e.message != nullptr) e.packet_id = e.message->packet_id;
    emit(e);
    // The handler disconnected (fine: nothing more to do) or made a call that failed fatally.
    if (!connected_) return fatal_ != Errc::Ok ? Result<void>(fail(fatal_)) : Result<void>{};
  }

  // Acks are queued and leave together at the end of the batch (after the handler has seen the
  // message, so a QoS 1/2 message is acknowledged only once the application has it).
  if (in->reply && connected_) EDGEKIT_TRY(queue_packet(*in->reply, deadline));

  if (in->completion) {
    const Completion& c = *in->completion;
    Waiter* w = waiter_;
    // Ids are unique among pending publishes and requests, and never 0: an id match is the
    // blocking call in progress (publish_and_wait, subscribe, unsubscribe).
    const bool awaited = w != nullptr && w->packet_id == c.packet_id;
    Event e;
    e.type = EventType::PublishCompleted;
    e.packet_id = c.packet_id;
    e.reason_code = c.reason_code;
    e.properties = ack_properties(packet);
    if (c.kind == OperationKind::Publish) {
      if (awaited) w->reason = c.reason_code;
    } else {
      // SUBACK or UNSUBACK whose id the session matched to a pending request.
      static_assert(static_cast<int>(EventType::UnsubscribeCompleted) -
                        static_cast<int>(EventType::SubscribeCompleted) ==
                    static_cast<int>(OperationKind::Unsubscribe) -
                        static_cast<int>(OperationKind::Subscribe));
      e.type = static_cast<EventType>(static_cast<int>(EventType::SubscribeCompleted) +
                                      static_cast<int>(c.kind) -
                                      static_cast<int>(OperationKind::Subscribe));
      const auto* sub = std::get_if<SubAck>(&packet);
      const auto* unsub = std::get_if<UnsubAck>(&packet);
      e.reason_codes = sub != nullptr ? sub->reason_codes : unsub->reason_codes;
      e.properties = sub != nullptr ? &sub->properties : &unsub->properties;
      if (awaited) {
        // One reason code per filter, in order [MQTT-3.9.3-1] [MQTT-3.11.3-1]. Only a 3.1.1
        // UNSUBACK has none (the codec refuses other empty lists): `request` filled in Success.
        if (!e.reason_codes.empty() && e.reason_codes.size() != w->expected_codes) {
          return fail(fail_connection(Errc::ProtocolError, ReasonCode::ProtocolError));
        }
        std::copy(e.reason_codes.begin(), e.reason_codes.end(), w->reason_codes.begin());
      }
    }
    if (awaited) w->done = true;
    // A blocking subscribe / unsubscribe returns its outcome itself; every publish completion is
    // an event, awaited or not.
    if (!awaited || c.kind == OperationKind::Publish) emit(e);
    // A completion frees Receive Maximum quota: resends held back by it go now, before any
    // new publish (the session refuses those while resends wait).
    if (connected_ && session_.pending_resends() > 0) EDGEKIT_TRY(send_resends(deadline));
  } else if (type == PacketType::PingResp) {
    if (waiter_ != nullptr && waiter_->kind == Waiter::Kind::PingResp) waiter_->done = true;
  }

  if (in->server_disconnect) {
    server_reason_ = *in->server_disconnect;
    Event e;
    e.type = EventType::ServerDisconnected;
    e.reason_code = *in->server_disconnect;
    e.error = Errc::ServerDisconnected;
    if (const auto* d = std::get_if<Disconnect>(&packet)) e.properties = &d->properties;
    emit(e);
    return fail(fail_connection(Errc::ServerDisconnected, std::nullopt));
  }
  return {};
}

Result<void> Client::run_until(Waiter& waiter, Instant deadline) noexcept {
  waiter_ = &waiter;
  Result<void> out{};
  while (!waiter.done) {
    if (!connected_or_connecting()) {
      out = fail(fatal_ != Errc::Ok ? fatal_ : Errc::NotConnected);
      break;
    }
    if (frame_pending()) {
      if (auto n = dispatch_frames(deadline); !n) {
        out = fail(n.error());
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
    if (clock_.now() >= deadline) {
      out = fail(Errc::Timeout);
      break;
    }
  }
  waiter_ = nullptr;
  return out;
}

// --- Public operations ---------------------------------------------------------------------------

Result<ConnAck> Client::connect(const ConnectOptions& options, Duration timeout) noexcept {
  if (in_handler_) return fail(Errc::CalledFromHandler);
  if (connected_or_connecting()) return fail(Errc::AlreadyConnected);
  const Instant start = clock_.now();
  const Instant deadline = detail::deadline_after(start, timeout);

  // Member-wise copy-construction (the two structs have the same members): cheaper than
  // assigning each field to a default-constructed Connect.
  Connect c{options.version,  options.client_id, options.clean_start, options.keep_alive_seconds,
            options.username, options.password,  options.will,        options.properties};
  if (switches::is_v5(c.version)) {
    // Tell the server the largest packet we can take, so a conforming one never sends a bigger
    // one [MQTT-3.1.2-24].
    const auto cap =
        static_cast<std::uint32_t>(std::min<std::size_t>(rx_.size(), std::size_t{kMaxPacketSize}));
    if (!c.properties.maximum_packet_size || *c.properties.maximum_packet_size > cap) {
      c.properties.maximum_packet_size = cap;
    }
  }
  EDGEKIT_TRY(session_.prepare_connect(c, start));
  version_ = c.version;
  const auto n = encode(c, version_, tx_);
  if (!n) {
    session_.on_connection_lost(start);
    return fail(n.error());
  }

  rx_pos_ = 0;
  rx_len_ = 0;
  tx_acks_ = 0;
  fatal_ = Errc::Ok;
  server_reason_ = ReasonCode::Success;
  keep_alive_s_ = c.keep_alive;
  connecting_ = true;
  EDGEKIT_TRY(send_tx(0, *n, deadline, true));

  Waiter w;
  w.kind = Waiter::Kind::ConnAck;
  if (auto r = run_until(w, deadline); !r) {
    if (r.error() == Errc::Timeout) return fail(fail_connection(Errc::Timeout, std::nullopt));
    return fail(r.error());
  }
  keep_alive_s_ = session_.keep_alive();

  // session_present = 0: what the session held is gone on the server; tell the application.
  report_lost();
  // session_present = 1: resend in the original order, PUBLISH with DUP and PUBREL [MQTT-4.4.0-1],
  // as many PUBLISH as the server's Receive Maximum lets through; the rest follow as
  // acknowledgements arrive (handle_packet).
  EDGEKIT_TRY(send_resends(deadline));
  if (!connected_) return fail(fatal_ != Errc::Ok ? fatal_ : Errc::NotConnected);
  return w.connack;
}

Result<void> Client::send_resends(Instant deadline) noexcept {
  while (connected_) {
    auto resend = session_.next_resend();
    if (!resend) return {};
    if (resend->type == PacketType::Publish) {
      EDGEKIT_TRY(send_publish(resend->publish, deadline, true));
    } else {
      // As a Reply: the acks' encoder is linked anyway, the PubRel one need not be.
      EDGEKIT_TRY(send_packet(
          Reply{PacketType::PubRel, resend->pubrel.packet_id, resend->pubrel.reason_code},
          deadline, true));
    }
  }
  return fail(fatal_ != Errc::Ok ? fatal_ : Errc::NotConnected);
}

Result<std::uint16_t> Client::publish(const Publish& message, Duration timeout) noexcept {
  EDGEKIT_TRY(check_usable(false));
  const Instant now = clock_.now();
  const Instant deadline = detail::deadline_after(now, timeout);

  Publish p = message;
  p.packet_id = 0;
  p.dup = false;
  {
    // The header must fit the send buffer: find out before the session records anything. An
    // alias the session may add costs its property (3 bytes) and up to two length bytes. The
    // size does not depend on the id's value; a stand-in id is enough (the session assigns it).
    if (p.qos != QoS::AtMostOnce) p.packet_id = 1;
    const auto total = encoded_size(p, version_);
    p.packet_id = 0;
    if (!total) return fail(total.error());
    const std::size_t margin =
        (switches::is_v5(version_) && session_.server_topic_alias_maximum() > 0) ? 5 : 0;
    if (*total - p.payload.size() + margin > tx_.size()) return fail(Errc::BufferTooSmall);
  }
  EDGEKIT_TRY(session_.begin_publish(p, now));
  // A recorded publish, or one that set up a topic alias, must reach the server or end the
  // connection: otherwise session and server would disagree.
  const bool must_send = p.qos != QoS::AtMostOnce || p.properties.topic_alias.has_value();
  if (auto r = send_publish(p, deadline, must_send); !r) {
    if (must_send && connected_) return fail(fail_connection(r.error(), std::nullopt));
    return fail(r.error());
  }
  return p.packet_id;
}

Result<ReasonCode> Client::publish_and_wait(const Publish& message, Duration timeout) noexcept {
  if (in_handler_) return fail(Errc::CalledFromHandler);
  const Instant deadline = detail::deadline_after(clock_.now(), timeout);
  const auto id = publish(message, timeout);
  if (!id) return fail(id.error());
  if (message.qos == QoS::AtMostOnce) return ReasonCode::Success;
  Waiter w;
  w.kind = Waiter::Kind::PublishDone;
  w.packet_id = *id;
  EDGEKIT_TRY(run_until(w, deadline));
  return w.reason;
}

// SUBSCRIBE and UNSUBSCRIBE: refuse what the send buffer cannot hold before the session records
// anything, then send. With a `waiter` (the blocking calls) the loop then runs until the matching
// ack fills its reason codes; without one (the async calls) the id is returned and the ack is
// reported as an event. Always inlined: a device program that links only the blocking calls then
// carries no out-of-line copy shared with the async ones (code size).
template <class Request>
inline Result<void> Client::send_request(Request& packet, Instant deadline,
                                         Waiter* waiter) noexcept {
  {
    // The size does not depend on the id's value: a stand-in (the session assigns the id).
    packet.packet_id = 1;
    const auto size = encoded_size(packet, version_);
    packet.packet_id = 0;
    if (!size) return fail(size.error());
    if (*size > tx_.size()) return fail(Errc::BufferTooSmall);
  }
  if constexpr (std::is_same_v<Request, Subscribe>) {
    EDGEKIT_TRY(session_.begin_subscribe(packet, clock_.now()));
  } else {
    EDGEKIT_TRY(session_.begin_unsubscribe(packet, clock_.now()));
  }
  if (waiter == nullptr) {
    // Recorded: it must reach the server or end the connection (a timeout is fatal).
    return send_packet(packet, deadline, true);
  }
  // A blocking call waits from here: should the send end the connection, the request's loss is
  // that call's error, not an event (report_lost skips the waiter's id).
  waiter->packet_id = packet.packet_id;
  waiter_ = waiter;
  if (auto r = send_packet(packet, deadline, true); !r) {
    waiter_ = nullptr;
    return r;
  }
  return run_until(*waiter, deadline);
}

// The blocking calls: send, then run the loop until the matching ack fills `reason_codes`.
template <class Request>
inline Result<void> Client::request(Request& packet, std::span<ReasonCode> reason_codes,
                                    std::size_t expected_codes, Duration timeout) noexcept {
  Waiter w;
  w.kind = std::is_same_v<Request, Subscribe> ? Waiter::Kind::SubAck : Waiter::Kind::UnsubAck;
  w.reason_codes = reason_codes;
  w.expected_codes = expected_codes;
  if constexpr (!std::is_same_v<Request, Subscribe>) {
    // A 3.1.1 UNSUBACK carries no reason codes: success for every filter (an MQTT 5 one
    // overwrites these).
    std::fill_n(reason_codes.begin(), expected_codes, ReasonCode::Success);
  }
  return send_request(packet, detail::deadline_after(clock_.now(), timeout), &w);
}

Result<std::uint16_t> Client::subscribe_async(std::span<const Subscription> subscriptions,
                                              Duration timeout,
                                              const Properties& properties) noexcept {
  EDGEKIT_TRY(check_usable(false));
  if (subscriptions.empty()) return fail(Errc::InvalidArgument);
  Subscribe s;
  s.subscriptions = Subscriptions(subscriptions);
  s.properties = properties;
  EDGEKIT_TRY(send_request(s, detail::deadline_after(clock_.now(), timeout), nullptr));
  return s.packet_id;
}

Result<std::uint16_t> Client::unsubscribe_async(std::span<const std::string_view> filters,
                                                Duration timeout,
                                                const Properties& properties) noexcept {
  EDGEKIT_TRY(check_usable(false));
  if (filters.empty()) return fail(Errc::InvalidArgument);
  Unsubscribe u;
  u.filters = TopicFilters(filters);
  u.properties = properties;
  EDGEKIT_TRY(send_request(u, detail::deadline_after(clock_.now(), timeout), nullptr));
  return u.packet_id;
}

Result<void> Client::subscribe(std::span<const Subscription> subscriptions,
                               std::span<ReasonCode> reason_codes, Duration timeout,
                               const Properties& properties) noexcept {
  EDGEKIT_TRY(check_usable(true));
  if (subscriptions.empty() || reason_codes.size() < subscriptions.size()) {
    return fail(Errc::InvalidArgument);
  }
  Subscribe s;
  s.subscriptions = Subscriptions(subscriptions);
  s.properties = properties;
  return request(s, reason_codes, subscriptions.size(), timeout);
}

Result<void> Client::unsubscribe(std::span<const std::string_view> filters,
                                 std::span<ReasonCode> reason_codes, Duration timeout,
                                 const Properties& properties) noexcept {
  EDGEKIT_TRY(check_usable(true));
  if (filters.empty() || reason_codes.size() < filters.size()) return fail(Errc::InvalidArgument);
  Unsubscribe u;
  u.filters = TopicFilters(filters);
  u.properties = properties;
  return request(u, reason_codes, filters.size(), timeout);
}

Result<void> Client::ping(Duration timeout) noexcept {
  EDGEKIT_TRY(check_usable(true));
  const Instant deadline = detail::deadline_after(clock_.now(), timeout);
  EDGEKIT_TRY(send_packet(PingReq{}, deadline, true));
  Waiter w;
  w.kind = Waiter::Kind::PingResp;
  auto r = run_until(w, deadline);
  if (!r && r.error() == Errc::Timeout) {
    return fail(fail_connection(Errc::KeepAliveTimeout, std::nullopt));
  }
  return r;
}

Result<void> Client::disconnect(ReasonCode reason, const Properties& properties,
                                Duration timeout) noexcept {
  if (!connected_) return fail(Errc::NotConnected);
  const Instant now = clock_.now();
  const Instant deadline = detail::deadline_after(now, timeout);
  Disconnect d;
  d.reason_code = reason;
  d.properties = properties;
  if (!switches::is_v5(version_) && reason != ReasonCode::Success)
    return fail(Errc::InvalidArgument);
  const auto size = encoded_size(d, version_);
  if (!size) return fail(size.error());
  if (*size > tx_.size()) return fail(Errc::BufferTooSmall);
  EDGEKIT_TRY(session_.prepare_disconnect(d, now));
  auto r = send_packet(d, deadline, true);
  if (connected_) {
    transport_->close();
    connected_ = false;
    tx_acks_ = 0;
    report_lost();
  }
  return r;
}

Result<void> Client::process_loop(Duration timeout) noexcept {
  EDGEKIT_TRY(check_usable(true));
  const Instant deadline = detail::deadline_after(clock_.now(), timeout);
  for (;;) {
    // Packets left behind by connect() (they came with the CONNACK) need no read.
    if (frame_pending()) {
      const auto n = dispatch_frames(deadline);
      if (!n) return fail(n.error());
      if (*n > 0) return {};
    }
    if (!connected_) return fail(fatal_ != Errc::Ok ? fatal_ : Errc::NotConnected);
    const auto got = read_once(deadline);
    if (!got) return fail(got.error());
    if (*got) {
      const auto n = dispatch_frames(deadline);
      if (!n) return fail(n.error());
      if (*n > 0) return {};
      // Only part of a packet so far: keep reading until the deadline.
    }
    if (!connected_) return fail(fatal_ != Errc::Ok ? fatal_ : Errc::NotConnected);
    if (clock_.now() >= deadline) return {};
  }
}

}  // namespace edgekit::mqtt
