#pragma once
// One MQTT connection for a command-line tool: the TCP transport, the session's storage, the
// buffers and the client, with the sizes a desktop tool wants. Device code sizes these itself.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "edgekit/core/clock.hpp"
#include "edgekit/mqtt/client.hpp"
#include "edgekit/mqtt/session.hpp"
#include "edgekit/tls/tls.hpp"
#include "edgekit/transport/tcp.hpp"

namespace edgekit::tools {

/// Where and how to connect.
struct BrokerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  mqtt::Version version = mqtt::Version::V5;
  std::string client_id;
  std::string username;
  std::string password;
  bool have_username = false;
  bool have_password = false;
  std::uint16_t keep_alive = 60;
  bool clean_start = true;
  std::uint32_t session_expiry = 0;  ///< MQTT 5
  std::uint32_t connect_timeout_ms = 5000;
  /// TLS: used when `ca_file` or `cert_file` is set (server verified against `ca_file`).
  std::string ca_file;
  std::string cert_file;  ///< client certificate (PEM) for mutual TLS
  std::string key_file;   ///< its private key in a PEM file, or:
  std::string key_label;  ///< the label of its private key in a PKCS#11 token
  std::string pkcs11_module;
  std::string token_label;
  std::string pin;  ///< the token's user PIN (wiped by the command once the context is made)
  bool tls() const { return !ca_file.empty() || !cert_file.empty(); }
};

/// Parses "5", "v5", "mqttv5", "311", "3.1.1", "mqttv311". Returns false when unknown.
bool parse_version(std::string_view text, mqtt::Version& out);
const char* version_name(mqtt::Version v);

/// Formats a reason code as "NotAuthorized (0x87)".
std::string describe(mqtt::ReasonCode rc);

class Connection {
 public:
  static constexpr std::size_t kBufferSize = 256 * 1024;
  static constexpr std::size_t kInFlight = 64;

  explicit Connection(mqtt::EventHandler handler = {});

  /// TCP (or TLS when `options.tls()`) connect, then MQTT CONNECT. On failure returns false and sets `error()` to a sentence
  /// that names the cause (host not found, refused, CONNACK reason, timeout).
  bool open(const BrokerOptions& options, const mqtt::Will* will = nullptr);

  mqtt::Client& client() { return *client_; }
  mqtt::Session& session() { return *session_; }
  const mqtt::ConnAck& connack() const { return connack_; }
  const std::string& error() const { return error_; }
  const Clock& clock() const { return clock_; }

 private:
  SteadyClock clock_;
  bool open_transport(const BrokerOptions& options);

  transport::TcpTransport tcp_;
  std::unique_ptr<tls::TlsContext> tls_context_;
  std::unique_ptr<tls::TlsTransport> tls_;
  std::unique_ptr<std::byte[]> rx_;
  std::unique_ptr<std::byte[]> tx_;
  std::array<mqtt::OutgoingRecord, kInFlight> outgoing_{};
  std::array<std::uint16_t, kInFlight> incoming_qos2_{};
  mqtt::TopicAliasArena<16, 128> in_aliases_;
  mqtt::TopicAliasArena<16, 128> out_aliases_;
  std::array<char, 128> client_id_{};
  std::unique_ptr<mqtt::Session> session_;
  std::unique_ptr<mqtt::Client> client_;
  mqtt::ConnAck connack_{};
  std::string error_;
};

}  // namespace edgekit::tools
