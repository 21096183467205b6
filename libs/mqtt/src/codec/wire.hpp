#pragma once
// Private to the codec: a bounds-checked byte reader, a byte writer that can also just count,
// the build switches as constants, and helpers shared by the encode and decode sides.
// Nothing here is part of the public API.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "edgekit/mqtt/codec.hpp"

namespace edgekit::mqtt::wire {

inline constexpr bool kV311 = EDGEKIT_MQTT_ENABLE_V311 != 0;
inline constexpr bool kV5 = EDGEKIT_MQTT_ENABLE_V5 != 0;
inline constexpr bool kQoS2 = EDGEKIT_MQTT_ENABLE_QOS2 != 0;

/// True when `v` means MQTT 5. Folds to a constant when one version is compiled out, so the
/// other version's code disappears from the image.
[[nodiscard]] constexpr bool is_v5(Version v) noexcept {
  if constexpr (!kV5) {
    return false;
  } else if constexpr (!kV311) {
    return true;
  } else {
    return v == Version::V5;
  }
}

/// Ok, ProtocolVersionDisabled for a version left out of this build, InvalidArgument for a value
/// that is no protocol level at all.
[[nodiscard]] Errc check_version(Version v) noexcept;

/// Property "kinds" are addressed by a bit per packet type; bit 0 (packet type 0 is reserved)
/// stands for the Will properties inside CONNECT.
inline constexpr unsigned kWillBit = 0;
[[nodiscard]] constexpr std::uint16_t bit_of(PacketType t) noexcept {
  return static_cast<std::uint16_t>(1u << static_cast<unsigned>(t));
}

// --- Validation (no length limit check except where stated) -----------------------------------
[[nodiscard]] Errc check_utf8(const std::uint8_t* s, std::size_t n) noexcept;
[[nodiscard]] Errc check_topic_name(std::string_view t) noexcept;
[[nodiscard]] Errc check_topic_filter(std::string_view f) noexcept;
/// True when the filter is a shared subscription ("$share/...").
[[nodiscard]] bool is_shared(std::string_view f) noexcept;
/// True when `rc` is a reason code the MQTT 5 spec allows in a packet of type `t`.
[[nodiscard]] bool reason_allowed(ReasonCode rc, PacketType t) noexcept;

/// 3.1.1 CONNACK return codes 0..5 and the MQTT 5 reason codes they are mapped onto (types.hpp).
inline constexpr ReasonCode kV311ConnAck[6] = {
    ReasonCode::Success,
    ReasonCode::UnsupportedProtocolVersion,
    ReasonCode::ClientIdentifierNotValid,
    ReasonCode::ServerUnavailable,
    ReasonCode::BadUserNameOrPassword,
    ReasonCode::NotAuthorized,
};

[[nodiscard]] constexpr std::size_t varint_size(std::uint32_t v) noexcept {
  return v < 128u ? 1 : v < 16384u ? 2 : v < 2097152u ? 3 : 4;
}

// --- Reader ------------------------------------------------------------------------------------
/// Bounds-checked reader with a sticky first error: after a failure every read returns zero/empty
/// and the first error is kept, so decoders can read a run of fields and check once.
class Reader {
 public:
  Reader() = default;
  Reader(const std::uint8_t* p, std::size_t n) noexcept : p_(p), end_(p + n) {}

  [[nodiscard]] std::size_t left() const noexcept { return static_cast<std::size_t>(end_ - p_); }
  [[nodiscard]] const std::uint8_t* pos() const noexcept { return p_; }
  [[nodiscard]] bool ok() const noexcept { return err_ == Errc::Ok; }
  [[nodiscard]] Errc error() const noexcept { return err_; }

