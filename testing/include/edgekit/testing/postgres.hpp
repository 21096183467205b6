#pragma once
/// \file
/// A throwaway PostgreSQL server for tests: `initdb` into a temporary folder, `postgres` on a
/// free loopback port (TCP only, trust authentication for the one local user, fsync off: the
/// data dies with the test anyway), stopped and deleted by the destructor. The server runs as a
/// child of the test process and is killed if the test process dies, so no stray server is left
/// behind (which `pg_ctl start`, a daemon, would not guarantee). Run as root (CI containers),
/// both initdb and the server drop to the `postgres` user, because PostgreSQL refuses to run as
/// root.
///
/// Binaries: $EDGEKIT_PG_BINDIR, else the newest /usr/lib/postgresql/<version>/bin (Debian's
/// `postgresql` package).
///
/// Thread safety: none.

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace edgekit::testing {

class Postgres {
 public:
  Postgres() = default;
  ~Postgres();
  Postgres(const Postgres&) = delete;
  Postgres& operator=(const Postgres&) = delete;

  /// initdb + start + wait until it accepts connections (up to 30 s). False with `error()` when
  /// the binaries are missing or the server does not come up (its log is in `error()`).
  [[nodiscard]] bool start();
  /// Fast shutdown (SIGINT), SIGKILL after 10 s. Idempotent.
  void stop();

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  /// A libpq connection string for `database` on this server.
  [[nodiscard]] std::string connection_string(const std::string& database = "postgres") const;
  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  [[nodiscard]] static std::string find_bindir();

 private:
  std::string dir_;
  std::string bindir_;
  std::string error_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace edgekit::testing
