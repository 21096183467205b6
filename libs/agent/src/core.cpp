// The agent's core: command pool, router, connection keeper, offline queue, outbox and timers,
// stepped by a driver (agent.cpp's thread, or a test in simulated time). See core.hpp.
//
// The parts: the command pool (command_pool.hpp: what the posting threads share with the core,
// behind one mutex), the router (router.hpp), and here the connection keeper, the pending FIFO
// and offline queue, the outbox hand-over, the timers and the byte moving.
//
// Slot life: a caller takes a free slot (pool mutex), copies its command in and queues the slot's
// index (command queue). `step` moves it to the core's private pending FIFO, carries it out in
// order and completes it (handler call, or the waiting caller collects the outcome). A QoS 1/2
// publish stays in its slot until PUBACK / PUBCOMP, because the session keeps views of it for
// resends; a QoS 0 publish until its bytes are written (the connection queues its payload as a
// view).
#include "edgekit/agent/core.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>

#include "command_pool.hpp"
#include "edgekit/agent/os.hpp"
#include "edgekit/agent/thread_annotations.hpp"
#include "edgekit/mqtt/codec.hpp"
#include "edgekit/mqtt/connection.hpp"
#include "router.hpp"

namespace edgekit::agent {

using detail::Intake;
using detail::Kind;
using detail::kNone;
using detail::Route;
using detail::RouteState;
using detail::Slot;
using detail::Where;

namespace {

bool permanent_refusal(mqtt::ReasonCode rc) noexcept {
  using mqtt::ReasonCode;
  switch (rc) {
    case ReasonCode::UnsupportedProtocolVersion:
    case ReasonCode::ClientIdentifierNotValid:
    case ReasonCode::BadUserNameOrPassword:
    case ReasonCode::NotAuthorized:
    case ReasonCode::Banned:
    case ReasonCode::BadAuthenticationMethod:
    case ReasonCode::MalformedPacket:
    case ReasonCode::ProtocolError:
    case ReasonCode::UseAnotherServer:
    case ReasonCode::ServerMoved:
    case ReasonCode::PacketTooLarge:
    case ReasonCode::SessionTakenOver:
    case ReasonCode::TopicNameInvalid:
    case ReasonCode::PayloadFormatInvalid:
    case ReasonCode::RetainNotSupported:
    case ReasonCode::QoSNotSupported:
    case ReasonCode::TopicAliasInvalid:
      return true;
    default:
      return false;
  }
}

// A local error that says the broker (or we) broke the protocol: retrying repeats it.
bool protocol_violation(mqtt::Errc e) noexcept {
  return mqtt::is_malformed(e) || e == mqtt::Errc::ProtocolError ||
         e == mqtt::Errc::TopicAliasInvalid || e == mqtt::Errc::UnknownPacketId;
}

// The session store the Session writes through. It forwards to the real store (if any) and, when
// an outbox publish is being handed to the session, first marks the outbox record "handed over
// as packet id P" — so after a crash between the two writes the restart can tell whether the
// session got it (p-P exists: drop the outbox copy) or not (requeue it), and a QoS 2 message is
// never sent under two packet ids.
class StoreTap final : public mqtt::SessionStore {
 public:
  mqtt::SessionStore* inner = nullptr;
  mqtt::SessionStore* outbox = nullptr;
  os::Mutex* outbox_mutex = nullptr;
  std::uint16_t handing_key = 0;  // outbox key of the publish being handed over

  mqtt::Result<void> save_publish(std::uint32_t sequence, const mqtt::Publish& publish,
                                  mqtt::Version version) noexcept override {
    if (handing_key != 0 && outbox != nullptr) {
      os::LockGuard l(*outbox_mutex);
      EDGEKIT_TRY(outbox->mark_publish_released(handing_key, publish.packet_id));
    }
    if (inner != nullptr) EDGEKIT_TRY(inner->save_publish(sequence, publish, version));
    return {};
  }
  mqtt::Result<void> mark_publish_released(std::uint16_t id, std::uint32_t seq) noexcept override {
    return inner != nullptr ? inner->mark_publish_released(id, seq) : mqtt::Result<void>{};
  }
  mqtt::Result<void> remove_publish(std::uint16_t id) noexcept override {
    return inner != nullptr ? inner->remove_publish(id) : mqtt::Result<void>{};
  }
  mqtt::Result<void> save_incoming_qos2(std::uint16_t id) noexcept override {
    return inner != nullptr ? inner->save_incoming_qos2(id) : mqtt::Result<void>{};
  }
  mqtt::Result<void> remove_incoming_qos2(std::uint16_t id) noexcept override {
    return inner != nullptr ? inner->remove_incoming_qos2(id) : mqtt::Result<void>{};
  }
  mqtt::Result<void> save_meta(const mqtt::SessionMeta& meta) noexcept override {
    return inner != nullptr ? inner->save_meta(meta) : mqtt::Result<void>{};
  }
  mqtt::Result<void> clear_session() noexcept override {
    return inner != nullptr ? inner->clear_session() : mqtt::Result<void>{};
  }
  mqtt::Result<void> load(mqtt::SessionStoreVisitor& visitor) noexcept override {
    return inner != nullptr ? inner->load(visitor) : mqtt::Result<void>{};
  }
  mqtt::Result<void> set_aside_publish(std::uint16_t id) noexcept override {
    return inner != nullptr ? inner->set_aside_publish(id)
                            : mqtt::Result<void>{fail(mqtt::Errc::UnknownPacketId)};
  }
};

constexpr std::size_t kClientIdCapacity = 256;
// Status::detail of a StoredRecordUnusable report: which store the record was in.
constexpr const char* kSessionStoreName = "session store";
constexpr const char* kOutboxName = "outbox";
// The smallest PUBACK, PUBREC or PUBCOMP: fixed header and packet id (MQTT 5 leaves out the
// reason code and properties on success [MQTT-3.4.2.1]; 3.1.1 has nothing more).
constexpr std::size_t kSmallestAck = 4;
// The read low water counts at most this share of the acks due (1 / kAckShare), so that the
// rest keep the pipeline full while the thread sleeps.
constexpr std::size_t kAckShare = 4;
// Commands taken from the queue under one lock (take_commands).
constexpr std::size_t kTakeChunk = 32;
// Reads per step before commands get their turn again (the driver steps at once when the
// transport is still readable).
constexpr int kReadsPerStep = 32;

}  // namespace

// --- The core's state ----------------------------------------------------------------------------

struct AgentCore::Impl {
  Impl(const Config& c, const mqtt::ConnectOptions& o, TransportFactory& f, Persistence p)
      : config(c),
        options(o),
        factory(f),
        persistence(p),
        pool(c),
        router(c.max_subscriptions, c.max_filter_length),
        outgoing(new mqtt::OutgoingRecord[c.inflight_records]),
        incoming_qos2(new std::uint16_t[c.incoming_qos2]),
        client_id(new char[kClientIdCapacity]),
        rx(new std::byte[c.receive_buffer_size]),
        tx(new std::byte[c.send_buffer_size]),
        sent_id(new std::uint16_t[c.command_slots]()),
        lost(new std::uint32_t[c.command_slots]),
        session(make_storage(), &tap),
        conn(session, mqtt::MutableBytes(rx.get(), c.receive_buffer_size),
             mqtt::MutableBytes(tx.get(), c.send_buffer_size)),
        random(c.jitter_seed),
        backoff(c.reconnect_backoff, random) {
    tap.inner = p.session;
    tap.outbox = p.outbox;
    tap.outbox_mutex = &outbox_mutex;
  }

  mqtt::SessionStorage make_storage() noexcept {
    mqtt::SessionStorage st;
    st.outgoing = {outgoing.get(), config.inflight_records};
    st.incoming_qos2 = {incoming_qos2.get(), config.incoming_qos2};
    st.client_id = {client_id.get(), kClientIdCapacity};
    return st;
  }

  Config config;
  mqtt::ConnectOptions options;
  TransportFactory& factory;
  Persistence persistence;
  StatusHandler status_handler{};
  void (*wake_function)(void*) = nullptr;
  void* wake_context = nullptr;

  // --- Shared with the callers -------------------------------------------------------------------
  detail::CommandPool pool;  // slots, queue, intake, the state as the callers see it
  os::Mutex outbox_mutex;    // the outbox store: callers save, the core removes
  std::atomic<bool> reconnect_requested{false};
  std::atomic<std::uint64_t> writes{0};
  std::atomic<std::uint64_t> reads{0};
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> connects{0};
  std::atomic<std::uint64_t> requeued_total{0};
  std::atomic<std::uint64_t> uncertain_total{0};

