#pragma once
/// \file
/// fleetd's registry store: things, thing groups, certificates and their attachments, policies,
/// certificate authorities and provisioning templates, kept in SQLite (default) or PostgreSQL
/// behind one interface. All reads and writes happen inside `Store::transact`, so a change that
/// spans records (a thing, its certificate and the attachment between them) is made whole or not
/// at all, even if fleetd is killed in the middle.
///
/// What the store checks: keys and references (a certificate cannot be attached to a thing that
/// does not exist, a thing with attached certificates cannot be deleted, an attached policy
/// cannot be deleted), statuses from AWS's sets, optimistic versions. What it does not check:
/// the content of policy documents and templates (the registry service validates those before
/// they reach the store).
///
/// Group commit (`begin_batch` / `end_batch`): the requests fleetd's broker link read together
/// run as savepoints of ONE transaction, committed (one fsync) at the end of the batch; each
/// request still succeeds or fails alone, and nothing of the batch is visible to anyone, nor
/// durable, before `end_batch` returns Committed.
///
/// Thread safety: none; one `Store` belongs to one thread. Several processes may share one
/// PostgreSQL store (transactions are SERIALIZABLE; a conflict is retried); a SQLite store
/// belongs to one process (the second gets StoreLocked).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/db.hpp"
#include "store/errc.hpp"

namespace edgekit::fleetd {

/// AWS IoT certificate statuses that fleetd uses.
enum class CertificateStatus { Active, Inactive, Revoked, PendingActivation };
/// "ACTIVE", "INACTIVE", "REVOKED", "PENDING_ACTIVATION".
const char* to_string(CertificateStatus s) noexcept;
std::optional<CertificateStatus> certificate_status_from(std::string_view s) noexcept;

enum class CaStatus { Active, Inactive };
const char* to_string(CaStatus s) noexcept;
std::optional<CaStatus> ca_status_from(std::string_view s) noexcept;

using Attributes = std::map<std::string, std::string>;

struct Thing {
  std::string name;
  std::string type;  ///< empty: none
  Attributes attributes;
  std::int64_t version = 0;     ///< 1 at creation, +1 per update
  std::int64_t created_at = 0;  ///< epoch seconds
};

struct ThingGroup {
  std::string name;
  std::string description;
  std::int64_t created_at = 0;
};

struct Certificate {
  std::string id;   ///< SHA-256 of the DER, lowercase hex (AWS's certificateId)
  std::string pem;  ///< the certificate, PEM
  CertificateStatus status = CertificateStatus::Inactive;
  std::string ca_id;  ///< id of the issuing CA's certificate when known, else empty
  std::string serial;  ///< hex
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
  std::int64_t created_at = 0;
  std::int64_t revoked_at = 0;  ///< epoch seconds when it became REVOKED, else 0
};

/// A revoked certificate as a CA's revocation list names it.
struct RevokedSerial {
  std::string serial;  ///< hex
  std::int64_t revoked_at = 0;
};

struct Policy {
  std::string name;
  std::string document;  ///< JSON policy document (validated by the registry)
  std::int64_t version = 0;
  std::int64_t created_at = 0;
};

struct CaRecord {
  std::string id;  ///< SHA-256 of the CA certificate's DER, hex
  std::string pem;
  CaStatus status = CaStatus::Active;
  bool auto_registration = false;  ///< JITP: register device certificates signed by it
  std::string registration_template;  ///< provisioning template run for its devices, or empty
  std::int64_t created_at = 0;
};

struct ProvisioningTemplate {
  std::string name;
  std::string body;  ///< the template document, JSON
  std::string type;  ///< "FLEET_PROVISIONING" or "JITP"
  std::string description;
  bool enabled = false;
  std::int64_t version = 0;
  std::int64_t created_at = 0;
};

/// Keyset pagination: items after `after` (exclusive) in key order, at most `limit` (1..1000).
struct PageRequest {
  std::string after;
  std::size_t limit = 100;
};
template <class T>
struct Page {
  std::vector<T> items;
  /// The `after` of the next page; empty when this was the last one.
  std::string next;
};

/// The operations of one transaction. Obtained only inside `Store::transact`. Every call may fail
/// with the errors of `Db::exec` besides those named.
class Tx {
 public:
  Tx(Db& db, std::int64_t now) : db_(db), now_(now) {}

