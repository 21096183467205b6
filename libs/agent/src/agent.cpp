// The agent: command slots shared with the callers, and the agent thread that owns the Client.
//
// Slot life: a caller takes a free slot (pool mutex), copies its command in and queues the slot's
// index (command queue). The agent thread moves it to its private pending FIFO, carries it out in
// order and completes it (handler call, or wakes the waiting caller). A QoS 1/2 publish stays in
// its slot until PUBACK / PUBCOMP, because the session keeps views of it for resends.
#include "edgekit/agent/agent.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "batching_transport.hpp"
#include "edgekit/mqtt/codec.hpp"
#include "edgekit/transport/tcp.hpp"

namespace edgekit::agent {

namespace {

constexpr std::uint32_t kNone = 0xFFFF'FFFFu;

enum class Kind : std::uint8_t { Free, Publish, Subscribe, Unsubscribe, Disconnect };
enum class Where : std::uint8_t { Free, Queued, Pending, Sent };

struct Slot {
  Kind kind = Kind::Free;
  Where where = Where::Free;
  bool waiting = false;    // a caller waits (`*_and_wait`)
  bool done = false;       // outcome ready for the waiting caller
  bool abandoned = false;  // the waiting caller timed out: free the slot on completion
  bool dropped = false;    // DropOldestQoS0 chose it
  bool persisted = false;  // in the outbox under key index + 1
  bool counted = false;    // counts against the offline limit (publish not yet in the session)
  std::uint16_t packet_id = 0;
  std::uint32_t sequence = 0;
  std::uint32_t next = kNone;  // pending FIFO link
  CompletionHandler handler{};
  Outcome outcome{};
  os::Event event;
  std::byte* data = nullptr;
  std::size_t length = 0;
  mqtt::Publish publish{};
  std::string_view filter{};
  mqtt::SubscribeOptions options{};
  MessageHandler message_handler{};
  // Agent thread only: what a subscribe in flight replaced, restored if it fails.
  bool existed = false;  // the route was there before (else it is freed again)
  MessageHandler old_handler{};
  mqtt::SubscribeOptions old_options{};
};

struct Route {
  bool used = false;
  bool active = false;  // SUBACK granted
  // Granted once, but the broker lost the session and has not granted it again yet: made again
  // on the next connection, whatever its session_present.
  bool resubscribe = false;
  std::uint32_t id = 0;  // subscription identifier (MQTT 5): index + 1
  char* filter = nullptr;
  std::size_t filter_length = 0;
  mqtt::SubscribeOptions options{};
  MessageHandler handler{};
  // The SUBSCRIBE / UNSUBSCRIBE outstanding for this filter (at most one: see carry_out), its
  // command's slot (kNone: a resubscription of the agent's own) and when it is given up.
  std::uint16_t request_id = 0;
  std::uint32_t request_slot = kNone;
  Instant request_deadline{};
  [[nodiscard]] std::string_view view() const noexcept { return {filter, filter_length}; }
};

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
  const auto v = static_cast<std::uint8_t>(e);
  return (v > 0 && v < 40) || e == mqtt::Errc::ProtocolError ||
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
  std::uint16_t handing_key = 0;   // outbox key of the publish being handed over
  std::uint16_t saved_id = 0;      // packet id of the last publish saved

  mqtt::Result<void> save_publish(std::uint32_t sequence, const mqtt::Publish& publish,
                                  mqtt::Version version) noexcept override {
    if (handing_key != 0 && outbox != nullptr) {
      os::LockGuard l(*outbox_mutex);
      EDGEKIT_TRY(outbox->mark_publish_released(handing_key, publish.packet_id));
    }
    if (inner != nullptr) EDGEKIT_TRY(inner->save_publish(sequence, publish, version));
    saved_id = publish.packet_id;
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
};

}  // namespace

const char* to_string(Errc e) noexcept {
  switch (e) {
    case Errc::Ok: return "Ok";
    case Errc::QueueFull: return "QueueFull";
    case Errc::OfflineQueueFull: return "OfflineQueueFull";
    case Errc::Dropped: return "Dropped";
    case Errc::MessageTooLarge: return "MessageTooLarge";
    case Errc::Rejected: return "Rejected";
    case Errc::Stopped: return "Stopped";
    case Errc::PermanentFailure: return "PermanentFailure";
    case Errc::Timeout: return "Timeout";
    case Errc::WouldDeadlock: return "WouldDeadlock";
    case Errc::NotSubscribed: return "NotSubscribed";
    case Errc::RouterFull: return "RouterFull";
    case Errc::InvalidArgument: return "InvalidArgument";
    case Errc::PersistenceFailed: return "PersistenceFailed";
    case Errc::Lost: return "Lost";
    case Errc::NotStarted: return "NotStarted";
    case Errc::DeliveryUncertain: return "DeliveryUncertain";
  }
  return "?";
}

// --- TCP factory ---------------------------------------------------------------------------------

struct TcpTransportFactory::Impl {
  char host[254] = {};
  std::uint32_t timeout_ms = 5000;
  transport::TcpTransport tcp;
};

TcpTransportFactory::TcpTransportFactory(std::string_view host, std::uint16_t port,
                                         std::uint32_t timeout_ms) noexcept
    : impl_(new Impl), port_(port) {
  const std::size_t n = std::min(host.size(), sizeof impl_->host - 1);
  std::memcpy(impl_->host, host.data(), n);
  impl_->timeout_ms = timeout_ms;
}

TcpTransportFactory::~TcpTransportFactory() = default;

edgekit::Result<TransportConnection, TransportFailure> TcpTransportFactory::connect() noexcept {
  impl_->tcp.close();
  auto r = transport::TcpTransport::connect(impl_->host, port_.load(), impl_->timeout_ms);
  if (!r) {
    TransportFailure f;
    f.system_error = r.error().system_error;
    f.detail = r.error().detail;
    switch (r.error().code) {
      case transport::TcpErrc::HostNotFound:
        f.error = mqtt::Errc::HostNotFound;
        break;
      case transport::TcpErrc::InvalidArgument:
        f.error = mqtt::Errc::ConnectFailed;
        f.permanent = true;
        break;
      case transport::TcpErrc::Timeout:
        f.error = mqtt::Errc::Timeout;
        break;
      default:
        f.error = mqtt::Errc::ConnectFailed;
        break;
    }
    return fail(f);
  }
  impl_->tcp = std::move(*r);
  return TransportConnection{&impl_->tcp, impl_->tcp.native_handle()};
}

// --- The agent's state ---------------------------------------------------------------------------

struct Agent::Impl {
  Impl(Agent& self, const Config& c, const mqtt::ConnectOptions& o, TransportFactory& f,
       const Clock& clk, Persistence p)
      : agent(self),
        config(c),
        options(o),
        factory(f),
        clock(clk),
        persistence(p),
        slots(new Slot[c.command_slots]),
        slot_data(new std::byte[c.command_slots * c.slot_size]),
        free_list(new std::uint32_t[c.command_slots]),
        commands(c.command_slots),
        routes(new Route[c.max_subscriptions]),
        route_chars(new char[c.max_subscriptions * c.max_filter_length]),
        outgoing(new mqtt::OutgoingRecord[c.inflight_records]),
        incoming_qos2(new std::uint16_t[c.incoming_qos2]),
        client_id(new char[256]),
        rx(new std::byte[c.receive_buffer_size]),
        tx(new std::byte[c.send_buffer_size]),
        sent_id(new std::uint16_t[c.command_slots]()),
        lost(new std::uint32_t[c.command_slots]),
        random(c.jitter_seed),
        backoff(c.reconnect_backoff, random),
        link(c.batch_buffer_size, clk) {
    for (std::size_t i = 0; i < c.command_slots; ++i) {
      slots[i].data = slot_data.get() + i * c.slot_size;
      free_list[i] = static_cast<std::uint32_t>(c.command_slots - 1 - i);
    }
    free_count = c.command_slots;
    for (std::size_t i = 0; i < c.max_subscriptions; ++i) {
      routes[i].filter = route_chars.get() + i * c.max_filter_length;
      routes[i].id = static_cast<std::uint32_t>(i + 1);
    }
    tap.inner = p.session;
    tap.outbox = p.outbox;
    tap.outbox_mutex = &outbox_mutex;
    mqtt::SessionStorage st;
    st.outgoing = {outgoing.get(), c.inflight_records};
    st.incoming_qos2 = {incoming_qos2.get(), c.incoming_qos2};
    st.client_id = {client_id.get(), 256};
    session.emplace(st, &tap);
    link.set_send_timeout(c.send_timeout);
    client.emplace(link, clk, *session, mqtt::MutableBytes(rx.get(), c.receive_buffer_size),
                   mqtt::MutableBytes(tx.get(), c.send_buffer_size),
                   mqtt::EventHandler(&Impl::on_client_event, this));
  }

