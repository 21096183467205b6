// Fleet provisioning by claim: fleetd's readers of a device's requests (JSON with an optional
// trailing NUL, or CBOR), of ownership tokens and of pre-provisioning hook answers — untrusted
// bytes all. The first byte picks the reader and, for requests, the format. Oracles: no crash
// or hang; every rejection is a named 400; accepted requests respect the documented limits; a
// token fleetd did not sign is never accepted; a reply echoing the request encodes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "provisioning/claim_wire.hpp"
#include "provisioning/hook.hpp"
#include "provisioning/ownership_token.hpp"

namespace p = edgekit::fleetd::provisioning;

namespace {

void check_rejection(const p::Rejection& r) {
  if (r.status_code != 400 || r.error_code.empty() || r.error_message.empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const p::Format fmt = (data[0] & 1) ? p::Format::Cbor : p::Format::Json;
  switch ((data[0] >> 1) % 6) {
    case 0: {
      if (auto r = p::parse_create_keys(body, fmt); !r) check_rejection(r.error());
      break;
    }
    case 1: {
      auto r = p::parse_create_from_csr(body, fmt);
      if (!r) {
        check_rejection(r.error());
      } else if (r.value().certificate_signing_request.empty()) {
        std::abort();
      }
      break;
    }
    case 2: {
      auto r = p::parse_register_thing(body, fmt);
      if (!r) {
        check_rejection(r.error());
        (void)p::encode(p::rejection_document(r.error()), fmt);
        break;
      }
      if (r.value().parameters.size() > p::kMaxParameters) std::abort();
      // The parameters go back out in documents (hook input, logs): encoding never throws.
      nlohmann::json echo = nlohmann::json::object();
      for (const auto& [k, v] : r.value().parameters) echo[k] = v;
      (void)p::encode(echo, p::Format::Json);
      (void)p::encode(echo, p::Format::Cbor);
      break;
    }
    case 3: {
      // Random bytes are never a token this fleetd signed.
      static const p::TokenAuthority tokens("fuzz secret");
      if (auto r = tokens.verify(body, 0); r) std::abort();
      break;
    }
    case 4: {
      auto t = p::parse_request_topic(body);
      if (t && t->template_name.size() > p::kMaxTemplateName) std::abort();
      break;
    }
    default: {
      auto v = p::read_hook_answer(body);
      if (!v.allow && v.problem.empty()) std::abort();  // every denial says why
      break;
    }
  }
  return 0;
}