  // --- Core thread only --------------------------------------------------------------------------
  detail::Router router;
  std::unique_ptr<mqtt::OutgoingRecord[]> outgoing;
  std::unique_ptr<std::uint16_t[]> incoming_qos2;
  std::unique_ptr<char[]> client_id;
  std::unique_ptr<std::byte[]> rx;
  std::unique_ptr<std::byte[]> tx;
  std::unique_ptr<std::uint16_t[]> sent_id;  // per slot: packet id while in the session, else 0
  std::unique_ptr<std::uint32_t[]> lost;     // slots to requeue (forgotten, or lost with the link)
  StoreTap tap;
  mqtt::Session session;
  mqtt::Connection conn;
  backoff::SplitMix64 random;
  backoff::Backoff backoff;

  // The connection keeper: the state (mirrored in `state` for the callers) and a few fields.
  ConnectionState link = ConnectionState::Idle;
  transport::Transport* transport = nullptr;
  int handle = -1;
  std::uint32_t failures = 0;   // consecutive failed attempts
  Instant next_attempt{};       // Disconnected: when to try again
  bool ever_connected = false;  // since start / reconnect(): later attempts resume the session
  bool use_subscription_ids = false;
  std::optional<Instant> write_stalled_since;  // output waiting for a transport that takes none
  bool batch_cut = false;                      // the last step left work it could do at once
  std::uint64_t progress = 0;  // events handled and writes made (a blocked command may now go)
  bool read_cut = false;  // the last exchange stopped reading at kReadsPerStep (TLS may hold more)
  // QoS 1/2 publishes handed to the connection on the current link and not yet completed: each
  // has at least an ack of kSmallestAck bytes to come (PUBACK, or PUBREC then PUBCOMP). Slots
  // carry the link they were handed over on, so resends of an earlier link never count.
  std::uint32_t link_serial = 0;
  std::size_t acks_due = 0;

  // Pending FIFO, QoS 0 publishes waiting to be written, registered response expectations.
  std::uint32_t pending_head = kNone;
  std::uint32_t pending_tail = kNone;
  std::uint32_t unwritten_head = kNone;
  std::uint32_t unwritten_tail = kNone;
  std::uint32_t expects_head = kNone;
  std::size_t lost_count = 0;
  std::size_t requests_in_flight = 0;  // routes with a request_id

  // The connect in progress: its losses are counted while the CONNACK's MessageLost events come
  // in, then `finish_connect` requeues them and resubscribes; its status report is held back
  // until the resubscriptions are answered (or the link drops, or the core stops).
  struct ConnectReport {
    Status status{};
    bool present = false;         // CONNACK session_present
    bool first = false;           // the first connection since start / reconnect()
    std::size_t wanted = 0;       // routes flagged for resubscription at the CONNACK
    std::size_t outstanding = 0;  // resubscriptions not yet answered
  };
  bool connack_seen = false;  // Connected polled; finish_connect not yet run
  std::size_t lost_unrecoverable = 0;
  std::size_t lost_uncertain = 0;
  std::optional<ConnectReport> report;
  int handler_depth = 0;

  [[nodiscard]] std::byte* data(std::uint32_t i) const noexcept { return pool.data(i); }
  [[nodiscard]] std::string_view filter_of(std::uint32_t i) const noexcept {
    return {reinterpret_cast<const char*>(data(i)), pool[i].length};
  }

  // --- Caller side -------------------------------------------------------------------------------

  // Queues slot `i` for the core and wakes the driver.
  Result<std::uint32_t> post(std::uint32_t i, CompletionHandler done, bool waiter) noexcept {
    auto r = pool.enqueue(i, done, waiter);
    if (r && wake_function != nullptr) wake_function(wake_context);
    return r;
  }

  // Copies a publish into slot `i` as an encoded packet (the packet id is the slot's key).
  Result<void> store_publish(std::uint32_t i, const mqtt::Publish& message) noexcept {
    mqtt::Publish p = message;
    p.dup = false;
    p.packet_id = p.qos == mqtt::QoS::AtMostOnce ? 0 : static_cast<std::uint16_t>(i + 1);
    auto n = mqtt::encode(p, options.version, mqtt::MutableBytes(data(i), config.slot_size));
    if (!n) {
      if (n.error() == mqtt::Errc::BufferTooSmall) return fail(Error{Errc::MessageTooLarge});
      return fail(Error{Errc::Rejected, n.error()});
    }
    pool[i].length = static_cast<std::uint32_t>(*n);
    mqtt::Publish check;
    if (!decode_slot(i, check)) return fail(Error{Errc::Rejected, mqtt::Errc::MalformedPacket});
    return {};
  }

  // The publish in slot `i`: views into the slot, valid while the slot is.
  bool decode_slot(std::uint32_t i, mqtt::Publish& out) const noexcept {
    auto d = mqtt::decode(mqtt::Bytes(data(i), pool[i].length), options.version);
    if (!d) return false;
    const auto* p = std::get_if<mqtt::Publish>(&*d);
    if (p == nullptr) return false;
    out = *p;
    return true;
  }

  Result<std::uint32_t> prepare_publish(const mqtt::Publish& message,
                                        const Admission& admission) noexcept {
    auto slot = pool.take(Kind::Publish, message.qos, admission);
    if (!slot) return fail(slot.error());
    const std::uint32_t i = *slot;
    if (auto r = store_publish(i, message); !r) {
      pool.give_back(i);
      return fail(r.error());
    }
    if (persistence.outbox != nullptr && message.qos != mqtt::QoS::AtMostOnce) {
      mqtt::Publish p;
      (void)decode_slot(i, p);
      os::LockGuard l(outbox_mutex);
      if (!persistence.outbox->save_publish(pool[i].sequence, p, options.version)) {
        pool.give_back(i);
        return fail(Error{Errc::PersistenceFailed});
      }
      pool[i].persisted = true;
    }
    return i;
  }

  Result<std::uint32_t> prepare_filter(Kind kind, std::string_view filter,
                                       mqtt::SubscribeOptions opts,
                                       MessageHandler handler) noexcept {
    if (filter.size() > config.max_filter_length || filter.size() > config.slot_size) {
      return fail(Error{Errc::InvalidArgument});
    }
    if (auto v = mqtt::validate_topic_filter(filter); !v) {
      return fail(Error{Errc::Rejected, v.error()});
    }
    auto slot = pool.take(kind, mqtt::QoS::AtMostOnce, {});
    if (!slot) return fail(slot.error());
    Slot& s = pool[*slot];
    std::memcpy(data(*slot), filter.data(), filter.size());
    s.length = static_cast<std::uint32_t>(filter.size());
    s.options = opts;
    s.message_handler = handler;
    return *slot;
  }

  // --- Completing (core thread) ------------------------------------------------------------------

  void call(CompletionHandler h, const Outcome& o) noexcept {
    if (h.function == nullptr) return;
    ++handler_depth;
    h.function(h.context, o);
    --handler_depth;
  }

  void complete(std::uint32_t i, const Outcome& o) noexcept { call(pool.finish(i, o), o); }

  void complete_error(std::uint32_t i, Errc e, mqtt::Errc m = mqtt::Errc::Ok) noexcept {
    Outcome o;
    o.error = e;
    o.mqtt = m;
    complete(i, o);
  }

  void outbox_remove(std::uint32_t i) noexcept {
    Slot& s = pool[i];
    if (!s.persisted || persistence.outbox == nullptr) return;
    os::LockGuard l(outbox_mutex);
    (void)persistence.outbox->remove_publish(static_cast<std::uint16_t>(i + 1));
    s.persisted = false;
  }

  // A publish the broker forgot is requeued, and the session has just removed its record: the
  // outbox takes it back (under its slot's key, as at `publish`), so a restart before it is
  // sent again still has it. Should the outbox fail, it is requeued all the same (as before).
  void outbox_keep(std::uint32_t i) noexcept {
    Slot& s = pool[i];
    if (s.persisted || persistence.outbox == nullptr) return;
    mqtt::Publish p;
    if (!decode_slot(i, p)) return;
    os::LockGuard l(outbox_mutex);
    if (persistence.outbox->save_publish(s.sequence, p, options.version)) s.persisted = true;
  }

  void set_state(ConnectionState st) noexcept {
    link = st;
    pool.set_state(st);
  }

  void status(const Status& st) noexcept {
    set_state(st.state);
    if (status_handler.function != nullptr) {
      ++handler_depth;
      status_handler.function(status_handler.context, st);
      --handler_depth;
    }
  }

  // --- The pending FIFO --------------------------------------------------------------------------

  void push_back(std::uint32_t i) noexcept {
    pool[i].next = kNone;
    if (pending_tail == kNone)
      pending_head = i;
    else
      pool[pending_tail].next = i;
    pending_tail = i;
  }
  void push_front(std::uint32_t i) noexcept {
    pool[i].next = pending_head;
    pending_head = i;
    if (pending_tail == kNone) pending_tail = i;
  }
  std::uint32_t pop_front() noexcept {
    const std::uint32_t i = pending_head;
    if (i == kNone) return kNone;
    pending_head = pool[i].next;
    if (pending_head == kNone) pending_tail = kNone;
    pool[i].next = kNone;
    return i;
  }