  Agent& agent;
  Config config;
  mqtt::ConnectOptions options;
  TransportFactory& factory;
  const Clock& clock;
  Persistence persistence;

  // Shared with the callers (pool_mutex).
  os::Mutex pool_mutex;
  std::unique_ptr<Slot[]> slots;
  std::unique_ptr<std::byte[]> slot_data;
  std::unique_ptr<std::uint32_t[]> free_list;
  std::size_t free_count = 0;
  std::size_t offline_count = 0;  // publishes not yet in the session
  std::uint32_t next_sequence = 1;
  os::Queue<std::uint32_t> commands;
  os::Wakeup wakeup;
  os::Thread thread;
  os::Mutex outbox_mutex;
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> reconnect_requested{false};
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};

  // Agent thread only.
  std::unique_ptr<Route[]> routes;
  std::unique_ptr<char[]> route_chars;
  std::unique_ptr<mqtt::OutgoingRecord[]> outgoing;
  std::unique_ptr<std::uint16_t[]> incoming_qos2;
  std::unique_ptr<char[]> client_id;
  std::unique_ptr<std::byte[]> rx;
  std::unique_ptr<std::byte[]> tx;
  std::unique_ptr<std::uint16_t[]> sent_id;  // per slot: packet id while in the session, else 0
  std::unique_ptr<std::uint32_t[]> lost;  // slots whose publish the broker forgot (this connect)
  std::size_t lost_count = 0;
  std::size_t lost_unrecoverable = 0;
  std::size_t lost_uncertain = 0;  // QoS 2 accepted by the broker, not resent (this connect)
  StoreTap tap;
  std::optional<mqtt::Session> session;
  std::optional<mqtt::Client> client;
  backoff::SplitMix64 random;
  backoff::Backoff backoff;
  detail::BatchingTransport link;
  std::uint32_t pending_head = kNone;
  std::uint32_t pending_tail = kNone;
  bool ever_connected = false;
  bool use_subscription_ids = false;
  bool closed_by_app = false;
  bool failed = false;
  std::uint32_t failures = 0;
  Instant next_attempt{};
  mqtt::ReasonCode last_server_reason = mqtt::ReasonCode::Success;
  std::size_t requests_in_flight = 0;  // routes with a request_id
  // The status report of the last connect, held back until its resubscriptions are answered
  // (or the link drops, or the agent stops).
  bool report_pending = false;
  bool report_present = false;      // CONNACK session_present
  bool report_first = false;        // the first connection since start / reconnect()
  std::size_t report_wanted = 0;    // routes flagged for resubscription at the CONNACK
  std::size_t resubscribes_outstanding = 0;
  Status report{};

  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> connects{0};
  std::atomic<std::uint64_t> requeued_total{0};
  std::atomic<std::uint64_t> uncertain_total{0};

  // --- Caller side -----------------------------------------------------------------------------

  Result<std::uint32_t> take_slot(Kind kind, bool is_publish, mqtt::QoS qos) noexcept {
    if (!started.load()) return fail(Error{Errc::NotStarted});
    if (stop_requested.load()) return fail(Error{Errc::Stopped});
    const ConnectionState st = agent.state_.load();
    if (st == ConnectionState::Failed) return fail(Error{Errc::PermanentFailure});
    os::LockGuard l(pool_mutex);
    if (is_publish && st != ConnectionState::Connected &&
        offline_count >= config.offline_queue_limit) {
      bool made_room = false;
      if (config.offline_policy == OfflinePolicy::DropOldestQoS0) {
        Slot* oldest = nullptr;
        for (std::size_t i = 0; i < config.command_slots; ++i) {
          Slot& s = slots[i];
          if (s.kind == Kind::Publish && s.counted && !s.dropped &&
              s.publish.qos == mqtt::QoS::AtMostOnce &&
              (s.where == Where::Queued || s.where == Where::Pending) &&
              (oldest == nullptr || s.sequence < oldest->sequence)) {
            oldest = &s;
          }
        }
        if (oldest != nullptr) {
          oldest->dropped = true;
          oldest->counted = false;
          --offline_count;
          made_room = true;
        }
      }
      (void)qos;
      if (!made_room) return fail(Error{Errc::OfflineQueueFull});
    }
    if (free_count == 0) return fail(Error{Errc::QueueFull});
    const std::uint32_t i = free_list[--free_count];
    Slot& s = slots[i];
    s.kind = kind;
    s.where = Where::Queued;
    s.waiting = s.done = s.abandoned = s.dropped = s.persisted = false;
    s.counted = is_publish;
    if (is_publish) ++offline_count;
    s.packet_id = 0;
    s.sequence = next_sequence++;
    s.next = kNone;
    s.handler = {};
    s.outcome = {};
    s.length = 0;
    (void)s.event.wait(Duration{0});  // clear a stale signal
    return i;
  }

  void release_slot_locked(std::uint32_t i) noexcept {
    Slot& s = slots[i];
    if (s.counted) {
      s.counted = false;
      --offline_count;
    }
    s.kind = Kind::Free;
    s.where = Where::Free;
    free_list[free_count++] = i;
  }

  void give_back(std::uint32_t i) noexcept {
    os::LockGuard l(pool_mutex);
    release_slot_locked(i);
  }

  Result<void> enqueue(std::uint32_t i, CompletionHandler done, bool waiting) noexcept {
    {
      os::LockGuard l(pool_mutex);
      slots[i].handler = done;
      slots[i].waiting = waiting;
    }
    if (!commands.try_push(i)) {  // cannot happen: the queue holds every slot
      give_back(i);
      return fail(Error{Errc::QueueFull});
    }
    wakeup.wake();
    return {};
  }

