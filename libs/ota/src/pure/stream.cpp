// Stream requests and replies (aws-iot-protocols.md 3.2), one template over edgekit::doc's JSON
// and CBOR values and writers.
#include "edgekit/ota/stream.hpp"

#include <cstring>
#include <type_traits>

#include "edgekit/doc/cbor.hpp"
#include "edgekit/doc/either.hpp"
#include "edgekit/doc/json.hpp"

namespace edgekit::ota {
namespace {

// A string read in place where it can be, else unescaped into the front of `scratch`.
template <class V>
Result<std::string_view, Errc> read_string(const V& v, std::span<char>& scratch) noexcept {
  if (!v.is_string()) return fail(Errc::MalformedMessage);
  if (auto view = v.as_string_view()) return *view;
  auto copied = v.copy_string(scratch);
  if (!copied) return fail(Errc::BufferTooSmall);
  scratch = scratch.subspan(copied->size());
  return *copied;
}

// The first of `keys` present in `object`, read as a string; empty when none is.
template <class V>
Result<std::string_view, Errc> optional_string(const V& object,
                                               std::initializer_list<std::string_view> keys,
                                               std::span<char>& scratch) noexcept {
  for (std::string_view key : keys) {
    if (auto v = object.find(key)) return read_string(*v, scratch);
  }
  return std::string_view{};
}

// A required integer member in [0, max].
template <class V>
Result<std::uint32_t, Errc> uint_member(const V& object, std::string_view key,
                                        std::uint32_t max) noexcept {
  auto v = object.find(key);
  if (!v) return fail(Errc::MalformedMessage);
  auto n = v->as_uint64();
  if (!v->is_number() || !n || *n > max) return fail(Errc::MalformedMessage);
  return static_cast<std::uint32_t>(*n);
}

// Parses `message` in `format` and hands its root object to `read`.
template <class F>
auto with_root(Format format, std::span<const std::uint8_t> message, F&& read) noexcept {
  return doc::read_object(format == Format::Cbor, message, Errc::MalformedMessage, read);
}

// The doc writers fail for text that is not UTF-8 (InvalidArgument) or for room (the rest).
Errc writer_errc(doc::Errc e) noexcept {
  return e == doc::Errc::InvalidArgument ? Errc::InvalidArgument : Errc::BufferTooSmall;
}

bool valid_token(std::string_view token) noexcept {
  return !token.empty() && token.size() <= kMaxClientTokenLength;
}

// Moves the document's tail right to open `n` bytes at `at` (room checked by the caller).
void open_gap(std::span<std::uint8_t> out, std::size_t used, std::size_t at,
              std::size_t n) noexcept {
  std::memmove(out.data() + at + n, out.data() + at, used - at);
}

}  // namespace

Result<std::size_t, Errc> write_get_stream_request(Format format, const GetStreamRequest& r,
                                                   std::span<std::uint8_t> out) noexcept {
  if (!valid_token(r.client_token) || r.block_size < kMinBlockSize ||
      r.block_size > kMaxBlockSize || r.offset > kMaxBlockOffset ||
      r.block_count > kMaxBlockOffset || r.bitmap.size() > kMaxBitmapBytes) {
    return fail(Errc::InvalidArgument);
  }
  // The FreeRTOS agent's order: c, f, l, o, b, n (ota_cbor.c); `s` after them when given.
  auto fill = [&](auto& w, auto&& bitmap) {
    w.begin_object()
        .member("c", r.client_token)
        .member("f", r.file_id)
        .member("l", r.block_size)
        .member("o", r.offset);
    if (!r.bitmap.empty()) bitmap(w);
    w.member("n", r.block_count);
    if (r.stream_version) w.member("s", *r.stream_version);
    w.end_object();
  };
  if (format == Format::Cbor) {
    doc::cbor::Writer w(std::as_writable_bytes(out));
    fill(w, [&](doc::cbor::Writer& cw) { cw.member("b", std::as_bytes(r.bitmap)); });
    auto done = w.finish();
    if (!done) return fail(writer_errc(done.error().code));
    return done->size();
  }
  // JSON: `b` is "0x" + hex, which the JSON writer has no call for. It writes an empty string
  // there (checking the token's UTF-8 and escaping it), and the hex digits go between its quotes.
  std::size_t closing_quote = 0;
  doc::json::Writer w(std::span<char>(reinterpret_cast<char*>(out.data()), out.size()));
  fill(w, [&](doc::json::Writer& jw) {
    jw.key("b").string("");
    closing_quote = jw.size() - 1;
  });
  auto done = w.finish();
  if (!done) return fail(writer_errc(done.error().code));
  std::size_t used = done->size();
  if (r.bitmap.empty()) return used;
  const std::size_t hex = 2 + 2 * r.bitmap.size();
  if (out.size() - used < hex) return fail(Errc::BufferTooSmall);
  open_gap(out, used, closing_quote, hex);
  constexpr char kDigits[] = "0123456789abcdef";
  std::uint8_t* p = out.data() + closing_quote;
  *p++ = '0';
  *p++ = 'x';
  for (std::uint8_t b : r.bitmap) {
    *p++ = static_cast<std::uint8_t>(kDigits[b >> 4]);
    *p++ = static_cast<std::uint8_t>(kDigits[b & 0xF]);
  }
  return used + hex;
}

Result<std::size_t, Errc> write_describe_stream_request(Format format, std::string_view token,
                                                        std::span<std::uint8_t> out) noexcept {
  if (!valid_token(token)) return fail(Errc::InvalidArgument);
  if (format == Format::Cbor) {
    doc::cbor::Writer w(std::as_writable_bytes(out));
    auto done = w.begin_object().member("c", token).end_object().finish();
    if (!done) return fail(writer_errc(done.error().code));
    return done->size();
  }
  doc::json::Writer w(std::span<char>(reinterpret_cast<char*>(out.data()), out.size()));
  auto done = w.begin_object().member("c", token).end_object().finish();
  if (!done) return fail(writer_errc(done.error().code));
  return done->size();
}

Result<DataBlock, Errc> read_data(Format format, std::span<const std::uint8_t> message,
                                  std::span<std::byte> block, std::span<char> scratch) noexcept {
  return with_root(format, message, [&](const auto& root) -> Result<DataBlock, Errc> {
    using V = std::remove_cvref_t<decltype(root)>;
    DataBlock out;
    auto token = optional_string(root, {"c"}, scratch);
    if (!token) return fail(token.error());
    out.client_token = *token;
    auto f = uint_member(root, "f", 0xFFFFFFFFu);
    auto i = uint_member(root, "i", 0xFFFFFFFFu);
    auto l = uint_member(root, "l", 0xFFFFFFFFu);
    if (!f || !i || !l) return fail(Errc::MalformedMessage);
    out.file_id = *f;
    out.block_id = *i;
    auto p = root.find("p");
    if (!p) return fail(Errc::MalformedMessage);
    if constexpr (std::is_same_v<V, doc::cbor::Value>) {
      auto bytes = p->as_bytes();
      if (!bytes) return fail(Errc::MalformedMessage);
      out.payload = *bytes;
    } else {
      auto bytes = p->copy_base64(block);
      if (!bytes) {
        return fail(bytes.error().code == doc::Errc::BufferTooSmall ? Errc::BufferTooSmall
                                                                    : Errc::MalformedMessage);
      }
      out.payload = *bytes;
    }
    if (out.payload.size() != *l) return fail(Errc::BlockLengthMismatch);
    return out;
  });
}

Result<StreamDescription, Errc> read_description(Format format,
                                                 std::span<const std::uint8_t> message,
                                                 std::span<StreamFile> files,
                                                 std::span<char> scratch) noexcept {
  return with_root(format, message, [&](const auto& root) -> Result<StreamDescription, Errc> {
    StreamDescription out;
    auto token = optional_string(root, {"c"}, scratch);
    if (!token) return fail(token.error());
    out.client_token = *token;
    auto d = optional_string(root, {"d"}, scratch);
    if (!d) return fail(d.error());
    out.description = *d;
    if (auto s = root.find("s")) {
      auto n = s->as_int64();
      if (!s->is_number() || !n) return fail(Errc::MalformedMessage);
      out.stream_version = *n;
    }
    auto r = root.find("r");
    if (!r || !r->is_array()) return fail(Errc::MalformedMessage);
    for (const auto& entry : r->elements()) {
      if (!entry.is_object() || out.file_count >= files.size()) return fail(Errc::MalformedMessage);
      auto f = uint_member(entry, "f", 255);
      auto z = uint_member(entry, "z", 0xFFFFFFFFu);
      if (!f || !z) return fail(Errc::MalformedMessage);
      files[out.file_count++] = StreamFile{*f, *z};
    }
    return out;
  });
}

Result<StreamRejected, Errc> read_stream_rejected(Format format,
                                                  std::span<const std::uint8_t> message,
                                                  std::span<char> scratch) noexcept {
  return with_root(format, message, [&](const auto& root) -> Result<StreamRejected, Errc> {
    StreamRejected out;
    // The short keys of 3.2, then the legacy long names the service may still send.
    auto code = optional_string(root, {"o", "code"}, scratch);
    if (!code) return fail(code.error());
    if (code->empty()) return fail(Errc::MalformedMessage);
    auto message_text = optional_string(root, {"m", "message"}, scratch);
    if (!message_text) return fail(message_text.error());
    auto token = optional_string(root, {"c", "clientToken"}, scratch);
    if (!token) return fail(token.error());
    out.code = *code;
    out.message = *message_text;
    out.client_token = *token;
    out.errc = stream_errc(out.code);
    return out;
  });
}

}  // namespace edgekit::ota