  // Moves the queued commands into the pending FIFO; response expectations start their timers.
  // Taken kTakeChunk at a time: the posting threads meet the core on the queue's and the pool's
  // mutex once per chunk instead of once per command.
  void take_commands(Instant now) noexcept {
    std::array<std::uint32_t, kTakeChunk> taken{};
    std::array<Kind, kTakeChunk> kinds{};
    std::size_t n = 0;
    while (n < config.command_slots) {
      const std::size_t got = pool.pop_many(taken.data(), kinds.data(),
                                            std::min(kTakeChunk, config.command_slots - n));
      if (got == 0) break;
      n += got;
      for (std::size_t k = 0; k < got; ++k) {
        const std::uint32_t i = taken[k];
        if (kinds[k] == Kind::Expect) {
          pool[i].deadline = deadline_after(now, pool[i].timeout);
          pool[i].next = expects_head;
          expects_head = i;
          continue;
        }
        push_back(i);
      }
    }
  }

  // --- Request / response ------------------------------------------------------------------------

  // Unlinks expectation `i` and completes it (`response` null: with `error`).
  void finish_expect(std::uint32_t i, const mqtt::Publish* response, Errc error) noexcept {
    std::uint32_t* link_ref = &expects_head;
    while (*link_ref != kNone && *link_ref != i) link_ref = &pool[*link_ref].next;
    if (*link_ref == i) *link_ref = pool[i].next;
    const ResponseHandler h = pool[i].response;
    pool.give_back(i);
    Outcome o;
    o.error = error;
    if (h.function != nullptr) {
      ++handler_depth;
      h.function(h.context, o, response);
      --handler_depth;
    }
  }

  bool deliver_response(std::string_view correlation, const mqtt::Publish& response) noexcept {
    for (std::uint32_t i = expects_head; i != kNone; i = pool[i].next) {
      if (filter_of(i) == correlation) {
        finish_expect(i, &response, Errc::Ok);
        return true;
      }
    }
    return false;
  }

  void expire_responses(Instant now) noexcept {
    std::uint32_t i = expects_head;
    while (i != kNone) {
      const std::uint32_t next = pool[i].next;
      if (now >= pool[i].deadline) finish_expect(i, nullptr, Errc::Timeout);
      i = next;
    }
  }

  // --- Events of the connection ------------------------------------------------------------------

  // Slot fields may change under the pool mutex when a slot is free; the core keeps its own map
  // of the slots it has handed to the session, so acks are matched without the lock.
  bool find_sent(std::uint16_t packet_id, std::uint32_t& index) noexcept {
    if (packet_id == 0) return false;
    for (std::size_t i = 0; i < config.command_slots; ++i) {
      if (sent_id[i] == packet_id) {
        sent_id[i] = 0;
        index = static_cast<std::uint32_t>(i);
        Slot& s = pool[index];
        if (s.ack_link == link_serial && acks_due > 0) --acks_due;
        s.ack_link = 0;
        return true;
      }
    }
    return false;
  }

  // See AgentCore::read_low_water. Only while everything handed over is on the wire (nothing
  // queued or partly written, no packet held for room for its ack) is every counted ack sure
  // to come without another write; a partly read ack in the receive buffer costs at most
  // kSmallestAck - 1 of them, far below the share counted.
  std::size_t read_low_water() const noexcept {
    if (transport == nullptr || read_cut || write_stalled_since || !conn.connected() ||
        !conn.output_empty() || conn.packet_pending()) {
      return 1;
    }
    const std::size_t acks = std::min(acks_due / kAckShare, config.ack_coalescing);
    return acks >= 2 ? acks * kSmallestAck : 1;
  }

  void on_event(const mqtt::Event& e, Instant now) noexcept {
    ++progress;
    // The CONNACK's losses come right behind it, before anything else.
    if (connack_seen && e.type != mqtt::EventType::MessageLost) finish_connect(now);
    switch (e.type) {
      case mqtt::EventType::MessageReceived:
        if (e.message != nullptr) {
          ++handler_depth;
          router.route(*e.message, use_subscription_ids);
          --handler_depth;
        }
        break;
      case mqtt::EventType::PublishCompleted: {
        std::uint32_t i = 0;
        if (find_sent(e.packet_id, i)) {
          Outcome o;
          o.reason_code = e.reason_code;
          o.packet_id = e.packet_id;
          complete(i, o);
        }
        break;
      }
      case mqtt::EventType::MessageLost:
        on_message_lost(e);
        break;
      case mqtt::EventType::Connected:
        on_connected(e);
        break;
      case mqtt::EventType::SubscribeCompleted:
      case mqtt::EventType::UnsubscribeCompleted:
        // Unknown id: a request given up after operation_timeout; nobody waits for it.
        if (Route* r = find_request(e.packet_id)) {
          finish_request(*r, e.error == mqtt::Errc::Ok ? Finish::Acked : Finish::Lost,
                         e.reason_codes);
        }
        break;
      case mqtt::EventType::ServerDisconnected:  // the connection is Closed: finish_link
      case mqtt::EventType::ConnectionClosed:
      case mqtt::EventType::ConnectFailed:
      case mqtt::EventType::PingResponse:
        break;
    }
  }

  void on_message_lost(const mqtt::Event& e) noexcept {
    // A QoS 2 message the broker accepted (PUBREC) may have been delivered already: resending
    // it could deliver it twice, so by default the caller is told instead (see
    // UncertainQoS2Policy). The session has forgotten the record (and removed it from its
    // store), so after a restart it does not come back either.
    const bool uncertain =
        e.pubrec_received && config.uncertain_qos2 == UncertainQoS2Policy::ReportUncertain;
    std::uint32_t i = 0;
    if (find_sent(e.packet_id, i)) {
      if (uncertain) {
        ++lost_uncertain;
        uncertain_total.fetch_add(1, std::memory_order_relaxed);
        outbox_remove(i);
        Outcome o;
        o.error = Errc::DeliveryUncertain;
        o.packet_id = e.packet_id;
        complete(i, o);
      } else {
        outbox_keep(i);
        lost[lost_count++] = i;
      }
    } else if (uncertain) {
      // A record restored after a restart: nobody waits for it; it is counted (status, stats).
      ++lost_uncertain;
      uncertain_total.fetch_add(1, std::memory_order_relaxed);
    } else if (e.message != nullptr) {
      // A restored record (no slot): copy it into a free slot so it is sent again, first.
      const std::uint32_t j = pool.claim(kNone, e.message->qos, false, true);
      if (j != kNone && store_publish(j, *e.message)) {
        outbox_keep(j);
        lost[lost_count++] = j;
      } else {
        if (j != kNone) pool.give_back(j);
        ++lost_unrecoverable;
      }
    }
  }

  void on_connected(const mqtt::Event& e) noexcept {
    connects.fetch_add(1, std::memory_order_relaxed);
#if EDGEKIT_MQTT_ENABLE_V5  // without MQTT 5, Properties is empty
    use_subscription_ids = options.version == mqtt::Version::V5 &&
                           (e.connack == nullptr ||
                            e.connack->properties.subscription_identifier_available().value_or(true));
#else
    use_subscription_ids = false;
#endif
    ConnectReport r;
    r.status.state = ConnectionState::Connected;
    r.present = e.session_present;
    r.first = !ever_connected;
    report = r;
    ever_connected = true;
    failures = 0;
    backoff.reset();
    connack_seen = true;
    // Commands flow from now on (publishes are not held to the offline limit while the
    // resubscriptions are answered); the Connected report follows with their outcome.
    set_state(ConnectionState::Connected);
  }

  // After the CONNACK and its losses: requeue what the broker forgot, make the subscriptions
  // again, and report (now, or when the last resubscription is answered).
  void finish_connect(Instant now) noexcept {
    connack_seen = false;
    ConnectReport& r = *report;
    r.status.requeued = requeue_lost();
    r.status.lost = lost_unrecoverable;
    r.status.uncertain = lost_uncertain;
    r.wanted = 0;
    for (std::size_t k = 0; k < router.size(); ++k) {
      Route& route = router[k];
      if (!route.granted()) continue;
      // The broker has no subscriptions of ours: make them all again. A resumed session has
      // them, except those whose resubscription the last connection did not see granted.
      if (!r.present) route.state = RouteState::Resubscribe;
      if (route.state == RouteState::Resubscribe) ++r.wanted;
    }
    // In table order, without waiting for the SUBACKs: commands queued meanwhile are carried
    // out; the report goes when the last SUBACK is in (finish_request), or the link drops.
    r.outstanding = 0;
    for (std::size_t k = 0; k < router.size() && conn.connected(); ++k) {
      Route& route = router[k];
      if (route.state != RouteState::Resubscribe || route.request_id != 0) continue;
      auto id = send_subscribe(route, now);
      if (!id) continue;  // refused locally (e.g. the send queue is full): stays flagged
      begin_request(route, *id, kNone, now);
      ++r.outstanding;
    }
    if (r.outstanding == 0 && conn.connected()) send_report();
  }

