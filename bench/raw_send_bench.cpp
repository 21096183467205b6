// The reference line of the agent benchmark: a minimal publisher that makes one system call per
// message. One thread, one blocking TCP socket (TCP_NODELAY); CONNECT and every PUBLISH are
// encoded with edgekit's codec and each PUBLISH leaves by its own send(). No MQTT session logic:
// no retries, no persistence, no keep-alive, no queue. At QoS 1 it counts PUBACKs (4 bytes each
// in MQTT 3.1.1) with blocking recv()s whenever WINDOW publishes are unacknowledged, until at most
// WINDOW / 2 are (the same low-water mark as bench_mt.h), so its reads are batched and its sends
// are not: what "one system call per message" costs.
// Arguments and output: bench_mt.h (THREADS is accepted and ignored: always one thread).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_mt.h"
#include "edgekit/mqtt/codec.hpp"

namespace mqtt = edgekit::mqtt;

namespace {

bool send_all(int fd, const std::byte* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  bench_args a{};
  long threads = 0;
  if (!bench_mt_parse(argc, argv, &a, &threads)) return 2;
  if (a.version != 311) {
    std::fprintf(stderr, "raw_send_bench: only MQTT 3.1.1\n");
    return 2;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(a.port));
  if (fd < 0 || ::inet_pton(AF_INET, a.host, &sa.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::fprintf(stderr, "raw_send_bench: cannot connect\n");
    return 1;
  }
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  std::array<std::byte, 512> out{};
  std::array<std::byte, 16 * 1024> in{};
  const std::string id = "raw-" + std::to_string(getpid());
  mqtt::Connect c;
  c.version = mqtt::Version::V311;
  c.client_id = id;
  c.keep_alive = 0;
  auto n = mqtt::encode(c, mqtt::Version::V311, out);
  if (!n || !send_all(fd, out.data(), *n)) return 1;
  // CONNACK: 4 bytes, return code last.
  std::size_t got = 0;
  while (got < 4) {
    const ssize_t r = ::recv(fd, in.data() + got, 4 - got, 0);
    if (r <= 0) return 1;
    got += static_cast<std::size_t>(r);
  }
  if (in[3] != std::byte{0}) {
    std::fprintf(stderr, "raw_send_bench: connection refused\n");
    return 1;
  }

  std::vector<std::byte> payload(static_cast<std::size_t>(a.payload), std::byte{'x'});
  mqtt::Publish p;
  p.topic = a.topic;
  p.payload = mqtt::Bytes(payload.data(), payload.size());
  p.qos = a.qos == 1 ? mqtt::QoS::AtLeastOnce : mqtt::QoS::AtMostOnce;
  long outstanding = 0;
  std::size_t ack_bytes = 0;  // PUBACK bytes not yet counted (a read may split one)
  long reads = 0, sends = 0;
  auto read_acks = [&]() -> bool {
    const ssize_t r = ::recv(fd, in.data(), in.size(), 0);
    ++reads;
    if (r <= 0) return false;
    ack_bytes += static_cast<std::size_t>(r);
    outstanding -= static_cast<long>(ack_bytes / 4);
    ack_bytes %= 4;
    return true;
  };

  bench_result res{};
  res.client = "raw-send";
  res.args = &a;
  const std::int64_t cpu0 = bench_cpu_us();
  res.t_start_ns = bench_now_ns();
  std::uint16_t next_id = 1;
  for (long i = 0; i < a.count; ++i) {
    if (p.qos != mqtt::QoS::AtMostOnce) {
      if (outstanding >= a.window) {
        // The harness's low-water mark (bench_mt.h): drain to half the window, then refill.
        while (outstanding > a.window / 2) {
          if (!read_acks()) return 1;
        }
      }
      p.packet_id = next_id;
      next_id = static_cast<std::uint16_t>(next_id == 65535 ? 1 : next_id + 1);
      ++outstanding;
    }
    auto len = mqtt::encode(p, mqtt::Version::V311, out);
    if (!len) return 1;
    ++sends;
    if (!send_all(fd, out.data(), *len)) return 1;
  }
  while (outstanding > 0) {
    if (!read_acks()) return 1;
  }
  res.t_end_ns = bench_now_ns();
  res.cpu_us = bench_cpu_us() - cpu0;
  res.messages = a.count;
  const std::byte disconnect[2] = {std::byte{0xE0}, std::byte{0x00}};
  (void)send_all(fd, disconnect, 2);
  ::close(fd);
  char extra[128];
  std::snprintf(extra, sizeof extra, "\"transport_writes\":%ld,\"transport_reads\":%ld", sends,
                reads);
  bench_mt_print(&res, 1, extra);
  return 0;
}
