#pragma once
// Byte buffers that wipe themselves: every buffer the token frees may have held a key or a PIN,
// so the allocator cleanses memory before returning it (also on vector growth).

#include <openssl/crypto.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <vector>

namespace edgekit::pkcs11::token {

template <class T>
struct WipingAllocator {
  using value_type = T;
  WipingAllocator() = default;
  template <class U>
  WipingAllocator(const WipingAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept {
    OPENSSL_cleanse(p, n * sizeof(T));
    ::operator delete(p);
  }
  template <class U>
  bool operator==(const WipingAllocator<U>&) const noexcept { return true; }
};

/// Bytes that are wiped when freed. All attribute values and key material use it.
using Bytes = std::vector<std::uint8_t, WipingAllocator<std::uint8_t>>;

inline Bytes to_bytes(std::span<const std::uint8_t> s) { return Bytes(s.begin(), s.end()); }
inline std::span<const std::uint8_t> view(const Bytes& b) { return {b.data(), b.size()}; }

}  // namespace edgekit::pkcs11::token
