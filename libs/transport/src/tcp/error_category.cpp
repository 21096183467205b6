// The std::error_category of TcpErrc. In its own translation unit, like mqtt's: a program that
// never builds a std::error_code does not link it (it pulls in std::string).
#include "edgekit/core/error_category.hpp"
#include "edgekit/transport/tcp.hpp"

namespace edgekit::transport {

const std::error_category& tcp_category() noexcept {
  static const EnumErrorCategory<TcpErrc, to_string> category("edgekit.tcp");
  return category;
}

}  // namespace edgekit::transport
