// Device Shadow records over the SQL seam (table of schema migration 6).

#include "store/shadows.hpp"

#include <algorithm>

namespace edgekit::fleetd {
namespace {

constexpr const char* kColumns =
    "thing_name, shadow_name, state, metadata, version, deleted, updated_at";

ShadowRecord from(const Row& r) {
  return ShadowRecord{r.text(0),    r.text(1),         r.text(2),   r.text(3),
                      r.integer(4), r.integer(5) != 0, r.integer(6)};
}

// AWS's names (aws-iot-protocols.md 0): [a-zA-Z0-9:_-], 1-128 for things, 1-64 for shadows.
bool name_ok(std::string_view s, std::size_t max) {
  return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
           c == '_' || c == '-';
  });
}

}  // namespace

Res<std::optional<ShadowRecord>> get_shadow(Tx& tx, std::string_view thing,
                                            std::string_view shadow) {
  auto rows = tx.db().query(std::string("SELECT ") + kColumns +
                                " FROM shadows WHERE thing_name = $1 AND shadow_name = $2",
                            {thing, shadow});
  if (!rows) return fail(rows.error());
  if (rows.value().empty()) return std::optional<ShadowRecord>();
  return std::optional<ShadowRecord>(from(rows.value().front()));
}

Res<void> put_shadow(Tx& tx, const ShadowRecord& r) {
  if (!name_ok(r.thing_name, 128)) {
    return fail(Errc::InvalidArgument, "invalid thing name '" + r.thing_name + "'");
  }
  if (!r.shadow_name.empty() && !name_ok(r.shadow_name, 64)) {
    return fail(Errc::InvalidArgument, "invalid shadow name '" + r.shadow_name + "'");
  }
  // One statement for insert and replace (both databases read ON CONFLICT alike), so two
  // fleetd instances creating one shadow at once cannot both insert.
  auto n = tx.db().exec(
      "INSERT INTO shadows (thing_name, shadow_name, state, metadata, version, deleted, updated_at)"
      " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (thing_name, shadow_name) DO UPDATE SET"
      " state = excluded.state, metadata = excluded.metadata, version = excluded.version,"
      " deleted = excluded.deleted, updated_at = excluded.updated_at",
      {std::string_view(r.thing_name), std::string_view(r.shadow_name), std::string_view(r.state),
       std::string_view(r.metadata), r.version, static_cast<std::int64_t>(r.deleted ? 1 : 0),
       tx.now()});
  if (!n) return fail(n.error());
  return {};
}

Res<Page<ShadowRecord>> list_shadows(Tx& tx, std::string_view thing, const PageRequest& page) {
  if (page.limit < 1 || page.limit > 1000) {
    return fail(Errc::InvalidArgument, "limit must be 1..1000");
  }
  auto rows = tx.db().query(
      std::string("SELECT ") + kColumns +
          " FROM shadows WHERE thing_name = $1 AND deleted = 0 AND shadow_name > $2"
          " ORDER BY shadow_name LIMIT $3",
      {thing, std::string_view(page.after), static_cast<std::int64_t>(page.limit + 1)});
  if (!rows) return fail(rows.error());
  Page<ShadowRecord> out;
  for (const Row& r : rows.value()) {
    if (out.items.size() == page.limit) {
      out.next = out.items.back().shadow_name;
      break;
    }
    out.items.push_back(from(r));
  }
  return out;
}

}  // namespace edgekit::fleetd