  // Things. Names follow AWS: 1-128 of [a-zA-Z0-9:_-] (InvalidArgument otherwise).
  /// Sets version 1 and created_at. AlreadyExists.
  [[nodiscard]] Res<Thing> create_thing(const Thing& thing);
  /// NotFound.
  [[nodiscard]] Res<Thing> get_thing(std::string_view name);
  /// Replaces type and attributes; with `expected_version`, Conflict unless it is current.
  /// NotFound.
  [[nodiscard]] Res<Thing> update_thing(const Thing& thing,
                                        std::optional<std::int64_t> expected_version = {});
  /// NotFound; Conflict while certificates are attached (detach them first, as AWS requires)
  /// or `expected_version` differs. Group memberships go with the thing.
  [[nodiscard]] Res<void> delete_thing(std::string_view name,
                                       std::optional<std::int64_t> expected_version = {});
  [[nodiscard]] Res<Page<Thing>> list_things(const PageRequest& page);

  // Thing groups.
  [[nodiscard]] Res<ThingGroup> create_group(const ThingGroup& group);
  [[nodiscard]] Res<ThingGroup> get_group(std::string_view name);
  [[nodiscard]] Res<Page<ThingGroup>> list_groups(const PageRequest& page);
  /// NotFound when either side is missing; adding twice is not an error.
  [[nodiscard]] Res<void> add_to_group(std::string_view group, std::string_view thing);
  [[nodiscard]] Res<void> remove_from_group(std::string_view group, std::string_view thing);
  [[nodiscard]] Res<std::vector<std::string>> groups_of(std::string_view thing);
  [[nodiscard]] Res<Page<std::string>> things_in_group(std::string_view group,
                                                       const PageRequest& page);

  // Certificates.
  /// AlreadyExists (same id); Conflict when `ca_id` names no registered CA.
  [[nodiscard]] Res<Certificate> create_certificate(const Certificate& cert);
  [[nodiscard]] Res<Certificate> get_certificate(std::string_view id);
  /// NotFound. A REVOKED certificate stays revoked: Conflict on any other status, as in AWS.
  /// Revoking records the time (revoked_at); revoking again keeps the first time.
  [[nodiscard]] Res<Certificate> set_certificate_status(std::string_view id,
                                                        CertificateStatus status);
  /// NotFound; Conflict while ACTIVE or attached to a thing or a policy.
  [[nodiscard]] Res<void> delete_certificate(std::string_view id);
  [[nodiscard]] Res<Page<Certificate>> list_certificates(const PageRequest& page);
  /// Ids of the certificates issued by the CA `ca_id` (the ones a deactivated CA takes down).
  [[nodiscard]] Res<std::vector<std::string>> certificates_of_ca(std::string_view ca_id);
  /// Serials and revocation times of the REVOKED certificates issued by the CA `ca_id` (its
  /// revocation list), in serial order.
  [[nodiscard]] Res<std::vector<RevokedSerial>> revoked_of_ca(std::string_view ca_id);
  /// Whether a certificate of the CA `ca_id` has the serial `serial` (hex, as stored).
  [[nodiscard]] Res<bool> serial_in_use(std::string_view ca_id, std::string_view serial);

  // Attachments of certificates (principals) to things.
  /// NotFound when the thing or the certificate is missing; attaching twice is not an error.
  [[nodiscard]] Res<void> attach_thing_principal(std::string_view thing, std::string_view cert);
  /// NotFound when not attached.
  [[nodiscard]] Res<void> detach_thing_principal(std::string_view thing, std::string_view cert);
  [[nodiscard]] Res<std::vector<std::string>> principals_of(std::string_view thing);
  [[nodiscard]] Res<std::vector<std::string>> things_of(std::string_view cert);