  // The report of the last connect: SessionResumed, or for a new session SessionStarted /
  // SessionLost; `resubscribed` counts the subscriptions the broker granted again,
  // `resubscribe_pending` those it did not answer before the link dropped (or in
  // operation_timeout): they are made again on the next connection.
  void send_report() noexcept {
    if (!report) return;
    const ConnectReport r = *report;
    report.reset();
    Status st = r.status;
    for (std::size_t k = 0; k < router.size(); ++k) {
      if (router[k].state == RouteState::Resubscribe) ++st.resubscribe_pending;
    }
    if (r.present) {
      st.reason = StatusReason::SessionResumed;
    } else {
      // Also on the first connect after a restart: publishes restored from the store that the
      // broker no longer knows make it a lost session, not a new one.
      const bool forgot = st.requeued != 0 || st.lost != 0 || st.uncertain != 0;
      const bool had_subscriptions = !r.first && r.wanted != 0;
      st.reason =
          (forgot || had_subscriptions) ? StatusReason::SessionLost : StatusReason::SessionStarted;
    }
    // The state stays what it is (a report owed after the link dropped is followed at once by
    // the ConnectionLost report).
    st.state = link;
    status(st);
  }

  // --- Outstanding SUBSCRIBE / UNSUBSCRIBE -------------------------------------------------------

  enum class Step : std::uint8_t { Done, Blocked, LinkDown };
  enum class Finish : std::uint8_t { Acked, Lost, TimedOut };

  mqtt::Result<std::uint16_t> send_subscribe(Route& r, Instant now) noexcept {
    mqtt::Subscription sub{router.filter(r), r.options};
    mqtt::Properties props;
#if EDGEKIT_MQTT_ENABLE_V5  // without MQTT 5, Properties is empty
    std::uint32_t ids[1] = {r.id};
    if (use_subscription_ids) props.subscription_identifiers = ids;
#endif
    auto id = conn.subscribe({&sub, 1}, now, props);
    if (!id && id.error() == mqtt::Errc::SendQueueFull) {
      write_out(now);
      id = conn.subscribe({&sub, 1}, now, props);
    }
    return id;
  }

  void begin_request(Route& r, std::uint16_t packet_id, std::uint32_t slot, Instant now) noexcept {
    r.request_id = packet_id;
    r.request_slot = slot;
    r.request_deadline = deadline_after(now, config.operation_timeout);
    ++requests_in_flight;
    if (slot != kNone) pool.set_where(slot, Where::Sent);
  }

  Route* find_request(std::uint16_t packet_id) noexcept {
    if (packet_id == 0) return nullptr;
    for (std::size_t k = 0; k < router.size(); ++k) {
      if (router[k].request_id == packet_id) return &router[k];
    }
    return nullptr;
  }

  // A subscribe that did not take: the route as it was before.
  static void rollback(Route& r, const Slot& s) noexcept {
    if (!s.existed) {
      detail::Router::remove(r);
    } else {
      r.handler = s.old_handler;
      r.options = s.old_options;
    }
  }

  // Ends the request outstanding on `r`: acknowledged (`codes` are the ack's), lost with the
  // connection (the command goes back to the queue, in order, when the link-down is handled), or
  // given up after operation_timeout (Rejected with Timeout).
  void finish_request(Route& r, Finish how, mqtt::ReasonCodes codes) noexcept {
    const std::uint32_t i = r.request_slot;
    r.request_id = 0;
    r.request_slot = kNone;
    --requests_in_flight;
    if (i == kNone) {
      // A resubscription after a lost session. Lost or unanswered: the route stays flagged and
      // is made again on the next connection (the report counts it as pending).
      if (how == Finish::Acked) {
        if (codes.size() == 1 && !mqtt::is_error(codes[0])) {
          r.state = RouteState::Active;
          if (report) ++report->status.resubscribed;
        } else {
          r.state = RouteState::Pending;  // refused: no longer granted
        }
      }
      if (report && report->outstanding > 0 && --report->outstanding == 0 && conn.connected()) {
        send_report();
      }
      return;
    }
    Slot& s = pool[i];
    const bool subscribe = s.kind == Kind::Subscribe;
    if (how == Finish::Lost) {
      if (subscribe) rollback(r, s);
      lost[lost_count++] = i;
      return;
    }
    if (how == Finish::TimedOut || codes.size() > 1 || (subscribe && codes.empty())) {
      // No answer in time, or an ack with the wrong number of codes [MQTT-3.9.3-1].
      if (subscribe) rollback(r, s);
      complete_error(i, Errc::Rejected,
                     how == Finish::TimedOut ? mqtt::Errc::Timeout : mqtt::Errc::ProtocolError);
      return;
    }
    Outcome o;
    // A 3.1.1 UNSUBACK carries no code: success.
    if (!codes.empty()) o.reason_code = codes[0];
    if (!subscribe) {
      detail::Router::remove(r);
    } else if (mqtt::is_error(o.reason_code)) {
      rollback(r, s);
    } else {
      r.state = RouteState::Active;
    }
    complete(i, o);
  }

  void expire_requests(Instant now) noexcept {
    if (requests_in_flight == 0) return;
    for (std::size_t k = 0; k < router.size(); ++k) {
      Route& r = router[k];
      if (r.request_id != 0 && now >= r.request_deadline) finish_request(r, Finish::TimedOut, {});
    }
  }

  // The connection refused command `i` (a subscribe or unsubscribe on route `r`).
  Step request_failed(std::uint32_t i, Route& r, mqtt::Errc error) noexcept {
    if (pool[i].kind == Kind::Subscribe) rollback(r, pool[i]);
    if (error == mqtt::Errc::NoPacketIdAvailable || error == mqtt::Errc::SessionStateFull ||
        error == mqtt::Errc::SendQueueFull) {
      // Every session record is in use, or the socket is slow: wait, as a publish does.
      push_front(i);
      return Step::Blocked;
    }
    if (!conn.connected()) {
      push_front(i);
      return Step::LinkDown;
    }
    complete_error(i, Errc::Rejected, error);
    return Step::Done;
  }

  // --- Carrying out commands ---------------------------------------------------------------------

  Step carry_out_publish(std::uint32_t i, Instant now) noexcept {
    Slot& s = pool[i];
    mqtt::Publish p;
    if (!decode_slot(i, p)) {
      outbox_remove(i);
      complete_error(i, Errc::Rejected, mqtt::Errc::MalformedPacket);
      return Step::Done;
    }
    tap.handing_key = s.persisted ? static_cast<std::uint16_t>(i + 1) : 0;
    auto r = conn.publish(p, now);
    if (!r && r.error() == mqtt::Errc::SendQueueFull) {
      write_out(now);
      r = conn.publish(p, now);
    }
    tap.handing_key = 0;
    if (r) {
      outbox_remove(i);
      pool.handed_over(i);
      published.fetch_add(1, std::memory_order_relaxed);
      if (s.qos == mqtt::QoS::AtMostOnce) {
        // Its payload is a view into the slot: complete (and free it) once written.
        // Not queued_total(): output dropped with a closed link counts there but is never
        // written, so the two totals drift apart across connections.
        s.written_mark = conn.written_total() + conn.output_size();
        s.next = kNone;
        if (unwritten_tail == kNone)
          unwritten_head = i;
        else
          pool[unwritten_tail].next = i;
        unwritten_tail = i;
      } else {
        s.packet_id = *r;
        sent_id[i] = *r;
        s.ack_link = link_serial;
        ++acks_due;
      }
      return Step::Done;
    }
    switch (r.error()) {
      case mqtt::Errc::ReceiveMaximumExceeded:
      case mqtt::Errc::SessionStateFull:
      case mqtt::Errc::NoPacketIdAvailable:
      case mqtt::Errc::SendQueueFull:
        push_front(i);
        return Step::Blocked;
      case mqtt::Errc::NotConnected:
        push_front(i);
        return Step::LinkDown;
      case mqtt::Errc::PersistenceFailed:
        outbox_remove(i);
        complete_error(i, Errc::PersistenceFailed, r.error());
        return Step::Done;
      default:
        outbox_remove(i);
        complete_error(i, Errc::Rejected, r.error());
        return conn.connected() ? Step::Done : Step::LinkDown;
    }
  }

