#pragma once
// Text received from the network, made safe to print on a terminal.

#include <string>
#include <string_view>

namespace edgekit::tools {

/// `text` with every byte that could drive a terminal escaped as \xHH (lower-case hex): C0
/// controls (ESC starts the sequences that retitle windows, move the cursor or rewrite the
/// screen; BEL ends some of them), DEL, C1 controls (U+0080..U+009F, and their 8-bit forms,
/// which some terminals take as CSI and friends) and bytes that are not valid UTF-8 (overlong
/// forms and surrogates included). A backslash becomes \\ so that the output is unambiguous.
/// Valid UTF-8 from U+00A0 up is kept as it is. Thread safety: none needed (pure).
std::string escape_for_terminal(std::string_view text);

}  // namespace edgekit::tools
