#pragma once
/// \file
/// A real Mosquitto 2 broker for integration tests: a private config in a temporary directory,
/// a free loopback port, its log captured to a file, and no stray process left behind — the
/// destructor stops it, and on Linux the broker is also killed if the test process dies.
///
///   class PublishIt : public edgekit::testing::MosquittoFixture {};
///   TEST_F(PublishIt, Works) { auto t = TcpTransport::connect("127.0.0.1", broker().port(), Duration{1000});
///   }
///
/// Thread safety: none; use one `Mosquitto` from the test's thread.

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace edgekit::testing {

/// How to configure the broker.
struct MosquittoOptions {
  bool allow_anonymous = true;
  /// `persistence true` with `persistence_location` in the temp dir (survives restart()).
  bool persistence = false;
  /// Users written to a password_file with `mosquitto_passwd -b` (implies a password_file line).
  struct User {
    std::string name;
    std::string password;
  };
  std::vector<User> users;
  /// `max_connections` of every listener (a listener option in Mosquitto 2; -1: unlimited).
  /// Unset: Mosquitto's default (unlimited). For thousands of connections the broker's file
  /// descriptor limit is the process's (`ulimit -n`), which it inherits from the test.
  std::optional<int> max_connections;
  /// Extra config lines, appended verbatim after the listener (e.g. "max_keepalive 10").
  std::vector<std::string> extra_lines;
  /// `log_type all` instead of the default error/warning/notice/information.
  bool verbose_log = false;
  /// A second listener with TLS on its own free loopback port (`Mosquitto::tls_port()`). Paths
  /// are the broker's own options of the same names (see mosquitto.conf(5)); empty ones are not
  /// written.
  struct TlsListener {
    std::string cafile;
    /// A folder of CA certificates named by subject hash (`<hash>.0`, as `openssl rehash`
    /// writes them). OpenSSL looks a CA up there at each handshake, so a CA added to it is
    /// trusted from the next connection on without a broker reload.
    std::string capath;
    std::string certfile;
    std::string keyfile;
    std::string crlfile;
    std::string tls_version;  ///< the listener's minimum, e.g. "tlsv1.2" or "tlsv1.3"
    std::string ciphers;         ///< OpenSSL cipher list for TLS 1.2 and below (`ciphers`)
    std::string ciphers_tls13;   ///< TLS 1.3 cipher suites (`ciphers_tls1.3`)
    bool require_certificate = false;
    bool use_identity_as_username = false;
  };
  std::optional<TlsListener> tls;
  /// Extra environment of the broker process ("KEY=VALUE"), e.g. LD_PRELOAD of the sanitizer
  /// runtime when it loads a plugin built with sanitizers.
  std::vector<std::string> environment;
  /// How long `start` / `restart` wait for the port to accept connections.
  std::chrono::milliseconds start_timeout{5000};
};

/// One Mosquitto process.
class Mosquitto {
 public:
  explicit Mosquitto(MosquittoOptions options = {});
  /// Stops the broker (if running) and removes the temp dir.
  ~Mosquitto();
  Mosquitto(const Mosquitto&) = delete;
  Mosquitto& operator=(const Mosquitto&) = delete;

  /// Creates the temp dir and config, picks a free loopback port, starts the broker and waits
  /// until the port accepts connections. Returns false (with the reason in `error()`) when the
  /// binary is missing, the broker exits, or the port does not open in time.
  [[nodiscard]] bool start();
  /// SIGTERM, then SIGKILL after 10 s; reaps the process. Idempotent.
  void stop();
  /// SIGKILL at once (a crash, for persistence and reconnect tests); reaps the process.
  void kill();
  /// stop() (if running) and start again on the same port with the same config and data.
  [[nodiscard]] bool restart();

  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  /// The TLS listener's port (0 without `MosquittoOptions::tls`).
  [[nodiscard]] std::uint16_t tls_port() const noexcept { return tls_port_; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] const std::string& host() const noexcept { return host_; }
  [[nodiscard]] const std::string& directory() const noexcept { return dir_; }
  [[nodiscard]] const std::string& config_path() const noexcept { return config_path_; }
  [[nodiscard]] const std::string& log_path() const noexcept { return log_path_; }
  /// The broker's log so far.
  [[nodiscard]] std::string log() const;
  /// Why the last start/restart failed.
  [[nodiscard]] const std::string& error() const noexcept { return error_; }

  /// The mosquitto binary used: $EDGEKIT_MOSQUITTO, else /usr/sbin/mosquitto, else `mosquitto`
  /// from PATH; empty when none is found.
  [[nodiscard]] static std::string find_binary();

 private:
  bool prepare();
  bool write_config();
  bool launch();

  MosquittoOptions options_;
  std::string host_ = "127.0.0.1";
  std::string binary_;
  std::string dir_;
  std::string config_path_;
  std::string log_path_;
  std::string error_;
  std::uint16_t port_ = 0;
  std::uint16_t tls_port_ = 0;
  pid_t pid_ = -1;
};

/// gtest fixture: starts a broker in SetUp (failing the test if it cannot), prints its log when
/// the test failed, and stops it in TearDown. Override `broker_options()` to configure it.
class MosquittoFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  [[nodiscard]] virtual MosquittoOptions broker_options() const { return {}; }
  [[nodiscard]] Mosquitto& broker() { return *broker_; }

 private:
  std::unique_ptr<Mosquitto> broker_;
};

}  // namespace edgekit::testing
