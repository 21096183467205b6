// Distinguished names: OpenSSL's slash form in, RFC 2253 out.
#include "openssl.hpp"

#include <openssl/err.h>

namespace edgekit::pki {

Result<Name> Name::parse(std::string_view text) {
  const std::string quoted = detail::quote(text);
  if (text.empty() || text.front() != '/') {
    return fail(detail::make_error(Errc::InvalidArgument,
                                   "name " + quoted +
                                       ": want the form /CN=thing-1/O=Example (a leading '/')"));
  }
  Name out;
  std::string part;
  bool ok = true;
  auto flush = [&] {
    const auto eq = part.find('=');
    if (eq == std::string::npos || eq == 0) {
      ok = false;
      return;
    }
    out.entries.push_back({part.substr(0, eq), part.substr(eq + 1)});
    part.clear();
  };
  for (std::size_t i = 1; i < text.size() && ok; ++i) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size()) {
      part.push_back(text[++i]);
    } else if (c == '/') {
      flush();
    } else {
      part.push_back(c);
    }
  }
  if (ok) flush();
  if (!ok) {
    return fail(detail::make_error(Errc::InvalidArgument,
                                   "name " + quoted + ": a component without field=value"));
  }
  // Field names and values are checked the way they will be encoded.
  auto x509 = detail::to_x509_name(out);
  if (!x509) {
    Error e = x509.error();
    e.message = "name " + quoted + ": " + e.message;
    return fail(std::move(e));
  }
  return out;
}

std::string Name::to_string() const {
  // [RFC 4514 2] least significant first, ',' between attributes; special characters escaped
  // with '\\', control characters as \\XX; UTF-8 stays as it is. Written here rather than with
  // X509_NAME_print_ex so that any name read from a certificate prints, whatever its fields.
  std::string out;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (!out.empty()) out.push_back(',');
    out += it->field;
    out.push_back('=');
    const std::string& v = it->value;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const auto c = static_cast<unsigned char>(v[i]);
      const bool edge_space = c == ' ' && (i == 0 || i + 1 == v.size());
      if (std::string_view(",+\"\\<>;").find(static_cast<char>(c)) != std::string_view::npos ||
          edge_space || (i == 0 && c == '#')) {
        out.push_back('\\');
        out.push_back(static_cast<char>(c));
      } else if (c < 0x20 || c == 0x7f) {
        static constexpr char kDigits[] = "0123456789ABCDEF";
        out.push_back('\\');
        out.push_back(kDigits[c >> 4]);
        out.push_back(kDigits[c & 15]);
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
  }
  return out;
}

std::string Name::common_name() const {
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (it->field == "CN") return it->value;
  }
  return "";
}

}  // namespace edgekit::pki
