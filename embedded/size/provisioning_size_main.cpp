// The device program of the fleet provisioning size report: what a device links of
// edgekit::provisioning_pure to provision itself by claim. For each payload format (JSON and
// CBOR) it builds the request and reply topics of CreateCertificateFromCsr,
// CreateKeysAndCertificate and RegisterThing, writes the three requests into its own buffers,
// tells which reply topic a message came in on, and reads each operation's accepted and
// rejected reply, mapping the rejections to Errc. scripts/size-report reads the linker map to
// attribute every byte to its part (topics, documents, errc; edgekit::doc; the runtime).
//
// The replies arrive in a receive buffer copied byte by byte from a volatile source, and the
// inputs of the requests (CSR, ownership token, template name, serial number) are read the same
// way, so nothing is known to the compiler at build time: the image links what a device that
// gets them from the network and its storage links.
//
// It is also a runnable check: under QEMU (mps2-an386) it returns 0 only when every result is
// the expected one, and a step number otherwise.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "edgekit/provisioning/documents.hpp"
#include "edgekit/provisioning/errc.hpp"
#include "edgekit/provisioning/topics.hpp"
#include "edgekit/testing/cbor_builder.hpp"

namespace {

using namespace edgekit::provisioning;
using namespace std::string_view_literals;

// --- Buffers a device keeps (static RAM) ---------------------------------------------------------
// The reply as received: 4 KB, what AWS's C demo receives a CreateKeysAndCertificate reply in
// (a CreateCertificateFromCsr reply needs 2 KB); the scratch that the JSON readers unescape PEMs
// into (as large as the reply, documents.hpp); the request being written; one topic.
std::uint8_t g_reply[4096];
char g_scratch[4096];
std::uint8_t g_request[1024];
char g_topic[kMaxTopicLength];
KeyValue g_configuration[8];
std::size_t g_reply_size = 0;

// Bytes "from the network": read through a volatile pointer, so they are not constants.
void receive(std::span<const std::uint8_t> message) {
  const volatile std::uint8_t* in = message.data();
  for (std::size_t i = 0; i < message.size(); ++i) g_reply[i] = in[i];
  g_reply_size = message.size();
}
void receive(std::string_view message) {
  receive({reinterpret_cast<const std::uint8_t*>(message.data()), message.size()});
}
std::span<const std::uint8_t> reply() { return {g_reply, g_reply_size}; }

// A device's stored inputs (claim token, template, serial number, CSR): also read through a
// volatile pointer, into a buffer of their own.
char g_inputs[512];
std::size_t g_inputs_used = 0;
std::string_view stored(std::string_view value) {
  const volatile char* in = value.data();
  char* out = g_inputs + g_inputs_used;
  for (std::size_t i = 0; i < value.size(); ++i) out[i] = in[i];
  g_inputs_used += value.size();
  return {out, value.size()};
}

// CBOR replies and expected CBOR requests built by hand at compile time, not by the writer
// under test (the builder of the provisioning unit tests).
using Cbor = edgekit::testing::CborBuilder<320>;

bool same(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}
bool same(std::span<const std::uint8_t> a, std::string_view b) {
  return same(a, {reinterpret_cast<const std::uint8_t*>(b.data()), b.size()});
}

// --- What the service sends ---------------------------------------------------------------------
constexpr std::string_view kId = "4d6f636b43657274696669636174654964000000000000000000000000000001";
constexpr std::string_view kPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
constexpr std::string_view kKey = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n";
constexpr std::string_view kToken = "eyJ2ZXJzaW9uIjoiMjAxOS0wMS0wMSJ9";
constexpr std::string_view kTemplate = "FleetTemplate_1";

constexpr std::string_view kCsrAcceptedJson =
    R"({"certificateId":"4d6f636b43657274696669636174654964000000000000000000000000000001",)"
    R"("certificatePem":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",)"
    R"("certificateOwnershipToken":"eyJ2ZXJzaW9uIjoiMjAxOS0wMS0wMSJ9"})";
