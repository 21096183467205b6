// fleetd's Device Shadow service: the reading of a device's requests (get/delete and update,
// JSON with an optional trailing NUL — untrusted bytes) and the merge of an accepted update into a
// shadow. The first byte picks the reader; for updates the input is applied twice (to no shadow,
// then to the shadow the first application made), so merges into existing documents are explored.
// Oracles: no crash, hang or leak; every rejection is one of AWS's codes with a message; an
// accepted state keeps AWS's limits (8 KB, 6 levels); the version grows by exactly one; the reply
// documents serialise.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "shadow/document.hpp"

namespace s = edgekit::fleetd::shadow;

namespace {

void check(const s::Rejection& r) {
  switch (r.code) {
    case 400:
    case 404:
    case 409:
    case 413:
    case 415:
      break;
    default:
      std::abort();
  }
  if (r.message.empty()) std::abort();
  if (r.client_token && r.client_token->size() > s::kMaxClientToken) std::abort();
}

int depth(const nlohmann::json& j) {
  int d = 0;
  if (j.is_structured()) {
    for (const auto& c : j) d = std::max(d, depth(c));
    if (!j.empty()) ++d;
  }
  return d;
}

void check_shadow(const s::Shadow& sh) {
  std::size_t bytes = 0;
  for (const char* k : {"desired", "reported"}) {
    if (!sh.state.contains(k)) continue;
    const auto& section = sh.state[k];
    if (!section.is_object() || section.empty()) std::abort();  // an empty section is dropped
    if (depth(section) > s::kMaxDepth) std::abort();
    bytes += s::to_payload(section).size();
  }
  if (bytes > s::kMaxStateBytes) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    if (auto r = s::parse_token_request(body); !r) check(r.error());
    return 0;
  }
  auto rq = s::parse_update(body);
  if (!rq) {
    check(rq.error());
    return 0;
  }
  std::optional<s::Shadow> shadow;
  for (int round = 0; round < 2; ++round) {
    auto a = s::apply_update(shadow, 3, rq.value(), 1'700'000'000 + round);
    if (!a) {
      check(a.error());
      return 0;
    }
    const s::Applied& applied = a.value();
    if (applied.current.version != (shadow ? shadow->version : 3) + 1) std::abort();
    check_shadow(applied.current);
    if (s::to_payload(applied.accepted).empty() || s::to_payload(applied.documents).empty()) {
      std::abort();
    }
    if (applied.delta && applied.delta->at("state").empty()) std::abort();
    (void)s::to_payload(s::get_accepted(applied.current, 0, rq.value().client_token));
    shadow = applied.current;
  }
  return 0;
}
