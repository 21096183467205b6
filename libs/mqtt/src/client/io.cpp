// The client's write path: what the connection queued goes out in one writev, partial writes
// retried while the transport is writable, within the caller's deadline; and the end of a
// connection (the transport closed, the close and the losses reported).
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

Result<void> Client::flush(Instant deadline, Instant now) noexcept {
  while (!conn_.output_empty()) {
    // Queued acks, a header and its payload: a few views, one writev.
    std::array<Bytes, 4> parts{};
    const std::size_t count = conn_.output(parts);
    const auto r = transport_->writev(std::span<const transport::ConstBuffer>(parts.data(), count));
    if (r.status == transport::IoStatus::Ok) {
      conn_.on_written(r.bytes, now);
      continue;
    }
    if (r.status == transport::IoStatus::WouldBlock) {
      now = clock_->now();
      if (now >= deadline) return fail(Errc::Timeout);
      if (transport_->wait(transport::Interest::Write,
                           detail::milliseconds_until(now, deadline)) !=
          transport::WaitStatus::Error) {
        continue;
      }
    }
    return fail(lost(r.status));
  }
  return {};
}

Errc Client::lost(transport::IoStatus status) noexcept {
  conn_.on_transport_closed(
      status == transport::IoStatus::Closed ? Errc::TransportClosed : Errc::TransportError,
      clock_->now());
  return finish();
}

Result<void> Client::flush_or_close(Instant deadline) noexcept {
  auto r = flush(deadline, clock_->now());
  if (!r && r.error() == Errc::Timeout) {
    // A packet the connection counts as sent could not leave: the stream cannot carry anything
    // else (part of a packet may be on the wire), so the connection ends.
    return fail(end(Errc::Timeout));
  }
  return r;
}

Errc Client::end(Errc error) noexcept {
  conn_.close(error, std::nullopt, clock_->now());
  return finish();
}

Errc Client::finish() noexcept {
  if (transport_open_) {
    transport_open_ = false;
    // A DISCONNECT the connection queued on its way out: one short attempt, never waiting on a
    // dead link for long.
    if (!conn_.output_empty()) {
      const Instant now = clock_->now();
      (void)flush(now + Duration{100}, now);
    }
    transport_->close();
  }
  // ConnectionClosed, then the losses. A failed connect is the connect call's error, not an
  // event (deliver skips ConnectFailed).
  report_notices();
  const Errc e = conn_.error();
  return e != Errc::Ok ? e : Errc::NotConnected;
}

}  // namespace edgekit::mqtt