  Step carry_out(std::uint32_t i, Instant now) noexcept {
    Slot& s = pool[i];
    if (pool.dropped(i)) {
      outbox_remove(i);
      complete_error(i, Errc::Dropped);
      return Step::Done;
    }
    switch (s.kind) {
      case Kind::Publish:
        return carry_out_publish(i, now);
      case Kind::Subscribe: {
        const std::string_view filter = filter_of(i);
        Route* r = router.find(filter);
        // One request per filter at a time: a command on a filter whose SUBSCRIBE / UNSUBSCRIBE
        // is outstanding waits for that ack (what to roll back to depends on it).
        if (r != nullptr && r->request_id != 0) {
          push_front(i);
          return Step::Blocked;
        }
        s.existed = r != nullptr;
        if (r == nullptr) r = router.add(filter);
        if (r == nullptr) {
          complete_error(i, Errc::RouterFull);
          return Step::Done;
        }
        // Installed before SUBSCRIBE goes out: retained messages may arrive right behind the
        // SUBACK, in the same read.
        s.old_handler = r->handler;
        s.old_options = r->options;
        r->handler = s.message_handler;
        r->options = s.options;
        // Not waiting for the SUBACK: the commands behind this one go on; finish_request
        // completes it (or requeues it if the link drops first).
        auto id = send_subscribe(*r, now);
        if (!id) return request_failed(i, *r, id.error());
        begin_request(*r, *id, i, now);
        return Step::Done;
      }
      case Kind::Unsubscribe: {
        Route* r = router.find(filter_of(i));
        if (r == nullptr) {
          complete_error(i, Errc::NotSubscribed);
          return Step::Done;
        }
        if (r->request_id != 0) {
          push_front(i);
          return Step::Blocked;
        }
        const std::string_view f = router.filter(*r);
        auto id = conn.unsubscribe({&f, 1}, now);
        if (!id && id.error() == mqtt::Errc::SendQueueFull) {
          write_out(now);
          id = conn.unsubscribe({&f, 1}, now);
        }
        if (!id) return request_failed(i, *r, id.error());
        begin_request(*r, *id, i, now);
        return Step::Done;
      }
      case Kind::Disconnect: {
        // Behind every command queued before it, including the acks of those in flight.
        if (requests_in_flight > 0) {
          push_front(i);
          return Step::Blocked;
        }
        auto res = conn.disconnect(mqtt::ReasonCode::Success, {}, now);
        if (!res && res.error() == mqtt::Errc::SendQueueFull) {
          write_out(now);
          res = conn.disconnect(mqtt::ReasonCode::Success, {}, now);
          if (!res && res.error() == mqtt::Errc::SendQueueFull) {
            push_front(i);
            return Step::Blocked;
          }
        }
        if (!res) conn.close(mqtt::Errc::NotConnected, std::nullopt, now);
        Outcome o;
        if (!res) o.mqtt = res.error();
        Status st;
        st.state = ConnectionState::Closed;
        st.reason = StatusReason::Disconnected;
        status(st);
        complete(i, o);
        return Step::LinkDown;
      }
      case Kind::Expect:
      case Kind::Free:
        break;
    }
    return Step::Done;
  }

  enum class Pump : std::uint8_t { Idle, More, Blocked, LinkDown };

  // Carries out pending commands in order until one has to wait or the batch is full.
  Pump pump(Instant now) noexcept {
    std::size_t n = 0;
    Pump out = Pump::Idle;
    while (pending_head != kNone) {
      if (n == config.max_batch) {
        out = Pump::More;
        break;
      }
      const std::uint32_t i = pop_front();
      ++n;
      const Step st = carry_out(i, now);
      if (st == Step::Blocked) {
        out = Pump::Blocked;
        break;
      }
      if (st == Step::LinkDown || !conn.connected()) {
        out = Pump::LinkDown;
        break;
      }
    }
    if (n > 0) batches.fetch_add(1, std::memory_order_relaxed);
    return out;
  }

  // While not connected: complete what cannot wait (dropped publishes, disconnect), keep the
  // rest in order.
  void sweep_offline(Instant now) noexcept {
    std::uint32_t keep_head = kNone, keep_tail = kNone;
    while (pending_head != kNone) {
      const std::uint32_t i = pop_front();
      Slot& s = pool[i];
      bool finish = true;
      if (pool.dropped(i)) {
        complete_error(i, Errc::Dropped);
      } else if (s.kind == Kind::Disconnect) {
        // A connection attempt in progress is abandoned.
        if (transport != nullptr) {
          set_state(ConnectionState::Closed);
          conn.close(mqtt::Errc::NotConnected, std::nullopt, now);
          drain_events(now);
          finish_link(now);
        }
        Status st;
        st.state = ConnectionState::Closed;
        st.reason = StatusReason::Disconnected;
        status(st);
        complete(i, Outcome{});
      } else if (link == ConnectionState::Failed && !config.retry_permanent_failures) {
        outbox_remove(i);
        complete_error(i, Errc::PermanentFailure);
      } else {
        finish = false;
      }
      if (finish) continue;
      s.next = kNone;
      if (keep_tail == kNone)
        keep_head = i;
      else
        pool[keep_tail].next = i;
      keep_tail = i;
    }
    // Commands may have been requeued meanwhile (finish_link): they go first, in order.
    if (keep_head != kNone) {
      if (pending_tail == kNone) {
        pending_head = keep_head;
      } else {
        pool[pending_tail].next = keep_head;
      }
      pending_tail = keep_tail;
    }
  }

  // --- Connection keeping ------------------------------------------------------------------------

  void schedule_retry(Status st, Instant now) noexcept {
    ++failures;
    st.attempts = failures;
    if (st.permanent && !config.retry_permanent_failures) {
      st.state = ConnectionState::Failed;
      status(st);
      return;
    }
    st.permanent = false;
    const Duration d = backoff.next();
    next_attempt = now + d;
    st.state = ConnectionState::Disconnected;
    st.retry_in = d;
    status(st);
  }

  void attempt_connect(Instant now) noexcept {
    Status st;
    st.state = ConnectionState::Connecting;
    st.reason = StatusReason::Connecting;
    st.attempts = failures;
    status(st);
    auto c = factory.connect();  // the one call that may block (TCP / TLS connect)
    if (!c) {
      Status f;
      f.reason = StatusReason::Unreachable;
      f.error = c.error().error;
      f.system_error = c.error().system_error;
      f.detail = c.error().detail;
      f.transport_error = c.error().transport_error;
      f.permanent = c.error().permanent || c.error().error == mqtt::Errc::HostNotFound ||
                    (!ever_connected && failures + 1 >= config.initial_connect_attempts);
      schedule_retry(f, now);
      return;
    }
    mqtt::ConnectOptions o = options;
    if (ever_connected) o.clean_start = false;
#if EDGEKIT_MQTT_ENABLE_V5  // without MQTT 5, Properties is empty
    if (o.version == mqtt::Version::V5 && config.incoming_qos2 > 1) {
      // Announce half the inbound QoS 2 storage: after a resume the broker may send a full
      // Receive Maximum of new messages while ids of the last connection still await PUBREL.
      const auto half =
          static_cast<std::uint16_t>(std::min<std::size_t>(config.incoming_qos2 / 2, 65535));
      if (!o.properties.receive_maximum() || *o.properties.receive_maximum() > half) {
        o.properties.set_receive_maximum(half);
      }
    }
#endif
    lost_unrecoverable = 0;
    lost_uncertain = 0;
    connack_seen = false;
    report.reset();
    if (auto r = conn.connect(o, now, config.connect_timeout); !r) {
      c->transport->close();
      Status f;
      f.reason = StatusReason::ProtocolViolation;  // the options are wrong: retrying repeats it
      f.error = r.error();
      f.permanent = true;
      f.detail = mqtt::to_string(r.error());
      schedule_retry(f, now);
      return;
    }
    transport = c->transport;
    handle = c->poll_handle;
    write_stalled_since.reset();
    ++link_serial;
    acks_due = 0;
    exchange(now);  // CONNECT leaves now; the CONNACK is an event of a later step
  }

  // Puts the commands in `lost` back in the queue in the order they were queued: publishes the
  // broker forgot or that were not written before the link dropped, and SUBSCRIBE / UNSUBSCRIBE
  // commands lost with their connection. Each goes before the first pending command queued
  // after it. Returns the number of publishes.
  std::size_t requeue_lost() noexcept {
    if (lost_count == 0) return 0;
    std::sort(lost.get(), lost.get() + lost_count, [&](std::uint32_t a, std::uint32_t b) {
      return pool[a].sequence < pool[b].sequence;
    });
    std::size_t publishes = 0;
    std::uint32_t prev = kNone;
    std::uint32_t cur = pending_head;
    for (std::size_t k = 0; k < lost_count; ++k) {
      const std::uint32_t i = lost[k];
      pool.set_where(i, Where::Pending);
      pool[i].packet_id = 0;
      if (pool[i].kind == Kind::Publish) ++publishes;
      while (cur != kNone && pool[cur].sequence < pool[i].sequence) {
        prev = cur;
        cur = pool[cur].next;
      }
      pool[i].next = cur;
      if (prev == kNone)
        pending_head = i;
      else
        pool[prev].next = i;
      if (cur == kNone) pending_tail = i;
      prev = i;
    }
    lost_count = 0;
    requeued_total.fetch_add(publishes, std::memory_order_relaxed);
    return publishes;
  }

