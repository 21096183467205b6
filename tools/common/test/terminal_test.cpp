// escape_for_terminal: what `edgekit sub -v` / `-F` print of topics, payloads and properties.
// Topics with control characters cannot pass through Mosquitto (it refuses them), so the
// end-to-end test covers payloads only; these cover every kind of byte directly.
#include "terminal.hpp"

#include <gtest/gtest.h>

#include <string>

namespace edgekit::tools {
namespace {

TEST(EscapeForTerminal, EscapesC0ControlsAndDel) {
  // A topic that would retitle the window (OSC ... BEL) and clear the screen (CSI 2J).
  EXPECT_EQ(escape_for_terminal("a/\x1b]0;pwned\x07/b\x1b[2J\r\n\t\x7f"),
            "a/\\x1b]0;pwned\\x07/b\\x1b[2J\\x0d\\x0a\\x09\\x7f");
  EXPECT_EQ(escape_for_terminal(std::string("nul\0x", 5)), "nul\\x00x");
}

TEST(EscapeForTerminal, EscapesC1ControlsInBothForms) {
  EXPECT_EQ(escape_for_terminal("\x9b"
                                "31m"),
            "\\x9b31m");  // 8-bit CSI
  EXPECT_EQ(escape_for_terminal("\xc2\x9b"
                                "31m"),
            "\\xc2\\x9b31m");                                // U+009B as UTF-8
  EXPECT_EQ(escape_for_terminal("\xc2\x85"), "\\xc2\\x85");  // NEL
}

TEST(EscapeForTerminal, EscapesInvalidUtf8) {
  EXPECT_EQ(escape_for_terminal("\xc0\xaf"), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(escape_for_terminal("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");           // overlong, 3 bytes
  EXPECT_EQ(escape_for_terminal("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // a surrogate
  EXPECT_EQ(escape_for_terminal("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // > U+10FFFF
  EXPECT_EQ(escape_for_terminal("\xe2\x82"), "\\xe2\\x82");                    // cut short
  EXPECT_EQ(escape_for_terminal("\xff"), "\\xff");
}

TEST(EscapeForTerminal, KeepsTextAndMakesBackslashesUnambiguous) {
  EXPECT_EQ(escape_for_terminal("sensors/küche/温度/🌡"), "sensors/küche/温度/🌡");
  EXPECT_EQ(escape_for_terminal("\xc2\xa0"), "\xc2\xa0");  // U+00A0, the first kept
  EXPECT_EQ(escape_for_terminal("a\\x1b"), "a\\\\x1b");    // cannot pass for an escape
  EXPECT_EQ(escape_for_terminal(""), "");
}

}  // namespace
}  // namespace edgekit::tools