constexpr std::string_view kKeysAcceptedJson =
    R"({"certificateId":"4d6f636b43657274696669636174654964000000000000000000000000000001",)"
    R"("certificatePem":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",)"
    R"("privateKey":"-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n",)"
    R"("certificateOwnershipToken":"eyJ2ZXJzaW9uIjoiMjAxOS0wMS0wMSJ9"})";
constexpr std::string_view kThingAcceptedJson =
    R"({"deviceConfiguration":{"Fallback":"false","Interval":60,"Debug":true},)"
    R"("thingName":"ThingSN-0042"})";
constexpr std::string_view kRejectedTokenJson =
    R"({"statusCode":400,"errorCode":"InvalidCertificateOwnershipToken",)"
    R"("errorMessage":"Certificate ownership token cannot be empty."})";
constexpr std::string_view kRejectedThrottledJson =
    R"({"statusCode":429,"errorCode":"ThrottlingException","errorMessage":"Rate exceeded"})";
constexpr std::string_view kRejectedParametersJson =
    R"({"statusCode":400,"errorCode":"InvalidParameters",)"
    R"("errorMessage":"Cannot resolve reference value: SerialNumber"})";

constexpr Cbor kCsrAcceptedCbor = Cbor{}
                                      .map(3)
                                      .text("certificateId")
                                      .text(kId)
                                      .text("certificatePem")
                                      .text(kPem)
                                      .text("certificateOwnershipToken")
                                      .text(kToken);
constexpr Cbor kKeysAcceptedCbor = Cbor{}
                                       .map(4)
                                       .text("certificateId")
                                       .text(kId)
                                       .text("certificatePem")
                                       .text(kPem)
                                       .text("privateKey")
                                       .text(kKey)
                                       .text("certificateOwnershipToken")
                                       .text(kToken);
constexpr Cbor kThingAcceptedCbor = Cbor{}
                                        .map(2)
                                        .text("deviceConfiguration")
                                        .map(3)
                                        .text("Fallback")
                                        .text("false")
                                        .text("Interval")
                                        .uint(60)
                                        .text("Debug")
                                        .boolean(true)
                                        .text("thingName")
                                        .text("ThingSN-0042");
// 403 with a code the fact sheet does not name: mapped by status.
constexpr Cbor kRejectedDeniedCbor = Cbor{}
                                         .map(3)
                                         .text("statusCode")
                                         .uint(403)
                                         .text("errorCode")
                                         .text("Forbidden")
                                         .text("errorMessage")
                                         .text("Access denied");
constexpr Cbor kRejectedFailureCbor = Cbor{}
                                          .map(2)
                                          .text("statusCode")
                                          .uint(500)
                                          .text("errorCode")
                                          .text("InternalFailure");
constexpr Cbor kRejectedConflictCbor = Cbor{}
                                           .map(3)
                                           .text("statusCode")
                                           .uint(400)
                                           .text("errorCode")
                                           .text("ResourceConflictsException")
                                           .text("errorMessage")
                                           .text("Thing exists");

// --- The device's side ---------------------------------------------------------------------------
struct Inputs {
  std::string_view csr;
  std::string_view template_name;
  std::string_view serial;
};

// The topic of `api`/`kind`, written into g_topic; the step number when it is not `expected`.
int check_topic(Api api, Format format, TopicKind kind, std::string_view template_name,
                std::string_view expected, int step) {
  const auto t = topic(api, format, kind, g_topic, template_name);
  if (!t || *t != expected) return step;
  return 0;
}

