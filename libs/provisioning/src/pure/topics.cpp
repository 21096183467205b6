#include "edgekit/provisioning/topics.hpp"

#include "edgekit/core/text.hpp"

namespace edgekit::provisioning {
namespace {

// aws-iot-protocols.md 4.1.
constexpr std::string_view kCreate = "$aws/certificates/create/";
constexpr std::string_view kCreateFromCsr = "$aws/certificates/create-from-csr/";
constexpr std::string_view kTemplates = "$aws/provisioning-templates/";
constexpr std::string_view kProvision = "/provision/";
constexpr std::string_view kAccepted = "/accepted";
constexpr std::string_view kRejected = "/rejected";

}  // namespace

std::string_view to_string(Format format) noexcept {
  return format == Format::Cbor ? "cbor" : "json";
}

const char* to_string(Api api) noexcept {
  switch (api) {
    case Api::CreateKeysAndCertificate:
      return "CreateKeysAndCertificate";
    case Api::CreateCertificateFromCsr:
      return "CreateCertificateFromCsr";
    case Api::RegisterThing:
      return "RegisterThing";
  }
  return "?";
}

bool valid_template_name(std::string_view name) noexcept {
  return is_aws_name(name, kMaxTemplateNameLength, /*allow_colon=*/false);
}

Result<std::string_view, Errc> topic(Api api, Format format, TopicKind kind, std::span<char> buffer,
                                     std::string_view template_name) noexcept {
  TextAppender w{buffer};
  switch (api) {
    case Api::CreateKeysAndCertificate:
      w.put(kCreate);
      break;
    case Api::CreateCertificateFromCsr:
      w.put(kCreateFromCsr);
      break;
    case Api::RegisterThing:
      if (!valid_template_name(template_name)) return fail(Errc::InvalidArgument);
      w.put(kTemplates);
      w.put(template_name);
      w.put(kProvision);
      break;
  }
  w.put(to_string(format));
  if (kind == TopicKind::Accepted) w.put(kAccepted);
  if (kind == TopicKind::Rejected) w.put(kRejected);
  if (w.overflow) return fail(Errc::BufferTooSmall);
  return std::string_view(buffer.data(), w.used);
}

Result<TopicMatch, Errc> match_topic(std::string_view t) noexcept {
  TopicMatch m;
  if (consume_prefix(t, kCreate)) {
    m.api = Api::CreateKeysAndCertificate;
  } else if (consume_prefix(t, kCreateFromCsr)) {
    m.api = Api::CreateCertificateFromCsr;
  } else if (consume_prefix(t, kTemplates)) {
    m.api = Api::RegisterThing;
    const std::size_t end = t.find('/');
    if (end == std::string_view::npos) return fail(Errc::TopicMismatch);
    m.template_name = std::string_view(t.data(), end);
    if (!valid_template_name(m.template_name)) return fail(Errc::TopicMismatch);
    t.remove_prefix(end);
    if (!consume_prefix(t, kProvision)) return fail(Errc::TopicMismatch);
  } else {
    return fail(Errc::TopicMismatch);
  }
  if (consume_prefix(t, "json")) {
    m.format = Format::Json;
  } else if (consume_prefix(t, "cbor")) {
    m.format = Format::Cbor;
  } else {
    return fail(Errc::TopicMismatch);
  }
  if (t.empty()) {
    m.kind = TopicKind::Request;
  } else if (t == kAccepted) {
    m.kind = TopicKind::Accepted;
  } else if (t == kRejected) {
    m.kind = TopicKind::Rejected;
  } else {
    return fail(Errc::TopicMismatch);
  }
  return m;
}

bool is_reply_topic(std::string_view t, Api api, Format format, TopicKind kind,
                    std::string_view template_name) noexcept {
  auto m = match_topic(t);
  if (!m) return false;
  return m->api == api && m->format == format && m->kind == kind &&
         (api != Api::RegisterThing || m->template_name == template_name);
}

}  // namespace edgekit::provisioning
