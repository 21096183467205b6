// FileStateStore: text fields + SHA-256, written by edgekit::file::write_atomically (temp file +
// fsync + rename + directory fsync), so that a crash leaves the state either old or new.
#include "edgekit/provisioning/state.hpp"

#include <cerrno>
#include <charconv>
#include <ctime>
#include <edgekit/pki/keys.hpp>
#include <fstream>
#include <span>
#include <sstream>
#include <utility>

#include "edgekit/core/durable_file.hpp"

namespace edgekit::provisioning {
namespace {

constexpr std::string_view kMagic = "edgekit-provisioning-state 1";

std::string body_of(const State& s) {
  std::string out;
  out += kMagic;
  out += "\nstep=" + std::to_string(static_cast<int>(s.step));
  out += "\ncertificate_id=" + s.certificate_id;
  // Hex: the token is opaque to us and may hold any byte.
  out += "\nownership_token=" + pki::to_hex(std::span<const std::uint8_t>(
                                    reinterpret_cast<const std::uint8_t*>(s.ownership_token.data()),
                                    s.ownership_token.size()));
  out += "\nexpires_at=" + std::to_string(s.expires_at);
  out += "\nthing_name=" + s.thing_name;
  out += "\n";
  return out;
}

std::string digest_of(std::string_view body) {
  return pki::sha256_hex(std::span<const std::uint8_t>(
      reinterpret_cast<const std::uint8_t*>(body.data()), body.size()));
}

// Reads `name=value` from the next line of `in`.
bool field(std::istringstream& in, std::string_view name, std::string& value) {
  std::string line;
  if (!std::getline(in, line)) return false;
  if (line.size() <= name.size() || line.compare(0, name.size(), name) != 0 ||
      line[name.size()] != '=') {
    return false;
  }
  value = line.substr(name.size() + 1);
  return true;
}

template <class T>
bool number(const std::string& text, T& out) {
  const auto r = std::from_chars(text.data(), text.data() + text.size(), out);
  return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

}  // namespace

const char* to_string(Step step) noexcept {
  switch (step) {
    case Step::Started:
      return "Started";
    case Step::CertificateReceived:
      return "CertificateReceived";
    case Step::Registered:
      return "Registered";
  }
  return "?";
}

FileStateStore::FileStateStore(std::string path) : path_(std::move(path)) {}

Result<std::optional<State>, Errc> FileStateStore::load() {
  std::ifstream file(path_, std::ios::binary);
  if (!file) {
    if (errno == ENOENT) return std::optional<State>{};
    return fail(Errc::StateStoreFailed);
  }
  std::stringstream raw;
  raw << file.rdbuf();
  const std::string text = raw.str();
  // The last line is "sha256=<hex of everything before it>".
  const auto cut = text.rfind("sha256=");
  if (cut == std::string::npos) return fail(Errc::StateCorrupted);
  std::string_view digest = std::string_view(text).substr(cut + 7);
  if (!digest.empty() && digest.back() == '\n') digest.remove_suffix(1);
  const std::string_view body = std::string_view(text).substr(0, cut);
  if (digest != digest_of(body)) return fail(Errc::StateCorrupted);
  std::istringstream in{std::string(body)};
  std::string magic, step, token_hex, expires;
  State s;
  if (!std::getline(in, magic) || magic != kMagic || !field(in, "step", step) ||
      !field(in, "certificate_id", s.certificate_id) || !field(in, "ownership_token", token_hex) ||
      !field(in, "expires_at", expires) || !field(in, "thing_name", s.thing_name)) {
    return fail(Errc::StateCorrupted);
  }
  int step_value = 0;
  if (!number(step, step_value) || step_value < 1 || step_value > 3 ||
      !number(expires, s.expires_at)) {
    return fail(Errc::StateCorrupted);
  }
  s.step = static_cast<Step>(step_value);
  auto token = pki::from_hex(token_hex);
  if (!token) return fail(Errc::StateCorrupted);
  s.ownership_token.assign(token->begin(), token->end());
  return std::optional<State>(std::move(s));
}

Result<void, Errc> FileStateStore::save(const State& state) {
  std::string text = body_of(state);
  text += "sha256=" + digest_of(text) + "\n";
  // Mode 0600: the ownership token is a bearer credential.
  if (file::write_atomically(path_, std::as_bytes(std::span<const char>(text)), 0600) !=
      file::Status::Ok) {
    return fail(Errc::StateStoreFailed);
  }
  return {};
}

Result<void, Errc> FileStateStore::clear() {
  if (file::remove_durably(path_) != file::Status::Ok) return fail(Errc::StateStoreFailed);
  return {};
}

std::int64_t SystemWallClock::epoch_seconds() const noexcept {
  return static_cast<std::int64_t>(std::time(nullptr));
}

}  // namespace edgekit::provisioning
