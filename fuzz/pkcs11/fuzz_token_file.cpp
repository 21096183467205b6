// Fuzzes the token folder's loaders: object files (frame, HMAC or AES-GCM, attribute decoding,
// the kind/CKA_PRIVATE and CKA_CLASS checks) and the token file (record decoding). The first byte
// picks a mode (p11_fuzz.hpp); modes 1, 2 and 4 wrap the input in a valid frame so that the
// decoders behind the MAC, tag and checksum see fuzzer bytes too.
// Oracles: whatever loads must encode again and load to the same thing (objects), or re-encode
// to exactly the input (token records, whose encoding is canonical).
#include "p11_fuzz.hpp"
#include "token/crypto.hpp"
#include "token/store.hpp"

namespace {

namespace tk = edgekit::pkcs11::token;
namespace p11 = edgekit::fuzz::p11;

const std::span<const std::uint8_t> kIntegrity(p11::kIntegrityKey);
const std::span<const std::uint8_t> kMaster(p11::kMasterKey);

std::uint64_t header_id(std::span<const std::uint8_t> file) {
  if (file.size() < tk::kObjectHeaderSize) return 0;
  std::uint64_t id = 0;
  for (int i = 7; i >= 0; --i) id = (id << 8) | file[16 + static_cast<std::size_t>(i)];
  return id;
}

void check_object_round_trip(const tk::StoredObject& obj) {
  tk::Bytes again;
  FUZZ_CHECK(tk::encode_object_file(obj, kIntegrity, kMaster, again));
  tk::StoredObject back;
  FUZZ_CHECK(tk::load_object_file(tk::view(again), obj.id, kIntegrity, kMaster, false, back) ==
             tk::LoadStatus::Ok);
  FUZZ_CHECK(back.id == obj.id);
  FUZZ_CHECK(back.kind == obj.kind);
  FUZZ_CHECK(back.attributes == obj.attributes);
}

void load_object(std::span<const std::uint8_t> file, std::uint64_t id) {
  tk::StoredObject obj;
  const auto status = tk::load_object_file(file, id, kIntegrity, kMaster, false, obj);
  FUZZ_CHECK(status == tk::LoadStatus::Ok || status == tk::LoadStatus::Corrupt);
  if (status == tk::LoadStatus::Ok) check_object_round_trip(obj);
  // A reader without the master key skips private files and never decrypts them.
  tk::StoredObject public_only;
  const auto skipped = tk::load_object_file(file, id, kIntegrity, {}, true, public_only);
  if (skipped == tk::LoadStatus::Ok) FUZZ_CHECK(public_only.kind == tk::ObjectKind::Public);
}

void load_record(std::span<const std::uint8_t> file) {
  tk::TokenRecord record;
  if (!tk::decode_token_record(file, record)) return;
  tk::Bytes again;
  tk::encode_token_record(record, again);
  if (file[8] == 1) {
    // A version 1 file (no generation counter) is written back as version 2, which reads the same.
    tk::TokenRecord back;
    FUZZ_CHECK(tk::decode_token_record(tk::view(again), back));
    FUZZ_CHECK(back.generation == 0 && back.user_failures == record.user_failures &&
               back.so_sealed_key == record.so_sealed_key);
    return;
  }
  FUZZ_CHECK(again.size() == file.size());
  FUZZ_CHECK(std::equal(again.begin(), again.end(), file.begin()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto mode = static_cast<p11::FileMode>(data[0] % p11::kFileModes);
  const std::span<const std::uint8_t> in(data + 1, size - 1);
  switch (mode) {
    case p11::FileMode::RawObjectFile:
      load_object(in, header_id(in));
      break;
    case p11::FileMode::PublicPayload:
    case p11::FileMode::PrivatePayload: {
      const bool is_private = mode == p11::FileMode::PrivatePayload;
      const std::uint64_t id = 0x1122334455667788ULL;
      std::uint8_t header[tk::kObjectHeaderSize];
      tk::make_object_header(is_private ? tk::ObjectKind::Private : tk::ObjectKind::Public, id, header);
      tk::Bytes file(header, header + sizeof header);
      if (is_private) {
        tk::Bytes sealed;
        FUZZ_CHECK(tk::seal(kMaster, header, in, sealed));
        file.insert(file.end(), sealed.begin(), sealed.end());
      } else {
        file.insert(file.end(), in.begin(), in.end());
        std::uint8_t mac[32];
        FUZZ_CHECK(tk::hmac_sha256(kIntegrity, tk::view(file), mac));
        file.insert(file.end(), mac, mac + sizeof mac);
      }
      load_object(tk::view(file), id);
      break;
    }
    case p11::FileMode::RawTokenRecord:
      load_record(in);
      break;
    case p11::FileMode::TokenRecordBody: {
      tk::Bytes file(in.begin(), in.end());
      std::uint8_t digest[32];
      FUZZ_CHECK(tk::sha256(in, digest));
      file.insert(file.end(), digest, digest + sizeof digest);
      load_record(tk::view(file));
      break;
    }
  }
  return 0;
}
