// The OTA phase's in-memory ports and verifier (ota_phase.hpp): a device's image is stored as it
// was received even though it is kept as bits over the fleet's one reference copy (a changed
// byte is kept and read back, so the signature check sees it), the slots follow the state
// machine of ports.hpp, and the OpenSSL verifier accepts the signer's image (DER and raw r || s)
// and refuses a changed or truncated one and another signer. The whole phase against a real
// fleetd and Mosquitto runs in scripts/scale-test (ctest sim_scale_quick).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <edgekit/jobs/runner.hpp>
#include <edgekit/ota/agent.hpp>
#include <edgekit/ota/signature.hpp>

#include "ota_phase.hpp"

namespace edgekit::sim {
namespace {

using ota::Errc;

std::shared_ptr<EVP_PKEY> new_key() {
  return {EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free};
}

// DER ECDSA over SHA-256 of `bytes`, as fleetd's code signing makes it.
std::vector<std::byte> sign(EVP_PKEY* key, const std::vector<std::byte>& bytes) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EXPECT_EQ(EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key), 1);
  std::size_t n = 0;
  EXPECT_EQ(EVP_DigestSign(md.get(), nullptr, &n,
                           reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()), 1);
  std::vector<std::byte> sig(n);
  EXPECT_EQ(EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &n,
                           reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()), 1);
  sig.resize(n);
  return sig;
}

ota::ImageSource source_of(MemoryDownloadStore& store) {
  return {[](void* c, std::uint64_t offset, std::span<std::byte> out) noexcept {
            return static_cast<MemoryDownloadStore*>(c)->read_image(offset, out);
          },
          &store};
}

void write_blocks(MemoryDownloadStore& store, const std::vector<std::byte>& image, std::size_t block) {
  for (std::size_t at = 0; at < image.size(); at += block) {
    const std::size_t n = std::min(block, image.size() - at);
    ASSERT_TRUE(store.write_block(at, std::span<const std::byte>(image.data() + at, n)));
  }
}

std::vector<std::byte> read_all(MemoryDownloadStore& store, std::size_t size) {
  std::vector<std::byte> out(size + 100);
  auto n = store.read_image(0, out);
  EXPECT_TRUE(n);
  out.resize(n ? *n : 0);
  return out;
}

