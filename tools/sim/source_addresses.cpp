#include "source_addresses.hpp"

#include <charconv>
#include <cstdint>

namespace edgekit::sim {
namespace {

// "'<text>': <why>" (appended piece by piece: GCC 12 at -O3 warns falsely, -Wrestrict, on
// "'" + string + "'").
std::string said(std::string_view text, std::string_view why, std::string_view item = {},
                 std::string_view after = {}) {
  std::string s;
  s += '\'';
  s.append(text);
  s += "': ";
  s.append(why);
  s.append(item);
  s.append(after);
  return s;
}

}  // namespace

std::optional<std::vector<asio::ip::address>> parse_source_addresses(std::string_view text,
                                                                     std::string& error) {
  error.clear();
  std::vector<asio::ip::address> out;
  if (text.empty()) {
    error = "empty: a count, a range A-B or a list A,B";
    return std::nullopt;
  }
  if (text.find_first_not_of("0123456789") == std::string_view::npos) {
    std::uint32_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end != text.data() + text.size() || n == 0 ||
        n > kMaxSourceAddresses) {
      error = said(text, "a count must be 1 to ", std::to_string(kMaxSourceAddresses));
      return std::nullopt;
    }
    const std::uint32_t first = asio::ip::make_address_v4("127.0.0.1").to_uint();
    for (std::uint32_t i = 0; i < n; ++i) out.emplace_back(asio::ip::address_v4(first + i));
    return out;
  }
  if (const auto dash = text.find('-'); dash != std::string_view::npos) {
    std::error_code ec1, ec2;
    const auto a = asio::ip::make_address_v4(std::string(text.substr(0, dash)), ec1);
    const auto b = asio::ip::make_address_v4(std::string(text.substr(dash + 1)), ec2);
    if (ec1 || ec2) {
      error = said(text, "a range is two IPv4 addresses, A-B");
      return std::nullopt;
    }
    if (b.to_uint() < a.to_uint()) {
      error = said(text, "the range ends before it starts");
      return std::nullopt;
    }
    if (b.to_uint() - a.to_uint() >= kMaxSourceAddresses) {
      error = said(text, "more than ", std::to_string(kMaxSourceAddresses), " addresses");
      return std::nullopt;
    }
    for (std::uint32_t v = a.to_uint();; ++v) {
      out.emplace_back(asio::ip::address_v4(v));
      if (v == b.to_uint()) break;
    }
    return out;
  }
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string item(text.substr(start, comma - start));
    std::error_code ec;
    const auto a = asio::ip::make_address(item, ec);
    if (ec || a.is_unspecified()) {
      error = said(text, "'", item, "' is not an IP address");
      return std::nullopt;
    }
    if (out.size() == kMaxSourceAddresses) {
      error = said(text, "more than ", std::to_string(kMaxSourceAddresses), " addresses");
      return std::nullopt;
    }
    out.push_back(a);
    start = comma + 1;
  }
  return out;
}

}  // namespace edgekit::sim
