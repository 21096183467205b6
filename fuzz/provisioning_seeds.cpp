// Seeds for fuzz_provisioning: accepted and rejected replies of the three fleet-provisioning
// operations, in JSON (first byte 0) and CBOR (first byte 1, written with edgekit::doc's CBOR
// writer).
#include <array>
#include <cstdint>
#include <edgekit/doc/cbor.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "seeds.hpp"

namespace edgekit::fuzz {
namespace {

using Seed = std::vector<std::uint8_t>;

constexpr std::string_view kId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

Seed json(std::string_view text) {
  Seed s{0};
  s.insert(s.end(), text.begin(), text.end());
  return s;
}

template <class F>
Seed cbor(F&& fill) {
  std::array<std::byte, 2048> buf{};
  doc::cbor::Writer w(buf);
  fill(w);
  Seed s{1};
  if (auto done = w.finish()) {
    for (std::byte b : *done) s.push_back(static_cast<std::uint8_t>(b));
  }
  return s;
}

}  // namespace

// Declared in seeds.hpp; seeds.cpp calls it.
void provisioning_seeds(void (*write)(const char*, const std::vector<std::uint8_t>&)) {
  const char* t = "fuzz_provisioning";
  const std::string keys =
      std::string(R"({"certificateId":")") + std::string(kId) +
      R"(","certificatePem":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",)"
      R"("privateKey":"-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n",)"
      R"("certificateOwnershipToken":"tok"})";
  write(t, json(keys));
  write(
      t,
      json(
          R"({"deviceConfiguration":{"Fleet":"blue","Interval":30,"On":true},"thingName":"thing-1"})"));
  write(
      t,
      json(
          R"({"statusCode":400,"errorCode":"InvalidParameters","errorMessage":"Cannot resolve reference value: SerialNumber"})"));
  write(t, cbor([](auto& w) {
          w.begin_object()
              .member("certificateId", kId)
              .member("certificatePem", "PEM\n")
              .member("certificateOwnershipToken", "tok")
              .end_object();
        }));
  write(t, cbor([](auto& w) {
          w.begin_object()
              .member("certificateId", kId)
              .member("certificatePem", "PEM\n")
              .member("privateKey", "KEY\n")
              .member("certificateOwnershipToken", "tok")
              .end_object();
        }));
  write(t, cbor([](auto& w) {
          w.begin_object()
              .key("deviceConfiguration")
              .begin_object()
              .member("k", "v")
              .end_object()
              .member("thingName", "t1")
              .end_object();
        }));
  write(t, cbor([](auto& w) {
          w.begin_object()
              .member("statusCode", std::int64_t{403})
              .member("errorCode", "ACCESS_DENIED")
              .member("errorMessage", "denied")
              .end_object();
        }));
}

}  // namespace edgekit::fuzz
