#pragma once
/// \file
/// Device Shadow topics (aws-iot-protocols.md 1.1), built into the caller's buffer and matched
/// without copying. With P = `$aws/things/{thing}/shadow` (classic shadow) or
/// `$aws/things/{thing}/shadow/name/{shadow}` (named shadow):
///
///   P/get      P/get/accepted      P/get/rejected
///   P/update   P/update/accepted   P/update/rejected   P/update/delta   P/update/documents
///   P/delete   P/delete/accepted   P/delete/rejected
///
/// Topics are case sensitive. An empty shadow name means the classic shadow everywhere.
/// Pure: no heap, no I/O. Returned views point into the caller's buffer (builders) or into the
/// topic given (matcher) and stay valid as long as that memory. Thread safety: none needed.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/shadow/errc.hpp"

namespace edgekit::shadow {

/// The three requests a device makes of its shadow.
enum class Operation : std::uint8_t { Get, Update, Delete };

/// Which topic of an operation: the request, its two replies, or (Update only) the delta and
/// documents messages the service publishes after an accepted update.
enum class TopicKind : std::uint8_t { Request, Accepted, Rejected, Delta, Documents };

/// AWS's limits on names (aws-iot-protocols.md 0): a thing name is 1-128 bytes, a named shadow's
/// name 1-64 bytes, both of `[a-zA-Z0-9:_-]`.
inline constexpr std::size_t kMaxThingNameLength = 128;
inline constexpr std::size_t kMaxShadowNameLength = 64;
/// Room enough for every shadow topic: `$aws/things/` + 128 + `/shadow/name/` + 64 +
/// `/update/documents` = 234 bytes.
inline constexpr std::size_t kMaxTopicLength = 234;

/// "get", "update", "delete".
[[nodiscard]] std::string_view to_string(Operation op) noexcept;

/// Whether `name` can be a thing name: 1-128 bytes of `[a-zA-Z0-9:_-]`.
[[nodiscard]] bool valid_thing_name(std::string_view name) noexcept;
/// Whether `name` can be a named shadow's name: 1-64 bytes of `[a-zA-Z0-9:_-]` (an empty name is
/// the classic shadow, which callers pass as empty; this function says false for it).
[[nodiscard]] bool valid_shadow_name(std::string_view name) noexcept;

/// Writes the topic of `op`/`kind` for `thing`'s shadow `shadow` (empty: classic) into `buffer`
/// and returns a view of it.
/// Errors: InvalidArgument (a thing or shadow name outside the limits above; Delta or Documents
/// with Get or Delete), BufferTooSmall (nothing useful is left in `buffer`; kMaxTopicLength
/// always suffices).
[[nodiscard]] Result<std::string_view, Errc> topic(std::string_view thing, std::string_view shadow,
                                                   Operation op, TopicKind kind,
                                                   std::span<char> buffer) noexcept;

/// Writes the filter `P/<op>/+` that covers every reply of `op` (for Update also its delta and
/// documents): what AWS's SDK v2 subscribes to for get and delete. Errors: as `topic`.
[[nodiscard]] Result<std::string_view, Errc> reply_filter(std::string_view thing,
                                                          std::string_view shadow, Operation op,
                                                          std::span<char> buffer) noexcept;

/// What a shadow topic names. `thing` and `shadow` view into the matched topic (`shadow` empty
/// for the classic shadow).
struct TopicMatch {
  std::string_view thing;
  std::string_view shadow;
  Operation op = Operation::Get;
  TopicKind kind = TopicKind::Request;
};

/// Reads any shadow topic (request or reply). Exact match only: valid names within the limits,
/// a known operation, no further levels, Delta and Documents only after update.
/// Errors: TopicMismatch (not a shadow topic).
[[nodiscard]] Result<TopicMatch, Errc> match_topic(std::string_view topic) noexcept;

}  // namespace edgekit::shadow
