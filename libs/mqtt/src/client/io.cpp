// The client's I/O: the write path (what the connection queued goes out in one writev, partial
// writes retried while the transport is writable, within the caller's deadline) and the read
// path (one recv into the connection's receive buffer).
#include <algorithm>
#include <array>

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

Result<void> Client::flush(Instant deadline) noexcept {
  while (!conn_.output_empty()) {
    // Queued acks, a header and its payload: a few views, one writev.
    std::array<Bytes, 4> parts{};
    const std::size_t count = conn_.output(parts);
    const auto r = transport_->writev(std::span<const transport::ConstBuffer>(parts.data(), count));
    switch (r.status) {
      case transport::IoStatus::Ok:
        conn_.on_written(r.bytes, clock_->now());
        break;
      case transport::IoStatus::WouldBlock: {
        const Instant now = clock_->now();
        if (now >= deadline) return fail(Errc::Timeout);
        if (transport_->wait(transport::Interest::Write,
                             detail::milliseconds_until(now, deadline)) ==
            transport::WaitStatus::Error) {
          conn_.on_transport_closed(Errc::TransportError, clock_->now());
          return fail(finish());
        }
        break;
      }
      case transport::IoStatus::Closed:
        conn_.on_transport_closed(Errc::TransportClosed, clock_->now());
        return fail(finish());
      case transport::IoStatus::Error:
        conn_.on_transport_closed(Errc::TransportError, clock_->now());
        return fail(finish());
    }
  }
  return {};
}

Result<void> Client::flush_or_close(Instant deadline) noexcept {
  auto r = flush(deadline);
  if (!r && r.error() == Errc::Timeout) {
    // A packet the connection counts as sent could not leave: the stream cannot carry anything
    // else (part of a packet may be on the wire), so the connection ends.
    conn_.close(Errc::Timeout, std::nullopt, clock_->now());
    return fail(finish());
  }
  return r;
}

Errc Client::finish() noexcept {
  if (transport_open_) {
    transport_open_ = false;
    // A DISCONNECT the connection queued on its way out: one short attempt, never waiting on a
    // dead link for long.
    if (!conn_.output_empty()) (void)flush(clock_->now() + Duration{100});
    transport_->close();
  }
  // ConnectionClosed, then the losses. A failed connect is the connect call's error, not an
  // event (deliver skips ConnectFailed).
  while (conn_.notices_pending()) {
    if (auto e = conn_.poll_event(clock_->now())) deliver(*e);
  }
  const Errc e = conn_.error();
  return e != Errc::Ok ? e : Errc::NotConnected;
}

// --- Read path -----------------------------------------------------------------------------------

Result<bool> Client::read_once(Instant deadline) noexcept {
  for (;;) {
    Instant now = clock_->now();
    // Keep-alive work first: a PINGREQ due, or a PINGRESP overdue.
    conn_.on_timer(now);
    if (!connected_or_connecting()) return fail(finish());
    EDGEKIT_TRY(flush_or_close(deadline));
    const Instant wake = std::min(deadline, conn_.next_deadline().value_or(deadline));
    const auto w =
        transport_->wait(transport::Interest::Read, detail::milliseconds_until(now, wake));
    if (w == transport::WaitStatus::Error) {
      conn_.on_transport_closed(Errc::TransportError, clock_->now());
      return fail(finish());
    }
    if (w == transport::WaitStatus::Ready) break;
    now = clock_->now();
    if (now >= deadline) {
      conn_.on_timer(now);
      if (!connected_or_connecting()) return fail(finish());
      EDGEKIT_TRY(flush_or_close(deadline));
      return false;
    }
  }
  const MutableBytes buffer = conn_.read_buffer();
  ++recv_calls_;
  const auto r = transport_->recv(buffer);
  switch (r.status) {
    case transport::IoStatus::Ok:
      conn_.on_read(r.bytes, clock_->now());
      return r.bytes > 0;
    case transport::IoStatus::WouldBlock:
      return false;  // readiness was stale (or a TLS record is incomplete): nothing yet
    case transport::IoStatus::Closed:
      conn_.on_transport_closed(Errc::TransportClosed, clock_->now());
      return fail(finish());
    case transport::IoStatus::Error:
      conn_.on_transport_closed(Errc::TransportError, clock_->now());
      return fail(finish());
  }
  return false;
}

}  // namespace edgekit::mqtt
