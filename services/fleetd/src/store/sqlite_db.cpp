// SQLite implementation of the store's SQL seam. Why these settings:
// - WAL: readers never block the writer and a crash mid-transaction leaves the last committed
//   state (the write-ahead log is replayed or discarded at the next open).
// - synchronous=FULL: a transaction that returned from COMMIT survives a power cut; the registry
//   is small and written rarely compared with what that protects.
// - foreign_keys=ON: SQLite ignores REFERENCES unless asked, and the store relies on them for
//   "no certificate attachment to a thing that does not exist".
// - BEGIN IMMEDIATE: the write lock is taken at BEGIN, so two writers serialise there instead of
//   one failing with SQLITE_BUSY half-way through its statements.
// - a flock'ed `<db>.lock`: SQLite's own locks allow several processes on one file, which for
//   fleetd means two services answering the same devices; refuse the second one clearly.
// - prepared statements kept by their SQL text and reused: the store's statements are a fixed
//   set of constant strings, and preparing anew was SQLite's largest cost per shadow update
//   (its parser led fleetd's SQLite samples in docs/benchmarks.md's profile).

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_map>

#include "store/db.hpp"

namespace edgekit::fleetd {
namespace {

Errc map_sqlite(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        return Errc::AlreadyExists;
      }
      return Errc::Conflict;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Errc::Busy;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Errc::StoreCorrupt;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_READONLY: return Errc::Unavailable;
    default: return Errc::Internal;
  }
}

// "$12" -> "?12": SQLite binds "?N" by index N, which is what "$N" means to PostgreSQL.
std::string to_sqlite_placeholders(std::string_view sql) {
  std::string out(sql);
  for (std::size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] == '$' && out[i + 1] >= '0' && out[i + 1] <= '9') out[i] = '?';
  }
  return out;
}

class SqliteDb final : public Db {
 public:
  SqliteDb(sqlite3* db, int lock_fd) : db_(db), lock_fd_(lock_fd) {}
  ~SqliteDb() override {
    for (auto& [sql, st] : statements_) sqlite3_finalize(st);
    sqlite3_close_v2(db_);
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
  }

  Dialect dialect() const noexcept override { return Dialect::Sqlite; }

  Res<std::int64_t> exec(std::string_view sql, std::initializer_list<Param> params) override {
    std::int64_t changed = 0;
    auto r = run(sql, params, nullptr);
    if (!r) return fail(r.error());
    changed = sqlite3_changes64(db_);
    return changed;
  }

  Res<std::vector<Row>> query(std::string_view sql, std::initializer_list<Param> params) override {
    std::vector<Row> rows;
    auto r = run(sql, params, &rows);
    if (!r) return fail(r.error());
    return rows;
  }

