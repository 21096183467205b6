// The secured broker's costs, measured from a client's side (scripts/bench-fleetd runs it against
// Mosquitto with edgekit's plugin and fleetd deciding, and against the same Mosquitto with a static
// acl_file and no plugin, alternately). Not part of the test suite. One JSON line per run.
//
//   fleetd_bench connects  <port> <ca> <cert>,<key>[;<cert>,<key>...] <count per thread>
//       Full mutual-TLS handshakes (no resumption) + MQTT 5 CONNECT/CONNACK + DISCONNECT, one
//       thread per certificate (each connects as the certificate's CN, its thing name), back to
//       back. Reports connects per second (all threads) and the latency of one connect.
//   fleetd_bench publish   <port> <ca> <cert> <key> <count> <window>
//       One mutual-TLS connection as the certificate's CN subscribes to `<CN>/bench` and publishes
//       `count` QoS 1 messages of 64 bytes there with `window` unacknowledged at most; every message
//       passes the broker's publish check and its delivery check. Reports messages per second
//       (first publish to last arrival).
//   fleetd_bench decisions <hooks port> <hooks token file> <certificate id> <client id> <count>
//       The decision interface itself: POST /hooks/v1/authenticate back to back over one
//       keep-alive HTTP connection, as the plugin asks at each connect. Reports decisions per
//       second and the latency of one.

#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "edgekit/core/clock.hpp"
#include "edgekit/mqtt/client.hpp"
#include "edgekit/mqtt/session.hpp"
#include "edgekit/tls/tls.hpp"

namespace {

using namespace edgekit;
using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// The certificate's subject CN: the thing name and client id the bench connects as.
std::string common_name(const std::string& cert_file) {
  std::string cn;
  FILE* f = std::fopen(cert_file.c_str(), "r");
  if (f == nullptr) return cn;
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (x == nullptr) return cn;
  std::array<char, 256> buf{};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf.data(),
                                static_cast<int>(buf.size())) > 0) {
    cn = buf.data();
  }
  X509_free(x);
  return cn;
}

// One MQTT client over a TLS transport, with its own buffers.
struct Device {
  explicit Device(mqtt::EventHandler h = {}) : rx(64 * 1024), tx(16 * 1024) {
    mqtt::SessionStorage s;
    s.outgoing = outgoing;
    s.incoming_qos2 = incoming_qos2;
    s.client_id = client_id;
    session = std::make_unique<mqtt::Session>(s);
    client = std::make_unique<mqtt::Client>(clock, *session, rx, tx, h);
  }
  SteadyClock clock;
  std::vector<std::byte> rx, tx;
  std::array<mqtt::OutgoingRecord, 64> outgoing{};
  std::array<std::uint16_t, 64> incoming_qos2{};
  std::array<char, 128> client_id{};
  std::unique_ptr<mqtt::Session> session;
  std::unique_ptr<mqtt::Client> client;
  std::unique_ptr<tls::TlsTransport> transport;
};

std::unique_ptr<tls::TlsContext> context(const std::string& ca, const std::string& cert,
                                         const std::string& key) {
  tls::Config c;
  c.ca_file = ca;
  c.certificate_file = cert;
  c.private_key_file = key;
  auto ctx = tls::TlsContext::create(c);
  if (!ctx) {
    std::fprintf(stderr, "fleetd_bench: TLS set-up: %s\n", ctx.error().message().c_str());
    return nullptr;
  }
  return std::make_unique<tls::TlsContext>(std::move(*ctx));
}

// TLS handshake + MQTT CONNECT; an empty string on success, else why not.
std::string open(Device& d, const tls::TlsContext& ctx, std::uint16_t port, const std::string& id) {
  auto t = tls::TlsTransport::connect(ctx, "localhost", port, Duration{10000});
  if (!t) return "TLS: " + t.error().message();
  d.transport = std::make_unique<tls::TlsTransport>(std::move(*t));
  if (auto s = d.client->set_transport(*d.transport); !s) return mqtt::to_string(s.error());
  mqtt::ConnectOptions o;
  o.version = mqtt::Version::V5;
  o.client_id = id;
  auto r = d.client->connect(o, Duration{10000});
  if (!r) return std::string("MQTT connect: ") + mqtt::to_string(r.error());
  return {};
}

