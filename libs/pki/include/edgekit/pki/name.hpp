#pragma once
/// \file
/// X.509 distinguished names: parsed from OpenSSL's slash form ("/CN=thing-1/O=Example"),
/// printed in RFC 2253 form ("O=Example,CN=thing-1"). Thread safety: a value type.

#include <edgekit/pki/error.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace edgekit::pki {

/// One attribute of a name: its short field name ("CN", "O", "C", or a dotted OID) and its
/// value (UTF-8).
struct NameEntry {
  std::string field;
  std::string value;
  friend bool operator==(const NameEntry&, const NameEntry&) = default;
};

/// A distinguished name, its attributes in order (most significant first, as in the slash form
/// and in the DER).
struct Name {
  std::vector<NameEntry> entries;

  /// Parses "/CN=thing-1/O=Acme/C=DE"; "\/" is a literal slash, "\\" a backslash. Each field
  /// must be one OpenSSL knows (CN, O, OU, C, ST, L, serialNumber, ... or a dotted OID) and each
  /// value acceptable for it (e.g. C has two letters).
  /// Errors: InvalidArgument naming the text and the problem (no leading '/', a component
  /// without field=value, an unknown field, a bad value).
  static Result<Name> parse(std::string_view slash_form);

  /// RFC 2253 form, least significant first: "O=Acme,CN=thing-1" (OpenSSL's XN_FLAG_RFC2253
  /// escaping); "" for an empty name.
  [[nodiscard]] std::string to_string() const;
  /// The value of the (last) CN attribute, "" when there is none.
  [[nodiscard]] std::string common_name() const;
  [[nodiscard]] bool empty() const { return entries.empty(); }
  friend bool operator==(const Name&, const Name&) = default;
};

}  // namespace edgekit::pki
