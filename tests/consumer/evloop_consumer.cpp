// Builds against the installed edgekit::mqtt_asio (and the system's standalone Asio) and runs
// one connection on an io_context to a loopback port nobody listens on: the connect must end in
// a ConnectFailed event and on_closed with "connection refused" (no broker needed).
#include <array>
#include <asio/io_context.hpp>
#include <cstdio>
#include <edgekit/mqtt_asio/connection.hpp>

namespace {

struct Outcome final : edgekit::mqtt_asio::Handler {
  bool connect_failed = false;
  std::error_code closed_with;
  bool closed = false;
  void on_event(edgekit::mqtt_asio::Connection&, const edgekit::mqtt::Event& e) override {
    if (e.type == edgekit::mqtt::EventType::ConnectFailed) connect_failed = true;
  }
  void on_closed(edgekit::mqtt_asio::Connection&, std::error_code ec) override {
    closed = true;
    closed_with = ec;
  }
};

}  // namespace

int main() {
  namespace mqtt = edgekit::mqtt;
  asio::io_context io;
  edgekit::mqtt_asio::Driver driver(io);
  std::array<mqtt::OutgoingRecord, 2> records{};
  std::array<char, 32> client_id{};
  mqtt::SessionStorage storage;
  storage.outgoing = records;
  storage.client_id = client_id;
  mqtt::Session session(storage);
  std::array<std::byte, 512> rx{};
  std::array<std::byte, 512> tx{};
  Outcome outcome;
  edgekit::mqtt_asio::Connection connection(driver, session, rx, tx, outcome);
  mqtt::ConnectOptions options;
  options.version = mqtt::Version::V311;
  options.client_id = "consumer";
  // Port 1 on loopback: nothing listens there on a build machine.
  const edgekit::mqtt_asio::Endpoint endpoint{{asio::ip::make_address_v4("127.0.0.1"), 1}};
  if (!connection.start(endpoint, options, edgekit::Duration{2000})) {
    std::fprintf(stderr, "evloop consumer: start failed\n");
    return 1;
  }
  io.run();
  if (!outcome.closed || !outcome.connect_failed || outcome.closed_with != asio::error::connection_refused) {
    std::fprintf(stderr, "evloop consumer: unexpected outcome: %s\n",
                 outcome.closed_with.message().c_str());
    return 1;
  }
  std::printf("evloop consumer: refused connect reported: %s\n", outcome.closed_with.message().c_str());
  return 0;
}
