#include "broker_link.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <random>

#include "edgekit/mqtt/codec.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd {
namespace {
// The engine's answers that mean "no room now": a completion frees the window and the records,
// a write frees the send queue.
bool no_room(mqtt::Errc e) {
  return e == mqtt::Errc::ReceiveMaximumExceeded || e == mqtt::Errc::SessionStateFull ||
         e == mqtt::Errc::SendQueueFull;
}

void wipe(std::string& s) {
  OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

// A copy of a message or publish with its user properties (key, value, key, value, ...).
std::vector<std::string> property_strings(std::span<const mqtt::UserProperty> properties) {
  std::vector<std::string> out;
  out.reserve(2 * properties.size());
  for (const auto& up : properties) {
    out.emplace_back(up.key);
    out.emplace_back(up.value);
  }
  return out;
}

std::vector<mqtt::UserProperty> properties_of(const std::vector<std::string>& strings) {
  std::vector<mqtt::UserProperty> props;
  for (std::size_t i = 0; i + 1 < strings.size(); i += 2) props.push_back({strings[i], strings[i + 1]});
  return props;
}
}  // namespace

BrokerLink::InFlight::~InFlight() { wipe(payload); }

BrokerLink::BrokerLink(asio::io_context& io, BrokerLinkOptions options, Logger& log)
    : io_(io),
      options_(std::move(options)),
      log_(log),
      driver_(io),
      reconnect_timer_(io),
      drain_timer_(io),
      random_(std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32)),
      rx_(kBuffer),
      tx_(kBuffer) {
  mqtt::SessionStorage s;
  s.outgoing = records_;
  s.incoming_qos2 = incoming_qos2_;
  s.client_id = client_id_buf_;
  // No SessionStorage::message_copies: its slots are one size for every record, and the
  // largest message (an OTA block of 131,072 bytes as base64 JSON, ~175 KB) in each of 256
  // records would be 45 MB held for good. The link keeps each message in flight itself
  // (InFlight, sized to the message), so the session never sees a buffer of the caller's.
  session_ = std::make_unique<mqtt::Session>(s);
  conn_ = std::make_unique<mqtt_asio::Connection>(driver_, *session_, rx_, tx_,
                                                  static_cast<mqtt_asio::Handler&>(*this));
}

BrokerLink::~BrokerLink() {
  if (batch_open_) end_batch();  // never open between turns of the loop; for certainty
  // The Connection must be idle or its io_context stopped for good (see mqtt_asio): fleetd
  // destroys the link after shutdown() completed or after the loop ended.
  reconnect_timer_.cancel();
  drain_timer_.cancel();
}

void BrokerLink::subscribe(std::string filter, mqtt::QoS qos, MessageHandler handler) {
  routes_.push_back(Route{std::move(filter), qos, std::move(handler)});
  if (up_) subscribe_routes(routes_.size() - 1);
}

void BrokerLink::start() {
  stopping_ = false;
  connect_now();
}

void BrokerLink::connect_now() {
  if (stopping_ || active_) return;
  mqtt::ConnectOptions o;
  o.version = mqtt::Version::V5;
  o.client_id = options_.client_id;
  o.clean_start = true;
  o.keep_alive_seconds = options_.keep_alive_seconds;
  o.properties.set_receive_maximum(options_.receive_maximum);
  if (!options_.username.empty()) {
    o.username = options_.username;
    o.password = mqtt::as_bytes(options_.password);
  }
  asio::error_code ec;
  auto address = asio::ip::make_address(options_.host, ec);
  if (ec) {
    log_.error("broker.bad_address", {{"host", options_.host}, {"error", ec.message()}});
    schedule_reconnect();
    return;
  }
  mqtt_asio::Endpoint where(asio::ip::tcp::endpoint(address, options_.port));
  auto r = conn_->start(where, o, options_.connect_timeout);
  if (!r) {
    log_.error("broker.connect_refused_locally", {{"error", mqtt::to_string(r.error())}});
    schedule_reconnect();
    return;
  }
  active_ = true;
  log_.debug("broker.connecting", {{"host", options_.host}, {"port", options_.port}});
}

