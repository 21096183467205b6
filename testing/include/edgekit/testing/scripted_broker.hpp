#pragma once
/// \file
/// A scripted fake broker for client tests, built from the codec's own encoders. The test writes
/// the conversation in advance:
///
///   MemoryTransport net;
///   ScriptedBroker broker(net, Version::V5);
///   broker.expect(Connect{...}).reply_with(ConnAck{});
///   broker.expect(PacketType::Subscribe).reply_with([](const Packet& p) { ... SubAck ... });
///   broker.send(Publish{...});          // unsolicited, queued at once
///   ... drive the client over `net` ...
///   broker.verify();                    // every expectation met (also checked by the destructor)
///
/// Each packet the client writes is matched against the next expectation, in order. A mismatch
/// fails the test (gtest ADD_FAILURE) with both packets decoded field by field and the differing
/// fields marked; an expected packet is compared by its encoding, so two packets match when the
/// codec would put the same bytes on the wire.
///
/// Ownership: packets given to `expect`, `reply_with` and `send` are encoded at once; their views
/// need not outlive the call. Thread safety: the broker runs inside the transport's hooks, on the
/// thread that drives the client; script it before the client starts.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "edgekit/mqtt/codec.hpp"
#include "edgekit/mqtt/packets.hpp"
#include "edgekit/testing/describe.hpp"
#include "edgekit/testing/manual_clock.hpp"
#include "edgekit/testing/memory_transport.hpp"

namespace edgekit::testing {

using ByteVector = std::vector<std::byte>;

/// Encodes `packet` for `version` with the codec; fails the test (and returns empty bytes) when
/// the codec refuses it.
ByteVector encode_packet(const mqtt::Packet& packet, mqtt::Version version);

class ScriptedBroker {
 public:
  /// Builds the replies to a received packet (it may look at the packet id, topic, ...).
  using Responder = std::function<std::vector<mqtt::Packet>(const mqtt::Packet& received)>;

  /// One scripted expectation: what the client must send next, and what the broker answers.
  class Step {
   public:
    /// Replies with `packet` once the expectation is met (several calls: several replies, in
    /// order, delivered together).
    Step& reply_with(const mqtt::Packet& packet);
    /// Replies with raw bytes (malformed packets, several packets glued together, ...).
    Step& reply_with_bytes(ByteVector bytes);
    /// Replies with packets computed from the received packet.
    Step& reply_with(Responder responder);
    /// After the replies, the broker ends the stream (recv returns Closed once drained).
    Step& then_close();
    /// Lets the same expectation match `n` consecutive packets (replying to each).
    Step& times(std::size_t n);

   private:
    friend class ScriptedBroker;
    enum class Kind : std::uint8_t { Bytes, Type, Predicate };
    Kind kind_ = Kind::Bytes;
    ByteVector expected_;
    mqtt::PacketType type_{};
    std::function<bool(const mqtt::Packet&)> predicate_;
    std::string description_;
    std::vector<ByteVector> replies_;
    std::vector<Responder> responders_;
    bool close_after_ = false;
    std::size_t remaining_ = 1;
    mqtt::Version version_{};
  };

  /// Attaches to `transport` (installs its outbound hook). `version` is the protocol of the
  /// conversation; it is used to encode and decode every packet except CONNECT.
  ScriptedBroker(MemoryTransport& transport, mqtt::Version version);
  /// Reports unmet expectations (ADD_FAILURE) unless `verify` already did; detaches the hook.
  ~ScriptedBroker();
  ScriptedBroker(const ScriptedBroker&) = delete;
  ScriptedBroker& operator=(const ScriptedBroker&) = delete;

  /// The client must send exactly this packet (compared by encoding).
  Step& expect(const mqtt::Packet& packet);
  /// The client must send exactly these bytes.
  Step& expect_bytes(ByteVector bytes);
  /// The client must send a packet of this type (any contents).
  Step& expect(mqtt::PacketType type);
  /// The client must send a packet for which `predicate` is true; `description` names it in
  /// failure messages.
  Step& expect_matching(std::string description,
                        std::function<bool(const mqtt::Packet&)> predicate);

  /// Queues an unsolicited packet for the client at once.
  void send(const mqtt::Packet& packet);
  /// Queues raw bytes for the client at once.
  void send_bytes(std::span<const std::byte> bytes);
  /// Ends the stream from the broker's side.
  void close();

  /// Uses `clock` for `send_at` / `send_after` (installs the transport's wait hook): when the
  /// client waits and a scheduled packet falls due within its timeout, the clock jumps to that
  /// moment and the packet is queued, so `wait` returns Ready at the right simulated time. Attach
  /// the same clock to the transport so that waits with nothing due advance it by the timeout.
  void attach_clock(ManualClock& clock);
  /// Queues `packet` for the client at simulated time `when` (needs attach_clock).
  void send_at(Instant when, const mqtt::Packet& packet);
  /// Queues `packet` `delay` after the clock's current time (needs attach_clock).
  void send_after(Duration delay, const mqtt::Packet& packet);

  /// Answers every PINGREQ with a PINGRESP without it being scripted (default off).
  void auto_reply_to_pings(bool on);
  /// Switches the protocol version (e.g. after a test reconnects with the other one).
  void set_version(mqtt::Version version);

  /// True when every expectation has been met.
  [[nodiscard]] bool done() const;
  /// Fails the test for each expectation not yet met. Returns done().
  bool verify();

  /// Every complete packet the client has sent, as raw frames, in order (matched or not).
  [[nodiscard]] const std::vector<ByteVector>& received() const { return received_; }
  /// How many packets did not match their expectation (each already reported).
  [[nodiscard]] std::size_t mismatches() const { return mismatches_; }

 private:
  void on_client_bytes(std::span<const std::byte> bytes);
  void on_client_wait(std::uint32_t timeout_ms);

  struct Scheduled {
    Instant when;
    ByteVector bytes;
  };
  ManualClock* clock_ = nullptr;
  std::vector<Scheduled> scheduled_;
  void handle_frame(const ByteVector& frame);

  MemoryTransport& transport_;
  mqtt::Version version_;
  std::vector<std::unique_ptr<Step>> steps_;
  std::size_t next_step_ = 0;
  ByteVector pending_;
  std::vector<ByteVector> received_;
  std::size_t mismatches_ = 0;
  bool auto_ping_ = false;
  bool verified_ = false;
};

}  // namespace edgekit::testing