// The request and reply topics of the three operations: what a device subscribes to and
// publishes on; and the dispatch of an incoming message by its topic.
int topics(Format format, const Inputs& in, int base) {
  const bool json = format == Format::Json;
  if (int s = check_topic(Api::CreateCertificateFromCsr, format, TopicKind::Request, {},
                          json ? "$aws/certificates/create-from-csr/json"sv
                               : "$aws/certificates/create-from-csr/cbor"sv,
                          base + 1))
    return s;
  if (int s = check_topic(Api::CreateCertificateFromCsr, format, TopicKind::Accepted, {},
                          json ? "$aws/certificates/create-from-csr/json/accepted"sv
                               : "$aws/certificates/create-from-csr/cbor/accepted"sv,
                          base + 2))
    return s;
  if (int s = check_topic(Api::CreateKeysAndCertificate, format, TopicKind::Rejected, {},
                          json ? "$aws/certificates/create/json/rejected"sv
                               : "$aws/certificates/create/cbor/rejected"sv,
                          base + 3))
    return s;
  if (int s = check_topic(
          Api::RegisterThing, format, TopicKind::Accepted, in.template_name,
          json ? "$aws/provisioning-templates/FleetTemplate_1/provision/json/accepted"sv
               : "$aws/provisioning-templates/FleetTemplate_1/provision/cbor/accepted"sv,
          base + 4))
    return s;
  // An incoming message on the RegisterThing rejected topic: which reply is it?
  const auto rejected = topic(Api::RegisterThing, format, TopicKind::Rejected, g_topic,
                              in.template_name);
  if (!rejected) return base + 5;
  const std::string_view incoming = stored(*rejected);
  if (!is_reply_topic(incoming, Api::RegisterThing, format, TopicKind::Rejected,
                      in.template_name) ||
      is_reply_topic(incoming, Api::RegisterThing, format, TopicKind::Accepted, in.template_name))
    return base + 6;
  const auto m = match_topic(incoming);
  if (!m || m->api != Api::RegisterThing || m->format != format ||
      m->template_name != in.template_name)
    return base + 7;
  if (match_topic("$aws/certificates/create/xml/accepted") || valid_template_name("a/b"))
    return base + 8;
  return 0;
}

// The three requests, written into g_request and compared with what the service expects.
int requests(Format format, const Inputs& in, std::string_view token, int base) {
  const bool json = format == Format::Json;
  auto n = write_create_keys_request(format, g_request);
  if (!n || !(json ? same({g_request, *n}, "{}"sv) : (*n == 1 && g_request[0] == 0xa0)))
    return base + 1;

  n = write_create_from_csr_request(format, in.csr, g_request);
  if (json) {
    if (!n || !same({g_request, *n},
                    R"({"certificateSigningRequest":"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"})"sv))
      return base + 2;
  } else {
    constexpr Cbor kExpected =
        Cbor{}.map(1).text("certificateSigningRequest").text(
            "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n");
    if (!n || !same({g_request, *n}, kExpected.view())) return base + 2;
  }

  const KeyValue parameters[] = {{"SerialNumber", in.serial}, {"DeviceLocation", "lab"}};
  n = write_register_thing_request(format, token, parameters, g_request);
  if (json) {
    if (!n || !same({g_request, *n},
                    R"({"certificateOwnershipToken":"eyJ2ZXJzaW9uIjoiMjAxOS0wMS0wMSJ9",)"
                    R"("parameters":{"SerialNumber":"SN-0042","DeviceLocation":"lab"}})"sv))
      return base + 3;
  } else {
    constexpr Cbor kExpected = Cbor{}
                                   .map(2)
                                   .text("certificateOwnershipToken")
                                   .text(kToken)
                                   .text("parameters")
                                   .map(2)
                                   .text("SerialNumber")
                                   .text("SN-0042")
                                   .text("DeviceLocation")
                                   .text("lab");
    if (!n || !same({g_request, *n}, kExpected.view())) return base + 3;
  }
  // A request the writer must refuse: an empty ownership token.
  n = write_register_thing_request(format, {}, parameters, g_request);
  if (n || n.error() != Errc::InvalidArgument) return base + 4;
  return 0;
}

// A rejected reply as received: the step number unless it reads as `status`/`expected`.
int check_rejected(Format format, std::int64_t status, Errc expected, int step) {
  const auto r = read_rejected(format, reply(), g_scratch);
  if (!r || r->status_code != status || r->errc != expected || r->error_code.empty()) return step;
  return 0;
}

