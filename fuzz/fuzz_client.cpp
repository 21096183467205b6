// Fuzz target: the blocking Client over an in-memory transport and a simulated clock, fed with
// arbitrary inbound bytes at arbitrary times while the application calls it.
// Input: [config][responder flags][commands...]
//   config bits 0..2: recv chunk size (1, 2, 3, 7, 16, 64, 512, unlimited); bit 3: MQTT 5;
//   bit 4: sends accept at most 5 bytes per call (partial writes); bit 5: every 4th send would
//   block first.
//   responder flags: the fake broker answers CONNECT (bit 0), PUBLISH QoS 1 (1), QoS 2: PUBREC
//   (2) and PUBCOMP after PUBREL (3), SUBSCRIBE (4), UNSUBSCRIBE (5), PINGREQ (6) — built with
//   the encoder, so the flows complete; anything else comes from the commands.
//   commands: see `enum Cmd`.
// Oracles: no crash, no sanitizer report, no hang (every blocking call ends: the clock advances
// whenever the client waits); every byte the client writes is a sequence of packets that decode
// in its protocol version, with non-zero packet ids where required; publish() returns a non-zero
// id for QoS 1/2 and 0 for QoS 0; PublishCompleted names a publish the client put on the wire.
#include <array>
#include <cstring>

#include "edgekit/mqtt/client.hpp"
#include "fuzz_support.hpp"

