// Fleet provisioning records over the SQL seam (tables of schema migrations 3 and 4).

#include "store/claims.hpp"

namespace edgekit::fleetd {
namespace {

OwnershipToken token_from(const Row& r) {
  return OwnershipToken{r.text(0), r.text(1), r.text(2), r.integer(3), r.integer(4)};
}
constexpr const char* kTokenColumns =
    "token_id, certificate_id, claim_certificate_id, expires_at, used_at";

ProvisioningResult result_from(const Row& r) {
  return ProvisioningResult{r.text(0), r.text(1),    r.text(2), r.text(3),
                            r.text(4), r.integer(5), r.text(6), r.text(7)};
}
constexpr const char* kResultColumns =
    "certificate_id, thing_name, template_name, claim_certificate_id, client_id, provisioned_at, "
    "request_parameters, device_configuration";

}  // namespace

Res<void> record_ownership_token(Tx& tx, const OwnershipToken& t) {
  auto r = tx.db().exec(
      "INSERT INTO ownership_tokens (token_id, certificate_id, claim_certificate_id, expires_at, "
      "used_at) VALUES ($1, $2, $3, $4, 0)",
      {std::string_view(t.token_id), std::string_view(t.certificate_id),
       std::string_view(t.claim_certificate_id), t.expires_at});
  if (!r) return fail(r.error());
  return {};
}

Res<OwnershipToken> get_ownership_token(Tx& tx, std::string_view token_id) {
  auto rows = tx.db().query(
      std::string("SELECT ") + kTokenColumns + " FROM ownership_tokens WHERE token_id = $1",
      {token_id});
  if (!rows) return fail(rows.error());
  if (rows.value().empty()) {
    return fail(Errc::NotFound, "ownership token '" + std::string(token_id) + "' not found");
  }
  return token_from(rows.value().front());
}

Res<void> use_ownership_token(Tx& tx, std::string_view token_id) {
  // One statement that both checks and marks: two RegisterThing calls racing with one token
  // (on one fleetd or two sharing PostgreSQL) cannot both see it unused.
  auto n =
      tx.db().exec("UPDATE ownership_tokens SET used_at = $2 WHERE token_id = $1 AND used_at = 0",
                   {token_id, tx.now()});
  if (!n) return fail(n.error());
  if (n.value() != 1) {
    return fail(Errc::Conflict, "ownership token '" + std::string(token_id) + "' was used");
  }
  return {};
}

Res<std::vector<std::string>> sweep_expired_ownership_tokens(Tx& tx) {
  auto rows = tx.db().query(std::string("SELECT ") + kTokenColumns +
                                " FROM ownership_tokens WHERE expires_at < $1 ORDER BY token_id",
                            {tx.now()});
  if (!rows) return fail(rows.error());
  std::vector<std::string> removed;
  for (const Row& row : rows.value()) {
    const OwnershipToken t = token_from(row);
    if (t.used_at == 0) {
      auto cert = tx.get_certificate(t.certificate_id);
      if (cert && cert.value().status == CertificateStatus::PendingActivation) {
        auto things = tx.things_of(t.certificate_id);
        auto policies = tx.policies_of(t.certificate_id);
        if (!things) return fail(things.error());
        if (!policies) return fail(policies.error());
        if (things.value().empty() && policies.value().empty()) {
          if (auto d = tx.delete_certificate(t.certificate_id); !d) return fail(d.error());
          removed.push_back(t.certificate_id);
        }
      } else if (!cert && cert.error().code != Errc::NotFound) {
        return fail(cert.error());
      }
    }
    if (auto d = tx.db().exec("DELETE FROM ownership_tokens WHERE token_id = $1",
                              {std::string_view(t.token_id)});
        !d) {
      return fail(d.error());
    }
  }
  return removed;
}

Res<void> set_pre_provisioning_hook(Tx& tx, std::string_view name,
                                    const PreProvisioningHook& hook) {
  if (auto t = tx.get_template(name); !t) return fail(t.error());
  if (auto d = tx.db().exec("DELETE FROM template_hooks WHERE template_name = $1", {name}); !d) {
    return fail(d.error());
  }
  if (hook.target.empty()) return {};
  auto r = tx.db().exec(
      "INSERT INTO template_hooks (template_name, target, payload_version) VALUES ($1, $2, $3)",
      {name, std::string_view(hook.target), std::string_view(hook.payload_version)});
  if (!r) return fail(r.error());
  return {};
}

Res<std::optional<PreProvisioningHook>> get_pre_provisioning_hook(Tx& tx, std::string_view name) {
  auto rows = tx.db().query(
      "SELECT target, payload_version FROM template_hooks WHERE template_name = $1", {name});
  if (!rows) return fail(rows.error());
  if (rows.value().empty()) return std::optional<PreProvisioningHook>();
  const Row& r = rows.value().front();
  return std::optional<PreProvisioningHook>(PreProvisioningHook{r.text(0), r.text(1)});
}

Res<void> record_provisioning_result(Tx& tx, const ProvisioningResult& p) {
  auto r = tx.db().exec(
      "INSERT INTO provisioning_results (certificate_id, thing_name, template_name, "
      "claim_certificate_id, client_id, provisioned_at, request_parameters, device_configuration) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
      {std::string_view(p.certificate_id), std::string_view(p.thing_name),
       std::string_view(p.template_name), std::string_view(p.claim_certificate_id),
       std::string_view(p.client_id), tx.now(), std::string_view(p.request_parameters),
       std::string_view(p.device_configuration)});
  if (!r) return fail(r.error());
  return {};
}

Res<std::optional<ProvisioningResult>> get_provisioning_result(Tx& tx,
                                                               std::string_view certificate_id) {
  auto rows = tx.db().query(std::string("SELECT ") + kResultColumns +
                                " FROM provisioning_results WHERE certificate_id = $1",
                            {certificate_id});
  if (!rows) return fail(rows.error());
  if (rows.value().empty()) return std::optional<ProvisioningResult>();
  return std::optional<ProvisioningResult>(result_from(rows.value().front()));
}

Res<Page<ProvisioningResult>> list_provisioning_results(Tx& tx, const PageRequest& page) {
  if (page.limit == 0 || page.limit > 1000) {
    return fail(Errc::InvalidArgument, "page size must be 1..1000");
  }
  auto rows =
      tx.db().query(std::string("SELECT ") + kResultColumns +
                        " FROM provisioning_results WHERE certificate_id > $1 "
                        "ORDER BY certificate_id LIMIT $2",
                    {std::string_view(page.after), static_cast<std::int64_t>(page.limit + 1)});
  if (!rows) return fail(rows.error());
  Page<ProvisioningResult> out;
  for (const Row& r : rows.value()) out.items.push_back(result_from(r));
  if (out.items.size() > page.limit) {
    out.items.resize(page.limit);
    out.next = out.items.back().certificate_id;
  }
  return out;
}

}  // namespace edgekit::fleetd
