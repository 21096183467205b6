// Versioned schema migrations, applied at start in order, each in its own transaction, recorded
// in schema_migrations. The SQL is one text for both databases: only types and constraints that
// SQLite and PostgreSQL read alike (TEXT, BIGINT, INTEGER 0/1 for booleans, CHECK, REFERENCES).
// Never edit a migration that has shipped; add the next one.

#include <chrono>
#include <random>
#include <thread>

#include "store/store.hpp"

namespace edgekit::fleetd {
namespace {

struct Migration {
  std::int64_t version;
  const char* description;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, "registry: things, groups, certificates, policies, CAs, provisioning templates", R"sql(
CREATE TABLE things (
  name TEXT PRIMARY KEY,
  thing_type TEXT NOT NULL DEFAULT '',
  attributes TEXT NOT NULL DEFAULT '{}',
  version BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE thing_groups (
  name TEXT PRIMARY KEY,
  description TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL
);
CREATE TABLE thing_group_members (
  group_name TEXT NOT NULL REFERENCES thing_groups(name) ON DELETE CASCADE,
  thing_name TEXT NOT NULL REFERENCES things(name) ON DELETE CASCADE,
  PRIMARY KEY (group_name, thing_name)
);
CREATE INDEX thing_group_members_by_thing ON thing_group_members(thing_name);
CREATE TABLE cas (
  id TEXT PRIMARY KEY,
  pem TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE')),
  auto_registration INTEGER NOT NULL CHECK (auto_registration IN (0, 1)),
  registration_template TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL
);
CREATE TABLE certificates (
  id TEXT PRIMARY KEY,
  pem TEXT NOT NULL,
  status TEXT NOT NULL
    CHECK (status IN ('ACTIVE', 'INACTIVE', 'REVOKED', 'PENDING_ACTIVATION')),
  ca_id TEXT REFERENCES cas(id),
  serial TEXT NOT NULL DEFAULT '',
  not_before BIGINT NOT NULL,
  not_after BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE thing_principals (
  thing_name TEXT NOT NULL REFERENCES things(name),
  certificate_id TEXT NOT NULL REFERENCES certificates(id),
  PRIMARY KEY (thing_name, certificate_id)
);
CREATE INDEX thing_principals_by_certificate ON thing_principals(certificate_id);
CREATE TABLE policies (
  name TEXT PRIMARY KEY,
  document TEXT NOT NULL,
  version BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE policy_attachments (
  policy_name TEXT NOT NULL REFERENCES policies(name),
  certificate_id TEXT NOT NULL REFERENCES certificates(id),
  PRIMARY KEY (policy_name, certificate_id)
);
CREATE INDEX policy_attachments_by_certificate ON policy_attachments(certificate_id);
CREATE TABLE provisioning_templates (
  name TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  template_type TEXT NOT NULL CHECK (template_type IN ('FLEET_PROVISIONING', 'JITP')),
  description TEXT NOT NULL DEFAULT '',
  enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
  version BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
)sql"},
    // The CA's revocation list names when each certificate was revoked (RFC 5280 5.3.1 wants the
    // date of the revocation, not of the list); 0 for certificates revoked before this version.
    {2, "certificates: revoked_at", R"sql(
ALTER TABLE certificates ADD COLUMN revoked_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX certificates_by_ca ON certificates(ca_id);
)sql"},
    // Fleet provisioning by claim (aws-iot-protocols.md 4): ownership tokens are recorded by
    // their random id so that each is used once and a certificate never registered is removed
    // when its token expires, even across restarts; a template's pre-provisioning hook; the
    // results of RegisterThing. provisioning_results keeps no foreign keys: it is a log that
    // outlives a thing or certificate deleted later.
    {3, "fleet provisioning: ownership tokens, pre-provisioning hooks, results", R"sql(
CREATE TABLE ownership_tokens (
  token_id TEXT PRIMARY KEY,
  certificate_id TEXT NOT NULL,
  claim_certificate_id TEXT NOT NULL DEFAULT '',
  expires_at BIGINT NOT NULL,
  used_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX ownership_tokens_by_expiry ON ownership_tokens(expires_at);
CREATE TABLE template_hooks (
  template_name TEXT PRIMARY KEY REFERENCES provisioning_templates(name) ON DELETE CASCADE,
  target TEXT NOT NULL,
  payload_version TEXT NOT NULL
);
CREATE TABLE provisioning_results (
  certificate_id TEXT PRIMARY KEY,
  thing_name TEXT NOT NULL,
  template_name TEXT NOT NULL,
  claim_certificate_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  provisioned_at BIGINT NOT NULL
);
)sql"},
    // An identical repeat of a RegisterThing whose reply the device lost (its request's
    // parameters, template and token the same) is answered as the first time, from what the
    // first one recorded: the request's parameters and the reply's device configuration.
    {4, "provisioning results: request parameters and device configuration", R"sql(
ALTER TABLE provisioning_results ADD COLUMN request_parameters TEXT NOT NULL DEFAULT '';
ALTER TABLE provisioning_results ADD COLUMN device_configuration TEXT NOT NULL DEFAULT '';
)sql"},
    // Each certificate fleetd's CA issues checks that its random serial is unused (RFC 5280
    // 4.1.2.2): by (ca_id, serial), not by ca_id alone, which names every certificate of that CA
    // and made each issuance scan them all (scripts/bench-provisioning: fleetd's CPU per device
    // grew from 4.9 to 10.7 ms over 9,000 devices).
    {5, "certificates: index by CA and serial", R"sql(
CREATE INDEX certificates_by_ca_serial ON certificates(ca_id, serial);
)sql"},
    // Device Shadow (aws-iot-protocols.md 1): one row per thing and shadow name ('' for the
    // classic shadow). No foreign key to things: on AWS a shadow and its thing are deleted
    // independently (1.5). A deleted shadow keeps its row (deleted = 1) so that its version
    // numbering continues when it is created again.
    {6, "device shadows", R"sql(
CREATE TABLE shadows (
  thing_name TEXT NOT NULL,
  shadow_name TEXT NOT NULL,
  state TEXT NOT NULL,
  metadata TEXT NOT NULL,
  version BIGINT NOT NULL,
  deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)),
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (thing_name, shadow_name)
);
)sql"},
    // AWS IoT Jobs (aws-iot-protocols.md 2): jobs with their inline document and AWS-shaped
    // configurations (JSON text), their targets (things and groups, so that "the continuous
    // jobs of this group" is a query), and one row per execution attempt with the absolute
    // deadlines of its timers, so that timeouts, retries and rollouts survive a restart.
    {7, "jobs: jobs, targets, executions", R"sql(
CREATE TABLE jobs (
  job_id TEXT PRIMARY KEY,
  document TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  target_selection TEXT NOT NULL CHECK (target_selection IN ('SNAPSHOT', 'CONTINUOUS')),
  status TEXT NOT NULL CHECK (status IN ('IN_PROGRESS', 'CANCELED', 'COMPLETED')),
  force_canceled INTEGER NOT NULL CHECK (force_canceled IN (0, 1)),
  paused INTEGER NOT NULL CHECK (paused IN (0, 1)),
  reason_code TEXT NOT NULL DEFAULT '',
  comment TEXT NOT NULL DEFAULT '',
  in_progress_timeout_minutes BIGINT NOT NULL DEFAULT 0,
  retry_config TEXT NOT NULL DEFAULT '',
  abort_config TEXT NOT NULL DEFAULT '',
  rollout_config TEXT NOT NULL DEFAULT '',
  rollout_groups TEXT NOT NULL DEFAULT '',
  rollout_created BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  last_updated_at BIGINT NOT NULL,
  completed_at BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE job_targets (
  job_id TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('thing', 'group')),
  name TEXT NOT NULL,
  PRIMARY KEY (job_id, kind, name)
);
CREATE INDEX job_targets_by_name ON job_targets(kind, name);
CREATE TABLE job_executions (
  job_id TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
  thing_name TEXT NOT NULL,
  execution_number BIGINT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('QUEUED', 'IN_PROGRESS', 'SUCCEEDED', 'FAILED',
                                         'REJECTED', 'TIMED_OUT', 'REMOVED', 'CANCELED')),
  version_number BIGINT NOT NULL,
  status_details TEXT NOT NULL DEFAULT '{}',
  queued_at BIGINT NOT NULL,
  started_at BIGINT NOT NULL DEFAULT 0,
  last_updated_at BIGINT NOT NULL,
  step_timeout_at BIGINT NOT NULL DEFAULT 0,
  in_progress_timeout_at BIGINT NOT NULL DEFAULT 0,
  retry_attempt BIGINT NOT NULL DEFAULT 0,
  rollout_group BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, thing_name, execution_number)
);
CREATE INDEX job_executions_by_thing ON job_executions(thing_name, status);
CREATE INDEX job_executions_by_status ON job_executions(status);
)sql"},
    // OTA (aws-iot-protocols.md 2.6, 3): images (the bytes as base64 text, which both databases
    // store alike; an image is immutable once uploaded but for its signature, added by a later
    // sign) and streams (AWS's CreateStream: an id, a version, files by file id, each naming an
    // image). An image that a stream names cannot be deleted (the foreign key).
    {8, "ota: images and streams", R"sql(
CREATE TABLE ota_images (
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  device_type TEXT NOT NULL DEFAULT '',
  bytes TEXT NOT NULL,
  size BIGINT NOT NULL,
  sha256 TEXT NOT NULL,
  signature TEXT NOT NULL DEFAULT '',
  signer_certificate TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE TABLE ota_streams (
  stream_id TEXT PRIMARY KEY,
  version BIGINT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  block_size BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE ota_stream_files (
  stream_id TEXT NOT NULL REFERENCES ota_streams(stream_id) ON DELETE CASCADE,
  file_id INTEGER NOT NULL CHECK (file_id >= 0 AND file_id <= 255),
  image_name TEXT NOT NULL,
  image_version TEXT NOT NULL,
  PRIMARY KEY (stream_id, file_id),
  FOREIGN KEY (image_name, image_version) REFERENCES ota_images(name, version)
);
CREATE INDEX ota_stream_files_by_image ON ota_stream_files(image_name, image_version);
)sql"},
    // An image's bytes in a table of their own. In ota_images the base64 text came before size
    // and sha256, so every read of those (each GetStream's check) made SQLite walk the text's
    // whole overflow chain: 3.9 ms of CPU per GetStream of a 4 MiB image (docs/benchmarks.md,
    // OTA). PostgreSQL kept the text out of line already (TOAST); one schema serves both.
    // SQLite has DROP COLUMN since 3.35.
    {9, "ota: image bytes in their own table", R"sql(
CREATE TABLE ota_image_bytes (
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  bytes TEXT NOT NULL,
  PRIMARY KEY (name, version),
  FOREIGN KEY (name, version) REFERENCES ota_images(name, version) ON DELETE CASCADE
);
INSERT INTO ota_image_bytes (name, version, bytes) SELECT name, version, bytes FROM ota_images;
ALTER TABLE ota_images DROP COLUMN bytes;
)sql"},
    // Settling a job after each ended execution asks whether any of its executions is still
    // QUEUED or IN_PROGRESS; without this index that was a walk over all of the job's executions
    // (18 ms at 10,000 things on SQLite), once per ended execution: a 10,000-thing rollout spent
    // minutes of fleetd's CPU there (docs/benchmarks.md, the simulator's job rollout).
    {10, "jobs: executions by job and status", R"sql(
CREATE INDEX job_executions_by_job_status ON job_executions(job_id, status);
)sql"},
    // How many things' latest execution of each job is in each status, kept by every insert and
    // status change of an execution (store/jobs.cpp). Counting the latest executions instead
    // (execution_counts: a correlated probe per execution) cost ~18 ms at 10,000 things on
    // SQLite, and abort criteria and rate-limited rollouts ask for the counts after each ended
    // execution: quadratic in the fleet. Filled here from the executions already stored.
    {11, "jobs: execution counts by job and status", R"sql(
CREATE TABLE job_execution_counts (
  job_id TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
  status TEXT NOT NULL,
  things BIGINT NOT NULL,
  PRIMARY KEY (job_id, status)
);
INSERT INTO job_execution_counts (job_id, status, things)
SELECT e.job_id, e.status, COUNT(*) FROM job_executions e
WHERE NOT EXISTS (SELECT 1 FROM job_executions later WHERE later.job_id = e.job_id AND
                  later.thing_name = e.thing_name AND later.execution_number > e.execution_number)
GROUP BY e.job_id, e.status;
)sql"},
};

static_assert(kMigrations[std::size(kMigrations) - 1].version == Store::kSchemaVersion,
              "the last migration is the schema version");

}  // namespace

void Store::backoff(int attempt) {
  thread_local std::minstd_rand rng(std::random_device{}());
  std::uniform_int_distribution<int> jitter(1, 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(attempt * jitter(rng)));
}

Res<std::unique_ptr<Store>> Store::open(std::unique_ptr<Db> db, WallClock clock) {
  if (!db) return fail(Errc::InvalidArgument, "store: no database");
  if (!clock) {
    clock = [] {
      return static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
    };
  }
  std::unique_ptr<Store> s(new Store(std::move(db), std::move(clock)));
  if (auto r = s->migrate(); !r) return fail(r.error());
  return s;
}

Res<void> Store::migrate() {
  if (auto r = db_->exec_script(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          " version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)");
      !r) {
    return fail(r.error());
  }
  for (int attempt = 0;; ++attempt) {
    auto cur = db_->query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!cur) return fail(cur.error());
    if (cur.value().size() != 1) {
      return fail(Errc::StoreCorrupt, "store: schema_migrations is unreadable");
    }
    schema_version_ = cur.value().front().integer(0);
    if (schema_version_ > kSchemaVersion) {
      return fail(Errc::StoreTooNew,
                  "store schema version " + std::to_string(schema_version_) +
                      " is newer than this fleetd's " + std::to_string(kSchemaVersion) +
                      "; use the fleetd that wrote it (or a newer one)");
    }
    if (schema_version_ == kSchemaVersion) return {};
    const Migration* next = nullptr;
    for (const auto& m : kMigrations) {
      if (m.version == schema_version_ + 1) next = &m;
    }
    if (!next) {
      return fail(Errc::StoreCorrupt,
                  "store: no migration from schema version " + std::to_string(schema_version_));
    }
    auto step = transact([&](Tx& tx) -> Res<void> {
      if (tx.db().dialect() == Dialect::Postgres) {
        // Two fleetd instances starting together on one database: the second waits here and
        // then finds the version recorded (its INSERT below fails with AlreadyExists).
        if (auto l = tx.db().query("SELECT pg_advisory_xact_lock(746108)"); !l) {
          return fail(l.error());
        }
      }
      if (auto r = tx.db().exec_script(next->sql); !r) return r;
      auto ins = tx.db().exec(
          "INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)",
          {next->version, std::string_view(next->description), tx.now()});
      if (!ins) return fail(ins.error());
      return {};
    });
    if (!step) {
      // Another instance applied it meanwhile: read the version again.
      if (attempt < kRetries) continue;
      return fail(step.error());
    }
  }
}

}  // namespace edgekit::fleetd
