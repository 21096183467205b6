#pragma once
// The in-memory broker of the MQTT device programs (size_main.cpp, lite_size_main.cpp): it
// answers each packet the client writes, so that only the MQTT code (and no TCP/IP stack) ends up
// in the image. Outside namespace edgekit on purpose: scripts/size-report counts code named
// edgekit:: in a program as the library's ("headers"), and this is the program's.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>

#include "edgekit/mqtt/codec.hpp"
#include "edgekit/transport/transport.hpp"

namespace size_program {

using edgekit::mqtt::Bytes;
using edgekit::mqtt::PacketType;
using edgekit::mqtt::Version;
using edgekit::mqtt::read_frame;
using edgekit::transport::ConstBuffer;
using edgekit::transport::Interest;
using edgekit::transport::IoResult;
using edgekit::transport::IoStatus;
using edgekit::transport::WaitStatus;

// Answers CONNECT, SUBSCRIBE, PUBLISH (QoS 1), UNSUBSCRIBE and PINGREQ as a broker would, and
// sends one QoS 1 PUBLISH to the client after the SUBACK.
class LoopbackBroker final : public edgekit::transport::Transport {
 public:
  void set_version(Version v) {
    v5_ = v == Version::V5;
    out_len_ = out_pos_ = in_len_ = 0;
    closed_ = false;
  }

  IoResult send(ConstBuffer data) noexcept override {
    if (closed_) return {IoStatus::Closed, 0, 0};
    const std::size_t n = data.size() < in_.size() - in_len_ ? data.size() : in_.size() - in_len_;
    std::memcpy(in_.data() + in_len_, data.data(), n);
    in_len_ += n;
    answer();
    return {IoStatus::Ok, n, 0};
  }

  IoResult recv(std::span<std::byte> buffer) noexcept override {
    if (out_pos_ == out_len_) return {closed_ ? IoStatus::Closed : IoStatus::WouldBlock, 0, 0};
    std::size_t n = out_len_ - out_pos_;
    if (n > buffer.size()) n = buffer.size();
    std::memcpy(buffer.data(), out_.data() + out_pos_, n);
    out_pos_ += n;
    if (out_pos_ == out_len_) out_pos_ = out_len_ = 0;
    return {IoStatus::Ok, n, 0};
  }

  WaitStatus wait(Interest interest, std::uint32_t) noexcept override {
    if (interest != Interest::Read || out_pos_ != out_len_ || closed_) return WaitStatus::Ready;
    return WaitStatus::Timeout;
  }

  void close() noexcept override { closed_ = true; }

 private:
  void put(std::initializer_list<std::uint8_t> bytes) {
    for (std::uint8_t b : bytes) out_[out_len_++] = static_cast<std::byte>(b);
  }

  // Handles every complete packet the client has written so far.
  void answer() {
    for (;;) {
      auto f = read_frame(Bytes(in_.data(), in_len_));
      if (!f || !f->complete) return;
      const auto* p = reinterpret_cast<const std::uint8_t*>(in_.data()) + f->header.header_size;
      const std::uint8_t hi = p[0];
      const std::uint8_t lo = p[1];
      switch (f->header.type) {
        case PacketType::Connect:
          if (v5_) put({0x20, 0x03, 0x00, 0x00, 0x00});
          else put({0x20, 0x02, 0x00, 0x00});
          break;
        case PacketType::Subscribe:
          if (v5_) put({0x90, 0x04, hi, lo, 0x00, 0x01});
          else put({0x90, 0x03, hi, lo, 0x01});
          // A QoS 1 message on the new subscription, id 0x0101, payload "hi".
          if (v5_) put({0x32, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01, 0x01, 0x00, 'h', 'i'});
          else put({0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x01, 0x01, 'h', 'i'});
          break;
        case PacketType::Publish:
          if ((f->header.flags & 0x06) != 0) {
            // Topic length, topic, then the packet id.
            const std::size_t t = (std::size_t{p[0]} << 8) | p[1];
            put({0x40, 0x02, p[2 + t], p[3 + t]});
          }
          break;
        case PacketType::Unsubscribe:
          if (v5_) put({0xB0, 0x04, hi, lo, 0x00, 0x00});
          else put({0xB0, 0x02, hi, lo});
          break;
        case PacketType::PingReq: put({0xD0, 0x00}); break;
        default: break;
      }
      const std::size_t used = f->header.packet_size();
      std::memmove(in_.data(), in_.data() + used, in_len_ - used);
      in_len_ -= used;
    }
  }

  std::array<std::byte, 256> in_{};
  std::size_t in_len_ = 0;
  std::array<std::byte, 256> out_{};
  std::size_t out_len_ = 0;
  std::size_t out_pos_ = 0;
  bool v5_ = true;
  bool closed_ = false;
};

}  // namespace size_program
