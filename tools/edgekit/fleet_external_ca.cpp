// edgekit fleet external-ca: a customer's own CA on the command line, for trying and testing
// just-in-time registration and provisioning (docs/fleetd.md, "Just-in-time registration"):
// `create` makes a self-signed CA (EC P-256, its key in a file), `issue` signs a device
// certificate with it — for a CSR (e.g. `edgekit token csr`, the key staying in the device's
// token) or for a new key written to a file. The CA is then registered with auto-registration
// (`edgekit fleet cas register --active --auto-registration [--template ...]`) and its devices
// are registered by fleetd at their first connection.
//
// Local only: no fleetd is involved. The CA key is an unencrypted file (mode 0600), which is
// what makes this a test CA; a production CA keeps its key in an HSM or a token.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "commands.hpp"
#include "edgekit/pki/certificate.hpp"
#include "edgekit/pki/csr.hpp"
#include "edgekit/pki/keys.hpp"

namespace edgekit::tools {
// This file's helpers, in a namespace of their own: a unity build (EDGEKIT_UNITY_BUILD) compiles
// several command files as one translation unit.
namespace cmd_fleet_external_ca {
namespace {

namespace fs = std::filesystem;

enum Exit { kOk = 0, kFailed = 1, kUsage = 2 };

struct ExternalCaOptions {
  std::string dir;
  std::string subject;
  std::string csr;
  std::string new_key;
  std::string out;
  int days = 0;
};

bool read(const std::string& path, std::string& text) {
  std::ifstream in(path, std::ios::binary);
  if (!in || fs::is_directory(path)) {
    std::fprintf(stderr, "edgekit fleet external-ca: cannot read %s\n", path.c_str());
    return false;
  }
  std::stringstream s;
  s << in.rdbuf();
  text = s.str();
  return true;
}

// Written beside and renamed; `secret` files are created 0600 before anything is written.
bool write(const std::string& path, const std::string& text, bool secret) {
  const std::string beside = path + ".tmp";
  const mode_t old = secret ? ::umask(077) : ::umask(022);
  {
    std::ofstream out(beside, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    ::umask(old);
    if (!out) {
      std::fprintf(stderr, "edgekit fleet external-ca: cannot write %s\n", path.c_str());
      return false;
    }
  }
  std::error_code ec;
  fs::rename(beside, path, ec);
  if (ec) {
    std::fprintf(stderr, "edgekit fleet external-ca: cannot write %s: %s\n", path.c_str(),
                 ec.message().c_str());
    return false;
  }
  return true;
}

int failed(const char* what, const pki::Error& e) {
  std::fprintf(stderr, "edgekit fleet external-ca: %s: %s\n", what, e.message.c_str());
  return kFailed;
}

std::int64_t now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

int run_create(const ExternalCaOptions& o) {
  const fs::path key_file = fs::path(o.dir) / "ca.key";
  const fs::path cert_file = fs::path(o.dir) / "ca.crt";
  if (fs::exists(key_file) || fs::exists(cert_file)) {
    std::fprintf(stderr, "edgekit fleet external-ca: %s already holds a CA; not replacing it\n",
                 o.dir.c_str());
    return kUsage;
  }
  auto subject = pki::Name::parse(o.subject);
  if (!subject) return failed("--subject", subject.error());
  if (o.days < 1 || o.days > 7300) {
    std::fprintf(stderr, "edgekit fleet external-ca: --days must be 1-7300\n");
    return kUsage;
  }
  auto key = pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP256);
  if (!key) return failed("key", key.error());
  pki::IssueOptions io;
  io.profile = pki::Profile::Ca;
  io.subject = subject.value();
  io.not_before = now() - 300;
  io.not_after = now() + std::int64_t{o.days} * 86400;
  io.path_length = 0;
  auto cert = pki::issue_certificate(key->public_key_der(), io, nullptr, key.value());
  if (!cert) return failed("CA certificate", cert.error());
  std::error_code ec;
  fs::create_directories(o.dir, ec);
  if (ec) {
    std::fprintf(stderr, "edgekit fleet external-ca: cannot create %s\n", o.dir.c_str());
    return kUsage;
  }
  if (!write(key_file.string(), key->private_key_pem(), true) ||
      !write(cert_file.string(), cert->pem(), false)) {
    return kUsage;
  }
  std::printf("CA certificate %s\nid %s\nkey %s (unencrypted: a test CA)\n", cert_file.c_str(),
              cert->id.c_str(), key_file.c_str());
  return kOk;
}

int run_issue(const ExternalCaOptions& o) {
  if (o.csr.empty() == o.new_key.empty()) {
    std::fprintf(stderr,
                 "edgekit fleet external-ca issue: give exactly one of --csr and --new-key\n");
    return kUsage;
  }
  if (o.days < 1 || o.days > 3650) {
    std::fprintf(stderr, "edgekit fleet external-ca: --days must be 1-3650\n");
    return kUsage;
  }
  std::string ca_key_pem, ca_pem;
  if (!read((fs::path(o.dir) / "ca.key").string(), ca_key_pem) ||
      !read((fs::path(o.dir) / "ca.crt").string(), ca_pem)) {
    return kUsage;
  }
  auto ca_key = pki::SoftwareSigner::from_pem(ca_key_pem);
  if (!ca_key) return failed("CA key", ca_key.error());
  auto ca = pki::parse_certificate(ca_pem);
  if (!ca) return failed("CA certificate", ca.error());

  pki::IssueOptions io;
  io.profile = pki::Profile::Device;
  io.not_before = now() - 300;
  io.not_after = std::min(now() + std::int64_t{o.days} * 86400, ca->not_after);
  pki::Bytes public_key;
  std::optional<pki::SoftwareSigner> device_key;
  if (!o.csr.empty()) {
    std::string csr_pem;
    if (!read(o.csr, csr_pem)) return kUsage;
    auto csr = pki::parse_csr(csr_pem);  // its signature is checked with its own key
    if (!csr) return failed("--csr", csr.error());
    public_key = csr->public_key_der;
    io.subject = csr->subject;
  } else {
    auto k = pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP256);
    if (!k) return failed("key", k.error());
    public_key = k->public_key_der();
    device_key = std::move(k.value());
  }
  if (!o.subject.empty()) {
    auto subject = pki::Name::parse(o.subject);
    if (!subject) return failed("--subject", subject.error());
    io.subject = subject.value();
  }
  if (io.subject.empty()) {
    std::fprintf(stderr, "edgekit fleet external-ca issue: --subject is required with --new-key\n");
    return kUsage;
  }
  auto cert = pki::issue_certificate(public_key, io, &ca.value(), ca_key.value());
  if (!cert) return failed("certificate", cert.error());
  if (device_key && !write(o.new_key, device_key->private_key_pem(), true)) return kUsage;
  if (!write(o.out, cert->pem(), false)) return kUsage;
  std::printf("certificate %s\nid %s\nsubject %s\n", o.out.c_str(), cert->id.c_str(),
              cert->subject.to_string().c_str());
  return kOk;
}

}  // namespace
}  // namespace cmd_fleet_external_ca

