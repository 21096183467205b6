#include "store/errc.hpp"

#include "edgekit/core/error_category.hpp"

namespace edgekit::fleetd {

const char* to_string(Errc e) noexcept {
  switch (e) {
    case Errc::Ok: return "ok";
    case Errc::NotFound: return "not found";
    case Errc::AlreadyExists: return "already exists";
    case Errc::Conflict: return "conflict";
    case Errc::InvalidArgument: return "invalid argument";
    case Errc::StoreLocked: return "store locked by another process";
    case Errc::StoreCorrupt: return "store corrupt";
    case Errc::StoreTooNew: return "store schema newer than this fleetd";
    case Errc::Busy: return "busy";
    case Errc::Unavailable: return "store unavailable";
    case Errc::Internal: return "internal store error";
  }
  return "unknown fleetd error";
}

const std::error_category& fleetd_category() noexcept {
  static const EnumErrorCategory<Errc, to_string> category("edgekit.fleetd");
  return category;
}

}  // namespace edgekit::fleetd