  // The connection is Closed and its events are drained: close the transport and decide what
  // comes next.
  void finish_link(Instant now) noexcept {
    // A DISCONNECT (or the rest of a packet partly written) queued on the way out: one try.
    if (!conn.output_empty()) write_out(now);
    transport->close();
    transport = nullptr;
    handle = -1;
    write_stalled_since.reset();
    acks_due = 0;
    // QoS 0 publishes never written go out on the next connection, in their place.
    while (unwritten_head != kNone) {
      const std::uint32_t i = unwritten_head;
      unwritten_head = pool[i].next;
      lost[lost_count++] = i;
    }
    unwritten_tail = kNone;
    // The connection reports every request outstanding as lost; anything still marked here
    // would otherwise block its filter for good.
    for (std::size_t k = 0; k < router.size() && requests_in_flight > 0; ++k) {
      if (router[k].request_id != 0) finish_request(router[k], Finish::Lost, {});
    }
    if (connack_seen) finish_connect(now);
    (void)requeue_lost();
    const mqtt::Errc error = conn.error();
    const mqtt::ReasonCode server = conn.server_reason();
    if (link == ConnectionState::Connecting) {
      Status f;
      f.error = error;
      if (error == mqtt::Errc::ConnectionRefused) {
        f.reason = StatusReason::Refused;
        f.broker_reason = server;
        f.permanent = permanent_refusal(server);
        f.detail = mqtt::to_string(server);
      } else if (protocol_violation(error)) {
        f.reason = StatusReason::ProtocolViolation;
        f.permanent = true;
        f.detail = mqtt::to_string(error);
      } else {
        f.reason = StatusReason::ConnectionLost;
        f.detail = mqtt::to_string(error);
      }
      schedule_retry(f, now);
      return;
    }
    // The connect's report is owed even though the link dropped during its resubscriptions:
    // it comes first, then the ConnectionLost below.
    send_report();
    if (link != ConnectionState::Connected) return;  // Closed by `disconnect`
    Status st;
    st.error = error;
    st.broker_reason = server;
    if (error == mqtt::Errc::ServerDisconnected) {
      st.reason = StatusReason::ConnectionLost;
      st.permanent = permanent_refusal(server);
      st.detail = mqtt::to_string(server);
    } else if (protocol_violation(error)) {
      st.reason = StatusReason::ProtocolViolation;
      st.permanent = true;
      st.detail = mqtt::to_string(error);
    } else {
      st.reason = StatusReason::ConnectionLost;
      st.detail = mqtt::to_string(error);
    }
    failures = 0;
    schedule_retry(st, now);
  }

  // --- Moving bytes ------------------------------------------------------------------------------

  // Completes the QoS 0 publishes whose bytes have all been written.
  void complete_written() noexcept {
    while (unwritten_head != kNone && conn.written_total() >= pool[unwritten_head].written_mark) {
      const std::uint32_t i = unwritten_head;
      unwritten_head = pool[i].next;
      if (unwritten_head == kNone) unwritten_tail = kNone;
      complete(i, Outcome{});
    }
  }

  // Writes what the connection queued, as far as the transport takes it (one writev per round:
  // acks, headers and payloads together).
  void write_out(Instant now) noexcept {
    while (transport != nullptr && !conn.output_empty()) {
      std::array<mqtt::Bytes, 2 * mqtt::Connection::kSendQueuePackets + 2> parts{};
      const std::size_t count = conn.output(parts);
      writes.fetch_add(1, std::memory_order_relaxed);
      const auto r =
          transport->writev(std::span<const transport::ConstBuffer>(parts.data(), count));
      if (r.status == transport::IoStatus::Ok && r.bytes > 0) {
        conn.on_written(r.bytes, now);
        ++progress;
        write_stalled_since.reset();
        complete_written();
        continue;
      }
      if (r.status == transport::IoStatus::Ok || r.status == transport::IoStatus::WouldBlock) {
        if (!write_stalled_since) write_stalled_since = now;
        return;
      }
      conn.on_transport_closed(r.status == transport::IoStatus::Closed ? mqtt::Errc::TransportClosed
                                                                       : mqtt::Errc::TransportError,
                               now);
      return;
    }
    write_stalled_since.reset();
  }

  // One read into the connection's receive buffer; true when it filled the space offered (more
  // may be waiting). A read that took less has most likely drained the socket: reading again
  // would cost a system call that answers WouldBlock, so the driver's wait (which returns at
  // once if more has come) finds out instead.
  bool read_once(Instant now) noexcept {
    if (transport == nullptr || conn.state() == mqtt::ConnectionState::Closed) return false;
    const mqtt::MutableBytes buffer = conn.read_buffer();
    if (buffer.empty()) return false;
    reads.fetch_add(1, std::memory_order_relaxed);
    const auto r = transport->recv(buffer);
    switch (r.status) {
      case transport::IoStatus::Ok:
        conn.on_read(r.bytes, now);
        return r.bytes == buffer.size();
      case transport::IoStatus::WouldBlock:
        return false;
      case transport::IoStatus::Closed:
        conn.on_transport_closed(mqtt::Errc::TransportClosed, now);
        return false;
      case transport::IoStatus::Error:
        conn.on_transport_closed(mqtt::Errc::TransportError, now);
        return false;
    }
    return false;
  }

  // Polls every event; an incoming packet that waits for room for its ack gets it by a write.
  void drain_events(Instant now) noexcept {
    for (;;) {
      while (auto e = conn.poll_event(now)) on_event(*e, now);
      if (connack_seen) finish_connect(now);
      if (!conn.packet_pending() || conn.output_empty() || transport == nullptr) return;
      const std::uint64_t before = conn.written_total();
      write_out(now);
      if (conn.written_total() == before) return;  // the socket takes nothing: later
    }
  }

  // Everything the connection needs at `now`: output, input, events, timers.
  void exchange(Instant now) noexcept {
    write_out(now);
    read_cut = true;
    for (int k = 0; k < kReadsPerStep; ++k) {
      const bool more = read_once(now);
      drain_events(now);
      if (!more) {
        read_cut = false;
        break;
      }
    }
    drain_events(now);
    if (auto due = conn.next_deadline(); due && now >= *due) {
      conn.on_timer(now);
      drain_events(now);
    }
    if (write_stalled_since && !conn.output_empty() &&
        now - *write_stalled_since >= config.send_timeout) {
      // The link takes nothing: the stream cannot carry anything else, the connection ends.
      conn.close(mqtt::Errc::Timeout, std::nullopt, now);
      drain_events(now);
    }
    write_out(now);
    drain_events(now);
    if (transport != nullptr && conn.state() == mqtt::ConnectionState::Closed) finish_link(now);
  }

  // --- The step ----------------------------------------------------------------------------------

  void step(Instant now) noexcept {
    if (pool.intake() != Intake::Open) return;
    if (reconnect_requested.exchange(false) &&
        (link == ConnectionState::Failed || link == ConnectionState::Closed ||
         link == ConnectionState::Disconnected)) {
      failures = 0;
      ever_connected = false;
      backoff.reset();
      next_attempt = now;
      set_state(ConnectionState::Disconnected);
    }
    take_commands(now);
    expire_responses(now);
    batch_cut = false;
    if (link != ConnectionState::Connected) sweep_offline(now);
    if (link == ConnectionState::Disconnected && transport == nullptr && now >= next_attempt) {
      attempt_connect(now);  // the CONNACK may be here at once: the loop below goes on with it
    }
    for (int round = 0;; ++round) {
      const bool was_connected = link == ConnectionState::Connected;
      const std::uint64_t progress_before = progress;
      Pump pumped = Pump::Idle;
      if (was_connected) {
        expire_requests(now);
        pumped = pump(now);
        batch_cut = pumped == Pump::More;
      }
      if (transport != nullptr) exchange(now);
      if (link != ConnectionState::Connected) break;
      // Connected during this step: the commands waiting for it go at once.
      if (!was_connected) continue;
      // A command waited for an ack or for the socket, and acks came or bytes left meanwhile:
      // try again now rather than at the next wake-up (which may be far: nothing else may come).
      if (pumped != Pump::Blocked || progress == progress_before) break;
      if (round >= 3) {
        batch_cut = true;  // the driver steps again at once
        break;
      }
    }
    if (link != ConnectionState::Connected) sweep_offline(now);
  }

