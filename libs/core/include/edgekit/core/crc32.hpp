#pragma once
/// \file
/// CRC-32 (IEEE 802.3, reflected, as in zlib), the checksum edgekit's stores put on what they
/// write (the MQTT session stores, the jobs record file) to detect a torn or corrupted record.
/// Header-only, pure: no heap, no I/O. Thread safety: a pure function.

#include <cstddef>
#include <cstdint>
#include <span>

namespace edgekit {

/// CRC-32 of `data`, continuing from `crc` (start with 0): crc32(b, crc32(a)) == crc32(a + b).
[[nodiscard]] inline std::uint32_t crc32(std::span<const std::byte> data,
                                         std::uint32_t crc = 0) noexcept {
  // Nibble table (polynomial 0xEDB88320): 64 bytes of table, fast enough for records.
  static constexpr std::uint32_t kTable[16] = {0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC,
                                               0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
                                               0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
                                               0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C};
  crc = ~crc;
  for (std::byte b : data) {
    crc ^= std::to_integer<std::uint32_t>(b);
    crc = (crc >> 4) ^ kTable[crc & 0x0F];
    crc = (crc >> 4) ^ kTable[crc & 0x0F];
  }
  return ~crc;
}

}  // namespace edgekit
