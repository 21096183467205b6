// Human-readable descriptions of MQTT packets for test failure messages.
#include "edgekit/testing/describe.hpp"

#include <cstdio>
#include <type_traits>
#include <variant>

#include "edgekit/mqtt/codec.hpp"

namespace edgekit::testing {
namespace {

using mqtt::Bytes;
using mqtt::Properties;

constexpr std::size_t kMaxShownBytes = 64;

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, kMaxShownBytes)) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  if (s.size() > kMaxShownBytes) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

std::string show_bytes(Bytes b) {
  bool printable = true;
  for (std::byte x : b) {
    auto u = static_cast<unsigned char>(x);
    if (u < 0x20 || u >= 0x7f) printable = false;
  }
  if (printable) return quote(mqtt::as_string(b));
  return "hex:" + hex(b);
}

std::string show(bool v) {
  return v ? "true" : "false";
}
std::string show(std::uint32_t v) {
  return std::to_string(v);
}
std::string show(std::uint16_t v) {
  return std::to_string(v);
}
std::string show(std::string_view v) {
  return quote(v);
}
std::string show(Bytes v) {
  return show_bytes(v);
}
std::string show(mqtt::QoS q) {
  return std::to_string(static_cast<int>(q));
}
std::string show(mqtt::ReasonCode rc) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned>(rc));
  return std::string(mqtt::to_string(rc)) + " (" + buf + ")";
}
std::string show(mqtt::Version v) {
  return v == mqtt::Version::V5 ? "5" : "3.1.1";
}

template <class T>
void add_opt(Fields& f, const std::string& name, const std::optional<T>& v) {
  if (v) f.emplace_back(name, show(*v));
}

void add_properties(Fields& f, const std::string& prefix, const Properties& p) {
  add_opt(f, prefix + "payload_format_utf8", p.payload_format_utf8());
  add_opt(f, prefix + "message_expiry_interval", p.message_expiry_interval());
  add_opt(f, prefix + "content_type", p.content_type());
  add_opt(f, prefix + "response_topic", p.response_topic());
  add_opt(f, prefix + "correlation_data", p.correlation_data());
  std::size_t i = 0;
  for (std::uint32_t id : p.subscription_identifiers) {
    f.emplace_back(prefix + "subscription_identifier[" + std::to_string(i++) + "]", show(id));
  }
  add_opt(f, prefix + "session_expiry_interval", p.session_expiry_interval());
  add_opt(f, prefix + "assigned_client_identifier", p.assigned_client_identifier());
  add_opt(f, prefix + "server_keep_alive", p.server_keep_alive());
  add_opt(f, prefix + "authentication_method", p.authentication_method());
  add_opt(f, prefix + "authentication_data", p.authentication_data());
  add_opt(f, prefix + "request_problem_information", p.request_problem_information());
  add_opt(f, prefix + "will_delay_interval", p.will_delay_interval());
  add_opt(f, prefix + "request_response_information", p.request_response_information());
  add_opt(f, prefix + "response_information", p.response_information());
  add_opt(f, prefix + "server_reference", p.server_reference());
  add_opt(f, prefix + "reason_string", p.reason_string());
  add_opt(f, prefix + "receive_maximum", p.receive_maximum());
  add_opt(f, prefix + "topic_alias_maximum", p.topic_alias_maximum());
  add_opt(f, prefix + "topic_alias", p.topic_alias());
  add_opt(f, prefix + "maximum_qos", p.maximum_qos());
  add_opt(f, prefix + "retain_available", p.retain_available());
  i = 0;
  for (const mqtt::UserProperty& up : p.user_properties) {
    f.emplace_back(prefix + "user_property[" + std::to_string(i++) + "]",
                   quote(up.key) + ": " + quote(up.value));
  }
  add_opt(f, prefix + "maximum_packet_size", p.maximum_packet_size());
  add_opt(f, prefix + "wildcard_subscription_available", p.wildcard_subscription_available());
  add_opt(f, prefix + "subscription_identifier_available", p.subscription_identifier_available());
  add_opt(f, prefix + "shared_subscription_available", p.shared_subscription_available());
}

std::string show_options(const mqtt::SubscribeOptions& o) {
  return "qos=" + show(o.qos) + " no_local=" + show(o.no_local) +
         " retain_as_published=" + show(o.retain_as_published) +
         " retain_handling=" + std::to_string(static_cast<int>(o.retain_handling));
}

template <mqtt::PacketType T>
void add_ack(Fields& f, const mqtt::Ack<T>& a) {
  f.emplace_back("packet_id", show(a.packet_id));
  f.emplace_back("reason_code", show(a.reason_code));
  add_properties(f, "", a.properties);
}

void add_reason_codes(Fields& f, mqtt::ReasonCodes codes) {
  for (std::size_t i = 0; i < codes.size(); ++i) {
    f.emplace_back("reason_code[" + std::to_string(i) + "]", show(codes[i]));
  }
}

}  // namespace