int connects(std::uint16_t port, const std::string& ca, const std::string& pairs, int count) {
  struct Job {
    std::string cert, key, id;
    std::unique_ptr<tls::TlsContext> ctx;
    std::vector<double> ms;
    int failures = 0;
    std::string error;
  };
  std::vector<Job> jobs;
  std::stringstream in(pairs);
  for (std::string pair; std::getline(in, pair, ';');) {
    const auto comma = pair.find(',');
    if (comma == std::string::npos) {
      std::fprintf(stderr, "fleetd_bench: '%s' is not <cert>,<key>\n", pair.c_str());
      return 2;
    }
    Job j;
    j.cert = pair.substr(0, comma);
    j.key = pair.substr(comma + 1);
    j.id = common_name(j.cert);
    j.ctx = context(ca, j.cert, j.key);
    if (!j.ctx || j.id.empty()) return 2;
    jobs.push_back(std::move(j));
  }
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (auto& j : jobs) {
    threads.emplace_back([&j, port, count] {
      for (int i = 0; i < count; ++i) {
        Device d;
        const auto t0 = Clock::now();
        auto e = open(d, *j.ctx, port, j.id);
        if (!e.empty()) {
          ++j.failures;
          j.error = e;
          continue;
        }
        (void)d.client->disconnect();
        j.ms.push_back(ms_between(t0, Clock::now()));
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = ms_between(start, Clock::now()) / 1000.0;
  std::vector<double> all;
  int failures = 0;
  for (auto& j : jobs) {
    all.insert(all.end(), j.ms.begin(), j.ms.end());
    failures += j.failures;
    if (!j.error.empty()) std::fprintf(stderr, "fleetd_bench: %s: %s\n", j.id.c_str(), j.error.c_str());
  }
  std::printf("{\"mode\":\"connects\",\"threads\":%zu,\"connects\":%zu,\"failures\":%d,"
              "\"seconds\":%.3f,\"per_second\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
              jobs.size(), all.size(), failures, seconds, static_cast<double>(all.size()) / seconds,
              percentile(all, 50), percentile(all, 99));
  return failures == 0 ? 0 : 3;
}

struct Counter {
  long completed = 0;
  long received = 0;
  Clock::time_point last;
  void operator()(mqtt::Client&, const mqtt::Event& e) {
    if (e.type == mqtt::EventType::PublishCompleted) ++completed;
    if (e.type == mqtt::EventType::MessageReceived) {
      ++received;
      last = Clock::now();
    }
  }
};

int publish(std::uint16_t port, const std::string& ca, const std::string& cert,
            const std::string& key, long count, long window) {
  auto ctx = context(ca, cert, key);
  const std::string id = common_name(cert);
  if (!ctx || id.empty()) return 2;
  Counter counter;
  Device d(mqtt::EventHandler::bind(counter));
  if (auto e = open(d, *ctx, port, id); !e.empty()) {
    std::fprintf(stderr, "fleetd_bench: %s\n", e.c_str());
    return 1;
  }
  const std::string topic = id + "/bench";
  mqtt::Subscription sub{topic, mqtt::SubscribeOptions{mqtt::QoS::AtLeastOnce}};
  std::array<mqtt::ReasonCode, 1> codes{};
  if (auto r = d.client->subscribe({&sub, 1}, codes, Duration{10000});
      !r || mqtt::is_error(codes[0])) {
    std::fprintf(stderr, "fleetd_bench: subscribe to %s refused\n", topic.c_str());
    return 1;
  }
  const std::string payload(64, 'x');
  mqtt::Publish m;
  m.topic = topic;
  m.payload = mqtt::as_bytes(payload);
  m.qos = mqtt::QoS::AtLeastOnce;
  window = std::min<long>(window, 64);
  const auto start = Clock::now();
  for (long sent = 0; sent < count; ++sent) {
    while (sent - counter.completed >= window) {
      if (auto r = d.client->process_loop(Duration{5000}); !r) {
        std::fprintf(stderr, "fleetd_bench: %s\n", mqtt::to_string(r.error()));
        return 1;
      }
    }
    if (auto r = d.client->publish(m, Duration{5000}); !r) {
      std::fprintf(stderr, "fleetd_bench: publish: %s\n", mqtt::to_string(r.error()));
      return 1;
    }
  }
  while (counter.received < count || counter.completed < count) {
    const long before = counter.received + counter.completed;
    if (auto r = d.client->process_loop(Duration{5000}); !r) break;
    if (counter.received + counter.completed == before) break;  // 5 s of nothing: lost
  }
  const double seconds = ms_between(start, counter.last) / 1000.0;
  (void)d.client->disconnect();
  std::printf("{\"mode\":\"publish\",\"messages\":%ld,\"received\":%ld,\"seconds\":%.3f,"
              "\"per_second\":%.1f}\n",
              count, counter.received, seconds, static_cast<double>(counter.received) / seconds);
  return counter.received == count ? 0 : 3;
}

int decisions(std::uint16_t port, const std::string& token_file, const std::string& cert_id,
              const std::string& client_id, int count) {
  std::ifstream in(token_file);
  std::string token;
  std::getline(in, token);
  if (token.empty()) {
    std::fprintf(stderr, "fleetd_bench: no token in %s\n", token_file.c_str());
    return 2;
  }
  httplib::Client c("127.0.0.1", port);
  c.set_keep_alive(true);
  c.set_tcp_nodelay(true);  // as the plugin does
  const httplib::Headers h{{"Authorization", "Bearer " + token}};
  const std::string body = "{\"clientid\":\"" + client_id +
                           "\",\"username\":\"\",\"peerhost\":\"127.0.0.1\",\"certificate_id\":\"" +
                           cert_id + "\"}";
  std::vector<double> ms;
  int refused = 0;
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    const auto t0 = Clock::now();
    auto r = c.Post("/hooks/v1/authenticate", h, body, "application/json");
    if (!r || r->status != 200 || r->body.find("\"allow\"") == std::string::npos) {
      ++refused;
      if (refused == 1) {
        std::fprintf(stderr, "fleetd_bench: decision: %s\n",
                     r ? r->body.c_str() : httplib::to_string(r.error()).c_str());
      }
      continue;
    }
    ms.push_back(ms_between(t0, Clock::now()));
  }
  const double seconds = ms_between(start, Clock::now()) / 1000.0;
  std::printf("{\"mode\":\"decisions\",\"decisions\":%zu,\"not_allowed\":%d,\"seconds\":%.3f,"
              "\"per_second\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
              ms.size(), refused, seconds, static_cast<double>(ms.size()) / seconds,
              percentile(ms, 50), percentile(ms, 99));
  return refused == 0 ? 0 : 3;
}

std::uint16_t port_of(const char* s) { return static_cast<std::uint16_t>(std::atoi(s)); }

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "connects" && argc == 6) {
    return connects(port_of(argv[2]), argv[3], argv[4], std::atoi(argv[5]));
  }
  if (mode == "publish" && argc == 8) {
    return publish(port_of(argv[2]), argv[3], argv[4], argv[5], std::atol(argv[6]),
                   std::atol(argv[7]));
  }
  if (mode == "decisions" && argc == 7) {
    return decisions(port_of(argv[2]), argv[3], argv[4], argv[5], std::atoi(argv[6]));
  }
  std::fprintf(stderr,
               "usage: fleetd_bench connects <port> <ca> <cert>,<key>[;...] <count per thread>\n"
               "       fleetd_bench publish <port> <ca> <cert> <key> <count> <window>\n"
               "       fleetd_bench decisions <hooks port> <token file> <certificate id> "
               "<client id> <count>\n");
  return 2;
}