  std::optional<Instant> next_deadline() const noexcept {
    std::optional<Instant> out;
    auto take = [&](Instant t) {
      if (!out || t < *out) out = t;
    };
    if (transport != nullptr) {
      if (auto d = conn.next_deadline()) take(*d);
      if (write_stalled_since) take(*write_stalled_since + config.send_timeout);
    }
    if (link == ConnectionState::Disconnected && transport == nullptr) take(next_attempt);
    if (requests_in_flight > 0) {
      for (std::size_t k = 0; k < router.size(); ++k) {
        if (router[k].request_id != 0) take(router[k].request_deadline);
      }
    }
    for (std::uint32_t i = expects_head; i != kNone; i = pool[i].next) take(pool[i].deadline);
    return out;
  }

  void stop() noexcept {
    // Callers (also those waiting for room) see Stopped from now on.
    if (pool.close() != Intake::Open) return;
    if (transport != nullptr) {
      transport->close();
      transport = nullptr;
      handle = -1;
    }
    send_report();
    std::uint32_t i = 0;
    Kind kind = Kind::Free;
    while (pool.pop(i, kind)) {
      pool.set_where(i, Where::Pending);
      push_back(i);  // expectations too: they complete Stopped below
    }
    while (pending_head != kNone) {
      const std::uint32_t p = pop_front();
      if (pool[p].kind == Kind::Expect) {
        const ResponseHandler h = pool[p].response;
        pool.give_back(p);
        Outcome o;
        o.error = Errc::Stopped;
        if (h.function != nullptr) h.function(h.context, o, nullptr);
        continue;
      }
      complete_error(p, Errc::Stopped);
    }
    while (expects_head != kNone) finish_expect(expects_head, nullptr, Errc::Stopped);
    unwritten_head = unwritten_tail = kNone;
    // In-flight QoS 1/2 (Sent): the session keeps them for a resume; their callers hear Stopped.
    for (std::uint32_t k = 0; k < pool.size(); ++k) {
      if (pool.sent(k)) {
        sent_id[k] = 0;
        complete_error(k, Errc::Stopped);
      }
    }
    Status st;
    st.state = ConnectionState::Closed;
    st.reason = StatusReason::Stopped;
    status(st);
  }

  // --- Restore (before the first step) -----------------------------------------------------------

  // --- Restoring after a restart ---------------------------------------------------------------
  //
  // Nothing stored is dropped silently (docs/agent.md, "Persistence"): a record that cannot be
  // restored is kept aside in its store, where nothing overwrites it, and reported
  // (StoredRecordUnusable, with its cause); a store that holds more than this configuration has
  // room for is refused as a whole (RestoreRefused, `start` returns false) and left untouched,
  // so that a start with enough room restores all of it.

  // Reports a record that was not restored (`store`: which of the two).
  void report_unrestorable(const mqtt::UnrestorableRecord& u, const char* store) noexcept {
    Status st;
    st.state = ConnectionState::Idle;
    st.reason = StatusReason::StoredRecordUnusable;
    st.error = u.cause;
    st.record = u.name;
    st.packet_id = u.packet_id;
    st.lost = u.kind == mqtt::StoredRecordKind::Publish ? 1 : 0;
    st.detail = store;
    status(st);
  }

  void refuse_start(mqtt::Errc error, const char* detail) noexcept {
    Status st;
    st.state = ConnectionState::Failed;
    st.reason = StatusReason::RestoreRefused;
    st.error = error;
    st.permanent = true;
    st.detail = detail;
    status(st);
  }

  struct SessionObserver final : mqtt::RestoreObserver {
    explicit SessionObserver(Impl& i) : impl(i) {}
    void on_unrestorable(const mqtt::UnrestorableRecord& u) noexcept override {
      impl.report_unrestorable(u, kSessionStoreName);
    }
    Impl& impl;
  };

  struct OutboxEntry {
    std::uint32_t sequence;
    std::uint16_t key;
    bool handed;
    bool drop;  // handed over, and the session has it: the outbox copy goes
    mqtt::Bytes packet;
    std::uint32_t slot;
  };

  class OutboxVisitor final : public mqtt::SessionStoreVisitor {
   public:
    OutboxVisitor(Impl& impl, OutboxEntry* entries) : impl_(impl), entries_(entries) {}
    mqtt::Result<void> on_meta(const mqtt::SessionMeta&) noexcept override { return {}; }
    mqtt::Result<void> on_publish(const mqtt::StoredPublish& p) noexcept override {
      // The key is the slot the message had (index + 1); its packet is the slot's content.
      auto d = mqtt::decode(p.packet, p.version);
      const auto* m = d ? std::get_if<mqtt::Publish>(&*d) : nullptr;
      const bool other_version = m != nullptr && p.version != impl_.options.version;
      if (m == nullptr || m->qos == mqtt::QoS::AtMostOnce || m->packet_id != p.packet_id ||
          other_version) {
        // Its checksum was valid, so the bytes are what was written: kept aside, reported.
        EDGEKIT_TRY(impl_.persistence.outbox->set_aside_publish(p.packet_id));
        mqtt::UnrestorableRecord u;
        u.packet_id = p.packet_id;
        u.cause = !d              ? d.error()
                  : other_version ? mqtt::Errc::UnsupportedProtocolVersion
                                  : mqtt::Errc::MalformedPacket;
        impl_.report_unrestorable(u, kOutboxName);
        return {};
      }
      // Counted to the end, then refused: none is left behind.
      if (p.packet.size() > impl_.config.slot_size) ++too_large;
      if (count == impl_.config.command_slots) {
        ++too_many;
        return {};
      }
      OutboxEntry& e = entries_[count++];
      e.key = p.packet_id;
      e.handed = p.state == mqtt::StoredPublishState::AwaitPubComp;
      e.sequence = p.sequence;
      e.packet = p.packet;
      e.drop = false;
      e.slot = kNone;
      return {};
    }
    mqtt::Result<void> on_incoming_qos2(std::uint16_t) noexcept override { return {}; }
    mqtt::Result<void> on_corrupt(const mqtt::CorruptRecord& r) noexcept override {
      mqtt::UnrestorableRecord u;
      u.kind = r.kind;
      u.name = r.name;
      u.cause = r.error;
      impl_.report_unrestorable(u, kOutboxName);
      return {};
    }
    std::size_t count = 0;
    std::size_t too_many = 0;
    std::size_t too_large = 0;

   private:
    Impl& impl_;
    OutboxEntry* entries_;
  };

  bool session_has(std::uint16_t packet_id) const noexcept {
    for (std::size_t i = 0; i < config.inflight_records; ++i) {
      if (outgoing[i].state != mqtt::OutgoingState::Free && outgoing[i].packet_id == packet_id) {
        return true;
      }
    }
    return false;
  }

  static const char* load_failure(mqtt::Errc e, bool outbox) noexcept {
    switch (e) {
      case mqtt::Errc::SessionStateFull:
        return outbox ? "the outbox holds more messages than Config::command_slots"
                      : "the session store holds more publishes than Config::inflight_records, "
                        "or more inbound QoS 2 ids than Config::incoming_qos2";
      case mqtt::Errc::BufferTooSmall:
        return outbox ? "the outbox's records do not fit its load buffer"
                      : "the session store's records do not fit its load buffer";
      default:
        return outbox ? "the outbox could not be loaded" : "the session store could not be loaded";
    }
  }

