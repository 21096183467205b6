// PostgreSQL implementation of the store's SQL seam, over libpqxx. libpqxx reports errors with
// exceptions; they are caught here, at the seam, and become `Error`s, so nothing above the store
// sees an exception (STYLE.md: services use them only for start-up configuration).

#include <pqxx/pqxx>

#include <memory>
#include <string>
#include <vector>

#include "store/db.hpp"

namespace edgekit::fleetd {
namespace {

Error map_sql_error(const pqxx::sql_error& e) {
  // libpqxx 6 does not always fill sqlstate() (exec_params errors arrive without it), but it
  // throws a subclass per SQLSTATE class: look at both.
  const std::string& state = e.sqlstate();
  Errc code = Errc::Internal;
  if (state == "23505" || dynamic_cast<const pqxx::unique_violation*>(&e)) {
    code = Errc::AlreadyExists;
  } else if (state.rfind("23", 0) == 0 ||
             dynamic_cast<const pqxx::integrity_constraint_violation*>(&e)) {
    code = Errc::Conflict;
  } else if (state == "40001" || state == "40P01") {
    code = Errc::Busy;  // serialization failure or deadlock: the transaction may be rerun
  } else if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0) {
    code = Errc::Unavailable;
  } else if (state == "XX001" || state == "XX002") {
    code = Errc::StoreCorrupt;  // data or index corrupted
  }
  std::string m = "postgres: ";
  m += e.what();
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  if (!state.empty()) m += " [" + state + "]";
  return Error{code, std::move(m)};
}

class PgDb final : public Db {
 public:
  explicit PgDb(std::unique_ptr<pqxx::connection> c) : conn_(std::move(c)) {}
  ~PgDb() override {
    tx_.reset();  // a transaction left open is aborted by its destructor
  }

  Dialect dialect() const noexcept override { return Dialect::Postgres; }

  Res<std::int64_t> exec(std::string_view sql, std::initializer_list<Param> params) override {
    auto r = run(sql, params);
    if (!r) return fail(r.error());
    return static_cast<std::int64_t>(r.value().affected_rows());
  }

  Res<std::vector<Row>> query(std::string_view sql, std::initializer_list<Param> params) override {
    auto r = run(sql, params);
    if (!r) return fail(r.error());
    std::vector<Row> rows;
    rows.reserve(r.value().size());
    for (const auto& row : r.value()) {
      std::vector<std::optional<std::string>> fields;
      fields.reserve(row.size());
      for (const auto& f : row) {
        if (f.is_null()) fields.emplace_back(std::nullopt);
        else fields.emplace_back(std::string(f.c_str(), f.size()));
      }
      rows.emplace_back(std::move(fields));
    }
    return rows;
  }

  Res<void> exec_script(std::string_view sql) override {
    return guard([&] {
      if (tx_) {
        tx_->exec(std::string(sql));
      } else {
        pqxx::nontransaction n(*conn_);
        n.exec(std::string(sql));
      }
    });
  }

  Res<void> begin() override {
    if (tx_) return fail(Errc::Internal, "postgres: transaction already open");
    return guard([&] { tx_ = std::make_unique<pqxx::transaction<pqxx::serializable>>(*conn_); });
  }
  Res<void> commit() override {
    if (!tx_) return fail(Errc::Internal, "postgres: commit without a transaction");
    auto r = guard([&] { tx_->commit(); });
    tx_.reset();
    return r;
  }
  void rollback() noexcept override {
    try {
      if (tx_) tx_->abort();
    } catch (...) {
      // The connection is gone; the server aborts the transaction with it.
    }
    tx_.reset();
  }

 private:
  template <class F>
  Res<void> guard(F&& f) {
    try {
      f();
      return {};
    } catch (const pqxx::broken_connection& e) {
      return fail(Errc::Unavailable, std::string("postgres: connection lost: ") + e.what());
    } catch (const pqxx::statement_completion_unknown& e) {
      // The statement may or may not have taken effect: never rerun it blindly.
      return fail(Errc::Unavailable, std::string("postgres: outcome unknown: ") + e.what());
    } catch (const pqxx::transaction_rollback& e) {
      // Serialization failure or deadlock (libpqxx 6 derives these from `failure`, not from
      // `sql_error`): the transaction may be rerun from the start.
      return fail(Errc::Busy, std::string("postgres: ") + e.what());
    } catch (const pqxx::sql_error& e) {
      return fail(map_sql_error(e));
    } catch (const pqxx::in_doubt_error& e) {
      // COMMIT was sent but its outcome is unknown: say so instead of guessing.
      return fail(Errc::Unavailable, std::string("postgres: commit outcome unknown: ") + e.what());
    } catch (const std::exception& e) {
      return fail(Errc::Internal, std::string("postgres: ") + e.what());
    }
  }

  Res<pqxx::result> run(std::string_view sql, std::initializer_list<Param> params) {
    // Integers are sent as text; the server converts them to the column's type.
    std::vector<std::string> storage;
    storage.reserve(params.size());
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const Param& p : params) {
      if (std::holds_alternative<std::nullptr_t>(p)) {
        storage.emplace_back();
      } else if (const auto* i = std::get_if<std::int64_t>(&p)) {
        storage.emplace_back(std::to_string(*i));
      } else {
        storage.emplace_back(std::get<std::string_view>(p));
      }
    }
    std::size_t k = 0;
    for (const Param& p : params) {
      values.push_back(std::holds_alternative<std::nullptr_t>(p) ? nullptr : storage[k].c_str());
      ++k;
    }
    pqxx::result result;
    auto r = guard([&] {
      std::string text(sql);
      if (tx_) {
        result = tx_->exec_params(text, pqxx::prepare::make_dynamic_params(values));
      } else {
        pqxx::nontransaction n(*conn_);
        result = n.exec_params(text, pqxx::prepare::make_dynamic_params(values));
      }
    });
    if (!r) return fail(r.error());
    return result;
  }

  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<pqxx::transaction_base> tx_;
};

}  // namespace

Res<std::unique_ptr<Db>> open_postgres(const PostgresOptions& options) {
  try {
    auto c = std::make_unique<pqxx::connection>(options.connection);
    return std::unique_ptr<Db>(std::make_unique<PgDb>(std::move(c)));
  } catch (const pqxx::broken_connection& e) {
    std::string m = e.what();
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    return fail(Errc::Unavailable, "cannot connect to PostgreSQL: " + m);
  } catch (const std::exception& e) {
    return fail(Errc::Internal, std::string("postgres: ") + e.what());
  }
}

}  // namespace edgekit::fleetd
