// Stream messages (aws-iot-protocols.md 3). CBOR through edgekit's own reader and writer
// (libs/doc: strict, no recursion, so a hostile payload cannot nest its way to a stack
// overflow, as it could in nlohmann's recursive CBOR reader); JSON through nlohmann.

#include "ota/wire.hpp"

#include <algorithm>
#include <span>
#include <variant>

#include "edgekit/doc/cbor.hpp"

#include "edgekit/json/json.hpp"
#include "ota/base64.hpp"

namespace edgekit::fleetd::ota {
namespace {

using nlohmann::json;

bool name_ok(std::string_view s, std::size_t max, bool colon) {
  return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), [colon](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || (colon && c == ':');
  });
}

struct Bytes {
  std::string value;
};
// One member value: an integer, a text string or a byte string; anything else is `Other`.
struct Other {};
using Value = std::variant<std::int64_t, std::string, Bytes, Other>;

// The members of a request, whatever its format, as the readers below check them.
struct Members {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(std::string_view key) const {
    for (const auto& [k, v] : items) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

// Reads the payload into members. A rejection (InvalidJson / InvalidCbor / InvalidRequest)
// when it is no map of the format.
std::optional<Rejection> members_of(Format format, std::string_view payload, Members& out) {
  if (format == Format::Json) {
    const json j = json::parse(payload, nullptr, false);
    if (j.is_discarded()) return Rejection{ErrorCode::InvalidJson, "the request is not JSON"};
    if (!j.is_object()) {
      return Rejection{ErrorCode::InvalidRequest, "the request is not a JSON object"};
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
      const json& v = it.value();
      Value value = Other{};
      if (v.is_number_integer()) {
        value = v.get<std::int64_t>();
      } else if (v.is_number_unsigned()) {
        // Larger than int64: out of every range below.
        value = Other{};
      } else if (v.is_string()) {
        value = v.get<std::string>();
      }
      out.items.emplace_back(it.key(), std::move(value));
    }
    return std::nullopt;
  }
  auto item = doc::cbor::parse(std::as_bytes(std::span<const char>(payload.data(), payload.size())));
  if (!item) return Rejection{ErrorCode::InvalidCbor, "the request is not CBOR"};
  if (!item.value().is_object()) {
    return Rejection{ErrorCode::InvalidRequest, "the request is not a CBOR map"};
  }
  for (const doc::cbor::Member& m : item.value().members()) {
    auto key = m.key.as_string_view();
    Value value = Other{};
    if (auto i = m.value.as_int64()) {
      value = *i;
    } else if (auto t = m.value.as_string_view()) {
      value = std::string(*t);
    } else if (auto b = m.value.as_bytes()) {
      value = Bytes{std::string(reinterpret_cast<const char*>(b->data()), b->size())};
    }
    out.items.emplace_back(std::string(key ? *key : std::string_view()), std::move(value));
  }
  return std::nullopt;
}

Rejection invalid(std::string message) { return {ErrorCode::InvalidRequest, std::move(message)}; }

// The client token: absent, or text of at most 64 bytes.
std::optional<Rejection> client_token(const Members& m, std::optional<std::string>& out) {
  const Value* c = m.find("c");
  if (c == nullptr) return std::nullopt;
  const auto* s = std::get_if<std::string>(c);
  if (s == nullptr) return invalid("the client token 'c' is not a string");
  if (s->size() > kMaxClientToken) return invalid("the client token is longer than 64 bytes");
  out = *s;
  return std::nullopt;
}

std::optional<Rejection> integer(const Members& m, const char* key, std::optional<std::int64_t>& out) {
  const Value* v = m.find(key);
  if (v == nullptr) return std::nullopt;
  const auto* i = std::get_if<std::int64_t>(v);
  if (i == nullptr) return invalid(std::string("'") + key + "' is not an integer");
  out = *i;
  return std::nullopt;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// ---- writers --------------------------------------------------------------------------------

std::span<const std::byte> as_span(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// Runs `write(w)` on a CBOR writer over a buffer of `capacity` bytes and returns the item. The
// capacity is computed by the caller from what it writes, so a failure is a bug: it is logged
// by the caller as an empty message (never a truncated one).
template <class F>
std::string cbor(std::size_t capacity, F&& write) {
  std::string buf(capacity, '\0');
  doc::cbor::Writer w(std::span<std::byte>(reinterpret_cast<std::byte*>(buf.data()), buf.size()));
  write(w);
  auto item = w.finish();
  if (!item) return {};
  buf.resize(item.value().size());
  return buf;
}

// Room for the fixed members of a message beside its strings.
constexpr std::size_t kOverhead = 64;

}  // namespace

const char* to_string(ErrorCode c) noexcept {
  switch (c) {
    case ErrorCode::InvalidTopic: return "InvalidTopic";
    case ErrorCode::InvalidJson: return "InvalidJson";
    case ErrorCode::InvalidCbor: return "InvalidCbor";
    case ErrorCode::InvalidRequest: return "InvalidRequest";
    case ErrorCode::Unauthorized: return "Unauthorized";
    case ErrorCode::BlockSizeOutOfBounds: return "BlockSizeOutOfBounds";
    case ErrorCode::OffsetOutOfBounds: return "OffsetOutOfBounds";
    case ErrorCode::BlockCountLimitExceeded: return "BlockCountLimitExceeded";
    case ErrorCode::BlockBitmapLimitExceeded: return "BlockBitmapLimitExceeded";
    case ErrorCode::ResourceNotFound: return "ResourceNotFound";
    case ErrorCode::VersionMismatch: return "VersionMismatch";
    case ErrorCode::ETagMismatch: return "ETagMismatch";
    case ErrorCode::InternalError: return "InternalError";
  }
  return "InternalError";
}

std::optional<TopicReading> read_topic(std::string_view topic) {
  // $aws/things/{thing}/streams/{id}/{op}/{fmt}: exactly 7 levels.
  std::vector<std::string_view> levels;
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = topic.find('/', start);
    levels.push_back(topic.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (levels.size() != 7 || levels[0] != "$aws" || levels[1] != "things" ||
      levels[3] != "streams") {
    return std::nullopt;
  }
  TopicReading r;
  if (levels[5] == "get") {
    r.topic.operation = Operation::Get;
  } else if (levels[5] == "describe") {
    r.topic.operation = Operation::Describe;
  } else {
    return std::nullopt;
  }
  r.topic.thing = levels[2];
  r.topic.stream_id = levels[4];
  if (levels[6] == "cbor") {
    r.topic.format = Format::Cbor;
  } else if (levels[6] != "json") {
    r.rejection = Rejection{ErrorCode::InvalidTopic, "the format must be json or cbor"};
  }
  if (!name_ok(r.topic.thing, 128, true)) {
    r.rejection = Rejection{ErrorCode::InvalidTopic, "invalid thing name in the topic"};
  } else if (!name_ok(r.topic.stream_id, 128, false)) {
    r.rejection = Rejection{ErrorCode::InvalidTopic, "invalid stream id in the topic"};
  }
  return r;
}

Reading<GetRequest> read_get(Format format, std::string_view payload) {
  Reading<GetRequest> out;
  Members m;
  if (auto r = members_of(format, payload, m)) {
    out.rejection = std::move(r);
    return out;
  }
  GetRequest g;
  if (auto r = client_token(m, g.client_token)) {
    out.rejection = std::move(r);
    return out;
  }
  out.client_token = g.client_token;
  std::optional<std::int64_t> f, l, o, n;
  for (auto [key, slot] : {std::pair{"s", &g.stream_version}, {"f", &f}, {"l", &l}, {"o", &o},
                           {"n", &n}}) {
    if (auto r = integer(m, key, *slot)) {
      out.rejection = std::move(r);
      return out;
    }
  }
  if (!f) {
    out.rejection = invalid("the file id 'f' is required");
    return out;
  }
  if (*f < 0 || *f > 255) {
    out.rejection = invalid("the file id 'f' must be 0-255");
    return out;
  }
  if (!l) {
    out.rejection = invalid("the block size 'l' is required");
    return out;
  }
  if (*l < kMinBlockSize || *l > kMaxBlockSize) {
    out.rejection = Rejection{ErrorCode::BlockSizeOutOfBounds, "the block size must be 256-131072"};
    return out;
  }
  if (o && (*o < 0 || *o > kMaxOffset)) {
    out.rejection = Rejection{ErrorCode::OffsetOutOfBounds, "the offset must be 0-98304"};
    return out;
  }
  if (n && (*n < 0 || *n > kMaxBlockCount)) {
    out.rejection = Rejection{ErrorCode::BlockCountLimitExceeded, "the block count must be 0-98304"};
    return out;
  }
  g.file_id = *f;
  g.block_size = *l;
  g.offset = o.value_or(0);
  g.count = n;
  if (const Value* b = m.find("b")) {
    std::string bits;
    if (format == Format::Cbor) {
      const auto* bytes = std::get_if<Bytes>(b);
      if (bytes == nullptr) {
        out.rejection = invalid("the bitmap 'b' is not a byte string");
        return out;
      }
      bits = bytes->value;
    } else {
      const auto* hex = std::get_if<std::string>(b);
      if (hex == nullptr) {
        out.rejection = invalid("the bitmap 'b' is not a hex string");
        return out;
      }
      std::string_view h = *hex;
      if (h.size() >= 2 && h[0] == '0' && (h[1] == 'x' || h[1] == 'X')) h.remove_prefix(2);
      if (h.size() / 2 > kMaxBitmapBytes) {
        out.rejection = Rejection{ErrorCode::BlockBitmapLimitExceeded,
                                  "the bitmap must be less than 12288 bytes"};
        return out;
      }
      if (h.empty() || h.size() % 2 != 0) {
        out.rejection = invalid("the bitmap 'b' must be an even number of hex digits");
        return out;
      }
      for (std::size_t i = 0; i < h.size(); i += 2) {
        const int hi = hex_digit(h[i]);
        const int lo = hex_digit(h[i + 1]);
        if (hi < 0 || lo < 0) {
          out.rejection = invalid("the bitmap 'b' must be an even number of hex digits");
          return out;
        }
        bits += static_cast<char>(hi * 16 + lo);
      }
    }
    if (bits.size() > kMaxBitmapBytes) {
      out.rejection = Rejection{ErrorCode::BlockBitmapLimitExceeded,
                                "the bitmap must be less than 12288 bytes"};
      return out;
    }
    if (bits.empty()) {
      out.rejection = invalid("the bitmap 'b' is empty");
      return out;
    }
    g.bitmap = std::move(bits);
  }
  out.request = std::move(g);
  return out;
}

Reading<DescribeRequest> read_describe(Format format, std::string_view payload) {
  Reading<DescribeRequest> out;
  if (payload.empty()) {
    out.request = DescribeRequest{};
    return out;
  }
  Members m;
  if (auto r = members_of(format, payload, m)) {
    out.rejection = std::move(r);
    return out;
  }
  DescribeRequest d;
  if (auto r = client_token(m, d.client_token)) {
    out.rejection = std::move(r);
    return out;
  }
  out.client_token = d.client_token;
  out.request = std::move(d);
  return out;
}

BlockPlan plan_blocks(const GetRequest& rq, std::int64_t file_size) {
  BlockPlan plan;
  const std::int64_t total = (file_size + rq.block_size - 1) / rq.block_size;
  if (rq.offset >= total) {
    plan.rejection = Rejection{ErrorCode::OffsetOutOfBounds,
                               "the offset is past the file's last block (" +
                                   std::to_string(total) + " blocks)"};
    return plan;
  }
  // At most n blocks, and at most 128 KB of them (3.3); n 0 or absent: the 128 KB default.
  const std::int64_t by_size = kMaxBytesPerRequest / rq.block_size;
  const std::int64_t limit = rq.count && *rq.count > 0 ? std::min(*rq.count, by_size) : by_size;
  if (rq.bitmap) {
    const std::string& b = *rq.bitmap;
    for (std::size_t bit = 0; bit < b.size() * 8; ++bit) {
      if ((static_cast<std::uint8_t>(b[bit / 8]) & (1u << (bit % 8))) == 0) continue;
      const std::int64_t block = rq.offset + static_cast<std::int64_t>(bit);
      if (block >= total) break;
      plan.blocks.push_back(block);
      if (static_cast<std::int64_t>(plan.blocks.size()) == limit) break;
    }
    if (plan.blocks.empty()) {
      plan.rejection = Rejection{ErrorCode::ResourceNotFound,
                                 "the bitmap names no block of the file"};
    }
    return plan;
  }
  for (std::int64_t block = rq.offset; block < total && block - rq.offset < limit; ++block) {
    plan.blocks.push_back(block);
  }
  return plan;
}

std::string_view block_bytes(std::string_view file, std::int64_t block_size, std::int64_t block) {
  const auto start = static_cast<std::size_t>(block * block_size);
  if (start >= file.size()) return {};
  return file.substr(start, static_cast<std::size_t>(block_size));
}

std::string data_message(Format format, const std::optional<std::string>& client_token,
                         std::int64_t file_id, std::int64_t block, std::string_view bytes) {
  const auto length = static_cast<std::int64_t>(bytes.size());
  if (format == Format::Json) {
    json j{{"f", file_id}, {"l", length}, {"i", block}, {"p", base64_encode(bytes)}};
    if (client_token) j["c"] = *client_token;
    return j.dump();
  }
  const std::size_t token = client_token ? client_token->size() : 0;
  return cbor(bytes.size() + token + kOverhead, [&](doc::cbor::Writer& w) {
    w.begin_object();
    if (client_token) w.member("c", std::string_view(*client_token));
    w.member("f", file_id).member("l", length).member("i", block).member("p", as_span(bytes));
    w.end_object();
  });
}

std::string description_message(Format format, const std::optional<std::string>& client_token,
                                std::int64_t version, std::string_view description,
                                const std::vector<DescribedFile>& files) {
  if (format == Format::Json) {
    json r = json::array();
    for (const auto& f : files) r.push_back({{"f", f.file_id}, {"z", f.size}});
    json j{{"s", version}, {"d", std::string(description)}, {"r", r}};
    if (client_token) j["c"] = *client_token;
    return j.dump();
  }
  const std::size_t token = client_token ? client_token->size() : 0;
  return cbor(description.size() + token + kOverhead + files.size() * 32, [&](doc::cbor::Writer& w) {
    w.begin_object();
    if (client_token) w.member("c", std::string_view(*client_token));
    w.member("s", version).member("d", description).key("r").begin_array();
    for (const auto& f : files) w.begin_object().member("f", f.file_id).member("z", f.size).end_object();
    w.end_array().end_object();
  });
}

std::string rejected_message(Format format, const Rejection& rejection,
                             const std::optional<std::string>& client_token) {
  if (format == Format::Json) {
    json j{{"o", to_string(rejection.code)}, {"m", rejection.message}};
    if (client_token) j["c"] = *client_token;
    return j.dump();
  }
  const std::size_t token = client_token ? client_token->size() : 0;
  return cbor(rejection.message.size() + token + kOverhead, [&](doc::cbor::Writer& w) {
    w.begin_object().member("o", to_string(rejection.code)).member("m", rejection.message);
    if (client_token) w.member("c", std::string_view(*client_token));
    w.end_object();
  });
}

std::string reply_topic(std::string_view thing, std::string_view stream_id, std::string_view kind,
                        Format format) {
  return "$aws/things/" + std::string(thing) + "/streams/" + std::string(stream_id) + "/" +
         std::string(kind) + (format == Format::Json ? "/json" : "/cbor");
}

}  // namespace edgekit::fleetd::ota