void BrokerLink::schedule_reconnect() {
  if (stopping_) return;
  Duration wait = backoff::full_jitter(options_.reconnect, attempt_, random_.next_u32());
  ++attempt_;
  log_.debug("broker.reconnect_scheduled",
            {{"in_ms", static_cast<std::int64_t>(wait.count())}, {"attempt", attempt_}});
  reconnect_timer_.expires_after(std::chrono::milliseconds(wait.count()));
  reconnect_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) connect_now();
  });
}

void BrokerLink::subscribe_routes(std::size_t first) {
  // One SUBSCRIBE per batch of filters (Mosquitto takes many per packet; AWS IoT takes 8, and
  // the same code may face a clustered broker later).
  constexpr std::size_t kBatch = 8;
  for (std::size_t i = first; i < routes_.size(); i += kBatch) {
    std::vector<mqtt::Subscription> subs;
    for (std::size_t k = i; k < routes_.size() && k < i + kBatch; ++k) {
      subs.push_back(mqtt::Subscription{routes_[k].filter, mqtt::SubscribeOptions{routes_[k].qos}});
    }
    if (auto r = conn_->subscribe(subs); !r) {
      // The link cannot carry what the services need: drop it and start again rather than run
      // half-subscribed.
      log_.error("broker.subscribe_failed", {{"error", mqtt::to_string(r.error())}});
      conn_->stop();
      return;
    }
    ++pending_subscribes_;
  }
}

void BrokerLink::set_up(bool up) {
  if (up_ == up) return;
  up_ = up;
  if (state_handler_) state_handler_(up);
}

void BrokerLink::on_event(mqtt_asio::Connection&, const mqtt::Event& e) {
  switch (e.type) {
    case mqtt::EventType::Connected:
      attempt_ = 0;
      was_connected_ = true;
      ++connects_;
      log_.info("broker.connected", {{"host", options_.host},
                                     {"port", options_.port},
                                     {"connects", connects_},
                                     {"filters", static_cast<std::int64_t>(routes_.size())}});
      if (routes_.empty()) {
        set_up(true);
      } else {
        subscribe_routes(0);
      }
      break;
    case mqtt::EventType::SubscribeCompleted: {
      bool refused = e.error != mqtt::Errc::Ok;
      for (auto rc : e.reason_codes) {
        if (static_cast<std::uint8_t>(rc) >= 0x80) refused = true;
      }
      if (refused) {
        log_.error("broker.subscription_refused", {{"error", mqtt::to_string(e.error)}});
        conn_->stop();
        break;
      }
      if (pending_subscribes_ > 0) --pending_subscribes_;
      if (pending_subscribes_ == 0) {
        log_.info("broker.subscribed", {{"filters", static_cast<std::int64_t>(routes_.size())}});
        set_up(true);
      }
      break;
    }
    case mqtt::EventType::MessageReceived: {
      const mqtt::Publish& p = *e.message;
      if (batch_end_ && options_.max_batch > 1 && !batch_open_) {
        batch_begin_();
        batch_open_ = true;
      }
      if (batch_open_) {
        std::vector<mqtt::UserProperty> props;
        for (auto up : p.properties.user_properties) props.push_back(up);
        batch_messages_.push_back(Queued{std::string(p.topic), std::string(mqtt::as_string(p.payload)),
                                         p.qos, property_strings(props)});
      }
      route(Message{p.topic, p.payload, &p});
      // Once one ack is held, every later one is too: PUBACKs leave in the order their
      // messages came [MQTT-4.6.0-2].
      if (!held_acks_.empty() || queued_.size() > options_.max_queued ||
          queued_bytes_ > options_.max_queued_bytes) {
        if (std::uint16_t id = conn_->engine().hold_ack(); id != 0) {
          if (held_acks_.empty()) {
            peak_this_episode_ = queued_.size();
            peak_held_ = 0;
            log_.warn("broker.backpressure_on",
                      {{"queued", static_cast<std::int64_t>(queued_.size())},
                       {"queued_bytes", static_cast<std::int64_t>(queued_bytes_)},
                       {"max_queued", static_cast<std::int64_t>(options_.max_queued)}});
          }
          held_acks_.push_back(id);
          peak_held_ = std::max(peak_held_, held_acks_.size());
        }
      }
      if (batch_open_ && batch_messages_.size() >= options_.max_batch) end_batch();
      break;
    }
    case mqtt::EventType::PublishCompleted:
      in_flight_.erase(e.packet_id);
      drain_queue();
      break;
    case mqtt::EventType::MessageLost:
      // Logged before the copy goes: the event's topic is a view of it.
      log_.warn("broker.message_lost", {{"topic", e.message ? e.message->topic : std::string_view()},
                                        {"error", mqtt::to_string(e.error)}});
      in_flight_.erase(e.packet_id);
      drain_queue();
      break;
    case mqtt::EventType::ConnectFailed:
    case mqtt::EventType::ConnectionClosed:
    case mqtt::EventType::ServerDisconnected:
      // Logged once, with the transport's side, when the socket is closed (on_closed).
      last_error_ = e.error;
      last_reason_ = e.reason_code;
      break;
    default:
      break;
  }
}