  Result<Outcome> wait_for(std::uint32_t i, Duration timeout) noexcept {
    const Instant deadline = clock.now() + timeout;
    Slot& s = slots[i];
    for (;;) {
      {
        os::LockGuard l(pool_mutex);
        if (s.done) {
          const Outcome o = s.outcome;
          release_slot_locked(i);
          return o;
        }
        const Instant now = clock.now();
        if (now >= deadline) {
          s.waiting = false;
          s.abandoned = true;
          return fail(Error{Errc::Timeout});
        }
      }
      (void)s.event.wait(deadline - clock.now());
    }
  }

  // Copies a publish into slot `i` as an encoded packet and points s.publish into it.
  Result<void> store_publish(std::uint32_t i, const mqtt::Publish& message) noexcept {
    Slot& s = slots[i];
    mqtt::Publish p = message;
    p.dup = false;
    p.packet_id = p.qos == mqtt::QoS::AtMostOnce ? 0 : static_cast<std::uint16_t>(i + 1);
    const mqtt::MutableBytes out(s.data, config.slot_size);
    auto n = mqtt::encode(p, options.version, out);
    if (!n) {
      if (n.error() == mqtt::Errc::BufferTooSmall) return fail(Error{Errc::MessageTooLarge});
      return fail(Error{Errc::Rejected, n.error()});
    }
    s.length = *n;
    auto d = mqtt::decode(mqtt::Bytes(s.data, s.length), options.version);
    if (!d) return fail(Error{Errc::Rejected, d.error()});
    s.publish = *std::get_if<mqtt::Publish>(&*d);
    return {};
  }

  Result<std::uint32_t> prepare_publish(const mqtt::Publish& message) noexcept {
    auto slot = take_slot(Kind::Publish, true, message.qos);
    if (!slot) return fail(slot.error());
    const std::uint32_t i = *slot;
    if (auto r = store_publish(i, message); !r) {
      give_back(i);
      return fail(r.error());
    }
    if (persistence.outbox != nullptr && message.qos != mqtt::QoS::AtMostOnce) {
      os::LockGuard l(outbox_mutex);
      if (!persistence.outbox->save_publish(slots[i].sequence, slots[i].publish, options.version)) {
        give_back(i);
        return fail(Error{Errc::PersistenceFailed});
      }
      slots[i].persisted = true;
    }
    return i;
  }

  Result<std::uint32_t> prepare_filter(Kind kind, std::string_view filter,
                                       mqtt::SubscribeOptions options_,
                                       MessageHandler handler) noexcept {
    if (filter.size() > config.max_filter_length || filter.size() > config.slot_size) {
      return fail(Error{Errc::InvalidArgument});
    }
    if (auto v = mqtt::validate_topic_filter(filter); !v) return fail(Error{Errc::Rejected, v.error()});
    auto slot = take_slot(kind, false, mqtt::QoS::AtMostOnce);
    if (!slot) return fail(slot.error());
    Slot& s = slots[*slot];
    std::memcpy(s.data, filter.data(), filter.size());
    s.length = filter.size();
    s.filter = std::string_view(reinterpret_cast<const char*>(s.data), filter.size());
    s.options = options_;
    s.message_handler = handler;
    return *slot;
  }

  // --- Agent thread: completing ------------------------------------------------------------------

  void complete(std::uint32_t i, const Outcome& o) noexcept {
    Slot& s = slots[i];
    CompletionHandler h{};
    bool notify = false;
    {
      os::LockGuard l(pool_mutex);
      if (s.waiting) {
        s.outcome = o;
        s.done = true;
        s.where = Where::Free;
        if (s.counted) {
          s.counted = false;
          --offline_count;
        }
        notify = true;
      } else {
        h = s.handler;
        release_slot_locked(i);
      }
    }
    if (notify) s.event.set();
    if (h.function != nullptr) h.function(h.context, o);
  }

  void complete_error(std::uint32_t i, Errc e, mqtt::Errc m = mqtt::Errc::Ok) noexcept {
    Outcome o;
    o.error = e;
    o.mqtt = m;
    complete(i, o);
  }

  void outbox_remove(std::uint32_t i) noexcept {
    Slot& s = slots[i];
    if (!s.persisted || persistence.outbox == nullptr) return;
    os::LockGuard l(outbox_mutex);
    (void)persistence.outbox->remove_publish(static_cast<std::uint16_t>(i + 1));
    s.persisted = false;
  }

  void status(const Status& st) noexcept {
    agent.state_.store(st.state);
    if (agent.status_handler_.function != nullptr) {
      agent.status_handler_.function(agent.status_handler_.context, st);
    }
  }

  // --- Agent thread: the pending FIFO ------------------------------------------------------------

  void push_back(std::uint32_t i) noexcept {
    slots[i].next = kNone;
    if (pending_tail == kNone) pending_head = i;
    else slots[pending_tail].next = i;
    pending_tail = i;
  }
  void push_front(std::uint32_t i) noexcept {
    slots[i].next = pending_head;
    pending_head = i;
    if (pending_tail == kNone) pending_tail = i;
  }
  std::uint32_t pop_front() noexcept {
    const std::uint32_t i = pending_head;
    if (i == kNone) return kNone;
    pending_head = slots[i].next;
    if (pending_head == kNone) pending_tail = kNone;
    slots[i].next = kNone;
    return i;
  }

  std::size_t take_commands() noexcept {
    std::size_t n = 0;
    std::uint32_t i = 0;
    while (n < config.command_slots && commands.try_pop(i)) {
      {
        os::LockGuard l(pool_mutex);
        slots[i].where = Where::Pending;
      }
      push_back(i);
      ++n;
    }
    return n;
  }

  // --- Agent thread: routing ---------------------------------------------------------------------

  static void on_client_event(void* ctx, mqtt::Client&, const mqtt::Event& e) noexcept {
    static_cast<Impl*>(ctx)->on_event(e);
  }

  // Slot fields may change under the pool mutex when a slot is free; the agent thread keeps its
  // own map of the slots it has handed to the session, so acks are matched without the lock.
  Slot* find_sent(std::uint16_t packet_id, std::uint32_t* index) noexcept {
    if (packet_id == 0) return nullptr;
    for (std::size_t i = 0; i < config.command_slots; ++i) {
      if (sent_id[i] == packet_id) {
        sent_id[i] = 0;
        if (index != nullptr) *index = static_cast<std::uint32_t>(i);
        return &slots[i];
      }
    }
    return nullptr;
  }

