// FileStateStore: text fields + SHA-256, written with temp file + fsync + rename + directory
// fsync, so that a crash leaves the state either old or new.
#include "edgekit/provisioning/state.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <ctime>
#include <edgekit/pki/keys.hpp>
#include <fstream>
#include <sstream>
#include <utility>

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

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
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
  const std::string tmp = path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail(Errc::StateStoreFailed);
  const bool ok = write_all(fd, text) && ::fsync(fd) == 0;
  const bool closed = ::close(fd) == 0;
  if (!ok || !closed || ::rename(tmp.c_str(), path_.c_str()) != 0) {
    (void)::unlink(tmp.c_str());
    return fail(Errc::StateStoreFailed);
  }
  // The rename is durable only once the directory is.
  const int dir = ::open(directory_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return fail(Errc::StateStoreFailed);
  const bool synced = ::fsync(dir) == 0;
  ::close(dir);
  if (!synced) return fail(Errc::StateStoreFailed);
  return {};
}

Result<void, Errc> FileStateStore::clear() {
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) return fail(Errc::StateStoreFailed);
  return {};
}

std::int64_t SystemWallClock::epoch_seconds() const noexcept {
  return static_cast<std::int64_t>(std::time(nullptr));
}

}  // namespace edgekit::provisioning
