// The agent's TLS transport factory. See agent_factory.hpp.
#include "edgekit/tls/agent_factory.hpp"

#include <utility>

namespace edgekit::tls {

TlsTransportFactory::TlsTransportFactory(TlsContext context, std::string_view host,
                                         std::uint16_t port, Duration timeout)
    : context_(std::move(context)), host_(host), timeout_(timeout), port_(port) {}

TlsTransportFactory::~TlsTransportFactory() = default;

edgekit::Result<agent::TransportConnection, agent::TransportFailure>
TlsTransportFactory::connect() noexcept {
  current_.close();
  auto r = TlsTransport::connect(context_, host_, port_.load(), timeout_);
  if (!r) {
    last_error_ = r.error();
    agent::TransportFailure f;
    f.detail = to_string(r.error().cause);
    f.system_error = r.error().system_error;
    f.transport_error = r.error().cause;
    switch (r.error().cause) {
      case Cause::HostNotFound:
        f.error = mqtt::Errc::HostNotFound;  // the agent decides whether that is permanent
        break;
      case Cause::Timeout:
        f.error = mqtt::Errc::Timeout;
        break;
      case Cause::ConnectionRefused:
      case Cause::ConnectFailed:
      case Cause::ConnectionClosed:
      case Cause::ServerAlert:
      case Cause::HandshakeFailed:
      case Cause::IoError:
        f.error = mqtt::Errc::ConnectFailed;
        break;
      default:
        // Certificates, configuration and the token: the same attempt would fail the same way
        // (and a token must not be hammered).
        f.error = mqtt::Errc::ConnectFailed;
        f.permanent = true;
        break;
    }
    return fail(f);
  }
  current_ = std::move(*r);
  // Safe for the agent's poll: it reads until the transport's own wait() says nothing is
  // pending (wait accounts for bytes OpenSSL holds) before it sleeps on the socket.
  return agent::TransportConnection{&current_, current_.native_handle()};
}

}  // namespace edgekit::tls