  void on_event(const mqtt::Event& e) noexcept {
    switch (e.type) {
      case mqtt::EventType::MessageReceived:
        if (e.message != nullptr) route(*e.message);
        break;
      case mqtt::EventType::PublishCompleted: {
        std::uint32_t i = 0;
        if (find_sent(e.packet_id, &i) != nullptr) {
          Outcome o;
          o.reason_code = e.reason_code;
          o.packet_id = e.packet_id;
          complete(i, o);
        }
        break;
      }
      case mqtt::EventType::MessageLost: {
        // A QoS 2 message the broker accepted (PUBREC) may have been delivered already: resending
        // it could deliver it twice, so by default the caller is told instead (see
        // UncertainQoS2Policy). The session has forgotten the record (and removed it from its
        // store), so after a restart it does not come back either.
        const bool uncertain = e.pubrec_received &&
                               config.uncertain_qos2 == UncertainQoS2Policy::ReportUncertain;
        std::uint32_t i = 0;
        if (find_sent(e.packet_id, &i) != nullptr) {
          if (uncertain) {
            ++lost_uncertain;
            uncertain_total.fetch_add(1, std::memory_order_relaxed);
            outbox_remove(i);
            Outcome o;
            o.error = Errc::DeliveryUncertain;
            o.packet_id = e.packet_id;
            complete(i, o);
          } else {
            lost[lost_count++] = i;
          }
        } else if (uncertain) {
          // A record restored after a restart: nobody waits for it; it is counted (status, stats).
          ++lost_uncertain;
          uncertain_total.fetch_add(1, std::memory_order_relaxed);
        } else if (e.message != nullptr) {
          // A restored record (no slot): copy it into a free slot so it is sent again.
          Result<std::uint32_t> slot = fail(Error{Errc::QueueFull});
          {
            os::LockGuard l(pool_mutex);
            if (free_count > 0) {
              const std::uint32_t j = free_list[--free_count];
              Slot& s = slots[j];
              s.kind = Kind::Publish;
              s.where = Where::Pending;
              s.waiting = s.done = s.abandoned = s.dropped = s.persisted = s.counted = false;
              s.sequence = 0;
              s.handler = {};
              slot = j;
            }
          }
          if (slot && store_publish(*slot, *e.message)) {
            lost[lost_count++] = *slot;
          } else {
            if (slot) give_back(*slot);
            ++lost_unrecoverable;
          }
        }
        break;
      }
      case mqtt::EventType::ServerDisconnected:
        last_server_reason = e.reason_code;
        break;
      case mqtt::EventType::ConnectionClosed:
      // The blocking client consumes these itself (its connect and ping calls return them).
      case mqtt::EventType::Connected:
      case mqtt::EventType::ConnectFailed:
      case mqtt::EventType::PingResponse:
        break;
      case mqtt::EventType::SubscribeCompleted:
      case mqtt::EventType::UnsubscribeCompleted:
        // Unknown id: a request given up after operation_timeout; nobody waits for it.
        if (Route* r = find_request(e.packet_id)) {
          finish_request(*r, e.error == mqtt::Errc::Ok ? Finish::Acked : Finish::Lost,
                         e.reason_codes);
        }
        break;
    }
  }

  void route(const mqtt::Publish& m) noexcept {
    bool delivered = false;
    if (use_subscription_ids) {
      for (std::uint32_t id : m.properties.subscription_identifiers) {
        if (id == 0 || id > config.max_subscriptions) continue;
        Route& r = routes[id - 1];
        if (r.used && r.handler.function != nullptr) {
          r.handler.function(r.handler.context, m);
          delivered = true;
        }
      }
    }
    if (delivered) return;
    // No identifier (3.1.1, or a server without them): match the filters. The router table may
    // change during a handler call only through the queue, never directly, so iterating is safe.
    for (std::size_t i = 0; i < config.max_subscriptions; ++i) {
      Route& r = routes[i];
      if (r.used && r.handler.function != nullptr && mqtt::topic_matches(r.view(), m.topic)) {
        r.handler.function(r.handler.context, m);
      }
    }
  }

  Route* find_route(std::string_view filter) noexcept {
    for (std::size_t i = 0; i < config.max_subscriptions; ++i) {
      if (routes[i].used && routes[i].view() == filter) return &routes[i];
    }
    return nullptr;
  }

  // --- Agent thread: carrying out commands -------------------------------------------------------

  // Sends one SUBSCRIBE for route `r` without waiting; returns its packet id. The SUBACK comes
  // back as an event (finish_request).
  mqtt::Result<std::uint16_t> send_subscribe(Route& r) noexcept {
    mqtt::Subscription sub{r.view(), r.options};
    mqtt::Properties props;
    std::uint32_t ids[1] = {r.id};
    if (use_subscription_ids) props.subscription_identifiers = ids;
    return client->subscribe_async({&sub, 1}, config.send_timeout, props);
  }

  // --- Agent thread: outstanding SUBSCRIBE / UNSUBSCRIBE -----------------------------------------

  enum class Step : std::uint8_t { Done, Blocked, LinkDown };

  void begin_request(Route& r, std::uint16_t packet_id, std::uint32_t slot) noexcept {
    r.request_id = packet_id;
    r.request_slot = slot;
    r.request_deadline = clock.now() + config.operation_timeout;
    ++requests_in_flight;
    if (slot != kNone) {
      os::LockGuard l(pool_mutex);
      slots[slot].where = Where::Sent;
    }
  }

  Route* find_request(std::uint16_t packet_id) noexcept {
    if (packet_id == 0) return nullptr;
    for (std::size_t k = 0; k < config.max_subscriptions; ++k) {
      if (routes[k].request_id == packet_id) return &routes[k];
    }
    return nullptr;
  }

  // A subscribe that did not take: the route as it was before.
  static void rollback(Route& r, const Slot& s) noexcept {
    if (!s.existed) {
      r.used = false;
      r.active = false;
      r.handler = {};
    } else {
      r.handler = s.old_handler;
      r.options = s.old_options;
    }
  }

  enum class Finish : std::uint8_t { Acked, Lost, TimedOut };

