#pragma once
/// \file
/// `edgekit sim --source-addresses`: the local addresses devices connect from, round robin
/// (FleetOptions::source_addresses), so that one broker address and port can take more
/// connections than one source address has ephemeral ports (docs/simulator.md, OS limits).
///
/// Accepted forms: a count `16` (127.0.0.1 to 127.0.0.16: on Linux every 127.0.0.0/8 address is
/// the loopback interface's without configuration), an IPv4 range `127.0.0.1-127.0.0.16`, or a
/// comma list `127.0.0.1,127.0.0.2` (IPv4 or IPv6). At most 4,096 addresses.
/// Errors: nothing returned and `error` says why ("127.0.0.9-127.0.0.1: the range ends before it
/// starts"). Thread safety: a pure function.
#include <asio/ip/address.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgekit::sim {

inline constexpr std::size_t kMaxSourceAddresses = 4096;

[[nodiscard]] std::optional<std::vector<asio::ip::address>> parse_source_addresses(
    std::string_view text, std::string& error);

}  // namespace edgekit::sim