  // False: refused (reported), nothing started. Runs before the intake opens, so no posting
  // thread touches the outbox yet: it is read without its mutex (the status handler, which may
  // call the agent, runs from inside the loads).
  bool restore() noexcept {
    if (persistence.session != nullptr) {
      SessionObserver observer(*this);
      auto r = session.restore(&observer);
      if (!r) {
        refuse_start(r.error(), load_failure(r.error(), false));
        return false;
      }
    }
    if (persistence.outbox == nullptr) return true;
    // Start-up only: the one allocation outside the constructor, freed before the first step.
    std::unique_ptr<OutboxEntry[]> entries(new OutboxEntry[config.command_slots]);
    OutboxVisitor v(*this, entries.get());
    auto loaded = persistence.outbox->load(v);
    if (!loaded) {
      refuse_start(loaded.error(), load_failure(loaded.error(), true));
      return false;
    }
    if (v.too_many != 0) {
      refuse_start(mqtt::Errc::SessionStateFull, load_failure(mqtt::Errc::SessionStateFull, true));
      return false;
    }
    if (v.too_large != 0) {
      refuse_start(mqtt::Errc::BufferTooSmall,
                   "an outbox message is larger than Config::slot_size");
      return false;
    }
    OutboxEntry* const first = entries.get();
    OutboxEntry* const last = first + v.count;
    std::sort(first, last,
              [](const OutboxEntry& a, const OutboxEntry& b) { return a.sequence < b.sequence; });
    // Slots first, then contents. An entry goes back into the slot of its key, so its record
    // keeps its name; one marked "handed to the session as packet id <sequence>" too (saved
    // again in place, which drops the mark). Only entries whose key is beyond this
    // configuration's slots move, into slots no stored entry is keyed to — so moving one never
    // replaces another's record (claiming in sequence order could: the free slot an entry moved
    // to could be the key of an entry not yet restored).
    for (OutboxEntry* e = first; e != last; ++e) {
      // Marked "handed to the session as packet id <sequence>", and the session has it.
      e->drop = e->handed && session_has(static_cast<std::uint16_t>(e->sequence));
      if (e->drop) {
        (void)persistence.outbox->remove_publish(e->key);
      } else if (e->key <= config.command_slots) {
        e->slot = pool.claim(e->key - 1u, mqtt::QoS::AtLeastOnce, true, false);
      }
    }
    // There are at least as many slots as entries (checked above), so every claim succeeds.
    for (OutboxEntry* e = first; e != last; ++e) {
      if (!e->drop && e->slot == kNone) {
        e->slot = pool.claim(kNone, mqtt::QoS::AtLeastOnce, true, false);
      }
    }
    // Claimed out of order: give the slots back their entries' order.
    std::unique_ptr<std::uint32_t[]> sequences(new std::uint32_t[config.command_slots]);
    std::size_t n = 0;
    for (OutboxEntry* e = first; e != last; ++e) {
      if (e->slot != kNone) sequences[n++] = pool[e->slot].sequence;
    }
    std::sort(sequences.get(), sequences.get() + n);
    n = 0;
    for (OutboxEntry* e = first; e != last; ++e) {
      if (e->slot == kNone) continue;
      const std::uint32_t i = e->slot;
      Slot& s = pool[i];
      s.sequence = sequences[n++];
      std::memcpy(data(i), e->packet.data(), e->packet.size());
      s.length = static_cast<std::uint32_t>(e->packet.size());
      mqtt::Publish p;
      (void)decode_slot(i, p);  // decoded once already, by the visitor
      pool.set_qos(i, p.qos);
      s.persisted = true;
      if (i + 1 != e->key || e->handed) {
        p.packet_id = static_cast<std::uint16_t>(i + 1);
        // Saved under its new key before the old record goes: a crash in between leaves two
        // copies (sent twice at worst), never none.
        if (persistence.outbox->save_publish(s.sequence, p, options.version) &&
            i + 1 != e->key) {
          (void)persistence.outbox->remove_publish(e->key);
        }
      }
      push_back(i);
    }
    return true;
  }
};

// --- AgentCore -----------------------------------------------------------------------------------

AgentCore::AgentCore(const Config& config, const mqtt::ConnectOptions& options,
                     TransportFactory& factory, Persistence persistence) noexcept
    : impl_(new Impl(config, options, factory, persistence)) {}

AgentCore::~AgentCore() = default;

void AgentCore::set_status_handler(StatusHandler handler) noexcept {
  impl_->status_handler = handler;
}

void AgentCore::set_wake(void (*function)(void*), void* context) noexcept {
  impl_->wake_function = function;
  impl_->wake_context = context;
}

bool AgentCore::start() noexcept {
  if (impl_->pool.intake() != Intake::NotStarted) return false;
  if (!impl_->restore()) return false;
  impl_->link = ConnectionState::Disconnected;
  impl_->pool.set_state(ConnectionState::Connecting);  // what callers see until the first attempt
  impl_->pool.open();
  return true;
}

Result<void> AgentCore::publish(const mqtt::Publish& message, CompletionHandler done) noexcept {
  EDGEKIT_TRY(post_publish(message, done, false, {}));
  return {};
}

Result<void> AgentCore::subscribe(std::string_view filter, mqtt::SubscribeOptions options,
                                  MessageHandler handler, CompletionHandler done) noexcept {
  EDGEKIT_TRY(post_subscribe(filter, options, handler, done, false));
  return {};
}

Result<void> AgentCore::unsubscribe(std::string_view filter, CompletionHandler done) noexcept {
  EDGEKIT_TRY(post_unsubscribe(filter, done, false));
  return {};
}

Result<void> AgentCore::disconnect(CompletionHandler done) noexcept {
  EDGEKIT_TRY(post_disconnect(done, false));
  return {};
}

Result<void> AgentCore::expect_response(std::string_view correlation, Duration timeout,
                                        ResponseHandler handler) noexcept {
  if (correlation.empty() || correlation.size() > impl_->config.max_correlation_length ||
      correlation.size() > impl_->config.slot_size) {
    return fail(Error{Errc::InvalidArgument});
  }
  auto i = impl_->pool.take(Kind::Expect, mqtt::QoS::AtMostOnce, {});
  if (!i) return fail(i.error());
  Slot& s = impl_->pool[*i];
  std::memcpy(impl_->data(*i), correlation.data(), correlation.size());
  s.length = static_cast<std::uint32_t>(correlation.size());
  s.timeout = timeout;
  s.response = handler;
  EDGEKIT_TRY(impl_->post(*i, {}, false));
  return {};
}

bool AgentCore::deliver_response(std::string_view correlation,
                                 const mqtt::Publish& response) noexcept {
  return impl_->deliver_response(correlation, response);
}

void AgentCore::reconnect() noexcept {
  impl_->reconnect_requested.store(true);
  impl_->pool.leave_failed();
  if (impl_->wake_function != nullptr) impl_->wake_function(impl_->wake_context);
}

void AgentCore::step(Instant now) noexcept {
  impl_->step(now);
}

std::optional<Instant> AgentCore::next_deadline() const noexcept {
  return impl_->next_deadline();
}

bool AgentCore::has_work() const noexcept {
  return impl_->batch_cut || (impl_->read_cut && impl_->transport != nullptr) ||
         impl_->pool.has_queued() || impl_->reconnect_requested.load();
}

transport::Transport* AgentCore::transport() noexcept {
  return impl_->transport;
}

int AgentCore::poll_handle() const noexcept {
  return impl_->transport != nullptr ? impl_->handle : -1;
}

bool AgentCore::wants_write() const noexcept {
  return impl_->transport != nullptr && impl_->write_stalled_since.has_value();
}

std::size_t AgentCore::read_low_water() const noexcept {
  return impl_->read_low_water();
}

void AgentCore::stop() noexcept {
  impl_->stop();
}

bool AgentCore::in_handler() const noexcept {
  return impl_->handler_depth > 0;
}

Result<AgentCore::Ticket> AgentCore::post_publish(const mqtt::Publish& message,
                                                  CompletionHandler done, bool waiter,
                                                  const Admission& admission) noexcept {
  auto i = impl_->prepare_publish(message, admission);
  if (!i) return fail(i.error());
  return impl_->post(*i, done, waiter);
}

Result<AgentCore::Ticket> AgentCore::post_subscribe(std::string_view filter,
                                                    mqtt::SubscribeOptions options,
                                                    MessageHandler handler, CompletionHandler done,
                                                    bool waiter) noexcept {
  auto i = impl_->prepare_filter(Kind::Subscribe, filter, options, handler);
  if (!i) return fail(i.error());
  return impl_->post(*i, done, waiter);
}

Result<AgentCore::Ticket> AgentCore::post_unsubscribe(std::string_view filter,
                                                      CompletionHandler done,
                                                      bool waiter) noexcept {
  auto i = impl_->prepare_filter(Kind::Unsubscribe, filter, {}, {});
  if (!i) return fail(i.error());
  return impl_->post(*i, done, waiter);
}

Result<AgentCore::Ticket> AgentCore::post_disconnect(CompletionHandler done, bool waiter) noexcept {
  auto i = impl_->pool.take(Kind::Disconnect, mqtt::QoS::AtMostOnce, {});
  if (!i) return fail(i.error());
  return impl_->post(*i, done, waiter);
}

Result<Outcome> AgentCore::wait_outcome(Ticket ticket, const Clock& clock,
                                        Instant deadline) noexcept {
  return impl_->pool.wait_outcome(ticket, clock, deadline);
}

ConnectionState AgentCore::state() const noexcept {
  return impl_->pool.state();
}

Stats AgentCore::stats() const noexcept {
  Stats s;
  s.writes = impl_->writes.load(std::memory_order_relaxed);
  s.reads = impl_->reads.load(std::memory_order_relaxed);
  s.published = impl_->published.load(std::memory_order_relaxed);
  s.batches = impl_->batches.load(std::memory_order_relaxed);
  s.connects = impl_->connects.load(std::memory_order_relaxed);
  s.requeued = impl_->requeued_total.load(std::memory_order_relaxed);
  s.uncertain = impl_->uncertain_total.load(std::memory_order_relaxed);
  return s;
}

}  // namespace edgekit::agent