  // Ends the request outstanding on `r`: acknowledged (`codes` are the ack's), lost with the
  // connection (the command goes back to the queue, in order, when the link-down is handled), or
  // given up after operation_timeout (as the blocking call did: Rejected with Timeout).
  void finish_request(Route& r, Finish how, mqtt::ReasonCodes codes) noexcept {
    const std::uint32_t i = r.request_slot;
    r.request_id = 0;
    r.request_slot = kNone;
    --requests_in_flight;
    if (i == kNone) {
      // A resubscription after a lost session. Lost or unanswered: the route stays flagged and
      // is made again on the next connection (the report counts it as pending).
      if (how == Finish::Acked) {
        r.resubscribe = false;
        if (codes.size() == 1 && !mqtt::is_error(codes[0])) ++report.resubscribed;
        else r.active = false;
      }
      --resubscribes_outstanding;
      if (resubscribes_outstanding == 0 && report_pending && client->connected()) send_report();
      return;
    }
    Slot& s = slots[i];
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
      r.used = false;
      r.active = false;
      r.resubscribe = false;
      r.handler = {};
    } else if (mqtt::is_error(o.reason_code)) {
      rollback(r, s);
    } else {
      r.active = true;
      r.resubscribe = false;
    }
    complete(i, o);
  }

  // Requests without an answer after operation_timeout.
  void expire_requests() noexcept {
    if (requests_in_flight == 0) return;
    const Instant now = clock.now();
    for (std::size_t k = 0; k < config.max_subscriptions; ++k) {
      Route& r = routes[k];
      if (r.request_id != 0 && now >= r.request_deadline) finish_request(r, Finish::TimedOut, {});
    }
  }

  std::optional<Instant> next_request_deadline() const noexcept {
    std::optional<Instant> out;
    if (requests_in_flight == 0) return out;
    for (std::size_t k = 0; k < config.max_subscriptions; ++k) {
      const Route& r = routes[k];
      if (r.request_id != 0 && (!out || r.request_deadline < *out)) out = r.request_deadline;
    }
    return out;
  }

  // subscribe_async / unsubscribe_async refused command `i`.
  Step request_failed(std::uint32_t i, Route& r, mqtt::Errc error) noexcept {
    if (slots[i].kind == Kind::Subscribe) rollback(r, slots[i]);
    if (error == mqtt::Errc::NoPacketIdAvailable || error == mqtt::Errc::SessionStateFull) {
      // Every session record is in use: wait for an acknowledgement, as a publish does.
      push_front(i);
      return Step::Blocked;
    }
    if (!client->connected()) {
      push_front(i);
      return Step::LinkDown;
    }
    complete_error(i, Errc::Rejected, error);
    return Step::Done;
  }

  Step carry_out(std::uint32_t i) noexcept {
    Slot& s = slots[i];
    bool dropped = false;
    {
      os::LockGuard l(pool_mutex);
      dropped = s.dropped;
    }
    if (dropped) {
      outbox_remove(i);
      complete_error(i, Errc::Dropped);
      return Step::Done;
    }
    switch (s.kind) {
      case Kind::Publish: {
        tap.handing_key = s.persisted ? static_cast<std::uint16_t>(i + 1) : 0;
        tap.saved_id = 0;
        mqtt::Publish p = s.publish;
        auto r = client->publish(p, config.send_timeout);
        tap.handing_key = 0;
        const bool recorded = s.publish.qos != mqtt::QoS::AtMostOnce && tap.saved_id != 0;
        if (recorded || r) {
          outbox_remove(i);
          {
            os::LockGuard l(pool_mutex);
            if (s.counted) {
              s.counted = false;
              --offline_count;
            }
            s.where = s.publish.qos == mqtt::QoS::AtMostOnce ? Where::Pending : Where::Sent;
          }
          published.fetch_add(1, std::memory_order_relaxed);
          if (s.publish.qos == mqtt::QoS::AtMostOnce) {
            Outcome o;
            if (!r) {
              o.error = Errc::Rejected;
              o.mqtt = r.error();
            }
            complete(i, o);
          } else {
            s.packet_id = r ? *r : tap.saved_id;
            sent_id[i] = s.packet_id;
          }
          return client->connected() ? Step::Done : Step::LinkDown;
        }
        switch (r.error()) {
          case mqtt::Errc::ReceiveMaximumExceeded:
          case mqtt::Errc::SessionStateFull:
          case mqtt::Errc::NoPacketIdAvailable:
            push_front(i);
            return Step::Blocked;
          case mqtt::Errc::NotConnected:
          case mqtt::Errc::Timeout:
          case mqtt::Errc::TransportClosed:
          case mqtt::Errc::TransportError:
            push_front(i);
            return Step::LinkDown;
          case mqtt::Errc::PersistenceFailed:
            outbox_remove(i);
            complete_error(i, Errc::PersistenceFailed, r.error());
            return Step::Done;
          default:
            outbox_remove(i);
            complete_error(i, Errc::Rejected, r.error());
            return client->connected() ? Step::Done : Step::LinkDown;
        }
      }
      case Kind::Subscribe: {
        Route* r = find_route(s.filter);
        // One request per filter at a time: a command on a filter whose SUBSCRIBE / UNSUBSCRIBE
        // is outstanding waits for that ack (what to roll back to depends on it).
        if (r != nullptr && r->request_id != 0) {
          push_front(i);
          return Step::Blocked;
        }
        s.existed = r != nullptr;
        if (r == nullptr) {
          for (std::size_t k = 0; k < config.max_subscriptions && r == nullptr; ++k) {
            if (!routes[k].used) r = &routes[k];
          }
          if (r == nullptr) {
            complete_error(i, Errc::RouterFull);
            return Step::Done;
          }
          std::memcpy(r->filter, s.filter.data(), s.filter.size());
          r->filter_length = s.filter.size();
          r->used = true;
          r->active = false;
          r->resubscribe = false;
        }
        // Installed before SUBSCRIBE goes out: retained messages may arrive right behind the
        // SUBACK, in the same read.
        s.old_handler = r->handler;
        s.old_options = r->options;
        r->handler = s.message_handler;
        r->options = s.options;
        // Not waiting for the SUBACK: the commands behind this one go on; finish_request
        // completes it (or requeues it if the link drops first).
        auto id = send_subscribe(*r);
        if (!id) return request_failed(i, *r, id.error());
        begin_request(*r, *id, i);
        return client->connected() ? Step::Done : Step::LinkDown;
      }
      case Kind::Unsubscribe: {
        Route* r = find_route(s.filter);
        if (r == nullptr) {
          complete_error(i, Errc::NotSubscribed);
          return Step::Done;
        }
        if (r->request_id != 0) {
          push_front(i);
          return Step::Blocked;
        }
        const std::string_view f = r->view();
        auto id = client->unsubscribe_async({&f, 1}, config.send_timeout);
        if (!id) return request_failed(i, *r, id.error());
        begin_request(*r, *id, i);
        return client->connected() ? Step::Done : Step::LinkDown;
      }
      case Kind::Disconnect: {
        // Behind every command queued before it, including the acks of those in flight.
        if (requests_in_flight > 0) {
          push_front(i);
          return Step::Blocked;
        }
        link.flush();
        auto res = client->disconnect();
        closed_by_app = true;
        Outcome o;
        if (!res) o.mqtt = res.error();
        Status st;
        st.state = ConnectionState::Closed;
        st.reason = StatusReason::Disconnected;
        status(st);
        complete(i, o);
        return Step::LinkDown;
      }
      case Kind::Free:
        break;
    }
    return Step::Done;
  }

  enum class Pump : std::uint8_t { Idle, More, Blocked, LinkDown };

  // Carries out pending commands in order until one has to wait or the batch is full.
  Pump pump() noexcept {
    std::size_t n = 0;
    Pump out = Pump::Idle;
    while (pending_head != kNone) {
      if (n == config.max_batch) {
        out = Pump::More;
        break;
      }
      const std::uint32_t i = pop_front();
      ++n;
      const Step st = carry_out(i);
      if (st == Step::Blocked) {
        out = Pump::Blocked;
        break;
      }
      if (st == Step::LinkDown) {
        out = Pump::LinkDown;
        break;
      }
    }
    if (n > 0) batches.fetch_add(1, std::memory_order_relaxed);
    return out;
  }

  // While not connected: complete what cannot wait (dropped publishes, disconnect), keep the
  // rest in order.
  void sweep_offline() noexcept {
    std::uint32_t keep_head = kNone, keep_tail = kNone;
    while (pending_head != kNone) {
      const std::uint32_t i = pop_front();
      Slot& s = slots[i];
      bool finish = false;
      bool dropped = false;
      {
        os::LockGuard l(pool_mutex);
        dropped = s.dropped;
      }
      if (dropped) {
        complete_error(i, Errc::Dropped);
        finish = true;
      } else if (s.kind == Kind::Disconnect) {
        closed_by_app = true;
        Status st;
        st.state = ConnectionState::Closed;
        st.reason = StatusReason::Disconnected;
        status(st);
        complete(i, Outcome{});
        finish = true;
      } else if (failed && !config.retry_permanent_failures) {
        outbox_remove(i);
        complete_error(i, Errc::PermanentFailure);
        finish = true;
      }
      if (finish) continue;
      s.next = kNone;
      if (keep_tail == kNone) keep_head = i;
      else slots[keep_tail].next = i;
      keep_tail = i;
    }
    pending_head = keep_head;
    pending_tail = keep_tail;
  }

  // --- Agent thread: connection keeping ----------------------------------------------------------

  void schedule_retry(Status st) noexcept {
    ++failures;
    st.attempts = failures;
    if (st.permanent && !config.retry_permanent_failures) {
      failed = true;
      st.state = ConnectionState::Failed;
      status(st);
      return;
    }
    st.permanent = false;
    const Duration d = backoff.next();
    next_attempt = clock.now() + d;
    st.state = ConnectionState::Disconnected;
    st.retry_in = d;
    status(st);
  }

  void attempt_connect() noexcept {
    Status st;
    st.state = ConnectionState::Connecting;
    st.reason = StatusReason::Connecting;
    st.attempts = failures;
    status(st);
    auto c = factory.connect();
    if (!c) {
      Status f;
      f.reason = StatusReason::Unreachable;
      f.error = c.error().error;
      f.system_error = c.error().system_error;
      f.detail = c.error().detail;
      f.permanent = c.error().permanent || c.error().error == mqtt::Errc::HostNotFound ||
                    (!ever_connected && failures + 1 >= config.initial_connect_attempts);
      schedule_retry(f);
      return;
    }
    link.attach(c->transport, c->poll_handle);
    mqtt::ConnectOptions o = options;
    if (ever_connected) o.clean_start = false;
    if (o.version == mqtt::Version::V5 && config.incoming_qos2 > 1) {
      // Announce half the inbound QoS 2 storage: after a resume the broker may send a full
      // Receive Maximum of new messages while ids of the last connection still await PUBREL.
      const auto half = static_cast<std::uint16_t>(std::min<std::size_t>(config.incoming_qos2 / 2, 65535));
      if (!o.properties.receive_maximum || *o.properties.receive_maximum > half) {
        o.properties.receive_maximum = half;
      }
    }
    lost_count = 0;
    lost_unrecoverable = 0;
    lost_uncertain = 0;
    last_server_reason = mqtt::ReasonCode::Success;
    auto ca = client->connect(o, config.connect_timeout);
    if (!ca) {
      link.close();
      Status f;
      f.error = ca.error();
      if (ca.error() == mqtt::Errc::ConnectionRefused) {
        f.reason = StatusReason::Refused;
        f.broker_reason = client->server_reason();
        f.permanent = permanent_refusal(f.broker_reason);
        f.detail = mqtt::to_string(f.broker_reason);
      } else if (protocol_violation(ca.error())) {
        f.reason = StatusReason::ProtocolViolation;
        f.permanent = true;
        f.detail = mqtt::to_string(ca.error());
      } else {
        f.reason = StatusReason::ConnectionLost;
        f.detail = mqtt::to_string(ca.error());
      }
      requeue_lost();
      schedule_retry(f);
      return;
    }
    connects.fetch_add(1, std::memory_order_relaxed);
    const bool present = ca->session_present;
    use_subscription_ids = o.version == mqtt::Version::V5 &&
                           ca->properties.subscription_identifier_available.value_or(true);
    const bool first = !ever_connected;
    ever_connected = true;
    failures = 0;
    backoff.reset();
    report = Status{};
    report.state = ConnectionState::Connected;
    report.requeued = requeue_lost();
    report.lost = lost_unrecoverable;
    report.uncertain = lost_uncertain;
    report_present = present;
    report_first = first;
    report_pending = true;
    // Commands flow from now on (publishes are not held to the offline limit while the
    // resubscriptions are answered); the Connected report follows with their outcome.
    agent.state_.store(ConnectionState::Connected);
    report_wanted = 0;
    for (std::size_t k = 0; k < config.max_subscriptions; ++k) {
      Route& r = routes[k];
      if (!r.used || !r.active) continue;
      // The broker has no subscriptions of ours: make them all again. A resumed session has
      // them, except those whose resubscription the last connection did not see granted.
      if (!present) r.resubscribe = true;
      if (r.resubscribe) ++report_wanted;
    }
    // In table order, without waiting for the SUBACKs: commands queued meanwhile are carried
    // out; the report goes when the last SUBACK is in (finish_request), or the link drops.
    resubscribes_outstanding = 0;
    for (std::size_t k = 0; k < config.max_subscriptions && client->connected(); ++k) {
      Route& r = routes[k];
      if (!r.used || !r.active || !r.resubscribe || r.request_id != 0) continue;
      auto id = send_subscribe(r);
      if (!id) continue;  // refused locally or the link dropped: stays flagged
      begin_request(r, *id, kNone);
      ++resubscribes_outstanding;
    }
    if (!client->connected()) {
      on_link_down();
      return;
    }
    if (resubscribes_outstanding == 0) send_report();
  }

  // The report of the last connect: SessionResumed, or for a new session SessionStarted /
  // SessionLost; `resubscribed` counts the subscriptions the broker granted again,
  // `resubscribe_pending` those it did not answer before the link dropped (or in
  // operation_timeout): they are made again on the next connection.
  void send_report() noexcept {
    report_pending = false;
    Status st = report;
    for (std::size_t k = 0; k < config.max_subscriptions; ++k) {
      const Route& r = routes[k];
      if (r.used && r.active && r.resubscribe) ++st.resubscribe_pending;
    }
    if (report_present) {
      st.reason = StatusReason::SessionResumed;
    } else {
      // Also on the first connect after a restart: publishes restored from the store that the
      // broker no longer knows make it a lost session, not a new one.
      const bool forgot = st.requeued != 0 || st.lost != 0 || st.uncertain != 0;
      const bool had_subscriptions = !report_first && report_wanted != 0;
      st.reason = (forgot || had_subscriptions) ? StatusReason::SessionLost
                                                : StatusReason::SessionStarted;
    }
    status(st);
  }

  // Puts the commands in `lost` back in the queue in the order they were queued: publishes the
  // broker forgot, and SUBSCRIBE / UNSUBSCRIBE commands lost with their connection. Each goes
  // before the first pending command queued after it (commands requeued earlier, e.g. a
  // SUBSCRIBE lost at the link-down before a publish was found forgotten at the reconnect, keep
  // their place). Returns the number of publishes.
  std::size_t requeue_lost() noexcept {
    if (lost_count == 0) return 0;
    std::sort(lost.get(), lost.get() + lost_count,
              [&](std::uint32_t a, std::uint32_t b) { return slots[a].sequence < slots[b].sequence; });
    std::size_t publishes = 0;
    std::uint32_t prev = kNone;
    std::uint32_t cur = pending_head;
    for (std::size_t k = 0; k < lost_count; ++k) {
      const std::uint32_t i = lost[k];
      {
        os::LockGuard l(pool_mutex);
        slots[i].where = Where::Pending;
        slots[i].packet_id = 0;
      }
      if (slots[i].kind == Kind::Publish) ++publishes;
      while (cur != kNone && slots[cur].sequence < slots[i].sequence) {
        prev = cur;
        cur = slots[cur].next;
      }
      slots[i].next = cur;
      if (prev == kNone) pending_head = i;
      else slots[prev].next = i;
      if (cur == kNone) pending_tail = i;
      prev = i;
    }
    requeued_total.fetch_add(publishes, std::memory_order_relaxed);
    lost_count = 0;
    return publishes;
  }

  void on_link_down() noexcept {
    link.close();
    // The client reports every request outstanding as lost when the connection ends; anything
    // still marked here would otherwise block its filter for good.
    for (std::size_t k = 0; k < config.max_subscriptions && requests_in_flight > 0; ++k) {
      if (routes[k].request_id != 0) finish_request(routes[k], Finish::Lost, {});
    }
    requeue_lost();
    // The connect's report is owed even though the link dropped during its resubscriptions:
    // it comes first, then the ConnectionLost below.
    if (report_pending) send_report();
    if (closed_by_app) return;
    Status st;
    st.error = client->fatal_error();
    st.broker_reason = client->server_reason();
    if (st.error == mqtt::Errc::ServerDisconnected) {
      st.reason = StatusReason::ConnectionLost;
      st.permanent = permanent_refusal(st.broker_reason);
      st.detail = mqtt::to_string(st.broker_reason);
    } else if (protocol_violation(st.error)) {
      st.reason = StatusReason::ProtocolViolation;
      st.permanent = true;
      st.detail = mqtt::to_string(st.error);
    } else {
      st.reason = StatusReason::ConnectionLost;
      st.detail = mqtt::to_string(st.error);
    }
    failures = 0;
    schedule_retry(st);
  }

  void sleep(Duration timeout) noexcept {
    wakeup.arm();
    if (!commands.empty() || stop_requested.load() || reconnect_requested.load()) {
      wakeup.disarm();
      return;
    }
    link.flush();
    (void)wakeup.wait(link.poll_handle(), timeout);
  }

  void run() noexcept {
    next_attempt = clock.now();
    while (!stop_requested.load()) {
      if (reconnect_requested.exchange(false)) {
        failed = false;
        closed_by_app = false;
        failures = 0;
        ever_connected = false;
        backoff.reset();
        next_attempt = clock.now();
      }
      take_commands();
      if (client->connected()) {
        expire_requests();
        const Pump p = pump();
        if (p == Pump::LinkDown || !client->connected()) {
          if (!client->connected()) on_link_down();
          continue;
        }
        (void)client->process_loop(Duration{0});
        if (!client->connected()) {
          on_link_down();
          continue;
        }
        if (p == Pump::More) continue;
        Duration wait{1000};
        if (auto due = session->next_deadline()) {
          const Duration d = *due - clock.now();
          wait = std::max(Duration{0}, std::min(wait, d));
        }
        if (auto due = next_request_deadline()) {
          const Duration d = *due - clock.now();
          wait = std::max(Duration{0}, std::min(wait, d));
        }
        sleep(wait);
        continue;
      }
      sweep_offline();
      if (failed || closed_by_app) {
        if (failed && config.retry_permanent_failures) failed = false;
        sleep(Duration{1000});
        continue;
      }
      const Instant now = clock.now();
      if (now >= next_attempt) {
        attempt_connect();
        continue;
      }
      sleep(std::min(Duration{1000}, next_attempt - now));
    }
    shutdown();
  }

  void shutdown() noexcept {
    if (client->connected()) link.close();
    if (report_pending) send_report();
    take_commands();
    while (pending_head != kNone) {
      const std::uint32_t i = pop_front();
      complete_error(i, Errc::Stopped);
    }
    // In-flight QoS 1/2 (Sent): the session keeps them for a resume; their callers hear Stopped.
    for (std::size_t i = 0; i < config.command_slots; ++i) {
      Kind k;
      Where w;
      {
        os::LockGuard l(pool_mutex);
        k = slots[i].kind;
        w = slots[i].where;
      }
      if (k != Kind::Free && w == Where::Sent) {
        sent_id[i] = 0;
        complete_error(static_cast<std::uint32_t>(i), Errc::Stopped);
      }
    }
    Status st;
    st.state = ConnectionState::Closed;
    st.reason = StatusReason::Stopped;
    status(st);
    finished.store(true);
  }

  static void thread_main(void* ctx) noexcept { static_cast<Impl*>(ctx)->run(); }

  // --- Restore (agent thread, before the first connect) ------------------------------------------

  struct OutboxEntry {
    std::uint32_t sequence;
    std::uint16_t key;
    bool handed;
    mqtt::Bytes packet;
  };

  class OutboxVisitor final : public mqtt::SessionStoreVisitor {
   public:
    OutboxVisitor(Impl& impl, OutboxEntry* entries, std::size_t capacity)
        : impl_(impl), entries_(entries), capacity_(capacity) {}
    mqtt::Result<void> on_meta(const mqtt::SessionMeta&) noexcept override { return {}; }
    mqtt::Result<void> on_publish(const mqtt::StoredPublish& p) noexcept override {
      auto d = mqtt::decode(p.packet, p.version);
      if (!d || std::get_if<mqtt::Publish>(&*d) == nullptr) return {};
      if (count == capacity_) return fail(mqtt::Errc::SessionStateFull);
      OutboxEntry& e = entries_[count++];
      e.key = std::get_if<mqtt::Publish>(&*d)->packet_id;
      e.handed = p.state == mqtt::StoredPublishState::AwaitPubComp;
      e.sequence = p.sequence;
      e.packet = p.packet;
      (void)impl_;
      return {};
    }
    mqtt::Result<void> on_incoming_qos2(std::uint16_t) noexcept override { return {}; }
    std::size_t count = 0;

   private:
    Impl& impl_;
    OutboxEntry* entries_;
    std::size_t capacity_;
  };

  bool session_has(std::uint16_t packet_id) const noexcept {
    for (std::size_t i = 0; i < config.inflight_records; ++i) {
      if (outgoing[i].state != mqtt::OutgoingState::Free && outgoing[i].packet_id == packet_id) {
        return true;
      }
    }
    return false;
  }

  void restore() noexcept {
    if (persistence.session != nullptr) (void)session->restore();
    if (persistence.outbox == nullptr) return;
    std::unique_ptr<OutboxEntry[]> entries(new OutboxEntry[config.command_slots]);
    OutboxVisitor v(*this, entries.get(), config.command_slots);
    {
      os::LockGuard l(outbox_mutex);
      (void)persistence.outbox->load(v);
    }
    std::sort(entries.get(), entries.get() + v.count,
              [](const OutboxEntry& a, const OutboxEntry& b) { return a.sequence < b.sequence; });
    std::uint32_t max_seq = 0;
    for (std::size_t k = 0; k < v.count; ++k) {
      OutboxEntry& e = entries[k];
      if (e.handed) {
        // Marked "handed to the session as packet id <sequence>".
        if (session_has(static_cast<std::uint16_t>(e.sequence))) {
          os::LockGuard l(outbox_mutex);
          (void)persistence.outbox->remove_publish(e.key);
          continue;
        }
      }
      max_seq = std::max(max_seq, e.handed ? 0u : e.sequence);
      // Into the slot of its key when that is free, so the stored record keeps its name.
      std::uint32_t i = kNone;
      {
        os::LockGuard l(pool_mutex);
        const std::uint32_t want = static_cast<std::uint32_t>(e.key) - 1;
        for (std::size_t f = 0; f < free_count; ++f) {
          if (!e.handed && free_list[f] == want) {
            i = want;
            free_list[f] = free_list[--free_count];
            break;
          }
        }
        if (i == kNone && free_count > 0) i = free_list[--free_count];
        if (i != kNone) {
          Slot& s = slots[i];
          s.kind = Kind::Publish;
          s.where = Where::Pending;
          s.waiting = s.done = s.abandoned = s.dropped = false;
          s.counted = true;
          ++offline_count;
          s.sequence = next_sequence++;
          s.handler = {};
        }
      }
      if (i == kNone) break;  // fewer slots than stored messages: the rest stay stored
      Slot& s = slots[i];
      std::memcpy(s.data, e.packet.data(), std::min(e.packet.size(), config.slot_size));
      s.length = std::min(e.packet.size(), config.slot_size);
      auto d = mqtt::decode(mqtt::Bytes(s.data, s.length), options.version);
      if (!d || std::get_if<mqtt::Publish>(&*d) == nullptr) {
        give_back(i);
        continue;
      }
      s.publish = *std::get_if<mqtt::Publish>(&*d);
      s.persisted = true;
      if (i + 1 != e.key || e.handed) {
        os::LockGuard l(outbox_mutex);
        mqtt::Publish p = s.publish;
        p.packet_id = static_cast<std::uint16_t>(i + 1);
        if (persistence.outbox->save_publish(s.sequence, p, options.version)) {
          (void)persistence.outbox->remove_publish(e.key);
        }
        // Re-encode so the slot's bytes carry the new key (the packet id is rewritten by the
        // session on send anyway).
      }
      push_back(i);
    }
    (void)max_seq;
  }
};

