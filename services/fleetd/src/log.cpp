#include "log.hpp"

#include <chrono>
#include <ctime>

#include "edgekit/json/json.hpp"

namespace edgekit::fleetd {
namespace {

std::string utc_now() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

// Text values are quoted when they hold a space, a quote or '=' so that a line stays parseable.
void put_text_value(std::string& line, std::string_view v) {
  bool plain = !v.empty() && v.find_first_of(" \"=\t\n") == std::string_view::npos;
  if (plain) {
    line += v;
    return;
  }
  line += nlohmann::json(std::string(v)).dump();
}

}  // namespace

const char* to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
  }
  return "info";
}

void Logger::log(LogLevel level, std::string_view event, std::initializer_list<Field> fields) {
  if (level < min_) return;
  std::string line;
  if (format_ == LogFormat::Json) {
    nlohmann::ordered_json j;
    j["ts"] = utc_now();
    j["level"] = to_string(level);
    j["event"] = std::string(event);
    for (const Field& f : fields) {
      std::string key(f.key);
      std::visit([&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::string_view>) j[key] = std::string(v);
        else j[key] = v;
      }, f.value);
    }
    // Invalid UTF-8 in a field (a device's client id, say) is replaced, never a throw.
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = utc_now();
    line += ' ';
    line += to_string(level);
    line += ' ';
    line += event;
    for (const Field& f : fields) {
      line += ' ';
      line += f.key;
      line += '=';
      std::visit([&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::string_view>) put_text_value(line, v);
        else if constexpr (std::is_same_v<V, bool>) line += v ? "true" : "false";
        else line += std::to_string(v);
      }, f.value);
    }
  }
  line += '\n';
  std::lock_guard lock(mutex_);
  out_ << line;
  out_.flush();
}

}  // namespace edgekit::fleetd
