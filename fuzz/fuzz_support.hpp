#pragma once
// Shared by the fuzz targets: a check that aborts (so libFuzzer reports it as a crash and keeps
// the input), and a deep comparison of decoded packets for the round-trip oracles.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string_view>
#include <variant>

#include "edgekit/mqtt/codec.hpp"

namespace edgekit::fuzz {

using namespace edgekit::mqtt;

[[noreturn]] inline void fail_check(const char* what, const char* file, int line) {
  std::fprintf(stderr, "FUZZ CHECK FAILED: %s at %s:%d\n", what, file, line);
  std::abort();
}

}  // namespace edgekit::fuzz

// An oracle: aborts with the condition's text when it does not hold.
#define FUZZ_CHECK(cond)                                                 \
  do {                                                                   \
    if (!(cond)) ::edgekit::fuzz::fail_check(#cond, __FILE__, __LINE__); \
  } while (false)

namespace edgekit::fuzz {

/// Reads a script-driven target's input: bytes, 16-bit numbers (big-endian) and runs of bytes;
/// past the end every read gives 0 or nothing.
struct Cursor {
  const std::uint8_t* p;
  std::size_t n;
  std::size_t i = 0;
  bool more() const { return i < n; }
  std::uint8_t u8() { return i < n ? p[i++] : 0; }
  std::uint16_t u16() {
    const std::uint16_t hi = u8();
    return static_cast<std::uint16_t>((hi << 8) | u8());
  }
  Bytes take(std::size_t k) {
    k = k < n - i ? k : n - i;
    Bytes b(reinterpret_cast<const std::byte*>(p + i), k);
    i += k;
    return b;
  }
};

inline bool same_bytes(Bytes a, Bytes b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

template <class T>
bool same_opt(const std::optional<T>& a, const std::optional<T>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  if constexpr (std::is_same_v<T, Bytes>) {
    return same_bytes(*a, *b);
  } else {
    return *a == *b;
  }
}

template <class L>
bool same_list(const L& a, const L& b) {
  auto ia = a.begin();
  auto ib = b.begin();
  for (; ia != a.end() && ib != b.end(); ++ia, ++ib)
    if (!(*ia == *ib)) return false;
  return ia == a.end() && ib == b.end();
}

inline bool same(const Properties& a, const Properties& b) {
  return same_opt(a.payload_format_utf8(), b.payload_format_utf8()) &&
         same_opt(a.message_expiry_interval(), b.message_expiry_interval()) &&
         same_opt(a.content_type(), b.content_type()) && same_opt(a.response_topic(), b.response_topic()) &&
         same_opt(a.correlation_data(), b.correlation_data()) &&
         same_list(a.subscription_identifiers, b.subscription_identifiers) &&
         same_opt(a.session_expiry_interval(), b.session_expiry_interval()) &&
         same_opt(a.assigned_client_identifier(), b.assigned_client_identifier()) &&
         same_opt(a.server_keep_alive(), b.server_keep_alive()) &&
         same_opt(a.authentication_method(), b.authentication_method()) &&
         same_opt(a.authentication_data(), b.authentication_data()) &&
         same_opt(a.request_problem_information(), b.request_problem_information()) &&
         same_opt(a.will_delay_interval(), b.will_delay_interval()) &&
         same_opt(a.request_response_information(), b.request_response_information()) &&
         same_opt(a.response_information(), b.response_information()) &&
         same_opt(a.server_reference(), b.server_reference()) &&
         same_opt(a.reason_string(), b.reason_string()) &&
         same_opt(a.receive_maximum(), b.receive_maximum()) &&
         same_opt(a.topic_alias_maximum(), b.topic_alias_maximum()) &&
         same_opt(a.topic_alias(), b.topic_alias()) && same_opt(a.maximum_qos(), b.maximum_qos()) &&
         same_opt(a.retain_available(), b.retain_available()) &&
         same_list(a.user_properties, b.user_properties) &&
         same_opt(a.maximum_packet_size(), b.maximum_packet_size()) &&
         same_opt(a.wildcard_subscription_available(), b.wildcard_subscription_available()) &&
         same_opt(a.subscription_identifier_available(), b.subscription_identifier_available()) &&
         same_opt(a.shared_subscription_available(), b.shared_subscription_available());
}

inline bool same(const Connect& a, const Connect& b) {
  if (a.will.has_value() != b.will.has_value()) return false;
  if (a.will) {
    const Will& x = *a.will;
    const Will& y = *b.will;
    if (x.topic != y.topic || !same_bytes(x.payload, y.payload) || x.qos != y.qos ||
        x.retain != y.retain || !same(x.properties, y.properties))
      return false;
  }
  return a.version == b.version && a.client_id == b.client_id && a.clean_start == b.clean_start &&
         a.keep_alive == b.keep_alive && same_opt(a.username, b.username) &&
         same_opt(a.password, b.password) && same(a.properties, b.properties);
}
inline bool same(const ConnAck& a, const ConnAck& b) {
  return a.session_present == b.session_present && a.reason_code == b.reason_code &&
         same(a.properties, b.properties);
}
inline bool same(const Publish& a, const Publish& b) {
  return a.topic == b.topic && same_bytes(a.payload, b.payload) && a.qos == b.qos &&
         a.retain == b.retain && a.dup == b.dup && a.packet_id == b.packet_id &&
         same(a.properties, b.properties);
}
template <PacketType T>
bool same(const Ack<T>& a, const Ack<T>& b) {
  return a.packet_id == b.packet_id && a.reason_code == b.reason_code &&
         same(a.properties, b.properties);
}
inline bool same(const Subscription& a, const Subscription& b) {
  return a.filter == b.filter && a.options == b.options;
}
inline bool same(const Subscribe& a, const Subscribe& b) {
  if (a.packet_id != b.packet_id || a.subscriptions.size() != b.subscriptions.size()) return false;
  auto ib = b.subscriptions.begin();
  for (auto ia = a.subscriptions.begin(); ia != a.subscriptions.end(); ++ia, ++ib)
    if (!same(*ia, *ib)) return false;
  return same(a.properties, b.properties);
}
inline bool same_codes(ReasonCodes a, ReasonCodes b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}
inline bool same(const SubAck& a, const SubAck& b) {
  return a.packet_id == b.packet_id && same_codes(a.reason_codes, b.reason_codes) &&
         same(a.properties, b.properties);
}
inline bool same(const Unsubscribe& a, const Unsubscribe& b) {
  return a.packet_id == b.packet_id && same_list(a.filters, b.filters) &&
         same(a.properties, b.properties);
}
inline bool same(const UnsubAck& a, const UnsubAck& b) {
  return a.packet_id == b.packet_id && same_codes(a.reason_codes, b.reason_codes) &&
         same(a.properties, b.properties);
}
inline bool same(const PingReq&, const PingReq&) {
  return true;
}
inline bool same(const PingResp&, const PingResp&) {
  return true;
}
inline bool same(const Disconnect& a, const Disconnect& b) {
  return a.reason_code == b.reason_code && same(a.properties, b.properties);
}
inline bool same(const Auth& a, const Auth& b) {
  return a.reason_code == b.reason_code && same(a.properties, b.properties);
}
inline bool same(const Packet& a, const Packet& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        return same(x, std::get<T>(b));
      },
      a);
}

/// Makes a frame of `type`/`flags` around `body` in `out` (for seeds and structured inputs).
/// Returns the frame size, 0 when it does not fit.
inline std::size_t make_frame(std::uint8_t first_byte, Bytes body, std::span<std::byte> out) {
  std::size_t n = 0;
  if (out.size() < 5 + body.size()) return 0;
  out[n++] = std::byte{first_byte};
  std::uint32_t len = static_cast<std::uint32_t>(body.size());
  do {
    std::uint8_t b = len % 128;
    len /= 128;
    if (len) b |= 0x80;
    out[n++] = std::byte{b};
  } while (len);
  for (std::byte b : body) out[n++] = b;
  return n;
}

}  // namespace edgekit::fuzz