// --- Agent ---------------------------------------------------------------------------------------

Agent::Agent(const Config& config, const mqtt::ConnectOptions& connect, TransportFactory& factory,
             const Clock& clock, Persistence persistence) noexcept
    : impl_(new Impl(*this, config, connect, factory, clock, persistence)) {}

Agent::~Agent() { stop(); }

bool Agent::start() noexcept {
  if (impl_->started.load() || !impl_->wakeup.ok()) return false;
  impl_->restore();
  state_.store(ConnectionState::Connecting);
  impl_->started.store(true);
  if (!impl_->thread.start(&Impl::thread_main, impl_.get(), "edgekit-agent")) {
    impl_->started.store(false);
    state_.store(ConnectionState::Idle);
    return false;
  }
  return true;
}

void Agent::stop() noexcept {
  if (!impl_->started.load()) return;
  impl_->stop_requested.store(true);
  impl_->wakeup.arm();  // make sure the wake reaches a waiter that is about to sleep
  impl_->wakeup.wake();
  impl_->thread.join();
}

void Agent::reconnect() noexcept {
  impl_->reconnect_requested.store(true);
  if (state_.load() == ConnectionState::Failed) state_.store(ConnectionState::Disconnected);
  impl_->wakeup.wake();
}

Result<void> Agent::publish(const mqtt::Publish& message, CompletionHandler done) noexcept {
  auto i = impl_->prepare_publish(message);
  if (!i) return fail(i.error());
  return impl_->enqueue(*i, done, false);
}

