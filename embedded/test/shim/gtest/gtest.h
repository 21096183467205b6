#pragma once
// A small GoogleTest-compatible shim for bare-metal test images. GoogleTest itself needs an OS
// (exceptions, iostreams, threads, files); this header gives the subset the codec and session
// tests use, so the very same test sources build for a Cortex-M and run under QEMU:
//   TEST, TEST_F, TEST_P, INSTANTIATE_TEST_SUITE_P, ::testing::Values, WithParamInterface,
//   EXPECT_/ASSERT_ TRUE, FALSE, EQ, NE, LT, LE, GT, GE, and `<< message` after any of them.
// Semantics follow GoogleTest: EXPECT_* records a failure and continues, ASSERT_* records it and
// returns from the current function. Values of integers, enums (by name where the library has a
// `to_string`), strings and optionals are printed on failure; other types print as "?".
// Integer comparisons use std::cmp_* (so signed/unsigned mixes compare by value).
// The runner (embedded/test/runner.cpp) defines the functions declared here.

#include <cstddef>
#include <cstdint>
#include <ios>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace testing {

class Test {
 public:
  virtual ~Test() = default;
  virtual void SetUp() {}
  virtual void TearDown() {}
  virtual void TestBody() = 0;
};

template <class T>
class WithParamInterface {
 public:
  using ParamType = T;
  virtual ~WithParamInterface() = default;
  [[nodiscard]] const T& GetParam() const { return *current_; }
  static inline const T* current_ = nullptr;
};

template <class T>
class TestWithParam : public Test, public WithParamInterface<T> {};

namespace internal {

struct TestInfo {
  const char* suite;
  const char* name;
  Test* (*make)();
  std::size_t (*param_count)();     // null for a plain test
  void (*set_param)(std::size_t);  // selects instance i before `make`
  TestInfo* next;
};

void register_test(TestInfo* info);
/// Records a failure of the running test and prints it; `detail` may be empty.
void report_failure(const char* file, int line, const char* expression, const char* detail,
                    const char* message);
/// Scratch text describing the last failed comparison (filled by the cmp_ functions).
char* detail_buffer();
std::size_t detail_capacity();

struct Registrar {
  explicit Registrar(TestInfo* info) { register_test(info); }
};

// --- Formatting without iostreams ---------------------------------------------------------------
class Text {
 public:
  Text(char* buf, std::size_t cap) : buf_(buf), cap_(cap) { buf_[0] = '\0'; }
  void put(std::string_view s) {
    for (char c : s) {
      if (n_ + 1 >= cap_) break;
      buf_[n_++] = c;
    }
    buf_[n_] = '\0';
  }
  /// Numbers in base 16 from now on (std::hex) or base 10 (std::dec).
  void set_hex(bool hex) { hex_ = hex; }
  void put_unsigned(unsigned long long v) {
    char tmp[24];
    std::size_t i = 0;
    const unsigned base = hex_ ? 16 : 10;
    do {
      tmp[i++] = "0123456789abcdef"[v % base];
      v /= base;
    } while (v != 0);
    while (i > 0) put(std::string_view(&tmp[--i], 1));
  }
  void put_signed(long long v) {
    if (v < 0) {
      put("-");
      put_unsigned(0ull - static_cast<unsigned long long>(v));
    } else {
      put_unsigned(static_cast<unsigned long long>(v));
    }
  }

 private:
  char* buf_;
  std::size_t cap_;
  std::size_t n_ = 0;
  bool hex_ = false;
};

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};

template <class T>
void describe(Text& out, const T& v) {
  using U = std::remove_cvref_t<T>;
  if constexpr (std::is_same_v<U, bool>) {
    out.put(v ? "true" : "false");
  } else if constexpr (std::is_null_pointer_v<U>) {
    out.put("nullptr");
  } else if constexpr (std::is_pointer_v<U> && !std::is_same_v<std::remove_cv_t<std::remove_pointer_t<U>>, char>) {
    out.put(v == nullptr ? "nullptr" : "(pointer)");
  } else if constexpr (std::is_enum_v<U>) {
    if constexpr (requires { { to_string(v) } -> std::convertible_to<const char*>; }) {
      out.put(to_string(v));
      out.put("(");
    }
    out.put_signed(static_cast<long long>(static_cast<std::underlying_type_t<U>>(v)));
    if constexpr (requires { { to_string(v) } -> std::convertible_to<const char*>; }) out.put(")");
  } else if constexpr (std::is_integral_v<U> && std::is_signed_v<U>) {
    out.put_signed(v);
  } else if constexpr (std::is_integral_v<U>) {
    out.put_unsigned(v);
  } else if constexpr (std::is_convertible_v<const U&, std::string_view>) {
    out.put("\"");
    out.put(std::string_view(v));
    out.put("\"");
  } else if constexpr (IsOptional<U>::value) {
    if (v.has_value()) {
      describe(out, *v);
    } else {
      out.put("nullopt");
    }
  } else {
    out.put("?");
  }
}

