// The registry's operations over the SQL seam. Each operation checks what the database cannot
// express alone (AWS's name rules, "REVOKED is final", "no delete while attached") and names the
// record in its error, so that an admin API caller or a log reader learns which one.

#include "store/store.hpp"

#include <algorithm>

#include "edgekit/json/json.hpp"

namespace edgekit::fleetd {
namespace {

constexpr std::size_t kMaxPage = 1000;

bool name_ok(std::string_view s, std::size_t max, bool colon) {
  if (s.empty() || s.size() > max) return false;
  return std::all_of(s.begin(), s.end(), [colon](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || (colon && c == ':');
  });
}

Res<void> check_thing_name(std::string_view name) {
  if (!name_ok(name, 128, true)) {
    return fail(Errc::InvalidArgument, "invalid thing name '" + std::string(name) +
                                           "': 1-128 characters of [a-zA-Z0-9:_-]");
  }
  return {};
}

Res<void> check_page(const PageRequest& p) {
  if (p.limit == 0 || p.limit > kMaxPage) {
    return fail(Errc::InvalidArgument, "page size must be 1.." + std::to_string(kMaxPage));
  }
  return {};
}

std::string quoted(std::string_view what, std::string_view key) {
  return std::string(what) + " '" + std::string(key) + "'";
}

Res<std::string> attributes_json(const Attributes& a) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : a) {
    if (k.empty()) return fail(Errc::InvalidArgument, "empty thing attribute name");
    j[k] = v;
  }
  return j.dump();
}

Attributes parse_attributes(const std::string& text) {
  Attributes a;
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return a;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.value().is_string()) a[it.key()] = it.value().get<std::string>();
  }
  return a;
}

Thing thing_from(const Row& r) {
  return Thing{r.text(0), r.text(1), parse_attributes(r.text(2)), r.integer(3), r.integer(4)};
}
constexpr const char* kThingColumns = "name, thing_type, attributes, version, created_at";

Certificate certificate_from(const Row& r) {
  Certificate c;
  c.id = r.text(0);
  c.pem = r.text(1);
  c.status = certificate_status_from(r.text(2)).value_or(CertificateStatus::Inactive);
  c.ca_id = r.text(3);
  c.serial = r.text(4);
  c.not_before = r.integer(5);
  c.not_after = r.integer(6);
  c.created_at = r.integer(7);
  c.revoked_at = r.integer(8);
  return c;
}
constexpr const char* kCertificateColumns =
    "id, pem, status, ca_id, serial, not_before, not_after, created_at, revoked_at";

Policy policy_from(const Row& r) { return Policy{r.text(0), r.text(1), r.integer(2), r.integer(3)}; }

CaRecord ca_from(const Row& r) {
  return CaRecord{r.text(0), r.text(1), ca_status_from(r.text(2)).value_or(CaStatus::Inactive),
                  r.integer(3) != 0, r.text(4), r.integer(5)};
}

ProvisioningTemplate template_from(const Row& r) {
  return ProvisioningTemplate{r.text(0),         r.text(1),    r.text(2),    r.text(3),
                              r.integer(4) != 0, r.integer(5), r.integer(6)};
}

template <class T, class F>
Res<Page<T>> page_of(Res<std::vector<Row>> rows, std::size_t limit, F&& from,
                     std::string (*key)(const T&)) {
  if (!rows) return fail(rows.error());
  Page<T> page;
  for (const Row& r : rows.value()) page.items.push_back(from(r));
  // One row more than asked was fetched: its presence says there is a next page.
  if (page.items.size() > limit) {
    page.items.resize(limit);
    page.next = key(page.items.back());
  }
  return page;
}

Res<std::vector<std::string>> column0(Res<std::vector<Row>> rows) {
  if (!rows) return fail(rows.error());
  std::vector<std::string> out;
  for (const Row& r : rows.value()) out.push_back(r.text(0));
  return out;
}

