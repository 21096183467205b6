#pragma once
/// \file
/// The logic behind `edgekit token`: provisioning a PKCS#11 token (any module) through the
/// edgekit client. Initialise a token, generate a key pair that never leaves it, make a PKCS#10
/// request signed inside the token, import the issued certificate next to the key, list objects,
/// describe module, slots and mechanisms.
///
/// Errors are a ToolError: one message for a person (it names the CKR code where a PKCS#11 call
/// failed, and says what to do) and a process exit code. Nothing here prints or reads a terminal;
/// the command-line layer (tools/edgekit/token.cpp) does that.
///
/// Thread safety: none beyond what the client gives; use one Session per thread.

#include <edgekit/core/result.hpp>
#include <edgekit/pkcs11/client.hpp>
#include <edgekit/pki/keys.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgekit::tools::token {

using pkcs11::Bytes;

/// Exit codes of `edgekit token` (documented in docs/pkcs11.md).
enum class Exit : int {
  Ok = 0,
  Failure = 1,     ///< the token or module refused (the message says why)
  Usage = 2,       ///< bad command-line input (malformed id, subject, key type, file)
  NotFound = 3,    ///< no such token, key or object
  PinRefused = 4,  ///< wrong, locked or missing PIN
};

/// A failure worth a message: what went wrong, and what to do about it.
struct ToolError {
  Exit exit = Exit::Failure;
  std::string message;
};

template <class T>
using ToolResult = edgekit::Result<T, ToolError>;
using ToolStatus = edgekit::Result<void, ToolError>;

/// Makes a ToolError from a client error: the message names the PKCS#11 function and CKR code
/// (via pkcs11::Error::message) and adds advice for the codes a person can act on (wrong PIN,
/// locked PIN, token not initialised, PIN length, missing mechanism, read-only token...).
/// `context` prefixes the message, e.g. "login as user".
ToolError explain(const pkcs11::Error& error, std::string_view context);

/// A secret (PIN) whose bytes are wiped (OPENSSL_cleanse) when it is destroyed or reassigned.
/// Move-only.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  Secret(Secret&& other) noexcept;
  Secret& operator=(Secret&& other) noexcept;
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  ~Secret();
  [[nodiscard]] std::string_view view() const { return value_; }
  [[nodiscard]] bool empty() const { return value_.empty(); }
  /// Wipes and empties the secret.
  void clear() noexcept;

 private:
  std::string value_;
};

/// Wipes a string's bytes (e.g. a PIN CLI11 parsed into an options struct), then empties it.
void wipe(std::string& s) noexcept;

enum class KeyType { EcP256, EcP384, Rsa2048, Rsa3072 };
/// "ec-p256", "ec-p384", "rsa-2048", "rsa-3072"; nullopt for anything else.
std::optional<KeyType> parse_key_type(std::string_view text);
const char* key_type_name(KeyType type);

/// A CKA_ID written as hex ("0a1b", optionally "0x"-prefixed, ':' separators allowed).
/// Errors: Usage for an empty, odd-length or non-hex string, or more than 64 bytes.
ToolResult<Bytes> parse_id(std::string_view hex);
/// Lower-case hex, no separators (edgekit::pki's).
using pki::to_hex;

/// The module `edgekit token` loads when `--module` is not given: libedgekit-pkcs11.so next to
/// the executable `exe` (the build tree), else in ../<libdir> and ../lib relative to it (an
/// installed tree), else the bare name for the dynamic loader's search path.
std::string default_module_path(const std::string& exe);

/// Loads a module. Errors: Failure naming the path and dlopen's reason.
ToolResult<pkcs11::Module> load_module(const std::string& path);

/// The slot holding the initialised token labelled `label`, or, with no label, the only
/// initialised token. Errors: NotFound when no token is initialised ("run edgekit token init"),
/// no token has that label, or several are initialised and no label chooses one.
ToolResult<CK_SLOT_ID> select_token(const pkcs11::Module& module,
                                    const std::optional<std::string>& label);

/// C_InitToken on `slot` (or, with no slot, the first slot whose token is not initialised), then
/// logs in as SO and sets the user PIN with C_InitPIN. A token already initialised is only
/// re-initialised (erasing its objects) with `force`. Returns the slot the token now sits in
/// (looked up by label again: some modules, SoftHSM2 among them, renumber slots).
/// Errors: Usage for a label over 32 bytes; NotFound for no free slot; Failure/PinRefused from
/// the module.
ToolResult<CK_SLOT_ID> init_token(const pkcs11::Module& module, std::optional<CK_SLOT_ID> slot,
                                  const std::string& label, std::string_view so_pin,
                                  std::string_view user_pin, bool force);

/// Opens a session on `slot` (read/write for commands that create objects; read-only ones also
/// work on a write-protected token) and logs the user in (skipped when `pin` is nullopt).
/// Errors: PinRefused (wrong, locked, not initialised PIN) or Failure.
ToolResult<pkcs11::Session> open_user_session(const pkcs11::Module& module, CK_SLOT_ID slot,
                                              const std::optional<std::string_view>& pin,
                                              bool read_write = true);

