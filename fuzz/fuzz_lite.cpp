// Fuzz target: the minimal MQTT 3.1.1 client (lite.hpp) over an in-memory transport and a
// simulated clock, fed with arbitrary inbound bytes at arbitrary times while the application
// calls it.
// Input: [config][commands...]
//   config bits 0..2: recv chunk size (1, 2, 3, 7, 16, 64, 512, unlimited); bit 3: writes take at
//   most 5 bytes per call; bit 4: every 3rd write would block first; bit 5: a broker answers
//   CONNECT, PUBLISH QoS 1/2 (PUBACK, PUBREC, PUBCOMP after PUBREL), SUBSCRIBE, UNSUBSCRIBE and
//   PINGREQ, so that the flows complete.
//   commands: a byte whose low nibble (mod 10) is the `enum Cmd` and whose high bits are flags
//   (connect: 0x10 empty client id, 0x20 clean session, 0x40 a will, 0x80 a scripted CONNACK
//   from the next two bytes; publish: 0x10 retain), then the command's arguments.
// Oracles: no crash, no sanitizer report, no hang (every call ends: the clock advances whenever
// the client waits); every byte the client writes on a connection is a sequence of packets that
// decode as MQTT 3.1.1 client packets, with non-zero ids where required; publish returns a
// non-zero id for QoS 1/2 and 0 for QoS 0; PublishCompleted and MessageLost name a publish the
// client had put on the wire; records in use never exceed the storage; a fatal error leaves the
// client disconnected; event views are readable.
#include <array>
#include <cstring>
#include <algorithm>
#include <set>
#include <vector>

#include "edgekit/mqtt/lite.hpp"
#include "fuzz_support.hpp"

namespace {

using namespace edgekit::fuzz;
using edgekit::Clock;
using edgekit::Duration;
using edgekit::Instant;
namespace lite = edgekit::mqtt::lite;
namespace tr = edgekit::transport;

class FuzzClock final : public Clock {
 public:
  Instant now() const noexcept override { return now_; }
  void advance(Duration d) noexcept { now_ = now_ + d; }

 private:
  Instant now_{Duration{0xFFFF'F000}};  // near the 32-bit wrap of the client's clock
};

class FuzzTransport final : public tr::Transport {
 public:
  tr::IoResult send(tr::ConstBuffer data) noexcept override {
    const tr::ConstBuffer one[] = {data};
    return writev(one);
  }
  tr::IoResult writev(std::span<const tr::ConstBuffer> buffers) noexcept override {
    if (closed_ || peer_closed_) return {tr::IoStatus::Closed, 0, 0};
    if (failed_) return {tr::IoStatus::Error, 0, 5};
    if (block_every_ != 0 && ++writes_ % block_every_ == 0) return {tr::IoStatus::WouldBlock, 0, 0};
    std::size_t moved = 0;
    for (tr::ConstBuffer b : buffers) {
      for (std::byte c : b) {
        if (cap_ != 0 && moved == cap_) break;
        out_.push_back(c);
        ++moved;
      }
    }
    parse_out();
    return {tr::IoStatus::Ok, moved, 0};
  }
  tr::IoResult recv(std::span<std::byte> buffer) noexcept override {
    if (closed_) return {tr::IoStatus::Closed, 0, 0};
    if (failed_) return {tr::IoStatus::Error, 0, 5};
    if (in_.empty()) return {peer_closed_ ? tr::IoStatus::Closed : tr::IoStatus::WouldBlock, 0, 0};
    std::size_t k = std::min(buffer.size(), in_.size());
    if (chunk_ != 0) k = std::min(k, chunk_);
    std::memcpy(buffer.data(), in_.data(), k);
    in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(k));
    return {tr::IoStatus::Ok, k, 0};
  }
  tr::WaitStatus wait(tr::Interest interest, std::uint32_t timeout_ms) noexcept override {
    if (interest == tr::Interest::Write) return tr::WaitStatus::Ready;
    if (!in_.empty() || peer_closed_ || failed_ || closed_) return tr::WaitStatus::Ready;
    clock->advance(Duration{timeout_ms == 0 ? 1 : timeout_ms});
    return tr::WaitStatus::Timeout;
  }
  void close() noexcept override { closed_ = true; }

  // A new connection: a fresh byte stream both ways.
  void reopen() {
    closed_ = peer_closed_ = failed_ = false;
    out_.clear();
    in_.clear();
  }
  void push(Bytes b) {
    if (in_.size() + b.size() > 4096) return;
    in_.insert(in_.end(), b.begin(), b.end());
  }
  void push(std::initializer_list<std::uint8_t> b) {
    for (std::uint8_t c : b) in_.push_back(static_cast<std::byte>(c));
  }

  // Splits what the client wrote into packets; each must decode as a 3.1.1 client packet.
  void parse_out() {
    for (;;) {
      auto f = read_frame(Bytes(out_.data(), out_.size()));
      FUZZ_CHECK(f.has_value());
      if (!f->complete) return;
      const std::size_t size = f->header.packet_size();
      auto p = decode(Bytes(out_.data(), size), Version::V311);
      FUZZ_CHECK(p.has_value());
      on_packet(*p);
      out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(size));
    }
  }