void add_fleet_external_ca_command(CLI::App& fleet, int& exit_code) {
  using namespace cmd_fleet_external_ca;
  auto o = std::make_shared<ExternalCaOptions>();
  CLI::App* g = fleet.add_subcommand(
      "external-ca", "a test CA of your own for just-in-time registration (local; key in a file)");
  g->require_subcommand(1);
  g->fallthrough();
  auto* create = g->add_subcommand("create", "make a self-signed CA in --dir (ca.crt, ca.key)");
  create->add_option("--dir", o->dir, "the CA's folder")->required();
  create->add_option("--subject", o->subject, "the CA's subject (default /CN=edgekit external CA)");
  create->add_option("--days", o->days, "validity in days (default 365)");
  create->callback([o, &exit_code] {
    if (o->subject.empty()) o->subject = "/CN=edgekit external CA";
    if (o->days == 0) o->days = 365;
    exit_code = run_create(*o);
  });
  auto* issue = g->add_subcommand(
      "issue", "issue a device certificate for a CSR (--csr) or a new key file (--new-key)");
  issue->add_option("--dir", o->dir, "the CA's folder (from create)")->required();
  issue->add_option("--csr", o->csr, "a PKCS#10 request, PEM (e.g. from edgekit token csr)");
  issue->add_option("--new-key", o->new_key, "generate a P-256 key and write it here (0600)");
  issue->add_option("--subject", o->subject,
                    "subject, e.g. /CN=sensor-9/C=DE (default: the request's)");
  issue->add_option("--days", o->days, "validity in days (1-3650; default 30)");
  issue->add_option("--out", o->out, "write the certificate PEM here")->required();
  issue->callback([o, &exit_code] {
    if (o->days == 0) o->days = 30;
    exit_code = run_issue(*o);
  });
}

}  // namespace edgekit::tools