/// What keygen made.
struct GeneratedKey {
  pkcs11::KeyPair handles;
  Bytes id;
  std::string public_key_pem;  ///< SubjectPublicKeyInfo, PEM
};

/// Generates a key pair labelled `key_label` with CKA_ID `id` (random 8 bytes from the token when
/// empty). The private key is CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_PRIVATE, CKA_SIGN; the
/// public key CKA_VERIFY. Refuses a label or id already used by a private key (Usage), so a later
/// `csr --key-label` is never ambiguous. Errors: Usage; Failure from the module (e.g.
/// CKR_MECHANISM_INVALID for a key type the module lacks).
ToolResult<GeneratedKey> generate_key(pkcs11::Session& session, KeyType type,
                                      const std::string& key_label, Bytes id);

/// The private key labelled `key_label` (exactly one). Errors: NotFound ("see edgekit token
/// list"), Usage when several keys share the label.
ToolResult<CK_OBJECT_HANDLE> find_private_key(pkcs11::Session& session,
                                              const std::string& key_label);

/// The public key of a private key, as DER SubjectPublicKeyInfo: read from the public key object
/// with the same CKA_ID (else the same label): CKA_EC_PARAMS + CKA_EC_POINT, or CKA_MODULUS +
/// CKA_PUBLIC_EXPONENT. Errors: NotFound when no public key object exists; Failure for a key
/// type other than EC or RSA or attributes OpenSSL rejects.
ToolResult<Bytes> public_key_der(pkcs11::Session& session, CK_OBJECT_HANDLE private_key);

/// Parses "/CN=thing-1/O=Acme/C=DE" (OpenSSL's -subj form; "\/" is a literal slash) into
/// (field, value) pairs, with pki::Name::parse. Errors: Usage for an empty subject, a component
/// without '=', an empty or unknown field name, or a value the field does not take.
ToolResult<std::vector<std::pair<std::string, std::string>>> parse_subject(std::string_view text);

/// Makes a PKCS#10 certification request (PEM) for the private key `key_label` with
/// edgekit::pki (TokenSigner + make_csr): the request info (subject, the token's public key, no
/// attributes) is signed by the token with CKM_ECDSA_SHA256 (CKM_ECDSA_SHA384 for P-384) or
/// CKM_SHA256_RSA_PKCS, falling back to the hash signed with CKM_ECDSA or a DigestInfo with
/// CKM_RSA_PKCS. The request is checked with its own public key before it is returned.
/// Errors: NotFound (key), Usage (subject), Failure (sign, encode, self-check).
ToolResult<std::string> make_csr(pkcs11::Session& session, const std::string& key_label,
                                 std::string_view subject);

/// What import-cert stored.
struct ImportedCertificate {
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  Bytes id;
  std::string subject;
  bool matches_key = false;  ///< a private key with this id exists and its public key is the cert's
};

/// Stores the certificate in `pem` (the first CERTIFICATE block, or DER) as CKO_CERTIFICATE / CKC_X_509 with CKA_LABEL `label`,
/// CKA_ID, CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER and CKA_VALUE. The id is `id` if given;
/// else that of the private key labelled `label`; else that of the private key whose public key
/// is the certificate's. Refuses a certificate whose public key differs from the key with that
/// id (Usage), and a label+id already holding a certificate (Usage: remove it first).
/// Errors: Usage (not a certificate, mismatch); NotFound (no key to take the id from and no
/// --id); Failure from the module.
ToolResult<ImportedCertificate> import_certificate(pkcs11::Session& session,
                                                   const std::string& label, std::string_view pem,
                                                   std::optional<Bytes> id);

/// One object as `edgekit token list` shows it.
struct ObjectSummary {
  CK_OBJECT_CLASS object_class = 0;
  std::string label;
  Bytes id;
  std::string key_type;           ///< "EC P-256", "RSA 2048", "" for other objects
  std::optional<bool> sensitive;  ///< private and secret keys
  std::optional<bool> extractable;
  std::optional<bool> is_private;  ///< CKA_PRIVATE
  std::string subject;             ///< certificates: RFC 2253 form
  std::string not_after;           ///< certificates: "2027-11-26 09:00:00 UTC"
};

/// Every object the session can see (private ones only when logged in), sorted by id then class.
/// Errors: Failure from the module.
ToolResult<std::vector<ObjectSummary>> list_objects(pkcs11::Session& session);
/// One line per object, e.g.
/// `private-key  id=01 label="device" EC P-256 sensitive=yes extractable=no`.
std::string format_object(const ObjectSummary& object);

/// A multi-line description of the module, its slots, tokens and each token's mechanisms.
/// Errors: Failure from the module.
ToolResult<std::string> describe_module(const pkcs11::Module& module);

}  // namespace edgekit::tools::token