  // Policies.
  [[nodiscard]] Res<Policy> create_policy(const Policy& policy);
  [[nodiscard]] Res<Policy> get_policy(std::string_view name);
  /// Replaces the document; version + 1. NotFound.
  [[nodiscard]] Res<Policy> update_policy(std::string_view name, std::string_view document);
  /// NotFound; Conflict while attached.
  [[nodiscard]] Res<void> delete_policy(std::string_view name);
  [[nodiscard]] Res<Page<Policy>> list_policies(const PageRequest& page);
  [[nodiscard]] Res<void> attach_policy(std::string_view policy, std::string_view cert);
  [[nodiscard]] Res<void> detach_policy(std::string_view policy, std::string_view cert);
  [[nodiscard]] Res<std::vector<std::string>> policies_of(std::string_view cert);

  // Certificate authorities.
  [[nodiscard]] Res<CaRecord> register_ca(const CaRecord& ca);
  [[nodiscard]] Res<CaRecord> get_ca(std::string_view id);
  [[nodiscard]] Res<CaRecord> update_ca(const CaRecord& ca);
  [[nodiscard]] Res<Page<CaRecord>> list_cas(const PageRequest& page);

  // Provisioning templates. Names: 1-36 of [0-9A-Za-z_-] (AWS's limit).
  [[nodiscard]] Res<ProvisioningTemplate> create_template(const ProvisioningTemplate& t);
  [[nodiscard]] Res<ProvisioningTemplate> get_template(std::string_view name);
  /// Replaces body, description and enabled; version + 1. NotFound.
  [[nodiscard]] Res<ProvisioningTemplate> update_template(const ProvisioningTemplate& t);
  /// NotFound; Conflict while a CA names it as its registration template.
  [[nodiscard]] Res<void> delete_template(std::string_view name);
  [[nodiscard]] Res<Page<ProvisioningTemplate>> list_templates(const PageRequest& page);

  [[nodiscard]] Db& db() noexcept { return db_; }
  [[nodiscard]] std::int64_t now() const noexcept { return now_; }

 private:
  Db& db_;
  std::int64_t now_;
};

/// Epoch seconds; injected so that tests and the simulator control time.
using WallClock = std::function<std::int64_t()>;

class Store {
 public:
  /// Latest schema version this fleetd knows.
  static constexpr std::int64_t kSchemaVersion = 11;

  /// Takes the database and brings its schema to kSchemaVersion (each migration in its own
  /// transaction). Errors: StoreTooNew (a newer fleetd wrote it: refusing beats guessing),
  /// StoreCorrupt (the migration table is unreadable), and the Db's.
  [[nodiscard]] static Res<std::unique_ptr<Store>> open(std::unique_ptr<Db> db,
                                                        WallClock clock = {});

