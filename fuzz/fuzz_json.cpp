// Fuzz target: the JSON reader (edgekit::doc::json::parse) and, for what it accepts, the writer.
// Input: the document itself. Oracles:
//  - no crash, hang, sanitizer report; a refusal names an offset inside the input;
//  - an accepted document's lookups agree with iteration (doc_checks.hpp);
//  - one trailing NUL changes nothing; a second one is refused;
//  - round trip: copied into json::Writer (compact form), the output parses, and copying it again
//    gives the same bytes; copied into cbor::Writer, parsed as CBOR and copied back into JSON, it
//    gives the same bytes again (both formats agree on what the document says).
#include <cstring>

#include "doc_checks.hpp"

namespace {

using namespace edgekit;
using namespace edgekit::fuzz;

constexpr std::size_t kMax = 8192;
char g_text[kMax + 2];
char g_out1[4 * kMax + 64];
char g_out2[4 * kMax + 64];
std::byte g_cbor[4 * kMax + 64];

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMax) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const doc::ParseOptions deep{.max_depth = doc::kMaxParseDepth};
  const auto parsed = doc::json::parse(text, deep);
  if (!parsed) {
    FUZZ_CHECK(parsed.error().offset <= size);
    return 0;
  }
  const doc::json::Value root = *parsed;
  FUZZ_CHECK(root.offset() + root.text().size() <= size);
  check_value(root);

  // The one NUL that AWS's C demos append.
  if (size == 0 || text.back() != '\0') {
    std::memcpy(g_text, data, size);
    g_text[size] = '\0';
    FUZZ_CHECK(doc::json::parse(std::string_view(g_text, size + 1), deep).has_value());
    g_text[size + 1] = '\0';
    const auto twice = doc::json::parse(std::string_view(g_text, size + 2), deep);
    FUZZ_CHECK(!twice && twice.error().code == doc::Errc::TrailingData);
  }

  doc::json::Writer first(g_out1);
  if (!doc::test::copy_value(root, first)) return 0;  // a fraction, or an integer beyond 64 bits
  const auto compact = first.finish();
  // The writer nests 16 deep (kMaxWriterDepth), the reader up to 32.
  if (!compact && compact.error().code == doc::Errc::WriterTooDeep) return 0;
  FUZZ_CHECK(compact.has_value());
  const auto again = doc::json::parse(*compact, deep);
  FUZZ_CHECK(again.has_value());
  doc::json::Writer second(g_out2);
  FUZZ_CHECK(doc::test::copy_value(*again, second));
  FUZZ_CHECK(second.finish().has_value() && *second.finish() == *compact);

  doc::cbor::Writer to_cbor(g_cbor);
  FUZZ_CHECK(doc::test::copy_value(root, to_cbor));
  const auto item = to_cbor.finish();
  FUZZ_CHECK(item.has_value());
  const auto as_cbor = doc::cbor::parse(*item, deep);
  FUZZ_CHECK(as_cbor.has_value());
  check_value(*as_cbor);
  doc::json::Writer back(g_out2);
  FUZZ_CHECK(doc::test::copy_value(*as_cbor, back));
  FUZZ_CHECK(back.finish().has_value() && *back.finish() == *compact);
  return 0;
}