  /// Records `e` unless an error is already recorded; stops further reading.
  void fail(Errc e) noexcept {
    if (err_ == Errc::Ok) err_ = e;
    p_ = end_;
  }
  /// Returns `n` bytes (or nullptr on truncation, recording MalformedPacket).
  const std::uint8_t* take(std::size_t n) noexcept {
    if (left() < n) {
      fail(Errc::MalformedPacket);
      return nullptr;
    }
    const std::uint8_t* r = p_;
    p_ += n;
    return r;
  }
  std::uint8_t u8() noexcept {
    const std::uint8_t* b = take(1);
    return b ? b[0] : 0;
  }
  std::uint16_t u16() noexcept {
    const std::uint8_t* b = take(2);
    return b ? static_cast<std::uint16_t>((b[0] << 8) | b[1]) : 0;
  }
  std::uint32_t u32() noexcept {
    const std::uint8_t* b = take(4);
    return b ? (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                   (std::uint32_t{b[2]} << 8) | b[3]
             : 0;
  }
  /// Variable Byte Integer; more than 4 bytes or a non-minimal form is MalformedPacket.
  std::uint32_t varint() noexcept;
  /// Two-byte length prefixed binary data.
  Bytes bin() noexcept {
    std::uint16_t n = u16();
    const std::uint8_t* b = take(n);
    return b ? Bytes(reinterpret_cast<const std::byte*>(b), n) : Bytes();
  }
  /// UTF-8 string [MQTT-1.5.4]: validated, InvalidUtf8 / NullCharacterInString on failure.
  std::string_view str() noexcept {
    std::uint16_t n = u16();
    const std::uint8_t* b = take(n);
    if (b == nullptr) return {};
    if (Errc e = check_utf8(b, n); e != Errc::Ok) {
      fail(e);
      return {};
    }
    return {reinterpret_cast<const char*>(b), n};
  }
  /// Reads the rest of the input.
  Bytes rest() noexcept {
    std::size_t n = left();
    return {reinterpret_cast<const std::byte*>(take(n)), n};
  }

 private:
  const std::uint8_t* p_ = nullptr;
  const std::uint8_t* end_ = nullptr;
  Errc err_ = Errc::Ok;
};

// --- Writer ------------------------------------------------------------------------------------
/// Writes into a buffer already known to be large enough, or (with a null buffer) only counts.
/// `validate` asks the emitters to check the caller's fields; it is set on the counting pass
/// that runs before every write, so the write pass does not check twice.
struct Writer {
  std::uint8_t* p = nullptr;
  std::size_t n = 0;
  bool validate = true;
  bool header_only = false;  ///< PUBLISH: stop before the payload (scatter/gather)
  /// Sizes of the property blocks met on the counting pass, in emit order (CONNECT has two), so
  /// the write pass does not walk the properties again to learn their length.
  std::uint32_t prop_sizes[2] = {0, 0};
  /// Which properties are set in each of those blocks (bit i = row i of the property table),
  /// so that neither pass scans all 27 to find them again.
  std::uint32_t prop_masks[2] = {0, 0};
  /// The mask of the block properties_size was last called for (read by put_properties).
  std::uint32_t prop_mask = 0;
  std::uint8_t prop_index = 0;
  /// PUBLISH: the payload's size, which a header-only write leaves out.
  std::size_t payload = 0;

  void u8(std::uint8_t v) noexcept {
    if (p) p[n] = v;
    ++n;
  }
  void u16(std::uint16_t v) noexcept {
    if (p) {
      p[n] = static_cast<std::uint8_t>(v >> 8);
      p[n + 1] = static_cast<std::uint8_t>(v);
    }
    n += 2;
  }
  void u32(std::uint32_t v) noexcept {
    if (p) {
      p[n] = static_cast<std::uint8_t>(v >> 24);
      p[n + 1] = static_cast<std::uint8_t>(v >> 16);
      p[n + 2] = static_cast<std::uint8_t>(v >> 8);
      p[n + 3] = static_cast<std::uint8_t>(v);
    }
    n += 4;
  }
  void varint(std::uint32_t v) noexcept {
    if (!p) {
      n += varint_size(v);
      return;
    }
    do {
      std::uint8_t b = v & 0x7F;
      v >>= 7;
      if (v) b |= 0x80;
      p[n++] = b;
    } while (v);
  }
  void raw(const void* d, std::size_t len) noexcept {
    if (p && len) std::memcpy(p + n, d, len);
    n += len;
  }
  /// Two-byte length + bytes. Length must already be known to be <= 65535.
  void bin(const void* d, std::size_t len) noexcept {
    u16(static_cast<std::uint16_t>(len));
    raw(d, len);
  }
  void str(std::string_view s) noexcept { bin(s.data(), s.size()); }
};

/// Checks a string the caller wants encoded: length and UTF-8.
[[nodiscard]] Errc check_string(std::string_view s) noexcept;

// --- Properties (properties.cpp) ----------------------------------------------------------------
/// Size of the properties of `p` (without the length prefix) for packet kind `bit`. On the
/// counting pass it walks (and, when w.validate, checks: PropertyNotAllowed,
/// InvalidPropertyValue, DuplicateProperty, StringTooLong, InvalidUtf8 ...) and records the
/// size in `w`; on the write pass it returns the recorded size. Call once per block and pass.
[[nodiscard]] Errc properties_size(Writer& w, const Properties& p, unsigned bit,
                                   std::size_t& size) noexcept;
/// Writes the property length `size` (from properties_size, called just before for the same
/// block) and the properties.
void put_properties(Writer& w, const Properties& p, unsigned bit, std::size_t size) noexcept;
/// properties_size then put_properties.
[[nodiscard]] Errc put_properties(Writer& w, const Properties& p, unsigned bit) noexcept;
/// Reads a property length and block for packet kind `bit` into `out`.
void read_properties(Reader& r, unsigned bit, Properties& out) noexcept;
/// For MQTT 3.1.1: InvalidArgument when any property is set.
[[nodiscard]] Errc check_no_properties(const Properties& p) noexcept;

}  // namespace edgekit::mqtt::wire
