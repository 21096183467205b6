// OTA images and streams over the SQL seam (tables of schema migration 8).

#include "store/ota.hpp"

#include <algorithm>
#include <set>

#include "ota/base64.hpp"

namespace edgekit::fleetd {
namespace {

bool chars_ok(std::string_view s, std::size_t max, std::string_view extra) {
  return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), [extra](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           extra.find(c) != std::string_view::npos;
  });
}

Unexpected<Error> bad(std::string message) {
  return fail(Errc::InvalidArgument, std::move(message));
}

Res<void> check_page(const PageRequest& p) {
  if (p.limit < 1 || p.limit > 1000) return bad("limit must be 1..1000");
  return {};
}

std::string image_key(std::string_view name, std::string_view version) {
  return "image '" + std::string(name) + "' version '" + std::string(version) + "'";
}

constexpr const char* kImageColumns =
    "name, version, device_type, size, sha256, signature, signer_certificate, created_at";

OtaImage image_from(const Row& r) {
  OtaImage i;
  i.name = r.text(0);
  i.version = r.text(1);
  i.device_type = r.text(2);
  i.size = r.integer(3);
  i.sha256 = r.text(4);
  i.signature = r.text(5);
  i.signer_certificate = r.text(6);
  i.created_at = r.integer(7);
  return i;
}

Res<std::vector<StreamFile>> files_of(Tx& tx, std::string_view stream_id) {
  auto rows = tx.db().query(
      "SELECT file_id, image_name, image_version FROM ota_stream_files WHERE stream_id = $1"
      " ORDER BY file_id",
      {stream_id});
  if (!rows) return fail(rows.error());
  std::vector<StreamFile> out;
  for (const Row& r : rows.value()) out.push_back({r.integer(0), r.text(1), r.text(2)});
  return out;
}

Res<OtaStream> stream_from(Tx& tx, const Row& r) {
  OtaStream s;
  s.stream_id = r.text(0);
  s.version = r.integer(1);
  s.description = r.text(2);
  s.block_size = r.integer(3);
  s.created_at = r.integer(4);
  auto files = files_of(tx, s.stream_id);
  if (!files) return fail(files.error());
  s.files = std::move(files.value());
  return s;
}

}  // namespace

Res<OtaImage> create_image(Tx& tx, const OtaImage& image) {
  if (!chars_ok(image.name, 128, "_.-")) {
    return bad("invalid image name '" + image.name + "': 1-128 characters of [a-zA-Z0-9_.-]");
  }
  if (!chars_ok(image.version, 64, "_.+-")) {
    return bad("invalid image version '" + image.version +
               "': 1-64 characters of [a-zA-Z0-9_.+-]");
  }
  if (image.device_type.size() > 128) return bad("the device type is longer than 128 bytes");
  if (image.bytes.empty()) return bad("the image is empty");
  if (image.bytes.size() > kMaxImageSize) {
    return bad("the image is larger than " + std::to_string(kMaxImageSize) + " bytes");
  }
  if (static_cast<std::size_t>(image.size) != image.bytes.size()) {
    return bad("the image's size is not that of its bytes");
  }
  if (image.sha256.size() != 64) return bad("the image's SHA-256 is not 64 hex digits");
  if (image.signature.empty() != image.signer_certificate.empty()) {
    return bad("a signature needs its signer's certificate, and a certificate its signature");
  }
  // The bytes in ota_image_bytes (migration 9): a read of the row stays small.
  auto n = tx.db().exec(
      "INSERT INTO ota_images (name, version, device_type, size, sha256, signature,"
      " signer_certificate, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
      {std::string_view(image.name), std::string_view(image.version),
       std::string_view(image.device_type), image.size, std::string_view(image.sha256),
       std::string_view(image.signature), std::string_view(image.signer_certificate), tx.now()});
  if (!n) {
    Error e = n.error();
    if (e.code == Errc::AlreadyExists) e.message = image_key(image.name, image.version) + " exists";
    return fail(std::move(e));
  }
  auto b = tx.db().exec("INSERT INTO ota_image_bytes (name, version, bytes) VALUES ($1, $2, $3)",
                        {std::string_view(image.name), std::string_view(image.version),
                         std::string_view(ota::base64_encode(image.bytes))});
  if (!b) return fail(b.error());
  return get_image(tx, image.name, image.version, false);
}

Res<OtaImage> get_image(Tx& tx, std::string_view name, std::string_view version,
                        bool with_bytes) {
  auto rows = tx.db().query(std::string("SELECT ") + kImageColumns +
                                " FROM ota_images WHERE name = $1 AND version = $2",
                            {name, version});
  if (!rows) return fail(rows.error());
  if (rows.value().empty()) return fail(Errc::NotFound, image_key(name, version) + " not found");
  OtaImage image = image_from(rows.value().front());
  if (with_bytes) {
    auto text = tx.db().query("SELECT bytes FROM ota_image_bytes WHERE name = $1 AND version = $2",
                              {name, version});
    if (!text) return fail(text.error());
    std::optional<std::string> bytes;
    if (!text.value().empty()) bytes = ota::base64_decode(text.value().front().text(0));
    if (!bytes || static_cast<std::int64_t>(bytes->size()) != image.size) {
      return fail(Errc::StoreCorrupt, "the bytes of " + image_key(name, version) + " are damaged");
    }
    image.bytes = std::move(*bytes);
  }
  return image;
}

