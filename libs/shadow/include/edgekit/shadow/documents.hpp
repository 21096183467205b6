#pragma once
/// \file
/// Device Shadow request writers and response readers (aws-iot-protocols.md 1.2, 1.3), JSON over
/// edgekit::doc's allocation-free reader and writer. Member names are AWS's exactly: `state`,
/// `desired`, `reported`, `delta`, `metadata`, `version`, `timestamp`, `clientToken`,
/// `previous`, `current`, `code`, `message`.
///
/// Writers fill the caller's buffer and return a view of the document in it. Readers take the
/// payload of a reply (untrusted bytes; one trailing NUL byte is tolerated, as edgekit::doc
/// does) and return `doc::json::Value` views into it: the caller reads the state with the doc
/// reader (`find`, `at_path`, `members()`, `as_int64`, ...). Every view stays valid as long as the
/// payload is unchanged and alive. Unknown members are ignored (AWS may add some); a known member
/// of the wrong type is MalformedDocument, and so is a document nested deeper than 16 levels
/// (edgekit::doc's default limit; AWS allows 6 within a section, 1.7, so a reply stays far below
/// it). Timestamps are integer epoch seconds (section 0).
/// Pure: no heap, no I/O, no clock. Thread safety: none needed (no state); the `UpdateWriter` is
/// a plain object used by one thread at a time.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "edgekit/doc/json.hpp"
#include "edgekit/shadow/errc.hpp"

namespace edgekit::shadow {

/// The longest clientToken the service accepts (longer: 400 "Invalid clientToken", section 0).
inline constexpr std::size_t kMaxClientTokenLength = 64;

// --- Requests -----------------------------------------------------------------------------------

/// The get request (P/get): `{"clientToken":"<token>"}`, or `{}` when `client_token` is empty
/// (the service ignores the payload except to echo the token, 1.1).
/// Errors: InvalidArgument (token longer than 64 bytes or not UTF-8), BufferTooSmall.
[[nodiscard]] Result<std::string_view, Errc> write_get_request(std::string_view client_token,
                                                               std::span<char> out) noexcept;

/// The delete request (P/delete): the same document as the get request.
/// Errors: InvalidArgument, BufferTooSmall.
[[nodiscard]] Result<std::string_view, Errc> write_delete_request(std::string_view client_token,
                                                                  std::span<char> out) noexcept;

/// Writes an update request (P/update) with the application writing each state section through
/// the doc JSON writer, without copying it anywhere first:
///
///   char buf[512];
///   shadow::UpdateWriter u(buf);
///   u.reported().begin_object().member("temperature", 21).member("on", true).end_object();
///   auto doc = u.finish("token-1");   // {"state":{"reported":{...}},"clientToken":"token-1"}
///
/// `desired()` and `reported()` each write the key of their section and hand out the writer,
/// positioned where exactly one value is due: an object (a partial update: only the keys named
/// change, a key set to null is deleted) or `null()` (the whole section is deleted, 1.2).
/// Each section at most once, in either order. The result is
/// `{"state":{...},"clientToken":...,"version":...}` (token and version when given).
/// Errors (all sticky, reported by `finish`): InvalidArgument (a section that is not one object
/// or null, a section twice, no section at all, a token longer than 64 bytes, text that is not
/// UTF-8), BufferTooSmall (the buffer then holds no document).
/// The service's own limits (8 KB of state, 6 levels of nesting) are its to enforce: it rejects
/// with PayloadTooLarge or TooDeeplyNested.
/// Ownership: `out` belongs to the caller and must outlive the writer and the view `finish`
/// returns. Thread safety: none (one thread at a time).
class UpdateWriter {
 public:
  explicit UpdateWriter(std::span<char> out) noexcept;
  UpdateWriter(const UpdateWriter&) = delete;
  UpdateWriter& operator=(const UpdateWriter&) = delete;

  /// Starts `state.desired`: write exactly one object or null into the writer returned.
  doc::json::Writer& desired() noexcept;
  /// Starts `state.reported`: likewise.
  doc::json::Writer& reported() noexcept;
  /// Closes the document with `clientToken` (when not empty) and `version` (when given: the
  /// update then succeeds only if it is the shadow's current version, else 409, 1.2). Call it
  /// once: a second call is InvalidArgument.
  [[nodiscard]] Result<std::string_view, Errc> finish(
      std::string_view client_token = {}, std::optional<std::uint64_t> version = {}) noexcept;

 private:
  doc::json::Writer& section(std::string_view key, std::uint8_t bit) noexcept;
  void check_section() noexcept;

