// Fuzz target: the sans-I/O connection engine driven directly, with arbitrary inbound bytes,
// arbitrary write sizes (a socket that takes 0..255 bytes at a time, or nothing for a long while),
// arbitrary time steps and arbitrary API calls in any order (the direct QoS 0 write included) — interleavings that the blocking
// client never produces (a full send queue, events polled late, commands between partial writes).
// Input: [config][commands...]; config bit 0: MQTT 5; bits 1..7: which server packets a built-in
// responder answers (CONNECT, PUBLISH QoS 1, QoS 2, PUBREL, SUBSCRIBE, UNSUBSCRIBE, PINGREQ).
// Oracles: no crash, no sanitizer report, no hang (poll_event ends: each call takes at most one
// packet); every byte written is a sequence of packets that decode, ending on a packet boundary
// when the stream is given up cleanly; output() covers exactly output_size() bytes; a command
// that fails queues and records nothing; PublishCompleted names an id that was on the wire;
// events carry what their type promises.
#include <array>
#include <cstring>

#include "edgekit/mqtt/connection.hpp"
#include "fuzz_support.hpp"

namespace {

using namespace edgekit::fuzz;
using edgekit::Duration;
using edgekit::Instant;

struct World {
  Instant now{Duration{10'000}};
  std::array<OutgoingRecord, 6> records{};
  std::array<std::uint16_t, 3> incoming{};
  TopicAliasArena<2, 16> in_aliases, out_aliases;
  std::array<char, 32> client_id{};
  std::array<std::byte, 1024> rx{};
  std::array<std::byte, 512> tx{};
  std::array<bool, 65536> on_wire{};  // packet ids of publishes written
  // The outbound stream of the current connection, split into packets.
  std::array<std::byte, 16'384> out{};
  std::size_t out_len = 0;
  Version version = Version::V5;
  std::uint8_t responder = 0;
  // What the responder answers, fed back at the next read command.
  std::array<std::byte, 4096> reply{};
  std::size_t reply_len = 0;
};

World* g;

template <class P>
void respond(const P& p) {
  auto n = encode(p, g->version, std::span<std::byte>(g->reply).subspan(g->reply_len));
  if (n) g->reply_len += *n;
}

void on_packet(Bytes frame) {
  if ((static_cast<std::uint8_t>(frame[0]) >> 4) == static_cast<std::uint8_t>(PacketType::Connect)) {
    auto c = decode_connect(frame);
    FUZZ_CHECK(c.has_value());
    g->version = c->version;
    if (g->responder & 1) {
      ConnAck a;
      a.session_present = !c->clean_start;
      respond(a);
    }
    return;
  }
  auto p = decode(frame, g->version);
  FUZZ_CHECK(p.has_value());
  if (const auto* pub = std::get_if<Publish>(&*p)) {
    if (pub->qos != QoS::AtMostOnce) {
      FUZZ_CHECK(pub->packet_id != 0);
      g->on_wire[pub->packet_id] = true;
    }
    if (pub->qos == QoS::AtLeastOnce && (g->responder & 2)) respond(PubAck{pub->packet_id, {}, {}});
    if (pub->qos == QoS::ExactlyOnce && (g->responder & 4)) respond(PubRec{pub->packet_id, {}, {}});
  } else if (const auto* rel = std::get_if<PubRel>(&*p)) {
    if (g->responder & 8) respond(PubComp{rel->packet_id, {}, {}});
  } else if (const auto* s = std::get_if<Subscribe>(&*p)) {
    if (g->responder & 16) {
      std::array<ReasonCode, 4> codes{};
      SubAck a;
      a.packet_id = s->packet_id;
      a.reason_codes = std::span<const ReasonCode>(codes.data(), 1);
      respond(a);
    }
  } else if (const auto* u = std::get_if<Unsubscribe>(&*p)) {
    if (g->responder & 32) {
      std::array<ReasonCode, 4> codes{};
      UnsubAck a;
      a.packet_id = u->packet_id;
      if (g->version == Version::V5) a.reason_codes = std::span<const ReasonCode>(codes.data(), 1);
      respond(a);
    }
  } else if (std::holds_alternative<PingReq>(*p)) {
    if (g->responder & 64) respond(PingResp{});
  }
}

void take_output(Bytes data) {
  for (std::byte b : data) {
    FUZZ_CHECK(g->out_len < g->out.size());
    g->out[g->out_len++] = b;
    auto fr = read_frame(Bytes(g->out.data(), g->out_len));
    FUZZ_CHECK(fr.has_value());
    if (!fr->complete) continue;
    on_packet(Bytes(g->out.data(), g->out_len));
    g->out_len = 0;
  }
}


constexpr std::string_view kTopics[] = {"a", "b/c", "sensors/kitchen/temp", "a"};

void check_output(const Connection& c) {
  std::array<Bytes, Connection::kSendQueuePackets * 2> parts{};
  const std::size_t n = c.output(parts);
  std::size_t total = 0;
  for (std::size_t i = 0; i < n; ++i) total += parts[i].size();
  FUZZ_CHECK(total == c.output_size());
  FUZZ_CHECK((total == 0) == c.output_empty());
}

void write(Connection& c, std::size_t budget) {
  while (budget > 0 && !c.output_empty()) {
    std::array<Bytes, 4> parts{};
    const std::size_t n = c.output(parts);
    FUZZ_CHECK(n > 0);
    std::size_t took = 0;
    for (std::size_t i = 0; i < n && budget > 0; ++i) {
      const std::size_t k = std::min(parts[i].size(), budget);
      take_output(parts[i].first(k));
      took += k;
      budget -= k;
      if (k < parts[i].size()) break;
    }
    c.on_written(took, g->now);
  }
}

void poll(Connection& c) {
  // Each poll takes at most one packet and the buffer holds at most 1 KB: bounded.
  for (int guard = 0; guard < 4096; ++guard) {
    auto e = c.poll_event(g->now);
    if (!e) return;
    switch (e->type) {
      case EventType::MessageReceived:
        FUZZ_CHECK(e->message != nullptr);
        break;
      case EventType::MessageLost:
        FUZZ_CHECK(e->message != nullptr && e->packet_id != 0);
        break;
      case EventType::PublishCompleted:
        FUZZ_CHECK(e->packet_id != 0 && g->on_wire[e->packet_id]);
        break;
      case EventType::Connected:
        FUZZ_CHECK(e->connack != nullptr && c.connected());
        break;
      case EventType::ConnectFailed:
      case EventType::ConnectionClosed:
        FUZZ_CHECK(e->error != Errc::Ok && c.state() == ConnectionState::Closed);
        break;
      default:
        break;
    }
  }
  FUZZ_CHECK(false && "poll_event did not run dry");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World world;
  g = &world;
  world = World{};
  Cursor in{data, size};
  const std::uint8_t config = in.u8();
  world.responder = static_cast<std::uint8_t>(config >> 1);
  Session session(SessionStorage{world.records, world.incoming, world.in_aliases.storage(),
                                 world.out_aliases.storage(), world.client_id});
  Connection conn(session, world.rx, world.tx);
  std::uint64_t mark = 0;
  std::array<std::byte, 64> payload{};
  std::array<std::byte, 280> big_payload{};

  while (in.more()) {
    const std::uint8_t cmd = in.u8();
    const std::uint8_t arg = in.u8();
    switch (cmd % 15) {
      case 0: {  // raw bytes from the "server"
        const Bytes b = in.take(arg);
        std::size_t fed = 0;
        for (int guard = 0; fed < b.size() && guard < 64; ++guard) {
          fed += conn.on_received(b.subspan(fed), world.now);
          poll(conn);
        }
        break;
      }
      case 1:  // what the responder answered
        if (world.reply_len > 0) {
          const std::size_t took = conn.on_received(Bytes(world.reply.data(), world.reply_len),
                                                    world.now);
          std::memmove(world.reply.data(), world.reply.data() + took, world.reply_len - took);
          world.reply_len -= took;
        }
        break;
      case 2:  // the socket takes `arg` bytes
        write(conn, arg);
        break;
      case 3: {  // connect; a new stream
        ConnectOptions o;
        o.version = (config & 1) ? Version::V5 : Version::V311;
        o.client_id = (arg & 1) ? "dev" : "";
        o.clean_start = (arg & 2) || o.client_id.empty();
        o.keep_alive_seconds = static_cast<std::uint16_t>(arg >> 4);
        if (o.version == Version::V5 && (arg & 4)) o.properties.set_session_expiry_interval(60);
        const bool was_open = conn.state() == ConnectionState::Connecting ||
                              conn.state() == ConnectionState::Connected;
        const auto before = conn.queued_total();
        auto r = conn.connect(o, world.now, Duration{1000});
        if (r) {
          world.out_len = 0;
          world.reply_len = 0;
        } else {
          FUZZ_CHECK(was_open || r.error() != Errc::AlreadyConnected);
          FUZZ_CHECK(conn.queued_total() == before);
        }
        break;
      }
      case 4: {  // publish
        Publish p;
        p.topic = kTopics[arg & 3];
        p.qos = static_cast<QoS>((arg >> 2) & 3);
        p.retain = arg & 0x10;
        p.payload = Bytes(payload.data(), (arg >> 5) * 8u);
        const auto records = session.records_in_use();
        const auto before = conn.queued_total();
        auto id = conn.publish(p, world.now);
        if (id) {
          FUZZ_CHECK((*id != 0) == (p.qos != QoS::AtMostOnce));
          if (p.qos == QoS::AtMostOnce) mark = before;
        } else {
          FUZZ_CHECK(conn.queued_total() == before);
          FUZZ_CHECK(session.records_in_use() == records);
        }
        break;
      }
      case 5: {  // subscribe
        const Subscription s{kTopics[arg & 3], {static_cast<QoS>((arg >> 2) % 3)}};
        const auto before = conn.queued_total();
        if (!conn.subscribe(std::span<const Subscription>(&s, 1), world.now)) {
          FUZZ_CHECK(conn.queued_total() == before);
        }
        break;
      }
      case 6: {
        const std::string_view f = kTopics[arg & 3];
        (void)conn.unsubscribe(std::span<const std::string_view>(&f, 1), world.now);
        break;
      }
      case 7:
        (void)conn.ping(world.now);
        break;
      case 8:
        (void)conn.disconnect(ReasonCode::Success, {}, world.now);
        break;
      case 9:
        poll(conn);
        break;
      case 10:  // time passes
        world.now = world.now + Duration{std::int64_t{arg} * 250};
        if (auto d = conn.next_deadline(); d && world.now >= *d) conn.on_timer(world.now);
        break;
      case 11:  // the socket dies
        conn.on_transport_closed((arg & 1) ? Errc::TransportError : Errc::TransportClosed,
                                 world.now);
        FUZZ_CHECK(conn.output_empty());
        world.out_len = 0;
        break;
      case 12:
        conn.close(Errc::ProtocolError, ReasonCode::ProtocolError, world.now);
        break;
      case 13:
        (void)conn.unqueue_last(mark);
        break;
      case 14: {  // a QoS 0 publish written at once past the queue; the socket takes some of it
        Publish p;
        p.topic = kTopics[arg & 3];
        p.dup = arg & 0x04;
        p.qos = (arg & 0x08) ? QoS::AtLeastOnce : QoS::AtMostOnce;
        p.retain = arg & 0x10;
        // 0..280 bytes: either side of kDirectCopyMax (copied behind the header, or not).
        p.payload = Bytes(big_payload.data(), (arg >> 5) * 40u);
        const std::size_t take = std::size_t{in.u8()} * 2;
        const auto queued = conn.queued_total();
        const auto written = conn.written_total();
        const auto d = conn.direct_publish(p);
        if (!d || d->head.empty()) {
          // Refused, or not for this path: nothing counted or queued.
          FUZZ_CHECK(conn.queued_total() == queued);
          break;
        }
        FUZZ_CHECK(p.qos == QoS::AtMostOnce && !p.dup && conn.output_empty());
        FUZZ_CHECK(d->payload.empty() || d->payload.size() == p.payload.size());
        const std::size_t total = d->head.size() + d->payload.size();
        const std::size_t n = std::min(total, take);
        const std::size_t from_head = std::min(n, d->head.size());
        take_output(d->head.first(from_head));
        take_output(d->payload.first(n - from_head));
        mark = queued;
        conn.on_direct_written(*d, n, world.now);
        FUZZ_CHECK(conn.queued_total() == queued + total);
        FUZZ_CHECK(conn.written_total() == written + n);
        FUZZ_CHECK(conn.output_size() == total - n);
        break;
      }
    }
    check_output(conn);
  }
  return 0;
}
