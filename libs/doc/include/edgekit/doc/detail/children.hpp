#pragma once
/// \file
/// Internal: the forward iterator and range over a container's children (object members, array
/// elements) that the JSON and CBOR readers share. Each reader supplies a `Cursor` that knows its
/// format: `load(item)` reads the child at the cursor (nothing at the end), `advance(item)` steps
/// past the child just loaded and loads the next, `==` compares positions.

#include <cstddef>
#include <cstdint>

namespace edgekit::doc::detail {

/// A position among a container's children in a checked document of `Byte`s: `pos` is where the
/// current child starts; `left` counts the children left where the format knows it (CBOR), or is
/// 0 (JSON, whose end cursor sits at the closing bracket instead). Each reader defines `load` and
/// `advance` for its Member and Value. A cursor at the end equals the range's end cursor.
template <class Byte>
struct ChildCursor {
  const Byte* doc = nullptr;
  std::size_t pos = 0;
  std::uint64_t left = 0;
  template <class Item>
  void load(Item& item) const noexcept;
  template <class Item>
  void advance(Item& item) noexcept;
  friend bool operator==(const ChildCursor&, const ChildCursor&) = default;
};

/// A forward iterator over children of type `Item`. Thread safety: a value type.
template <class Item, class Cursor>
class ChildIterator {
 public:
  using value_type = Item;
  using difference_type = std::ptrdiff_t;

  ChildIterator() = default;
  explicit ChildIterator(const Cursor& cursor) noexcept : cursor_(cursor) { cursor_.load(current_); }

  [[nodiscard]] const Item& operator*() const noexcept { return current_; }
  [[nodiscard]] const Item* operator->() const noexcept { return &current_; }
  ChildIterator& operator++() noexcept {
    cursor_.advance(current_);
    return *this;
  }
  ChildIterator operator++(int) noexcept {
    ChildIterator old = *this;
    ++*this;
    return old;
  }
  [[nodiscard]] friend bool operator==(const ChildIterator& a, const ChildIterator& b) noexcept {
    return a.cursor_ == b.cursor_;
  }

 private:
  Cursor cursor_{};
  Item current_{};
};

/// The children of one container, for range-for. Empty when default-constructed.
template <class Iterator>
class ChildRange {
 public:
  using iterator = Iterator;
  ChildRange() = default;
  ChildRange(Iterator first, Iterator last) noexcept : begin_(first), end_(last) {}
  [[nodiscard]] Iterator begin() const noexcept { return begin_; }
  [[nodiscard]] Iterator end() const noexcept { return end_; }
  [[nodiscard]] bool empty() const noexcept { return begin_ == end_; }

 private:
  Iterator begin_{};
  Iterator end_{};
};

}  // namespace edgekit::doc::detail