// Each operation's accepted and rejected reply. The ownership token of the accepted
// certificate reply is what the RegisterThing request then carries.
int replies(Format format, std::span<const std::uint8_t> csr_accepted,
            std::span<const std::uint8_t> keys_accepted,
            std::span<const std::uint8_t> thing_accepted,
            std::span<const std::uint8_t> rejected[3], const Errc rejected_errc[3],
            const std::int64_t rejected_status[3], int base) {
  receive(csr_accepted);
  auto cert = read_certificate_accepted(format, Api::CreateCertificateFromCsr, reply(), g_scratch);
  if (!cert || cert->certificate_id != kId || cert->certificate_pem != kPem ||
      cert->ownership_token != kToken || !cert->private_key.empty())
    return base + 1;

  receive(keys_accepted);
  cert = read_certificate_accepted(format, Api::CreateKeysAndCertificate, reply(), g_scratch);
  if (!cert || cert->certificate_id != kId || cert->certificate_pem != kPem ||
      cert->private_key != kKey || cert->ownership_token != kToken)
    return base + 2;
  // A CreateCertificateFromCsr reply read as CreateKeysAndCertificate: no privateKey.
  receive(csr_accepted);
  cert = read_certificate_accepted(format, Api::CreateKeysAndCertificate, reply(), g_scratch);
  if (cert || cert.error() != Errc::MalformedReply) return base + 3;

  receive(thing_accepted);
  const auto thing =
      read_register_thing_accepted(format, reply(), g_configuration, g_scratch);
  if (!thing || thing->thing_name != "ThingSN-0042" || thing->configuration_count != 3)
    return base + 4;
  for (std::size_t i = 0; i < thing->configuration_count; ++i) {
    const KeyValue& kv = g_configuration[i];
    const std::string_view want = kv.key == "Fallback"   ? "false"sv
                                  : kv.key == "Interval" ? "60"sv
                                  : kv.key == "Debug"    ? "true"sv
                                                         : "?"sv;
    if (kv.value != want) return base + 5;
  }

  for (int i = 0; i < 3; ++i) {
    receive(rejected[i]);
    if (int s = check_rejected(format, rejected_status[i], rejected_errc[i], base + 6 + i))
      return s;
  }
  // A reply that is not a document of the format.
  receive("\xff\xff"sv);
  if (read_rejected(format, reply(), g_scratch).error() != Errc::MalformedReply) return base + 9;
  return 0;
}

std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

int main() {
  const Inputs in{
      stored("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"),
      stored(kTemplate), stored("SN-0042")};

  // JSON.
  if (int s = topics(Format::Json, in, 0)) return s;
  std::span<const std::uint8_t> json_rejected[3] = {
      bytes(kRejectedTokenJson), bytes(kRejectedThrottledJson), bytes(kRejectedParametersJson)};
  const Errc json_errc[3] = {Errc::InvalidCertificateOwnershipToken, Errc::Throttled,
                             Errc::InvalidParameters};
  const std::int64_t json_status[3] = {400, 429, 400};
  if (int s = replies(Format::Json, bytes(kCsrAcceptedJson), bytes(kKeysAcceptedJson),
                      bytes(kThingAcceptedJson), json_rejected, json_errc, json_status, 10))
    return s;
  // The token of the accepted certificate reply goes into the RegisterThing request (copied out
  // of the reply buffer, which the next reply overwrites).
  receive(bytes(kCsrAcceptedJson));
  auto cert = read_certificate_accepted(Format::Json, Api::CreateCertificateFromCsr, reply(),
                                        g_scratch);
  if (!cert) return 29;
  const std::string_view token = stored(cert->ownership_token);
  if (int s = requests(Format::Json, in, token, 30)) return s;

  // CBOR.
  if (int s = topics(Format::Cbor, in, 40)) return s;
  std::span<const std::uint8_t> cbor_rejected[3] = {
      kRejectedDeniedCbor.view(), kRejectedFailureCbor.view(), kRejectedConflictCbor.view()};
  const Errc cbor_errc[3] = {Errc::AccessDenied, Errc::ServiceFailure, Errc::ResourceConflict};
  const std::int64_t cbor_status[3] = {403, 500, 400};
  if (int s = replies(Format::Cbor, kCsrAcceptedCbor.view(), kKeysAcceptedCbor.view(),
                      kThingAcceptedCbor.view(), cbor_rejected, cbor_errc, cbor_status, 50))
    return s;
  if (int s = requests(Format::Cbor, in, token, 70)) return s;

  // Which rejections the device retries (inline: no code of the library).
  if (!is_retryable(Errc::Throttled) || is_retryable(Errc::InvalidParameters)) return 80;
  return 0;
}
