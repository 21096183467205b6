#pragma once
/// \file
/// Reading untrusted JSON request bodies (hooks and admin): the size bounded before parsing,
/// members read with their type and length checked, and each refusal naming the member, so
/// that a caller learns what to fix. Never throws (nlohmann is used without exceptions).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "edgekit/json/json.hpp"
#include "store/errc.hpp"

namespace edgekit::fleetd::http {

/// The body parsed as a JSON object. InvalidArgument when larger than `max` bytes, not JSON, or
/// not an object.
[[nodiscard]] Res<nlohmann::json> object_of(std::string_view body, std::size_t max);

/// A string member of at most `max` bytes. Absent or null: "" when optional, InvalidArgument
/// when required; InvalidArgument when it is another type or longer.
[[nodiscard]] Res<std::string> string_member(const nlohmann::json& j, const char* name,
                                             bool required, std::size_t max);

/// An optional boolean member (nullopt when absent or null).
[[nodiscard]] Res<std::optional<bool>> bool_member(const nlohmann::json& j, const char* name);

/// An optional integer member, given as a JSON integer or a string of decimal digits (AWS
/// accepts both for expectedVersion); nullopt when absent or null.
[[nodiscard]] Res<std::optional<std::int64_t>> integer_member(const nlohmann::json& j,
                                                              const char* name);

/// Refuses members other than those listed (a misspelt field must not be silently ignored in
/// an admin request: "statu": "REVOKED" would otherwise do nothing and say nothing).
[[nodiscard]] Res<void> only_members(const nlohmann::json& j,
                                     std::initializer_list<std::string_view> allowed);

/// Serialises without throwing on invalid UTF-8 (it is replaced).
[[nodiscard]] std::string dump(const nlohmann::json& j);

}  // namespace edgekit::fleetd::http
