#pragma once
/// \file
/// The decisions of edgekit's Mosquitto plugin that do not touch the broker, kept apart so that
/// they are unit-tested and fuzzed without one: the per-message check against a connection's
/// rules, the trusted metadata names, lifecycle event documents, and the reading of fleetd's
/// answers (untrusted bytes from the plugin's point of view: a bad answer means deny).

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policy/policy.hpp"

namespace edgekit::fleetd::plugin {

/// User properties the plugin stamps on every device message (after removing any the device
/// sent itself, so that they cannot be forged). fleetd trusts only these.
inline constexpr std::string_view kClientIdProperty = "x-edgekit-client-id";
inline constexpr std::string_view kCertificateIdProperty = "x-edgekit-certificate-id";
inline constexpr std::string_view kThingNameProperty = "x-edgekit-thing-name";
/// Set by fleetd on a reply meant for one client only (AWS's private replies); the plugin
/// delivers that message to that client alone and removes the property.
inline constexpr std::string_view kReplyToProperty = "x-edgekit-reply-to";
/// Any user property with this prefix from a device is dropped.
inline constexpr std::string_view kReservedPrefix = "x-edgekit-";

/// The plugin's view of one connection.
struct ClientState {
  bool trusted = false;  ///< fleetd's own link: may do anything
  std::string client_id;
  std::string certificate_id;
  std::string thing_name;
  std::vector<policy::Rule> rules;
  std::string session_id;       ///< lifecycle sessionIdentifier
  std::string peer;             ///< ipAddress
  std::uint64_t version = 0;    ///< lifecycle versionNumber
  bool kicked = false;          ///< disconnected at fleetd's request
  bool taken_over = false;      ///< a newer connection with the same client id was admitted
};

/// Pseudo reason for `disconnected_event`: the connection was taken over (DUPLICATE_CLIENTID).
inline constexpr int kTakenOver = -1000;

enum class Access { Subscribe, Publish, Receive, Unsubscribe };

/// The per-message decision. Refused always (even for an allowed topic): a retained publish on
/// `$aws/...` (AWS forbids it), anything on `$CONTROL/...` or `$edgekit/...` but fleetd's link.
/// Unsubscribe is always allowed (it can only reduce what a client receives).
[[nodiscard]] bool permitted(const ClientState& client, Access access, std::string_view topic,
                             bool retain) noexcept;

/// fleetd's answer to authenticate (hooks/wire.hpp). nullopt when it is malformed (the plugin
/// denies then and logs why in `error`).
struct Verdict {
  bool allow = false;
  std::string reason;
  std::string thing_name;
  std::vector<policy::Rule> rules;
};
[[nodiscard]] std::optional<Verdict> parse_verdict(std::string_view body, std::string& error);

/// AWS's disconnectReason for a Mosquitto disconnect reason (MOSQ_ERR_* value).
[[nodiscard]] const char* disconnect_reason(int mosq_reason) noexcept;

/// The documents of `$aws/events/presence/connected|disconnected/<clientId>` (AWS's fields).
[[nodiscard]] std::string connected_event(const ClientState& c, std::int64_t timestamp_ms);
[[nodiscard]] std::string disconnected_event(const ClientState& c, std::int64_t timestamp_ms,
                                             int mosq_reason);

/// The private replies in flight: copies of fleetd's replies addressed to one client, known by a
/// key (topic and payload hash) until they expire, so that the broker's read check lets only
/// that client have them. Every reply lives the same time, so they expire in the order they were
/// added, and `expire` costs only the ones it drops: the broker calls the plugin's tick on every
/// turn of its loop, and a scan of every reply there took 71 % of Mosquitto's CPU with 10,000
/// devices downloading an OTA image (docs/benchmarks.md). Not thread-safe: the broker's thread.
class PrivateReplies {
 public:
  using Clock = std::chrono::steady_clock;

  explicit PrivateReplies(Clock::duration lifetime) : lifetime_(lifetime) {}

  /// Adds (or renews, with a new addressee) the reply `key` at `now`.
  void add(const std::string& key, std::string client_id, Clock::time_point now);
  /// The addressee of the live reply `key` at `now`, or nullptr (none, or expired). The pointer
  /// is valid until the next add or expire.
  [[nodiscard]] const std::string* addressee(const std::string& key, Clock::time_point now) const;
  /// Drops every reply expired at `now`.
  void expire(Clock::time_point now);
  [[nodiscard]] std::size_t size() const noexcept { return by_key_.size(); }
  [[nodiscard]] bool empty() const noexcept { return by_key_.empty(); }

 private:
  struct Entry {
    std::string client_id;
    Clock::time_point expires;
  };
  Clock::duration lifetime_;
  std::unordered_map<std::string, Entry> by_key_;
  // (expiry, key) in the order added; a renewed key leaves its old pair behind, which `expire`
  // recognises by its older expiry and skips.
  std::deque<std::pair<Clock::time_point, std::string>> order_;
};

/// Lowercase hex of SHA-256 over `der` (AWS's certificateId).
[[nodiscard]] std::string sha256_hex(const unsigned char* der, std::size_t size);

}  // namespace edgekit::fleetd::plugin