TEST(OtaPorts, SparseImageKeepsOnlyWhatDiffersFromTheReference) {
  OtaSpec spec;
  spec.image_bytes = 65536 + 100;  // a last grain shorter than 64 bytes
  const OtaRelease r = make_ota_images(spec);
  const std::vector<std::byte>& image = *r.image;
  ASSERT_EQ(image.size(), spec.image_bytes);

  MemoryDownloadStore store(r.image);
  write_blocks(store, image, 1024);
  EXPECT_EQ(read_all(store, image.size()), image);
  EXPECT_EQ(store.image().private_grains(), 0u);
  // One bit per 64 bytes: 1,027 grains in 129 bytes (a vector's capacity may round up).
  EXPECT_LT(store.image().memory_bytes(), 200u);

  // A block received with one byte changed is stored as received: the reader sees the change.
  std::vector<std::byte> tampered = image;
  tampered[5000] ^= std::byte{0x01};
  ASSERT_TRUE(store.write_block(4096, std::span<const std::byte>(tampered.data() + 4096, 1024)));
  EXPECT_EQ(read_all(store, image.size()), tampered);
  EXPECT_EQ(store.image().private_grains(), 1u);
  // Written again correctly, it is the reference's again.
  ASSERT_TRUE(store.write_block(4096, std::span<const std::byte>(image.data() + 4096, 1024)));
  EXPECT_EQ(read_all(store, image.size()), image);
  EXPECT_EQ(store.image().private_grains(), 0u);

  // Writes at any offset and length; a hole reads as 0; the size is the furthest write's end.
  SparseImage s;
  s.reset(r.image);
  const std::byte other[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
  s.write(100, std::span<const std::byte>(image.data() + 100, 40));  // part of a grain: kept
  s.write(200, other);
  EXPECT_EQ(s.size(), 203u);
  std::vector<std::byte> got(300);
  ASSERT_EQ(s.read(0, got), 203u);
  for (std::size_t i = 0; i < 203; ++i) {
    const std::byte want = i >= 100 && i < 140 ? image[i] : i >= 200 ? other[i - 200] : std::byte{0};
    ASSERT_EQ(got[i], want) << i;
  }
  EXPECT_EQ(s.read(203, got), 0u);

  // A cleared store forgets the download and the image.
  ASSERT_TRUE(store.save(std::vector<std::uint8_t>{1, 2}, std::vector<std::uint8_t>{3}));
  std::uint8_t rec[4], bits[1];
  ASSERT_TRUE(store.load(rec, bits));
  EXPECT_EQ(store.load(std::span<std::uint8_t>(rec, 1), bits).error(), Errc::BufferTooSmall);
  ASSERT_TRUE(store.clear());
  EXPECT_EQ(store.load(rec, bits).error(), Errc::NoDownload);
  EXPECT_EQ(store.image().size(), 0u);
}

TEST(OtaPorts, VerifierAcceptsTheSignersImageOnly) {
  OtaSpec spec;
  spec.image_bytes = 10000;
  const OtaRelease r = make_ota_images(spec);
  auto key = new_key();
  auto stranger = new_key();
  ASSERT_TRUE(key && stranger);
  const std::vector<std::byte> der = sign(key.get(), *r.image);
  MemoryDownloadStore store(r.image);
  write_blocks(store, *r.image, 1024);
  std::array<std::byte, 1024> buffer{};
  OpenSslImageVerifier verifier(key);
  EXPECT_TRUE(verifier.verify(source_of(store), r.image->size(), der, buffer));
  // The raw form r || s of the same signature.
  std::array<std::byte, 64> raw{};
  ASSERT_TRUE(ota::raw_p256_signature(der, raw));
  EXPECT_TRUE(verifier.verify(source_of(store), r.image->size(), raw, buffer));
  // Another signer.
  OpenSslImageVerifier wrong(stranger);
  EXPECT_EQ(wrong.verify(source_of(store), r.image->size(), der, buffer).error(),
            Errc::SignatureInvalid);
  // A garbled signature, an empty buffer.
  const std::byte junk[5] = {};
  EXPECT_EQ(verifier.verify(source_of(store), r.image->size(), junk, buffer).error(),
            Errc::MalformedSignature);
  EXPECT_EQ(verifier.verify(source_of(store), r.image->size(), der, {}).error(),
            Errc::InvalidArgument);
  // A changed byte, stored as received.
  std::vector<std::byte> tampered = *r.image;
  tampered[7777] ^= std::byte{0x80};
  ASSERT_TRUE(store.write_block(7168, std::span<const std::byte>(tampered.data() + 7168, 1024)));
  EXPECT_EQ(verifier.verify(source_of(store), r.image->size(), der, buffer).error(),
            Errc::SignatureInvalid);
  // A store that ends early.
  MemoryDownloadStore short_store(r.image);
  ASSERT_TRUE(short_store.write_block(0, std::span<const std::byte>(r.image->data(), 4096)));
  EXPECT_EQ(verifier.verify(source_of(short_store), r.image->size(), der, buffer).error(),
            Errc::ImageTruncated);
}

TEST(OtaPorts, PublicKeyOfACertificate) {
  auto key = new_key();
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  ASSERT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(bio.get(), cert.get());
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  std::string error;
  auto got = public_key_of(std::string(data, static_cast<std::size_t>(n)) + "trailing chain", error);
  ASSERT_TRUE(got) << error;
  EXPECT_EQ(EVP_PKEY_eq(got.get(), key.get()), 1);
  EXPECT_FALSE(public_key_of("not a certificate", error));
  EXPECT_EQ(error, "no PEM certificate");
}

// What docs/simulator.md states as the per-device cost of the phase (beside the ports' bits).
TEST(OtaPorts, DeviceBytesOfThePhase) {
  OtaSpec spec;  // 16 KB in 1 KB blocks
  const std::size_t bytes = ota_device_bytes(spec);
  std::printf("OTA phase, per device: %zu B (agent %zu, runner %zu, ports %zu + %zu)\n", bytes,
              sizeof(ota::Agent), sizeof(jobs::Runner), sizeof(MemoryDownloadStore),
              sizeof(MemorySlots));
  EXPECT_LT(bytes, 24u * 1024);
}

TEST(OtaPorts, SlotsFollowTheBootStateMachine) {
  using ota::BootState;
  using ota::Slot;
  OtaSpec spec;
  spec.image_bytes = 3000;
  const OtaRelease r = make_ota_images(spec);
  MemorySlots slots(r.factory, r.image);
  ASSERT_TRUE(slots.active_version());
  EXPECT_EQ(slots.active_version()->packed(), (ota::ImageVersion{1, 0, 0}.packed()));
  EXPECT_EQ(slots.read(Slot::B, 0, std::span<std::byte>()).error(), Errc::NoImage);
  EXPECT_EQ(slots.mark_pending().error(), Errc::NoImage);
  EXPECT_EQ(slots.write(0, *r.image).error(), Errc::SlotStateInvalid);
  ASSERT_TRUE(slots.begin_write());
  ASSERT_TRUE(slots.write(0, *r.image));
  ASSERT_TRUE(slots.finish_write());
  ASSERT_TRUE(slots.mark_pending());
  EXPECT_EQ(slots.begin_write().error(), Errc::SlotStateInvalid);  // an image is pending
  EXPECT_EQ(slots.confirm().error(), Errc::SlotStateInvalid);
  auto b = slots.boot();
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, (ota::BootStatus{Slot::B, BootState::Testing}));
  EXPECT_EQ(slots.active_version()->packed(), (ota::ImageVersion{2, 0, 0}.packed()));
  ASSERT_TRUE(slots.confirm());
  EXPECT_EQ(*slots.status(), (ota::BootStatus{Slot::B, BootState::Normal}));
  EXPECT_EQ(slots.image(Slot::B).private_grains(), 0u);
  // A second update that is never confirmed: the next boot rolls back to B.
  ASSERT_TRUE(slots.begin_write());
  ASSERT_TRUE(slots.write(0, *r.image));
  ASSERT_TRUE(slots.finish_write());
  ASSERT_TRUE(slots.mark_pending());
  ASSERT_TRUE(slots.boot());
  EXPECT_EQ(*slots.boot(), (ota::BootStatus{Slot::B, BootState::RolledBack}));
  ASSERT_TRUE(slots.acknowledge());
  EXPECT_EQ(slots.acknowledge().error(), Errc::SlotStateInvalid);
}

}  // namespace
}  // namespace edgekit::sim