Result<Outcome> Agent::publish_and_wait(const mqtt::Publish& message, Duration timeout) noexcept {
  if (impl_->thread.is_current()) return fail(Error{Errc::WouldDeadlock});
  auto i = impl_->prepare_publish(message);
  if (!i) return fail(i.error());
  EDGEKIT_TRY(impl_->enqueue(*i, {}, true));
  return impl_->wait_for(*i, timeout);
}

Result<void> Agent::subscribe(std::string_view filter, mqtt::SubscribeOptions options,
                              MessageHandler handler, CompletionHandler done) noexcept {
  auto i = impl_->prepare_filter(Kind::Subscribe, filter, options, handler);
  if (!i) return fail(i.error());
  return impl_->enqueue(*i, done, false);
}

Result<Outcome> Agent::subscribe_and_wait(std::string_view filter, mqtt::SubscribeOptions options,
                                          MessageHandler handler, Duration timeout) noexcept {
  if (impl_->thread.is_current()) return fail(Error{Errc::WouldDeadlock});
  auto i = impl_->prepare_filter(Kind::Subscribe, filter, options, handler);
  if (!i) return fail(i.error());
  EDGEKIT_TRY(impl_->enqueue(*i, {}, true));
  return impl_->wait_for(*i, timeout);
}

Result<void> Agent::unsubscribe(std::string_view filter, CompletionHandler done) noexcept {
  auto i = impl_->prepare_filter(Kind::Unsubscribe, filter, {}, {});
  if (!i) return fail(i.error());
  return impl_->enqueue(*i, done, false);
}

