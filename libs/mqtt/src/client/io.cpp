// The client's I/O: the write path (one writev per packet, partial writes retried while the
// transport is writable, within the caller's deadline) and the read path (one recv into the free
// part of the receive buffer, then every complete frame it holds is dispatched).
#include <algorithm>
#include <array>
#include <cstring>

#include "client_internal.hpp"

namespace edgekit::mqtt {

std::uint32_t detail::milliseconds_until(Instant now, Instant deadline) noexcept {
  if (deadline <= now) return 0;
  const auto ms = (deadline - now).count();
  constexpr std::int64_t kMax = 0x7fff'ffff;
  return static_cast<std::uint32_t>(std::min<std::int64_t>(ms, kMax));
}

Instant detail::deadline_after(Instant now, Duration timeout) noexcept {
  if (timeout <= Duration::zero()) return now;
  // timeout > 0, so only a positive overflow is possible: saturate it.
  Duration::rep sum = 0;
  if (__builtin_add_overflow(now.since_origin.count(), timeout.count(), &sum)) {
    return Instant{Duration::max()};
  }
  return Instant{Duration(sum)};
}

// --- Write path ----------------------------------------------------------------------------------

Result<void> Client::send_all(std::span<const transport::ConstBuffer> parts, Instant deadline,
                              bool fatal_on_timeout) noexcept {
  // A packet goes out in at most a few parts (queued acks, header, payload); copy the views so
  // that a partial write can advance them.
  std::array<transport::ConstBuffer, 4> pending{};
  std::size_t count = 0;
  for (auto p : parts) {
    if (p.empty()) continue;
    if (count == pending.size()) return fail(Errc::InvalidArgument);
    pending[count++] = p;
  }
  std::size_t first = 0;
  std::size_t sent = 0;
  while (first < count) {
    const auto r = transport_->writev(
        std::span<const transport::ConstBuffer>(pending.data() + first, count - first));
    switch (r.status) {
      case transport::IoStatus::Ok: {
        sent += r.bytes;
        std::size_t n = r.bytes;
        while (first < count && n >= pending[first].size()) {
          n -= pending[first].size();
          ++first;
        }
        if (first < count && n > 0) pending[first] = pending[first].subspan(n);
        break;
      }
      case transport::IoStatus::WouldBlock: {
        const Instant now = clock_.now();
        if (now >= deadline) {
          // Nothing on the wire yet: the stream is intact and the caller may retry. Part of a
          // packet written: the stream is cut mid-packet and cannot carry anything else.
          if (sent == 0 && !fatal_on_timeout) return fail(Errc::Timeout);
          return fail(fail_connection(Errc::Timeout, std::nullopt));
        }
        if (transport_->wait(transport::Interest::Write,
                             detail::milliseconds_until(now, deadline)) ==
            transport::WaitStatus::Error) {
          return fail(fail_connection(Errc::TransportError, std::nullopt));
        }
        break;
      }
      case transport::IoStatus::Closed:
        return fail(fail_connection(Errc::TransportClosed, std::nullopt));
      case transport::IoStatus::Error:
        return fail(fail_connection(Errc::TransportError, std::nullopt));
    }
  }
  note_packet_sent();
  return {};
}

Result<void> Client::send_tx(std::size_t offset, std::size_t size, Instant deadline,
                             bool fatal_on_timeout) noexcept {
  const transport::ConstBuffer part(tx_.data() + offset, size);
  return send_all(std::span<const transport::ConstBuffer>(&part, 1), deadline, fatal_on_timeout);
}

void Client::note_packet_sent() noexcept {
  // Any control packet restarts the keep-alive interval (spec 3.1.2.10).
  session_.on_sent(clock_.now());
}

Result<void> Client::flush_acks(Instant deadline) noexcept {
  if (tx_acks_ == 0) return {};
  const std::size_t n = tx_acks_;
  tx_acks_ = 0;
  return send_tx(0, n, deadline, true);
}

// Encodes `packet` behind the queued acks; when they leave no room, sends them first.
Result<std::size_t> Client::encode_after_acks(Outgoing packet, Instant deadline) noexcept {
  auto n = packet.encode(packet.packet, version_, tx_.subspan(tx_acks_));
  if (!n && n.error() == Errc::BufferTooSmall && tx_acks_ > 0) {
    EDGEKIT_TRY(flush_acks(deadline));
    n = packet.encode(packet.packet, version_, tx_);
  }
  return n;
}

Result<void> Client::queue_packet(Outgoing packet, Instant deadline) noexcept {
  const auto n = encode_after_acks(packet, deadline);
  if (!n) return fail(n.error());
  tx_acks_ += *n;
  return {};
}

Result<void> Client::send_packet(Outgoing packet, Instant deadline,
                                 bool fatal_on_timeout) noexcept {
  // Acks still queued go first, in the same write: the order on the wire is the order of events.
  const auto n = encode_after_acks(packet, deadline);
  if (!n) return fail(n.error());
  const std::size_t total = tx_acks_ + *n;
  const std::size_t acks = tx_acks_;
  auto r = send_tx(0, total, deadline, fatal_on_timeout);
  // Only a non-fatal timeout (nothing written) keeps the queued acks for the next write.
  tx_acks_ = (!r && connected_or_connecting()) ? acks : 0;
  return r;
}

Result<void> Client::send_publish(const Publish& publish, Instant deadline,
                                  bool fatal_on_timeout) noexcept {
  auto h = encode_publish_header(publish, version_, tx_.subspan(tx_acks_));
  if (!h && h.error() == Errc::BufferTooSmall && tx_acks_ > 0) {
    EDGEKIT_TRY(flush_acks(deadline));
    h = encode_publish_header(publish, version_, tx_);
  }
  if (!h) return fail(h.error());
  // One writev: queued acks and the header from the send buffer, the payload from the caller's
  // memory, never copied.
  const std::array<transport::ConstBuffer, 2> parts{
      transport::ConstBuffer(tx_.data(), tx_acks_ + *h), publish.payload};
  const std::size_t acks = tx_acks_;
  auto r = send_all(parts, deadline, fatal_on_timeout);
  tx_acks_ = (!r && connected_or_connecting()) ? acks : 0;
  return r;
}

void Client::best_effort_disconnect(ReasonCode reason) noexcept {
  // The connection is being abandoned (fail_connection has marked it closed, so a failure here
  // does not re-enter it): one short attempt to tell the server why, without touching the
  // queued acks. DISCONNECT with a reason code and no properties (spec 3.14): 3 bytes.
  const std::array<std::byte, 3> bytes{std::byte{0xE0}, std::byte{0x01},
                                       static_cast<std::byte>(reason)};
  const transport::ConstBuffer part(bytes.data(), bytes.size());
  (void)send_all(std::span<const transport::ConstBuffer>(&part, 1), clock_.now() + Duration{100},
                 true);
}

// --- Read path -----------------------------------------------------------------------------------

void Client::compact_rx() noexcept {
  if (rx_pos_ == 0) return;
  const std::size_t rest = rx_len_ - rx_pos_;
  if (rest > 0) std::memmove(rx_.data(), rx_.data() + rx_pos_, rest);
  rx_len_ = rest;
  rx_pos_ = 0;
}

bool Client::frame_pending() const noexcept {
  if (rx_pos_ == rx_len_) return false;
  const auto f = read_frame(Bytes(rx_.data() + rx_pos_, rx_len_ - rx_pos_),
                            static_cast<std::uint32_t>(rx_.size()));
  return !f || f->complete;  // an error is "pending" too: dispatch reports it
}

Result<bool> Client::read_once(Instant deadline) noexcept {
  for (;;) {
    Instant now = clock_.now();
    // Keep-alive work first: a PINGREQ due, or a PINGRESP overdue.
    EDGEKIT_TRY(keep_alive(now, deadline));
    const Instant wake = std::min(deadline, keep_alive_deadline());
    const auto w =
        transport_->wait(transport::Interest::Read, detail::milliseconds_until(now, wake));
    if (w == transport::WaitStatus::Error) {
      return fail(fail_connection(Errc::TransportError, std::nullopt));
    }
    if (w == transport::WaitStatus::Ready) break;
    now = clock_.now();
    if (now >= deadline) {
      EDGEKIT_TRY(keep_alive(now, deadline));
      return false;
    }
  }
  compact_rx();
  ++recv_calls_;
  const auto r = transport_->recv(rx_.subspan(rx_len_));
  switch (r.status) {
    case transport::IoStatus::Ok:
      rx_len_ += r.bytes;
      return r.bytes > 0;
    case transport::IoStatus::WouldBlock:
      return false;  // readiness was stale (or a TLS record is incomplete): nothing yet
    case transport::IoStatus::Closed:
      return fail(fail_connection(Errc::TransportClosed, std::nullopt));
    case transport::IoStatus::Error:
      return fail(fail_connection(Errc::TransportError, std::nullopt));
  }
  return false;
}

Result<std::size_t> Client::dispatch_frames(Instant deadline) noexcept {
  std::size_t handled = 0;
  while (connected_or_connecting()) {
    // connect() stops right after the CONNACK: what follows is handled by the next call, so
    // that the CONNACK it returns still points at intact bytes.
    if (waiter_ != nullptr && waiter_->kind == Waiter::Kind::ConnAck && waiter_->done) break;
    const Bytes held(rx_.data() + rx_pos_, rx_len_ - rx_pos_);
    if (held.empty()) break;
    // The receive buffer is the largest packet we accept; MQTT 5 servers were told so in CONNECT.
    const auto frame = read_frame(held, static_cast<std::uint32_t>(rx_.size()));
    if (!frame) {
      if (frame.error() == Errc::PacketTooLarge) {
        // Never dropped silently: the application hears IncomingPacketTooLarge, an MQTT 5 server
        // hears 0x95 (MQTT 5 spec 3.1.2.11.4, 4.13), a 3.1.1 connection can only be closed.
        return fail(fail_connection(Errc::IncomingPacketTooLarge, ReasonCode::PacketTooLarge));
      }
      return fail(fail_connection(frame.error(), ReasonCode::MalformedPacket));
    }
    if (!frame->complete) break;
    const std::size_t size = frame->header.packet_size();
    const Bytes packet = held.first(size);
    rx_pos_ += size;
    ++handled;
    EDGEKIT_TRY(handle_packet(packet, deadline));
  }
  // The acks owed for the whole batch go out together: one write, not one per packet.
  if (connected_) EDGEKIT_TRY(flush_acks(deadline));
  return handled;
}

}  // namespace edgekit::mqtt
