#pragma once
/// \file
/// `Channel`: one request/response exchange with the provisioning service over MQTT, the seam
/// between `Provisioner` (client.hpp) and an MQTT driver. Two implementations:
/// `ClientChannel` over the blocking client (mqtt/client.hpp, one device task) and
/// `AgentChannel` over the agent (agent/agent.hpp, any thread).
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

namespace edgekit::mqtt {
class Client;
}
namespace edgekit::agent {
class Agent;
}

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

/// `Channel` over a connected blocking `mqtt::Client` (the claim connection, used for nothing
/// else meanwhile). It takes the client's event handler for its lifetime (messages on other
/// topics are ignored) and gives it back empty. `clock` times the waits. Borrows both, which
/// must outlive the channel.
/// Requests are published with QoS 0: a QoS 1 record would keep pointing at the caller's
/// request buffer after a timed-out request until a PUBACK (or a resend on resume) that the
/// caller can no longer serve; a lost request is a timeout, and the provisioner retries it.
/// Thread safety: the client's (its owning task only).
class ClientChannel final : public Channel {
 public:
  ClientChannel(mqtt::Client& client, const Clock& clock) noexcept;
  ~ClientChannel() override;
  ClientChannel(const ClientChannel&) = delete;
  ClientChannel& operator=(const ClientChannel&) = delete;

  [[nodiscard]] Result<void, Errc> subscribe(ReplyTopics topics, Duration timeout) override;
  void unsubscribe(ReplyTopics topics, Duration timeout) override;
  [[nodiscard]] Result<Reply, Errc> request(std::string_view request_topic,
                                            std::span<const std::uint8_t> payload,
                                            ReplyTopics topics, std::span<std::uint8_t> reply,
                                            Duration timeout) override;

  struct Pending;  // the request in flight (sources)

 private:
  mqtt::Client* client_;
  const Clock* clock_;
  Pending* pending_ = nullptr;
};

/// `Channel` over a started `agent::Agent`. Replies are taken on the agent thread by a message
/// handler of each reply subscription and handed to the waiting caller; the wait uses the
/// agent's response expectations (`expect_response`, under the one key
/// "edgekit-provisioning"), so the timeout is the agent's. One AgentChannel per agent. Borrows
/// the agent, which must outlive the channel; its `Config::slot_size` must hold the largest
/// request (a CSR: about 1 KB in JSON) and its receive buffer the largest reply.
/// Thread safety: any thread, one request at a time (Busy otherwise) — but never the agent's
/// own thread (a handler): `subscribe` returns NotConnected there (the agent's WouldDeadlock),
/// and `request` would wait forever for a reply only that thread can deliver.
class AgentChannel final : public Channel {
 public:
  explicit AgentChannel(agent::Agent& agent) noexcept;
  ~AgentChannel() override;
  AgentChannel(const AgentChannel&) = delete;
  AgentChannel& operator=(const AgentChannel&) = delete;

  [[nodiscard]] Result<void, Errc> subscribe(ReplyTopics topics, Duration timeout) override;
  void unsubscribe(ReplyTopics topics, Duration timeout) override;
  [[nodiscard]] Result<Reply, Errc> request(std::string_view request_topic,
                                            std::span<const std::uint8_t> payload,
                                            ReplyTopics topics, std::span<std::uint8_t> reply,
                                            Duration timeout) override;

  struct Shared;  // what the agent thread and the caller share (sources)

 private:
  agent::Agent* agent_;
  Shared* shared_;
};

/// Copies `payload` into `out` when it fits, then overwrites `payload` with zeros in place
/// (the driver's receive buffer; it is not const there). Returns the size, or ReplyTooLarge.
/// For channel implementations.
[[nodiscard]] Result<std::size_t, Errc> take_and_wipe(std::span<const std::uint8_t> payload,
                                                      std::span<std::uint8_t> out) noexcept;

/// Overwrites `bytes` with zeros in a way the compiler may not drop (OPENSSL_cleanse).
void wipe(std::span<std::uint8_t> bytes) noexcept;
void wipe(std::span<char> bytes) noexcept;

}  // namespace edgekit::provisioning
