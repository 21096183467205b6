#pragma once
/// \file
/// The two stores fleetd's tests run on: SQLite in a temp folder, and a throwaway PostgreSQL that
/// the test program starts itself (initdb + postgres on a free loopback port, a child of the
/// test, so none is left behind) and shares among its tests, each getting a database of its own.
/// Thread safety: none; use from the test's thread.

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "edgekit/testing/postgres.hpp"
#include "store/db.hpp"

namespace edgekit::fleetd::test {

enum class Backend { Sqlite, Postgres };

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::Sqlite ? "Sqlite" : "Postgres";
}

/// The program's PostgreSQL server, started at the first call (starting one takes about a
/// second); null with the reason in `error` when it cannot start.
inline testing::Postgres* shared_postgres(std::string& error) {
  static std::unique_ptr<testing::Postgres> pg;
  if (!pg) {
    auto started = std::make_unique<testing::Postgres>();
    if (!started->start()) {
      error = started->error();
      return nullptr;
    }
    pg = std::move(started);
  }
  return pg.get();
}

/// A new, empty database `name` on the shared server; its connection string.
inline Res<std::string> new_postgres_database(const std::string& name) {
  std::string error;
  testing::Postgres* pg = shared_postgres(error);
  if (pg == nullptr) return fail(Errc::Unavailable, "PostgreSQL did not start: " + error);
  auto admin = open_postgres({pg->connection_string()});
  if (!admin) return fail(admin.error());
  if (auto c = admin.value()->exec_script("CREATE DATABASE " + name); !c) return fail(c.error());
  return pg->connection_string(name);
}

/// A new, empty database of `backend` for one test: database `name` on the shared PostgreSQL
/// server, or a SQLite file in the new temp folder `dir` (set here; the caller removes it).
inline Res<std::unique_ptr<Db>> open_test_database(Backend backend, const std::string& name,
                                                   std::filesystem::path& dir) {
  if (backend == Backend::Postgres) {
    auto made = new_postgres_database(name);
    if (!made) return fail(made.error());
    return open_postgres({made.value()});
  }
  dir = std::filesystem::temp_directory_path() / ("edgekit-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return open_sqlite({(dir / "fleetd.db").string()});
}

}  // namespace edgekit::fleetd::test