// Op: 0 ==, 1 !=, 2 <, 3 <=, 4 >, 5 >= (a template argument, so only the operator a check
// uses is instantiated).
template <int Op, class A, class B>
bool compare(const A& a, const B& b) {
  constexpr bool ints = std::is_integral_v<A> && std::is_integral_v<B> &&
                        !std::is_same_v<A, bool> && !std::is_same_v<B, bool>;
  if constexpr (Op == 0) {
    if constexpr (ints) return std::cmp_equal(a, b);
    else return a == b;
  } else if constexpr (Op == 1) {
    if constexpr (ints) return std::cmp_not_equal(a, b);
    else return !(a == b);
  } else if constexpr (Op == 2) {
    if constexpr (ints) return std::cmp_less(a, b);
    else return a < b;
  } else if constexpr (Op == 3) {
    if constexpr (ints) return std::cmp_less_equal(a, b);
    else return a <= b;
  } else if constexpr (Op == 4) {
    if constexpr (ints) return std::cmp_greater(a, b);
    else return b < a;
  } else {
    if constexpr (ints) return std::cmp_greater_equal(a, b);
    else return b <= a;
  }
}

template <int Op, class A, class B>
bool check(const A& a, const B& b) {
  if (compare<Op>(a, b)) return true;
  Text t(detail_buffer(), detail_capacity());
  t.put("  left: ");
  describe(t, a);
  t.put("\n  right: ");
  describe(t, b);
  return false;
}

/// The message streamed after a failed check (`EXPECT_EQ(a, b) << "context"`).
class Message {
 public:
  Message() : text_(buf_, sizeof buf_) {}
  template <class T>
  Message& operator<<(const T& v) {
    describe_plain(v);
    return *this;
  }
  /// std::hex and std::dec; other manipulators are ignored.
  Message& operator<<(std::ios_base& (*manipulator)(std::ios_base&)) {
    if (manipulator == &std::hex) text_.set_hex(true);
    if (manipulator == &std::dec) text_.set_hex(false);
    return *this;
  }
  [[nodiscard]] const char* c_str() const { return buf_; }

 private:
  template <class T>
  void describe_plain(const T& v) {
    using U = std::remove_cvref_t<T>;
    if constexpr (std::is_convertible_v<const U&, std::string_view> &&
                  !std::is_null_pointer_v<U>) {
      text_.put(std::string_view(v));
    } else {
      describe(text_, v);
    }
  }
  char buf_[160];
  Text text_;
};

class AssertHelper {
 public:
  AssertHelper(const char* file, int line, const char* expression, bool with_detail)
      : file_(file), line_(line), expression_(expression), with_detail_(with_detail) {}
  void operator=(const Message& m) const {
    report_failure(file_, line_, expression_, with_detail_ ? detail_buffer() : "", m.c_str());
  }

 private:
  const char* file_;
  int line_;
  const char* expression_;
  bool with_detail_;
};

template <class... T>
struct ValueArray {
  std::tuple<T...> values;
};

template <class Fixture>
struct ParamSuite {
  using P = typename Fixture::ParamType;
  static inline P values[16]{};
  static inline std::size_t count = 0;
  static std::size_t param_count() { return count; }
  static void set_param(std::size_t i) { WithParamInterface<P>::current_ = &values[i]; }
  template <class... T, class... Namer>
  static bool add(const ValueArray<T...>& v, Namer&&...) {
    std::apply([](const auto&... x) { ((count < 16 ? (void)(values[count++] = P(x)) : (void)0), ...); },
               v.values);
    return true;
  }
};

}  // namespace internal

template <class... T>
internal::ValueArray<T...> Values(T... v) {
  return {std::tuple<T...>(v...)};
}

}  // namespace testing

#define GTEST_SHIM_CLASS_(suite, name) suite##_##name##_Test

