#include "ca/authority.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "edgekit/json/json.hpp"
#include "edgekit/pkcs11/client.hpp"
#include "edgekit/pki/token.hpp"

namespace edgekit::fleetd::ca {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kRootSubject = "/O=edgekit/CN=fleetd root CA";
constexpr const char* kIssuingSubject = "/O=edgekit/CN=fleetd issuing CA";
constexpr const char* kRootLabel = "fleetd root CA";
constexpr const char* kIssuingLabel = "fleetd issuing CA";
constexpr const char* kCodeSigningLabel = "fleetd code signing";
constexpr const char* kCodeSigningSubject = "/O=edgekit/CN=fleetd code signing";
// The code-signing certificate's validity (bounded by the issuing CA's).
constexpr std::int64_t kCodeSigningValidityDays = 3 * 365;
// A device whose clock runs a little behind must still accept a certificate issued just now.
constexpr std::int64_t kBackdate = 300;

CaError unusable(std::string message) { return {Problem::Unusable, std::move(message)}; }

// A PIN read from its file; the bytes are wiped when it goes (they must not linger in freed
// memory, where a core dump would show them).
class Pin {
 public:
  ~Pin() { OPENSSL_cleanse(value_.data(), value_.size()); }
  std::string value_;
};

CaRes<void> read_pin(const std::string& path, Pin& pin) {
  if (path.empty()) return edgekit::Unexpected<CaError>{unusable("no PIN file configured")};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return edgekit::Unexpected<CaError>{
        unusable("cannot open the CA PIN file " + path + ": " + std::strerror(errno))};
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return edgekit::Unexpected<CaError>{unusable("the CA PIN file " + path + " is not a file")};
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return edgekit::Unexpected<CaError>{unusable(
        "the CA PIN file " + path + " may be read by group or others; chmod 600 it")};
  }
  char buf[256];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n < 0) {
    return edgekit::Unexpected<CaError>{unusable("cannot read the CA PIN file " + path)};
  }
  if (static_cast<std::size_t>(n) == sizeof buf) {
    // Not a PIN: refusing beats logging in with a truncated one.
    OPENSSL_cleanse(buf, sizeof buf);
    return edgekit::Unexpected<CaError>{
        unusable("the CA PIN file " + path + " holds 256 bytes or more; a PIN is one short line")};
  }
  pin.value_.assign(buf, static_cast<std::size_t>(n));
  OPENSSL_cleanse(buf, sizeof buf);
  while (!pin.value_.empty() && (pin.value_.back() == '\n' || pin.value_.back() == '\r')) {
    pin.value_.pop_back();
  }
  if (pin.value_.empty()) {
    return edgekit::Unexpected<CaError>{unusable("the CA PIN file " + path + " is empty")};
  }
  return {};
}

// Files other programs read (a broker's cafile, crlfile) are replaced whole: written beside,
// then renamed, so a reader sees the old file or the new one, never half of one.
Res<void> write_file(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) return fail(Errc::Unavailable, "cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return fail(Errc::Unavailable, "cannot replace " + path.string() + ": " + ec.message());
  return {};
}

std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

pki::Bytes random_bytes(std::size_t n) {
  pki::Bytes b(n);
  if (RAND_bytes(b.data(), static_cast<int>(n)) != 1) b.clear();
  return b;
}

std::string token_error(const pki::Error& e) {
  return e.token ? e.message + " (" + e.token->message() + ")" : e.message;
}

}  // namespace

std::string ca_dir(const std::string& state_dir) { return (fs::path(state_dir) / "ca").string(); }

bool exists(const std::string& state_dir) {
  return fs::exists(fs::path(ca_dir(state_dir)) / "ca.json");
}

struct Authority::Impl {
  fs::path dir;
  std::optional<pkcs11::Module> module;
  std::optional<pkcs11::Session> session;
  std::optional<pki::TokenSigner> root_key;
  std::optional<pki::TokenSigner> issuing_key;
  pki::CertificateInfo root;
  pki::CertificateInfo issuing;
  std::string crl_pem;
  std::uint64_t crl_number = 0;
  std::optional<pki::TokenSigner> code_key;
  pki::CertificateInfo code_certificate;