void BrokerLink::route(const Message& m) {
  bool routed = false;
  for (const Route& r : routes_) {
    if (mqtt::topic_matches(r.filter, m.topic)) {
      r.handler(m);
      routed = true;
    }
  }
  if (!routed) log_.warn("broker.unrouted_message", {{"topic", m.topic}});
}

void BrokerLink::on_events_done(mqtt_asio::Connection&) {
  // The last message of this read was handled; what it queued (acks, replies) is written next.
  if (batch_open_) end_batch();
}

void BrokerLink::end_batch() {
  batch_open_ = false;
  const BatchVerdict verdict = batch_end_();
  std::vector<Queued> held;
  held.swap(held_);
  std::vector<Queued> messages;
  messages.swap(batch_messages_);
  // The copies go with this call, wiped (a claim request carries its ownership token).
  struct Wiped {
    std::vector<Queued>& v;
    ~Wiped() {
      for (Queued& q : v) wipe(q.payload);
    }
  } wiped{messages};
  ++batches_;
  peak_batch_ = std::max(peak_batch_, messages.size());
  const auto count = [](const std::vector<Queued>& v) { return static_cast<std::int64_t>(v.size()); };
  switch (verdict.outcome) {
    case BatchVerdict::Outcome::Committed:
      for (Queued& q : held) {
        const auto props = properties_of(q.property_strings);
        if (auto r = publish(q.topic, mqtt::as_bytes(q.payload), q.qos, props); !r) {
          log_.warn("broker.held_publish_failed",
                    {{"topic", q.topic}, {"error", mqtt::to_string(r.error())}});
        }
        wipe(q.payload);
      }
      return;
    case BatchVerdict::Outcome::Rerun:
      log_.warn("broker.batch_rerun", {{"messages", count(messages)},
                                       {"publishes_dropped", count(held)},
                                       {"error", verdict.error}});
      for (Queued& q : held) wipe(q.payload);
      // Outside a batch now: each message's handler runs its own transactions and publishes
      // directly, as without group commit.
      for (const Queued& q : messages) {
        const auto props = properties_of(q.property_strings);
        mqtt::Publish p;
        p.topic = q.topic;
        p.payload = mqtt::as_bytes(q.payload);
        p.qos = q.qos;
        p.properties.user_properties = mqtt::UserProperties(std::span<const mqtt::UserProperty>(props));
        route(Message{p.topic, p.payload, &p});
      }
      return;
    case BatchVerdict::Outcome::Lost:
      log_.error("broker.batch_lost", {{"messages", count(messages)},
                                       {"publishes_dropped", count(held)},
                                       {"error", verdict.error}});
      for (Queued& q : held) wipe(q.payload);
      return;
  }
}

