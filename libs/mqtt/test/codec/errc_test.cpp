// Errc's groups. (Its std::error_code wiring is tested in ../error_category: this file also runs
// on the Cortex-M test image, which does not link the category.)
#include <cstring>

#include "codec_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

using ErrcGroups = edgekit::testing::PureTest;

// Usable where a constant is needed (the helper is constexpr).
static_assert(is_malformed(Errc::MalformedPacket));
static_assert(!is_malformed(Errc::Ok));
static_assert(!is_malformed(Errc::BufferTooSmall));

// The "malformed input" group as errc.hpp documents it, written out here independently of the
// helper so that a change to either shows up.
constexpr Errc kMalformed[] = {
    Errc::MalformedRemainingLength, Errc::MalformedPacket,        Errc::InvalidPacketType,
    Errc::ReservedFlagsSet,         Errc::InvalidUtf8,            Errc::NullCharacterInString,
    Errc::WildcardInTopicName,      Errc::EmptyTopic,             Errc::InvalidTopicFilter,
    Errc::PacketIdZero,             Errc::InvalidQoS,             Errc::DuplicateProperty,
    Errc::PropertyNotAllowed,       Errc::UnknownProperty,        Errc::InvalidPropertyValue,
    Errc::InvalidProtocolName,      Errc::UnsupportedProtocolVersion, Errc::InvalidConnectFlags,
    Errc::InvalidReasonCode,        Errc::InvalidSubscriptionOptions, Errc::EmptySubscriptionList,
    Errc::PacketTooLarge,           Errc::TrailingBytes,          Errc::ProtocolVersionDisabled,
    Errc::QoS2Disabled,
};

bool listed_as_malformed(Errc e) {
  for (Errc m : kMalformed) {
    if (m == e) return true;
  }
  return false;
}

// An enumerator is a value to_string knows.
bool is_enumerator(Errc e) { return std::strcmp(to_string(e), "unknown error") != 0; }

TEST_F(ErrcGroups, IsMalformedHoldsExactlyForTheMalformedInputGroup) {
  int enumerators = 0;
  for (unsigned v = 0; v <= 255; ++v) {
    const auto e = static_cast<Errc>(v);
    if (!is_enumerator(e)) {
      EXPECT_FALSE(is_malformed(e)) << "value " << v << " is no Errc but counts as malformed";
      continue;
    }
    ++enumerators;
    EXPECT_EQ(is_malformed(e), listed_as_malformed(e)) << "Errc " << v << " (" << to_string(e) << ")";
  }
  // Every enumerator was seen: a new one must be placed in this test's list or not, on purpose.
  EXPECT_EQ(enumerators, 53);
}

TEST_F(ErrcGroups, IsMalformedAgreesWithTheNumericRuleItReplaces) {
  // The rule written out in the client and the agent before: 0 < value < 40.
  for (unsigned v = 0; v <= 255; ++v) {
    const auto e = static_cast<Errc>(v);
    if (!is_enumerator(e)) continue;
    EXPECT_EQ(is_malformed(e), v > 0 && v < 40) << "Errc " << v << " (" << to_string(e) << ")";
  }
}

// Errc::Ok is zero and opts in (errc.hpp): a Result<void> is the error alone, one byte, which a
// 32-bit target returns in a register (code size, docs/sizes.md).
static_assert(static_cast<int>(Errc::Ok) == 0);
static_assert(sizeof(Result<void>) == sizeof(Errc));

TEST_F(ErrcGroups, AResultWithoutAValueIsItsErrorAlone) {
  const Result<void> ok;
  EXPECT_TRUE(ok.has_value());
  const Result<void> failed = fail(Errc::Timeout);
  EXPECT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error(), Errc::Timeout);
}

}  // namespace
}  // namespace edgekit::mqtt::test
