#pragma once
/// \file
/// The verification port of the OTA agent (agent.hpp): what checks a downloaded image's code
/// signature before it is marked bootable. Pure: no heap, no I/O of its own. Implementations:
/// `Verifier` (verifier.hpp, hosted: SHA-256 and ECDSA P-256 in a PKCS#11 token loaded as a
/// module); on a microcontroller the same interface sits over the secure element or the crypto
/// accelerator the device has.
///
/// Thread safety: an implementation is used by one thread at a time (the agent's).

#include <cstddef>
#include <cstdint>
#include <span>

#include "edgekit/ota/errc.hpp"

namespace edgekit::ota {

/// Reads up to `out.size()` bytes of an image from `offset` into `out` (a slot's `read`, a
/// DownloadStore's `read_image`); returns how many, 0 at its end. A function and its context,
/// not a `std::function`: nothing is allocated, and a device links no type erasure.
struct ImageSource {
  Result<std::size_t, Errc> (*read)(void* context, std::uint64_t offset,
                                    std::span<std::byte> out) noexcept = nullptr;
  void* context = nullptr;
};

/// Checks the code signature of an image (`sig-sha256-ecdsa` of the job document, DER or raw
/// r || s: signature.hpp).
class ImageVerifier {
 public:
  /// Reads the `size` bytes of the image from `source`, in parts of at most `buffer.size()`
  /// bytes into `buffer` (the caller's; it holds image bytes only during the call), and verifies
  /// `signature` over them. Every return ends the check: nothing stays in progress.
  /// Errors: InvalidArgument (an empty `buffer`), ImageTruncated (`source` ends before `size`
  /// bytes), the errors of `source`, MalformedSignature, SignatureInvalid (the signature does not
  /// hold: the image was changed, truncated or extended, or signed by another key), TokenFailed
  /// (the implementation's crypto failed).
  [[nodiscard]] virtual Result<void, Errc> verify(ImageSource source, std::uint64_t size,
                                                  std::span<const std::byte> signature,
                                                  std::span<std::byte> buffer) noexcept = 0;

 protected:
  // Not deleted through the interface: no virtual destructor, so a device's vtable names no
  // `operator delete`.
  ~ImageVerifier() = default;
};

}  // namespace edgekit::ota
