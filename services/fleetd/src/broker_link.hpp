#pragma once
/// \file
/// fleetd's own MQTT 5 connection to the broker, on edgekit's event-loop driver: it connects,
/// (re)subscribes to every filter a service registered, routes incoming messages to their
/// service, and when the broker goes away reconnects by itself with exponential backoff and full
/// jitter, logging each step. A clean start each time: fleetd keeps no broker-side session, so
/// after a reconnect it subscribes again (services answer requests, and a request that arrived
/// while the link was down is the device's to retry, as with AWS IoT).
///
/// Backpressure. Replies leave through the broker's Receive Maximum (Mosquitto:
/// max_inflight_messages) and the link's session records; when requests come faster, replies
/// wait in the link's queue. So that this queue cannot grow without bound (at 2,000 shadow
/// updates/s it once held 31,739 replies, and devices waited minutes), the link stops taking
/// requests while more than `max_queued` replies wait: it keeps back the PUBACK of each message
/// that arrives then (its service still answers it), until the queue is down to half of
/// `max_queued`. fleetd's CONNECT announces Receive Maximum `receive_maximum`: a broker that
/// honours it sends at most that many messages unacknowledged and keeps the rest queued for
/// fleetd, in order (Mosquitto: up to max_queued_messages, beyond which it drops — set it high,
/// docs/fleetd.md). Once one ack is held, every later one is too (PUBACKs leave in order), and
/// held acks are released a few at a time. With such a broker the queue stays under about
/// max_queued + 3 × (receive_maximum + 1) (a shadow update makes up to three replies), and the
/// overload waits where MQTT puts it, in the broker, with every request still answered.
/// Mosquitto 2.0.11 does not keep to it: each PUBACK of its oldest message in flight releases
/// up to Receive Maximum queued messages (the accounting fault of its issue #2301; fleetd's test
/// saw 224 in flight with Receive Maximum 4), so the only window it keeps is 1, at Receive
/// Maximum 1; in the shadow benchmark it once had 46,398 requests to fleetd unacknowledged at
/// once (docs/benchmarks.md). Against it the bound does not hold; every request is still
/// answered. (Rejecting requests with a 429 instead would not bound anything: each rejection is
/// one more reply for the same queue.)
///
/// Group commit (`set_batching`). The messages one read of the socket brings (at most
/// `max_batch` of them) are handled inside one batch of the store (Store::begin_batch): each
/// handler's transactions become savepoints of one database transaction, committed once after
/// the last handler of the read returned, and before anything the handlers queued is written.
/// Whatever the handlers publish meanwhile is held by the link and handed on, in order, only
/// once the batch committed; so neither a reply nor the PUBACK of its request ever leaves before
/// the transaction it reports on is durable. A batch the store rolled back as a whole (a Busy
/// failure, see Store::BatchOutcome::Rerun) is handled again message by message, each in its own
/// transaction, from the link's copies of them (topic, payload, QoS and user properties: what
/// fleetd's handlers read), its held publishes dropped first; a batch whose COMMIT failed (Lost)
/// drops its held publishes, logged (`broker.batch_lost`): the devices retry, as with AWS IoT.
/// So a handler must keep its effects to the store and its publishes: a rerun runs it twice.
/// Held publishes join the link's queue (and its backpressure count) when they are handed on,
/// so backpressure engages at most one batch's replies (≤ 3 × max_batch) later than without.
/// The batch's copies of messages and held publishes are wiped when the batch ends.
/// The batch never outlives the turn of the io loop that read the messages: work that other
/// threads post to that loop (admin, hooks) never runs inside a half-done batch, and waits for
/// it no longer than for the requests' own transactions before.
///
/// Thread safety: none; everything runs on the io_context thread that runs the link.

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "edgekit/core/backoff.hpp"
#include "edgekit/mqtt_asio/connection.hpp"
#include "log.hpp"

