// Writes the seed corpora of the fuzz targets from the library's own encoders:
//   fuzz_seeds <dir>   →  <dir>/<target>/seed-NNN for every target.
// Seeds are generated at run time (scripts/fuzz), not committed.
#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "edgekit/mqtt/session.hpp"
#include "fuzz_support.hpp"
#include "seeds.hpp"
#include "session_script.hpp"

namespace {

using namespace edgekit::fuzz;

std::string g_root;

void write_seed(const char* target, const std::vector<std::uint8_t>& bytes) {
  static int counter = 0;
  const std::string dir = g_root + "/" + target;
  ::mkdir(dir.c_str(), 0755);
  char name[64];
  std::snprintf(name, sizeof name, "/seed-%04d", counter++);
  std::FILE* f = std::fopen((dir + name).c_str(), "wb");
  if (f == nullptr) {
    std::perror("fuzz_seeds");
    std::exit(1);
  }
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

constexpr UserProperty kUsers[] = {{"k", "v"}, {"key-2", "value \xC3\xA9"}};
constexpr std::uint32_t kSubIds[] = {5, 16'384};
constexpr std::array<std::byte, 3> kBlob = {std::byte{1}, std::byte{0}, std::byte{0xFF}};

// Properties a packet of `type` may carry (type 0: Will properties), with plausible values.
Properties props_for(unsigned type) {
  Properties p;
  switch (type) {
    case 0:
      p.set_payload_format_utf8(true);
      p.set_message_expiry_interval(60);
      p.set_content_type("text/plain");
      p.set_response_topic("reply/here");
      p.set_correlation_data(Bytes(kBlob));
      p.set_will_delay_interval(10);
      break;
    case 1:
      p.set_session_expiry_interval(3600);
      p.set_receive_maximum(20);
      p.set_maximum_packet_size(65'536);
      p.set_topic_alias_maximum(8);
      p.set_request_response_information(true);
      p.set_request_problem_information(false);
      p.set_authentication_method("SCRAM-SHA-1");
      p.set_authentication_data(Bytes(kBlob));
      break;
    case 2:
      p.set_session_expiry_interval(120);
      p.set_receive_maximum(10);
      p.set_maximum_qos(QoS::AtLeastOnce);
      p.set_retain_available(false);
      p.set_maximum_packet_size(4096);
      p.set_assigned_client_identifier("auto-7F3A");
      p.set_topic_alias_maximum(4);
      p.set_reason_string("ok");
      p.set_wildcard_subscription_available(true);
      p.set_subscription_identifier_available(true);
      p.set_shared_subscription_available(false);
      p.set_server_keep_alive(30);
      p.set_response_information("resp/");
      p.set_server_reference("other:1883");
      break;
    case 3:
      p.set_payload_format_utf8(false);
      p.set_message_expiry_interval(5);
      p.set_topic_alias(2);
      p.set_response_topic("r/t");
      p.set_correlation_data(Bytes(kBlob));
      p.subscription_identifiers = kSubIds;
      p.set_content_type("application/json");
      break;
    case 10:
      break;  // UNSUBSCRIBE: User Property only
    case 8:
      p.subscription_identifiers = std::span<const std::uint32_t>(kSubIds, 1);
      break;
    case 14:
      p.set_session_expiry_interval(0);
      p.set_reason_string("bye");
      p.set_server_reference("elsewhere");
      break;
    case 15:
      p.set_authentication_method("SCRAM-SHA-1");
      p.set_authentication_data(Bytes(kBlob));
      p.set_reason_string("more");
      break;
    default:
      if (type == 12 || type == 13) return p;
      p.set_reason_string("why");
      break;
  }
  if (type != 12 && type != 13) p.user_properties = kUsers;
  return p;
}

constexpr std::array<std::byte, 5> kPayload = {std::byte{'h'}, std::byte{'e'}, std::byte{'l'},
                                               std::byte{'l'}, std::byte{'o'}};
constexpr Subscription kSubs[] = {
    {"a/b", {QoS::AtMostOnce, false, false, RetainHandling::SendOnSubscribe}},
    {"sensors/+/temp", {QoS::AtLeastOnce, true, true, RetainHandling::SendIfNotSubscribed}},
    {"$share/g/x/#", {QoS::ExactlyOnce, false, false, RetainHandling::DoNotSend}}};
constexpr std::string_view kFilters[] = {"a/b", "x/#", "+"};
constexpr ReasonCode kSubCodes[] = {ReasonCode::Success, ReasonCode::GrantedQoS1,
                                    ReasonCode::GrantedQoS2, ReasonCode::UnspecifiedError};
constexpr ReasonCode kUnsubCodes[] = {ReasonCode::Success, ReasonCode::NoSubscriptionExisted};

// A sample of every packet type in `v` (several shapes of the interesting ones).
std::vector<Packet> samples(Version v) {
  const bool v5 = v == Version::V5;
  auto props = [&](unsigned t) { return v5 ? props_for(t) : Properties{}; };
  std::vector<Packet> out;
  {
    Connect c;
    c.version = v;
    c.client_id = "device-1";
    c.keep_alive = 60;
    c.properties = props(1);
    out.emplace_back(c);
    c.clean_start = false;
    c.username = "user";
    c.password = Bytes(kBlob);
    Will w;
    w.topic = "dev/1/status";
    w.payload = kPayload;
    w.qos = QoS::AtLeastOnce;
    w.retain = true;
    w.properties = props(0);
    c.will = w;
    out.emplace_back(c);
  }
  {
    ConnAck a;
    a.session_present = true;
    a.properties = props(2);
    out.emplace_back(a);
    ConnAck refused;
    refused.reason_code = ReasonCode::NotAuthorized;
    out.emplace_back(refused);
  }
  for (int q = 0; q < 3; ++q) {
    Publish p;
    p.topic = "sensors/kitchen/temp";
    p.payload = kPayload;
    p.qos = static_cast<QoS>(q);
    p.packet_id = q == 0 ? 0 : static_cast<std::uint16_t>(q * 1000 + 7);
    p.retain = q == 1;
    p.dup = q == 2;
    p.properties = props(3);
    out.emplace_back(p);
  }
  const ReasonCode ack_rc = v5 ? ReasonCode::NoMatchingSubscribers : ReasonCode::Success;
  out.emplace_back(PubAck{10, ack_rc, props(4)});
  out.emplace_back(PubAck{11, ReasonCode::Success, {}});
  out.emplace_back(PubRec{12, ReasonCode::Success, props(5)});
  out.emplace_back(
      PubRel{13, v5 ? ReasonCode::PacketIdentifierNotFound : ReasonCode::Success, props(6)});
  out.emplace_back(PubComp{14, ReasonCode::Success, props(7)});
  {
    Subscribe s;
    s.packet_id = 20;
    if (v5) {
      s.subscriptions = kSubs;
    } else {
      s.subscriptions = std::span<const Subscription>(kSubs, 1);
    }
    s.properties = props(8);
    out.emplace_back(s);
  }
  {
    SubAck s;
    s.packet_id = 20;
    s.reason_codes = kSubCodes;
    s.properties = props(9);
    out.emplace_back(s);
  }
  {
    Unsubscribe u;
    u.packet_id = 21;
    u.filters = kFilters;
    u.properties = props(10);
    out.emplace_back(u);
  }
  {
    UnsubAck u;
    u.packet_id = 21;
    if (v5) u.reason_codes = kUnsubCodes;
    u.properties = props(11);
    out.emplace_back(u);
  }
  out.emplace_back(PingReq{});
  out.emplace_back(PingResp{});
  {
    Disconnect d;
    if (v5) d.reason_code = ReasonCode::ServerShuttingDown;
    d.properties = props(14);
    out.emplace_back(d);
  }
  if (v5) {
    Auth a;
    a.reason_code = ReasonCode::ContinueAuthentication;
    a.properties = props(15);
    out.emplace_back(a);
  }
  return out;
}

std::vector<std::uint8_t> encoded(const Packet& p, Version v) {
  if (const auto* c = std::get_if<Connect>(&p)) v = c->version;
  auto n = encoded_size(p, v);
  if (!n) {
    std::fprintf(stderr, "fuzz_seeds: cannot encode %s: %s\n", to_string(type_of(p)),
                 to_string(n.error()));
    std::exit(1);
  }
  std::vector<std::uint8_t> out(*n);
  auto w = encode(p, v, std::as_writable_bytes(std::span(out)));
  if (!w) std::exit(1);
  return out;
}

void decode_seeds(const char* target, Version v) {
  for (const Packet& p : samples(v)) {
    const auto wire = encoded(p, v);
    std::vector<std::uint8_t> raw{0};
    raw.insert(raw.end(), wire.begin(), wire.end());
    write_seed(target, raw);
    // Mode 1: first byte + body, the target writes the length.
    auto fr = read_frame(std::as_bytes(std::span(wire)));
    std::vector<std::uint8_t> framed{1, wire[0]};
    framed.insert(framed.end(), wire.begin() + fr->header.header_size, wire.end());
    write_seed(target, framed);
  }
}

void frame_seeds() {
  for (Version v : {Version::V311, Version::V5}) {
    std::vector<std::uint8_t> stream{0, 17};
    for (const Packet& p : samples(v)) {
      const auto wire = encoded(p, v);
      stream.insert(stream.end(), wire.begin(), wire.end());
      std::vector<std::uint8_t> one{static_cast<std::uint8_t>(wire.size() % 8), 3};
      one.insert(one.end(), wire.begin(), wire.end());
      write_seed("fuzz_frame", one);
    }
    write_seed("fuzz_frame", stream);
  }
  // Long remaining lengths (2..4 length bytes) with bodies present or not.
  write_seed("fuzz_frame", {0, 1, 0x30, 0xC8, 0x01});
  write_seed("fuzz_frame", {4, 2, 0x30, 0x80, 0x80, 0x01});
  write_seed("fuzz_frame", {3, 9, 0x30, 0xFF, 0xFF, 0xFF, 0x7F});
}

void property_seeds() {
  for (unsigned t = 0; t < 16; ++t) {
    // Take the property block out of a packet carrying every allowed property: the longest
    // block that decode_properties accepts at some offset of the encoded packet.
    Properties p = props_for(t);
    Packet pkt;
    for (const Packet& s : samples(Version::V5)) {
      if (static_cast<unsigned>(type_of(s)) != (t == 0 ? 1u : t)) continue;
      if (t == 0 && !std::get<Connect>(s).will)
        continue;  // Will properties: the CONNECT with a will
      pkt = s;
      break;
    }
    const auto wire = encoded(pkt, Version::V5);
    std::size_t best = 0, best_at = 0;
    for (std::size_t k = 2; k < wire.size(); ++k) {
      std::size_t used = 0;
      auto r = decode_properties(std::as_bytes(std::span(wire)).subspan(k),
                                 static_cast<PacketType>(t), used);
      if (r && used > best) {
        best = used;
        best_at = k;
      }
    }
    std::vector<std::uint8_t> seed{static_cast<std::uint8_t>(t)};
    if (best == 0) {
      seed.push_back(0);  // an empty block
    } else {
      seed.insert(seed.end(), wire.begin() + best_at, wire.begin() + best_at + best);
    }
    write_seed("fuzz_properties", seed);
    (void)p;
  }
}

void session_seeds() {
  using namespace edgekit::fuzz::script;
  for (bool v5 : {false, true}) {
    for (bool store : {false, true}) {
      // Connect, QoS 1 and QoS 2 out, QoS 2 in twice (the duplicate), PUBREL, ping, resume.
      Builder b(v5, store);
      b.connect(0x02 | 0x0C).server(kConnAck, v5 ? 0x2C : 0, 0x05);
      b.publish(0x08, 4).server(kPubAck);
      b.publish(0x10, 2).server(kPubRec).server(kPubComp);
      b.server(kPublishIn, 0x08, 0, 77).server(kPublishIn, 0x28, 0, 77).server(kPubRel, 0, 0, 77);
      b.op(kSubscribe).u8(1).server(kSubAck, 1).op(kUnsubscribe).server(kUnsubAck);
      b.advance(60'000 / 4).server(kPingResp).advance(65'000 / 4);
      write_seed("fuzz_session", b.b);

      Builder r(v5, store);
      r.connect(0x10 | 0x04).server(kConnAck, 0, 0);
      r.publish(0x10, 1).publish(0x09, 1).server(kPubRec).server(kPublishIn, 0x08, 0, 9);
      r.op(kLost);
      if (store) r.op(kReboot);
      r.connect(0x10).server(kConnAck, 1, 0).op(kDrain).server(kPubRel, 0, 0, 9);
      r.server(kPublishIn, 0x28, 0, 9).server(kPubComp).op(kDisconnect).u8(1);
      write_seed("fuzz_session", r.b);

      Builder t(v5, store);
      t.connect(0x02).server(kConnAck, 0xFF, 0x42).publish(0x01, 0).publish(0x40, 0);
      t.server(kPublishIn, 0x00, 0x03).server(kPublishIn, 0x00, 0x13).server(kDisconnectIn, 1);
      write_seed("fuzz_session", t.b);
    }
  }
  // Raw bytes: a CONNACK and a PUBLISH as a network read would deliver them.
  Builder raw(true, false);
  // CONNACK (v5, no properties), then PUBLISH QoS 0 "a" with payload "x".
  const std::uint8_t bytes[] = {0x20, 0x03, 0x00, 0x00, 0x00, 0x30,
                                0x05, 0x00, 0x01, 0x61, 0x00, 0x78};
  raw.connect(0x02).op(kRaw).u8(sizeof bytes);
  for (std::uint8_t x : bytes) raw.u8(x);
  write_seed("fuzz_session", raw.b);
}

void store_seeds() {
  // Memory store: the arena a real session leaves behind.
  for (Version v : {Version::V311, Version::V5}) {
    constexpr std::size_t kSlot = 120;
    std::array<std::byte, 5 * kSlot> arena{};
    std::array<std::uint16_t, 3> ids{};
    MemorySessionStore store(arena, kSlot, ids);
    std::array<OutgoingRecord, 4> records{};
    std::array<std::uint16_t, 3> incoming{};
    TopicAliasArena<2, 16> a1, a2;
    std::array<char, 32> cid{};
    Session s(SessionStorage{records, incoming, a1.storage(), a2.storage(), cid}, &store);
    Connect c;
    c.version = v;
    c.client_id = "device-1";
    c.clean_start = false;
    if (v == Version::V5) c.properties.set_session_expiry_interval(600);
    if (!s.prepare_connect(c) || !s.on_connack(ConnAck{})) std::exit(1);
    Publish p1;
    p1.topic = "a/b";
    p1.payload = kPayload;
    p1.qos = QoS::AtLeastOnce;
    Publish p2 = p1;
    p2.qos = QoS::ExactlyOnce;
    if (!s.begin_publish(p1) || !s.begin_publish(p2)) std::exit(1);
    if (!s.on_pubrec(PubRec{p2.packet_id, ReasonCode::Success, {}})) std::exit(1);
    Publish in;
    in.topic = "x";
    in.qos = QoS::ExactlyOnce;
    in.packet_id = 300;
    if (!s.on_publish(in)) std::exit(1);
    std::vector<std::uint8_t> seed{0, static_cast<std::uint8_t>(kSlot - 20)};
    for (std::uint16_t id : ids) {
      seed.push_back(static_cast<std::uint8_t>(id >> 8));
      seed.push_back(static_cast<std::uint8_t>(id));
    }
    for (std::byte b : arena) seed.push_back(std::to_integer<std::uint8_t>(b));
    write_seed("fuzz_store", seed);
    seed[0] = 2;  // the same, sealed by the target
    write_seed("fuzz_store", seed);
  }
  // File store, sealed records: meta, a publish in each version, its release marker, an
  // inbound QoS 2 id, a leftover temp file.
  std::vector<std::uint8_t> f{3};
  auto rec = [&](std::uint8_t kind, std::uint16_t id, const std::vector<std::uint8_t>& body) {
    f.push_back(kind);
    f.push_back(static_cast<std::uint8_t>(id >> 8));
    f.push_back(static_cast<std::uint8_t>(id));
    f.push_back(static_cast<std::uint8_t>(body.size() >> 8));
    f.push_back(static_cast<std::uint8_t>(body.size()));
    f.insert(f.end(), body.begin(), body.end());
  };
  rec(3, 0, {0, 1, 0x10, 0x0E, 0, 0, 8, 0, 'd', 'e', 'v', 'i', 'c', 'e', '-', '1'});
  for (Version v : {Version::V311, Version::V5}) {
    Publish p;
    p.topic = "a/b";
    p.payload = kPayload;
    p.qos = v == Version::V5 ? QoS::ExactlyOnce : QoS::AtLeastOnce;
    p.packet_id = v == Version::V5 ? 7 : 8;
    std::vector<std::uint8_t> body{1, static_cast<std::uint8_t>(v == Version::V5 ? 1 : 0)};
    const auto wire = encoded(Packet(p), v);
    body.insert(body.end(), wire.begin(), wire.end());
    rec(0, p.packet_id, body);
  }
  rec(1, 7, {2, 1});
  rec(2, 300, {0, 1});
  rec(5, 9, {1, 2, 3});
  write_seed("fuzz_store", f);
  f[0] = 1;  // unsealed: the same bytes as raw files
  write_seed("fuzz_store", f);
}

void connection_seeds() {
  // Commands as in fuzz_connection.cpp (two bytes each: command, argument): 0 raw bytes, 1 the
  // responder's answers, 2 write n bytes, 3 connect, 4 publish, 5 subscribe, 6 unsubscribe,
  // 7 ping, 8 disconnect, 9 poll, 10 time, 11 socket dies, 12 close, 13 unqueue, 14 a direct
  // QoS 0 write (one more byte: how much of it the socket takes, halved).
  for (std::uint8_t v5 : {0, 1}) {
    const auto config = static_cast<std::uint8_t>(v5 | 0xFE);  // every answer on
    // A whole conversation: connect, subscribe, publish QoS 0/1/2, ping, disconnect.
    write_seed("fuzz_connection", {config, 3, 0x13, 2, 255, 1, 0, 9, 0, 5, 0x04, 2, 255, 1, 0,
                                   9, 0, 4, 0x21, 4, 0x44, 4, 0x48, 2, 255, 1, 0, 9, 0, 2, 255,
                                   1, 0, 9, 0, 7, 0, 2, 255, 1, 0, 9, 0, 8, 0, 2, 255, 9, 0});
    // A slow socket: a full queue, a few bytes at a time, time passing, keep-alive, a cut and a
    // resumed session.
    write_seed("fuzz_connection", {config, 3, 0x16, 2, 255, 1, 0, 9, 0, 4, 0x44, 4, 0x45,
                                   4, 0x46, 4, 0x47, 4, 0x44, 4, 0x45, 4, 0x46, 4, 0x47, 2, 3,
                                   10, 8, 2, 5, 13, 0, 11, 0, 9, 0, 3, 0x16, 2, 255, 1, 0, 9, 0,
                                   2, 7, 1, 0, 9, 0, 10, 80, 10, 80, 2, 255, 9, 0});
    // Direct QoS 0 writes: whole (a copied payload and a 280-byte one), short ones finished
    // through the queue, one refused while the rest waits, one taken back before it started.
    write_seed("fuzz_connection", {config, 3, 0x13, 2, 255, 1, 0, 9, 0, 14, 0x20, 255, 14, 0xE0,
                                   255, 14, 0xE1, 10, 14, 0x02, 255, 2, 255, 14, 0x40, 0, 13, 0,
                                   14, 0x03, 1, 2, 1, 2, 255, 9, 0});
  }
}

void client_seeds() {
  // Command numbers as in fuzz_client.cpp: 0 push raw, 1 push packet, 2 connect, 3 publish,
  // 4 publish_and_wait, 5 subscribe, 6 unsubscribe, 7 ping, 8 process_loop, 9 disconnect,
  // 10 peer close, 11 fail, 12 advance.
  for (std::uint8_t v5 : {0, 8}) {
    for (std::uint8_t chunk : {0, 2, 7}) {
      // Everything answered by the responder.
      write_seed("fuzz_client", {static_cast<std::uint8_t>(v5 | chunk),
                                 0x7F,
                                 2,
                                 0x03,
                                 3,
                                 0x04,
                                 3,
                                 'a',
                                 'b',
                                 'c',
                                 4,
                                 0x08,
                                 5,
                                 1,
                                 6,
                                 7,
                                 1,
                                 1,
                                 0x08,
                                 0,
                                 9,
                                 8,
                                 0x13,
                                 0x88,
                                 9});
      // The server's side scripted: CONNACK pushed, then a QoS 2 publish twice and its PUBREL.
      write_seed("fuzz_client", {static_cast<std::uint8_t>(v5 | chunk | 0x10),
                                 0x00,
                                 1,
                                 0,
                                 0,
                                 0,
                                 1,
                                 2,
                                 0x02,
                                 1,
                                 1,
                                 0x08,
                                 0,
                                 7,
                                 1,
                                 1,
                                 0x28,
                                 0,
                                 7,
                                 8,
                                 0,
                                 50,
                                 1,
                                 4,
                                 0,
                                 0,
                                 7,
                                 8,
                                 0,
                                 50,
                                 12,
                                 0x40,
                                 0,
                                 8,
                                 0x27,
                                 0x10,
                                 10,
                                 8,
                                 0,
                                 10});
    }
  }
}

void lite_seeds() {
  // Commands as in fuzz_lite.cpp: 0 push raw, 1 connect, 2 publish, 3 subscribe, 4 unsubscribe,
  // 5 process_loop, 6 disconnect, 7 peer close, 8 fail, 9 advance.
  for (std::uint8_t chunk : {0, 2, 7}) {
    // Everything answered by the broker: subscribe, QoS 1 and 2 out, a reply from the handler,
    // unsubscribe, keep-alive, disconnect.
    write_seed("fuzz_lite", {static_cast<std::uint8_t>(0x20 | chunk), 0x21, 1, 50, 0, 50, 3, 2, 1,
                             1, 0, 2, 5, 10, 2, 1, 1, 3, 'x', 'y', 'z', 10, 2, 2, 0, 1, 0x7E, 10, 5,
                             10, 5, 10, 4, 1, 1, 5, 10, 9, 30, 5, 40, 6});
    // The server scripted: CONNACK, a QoS 2 message twice and its PUBREL, then a PUBACK for no
    // record (fatal), and a connect that gets no CONNACK.
    write_seed("fuzz_lite", {chunk, 0xA1, 0, 0, 0, 0, 0, 10, 0, 9, 0x34, 7, 0, 1, 't', 0, 5, 'h',
                             'i', 5, 2, 0, 9, 0x3C, 7, 0, 1, 't', 0, 5, 'h', 'i', 5, 2, 0, 4, 0x62,
                             2, 0, 5, 5, 2, 0, 4, 0x40, 2, 0, 1, 5, 2, 0x01, 0, 0, 0, 5});
    // A persistent session: two publishes, the peer goes away, the session is resumed (the
    // scripted CONNACK says session present) and then found gone.
    write_seed("fuzz_lite", {static_cast<std::uint8_t>(0x08 | chunk), 0x81, 0, 0, 0, 0, 0, 10, 2,
                             1, 1, 1, 'a', 10, 2, 2, 0, 1, 'b', 10, 0, 4, 0x50, 2, 0, 2, 5, 2, 7,
                             5, 2, 0x81, 1, 0, 0, 0, 0, 10, 5, 2, 6, 0x81, 0, 0, 0, 0, 0, 10});
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds <output directory>\n");
    return 2;
  }
  g_root = argv[1];
  ::mkdir(g_root.c_str(), 0755);
  frame_seeds();
  decode_seeds("fuzz_decode_v311", Version::V311);
  decode_seeds("fuzz_decode_v5", Version::V5);
  property_seeds();
  session_seeds();
  store_seeds();
  client_seeds();
  connection_seeds();
  lite_seeds();
  edgekit::fuzz::pkcs11_seeds(write_seed);
  edgekit::fuzz::fleetd_seeds(write_seed);
  edgekit::fuzz::pki_seeds(write_seed);
  edgekit::fuzz::doc_seeds(write_seed);
  edgekit::fuzz::provisioning_seeds(write_seed);
  edgekit::fuzz::shadow_seeds(write_seed);
  edgekit::fuzz::jobs_seeds(write_seed);
  edgekit::fuzz::ota_seeds(write_seed);
#ifdef EDGEKIT_FUZZ_SIM_SEEDS
  edgekit::fuzz::sim_seeds(write_seed);
#endif
  return 0;
}
