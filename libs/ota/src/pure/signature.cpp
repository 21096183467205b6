// DER ECDSA-Sig-Value (RFC 3279 2.2.3: SEQUENCE { r INTEGER, s INTEGER }) to raw r || s.
#include "edgekit/ota/signature.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace edgekit::ota {
namespace {

constexpr std::size_t kHalf = kRawSignatureSize / 2;

std::uint8_t at(std::span<const std::byte> b, std::size_t i) noexcept {
  return static_cast<std::uint8_t>(b[i]);
}

// Reads one DER INTEGER at `pos` into the 32 bytes of `out`, right-aligned; advances `pos`.
bool read_integer(std::span<const std::byte> der, std::size_t& pos,
                  std::span<std::byte> out) noexcept {
  if (der.size() - pos < 2 || at(der, pos) != 0x02) return false;
  const std::size_t len = at(der, pos + 1);
  pos += 2;
  if (len == 0 || len > kHalf + 1 || len > der.size() - pos) return false;
  auto value = der.subspan(pos, len);
  pos += len;
  if ((at(value, 0) & 0x80) != 0) return false;  // negative
  if (at(value, 0) == 0) {
    // A leading zero only where the next byte has its top bit set (DER's minimal form).
    if (len == 1 || (at(value, 1) & 0x80) == 0) return false;
    value = value.subspan(1);
  }
  if (value.size() > kHalf) return false;
  std::fill(out.begin(), out.end(), std::byte{0});
  std::memcpy(out.data() + (kHalf - value.size()), value.data(), value.size());
  return true;
}

// Whether `signature` is a strict DER ECDSA-Sig-Value; writes r || s into `out` when it is.
bool from_der(std::span<const std::byte> signature,
              std::span<std::byte, kRawSignatureSize> out) noexcept {
  // SEQUENCE with a short-form length (a P-256 signature is at most 72 bytes) covering the rest.
  if (signature.size() < 8 || at(signature, 0) != 0x30 || at(signature, 1) >= 0x80 ||
      at(signature, 1) != signature.size() - 2) {
    return false;
  }
  std::size_t pos = 2;
  return read_integer(signature, pos, std::span(out).first(kHalf)) &&
         read_integer(signature, pos, std::span(out).last(kHalf)) && pos == signature.size();
}

}  // namespace

Result<void, Errc> raw_p256_signature(std::span<const std::byte> signature,
                                      std::span<std::byte, kRawSignatureSize> out) noexcept {
  // DER first: a DER signature with short r and s can be 64 bytes long too; raw bytes that
  // happen to form a strict DER structure of exactly their length are not a practical case.
  if (from_der(signature, out)) return {};
  if (signature.size() == kRawSignatureSize) {
    std::memcpy(out.data(), signature.data(), kRawSignatureSize);
    return {};
  }
  return fail(Errc::MalformedSignature);
}

}  // namespace edgekit::ota