#define GTEST_SHIM_TEST_(suite, name, base, count, set)                                       \
  class GTEST_SHIM_CLASS_(suite, name) final : public base {                                 \
   public:                                                                                    \
    void TestBody() override;                                                                 \
    static ::testing::Test* make() { return new GTEST_SHIM_CLASS_(suite, name); }            \
  };                                                                                          \
  static ::testing::internal::TestInfo suite##_##name##_info_{#suite, #name,                        \
                                                       &GTEST_SHIM_CLASS_(suite, name)::make, \
                                                       count, set, nullptr};                  \
  static const ::testing::internal::Registrar suite##_##name##_registrar_(&suite##_##name##_info_);  \
  void GTEST_SHIM_CLASS_(suite, name)::TestBody()

#define TEST(suite, name) GTEST_SHIM_TEST_(suite, name, ::testing::Test, nullptr, nullptr)
#define TEST_F(fixture, name) GTEST_SHIM_TEST_(fixture, name, fixture, nullptr, nullptr)
#define TEST_P(fixture, name)                                                  \
  GTEST_SHIM_TEST_(fixture, name, fixture,                                     \
                   &::testing::internal::ParamSuite<fixture>::param_count,     \
                   &::testing::internal::ParamSuite<fixture>::set_param)
#define INSTANTIATE_TEST_SUITE_P(prefix, fixture, ...) \
  static const bool prefix##_##fixture##_instantiated_ = \
      ::testing::internal::ParamSuite<fixture>::add(__VA_ARGS__)

// `if (ok) ; else <report> = Message() << ...`: the dangling else makes the macro a single
// statement that still accepts a streamed message, as in GoogleTest.
#define GTEST_SHIM_BOOL_(cond, text, on_failure)                                      \
  if (static_cast<bool>(cond))                                                       \
    ;                                                                                \
  else                                                                               \
    on_failure ::testing::internal::AssertHelper(__FILE__, __LINE__, text, false) =  \
        ::testing::internal::Message()
#define GTEST_SHIM_CMP_(a, b, op, text, on_failure)                                 \
  if (::testing::internal::check<op>((a), (b)))                                     \
    ;                                                                               \
  else                                                                              \
    on_failure ::testing::internal::AssertHelper(__FILE__, __LINE__, text, true) = \
        ::testing::internal::Message()

#define EXPECT_TRUE(c) GTEST_SHIM_BOOL_(c, "EXPECT_TRUE(" #c ")", )
#define EXPECT_FALSE(c) GTEST_SHIM_BOOL_(!(c), "EXPECT_FALSE(" #c ")", )
#define ASSERT_TRUE(c) GTEST_SHIM_BOOL_(c, "ASSERT_TRUE(" #c ")", return)
#define ASSERT_FALSE(c) GTEST_SHIM_BOOL_(!(c), "ASSERT_FALSE(" #c ")", return)
#define EXPECT_EQ(a, b) GTEST_SHIM_CMP_(a, b, 0, "EXPECT_EQ(" #a ", " #b ")", )
#define EXPECT_NE(a, b) GTEST_SHIM_CMP_(a, b, 1, "EXPECT_NE(" #a ", " #b ")", )
#define EXPECT_LT(a, b) GTEST_SHIM_CMP_(a, b, 2, "EXPECT_LT(" #a ", " #b ")", )
#define EXPECT_LE(a, b) GTEST_SHIM_CMP_(a, b, 3, "EXPECT_LE(" #a ", " #b ")", )
#define EXPECT_GT(a, b) GTEST_SHIM_CMP_(a, b, 4, "EXPECT_GT(" #a ", " #b ")", )
#define EXPECT_GE(a, b) GTEST_SHIM_CMP_(a, b, 5, "EXPECT_GE(" #a ", " #b ")", )
#define ASSERT_EQ(a, b) GTEST_SHIM_CMP_(a, b, 0, "ASSERT_EQ(" #a ", " #b ")", return)
#define ASSERT_NE(a, b) GTEST_SHIM_CMP_(a, b, 1, "ASSERT_NE(" #a ", " #b ")", return)
#define ASSERT_LT(a, b) GTEST_SHIM_CMP_(a, b, 2, "ASSERT_LT(" #a ", " #b ")", return)
#define ASSERT_LE(a, b) GTEST_SHIM_CMP_(a, b, 3, "ASSERT_LE(" #a ", " #b ")", return)
#define ASSERT_GT(a, b) GTEST_SHIM_CMP_(a, b, 4, "ASSERT_GT(" #a ", " #b ")", return)
#define ASSERT_GE(a, b) GTEST_SHIM_CMP_(a, b, 5, "ASSERT_GE(" #a ", " #b ")", return)
