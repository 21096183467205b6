#pragma once
/// \file
/// `edgekit::reqres`: request/response over MQTT, the seam that the AWS IoT clients (Device
/// Shadow now; Jobs and OTA streams next) share. A `Channel` subscribes to the reply filters of
/// a service, publishes a request and waits, bounded by a `Duration`, for the one reply that the
/// caller's `Matcher` accepts (for Shadow and Jobs: the reply topic and its clientToken — AWS's
/// v2 SDKs route replies only by the token, aws-iot-protocols.md 0), and copies that reply into
/// the caller's buffer. Every other message on the subscribed filters (deltas, documents, jobs
/// notifications, a late reply to a request that timed out) goes to the caller's
/// `MessageHandler`, unsolicited.
///
/// Two implementations: `ClientChannel` over the blocking `mqtt::Client` (one device task) and
/// `AgentChannel` over `agent::Agent` (any thread).
///
/// One request at a time per channel (`Errc::Busy` otherwise): a device's shadow or jobs client
/// waits for each answer anyway, and AWS throttles beyond 10 in flight per connection (1.6).
/// Memory: no heap in steady state. `ClientChannel` allocates nothing; `AgentChannel` allocates
/// its shared state once, in its constructor. Replies are copied into the caller's buffer only,
/// and a secret one is wiped where the driver received it (`Matcher::wipe_reply`).
/// Built with -fno-exceptions -fno-rtti.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

#include "edgekit/core/clock.hpp"
#include "edgekit/core/result.hpp"

namespace edgekit::mqtt {
class Client;
struct Event;
}
namespace edgekit::agent {
class Agent;
}

namespace edgekit::reqres {

/// Errors of a channel.
enum class Errc : std::uint8_t {
  Ok = 0,
  NotConnected,     ///< the MQTT connection is down (or the agent is stopped / not started)
  SubscribeFailed,  ///< the broker refused a filter, or no SUBACK within the timeout
  PublishFailed,    ///< the request could not be published
  Timeout,          ///< no matching reply within the timeout
  ReplyTooLarge,    ///< the matching reply is longer than the caller's buffer (nothing copied)
  Busy,             ///< a request is in flight on this channel already
  InvalidArgument,  ///< no filter, more than `kMaxFilters`, a filter longer than
                    ///< `kMaxFilterLength`, or an empty matcher
  WouldDeadlock,    ///< a waiting call made on the agent's own thread (from a handler)
};

/// A short static name of `e`.
[[nodiscard]] const char* to_string(Errc e) noexcept;
/// The `std::error_category` of `Errc` ("edgekit.reqres"). Thread safe.
[[nodiscard]] const std::error_category& reqres_category() noexcept;
[[nodiscard]] inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), reqres_category()};
}

/// AWS IoT Core takes at most 8 filters per SUBSCRIBE (aws-iot-protocols.md 6.4); a channel
/// remembers at most this many subscribed filters.
inline constexpr std::size_t kMaxFilters = 8;
/// The longest filter a channel takes: AWS's longest reply topic (a named shadow's, with a
/// 128-byte thing name and a 64-byte shadow name) is 234 bytes.
inline constexpr std::size_t kMaxFilterLength = 240;

/// One message as the driver received it: views valid during the call only. The payload views
/// the driver's receive buffer.
struct Message {
  std::string_view topic;
  std::span<const std::uint8_t> payload;
};

/// Decides whether `message` is the reply the request waits for: returns a non-zero tag of the
/// caller's choosing (e.g. 1 accepted, 2 rejected), which `Reply::tag` gives back, or 0 when the
/// message is not the reply. Called on the thread that received the message (the caller's for
/// `ClientChannel`, the agent's for `AgentChannel`) while the request waits; must not block or
/// call the channel.
///
/// `wipe_reply`: the reply holds a secret (fleet provisioning's CreateKeysAndCertificate sends a
/// private key). The channel then overwrites the matching reply with zeros where the driver
/// received it (the client's or the agent's receive buffer), right after copying it into the
/// caller's buffer — or without copying it, on ReplyTooLarge — so that the only copy left is the
/// caller's. Messages the request does not take are the message handler's to wipe (it may write
/// through `Message::payload`'s data when it knows the message is a secret: the view is const,
/// the driver's buffer is not).
struct Matcher {
  std::uint8_t (*function)(void* context, const Message& message) = nullptr;
  void* context = nullptr;
  bool wipe_reply = false;
};

