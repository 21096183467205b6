// ECDSA P-256 signatures per second over a 32-byte hash (what a TLS handshake asks of a key):
//   openssl   EVP_PKEY_sign with a fresh EVP_PKEY_CTX per signature, the key in process memory
//   <module>  C_SignInit(CKM_ECDSA) + C_Sign through the module's function list, the key in the
//             token (a session object, so no storage is touched)
// Usage: bench_pkcs11_ecdsa [--seconds S] [name=/path/module.so ...]
// A module named softhsm2 gets a temporary SOFTHSM2_CONF; any other a temporary
// EDGEKIT_TOKEN_DIR. Subjects run in turns over 15 rounds; each row is a subject's median round.

#include <p11-kit/pkcs11.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
double g_seconds = 2.0;

constexpr int kRounds = 15;

// Runs `op` for `seconds`; returns the rate in ops/s (negative if an op failed).
double run_for(const std::function<bool()>& op, double seconds) {
  long n = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  Clock::time_point now;
  do {
    for (int i = 0; i < 50; ++i, ++n) {
      if (!op()) return -1;
    }
    now = Clock::now();
  } while (now < end);
  return n / std::chrono::duration<double>(now - start).count();
}

struct Subject {
  std::string name;
  std::function<bool()> op;
  std::vector<double> rates;
};

unsigned char g_hash[32];

std::function<bool()> openssl_op() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");  // lives until exit
  return [key] {
    unsigned char sig[80];
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr);
    std::size_t len = sizeof sig;
    const bool ok = ctx != nullptr && EVP_PKEY_sign_init(ctx) == 1 &&
                    EVP_PKEY_sign(ctx, sig, &len, g_hash, sizeof g_hash) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
  };
}

// Loads a module, makes a token with a P-256 key in it and returns a sign operation (or an empty
// function). The module stays loaded until the process ends.
std::function<bool()> module_op(const std::string& name, const std::string& path) {
  char tmpl[] = "/tmp/edgekit-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return {};
  const std::string dir = tmpl;
  if (name == "softhsm2") {
    std::filesystem::create_directories(dir + "/tokens");
    std::ofstream(dir + "/softhsm2.conf") << "directories.tokendir = " << dir
                                          << "/tokens\nobjectstore.backend = file\nlog.level = ERROR\n";
    ::setenv("SOFTHSM2_CONF", (dir + "/softhsm2.conf").c_str(), 1);
  } else {
    ::setenv("EDGEKIT_TOKEN_DIR", (dir + "/token").c_str(), 1);
  }
  std::function<bool()> result;
  void* lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  CK_FUNCTION_LIST* p = nullptr;
  auto get = lib ? reinterpret_cast<CK_C_GetFunctionList>(::dlsym(lib, "C_GetFunctionList")) : nullptr;
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  if (get != nullptr && get(&p) == CKR_OK && p->C_Initialize(&args) == CKR_OK) {
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8;
    CK_UTF8CHAR label[32];
    std::memset(label, ' ', 32);
    std::memcpy(label, "bench", 5);
    CK_UTF8CHAR so[] = "so-pin-1", pin[] = "user-pin";
    CK_SESSION_HANDLE s = 0;
    bool ok = p->C_GetSlotList(CK_FALSE, slots, &n) == CKR_OK && n > 0 &&
              p->C_InitToken(slots[0], so, 8, label) == CKR_OK;
    // Find the token again by label (SoftHSM2 moves it to a new slot).
    n = 8;
    ok = ok && p->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK;
    CK_SLOT_ID slot = 0;
    for (CK_ULONG i = 0; ok && i < n; ++i) {
      CK_TOKEN_INFO info{};
      if (p->C_GetTokenInfo(slots[i], &info) == CKR_OK && std::memcmp(info.label, "bench", 5) == 0) {
        slot = slots[i];
      }
    }
    ok = ok && p->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &s) == CKR_OK &&
         p->C_Login(s, CKU_SO, so, 8) == CKR_OK && p->C_InitPIN(s, pin, 8) == CKR_OK &&
         p->C_Logout(s) == CKR_OK && p->C_Login(s, CKU_USER, pin, 8) == CKR_OK;
    CK_BYTE params[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE pub[] = {{CKA_EC_PARAMS, params, sizeof params}, {CKA_TOKEN, &no, 1}};
    CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &no, 1}, {CKA_SIGN, &yes, 1}, {CKA_PRIVATE, &yes, 1},
                           {CKA_SENSITIVE, &yes, 1}};
    CK_MECHANISM gen{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
    CK_OBJECT_HANDLE hpub = 0, hpriv = 0;
    ok = ok && p->C_GenerateKeyPair(s, &gen, pub, 2, priv, 4, &hpub, &hpriv) == CKR_OK;
    if (ok) {
      result = [p, s, hpriv] {
        CK_MECHANISM m{CKM_ECDSA, nullptr, 0};
        CK_BYTE sig[64];
        CK_ULONG len = sizeof sig;
        return p->C_SignInit(s, &m, hpriv) == CKR_OK &&
               p->C_Sign(s, g_hash, sizeof g_hash, sig, &len) == CKR_OK;
      };
    } else {
      std::fprintf(stderr, "%s: token setup failed\n", name.c_str());
    }
  } else {
    std::fprintf(stderr, "%s: cannot load %s\n", name.c_str(), path.c_str());
  }
  // The token lives in memory from here on (session objects); its folder is not needed.
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::pair<std::string, std::string>> modules;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      g_seconds = std::atof(argv[++i]);
    } else if (auto eq = a.find('='); eq != std::string::npos) {
      modules.emplace_back(a.substr(0, eq), a.substr(eq + 1));
    }
  }
  RAND_bytes(g_hash, sizeof g_hash);
  std::vector<Subject> subjects;
  subjects.push_back({"raw OpenSSL (EVP_PKEY_sign)", openssl_op(), {}});
  int rc = 0;
  for (const auto& [name, path] : modules) {
    auto op = module_op(name, path);
    if (!op) {
      rc = 1;
      continue;
    }
    subjects.push_back({name + " (C_SignInit + C_Sign, CKM_ECDSA)", op, {}});
  }
  // Subjects take turns, round after round, so that load from elsewhere on the machine falls on
  // all of them alike; each reports its median round.
  for (auto& sub : subjects) run_for(sub.op, 0.2);  // warm-up
  for (int r = 0; r < kRounds; ++r) {
    for (auto& sub : subjects) sub.rates.push_back(run_for(sub.op, g_seconds / kRounds));
  }
  std::printf("| subject | signs/s | µs/sign | time vs raw OpenSSL |\n|---|---:|---:|---:|\n");
  double base = 0;
  for (auto& sub : subjects) {
    std::sort(sub.rates.begin(), sub.rates.end());
    const double rate = sub.rates[kRounds / 2];
    if (rate <= 0) {
      rc = 1;
      continue;
    }
    if (base == 0) {
      base = rate;
      std::printf("| %s | %.0f | %.1f | — |\n", sub.name.c_str(), rate, 1e6 / rate);
    } else {
      std::printf("| %s | %.0f | %.1f | %+.1f%% |\n", sub.name.c_str(), rate, 1e6 / rate,
                  (base / rate - 1) * 100);
    }
  }
  return rc;
}
