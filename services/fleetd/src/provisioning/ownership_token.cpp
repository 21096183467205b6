#include "provisioning/ownership_token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <optional>
#include <vector>

namespace edgekit::fleetd::provisioning {
namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kIdBytes = 32;
constexpr std::size_t kNonceBytes = 16;
constexpr std::size_t kSignedBytes = 1 + kIdBytes + kNonceBytes + 8;
constexpr std::size_t kMacBytes = 32;
constexpr std::size_t kTokenBytes = kSignedBytes + kMacBytes;

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url(const std::uint8_t* p, std::size_t n) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    acc = (acc << 8) | p[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kB64[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kB64[(acc << (6 - bits)) & 63];
  return out;
}

std::optional<std::vector<std::uint8_t>> from_b64url(std::string_view s) {
  std::vector<std::uint8_t> out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    int v = -1;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-')
      v = 62;
    else if (c == '_')
      v = 63;
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string hex(const std::uint8_t* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

bool from_hex(std::string_view s, std::uint8_t* out, std::size_t n) {
  if (s.size() != 2 * n) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < n; ++i) {
    const int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return true;
}

bool mac(const std::string& key, const std::uint8_t* data, std::size_t n, std::uint8_t* out) {
  unsigned int len = 0;
  return HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data, n, out, &len) !=
             nullptr &&
         len == kMacBytes;
}

}  // namespace

Rejection token_rejection(std::string message) {
  return rejection(400, "InvalidCertificateOwnershipToken", std::move(message));
}

TokenAuthority::TokenAuthority(std::string secret) : secret_(std::move(secret)) {}

TokenAuthority::~TokenAuthority() {
  OPENSSL_cleanse(secret_.data(), secret_.size());
}

std::string TokenAuthority::issue(std::string_view certificate_id, std::int64_t expires_at,
                                  TokenClaims& claims) const {
  std::array<std::uint8_t, kTokenBytes> t{};
  t[0] = kVersion;
  if (!from_hex(certificate_id, &t[1], kIdBytes)) return {};
  if (RAND_bytes(&t[1 + kIdBytes], kNonceBytes) != 1) return {};
  const auto e = static_cast<std::uint64_t>(expires_at);
  for (int i = 0; i < 8; ++i) {
    t[1 + kIdBytes + kNonceBytes + static_cast<std::size_t>(i)] =
        static_cast<std::uint8_t>(e >> (56 - 8 * i));
  }
  if (!mac(secret_, t.data(), kSignedBytes, &t[kSignedBytes])) return {};
  claims.certificate_id = std::string(certificate_id);
  claims.token_id = hex(&t[1 + kIdBytes], kNonceBytes);
  claims.expires_at = expires_at;
  return b64url(t.data(), t.size());
}

Outcome<TokenClaims> TokenAuthority::verify(std::string_view token, std::int64_t now) const {
  if (token.empty()) {
    return edgekit::fail(token_rejection("Certificate ownership token cannot be empty."));
  }
  auto invalid = [] {
    return edgekit::fail(token_rejection("Certificate ownership token is invalid."));
  };
  if (token.size() > 2 * kTokenBytes) return invalid();
  auto raw = from_b64url(token);
  if (!raw || raw->size() != kTokenBytes || (*raw)[0] != kVersion) return invalid();
  std::array<std::uint8_t, kMacBytes> expected{};
  if (!mac(secret_, raw->data(), kSignedBytes, expected.data())) return invalid();
  // Constant time: the comparison must not tell a forger how many bytes were right.
  if (CRYPTO_memcmp(expected.data(), raw->data() + kSignedBytes, kMacBytes) != 0) {
    return invalid();
  }
  std::uint64_t e = 0;
  for (std::size_t i = 0; i < 8; ++i) e = (e << 8) | (*raw)[1 + kIdBytes + kNonceBytes + i];
  TokenClaims c;
  c.certificate_id = hex(raw->data() + 1, kIdBytes);
  c.token_id = hex(raw->data() + 1 + kIdBytes, kNonceBytes);
  c.expires_at = static_cast<std::int64_t>(e);
  if (c.expires_at <= now) {
    return edgekit::fail(token_rejection("Certificate ownership token has expired."));
  }
  return c;
}

}  // namespace edgekit::fleetd::provisioning