std::string hex(std::span<const std::byte> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  std::size_t n = bytes.size() < kMaxShownBytes ? bytes.size() : kMaxShownBytes;
  for (std::size_t i = 0; i < n; ++i) {
    auto u = static_cast<unsigned>(bytes[i]);
    if (i != 0) out += ' ';
    out += kDigits[u >> 4];
    out += kDigits[u & 0xf];
  }
  if (bytes.size() > n) out += " ...(" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

Fields packet_fields(const mqtt::Packet& packet) {
  Fields f;
  f.emplace_back("type", mqtt::to_string(mqtt::type_of(packet)));
  std::visit(
      [&f](const auto& p) {
        using P = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<P, mqtt::Connect>) {
          f.emplace_back("version", show(p.version));
          f.emplace_back("client_id", show(p.client_id));
          f.emplace_back("clean_start", show(p.clean_start));
          f.emplace_back("keep_alive", show(p.keep_alive));
          add_opt(f, "username", p.username);
          add_opt(f, "password", p.password);
          if (p.will) {
            f.emplace_back("will.topic", show(p.will->topic));
            f.emplace_back("will.payload", show(p.will->payload));
            f.emplace_back("will.qos", show(p.will->qos));
            f.emplace_back("will.retain", show(p.will->retain));
            add_properties(f, "will.", p.will->properties);
          }
          add_properties(f, "", p.properties);
        } else if constexpr (std::is_same_v<P, mqtt::ConnAck>) {
          f.emplace_back("session_present", show(p.session_present));
          f.emplace_back("reason_code", show(p.reason_code));
          add_properties(f, "", p.properties);
        } else if constexpr (std::is_same_v<P, mqtt::Publish>) {
          f.emplace_back("topic", show(p.topic));
          f.emplace_back("qos", show(p.qos));
          f.emplace_back("retain", show(p.retain));
          f.emplace_back("dup", show(p.dup));
          f.emplace_back("packet_id", show(p.packet_id));
          f.emplace_back("payload", show(p.payload));
          add_properties(f, "", p.properties);
        } else if constexpr (std::is_same_v<P, mqtt::PubAck> || std::is_same_v<P, mqtt::PubRec> ||
                             std::is_same_v<P, mqtt::PubRel> || std::is_same_v<P, mqtt::PubComp>) {
          add_ack(f, p);
        } else if constexpr (std::is_same_v<P, mqtt::Subscribe>) {
          f.emplace_back("packet_id", show(p.packet_id));
          std::size_t i = 0;
          for (mqtt::Subscription s : p.subscriptions) {
            f.emplace_back("subscription[" + std::to_string(i++) + "]",
                           quote(s.filter) + " " + show_options(s.options));
          }
          add_properties(f, "", p.properties);
        } else if constexpr (std::is_same_v<P, mqtt::SubAck>) {
          f.emplace_back("packet_id", show(p.packet_id));
          add_reason_codes(f, p.reason_codes);
          add_properties(f, "", p.properties);
        } else if constexpr (std::is_same_v<P, mqtt::Unsubscribe>) {
          f.emplace_back("packet_id", show(p.packet_id));
          std::size_t i = 0;
          for (std::string_view filter : p.filters) {
            f.emplace_back("filter[" + std::to_string(i++) + "]", quote(filter));
          }
          add_properties(f, "", p.properties);
        } else if constexpr (std::is_same_v<P, mqtt::UnsubAck>) {
          f.emplace_back("packet_id", show(p.packet_id));
          add_reason_codes(f, p.reason_codes);
          add_properties(f, "", p.properties);
        } else if constexpr (std::is_same_v<P, mqtt::Disconnect> || std::is_same_v<P, mqtt::Auth>) {
          f.emplace_back("reason_code", show(p.reason_code));
          add_properties(f, "", p.properties);
        }
        // PINGREQ / PINGRESP have no fields.
      },
      packet);
  return f;
}

Fields frame_fields(std::span<const std::byte> frame, mqtt::Version version) {
  auto decoded = mqtt::decode(frame, version);
  if (!decoded) {
    return Fields{{"type", "undecodable"},
                  {"error", mqtt::to_string(decoded.error())},
                  {"bytes", hex(frame)}};
  }
  return packet_fields(*decoded);
}

std::string format_fields(const Fields& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i == 0) {
      out += fields[i].second;
      continue;
    }
    out += "\n    " + fields[i].first + " = " + fields[i].second;
  }
  return out;
}

std::string describe_packet(const mqtt::Packet& packet) {
  return format_fields(packet_fields(packet));
}

std::string describe_frame(std::span<const std::byte> frame, mqtt::Version version) {
  return format_fields(frame_fields(frame, version));
}

std::string diff_fields(const Fields& expected, const Fields& actual) {
  std::string out;
  auto find = [](const Fields& f, const std::string& key) -> const std::string* {
    for (const auto& kv : f) {
      if (kv.first == key) return &kv.second;
    }
    return nullptr;
  };
  for (const auto& [key, value] : expected) {
    const std::string* other = find(actual, key);
    if (other == nullptr) {
      out += "    " + key + ": expected " + value + ", not sent\n";
    } else if (*other != value) {
      out += "    " + key + ": expected " + value + ", got " + *other + "\n";
    }
  }
  for (const auto& [key, value] : actual) {
    if (find(expected, key) == nullptr) out += "    " + key + ": not expected, got " + value + "\n";
  }
  return out;
}

}  // namespace edgekit::testing