void BrokerLink::on_closed(mqtt_asio::Connection&, std::error_code error) {
  if (batch_open_) end_batch();  // on_events_done ends it first; for certainty
  active_ = false;
  pending_subscribes_ = 0;
  held_acks_.clear();  // void with the connection (a clean start: the broker forgets them too)
  drop_queue();
  set_up(false);
  if (stopping_) {
    log_.info("broker.closed");
    if (auto done = std::move(shutdown_done_)) done();
    return;
  }
  // One line per failed attempt or lost link, with both sides of the story: what MQTT saw (a
  // CONNACK refusal, a DISCONNECT reason, a transport failure) and what the socket reported.
  const std::string transport = error ? error.message() : std::string("closed");
  const std::int64_t reason = static_cast<std::int64_t>(last_reason_);
  if (was_connected_) {
    log_.warn("broker.link_down",
              {{"error", mqtt::to_string(last_error_)}, {"reason", reason}, {"transport", transport}});
  } else {
    log_.warn("broker.connect_failed", {{"error", mqtt::to_string(last_error_)},
                                        {"reason", reason},
                                        {"transport", transport},
                                        {"attempt", attempt_ + 1}});
  }
  was_connected_ = false;
  last_error_ = mqtt::Errc::Ok;
  last_reason_ = mqtt::ReasonCode::Success;
  schedule_reconnect();
}

mqtt::Result<std::uint16_t> BrokerLink::publish(std::string_view topic, mqtt::Bytes payload,
                                                 mqtt::QoS qos,
                                                 std::span<const mqtt::UserProperty> user_properties) {
  if (!up_) return edgekit::fail(mqtt::Errc::NotConnected);
  if (batch_open_) {
    // Group commit: not before the batch's transaction is durable (end_batch hands it on).
    held_.push_back(Queued{std::string(topic), std::string(mqtt::as_string(payload)), qos,
                           property_strings(user_properties)});
    return std::uint16_t{0};
  }
  // Behind a queue nothing overtakes it: replies leave in the order they were made.
  if (queued_.empty()) {
    auto id = send(topic, payload, qos, user_properties);
    if (id || !no_room(id.error())) return id;
    if (id.error() == mqtt::Errc::SendQueueFull) drain_soon();
  }
  if (queued_.size() >= kMaxQueued) return edgekit::fail(mqtt::Errc::SessionStateFull);
  Queued q{std::string(topic), std::string(mqtt::as_string(payload)), qos,
           property_strings(user_properties)};
  queued_bytes_ += q.payload.size();
  queued_.push_back(std::move(q));
  peak_queued_ = std::max(peak_queued_, queued_.size());
  peak_this_episode_ = std::max(peak_this_episode_, queued_.size());
  return std::uint16_t{0};
}

void BrokerLink::drain_queue() {
  // Not while the connection closes (its lost publishes also come as events): on_closed drops
  // what is left, with one log line.
  release_acks();
  while (!queued_.empty() && up_ && conn_->engine().connected()) {
    Queued& q = queued_.front();
    const auto props = properties_of(q.property_strings);
    auto id = send(q.topic, mqtt::as_bytes(q.payload), q.qos, props);
    if (!id && no_room(id.error())) {
      // A completion drains on; a full send queue has no event of its own: try again once the
      // loop has written it.
      if (id.error() == mqtt::Errc::SendQueueFull) drain_soon();
      return;
    }
    if (!id) {
      log_.warn("broker.queued_publish_failed",
                {{"topic", q.topic}, {"error", mqtt::to_string(id.error())}});
    }
    queued_bytes_ -= q.payload.size();
    wipe(q.payload);
    queued_.pop_front();
  }
  release_acks();
}

void BrokerLink::release_acks() {
  if (held_acks_.empty() || queued_.size() > options_.max_queued / 2 ||
      queued_bytes_ > options_.max_queued_bytes / 2) {
    return;
  }
  if (!conn_->engine().connected()) return;  // on_closed forgets them
  // A few at a time, at most one step per millisecond (not at every completion: the messages an
  // ack lets through arrive a broker round trip later), the queue checked again before each: an
  // ack lets the broker send more (Mosquitto 2.0.11 up to Receive Maximum more per ack of its
  // oldest message in flight, see the header), each of which may bring three replies.
  const auto now = std::chrono::steady_clock::now();
  if (now - last_release_ < std::chrono::milliseconds(1)) {
    drain_soon();
    return;
  }
  last_release_ = now;
  const std::size_t per_ack = 3 * std::size_t{std::max<std::uint16_t>(options_.receive_maximum, 1)};
  const std::size_t budget =
      std::max<std::size_t>(1, (options_.max_queued - queued_.size()) / per_ack);
  std::size_t sent = 0;
  for (; sent < held_acks_.size() && sent < budget; ++sent) {
    if (auto r = conn_->engine().ack(held_acks_[sent]); !r) {
      // A full send queue: the rest once the loop has written.
      drain_soon();
      break;
    }
  }
  held_acks_.erase(held_acks_.begin(), held_acks_.begin() + static_cast<std::ptrdiff_t>(sent));
  conn_->flush();
  if (!held_acks_.empty()) {
    // The rest at the next completion, or after a moment when none is coming (messages that
    // make no reply).
    drain_soon();
    return;
  }
  log_.info("broker.backpressure_off", {{"queued", static_cast<std::int64_t>(queued_.size())},
                                        {"peak_queued", static_cast<std::int64_t>(peak_this_episode_)},
                                        {"peak_held", static_cast<std::int64_t>(peak_held_)}});
}