  std::span<char> out_;
  doc::json::Writer w_;
  std::size_t section_at_ = 0;  // where the open section's value begins (its ':')
  std::uint8_t sections_ = 0;   // bit 0: desired written, bit 1: reported written
  bool open_ = false;           // a section was handed out and not yet checked
  Errc error_ = Errc::Ok;
};

/// An update request from pre-written JSON: each section is the text of one JSON object or
/// `null`, or empty to leave the section out.
struct UpdateRequest {
  std::string_view desired;
  std::string_view reported;
  std::string_view client_token;         ///< empty: none
  std::optional<std::uint64_t> version;  ///< absent: no optimistic locking
};

/// Writes `request` as an update document (see UpdateWriter). Each section's text is checked
/// (strict JSON, an object or null) and copied without change of meaning.
/// Errors: InvalidArgument (a section that is not valid JSON or not an object or null, both
/// sections empty, a token longer than 64 bytes), BufferTooSmall.
[[nodiscard]] Result<std::string_view, Errc> write_update_request(const UpdateRequest& request,
                                                                  std::span<char> out) noexcept;

// --- Responses ----------------------------------------------------------------------------------

/// get/accepted and update/accepted (1.3).
/// get/accepted: the whole shadow: `state` {desired?, reported?, delta? (only when desired
/// differs from reported)} and `metadata` of the same shape with `{"timestamp":T}` per leaf.
/// update/accepted: `state` is the request's state as sent (nulls included; JSON null when the
/// request cleared the state) and `metadata` the timestamps of the leaves it touched.
struct Accepted {
  doc::json::Value state;                    ///< an object, or null (update with "state":null)
  std::optional<doc::json::Value> desired;   ///< state.desired: an object, or null (deleted)
  std::optional<doc::json::Value> reported;  ///< state.reported: likewise
  std::optional<doc::json::Value> delta;     ///< state.delta: an object (get/accepted only)
  std::optional<doc::json::Value> metadata;  ///< an object
  std::uint64_t version = 0;                 ///< the shadow's version after the request
  std::int64_t timestamp = 0;                ///< when the service sent this (epoch seconds)
  /// The request's token as echoed (a string Value; a Null Value when absent): correlate with
  /// `client_token.equals(mine)`, which also reads escaped tokens without copying.
  doc::json::Value client_token;
};

/// Reads get/accepted or update/accepted. Required: `state` (object or null), `version` (a
/// non-negative integer), `timestamp` (an integer). Optional: `metadata` (object), `clientToken`
/// (string); inside state, `desired` and `reported` (object or null) and `delta` (object).
/// Errors: MalformedDocument.
[[nodiscard]] Result<Accepted, Errc> read_accepted(std::string_view payload) noexcept;

/// update/delta (1.3): `state` is the delta itself (every desired key that differs from
/// reported, with its path from the root; no desired/reported wrapper).
struct Delta {
  doc::json::Value state;                    ///< an object
  std::optional<doc::json::Value> metadata;  ///< desired-side timestamps of the delta's keys
  std::uint64_t version = 0;                 ///< the version that produced this delta
  std::int64_t timestamp = 0;
  doc::json::Value client_token;  ///< as in Accepted (the updater's token)
};

/// Reads update/delta. Required: `state` (object), `version`, `timestamp`. Optional: `metadata`
/// (object), `clientToken` (string). Errors: MalformedDocument.
/// Apply a delta only when `DeltaOrder::accept(delta.version)` (delta_order.hpp) says so.
[[nodiscard]] Result<Delta, Errc> read_delta(std::string_view payload) noexcept;

/// One side of update/documents.
struct Snapshot {
  std::optional<doc::json::Value> state;     ///< {desired?, reported?}: an object, or null
  std::optional<doc::json::Value> metadata;  ///< an object, or null
  std::uint64_t version = 0;
};

/// update/documents (1.3): the shadow before and after an accepted update.
struct Documents {
  /// Absent when the update created the shadow (no previous document).
  std::optional<Snapshot> previous;
  Snapshot current;
  std::int64_t timestamp = 0;
  doc::json::Value client_token;
};

/// Reads update/documents. Required: `current` (an object with a `version`), `timestamp`.
/// Optional: `previous` (as current; null reads as absent), `clientToken`; in each snapshot
/// `state` and `metadata` (object or null). Errors: MalformedDocument.
[[nodiscard]] Result<Documents, Errc> read_documents(std::string_view payload) noexcept;

/// delete/accepted (1.1): the version the deleted shadow had reached.
struct DeleteAccepted {
  std::uint64_t version = 0;
  std::int64_t timestamp = 0;
  doc::json::Value client_token;
};

/// Reads delete/accepted. Required: `version`, `timestamp`. Optional: `clientToken`.
/// Errors: MalformedDocument.
[[nodiscard]] Result<DeleteAccepted, Errc> read_delete_accepted(std::string_view payload) noexcept;

/// An error document from any …/rejected topic (1.3, 1.6).
struct Rejected {
  std::int64_t code = 0;                  ///< the HTTP status (400, 404, 409, ...)
  doc::json::Value message;               ///< a string Value (Null when absent)
  std::optional<std::int64_t> timestamp;  ///< not always present (1.3)
  doc::json::Value client_token;          ///< as in Accepted
  /// `rejection_errc(code, message)`: the value naming this rejection (never Ok).
  Errc errc = Errc::RejectedOther;
};

/// Reads a rejected document. Required: `code` (an integer). Optional: `message` (string),
/// `timestamp` (integer), `clientToken` (string). The message is compared unescaped, so an
/// escaped spelling of a known message maps the same. Errors: MalformedDocument.
[[nodiscard]] Result<Rejected, Errc> read_rejected(std::string_view payload) noexcept;

}  // namespace edgekit::shadow
