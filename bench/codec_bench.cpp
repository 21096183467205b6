// Codec micro-benchmarks (Google Benchmark): PUBLISH encode/decode for both protocol versions,
// QoS 0 and 1, with and without a few MQTT 5 properties; encode_publish_header (the client's
// send path: header only, payload sent from the caller's memory); the frame reader over a
// buffer of many packets; decode both through the generic decode() and the client's
// decode_from_server(). Items = packets, bytes = encoded packet bytes.
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <vector>

#include "edgekit/mqtt/codec.hpp"

namespace mqtt = edgekit::mqtt;

namespace {

constexpr std::size_t kPayload = 64;
const std::array<std::byte, kPayload> g_payload = [] {
  std::array<std::byte, kPayload> p{};
  for (auto& b : p) b = std::byte{'x'};
  return p;
}();
const mqtt::UserProperty g_user[] = {{"unit", "celsius"}};

// Variant: 0 = MQTT 3.1.1, 1 = MQTT 5 without properties, 2 = MQTT 5 with a few properties
// (Message Expiry Interval, Content Type, one User Property).
mqtt::Publish make_publish(int variant, int qos) {
  mqtt::Publish p;
  p.topic = "sensors/device-42/temperature";
  p.payload = mqtt::Bytes(g_payload.data(), g_payload.size());
  p.qos = qos == 1 ? mqtt::QoS::AtLeastOnce : mqtt::QoS::AtMostOnce;
  p.packet_id = qos == 1 ? 4242 : 0;
  if (variant == 2) {
    p.properties.set_message_expiry_interval(3600);
    p.properties.set_content_type("application/json");
    p.properties.user_properties = g_user;
  }
  return p;
}

mqtt::Version version_of(int variant) { return variant == 0 ? mqtt::Version::V311 : mqtt::Version::V5; }

void set_label(benchmark::State& state, int variant, int qos) {
  static const char* names[] = {"v3.1.1", "v5", "v5+props"};
  state.SetLabel(std::string(names[variant]) + " QoS" + std::to_string(qos));
}

void BM_PublishEncode(benchmark::State& state) {
  const int variant = static_cast<int>(state.range(0));
  const int qos = static_cast<int>(state.range(1));
  const mqtt::Publish p = make_publish(variant, qos);
  std::array<std::byte, 512> out{};
  std::size_t n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(&p);
    auto r = mqtt::encode(p, version_of(variant), out);
    if (!r) state.SkipWithError("encode failed");
    n = *r;
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
  set_label(state, variant, qos);
}

void BM_PublishHeaderEncode(benchmark::State& state) {
  const int variant = static_cast<int>(state.range(0));
  const int qos = static_cast<int>(state.range(1));
  const mqtt::Publish p = make_publish(variant, qos);
  std::array<std::byte, 512> out{};
  std::size_t n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(&p);
    auto r = mqtt::encode_publish_header(p, version_of(variant), out);
    if (!r) state.SkipWithError("encode_publish_header failed");
    n = *r + p.payload.size();
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
  set_label(state, variant, qos);
}

std::vector<std::byte> encoded(int variant, int qos) {
  const mqtt::Publish p = make_publish(variant, qos);
  std::vector<std::byte> buf(512);
  auto n = mqtt::encode(p, version_of(variant), buf);
  buf.resize(n ? *n : 0);
  return buf;
}

void BM_PublishDecode(benchmark::State& state) {
  const int variant = static_cast<int>(state.range(0));
  const int qos = static_cast<int>(state.range(1));
  const auto frame = encoded(variant, qos);
  for (auto _ : state) {
    benchmark::DoNotOptimize(frame.data());
    auto r = mqtt::decode_publish(frame, version_of(variant));
    if (!r) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * frame.size()));
  set_label(state, variant, qos);
}

// The generic entry point (servers, tools, tests): decode() into a Result<Packet>.
void BM_PacketDecode(benchmark::State& state) {
  const int variant = static_cast<int>(state.range(0));
  const int qos = static_cast<int>(state.range(1));
  const auto frame = encoded(variant, qos);
  for (auto _ : state) {
    benchmark::DoNotOptimize(frame.data());
    auto r = mqtt::decode(frame, version_of(variant));
    if (!r) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * frame.size()));
  set_label(state, variant, qos);
}

// The client's entry point: decode_from_server() in place into the caller's Packet.
void BM_ClientDecode(benchmark::State& state) {
  const int variant = static_cast<int>(state.range(0));
  const int qos = static_cast<int>(state.range(1));
  const auto frame = encoded(variant, qos);
  mqtt::Packet packet;
  for (auto _ : state) {
    benchmark::DoNotOptimize(frame.data());
    auto r = mqtt::decode_from_server(frame, version_of(variant), packet);
    if (!r) state.SkipWithError("decode_from_server failed");
    benchmark::DoNotOptimize(&packet);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * frame.size()));
  set_label(state, variant, qos);
}

// read_frame over a buffer of 1000 back-to-back 64-byte-payload PUBLISH packets (what one large
// recv hands the client): delimit every packet.
void BM_FrameReader(benchmark::State& state) {
  const int variant = static_cast<int>(state.range(0));
  const auto one = encoded(variant, 1);
  constexpr std::size_t kPackets = 1000;
  std::vector<std::byte> buf;
  for (std::size_t i = 0; i < kPackets; ++i) buf.insert(buf.end(), one.begin(), one.end());
  for (auto _ : state) {
    mqtt::Bytes rest(buf);
    std::size_t count = 0;
    while (!rest.empty()) {
      auto f = mqtt::read_frame(rest);
      if (!f || !f->complete) {
        state.SkipWithError("read_frame failed");
        break;
      }
      rest = rest.subspan(f->header.packet_size());
      ++count;
    }
    benchmark::DoNotOptimize(count);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kPackets));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * buf.size()));
  set_label(state, variant, 1);
}

// Frame reader + decode of every packet: the codec's whole share of receiving a batch.
void BM_FrameReaderDecode(benchmark::State& state) {
  const int variant = static_cast<int>(state.range(0));
  const auto one = encoded(variant, 1);
  constexpr std::size_t kPackets = 1000;
  std::vector<std::byte> buf;
  for (std::size_t i = 0; i < kPackets; ++i) buf.insert(buf.end(), one.begin(), one.end());
  for (auto _ : state) {
    mqtt::Bytes rest(buf);
    while (!rest.empty()) {
      auto f = mqtt::read_frame(rest);
      if (!f || !f->complete) {
        state.SkipWithError("read_frame failed");
        break;
      }
      auto p = mqtt::decode(rest.first(f->header.packet_size()), version_of(variant));
      benchmark::DoNotOptimize(p);
      rest = rest.subspan(f->header.packet_size());
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kPackets));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * buf.size()));
  set_label(state, variant, 1);
}

void publish_args(benchmark::internal::Benchmark* b) {
  for (int variant : {0, 1, 2})
    for (int qos : {0, 1}) b->Args({variant, qos});
}

}  // namespace

BENCHMARK(BM_PublishEncode)->Apply(publish_args);
BENCHMARK(BM_PublishHeaderEncode)->Apply(publish_args);
BENCHMARK(BM_PublishDecode)->Apply(publish_args);
BENCHMARK(BM_PacketDecode)->Apply(publish_args);
BENCHMARK(BM_ClientDecode)->Apply(publish_args);
BENCHMARK(BM_FrameReader)->DenseRange(0, 2);
BENCHMARK(BM_FrameReaderDecode)->DenseRange(0, 2);

BENCHMARK_MAIN();
