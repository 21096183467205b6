#include "connection.hpp"

#include <openssl/crypto.h>

#include <algorithm>

#include <cstdio>

namespace edgekit::tools {

bool parse_version(std::string_view text, mqtt::Version& out) {
  if (text == "5" || text == "v5" || text == "mqttv5" || text == "5.0") {
    out = mqtt::Version::V5;
    return true;
  }
  if (text == "311" || text == "3.1.1" || text == "v311" || text == "mqttv311" || text == "4") {
    out = mqtt::Version::V311;
    return true;
  }
  return false;
}

const char* version_name(mqtt::Version v) { return v == mqtt::Version::V5 ? "MQTT 5" : "MQTT 3.1.1"; }

std::string describe(mqtt::ReasonCode rc) {
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(rc));
  return std::string(mqtt::to_string(rc)) + " (" + hex + ")";
}

std::string describe_loss(mqtt::Errc error, std::uint32_t max_packet_size) {
  if (error == mqtt::Errc::IncomingPacketTooLarge) {
    return "a message larger than the maximum packet size (" + std::to_string(max_packet_size) +
           " bytes) arrived; --max-packet-size raises it";
  }
  return mqtt::to_string(error);
}

HostSession::HostSession(std::uint32_t max_packet_size)
    // A topic fits in one packet and is at most 65,535 bytes [MQTT-1.5.4]; so every alias a
    // broker may legally assign fits a slot.
    : alias_slot_length_(std::min<std::size_t>(65535, max_packet_size)),
      // new T[n] without (): not touched (no resident memory) until used; the session clears
      // what it reads.
      outgoing_(new mqtt::OutgoingRecord[kInFlight]),
      incoming_qos2_(new mqtt::IncomingQoS2Set),
      in_alias_chars_(new char[kInboundAliases * alias_slot_length_]),
      in_alias_lengths_(new std::uint16_t[kInboundAliases]),
      client_id_(new char[65535]) {
  mqtt::SessionStorage storage;
  storage.outgoing = {outgoing_.get(), kInFlight};
  storage.incoming_qos2_set = incoming_qos2_.get();
  storage.inbound_aliases = {{in_alias_chars_.get(), kInboundAliases * alias_slot_length_},
                             {in_alias_lengths_.get(), kInboundAliases}};
  storage.outbound_aliases = out_aliases_.storage();
  storage.client_id = {client_id_.get(), 65535};  // the longest id a broker can assign
  session_ = std::make_unique<mqtt::Session>(storage);
}

Connection::Connection(mqtt::EventHandler handler, std::uint32_t max_packet_size)
    : max_packet_size_(max_packet_size),
      rx_(new std::byte[max_packet_size]),
      tx_(new std::byte[kSendBufferSize]),
      host_(max_packet_size) {
  client_ = std::make_unique<mqtt::Client>(tcp_, clock_, host_.session(),
                                           mqtt::MutableBytes(rx_.get(), max_packet_size),
                                           mqtt::MutableBytes(tx_.get(), kSendBufferSize), handler);
}

Connection::~Connection() {
  if (client_ && client_->connected()) (void)client_->disconnect();
}

bool Connection::open_transport(const BrokerOptions& o) {
  if (!o.tls()) {
    auto tcp = transport::TcpTransport::connect(o.host, o.port, Duration{o.connect_timeout_ms});
    if (!tcp) {
      const auto& e = tcp.error();
      error_ = "cannot reach " + o.host + ":" + std::to_string(o.port) + ": " +
               transport::to_string(e.code) +
               (e.detail && *e.detail ? std::string(" (") + e.detail + ")" : "");
      return false;
    }
    tcp_ = std::move(*tcp);
    return true;
  }
  tls::Config c;
  c.ca_file = o.ca_file;
  c.certificate_file = o.cert_file;
  if (!o.key_label.empty()) {
    c.token_key = tls::TokenKey{o.pkcs11_module, o.token_label, o.pin, o.key_label, {}};
  } else {
    c.private_key_file = o.key_file;
  }
  auto ctx = tls::TlsContext::create(c);
  if (c.token_key) OPENSSL_cleanse(c.token_key->pin.data(), c.token_key->pin.size());
  if (!ctx) {
    error_ = "TLS set-up failed: " + ctx.error().message();
    return false;
  }
  tls_context_ = std::make_unique<tls::TlsContext>(std::move(*ctx));
  auto t = tls::TlsTransport::connect(*tls_context_, o.host, o.port,
                                      Duration{o.connect_timeout_ms});
  if (!t) {
    error_ = "TLS connection to " + o.host + ":" + std::to_string(o.port) +
             " failed: " + t.error().message();
    return false;
  }
  tls_ = std::make_unique<tls::TlsTransport>(std::move(*t));
  if (auto s = client_->set_transport(*tls_); !s) {
    error_ = std::string("cannot use the TLS transport: ") + mqtt::to_string(s.error());
    return false;
  }
  return true;
}

bool Connection::open(const BrokerOptions& o, const mqtt::Will* will) {
  if (!open_transport(o)) return false;

  mqtt::ConnectOptions opts;
  opts.version = o.version;
  opts.client_id = o.client_id;
  opts.clean_start = o.clean_start;
  opts.keep_alive_seconds = o.keep_alive;
  if (o.have_username) opts.username = o.username;
  if (o.have_password) opts.password = mqtt::as_bytes(o.password);
  if (will != nullptr) opts.will = *will;
#if EDGEKIT_MQTT_ENABLE_V5  // without MQTT 5, Properties is empty
  if (o.version == mqtt::Version::V5 && o.session_expiry != 0)
    opts.properties.set_session_expiry_interval(o.session_expiry);
#endif

  auto r = client_->connect(opts, Duration{o.connect_timeout_ms});
  if (!r) {
    if (r.error() == mqtt::Errc::ConnectionRefused) {
      error_ = "broker refused the connection: " + describe(client_->server_reason());
    } else {
      error_ = std::string("MQTT connect failed: ") + mqtt::to_string(r.error());
    }
    return false;
  }
#if EDGEKIT_MQTT_ENABLE_V5
  // Copied now: the CONNACK's views point into the receive buffer, which the next packet reuses.
  if (r->properties.assigned_client_identifier()) assigned_id_ = *r->properties.assigned_client_identifier();
#endif
  return true;
}

}  // namespace edgekit::tools
