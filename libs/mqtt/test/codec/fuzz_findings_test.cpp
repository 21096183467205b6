// What the fuzzers found (docs/fuzzing.md), kept as unit tests. The inputs are also kept under
// fuzz/regressions/<target>/ and replayed by scripts/fuzz.
#include "codec_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

using FuzzFindings = edgekit::testing::PureTest;

// fuzz_decode_v311: a 3.1.1 CONNECT with a zero-byte ClientId and CleanSession = 0 decodes, but
// the encoder refuses to produce it. Intended: the packet is well formed and a Server must see
// it to answer CONNACK 0x02 (Identifier rejected) [MQTT-3.1.3-8]; a Client must never send it
// [MQTT-3.1.3-7]. The round-trip oracle names this one exception.
TEST_F(FuzzFindings, V311ConnectWithEmptyClientIdAndNoCleanSessionDecodesButIsNeverEncoded) {
  const auto wire =
      B(0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x00, 0x10, 0x00, 0x00, 0x00);
  auto c = decode_connect(wire);
  ASSERT_TRUE(c.has_value()) << to_string(c.error());
  EXPECT_EQ(c->version, Version::V311);
  EXPECT_TRUE(c->client_id.empty());
  EXPECT_FALSE(c->clean_start);
  EXPECT_EQ(c->keep_alive, 0x1000);
  std::array<std::byte, 64> out{};
  auto n = encode(*c, Version::V311, out);
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.error(), Errc::InvalidArgument);
}

}  // namespace
}  // namespace edgekit::mqtt::test
