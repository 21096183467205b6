#pragma once
/// \file
/// The TLS `TransportFactory` for the agent: each connection attempt is a new TCP connect and TLS
/// handshake from one `TlsContext` (CAs, client certificate and key loaded once).

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "edgekit/agent/agent.hpp"
#include "edgekit/tls/tls.hpp"

namespace edgekit::tls {

/// Makes `TlsTransport` connections for an `agent::Agent`. Keeps the current connection; it is
/// valid until the next `connect` or the factory's destruction.
/// Thread safety: `connect` and `last_error` are called on the agent thread only (the agent's
/// contract); `set_port` may be called from any thread.
class TlsTransportFactory final : public agent::TransportFactory {
 public:
  /// Takes over `context`; `host` is copied and is also the name checked in the server's
  /// certificate unless the context's `server_name` is set. `timeout` bounds each TCP
  /// connect + handshake.
  TlsTransportFactory(TlsContext context, std::string_view host, std::uint16_t port,
                      Duration timeout = Duration{10'000});
  ~TlsTransportFactory();

  /// Connects and runs the handshake. Failures map to the agent's: HostNotFound,
  /// Timeout, ConnectFailed (refused, closed, server alert, handshake failure: retried), and
  /// ConnectFailed marked permanent for what a retry cannot fix: the server's certificate
  /// (unknown CA, expired, host-name mismatch, ...) and token failures. `detail` is the cause's
  /// static name; `last_error()` has the whole message.
  [[nodiscard]] edgekit::Result<agent::TransportConnection, agent::TransportFailure> connect() noexcept
      override;
  /// The last connect's failure (meaningful after `connect` failed).
  [[nodiscard]] const Error& last_error() const noexcept { return last_error_; }
  /// Changes the port of later connections.
  void set_port(std::uint16_t port) noexcept { port_.store(port); }

 private:
  TlsContext context_;
  std::string host_;
  Duration timeout_;
  std::atomic<std::uint16_t> port_;
  TlsTransport current_;
  Error last_error_;
};

}  // namespace edgekit::tls
