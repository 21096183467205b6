// Fuzzes the fleet-provisioning reply readers (edgekit::provisioning, pure): what a device reads
// from …/accepted and …/rejected, in JSON and CBOR, for each operation. The first byte picks
// the format; the rest is the reply.
// Oracles: no reader reads outside the reply or the scratch buffer (ASan); every view a reader
// returns lies inside the reply or the scratch buffer (or is the static "true" / "false" of a
// boolean configuration entry); an accepted certificate reply has a
// 64-hex-digit id and non-empty PEM and token; a thing name is valid; a rejection's errc is the
// mapping of its status and code; writing a register request with what was read never fails
// on a large enough buffer.
#include <array>
#include <edgekit/provisioning/documents.hpp>
#include <string_view>

#include "fuzz_support.hpp"

namespace prov = edgekit::provisioning;

namespace {

bool inside(std::string_view v, std::span<const std::uint8_t> reply,
            std::span<const char> scratch) {
  if (v.empty()) return true;
  const auto* p = reinterpret_cast<const std::uint8_t*>(v.data());
  const bool in_reply = p >= reply.data() && p + v.size() <= reply.data() + reply.size();
  const bool in_scratch =
      v.data() >= scratch.data() && v.data() + v.size() <= scratch.data() + scratch.size();
  return in_reply || in_scratch;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const prov::Format format = (data[0] & 1) != 0 ? prov::Format::Cbor : prov::Format::Json;
  const std::span<const std::uint8_t> reply(data + 1, size - 1);
  static std::array<char, 64 * 1024> scratch;
  for (prov::Api api : {prov::Api::CreateKeysAndCertificate, prov::Api::CreateCertificateFromCsr}) {
    if (auto a = prov::read_certificate_accepted(format, api, reply, scratch)) {
      FUZZ_CHECK(prov::valid_certificate_id(a->certificate_id));
      FUZZ_CHECK(!a->certificate_pem.empty() && !a->ownership_token.empty());
      FUZZ_CHECK((api == prov::Api::CreateKeysAndCertificate) == !a->private_key.empty());
      for (std::string_view v :
           {a->certificate_id, a->certificate_pem, a->private_key, a->ownership_token}) {
        FUZZ_CHECK(inside(v, reply, scratch));
      }
      std::array<std::uint8_t, 4096> out{};
      (void)prov::write_register_thing_request(format, a->ownership_token, {}, out);
    }
  }
  std::array<prov::KeyValue, prov::kMaxParameters> config{};
  if (auto r = prov::read_register_thing_accepted(format, reply, config, scratch)) {
    FUZZ_CHECK(prov::valid_thing_name(r->thing_name));
    FUZZ_CHECK(r->configuration_count <= config.size());
    for (std::size_t i = 0; i < r->configuration_count; ++i) {
      // A boolean entry reads as the static text "true" / "false".
      const std::string_view v = config[i].value;
      FUZZ_CHECK(inside(config[i].key, reply, scratch));
      FUZZ_CHECK(inside(v, reply, scratch) || v == "true" || v == "false");
    }
  }
  if (auto j = prov::read_rejected(format, reply, scratch)) {
    FUZZ_CHECK(j->errc == prov::rejection_errc(j->status_code, j->error_code));
    FUZZ_CHECK(prov::is_rejection(j->errc));
    FUZZ_CHECK(inside(j->error_code, reply, scratch) && inside(j->error_message, reply, scratch));
  }
  return 0;
}