/// Overwrites `bytes` with zeros in a way the compiler may not drop (the memory is dead to it
/// afterwards: a plain memset could be elided). For `wipe_reply` and message handlers.
void wipe(std::span<std::uint8_t> bytes) noexcept;
/// The same for a payload seen through `Message` (the driver's buffer, writable; see `Matcher`).
void wipe_in_place(std::span<const std::uint8_t> payload) noexcept;

/// Receives every message on the subscribed filters that no request took (unsolicited). Called
/// on the receiving thread (see `Matcher`); the message is valid during the call only. With
/// `ClientChannel` it runs inside `poll` or `request` on the caller's task: it must not call
/// the channel's waiting members (request, subscribe, unsubscribe, poll).
struct MessageHandler {
  void (*function)(void* context, const Message& message) = nullptr;
  void* context = nullptr;
};

/// The reply a request got.
struct Reply {
  std::uint8_t tag = 0;   ///< what the matcher returned for it (never 0)
  std::size_t size = 0;   ///< bytes of the caller's buffer it fills
};

/// See the file comment. Thread safety: one request at a time; implementations say more.
class Channel {
 public:
  virtual ~Channel() = default;
  /// Sets the handler of unsolicited messages (empty: they are dropped). Call it before
  /// `subscribe`, or messages arriving in between are dropped. When it returns, the previous
  /// handler is no longer running and is never called again — so an object whose handler this
  /// is may clear it in its destructor and then go (`AgentChannel` waits for a call in progress
  /// on the agent thread; called from inside that handler, it cannot wait, and the handler's
  /// object must outlive its own call).
  virtual void set_message_handler(MessageHandler handler) noexcept = 0;
  /// Subscribes to `filters` (QoS 1, at most kMaxFilters, each at most kMaxFilterLength bytes)
  /// and waits up to `timeout` for the broker's answer: call it before publishing a request or
  /// its reply may be lost. Subscribing a filter again is harmless.
  /// Errors: InvalidArgument, SubscribeFailed, NotConnected, WouldDeadlock (agent thread).
  [[nodiscard]] virtual Result<void, Errc> subscribe(std::span<const std::string_view> filters,
                                                     Duration timeout) noexcept = 0;
  /// Unsubscribes from `filters` (best effort: no error is reported).
  virtual void unsubscribe(std::span<const std::string_view> filters,
                           Duration timeout) noexcept = 0;
  /// Publishes `payload` on `topic` and waits up to `timeout` for a message on a subscribed
  /// filter that `matcher` accepts; copies its payload into `reply` (the caller's, written only
  /// during the call), and wipes it where it was received if `matcher.wipe_reply`. Messages
  /// that do not match go to the message handler meanwhile.
  /// Errors: Busy, InvalidArgument (empty matcher), NotConnected, PublishFailed, Timeout,
  /// ReplyTooLarge (the matching reply was longer than `reply`: nothing was copied, the request
  /// is over), WouldDeadlock (agent thread).
  [[nodiscard]] virtual Result<Reply, Errc> request(std::string_view topic,
                                                    std::span<const std::uint8_t> payload,
                                                    Matcher matcher, std::span<std::uint8_t> reply,
                                                    Duration timeout) noexcept = 0;
  /// Lets unsolicited messages arrive for up to `timeout`: `ClientChannel` runs the client's
  /// receive loop (its task must call this between requests); `AgentChannel` returns as soon as
  /// one unsolicited message was handed to the handler (on the agent thread) after the call
  /// began, or when `timeout` passed.
  /// Errors: NotConnected; Busy (a request waits); WouldDeadlock (agent thread).
  [[nodiscard]] virtual Result<void, Errc> poll(Duration timeout) noexcept = 0;
};

