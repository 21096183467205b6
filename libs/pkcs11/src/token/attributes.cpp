#include "token/attributes.hpp"

#include <cstring>

namespace edgekit::pkcs11::token {
namespace {

constexpr std::uint8_t kObjectMagic[8] = {'E', 'K', 'P', '1', '1', 'O', 'B', 'J'};

void put_u32(Bytes& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_u64(Bytes& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
std::uint64_t get_le(const std::uint8_t* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

AttributeKind attribute_kind(CK_ATTRIBUTE_TYPE type) {
  switch (type) {
    case CKA_TOKEN: case CKA_PRIVATE: case CKA_MODIFIABLE: case CKA_COPYABLE:
    case CKA_DESTROYABLE: case CKA_TRUSTED: case CKA_SENSITIVE: case CKA_ENCRYPT:
    case CKA_DECRYPT: case CKA_WRAP: case CKA_UNWRAP: case CKA_SIGN: case CKA_SIGN_RECOVER:
    case CKA_VERIFY: case CKA_VERIFY_RECOVER: case CKA_DERIVE: case CKA_EXTRACTABLE:
    case CKA_LOCAL: case CKA_NEVER_EXTRACTABLE: case CKA_ALWAYS_SENSITIVE:
    case CKA_WRAP_WITH_TRUSTED: case CKA_ALWAYS_AUTHENTICATE:
      return AttributeKind::Bool;
    case CKA_CLASS: case CKA_KEY_TYPE: case CKA_CERTIFICATE_TYPE: case CKA_MODULUS_BITS:
    case CKA_KEY_GEN_MECHANISM: case CKA_VALUE_LEN: case CKA_CERTIFICATE_CATEGORY:
    case CKA_JAVA_MIDP_SECURITY_DOMAIN: case CKA_NAME_HASH_ALGORITHM:
      return AttributeKind::Ulong;
    case CKA_LABEL: case CKA_APPLICATION: case CKA_VALUE: case CKA_OBJECT_ID: case CKA_ISSUER:
    case CKA_SERIAL_NUMBER: case CKA_AC_ISSUER: case CKA_OWNER: case CKA_ATTR_TYPES:
    case CKA_URL: case CKA_HASH_OF_SUBJECT_PUBLIC_KEY: case CKA_HASH_OF_ISSUER_PUBLIC_KEY:
    case CKA_CHECK_VALUE: case CKA_SUBJECT: case CKA_ID: case CKA_START_DATE: case CKA_END_DATE:
    case CKA_MODULUS: case CKA_PUBLIC_EXPONENT: case CKA_PRIVATE_EXPONENT: case CKA_PRIME_1:
    case CKA_PRIME_2: case CKA_EXPONENT_1: case CKA_EXPONENT_2: case CKA_COEFFICIENT:
    case CKA_PUBLIC_KEY_INFO: case CKA_EC_PARAMS: case CKA_EC_POINT:
      return AttributeKind::ByteString;
    default:
      return AttributeKind::Unknown;
  }
}

const Bytes* find_attribute(const AttributeMap& m, CK_ATTRIBUTE_TYPE type) {
  auto it = m.find(type);
  return it == m.end() ? nullptr : &it->second;
}

std::optional<bool> get_bool(const AttributeMap& m, CK_ATTRIBUTE_TYPE type) {
  const Bytes* v = find_attribute(m, type);
  if (v == nullptr || v->size() != 1) return std::nullopt;
  return (*v)[0] != CK_FALSE;
}

std::optional<CK_ULONG> get_ulong(const AttributeMap& m, CK_ATTRIBUTE_TYPE type) {
  const Bytes* v = find_attribute(m, type);
  if (v == nullptr || v->size() != sizeof(CK_ULONG)) return std::nullopt;
  CK_ULONG out;
  std::memcpy(&out, v->data(), sizeof out);
  return out;
}

bool bool_or(const AttributeMap& m, CK_ATTRIBUTE_TYPE type, bool fallback) {
  return get_bool(m, type).value_or(fallback);
}

void set_bool(AttributeMap& m, CK_ATTRIBUTE_TYPE type, bool v) {
  m[type] = Bytes{static_cast<std::uint8_t>(v ? CK_TRUE : CK_FALSE)};
}

void set_ulong(AttributeMap& m, CK_ATTRIBUTE_TYPE type, CK_ULONG v) {
  Bytes b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  m[type] = std::move(b);
}

void set_bytes(AttributeMap& m, CK_ATTRIBUTE_TYPE type, std::span<const std::uint8_t> v) {
  m[type] = to_bytes(v);
}

CK_RV validate_template(std::span<const CK_ATTRIBUTE> tmpl) {
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    const CK_ATTRIBUTE& a = tmpl[i];
    if (a.pValue == nullptr && a.ulValueLen != 0) return CKR_ARGUMENTS_BAD;
    if (a.ulValueLen > kMaxAttributeValue) return CKR_ATTRIBUTE_VALUE_INVALID;
    switch (attribute_kind(a.type)) {
      case AttributeKind::Unknown:
        return CKR_ATTRIBUTE_TYPE_INVALID;
      case AttributeKind::Bool:
        if (a.ulValueLen != sizeof(CK_BBOOL)) return CKR_ATTRIBUTE_VALUE_INVALID;
        break;
      case AttributeKind::Ulong:
        if (a.ulValueLen != sizeof(CK_ULONG)) return CKR_ATTRIBUTE_VALUE_INVALID;
        break;
      case AttributeKind::ByteString:
        break;
    }
    // The same attribute twice with different values cannot be honoured [PKCS#11 v2.40 4.1.1].
    for (std::size_t j = 0; j < i; ++j) {
      const CK_ATTRIBUTE& b = tmpl[j];
      if (b.type != a.type) continue;
      if (b.ulValueLen != a.ulValueLen ||
          (a.ulValueLen != 0 && std::memcmp(a.pValue, b.pValue, a.ulValueLen) != 0)) {
        return CKR_TEMPLATE_INCONSISTENT;
      }
    }
  }
  return CKR_OK;
}

void merge_template(AttributeMap& m, std::span<const CK_ATTRIBUTE> tmpl) {
  for (const CK_ATTRIBUTE& a : tmpl) {
    const auto* p = static_cast<const std::uint8_t*>(a.pValue);
    Bytes v(p, p + a.ulValueLen);
    if (attribute_kind(a.type) == AttributeKind::Bool && !v.empty()) {
      v[0] = v[0] != CK_FALSE ? CK_TRUE : CK_FALSE;  // normalise: any non-zero byte is true
    }
    m[a.type] = std::move(v);
  }
}

bool matches(const AttributeMap& m, std::span<const CK_ATTRIBUTE> tmpl) {
  for (const CK_ATTRIBUTE& a : tmpl) {
    const Bytes* v = find_attribute(m, a.type);
    if (v == nullptr || v->size() != a.ulValueLen) return false;
    if (attribute_kind(a.type) == AttributeKind::Bool) {
      if (a.ulValueLen != 1 ||
          ((*v)[0] != CK_FALSE) != (*static_cast<const CK_BBOOL*>(a.pValue) != CK_FALSE)) {
        return false;
      }
      continue;
    }
    if (a.ulValueLen != 0 && std::memcmp(v->data(), a.pValue, a.ulValueLen) != 0) return false;
  }
  return true;
}

void encode_attributes(const AttributeMap& m, Bytes& out) {
  put_u32(out, static_cast<std::uint32_t>(m.size()));
  for (const auto& [type, value] : m) {
    put_u64(out, type);
    if (attribute_kind(type) == AttributeKind::Ulong && value.size() == sizeof(CK_ULONG)) {
      CK_ULONG v;
      std::memcpy(&v, value.data(), sizeof v);
      put_u32(out, 8);
      put_u64(out, v);
    } else {
      put_u32(out, static_cast<std::uint32_t>(value.size()));
      out.insert(out.end(), value.begin(), value.end());
    }
  }
}

bool decode_attributes(std::span<const std::uint8_t> in, AttributeMap& out) {
  out.clear();
  if (in.size() < 4) return false;
  const std::uint64_t count = get_le(in.data(), 4);
  if (count > kMaxAttributes) return false;
  std::size_t pos = 4;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (in.size() - pos < 12) return false;
    const std::uint64_t type = get_le(in.data() + pos, 8);
    const std::uint64_t len = get_le(in.data() + pos + 8, 4);
    pos += 12;
    if (len > kMaxAttributeValue || len > in.size() - pos) return false;
    if (type > static_cast<std::uint64_t>(static_cast<CK_ATTRIBUTE_TYPE>(-1))) return false;
    const auto t = static_cast<CK_ATTRIBUTE_TYPE>(type);
    if (out.count(t) != 0) return false;
    const std::uint8_t* value = in.data() + pos;
    switch (attribute_kind(t)) {
      case AttributeKind::Unknown:
        return false;
      case AttributeKind::Bool:
        if (len != 1 || value[0] > CK_TRUE) return false;
        out[t] = Bytes(value, value + 1);
        break;
      case AttributeKind::Ulong: {
        if (len != 8) return false;
        const std::uint64_t v = get_le(value, 8);
        if (v > static_cast<std::uint64_t>(static_cast<CK_ULONG>(-1))) return false;
        set_ulong(out, t, static_cast<CK_ULONG>(v));
        break;
      }
      case AttributeKind::ByteString:
        out[t] = Bytes(value, value + len);
        break;
    }
    pos += static_cast<std::size_t>(len);
  }
  return pos == in.size();
}

void make_object_header(ObjectKind kind, std::uint64_t id, std::uint8_t (&out)[kObjectHeaderSize]) {
  std::memset(out, 0, sizeof out);
  std::memcpy(out, kObjectMagic, sizeof kObjectMagic);
  out[8] = 1;
  out[9] = static_cast<std::uint8_t>(kind);
  for (int i = 0; i < 8; ++i) out[16 + i] = static_cast<std::uint8_t>(id >> (8 * i));
}

bool parse_object_frame(std::span<const std::uint8_t> file, ObjectFrame& out) {
  if (file.size() < kObjectHeaderSize) return false;
  if (std::memcmp(file.data(), kObjectMagic, sizeof kObjectMagic) != 0) return false;
  if (file[8] != 1 || file[10] != 0 || file[11] != 0) return false;
  for (int i = 12; i < 16; ++i) {
    if (file[static_cast<std::size_t>(i)] != 0) return false;
  }
  out.header = file.first(kObjectHeaderSize);
  out.id = get_le(file.data() + 16, 8);
  const auto rest = file.subspan(kObjectHeaderSize);
  switch (file[9]) {
    case static_cast<std::uint8_t>(ObjectKind::Public):
      if (rest.size() < kMacSize) return false;
      out.kind = ObjectKind::Public;
      out.payload = rest.first(rest.size() - kMacSize);
      out.trailer = rest.last(kMacSize);
      return true;
    case static_cast<std::uint8_t>(ObjectKind::Private):
      if (rest.size() < 12 + 16) return false;  // nonce and tag at least
      out.kind = ObjectKind::Private;
      out.payload = rest;
      out.trailer = {};
      return true;
    default:
      return false;
  }
}

}  // namespace edgekit::pkcs11::token
