#pragma once
/// \file
/// `Result<T, E>`: a value or an error, in the manner of C++23 `std::expected`, for code built
/// without exceptions. Every fallible edgekit call returns one; callers must look at it.

#include <cassert>
#include <new>
#include <type_traits>
#include <utility>

namespace edgekit {

/// Wraps an error so that `Result<T, E>` can be constructed from it unambiguously.
template <class E>
struct Unexpected {
  E error;
};

/// Makes an `Unexpected<E>`: `return fail(Errc::MalformedPacket);`
template <class E>
[[nodiscard]] constexpr Unexpected<E> fail(E e) {
  return Unexpected<E>{e};
}

/// Either a `T` or an `E`. Accessing the wrong side is a programming error (asserted).
/// Thread safety: none, like any value type.
template <class T, class E>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  using error_type = E;

  constexpr Result(const T& v) : has_(true) { new (&value_) T(v); }
  constexpr Result(T&& v) : has_(true) { new (&value_) T(std::move(v)); }
  /// Constructs the value in place from `args` (no temporary, no move: for large values such
  /// as a decoded packet).
  template <class... Args>
  constexpr explicit Result(std::in_place_t, Args&&... args) : has_(true) {
    new (&value_) T(std::forward<Args>(args)...);
  }
  template <class G>
    requires std::is_convertible_v<G, E>
  constexpr Result(Unexpected<G> u) : has_(false) {
    new (&error_) E(static_cast<E>(u.error));
  }
  constexpr Result(const Result& o) : has_(o.has_) {
    if (has_) new (&value_) T(o.value_);
    else new (&error_) E(o.error_);
  }
  constexpr Result(Result&& o) noexcept : has_(o.has_) {
    if (has_) new (&value_) T(std::move(o.value_));
    else new (&error_) E(std::move(o.error_));
  }
  constexpr Result& operator=(const Result& o) {
    if (this != &o) {
      destroy();
      has_ = o.has_;
      if (has_) new (&value_) T(o.value_);
      else new (&error_) E(o.error_);
    }
    return *this;
  }
  constexpr Result& operator=(Result&& o) noexcept {
    if (this != &o) {
      destroy();
      has_ = o.has_;
      if (has_) new (&value_) T(std::move(o.value_));
      else new (&error_) E(std::move(o.error_));
    }
    return *this;
  }
  constexpr ~Result() { destroy(); }

  [[nodiscard]] constexpr bool has_value() const { return has_; }
  [[nodiscard]] constexpr explicit operator bool() const { return has_; }

  [[nodiscard]] constexpr T& value() & { assert(has_); return value_; }
  [[nodiscard]] constexpr const T& value() const& { assert(has_); return value_; }
  [[nodiscard]] constexpr T&& value() && { assert(has_); return std::move(value_); }
  [[nodiscard]] constexpr T& operator*() & { return value(); }
  [[nodiscard]] constexpr const T& operator*() const& { return value(); }
  [[nodiscard]] constexpr T* operator->() { return &value(); }
  [[nodiscard]] constexpr const T* operator->() const { return &value(); }
  [[nodiscard]] constexpr E error() const { assert(!has_); return error_; }

