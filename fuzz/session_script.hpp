#pragma once
// The command language of fuzz_session: the input is a script the target runs against a Session
// (driven the way the client drives it), so libFuzzer explores sequences of inbound bytes,
// structured server packets, application calls, lost connections, reboots and time.
//
// Input: [config byte] then commands, each [opcode] [arguments]:
//   config: bit 0 = MQTT 5, bit 1 = use a MemorySessionStore (reboot possible)
//   kAdvance   u16 ms (×4)        advance time, run due timers (PINGREQ, ping timeout)
//   kRaw       u8 n, n bytes      inbound bytes as read from the network
//   kServer    u8 kind, u8 a, u8 b, u16 id   a server packet built with the encoder
//   kPublish   u8 flags, u8 payload length  application publish (topic from a table)
//   kSubscribe u8 flags           application subscribe
//   kUnsubscribe                  application unsubscribe
//   kConnect   u8 flags           start a connection (CONNECT sent; bit 5 switches version)
//   kLost                         the connection drops
//   kDisconnect u8 flags          client DISCONNECT
//   kDrain                        take every resend / lost operation
//   kReboot                       a new Session restored from the store
#include <cstdint>
#include <vector>

namespace edgekit::fuzz::script {

enum Op : std::uint8_t {
  kAdvance = 0,
  kRaw,
  kServer,
  kPublish,
  kSubscribe,
  kUnsubscribe,
  kConnect,
  kLost,
  kDisconnect,
  kDrain,
  kReboot,
  kOpCount
};

// kServer kinds.
enum Kind : std::uint8_t {
  kConnAck = 0,
  kPublishIn,
  kPubAck,
  kPubRec,
  kPubRel,
  kPubComp,
  kSubAck,
  kUnsubAck,
  kPingResp,
  kDisconnectIn,
  kKindCount
};

// Builds scripts for the seed corpus.
struct Builder {
  std::vector<std::uint8_t> b;
  explicit Builder(bool v5, bool store) { b.push_back((v5 ? 1 : 0) | (store ? 2 : 0)); }
  Builder& op(Op o) {
    b.push_back(o);
    return *this;
  }
  Builder& u8(std::uint8_t v) {
    b.push_back(v);
    return *this;
  }
  Builder& u16(std::uint16_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
    return *this;
  }
  Builder& advance(std::uint16_t quarter_ms) { return op(kAdvance).u16(quarter_ms); }
  // id 0 in `server`: the target substitutes the id of the most recent outstanding operation.
  Builder& server(Kind k, std::uint8_t a = 0, std::uint8_t c = 0, std::uint16_t id = 0) {
    return op(kServer).u8(k).u8(a).u8(c).u16(id);
  }
  Builder& publish(std::uint8_t flags, std::uint8_t len = 3) {
    return op(kPublish).u8(flags).u8(len);
  }
  Builder& connect(std::uint8_t flags) { return op(kConnect).u8(flags); }
};

}  // namespace edgekit::fuzz::script
