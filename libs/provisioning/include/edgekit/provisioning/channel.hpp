#pragma once
/// \file
/// `Channel`: one request/response exchange with the provisioning service over MQTT, the seam
/// between `Provisioner` (client.hpp) and an MQTT driver. One implementation, `ReqresChannel`,
/// over edgekit::reqres's channel (the seam the Shadow and Jobs clients share), and two
/// shorthands for it: `ClientChannel` over the blocking client (mqtt/client.hpp, one device
/// task) and `AgentChannel` over the agent (agent/agent.hpp, any thread).
///
/// Correlation: fleet-provisioning replies carry no clientToken (aws-iot-protocols.md 0), so a
/// reply is matched by its topic alone and a channel has at most one request in flight
/// (`Errc::Busy` otherwise). A reply that arrives when no request waits for it (a late reply
/// to a request that timed out) is dropped — and wiped.
///
/// Secrets: a reply may carry a private key (CreateKeysAndCertificate). The channel copies the
/// reply into the caller's buffer and then overwrites the payload where the MQTT driver
/// received it (the client's receive buffer, the agent's), so that the only copy left is the
/// caller's, which the caller wipes. Beyond reach: the TLS library's record buffers (OpenSSL
/// frees them without wiping unless built to) and, over plain TCP, the kernel's socket buffer.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/core/clock.hpp"
#include "edgekit/provisioning/errc.hpp"
#include "edgekit/provisioning/topics.hpp"
#include "edgekit/reqres/channel.hpp"

namespace edgekit::provisioning {

/// Which reply arrived, and how many bytes of the caller's buffer it fills.
struct Reply {
  TopicKind kind = TopicKind::Accepted;  ///< Accepted or Rejected
  std::size_t size = 0;
};

/// The two reply topics of one request.
struct ReplyTopics {
  std::string_view accepted;
  std::string_view rejected;
};

/// See the file comment. Thread safety: one request at a time; implementations say more.
class Channel {
 public:
  virtual ~Channel() = default;
  /// Subscribes to both reply topics (QoS 1) and waits for the broker's answer: call it before
  /// publishing a request, or the reply may be lost (aws-iot-protocols.md 4.2).
  /// Errors: SubscribeFailed (refused, or no SUBACK in `timeout`), NotConnected.
  [[nodiscard]] virtual Result<void, Errc> subscribe(ReplyTopics topics, Duration timeout) = 0;
  /// Unsubscribes from both (best effort: a failure changes nothing for provisioning).
  virtual void unsubscribe(ReplyTopics topics, Duration timeout) = 0;
  /// Publishes `payload` on `request_topic` (QoS 1) and waits up to `timeout` for a message on
  /// one of `topics`; copies its payload into `reply` (the caller's, written only during the
  /// call) and wipes it where it was received.
  /// Errors: Busy (a request is in flight), NotConnected, PublishFailed, Timeout,
  /// ReplyTooLarge (the reply was longer than `reply`: nothing was copied; it was wiped).
  [[nodiscard]] virtual Result<Reply, Errc> request(std::string_view request_topic,
                                                    std::span<const std::uint8_t> payload,
                                                    ReplyTopics topics,
                                                    std::span<std::uint8_t> reply,
                                                    Duration timeout) = 0;
};

/// `Channel` over a `reqres::Channel` (libs/reqres) that the caller made and uses for nothing
/// else meanwhile: the request/response seam the AWS IoT clients share, given provisioning's
/// correlation and secrets. A reply is matched by its topic alone (accepted or rejected of the
/// request asked about) and wiped where the driver received it once copied
/// (`reqres::Matcher::wipe_reply`). This channel takes the inner channel's message handler for
/// its lifetime: it drops every message no request takes, and wipes those that are provisioning
/// replies (a late or duplicate one may hold a key). One request at a time comes from reqres
/// (Busy).
/// Errors map one to one onto `Errc`; reqres's WouldDeadlock (a call from the agent's own thread)
/// is NotConnected, and its InvalidArgument (a reply topic longer than
/// `reqres::kMaxFilterLength`, which a valid template name cannot make) is InvalidArgument.
/// Borrows `inner`, which must outlive this channel. Thread safety: the inner channel's.
class ReqresChannel : public Channel {
 public:
  explicit ReqresChannel(reqres::Channel& inner) noexcept;
  /// Gives the inner channel's message handler back empty.
  ~ReqresChannel() override;
  ReqresChannel(const ReqresChannel&) = delete;
  ReqresChannel& operator=(const ReqresChannel&) = delete;

  [[nodiscard]] Result<void, Errc> subscribe(ReplyTopics topics, Duration timeout) override;
  void unsubscribe(ReplyTopics topics, Duration timeout) override;
  [[nodiscard]] Result<Reply, Errc> request(std::string_view request_topic,
                                            std::span<const std::uint8_t> payload,
                                            ReplyTopics topics, std::span<std::uint8_t> reply,
                                            Duration timeout) override;

 private:
  reqres::Channel* inner_;
};

namespace detail {
// Holds the reqres channel of ClientChannel and AgentChannel as their first base, so that it
// is built before ReqresChannel points at it and destroyed after.
template <class Inner>
struct Holder {
  template <class... Args>
  explicit Holder(Args&... args) noexcept : inner(args...) {}
  Inner inner;
};
}  // namespace detail

/// `Channel` over a connected blocking `mqtt::Client` (the claim connection, used for nothing
/// else meanwhile): a `ReqresChannel` over a `reqres::ClientChannel`. It takes the client's
/// event handler for its lifetime (messages on other topics are ignored) and gives it back
/// empty. `clock` times the waits. Borrows both, which must outlive the channel.
/// Requests are published with QoS 0: a QoS 1 record would keep pointing at the caller's
/// request buffer after a timed-out request until a PUBACK (or a resend on resume) that the
/// caller can no longer serve; a lost request is a timeout, and the provisioner retries it.
/// Thread safety: the client's (its owning task only).
class ClientChannel final : private detail::Holder<reqres::ClientChannel>, public ReqresChannel {
 public:
  ClientChannel(mqtt::Client& client, const Clock& clock) noexcept;
  // Out of line: the key function, so that the vtable lives in the library (built without
  // RTTI) and not in each caller's object.
  ~ClientChannel() override;
};

/// `Channel` over a started `agent::Agent`: a `ReqresChannel` over a `reqres::AgentChannel`.
/// Replies are taken on the agent thread by a message handler of each reply subscription and
/// handed to the waiting caller; the wait uses the agent's response expectations
/// (`expect_response`, under a key unique to the channel), so the timeout is the agent's.
/// Borrows the agent, which must outlive the channel; its `Config::slot_size` must hold the
/// largest request (a CSR: about 1 KB in JSON) and its receive buffer the largest reply.
/// Thread safety: any thread, one request at a time (Busy otherwise) — but never the agent's
/// own thread (a handler): `subscribe` and `request` return NotConnected there.
class AgentChannel final : private detail::Holder<reqres::AgentChannel>, public ReqresChannel {
 public:
  explicit AgentChannel(agent::Agent& agent) noexcept;
  ~AgentChannel() override;  // out of line, as ClientChannel's
};

/// Overwrites `bytes` with zeros in a way the compiler may not drop (`reqres::wipe`).
void wipe(std::span<std::uint8_t> bytes) noexcept;
void wipe(std::span<char> bytes) noexcept;

}  // namespace edgekit::provisioning
