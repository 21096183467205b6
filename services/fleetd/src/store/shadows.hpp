#pragma once
/// \file
/// The store's Device Shadow records (aws-iot-protocols.md 1): one row per (thing, shadow name),
/// the classic shadow under the empty name. A deleted shadow keeps its row, marked deleted, so
/// that a shadow created again continues the old version numbering (1.5); fleetd keeps it for
/// good (AWS restarts the numbering after 48 hours). A shadow does not need its thing to be
/// registered and outlives a deleted thing, as on AWS (1.5).
///
/// Kept beside the registry's operations (store.hpp), over the same transaction, in the table of
/// schema migration 6. Thread safety: that of `Tx`.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/store.hpp"

namespace edgekit::fleetd {

struct ShadowRecord {
  std::string thing_name;
  std::string shadow_name;  ///< empty: the classic shadow
  std::string state;        ///< JSON object {desired?, reported?} ("{}" once deleted)
  std::string metadata;     ///< JSON object of the same shape, {"timestamp":T} per leaf
  std::int64_t version = 0;
  bool deleted = false;
  std::int64_t updated_at = 0;  ///< epoch seconds (set by put_shadow to tx.now())
};

/// The record of (thing, shadow), deleted or not; nullopt when there never was one.
[[nodiscard]] Res<std::optional<ShadowRecord>> get_shadow(Tx& tx, std::string_view thing,
                                                          std::string_view shadow);
/// Inserts or replaces the record of (r.thing_name, r.shadow_name), stamped with tx.now().
/// InvalidArgument for a thing name or shadow name outside AWS's rules (section 0).
[[nodiscard]] Res<void> put_shadow(Tx& tx, const ShadowRecord& r);
/// The named shadows of `thing` that exist (not deleted), by name, keyset-paginated like the
/// registry's lists (`page.after` is a shadow name); as AWS's ListNamedShadowsForThing, the
/// classic shadow is not listed (ask `get_shadow` with the empty name).
[[nodiscard]] Res<Page<ShadowRecord>> list_shadows(Tx& tx, std::string_view thing,
                                                   const PageRequest& page);

}  // namespace edgekit::fleetd
