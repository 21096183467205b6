// The admin API's parsers of untrusted request bodies and query strings, and what they hand on:
// certificate PEM reading, provisioning template validation, and the from-CSR request (its CSR
// read and signature-checked by edgekit::pki, its key type checked against what the CA issues). The first byte picks the
// parser. Oracles: no crash, hang or leak; an accepted request respects its documented limits;
// an accepted template validates again (parsing is deterministic); every refusal says why.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "admin/pem.hpp"
#include "admin/templates.hpp"
#include "admin/wire.hpp"
#include "ca/authority.hpp"

namespace a = edgekit::fleetd::admin;

namespace {

template <class R>
void check_refusal(const R& r) {
  if (!r && r.error().message.empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 13) {
    case 0: {
      auto r = a::parse_create_thing(body);
      check_refusal(r);
      if (r && (r.value().name.empty() || r.value().name.size() > 128 ||
                r.value().attributes.size() > 50)) {
        std::abort();
      }
      break;
    }
    case 1: {
      auto r = a::parse_update_thing(body);
      check_refusal(r);
      if (r) (void)a::apply(r.value(), edgekit::fleetd::Thing{});
      break;
    }
    case 2:
      check_refusal(a::parse_create_group(body));
      break;
    case 3: {
      auto r = a::parse_register_certificate(body);
      check_refusal(r);
      if (r) {
        auto f = a::read_certificate(r.value().pem);
        check_refusal(f);
        if (f && f.value().id.size() != 64) std::abort();
      }
      break;
    }
    case 4:
      check_refusal(a::parse_create_policy(body));
      break;
    case 5: {
      auto r = a::parse_register_ca(body);
      check_refusal(r);
      if (r && r.value().registration_template.size() > 36) std::abort();
      break;
    }
    case 6:
      check_refusal(a::parse_update_ca(body));
      break;
    case 7: {
      auto r = a::parse_create_template(body);
      check_refusal(r);
      if (r && (r.value().body.size() > a::kMaxTemplateBody ||
                !a::validate_template(r.value().body, r.value().type))) {
        std::abort();
      }
      break;
    }
    case 8:
      check_refusal(a::parse_update_template(body));
      break;
    case 9:
      check_refusal(a::parse_and_validate_template(body));
      break;
    case 10: {
      // A raw template body, both types.
      check_refusal(a::validate_template(body, "FLEET_PROVISIONING"));
      check_refusal(a::validate_template(body, "JITP"));
      break;
    }
    case 12: {
      // POST /admin/v1/certificates/from-csr: an accepted request carries a CSR whose key the
      // CA issues for and a validity within the documented bounds.
      auto r = a::parse_certificate_from_csr(body);
      check_refusal(r);
      if (r) {
        const auto k = r.value().csr.key_algorithm;
        if (!k || !edgekit::fleetd::ca::check_device_key(r.value().csr) ||
            r.value().validity_days < 1 || r.value().validity_days > 3650 ||
            r.value().csr.public_key_der.empty() || r.value().thing_name.size() > 128) {
          std::abort();
        }
      }
      break;
    }
    default: {
      // Query strings: limit and next split at the first '&'.
      const auto amp = body.find('&');
      const auto limit = body.substr(0, amp);
      const auto next = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
      auto p = a::parse_page(limit, next);
      check_refusal(p);
      if (p && (p.value().limit == 0 || p.value().limit > 1000 || p.value().after.size() > 256)) {
        std::abort();
      }
      check_refusal(a::parse_version_query(limit));
      // And raw PEM.
      auto f = a::read_certificate(body);
      check_refusal(f);
      break;
    }
  }
  return 0;
}