  template <class U>
  [[nodiscard]] constexpr T value_or(U&& fallback) const& {
    return has_ ? value_ : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  constexpr void destroy() {
    if (has_) value_.~T();
    else error_.~E();
  }
  union {
    T value_;
    E error_;
  };
  bool has_;
};

/// Opt-in for an error type whose value-initialised state (zero) means "no error", such as an
/// `Errc` enum with `Ok = 0`: specialise it to true next to the type. `Result<void, E>` then
/// holds the error alone. Why: on a 32-bit target a one-byte result comes back in a register,
/// while a flag plus an error is assembled through memory at every return — about 0.7 KB in the
/// MQTT core on a Cortex-M4. `fail(E{})` is then a programming error (asserted).
template <class E>
inline constexpr bool kZeroErrorMeansSuccess = false;

namespace detail {
// The two layouts of Result<void, E>: a flag and an error, or the error alone.
template <class E>
struct VoidResultFlag {
  bool has = true;
  E error{};
  [[nodiscard]] constexpr bool ok() const { return has; }
  constexpr void set(E e) {
    has = false;
    error = e;
  }
};
template <class E>
struct VoidResultZero {
  E error{};
  [[nodiscard]] constexpr bool ok() const { return error == E{}; }
  constexpr void set(E e) {
    assert(e != E{});
    error = e;
  }
};
}  // namespace detail

/// `Result<T, E>` for an opted-in `E` (see kZeroErrorMeansSuccess) and a trivially copyable `T`:
/// the value beside the error, no flag, and trivially copyable itself. Why (code size): the ARM
/// ABI returns a class with a user-provided copy constructor or destructor through memory
/// whatever its size, and copies it through that constructor; this one fits a register when
/// small (`Result<std::uint16_t>`), is copied as plain bytes when larger, and a failure needs
/// no flag. On failure the value is left unconstructed and never read.
template <class T, class E>
  requires(kZeroErrorMeansSuccess<E> && std::is_trivially_copyable_v<T>)
class [[nodiscard]] Result<T, E> {
 public:
  using value_type = T;
  using error_type = E;

  constexpr Result(const T& v) : value_(v) {}
  template <class... Args>
  constexpr explicit Result(std::in_place_t, Args&&... args)
      : value_(std::forward<Args>(args)...) {}
  template <class G>
    requires std::is_convertible_v<G, E>
  constexpr Result(Unexpected<G> u) : error_(static_cast<E>(u.error)) {
    assert(error_ != E{});
  }

  [[nodiscard]] constexpr bool has_value() const { return error_ == E{}; }
  [[nodiscard]] constexpr explicit operator bool() const { return has_value(); }

  [[nodiscard]] constexpr T& value() & { assert(has_value()); return value_; }
  [[nodiscard]] constexpr const T& value() const& { assert(has_value()); return value_; }
  [[nodiscard]] constexpr T&& value() && { assert(has_value()); return std::move(value_); }
  [[nodiscard]] constexpr T& operator*() & { return value(); }
  [[nodiscard]] constexpr const T& operator*() const& { return value(); }
  [[nodiscard]] constexpr T* operator->() { return &value(); }
  [[nodiscard]] constexpr const T* operator->() const { return &value(); }
  [[nodiscard]] constexpr E error() const { assert(!has_value()); return error_; }

  template <class U>
  [[nodiscard]] constexpr T value_or(U&& fallback) const& {
    return has_value() ? value_ : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  union {
    T value_;  // active only with has_value()
  };
  E error_{};
};

/// `Result<void, E>`: success, or an error.
template <class E>
class [[nodiscard]] Result<void, E> {
 public:
  using value_type = void;
  using error_type = E;

  constexpr Result() = default;
  template <class G>
    requires std::is_convertible_v<G, E>
  constexpr Result(Unexpected<G> u) {
    s_.set(static_cast<E>(u.error));
  }

  [[nodiscard]] constexpr bool has_value() const { return s_.ok(); }
  [[nodiscard]] constexpr explicit operator bool() const { return s_.ok(); }
  constexpr void value() const { assert(s_.ok()); }
  [[nodiscard]] constexpr E error() const { assert(!s_.ok()); return s_.error; }

 private:
  std::conditional_t<kZeroErrorMeansSuccess<E>, detail::VoidResultZero<E>,
                     detail::VoidResultFlag<E>>
      s_;
};

/// Returns early from the enclosing function with the error of `expr` if it failed.
#define EDGEKIT_TRY(expr)                                         \
  do {                                                            \
    if (auto edgekit_try_r_ = (expr); !edgekit_try_r_.has_value()) \
      return ::edgekit::fail(edgekit_try_r_.error());             \
  } while (false)

}  // namespace edgekit