// One row expected: NotFound naming the record otherwise.
Res<Row> one(Res<std::vector<Row>> rows, std::string_view what, std::string_view key) {
  if (!rows) return fail(rows.error());
  if (rows.value().empty()) return fail(Errc::NotFound, quoted(what, key) + " not found");
  return std::move(rows.value().front());
}

// Rewords a database error for one record: "thing 'x' already exists" rather than SQL text.
Error about(Error e, std::string_view what, std::string_view key) {
  if (e.code == Errc::AlreadyExists) e.message = quoted(what, key) + " already exists";
  return e;
}

Res<void> changed_one(Res<std::int64_t> n, std::string_view what, std::string_view key) {
  if (!n) return fail(about(n.error(), what, key));
  if (n.value() == 0) return fail(Errc::NotFound, quoted(what, key) + " not found");
  return {};
}

Res<bool> exists(Db& db, const char* sql, std::string_view key) {
  auto r = db.query(sql, {key});
  if (!r) return fail(r.error());
  return !r.value().empty();
}

}  // namespace

const char* to_string(CertificateStatus s) noexcept {
  switch (s) {
    case CertificateStatus::Active: return "ACTIVE";
    case CertificateStatus::Inactive: return "INACTIVE";
    case CertificateStatus::Revoked: return "REVOKED";
    case CertificateStatus::PendingActivation: return "PENDING_ACTIVATION";
  }
  return "INACTIVE";
}

std::optional<CertificateStatus> certificate_status_from(std::string_view s) noexcept {
  for (auto v : {CertificateStatus::Active, CertificateStatus::Inactive, CertificateStatus::Revoked,
                 CertificateStatus::PendingActivation}) {
    if (s == to_string(v)) return v;
  }
  return std::nullopt;
}

const char* to_string(CaStatus s) noexcept { return s == CaStatus::Active ? "ACTIVE" : "INACTIVE"; }

std::optional<CaStatus> ca_status_from(std::string_view s) noexcept {
  if (s == "ACTIVE") return CaStatus::Active;
  if (s == "INACTIVE") return CaStatus::Inactive;
  return std::nullopt;
}

// ---- things -------------------------------------------------------------------------------

Res<Thing> Tx::create_thing(const Thing& thing) {
  if (auto c = check_thing_name(thing.name); !c) return fail(c.error());
  auto attrs = attributes_json(thing.attributes);
  if (!attrs) return fail(attrs.error());
  auto r = db_.exec(
      "INSERT INTO things (name, thing_type, attributes, version, created_at) "
      "VALUES ($1, $2, $3, 1, $4)",
      {std::string_view(thing.name), std::string_view(thing.type), std::string_view(attrs.value()),
       now_});
  if (!r) return fail(about(r.error(), "thing", thing.name));
  return Thing{thing.name, thing.type, thing.attributes, 1, now_};
}

Res<Thing> Tx::get_thing(std::string_view name) {
  auto row = one(db_.query(std::string("SELECT ") + kThingColumns + " FROM things WHERE name = $1",
                           {name}),
                 "thing", name);
  if (!row) return fail(row.error());
  return thing_from(row.value());
}

Res<Thing> Tx::update_thing(const Thing& thing, std::optional<std::int64_t> expected_version) {
  auto cur = get_thing(thing.name);
  if (!cur) return cur;
  if (expected_version && *expected_version != cur.value().version) {
    return fail(Errc::Conflict, quoted("thing", thing.name) + " is at version " +
                                    std::to_string(cur.value().version) + ", not " +
                                    std::to_string(*expected_version));
  }
  auto attrs = attributes_json(thing.attributes);
  if (!attrs) return fail(attrs.error());
  auto r = db_.exec(
      "UPDATE things SET thing_type = $2, attributes = $3, version = version + 1 WHERE name = $1",
      {std::string_view(thing.name), std::string_view(thing.type),
       std::string_view(attrs.value())});
  if (auto c = changed_one(std::move(r), "thing", thing.name); !c) return fail(c.error());
  return Thing{thing.name, thing.type, thing.attributes, cur.value().version + 1,
               cur.value().created_at};
}

