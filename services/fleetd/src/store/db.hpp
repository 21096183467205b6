#pragma once
/// \file
/// The narrow SQL seam under fleetd's store: one connection to one database, parameterised
/// statements, explicit transactions. Two implementations: SQLite (the default, a file in the
/// state folder) and PostgreSQL (libpqxx). The store's logic and SQL are written once over this
/// interface; the few dialect differences are asked of `dialect()`.
///
/// SQL uses PostgreSQL's `$1`, `$2`, ... placeholders in both implementations (SQLite's binding
/// by index, `?N`, is derived from them). Values travel as text or 64-bit integers; every result
/// field comes back as text or NULL, converted by the caller (`Row::text`, `Row::integer`).
///
/// Thread safety: none. One `Db` belongs to one thread (fleetd's store thread or a test).

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "store/errc.hpp"

namespace edgekit::fleetd {

/// One statement parameter: NULL, an integer, or text (copied by the implementation before the
/// call returns, so a view of a temporary is fine).
using Param = std::variant<std::nullptr_t, std::int64_t, std::string_view>;

/// One result row. Fields are NULL or text, in the order of the SELECT list.
class Row {
 public:
  explicit Row(std::vector<std::optional<std::string>> fields) : fields_(std::move(fields)) {}
  [[nodiscard]] std::size_t size() const noexcept { return fields_.size(); }
  [[nodiscard]] bool is_null(std::size_t i) const { return !fields_.at(i).has_value(); }
  /// The field as text; NULL reads as "".
  [[nodiscard]] const std::string& text(std::size_t i) const;
  /// The field as a 64-bit integer; NULL reads as 0. A field that is not an integer is a
  /// schema error and reads as 0 too (the store's own columns are typed).
  [[nodiscard]] std::int64_t integer(std::size_t i) const;
  [[nodiscard]] std::optional<std::string> optional_text(std::size_t i) const { return fields_.at(i); }

 private:
  std::vector<std::optional<std::string>> fields_;
};

enum class Dialect { Sqlite, Postgres };

class Db {
 public:
  virtual ~Db() = default;
  Db() = default;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  [[nodiscard]] virtual Dialect dialect() const noexcept = 0;
  /// Runs a statement that returns no rows; the number of rows it changed.
  /// Errors: AlreadyExists (unique key), Conflict (foreign key or check constraint), Busy (a
  /// concurrent writer; retry the transaction), Unavailable, StoreCorrupt, Internal.
  [[nodiscard]] virtual Res<std::int64_t> exec(std::string_view sql,
                                               std::initializer_list<Param> params = {}) = 0;
  /// Runs a query and returns all its rows. Errors as `exec`.
  [[nodiscard]] virtual Res<std::vector<Row>> query(std::string_view sql,
                                                    std::initializer_list<Param> params = {}) = 0;
  /// A multi-statement script without parameters (schema migrations).
  [[nodiscard]] virtual Res<void> exec_script(std::string_view sql) = 0;
  /// Opens a write transaction. SQLite takes the write lock at once (BEGIN IMMEDIATE), so two
  /// writers never deadlock half-way; PostgreSQL runs it at SERIALIZABLE isolation, so a
  /// conflicting concurrent transaction fails with Busy instead of committing a lost update.
  [[nodiscard]] virtual Res<void> begin() = 0;
  [[nodiscard]] virtual Res<void> commit() = 0;
  /// Never fails from the caller's point of view: a rollback that cannot reach the database
  /// leaves the transaction to be aborted by the server when the connection drops.
  virtual void rollback() noexcept = 0;
};

struct SqliteOptions {
  /// The database file (created if missing). A lock file `<path>.lock` beside it, held with
  /// flock for the life of the `Db`, keeps a second fleetd off the same store (StoreLocked).
  std::string path;
  /// How long a statement waits for another connection's write lock before Busy.
  int busy_timeout_ms = 5000;
};
/// Opens (creating if needed) a SQLite database in WAL mode with foreign keys enforced and
/// checks it (`PRAGMA quick_check`). Errors: StoreLocked, StoreCorrupt (not a database, or the
/// check finds damage), Unavailable (cannot create or open the file), Internal.
[[nodiscard]] Res<std::unique_ptr<Db>> open_sqlite(const SqliteOptions& options);

struct PostgresOptions {
  /// A libpq connection string, e.g. "host=127.0.0.1 port=5432 dbname=fleetd user=fleetd".
  std::string connection;
};
/// Connects to PostgreSQL. Errors: Unavailable (cannot connect, with libpq's reason), Internal.
[[nodiscard]] Res<std::unique_ptr<Db>> open_postgres(const PostgresOptions& options);

}  // namespace edgekit::fleetd
