#pragma once
/// \file
/// fleetd's error model: an `Errc` wired into `std::error_code` (category "edgekit.fleetd") and
/// an `Error` that carries the code with a message naming the cause (the table, the key, the
/// database's own words), because an operator reading a log needs both.

#include <string>
#include <system_error>
#include <utility>

#include "edgekit/core/result.hpp"

namespace edgekit::fleetd {

enum class Errc {
  Ok = 0,           ///< unused: a std::error_code of 0 tests false
  NotFound,         ///< the named record does not exist
  AlreadyExists,    ///< a record with that key exists
  Conflict,         ///< the change would break a rule (expected version differs, a record still
                    ///< referenced, an attachment to a missing record)
  InvalidArgument,  ///< a value the store refuses (empty name, bad status, page size 0)
  StoreLocked,      ///< another process holds the store (another fleetd on the same state folder)
  StoreCorrupt,     ///< the database file or its schema is damaged
  StoreTooNew,      ///< the store's schema is newer than this fleetd knows; refusing to touch it
  Busy,             ///< a concurrent writer won; the transaction may be retried
  Unavailable,      ///< the database cannot be reached (PostgreSQL down, connection lost)
  Internal,         ///< anything else the database reported (the message says what)
};

/// Static name of each code ("not found", ...).
const char* to_string(Errc e) noexcept;
const std::error_category& fleetd_category() noexcept;
inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), fleetd_category()};
}

/// A failure: the code to branch on and a message for people.
struct Error {
  Errc code = Errc::Internal;
  std::string message;
};

template <class T>
using Res = edgekit::Result<T, Error>;

/// `return fail(Errc::NotFound, "thing 'x' not found");`
inline edgekit::Unexpected<Error> fail(Errc code, std::string message) {
  return edgekit::Unexpected<Error>{Error{code, std::move(message)}};
}
inline edgekit::Unexpected<Error> fail(Error e) { return edgekit::Unexpected<Error>{std::move(e)}; }

}  // namespace edgekit::fleetd

template <>
struct std::is_error_code_enum<edgekit::fleetd::Errc> : std::true_type {};
