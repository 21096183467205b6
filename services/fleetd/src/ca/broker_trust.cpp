#include "ca/broker_trust.hpp"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace edgekit::fleetd::ca {
namespace {

namespace fs = std::filesystem;

// OpenSSL's subject-name hash of a PEM certificate, as 8 hex digits (the name a hashed folder
// lookup tries), or empty when the PEM is unreadable.
std::string subject_hash(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return {};
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return {};
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08lx", X509_subject_name_hash(cert));
  X509_free(cert);
  return buf;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

Res<std::size_t> write_broker_trust(Store& store, const std::string& dir) {
  // Several CAs may share a subject hash: OpenSSL tries <hash>.0, .1, ... in turn.
  std::map<std::string, std::string> files;  // name -> PEM
  std::map<std::string, int> next;
  for (PageRequest page;;) {
    auto cas = store.transact([&](Tx& tx) { return tx.list_cas(page); });
    if (!cas) return fail(cas.error());
    for (const auto& ca : cas.value().items) {
      if (ca.status != CaStatus::Active) continue;
      const std::string hash = subject_hash(ca.pem);
      if (hash.empty()) continue;  // registered CAs were parsed when registered
      files[hash + "." + std::to_string(next[hash]++)] = ca.pem;
    }
    if (cas.value().next.empty()) break;
    page.after = cas.value().next;
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::permissions(dir,
                  fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                      fs::perms::others_read | fs::perms::others_exec,
                  fs::perm_options::replace, ec);
  if (ec) return fail(Errc::Internal, "cannot prepare " + dir + ": " + ec.message());
  for (const auto& [name, pem] : files) {
    const fs::path target = fs::path(dir) / name;
    if (fs::exists(target) && read_file(target) == pem) continue;
    const fs::path beside = fs::path(dir) / (".tmp-" + name);
    {
      std::ofstream out(beside, std::ios::binary | std::ios::trunc);
      out << pem;
      out.close();
      if (!out) return fail(Errc::Internal, "cannot write " + beside.string());
    }
    fs::rename(beside, target, ec);
    if (ec)
      return fail(Errc::Internal, "cannot rename to " + target.string() + ": " + ec.message());
  }
  static const std::regex kHashed("[0-9a-f]{8}\\.[0-9]+");
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, kHashed) && files.count(name) == 0) fs::remove(entry.path(), ec);
  }
  return files.size();
}

}  // namespace edgekit::fleetd::ca