Res<void> Tx::delete_thing(std::string_view name, std::optional<std::int64_t> expected_version) {
  auto cur = get_thing(name);
  if (!cur) return fail(cur.error());
  if (expected_version && *expected_version != cur.value().version) {
    return fail(Errc::Conflict, quoted("thing", name) + " is at version " +
                                    std::to_string(cur.value().version) + ", not " +
                                    std::to_string(*expected_version));
  }
  auto attached = exists(db_, "SELECT 1 FROM thing_principals WHERE thing_name = $1", name);
  if (!attached) return fail(attached.error());
  if (attached.value()) {
    return fail(Errc::Conflict,
                quoted("thing", name) + " has attached certificates; detach them first");
  }
  return changed_one(db_.exec("DELETE FROM things WHERE name = $1", {name}), "thing", name);
}

Res<Page<Thing>> Tx::list_things(const PageRequest& page) {
  if (auto c = check_page(page); !c) return fail(c.error());
  return page_of<Thing>(
      db_.query(std::string("SELECT ") + kThingColumns +
                    " FROM things WHERE name > $1 ORDER BY name LIMIT $2",
                {std::string_view(page.after), static_cast<std::int64_t>(page.limit + 1)}),
      page.limit, thing_from, +[](const Thing& t) { return t.name; });
}

// ---- groups -------------------------------------------------------------------------------

Res<ThingGroup> Tx::create_group(const ThingGroup& group) {
  if (!name_ok(group.name, 128, true)) {
    return fail(Errc::InvalidArgument, "invalid thing group name '" + group.name + "'");
  }
  auto r = db_.exec("INSERT INTO thing_groups (name, description, created_at) VALUES ($1, $2, $3)",
                    {std::string_view(group.name), std::string_view(group.description), now_});
  if (!r) return fail(about(r.error(), "thing group", group.name));
  return ThingGroup{group.name, group.description, now_};
}

Res<ThingGroup> Tx::get_group(std::string_view name) {
  auto row = one(db_.query("SELECT name, description, created_at FROM thing_groups WHERE name = $1",
                           {name}),
                 "thing group", name);
  if (!row) return fail(row.error());
  return ThingGroup{row.value().text(0), row.value().text(1), row.value().integer(2)};
}

Res<Page<ThingGroup>> Tx::list_groups(const PageRequest& page) {
  if (auto c = check_page(page); !c) return fail(c.error());
  return page_of<ThingGroup>(
      db_.query("SELECT name, description, created_at FROM thing_groups WHERE name > $1 "
                "ORDER BY name LIMIT $2",
                {std::string_view(page.after), static_cast<std::int64_t>(page.limit + 1)}),
      page.limit,
      [](const Row& r) { return ThingGroup{r.text(0), r.text(1), r.integer(2)}; },
      +[](const ThingGroup& g) { return g.name; });
}

Res<void> Tx::add_to_group(std::string_view group, std::string_view thing) {
  if (auto g = get_group(group); !g) return fail(g.error());
  if (auto t = get_thing(thing); !t) return fail(t.error());
  auto r = db_.exec(
      "INSERT INTO thing_group_members (group_name, thing_name) VALUES ($1, $2) "
      "ON CONFLICT DO NOTHING",
      {group, thing});
  if (!r) return fail(r.error());
  return {};
}

Res<void> Tx::remove_from_group(std::string_view group, std::string_view thing) {
  auto r = db_.exec("DELETE FROM thing_group_members WHERE group_name = $1 AND thing_name = $2",
                    {group, thing});
  return changed_one(std::move(r), "membership of thing '" + std::string(thing) + "' in group",
                     group);
}

Res<std::vector<std::string>> Tx::groups_of(std::string_view thing) {
  return column0(db_.query(
      "SELECT group_name FROM thing_group_members WHERE thing_name = $1 ORDER BY group_name",
      {thing}));
}

