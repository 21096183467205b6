#pragma once
// Objects as attribute maps, and the pure codec that stores them. Nothing here does I/O or crypto:
// the fuzz target drives these functions with arbitrary bytes.

#include "token/secure_bytes.hpp"

#include <edgekit/pkcs11/cryptoki.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <span>

namespace edgekit::pkcs11::token {

/// An object's attributes. Booleans are one CK_BBOOL byte, numbers one native CK_ULONG, the rest
/// byte strings exactly as PKCS#11 defines them.
using AttributeMap = std::map<CK_ATTRIBUTE_TYPE, Bytes>;

enum class AttributeKind { Bool, Ulong, ByteString, Unknown };
/// The value kind of every attribute the token understands; Unknown for the rest.
AttributeKind attribute_kind(CK_ATTRIBUTE_TYPE type);

const Bytes* find_attribute(const AttributeMap& m, CK_ATTRIBUTE_TYPE type);
std::optional<bool> get_bool(const AttributeMap& m, CK_ATTRIBUTE_TYPE type);
std::optional<CK_ULONG> get_ulong(const AttributeMap& m, CK_ATTRIBUTE_TYPE type);
bool bool_or(const AttributeMap& m, CK_ATTRIBUTE_TYPE type, bool fallback);
void set_bool(AttributeMap& m, CK_ATTRIBUTE_TYPE type, bool v);
void set_ulong(AttributeMap& m, CK_ATTRIBUTE_TYPE type, CK_ULONG v);
void set_bytes(AttributeMap& m, CK_ATTRIBUTE_TYPE type, std::span<const std::uint8_t> v);

/// Checks a caller's template: every attribute known, with a value of the right size, no
/// attribute twice with different values. Returns CKR_OK, CKR_ATTRIBUTE_TYPE_INVALID,
/// CKR_ATTRIBUTE_VALUE_INVALID, CKR_TEMPLATE_INCONSISTENT or CKR_ARGUMENTS_BAD.
CK_RV validate_template(std::span<const CK_ATTRIBUTE> tmpl);
/// Copies a validated template into a map (later entries win).
void merge_template(AttributeMap& m, std::span<const CK_ATTRIBUTE> tmpl);
/// True when every attribute of the template is present in `m` with an equal value.
bool matches(const AttributeMap& m, std::span<const CK_ATTRIBUTE> tmpl);

// Storage encoding of an attribute map (little-endian, numbers as 64 bits so that a token folder
// does not depend on the host's CK_ULONG):
//   u32 count, then per attribute: u64 type, u32 length, value bytes.
constexpr std::size_t kMaxAttributes = 256;
constexpr std::size_t kMaxAttributeValue = 64 * 1024;
void encode_attributes(const AttributeMap& m, Bytes& out);
/// False for anything but a well-formed encoding: truncated, trailing bytes, duplicate or unknown
/// attributes, wrong value sizes, too many or too large values.
bool decode_attributes(std::span<const std::uint8_t> in, AttributeMap& out);

// An object file: a 24-byte header, the payload, a trailer.
//   header  = "EKP11OBJ" | u8 version (1) | u8 kind | u16 zero | u32 zero | u64 object id
//   public  : payload = encoded attributes,         trailer = HMAC-SHA256(integrity key, header|payload)
//   private : payload = AES-256-GCM seal (nonce|ct|tag) of the encoded attributes, header as AAD;
//             no trailer.
enum class ObjectKind : std::uint8_t { Public = 0, Private = 1 };
constexpr std::size_t kObjectHeaderSize = 24;
constexpr std::size_t kMacSize = 32;
struct ObjectFrame {
  ObjectKind kind = ObjectKind::Public;
  std::uint64_t id = 0;
  std::span<const std::uint8_t> header;
  std::span<const std::uint8_t> payload;
  std::span<const std::uint8_t> trailer;
};
void make_object_header(ObjectKind kind, std::uint64_t id, std::uint8_t (&out)[kObjectHeaderSize]);
/// Splits a file into its parts; false when the file cannot be one of ours (bad magic, version,
/// kind, or too short). Says nothing about authenticity: the caller checks MAC or tag.
bool parse_object_frame(std::span<const std::uint8_t> file, ObjectFrame& out);

}  // namespace edgekit::pkcs11::token
