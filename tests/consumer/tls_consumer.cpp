// Builds against the installed edgekit::tls and checks that a configuration error is reported
// with its cause (the TLS stack is linked and initialised, no server needed).
#include <cstdio>
#include <edgekit/tls/tls.hpp>

int main() {
  edgekit::tls::Config config;
  config.ca_file = "/nonexistent/edgekit-consumer-ca.pem";
  auto context = edgekit::tls::TlsContext::create(config);
  if (context) {
    std::fprintf(stderr, "tls consumer: a missing CA file was accepted\n");
    return 1;
  }
  if (context.error().cause != edgekit::tls::Cause::CaLoadFailed) {
    std::fprintf(stderr, "tls consumer: unexpected error: %s\n", context.error().message().c_str());
    return 1;
  }
  std::printf("tls consumer: missing CA file reported: %s\n", context.error().message().c_str());
  return 0;
}
