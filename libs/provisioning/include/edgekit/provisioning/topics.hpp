#pragma once
/// \file
/// Topics of fleet provisioning by claim (aws-iot-protocols.md 4.1), built into the caller's
/// buffer and matched without copying:
///
///   $aws/certificates/create/{fmt}                              CreateKeysAndCertificate
///   $aws/certificates/create-from-csr/{fmt}                     CreateCertificateFromCsr
///   $aws/provisioning-templates/{template}/provision/{fmt}      RegisterThing
///
/// each with `/accepted` and `/rejected` replies; `{fmt}` is `json` or `cbor`.
/// Pure: no heap, no I/O. Returned views point into the caller's buffer (builders) or into the
/// topic given (matchers) and stay valid as long as that memory. Thread safety: none needed.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/provisioning/errc.hpp"

namespace edgekit::provisioning {

/// The payload encoding of a request and its replies (the `{fmt}` topic level).
enum class Format : std::uint8_t { Json, Cbor };

/// The three operations of fleet provisioning by claim.
enum class Api : std::uint8_t { CreateKeysAndCertificate, CreateCertificateFromCsr, RegisterThing };

/// Which topic of an operation: the request, or one of its two replies.
enum class TopicKind : std::uint8_t { Request, Accepted, Rejected };

/// The longest template name (the Fleet Provisioning library's constant; fact sheet section 0).
inline constexpr std::size_t kMaxTemplateNameLength = 36;
/// Room enough for every provisioning topic (the longest is a RegisterThing rejected topic with
/// a 36-byte template name: 87 bytes).
inline constexpr std::size_t kMaxTopicLength = 96;

/// "json" or "cbor".
[[nodiscard]] std::string_view to_string(Format format) noexcept;
/// "CreateKeysAndCertificate", "CreateCertificateFromCsr", "RegisterThing".
[[nodiscard]] const char* to_string(Api api) noexcept;

/// Whether `name` can be a template name: 1 to 36 bytes of `[a-zA-Z0-9_-]` (the AWS
/// CreateProvisioningTemplate pattern; no '/', '+', '#' that would break the topic).
[[nodiscard]] bool valid_template_name(std::string_view name) noexcept;

/// Writes the topic of `api`/`kind` in `format` into `buffer` and returns a view of it.
/// `template_name` is used by RegisterThing only (ignored otherwise).
/// Errors: InvalidArgument (RegisterThing with an invalid template name), BufferTooSmall
/// (nothing useful is left in `buffer`; kMaxTopicLength always suffices).
[[nodiscard]] Result<std::string_view, Errc> topic(Api api, Format format, TopicKind kind,
                                                   std::span<char> buffer,
                                                   std::string_view template_name = {}) noexcept;

/// What a provisioning topic names. `template_name` views into the matched topic (empty unless
/// RegisterThing).
struct TopicMatch {
  Api api = Api::CreateKeysAndCertificate;
  Format format = Format::Json;
  TopicKind kind = TopicKind::Request;
  std::string_view template_name;
};

/// Reads any provisioning topic (request or reply). Exact match only: no trailing levels, no
/// other format, a valid template name.
/// Errors: TopicMismatch (not a provisioning topic).
[[nodiscard]] Result<TopicMatch, Errc> match_topic(std::string_view topic) noexcept;

/// True when `topic` is the `kind` reply (Accepted or Rejected) of `api` in `format` (and, for
/// RegisterThing, of `template_name`): what a client waiting for one request checks.
[[nodiscard]] bool is_reply_topic(std::string_view topic, Api api, Format format, TopicKind kind,
                                  std::string_view template_name = {}) noexcept;

}  // namespace edgekit::provisioning