  // Loads the module and logs in to the token labelled as configured.
  CaRes<void> login(const TokenConfig& t) {
    if (!t.token_dir.empty()) {
      // edgekit's module reads its folder from the environment at C_Initialize.
      ::setenv("EDGEKIT_TOKEN_DIR", t.token_dir.c_str(), 1);
    }
    Pin pin;
    if (auto p = read_pin(t.pin_file, pin); !p) return p;
    auto m = pkcs11::Module::load(t.module_path);
    if (!m) {
      return edgekit::Unexpected<CaError>{unusable("cannot load the PKCS#11 module " +
                                                   t.module_path + ": " + m.error().message())};
    }
    module.emplace(std::move(*m));
    auto slot = module->find_token(t.token_label);
    if (!slot) {
      return edgekit::Unexpected<CaError>{unusable(
          "no token labelled '" + t.token_label + "' in " + t.module_path +
          " (initialise one, e.g. edgekit token init --label " + t.token_label + ")")};
    }
    auto s = module->open_session(*slot, true);
    if (!s) {
      return edgekit::Unexpected<CaError>{
          unusable("cannot open a session on token '" + t.token_label + "': " +
                   s.error().message())};
    }
    // Login state belongs to the application, not the session: another part of this process
    // (a TLS key in the same token) may have logged in already, which is no failure.
    if (auto l = s->login(pkcs11::UserType::User, pin.value_);
        !l && l.error().rv != CKR_USER_ALREADY_LOGGED_IN) {
      return edgekit::Unexpected<CaError>{unusable("the token '" + t.token_label +
                                                   "' refused the PIN of " + t.pin_file + ": " +
                                                   l.error().message())};
    }
    session.emplace(std::move(*s));
    return {};
  }

  CaRes<pki::TokenSigner> key(const pki::Bytes& id, const char* what) {
    auto h = session->find_one({CKO_PRIVATE_KEY, std::nullopt, id});
    if (!h) {
      return edgekit::Unexpected<CaError>{unusable(std::string("the ") + what +
                                                   " private key (id " + pki::to_hex(id) +
                                                   ") is not in the token: " +
                                                   h.error().message())};
    }
    auto signer = pki::TokenSigner::create(*session, *h);
    if (!signer) {
      return edgekit::Unexpected<CaError>{unusable(std::string("the ") + what +
                                                   " key cannot sign: " +
                                                   token_error(signer.error()))};
    }
    return std::move(*signer);
  }

  CaRes<void> remember_crl(const std::string& pem) {
    auto crl = pki::parse_crl(pem);
    if (!crl || !pki::verify_crl(*crl, issuing)) {
      return edgekit::Unexpected<CaError>{
          unusable("ca/crl.pem is not a CRL signed by the issuing CA; remove it and restart")};
    }
    crl_pem = pem;
    crl_number = crl->crl_number.value_or(0);
    return {};
  }
};

