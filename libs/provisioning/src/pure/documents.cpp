// Request writers and reply readers of fleet provisioning (aws-iot-protocols.md 4.1), one
// template over edgekit::doc's JSON and CBOR values and writers (same calls in both formats).
#include "edgekit/provisioning/documents.hpp"

#include <charconv>
#include <cstring>

#include "edgekit/core/text.hpp"
#include "edgekit/doc/cbor.hpp"
#include "edgekit/doc/either.hpp"
#include "edgekit/doc/json.hpp"

namespace edgekit::provisioning {
namespace {

// Field names, exactly as AWS spells them.
constexpr std::string_view kCsr = "certificateSigningRequest";
constexpr std::string_view kOwnershipToken = "certificateOwnershipToken";
constexpr std::string_view kParameters = "parameters";
constexpr std::string_view kCertificateId = "certificateId";
constexpr std::string_view kCertificatePem = "certificatePem";
constexpr std::string_view kPrivateKey = "privateKey";
constexpr std::string_view kDeviceConfiguration = "deviceConfiguration";
constexpr std::string_view kThingName = "thingName";
constexpr std::string_view kStatusCode = "statusCode";
constexpr std::string_view kErrorCode = "errorCode";
constexpr std::string_view kErrorMessage = "errorMessage";

// Carves unescaped strings out of the caller's scratch buffer, one after the other.
struct Scratch {
  std::span<char> free;
  bool overflow = false;
  std::span<char> take(std::size_t n) noexcept {
    if (n > free.size()) {
      overflow = true;
      return {};
    }
    auto out = free.first(n);
    free = free.subspan(n);
    return out;
  }
};

// A string value: in place where it can be (CBOR text, JSON without escapes), else unescaped
// into scratch. WrongType for anything but a string.
template <class V>
Result<std::string_view, Errc> read_string(const V& v, Scratch& scratch) noexcept {
  if (!v.is_string()) return fail(Errc::MalformedReply);
  if (auto view = v.as_string_view()) return *view;
  auto copied = v.copy_string(scratch.free);
  if (!copied) return fail(Errc::BufferTooSmall);
  (void)scratch.take(copied->size());
  return *copied;
}

// A scalar as text: strings as they are; integers and booleans printed into scratch (a
// deviceConfiguration entry whose template value was not a string).
template <class V>
Result<std::string_view, Errc> read_scalar_text(const V& v, Scratch& scratch) noexcept {
  if (v.is_string()) return read_string(v, scratch);
  if (v.is_bool()) {
    auto b = v.as_bool();
    if (!b) return fail(Errc::MalformedReply);
    return std::string_view(*b ? "true" : "false");
  }
  if (v.is_number()) {
    auto i = v.as_int64();
    if (!i) return fail(Errc::MalformedReply);  // fractions: a flat map of text, 4.3
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, *i);
    const auto n = static_cast<std::size_t>(r.ptr - digits);
    auto out = scratch.take(n);
    if (scratch.overflow) return fail(Errc::BufferTooSmall);
    std::memcpy(out.data(), digits, n);
    return std::string_view(out.data(), n);
  }
  return fail(Errc::MalformedReply);
}

// A required, non-empty string member.
template <class V>
Result<std::string_view, Errc> required(const V& object, std::string_view key,
                                        Scratch& scratch) noexcept {
  auto v = object.find(key);
  if (!v) return fail(Errc::MalformedReply);
  auto s = read_string(*v, scratch);
  if (!s) return fail(s.error());
  if (s->empty()) return fail(Errc::MalformedReply);
  return *s;
}

// An optional string member: empty when absent, MalformedReply when of another type.
template <class V>
Result<std::string_view, Errc> optional_string(const V& object, std::string_view key,
                                               Scratch& scratch) noexcept {
  auto v = object.find(key);
  if (!v) return std::string_view{};
  return read_string(*v, scratch);
}

// Parses `reply` in `format` and hands its root object to `read`.
template <class F>
auto with_root(Format format, std::span<const std::uint8_t> reply, F&& read) noexcept {
  return doc::read_object(format == Format::Cbor, reply, Errc::MalformedReply, read);
}

// Runs `write(w)` and returns the size of the finished document.
template <class W, class F>
Result<std::size_t, Errc> finish_with(W& w, F& write) noexcept {
  write(w);
  auto done = w.finish();
  if (done) return done->size();
  // The doc writers fail for text that is not UTF-8 (InvalidArgument) or for room (the rest).
  return fail(done.error().code == doc::Errc::InvalidArgument ? Errc::InvalidArgument
                                                              : Errc::BufferTooSmall);
}

// Writes a document with `write(writer)` in `format` into `out`; returns its size.
template <class F>
Result<std::size_t, Errc> with_writer(Format format, std::span<std::uint8_t> out,
                                      F&& write) noexcept {
  if (format == Format::Json) {
    doc::json::Writer w(std::span<char>(reinterpret_cast<char*>(out.data()), out.size()));
    return finish_with(w, write);
  }
  doc::cbor::Writer w(std::as_writable_bytes(out));
  return finish_with(w, write);
}

bool hex_digit(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

bool valid_certificate_id(std::string_view id) noexcept {
  if (id.size() != 64) return false;
  for (char c : id) {
    if (!hex_digit(c)) return false;
  }
  return true;
}

bool valid_thing_name(std::string_view name) noexcept {
  return is_aws_name(name, kMaxThingNameLength, /*allow_colon=*/true);
}

Result<std::size_t, Errc> write_create_keys_request(Format format,
                                                    std::span<std::uint8_t> out) noexcept {
  return with_writer(format, out, [](auto& w) { w.begin_object().end_object(); });
}

Result<std::size_t, Errc> write_create_from_csr_request(Format format, std::string_view csr_pem,
                                                        std::span<std::uint8_t> out) noexcept {
  if (csr_pem.empty()) return fail(Errc::InvalidArgument);
  return with_writer(format, out,
                     [&](auto& w) { w.begin_object().member(kCsr, csr_pem).end_object(); });
}

Result<std::size_t, Errc> write_register_thing_request(Format format,
                                                       std::string_view ownership_token,
                                                       std::span<const KeyValue> parameters,
                                                       std::span<std::uint8_t> out) noexcept {
  if (ownership_token.empty() || parameters.size() > kMaxParameters) {
    return fail(Errc::InvalidArgument);
  }
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    if (parameters[i].key.empty()) return fail(Errc::InvalidArgument);
    for (std::size_t j = 0; j < i; ++j) {
      // A repeated key would be a document the service must refuse (duplicate keys).
      if (parameters[j].key == parameters[i].key) return fail(Errc::InvalidArgument);
    }
  }
  return with_writer(format, out, [&](auto& w) {
    w.begin_object().member(kOwnershipToken, ownership_token);
    if (!parameters.empty()) {
      w.key(kParameters).begin_object();
      for (const KeyValue& p : parameters) w.member(p.key, p.value);
      w.end_object();
    }
    w.end_object();
  });
}

Result<CertificateAccepted, Errc> read_certificate_accepted(Format format, Api api,
                                                            std::span<const std::uint8_t> reply,
                                                            std::span<char> scratch) noexcept {
  if (api == Api::RegisterThing) return fail(Errc::InvalidArgument);
  return with_root(format, reply, [&](const auto& root) -> Result<CertificateAccepted, Errc> {
    Scratch s{scratch};
    CertificateAccepted out;
    auto id = required(root, kCertificateId, s);
    if (!id) return fail(id.error());
    if (!valid_certificate_id(*id)) return fail(Errc::MalformedReply);
    auto pem = required(root, kCertificatePem, s);
    if (!pem) return fail(pem.error());
    auto token = required(root, kOwnershipToken, s);
    if (!token) return fail(token.error());
    out.certificate_id = *id;
    out.certificate_pem = *pem;
    out.ownership_token = *token;
    if (api == Api::CreateKeysAndCertificate) {
      auto key = required(root, kPrivateKey, s);
      if (!key) return fail(key.error());
      out.private_key = *key;
    }
    return out;
  });
}

Result<RegisterThingAccepted, Errc> read_register_thing_accepted(
    Format format, std::span<const std::uint8_t> reply, std::span<KeyValue> configuration,
    std::span<char> scratch) noexcept {
  return with_root(format, reply, [&](const auto& root) -> Result<RegisterThingAccepted, Errc> {
    Scratch s{scratch};
    RegisterThingAccepted out;
    auto thing = required(root, kThingName, s);
    if (!thing) return fail(thing.error());
    if (!valid_thing_name(*thing)) return fail(Errc::MalformedReply);
    out.thing_name = *thing;
    auto config = root.find(kDeviceConfiguration);
    if (!config) return out;  // absent: no configuration
    if (!config->is_object()) return fail(Errc::MalformedReply);
    for (const auto& member : config->members()) {
      if (out.configuration_count >= configuration.size()) return fail(Errc::MalformedReply);
      auto key = read_string(member.key, s);
      if (!key) return fail(key.error());
      auto value = read_scalar_text(member.value, s);
      if (!value) return fail(value.error());
      configuration[out.configuration_count++] = KeyValue{*key, *value};
    }
    return out;
  });
}

Result<Rejected, Errc> read_rejected(Format format, std::span<const std::uint8_t> reply,
                                     std::span<char> scratch) noexcept {
  return with_root(format, reply, [&](const auto& root) -> Result<Rejected, Errc> {
    Scratch s{scratch};
    Rejected out;
    if (auto status = root.find(kStatusCode)) {
      auto n = status->as_int64();
      if (!status->is_number() || !n) return fail(Errc::MalformedReply);
      out.status_code = *n;
    }
    auto code = optional_string(root, kErrorCode, s);
    if (!code) return fail(code.error());
    auto message = optional_string(root, kErrorMessage, s);
    if (!message) return fail(message.error());
    out.error_code = *code;
    out.error_message = *message;
    out.errc = rejection_errc(out.status_code, out.error_code);
    return out;
  });
}

}  // namespace edgekit::provisioning
