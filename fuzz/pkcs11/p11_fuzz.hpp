#pragma once
// Shared by the PKCS#11 token fuzz targets and their seed writer: the fixed keys the token-file
// target authenticates with, and the byte format the template target turns into a CK_ATTRIBUTE
// array.
#include <edgekit/pkcs11/cryptoki.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

// An oracle: aborts with the condition's text (libFuzzer keeps the input), as in fuzz_support.hpp,
// which these targets do not include because it pulls in the MQTT codec.
#ifndef FUZZ_CHECK
#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "FUZZ CHECK FAILED: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (false)
#endif

namespace edgekit::fuzz::p11 {

// Fixed keys: the fuzzer cannot forge an HMAC or a GCM tag, so modes of fuzz_token_file wrap its
// bytes in a valid frame under these keys to reach the attribute decoder behind the checks.
inline constexpr std::uint8_t kIntegrityKey[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
inline constexpr std::uint8_t kMasterKey[32] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
                                                0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
                                                0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
                                                0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf};

// fuzz_token_file: the first byte picks what the rest is.
enum class FileMode : std::uint8_t {
  RawObjectFile = 0,    // an object file as read from disk
  PublicPayload = 1,    // attribute bytes, framed as a public object with a valid HMAC
  PrivatePayload = 2,   // attribute bytes, sealed as a private object under kMasterKey
  RawTokenRecord = 3,   // a token file as read from disk
  TokenRecordBody = 4,  // a token file body; its SHA-256 trailer is appended
};
inline constexpr std::uint8_t kFileModes = 5;

// fuzz_attribute_template: byte 0 = login state (mod 3), then entries
//   u8 type selector (index into kTypes, or 0xff followed by 8 raw bytes of type),
//   u8 length (0xff: a u16 little-endian length follows), then that many value bytes.
inline constexpr CK_ATTRIBUTE_TYPE kTypes[] = {
    CKA_CLASS, CKA_TOKEN, CKA_PRIVATE, CKA_LABEL, CKA_APPLICATION, CKA_VALUE, CKA_OBJECT_ID,
    CKA_CERTIFICATE_TYPE, CKA_ISSUER, CKA_SERIAL_NUMBER, CKA_TRUSTED, CKA_CERTIFICATE_CATEGORY,
    CKA_CHECK_VALUE, CKA_KEY_TYPE, CKA_SUBJECT, CKA_ID, CKA_SENSITIVE, CKA_ENCRYPT, CKA_DECRYPT,
    CKA_WRAP, CKA_UNWRAP, CKA_SIGN, CKA_SIGN_RECOVER, CKA_VERIFY, CKA_VERIFY_RECOVER, CKA_DERIVE,
    CKA_START_DATE, CKA_END_DATE, CKA_MODULUS, CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT,
    CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2,
    CKA_COEFFICIENT, CKA_PUBLIC_KEY_INFO, CKA_VALUE_LEN, CKA_EXTRACTABLE, CKA_LOCAL,
    CKA_NEVER_EXTRACTABLE, CKA_ALWAYS_SENSITIVE, CKA_KEY_GEN_MECHANISM, CKA_MODIFIABLE,
    CKA_COPYABLE, CKA_DESTROYABLE, CKA_EC_PARAMS, CKA_EC_POINT, CKA_ALWAYS_AUTHENTICATE,
    CKA_WRAP_WITH_TRUSTED, CKA_URL, CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
    CKA_HASH_OF_ISSUER_PUBLIC_KEY, CKA_NAME_HASH_ALGORITHM, CKA_JAVA_MIDP_SECURITY_DOMAIN,
    CKA_OWNER, CKA_AC_ISSUER, CKA_ATTR_TYPES, CKA_VENDOR_DEFINED, CKA_ALLOWED_MECHANISMS,
};
inline constexpr std::size_t kTypeCount = sizeof kTypes / sizeof kTypes[0];

/// Decodes the template format; `values` keeps the bytes the attributes point at.
inline std::vector<CK_ATTRIBUTE> decode_template(std::span<const std::uint8_t> in,
                                                 std::vector<std::vector<std::uint8_t>>& values) {
  std::vector<CK_ATTRIBUTE> out;
  std::size_t pos = 0;
  auto byte = [&](std::uint8_t& b) {
    if (pos >= in.size()) return false;
    b = in[pos++];
    return true;
  };
  values.reserve(in.size());
  while (pos < in.size() && out.size() < 64) {
    std::uint8_t sel = 0, len8 = 0;
    if (!byte(sel)) break;
    CK_ATTRIBUTE_TYPE type = 0;
    if (sel == 0xff) {
      if (in.size() - pos < 8) break;
      std::uint64_t raw = 0;
      std::memcpy(&raw, in.data() + pos, 8);
      pos += 8;
      type = static_cast<CK_ATTRIBUTE_TYPE>(raw);
    } else {
      type = kTypes[sel % kTypeCount];
    }
    if (!byte(len8)) break;
    std::size_t len = len8;
    if (len8 == 0xff) {
      std::uint8_t lo = 0, hi = 0;
      if (!byte(lo) || !byte(hi)) break;
      len = lo | std::size_t{hi} << 8;
    }
    len = std::min(len, in.size() - pos);
    values.emplace_back(in.begin() + static_cast<std::ptrdiff_t>(pos),
                        in.begin() + static_cast<std::ptrdiff_t>(pos + len));
    pos += len;
    auto& v = values.back();
    out.push_back({type, v.empty() ? nullptr : v.data(), static_cast<CK_ULONG>(v.size())});
  }
  return out;
}

/// The inverse of decode_template (for seeds): type by table index when listed.
inline void encode_entry(std::vector<std::uint8_t>& out, CK_ATTRIBUTE_TYPE type,
                         std::span<const std::uint8_t> value) {
  std::size_t index = kTypeCount;
  for (std::size_t i = 0; i < kTypeCount; ++i) {
    if (kTypes[i] == type) index = i;
  }
  if (index < kTypeCount) {
    out.push_back(static_cast<std::uint8_t>(index));
  } else {
    out.push_back(0xff);
    const std::uint64_t raw = type;
    const auto* p = reinterpret_cast<const std::uint8_t*>(&raw);
    out.insert(out.end(), p, p + 8);
  }
  if (value.size() < 0xff) {
    out.push_back(static_cast<std::uint8_t>(value.size()));
  } else {
    out.push_back(0xff);
    out.push_back(static_cast<std::uint8_t>(value.size()));
    out.push_back(static_cast<std::uint8_t>(value.size() >> 8));
  }
  out.insert(out.end(), value.begin(), value.end());
}

}  // namespace edgekit::fuzz::p11