Authority::Authority(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Authority::~Authority() = default;

const pki::CertificateInfo& Authority::root() const { return impl_->root; }
const pki::CertificateInfo& Authority::issuing() const { return impl_->issuing; }
const std::string& Authority::crl_pem() const { return impl_->crl_pem; }

CaRes<std::unique_ptr<Authority>> Authority::create(const TokenConfig& token,
                                                    const std::string& state_dir,
                                                    std::int64_t now) {
  if (exists(state_dir)) {
    return edgekit::Unexpected<CaError>{
        {Problem::Exists, "the state folder already holds a CA (" + ca_dir(state_dir) +
                              "/ca.json); fleetd never replaces one"}};
  }
  auto impl = std::make_unique<Impl>();
  impl->dir = ca_dir(state_dir);
  std::error_code ec;
  fs::create_directories(impl->dir, ec);
  fs::permissions(impl->dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) {
    return edgekit::Unexpected<CaError>{
        unusable("cannot create " + impl->dir.string() + ": " + ec.message())};
  }
  if (auto l = impl->login(token); !l) return edgekit::Unexpected<CaError>{l.error()};

  // Fresh ids for each CA made: a failed attempt leaves keys behind that a new one cannot
  // confuse with its own.
  const pki::Bytes root_id = random_bytes(8);
  const pki::Bytes issuing_id = random_bytes(8);
  if (root_id.empty() || issuing_id.empty()) {
    return edgekit::Unexpected<CaError>{unusable("no random bytes for the key ids")};
  }
  for (const auto& [id, label] : {std::pair{&root_id, kRootLabel}, {&issuing_id, kIssuingLabel}}) {
    auto kp = pki::generate_token_key(*impl->session, pki::KeyAlgorithm::EcP256, label, *id);
    if (!kp) {
      return edgekit::Unexpected<CaError>{unusable(
          std::string("the token could not generate the ") + label + " key: " +
          token_error(kp.error()))};
    }
  }
  auto root_key = impl->key(root_id, "root CA");
  if (!root_key) return edgekit::Unexpected<CaError>{root_key.error()};
  impl->root_key.emplace(std::move(*root_key));
  auto issuing_key = impl->key(issuing_id, "issuing CA");
  if (!issuing_key) return edgekit::Unexpected<CaError>{issuing_key.error()};
  impl->issuing_key.emplace(std::move(*issuing_key));

  pki::IssueOptions o;
  o.profile = pki::Profile::Ca;
  o.subject = *pki::Name::parse(kRootSubject);
  o.not_before = now - kBackdate;
  o.not_after = now + kRootValidityDays * kDay;
  o.path_length = 1;
  auto root = pki::issue_certificate(impl->root_key->public_key_der(), o, nullptr, *impl->root_key);
  if (!root) {
    return edgekit::Unexpected<CaError>{
        unusable("cannot make the root CA certificate: " + token_error(root.error()))};
  }
  impl->root = std::move(*root);
  o.subject = *pki::Name::parse(kIssuingSubject);
  o.not_after = now + kIssuingValidityDays * kDay;
  o.path_length = 0;
  auto issuing = pki::issue_certificate(impl->issuing_key->public_key_der(), o, &impl->root,
                                        *impl->root_key);
  if (!issuing) {
    return edgekit::Unexpected<CaError>{
        unusable("cannot make the issuing CA certificate: " + token_error(issuing.error()))};
  }
  impl->issuing = std::move(*issuing);

  const json facts{{"version", 1},
                   {"tokenLabel", token.token_label},
                   {"rootKeyId", pki::to_hex(root_id)},
                   {"issuingKeyId", pki::to_hex(issuing_id)},
                   {"rootCertificateId", impl->root.id},
                   {"issuingCertificateId", impl->issuing.id}};
  std::unique_ptr<Authority> ca(new Authority(std::move(impl)));
  Impl& i = *ca->impl_;
  // ca.json last: it is what says "a CA is here", so an interrupted creation leaves none.
  for (const auto& [name, text] :
       {std::pair<const char*, std::string>{"root.pem", i.root.pem()},
        {"issuing.pem", i.issuing.pem()},
        {"chain.pem", i.issuing.pem() + i.root.pem()}}) {
    if (auto w = write_file(i.dir / name, text); !w) {
      return edgekit::Unexpected<CaError>{unusable(w.error().message)};
    }
  }
  if (auto c = ca->publish_crl({}, now); !c) {
    return edgekit::Unexpected<CaError>{unusable("cannot make the first CRL: " + c.error().message)};
  }
  if (auto w = write_file(i.dir / "ca.json", facts.dump(2) + "\n"); !w) {
    return edgekit::Unexpected<CaError>{unusable(w.error().message)};
  }
  return ca;
}

CaRes<std::unique_ptr<Authority>> Authority::open(const TokenConfig& token,
                                                  const std::string& state_dir,
                                                  std::int64_t now) {
  auto impl = std::make_unique<Impl>();
  impl->dir = ca_dir(state_dir);
  auto facts_text = read_file(impl->dir / "ca.json");
  if (!facts_text) {
    return edgekit::Unexpected<CaError>{
        {Problem::Missing, "no CA in " + impl->dir.string() +
                               " (create it with fleetd --init-ca, or start with "
                               "--ca-create-if-missing)"}};
  }
  const json facts = json::parse(*facts_text, nullptr, false);
  if (!facts.is_object() || !facts.contains("rootKeyId") || !facts["rootKeyId"].is_string() ||
      !facts.contains("issuingKeyId") || !facts["issuingKeyId"].is_string() ||
      !facts.contains("tokenLabel") || !facts["tokenLabel"].is_string()) {
    return edgekit::Unexpected<CaError>{unusable(impl->dir.string() + "/ca.json is damaged")};
  }
  if (facts["tokenLabel"] != token.token_label) {
    return edgekit::Unexpected<CaError>{unusable(
        "the CA's keys are in token '" + facts["tokenLabel"].get<std::string>() +
        "' (ca/ca.json) but the configuration names token '" + token.token_label + "'")};
  }
  auto root_id = pki::from_hex(facts["rootKeyId"].get<std::string>());
  auto issuing_id = pki::from_hex(facts["issuingKeyId"].get<std::string>());
  if (!root_id || !issuing_id) {
    return edgekit::Unexpected<CaError>{unusable(impl->dir.string() + "/ca.json is damaged")};
  }
  for (auto [name, cert] : {std::pair{"root.pem", &impl->root}, {"issuing.pem", &impl->issuing}}) {
    auto text = read_file(impl->dir / name);
    if (!text) {
      return edgekit::Unexpected<CaError>{
          unusable("the CA certificate " + (impl->dir / name).string() + " is missing")};
    }
    auto parsed = pki::parse_certificate(*text);
    if (!parsed) {
      return edgekit::Unexpected<CaError>{unusable(
          "the CA certificate " + (impl->dir / name).string() + " is damaged: " +
          parsed.error().message)};
    }
    *cert = std::move(*parsed);
  }
  if (auto l = impl->login(token); !l) return edgekit::Unexpected<CaError>{l.error()};
  auto root_key = impl->key(*root_id, "root CA");
  if (!root_key) return edgekit::Unexpected<CaError>{root_key.error()};
  impl->root_key.emplace(std::move(*root_key));
  auto issuing_key = impl->key(*issuing_id, "issuing CA");
  if (!issuing_key) return edgekit::Unexpected<CaError>{issuing_key.error()};
  impl->issuing_key.emplace(std::move(*issuing_key));

  // The certificates in the folder must be those of the keys in the token: a swapped file
  // would otherwise make fleetd sign with a key no relying party trusts.
  if (!pki::same_public_key(impl->root_key->public_key_der(), impl->root.public_key_der)) {
    return edgekit::Unexpected<CaError>{
        unusable("ca/root.pem does not hold the public key of the root CA key in the token")};
  }
  if (!pki::same_public_key(impl->issuing_key->public_key_der(), impl->issuing.public_key_der)) {
    return edgekit::Unexpected<CaError>{unusable(
        "ca/issuing.pem does not hold the public key of the issuing CA key in the token")};
  }
  if (auto v = pki::verify_issued_by(impl->issuing, impl->root); !v) {
    return edgekit::Unexpected<CaError>{
        unusable("ca/issuing.pem was not issued by ca/root.pem: " + v.error().message)};
  }
  for (const auto* c : {&impl->root, &impl->issuing}) {
    if (c->not_after <= now) {
      return edgekit::Unexpected<CaError>{
          unusable("the CA certificate '" + c->subject.to_string() + "' expired at " +
                   pki::utc_time_text(c->not_after) + "; make a new CA (docs/fleetd.md)")};
    }
  }
  if (auto crl = read_file(impl->dir / "crl.pem")) {
    if (auto r = impl->remember_crl(*crl); !r) return edgekit::Unexpected<CaError>{r.error()};
  }
  return std::unique_ptr<Authority>(new Authority(std::move(impl)));
}

Res<void> Authority::register_in(Tx& tx) const {
  for (const auto* c : {&impl_->root, &impl_->issuing}) {
    auto cur = tx.get_ca(c->id);
    if (cur) continue;
    if (cur.error().code != Errc::NotFound) return fail(cur.error());
    CaRecord r;
    r.id = c->id;
    r.pem = c->pem();
    r.status = CaStatus::Active;
    if (auto reg = tx.register_ca(r); !reg) return fail(reg.error());
  }
  return {};
}

Res<void> check_device_key(const pki::CsrInfo& csr) {
  const char* kIssues =
      "fleetd's CA issues certificates for EC P-256 (recommended), EC P-384 and RSA 2048 keys";
  if (!csr.key_algorithm) {
    return fail(Errc::InvalidArgument,
                std::string("the request's key is not EC P-256, P-384 or RSA 2048 (another "
                            "curve, key type or RSA size); ") + kIssues);
  }
  switch (*csr.key_algorithm) {
    case pki::KeyAlgorithm::EcP256:
    case pki::KeyAlgorithm::EcP384:
    case pki::KeyAlgorithm::Rsa2048: return {};
    default:
      return fail(Errc::InvalidArgument, std::string("the request's key is ") +
                                             pki::to_string(*csr.key_algorithm) + "; " + kIssues);
  }
}

Res<pki::CertificateInfo> Authority::issue(const pki::CsrInfo& csr, std::int64_t validity_days,
                                           std::int64_t now, Tx& tx) {
  if (auto k = check_device_key(csr); !k) return fail(k.error());
  if (csr.subject.empty()) {
    return fail(Errc::InvalidArgument,
                "the request's subject is empty; give it a common name (e.g. /CN=<thing name>)");
  }
  pki::IssueOptions o;
  o.profile = pki::Profile::Device;
  o.subject = csr.subject;
  o.not_before = now - kBackdate;
  o.not_after = std::min(now + validity_days * kDay, impl_->issuing.not_after);
  if (o.not_after <= now) {
    return fail(Errc::Internal, "the issuing CA has expired; make a new CA");
  }
  // 16 random bytes, the first in 0x01..0x7f: a positive serial of exactly 16 bytes (RFC 5280
  // 4.1.2.2 allows 20). A collision with an earlier certificate is checked, not assumed away.
  for (int attempt = 0; attempt < 4; ++attempt) {
    pki::Bytes serial = random_bytes(16);
    if (serial.empty()) return fail(Errc::Internal, "no random bytes for a serial number");
    serial[0] = static_cast<std::uint8_t>((serial[0] & 0x7f) | 0x01);
    o.serial_hex = pki::to_hex(serial);
    auto used = tx.serial_in_use(impl_->issuing.id, o.serial_hex);
    if (!used) return fail(used.error());
    if (!used.value()) break;
    o.serial_hex.clear();
  }
  if (o.serial_hex.empty()) return fail(Errc::Internal, "no unused serial number found");
  auto cert = pki::issue_certificate(csr.public_key_der, o, &impl_->issuing, *impl_->issuing_key);
  if (!cert) {
    const auto c = cert.error().code;
    const bool callers = c == pki::Errc::UnsupportedKey || c == pki::Errc::InvalidArgument ||
                         c == pki::Errc::Malformed;
    return fail(callers ? Errc::InvalidArgument : Errc::Internal,
                "the CA could not issue the certificate: " + token_error(cert.error()));
  }
  return std::move(*cert);
}

Res<pki::CrlInfo> Authority::publish_crl(const std::vector<RevokedSerial>& revoked,
                                         std::int64_t now) {
  pki::CrlOptions o;
  for (const auto& r : revoked) {
    // A certificate revoked before fleetd recorded revocation times is listed as of now.
    o.revoked.push_back({r.serial, r.revoked_at > 0 ? r.revoked_at : now});
  }
  o.this_update = now;
  o.next_update = now + kCrlValidity;
  // Grows across restarts and even a lost crl.pem: never below the time in seconds.
  o.crl_number = std::max<std::uint64_t>(impl_->crl_number + 1, static_cast<std::uint64_t>(now));
  auto crl = pki::make_crl(impl_->issuing, *impl_->issuing_key, o);
  if (!crl) return fail(Errc::Internal, "cannot make the CRL: " + token_error(crl.error()));
  const std::string pem = crl->pem();
  if (auto w = write_file(impl_->dir / "crl.pem", pem); !w) return fail(w.error());
  impl_->crl_pem = pem;
  impl_->crl_number = o.crl_number;
  return std::move(*crl);
}

Res<pki::Signature> Authority::sign_code(std::span<const std::uint8_t> image, std::int64_t now,
                                         pki::CertificateInfo& certificate) {
  Impl& i = *impl_;
  const fs::path facts_path = i.dir / "code-signing.json";
  const fs::path cert_path = i.dir / "code-signing.pem";
  if (!i.code_key) {
    pki::Bytes id;
    if (auto facts = read_file(facts_path)) {
      const json j = json::parse(*facts, nullptr, false);
      if (!j.is_object() || !j.contains("keyId") || !j["keyId"].is_string()) {
        return fail(Errc::Internal, facts_path.string() + " is damaged");
      }
      auto parsed = pki::from_hex(j["keyId"].get<std::string>());
      if (!parsed) return fail(Errc::Internal, facts_path.string() + " is damaged");
      id = std::move(*parsed);
    } else {
      // First use: a new key pair in the token, its id recorded before anything else depends
      // on it (a crash after this leaves a key that the next call finds and uses).
      id = random_bytes(8);
      if (id.empty()) return fail(Errc::Internal, "no random bytes for the key id");
      auto kp = pki::generate_token_key(*i.session, pki::KeyAlgorithm::EcP256, kCodeSigningLabel, id);
      if (!kp) {
        return fail(Errc::Internal,
                    "the token could not generate the code-signing key: " + token_error(kp.error()));
      }
      const json record{{"version", 1}, {"keyId", pki::to_hex(id)}};
      if (auto w = write_file(facts_path, record.dump(2) + "\n"); !w) return fail(w.error());
    }
    auto key = i.key(id, "code-signing");
    if (!key) return fail(Errc::Internal, key.error().message);
    i.code_key.emplace(std::move(*key));
    if (auto text = read_file(cert_path)) {
      auto parsed = pki::parse_certificate(*text);
      if (parsed && pki::same_public_key(parsed->public_key_der, i.code_key->public_key_der())) {
        i.code_certificate = std::move(*parsed);
      }
    }
  }
  if (i.code_certificate.der.empty() || i.code_certificate.not_after <= now) {
    pki::IssueOptions o;
    o.profile = pki::Profile::CodeSigning;
    o.subject = *pki::Name::parse(kCodeSigningSubject);
    o.not_before = now - kBackdate;
    o.not_after = std::min(now + kCodeSigningValidityDays * kDay, i.issuing.not_after);
    auto issued = pki::issue_certificate(i.code_key->public_key_der(), o, &i.issuing, *i.issuing_key);
    if (!issued) {
      return fail(Errc::Internal,
                  "cannot issue the code-signing certificate: " + token_error(issued.error()));
    }
    if (auto w = write_file(cert_path, issued->pem()); !w) return fail(w.error());
    i.code_certificate = std::move(*issued);
  }
  auto signature = i.code_key->sign(image);
  if (!signature) {
    return fail(Errc::Internal, "the token could not sign the image: " + token_error(signature.error()));
  }
  certificate = i.code_certificate;
  return std::move(*signature);
}

Res<pki::CrlInfo> refresh_crl(Authority& ca, Store& store) {
  std::int64_t now = 0;
  auto revoked = store.transact([&](Tx& tx) {
    now = tx.now();
    return tx.revoked_of_ca(ca.issuing().id);
  });
  if (!revoked) return fail(revoked.error());
  return ca.publish_crl(revoked.value(), now);
}

Certificate record_of(const Authority& ca, const pki::CertificateInfo& issued,
                      CertificateStatus status) {
  Certificate c;
  c.id = issued.id;
  c.pem = issued.pem();
  c.status = status;
  c.ca_id = ca.issuing().id;
  c.serial = issued.serial_hex;
  c.not_before = issued.not_before;
  c.not_after = issued.not_after;
  return c;
}

}  // namespace edgekit::fleetd::ca
