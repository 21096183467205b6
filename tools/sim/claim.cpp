#include "claim.hpp"

#include <edgekit/core/backoff.hpp>
#include <edgekit/pkcs11/client.hpp>
#include <edgekit/pki/csr.hpp>
#include <edgekit/pki/token.hpp>
#include <edgekit/provisioning/channel.hpp>
#include <edgekit/provisioning/client.hpp>
#include <edgekit/provisioning/state.hpp>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include "fiber.hpp"

namespace edgekit::sim {
namespace {

// Throw-away PINs of a token that lives for one run in a folder only this user can read.
constexpr char kSoPin[] = "sim-so-pin";
constexpr char kUserPin[] = "sim-user-pin";
constexpr char kTokenLabel[] = "edgekit-sim";

// The Provisioner's waits between retries, as fiber sleeps: the loop goes on meanwhile.
class FiberSleeper final : public provisioning::Sleeper {
 public:
  explicit FiberSleeper(Fibers& fibers) noexcept : fibers_(&fibers) {}
  void sleep(Duration duration) noexcept override { (void)fibers_->sleep_for(duration); }

 private:
  Fibers* fibers_;
};

double thread_cpu_us() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) * 1e-3;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

struct ClaimProvisioning::Impl {
  ClaimOptions options;
  bool made_dir = false;
  tls::ClientIdentity claim;
  std::optional<pkcs11::Module> module;
  std::optional<pkcs11::Session> session;
  provisioning::SystemWallClock wall;

