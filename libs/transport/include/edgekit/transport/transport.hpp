#pragma once
/// \file
/// The transport interface the MQTT client sits on: a byte stream (plain TCP, TLS, a UART, an
/// in-memory pipe in tests). Small on purpose, so that an RTOS port (lwIP, mbedTLS, a modem's AT
/// sockets) is a page of code.
///
/// Contract:
/// - `send`, `recv` and `writev` never block: if nothing can move now they return WouldBlock
///   with 0 bytes. Partial transfers are normal (Ok with fewer bytes than offered).
/// - "would block" and "closed" are different: Closed means the peer ended the stream in order
///   (recv returned end-of-stream, or the peer reset it), Error is any other failure, with the
///   system's error number in `system_error` when there is one.
/// - `wait` is the only call that blocks: until the transport is ready for what `interest` asks,
///   or until `timeout_ms` passes.
/// Thread safety: a transport is used by one thread at a time (the client's owner); `close` may
/// not be called concurrently with other calls.

#include <cstddef>
#include <cstdint>
#include <span>

namespace edgekit::transport {

enum class IoStatus : std::uint8_t {
  Ok,          ///< `bytes` moved (may be fewer than offered)
  WouldBlock,  ///< nothing can move now; wait and retry
  Closed,      ///< the peer closed the stream
  Error,       ///< the transport failed; see system_error
};

struct IoResult {
  IoStatus status = IoStatus::Ok;
  std::size_t bytes = 0;
  int system_error = 0;  ///< errno (or the TLS library's code) when status == Error
};

/// What `wait` waits for.
enum class Interest : std::uint8_t { Read = 1, Write = 2, ReadWrite = 3 };

enum class WaitStatus : std::uint8_t {
  Ready,    ///< the transport is ready for the interest (readable may also mean closed)
  Timeout,  ///< nothing happened in time
  Error,    ///< the wait itself failed
};

using ConstBuffer = std::span<const std::byte>;

class Transport {
 public:
  virtual ~Transport() = default;

  /// Sends from `data`, which the caller owns and which is not kept after the call.
  virtual IoResult send(ConstBuffer data) noexcept = 0;

  /// Receives into `buffer`, which the caller owns. Ok with 0 bytes never happens: end of stream
  /// is reported as Closed.
  virtual IoResult recv(std::span<std::byte> buffer) noexcept = 0;

  /// Sends several buffers in order, as one system call where the transport can (a packet's
  /// header and its payload, or several queued packets). The default sends them one by one and
  /// stops at the first partial send. Returns the total bytes sent.
  virtual IoResult writev(std::span<const ConstBuffer> buffers) noexcept {
    IoResult total{};
    for (ConstBuffer b : buffers) {
      if (b.empty()) continue;
      IoResult r = send(b);
      if (r.status != IoStatus::Ok) {
        if (total.bytes > 0 && r.status == IoStatus::WouldBlock) return total;
        r.bytes = total.bytes;
        return r;
      }
      total.bytes += r.bytes;
      if (r.bytes < b.size()) break;
    }
    return total;
  }

  /// Blocks until the transport is ready for `interest` or `timeout_ms` passes (0 = just poll).
  /// A transport that buffers internally (TLS) reports Read ready when it holds decrypted bytes.
  virtual WaitStatus wait(Interest interest, std::uint32_t timeout_ms) noexcept = 0;

  /// Closes the stream. Idempotent. Later calls return Closed.
  virtual void close() noexcept = 0;
};

}  // namespace edgekit::transport
