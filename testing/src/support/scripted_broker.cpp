#include "edgekit/testing/scripted_broker.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace edgekit::testing {

ByteVector encode_packet(const mqtt::Packet& packet, mqtt::Version version) {
  auto size = mqtt::encoded_size(packet, version);
  if (!size) {
    ADD_FAILURE() << "the codec refuses to encode the scripted packet ("
                  << mqtt::to_string(size.error()) << "): " << describe_packet(packet);
    return {};
  }
  ByteVector out(*size);
  auto written = mqtt::encode(packet, version, out);
  if (!written) {
    ADD_FAILURE() << "the codec refuses to encode the scripted packet ("
                  << mqtt::to_string(written.error()) << "): " << describe_packet(packet);
    return {};
  }
  out.resize(*written);
  return out;
}

// --- Step ------------------------------------------------------------------------------------

ScriptedBroker::Step& ScriptedBroker::Step::reply_with(const mqtt::Packet& packet) {
  replies_.push_back(encode_packet(packet, version_));
  return *this;
}

ScriptedBroker::Step& ScriptedBroker::Step::reply_with_bytes(ByteVector bytes) {
  replies_.push_back(std::move(bytes));
  return *this;
}

ScriptedBroker::Step& ScriptedBroker::Step::reply_with(Responder responder) {
  responders_.push_back(std::move(responder));
  return *this;
}

ScriptedBroker::Step& ScriptedBroker::Step::then_close() {
  close_after_ = true;
  return *this;
}

ScriptedBroker::Step& ScriptedBroker::Step::times(std::size_t n) {
  remaining_ = n == 0 ? 1 : n;
  return *this;
}

// --- ScriptedBroker --------------------------------------------------------------------------

ScriptedBroker::ScriptedBroker(MemoryTransport& transport, mqtt::Version version)
    : transport_(transport), version_(version) {
  transport_.on_outbound([this](std::span<const std::byte> bytes) { on_client_bytes(bytes); });
}

ScriptedBroker::~ScriptedBroker() {
  transport_.on_outbound(nullptr);
  if (clock_ != nullptr) transport_.on_wait(nullptr);
  if (!verified_) (void)verify();
}

ScriptedBroker::Step& ScriptedBroker::expect(const mqtt::Packet& packet) {
  auto step = std::make_unique<Step>();
  step->version_ = version_;
  step->kind_ = Step::Kind::Bytes;
  step->expected_ = encode_packet(packet, version_);
  step->description_ = describe_packet(packet);
  steps_.push_back(std::move(step));
  verified_ = false;
  return *steps_.back();
}

ScriptedBroker::Step& ScriptedBroker::expect_bytes(ByteVector bytes) {
  auto step = std::make_unique<Step>();
  step->version_ = version_;
  step->kind_ = Step::Kind::Bytes;
  step->description_ = describe_frame(bytes, version_);
  step->expected_ = std::move(bytes);
  steps_.push_back(std::move(step));
  verified_ = false;
  return *steps_.back();
}

ScriptedBroker::Step& ScriptedBroker::expect(mqtt::PacketType type) {
  auto step = std::make_unique<Step>();
  step->version_ = version_;
  step->kind_ = Step::Kind::Type;
  step->type_ = type;
  step->description_ = std::string("any ") + mqtt::to_string(type);
  steps_.push_back(std::move(step));
  verified_ = false;
  return *steps_.back();
}

ScriptedBroker::Step& ScriptedBroker::expect_matching(
    std::string description, std::function<bool(const mqtt::Packet&)> predicate) {
  auto step = std::make_unique<Step>();
  step->version_ = version_;
  step->kind_ = Step::Kind::Predicate;
  step->predicate_ = std::move(predicate);
  step->description_ = std::move(description);
  steps_.push_back(std::move(step));
  verified_ = false;
  return *steps_.back();
}

void ScriptedBroker::send(const mqtt::Packet& packet) {
  ByteVector bytes = encode_packet(packet, version_);
  transport_.push_inbound(bytes);
}

void ScriptedBroker::send_bytes(std::span<const std::byte> bytes) {
  transport_.push_inbound(bytes);
}

void ScriptedBroker::close() {
  transport_.close_inbound();
}

void ScriptedBroker::attach_clock(ManualClock& clock) {
  clock_ = &clock;
  transport_.on_wait(
      [this](transport::Interest, std::uint32_t timeout_ms) { on_client_wait(timeout_ms); });
}

void ScriptedBroker::send_at(Instant when, const mqtt::Packet& packet) {
  if (clock_ == nullptr) {
    ADD_FAILURE() << "scripted broker: send_at/send_after need attach_clock()";
    return;
  }
  scheduled_.push_back(Scheduled{when, encode_packet(packet, version_)});
  std::stable_sort(scheduled_.begin(), scheduled_.end(),
                   [](const Scheduled& a, const Scheduled& b) { return a.when < b.when; });
}

