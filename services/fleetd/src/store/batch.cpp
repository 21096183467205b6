// Group commit: the requests of one batch as savepoints of one transaction (store.hpp). Why
// savepoints rather than one plain transaction: a request that fails must leave nothing behind
// while the others of its batch commit, exactly as if each had had its own transaction; on
// PostgreSQL a failed statement also poisons the whole transaction until it is rolled back to a
// savepoint.

#include "store/store.hpp"

namespace edgekit::fleetd {
namespace {

// One name for every request's savepoint: they never nest (one is released or rolled back to
// before the next is made).
constexpr const char* kSavepoint = "SAVEPOINT fleetd_request";
constexpr const char* kRelease = "RELEASE SAVEPOINT fleetd_request";
constexpr const char* kRollbackTo = "ROLLBACK TO SAVEPOINT fleetd_request";

}  // namespace

void Store::begin_batch() { batch_.emplace(); }

Res<void> Store::enter_savepoint() {
  Batch& b = *batch_;
  ++b.transactions;
  // A failed batch is rolled back as a whole: running more of it would only be undone.
  if (b.failed) return fail(*b.failed);
  if (!b.begun) {
    if (auto r = db_->begin(); !r) {
      b.failed = r.error();
      return r;
    }
    b.begun = true;
  }
  if (auto r = db_->exec(kSavepoint); !r) {
    b.failed = r.error();
    return fail(r.error());
  }
  return {};
}

Res<void> Store::leave_savepoint(const Error* error) {
  Batch& b = *batch_;
  if (error != nullptr && error->code == Errc::Busy) {
    // PostgreSQL's serialization failures call for the whole transaction to be run again (a
    // savepoint keeps the snapshot that lost): so does the batch, one request at a time.
    b.failed = *error;
    return {};
  }
  if (error != nullptr) {
    if (auto r = db_->exec(kRollbackTo); !r) {
      // SQLite rolls the whole transaction back itself after some errors (a full disk, an I/O
      // error), and a lost connection takes it away: the savepoint is gone with it.
      b.failed = r.error();
      return fail(r.error());
    }
  }
  if (auto r = db_->exec(kRelease); !r) {
    b.failed = r.error();
    return fail(r.error());
  }
  return {};
}

Store::BatchEnd Store::end_batch() {
  if (!batch_) return {};
  Batch b = std::move(*batch_);
  batch_.reset();
  BatchEnd end;
  end.transactions = b.transactions;
  if (b.failed) {
    db_->rollback();
    end.outcome = BatchOutcome::Rerun;
    end.error = std::move(*b.failed);
    return end;
  }
  if (!b.begun) return end;
  if (auto c = db_->commit(); !c) {
    db_->rollback();
    // Busy at COMMIT (a PostgreSQL serialization failure found then) means rolled back; any
    // other failure leaves the outcome unknown (an fsync that failed after the WAL frames were
    // written, a connection lost after COMMIT was sent).
    end.outcome = c.error().code == Errc::Busy ? BatchOutcome::Rerun : BatchOutcome::Lost;
    end.error = c.error();
  }
  return end;
}

}  // namespace edgekit::fleetd
