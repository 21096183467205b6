#pragma once
/// \file
/// `edgekit::shadow::Client`: a device's Device Shadow client (aws-iot-protocols.md 1) over a
/// `reqres::Channel` — the blocking MQTT client or the agent — in caller-owned memory.
///
///   char request[1024], reply[4096];
///   reqres::AgentChannel channel(agent);
///   shadow::Client lamp(channel, {.thing = "lamp-1"}, request, reply);
///   lamp.set_delta_handler({&on_delta, &app});   // each delta once, in version order
///   if (!lamp.start(5s)) ...                       // subscribes to the reply topics
///   auto doc = lamp.get(5s);                       // the whole shadow (views into `reply`)
///   auto up = lamp.update([](shadow::UpdateWriter& u) {
///     u.reported().begin_object().member("power", true).end_object(); }, {}, 5s);
///   if (!up && up.error().errc == shadow::Errc::VersionConflict) ...   // get, then retry
///
/// Requests: get, update (desired and/or reported, optionally with the version it expects:
/// 409 otherwise), clear (`"state": null`: both sections emptied, the version still counts up),
/// remove (delete: the shadow goes, its version is kept for 48 h, 1.5). Each request carries a
/// clientToken of its own, `<prefix>-<n>` (a counter; at most 51 bytes, within AWS's 64), and
/// only the reply on that operation's accepted/rejected topic of this shadow that echoes that
/// token completes it: another client's replies, and a late reply to a request that timed out,
/// are never taken for the current one. One request at a time (Busy otherwise).
///
/// Deltas (P/update/delta) arrive unsolicited and pass through a `DeltaOrder`: each is handed to
/// the delta handler once, in version order; stale and duplicate ones are dropped (counted in
/// `stats`). After each applied delta, applied document (`document_applied`) and delete, the
/// version handler receives the order so the application can keep `last_applied()` in flash
/// and resume with it (`ClientConfig::order`) after a reboot. Other unsolicited messages on the
/// reply topics (update/documents, other clients' replies) are ignored.
///
/// One client per channel: `start` takes the channel's message handler. A device with a classic
/// and a named shadow gives each client a channel of its own (several `AgentChannel`s may share
/// one agent).
///
/// Memory: `request` holds the request documents, `reply` the reply of the current request;
/// every view a result holds (Accepted, DeleteAccepted, Error::rejection) points into `reply`
/// and is valid until the next request. Deltas are read in place, in the MQTT driver's receive
/// buffer: the views of a `Delta` are valid during the handler call only. No heap.
///
/// Thread safety: requests from one thread at a time (Busy otherwise). Over the agent the
/// handlers run on the agent thread; they must not make requests (WouldDeadlock). Over the
/// blocking client they run inside a request or `poll`, on the caller's task; a request made
/// from them is Busy. `stats`, `order` and `document_applied` may be called from any thread.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>

#include "edgekit/core/clock.hpp"
#include "edgekit/reqres/channel.hpp"
#include "edgekit/shadow/delta_order.hpp"
#include "edgekit/shadow/documents.hpp"
#include "edgekit/shadow/errc.hpp"
#include "edgekit/shadow/topics.hpp"

namespace edgekit::shadow {

/// Why a request failed.
struct Error {
  Errc errc = Errc::Ok;
  /// When `is_rejection(errc)`: the service's rejection document (its HTTP `code`, `message`,
  /// `clientToken`), viewing the client's reply buffer until the next request. Otherwise empty
  /// (code 0).
  Rejected rejection;
};

template <class T>
using ClientResult = edgekit::Result<T, Error>;

/// Receives each delta to apply (see the file comment), on the receiving thread.
struct DeltaHandler {
  void (*function)(void* context, const Delta& delta) = nullptr;
  void* context = nullptr;
};

/// Receives the delta order after it changed (a delta applied, a document applied, the shadow
/// deleted), to persist `order.has_applied()` and `order.last_applied()`.
struct VersionHandler {
  void (*function)(void* context, const DeltaOrder& order) = nullptr;
  void* context = nullptr;
};

/// What the client is for.
struct ClientConfig {
  std::string_view thing;   ///< the thing name (1-128 bytes of [a-zA-Z0-9:_-]; copied)
  std::string_view shadow;  ///< a named shadow's name (1-64 bytes, copied), empty: classic
  /// The clientTokens' prefix (at most `kMaxTokenPrefixLength` bytes of [a-zA-Z0-9:_-]; copied).
  /// Empty: the thing name's first 40 bytes.
  std::string_view token_prefix;
  /// The first token's counter. Make it differ across boots (a boot counter, a random number)
  /// so that a reply to a request of the previous run cannot match a token of this one.
  std::uint32_t token_seed = 0;
  /// The delta order to resume with (e.g. `DeltaOrder(version_kept_in_flash)`).
  DeltaOrder order;
};

/// The longest token prefix: "<prefix>-<counter>" then stays within 51 bytes.
inline constexpr std::size_t kMaxTokenPrefixLength = 40;

/// Counters of the unsolicited messages (for tests and diagnostics).
struct ClientStats {
  std::uint64_t deltas_applied = 0;
  std::uint64_t deltas_stale = 0;      ///< older than the last applied version: dropped
  std::uint64_t deltas_duplicate = 0;  ///< the last applied version again: dropped
  std::uint64_t malformed = 0;         ///< deltas that could not be read: dropped
  std::uint64_t ignored = 0;           ///< other messages (documents, replies not waited for)
};

/// See the file comment.
class Client {
 public:
  /// Borrows `channel`, `request` and `reply`, which must outlive the client. Nothing is sent
  /// before `start`.
  Client(reqres::Channel& channel, const ClientConfig& config, std::span<char> request,
         std::span<char> reply) noexcept;
  /// Gives the channel's message handler back (empty) when `start` took it, so that no message
  /// reaches a destroyed client: the channel may outlive it.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Checks the names, takes the channel's message handler and subscribes to P/get/+,
  /// P/update/+ and P/delete/+ (AWS's SDK v2 subscribes the same way), waiting up to `timeout`.
  /// Errors: InvalidArgument (a name or token prefix outside its limits), SubscribeFailed,
  /// NotConnected, WouldDeadlock.
  [[nodiscard]] Result<void, Errc> start(Duration timeout) noexcept;
  /// Unsubscribes (best effort).
  void stop(Duration timeout) noexcept;

