#pragma once
/// \file
/// Request documents and reply readers of fleet provisioning by claim (aws-iot-protocols.md
/// 4.1), in JSON or CBOR (CBOR with the same text keys), over edgekit::doc's allocation-free
/// codecs. Field names are AWS's exactly: requests `certificateSigningRequest`,
/// `certificateOwnershipToken`, `parameters`; accepted replies `certificateId`,
/// `certificatePem`, `privateKey`, `certificateOwnershipToken`, `deviceConfiguration`,
/// `thingName`; rejected replies `statusCode`, `errorCode`, `errorMessage`.
///
/// Pure: no heap, no I/O, no clock. Writers fill the caller's buffer and return the size used.
/// Readers take the reply bytes (untrusted) and return views: into the reply itself where the
/// value can be read in place (CBOR text, JSON strings without escapes) or into the caller's
/// `scratch` where it must be unescaped (a JSON PEM's "\n"). Views stay valid while both are
/// unchanged. Secrets: `privateKey` may land in `scratch`; the caller wipes `scratch` and the
/// reply when done (the provisioning client does).
/// Unknown fields are ignored (the service may add some); a known field of the wrong type is
/// MalformedReply. Thread safety: none needed (no state).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/provisioning/errc.hpp"
#include "edgekit/provisioning/topics.hpp"

namespace edgekit::provisioning {

/// A template parameter or a device-configuration entry: two views.
struct KeyValue {
  std::string_view key;
  std::string_view value;
};

/// The most template parameters a request may carry, and device-configuration entries a reply
/// is read into at most (more is MalformedReply: a bound on what a reply can make us hold).
inline constexpr std::size_t kMaxParameters = 32;

/// The CreateKeysAndCertificate request: an empty object (`{}` / CBOR 0xA0; AWS accepts an
/// empty payload too, its SDKs send the empty object). Errors: BufferTooSmall.
[[nodiscard]] Result<std::size_t, Errc> write_create_keys_request(
    Format format, std::span<std::uint8_t> out) noexcept;

/// The CreateCertificateFromCsr request: {"certificateSigningRequest": <PEM>}.
/// Errors: InvalidArgument (empty CSR, not UTF-8), BufferTooSmall.
[[nodiscard]] Result<std::size_t, Errc> write_create_from_csr_request(
    Format format, std::string_view csr_pem, std::span<std::uint8_t> out) noexcept;

/// The RegisterThing request: {"certificateOwnershipToken": <token>, "parameters": {k: v, ...}}
/// (`parameters` left out when there are none).
/// Errors: InvalidArgument (empty token, more than kMaxParameters, an empty or repeated key,
/// text that is not UTF-8), BufferTooSmall.
[[nodiscard]] Result<std::size_t, Errc> write_register_thing_request(
    Format format, std::string_view ownership_token, std::span<const KeyValue> parameters,
    std::span<std::uint8_t> out) noexcept;

/// The accepted reply of CreateKeysAndCertificate and CreateCertificateFromCsr.
struct CertificateAccepted {
  std::string_view certificate_id;  ///< 64 lower-case hex digits (SHA-256 of the DER)
  std::string_view certificate_pem;
  std::string_view private_key;      ///< CreateKeysAndCertificate only (else empty)
  std::string_view ownership_token;  ///< certificateOwnershipToken
};

/// Reads an accepted reply of `api` (CreateKeysAndCertificate or CreateCertificateFromCsr).
/// Required: certificateId (64 hex digits, either case), certificatePem,
/// certificateOwnershipToken, and privateKey for CreateKeysAndCertificate; all non-empty
/// strings. Errors: MalformedReply (not a document of `format`, not an object, a required field
/// missing, empty or of another type), BufferTooSmall (`scratch` too small for the unescaped
/// strings: give it as much as the reply), InvalidArgument (`api` is RegisterThing).
[[nodiscard]] Result<CertificateAccepted, Errc> read_certificate_accepted(
    Format format, Api api, std::span<const std::uint8_t> reply, std::span<char> scratch) noexcept;

/// The accepted reply of RegisterThing.
struct RegisterThingAccepted {
  std::string_view thing_name;
  /// `deviceConfiguration`, a flat string map (an empty object when the template has none; a
  /// missing field reads as empty): the first `configuration_count` entries of the caller's
  /// `configuration` array.
  std::size_t configuration_count = 0;
};

/// Reads a RegisterThing accepted reply. Required: thingName, a non-empty string (1-128 bytes
/// of `[a-zA-Z0-9:_-]`, aws-iot-protocols.md 0). deviceConfiguration is flat (4.3): string
/// values are read as they are, integers as their decimal text (in `scratch`), booleans as the
/// static text "true" / "false"; a fraction, null, array or object is MalformedReply.
/// Errors: MalformedReply (as above; a nested value in deviceConfiguration; more entries than
/// `configuration` holds), BufferTooSmall (`scratch`).
[[nodiscard]] Result<RegisterThingAccepted, Errc> read_register_thing_accepted(
    Format format, std::span<const std::uint8_t> reply, std::span<KeyValue> configuration,
    std::span<char> scratch) noexcept;

/// A rejected reply of any of the three operations.
struct Rejected {
  std::int64_t status_code = 0;
  std::string_view error_code;
  std::string_view error_message;
  /// `rejection_errc(status_code, error_code)`: the value naming this rejection.
  Errc errc = Errc::RejectedOther;
};

/// Reads a rejected reply. Every field is optional (a service that sends less still rejected
/// the request): a missing statusCode reads 0, missing strings read empty; present fields must
/// have their types (statusCode an integer, the others strings).
/// Errors: MalformedReply, BufferTooSmall (`scratch`).
[[nodiscard]] Result<Rejected, Errc> read_rejected(Format format,
                                                   std::span<const std::uint8_t> reply,
                                                   std::span<char> scratch) noexcept;

/// Whether `id` is 64 hex digits.
[[nodiscard]] bool valid_certificate_id(std::string_view id) noexcept;
/// The longest thing name AWS IoT takes (aws-iot-protocols.md 0).
inline constexpr std::size_t kMaxThingNameLength = 128;
/// Whether `name` can be a thing name: 1-kMaxThingNameLength bytes of `[a-zA-Z0-9:_-]`.
[[nodiscard]] bool valid_thing_name(std::string_view name) noexcept;

}  // namespace edgekit::provisioning