Res<Page<OtaImage>> list_images(Tx& tx, const PageRequest& page) {
  if (auto c = check_page(page); !c) return fail(c.error());
  // Names hold no '/', so "name/version" orders as (name, version) does.
  auto rows = tx.db().query(std::string("SELECT ") + kImageColumns +
                                " FROM ota_images WHERE name || '/' || version > $1"
                                " ORDER BY name || '/' || version LIMIT $2",
                            {std::string_view(page.after), static_cast<std::int64_t>(page.limit + 1)});
  if (!rows) return fail(rows.error());
  Page<OtaImage> out;
  for (const Row& r : rows.value()) {
    if (out.items.size() == page.limit) {
      out.next = out.items.back().name + "/" + out.items.back().version;
      break;
    }
    out.items.push_back(image_from(r));
  }
  return out;
}

Res<OtaImage> set_image_signature(Tx& tx, std::string_view name, std::string_view version,
                                  std::string_view signature, std::string_view certificate) {
  if (signature.empty() || certificate.empty()) {
    return bad("a signature needs its signer's certificate");
  }
  auto n = tx.db().exec(
      "UPDATE ota_images SET signature = $3, signer_certificate = $4 WHERE name = $1 AND"
      " version = $2",
      {name, version, signature, certificate});
  if (!n) return fail(n.error());
  if (n.value() == 0) return fail(Errc::NotFound, image_key(name, version) + " not found");
  return get_image(tx, name, version, false);
}

Res<void> delete_image(Tx& tx, std::string_view name, std::string_view version) {
  auto used = tx.db().query(
      "SELECT stream_id FROM ota_stream_files WHERE image_name = $1 AND image_version = $2"
      " ORDER BY stream_id LIMIT 1",
      {name, version});
  if (!used) return fail(used.error());
  if (!used.value().empty()) {
    return fail(Errc::Conflict, image_key(name, version) + " is a file of stream '" +
                                    used.value().front().text(0) + "'");
  }
  auto n = tx.db().exec("DELETE FROM ota_images WHERE name = $1 AND version = $2", {name, version});
  if (!n) return fail(n.error());
  if (n.value() == 0) return fail(Errc::NotFound, image_key(name, version) + " not found");
  return {};
}

Res<OtaStream> create_stream(Tx& tx, OtaStream stream) {
  if (!chars_ok(stream.stream_id, 128, "_-")) {
    return bad("invalid stream id '" + stream.stream_id + "': 1-128 characters of [a-zA-Z0-9_-]");
  }
  if (stream.description.size() > kMaxStreamDescription) {
    return bad("the description is longer than " + std::to_string(kMaxStreamDescription));
  }
  if (stream.block_size < kMinBlockSize || stream.block_size > kMaxBlockSize) {
    return bad("the block size must be 256-131072 bytes");
  }
  if (stream.files.empty() || stream.files.size() > kMaxStreamFiles) {
    return bad("a stream has 1-" + std::to_string(kMaxStreamFiles) + " files");
  }
  std::set<std::int64_t> ids;
  for (const StreamFile& f : stream.files) {
    if (f.file_id < 0 || f.file_id > 255) return bad("a file id must be 0-255");
    if (!ids.insert(f.file_id).second) {
      return bad("file id " + std::to_string(f.file_id) + " is given twice");
    }
    if (auto i = get_image(tx, f.image_name, f.image_version, false); !i) return fail(i.error());
  }
  auto n = tx.db().exec(
      "INSERT INTO ota_streams (stream_id, version, description, block_size, created_at)"
      " VALUES ($1, 1, $2, $3, $4)",
      {std::string_view(stream.stream_id), std::string_view(stream.description),
       stream.block_size, tx.now()});
  if (!n) {
    Error e = n.error();
    if (e.code == Errc::AlreadyExists) e.message = "stream '" + stream.stream_id + "' exists";
    return fail(std::move(e));
  }
  for (const StreamFile& f : stream.files) {
    auto in = tx.db().exec(
        "INSERT INTO ota_stream_files (stream_id, file_id, image_name, image_version)"
        " VALUES ($1, $2, $3, $4)",
        {std::string_view(stream.stream_id), f.file_id, std::string_view(f.image_name),
         std::string_view(f.image_version)});
    if (!in) return fail(in.error());
  }
  return get_stream(tx, stream.stream_id);
}

Res<OtaStream> get_stream(Tx& tx, std::string_view stream_id) {
  auto rows = tx.db().query(
      "SELECT stream_id, version, description, block_size, created_at FROM ota_streams"
      " WHERE stream_id = $1",
      {stream_id});
  if (!rows) return fail(rows.error());
  if (rows.value().empty()) {
    return fail(Errc::NotFound, "stream '" + std::string(stream_id) + "' not found");
  }
  return stream_from(tx, rows.value().front());
}

Res<Page<OtaStream>> list_streams(Tx& tx, const PageRequest& page) {
  if (auto c = check_page(page); !c) return fail(c.error());
  auto rows = tx.db().query(
      "SELECT stream_id, version, description, block_size, created_at FROM ota_streams"
      " WHERE stream_id > $1 ORDER BY stream_id LIMIT $2",
      {std::string_view(page.after), static_cast<std::int64_t>(page.limit + 1)});
  if (!rows) return fail(rows.error());
  Page<OtaStream> out;
  for (const Row& r : rows.value()) {
    if (out.items.size() == page.limit) {
      out.next = out.items.back().stream_id;
      break;
    }
    auto s = stream_from(tx, r);
    if (!s) return fail(s.error());
    out.items.push_back(std::move(s.value()));
  }
  return out;
}

Res<void> delete_stream(Tx& tx, std::string_view stream_id) {
  auto n = tx.db().exec("DELETE FROM ota_streams WHERE stream_id = $1", {stream_id});
  if (!n) return fail(n.error());
  if (n.value() == 0) {
    return fail(Errc::NotFound, "stream '" + std::string(stream_id) + "' not found");
  }
  return {};
}

}  // namespace edgekit::fleetd
