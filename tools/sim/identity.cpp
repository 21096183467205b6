// The simulator's device identities. See identity.hpp for the contract.
#include "identity.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

namespace edgekit::sim {

namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kDay = 86400;

// Owners of OpenSSL objects.
template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const noexcept { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX, SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Deleter<SSL, SSL_free>>;

// OpenSSL's first queued reason, and clears the queue.
std::string ossl(const char* step) {
  const unsigned long code = ERR_peek_error();
  std::string out = step;
  out += ": ";
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    out += buf;
  } else {
    out += "no details from OpenSSL";
  }
  ERR_clear_error();
  return out;
}

std::time_t now_seconds() { return std::time(nullptr); }

// Thread CPU time, for the measurements.
double thread_cpu_us() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

bool valid_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == ':';
}

// Writes `bytes` to `path` (mode 0600) through a temporary file and a rename, so that a run
// interrupted half-way never leaves a torn file for the next run to trip over.
IdentityResult<void> write_private_file(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail(tmp + ": cannot create: " + std::strerror(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      return fail(tmp + ": cannot write: " + why);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) return fail(tmp + ": cannot write: " + std::strerror(errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(path + ": cannot rename into place: " + std::strerror(errno));
  }
  return {};
}

// The whole file, or nothing when it does not exist. The caller wipes it when it holds a key.
IdentityResult<std::string> read_file(const std::string& path, bool& exists) {
  exists = false;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    if (errno == ENOENT) return std::string();
    return fail(path + ": cannot read: " + std::strerror(errno));
  }
  exists = true;
  std::string out(static_cast<std::size_t>(std::max<std::streamoff>(in.tellg(), 0)), '\0');
  in.seekg(0);
  if (!in.read(out.data(), static_cast<std::streamsize>(out.size()))) {
    return fail(path + ": cannot read");
  }
  return out;
}

void wipe(std::string& s) noexcept {
  OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

std::string to_pem(X509* cert) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_X509(b.get(), cert) != 1) return {};
  char* data = nullptr;
  const long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// The key as unencrypted SEC1 PEM ("EC PRIVATE KEY"), which tls::ClientIdentity reads about four
// times faster than PKCS#8 under OpenSSL 3.0; wiped from the BIO's memory when it is freed.
std::string key_pem(EVP_PKEY* key) {
  BioPtr b(BIO_new(BIO_s_secmem()));
  if (!b) b.reset(BIO_new(BIO_s_mem()));
  if (!b ||
      PEM_write_bio_PrivateKey_traditional(b.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return {};
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(b.get(), &data);
  std::string out(data, static_cast<std::size_t>(n));
  OPENSSL_cleanse(data, static_cast<std::size_t>(n));
  return out;
}

// An extension from OpenSSL's configuration syntax ("critical,CA:TRUE"), in `ctx`'s context
// (issuer and subject set when it needs them).
ExtPtr extension(X509V3_CTX* ctx, int nid, const char* value) {
  return ExtPtr(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
}

// A random positive 16-byte serial (RFC 5280 4.1.2.2: unique per CA, at most 20 bytes).
bool random_serial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return false;
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01;  // never a leading zero byte: always 16 bytes long
  BIGNUM* bn = BN_bin2bn(bytes, sizeof bytes, nullptr);
  const bool ok = bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != nullptr;
  BN_free(bn);
  return ok;
}

}  // namespace

// --- the factory ---------------------------------------------------------------------------------

struct IdentityFactory::Impl {
  X509Ptr ca;
  PkeyPtr ca_key;
  std::string ca_pem;
  // Reused for every key: the group is set up once (a fresh context per key costs more than
  // the key itself).
  PkeyCtxPtr keygen;
  // The extensions every device certificate carries, made once and copied into each.
  std::vector<ExtPtr> device_extensions;

  IdentityResult<PkeyPtr> new_key() {
    EVP_PKEY* key = nullptr;
    if (EVP_PKEY_generate(keygen.get(), &key) != 1) return fail(ossl("key generation"));
    return PkeyPtr(key);
  }

  // A certificate for `key` with `subject`, signed by `signer` as `issuer` (null: self-signed),
  // with `extensions` (null: a CA's).
  IdentityResult<X509Ptr> certify(EVP_PKEY* key, X509_NAME* subject, X509* issuer, EVP_PKEY* signer,
                          std::int64_t validity, const std::vector<ExtPtr>* extensions) {
    const bool is_ca = extensions == nullptr;
    X509Ptr cert(X509_new());
    if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1 || !random_serial(cert.get()) ||
        X509_set_subject_name(cert.get(), subject) != 1 ||
        X509_set_issuer_name(cert.get(),
                             issuer != nullptr ? X509_get_subject_name(issuer) : subject) != 1 ||
        X509_set_pubkey(cert.get(), key) != 1) {
      return fail(ossl("certificate"));
    }
    std::time_t now = now_seconds();
    // An hour before now: a broker whose clock is a little behind still accepts it.
    if (X509_time_adj_ex(X509_getm_notBefore(cert.get()), 0, -3600, &now) == nullptr ||
        X509_time_adj_ex(X509_getm_notAfter(cert.get()), static_cast<int>(validity / kDay),
                         static_cast<long>(validity % kDay), &now) == nullptr) {
      return fail(ossl("certificate validity"));
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
    // Subject key id from this key; the authority key id is the issuer's (strict X.509, as
    // fleetd's pki::verify_chain checks, wants both).
    std::vector<ExtPtr> own;
    own.push_back(extension(&ctx, NID_subject_key_identifier, "hash"));
    if (is_ca) {
      own.push_back(extension(&ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
      own.push_back(extension(&ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
    }
    for (const ExtPtr& e : own) {
      if (!e || X509_add_ext(cert.get(), e.get(), -1) != 1) return fail(ossl("extension"));
    }
    if (!is_ca) {
      for (const ExtPtr& e : *extensions) {
        if (X509_add_ext(cert.get(), e.get(), -1) != 1) return fail(ossl("extension"));
      }
    }
    if (X509_sign(cert.get(), signer, EVP_sha256()) == 0) return fail(ossl("sign"));
    return cert;
  }
};

IdentityFactory::IdentityFactory(IdentityOptions options, std::unique_ptr<Impl> impl) noexcept
    : options_(std::move(options)), impl_(std::move(impl)) {}
IdentityFactory::IdentityFactory(IdentityFactory&&) noexcept = default;
IdentityFactory& IdentityFactory::operator=(IdentityFactory&&) noexcept = default;
IdentityFactory::~IdentityFactory() = default;

const std::string& IdentityFactory::ca_certificate_pem() const noexcept { return impl_->ca_pem; }

IdentityResult<void> IdentityFactory::write_ca_certificate(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!(out << impl_->ca_pem) || !out.flush()) return fail(path + ": cannot write");
  return {};
}

IdentityResult<IdentityFactory> IdentityFactory::create(IdentityOptions options) {
  if (options.prefix.empty()) return fail(std::string("the thing-name prefix is empty"));
  for (char c : options.prefix) {
    if (!valid_name_char(c)) {
      return fail("the prefix \"" + options.prefix + "\" has a character a thing name may not have");
    }
  }
  if (options.validity.count() < 2 * kDay) return fail(std::string("validity is under two days"));
  ERR_clear_error();
  auto impl = std::make_unique<Impl>();
  impl->keygen.reset(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!impl->keygen || EVP_PKEY_keygen_init(impl->keygen.get()) != 1 ||
      EVP_PKEY_CTX_set_group_name(impl->keygen.get(), "P-256") != 1) {
    return fail(ossl("P-256 key generation"));
  }

  const std::string& dir = options.cache_dir;
  const std::time_t now = now_seconds();
  if (!dir.empty()) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return fail(dir + ": cannot create: " + ec.message());
    ::chmod(dir.c_str(), 0700);
    // A cached CA still valid for a day is reused, so that its devices are too.
    bool have_cert = false;
    bool have_key = false;
    auto cert_pem = read_file(dir + "/ca.crt", have_cert);
    if (!cert_pem) return fail(cert_pem.error());
    auto key = read_file(dir + "/ca.key", have_key);
    if (!key) return fail(key.error());
    if (have_cert && have_key) {
      BioPtr cb(BIO_new_mem_buf(cert_pem->data(), static_cast<int>(cert_pem->size())));
      BioPtr kb(BIO_new_mem_buf(key->data(), static_cast<int>(key->size())));
      impl->ca.reset(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
      impl->ca_key.reset(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
      wipe(*key);
      std::time_t soon = now + kDay;
      if (!impl->ca || !impl->ca_key || X509_check_private_key(impl->ca.get(), impl->ca_key.get()) != 1 ||
          X509_cmp_time(X509_get0_notAfter(impl->ca.get()), &soon) <= 0) {
        impl->ca.reset();  // unusable or expiring: a new CA
        impl->ca_key.reset();
      }
      ERR_clear_error();
    }
  }
  if (!impl->ca) {
    auto key = impl->new_key();
    if (!key) return fail(key.error());
    X509_NAME* name = X509_NAME_new();
    const std::string cn = options.prefix + " simulator CA";
    const bool named =
        name != nullptr &&
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>("edgekit simulator"), -1,
                                   -1, 0) == 1 &&
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                   0) == 1;
    if (!named) {
      X509_NAME_free(name);
      return fail(ossl("CA name"));
    }
    auto ca = impl->certify(key->get(), name, nullptr, key->get(), options.validity.count(), nullptr);
    X509_NAME_free(name);
    if (!ca) return fail(ca.error());
    impl->ca = std::move(*ca);
    impl->ca_key = std::move(*key);
    if (!dir.empty()) {
      std::string k = key_pem(impl->ca_key.get());
      auto wk = write_private_file(dir + "/ca.key", k);
      wipe(k);
      if (!wk) return fail(wk.error());
      if (auto wc = write_private_file(dir + "/ca.crt", to_pem(impl->ca.get())); !wc) {
        return fail(wc.error());
      }
    }
  }
  impl->ca_pem = to_pem(impl->ca.get());

  // Device extensions (RFC 5280 4.2): an end entity that signs (ECDSA handshakes) as a TLS
  // client; the authority key id names this CA's key.
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, impl->ca.get(), nullptr, nullptr, nullptr, 0);
  impl->device_extensions.push_back(extension(&ctx, NID_basic_constraints, "critical,CA:FALSE"));
  impl->device_extensions.push_back(extension(&ctx, NID_key_usage, "critical,digitalSignature"));
  impl->device_extensions.push_back(extension(&ctx, NID_ext_key_usage, "clientAuth"));
  impl->device_extensions.push_back(extension(&ctx, NID_authority_key_identifier, "keyid:always"));
  for (const ExtPtr& e : impl->device_extensions) {
    if (!e) return fail(ossl("device certificate extensions"));
  }
  return IdentityFactory(std::move(options), std::move(impl));
}

IdentityResult<DeviceIdentity> IdentityFactory::identity(std::size_t index) {
  std::string name = options_.prefix + "-" + std::to_string(index);
  if (!options_.cache_dir.empty()) {
    auto cached = load(options_.cache_dir + "/" + name + ".pem", name);
    if (!cached) return cached;
    if (cached->tls.valid()) {
      ++counters_.loaded;
      return cached;
    }
  }
  auto made = make(name);
  if (made) ++counters_.made;
  return made;
}

IdentityResult<std::vector<DeviceIdentity>> IdentityFactory::identities(std::size_t count,
                                                                std::size_t first) {
  std::vector<DeviceIdentity> out;
  out.reserve(count);
  for (std::size_t i = first; i < first + count; ++i) {
    auto id = identity(i);
    if (!id) return fail(id.error());
    out.push_back(std::move(*id));
  }
  return out;
}

IdentityResult<DeviceIdentity> IdentityFactory::make(const std::string& name) {
  ERR_clear_error();
  auto key = impl_->new_key();
  if (!key) return fail(name + ": " + key.error());
  X509_NAME* subject = X509_NAME_new();
  bool named = subject != nullptr &&
               X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                          reinterpret_cast<const unsigned char*>(name.c_str()), -1,
                                          -1, 0) == 1;
  for (const auto& [field, value] : options_.subject_fields) {
    named = named && X509_NAME_add_entry_by_txt(
                         subject, field.c_str(), MBSTRING_UTF8,
                         reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0) == 1;
  }
  if (!named) {
    X509_NAME_free(subject);
    return fail(ossl((name + ": subject").c_str()));
  }
  auto cert = impl_->certify(key->get(), subject, impl_->ca.get(), impl_->ca_key.get(),
                             options_.validity.count(), &impl_->device_extensions);
  X509_NAME_free(subject);
  if (!cert) return fail(name + ": " + cert.error());
  auto id = tls::ClientIdentity::from_openssl(cert->get(), key->get());
  if (!id) return fail(name + ": " + id.error().message());
  if (!options_.cache_dir.empty()) {
    std::string pem = to_pem(cert->get()) + key_pem(key->get());
    auto w = write_private_file(options_.cache_dir + "/" + name + ".pem", pem);
    wipe(pem);
    if (!w) return fail(w.error());
  }
  return DeviceIdentity{name, std::move(*id)};
}

// A cached identity: empty (not valid) when there is none or it is not good for this factory.
IdentityResult<DeviceIdentity> IdentityFactory::load(const std::string& path, const std::string& name) {
  bool exists = false;
  auto pem = read_file(path, exists);
  if (!pem) return fail(pem.error());
  if (!exists) return DeviceIdentity{};
  ERR_clear_error();
  auto id = tls::ClientIdentity::from_pem(*pem, *pem);
  wipe(*pem);
  if (!id) return DeviceIdentity{};  // torn or foreign: made again
  X509* cert = id->certificate();
  std::time_t soon = now_seconds() + kDay;
  // Issued by this CA (names and key identifiers; the broker checks the signature anyway), for
  // this name, and not about to expire.
  if (X509_check_issued(impl_->ca.get(), cert) != X509_V_OK || id->common_name() != name ||
      X509_cmp_time(X509_get0_notAfter(cert), &soon) <= 0) {
    ERR_clear_error();
    return DeviceIdentity{};
  }
  return DeviceIdentity{name, std::move(*id)};
}

// --- the physical limit --------------------------------------------------------------------------

namespace {

// Drives both ends of one handshake over a BIO pair until both are done; adds each side's CPU.
bool handshake_pair(SSL* client, SSL* server, double& client_us, double& server_us) {
  bool client_done = false;
  bool server_done = false;
  for (int turn = 0; turn < 64 && !(client_done && server_done); ++turn) {
    if (!client_done) {
      const double t0 = thread_cpu_us();
      const int r = SSL_do_handshake(client);
      client_us += thread_cpu_us() - t0;
      if (r == 1) {
        client_done = true;
      } else if (SSL_get_error(client, r) != SSL_ERROR_WANT_READ) {
        return false;
      }
    }
    if (!server_done) {
      const double t0 = thread_cpu_us();
      const int r = SSL_do_handshake(server);
      server_us += thread_cpu_us() - t0;
      if (r == 1) {
        server_done = true;
      } else if (SSL_get_error(server, r) != SSL_ERROR_WANT_READ) {
        return false;
      }
    }
  }
  // TLS 1.3: the client's certificate is judged by the server after the client is done; the
  // server's NewSessionTicket is read by the client's first read. One read each way finishes
  // what a real connection would do before its first MQTT packet.
  char byte = 0;
  const double t0 = thread_cpu_us();
  (void)SSL_read(client, &byte, 1);
  client_us += thread_cpu_us() - t0;
  return client_done && server_done;
}

}  // namespace

IdentityResult<DeviceCryptoCost> measure_device_crypto(std::size_t rounds) {
  if (rounds == 0) return fail(std::string("rounds is 0"));
  IdentityOptions o;
  o.prefix = "measure";
  auto factory = IdentityFactory::create(o);
  if (!factory) return fail(factory.error());
  IdentityFactory::Impl& f = *factory->impl_;
  DeviceCryptoCost cost;
  cost.rounds = rounds;

  // Key generation and certificate signing, apart.
  std::vector<PkeyPtr> keys;
  keys.reserve(rounds);
  double t0 = thread_cpu_us();
  for (std::size_t i = 0; i < rounds; ++i) {
    auto k = f.new_key();
    if (!k) return fail(k.error());
    keys.push_back(std::move(*k));
  }
  cost.keygen_us = (thread_cpu_us() - t0) / static_cast<double>(rounds);
  X509_NAME* subject = X509_NAME_new();
  if (subject == nullptr ||
      X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("measure-0"), -1, -1,
                                 0) != 1) {
    X509_NAME_free(subject);
    return fail(ossl("subject"));
  }
  std::vector<X509Ptr> certs;
  certs.reserve(rounds);
  t0 = thread_cpu_us();
  for (std::size_t i = 0; i < rounds; ++i) {
    auto c = f.certify(keys[i].get(), subject, f.ca.get(), f.ca_key.get(), 30 * kDay,
                       &f.device_extensions);
    if (!c) {
      X509_NAME_free(subject);
      return fail(c.error());
    }
    certs.push_back(std::move(*c));
  }
  cost.cert_sign_us = (thread_cpu_us() - t0) / static_cast<double>(rounds);

  // The server: a P-256 certificate from the same CA, requiring and verifying client
  // certificates, as a broker's listener does.
  auto server_key = f.new_key();
  if (!server_key) {
    X509_NAME_free(subject);
    return fail(server_key.error());
  }
  X509V3_CTX x;
  X509V3_set_ctx(&x, f.ca.get(), nullptr, nullptr, nullptr, 0);
  std::vector<ExtPtr> server_extensions;
  server_extensions.push_back(extension(&x, NID_basic_constraints, "critical,CA:FALSE"));
  server_extensions.push_back(extension(&x, NID_key_usage, "critical,digitalSignature"));
  server_extensions.push_back(extension(&x, NID_ext_key_usage, "serverAuth"));
  server_extensions.push_back(extension(&x, NID_authority_key_identifier, "keyid:always"));
  for (const ExtPtr& e : server_extensions) {
    if (!e) {
      X509_NAME_free(subject);
      return fail(ossl("server certificate extensions"));
    }
  }
  auto server_cert = f.certify(server_key->get(), subject, f.ca.get(), f.ca_key.get(), 30 * kDay,
                               &server_extensions);
  X509_NAME_free(subject);
  if (!server_cert) return fail(server_cert.error());
  SslCtxPtr sctx(SSL_CTX_new(TLS_server_method()));
  SslCtxPtr cctx(SSL_CTX_new(TLS_client_method()));
  if (!sctx || !cctx || SSL_CTX_use_certificate(sctx.get(), server_cert->get()) != 1 ||
      SSL_CTX_use_PrivateKey(sctx.get(), server_key->get()) != 1 ||
      X509_STORE_add_cert(SSL_CTX_get_cert_store(sctx.get()), f.ca.get()) != 1 ||
      X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx.get()), f.ca.get()) != 1) {
    return fail(ossl("handshake contexts"));
  }
  SSL_CTX_set_verify(sctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_verify(cctx.get(), SSL_VERIFY_PEER, nullptr);
  // Every handshake a device's first: no tickets, no cache.
  SSL_CTX_set_session_cache_mode(sctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(sctx.get(), 0);
  SSL_CTX_set_min_proto_version(sctx.get(), TLS1_3_VERSION);

  for (std::size_t i = 0; i < rounds; ++i) {
    SslPtr client(SSL_new(cctx.get()));
    SslPtr server(SSL_new(sctx.get()));
    BIO* cb = nullptr;
    BIO* sb = nullptr;
    if (!client || !server || BIO_new_bio_pair(&cb, 0, &sb, 0) != 1) {
      return fail(ossl("handshake objects"));
    }
    SSL_set_bio(client.get(), cb, cb);
    SSL_set_bio(server.get(), sb, sb);
    SSL_set_connect_state(client.get());
    SSL_set_accept_state(server.get());
    if (SSL_use_certificate(client.get(), certs[i].get()) != 1 ||
        SSL_use_PrivateKey(client.get(), keys[i].get()) != 1) {
      return fail(ossl("client identity"));
    }
    if (!handshake_pair(client.get(), server.get(), cost.handshake_client_us,
                        cost.handshake_server_us)) {
      return fail(ossl("handshake"));
    }
  }
  cost.handshake_client_us /= static_cast<double>(rounds);
  cost.handshake_server_us /= static_cast<double>(rounds);
  return cost;
}

}  // namespace edgekit::sim
