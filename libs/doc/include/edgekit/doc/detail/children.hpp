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

/// The end of a container's children: only a position, so that a range and a range-for loop
/// carry one child, not two (stack on a device). Compares equal to an iterator at that position.
template <class Cursor>
struct ChildEnd {
  Cursor cursor{};
};

/// A forward iterator over children of type `Item`. Thread safety: a value type.
template <class Item, class Cursor>
class ChildIterator {
 public:
  using value_type = Item;
  using difference_type = std::ptrdiff_t;

  ChildIterator() = default;
  /// At `cursor`, with the child there loaded; `at_end` for a cursor that is the end (nothing
  /// to load: an empty container, or no container at all).
  ChildIterator(const Cursor& cursor, bool at_end) noexcept : cursor_(cursor) {
    if (!at_end) cursor_.load(current_);
  }

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
  [[nodiscard]] friend bool operator==(const ChildIterator& a, const ChildEnd<Cursor>& b) noexcept {
    return a.cursor_ == b.cursor;
  }

 private:
  Cursor cursor_{};
  Item current_{};
};

/// The children of one container, for range-for: `begin()` gives a `ChildIterator`, `end()` a
/// `ChildEnd` that it compares with (C++20 range-for and ranges accept the two types).
/// Empty when default-constructed.
template <class Item, class Cursor>
class ChildRange {
 public:
  using iterator = ChildIterator<Item, Cursor>;
  using sentinel = ChildEnd<Cursor>;
  ChildRange() = default;
  ChildRange(const Cursor& first, const Cursor& last) noexcept : first_(first), last_(last) {}
  [[nodiscard]] iterator begin() const noexcept { return iterator(first_, empty()); }
  [[nodiscard]] sentinel end() const noexcept { return sentinel{last_}; }
  [[nodiscard]] bool empty() const noexcept { return first_ == last_; }

 private:
  Cursor first_{};
  Cursor last_{};
};

}  // namespace edgekit::doc::detail