  void on_packet(const Packet& p) {
    if (const auto* c = std::get_if<Connect>(&p)) {
      FUZZ_CHECK(c->version == Version::V311);
      if (answer) push({0x20, 2, 0, 0});
    } else if (const auto* pub = std::get_if<Publish>(&p)) {
      if (pub->qos != QoS::AtMostOnce) {
        FUZZ_CHECK(pub->packet_id != 0);
        on_wire.insert(pub->packet_id);
        if (answer) {
          const auto hi = static_cast<std::uint8_t>(pub->packet_id >> 8);
          const auto lo = static_cast<std::uint8_t>(pub->packet_id);
          push({static_cast<std::uint8_t>(pub->qos == QoS::AtLeastOnce ? 0x40 : 0x50), 2, hi, lo});
        }
      }
    } else if (const auto* rel = std::get_if<PubRel>(&p)) {
      FUZZ_CHECK(rel->packet_id != 0);
      if (answer) {
        push({0x70, 2, static_cast<std::uint8_t>(rel->packet_id >> 8),
              static_cast<std::uint8_t>(rel->packet_id)});
      }
    } else if (const auto* s = std::get_if<Subscribe>(&p)) {
      FUZZ_CHECK(s->packet_id != 0);
      std::size_t n = 0;
      for (const auto& sub : s->subscriptions) {
        (void)sub;
        ++n;
      }
      if (answer && n < 100) {
        push({0x90, static_cast<std::uint8_t>(2 + n), static_cast<std::uint8_t>(s->packet_id >> 8),
              static_cast<std::uint8_t>(s->packet_id)});
        for (std::size_t i = 0; i < n; ++i) push({static_cast<std::uint8_t>(i % 3)});
      }
    } else if (const auto* u = std::get_if<Unsubscribe>(&p)) {
      FUZZ_CHECK(u->packet_id != 0);
      if (answer) {
        push({0xB0, 2, static_cast<std::uint8_t>(u->packet_id >> 8),
              static_cast<std::uint8_t>(u->packet_id)});
      }
    } else if (std::holds_alternative<PingReq>(p)) {
      if (answer) push({0xD0, 0});
    } else if (const auto* ack = std::get_if<PubAck>(&p)) {
      FUZZ_CHECK(ack->packet_id != 0);
    } else if (const auto* rec = std::get_if<PubRec>(&p)) {
      FUZZ_CHECK(rec->packet_id != 0);
    } else if (const auto* comp = std::get_if<PubComp>(&p)) {
      FUZZ_CHECK(comp->packet_id != 0);
    } else {
      FUZZ_CHECK(std::holds_alternative<Disconnect>(p));
    }
  }

  FuzzClock* clock = nullptr;
  std::size_t chunk_ = 0;
  std::size_t cap_ = 0;
  unsigned block_every_ = 0;
  bool answer = false;
  bool peer_closed_ = false;
  bool failed_ = false;
  std::set<std::uint16_t> on_wire;