  ~Impl() {
    // The identities made from the session die with the fleet, before this; then the session,
    // the module, and the folder the run made.
    session.reset();
    module.reset();
    if (made_dir) {
      std::error_code ignored;
      std::filesystem::remove_all(options.token_dir, ignored);
    }
  }
};

ClaimProvisioning::ClaimProvisioning(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
ClaimProvisioning::~ClaimProvisioning() = default;

edgekit::Result<std::unique_ptr<ClaimProvisioning>, std::string> ClaimProvisioning::open(
    ClaimOptions options) {
  using R = edgekit::Result<std::unique_ptr<ClaimProvisioning>, std::string>;
  auto impl = std::make_unique<Impl>();
  if (options.template_name.empty()) return R(fail(std::string("claim: no template name")));
  auto claim = tls::ClientIdentity::from_files(options.claim_certificate_file, options.claim_key_file);
  if (!claim) return R(fail("claim identity: " + claim.error().message()));
  impl->claim = std::move(*claim);

  // The token's folder: tmpfs when there is one (see the header), made private to this user.
  if (options.token_dir.empty()) {
    std::string base = "/dev/shm";
    if (::access(base.c_str(), W_OK) != 0) {
      const char* tmp = std::getenv("TMPDIR");
      base = tmp != nullptr && *tmp == '/' ? tmp : "/tmp";
    }
    std::string pattern = base + "/edgekit-sim-token.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      return R(fail("claim: cannot make a token folder under " + base + ": " +
                    std::error_code(errno, std::generic_category()).message()));
    }
    options.token_dir = pattern;
    impl->made_dir = true;
  } else {
    std::error_code ec;
    std::filesystem::create_directories(options.token_dir, ec);
    if (!std::filesystem::is_empty(options.token_dir, ec) || ec) {
      return R(fail("claim: the token folder " + options.token_dir +
                    " must be empty (a new token is made in it)"));
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(options.token_dir + "/state", ec);
  impl->options = options;

  // edgekit's token reads its folder from the environment when the module is initialised.
  ::setenv("EDGEKIT_TOKEN_DIR", (options.token_dir + "/token").c_str(), 1);
  ::setenv("EDGEKIT_TOKEN_QUIET", "1", 1);
  std::filesystem::create_directories(options.token_dir + "/token", ec);
  auto module = pkcs11::Module::load(options.module_path);
  if (!module) return R(fail("claim: PKCS#11 module " + options.module_path + ": " + module.error().message()));
  impl->module.emplace(std::move(*module));
  auto slots = impl->module->slots(false);
  if (!slots || slots->empty()) return R(fail(std::string("claim: the token module has no slot")));
  const CK_SLOT_ID slot = slots->front();
  if (auto init = impl->module->init_token(slot, kSoPin, kTokenLabel); !init) {
    return R(fail("claim: C_InitToken: " + init.error().message()));
  }
  {
    auto so = impl->module->open_session(slot, true);
    if (!so) return R(fail("claim: C_OpenSession: " + so.error().message()));
    if (auto l = so->login(pkcs11::UserType::SecurityOfficer, kSoPin); !l) {
      return R(fail("claim: SO login: " + l.error().message()));
    }
    if (auto p = so->init_pin(kUserPin); !p) return R(fail("claim: C_InitPIN: " + p.error().message()));
  }
  auto session = impl->module->open_session(slot, true);
  if (!session) return R(fail("claim: C_OpenSession: " + session.error().message()));
  if (auto l = session->login(pkcs11::UserType::User, kUserPin); !l) {
    return R(fail("claim: login: " + l.error().message()));
  }
  impl->session.emplace(std::move(*session));
  return R(std::unique_ptr<ClaimProvisioning>(new ClaimProvisioning(std::move(impl))));
}

const tls::ClientIdentity& ClaimProvisioning::claim_identity() const noexcept { return impl_->claim; }
const std::string& ClaimProvisioning::token_dir() const noexcept { return impl_->options.token_dir; }

edgekit::Result<Provisioned, std::string> ClaimProvisioning::provision(reqres::Channel& channel,
                                                                        Fibers& fibers,
                                                                        const std::string& serial) {
  using R = edgekit::Result<Provisioned, std::string>;
  provisioning::Options o;
  o.method = provisioning::Method::CreateCertificateFromCsr;
  o.template_name = impl_->options.template_name;
  o.parameters = {{"SerialNumber", serial}};
  o.device_label = serial;
  o.claim_label = "claim";  // only checked to differ: the claim key is a file here
  o.csr_subject = "/CN=" + serial;
  o.reply_timeout = Duration{static_cast<std::int64_t>(impl_->options.reply_timeout_ms)};
  // A device's replies are a certificate (PEM in JSON) and a small document: 4 KB, as AWS's
  // embedded demos, keeps the transient buffers of thousands of provisioning devices small.
  o.reply_buffer_size = 4096;
  provisioning::FileStateStore store(impl_->options.token_dir + "/state/" + serial);
  FiberSleeper sleeper(fibers);
  backoff::SplitMix64 random(std::hash<std::string>{}(serial));
  provisioning::Provisioner provisioner(*impl_->session, store, impl_->wall, sleeper, random,
                                        std::move(o));
  provisioning::ReqresChannel over(channel);
  auto r = provisioner.run(over);
  if (!r) {
    return R(fail(std::string(provisioning::to_string(r.error())) + ": " + provisioner.detail()));
  }
  auto identity = tls::ClientIdentity::from_token(*impl_->session, serial);
  if (!identity) return R(fail("the device identity in the token: " + identity.error().message()));
  return R(Provisioned{r->thing_name, std::move(*identity)});
}

edgekit::Result<ClaimCryptoCost, std::string> ClaimProvisioning::measure(std::size_t rounds) {
  using R = edgekit::Result<ClaimCryptoCost, std::string>;
  pkcs11::Session& s = *impl_->session;
  auto subject = pki::Name::parse("/CN=sim-measure");
  if (!subject) return R(fail(std::string("measure: subject")));
  std::vector<double> keygen, make, verify;
  for (std::size_t i = 0; i < rounds; ++i) {
    // Session objects: gone with the session, never written to the folder (the devices' keys
    // are token objects: that write is the device's cost, counted in the run, not here).
    double t0 = thread_cpu_us();
    auto pair = s.generate_ec_key_pair(pkcs11::Curve::P256, {"sim-measure", {}, false});
    keygen.push_back(thread_cpu_us() - t0);
    if (!pair) return R(fail("measure: key pair in the token: " + pair.error().message()));
    t0 = thread_cpu_us();
    auto signer = pki::TokenSigner::create(s, pair->private_key);
    if (!signer) return R(fail("measure: signer: " + signer.error().message));
    auto csr = pki::make_csr(*signer, *subject);
    make.push_back(thread_cpu_us() - t0);
    if (!csr) return R(fail("measure: CSR: " + csr.error().message));
    t0 = thread_cpu_us();
    auto info = pki::parse_csr(*csr);
    verify.push_back(thread_cpu_us() - t0);
    if (!info) return R(fail("measure: CSR check: " + info.error().message));
    (void)s.destroy(pair->private_key);
    (void)s.destroy(pair->public_key);
  }
  ClaimCryptoCost c;
  c.token_keygen_us = median(keygen);
  c.csr_make_us = median(make);
  c.csr_verify_us = median(verify);
  c.rounds = rounds;
  return R(c);
}

}  // namespace edgekit::sim