namespace {

using namespace edgekit::fuzz;
using edgekit::Clock;
using edgekit::Duration;
using edgekit::Instant;
namespace tr = edgekit::transport;

class FuzzClock final : public Clock {
 public:
  Instant now() const noexcept override { return now_; }
  void advance(Duration d) noexcept { now_ = now_ + d; }
  void reset() { now_ = Instant{Duration{10'000}}; }

 private:
  Instant now_{Duration{10'000}};
};

struct World;
World* g;

// Captures and checks what the client writes; serves inbound bytes; answers like a broker when
// told to.
class FuzzTransport final : public tr::Transport {
 public:
  tr::IoResult send(tr::ConstBuffer data) noexcept override;
  tr::IoResult writev(std::span<const tr::ConstBuffer> buffers) noexcept override;
  tr::IoResult recv(std::span<std::byte> buffer) noexcept override;
  tr::WaitStatus wait(tr::Interest interest, std::uint32_t timeout_ms) noexcept override;
  void close() noexcept override { closed_ = true; }

  void push(Bytes b) {
    const std::size_t k = std::min(b.size(), in_.size() - in_len_);
    std::memcpy(in_.data() + in_len_, b.data(), k);
    in_len_ += k;
  }
  template <class P>
  void push_packet(const P& p, Version v) {
    std::array<std::byte, 512> buf;
    auto n = encode(p, v, buf);
    if (n) push(Bytes(buf.data(), *n));
  }
  void reset(std::uint8_t config, std::uint8_t responder) {
    static constexpr std::size_t kChunks[] = {1, 2, 3, 7, 16, 64, 512, 0};
    chunk_ = kChunks[config & 7];
    send_cap_ = (config & 0x10) ? 5 : 0;
    would_block_ = config & 0x20;
    responder_ = responder;
    in_pos_ = in_len_ = out_len_ = 0;
    closed_ = peer_closed_ = failed_ = false;
    sends_ = 0;
    version_ = Version::V5;
  }
  void peer_close() { peer_closed_ = true; }
  void fail() { failed_ = true; }
  void new_connection() {
    // A reconnect starts a fresh stream: drop what the old one still held.
    in_pos_ = in_len_ = out_len_ = 0;
    closed_ = peer_closed_ = failed_ = false;
  }

 private:
  void take_output(tr::ConstBuffer data);
  void on_packet(Bytes frame);

  std::array<std::byte, 65'536> in_{};
  std::size_t in_pos_ = 0, in_len_ = 0;
  std::array<std::byte, 16'384> out_{};  // a partial outbound packet
  std::size_t out_len_ = 0;
  std::size_t chunk_ = 0, send_cap_ = 0;
  bool would_block_ = false;
  std::uint8_t responder_ = 0;
  bool closed_ = false, peer_closed_ = false, failed_ = false;
  std::size_t sends_ = 0;
  Version version_ = Version::V5;
};

struct World {
  FuzzClock clock;
  FuzzTransport transport;
  std::array<OutgoingRecord, 4> records{};
  std::array<std::uint16_t, 3> incoming{};
  TopicAliasArena<2, 16> in_aliases, out_aliases;
  std::array<char, 32> client_id{};
  std::array<std::byte, 2048> rx{};
  std::array<std::byte, 2048> tx{};
  std::array<bool, 65536> handed_out{};  // packet ids of publishes the client wrote
};

tr::IoResult FuzzTransport::send(tr::ConstBuffer data) noexcept {
  const tr::ConstBuffer one[] = {data};
  return writev(one);
}

tr::IoResult FuzzTransport::writev(std::span<const tr::ConstBuffer> buffers) noexcept {
  if (closed_ || peer_closed_) return {tr::IoStatus::Closed, 0, 0};
  if (failed_) return {tr::IoStatus::Error, 0, 5};
  if (would_block_ && (++sends_ % 4) == 0) return {tr::IoStatus::WouldBlock, 0, 0};
  std::size_t budget = send_cap_ ? send_cap_ : SIZE_MAX;
  std::size_t total = 0;
  for (tr::ConstBuffer b : buffers) {
    const std::size_t k = std::min(b.size(), budget - total);
    take_output(b.first(k));
    total += k;
    if (k < b.size()) break;
  }
  return {tr::IoStatus::Ok, total, 0};
}

// Splits the outbound stream into packets; each must decode.
void FuzzTransport::take_output(tr::ConstBuffer data) {
  for (std::byte b : data) {
    FUZZ_CHECK(out_len_ < out_.size());
    out_[out_len_++] = b;
    auto fr = read_frame(Bytes(out_.data(), out_len_));
    FUZZ_CHECK(fr.has_value());
    if (!fr->complete) continue;
    on_packet(Bytes(out_.data(), out_len_));
    out_len_ = 0;
  }
}

void FuzzTransport::on_packet(Bytes frame) {
  auto first = static_cast<std::uint8_t>(frame[0]) >> 4;
  if (first == static_cast<std::uint8_t>(PacketType::Connect)) {
    auto c = decode_connect(frame);
    FUZZ_CHECK(c.has_value());
    version_ = c->version;
    if (responder_ & 1) {
      ConnAck a;
      a.session_present = !c->clean_start;
      push_packet(a, version_);
    }
    return;
  }
  auto p = decode(frame, version_);
  if (!p)
    std::fprintf(stderr, "client wrote a packet that does not decode: %s\n", to_string(p.error()));
  FUZZ_CHECK(p.has_value());
  if (const auto* pub = std::get_if<Publish>(&*p)) {
    if (pub->qos != QoS::AtMostOnce) {
      FUZZ_CHECK(pub->packet_id != 0);
      g->handed_out[pub->packet_id] = true;  // completions may only name ids put on the wire
    }
    if (pub->qos == QoS::AtLeastOnce && (responder_ & 2))
      push_packet(PubAck{pub->packet_id, {}, {}}, version_);
    if (pub->qos == QoS::ExactlyOnce && (responder_ & 4))
      push_packet(PubRec{pub->packet_id, {}, {}}, version_);
  } else if (const auto* rel = std::get_if<PubRel>(&*p)) {
    if (responder_ & 8) push_packet(PubComp{rel->packet_id, {}, {}}, version_);
  } else if (const auto* s = std::get_if<Subscribe>(&*p)) {
    if (responder_ & 16) {
      std::array<ReasonCode, 8> codes{};
      codes.fill(ReasonCode::GrantedQoS1);
      SubAck a;
      a.packet_id = s->packet_id;
      a.reason_codes = std::span<const ReasonCode>(
          codes.data(), std::min<std::size_t>(8, s->subscriptions.size()));
      push_packet(a, version_);
    }
  } else if (const auto* u = std::get_if<Unsubscribe>(&*p)) {
    if (responder_ & 32) {
      std::array<ReasonCode, 8> codes{};
      UnsubAck a;
      a.packet_id = u->packet_id;
      if (version_ == Version::V5)
        a.reason_codes =
            std::span<const ReasonCode>(codes.data(), std::min<std::size_t>(8, u->filters.size()));
      push_packet(a, version_);
    }
  } else if (std::holds_alternative<PingReq>(*p)) {
    if (responder_ & 64) push_packet(PingResp{}, version_);
  }
}

tr::IoResult FuzzTransport::recv(std::span<std::byte> buffer) noexcept {
  if (closed_) return {tr::IoStatus::Closed, 0, 0};
  if (failed_) return {tr::IoStatus::Error, 0, 5};
  if (in_pos_ == in_len_) {
    if (peer_closed_) return {tr::IoStatus::Closed, 0, 0};
    return {tr::IoStatus::WouldBlock, 0, 0};
  }
  std::size_t k = std::min(buffer.size(), in_len_ - in_pos_);
  if (chunk_ != 0) k = std::min(k, chunk_);
  std::memcpy(buffer.data(), in_.data() + in_pos_, k);
  in_pos_ += k;
  if (in_pos_ == in_len_) in_pos_ = in_len_ = 0;
  return {tr::IoStatus::Ok, k, 0};
}

tr::WaitStatus FuzzTransport::wait(tr::Interest interest, std::uint32_t timeout_ms) noexcept {
  const bool readable = in_pos_ != in_len_ || peer_closed_ || failed_ || closed_;
  if (interest != tr::Interest::Read) return tr::WaitStatus::Ready;
  if (readable) return tr::WaitStatus::Ready;
  // Nothing to read: the time passes. At least 1 ms, so a client that waits with 0 in a loop
  // still moves the clock towards its deadline (no hang).
  g->clock.advance(Duration{timeout_ms == 0 ? 1 : timeout_ms});
  return tr::WaitStatus::Timeout;
}

enum Cmd : std::uint8_t {
  kPushRaw = 0,  // u8 n, n bytes
  kPushPacket,   // u8 kind, u8 a, u16 id: a server packet built with the encoder
  kConnect,      // u8 flags
  kPublish,      // u8 flags, u8 payload length
  kPublishWait,  // u8 flags
  kSubscribe,    // u8 flags
  kUnsubscribe,
  kPing,
  kProcess,  // u16 timeout ms
  kDisconnect,
  kPeerClose,
  kFail,
  kAdvance,  // u16 ms
  kCmdCount
};


constexpr std::string_view kTopics[] = {"a", "b/c", "sensors/kitchen/temp", "a"};

void handle_event(void*, Client& client, const Event& e) {
  switch (e.type) {
    case EventType::MessageReceived:
      FUZZ_CHECK(e.message != nullptr);
      FUZZ_CHECK(!e.message->topic.empty());
      break;
    case EventType::PublishCompleted:
      FUZZ_CHECK(e.packet_id != 0 && g->handed_out[e.packet_id]);
      g->handed_out[e.packet_id] = false;
      break;
    case EventType::MessageLost:
      FUZZ_CHECK(e.message != nullptr);
      if (e.packet_id != 0) g->handed_out[e.packet_id] = false;
      break;
    default:
      break;
  }
  (void)client;
}

void push_server_packet(Cursor& c, Version v) {
  const std::uint8_t kind = c.u8() % 9;
  const std::uint8_t a = c.u8();
  std::uint16_t id = c.u16();
  if (id == 0) id = 1;
  auto& t = g->transport;
  switch (kind) {
    case 0: {
      ConnAck ack;
      ack.session_present = a & 1;
      if (a & 2) ack.reason_code = ReasonCode::ServerBusy;
      if (a & 4) ack.properties.set_receive_maximum(1);
      if (a & 8) ack.properties.set_maximum_qos(QoS::AtLeastOnce);
      if (a & 16) ack.properties.set_topic_alias_maximum(2);
      if (a & 32) ack.properties.set_server_keep_alive(1);
      if (a & 64) ack.properties.set_maximum_packet_size(40);
      t.push_packet(ack, v);
      break;
    }
    case 1: {
      Publish p;
      p.topic = kTopics[a & 3];
      p.qos = static_cast<QoS>((a >> 2) % 3);
      p.packet_id = p.qos == QoS::AtMostOnce ? 0 : id;
      p.dup = a & 0x20;
      if (a & 0x40) p.properties.set_topic_alias(1);
      if (a & 0x80) p.topic = "";
      t.push_packet(p, v);
      break;
    }
    case 2:
      t.push_packet(PubAck{id, a & 1 ? ReasonCode::QuotaExceeded : ReasonCode::Success, {}}, v);
      break;
    case 3:
      t.push_packet(PubRec{id, a & 1 ? ReasonCode::UnspecifiedError : ReasonCode::Success, {}}, v);
      break;
    case 4:
      t.push_packet(PubRel{id, {}, {}}, v);
      break;
    case 5:
      t.push_packet(PubComp{id, {}, {}}, v);
      break;
    case 6: {
      static constexpr ReasonCode kCodes[] = {ReasonCode::GrantedQoS1,
                                              ReasonCode::UnspecifiedError};
      SubAck s;
      s.packet_id = id;
      s.reason_codes = std::span<const ReasonCode>(kCodes, 1 + (a & 1));
      t.push_packet(s, v);
      break;
    }
    case 7:
      t.push_packet(PingResp{}, v);
      break;
    default: {
      Disconnect d;
      d.reason_code = ReasonCode::ServerShuttingDown;
      t.push_packet(d, v);
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  if (g == nullptr) g = new World();
  g->clock.reset();
  g->transport.reset(data[0], data[1]);
  g->handed_out.fill(false);
  const Version version = (data[0] & 8) ? Version::V5 : Version::V311;

  Session session(SessionStorage{g->records, g->incoming, g->in_aliases.storage(),
                                 g->out_aliases.storage(), g->client_id});
  Client client(g->transport, g->clock, session, g->rx, g->tx,
                EventHandler(&handle_event, nullptr));

  Cursor c{data + 2, size - 2};
  int steps = 0;
  while (c.more() && ++steps < 500) {
    switch (static_cast<Cmd>(c.u8() % kCmdCount)) {
      case kPushRaw: {
        const std::uint8_t n = c.u8();
        g->transport.push(c.take(n));
        break;
      }
      case kPushPacket:
        push_server_packet(c, version);
        break;
      case kConnect: {
        const std::uint8_t f = c.u8();
        if (client.connected()) break;
        g->transport.new_connection();
        (void)client.set_transport(g->transport);
        ConnectOptions o;
        o.version = version;
        o.client_id = "fuzz-client";
        o.clean_start = f & 1;
        o.keep_alive_seconds = static_cast<std::uint16_t>((f >> 1) & 3) * 5;
        if (version == Version::V5 && (f & 8)) o.properties.set_session_expiry_interval(300);
        (void)client.connect(o, Duration{1 + (f >> 4) * 500});
        break;
      }
      case kPublish:
      case kPublishWait: {
        const bool wait = c.i > 0 && c.p[c.i - 1] % kCmdCount == kPublishWait;
        const std::uint8_t f = c.u8();
        const std::uint8_t len = wait ? 3 : c.u8();
        Publish p;
        p.topic = kTopics[f & 3];
        p.qos = static_cast<QoS>((f >> 2) % 3);
        p.retain = f & 0x10;
        p.payload = c.take(len);
        if (wait) {
          (void)client.publish_and_wait(p, Duration{200});
        } else {
          auto r = client.publish(p, Duration{200});
          if (r) {
            if (p.qos == QoS::AtMostOnce) {
              FUZZ_CHECK(*r == 0);
            } else {
              FUZZ_CHECK(*r != 0);
            }
          }
        }
        break;
      }
      case kSubscribe: {
        const std::uint8_t f = c.u8();
        static constexpr Subscription kSubs[] = {{"a/+", {QoS::ExactlyOnce, false, false, {}}},
                                                 {"b/#", {QoS::AtLeastOnce, false, false, {}}}};
        std::array<ReasonCode, 2> codes{};
        (void)client.subscribe(std::span<const Subscription>(kSubs, 1 + (f & 1)), codes,
                               Duration{300});
        break;
      }
      case kUnsubscribe: {
        static constexpr std::string_view kFilters[] = {"a/+"};
        std::array<ReasonCode, 1> codes{};
        (void)client.unsubscribe(kFilters, codes, Duration{300});
        break;
      }
      case kPing:
        (void)client.ping(Duration{300});
        break;
      case kProcess:
        (void)client.process_loop(Duration{c.u16() % 10'000});
        break;
      case kDisconnect:
        (void)client.disconnect();
        break;
      case kPeerClose:
        g->transport.peer_close();
        break;
      case kFail:
        g->transport.fail();
        break;
      case kAdvance:
        g->clock.advance(Duration{c.u16()});
        break;
      default:
        break;
    }
    FUZZ_CHECK(session.records_in_use() <= g->records.size());
  }
  return 0;
}
