#pragma once
/// \file
/// fleetd's structured log: one record per line on stderr, JSON by default (for log shippers)
/// or `key=value` text (for people at a terminal). Every record has a time (UTC, milliseconds),
/// a level and an event name ("store.opened", "broker.connected"); the rest are fields.
///
/// Thread safety: `log` may be called from any thread (a mutex keeps lines whole).

#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <variant>

namespace edgekit::fleetd {

enum class LogLevel { Debug, Info, Warn, Error };
enum class LogFormat { Json, Text };

/// One field of a record. Text is copied into the line before `log` returns.
struct Field {
  std::string_view key;
  std::variant<std::string_view, std::int64_t, bool> value;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, std::int64_t v) : key(k), value(v) {}
  Field(std::string_view k, int v) : key(k), value(std::int64_t{v}) {}
  Field(std::string_view k, unsigned v) : key(k), value(std::int64_t{v}) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
};

class Logger {
 public:
  Logger(std::ostream& out, LogFormat format, LogLevel min_level)
      : out_(out), format_(format), min_(min_level) {}
  void log(LogLevel level, std::string_view event, std::initializer_list<Field> fields = {});
  void debug(std::string_view e, std::initializer_list<Field> f = {}) { log(LogLevel::Debug, e, f); }
  void info(std::string_view e, std::initializer_list<Field> f = {}) { log(LogLevel::Info, e, f); }
  void warn(std::string_view e, std::initializer_list<Field> f = {}) { log(LogLevel::Warn, e, f); }
  void error(std::string_view e, std::initializer_list<Field> f = {}) { log(LogLevel::Error, e, f); }

 private:
  std::ostream& out_;
  LogFormat format_;
  LogLevel min_;
  std::mutex mutex_;
};

const char* to_string(LogLevel level) noexcept;

}  // namespace edgekit::fleetd