  /// Runs `f(Tx&)` in one transaction and commits when it returns a value; rolls back when it
  /// returns an error (which is passed on). A Busy failure (another writer won) reruns `f` from
  /// the start, up to kRetries times after a growing pause, so `f` must not have effects
  /// outside the transaction.
  ///
  /// Inside a batch (see `begin_batch`) `f` runs once, in a SAVEPOINT of the batch's
  /// transaction: released when `f` returns a value, rolled back to (its changes undone, the
  /// batch's others kept) when it returns an error, which is passed on as above. Nothing is
  /// committed yet: what `f` decided is durable only once `end_batch` says Committed, so the
  /// caller must hold back whatever it tells others about it (replies) until then. A Busy
  /// failure is not retried inside a batch: it fails the whole batch (every later `transact` of
  /// it returns that error at once, without running its `f`), and `end_batch` says Rerun.
  template <class F>
  auto transact(F&& f) -> decltype(f(std::declval<Tx&>())) {
    using R = decltype(f(std::declval<Tx&>()));
    if (batch_) {
      if (auto entered = enter_savepoint(); !entered) return fail(entered.error());
      Tx tx(*db_, clock_());
      R r = f(tx);
      if (r) {
        if (auto left = leave_savepoint(nullptr); !left) return fail(left.error());
        return r;
      }
      const Error failed = r.error();
      (void)leave_savepoint(&failed);  // the request's own error is what its caller needs
      return r;
    }
    for (int attempt = 0;; ++attempt) {
      if (attempt > 0) backoff(attempt);
      if (auto b = db_->begin(); !b) {
        if (b.error().code == Errc::Busy && attempt < kRetries) continue;
        return fail(b.error());
      }
      Tx tx(*db_, clock_());
      R r = f(tx);
      if (!r) {
        db_->rollback();
        if (r.error().code == Errc::Busy && attempt < kRetries) continue;
        return r;
      }
      if (auto c = db_->commit(); !c) {
        db_->rollback();
        if (c.error().code == Errc::Busy && attempt < kRetries) continue;
        return fail(c.error());
      }
      return r;
    }
  }

  /// How a batch ended.
  enum class BatchOutcome {
    /// Committed (or it made no transaction at all): every request's outcome is durable.
    Committed,
    /// Rolled back as a whole, certainly: a Busy failure (a concurrent PostgreSQL writer, a
    /// serialization failure, also at COMMIT) or a savepoint the database could not make or
    /// undo. Nothing of it is stored; its requests may be run again one by one, each in its own
    /// transaction (outside any batch), as if the batch had not been.
    Rerun,
    /// COMMIT failed otherwise (the disk, the connection to PostgreSQL): it may or may not have
    /// taken effect, so nothing may be rerun blindly and nothing may be reported as done. The
    /// requests' senders retry, as after a crash.
    Lost,
  };
  struct BatchEnd {
    BatchOutcome outcome = BatchOutcome::Committed;
    Error error;                    ///< why, unless Committed
    std::size_t transactions = 0;   ///< `transact` calls the batch saw
  };
  /// Starts a batch: from now on `transact` runs each `f` in a savepoint of one transaction,
  /// begun at the first `transact` (a batch without one costs nothing). Not nested; the
  /// caller must call `end_batch` before returning control to anything else that uses this
  /// store (fleetd: within the same turn of its io loop, so that the admin and hooks work
  /// posted to that loop never runs inside, nor waits on, a half-done batch).
  void begin_batch();
  /// Ends the batch: commits its transaction (Committed), or rolls it back (Rerun, Lost; see
  /// BatchOutcome). Afterwards `transact` is its own transaction again.
  [[nodiscard]] BatchEnd end_batch();
  [[nodiscard]] bool in_batch() const noexcept { return batch_.has_value(); }

  [[nodiscard]] std::int64_t schema_version() const noexcept { return schema_version_; }
  [[nodiscard]] Dialect dialect() const noexcept { return db_->dialect(); }

 private:
  static constexpr int kRetries = 12;
  /// Sleeps about attempt × 1-4 ms (jittered, so that the losers of one conflict do not
  /// collide again in lockstep).
  static void backoff(int attempt);
  Store(std::unique_ptr<Db> db, WallClock clock) : db_(std::move(db)), clock_(std::move(clock)) {}
  Res<void> migrate();
  // A request's savepoint in the batch (the batch's transaction begun first if need be), and its
  // end: released, or rolled back to when `error` is set. A failure of either fails the batch.
  Res<void> enter_savepoint();
  Res<void> leave_savepoint(const Error* error);
  struct Batch {
    bool begun = false;          // its transaction is open
    std::optional<Error> failed; // set: rolled back at the end, outcome Rerun
    std::size_t transactions = 0;
  };
  std::optional<Batch> batch_;

  std::unique_ptr<Db> db_;
  WallClock clock_;
  std::int64_t schema_version_ = 0;
};

}  // namespace edgekit::fleetd