namespace edgekit::fleetd {

struct BrokerLinkOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  std::string client_id = "fleetd";
  /// fleetd's credentials at the broker (the plugin admits this user name with the hooks token
  /// as password, without a certificate). Empty user name: none sent.
  std::string username;
  std::string password;
  std::uint16_t keep_alive_seconds = 30;
  backoff::Policy reconnect{Duration{200}, Duration{10'000}};
  Duration connect_timeout{5000};
  /// Backpressure (see the file comment): replies waiting in the link's queue beyond which the
  /// link stops acknowledging incoming messages, and the Receive Maximum fleetd announces.
  std::size_t max_queued = 4096;
  /// The same in payload bytes (OTA data messages are up to ~175 KB each): the link stops
  /// acknowledging beyond it too, and starts again below half of it.
  std::size_t max_queued_bytes = 64 * 1024 * 1024;
  std::uint16_t receive_maximum = 64;  ///< at most 64: the session tracks 64 incoming ids
  /// Group commit: the most messages in one batch (with `set_batching`); 1: none. It bounds
  /// how long the first message of a batch waits for its reply besides the broker's Receive
  /// Maximum, which bounds a read's messages too.
  std::size_t max_batch = 64;
};

/// How the store ended a batch (see BrokerLink::set_batching).
struct BatchVerdict {
  enum class Outcome {
    Committed,  ///< durable: the held publishes go out
    Rerun,      ///< rolled back whole: the messages are handled again one by one
    Lost,       ///< COMMIT failed, outcome unknown: the held publishes are dropped
  };
  Outcome outcome = Outcome::Committed;
  std::string error;  ///< why, unless Committed (for the log)
};

/// An incoming message; views valid during the handler call only.
struct Message {
  std::string_view topic;
  mqtt::Bytes payload;
  const mqtt::Publish* publish = nullptr;  ///< the whole packet (QoS, properties)
};

class Store;

class BrokerLink final : private mqtt_asio::Handler {
 public:
  using MessageHandler = std::function<void(const Message&)>;
  /// Called on every change: true once subscribed after a (re)connect, false when it drops.
  using StateHandler = std::function<void(bool up)>;

  BrokerLink(asio::io_context& io, BrokerLinkOptions options, Logger& log);
  ~BrokerLink();
  BrokerLink(const BrokerLink&) = delete;
  BrokerLink& operator=(const BrokerLink&) = delete;

  /// Registers a filter (before or after `start`); subscribed now when up, else at the next
  /// connect. Messages whose topic matches it go to `handler`.
  void subscribe(std::string filter, mqtt::QoS qos, MessageHandler handler);
  void on_state(StateHandler handler) { state_handler_ = std::move(handler); }
  /// Group commit (see the file comment): `begin` before the first message of a batch is
  /// routed, `end` after its last one (it commits and says how that went). Both are called on
  /// the loop's thread, from inside the link's event handling. Set before `start`.
  void set_batching(std::function<void()> begin, std::function<BatchVerdict()> end) {
    batch_begin_ = std::move(begin);
    batch_end_ = std::move(end);
  }
  /// Starts connecting; reconnects until `shutdown`.
  void start();
  /// Publishes (QoS 1/2: topic, payload and properties are copied, into storage the size of
  /// the message, kept until the publish completes or is lost: they need not outlive the call;
  /// any size the broker takes, e.g. an OTA block of 131,072 bytes as base64 JSON).
  /// `user_properties` go out as MQTT 5 user properties (e.g. the plugin's x-edgekit-reply-to
  /// marker of a private reply). A QoS 1/2 publish that finds the broker's Receive Maximum
  /// (Mosquitto: max_inflight_messages, 20 by default) or the session's records used up waits
  /// in the link's queue (at most kMaxQueued) and goes out, in order, as earlier ones complete;
  /// it then returns packet id 0. Queued payloads are wiped once handed to the session (they
  /// may carry private keys), and dropped (wiped) when the link goes down: a request whose
  /// reply was lost is the device's to retry, as with AWS IoT.
  /// A publish that finds the engine's send queue full waits there too, until the loop has
  /// written. Errors: NotConnected while the link is down; SessionStateFull when the queue is
  /// full too; the engine's others.
  [[nodiscard]] mqtt::Result<std::uint16_t> publish(
      std::string_view topic, mqtt::Bytes payload, mqtt::QoS qos,
      std::span<const mqtt::UserProperty> user_properties = {});
  /// Disconnects cleanly (DISCONNECT, then the socket closes) and stops reconnecting; `done` is
  /// called from the loop once the link is closed.
  void shutdown(std::function<void()> done);

  [[nodiscard]] bool up() const noexcept { return up_; }
  /// Successful connects so far (1 after the first; +1 per reconnect).
  [[nodiscard]] std::uint32_t connects() const noexcept { return connects_; }
  /// Publishes waiting in the link's queue (not yet given to the session), and the most there
  /// have been since the link was made.
  [[nodiscard]] std::size_t queued() const noexcept { return queued_.size(); }
  [[nodiscard]] std::size_t peak_queued() const noexcept { return peak_queued_; }
  /// Batches ended so far, and the most messages one of them held.
  [[nodiscard]] std::uint64_t batches() const noexcept { return batches_; }
  [[nodiscard]] std::size_t peak_batch() const noexcept { return peak_batch_; }

 private:
  struct Route {
    std::string filter;
    mqtt::QoS qos;
    MessageHandler handler;
  };
  void on_event(mqtt_asio::Connection& c, const mqtt::Event& e) override;
  void on_closed(mqtt_asio::Connection& c, std::error_code error) override;
  void on_events_done(mqtt_asio::Connection& c) override;
  void route(const Message& m);
  void end_batch();
  void connect_now();
  void schedule_reconnect();
  void subscribe_routes(std::size_t first);
  void set_up(bool up);

  asio::io_context& io_;
  BrokerLinkOptions options_;
  Logger& log_;
  mqtt_asio::Driver driver_;
  asio::steady_timer reconnect_timer_;
  asio::steady_timer drain_timer_;  // drains the publish queue after a full send queue
  backoff::SplitMix64 random_;

  // Session state and buffers (fixed: a message larger than the receive buffer is refused by the
  // broker per Maximum Packet Size; incoming messages are requests. Outgoing payloads are not
  // copied into tx_, see InFlight).
  // 256 records: replies in flight are what carries the reply rate through a busy broker (each
  // waits for its PUBACK behind the requests the broker is sending; 64 capped fleetd near
  // 2,000 replies/s in docs/benchmarks.md). The broker's Receive Maximum may cap it lower.
  static constexpr std::size_t kRecords = 256;
  static constexpr std::size_t kBuffer = 256 * 1024;
  std::array<mqtt::OutgoingRecord, kRecords> records_{};
  std::array<std::uint16_t, 64> incoming_qos2_{};
  std::array<char, 128> client_id_buf_{};
  std::vector<std::byte> rx_;
  std::vector<std::byte> tx_;
  std::unique_ptr<mqtt::Session> session_;
  std::unique_ptr<mqtt_asio::Connection> conn_;

  // The link's copy of each QoS 1/2 publish in flight, by packet id: the session and the send
  // queue hold views of it until PublishCompleted or MessageLost. At most kRecords of them;
  // each the size of its message (a slot per record sized for the largest would hold 45 MB).
  struct InFlight {
    std::string topic;
    std::string payload;
    std::vector<std::string> strings;  // user properties: key, value, key, value, ...
    std::vector<mqtt::UserProperty> properties;
    InFlight() = default;
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    ~InFlight();  // wipes the payload (it may carry a private key)
  };
  std::map<std::uint16_t, std::unique_ptr<InFlight>> in_flight_;
  // Publishes waiting for a free slot of the broker's Receive Maximum (see publish).
  struct Queued {
    std::string topic;
    std::string payload;
    mqtt::QoS qos;
    std::vector<std::string> property_strings;  // key, value, key, value, ...
  };
  static constexpr std::size_t kMaxQueued = 65536;
  std::deque<Queued> queued_;
  std::size_t queued_bytes_ = 0;  // payload bytes in queued_
  mqtt::Result<std::uint16_t> send(std::string_view topic, mqtt::Bytes payload, mqtt::QoS qos,
                                   std::span<const mqtt::UserProperty> user_properties);
  void drain_queue();
  void drain_soon();
  void drop_queue();
  void release_acks();
  bool drain_armed_ = false;
  // Group commit: the batch's messages as copies (for a rerun) and the publishes its handlers
  // made, held until it committed (both in the shape of a queued publish).
  std::function<void()> batch_begin_;
  std::function<BatchVerdict()> batch_end_;
  bool batch_open_ = false;
  std::vector<Queued> batch_messages_;
  std::vector<Queued> held_;
  std::uint64_t batches_ = 0;
  std::size_t peak_batch_ = 0;
  // Backpressure: packet ids of incoming messages whose PUBACK is held, in arrival order.
  std::vector<std::uint16_t> held_acks_;
  std::size_t peak_queued_ = 0;
  std::size_t peak_this_episode_ = 0;
  std::size_t peak_held_ = 0;
  std::chrono::steady_clock::time_point last_release_{};
  std::vector<Route> routes_;
  StateHandler state_handler_;
  std::function<void()> shutdown_done_;
  std::uint32_t attempt_ = 0;
  std::uint32_t connects_ = 0;
  std::uint32_t pending_subscribes_ = 0;
  bool up_ = false;
  bool stopping_ = false;
  bool active_ = false;
  bool was_connected_ = false;
  mqtt::Errc last_error_ = mqtt::Errc::Ok;
  mqtt::ReasonCode last_reason_ = mqtt::ReasonCode::Success;
};

/// Group commit over fleetd's store: `link.set_batching` with Store::begin_batch and end_batch.
/// `store` must outlive the link's use of it (it is used on the link's thread).
void batch_in(BrokerLink& link, Store& store);

}  // namespace edgekit::fleetd
