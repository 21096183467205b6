// Names of the client's causes and their std::error_category.
#include "edgekit/core/error_category.hpp"
#include "edgekit/pkcs11/client.hpp"

namespace edgekit::pkcs11 {

const char* to_string(Cause cause) noexcept {
  switch (cause) {
    case Cause::Module: return "PKCS#11 function failed";
    case Cause::LoadFailed: return "cannot load PKCS#11 module";
    case Cause::NotFound: return "no object matches";
    case Cause::Ambiguous: return "more than one object matches";
    case Cause::BadArgument: return "bad argument";
  }
  return "unknown";
}

const std::error_category& pkcs11_category() noexcept {
  static const EnumErrorCategory<Cause, to_string> category("edgekit.pkcs11");
  return category;
}

}  // namespace edgekit::pkcs11
