#include "http/json_body.hpp"

#include <algorithm>
#include <charconv>

namespace edgekit::fleetd::http {

using nlohmann::json;

Res<json> object_of(std::string_view body, std::size_t max) {
  if (body.size() > max) {
    return fail(Errc::InvalidArgument,
                "request body larger than " + std::to_string(max / 1024) + " KB");
  }
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(Errc::InvalidArgument, "request body is not valid JSON");
  if (!j.is_object()) return fail(Errc::InvalidArgument, "request body is not a JSON object");
  return j;
}

Res<std::string> string_member(const json& j, const char* name, bool required, std::size_t max) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    if (required) return fail(Errc::InvalidArgument, std::string("missing member '") + name + "'");
    return std::string();
  }
  if (!it->is_string()) {
    return fail(Errc::InvalidArgument, std::string("member '") + name + "' is not a string");
  }
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max) {
    return fail(Errc::InvalidArgument, std::string("member '") + name + "' is longer than " +
                                           std::to_string(max) + " bytes");
  }
  return s;
}

Res<std::optional<bool>> bool_member(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) {
    return fail(Errc::InvalidArgument, std::string("member '") + name + "' is not true or false");
  }
  return std::optional<bool>(it->get<bool>());
}

Res<std::optional<std::int64_t>> integer_member(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::optional<std::int64_t>();
  if (it->is_number_integer()) return std::optional<std::int64_t>(it->get<std::int64_t>());
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (!s.empty() && ec == std::errc() && ptr == s.data() + s.size()) {
      return std::optional<std::int64_t>(v);
    }
  }
  return fail(Errc::InvalidArgument, std::string("member '") + name + "' is not an integer");
}

Res<void> only_members(const json& j, std::initializer_list<std::string_view> allowed) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
      std::string key = it.key().substr(0, 64);
      return fail(Errc::InvalidArgument, "unknown member '" + key + "'");
    }
  }
  return {};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace edgekit::fleetd::http
