// Fuzz target: the session fed with arbitrary inbound bytes and arbitrary timing, driven the way
// the client drives it (read_frame → decode → Session::on_packet → send the reply), interleaved
// with application calls, lost connections, reboots from a MemorySessionStore and time steps.
// The input is a script (session_script.hpp).
// Oracles (besides no crash / no sanitizer report / no hang):
//  - packet ids the session assigns are never 0 and never one already in flight;
//  - records in use never exceed the storage; no two live records share a packet id;
//  - every completion and lost operation names an operation that was started and not finished,
//    with the right kind;
//  - an inbound QoS 2 publish is never delivered twice for the same packet id before its PUBREL
//    (also across a reboot from the store), unless the session ended in between — or, with the
//    packet-id set (`incoming_qos2_set`, input byte 0 bit 2), the second one carries DUP = 0
//    (no resend: the server reused the id) — or the session gave the id's slot to a new message
//    (Session::on_publish: with the id storage full of ids carried over from an earlier
//    connection, one whose PUBREL has not come before a new message is taken as one the server
//    no longer holds, as a conforming server resends before anything new). The model sees that
//    in the storage it gave the session: an id gone from it while a PUBLISH was handled;
//  - whatever the session asks the driver to send encodes (replies, publishes, resends);
//  - after a successful begin_publish the server's Receive Maximum is respected;
//  - draining resends / lost operations terminates within the storage size.
#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

#include "edgekit/mqtt/session.hpp"
#include "fuzz_support.hpp"
#include "session_script.hpp"

namespace {

using namespace edgekit::fuzz;
using namespace edgekit::fuzz::script;
using edgekit::Duration;
using edgekit::Instant;

constexpr std::size_t kRecords = 4;
constexpr std::size_t kIncoming = 3;
constexpr std::size_t kSlots = 6;
constexpr std::size_t kSlotSize = 192;

enum class Op8 : std::uint8_t { None = 0, Pub1, Pub2, Sub, Unsub };

struct State {
  std::array<OutgoingRecord, kRecords> records{};
  std::array<std::uint16_t, kIncoming> incoming{};
  TopicAliasArena<2, 16> in_aliases;
  TopicAliasArena<2, 16> out_aliases;
  std::array<char, 32> client_id{};
  std::array<std::byte, kSlots * kSlotSize> arena{};
  std::array<std::uint16_t, kIncoming> store_ids{};
  std::optional<MemorySessionStore> store;
  std::optional<Session> session;
  IncomingQoS2Set incoming_set;
  bool use_set = false;  // inbound QoS 2 in the packet-id set instead of `incoming`

  // The model.
  std::array<Op8, 65536> outstanding{};
  std::array<bool, 65536> awaiting_pubrel{};
  std::uint16_t last_id = 1;
  bool clean_start = true;
  Version version = Version::V5;
  Instant now{Duration{1'000'000}};

  std::array<std::byte, 8192> inbound{};
  std::size_t have = 0;
  std::array<std::byte, 16'384> out{};