void ScriptedBroker::send_after(Duration delay, const mqtt::Packet& packet) {
  if (clock_ == nullptr) {
    ADD_FAILURE() << "scripted broker: send_at/send_after need attach_clock()";
    return;
  }
  send_at(clock_->now() + delay, packet);
}

void ScriptedBroker::on_client_wait(std::uint32_t timeout_ms) {
  if (clock_ == nullptr || scheduled_.empty()) return;
  // Something already queued: the wait returns at once, time does not move.
  if (transport_.inbound_pending() > 0) return;
  const Instant now = clock_->now();
  const Instant first_due = scheduled_.front().when;
  if (first_due > now + Duration{timeout_ms}) return;  // the wait times out first
  clock_->set(first_due);
  // Everything due at that moment goes out together.
  auto it = scheduled_.begin();
  while (it != scheduled_.end() && it->when <= first_due) {
    transport_.push_inbound(it->bytes);
    ++it;
  }
  scheduled_.erase(scheduled_.begin(), it);
}

void ScriptedBroker::auto_reply_to_pings(bool on) {
  auto_ping_ = on;
}

void ScriptedBroker::set_version(mqtt::Version version) {
  version_ = version;
}

bool ScriptedBroker::done() const {
  return next_step_ >= steps_.size();
}

bool ScriptedBroker::verify() {
  verified_ = true;
  for (std::size_t i = next_step_; i < steps_.size(); ++i) {
    ADD_FAILURE() << "scripted broker: expectation " << (i + 1) << " of " << steps_.size()
                  << " was never met; expected " << steps_[i]->description_;
  }
  return done();
}

void ScriptedBroker::on_client_bytes(std::span<const std::byte> bytes) {
  pending_.insert(pending_.end(), bytes.begin(), bytes.end());
  while (!pending_.empty()) {
    auto frame = mqtt::read_frame(pending_);
    if (!frame) {
      ++mismatches_;
      ADD_FAILURE() << "scripted broker: the client sent bytes that are not an MQTT packet ("
                    << mqtt::to_string(frame.error()) << "): " << hex(pending_);
      pending_.clear();
      return;
    }
    if (!frame->complete) return;
    auto size = static_cast<std::ptrdiff_t>(frame->header.packet_size());
    ByteVector one(pending_.begin(), pending_.begin() + size);
    pending_.erase(pending_.begin(), pending_.begin() + size);
    handle_frame(one);
  }
}

void ScriptedBroker::handle_frame(const ByteVector& frame) {
  received_.push_back(frame);
  const auto type = static_cast<mqtt::PacketType>(static_cast<unsigned>(frame[0]) >> 4);
  Step* step = next_step_ < steps_.size() ? steps_[next_step_].get() : nullptr;

  if (auto_ping_ && type == mqtt::PacketType::PingReq &&
      (step == nullptr || step->kind_ != Step::Kind::Type || step->type_ != type)) {
    send(mqtt::PingResp{});
    return;
  }
  if (step == nullptr) {
    ++mismatches_;
    ADD_FAILURE() << "scripted broker: the client sent a packet after the script ended:\n  "
                  << describe_frame(frame, version_);
    return;
  }

  auto decoded = mqtt::decode(frame, version_);
  bool matched = false;
  switch (step->kind_) {
    case Step::Kind::Bytes:
      matched = frame == step->expected_;
      break;
    case Step::Kind::Type:
      matched = decoded.has_value() && type == step->type_;
      break;
    case Step::Kind::Predicate:
      matched = decoded.has_value() && step->predicate_(*decoded);
      break;
  }
  if (!matched) {
    ++mismatches_;
    Fields actual = frame_fields(frame, version_);
    std::string diff;
    if (step->kind_ == Step::Kind::Bytes) {
      Fields expected = frame_fields(step->expected_, step->version_);
      diff = diff_fields(expected, actual);
      if (diff.empty()) {
        diff = "    (same fields, different bytes)\n    expected: " + hex(step->expected_) +
               "\n    got:      " + hex(frame) + "\n";
      }
    }
    ADD_FAILURE() << "scripted broker: expectation " << (next_step_ + 1) << " of " << steps_.size()
                  << " not met.\n  expected: " << step->description_
                  << "\n  got:      " << format_fields(actual)
                  << (diff.empty() ? "" : "\n  differences:\n" + diff);
    return;
  }

  for (const ByteVector& reply : step->replies_) transport_.push_inbound(reply);
  for (const Responder& responder : step->responders_) {
    if (!decoded) {
      ADD_FAILURE() << "scripted broker: cannot run a responder on an undecodable packet ("
                    << mqtt::to_string(decoded.error()) << ")";
      break;
    }
    for (const mqtt::Packet& p : responder(*decoded)) send(p);
  }
  if (step->close_after_) transport_.close_inbound();
  if (--step->remaining_ == 0) ++next_step_;
}

}  // namespace edgekit::testing