void BrokerLink::drain_soon() {
  if (drain_armed_) return;
  drain_armed_ = true;
  drain_timer_.expires_after(std::chrono::milliseconds(1));
  drain_timer_.async_wait([this](const asio::error_code& ec) {
    drain_armed_ = false;
    if (!ec) drain_queue();
  });
}

void BrokerLink::drop_queue() {
  if (queued_.empty()) return;
  log_.warn("broker.queued_publishes_dropped", {{"count", static_cast<std::int64_t>(queued_.size())}});
  for (Queued& q : queued_) wipe(q.payload);
  queued_.clear();
  queued_bytes_ = 0;
}

mqtt::Result<std::uint16_t> BrokerLink::send(std::string_view topic, mqtt::Bytes payload,
                                              mqtt::QoS qos,
                                              std::span<const mqtt::UserProperty> user_properties) {
  mqtt::Publish p;
  p.qos = qos;
  if (qos == mqtt::QoS::AtMostOnce) {
    // No record, no copy (as before): fleetd's services all publish at QoS 1.
    p.topic = topic;
    p.payload = payload;
    p.properties.user_properties = mqtt::UserProperties(user_properties);
    return conn_->publish(p);
  }
  // The session keeps views of topic, payload and property strings until the publish completes
  // or is lost: the link's own copy, sized to the message, lives that long.
  auto copy = std::make_unique<InFlight>();
  copy->topic.assign(topic);
  copy->payload.assign(mqtt::as_string(payload));
  copy->strings.reserve(2 * user_properties.size());
  for (const auto& up : user_properties) {
    copy->strings.emplace_back(up.key);
    copy->strings.emplace_back(up.value);
  }
  for (std::size_t i = 0; i < user_properties.size(); ++i) {
    copy->properties.push_back({copy->strings[2 * i], copy->strings[2 * i + 1]});
  }
  p.topic = copy->topic;
  p.payload = mqtt::as_bytes(copy->payload);
  if (!copy->properties.empty()) {
    p.properties.user_properties =
        mqtt::UserProperties(std::span<const mqtt::UserProperty>(copy->properties));
  }
  auto id = conn_->publish(p);
  if (id) in_flight_[id.value()] = std::move(copy);
  return id;
}

void BrokerLink::shutdown(std::function<void()> done) {
  stopping_ = true;
  reconnect_timer_.cancel();
  if (!active_) {
    asio::post(io_, std::move(done));
    return;
  }
  shutdown_done_ = std::move(done);
  if (conn_->engine().connected()) {
    if (auto r = conn_->disconnect(); r) return;
  }
  conn_->stop();
}

void batch_in(BrokerLink& link, Store& store) {
  link.set_batching([&store] { store.begin_batch(); },
                    [&store] {
                      const Store::BatchEnd end = store.end_batch();
                      BatchVerdict v;
                      v.error = end.error.message;
                      switch (end.outcome) {
                        case Store::BatchOutcome::Committed:
                          v.outcome = BatchVerdict::Outcome::Committed;
                          break;
                        case Store::BatchOutcome::Rerun:
                          v.outcome = BatchVerdict::Outcome::Rerun;
                          break;
                        case Store::BatchOutcome::Lost:
                          v.outcome = BatchVerdict::Outcome::Lost;
                          break;
                      }
                      return v;
                    });
}

}  // namespace edgekit::fleetd