 private:
  std::vector<std::byte> in_;
  std::vector<std::byte> out_;
  unsigned writes_ = 0;
  bool closed_ = false;
};

struct App {
  FuzzTransport* t = nullptr;
  int depth = 0;
  void operator()(lite::Client& c, const lite::Event& e) {
    // Every view must be readable now.
    unsigned sum = 0;
    for (char ch : e.topic) sum += static_cast<unsigned char>(ch);
    for (std::byte b : e.payload) sum += static_cast<unsigned>(b);
    for (std::byte b : e.return_codes) sum += static_cast<unsigned>(b);
    (void)sum;
    if (e.type == lite::EventType::PublishCompleted || e.type == lite::EventType::MessageLost) {
      FUZZ_CHECK(e.packet_id != 0 && t->on_wire.count(e.packet_id) == 1);
    }
    FUZZ_CHECK(c.outstanding() <= 4);
    // The handler's allowed calls, once per nesting level.
    if (e.type == lite::EventType::MessageReceived && depth == 0 && !e.payload.empty() &&
        static_cast<unsigned>(e.payload[0]) == 0x7E) {
      ++depth;
      (void)c.publish("reply", e.payload.first(1), QoS::AtMostOnce, false, Duration{100});
      FUZZ_CHECK(c.process_loop(Duration{0}).error() == Errc::CalledFromHandler);
      --depth;
    }
  }
};

enum Cmd : std::uint8_t {
  kPushRaw, kConnect, kPublish, kSubscribe, kUnsubscribe, kLoop, kDisconnect, kPeerClose,
  kFail, kAdvance, kCount
};

constexpr std::string_view kTopics[] = {"a", "a/b", "a/+", "#", "", "$SYS/x", "a/b/c/d/e/f"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Cursor in{data, size};
  const std::uint8_t config = in.u8();
  static constexpr std::size_t kChunks[] = {1, 2, 3, 7, 16, 64, 512, 0};
  FuzzClock clock;
  FuzzTransport t;
  t.clock = &clock;
  t.chunk_ = kChunks[config & 7];
  t.cap_ = (config & 8) != 0 ? 5 : 0;
  t.block_every_ = (config & 16) != 0 ? 3 : 0;
  t.answer = (config & 32) != 0;
  std::array<lite::Record, 4> records{};
  std::array<std::uint16_t, 2> qos2{};
  std::array<std::byte, 96> rx{};
  App app{&t};
  lite::Client client(clock, records, qos2, rx, lite::Handler::bind(app));

  for (int steps = 0; in.more() && steps < 200; ++steps) {
    const std::uint8_t cmd = in.u8();
    switch ((cmd & 0x0F) % kCount) {
      case kPushRaw: t.push(in.take(in.u8() % 64)); break;
      case kConnect: {
        if (!client.connected()) t.reopen();
        if ((cmd & 0x80) != 0) t.push({0x20, 2, in.u8(), in.u8()});  // a scripted CONNACK
        lite::ConnectOptions o;
        o.client_id = (cmd & 0x10) != 0 ? "" : "fuzz";
        o.clean_session = (cmd & 0x20) != 0;
        o.keep_alive_s = static_cast<std::uint16_t>(in.u8() % 4);
        o.ping_timeout = Duration{in.u8() * 10};
        lite::Will w{"will", Bytes{}, static_cast<QoS>(in.u8() % 4), false};
        if ((cmd & 0x40) != 0) o.will = &w;
        const bool was = client.connected();
        auto r = client.connect(t, o, Duration{in.u8() * 20});
        if (was) FUZZ_CHECK(!r && r.error() == Errc::AlreadyConnected);
        if (!r && r.error() != Errc::AlreadyConnected) {
          FUZZ_CHECK(!client.connected());
        }
        break;
      }
      case kPublish: {
        const auto qos = static_cast<QoS>(in.u8() % 4);
        const std::string_view topic = kTopics[in.u8() % std::size(kTopics)];
        const Bytes payload = in.take(in.u8() % 32);  // the input outlives the client
        auto r = client.publish(topic, payload, qos, (cmd & 0x10) != 0, Duration{in.u8() * 10});
        if (r) FUZZ_CHECK((*r == 0) == (qos == QoS::AtMostOnce));
        break;
      }
      case kSubscribe: {
        std::array<lite::Filter, 8> f;
        const std::size_t n = in.u8() % (f.size() + 1);
        for (std::size_t i = 0; i < n; ++i) {
          f[i] = {kTopics[in.u8() % std::size(kTopics)], static_cast<QoS>(in.u8() % 4)};
        }
        (void)client.subscribe(std::span<const lite::Filter>(f.data(), n), Duration{100});
        break;
      }
      case kUnsubscribe: {
        std::array<std::string_view, 8> f;
        const std::size_t n = in.u8() % (f.size() + 1);
        for (std::size_t i = 0; i < n; ++i) f[i] = kTopics[in.u8() % std::size(kTopics)];
        (void)client.unsubscribe(std::span<const std::string_view>(f.data(), n), Duration{100});
        break;
      }
      case kLoop: {
        auto r = client.process_loop(Duration{in.u8() * 50});
        if (!r && r.error() != Errc::NotConnected) FUZZ_CHECK(!client.connected());
        break;
      }
      case kDisconnect:
        (void)client.disconnect(Duration{100});
        FUZZ_CHECK(!client.connected());
        break;
      case kPeerClose: t.peer_closed_ = true; break;
      case kFail: t.failed_ = true; break;
      default: clock.advance(Duration{in.u8() * 100}); break;
    }
    FUZZ_CHECK(client.outstanding() <= records.size());
  }
  return 0;
}
