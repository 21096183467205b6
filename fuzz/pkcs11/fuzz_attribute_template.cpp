// Fuzzes what the token does with a caller's attribute template: validation, merging, matching,
// C_CreateObject's object builder (defaults, refused attributes, key material checked by
// building the key, certificate parsing) and the access rules on the result.
// Oracles: a valid template matches the map it was merged into; an object the builder accepts
// can be stored and read back unchanged, has a class, and a sensitive or non-extractable key
// never reveals its secret; an accepted EC or RSA key object yields an OpenSSL key.
#include "p11_fuzz.hpp"
#include "token/access.hpp"
#include "token/attributes.hpp"
#include "token/objects.hpp"

namespace {

namespace tk = edgekit::pkcs11::token;
namespace p11 = edgekit::fuzz::p11;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto login = static_cast<tk::LoginState>(data[0] % 3);
  std::vector<std::vector<std::uint8_t>> values;
  const auto tmpl = p11::decode_template({data + 1, size - 1}, values);
  const std::span<const CK_ATTRIBUTE> t(tmpl);

  if (tk::validate_template(t) == CKR_OK) {
    tk::AttributeMap merged;
    tk::merge_template(merged, t);
    FUZZ_CHECK(tk::matches(merged, t));
  }

  tk::AttributeMap obj;
  if (tk::object_from_template(t, login, obj) != CKR_OK) return 0;

  FUZZ_CHECK(tk::get_ulong(obj, CKA_CLASS).has_value());
  // Storable: what the token accepted, its object file can hold.
  tk::Bytes encoded;
  tk::encode_attributes(obj, encoded);
  tk::AttributeMap back;
  FUZZ_CHECK(tk::decode_attributes(tk::view(encoded), back));
  FUZZ_CHECK(back == obj);

  const auto cls = *tk::get_ulong(obj, CKA_CLASS);
  const auto key_type = tk::get_ulong(obj, CKA_KEY_TYPE);
  if (cls == CKO_PRIVATE_KEY || cls == CKO_SECRET_KEY) {
    // Key material is only ever stored sealed: an accepted key is a private object.
    FUZZ_CHECK(tk::bool_or(obj, CKA_PRIVATE, true));
    const bool hidden = tk::bool_or(obj, CKA_SENSITIVE, true) || !tk::bool_or(obj, CKA_EXTRACTABLE, false);
    if (hidden) {
      for (CK_ATTRIBUTE_TYPE secret : {CKA_VALUE, CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2,
                                       CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT}) {
        if (tk::find_attribute(obj, secret) != nullptr) {
          FUZZ_CHECK(tk::check_read(obj, secret) == CKR_ATTRIBUTE_SENSITIVE);
        }
      }
    }
  }
  if ((cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY) && key_type &&
      (*key_type == CKK_EC || *key_type == CKK_RSA)) {
    FUZZ_CHECK(tk::key_from_object(obj) != nullptr);
  }
  // The access rules answer for every attribute of the object without failing.
  for (const CK_ATTRIBUTE& a : t) {
    (void)tk::check_set(obj, a, login);
    (void)tk::check_read(obj, a.type);
  }
  (void)tk::object_visible(obj, login);
  return 0;
}