  Res<void> exec_script(std::string_view sql) override {
    std::string s(sql);
    char* msg = nullptr;
    int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &msg);
    if (rc != SQLITE_OK) {
      std::string m = msg ? msg : sqlite3_errstr(rc);
      sqlite3_free(msg);
      return fail(map_sqlite(rc), "sqlite: " + m);
    }
    return {};
  }

  Res<void> begin() override { return run("BEGIN IMMEDIATE", {}, nullptr); }
  Res<void> commit() override { return run("COMMIT", {}, nullptr); }
  void rollback() noexcept override {
    // Only when a transaction is open: after some errors SQLite has already rolled back.
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

 private:
  // The prepared statement of `sql`, from the cache or prepared now (then kept). A statement
  // prepared with sqlite3_prepare_v2 re-prepares itself after a schema change.
  Res<sqlite3_stmt*> statement(std::string_view sql) {
    std::string text = to_sqlite_placeholders(sql);
    if (auto it = statements_.find(text); it != statements_.end()) return it->second;
    if (statements_.size() >= kMaxStatements) {
      // Only SQL built from values would grow it this far (the store binds values): start over
      // rather than keep statements without bound.
      for (auto& [t, st] : statements_) sqlite3_finalize(st);
      statements_.clear();
    }
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db_, text.c_str(), static_cast<int>(text.size()), &st, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(st);
      return error(rc, sql);
    }
    statements_.emplace(std::move(text), st);
    return st;
  }

  Res<void> run(std::string_view sql, std::initializer_list<Param> params,
                std::vector<Row>* rows) {
    auto prepared = statement(sql);
    if (!prepared) return fail(prepared.error());
    sqlite3_stmt* st = prepared.value();
    // Whatever happens below, the statement is left reset and unbound for its next use (a
    // statement left mid-step would also keep a read transaction open).
    struct Done {
      sqlite3_stmt* st;
      ~Done() {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
      }
    } done{st};
    int rc = SQLITE_OK;
    int index = 1;
    for (const Param& p : params) {
      if (std::holds_alternative<std::nullptr_t>(p)) {
        rc = sqlite3_bind_null(st, index);
      } else if (const auto* i = std::get_if<std::int64_t>(&p)) {
        rc = sqlite3_bind_int64(st, index, *i);
      } else {
        auto s = std::get<std::string_view>(p);
        // SQLite binds a null pointer as NULL; an empty view (a default-constructed one has no
        // data pointer) is text '' here, as it is on PostgreSQL.
        rc = sqlite3_bind_text64(st, index, s.data() != nullptr ? s.data() : "", s.size(),
                                 SQLITE_TRANSIENT, SQLITE_UTF8);
      }
      if (rc != SQLITE_OK) return error(rc, sql);
      ++index;
    }
    for (;;) {
      rc = sqlite3_step(st);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        // The extended code says which constraint failed; sqlite3_step returns the primary one.
        return error(sqlite3_extended_errcode(db_), sql);
      }
      if (rows) {
        int n = sqlite3_column_count(st);
        std::vector<std::optional<std::string>> fields;
        fields.reserve(static_cast<std::size_t>(n));
        for (int c = 0; c < n; ++c) {
          if (sqlite3_column_type(st, c) == SQLITE_NULL) {
            fields.emplace_back(std::nullopt);
          } else {
            const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
            fields.emplace_back(std::string(t, static_cast<std::size_t>(sqlite3_column_bytes(st, c))));
          }
        }
        rows->emplace_back(std::move(fields));
      }
    }
    return {};
  }

  edgekit::Unexpected<Error> error(int rc, std::string_view sql) {
    std::string m = "sqlite: ";
    m += sqlite3_errmsg(db_);
    m += " (in: ";
    m += sql.substr(0, 60);
    m += ")";
    return fail(map_sqlite(rc), std::move(m));
  }

  static constexpr std::size_t kMaxStatements = 256;
  sqlite3* db_;
  int lock_fd_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace

Res<std::unique_ptr<Db>> open_sqlite(const SqliteOptions& options) {
  if (options.path.empty()) return fail(Errc::InvalidArgument, "sqlite: empty database path");
  std::string lock_path = options.path + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return fail(Errc::Unavailable, "cannot open lock file " + lock_path + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) {
      return fail(Errc::StoreLocked, "store " + options.path +
                                         " is in use by another process (lock " + lock_path + ")");
    }
    return fail(Errc::Unavailable, "cannot lock " + lock_path + ": " + std::strerror(e));
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(options.path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    ::close(fd);
    return fail(map_sqlite(rc), "cannot open store " + options.path + ": " + m);
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  auto owned = std::make_unique<SqliteDb>(db, fd);
  // A file that is not a database fails here, at the first read of its header.
  if (auto r = owned->exec_script("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                                  "PRAGMA foreign_keys=ON;");
      !r) {
    auto e = r.error();
    e.message = "store " + options.path + ": " + e.message;
    return fail(std::move(e));
  }
  auto check = owned->query("PRAGMA quick_check", {});
  if (!check) {
    auto e = check.error();
    if (e.code == Errc::Internal) e.code = Errc::StoreCorrupt;
    e.message = "store " + options.path + " failed its integrity check: " + e.message;
    return fail(std::move(e));
  }
  if (check.value().empty() || check.value().front().text(0) != "ok") {
    std::string why = check.value().empty() ? "no answer" : check.value().front().text(0);
    return fail(Errc::StoreCorrupt, "store " + options.path + " failed its integrity check: " + why);
  }
  return std::unique_ptr<Db>(std::move(owned));
}

}  // namespace edgekit::fleetd
