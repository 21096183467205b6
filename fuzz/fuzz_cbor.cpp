// Fuzz target: the CBOR reader (edgekit::doc::cbor::parse) and, for what it accepts, the writer.
// Input: the data item itself. Oracles:
//  - no crash, hang, sanitizer report; a refusal names an offset inside the input;
//  - an accepted item's lookups agree with iteration (doc_checks.hpp);
//  - round trip: the reader accepts only preferred, definite-length encodings with unique keys,
//    so copying an accepted item into cbor::Writer must give back exactly the input bytes
//    (except negative integers below -2^63, which the writer has no call for, and nesting deeper
//    than the writer's kMaxWriterDepth);
//  - nothing follows an accepted item: the input with one more byte is refused.
#include <cstring>

#include "doc_checks.hpp"

namespace {

using namespace edgekit;
using namespace edgekit::fuzz;

constexpr std::size_t kMax = 8192;
std::byte g_out[kMax + 64];
std::byte g_more[kMax + 1];

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMax) return 0;
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  const doc::ParseOptions deep{.max_depth = doc::kMaxParseDepth};
  const auto parsed = doc::cbor::parse(in, deep);
  if (!parsed) {
    FUZZ_CHECK(parsed.error().offset <= size);
    return 0;
  }
  FUZZ_CHECK(parsed->encoded().size() == size);
  check_value(*parsed);

  std::memcpy(g_more, data, size);
  g_more[size] = std::byte{0};
  const auto longer = doc::cbor::parse(std::span<const std::byte>(g_more, size + 1), deep);
  FUZZ_CHECK(!longer && longer.error().code == doc::Errc::TrailingData);

  doc::cbor::Writer w(g_out);
  if (!doc::test::copy_value(*parsed, w)) return 0;  // an integer below -2^63
  const auto out = w.finish();
  // The writer nests 16 deep (kMaxWriterDepth), the reader up to 32.
  if (!out && out.error().code == doc::Errc::WriterTooDeep) return 0;
  FUZZ_CHECK(out.has_value());
  FUZZ_CHECK(out->size() == size && std::memcmp(out->data(), data, size) == 0);
  return 0;
}
