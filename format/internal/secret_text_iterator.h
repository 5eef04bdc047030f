// SPDX-License-Identifier: Apache-2.0
// SecretTextIterator: how strict_json.cc feeds key documents to nlohmann's parser. Besides its
// token buffer (a string_t, covered by SecretJson), nlohmann's lexer records every character
// of the current token in a std::vector<char_type>, where char_type is the value type of the
// input iterator, and quotes that record in the std::strings of its error messages. With plain
// char, a key's base64 text would grow through, and end in, freed unwiped heap blocks. This
// iterator's value type is SecretChar, a byte type of ours, for which std::allocator is
// specialized to allocate from the SecretArena (wiped when freed) and std::char_traits to let
// the lexer read it; and its conversions to char redact, so error messages quote '?'s.
// Private to strict_json.cc.
#ifndef CTFS_FORMAT_INTERNAL_SECRET_TEXT_ITERATOR_H_
#define CTFS_FORMAT_INTERNAL_SECRET_TEXT_ITERATOR_H_

#include <cstddef>
#include <cwchar>
#include <ios>
#include <iterator>
#include <memory>
#include <string>
#include <type_traits>

#include "base/secret_allocator.h"

namespace ctfs::format::internal {

// SecretChar is one byte of a key document. The lexer reads its value only through
// std::char_traits<SecretChar>::to_int_type. The explicit conversions to char and unsigned
// char are used only by nlohmann's lexer::get_token_string (the quote of the current token in
// a parse error message) and yield '?': such messages never carry key text.
struct SecretChar {
  unsigned char value;

  SecretChar() = default;
  constexpr explicit SecretChar(char c) : value(static_cast<unsigned char>(c)) {}
  constexpr explicit SecretChar(unsigned char c) : value(c) {}
  constexpr explicit operator char() const { return '?'; }
  constexpr explicit operator unsigned char() const { return '?'; }
  friend constexpr bool operator==(SecretChar a, SecretChar b) = default;
};
static_assert(sizeof(SecretChar) == 1 && std::is_trivial_v<SecretChar>);

// SecretTextIterator reads a char range as SecretChar (a conversion, not a reinterpret_cast:
// the text stays char objects).
class SecretTextIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = SecretChar;
  using difference_type = std::ptrdiff_t;
  using pointer = void;
  using reference = SecretChar;

  SecretTextIterator() = default;
  explicit SecretTextIterator(const char* p) : p_(p) {}

  SecretChar operator*() const { return SecretChar(*p_); }
  SecretTextIterator& operator++() {
    ++p_;
    return *this;
  }
  SecretTextIterator operator++(int) {
    SecretTextIterator old = *this;
    ++p_;
    return old;
  }
  bool operator==(const SecretTextIterator&) const = default;

 private:
  const char* p_ = nullptr;
};

}  // namespace ctfs::format::internal

namespace std {

// Specializations for a program-defined type ([namespace.std]), complete per
// [char.traits.require] although the lexer uses only eof, to_int_type and to_char_type.
template <>
struct char_traits<ctfs::format::internal::SecretChar> {
  using char_type = ctfs::format::internal::SecretChar;
  using int_type = int;
  using off_type = streamoff;
  using pos_type = streampos;
  using state_type = mbstate_t;

  static constexpr void assign(char_type& c1, const char_type& c2) noexcept { c1 = c2; }
  static constexpr bool eq(char_type c1, char_type c2) noexcept { return c1 == c2; }
  static constexpr bool lt(char_type c1, char_type c2) noexcept { return c1.value < c2.value; }
  static constexpr int compare(const char_type* s1, const char_type* s2, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (s1[i].value != s2[i].value) return s1[i].value < s2[i].value ? -1 : 1;
    }
    return 0;
  }
  static constexpr size_t length(const char_type* s) {
    size_t n = 0;
    while (s[n].value != 0) ++n;
    return n;
  }
  static constexpr const char_type* find(const char_type* s, size_t n, const char_type& c) {
    for (size_t i = 0; i < n; ++i) {
      if (s[i] == c) return s + i;
    }
    return nullptr;
  }
  static constexpr char_type* move(char_type* s1, const char_type* s2, size_t n) {
    if (s1 < s2) {
      for (size_t i = 0; i < n; ++i) s1[i] = s2[i];
    } else {
      for (size_t i = n; i > 0; --i) s1[i - 1] = s2[i - 1];
    }
    return s1;
  }
  static constexpr char_type* copy(char_type* s1, const char_type* s2, size_t n) {
    for (size_t i = 0; i < n; ++i) s1[i] = s2[i];
    return s1;
  }
  static constexpr char_type* assign(char_type* s, size_t n, char_type c) {
    for (size_t i = 0; i < n; ++i) s[i] = c;
    return s;
  }
  static constexpr int_type not_eof(int_type c) noexcept { return c == eof() ? 0 : c; }
  static constexpr char_type to_char_type(int_type c) noexcept {
    return char_type(static_cast<unsigned char>(c));
  }
  static constexpr int_type to_int_type(char_type c) noexcept { return c.value; }
  static constexpr bool eq_int_type(int_type c1, int_type c2) noexcept { return c1 == c2; }
  static constexpr int_type eof() noexcept { return -1; }
};

template <>
class allocator<ctfs::format::internal::SecretChar>
    : public ctfs::SecretAllocator<ctfs::format::internal::SecretChar> {
 public:
  using value_type = ctfs::format::internal::SecretChar;
  using size_type = size_t;
  using difference_type = ptrdiff_t;
  using propagate_on_container_move_assignment = true_type;
  using is_always_equal = true_type;

  allocator() = default;
  template <typename U>
  allocator(const allocator<U>&) noexcept {}  // NOLINT: rebinding is implicit
};

}  // namespace std

#endif  // CTFS_FORMAT_INTERNAL_SECRET_TEXT_ITERATOR_H_
