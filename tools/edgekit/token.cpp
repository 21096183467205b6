// edgekit token: provision a PKCS#11 token (ours or any other module) from the command line.
// The work is done by edgekit::pkcs11_tools (tools/token); this file reads options and PINs and
// prints.
#include <openssl/crypto.h>
#include <termios.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

#include "commands.hpp"
#include "input.hpp"
#include "token_tools.hpp"

namespace edgekit::tools {

std::string executable_path() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<std::size_t>(n));
}

// This file's helpers, in a namespace of their own: a unity build (EDGEKIT_UNITY_BUILD) compiles
// several command files as one translation unit.
namespace cmd_token {
namespace {

// A PEM certificate file is a few KB; chains stay far below this.
constexpr std::size_t kMaxCertificateFile = 1U << 20U;

using token::Exit;
using token::Secret;
using token::ToolError;

struct TokenOptions {
  std::string module;
  std::string token_label;  // selects the token (init: names it)
  std::string pin;
  std::string so_pin;
  std::string key_label;
  std::string object_label;  // import-cert
  std::string id_hex;
  std::string type = "ec-p256";
  std::string subject;
  std::string out;
  std::string cert;
  long slot = -1;
  bool force = false;

  ~TokenOptions() {
    token::wipe(pin);
    token::wipe(so_pin);
  }
};

int report(const char* command, const ToolError& e) {
  std::fprintf(stderr, "edgekit token %s: %s\n", command, e.message.c_str());
  return static_cast<int>(e.exit);
}

/// Reads one line from the terminal on stdin with echo off. Empty optional on EOF.
std::optional<Secret> prompt_secret(const char* prompt) {
  std::fprintf(stderr, "%s", prompt);
  std::fflush(stderr);
  termios old{};
  const bool have_tty = ::tcgetattr(STDIN_FILENO, &old) == 0;
  if (have_tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  char line[256];
  const bool got = std::fgets(line, sizeof line, stdin) != nullptr;
  if (have_tty) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
  std::optional<Secret> out;
  if (got) {
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    out.emplace(std::move(s));
  }
  OPENSSL_cleanse(line, sizeof line);
  return out;
}

/// The PIN from the option, else the environment, else a prompt when stdin is a terminal.
/// The option's copy is wiped once taken. `confirm` asks twice (for a new PIN).
token::ToolResult<Secret> get_pin(std::string& option, const char* option_name, const char* env,
                                  const char* what, bool confirm) {
  if (!option.empty()) {
    Secret s(option);
    token::wipe(option);
    return s;
  }
  if (const char* v = std::getenv(env); v != nullptr && *v != '\0') return Secret(v);
  if (::isatty(STDIN_FILENO) == 1) {
    const std::string prompt = std::string("Enter ") + what + ": ";
    auto first = prompt_secret(prompt.c_str());
    if (!first || first->empty()) {
      return fail(ToolError{Exit::PinRefused, std::string("no ") + what + " entered"});
    }
    if (confirm) {
      const std::string again = std::string("Repeat ") + what + ": ";
      auto second = prompt_secret(again.c_str());
      if (!second || second->view() != first->view()) {
        return fail(ToolError{Exit::PinRefused, std::string("the two ") + what + "s differ"});
      }
    }
    return std::move(*first);
  }
  return fail(ToolError{Exit::PinRefused, std::string("no ") + what + ": give " + option_name +
                                              ", set " + env + ", or run on a terminal"});
}

std::optional<std::string> label_option(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

bool write_output(const char* command, const std::string& path, const std::string& text) {
  if (path.empty() || path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return true;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::fprintf(stderr, "edgekit token %s: cannot write %s\n", command, path.c_str());
    return false;
  }
  return true;
}

/// Loads the module and selects the token; on failure prints and returns the exit code.
struct Opened {
  std::optional<pkcs11::Module> module;
  CK_SLOT_ID slot = 0;
};
token::ToolResult<Opened> open_token(TokenOptions& o) {
  auto module = token::load_module(o.module);
  if (!module) return fail(module.error());
  Opened out;
  out.module.emplace(std::move(*module));
  auto slot = token::select_token(*out.module, label_option(o.token_label));
  if (!slot) return fail(slot.error());
  out.slot = *slot;
  return out;
}

int run_init(TokenOptions& o) {
  auto so_pin = get_pin(o.so_pin, "--so-pin", "EDGEKIT_TOKEN_SO_PIN", "security officer PIN", true);
  if (!so_pin) return report("init", so_pin.error());
  auto pin = get_pin(o.pin, "--pin", "EDGEKIT_TOKEN_PIN", "user PIN", true);
  if (!pin) return report("init", pin.error());
  auto module = token::load_module(o.module);
  if (!module) return report("init", module.error());
  std::optional<CK_SLOT_ID> slot;
  if (o.slot >= 0) slot = static_cast<CK_SLOT_ID>(o.slot);
  auto at = token::init_token(*module, slot, o.token_label, so_pin->view(), pin->view(), o.force);
  if (!at) return report("init", at.error());
  std::printf("initialised token \"%s\" in slot %lu; user PIN set\n", o.token_label.c_str(),
              static_cast<unsigned long>(*at));
  return 0;
}

int run_keygen(TokenOptions& o) {
  const auto type = token::parse_key_type(o.type);
  if (!type) {
    return report("keygen", {Exit::Usage, "--type " + o.type +
                                              ": want ec-p256, ec-p384, rsa-2048 or rsa-3072"});
  }
  token::Bytes id;
  if (!o.id_hex.empty()) {
    auto parsed = token::parse_id(o.id_hex);
    if (!parsed) return report("keygen", parsed.error());
    id = std::move(*parsed);
  }
  auto pin = get_pin(o.pin, "--pin", "EDGEKIT_TOKEN_PIN", "user PIN", false);
  if (!pin) return report("keygen", pin.error());
  auto opened = open_token(o);
  if (!opened) return report("keygen", opened.error());
  auto session = token::open_user_session(*opened->module, opened->slot, pin->view());
  pin->clear();
  if (!session) return report("keygen", session.error());
  auto key = token::generate_key(*session, *type, o.key_label, std::move(id));
  if (!key) return report("keygen", key.error());
  std::fprintf(stderr, "generated %s key pair label=\"%s\" id=%s (private key sensitive, never "
               "extractable)\n", token::key_type_name(*type), o.key_label.c_str(),
               token::to_hex(key->id).c_str());
  return write_output("keygen", o.out, key->public_key_pem) ? 0 : 1;
}

int run_csr(TokenOptions& o) {
  auto pin = get_pin(o.pin, "--pin", "EDGEKIT_TOKEN_PIN", "user PIN", false);
  if (!pin) return report("csr", pin.error());
  auto opened = open_token(o);
  if (!opened) return report("csr", opened.error());
  auto session = token::open_user_session(*opened->module, opened->slot, pin->view(), false);
  pin->clear();
  if (!session) return report("csr", session.error());
  auto pem = token::make_csr(*session, o.key_label, o.subject);
  if (!pem) return report("csr", pem.error());
  return write_output("csr", o.out, *pem) ? 0 : 1;
}

int run_import_cert(TokenOptions& o) {
  // Bounded and exception-free: a directory or an endless file is refused with its cause.
  std::string pem, error;
  if (!read_input(o.cert, kMaxCertificateFile, pem, error)) {
    return report("import-cert", {Exit::Usage, "--cert: cannot read " + o.cert + ": " + error});
  }
  std::optional<token::Bytes> id;
  if (!o.id_hex.empty()) {
    auto parsed = token::parse_id(o.id_hex);
    if (!parsed) return report("import-cert", parsed.error());
    id = std::move(*parsed);
  }
  auto pin = get_pin(o.pin, "--pin", "EDGEKIT_TOKEN_PIN", "user PIN", false);
  if (!pin) return report("import-cert", pin.error());
  auto opened = open_token(o);
  if (!opened) return report("import-cert", opened.error());
  auto session = token::open_user_session(*opened->module, opened->slot, pin->view());
  pin->clear();
  if (!session) return report("import-cert", session.error());
  auto cert = token::import_certificate(*session, o.object_label, pem, std::move(id));
  if (!cert) return report("import-cert", cert.error());
  std::printf("imported certificate label=\"%s\" id=%s subject=\"%s\"%s\n", o.object_label.c_str(),
              token::to_hex(cert->id).c_str(), cert->subject.c_str(),
              cert->matches_key ? " (matches the private key with this id)" : " (no private key has this id)");
  return 0;
}

int run_list(TokenOptions& o) {
  // A login shows the private objects too; without a PIN only public objects are listed.
  std::optional<Secret> pin;
  if (!o.pin.empty() || std::getenv("EDGEKIT_TOKEN_PIN") != nullptr || ::isatty(STDIN_FILENO)) {
    auto p = get_pin(o.pin, "--pin", "EDGEKIT_TOKEN_PIN", "user PIN", false);
    if (!p) return report("list", p.error());
    pin.emplace(std::move(*p));
  }
  auto opened = open_token(o);
  if (!opened) return report("list", opened.error());
  std::optional<std::string_view> pin_view;
  if (pin) pin_view = pin->view();
  auto session = token::open_user_session(*opened->module, opened->slot, pin_view, false);
  if (pin) pin->clear();
  if (!session) return report("list", session.error());
  auto objects = token::list_objects(*session);
  if (!objects) return report("list", objects.error());
  if (!pin) std::printf("(not logged in: private objects are not shown; give --pin)\n");
  if (objects->empty()) std::printf("no objects\n");
  for (const auto& obj : *objects) std::printf("%s\n", token::format_object(obj).c_str());
  return 0;
}

int run_info(TokenOptions& o) {
  auto module = token::load_module(o.module);
  if (!module) return report("info", module.error());
  auto text = token::describe_module(*module);
  if (!text) return report("info", text.error());
  std::printf("module path: %s\n%s", o.module.c_str(), text->c_str());
  return 0;
}

CLI::App* sub(CLI::App& token, const char* name, const char* what, TokenOptions& o) {
  CLI::App* c = token.add_subcommand(name, what);
  c->set_help_flag("--help", "print this help and exit");
  c->add_option("--module", o.module, "PKCS#11 module (default: edgekit's libedgekit-pkcs11.so)");
  return c;
}

void add_token_label(CLI::App& c, TokenOptions& o) {
  c.add_option("--label,--token", o.token_label,
               "label of the token (may be left out when only one token is initialised)");
}

// CLI11 keeps its own copy of every option's text; the PIN options' copies are wiped too.
std::vector<CLI::Option*>& secret_options() {
  static std::vector<CLI::Option*> options;
  return options;
}

void wipe_secret_options() {
  for (CLI::Option* opt : secret_options()) {
    for (const std::string& r : opt->results()) token::wipe(const_cast<std::string&>(r));
  }
}

void add_pin(CLI::App& c, TokenOptions& o) {
  secret_options().push_back(
      c.add_option("--pin", o.pin, "user PIN (else $EDGEKIT_TOKEN_PIN, else asked on the terminal)"));
}

}  // namespace
}  // namespace cmd_token

void add_token_command(CLI::App& app, int& exit_code) {
  using namespace cmd_token;
  auto o = std::make_shared<TokenOptions>();
  CLI::App* token = app.add_subcommand("token", "provision a PKCS#11 token: keys, CSRs, certificates");
  token->set_help_flag("--help", "print this help and exit");
  token->require_subcommand(1);
  // Before each command: CLI11 has stored the options in *o; wipe its PIN copies, pick the module.
  auto prepare = [o] {
    wipe_secret_options();
    if (o->module.empty()) o->module = token::default_module_path(executable_path());
  };

  CLI::App* init = sub(*token, "init", "initialise a token, set SO and user PINs", *o);
  init->add_option("--label", o->token_label, "label for the token (1-32 bytes)")->required();
  secret_options().push_back(init->add_option(
      "--so-pin", o->so_pin, "security officer PIN (else $EDGEKIT_TOKEN_SO_PIN, else asked)"));
  add_pin(*init, *o);
  init->add_option("--slot", o->slot, "slot to initialise (default: the first uninitialised one)");
  init->add_flag("--force", o->force, "re-initialise a token that is initialised (erases its objects)");
  init->callback([o, prepare, &exit_code] { prepare(); exit_code = run_init(*o); });

  CLI::App* keygen = sub(*token, "keygen", "generate a key pair inside the token; print the public key", *o);
  add_token_label(*keygen, *o);
  keygen->add_option("--key-label", o->key_label, "label of the new key pair")->required();
  keygen->add_option("--id", o->id_hex, "CKA_ID in hex (default: 8 random bytes)");
  keygen->add_option("--type", o->type, "ec-p256, ec-p384, rsa-2048 or rsa-3072")->capture_default_str();
  keygen->add_option("--out", o->out, "write the public key PEM here (default: standard output)");
  add_pin(*keygen, *o);
  keygen->callback([o, prepare, &exit_code] { prepare(); exit_code = run_keygen(*o); });

  CLI::App* csr = sub(*token, "csr", "make a PKCS#10 request signed inside the token", *o);
  add_token_label(*csr, *o);
  csr->add_option("--key-label", o->key_label, "label of the private key")->required();
  csr->add_option("--subject", o->subject, "subject, e.g. /CN=thing-1/O=Example")->required();
  csr->add_option("--out", o->out, "write the request here (default: standard output)");
  add_pin(*csr, *o);
  csr->callback([o, prepare, &exit_code] { prepare(); exit_code = run_csr(*o); });

  CLI::App* imp = sub(*token, "import-cert", "store a certificate next to its private key", *o);
  imp->add_option("--label", o->object_label, "label for the certificate (that of its key)")->required();
  imp->add_option("--cert", o->cert, "PEM certificate file")->required();
  imp->add_option("--id", o->id_hex, "CKA_ID in hex (default: the id of the key labelled --label)");
  imp->add_option("--token", o->token_label, "label of the token (may be left out when only one is initialised)");
  add_pin(*imp, *o);
  imp->callback([o, prepare, &exit_code] { prepare(); exit_code = run_import_cert(*o); });

  CLI::App* list = sub(*token, "list", "list the token's objects", *o);
  add_token_label(*list, *o);
  add_pin(*list, *o);
  list->callback([o, prepare, &exit_code] { prepare(); exit_code = run_list(*o); });

  CLI::App* info = sub(*token, "info", "describe the module, its slots, tokens and mechanisms", *o);
  info->callback([o, prepare, &exit_code] { prepare(); exit_code = run_info(*o); });
}

}  // namespace edgekit::tools