Res<Page<std::string>> Tx::things_in_group(std::string_view group, const PageRequest& page) {
  if (auto c = check_page(page); !c) return fail(c.error());
  if (auto g = get_group(group); !g) return fail(g.error());
  return page_of<std::string>(
      db_.query("SELECT thing_name FROM thing_group_members WHERE group_name = $1 AND "
                "thing_name > $2 ORDER BY thing_name LIMIT $3",
                {group, std::string_view(page.after), static_cast<std::int64_t>(page.limit + 1)}),
      page.limit, [](const Row& r) { return r.text(0); },
      +[](const std::string& s) { return s; });
}

// ---- certificates -------------------------------------------------------------------------

Res<Certificate> Tx::create_certificate(const Certificate& cert) {
  if (cert.id.size() != 64 || !std::all_of(cert.id.begin(), cert.id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    return fail(Errc::InvalidArgument,
                "invalid certificate id '" + cert.id + "': 64 lowercase hex digits (SHA-256)");
  }
  if (cert.pem.empty()) return fail(Errc::InvalidArgument, "certificate without PEM");
  if (!cert.ca_id.empty()) {
    if (auto ca = get_ca(cert.ca_id); !ca) {
      if (ca.error().code == Errc::NotFound) {
        return fail(Errc::Conflict, "certificate '" + cert.id + "' names unregistered CA '" +
                                        cert.ca_id + "'");
      }
      return fail(ca.error());
    }
  }
  auto r = db_.exec(
      "INSERT INTO certificates (id, pem, status, ca_id, serial, not_before, not_after, "
      "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
      {std::string_view(cert.id), std::string_view(cert.pem), std::string_view(to_string(cert.status)),
       cert.ca_id.empty() ? Param(nullptr) : Param(std::string_view(cert.ca_id)),
       std::string_view(cert.serial), cert.not_before, cert.not_after, now_});
  if (!r) return fail(about(r.error(), "certificate", cert.id));
  Certificate out = cert;
  out.created_at = now_;
  return out;
}

Res<Certificate> Tx::get_certificate(std::string_view id) {
  auto row = one(db_.query(std::string("SELECT ") + kCertificateColumns +
                               " FROM certificates WHERE id = $1",
                           {id}),
                 "certificate", id);
  if (!row) return fail(row.error());
  return certificate_from(row.value());
}

Res<Certificate> Tx::set_certificate_status(std::string_view id, CertificateStatus status) {
  auto cur = get_certificate(id);
  if (!cur) return cur;
  if (cur.value().status == CertificateStatus::Revoked && status != CertificateStatus::Revoked) {
    return fail(Errc::Conflict, quoted("certificate", id) + " is REVOKED; that is final");
  }
  const bool revoking =
      status == CertificateStatus::Revoked && cur.value().status != CertificateStatus::Revoked;
  const std::int64_t revoked_at = revoking ? now_ : cur.value().revoked_at;
  auto r = db_.exec("UPDATE certificates SET status = $2, revoked_at = $3 WHERE id = $1",
                    {id, std::string_view(to_string(status)), revoked_at});
  if (auto c = changed_one(std::move(r), "certificate", id); !c) return fail(c.error());
  cur.value().status = status;
  cur.value().revoked_at = revoked_at;
  return cur;
}

Res<void> Tx::delete_certificate(std::string_view id) {
  auto cur = get_certificate(id);
  if (!cur) return fail(cur.error());
  if (cur.value().status == CertificateStatus::Active) {
    return fail(Errc::Conflict, quoted("certificate", id) + " is ACTIVE; deactivate it first");
  }
  auto things = exists(db_, "SELECT 1 FROM thing_principals WHERE certificate_id = $1", id);
  if (!things) return fail(things.error());
  auto policies = exists(db_, "SELECT 1 FROM policy_attachments WHERE certificate_id = $1", id);
  if (!policies) return fail(policies.error());
  if (things.value() || policies.value()) {
    return fail(Errc::Conflict, quoted("certificate", id) +
                                    " is attached to a thing or a policy; detach it first");
  }
  return changed_one(db_.exec("DELETE FROM certificates WHERE id = $1", {id}), "certificate", id);
}

Res<Page<Certificate>> Tx::list_certificates(const PageRequest& page) {
  if (auto c = check_page(page); !c) return fail(c.error());
  return page_of<Certificate>(
      db_.query(std::string("SELECT ") + kCertificateColumns +
                    " FROM certificates WHERE id > $1 ORDER BY id LIMIT $2",
                {std::string_view(page.after), static_cast<std::int64_t>(page.limit + 1)}),
      page.limit, certificate_from, +[](const Certificate& c) { return c.id; });
}

Res<std::vector<std::string>> Tx::certificates_of_ca(std::string_view ca_id) {
  return column0(db_.query("SELECT id FROM certificates WHERE ca_id = $1 ORDER BY id", {ca_id}));
}

Res<std::vector<RevokedSerial>> Tx::revoked_of_ca(std::string_view ca_id) {
  auto rows = db_.query(
      "SELECT serial, revoked_at FROM certificates WHERE ca_id = $1 AND status = 'REVOKED' "
      "ORDER BY serial",
      {ca_id});
  if (!rows) return fail(rows.error());
  std::vector<RevokedSerial> out;
  for (const Row& r : rows.value()) out.push_back({r.text(0), r.integer(1)});
  return out;
}

Res<bool> Tx::serial_in_use(std::string_view ca_id, std::string_view serial) {
  auto r = db_.query("SELECT 1 FROM certificates WHERE ca_id = $1 AND serial = $2",
                     {ca_id, serial});
  if (!r) return fail(r.error());
  return !r.value().empty();
}

Res<void> Tx::attach_thing_principal(std::string_view thing, std::string_view cert) {
  if (auto t = get_thing(thing); !t) return fail(t.error());
  if (auto c = get_certificate(cert); !c) return fail(c.error());
  auto r = db_.exec(
      "INSERT INTO thing_principals (thing_name, certificate_id) VALUES ($1, $2) "
      "ON CONFLICT DO NOTHING",
      {thing, cert});
  if (!r) return fail(r.error());
  return {};
}

Res<void> Tx::detach_thing_principal(std::string_view thing, std::string_view cert) {
  return changed_one(
      db_.exec("DELETE FROM thing_principals WHERE thing_name = $1 AND certificate_id = $2",
               {thing, cert}),
      "attachment of certificate '" + std::string(cert) + "' to thing", thing);
}

Res<std::vector<std::string>> Tx::principals_of(std::string_view thing) {
  return column0(db_.query(
      "SELECT certificate_id FROM thing_principals WHERE thing_name = $1 ORDER BY certificate_id",
      {thing}));
}

Res<std::vector<std::string>> Tx::things_of(std::string_view cert) {
  return column0(db_.query(
      "SELECT thing_name FROM thing_principals WHERE certificate_id = $1 ORDER BY thing_name",
      {cert}));
}

// ---- policies -----------------------------------------------------------------------------

Res<Policy> Tx::create_policy(const Policy& policy) {
  if (!name_ok(policy.name, 128, false)) {
    return fail(Errc::InvalidArgument, "invalid policy name '" + policy.name + "'");
  }
  auto r = db_.exec(
      "INSERT INTO policies (name, document, version, created_at) VALUES ($1, $2, 1, $3)",
      {std::string_view(policy.name), std::string_view(policy.document), now_});
  if (!r) return fail(about(r.error(), "policy", policy.name));
  return Policy{policy.name, policy.document, 1, now_};
}

Res<Policy> Tx::get_policy(std::string_view name) {
  auto row = one(db_.query("SELECT name, document, version, created_at FROM policies "
                           "WHERE name = $1",
                           {name}),
                 "policy", name);
  if (!row) return fail(row.error());
  return policy_from(row.value());
}

Res<Policy> Tx::update_policy(std::string_view name, std::string_view document) {
  auto r = db_.exec("UPDATE policies SET document = $2, version = version + 1 WHERE name = $1",
                    {name, document});
  if (auto c = changed_one(std::move(r), "policy", name); !c) return fail(c.error());
  return get_policy(name);
}

Res<void> Tx::delete_policy(std::string_view name) {
  if (auto p = get_policy(name); !p) return fail(p.error());
  auto attached = exists(db_, "SELECT 1 FROM policy_attachments WHERE policy_name = $1", name);
  if (!attached) return fail(attached.error());
  if (attached.value()) {
    return fail(Errc::Conflict, quoted("policy", name) + " is attached; detach it first");
  }
  return changed_one(db_.exec("DELETE FROM policies WHERE name = $1", {name}), "policy", name);
}

Res<Page<Policy>> Tx::list_policies(const PageRequest& page) {
  if (auto c = check_page(page); !c) return fail(c.error());
  return page_of<Policy>(
      db_.query("SELECT name, document, version, created_at FROM policies WHERE name > $1 "
                "ORDER BY name LIMIT $2",
                {std::string_view(page.after), static_cast<std::int64_t>(page.limit + 1)}),
      page.limit, policy_from, +[](const Policy& p) { return p.name; });
}

Res<void> Tx::attach_policy(std::string_view policy, std::string_view cert) {
  if (auto p = get_policy(policy); !p) return fail(p.error());
  if (auto c = get_certificate(cert); !c) return fail(c.error());
  auto r = db_.exec(
      "INSERT INTO policy_attachments (policy_name, certificate_id) VALUES ($1, $2) "
      "ON CONFLICT DO NOTHING",
      {policy, cert});
  if (!r) return fail(r.error());
  return {};
}

Res<void> Tx::detach_policy(std::string_view policy, std::string_view cert) {
  return changed_one(
      db_.exec("DELETE FROM policy_attachments WHERE policy_name = $1 AND certificate_id = $2",
               {policy, cert}),
      "attachment of certificate '" + std::string(cert) + "' to policy", policy);
}

Res<std::vector<std::string>> Tx::policies_of(std::string_view cert) {
  return column0(db_.query(
      "SELECT policy_name FROM policy_attachments WHERE certificate_id = $1 ORDER BY policy_name",
      {cert}));
}

// ---- CAs ----------------------------------------------------------------------------------

Res<CaRecord> Tx::register_ca(const CaRecord& ca) {
  if (ca.id.size() != 64) {
    return fail(Errc::InvalidArgument, "invalid CA id '" + ca.id + "': SHA-256 hex");
  }
  if (ca.pem.empty()) return fail(Errc::InvalidArgument, "CA without PEM");
  auto r = db_.exec(
      "INSERT INTO cas (id, pem, status, auto_registration, registration_template, created_at) "
      "VALUES ($1, $2, $3, $4, $5, $6)",
      {std::string_view(ca.id), std::string_view(ca.pem), std::string_view(to_string(ca.status)),
       std::int64_t{ca.auto_registration ? 1 : 0}, std::string_view(ca.registration_template),
       now_});
  if (!r) return fail(about(r.error(), "CA", ca.id));
  CaRecord out = ca;
  out.created_at = now_;
  return out;
}

Res<CaRecord> Tx::get_ca(std::string_view id) {
  auto row = one(db_.query("SELECT id, pem, status, auto_registration, registration_template, "
                           "created_at FROM cas WHERE id = $1",
                           {id}),
                 "CA", id);
  if (!row) return fail(row.error());
  return ca_from(row.value());
}

Res<CaRecord> Tx::update_ca(const CaRecord& ca) {
  auto r = db_.exec(
      "UPDATE cas SET status = $2, auto_registration = $3, registration_template = $4 "
      "WHERE id = $1",
      {std::string_view(ca.id), std::string_view(to_string(ca.status)),
       std::int64_t{ca.auto_registration ? 1 : 0}, std::string_view(ca.registration_template)});
  if (auto c = changed_one(std::move(r), "CA", ca.id); !c) return fail(c.error());
  return get_ca(ca.id);
}

Res<Page<CaRecord>> Tx::list_cas(const PageRequest& page) {
  if (auto c = check_page(page); !c) return fail(c.error());
  return page_of<CaRecord>(
      db_.query("SELECT id, pem, status, auto_registration, registration_template, created_at "
                "FROM cas WHERE id > $1 ORDER BY id LIMIT $2",
                {std::string_view(page.after), static_cast<std::int64_t>(page.limit + 1)}),
      page.limit, ca_from, +[](const CaRecord& c) { return c.id; });
}

// ---- provisioning templates ---------------------------------------------------------------

Res<ProvisioningTemplate> Tx::create_template(const ProvisioningTemplate& t) {
  if (!name_ok(t.name, 36, false)) {
    return fail(Errc::InvalidArgument,
                "invalid template name '" + t.name + "': 1-36 characters of [0-9A-Za-z_-]");
  }
  if (t.type != "FLEET_PROVISIONING" && t.type != "JITP") {
    return fail(Errc::InvalidArgument,
                "template type must be FLEET_PROVISIONING or JITP, not '" + t.type + "'");
  }
  auto r = db_.exec(
      "INSERT INTO provisioning_templates (name, body, template_type, description, enabled, "
      "version, created_at) VALUES ($1, $2, $3, $4, $5, 1, $6)",
      {std::string_view(t.name), std::string_view(t.body), std::string_view(t.type),
       std::string_view(t.description), std::int64_t{t.enabled ? 1 : 0}, now_});
  if (!r) return fail(about(r.error(), "template", t.name));
  ProvisioningTemplate out = t;
  out.version = 1;
  out.created_at = now_;
  return out;
}

Res<ProvisioningTemplate> Tx::get_template(std::string_view name) {
  auto row = one(db_.query("SELECT name, body, template_type, description, enabled, version, "
                           "created_at FROM provisioning_templates WHERE name = $1",
                           {name}),
                 "template", name);
  if (!row) return fail(row.error());
  return template_from(row.value());
}

Res<ProvisioningTemplate> Tx::update_template(const ProvisioningTemplate& t) {
  auto r = db_.exec(
      "UPDATE provisioning_templates SET body = $2, description = $3, enabled = $4, "
      "version = version + 1 WHERE name = $1",
      {std::string_view(t.name), std::string_view(t.body), std::string_view(t.description),
       std::int64_t{t.enabled ? 1 : 0}});
  if (auto c = changed_one(std::move(r), "template", t.name); !c) return fail(c.error());
  return get_template(t.name);
}

Res<void> Tx::delete_template(std::string_view name) {
  if (auto t = get_template(name); !t) return fail(t.error());
  auto used = exists(db_, "SELECT 1 FROM cas WHERE registration_template = $1", name);
  if (!used) return fail(used.error());
  if (used.value()) {
    return fail(Errc::Conflict, quoted("template", name) + " is a CA's registration template");
  }
  return changed_one(db_.exec("DELETE FROM provisioning_templates WHERE name = $1", {name}),
                     "template", name);
}

Res<Page<ProvisioningTemplate>> Tx::list_templates(const PageRequest& page) {
  if (auto c = check_page(page); !c) return fail(c.error());
  return page_of<ProvisioningTemplate>(
      db_.query("SELECT name, body, template_type, description, enabled, version, created_at "
                "FROM provisioning_templates WHERE name > $1 ORDER BY name LIMIT $2",
                {std::string_view(page.after), static_cast<std::int64_t>(page.limit + 1)}),
      page.limit, template_from, +[](const ProvisioningTemplate& t) { return t.name; });
}

}  // namespace edgekit::fleetd