  SessionStorage storage() {
    SessionStorage st{records, incoming, in_aliases.storage(), out_aliases.storage(), client_id};
    if (use_set) {
      st.incoming_qos2 = {};
      st.incoming_qos2_set = &incoming_set;
    }
    return st;
  }
};

State* g;  // allocated once; reset per input

constexpr std::string_view kTopics[] = {"a", "sensors/kitchen/temp", "b/c", "a",
                                        "a/very/long/topic/name/that/will/not/fit/an/alias"};
constexpr Subscription kSubs[] = {{"a/+", {QoS::ExactlyOnce, false, false, {}}},
                                  {"sensors/#", {QoS::AtLeastOnce, true, true, {}}}};
constexpr std::string_view kFilters[] = {"a/+", "sensors/#"};


template <class P>
void must_encode(const P& packet, Version v) {
  auto n = encode(packet, v, g->out);
  if (!n) std::fprintf(stderr, "encode refused: %s\n", to_string(n.error()));
  FUZZ_CHECK(n.has_value());
}

void check_invariants() {
  Session& s = *g->session;
  FUZZ_CHECK(s.records_in_use() <= kRecords);
  FUZZ_CHECK(s.pending_resends() <= s.records_in_use());
  FUZZ_CHECK(s.pending_lost() <= s.records_in_use());
  FUZZ_CHECK(s.publishes_in_flight() <= s.records_in_use());
  for (std::size_t i = 0; i < kRecords; ++i) {
    const OutgoingRecord& a = g->records[i];
    if (a.state == OutgoingState::Free) continue;
    FUZZ_CHECK(a.packet_id != 0);
    for (std::size_t j = i + 1; j < kRecords; ++j) {
      const OutgoingRecord& b = g->records[j];
      FUZZ_CHECK(b.state == OutgoingState::Free || b.packet_id != a.packet_id);
    }
  }
  for (std::size_t i = 0; i < kIncoming; ++i)
    for (std::size_t j = i + 1; j < kIncoming; ++j)
      FUZZ_CHECK(g->incoming[i] == 0 || g->incoming[i] != g->incoming[j]);
}

void forget_incoming() {
  g->awaiting_pubrel.fill(false);
}

void finish(std::uint16_t id, OperationKind kind, QoS qos) {
  const Op8 o = g->outstanding[id];
  FUZZ_CHECK(id != 0);
  FUZZ_CHECK(o != Op8::None);
  switch (kind) {
    case OperationKind::Publish:
      FUZZ_CHECK(o == (qos == QoS::ExactlyOnce ? Op8::Pub2 : Op8::Pub1));
      break;
    case OperationKind::Subscribe:
      FUZZ_CHECK(o == Op8::Sub);
      break;
    case OperationKind::Unsubscribe:
      FUZZ_CHECK(o == Op8::Unsub);
      break;
  }
  g->outstanding[id] = Op8::None;
}

void drain() {
  Session& s = *g->session;
  std::size_t n = 0;
  while (auto r = s.next_resend()) {
    FUZZ_CHECK(++n <= kRecords);
    if (r->type == PacketType::Publish) {
      FUZZ_CHECK(r->publish.dup && r->publish.packet_id != 0);
      FUZZ_CHECK(g->outstanding[r->publish.packet_id] == Op8::Pub1 ||
                 g->outstanding[r->publish.packet_id] == Op8::Pub2);
      must_encode(r->publish, s.version());
    } else {
      FUZZ_CHECK(r->type == PacketType::PubRel);
      FUZZ_CHECK(g->outstanding[r->pubrel.packet_id] == Op8::Pub2);
      must_encode(r->pubrel, s.version());
    }
    s.on_sent(g->now);
  }
  n = 0;
  while (auto l = s.next_lost()) {
    FUZZ_CHECK(++n <= kRecords);
    finish(l->packet_id, l->kind, l->publish.qos);
  }
}

void connection_lost() {
  g->session->on_connection_lost();
  g->have = 0;
}

void handle(const Packet& packet, const Inbound& in) {
  Session& s = *g->session;
  if (in.reply) {
    FUZZ_CHECK(in.reply->packet_id != 0);
    must_encode(in.reply->to_packet(), s.version());
    s.on_sent(g->now);
  }
  if (const auto* p = std::get_if<Publish>(&packet)) {
    if (in.deliver) {
      FUZZ_CHECK(!p->topic.empty());
      if (p->qos == QoS::ExactlyOnce) {
        // [MQTT-4.3.3] exactly once: never a second delivery before PUBREL (the set takes a
        // held id without DUP as a new message: a resend carries DUP = 1 [MQTT-3.3.1-1]).
        FUZZ_CHECK(!g->awaiting_pubrel[p->packet_id] || (g->use_set && !p->dup));
        g->awaiting_pubrel[p->packet_id] = true;
      }
    }
  }
  if (const auto* rel = std::get_if<PubRel>(&packet)) g->awaiting_pubrel[rel->packet_id] = false;
  if (in.completion) finish(in.completion->packet_id, in.completion->kind, in.completion->qos);
  if (in.connack && !in.connack->session_present) forget_incoming();
  if (in.server_disconnect) g->have = 0;
}

// Takes every complete frame out of the inbound buffer, as the client does.
void process_inbound() {
  Session& s = *g->session;
  while (g->have > 0) {
    auto fr = read_frame(Bytes(g->inbound.data(), g->have), g->inbound.size());
    if (!fr) {
      connection_lost();
      return;
    }
    if (!fr->complete) return;
    const std::size_t size = fr->header.packet_size();
    auto pkt = decode(Bytes(g->inbound.data(), size), s.version());
    if (!pkt) {
      connection_lost();
      return;
    }
    const auto held = g->incoming;  // the session's inbound QoS 2 ids (without the set)
    auto in = s.on_packet(*pkt);
    if (const auto* p = std::get_if<Publish>(&*pkt)) {
      // An id the session let go for a new message (see the oracles above), and only then: a
      // QoS 2 PUBLISH of an id it did not hold, with every slot in use; one id at most.
      int let_go = 0;
      for (std::uint16_t id : held) {
        if (id == 0 || std::find(g->incoming.begin(), g->incoming.end(), id) != g->incoming.end())
          continue;
        FUZZ_CHECK(++let_go == 1);
        FUZZ_CHECK(p->qos == QoS::ExactlyOnce);
        FUZZ_CHECK(std::find(held.begin(), held.end(), p->packet_id) == held.end());
        FUZZ_CHECK(std::find(held.begin(), held.end(), std::uint16_t{0}) == held.end());
        g->awaiting_pubrel[id] = false;
      }
    }
    if (!in) {
      connection_lost();
      return;
    }
    handle(*pkt, *in);
    check_invariants();
    if (g->have == 0) return;  // the server disconnected
    std::memmove(g->inbound.data(), g->inbound.data() + size, g->have - size);
    g->have -= size;
  }
}

void push(Bytes b) {
  const std::size_t k = std::min(b.size(), g->inbound.size() - g->have);
  std::memcpy(g->inbound.data() + g->have, b.data(), k);
  g->have += k;
  process_inbound();
}

template <class P>
void push_packet(const P& p) {
  auto n = encode(p, g->session->version(), g->out);
  if (!n) return;  // not a valid packet in this version: nothing sent
  push(Bytes(g->out.data(), *n));
}

std::uint16_t pick_id(std::uint16_t raw) {
  return raw == 0 ? g->last_id : raw;
}

constexpr ReasonCode kAckCodes[] = {ReasonCode::Success, ReasonCode::NoMatchingSubscribers,
                                    ReasonCode::UnspecifiedError, ReasonCode::QuotaExceeded,
                                    ReasonCode::PacketIdentifierNotFound};

void server_packet(Cursor& c) {
  const auto kind = static_cast<Kind>(c.u8() % kKindCount);
  const std::uint8_t a = c.u8();
  const std::uint8_t b = c.u8();
  const std::uint16_t id = pick_id(c.u16());
  const ReasonCode rc = kAckCodes[b % 5];
  switch (kind) {
    case kConnAck: {
      ConnAck ack;
      ack.session_present = a & 1;
      if (a & 2) ack.reason_code = ReasonCode::NotAuthorized;
      if (a & 4) ack.properties.set_receive_maximum(static_cast<std::uint16_t>(1 + b % 4));
      if (a & 8) ack.properties.set_maximum_qos(static_cast<QoS>(b & 1));
      if (a & 16) ack.properties.set_retain_available(false);
      if (a & 32) ack.properties.set_topic_alias_maximum(static_cast<std::uint16_t>(b % 4));
      if (a & 64) ack.properties.set_maximum_packet_size(20u + b);
      if (a & 128) ack.properties.set_server_keep_alive(static_cast<std::uint16_t>(b % 3));
      if ((b & 0xC0) == 0xC0)
        ack.properties.set_assigned_client_identifier("assigned-by-server-0123456789-long");
      else if (b & 0x80)
        ack.properties.set_assigned_client_identifier("srv-1");
      push_packet(ack);
      break;
    }
    case kPublishIn: {
      Publish p;
      p.topic = kTopics[a % 3];
      p.qos = static_cast<QoS>((a >> 2) % 3);
      p.packet_id = p.qos == QoS::AtMostOnce ? 0 : (id == 0 ? 1 : id);
      p.dup = a & 0x20;
      p.retain = a & 0x40;
      if (b & 1) p.properties.set_topic_alias(static_cast<std::uint16_t>(1 + (b >> 1) % 3));
      if (b & 0x10) p.topic = "";
      push_packet(p);
      break;
    }
    case kPubAck:
      push_packet(PubAck{id, rc, {}});
      break;
    case kPubRec:
      push_packet(PubRec{id, rc, {}});
      break;
    case kPubRel:
      push_packet(
          PubRel{id, a & 1 ? ReasonCode::PacketIdentifierNotFound : ReasonCode::Success, {}});
      break;
    case kPubComp:
      push_packet(
          PubComp{id, a & 1 ? ReasonCode::PacketIdentifierNotFound : ReasonCode::Success, {}});
      break;
    case kSubAck: {
      static constexpr ReasonCode kCodes[] = {ReasonCode::GrantedQoS2,
                                              ReasonCode::UnspecifiedError};
      SubAck s;
      s.packet_id = id;
      s.reason_codes = std::span<const ReasonCode>(kCodes, 1 + (a & 1));
      push_packet(s);
      break;
    }
    case kUnsubAck: {
      static constexpr ReasonCode kCodes[] = {ReasonCode::Success,
                                              ReasonCode::NoSubscriptionExisted};
      UnsubAck u;
      u.packet_id = id;
      if (g->session->version() == Version::V5)
        u.reason_codes = std::span<const ReasonCode>(kCodes, 1 + (a & 1));
      push_packet(u);
      break;
    }
    case kPingResp:
      push_packet(PingResp{});
      break;
    case kDisconnectIn: {
      Disconnect d;
      d.reason_code = a & 1 ? ReasonCode::ServerShuttingDown : ReasonCode::Success;
      push_packet(d);
      break;
    }
    default:
      break;
  }
}

void app_publish(Cursor& c) {
  Session& s = *g->session;
  const std::uint8_t f = c.u8();
  const std::uint8_t len = c.u8();
  Publish p;
  p.topic = kTopics[f % 5];
  p.qos = static_cast<QoS>((f >> 3) % 3);
  p.retain = f & 0x20;
  if (f & 0x40) p.properties.set_message_expiry_interval(10);
  // The payload is a view into the input, which outlives the whole run (as the session needs).
  p.payload = c.take(len);
  if (s.version() == Version::V311) p.properties = {};
  auto r = s.begin_publish(p);
  if (!r) return;
  must_encode(p, s.version());
  if (p.qos != QoS::AtMostOnce) {
    FUZZ_CHECK(p.packet_id != 0);
    FUZZ_CHECK(g->outstanding[p.packet_id] == Op8::None);
    g->outstanding[p.packet_id] = p.qos == QoS::ExactlyOnce ? Op8::Pub2 : Op8::Pub1;
    g->last_id = p.packet_id;
    if (s.version() == Version::V5)
      FUZZ_CHECK(s.publishes_in_flight() <= s.server_receive_maximum());
  }
  s.on_sent(g->now);
}

void app_subscribe(Cursor& c, bool unsubscribe) {
  Session& s = *g->session;
  const std::uint8_t f = unsubscribe ? 0 : c.u8();
  std::uint16_t id = 0;
  if (unsubscribe) {
    Unsubscribe u;
    u.filters = kFilters;
    if (!s.begin_unsubscribe(u)) return;
    must_encode(u, s.version());
    id = u.packet_id;
  } else {
    Subscribe sub;
    sub.subscriptions = std::span<const Subscription>(kSubs, 1 + (f & 1));
    if (s.version() == Version::V311) sub.subscriptions = std::span<const Subscription>(kSubs, 1);
    if (!s.begin_subscribe(sub)) return;
    must_encode(sub, s.version());
    id = sub.packet_id;
  }
  FUZZ_CHECK(id != 0);
  FUZZ_CHECK(g->outstanding[id] == Op8::None);
  g->outstanding[id] = unsubscribe ? Op8::Unsub : Op8::Sub;
  g->last_id = id;
  s.on_sent(g->now);
}

void connect(Cursor& c) {
  Session& s = *g->session;
  const std::uint8_t f = c.u8();
  Connect con;
  // A session may be resumed over the other protocol version (brokers allow it).
  if (f & 0x20) g->version = g->version == Version::V5 ? Version::V311 : Version::V5;
  con.version = g->version;
  con.client_id = (f & 1) ? "" : "device-1";
  con.clean_start = f & 2;
  static constexpr std::uint16_t kKeepAlive[] = {0, 1, 5, 60};
  con.keep_alive = kKeepAlive[(f >> 2) & 3];
  if (g->version == Version::V5 && (f & 0x10)) con.properties.set_session_expiry_interval(3600);
  if (g->version == Version::V311 && con.client_id.empty() && !con.clean_start) con.client_id = "d";
  if (!s.prepare_connect(con)) return;
  must_encode(con, con.version);
  g->clean_start = con.clean_start;
  g->have = 0;
  s.on_sent(g->now);
}

void advance(Cursor& c) {
  Session& s = *g->session;
  g->now = g->now + Duration{std::int64_t{c.u16()} * 4};
  // Run every timer that is due, as a driver's loop would; it must settle.
  for (int k = 0; k < 8; ++k) {
    auto d = s.next_deadline();
    if (!d || *d > g->now) return;
    auto r = s.on_timer(g->now);
    if (!r) {
      FUZZ_CHECK(r.error() == Errc::KeepAliveTimeout);
      connection_lost();
      return;
    }
    if (*r == TimerAction::SendPingReq) {
      must_encode(PingReq{}, s.version());
      s.on_sent(g->now);
    }
  }
  // A deadline that stays in the past after being served would spin a driver forever.
  auto d = s.next_deadline();
  FUZZ_CHECK(!d || *d > g->now);
}

void new_session(bool restore) {
  g->session.reset();
  g->session.emplace(g->storage(), g->store ? &*g->store : nullptr);
  if (!restore) return;
  auto r = g->session->restore();
  // Everything outstanding that was not stored (QoS 1/2 publishes are; subscriptions are not)
  // is gone with the reboot; rebuild the model from what the session restored.
  g->outstanding.fill(Op8::None);
  if (!r) return;
  for (const OutgoingRecord& rec : g->records) {
    if (rec.state == OutgoingState::Free) continue;
    FUZZ_CHECK(rec.state == OutgoingState::AwaitPubAck || rec.state == OutgoingState::AwaitPubRec ||
               rec.state == OutgoingState::AwaitPubComp);
    g->outstanding[rec.packet_id] = rec.publish.qos == QoS::ExactlyOnce ? Op8::Pub2 : Op8::Pub1;
  }
  if (r->meta) g->version = g->session->version();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  if (g == nullptr) g = new State();
  // Fresh state for every input.
  g->session.reset();
  g->store.reset();
  g->outstanding.fill(Op8::None);
  g->awaiting_pubrel.fill(false);
  g->last_id = 1;
  g->have = 0;
  g->now = Instant{Duration{1'000'000}};
  g->version = (data[0] & 1) ? Version::V5 : Version::V311;
  g->clean_start = true;
  if (data[0] & 2) g->store.emplace(g->arena, kSlotSize, g->store_ids);
  g->use_set = (data[0] & 4) != 0;
  new_session(false);

  Cursor c{data + 1, size - 1};
  int steps = 0;
  while (c.more() && ++steps < 2000) {
    const auto op = static_cast<Op>(c.u8() % kOpCount);
    switch (op) {
      case kAdvance:
        advance(c);
        break;
      case kRaw: {
        const std::uint8_t n = c.u8();
        push(c.take(n));
        break;
      }
      case kServer:
        server_packet(c);
        break;
      case kPublish:
        app_publish(c);
        break;
      case kSubscribe:
        app_subscribe(c, false);
        break;
      case kUnsubscribe:
        app_subscribe(c, true);
        break;
      case kConnect:
        connect(c);
        break;
      case kLost:
        connection_lost();
        break;
      case kDisconnect: {
        const std::uint8_t f = c.u8();
        Disconnect d;
        if (g->session->version() == Version::V5 && (f & 1))
          d.properties.set_session_expiry_interval((f & 2) ? 0 : 60);
        if (g->session->prepare_disconnect(d)) {
          must_encode(d, g->session->version());
          const bool ends = g->session->version() == Version::V5
                                ? g->session->session_expiry_interval() == 0
                                : g->clean_start;
          if (ends) forget_incoming();
          g->have = 0;
        }
        break;
      }
      case kDrain:
        drain();
        break;
      case kReboot:
        if (g->store) new_session(true);
        break;
      default:
        break;
    }
    check_invariants();
  }
  drain();
  check_invariants();
  g->session.reset();
  g->store.reset();
  return 0;
}
