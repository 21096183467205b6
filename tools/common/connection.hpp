#pragma once
// One MQTT connection for a command-line tool: the TCP transport, the session's storage, the
// buffers and the client, with the sizes a host wants. Device code sizes these itself.
//
// Host sizing, and why (docs/cli.md):
//  - inbound QoS 2: `IncomingQoS2Set` (8 KB), never full however many messages the broker keeps
//    in flight (3.1.1 has no flow control; Mosquitto's max_inflight_messages may be 1000);
//  - receive buffer: the maximum packet size the user chose (MQTT 5 brokers are told it);
//  - inbound topic aliases (MQTT 5): every announced alias holds the longest topic a packet of
//    that size can carry, so no legal alias assignment can be forgotten;
//  - client id: 65,535 bytes, the longest a broker can assign, so the id is always kept.

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

/// Default largest packet a tool accepts (and, for pub, sends): room for a 16 MiB message with
/// its header. Mosquitto's own default limit is the protocol's (256 MiB); 16 MiB keeps an
/// endless input from costing more than that much memory.
inline constexpr std::uint32_t kDefaultMaxPacketSize = 16 * 1024 * 1024 + 64 * 1024;
/// Smallest --max-packet-size the tools take: room for any CONNACK, SUBACK or PUBACK a broker
/// sends with its properties, so that a tiny value cannot make the connection itself fail.
inline constexpr std::uint32_t kMinMaxPacketSize = 1024;
/// The protocol's largest packet: a 268,435,455-byte remaining length plus its 5-byte header.
inline constexpr std::uint32_t kProtocolMaxPacketSize = mqtt::kMaxPacketSize;

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

/// Why a fatal error ended the connection, in words a user can act on (IncomingPacketTooLarge
/// names `max_packet_size` and the option that raises it).
std::string describe_loss(mqtt::Errc error, std::uint32_t max_packet_size);

/// The session of a host tool with its storage, sized as the file comment says (all on the
/// heap, allocated but not touched until used). Thread safety: none.
class HostSession {
 public:
  static constexpr std::size_t kInFlight = 64;
  /// Inbound topic aliases announced in MQTT 5 (each holds any topic, see the file comment).
  static constexpr std::size_t kInboundAliases = 16;

  /// `max_packet_size`: the receive buffer's size, which bounds the longest topic an alias
  /// must hold.
  explicit HostSession(std::uint32_t max_packet_size);
  HostSession(const HostSession&) = delete;
  HostSession& operator=(const HostSession&) = delete;

  mqtt::Session& session() { return *session_; }
  /// Longest topic one inbound alias holds: min(65,535, max_packet_size).
  std::size_t alias_slot_length() const { return alias_slot_length_; }

 private:
  std::size_t alias_slot_length_;
  std::unique_ptr<mqtt::OutgoingRecord[]> outgoing_;
  std::unique_ptr<mqtt::IncomingQoS2Set> incoming_qos2_;
  std::unique_ptr<char[]> in_alias_chars_;
  std::unique_ptr<std::uint16_t[]> in_alias_lengths_;
  mqtt::TopicAliasArena<16, 128> out_aliases_;  // outbound: the session aliases only what fits
  std::unique_ptr<char[]> client_id_;
  std::unique_ptr<mqtt::Session> session_;
};

/// Thread safety: none; one thread uses a Connection.
class Connection {
 public:
  static constexpr std::size_t kSendBufferSize = 256 * 1024;

  /// `max_packet_size` sizes the receive buffer (allocated, not touched until used).
  explicit Connection(mqtt::EventHandler handler = {},
                      std::uint32_t max_packet_size = kDefaultMaxPacketSize);
  /// Ends a connection still open (a tool that gives up) with DISCONNECT, never by just closing
  /// the socket, so that the broker does not publish a will or wait for a keep-alive timeout.
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// TCP (or TLS when `options.tls()`) connect, then MQTT CONNECT. On failure returns false and sets `error()` to a sentence
  /// that names the cause (host not found, refused, CONNACK reason, timeout).
  bool open(const BrokerOptions& options, const mqtt::Will* will = nullptr);

  mqtt::Client& client() { return *client_; }
  mqtt::Session& session() { return host_.session(); }
  const std::string& error() const { return error_; }
  const Clock& clock() const { return clock_; }
  /// The client id the broker assigned in CONNACK (MQTT 5), empty when it assigned none.
  const std::string& assigned_client_id() const { return assigned_id_; }

 private:
  SteadyClock clock_;
  bool open_transport(const BrokerOptions& options);

  transport::TcpTransport tcp_;
  std::unique_ptr<tls::TlsContext> tls_context_;
  std::unique_ptr<tls::TlsTransport> tls_;
  std::uint32_t max_packet_size_;
  std::unique_ptr<std::byte[]> rx_;
  std::unique_ptr<std::byte[]> tx_;
  HostSession host_;
  std::unique_ptr<mqtt::Client> client_;
  std::string assigned_id_;
  std::string error_;
};

}  // namespace edgekit::tools