  /// Set before `start`.
  void set_delta_handler(DeltaHandler handler) noexcept { delta_handler_ = handler; }
  void set_version_handler(VersionHandler handler) noexcept { version_handler_ = handler; }

  /// Gets the whole shadow (get/accepted: desired, reported, delta, metadata, version).
  /// Apply what you take from it, then call `document_applied(version)` so that older deltas
  /// are dropped. Errors (`Error::errc`): every rejection (ShadowNotFound before the first
  /// update, ...) with the document in `rejection`; Timeout; NotConnected; Busy; ReplyTooLarge;
  /// PublishFailed; WouldDeadlock; MalformedDocument (an accepted reply that cannot be read);
  /// BufferTooSmall (the request buffer).
  [[nodiscard]] ClientResult<Accepted> get(Duration timeout) noexcept;

  /// Updates the shadow: `write(UpdateWriter&)` writes the sections (desired and/or reported,
  /// each an object or null) into the request buffer; the client adds its token and `version`
  /// (when given, the update succeeds only at that version: VersionConflict otherwise).
  /// Returns update/accepted. Errors: as `get`, and InvalidArgument (the writer's).
  template <class F>
  [[nodiscard]] ClientResult<Accepted> update(F&& write, std::optional<std::uint64_t> version,
                                              Duration timeout) noexcept {
    // A request in flight is using the request buffer: do not let `write` overwrite it.
    if (in_request_.load()) return fail(Error{Errc::Busy, Rejected{}});
    UpdateWriter u(request_);
    write(u);
    return finish_update(u, version, timeout);
  }
  /// `update` from pre-written sections (`request.client_token` is replaced by the client's).
  [[nodiscard]] ClientResult<Accepted> update(const UpdateRequest& request,
                                              Duration timeout) noexcept;
  /// `{"state": null}`: empties desired and reported (the shadow and its version remain).
  [[nodiscard]] ClientResult<Accepted> clear(std::optional<std::uint64_t> version,
                                             Duration timeout) noexcept;
  /// Deletes the shadow. On success the delta order is reset (a re-created shadow may number
  /// from 0 again, 1.5) and the version handler told. Errors: as `get`.
  [[nodiscard]] ClientResult<DeleteAccepted> remove(Duration timeout) noexcept;

  /// Lets unsolicited messages (deltas) arrive for up to `timeout` (`reqres::Channel::poll`):
  /// over the blocking client, call it whenever no request runs.
  /// Errors: NotConnected, Busy, WouldDeadlock.
  [[nodiscard]] Result<void, Errc> poll(Duration timeout) noexcept;

  /// Records that the application applied a whole document of `version` (from `get`).
  void document_applied(std::uint64_t version) noexcept;
  /// The current delta order.
  [[nodiscard]] DeltaOrder order() const noexcept;
  [[nodiscard]] ClientStats stats() const noexcept;
  /// The token of the latest request (valid until the next one).
  [[nodiscard]] std::string_view last_token() const noexcept { return {token_, token_size_}; }

  struct Access;  // the sources' handlers
  class InFlight;  // a request in flight (sources)

 private:
  [[nodiscard]] ClientResult<Accepted> finish_update(UpdateWriter& u,
                                                     std::optional<std::uint64_t> version,
                                                     Duration timeout) noexcept;
  // `exchange`, then reads the accepted reply (get/update).
  [[nodiscard]] ClientResult<Accepted> accepted_reply(Operation op,
                                                      Result<std::string_view, Errc> document,
                                                      Duration timeout) noexcept;
  // Sends `document` as an `op` request and waits: the accepted reply (in `reply_`), or the
  // error (a rejection read from `reply_`).
  [[nodiscard]] ClientResult<std::string_view> exchange(Operation op, std::string_view document,
                                                        Duration timeout) noexcept;
  std::string_view next_token() noexcept;
  void changed_order() noexcept;

  reqres::Channel* channel_;
  std::span<char> request_;
  std::span<char> reply_;
  char thing_[kMaxThingNameLength] = {};
  std::size_t thing_size_ = 0;
  char shadow_[kMaxShadowNameLength] = {};
  std::size_t shadow_size_ = 0;
  char prefix_[kMaxTokenPrefixLength] = {};
  std::size_t prefix_size_ = 0;
  char token_[kMaxClientTokenLength] = {};
  std::size_t token_size_ = 0;
  std::uint32_t counter_;
  std::atomic<bool> in_request_{false};
  bool took_handler_ = false;     // `start` set the channel's message handler
  Errc config_error_ = Errc::Ok;  // a name outside its limits: `start` says so
  DeltaHandler delta_handler_;
  VersionHandler version_handler_;
  mutable std::mutex mutex_;  // order_ and stats_: the receiving thread and the caller's
  DeltaOrder order_;
  ClientStats stats_;
};

}  // namespace edgekit::shadow