Result<Outcome> Agent::unsubscribe_and_wait(std::string_view filter, Duration timeout) noexcept {
  if (impl_->thread.is_current()) return fail(Error{Errc::WouldDeadlock});
  auto i = impl_->prepare_filter(Kind::Unsubscribe, filter, {}, {});
  if (!i) return fail(i.error());
  EDGEKIT_TRY(impl_->enqueue(*i, {}, true));
  return impl_->wait_for(*i, timeout);
}

Result<void> Agent::disconnect(CompletionHandler done) noexcept {
  auto i = impl_->take_slot(Kind::Disconnect, false, mqtt::QoS::AtMostOnce);
  if (!i) return fail(i.error());
  return impl_->enqueue(*i, done, false);
}

Result<Outcome> Agent::disconnect_and_wait(Duration timeout) noexcept {
  if (impl_->thread.is_current()) return fail(Error{Errc::WouldDeadlock});
  auto i = impl_->take_slot(Kind::Disconnect, false, mqtt::QoS::AtMostOnce);
  if (!i) return fail(i.error());
  EDGEKIT_TRY(impl_->enqueue(*i, {}, true));
  return impl_->wait_for(*i, timeout);
}

Stats Agent::stats() const noexcept {
  Stats s;
  s.writes = impl_->link.writes();
  s.reads = impl_->link.reads();
  s.published = impl_->published.load(std::memory_order_relaxed);
  s.batches = impl_->batches.load(std::memory_order_relaxed);
  s.connects = impl_->connects.load(std::memory_order_relaxed);
  s.requeued = impl_->requeued_total.load(std::memory_order_relaxed);
  s.uncertain = impl_->uncertain_total.load(std::memory_order_relaxed);
  return s;
}

}  // namespace edgekit::agent