/// `Channel` over a connected blocking `mqtt::Client`, used for nothing else meanwhile: it takes
/// the client's event handler for its lifetime (and gives it back empty). `clock` times the
/// waits. Borrows both; they must outlive the channel.
/// Requests are published with QoS 0: a QoS 1 record would keep pointing at the caller's
/// request buffer after a timed-out request until a PUBACK (or a resend on resume) that the
/// caller can no longer serve; a lost request is a timeout, which the caller may retry.
/// Thread safety: the client's (its owning task only).
class ClientChannel final : public Channel {
 public:
  ClientChannel(mqtt::Client& client, const Clock& clock) noexcept;
  ~ClientChannel() override;
  ClientChannel(const ClientChannel&) = delete;
  ClientChannel& operator=(const ClientChannel&) = delete;

  void set_message_handler(MessageHandler handler) noexcept override;
  [[nodiscard]] Result<void, Errc> subscribe(std::span<const std::string_view> filters,
                                             Duration timeout) noexcept override;
  void unsubscribe(std::span<const std::string_view> filters, Duration timeout) noexcept override;
  [[nodiscard]] Result<Reply, Errc> request(std::string_view topic,
                                            std::span<const std::uint8_t> payload,
                                            Matcher matcher, std::span<std::uint8_t> reply,
                                            Duration timeout) noexcept override;
  [[nodiscard]] Result<void, Errc> poll(Duration timeout) noexcept override;

  struct Pending;  // the request in flight (sources)

 private:
  static void on_event(void* self, mqtt::Client& client, const mqtt::Event& event) noexcept;

  mqtt::Client* client_;
  const Clock* clock_;
  MessageHandler handler_;
  Pending* pending_ = nullptr;
  bool in_call_ = false;  // a waiting call runs (the handler must not start another)
};

/// `Channel` over a started `agent::Agent`. Each subscribed filter gets a message handler on the
/// agent thread that offers the message to the waiting request's matcher and otherwise to the
/// unsolicited handler; the wait uses the agent's response expectations (`expect_response`,
/// under a key unique to this channel), so the timeout is the agent's. Several channels may
/// share an agent, each with filters of its own (the agent keeps one handler per filter).
/// Borrows the agent, which must outlive the channel; its `Config::slot_size` must hold the
/// largest request and its receive buffer the largest reply.
/// A request whose publish the agent refuses (QueueFull, ...) still returns only once the agent
/// ended its expectation — at its timeout at the latest — since until then the agent may write
/// into the caller's reply buffer; it then fails with PublishFailed or NotConnected.
/// Thread safety: any thread, one request at a time (Busy otherwise) — but never the agent's
/// own thread: the waiting members return WouldDeadlock when called from this channel's
/// handlers, and would wait forever from any other handler on the agent thread.
class AgentChannel final : public Channel {
 public:
  explicit AgentChannel(agent::Agent& agent) noexcept;
  /// Unsubscribes the filters still subscribed (their handlers point at this channel).
  ~AgentChannel() override;
  AgentChannel(const AgentChannel&) = delete;
  AgentChannel& operator=(const AgentChannel&) = delete;

  void set_message_handler(MessageHandler handler) noexcept override;
  [[nodiscard]] Result<void, Errc> subscribe(std::span<const std::string_view> filters,
                                             Duration timeout) noexcept override;
  void unsubscribe(std::span<const std::string_view> filters, Duration timeout) noexcept override;
  [[nodiscard]] Result<Reply, Errc> request(std::string_view topic,
                                            std::span<const std::uint8_t> payload,
                                            Matcher matcher, std::span<std::uint8_t> reply,
                                            Duration timeout) noexcept override;
  [[nodiscard]] Result<void, Errc> poll(Duration timeout) noexcept override;

  struct Shared;  // what the agent thread and the callers share (sources)

 private:
  agent::Agent* agent_;
  Shared* shared_;
};

}  // namespace edgekit::reqres

template <>
struct std::is_error_code_enum<edgekit::reqres::Errc> : std::true_type {};

template <>
inline constexpr bool edgekit::kZeroErrorMeansSuccess<edgekit::reqres::Errc> = true;
